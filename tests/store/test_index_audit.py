"""The write index and the audit trail, on every backend (see conftest.BACKENDS).

Index entries and actor/origin come from the write context (:mod:`idnode.store.writectx`) and
are written in the transaction of the record change: replaced on every write that names them,
kept by writes that do not, removed with the handle; a UNIQUE key belongs to one handle, and
a write that would give it a second one changes nothing. The audit trail is the transaction
log with the actor and origin of each write. Also: migrating a version-2 database (data in
it) to this schema on both backends, and the PostgreSQL query plans of the new queries.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from idnode.errors import HandleNotFound, InvalidValue, UniqueValueTaken, ValuesNotFound
from idnode.protocol.values import HandleValue, encode_record
from idnode.store import postgres as pg_backend
from idnode.store.base import HandleStore, handle_key
from idnode.store.migrations import load_migrations, migrate, migrate_postgres
from idnode.store.pgdriver import connect
from idnode.store.postgres import PostgresStore
from idnode.store.sqlite import SQLiteStore
from idnode.store.txnlog import Action, Change
from idnode.store.writectx import IndexEntry, IndexKind, WriteContext, write_context


def url(index: int, data: str = "https://example.org/") -> HandleValue:
    return HandleValue(index, "URL", data.encode())


def ref(target: str, attribute: str = "partOf") -> IndexEntry:
    return IndexEntry(IndexKind.REFERENCE, handle_key(target), attribute)


def uniq(key: str) -> IndexEntry:
    return IndexEntry(IndexKind.UNIQUE, key)


def ctx(
    index: dict[str, set[IndexEntry]] | None = None,
    actor: str | None = "300:0.NA/P",
    origin: str | None = "127.0.0.1:5000",
) -> WriteContext:
    frozen = {handle: frozenset(entries) for handle, entries in (index or {}).items()}
    return WriteContext(actor=actor, origin=origin, index=frozen)


async def state(store: HandleStore) -> tuple[object, ...]:
    """Everything a failed write must leave alone: records, log, and the index as read back."""
    handles = await store.scan()
    refs = {h: await store.references(h) for h, _ in handles}
    return handles, await store.txn_log(0), refs


# -- actor and origin ------------------------------------------------------------------------------
async def test_every_write_records_actor_and_origin(store: HandleStore) -> None:
    with write_context(ctx(actor="300:0.NA/P", origin="10.0.0.7:41000")):
        await store.home_prefix("P")
        await store.create_handle("P/a", [url(1)])
        await store.add_values("P/a", [url(2)])
        await store.modify_values("P/a", [url(2, "https://other/")])
        await store.remove_values("P/a", [2])
        await store.create_records([("P/b", encode_record([url(1)]))])
        await store.delete_handle("P/b")
        await store.unhome_prefix("P")
    await store.create_handle("P/c", [])  # no context: unknown
    trail = await store.audit()
    assert [(e.handle, e.action) for e in trail] == [
        ("0.NA/P", Action.HOME_PREFIX),
        ("P/a", Action.CREATE_HANDLE),
        ("P/a", Action.UPDATE_HANDLE),
        ("P/a", Action.UPDATE_HANDLE),
        ("P/a", Action.UPDATE_HANDLE),
        ("P/b", Action.CREATE_HANDLE),
        ("P/b", Action.DELETE_HANDLE),
        ("0.NA/P", Action.UNHOME_PREFIX),
        ("P/c", Action.CREATE_HANDLE),
    ]
    assert {(e.actor, e.origin) for e in trail[:-1]} == {("300:0.NA/P", "10.0.0.7:41000")}
    assert (trail[-1].actor, trail[-1].origin) == (None, None)
    log = await store.txn_log(0)
    assert [(t.txn_id, t.handle, t.action, t.date_ms) for t in log] == [
        (e.txn_id, e.handle, e.action, e.date_ms) for e in trail
    ]


async def test_audit_of_one_handle_pages_and_matches_case_insensitively(
    store: HandleStore,
) -> None:
    with write_context(ctx(actor="a")):
        await store.create_handle("P/Mixed", [url(1)])
        await store.create_handle("P/other", [url(1)])
        for n in range(2, 6):
            await store.add_values("P/MIXED", [url(n)])
    mine = await store.audit("p/mixed")
    assert [e.handle for e in mine] == ["P/Mixed"] + ["P/MIXED"] * 4
    first = await store.audit("P/mixed", limit=2)
    rest = await store.audit("P/mixed", after_txn=first[-1].txn_id, limit=10)
    assert first + rest == mine
    assert await store.audit("P/none") == []
    assert await store.audit(limit=0) == []
    assert await store.audit(after_txn=mine[2].txn_id) == mine[3:]


async def test_failed_writes_leave_no_audit_entry(store: HandleStore) -> None:
    await store.create_handle("P/a", [url(1)])
    with write_context(ctx(actor="b")):
        with pytest.raises(ValuesNotFound):
            await store.modify_values("P/a", [url(9)])
        with pytest.raises(HandleNotFound):
            await store.delete_handle("P/none")
    assert [e.actor for e in await store.audit()] == [None]


# -- index entries ---------------------------------------------------------------------------------
async def test_entries_are_written_read_replaced_and_removed(store: HandleStore) -> None:
    await store.create_handle("P/lot", [url(1)])
    with write_context(ctx({"P/ingot": {ref("p/lot", "polysiliconLot"), uniq("T ingotId IG1")}})):
        await store.create_handle("P/ingot", [url(1)])
    assert await store.referrers("P/LOT") == [("P/ingot", "polysiliconLot")]
    assert await store.references("p/INGOT") == [("P/LOT", "polysiliconLot")]
    assert await store.lookup_unique("T ingotId IG1") == "P/ingot"
    assert await store.lookup_unique("T ingotId ig1") is None  # UNIQUE keys are exact

    # A write naming the handle replaces its entries, one that does not keeps them.
    await store.create_handle("P/lot2", [url(1)])
    with write_context(ctx({"P/ingot": {ref("P/lot2", "polysiliconLot"), uniq("T ingotId IG2")}})):
        await store.add_values("P/ingot", [url(2)])
    assert await store.referrers("P/lot") == []
    assert await store.referrers("P/lot2") == [("P/ingot", "polysiliconLot")]
    assert await store.lookup_unique("T ingotId IG1") is None
    await store.modify_values("P/ingot", [url(2, "https://x/")])
    with write_context(ctx({"P/other": {ref("P/lot")}})):  # entries of another handle only
        await store.remove_values("P/ingot", [2])
    assert await store.references("P/ingot") == [("P/LOT2", "polysiliconLot")]

    # Emptied by an empty set; deleting the handle removes what it has.
    with write_context(ctx({"P/ingot": set()})):
        await store.create_handle("P/ingot", [url(1)], overwrite=True)
    assert await store.references("P/ingot") == []
    with write_context(ctx({"P/ingot": {ref("P/lot2"), uniq("T ingotId IG2")}})):
        await store.modify_values("P/ingot", [url(1, "https://y/")])
    await store.delete_handle("P/INGOT")
    assert await store.referrers("P/lot2") == []
    assert await store.lookup_unique("T ingotId IG2") is None
    with write_context(ctx({"P/ingot": {ref("P/lot")}})):
        await store.create_handle("P/ingot", [])  # the same handle again starts afresh
    assert await store.references("P/ingot") == [("P/LOT", "partOf")]


async def test_a_failed_write_leaves_the_entries(store: HandleStore) -> None:
    with write_context(ctx({"P/a": {ref("P/x"), uniq("K1")}})):
        await store.create_handle("P/a", [url(1)])
    with write_context(ctx({"P/a": {ref("P/y")}})), pytest.raises(ValuesNotFound):
        await store.remove_values("P/a", [7])
    assert await store.references("P/a") == [("P/X", "partOf")]
    assert await store.lookup_unique("K1") == "P/a"


async def test_one_record_may_reference_a_target_through_several_attributes(
    store: HandleStore,
) -> None:
    with write_context(ctx({"P/m": {ref("P/t", "cellLot"), ref("P/t", "spareCellLot")}})):
        await store.create_handle("P/m", [])
    assert await store.referrers("P/t") == [("P/m", "cellLot"), ("P/m", "spareCellLot")]


async def test_referrers_page_by_referring_handle(store: HandleStore) -> None:
    index = {f"P/r{n:02d}": {ref("P/target", "a"), ref("P/target", "b")} for n in range(7)}
    index["P/elsewhere"] = {ref("P/other")}
    records = [(handle, encode_record([])) for handle in index]
    with write_context(ctx(index)):
        assert await store.create_records(records) == [True] * 8
    first = await store.referrers("P/target", limit=3)
    assert first == [(f"P/r{n:02d}", d) for n in range(3) for d in "ab"]
    second = await store.referrers("P/target", limit=3, after=first[-1][0].upper())
    third = await store.referrers("P/target", limit=3, after=second[-1][0])
    assert [h for h, _ in second + third] == [f"P/r{n:02d}" for n in range(3, 7) for _ in "ab"]
    assert await store.referrers("P/target", limit=0) == []
    assert await store.referrers("P/nobody") == []


async def test_bulk_entries_only_for_created_handles(store: HandleStore) -> None:
    with write_context(ctx({"P/old": {ref("P/x")}})):
        await store.create_handle("P/old", [])
    index = {"P/old": {ref("P/y")}, "P/new": {ref("P/y"), uniq("N1")}}
    batch = [("P/old", encode_record([])), ("P/new", encode_record([]))]
    with write_context(ctx(index)):
        assert await store.create_records(batch) == [False, True]
    assert await store.references("P/old") == [("P/X", "partOf")]  # left as it was
    assert await store.referrers("P/y") == [("P/new", "partOf")]
    assert await store.lookup_unique("N1") == "P/new"


# -- uniqueness ------------------------------------------------------------------------------------
async def test_a_unique_key_taken_refuses_the_write_and_changes_nothing(
    store: HandleStore,
) -> None:
    with write_context(ctx({"P/a": {uniq("T serial 1"), ref("P/x")}})):
        await store.create_handle("P/a", [url(1)])
    with write_context(ctx({"P/b": {uniq("T serial 2")}})):
        await store.create_handle("P/b", [url(1)])
    before = await state(store)
    attempts = [
        lambda: store.create_handle("P/c", [url(1)]),
        lambda: store.create_handle("P/b", [url(9)], overwrite=True),
        lambda: store.add_values("P/b", [url(2)]),
        lambda: store.modify_values("P/b", [url(1, "https://z/")]),
        lambda: store.remove_values("P/b", [1]),
    ]
    for attempt in attempts:
        clash = ctx({"P/c": {uniq("T serial 1")}, "P/b": {uniq("T serial 1")}})
        with write_context(clash), pytest.raises(UniqueValueTaken) as info:
            await attempt()
        assert (info.value.key, info.value.holder) == ("T serial 1", "P/a")
        assert isinstance(info.value.response_code, int) and info.value.response_code == 201
    assert await state(store) == before
    assert await store.lookup_unique("T serial 2") == "P/b"


async def test_a_handle_keeps_or_hands_over_its_unique_key(store: HandleStore) -> None:
    with write_context(ctx({"P/a": {uniq("K")}})):
        await store.create_handle("P/a", [url(1)])
        await store.add_values("P/a", [url(2)])  # re-claiming its own key is no conflict
    with write_context(ctx({"P/a": {uniq("K2")}})):
        await store.modify_values("P/a", [url(2, "https://k2/")])
    with write_context(ctx({"P/b": {uniq("K")}})):
        await store.create_handle("P/b", [])  # released by P/a: free
    assert (await store.lookup_unique("K"), await store.lookup_unique("K2")) == ("P/b", "P/a")


async def test_a_unique_conflict_in_a_bulk_batch_changes_nothing(store: HandleStore) -> None:
    with write_context(ctx({"P/held": {uniq("S 7")}})):
        await store.create_handle("P/held", [])
    before = await state(store)
    index = {f"P/n{n}": {uniq(f"S {n}"), ref("P/lot")} for n in range(10)}
    batch = [(handle, encode_record([url(1)])) for handle in index]
    with write_context(ctx(index)), pytest.raises(UniqueValueTaken) as info:
        await store.create_records(batch)
    assert (info.value.key, info.value.holder) == ("S 7", "P/held")
    assert await state(store) == before
    assert await store.referrers("P/lot") == []

    # Two handles of one batch claiming one key: the batch fails the same way.
    clash = {"P/x1": {uniq("S dup")}, "P/x2": {uniq("S dup")}}
    batch = [("P/x1", encode_record([])), ("P/x2", encode_record([]))]
    with write_context(ctx(clash)), pytest.raises(UniqueValueTaken) as info:
        await store.create_records(batch)
    assert info.value.key == "S dup" and info.value.holder in ("P/x1", "P/x2")
    assert await state(store) == before


async def test_malformed_contexts_are_refused(store: HandleStore) -> None:
    bad = [
        WriteContext(index={"P/a": frozenset({uniq("K"), IndexEntry(IndexKind.UNIQUE, "K", "x")})}),
        WriteContext(index={"P/a": frozenset({uniq("")})}),
        WriteContext(index={"P/a": frozenset(), "p/A": frozenset()}),
    ]
    for context in bad:  # the third names neither spelling exactly: it is ambiguous
        with write_context(context), pytest.raises(InvalidValue):
            await store.create_handle("P/A", [])
    assert await store.get_handle("P/a") is None
    with write_context(bad[2]):  # the exact spelling wins
        await store.create_handle("P/a", [])


async def test_concurrent_writers_claiming_one_key_one_wins(store: HandleStore) -> None:
    async def create(n: int) -> str:
        with write_context(ctx({f"P/c{n}": {uniq("shared"), ref("P/lot")}})):
            try:
                await store.create_handle(f"P/c{n}", [url(1)])
            except UniqueValueTaken as exc:
                return f"taken by {exc.holder}"
            return "created"

    outcomes = await asyncio.gather(*(create(n) for n in range(12)))
    winner = await store.lookup_unique("shared")
    assert outcomes.count("created") == 1 and winner is not None
    assert set(outcomes) == {"created", f"taken by {winner}"}
    assert [h for h, _ in await store.scan()] == [winner]
    assert await store.referrers("P/lot") == [(winner, "partOf")]


async def test_concurrent_batches_with_overlapping_keys_do_not_deadlock(
    store: HandleStore,
) -> None:
    """Two batches claim the same 40 keys, listed in opposite orders, plus each one key of its
    own: one batch wins whole, the other fails whole with UniqueValueTaken (not a deadlock)."""

    async def batch(name: str, keys: list[int]) -> str:
        index = {f"P/{name}{k:02d}": {uniq(f"K{k:02d}")} for k in keys}
        index[f"P/{name}-own"] = {uniq(f"own-{name}")}
        records = [(handle, encode_record([])) for handle in index]
        with write_context(ctx(index)):
            try:
                await store.create_records(records)
            except UniqueValueTaken:
                return "refused"
            return "created"

    for _round in range(3):
        outcomes = await asyncio.gather(
            batch("a", list(range(40))), batch("b", list(range(39, -1, -1)))
        )
        assert sorted(outcomes) == ["created", "refused"]
        winner = "a" if outcomes[0] == "created" else "b"
        assert await store.count_handles() == 41
        assert await store.lookup_unique(f"own-{winner}") == f"P/{winner}-own"
        for handle, _ in await store.scan():
            await store.delete_handle(handle)


async def test_concurrent_writers_with_their_own_entries(store: HandleStore) -> None:
    async def writer(n: int) -> None:
        handle = f"P/w{n}"
        with write_context(ctx({handle: {ref("P/hub", "v1"), uniq(f"W {n}")}}, actor=f"a{n}")):
            await store.create_handle(handle, [url(1)])
        with write_context(ctx({handle: {ref("P/hub", "v2"), uniq(f"W {n} b")}}, actor=f"a{n}")):
            await store.add_values(handle, [url(2)])

    await asyncio.gather(*(writer(n) for n in range(10)))
    assert await store.referrers("P/hub") == sorted((f"P/w{n}", "v2") for n in range(10))
    for n in range(10):
        assert await store.lookup_unique(f"W {n}") is None
        assert await store.lookup_unique(f"W {n} b") == f"P/w{n}"
        assert [e.actor for e in await store.audit(f"P/w{n}")] == [f"a{n}", f"a{n}"]


# -- replication and rebuilding --------------------------------------------------------------------
async def test_replicated_changes_drop_entries_and_record_the_actor(store: HandleStore) -> None:
    with write_context(ctx({"P/a": {ref("P/x"), uniq("U a")}, "P/b": {ref("P/x")}})):
        await store.create_records([("P/a", encode_record([])), ("P/b", encode_record([]))])
    with write_context(ctx({"P/a": {uniq("U ignored")}}, actor="mirror", origin="primary:2641")):
        await store.apply_replicated(
            [
                Change(Action.UPDATE_HANDLE, "P/a", encode_record([url(1)])),
                Change(Action.HOME_PREFIX, "0.NA/P"),
            ],
            source="1:127.0.0.1:2641",
            txn_id=5,
            date_ms=1,
        )
    assert await store.referrers("P/x") == [("P/b", "partOf")]
    assert await store.lookup_unique("U a") is None
    assert await store.lookup_unique("U ignored") is None
    await store.apply_replicated(
        [Change(Action.DELETE_HANDLE, "P/b")], source=None, txn_id=6, date_ms=2
    )
    assert await store.referrers("P/x") == []
    trail = await store.audit()
    assert [(e.handle, e.actor, e.origin) for e in trail[-3:]] == [
        ("P/a", "mirror", "primary:2641"),
        ("0.NA/P", "mirror", "primary:2641"),
        ("P/b", None, None),
    ]


async def test_reindex_replaces_entries_of_existing_handles(store: HandleStore) -> None:
    await store.create_records([(f"P/{n}", encode_record([])) for n in "abc"])
    log = await store.txn_log(0)
    index = {"P/a": {ref("P/lot"), uniq("R a")}, "p/B": {ref("P/lot")}, "P/gone": {ref("P/lot")}}
    assert await store.reindex({h: frozenset(e) for h, e in index.items()}) == 2
    assert await store.referrers("P/lot") == [("P/a", "partOf"), ("P/b", "partOf")]
    assert await store.txn_log(0) == log  # not a write of a record: nothing logged
    before = await state(store)
    clash = {"P/c": frozenset({uniq("R a")}), "P/b": frozenset()}
    with pytest.raises(UniqueValueTaken):
        await store.reindex(clash)
    assert await state(store) == before
    assert await store.reindex({"P/a": frozenset()}) == 1
    assert await store.lookup_unique("R a") is None


# -- migrating an existing version-2 database ------------------------------------------------------
_V2_ROWS = [(1, "P/Lower", 1, 1000), (2, "0.NA/P", 4, 1001)]


async def test_sqlite_version_2_database_migrates_with_its_log(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        assert [m.version for m in migrate(conn, load_migrations()[:2])] == [1, 2]
        conn.execute(
            "INSERT INTO handles (handle_key, handle, record) VALUES (?, ?, ?)",
            ("P/LOWER", "P/Lower", encode_record([url(1)])),
        )
        conn.executemany("INSERT INTO txn_log VALUES (?, ?, ?, ?)", _V2_ROWS)
        conn.execute("UPDATE txn_counter SET last_txn_id = 2")
    store = await SQLiteStore.open(path)
    try:
        await check_migrated(store)
    finally:
        await store.close()


async def test_postgres_version_2_database_migrates_with_its_log(pg_fresh_url: str) -> None:
    conn = await connect(pg_fresh_url)
    try:
        applied = await migrate_postgres(conn, load_migrations()[:2])
        assert [m.version for m in applied] == [1, 2]
        await conn.execute(
            "INSERT INTO handles (handle_key, handle, record) VALUES ($1, $2, $3)",
            "P/LOWER",
            "P/Lower",
            encode_record([url(1)]),
        )
        await conn.executemany("INSERT INTO txn_log VALUES ($1, $2, $3, $4)", _V2_ROWS)
        await conn.execute("UPDATE txn_counter SET last_txn_id = 2")
    finally:
        await conn.close()
    store = await PostgresStore.open(pg_fresh_url)
    try:
        await check_migrated(store)
    finally:
        await store.close()


async def check_migrated(store: HandleStore) -> None:
    old = await store.audit()
    assert [(e.txn_id, e.handle, e.action, e.actor, e.origin) for e in old] == [
        (1, "P/Lower", Action.CREATE_HANDLE, None, None),
        (2, "0.NA/P", Action.HOME_PREFIX, None, None),
    ]
    assert [e.txn_id for e in await store.audit("p/lower")] == [1]  # handle_key filled in
    assert [e.txn_id for e in await store.audit("0.na/p")] == [2]
    with write_context(ctx({"P/Lower": {ref("P/t"), uniq("U")}}, actor="me")):
        await store.add_values("P/lower", [url(2)])
    assert await store.referrers("P/t") == [("P/Lower", "partOf")]
    assert [(e.txn_id, e.actor) for e in await store.audit("P/LOWER")] == [(1, None), (3, "me")]


# -- PostgreSQL query plans ------------------------------------------------------------------------
_FILL = """
INSERT INTO handle_index (kind, entry_key, handle_key, detail)
SELECT 1, 'P/T' || (n % 200), 'P/H' || n, 'a' FROM generate_series(1, 20000) AS n;
INSERT INTO handle_index (kind, entry_key, handle_key, detail)
SELECT 2, 'K ' || n, 'P/H' || n, '' FROM generate_series(1, 20000) AS n;
INSERT INTO txn_log (txn_id, handle, action, date_ms, handle_key)
SELECT n, 'P/H' || (n % 500), 1, n, 'P/H' || (n % 500) FROM generate_series(1, 20000) AS n;
"""


@pytest.mark.parametrize(
    ("sql", "params", "indexes"),
    [
        (pg_backend._REFERRERS, ("P/X", "", 10), ("handle_index_pkey",)),
        (pg_backend._REFERENCES, ("P/X",), ("handle_index_by_handle",)),
        (pg_backend._UNIQUE_LOOKUP, ("K",), ("handle_index_unique", "handle_index_pkey")),
        (pg_backend._AUDIT_HANDLE, (0, 10, "P/X"), ("txn_log_by_handle",)),
        (pg_backend._INDEX_DELETE, (["P/X"],), ("handle_index_by_handle",)),
    ],
)
async def test_index_and_audit_queries_use_an_index(
    pg_url: str, sql: str, params: tuple[object, ...], indexes: tuple[str, ...]
) -> None:
    conn = await connect(pg_url)
    try:
        # Enough rows, analysed, that the planner's choice means something.
        await conn.execute(_FILL)
        await conn.execute("ANALYZE handle_index")
        await conn.execute("ANALYZE txn_log")
        await conn.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in await conn.fetch("EXPLAIN " + sql, *params))
    finally:
        await conn.close()
    assert any(index in plan for index in indexes), plan
    assert "Seq Scan" not in plan, plan
