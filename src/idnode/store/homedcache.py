"""The set of homed prefixes, kept in memory for ``is_homed``: every resolution asks it, and
the answer changes only when a prefix is homed or unhomed.

A backend answers ``is_homed`` from :class:`HomedCache`, which loads every homed prefix key at
once and keeps the set for ``ttl`` seconds; the backend's own home/unhome (and replicated
prefix changes) drop it at once. A change made through another process on the same database
(another node on a shared PostgreSQL, ``idnode handle home`` against a stopped node's file)
is therefore seen within ``ttl``. A load that races with an invalidation is not kept.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable

__all__ = ["HOMED_TTL", "HomedCache"]

#: Seconds a loaded set of homed prefixes is trusted.
HOMED_TTL = 1.0


class HomedCache:
    def __init__(
        self,
        load: Callable[[], Awaitable[Iterable[str]]],
        *,
        ttl: float = HOMED_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._keys: frozenset[str] | None = None
        self._loaded_at = 0.0
        self._generation = 0

    async def keys(self) -> frozenset[str]:
        """The handle keys of the homed prefixes."""
        now = self._clock()
        if self._keys is not None and now - self._loaded_at < self._ttl:
            return self._keys
        generation = self._generation
        keys = frozenset(await self._load())
        if generation == self._generation:  # no home/unhome while loading
            self._keys, self._loaded_at = keys, now
        return keys

    def invalidate(self) -> None:
        """Forget the set: this store homed or unhomed a prefix."""
        self._keys = None
        self._generation += 1
