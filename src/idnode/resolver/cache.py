"""A bounded TTL cache of resolution results (spec §4, "Caching").

Entries are keyed by :class:`CacheKey`: the handle's case-insensitive key plus the query
(types and indexes, normalised so that equal queries give equal keys). A positive entry holds
the values; it lives until the earliest expiry over its values:

* relative TTL (``TTLType.RELATIVE``): ``now + ttl``;
* absolute TTL (``TTLType.ABSOLUTE``): until that epoch second;

either way never longer than :data:`MAX_TTL` (two days, Java's ``MAX_RECOGNIZED_TTL``). A
negative entry remembers a "not found" answer (its response code and message) for
``negative_ttl`` seconds. The cache never reads a clock: every method takes ``now`` (epoch
seconds), so tests drive expiry by passing times. When full, the least recently used entry
goes. :attr:`TTLCache.stats` counts hits, misses, stores and evictions for metrics.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from idnode.protocol.values import HandleValue, TTLType
from idnode.store.base import handle_key

__all__ = ["MAX_TTL", "CacheEntry", "CacheKey", "CacheStats", "TTLCache", "cache_key"]

#: Longest time anything is cached, in seconds (spec §4: TTLs above two days are capped).
MAX_TTL = 172800


@dataclass(frozen=True, slots=True)
class CacheKey:
    """What was asked: the handle key (case-folded as the store does) and the query filters."""

    handle: str
    types: tuple[str, ...] = ()
    indexes: tuple[int, ...] = ()


def cache_key(handle: str, types: Sequence[str] = (), indexes: Sequence[int] = ()) -> CacheKey:
    """The key of a resolution of ``handle`` filtered by ``types`` and ``indexes``; the order
    and case of types and the order of indexes do not matter."""
    return CacheKey(
        handle_key(handle),
        tuple(sorted({t.upper() for t in types})),
        tuple(sorted(set(indexes))),
    )


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A cached answer. ``values`` is None for a negative entry, which keeps the response
    code and message of the error instead."""

    values: tuple[HandleValue, ...] | None
    expires: float
    error_code: int = 0
    error_message: str = ""

    @property
    def negative(self) -> bool:
        return self.values is None


@dataclass
class CacheStats:
    """Counters since the cache was made (for metrics)."""

    hits: int = 0
    misses: int = 0
    stores: int = 0
    evictions: int = 0
    expirations: int = 0


def expiry_of(values: Sequence[HandleValue], now: float, *, max_ttl: int = MAX_TTL) -> float:
    """When a record made of ``values`` stops being fresh: the minimum over the values of their
    expiry (relative or absolute TTL), capped at ``now + max_ttl``."""
    cap = now + max_ttl
    expires = cap
    for v in values:
        until = float(v.ttl) if v.ttl_type == TTLType.ABSOLUTE else now + v.ttl
        expires = min(expires, until)
    return expires


class TTLCache:
    """Positive and negative resolution results, at most ``max_entries`` of them (LRU)."""

    def __init__(
        self, *, max_entries: int = 10000, negative_ttl: float = 60.0, max_ttl: int = MAX_TTL
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        if negative_ttl < 0 or max_ttl < 0:
            raise ValueError("TTLs must not be negative")
        self.max_entries = max_entries
        self.negative_ttl = negative_ttl
        self.max_ttl = max_ttl
        self.stats = CacheStats()
        self._entries: OrderedDict[CacheKey, CacheEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey, now: float) -> CacheEntry | None:
        """The fresh entry for ``key`` (marking it recently used), or None (a miss). An
        expired entry is dropped."""
        entry = self._entries.get(key)
        if entry is not None and entry.expires <= now:
            del self._entries[key]
            self.stats.expirations += 1
            entry = None
        if entry is None:
            self.stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return entry

    def put(self, key: CacheKey, values: Sequence[HandleValue], now: float) -> CacheEntry | None:
        """Remember ``values`` for their TTL (see :func:`expiry_of`). Values already expired
        (TTL 0, absolute time in the past) are not stored: returns None then."""
        expires = expiry_of(values, now, max_ttl=self.max_ttl)
        if expires <= now:
            self._entries.pop(key, None)
            return None
        return self._store(key, CacheEntry(tuple(values), expires))

    def put_negative(self, key: CacheKey, code: int, message: str, now: float) -> CacheEntry | None:
        """Remember that ``key`` was not found (response ``code``) for ``negative_ttl``."""
        if self.negative_ttl <= 0:
            return None
        expires = now + min(self.negative_ttl, self.max_ttl)
        return self._store(key, CacheEntry(None, expires, code, message))

    def discard(self, key: CacheKey, now: float) -> None:
        """Forget ``key`` (``now`` is accepted for a uniform interface)."""
        del now
        self._entries.pop(key, None)

    def purge(self, now: float) -> int:
        """Drop every expired entry; returns how many went."""
        stale = [k for k, e in self._entries.items() if e.expires <= now]
        for k in stale:
            del self._entries[k]
        self.stats.expirations += len(stale)
        return len(stale)

    def _store(self, key: CacheKey, entry: CacheEntry) -> CacheEntry:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        self.stats.stores += 1
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self.stats.evictions += 1
        return entry
