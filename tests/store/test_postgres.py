"""PostgreSQL-specific behaviour of PostgresStore and the shared migrations on PostgreSQL:
the translated schema, advisory-locked migrations, collation and query plans, reconnection
after a server restart, races between separate stores, the COPY path of bulk registration,
error wrapping, and the ``idnode db`` commands on PostgreSQL.

Every test runs against the session's throwaway server (``pg_server`` in conftest).
"""

from __future__ import annotations

import asyncio
import random
import string
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from idnode.cli import main
from idnode.errors import HandleAlreadyExists, StoreError, ValueAlreadyExists
from idnode.protocol.values import HandleValue, encode_record
from idnode.store import postgres as backend
from idnode.store.base import handle_key
from idnode.store.migrations import (
    POSTGRES_LOCK_KEY,
    Migration,
    load_migrations,
    migrate_postgres,
    postgres_schema_version,
)
from idnode.store.postgres import PostgresStore, connect, from_db, to_db
from idnode.store.status import database_status, migrate_database
from tests.pgserver import PostgresServer
from tests.ports import free_ports


def url(index: int, data: str = "https://example.org/") -> HandleValue:
    return HandleValue(index, "URL", data.encode())


@asynccontextmanager
async def raw(database_url: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """A direct asyncpg connection, closed at the end (also if the server dropped it)."""
    conn = await connect(database_url)
    try:
        yield conn
    finally:
        await conn.close(timeout=5)


@pytest.fixture
def pg_store(runner: asyncio.Runner, pg_url: str) -> Iterator[PostgresStore]:
    store = runner.run(PostgresStore.open(pg_url))
    yield store
    runner.run(store.close())


async def wait_for(condition_sql: str, database_url: str, timeout: float = 10.0) -> None:
    """Poll until ``condition_sql`` (one boolean) is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    async with raw(database_url) as conn:
        while not await conn.fetchval(condition_sql):
            assert time.monotonic() < deadline, f"timed out waiting for: {condition_sql}"
            await asyncio.sleep(0.02)


# -- the shared migrations on PostgreSQL ---------------------------------------------------
async def test_packaged_migrations_apply_with_byte_order_keys(pg_fresh_url: str) -> None:
    applied = await migrate_database(pg_fresh_url)
    assert applied == list(load_migrations())
    assert await migrate_database(pg_fresh_url) == []
    async with raw(pg_fresh_url) as conn:
        assert await postgres_schema_version(conn) == applied[-1].version
        rows = await conn.fetch(
            "SELECT table_name, column_name, data_type, collation_name"
            " FROM information_schema.columns WHERE table_schema = 'public'"
        )
        # The server's default collation is linguistic (ICU), so "C" must come from the schema.
        assert (
            await conn.fetchval(
                "SELECT datlocprovider::text FROM pg_database WHERE datname = current_database()"
            )
            == "i"
        )
    columns = {(r[0], r[1]): (r[2], r[3]) for r in rows}
    keys = {column: info for column, info in columns.items() if column[1].endswith("_key")}
    assert keys and all(info == ("text", "C") for info in keys.values()), keys
    assert columns[("handles", "record")] == ("bytea", None)
    assert ("schema_migrations", "version") in columns


async def test_concurrent_migrators_apply_each_version_once(pg_fresh_url: str) -> None:
    # Slow migrations, so that the migrators overlap; without the lock two would CREATE TABLE a.
    migrations = [
        Migration(1, "0001_a", "CREATE TABLE a (x INTEGER);\nSELECT pg_sleep(0.2);"),
        Migration(2, "0002_b", "CREATE TABLE b (x INTEGER);\nSELECT pg_sleep(0.2);"),
    ]

    async def migrator() -> list[int]:
        async with raw(pg_fresh_url) as conn:
            return [m.version for m in await migrate_postgres(conn, migrations)]

    results = await asyncio.wait_for(asyncio.gather(*(migrator() for _ in range(4))), 30)
    assert sorted(v for result in results for v in result) == [1, 2]


async def test_migrations_wait_for_the_advisory_lock(pg_fresh_url: str) -> None:
    async with raw(pg_fresh_url) as holder, raw(pg_fresh_url) as conn:
        await holder.execute("SELECT pg_advisory_lock($1)", POSTGRES_LOCK_KEY)
        started = time.monotonic()
        with pytest.raises(StoreError, match="lock timeout"):
            await migrate_postgres(conn, timeout=0.3)
        assert 0.25 < time.monotonic() - started < 10
        assert await postgres_schema_version(conn) == 0
        await holder.execute("SELECT pg_advisory_unlock($1)", POSTGRES_LOCK_KEY)
        assert await migrate_postgres(conn) == list(load_migrations())


async def test_failing_migration_rolls_back_to_previous_version(pg_fresh_url: str) -> None:
    migrations = [
        Migration(1, "0001_a", "CREATE TABLE a (x INTEGER);"),
        Migration(2, "0002_b", "CREATE TABLE b (x INTEGER);\nINSERT INTO missing VALUES (1);"),
    ]
    async with raw(pg_fresh_url) as conn:
        with pytest.raises(StoreError, match="0002_b") as info:
            await migrate_postgres(conn, migrations)
        assert info.value.__cause__ is not None
        assert await postgres_schema_version(conn) == 1
        assert await conn.fetchval("SELECT to_regclass('a') IS NOT NULL")
        assert not await conn.fetchval("SELECT to_regclass('b') IS NOT NULL")


async def test_database_newer_than_code_is_refused(pg_fresh_url: str) -> None:
    await migrate_database(pg_fresh_url)
    async with raw(pg_fresh_url) as conn:
        await conn.execute("INSERT INTO schema_migrations VALUES (9999, '9999_future', 'x')")
    with pytest.raises(StoreError, match="newer"):
        await PostgresStore.open(pg_fresh_url)
    status = await database_status(pg_fresh_url)
    assert (status.version, status.pending) == (9999, ())
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["db", "status", "--db", pg_fresh_url]
    )
    assert result.exit_code == 0, result.output
    assert "newer than this idnode" in result.output


# -- keys: byte order, index use, characters PostgreSQL text cannot hold -------------------------
async def test_listings_are_in_byte_order_under_a_linguistic_default(
    pg_store: PostgresStore,
) -> None:
    names = ["P/Z", "P/ä", "P/a", "P/_", "P/~", "P/a-b", "P/ab", "P/A.B", "P/É", "P/1", "P/é"]
    for name in names:
        await pg_store.create_handle(name, [url(1)])
    expected = sorted(names, key=lambda h: handle_key(h).encode())
    assert await pg_store.list_handles("P") == expected
    assert [h for h, _ in await pg_store.scan()] == expected
    first = await pg_store.scan(limit=4)
    rest = await pg_store.scan(after=first[-1][0].lower(), limit=100)
    assert [h for h, _ in first + rest] == expected
    assert all(values == (url(1),) for _, values in first + rest)


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        (backend._GET, ("P/X",)),
        (backend._GET_FOR_UPDATE, ("P/X",)),
        (backend._HANDLES_IN_RANGE, ("P/", "P0")),
        (backend._SCAN, ("P/X", 10)),
        (backend._SET_RECORD, (b"", "P/X")),
        (backend._DELETE, ("P/X",)),
        (backend._HOMED, ()),
    ],
)
async def test_queries_use_the_primary_key_index(
    pg_url: str, sql: str, params: tuple[object, ...]
) -> None:
    async with raw(pg_url) as conn:
        # Tiny tables: leave the planner only index scans, so that a Sort shows the index
        # cannot give the order (the wrong collation) and a Seq Scan that it cannot be used.
        await conn.execute("SET enable_seqscan = off")
        await conn.execute("SET enable_bitmapscan = off")
        plan = "\n".join(row[0] for row in await conn.fetch("EXPLAIN " + sql, *params))
    assert "_pkey" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert "Sort" not in plan, plan


_chars = st.text(st.sampled_from("\x00\x01\x02/aZ\x7fé☃"), max_size=8)


@given(a=_chars, b=_chars)
def test_text_escape_round_trips_and_keeps_byte_order(a: str, b: str) -> None:
    assert "\x00" not in to_db(a)
    assert from_db(to_db(a)) == a
    assert (a.encode() < b.encode()) == (to_db(a).encode() < to_db(b).encode())


async def test_nul_and_soh_in_handles_and_types(pg_store: PostgresStore) -> None:
    names = ["P/a\x00b", "P/a\x01", "P/a", "P/a\x02", "P/\x00"]
    value = HandleValue(1, "X\x00\x01TYPE", b"\x00")
    for name in names:
        await pg_store.create_handle(name, [value])
    for name in names:
        assert await pg_store.get_handle(name) == (value,)
    expected = sorted(names, key=lambda h: h.encode())
    assert await pg_store.list_handles("P") == expected
    assert [h for h, _ in await pg_store.scan("P/\x00")] == expected[1:]
    await pg_store.home_prefix("Q\x00")
    assert await pg_store.homed_prefixes() == ["Q\x00"]
    assert await pg_store.is_homed("q\x00")


# -- restarts --------------------------------------------------------------------------------
async def test_reconnects_after_a_server_restart(
    pg_server: PostgresServer, pg_store: PostgresStore, pg_url: str
) -> None:
    await pg_store.create_handle("R/1", [url(1)])
    blocker = await connect(pg_url)
    try:
        await blocker.execute("BEGIN")
        await blocker.execute("SELECT 1 FROM handles WHERE handle_key = 'R/1' FOR UPDATE")
        in_flight = asyncio.create_task(pg_store.add_values("R/1", [url(2)]))
        await wait_for(
            "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock'", pg_url
        )

        async def reader() -> list[BaseException]:
            errors: list[BaseException] = []
            while not restarted.done():
                try:
                    await pg_store.get_handle("R/1")
                except StoreError as exc:
                    errors.append(exc)
                await asyncio.sleep(0.005)
            return errors

        restarted = asyncio.ensure_future(asyncio.to_thread(pg_server.restart))
        readers = await asyncio.wait_for(asyncio.gather(*(reader() for _ in range(5))), 60)
        await restarted
        with pytest.raises(StoreError):
            await asyncio.wait_for(in_flight, 30)
    finally:
        await blocker.close(timeout=5)
    assert sum(map(len, readers)) > 0  # requests during the restart failed, as StoreError
    # Later requests succeed, on new connections; the interrupted write did not commit.
    assert await pg_store.get_handle("R/1") == (url(1),)
    await pg_store.add_values("R/1", [url(3)])
    await asyncio.gather(*(pg_store.create_handle(f"R/n{i}", [url(1)]) for i in range(20)))
    assert await pg_store.count_handles() == 21


def test_stale_connections_are_replaced_transparently(
    runner: asyncio.Runner, pg_server: PostgresServer, pg_store: PostgresStore
) -> None:
    # The event loop is not running during these restarts, so the pool cannot notice them
    # before the next call; that call finds dead connections, renews the pool and retries.
    runner.run(pg_store.create_handle("S/1", [url(1)]))

    async def fill_pool() -> None:
        await asyncio.gather(*(pg_store.get_handle("S/1") for _ in range(20)))

    runner.run(fill_pool())
    pg_server.restart()
    runner.run(pg_store.create_handle("S/2", [url(2)]))  # a write first
    runner.run(fill_pool())
    pg_server.restart()
    assert runner.run(pg_store.get_handle("S/2")) == (url(2),)  # a read first
    runner.run(fill_pool())
    assert runner.run(pg_store.list_handles("S")) == ["S/1", "S/2"]


# -- races between separate stores (as between processes) -------------------------------------
async def test_one_of_many_concurrent_creators_wins(pg_url: str) -> None:
    stores = [await PostgresStore.open(pg_url, pool_size=5) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(s.create_handle("C/race", [url(n)]) for n in range(10) for s in stores),
            return_exceptions=True,
        )
        assert sum(r is None for r in results) == 1
        assert all(r is None or isinstance(r, HandleAlreadyExists) for r in results)

        await stores[0].create_handle("C/values", [])
        same_index = await asyncio.gather(
            *(s.add_values("C/values", [url(7, str(i))]) for i, s in enumerate(stores * 3)),
            return_exceptions=True,
        )
        assert sum(r is None for r in same_index) == 1
        assert all(r is None or isinstance(r, ValueAlreadyExists) for r in same_index)
        # Distinct indexes from everywhere at once: no update is lost.
        await asyncio.gather(
            *(s.add_values("C/values", [url(100 + i)]) for i, s in enumerate(stores * 10))
        )
        got = await stores[1].get_handle("C/values")
        assert got is not None
        assert sorted(v.index for v in got) == [7, *range(100, 130)]
    finally:
        for s in stores:
            await s.close()


async def test_overlapping_bulk_batches_do_not_deadlock(pg_url: str) -> None:
    first, second = await PostgresStore.open(pg_url), await PostgresStore.open(pg_url)
    try:
        handles = [f"B/{n:03d}" for n in range(200)]
        records = [(h, encode_record([url(1)])) for h in handles]
        a, b = await asyncio.wait_for(
            asyncio.gather(first.create_records(records), second.create_records(records[::-1])),
            30,
        )
        assert all(x != y for x, y in zip(a, b[::-1], strict=True))  # each created once
        assert await first.count_handles() == 200
    finally:
        await first.close()
        await second.close()


async def test_concurrent_bulk_batches_in_one_store(pg_store: PostgresStore) -> None:
    records = [(f"B/{n:03d}", encode_record([url(1)])) for n in range(300)]
    batches = [records[:200], records[100:][::-1], records[50:250], records[::-2]]
    results = await asyncio.wait_for(
        asyncio.gather(*(pg_store.create_records(batch) for batch in batches)), 30
    )
    created: dict[str, int] = {}
    for batch, flags in zip(batches, results, strict=True):
        for (handle, _), flag in zip(batch, flags, strict=True):
            created[handle] = created.get(handle, 0) + flag
    assert created == {handle: 1 for handle, _ in records}
    assert await pg_store.count_handles() == 300


async def test_failed_bulk_batch_changes_nothing_and_the_connection_goes_on(
    pg_url: str,
) -> None:
    store = await PostgresStore.open(pg_url, pool_size=1)
    try:
        noise = random.Random(1).choices(string.ascii_letters, k=12_000)  # incompressible
        too_long = ("S/" + "".join(noise), encode_record([]))  # too big for the key index
        with pytest.raises(StoreError, match="index row"):
            await store.create_records([("S/1", encode_record([])), too_long])
        assert await store.count_handles() == 0
        assert await store.create_records([("S/2", encode_record([url(1)]))]) == [True]
        with pytest.raises(StoreError, match="index row"):
            await store.create_records([("S/3", encode_record([])), too_long])
        assert await store.create_records([("S/3", encode_record([])), ("s/2", b"")]) == [
            True,
            False,
        ]
        assert [h for h, _ in await store.scan()] == ["S/2", "S/3"]
        assert await store.get_handle("S/2") == (url(1),)
    finally:
        await store.close()


# -- errors ----------------------------------------------------------------------------------
async def test_unreachable_server_is_a_store_error() -> None:
    with pytest.raises(StoreError) as info:
        await PostgresStore.open(f"postgresql://idnode@127.0.0.1:{free_ports(1)[0]}/x", timeout=5)
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(ValueError):
        await PostgresStore.open("postgresql://idnode@127.0.0.1/x", pool_size=0)


async def test_lock_wait_times_out_as_store_error(pg_url: str) -> None:
    store = await PostgresStore.open(pg_url, timeout=0.5)
    try:
        await store.create_handle("L/1", [url(1)])
        async with raw(pg_url) as holder, holder.transaction():
            await holder.execute("SELECT 1 FROM handles WHERE handle_key = 'L/1' FOR UPDATE")
            with pytest.raises(StoreError, match="lock timeout") as info:
                await store.add_values("L/1", [url(2)])
            assert info.value.__cause__ is not None
        await store.add_values("L/1", [url(2)])
        assert await store.get_handle("l/1") == (url(1), url(2))
    finally:
        await store.close()


async def test_undecodable_record_is_a_store_error(pg_store: PostgresStore, pg_url: str) -> None:
    async with raw(pg_url) as conn:
        await conn.execute("INSERT INTO handles VALUES ('P/BAD', 'P/bad', '\\x000000010102')")
    with pytest.raises(StoreError, match="does not decode"):
        await pg_store.get_handle("P/bad")


async def test_non_utf8_database_is_refused(pg_server: PostgresServer) -> None:
    pg_server.psql(
        "CREATE DATABASE idnode_ascii ENCODING 'SQL_ASCII' LOCALE_PROVIDER libc LOCALE 'C'"
        " TEMPLATE template0"
    )
    with pytest.raises(StoreError, match="encoding"):
        await PostgresStore.open(pg_server.url("idnode_ascii"))


async def test_close_releases_every_connection(pg_url: str) -> None:
    store = await PostgresStore.open(pg_url, pool_size=6)
    await asyncio.gather(*(store.get_handle("P/x") for _ in range(30)))
    database = pg_url.rsplit("/", 1)[1]
    idnode_sessions = (
        "SELECT count(*) FROM pg_stat_activity"
        f" WHERE application_name = 'idnode' AND datname = '{database}'"
    )
    async with raw(pg_url) as conn:  # this connection is an "idnode" session too
        assert await conn.fetchval(idnode_sessions) > 2
    await store.close()
    await store.close()
    await wait_for(f"SELECT ({idnode_sessions}) = 1", pg_url)
    with pytest.raises(StoreError, match="closed"):
        await store.count_handles()


# -- idnode db -------------------------------------------------------------------------------
def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def status_lines(output: str) -> dict[str, str]:
    return {line[:20].strip(): line[20:] for line in output.splitlines()}


def test_db_commands_on_postgresql(runner: asyncio.Runner, pg_fresh_url: str) -> None:
    status = status_lines(invoke("db", "status", "--db", pg_fresh_url))
    assert status == {
        "backend": "postgresql",
        "location": pg_fresh_url,
        "schema version": f"0 (latest {load_migrations()[-1].version})",
        "pending migrations": ", ".join(m.name for m in load_migrations()),
        "handles": "-",
        "homed prefixes": "-",
    }
    assert invoke("db", "migrate", "--db", pg_fresh_url).splitlines()[0] == "applied 0001_init"
    assert invoke("db", "migrate", "--db", pg_fresh_url).endswith("(nothing to do)\n")

    async def fill() -> None:
        store = await PostgresStore.open(pg_fresh_url)
        await store.create_handle("P/1", [url(1)])
        await store.create_handle("P/2", [url(1)])
        await store.home_prefix("P")
        await store.close()

    runner.run(fill())
    status = status_lines(invoke("db", "status", "--db", pg_fresh_url))
    assert status["pending migrations"] == "none"
    assert (status["handles"], status["homed prefixes"]) == ("2", "1")
