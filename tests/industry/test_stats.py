"""Statistics per prefix per day (:mod:`idnode.server.stats`, schema 0004): the store methods
on both backends, the counter and flusher, and counts of a live node over UDP, TCP and HTTP
kept across a restart."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from idnode.protocol.values import HandleValue, encode_record
from idnode.server.stats import ResolutionCounter, StatsFlusher
from idnode.store.base import HandleStore
from idnode.store.postgres import PostgresStore
from idnode.store.sqlite import SQLiteStore
from idnode.store.stats import DayCount, day_of
from idnode.store.writectx import WriteContext, write_context
from tests.http.conftest import basic
from tests.pgserver import PostgresServer
from tests.server.nodeutil import PREFIX, create_node_dir, running_node

_databases = itertools.count()
TODAY = day_of(int(time.time()) // 86_400)


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each backend (PostgreSQL: a new database on the session server)."""
    if request.param == "sqlite":
        return str(tmp_path / "stats.db")
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"idnode_stats_{next(_databases)}"
    server.psql(f"CREATE DATABASE {name}")
    return server.url(name)


async def _open(location: str) -> HandleStore:
    if location.startswith("postgresql://"):
        return await PostgresStore.open(location)
    return await SQLiteStore.open(location)


def test_store_adds_filters_and_keeps_child_reports(location: str) -> None:
    async def go() -> None:
        store = await _open(location)
        try:
            assert await store.stats() == []
            assert await store.stats_position() == 0
            await store.add_stats([DayCount("88.118.8", "2026-03-01", 2, 1)])
            await store.add_stats([DayCount("88.118.8", "2026-03-01", 3, 0)])  # adds
            await store.add_stats([DayCount("88.118.9", "2026-03-02", 1, 4)])
            assert await store.stats() == [
                DayCount("88.118.8", "2026-03-01", 5, 1),
                DayCount("88.118.9", "2026-03-02", 1, 4),
            ]
            assert await store.stats(prefix="88.118.9") == [
                DayCount("88.118.9", "2026-03-02", 1, 4)
            ]
            assert await store.stats(since="2026-03-02") == [
                DayCount("88.118.9", "2026-03-02", 1, 4)
            ]
            assert await store.stats(until="2026-03-01") == [
                DayCount("88.118.8", "2026-03-01", 5, 1)
            ]
            # the log position moves only from where it is, with the counts
            assert await store.add_stats([DayCount("1", "2026-03-03", 1)], position=(0, 7))
            assert await store.stats_position() == 7
            assert not await store.add_stats([DayCount("1", "2026-03-03", 1)], position=(0, 9))
            assert await store.stats_position() == 7
            assert await store.stats(prefix="1") == [DayCount("1", "2026-03-03", 1)]
            # a child's totals replace what it reported before, day by day
            first = [
                DayCount("88.118.8", "2026-03-01", 5, 1),
                DayCount("88.118.8", "2026-03-02", 1),
            ]
            await store.put_child_report("320:0.NA/88.118.8", '{"homed":["88.118.8"]}', first, 1000)
            again = [DayCount("88.118.8", "2026-03-02", 6, 2)]
            await store.put_child_report("320:0.NA/88.118.8", '{"homed":["88.118.8"]}', again, 2000)
            (report,) = await store.child_reports()
            assert report.child == "320:0.NA/88.118.8" and report.received_ms == 2000
            assert report.counts == (
                DayCount("88.118.8", "2026-03-01", 5, 1),
                DayCount("88.118.8", "2026-03-02", 6, 2),
            )
            (recent,) = await store.child_reports(since="2026-03-02")
            assert recent.counts == (DayCount("88.118.8", "2026-03-02", 6, 2),)
        finally:
            await store.close()

    asyncio.run(go())


def test_flusher_counts_resolutions_and_logged_registrations(location: str) -> None:
    async def go() -> None:
        store = await _open(location)
        try:
            counter = ResolutionCounter()
            flusher = StatsFlusher(store, counter)
            with write_context(WriteContext(actor="300:0.NA/88.118.8")):
                await store.create_handle("88.118.8/A", [HandleValue(1, "URL", b"a")])
                empty = encode_record([HandleValue(1, "URL", b"x")])
                await store.create_records([("88.118.8/B", empty), ("77.1/C", empty)])
                await store.add_values("88.118.8/A", [HandleValue(2, "URL", b"b")])  # no create
            for handle in ("88.118.8/A", "88.118.8/a", "77.1/C"):
                counter.resolved(handle)
            await flusher.flush()
            assert counter.counts == {}
            assert await store.stats() == [
                DayCount("77.1", TODAY, 1, 1),
                DayCount("88.118.8", TODAY, 2, 2),
            ]
            await flusher.flush()  # nothing new: nothing added
            assert [c.registrations for c in await store.stats()] == [1, 2]
        finally:
            await store.close()
        store = await _open(location)  # a restart: the position keeps the log counted once
        try:
            flusher = StatsFlusher(store, ResolutionCounter())
            await flusher.flush()
            assert await store.stats(prefix="88.118.8") == [DayCount("88.118.8", TODAY, 2, 2)]
        finally:
            await store.close()

    asyncio.run(go())


