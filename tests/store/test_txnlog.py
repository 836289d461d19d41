"""The transaction log and replicated changes, on every backend (see conftest.BACKENDS)."""

from __future__ import annotations

import asyncio

import pytest

from idnode.errors import HandleAlreadyExists, StoreError
from idnode.protocol.values import HandleValue, encode_record
from idnode.store.base import HandleStore
from idnode.store.txnlog import Action, Change, now_ms


def url(index: int, data: str = "https://example.org/") -> HandleValue:
    return HandleValue(index, "URL", data.encode())


async def entries(store: HandleStore, after: int = 0) -> list[tuple[str, Action]]:
    return [(t.handle, t.action) for t in await store.txn_log(after)]


async def test_every_write_is_logged_in_order(store: HandleStore) -> None:
    before = now_ms()
    await store.home_prefix("P")
    await store.create_handle("P/a", [url(1)])
    await store.add_values("P/a", [url(2)])
    await store.modify_values("P/a", [url(2, "https://other/")])
    await store.remove_values("P/a", [2])
    await store.create_records([("P/b", encode_record([url(1)])), ("P/c", encode_record([]))])
    await store.delete_handle("P/b")
    await store.unhome_prefix("P")
    assert await entries(store) == [
        ("0.NA/P", Action.HOME_PREFIX),
        ("P/a", Action.CREATE_HANDLE),
        ("P/a", Action.UPDATE_HANDLE),
        ("P/a", Action.UPDATE_HANDLE),
        ("P/a", Action.UPDATE_HANDLE),
        ("P/b", Action.CREATE_HANDLE),
        ("P/c", Action.CREATE_HANDLE),
        ("P/b", Action.DELETE_HANDLE),
        ("0.NA/P", Action.UNHOME_PREFIX),
    ]
    log = await store.txn_log(0)
    assert [t.txn_id for t in log] == list(range(1, 10))
    assert all(before <= t.date_ms <= now_ms() for t in log)
    state = await store.txn_log_state()
    assert (state.first_txn_id, state.last_txn_id) == (1, 9)


async def test_failed_and_idempotent_writes_log_nothing(store: HandleStore) -> None:
    await store.create_handle("P/a", [url(1)])
    with pytest.raises(HandleAlreadyExists):
        await store.create_handle("P/A", [url(1)])
    assert await store.create_records([("P/a", encode_record([url(1)]))]) == [False]
    await store.home_prefix("P")
    await store.home_prefix("p")  # already homed: no change, no entry
    assert await entries(store) == [("P/a", Action.CREATE_HANDLE), ("0.NA/P", Action.HOME_PREFIX)]


async def test_log_pages_after_an_id(store: HandleStore) -> None:
    for i in range(5):
        await store.create_handle(f"P/{i}", [])
    assert [t.handle for t in await store.txn_log(2, limit=2)] == ["P/2", "P/3"]
    assert await store.txn_log(5) == []


async def test_pruning_keeps_the_last_id(store: HandleStore) -> None:
    empty = await store.txn_log_state()
    assert (empty.first_txn_id, empty.first_date_ms, empty.last_txn_id) == (None, None, 0)
    await store.create_handle("P/a", [])
    await store.create_handle("P/b", [])
    assert await store.prune_txn_log(now_ms() + 1) == 2
    state = await store.txn_log_state()
    assert (state.first_txn_id, state.last_txn_id) == (None, 2)
    await store.create_handle("P/c", [])
    assert [t.txn_id for t in await store.txn_log(0)] == [3]  # ids are never reused


async def test_concurrent_writers_get_distinct_ids_in_commit_order(store: HandleStore) -> None:
    await asyncio.gather(*(store.create_handle(f"P/{i}", [url(1)]) for i in range(40)))
    log = await store.txn_log(0)
    assert [t.txn_id for t in log] == list(range(1, 41))
    assert sorted(t.handle for t in log) == sorted(f"P/{i}" for i in range(40))


async def test_apply_replicated_changes_and_source_state(store: HandleStore) -> None:
    assert await store.replication_source("0:127.0.0.1:2641") is None
    await store.create_handle("P/stale", [url(1)])
    record = encode_record([url(1, "https://mirror/")])
    await store.apply_replicated(
        [
            Change(Action.HOME_PREFIX, "0.NA/P"),
            Change(Action.CREATE_HANDLE, "P/New", record),
            Change(Action.UPDATE_HANDLE, "P/stale", record),
            Change(Action.DELETE_HANDLE, "P/missing"),  # absent: not an error
        ],
        source="0:127.0.0.1:2641",
        txn_id=17,
        date_ms=1234,
    )
    assert await store.is_homed("p")
    assert await store.get_handle("p/new") == (url(1, "https://mirror/"),)
    assert await store.list_handles("P") == ["P/New", "P/stale"]
    assert await store.replication_source("0:127.0.0.1:2641") == (17, 1234)
    await store.apply_replicated(
        [Change(Action.DELETE_HANDLE, "P/stale"), Change(Action.UNHOME_PREFIX, "0.NA/P")],
        source="0:127.0.0.1:2641",
        txn_id=18,
        date_ms=1300,
    )
    assert await store.get_handle("P/stale") is None
    assert not await store.is_homed("P")
    assert await store.replication_source("0:127.0.0.1:2641") == (18, 1300)
    # What a mirror applies enters its own log, so it can itself be followed.
    assert (await entries(store))[-2:] == [
        ("P/stale", Action.DELETE_HANDLE),
        ("0.NA/P", Action.UNHOME_PREFIX),
    ]


async def test_apply_replicated_refuses_a_damaged_record_and_changes_nothing(
    store: HandleStore,
) -> None:
    with pytest.raises(StoreError):
        await store.apply_replicated(
            [
                Change(Action.CREATE_HANDLE, "P/ok", encode_record([])),
                Change(Action.CREATE_HANDLE, "P/bad", b"\x00\x00\x00\x05"),
            ],
            source="s",
            txn_id=1,
            date_ms=1,
        )
    assert await store.get_handle("P/ok") is None
    assert await store.replication_source("s") is None


def test_change_requires_a_record_exactly_for_puts() -> None:
    with pytest.raises(ValueError):
        Change(Action.CREATE_HANDLE, "P/a")
    with pytest.raises(ValueError):
        Change(Action.DELETE_HANDLE, "P/a", b"")
    assert Change(Action.HOME_PREFIX, "0.na/P.1").prefix == "P.1"
