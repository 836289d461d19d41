"""The in-memory set of homed prefixes behind ``is_homed`` (idnode.store.homedcache)."""

from __future__ import annotations

import asyncio

from idnode.store.base import HandleStore
from idnode.store.homedcache import HomedCache

from .conftest import StoreOpener


def test_reloads_after_the_ttl_and_after_invalidation() -> None:
    now = [0.0]
    loads: list[int] = []
    homed = {"P"}

    async def load() -> list[str]:
        loads.append(1)
        return sorted(homed)

    async def scenario() -> None:
        cache = HomedCache(load, ttl=1.0, clock=lambda: now[0])
        assert await cache.keys() == {"P"}
        homed.add("Q")
        assert await cache.keys() == {"P"}  # within the TTL: the loaded set
        now[0] = 1.5
        assert await cache.keys() == {"P", "Q"}
        homed.add("R")
        cache.invalidate()
        assert await cache.keys() == {"P", "Q", "R"}
        assert len(loads) == 3

    asyncio.run(scenario())


def test_a_load_racing_an_invalidation_is_not_kept() -> None:
    gate = asyncio.Event()
    homed = {"P"}

    async def load() -> list[str]:
        snapshot = sorted(homed)
        await gate.wait()
        return snapshot

    async def scenario() -> None:
        cache = HomedCache(load, ttl=60.0)
        slow = asyncio.ensure_future(cache.keys())
        await asyncio.sleep(0)
        homed.add("Q")
        cache.invalidate()  # a home happened while the load ran
        gate.set()
        assert await slow == {"P"}  # that caller sees its snapshot...
        assert await cache.keys() == {"P", "Q"}  # ...but it was not kept

    asyncio.run(scenario())


async def test_own_home_and_unhome_are_seen_at_once(store: HandleStore) -> None:
    assert not await store.is_homed("88.1")
    await store.home_prefix("88.1")
    assert await store.is_homed("88.1")
    await store.unhome_prefix("88.1")
    assert not await store.is_homed("88.1")


async def test_another_process_change_is_seen_within_the_ttl(
    store: HandleStore, open_store: StoreOpener
) -> None:
    assert not await store.is_homed("88.2")
    other = await open_store()
    try:
        await other.home_prefix("88.2")
    finally:
        await other.close()
    await asyncio.sleep(1.1)
    assert await store.is_homed("88.2")
