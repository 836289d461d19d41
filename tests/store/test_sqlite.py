"""SQLite-specific behaviour of SQLiteStore: pragmas, query plans, errors, threads."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from idnode.errors import StoreError
from idnode.protocol.values import HandleValue
from idnode.store import sqlite as backend
from idnode.store.sqlite import SQLiteStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "s.db"


@pytest.fixture
def raw(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A direct connection to a migrated database file."""

    async def create() -> None:
        await (await SQLiteStore.open(db_path)).close()

    asyncio.run(create())
    with closing(sqlite3.connect(db_path, isolation_level=None)) as conn:
        yield conn


def store_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("idnode-sqlite-")}


def wait_until_gone(threads: set[threading.Thread]) -> None:
    deadline = time.monotonic() + 10
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert [t.name for t in threads if t.is_alive()] == []


def test_connection_pragmas(db_path: Path) -> None:
    for query_only in (False, True):
        with closing(backend._connect(str(db_path), 1234, query_only=query_only)) as conn:
            assert conn.execute("PRAGMA busy_timeout").fetchone() == (1234,)
            assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
            assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
            assert conn.execute("PRAGMA query_only").fetchone() == (int(query_only),)
            assert conn.isolation_level is None


def test_database_is_in_wal_mode(raw: sqlite3.Connection) -> None:
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        (backend._HANDLES_IN_RANGE, ("P/", "P0")),
        (backend._GET, ("P/X",)),
        (backend._SCAN, ("P/X", 10)),
        (backend._SET_RECORD, (b"", "P/X")),
        (backend._DELETE, ("P/X",)),
    ],
)
def test_queries_search_an_index(
    raw: sqlite3.Connection, sql: str, params: tuple[object, ...]
) -> None:
    plan = " | ".join(row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert "SEARCH" in plan
    assert "SCAN" not in plan
    assert "TEMP B-TREE" not in plan


async def test_open_failure_raises_store_error_and_cleans_up(tmp_path: Path) -> None:
    before = store_threads()
    with pytest.raises(StoreError) as info:
        await SQLiteStore.open(tmp_path / "no" / "such" / "dir.db")
    assert isinstance(info.value.__cause__, sqlite3.Error)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError) as info:
        await SQLiteStore.open(garbage)
    assert isinstance(info.value.__cause__, sqlite3.Error)
    with pytest.raises(ValueError):
        await SQLiteStore.open(tmp_path / "x.db", readers=0)
    wait_until_gone(store_threads() - before)


async def test_close_stops_every_thread(db_path: Path) -> None:
    before = store_threads()
    store = await SQLiteStore.open(db_path, readers=3)
    await store.create_handle("P/x", [HandleValue(1, "URL")])
    # get_handle reads on the calling thread (SQLiteStore.get_record); listings use readers
    assert len(await asyncio.gather(*(store.list_handles("P") for _ in range(30)))) == 30
    started = store_threads() - before
    assert 2 <= len(started) <= 4  # the writer and up to 3 readers
    await store.close()
    wait_until_gone(started)


async def test_undecodable_stored_value_is_a_store_error(
    raw: sqlite3.Connection, db_path: Path
) -> None:
    raw.execute("INSERT INTO handles VALUES ('P/BAD', 'P/bad', x'000000010102')")
    store = await SQLiteStore.open(db_path)
    try:
        with pytest.raises(StoreError, match="does not decode"):
            await store.get_handle("P/bad")
    finally:
        await store.close()


async def test_locked_database_is_a_store_error_and_rolls_back(
    raw: sqlite3.Connection, db_path: Path
) -> None:
    store = await SQLiteStore.open(db_path, busy_timeout=0.05)
    try:
        raw.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with pytest.raises(StoreError) as info:
            await store.create_handle("P/x", [HandleValue(1, "URL")])
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
        raw.execute("ROLLBACK")
        await store.create_handle("P/x", [HandleValue(1, "URL")])
        assert await store.get_handle("p/X") == (HandleValue(1, "URL"),)
    finally:
        await store.close()


async def test_loop_reads_go_through_a_memory_map_and_see_every_commit(
    raw: sqlite3.Connection, db_path: Path
) -> None:
    store = await SQLiteStore.open(db_path)
    try:
        assert await store.get_record("P/none") is None  # opens the loop's connection
        (mapped,) = store._direct().execute("PRAGMA mmap_size").fetchone()
        assert mapped > 0
        # The file grows past what was mapped when it was first read; every commit, in the
        # WAL or checkpointed into the file, is read.
        for n in range(200):
            await store.create_handle(f"P/{n}", [HandleValue(1, "URL", bytes([n]) * 3000)])
            if n % 50 == 49:
                raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for n in range(0, 200, 7):
            assert await store.get_handle(f"P/{n}") == (HandleValue(1, "URL", bytes([n]) * 3000),)
        await store.delete_handle("P/7")
        assert await store.get_record("P/7") is None
    finally:
        await store.close()