def test_the_store_counts_registrations_a_page_at_a_time(location: str) -> None:
    async def go() -> None:
        store = await _open(location)
        try:
            record = encode_record([HandleValue(1, "URL", b"x")])
            await store.create_records([("88.118.8/A", record), ("88.118.8/b", record)])
            await store.add_values("88.118.8/A", [HandleValue(2, "URL", b"y")])  # an update
            await store.create_records([("0.NA/77.1", record), ("88.118.8/C/D", record)])
            await store.delete_handle("88.118.8/b")
            first = await store.registrations(0, 3)  # creates A and b, the update of A
            assert (first.entries, first.counts) == (3, [DayCount("88.118.8", TODAY, 0, 2)])
            rest = await store.registrations(first.last, 3)  # 0.NA/77.1, C/D, the delete
            assert rest.entries == 3 and rest.last > first.last
            assert sorted(rest.counts, key=lambda c: c.prefix) == [
                DayCount("0.NA", TODAY, 0, 1),
                DayCount("88.118.8", TODAY, 0, 1),
            ]
            assert await store.registrations(rest.last, 3) == ([], 0, rest.last)
        finally:
            await store.close()

    asyncio.run(go())


def test_the_flusher_reads_the_log_over_several_pages(location: str) -> None:
    async def go() -> None:
        store = await _open(location)
        try:
            record = encode_record([HandleValue(1, "URL", b"x")])
            await store.create_records([(f"88.118.8/N{n}", record) for n in range(7)])
            await store.create_records([("77.1/M", record)])
            counter = ResolutionCounter()
            counter.resolved("77.1/M")
            await StatsFlusher(store, counter, page=3).flush()
            assert await store.stats() == [
                DayCount("77.1", TODAY, 1, 1),
                DayCount("88.118.8", TODAY, 0, 7),
            ]
            assert await store.stats_position() == (await store.txn_log_state()).last_txn_id
        finally:
            await store.close()

    asyncio.run(go())


def test_a_failed_flush_gives_the_counts_back(tmp_path: Path) -> None:
    async def go() -> None:
        store = await SQLiteStore.open(tmp_path / "s.db")
        counter = ResolutionCounter()
        counter.resolved("88.118.8/X")
        await store.close()
        with pytest.raises(Exception, match="closed"):
            await StatsFlusher(store, counter).flush()
        assert sum(counter.counts.values()) == 1

    asyncio.run(go())


@pytest.fixture
def node_dir(tmp_path: Path) -> Iterator[Path]:
    create_node_dir(tmp_path / "node")
    yield tmp_path / "node"


def test_a_node_counts_over_udp_tcp_and_http_and_keeps_counts_over_a_restart(
    node_dir: Path,
) -> None:
    handle = f"{PREFIX}/PV-2026-000123"
    with running_node(node_dir) as running:
        asyncio.run(running.client().resolve(handle))  # UDP
        asyncio.run(running.client(tcp=True).resolve(handle))  # TCP
        http_port = running.node.http_port
        reply = httpx.get(f"http://127.0.0.1:{http_port}/api/handles/{handle}", timeout=10)
        assert reply.status_code == 200
        admin = running.client(credentials=running.secret_credentials, tcp=True)
        asyncio.run(admin.create_handle(f"{PREFIX}/NEW-1", [HandleValue(1, "URL", b"u")]))
        batch = {"handles": [{"handle": f"{PREFIX}/NEW-2", "values": [
            {"index": 1, "type": "URL", "data": {"format": "string", "value": "u"}}]}]}  # fmt: skip
        auth = basic(f"300:0.NA/{PREFIX}", running.admin_secret)
        reply = httpx.post(f"http://127.0.0.1:{http_port}/api/batch", json=batch, headers=auth)
        assert reply.json()["created"] == 1, reply.text
        before = running.call(running.node.store.stats(prefix=PREFIX))
    # closing the node flushed what it counted since the last flush
    with running_node(node_dir) as running:
        (row,) = running.call(running.node.store.stats(prefix=PREFIX))
        assert row.day == TODAY and row.resolutions == 3
        # init created the prefix record's handles and the demo identifiers, then 2 more
        assert row.registrations == len(running.list_handles()) >= 6
        assert before == [] or before[0].resolutions <= 3  # flushed at most once in between
