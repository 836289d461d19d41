"""The HandleStore contract, run against every backend (see conftest.BACKENDS)."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnode.errors import (
    HandleAlreadyExists,
    HandleNotFound,
    InvalidValue,
    StoreError,
    ValueAlreadyExists,
    ValuesNotFound,
)
from idnode.protocol.values import HandleValue, Reference, TTLType, encode_record
from idnode.store.base import HandleStore, handle_key

from .conftest import StoreOpener


def url(index: int, data: str = "https://example.org/") -> HandleValue:
    return HandleValue(index, "URL", data.encode())


def email(index: int) -> HandleValue:
    return HandleValue(index, "EMAIL", b"ops@example.org")


# -- create / get / delete ---------------------------------------------------------------------
async def test_get_missing_handle_is_none(store: HandleStore) -> None:
    assert await store.get_handle("P/missing") is None


async def test_create_then_get_returns_values_ordered_by_index(store: HandleStore) -> None:
    await store.create_handle("P/1", [url(3), email(1), url(2)])
    assert await store.get_handle("P/1") == (email(1), url(2), url(3))


async def test_handle_without_values_exists(store: HandleStore) -> None:
    await store.create_handle("P/empty", [])
    assert await store.get_handle("P/empty") == ()


async def test_create_existing_raises_and_keeps_record(store: HandleStore) -> None:
    await store.create_handle("P/Dup", [url(1)])
    with pytest.raises(HandleAlreadyExists):
        await store.create_handle("P/Dup", [email(2)])
    with pytest.raises(HandleAlreadyExists):
        await store.create_handle("p/dUP", [email(2)])  # same handle, other case
    assert await store.get_handle("P/Dup") == (url(1),)
    assert await store.list_handles("P") == ["P/Dup"]


async def test_create_overwrite_replaces_whole_record(store: HandleStore) -> None:
    await store.create_handle("P/Old", [url(1), url(2), email(3)])
    await store.create_handle("p/old", [email(7)], overwrite=True)
    assert await store.get_handle("P/OLD") == (email(7),)
    assert await store.list_handles("P") == ["p/old"]


async def test_create_overwrite_of_missing_handle_creates_it(store: HandleStore) -> None:
    await store.create_handle("P/new", [url(1)], overwrite=True)
    assert await store.get_handle("P/new") == (url(1),)


async def test_create_with_duplicate_indexes_is_rejected(store: HandleStore) -> None:
    with pytest.raises(InvalidValue):
        await store.create_handle("P/x", [url(1), email(1)])
    assert await store.get_handle("P/x") is None


async def test_delete_removes_handle_and_values(store: HandleStore) -> None:
    await store.create_handle("P/gone", [url(1), email(2)])
    await store.delete_handle("p/GONE")
    assert await store.get_handle("P/gone") is None
    assert await store.list_handles("P") == []
    await store.create_handle("P/gone", [email(5)])  # no leftover values
    assert await store.get_handle("P/gone") == (email(5),)


async def test_delete_missing_raises(store: HandleStore) -> None:
    with pytest.raises(HandleNotFound):
        await store.delete_handle("P/missing")


# -- value operations --------------------------------------------------------------------------
async def test_add_values(store: HandleStore) -> None:
    await store.create_handle("P/h", [url(1)])
    await store.add_values("p/H", [email(2), url(3)])
    assert await store.get_handle("P/h") == (url(1), email(2), url(3))


async def test_add_existing_index_raises_and_changes_nothing(store: HandleStore) -> None:
    await store.create_handle("P/h", [url(1)])
    with pytest.raises(ValueAlreadyExists):
        await store.add_values("P/h", [email(2), email(1)])
    assert await store.get_handle("P/h") == (url(1),)


async def test_add_with_overwrite_replaces_existing_index(store: HandleStore) -> None:
    await store.create_handle("P/h", [url(1), url(2)])
    await store.add_values("P/h", [email(1), email(3)], overwrite=True)
    assert await store.get_handle("P/h") == (email(1), url(2), email(3))


async def test_add_to_missing_handle_raises(store: HandleStore) -> None:
    with pytest.raises(HandleNotFound):
        await store.add_values("P/missing", [url(1)])
    assert await store.get_handle("P/missing") is None


async def test_modify_values(store: HandleStore) -> None:
    await store.create_handle("P/h", [url(1), url(2), url(3)])
    await store.modify_values("P/h", [email(1), url(3, "https://new.example/")])
    assert await store.get_handle("P/h") == (email(1), url(2), url(3, "https://new.example/"))


async def test_modify_missing_index_raises_and_changes_nothing(store: HandleStore) -> None:
    await store.create_handle("P/h", [url(1), url(2)])
    with pytest.raises(ValuesNotFound):
        await store.modify_values("P/h", [email(1), email(9)])
    assert await store.get_handle("P/h") == (url(1), url(2))


async def test_modify_missing_handle_raises(store: HandleStore) -> None:
    with pytest.raises(HandleNotFound):
        await store.modify_values("P/missing", [url(1)])


async def test_remove_values(store: HandleStore) -> None:
    await store.create_handle("P/h", [url(1), url(2), url(3)])
    await store.remove_values("P/h", [1, 3])
    assert await store.get_handle("P/h") == (url(2),)
    await store.remove_values("P/h", [2])
    assert await store.get_handle("P/h") == ()


async def test_remove_missing_index_raises_and_changes_nothing(store: HandleStore) -> None:
    await store.create_handle("P/h", [url(1), url(2)])
    with pytest.raises(ValuesNotFound):
        await store.remove_values("P/h", [1, 4])
    assert await store.get_handle("P/h") == (url(1), url(2))


async def test_remove_from_missing_handle_raises(store: HandleStore) -> None:
    with pytest.raises(HandleNotFound):
        await store.remove_values("P/missing", [1])


# -- case ------------------------------------------------------------------------------------
async def test_lookup_is_case_insensitive_and_keeps_display_case(store: HandleStore) -> None:
    await store.create_handle("Prefix.Sub/MixedCase", [url(1)])
    assert await store.get_handle("PREFIX.SUB/mixedcase") == (url(1),)
    assert await store.list_handles("prefix.sub") == ["Prefix.Sub/MixedCase"]


async def test_only_ascii_letters_are_case_folded(store: HandleStore) -> None:
    await store.create_handle("P/ärger", [url(1)])
    assert await store.get_handle("p/äRGER") == (url(1),)
    assert await store.get_handle("P/ÄRGER") is None


# -- listings --------------------------------------------------------------------------------
async def test_list_handles_only_that_prefix_sorted_by_key(store: HandleStore) -> None:
    for handle in ["P/c", "P/B", "P/a", "P/a/deeper", "P.1/x", "PX/y", "P", "0.NA/P", "O/z"]:
        await store.create_handle(handle, [url(1)])
    expected = ["P/a", "P/a/deeper", "P/B", "P/c"]  # key order: P/A, P/A/DEEPER, P/B, P/C
    assert await store.list_handles("P") == expected
    assert await store.list_handles("p") == expected
    assert await store.list_handles("P.1") == ["P.1/x"]
    assert await store.list_handles("Q") == []
    assert await store.list_handles("P/a") == []


async def test_list_derived_prefixes(store: HandleStore) -> None:
    for handle in ["0.NA/P", "0.NA/P.2", "0.NA/p.1", "0.NA/P.1.7", "0.NA/PX", "0.NA/Q.1", "P.3/x"]:
        await store.create_handle(handle, [url(1)])
    assert await store.list_derived_prefixes("P") == ["0.NA/p.1", "0.NA/P.1.7", "0.NA/P.2"]
    assert await store.list_derived_prefixes("p.1") == ["0.NA/P.1.7"]
    assert await store.list_derived_prefixes("X") == []


# -- homed prefixes ----------------------------------------------------------------------------
async def test_home_unhome_is_homed(store: HandleStore) -> None:
    assert await store.homed_prefixes() == []
    assert not await store.is_homed("P")
    await store.home_prefix("Pb")
    await store.home_prefix("pa")
    await store.home_prefix("PB")  # idempotent, first display string kept
    assert await store.homed_prefixes() == ["pa", "Pb"]
    assert await store.is_homed("pB")
    await store.unhome_prefix("PA")
    assert not await store.is_homed("pa")
    assert await store.homed_prefixes() == ["Pb"]


async def test_unhome_not_homed_raises(store: HandleStore) -> None:
    await store.home_prefix("P")
    with pytest.raises(HandleNotFound):
        await store.unhome_prefix("Q")
    assert await store.homed_prefixes() == ["P"]


async def test_homing_is_independent_of_handles(store: HandleStore) -> None:
    await store.create_handle("0.NA/P", [url(1)])
    assert not await store.is_homed("P")
    await store.home_prefix("P")
    await store.delete_handle("0.NA/P")
    assert await store.is_homed("P")


# -- exact values ------------------------------------------------------------------------------
ODD_VALUES = (
    HandleValue(0, "HS_ADMIN", bytes(range(256))),
    HandleValue(7, "X.UNKNOWN/Type ☃", b"\x00\xff" * 1000, ttl=0, timestamp=1_700_000_000),
    HandleValue(
        0xFFFFFFFF,
        "",
        b"",
        ttl=0xFFFFFFFF,
        ttl_type=TTLType.ABSOLUTE,
        timestamp=0xFFFFFFFF,
        permissions=0,
        references=(Reference("0.NA/P", 300), Reference("P/ref ☃", 0xFFFFFFFF)),
    ),
)


async def test_values_keep_exact_bytes(store: HandleStore) -> None:
    await store.create_handle("P/odd", ODD_VALUES)
    got = await store.get_handle("P/odd")
    assert got == ODD_VALUES
    assert got is not None
    assert [v.encode() for v in got] == [v.encode() for v in ODD_VALUES]


_counter = itertools.count()
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
_values = st.builds(
    HandleValue,
    index=st.integers(0, 0xFFFFFFFF),
    type=_text,
    data=st.binary(max_size=64),
    ttl=st.integers(0, 0xFFFFFFFF),
    ttl_type=st.integers(0, 0xFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    permissions=st.integers(0, 0xFF),
    references=st.lists(st.builds(Reference, _text, st.integers(0, 0xFFFFFFFF)), max_size=3).map(
        tuple
    ),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(suffix=_text, values=st.lists(_values, max_size=5, unique_by=lambda v: v.index))
def test_values_round_trip(
    runner: asyncio.Runner, store: HandleStore, suffix: str, values: list[HandleValue]
) -> None:
    handle = f"RT.{next(_counter)}/{suffix}"
    runner.run(store.create_handle(handle, values))
    got = runner.run(store.get_handle(handle))
    assert got == tuple(sorted(values, key=lambda v: v.index))
    assert runner.run(store.list_handles(handle.split("/")[0])) == [handle]


# -- lifecycle ---------------------------------------------------------------------------------
async def test_reopen_after_close_keeps_everything(
    store: HandleStore, open_store: StoreOpener
) -> None:
    await store.create_handle("P/Kept", ODD_VALUES)
    await store.create_handle("0.NA/P.1", [url(1)])
    await store.home_prefix("P")
    await store.close()
    reopened = await open_store()
    try:
        assert await reopened.get_handle("p/kept") == ODD_VALUES
        assert await reopened.list_handles("P") == ["P/Kept"]
        assert await reopened.list_derived_prefixes("P") == ["0.NA/P.1"]
        assert await reopened.homed_prefixes() == ["P"]
    finally:
        await reopened.close()


async def test_calls_after_close_raise_store_error(store: HandleStore) -> None:
    await store.close()
    with pytest.raises(StoreError):
        await store.get_handle("P/x")
    with pytest.raises(StoreError):
        await store.create_handle("P/x", [url(1)])
    with pytest.raises(StoreError):
        await store.list_handles("P")
    with pytest.raises(StoreError):
        await store.is_homed("P")
    await store.close()  # closing again is harmless


# -- concurrency -------------------------------------------------------------------------------
async def test_concurrent_reads_and_writes(store: HandleStore) -> None:
    tasks, per_task = 40, 5

    async def worker(n: int) -> None:
        for i in range(per_task):
            handle = f"C/{n}-{i}"
            await store.create_handle(handle, [url(1)])
            await store.add_values(handle, [email(2)])
            assert await store.get_handle(handle) == (url(1), email(2))
            assert handle in await store.list_handles("C")

    await asyncio.wait_for(asyncio.gather(*(worker(n) for n in range(tasks))), timeout=90)
    listed = await store.list_handles("C")
    assert sorted(listed) == sorted(f"C/{n}-{i}" for n in range(tasks) for i in range(per_task))
    reads = await asyncio.gather(*(store.get_handle(h) for h in listed))
    assert all(values == (url(1), email(2)) for values in reads)


async def test_concurrent_writes_to_one_handle_are_serialized(store: HandleStore) -> None:
    await store.create_handle("C/shared", [])
    await asyncio.gather(*(store.add_values("C/shared", [url(i)]) for i in range(1, 61)))
    assert await store.get_handle("C/shared") == tuple(url(i) for i in range(1, 61))
    results = await asyncio.gather(
        *(store.create_handle("C/race", [email(n)]) for n in range(20)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert all(r is None or isinstance(r, HandleAlreadyExists) for r in results)
    winner = results.index(None)
    assert await store.get_handle("C/race") == (email(winner),)


# -- bulk registration, scan, count ----------------------------------------------------------
def record(*values: HandleValue) -> bytes:
    return encode_record(values)


async def test_create_records_reports_created_and_leaves_existing_unchanged(
    store: HandleStore,
) -> None:
    await store.create_handle("P/a", [url(1)])
    batch = [("P/b", record(url(2))), ("p/A", record(email(9))), ("P/C", record(email(3)))]
    assert await store.create_records(batch) == [True, False, True]
    assert await store.get_handle("P/a") == (url(1),)  # not replaced
    assert await store.get_handle("p/b") == (url(2),)
    assert await store.get_handle("P/c") == (email(3),)
    assert await store.list_handles("P") == ["P/a", "P/b", "P/C"]  # display strings kept
    assert await store.create_records(batch) == [False, False, False]  # running it again
    assert await store.count_handles() == 3


async def test_create_records_keeps_exact_bytes_and_odd_handles(store: HandleStore) -> None:
    batch = [("P/odd", record(*ODD_VALUES)), ("P/ärger ☃", record()), ("P/nul\x00x", record())]
    assert await store.create_records(batch) == [True, True, True]
    assert await store.get_handle("p/ODD") == ODD_VALUES
    assert await store.get_handle("p/äRGER ☃") == ()
    scanned = await store.scan()
    assert [h for h, _ in scanned] == ["P/nul\x00x", "P/odd", "P/ärger ☃"]
    assert [encode_record(values) for _, values in scanned] == [r for _, r in sorted(batch)]


async def test_create_records_with_a_handle_twice_writes_nothing(store: HandleStore) -> None:
    await store.create_handle("P/old", [url(1)])
    batch = [("P/x", record(url(1))), ("P/old", record(url(2))), ("p/X", record(url(3)))]
    with pytest.raises(InvalidValue):
        await store.create_records(batch)
    assert await store.get_handle("P/x") is None
    assert await store.get_handle("P/old") == (url(1),)
    assert await store.count_handles() == 1


async def test_create_records_empty_batch(store: HandleStore) -> None:
    assert await store.create_records([]) == []
    assert await store.count_handles() == 0


async def test_create_records_large_batch_mixed(store: HandleStore) -> None:
    for n in range(0, 1200, 7):  # every 7th exists already, with other values
        await store.create_handle(f"B/{n:04d}", [email(1)])
    batch = [(f"B/{n:04d}", record(url(1, str(n)))) for n in reversed(range(1200))]
    created = await store.create_records(batch)
    assert created == [int(h[2:]) % 7 != 0 for h, _ in batch]
    assert await store.count_handles() == 1200
    assert await store.get_handle("B/0007") == (email(1),)
    assert await store.get_handle("B/1199") == (url(1, "1199"),)


async def test_scan_in_key_order_with_paging(store: HandleStore) -> None:
    handles = ["P/b", "0.NA/P", "P/A", "P/a/x", "Q/1", "P/ä", "P/_", "P/Z", "P.1/x", "P"]
    for n, handle in enumerate(handles):
        await store.create_handle(handle, [url(1, str(n))])
    in_key_order = sorted(handles, key=lambda h: handle_key(h).encode())
    everything = await store.scan()
    assert [h for h, _ in everything] == in_key_order
    assert all(values == (url(1, str(handles.index(h))),) for h, values in everything)
    pages: list[str] = []
    after: str | None = None
    while page := await store.scan(after, limit=3):
        assert len(page) <= 3
        pages += [h for h, _ in page]
        after = page[-1][0]
    assert pages == in_key_order
    assert [h for h, _ in await store.scan("p/A", limit=2)] == ["P/a/x", "P/b"]  # any case
    assert [h for h, _ in await store.scan("P/a0")] == ["P/b", "P/Z", "P/_", "P/ä", "Q/1"]
    assert await store.scan("Q/1") == []
    assert await store.scan(limit=0) == []


async def test_count_handles(store: HandleStore) -> None:
    assert await store.count_handles() == 0
    await store.create_handle("P/1", [])
    await store.create_records([("P/2", record()), ("P/3", record(url(1)))])
    await store.home_prefix("P")  # prefixes are not handles
    assert await store.count_handles() == 3
    await store.delete_handle("P/2")
    assert await store.count_handles() == 2
