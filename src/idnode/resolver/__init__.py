"""Recursive resolution: a TTL cache and a resolver walking root → prefix sites → handle site.

See :mod:`idnode.resolver.recursive` for the algorithm and :mod:`idnode.resolver.cache` for
the caching rules (spec §4).
"""

from __future__ import annotations

from idnode.resolver.cache import MAX_TTL, CacheEntry, CacheKey, CacheStats, TTLCache, cache_key
from idnode.resolver.recursive import (
    PREFIX_TYPES,
    HandleClientUpstream,
    Hop,
    RecursionLimitExceeded,
    ReferralLoop,
    Resolver,
    ServerAddress,
    Upstream,
    UpstreamUnavailable,
    root_site,
)

__all__ = [
    "MAX_TTL",
    "PREFIX_TYPES",
    "CacheEntry",
    "CacheKey",
    "CacheStats",
    "HandleClientUpstream",
    "Hop",
    "RecursionLimitExceeded",
    "ReferralLoop",
    "Resolver",
    "ServerAddress",
    "TTLCache",
    "Upstream",
    "UpstreamUnavailable",
    "cache_key",
    "root_site",
]
