"""The resolution cache, driven by explicit times (no clock reads)."""

from __future__ import annotations

import pytest

from idnode.protocol.codes import ResponseCode
from idnode.protocol.values import HandleValue, TTLType
from idnode.resolver.cache import MAX_TTL, TTLCache, cache_key, expiry_of

T0 = 1_800_000_000.0


def value(index: int, ttl: int = 3600, ttl_type: int = TTLType.RELATIVE) -> HandleValue:
    return HandleValue(index, "URL", b"https://example.com/", ttl=ttl, ttl_type=ttl_type)


def test_key_normalises_case_and_order() -> None:
    assert cache_key("88.118.8/Abc", ["url", "DESC"], [2, 1]) == cache_key(
        "88.118.8/ABC", ["DESC", "URL"], [1, 2, 2]
    )
    assert cache_key("88.118.8/ABC", ["URL"]) != cache_key("88.118.8/ABC")


def test_hit_then_expiry_at_the_relative_ttl() -> None:
    cache = TTLCache()
    key = cache_key("88.118.8/A")
    cache.put(key, [value(1, ttl=60)], T0)
    entry = cache.get(key, T0 + 59.9)
    assert entry is not None and entry.values == (value(1, ttl=60),)
    assert cache.get(key, T0 + 60) is None
    assert len(cache) == 0
    assert (cache.stats.hits, cache.stats.misses, cache.stats.expirations) == (1, 1, 1)


def test_minimum_ttl_over_the_values() -> None:
    assert expiry_of([value(1, ttl=600), value(2, ttl=30)], T0) == T0 + 30


def test_absolute_ttl() -> None:
    cache = TTLCache()
    key = cache_key("88.118.8/A")
    cache.put(key, [value(1, ttl=int(T0) + 100, ttl_type=TTLType.ABSOLUTE)], T0)
    assert cache.get(key, T0 + 99) is not None
    assert cache.get(key, T0 + 100) is None


def test_absolute_ttl_in_the_past_and_zero_ttl_are_not_stored() -> None:
    cache = TTLCache()
    key = cache_key("88.118.8/A")
    assert cache.put(key, [value(1, ttl=int(T0) - 1, ttl_type=TTLType.ABSOLUTE)], T0) is None
    assert cache.put(key, [value(1, ttl=0)], T0) is None
    assert cache.get(key, T0) is None


def test_ttls_are_capped_at_two_days() -> None:
    cache = TTLCache()
    key = cache_key("88.118.8/A")
    entry = cache.put(key, [value(1, ttl=10 * MAX_TTL)], T0)
    assert entry is not None and entry.expires == T0 + MAX_TTL == T0 + 172800
    far = value(2, ttl=int(T0) + 10 * MAX_TTL, ttl_type=TTLType.ABSOLUTE)
    assert expiry_of([far], T0) == T0 + MAX_TTL
    assert cache.get(key, T0 + MAX_TTL - 1) is not None
    assert cache.get(key, T0 + MAX_TTL) is None


def test_negative_entries_live_for_the_negative_ttl() -> None:
    cache = TTLCache(negative_ttl=5)
    key = cache_key("88.118.8/MISSING")
    cache.put_negative(key, ResponseCode.HANDLE_NOT_FOUND, "gone", T0)
    entry = cache.get(key, T0 + 4)
    assert entry is not None and entry.negative
    assert (entry.error_code, entry.error_message) == (ResponseCode.HANDLE_NOT_FOUND, "gone")
    assert cache.get(key, T0 + 5) is None


def test_negative_caching_can_be_off() -> None:
    cache = TTLCache(negative_ttl=0)
    key = cache_key("88.118.8/MISSING")
    assert cache.put_negative(key, ResponseCode.HANDLE_NOT_FOUND, "", T0) is None
    assert cache.get(key, T0) is None


def test_lru_eviction_at_the_size_bound() -> None:
    cache = TTLCache(max_entries=2)
    a, b, c = (cache_key(f"88.118.8/{n}") for n in "ABC")
    cache.put(a, [value(1)], T0)
    cache.put(b, [value(1)], T0)
    assert cache.get(a, T0) is not None  # a is now the most recently used
    cache.put(c, [value(1)], T0)
    assert cache.get(b, T0) is None
    assert cache.get(a, T0) is not None and cache.get(c, T0) is not None
    assert cache.stats.evictions == 1 and len(cache) == 2


def test_purge_and_discard() -> None:
    cache = TTLCache()
    short, long_ = cache_key("88.118.8/S"), cache_key("88.118.8/L")
    cache.put(short, [value(1, ttl=10)], T0)
    cache.put(long_, [value(1, ttl=100)], T0)
    assert cache.purge(T0 + 50) == 1
    cache.discard(long_, T0 + 50)
    assert len(cache) == 0


def test_bad_settings() -> None:
    with pytest.raises(ValueError):
        TTLCache(max_entries=0)
    with pytest.raises(ValueError):
        TTLCache(negative_ttl=-1)
