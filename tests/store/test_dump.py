"""Portable dump and restore (``idnode.dump``, ``idnode db dump`` / ``idnode db restore``):
the round trip SQLite -> PostgreSQL -> SQLite, the format, idempotence, and refusing bad
files line by line with nothing of the bad line's batch written."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from idnode.cli import main
from idnode.dump import (
    DumpError,
    DumpHeader,
    dump_database,
    dump_store,
    restore_database,
    restore_store,
)
from idnode.errors import StoreError
from idnode.protocol.values import HandleValue, encode_record
from idnode.store import open_store
from idnode.store.base import HandleStore, handle_key
from idnode.store.migrations import load_migrations, migrate

from .test_contract import ODD_VALUES

SCHEMA = load_migrations()[-1].version


def url(index: int, data: str = "https://example.org/") -> HandleValue:
    return HandleValue(index, "URL", data.encode())


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


async def fill(store: HandleStore) -> None:
    """A bit of everything: odd values and handles, derived prefixes, several scan pages."""
    await store.create_handle("P/Odd", ODD_VALUES)
    await store.create_handle("P/ärger ☃", [url(1, "ä")])
    await store.create_handle("P/nul\x00soh\x01", [url(2)])
    await store.create_handle("0.NA/P.Sub", [url(1)])
    await store.create_handle("p/empty", [])
    await store.create_records(
        [(f"P/bulk-{n:05d}", encode_record([url(1, str(n))])) for n in range(2345)]
    )
    for prefix in ("P", "p.sub", "Q\x00"):
        await store.home_prefix(prefix)


def sqlite_rows(path: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with closing(sqlite3.connect(path)) as conn:
        handles = conn.execute("SELECT * FROM handles ORDER BY handle_key").fetchall()
        homed = conn.execute("SELECT * FROM homed_prefixes ORDER BY prefix_key").fetchall()
    return handles, homed


def dump_bytes(store: HandleStore, runner: asyncio.Runner) -> bytes:
    out = io.BytesIO()
    runner.run(dump_store(store, out))
    return out.getvalue()


# -- the round trip ----------------------------------------------------------------------------
def test_round_trip_sqlite_postgresql_sqlite(
    runner: asyncio.Runner, tmp_path: Path, pg_fresh_url: str
) -> None:
    first, last = tmp_path / "first.db", tmp_path / "last.db"

    async def make_first() -> None:
        store = await open_store(first)
        try:
            await fill(store)
        finally:
            await store.close()

    runner.run(make_first())
    dumps = [tmp_path / f"{n}.jsonl" for n in range(3)]
    invoke("db", "dump", "--db", str(first), "-o", str(dumps[0]))
    restored = invoke("db", "restore", str(dumps[0]), "--db", pg_fresh_url, "--batch-size", "700")
    assert restored == "restored 2350 handles: 2350 created, 0 already present; 3 homed prefixes\n"
    invoke("db", "dump", "--db", pg_fresh_url, "-o", str(dumps[1]))
    invoke("db", "restore", str(dumps[1]), "--db", str(last))
    invoke("db", "dump", "--db", str(last), "-o", str(dumps[2]))

    assert dumps[0].read_bytes() == dumps[1].read_bytes() == dumps[2].read_bytes()
    assert sqlite_rows(first) == sqlite_rows(last)  # byte-identical records, same display
    lines = dumps[0].read_bytes().splitlines()
    assert json.loads(lines[0]) == {
        "idnode_dump": 1,
        "schema": SCHEMA,
        "homed_prefixes": ["P", "p.sub", "Q\x00"],
        "count": 2350,
    }
    assert len(lines) == 2351
    again = invoke("db", "restore", str(dumps[2]), "--db", pg_fresh_url)
    assert again == "restored 2350 handles: 0 created, 2350 already present; 3 homed prefixes\n"


async def test_dump_format(store: HandleStore) -> None:
    await fill(store)
    await store.delete_handle("P/nul\x00soh\x01")
    out = io.BytesIO()
    header = await dump_store(store, out, page=100)
    assert header == DumpHeader(SCHEMA, ("P", "p.sub", "Q\x00"), 2349)
    data = out.getvalue()
    assert data.isascii() and data.endswith(b"\n")
    lines = data.splitlines()
    assert lines[0] == header.to_line().rstrip(b"\n")
    entries = [json.loads(line) for line in lines[1:]]
    handles = [entry["handle"] for entry in entries]
    assert handles == sorted(handles, key=lambda h: handle_key(h).encode())
    assert handles[:2] == ["0.NA/P.Sub", "P/bulk-00000"]
    assert handles[-3:] == ["p/empty", "P/Odd", "P/ärger ☃"]
    by_handle = {entry["handle"]: base64.b64decode(entry["record"]) for entry in entries}
    assert by_handle["P/Odd"] == encode_record(ODD_VALUES)
    assert by_handle["p/empty"] == encode_record([])


async def test_restore_leaves_existing_handles_alone(store: HandleStore) -> None:
    source = io.BytesIO()
    source.write(DumpHeader(SCHEMA, ("P",), 2).to_line())
    for handle, values in (("P/1", [url(1, "dump")]), ("P/2", [url(2, "dump")])):
        record = base64.b64encode(encode_record(values)).decode()
        source.write(json.dumps({"handle": handle, "record": record}).encode() + b"\n")
    await store.create_handle("p/1", [url(7, "mine")])
    source.seek(0)
    summary = await restore_store(store, source, DumpHeader.parse(source.readline()))
    assert (summary.handles, summary.created, summary.existing) == (2, 1, 1)
    assert await store.get_handle("P/1") == (url(7, "mine"),)
    assert await store.list_handles("P") == ["p/1", "P/2"]
    assert await store.homed_prefixes() == ["P"]


# -- bad files -----------------------------------------------------------------------------------
def handle_line(handle: str, record: bytes) -> bytes:
    text = base64.b64encode(record).decode()
    return json.dumps({"handle": handle, "record": text}).encode() + b"\n"


def dump_of(count: int, header_count: int | None = None) -> list[bytes]:
    header = DumpHeader(SCHEMA, ("P",), count if header_count is None else header_count)
    return [header.to_line()] + [
        handle_line(f"P/{n:02d}", encode_record([url(1, str(n))])) for n in range(count)
    ]


REVERSED = (2).to_bytes(4, "big") + url(2).encode() + url(1).encode()  # not in index order

CORRUPTIONS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "not json": (lambda line: line[:20] + b"\n", "not JSON"),
    "not an object": (lambda line: b"[1, 2]\n", "expected"),
    "extra key": (lambda line: line.replace(b"{", b'{"x": 1, ', 1), "expected"),
    "bad base64": (lambda line: line.replace(b'"record": "', b'"record": "*', 1), "base64"),
    "undecodable": (lambda line: handle_line("P/05", b"\x00\x00\x00\x09"), "does not decode"),
    "unordered values": (lambda line: handle_line("P/05", REVERSED), "stored form"),
    "key order": (lambda line: handle_line("P/00", encode_record([])), "key order"),
    "same key": (lambda line: handle_line("p/04", encode_record([])), "key order"),
    "not utf-8": (lambda line: b'{"handle": "P/\xff", "record": ""}\n', "not JSON"),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
async def test_bad_line_is_named_and_its_batch_not_written(
    store: HandleStore, corruption: str
) -> None:
    change, message = CORRUPTIONS[corruption]
    lines = dump_of(10)
    lines[6] = change(lines[6])  # line 7 of the file, the 6th handle: in the second batch of 4
    source = io.BytesIO(b"".join(lines))
    header = DumpHeader.parse(source.readline())
    with pytest.raises(DumpError, match=f"^line 7: .*{message}"):
        await restore_store(store, source, header, batch_size=4)
    assert [h for h, _ in await store.scan()] == ["P/00", "P/01", "P/02", "P/03"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (dump_of(3, header_count=5), "line 4: the file ends there, after 3 of the header's 5"),
        (dump_of(3, header_count=2), "line 4: more handles than the header's count 2"),
    ],
    ids=["truncated", "too long"],
)
async def test_count_must_match_the_header(
    store: HandleStore, lines: list[bytes], message: str
) -> None:
    source = io.BytesIO(b"".join(lines))
    with pytest.raises(DumpError, match=message):
        await restore_store(store, source, DumpHeader.parse(source.readline()), batch_size=2)
    assert await store.count_handles() == 2  # the first batch, complete and valid


@pytest.mark.parametrize(
    ("first_line", "message"),
    [
        (b"", "not an idnode dump"),
        (b"garbage\n", "not an idnode dump"),
        (handle_line("P/1", encode_record([])), "not an idnode dump"),
        (b'{"idnode_dump": 2, "schema": 1, "homed_prefixes": [], "count": 0}\n', "format 2"),
        (b'{"idnode_dump": 1, "schema": 999, "homed_prefixes": [], "count": 0}\n', "newer"),
        (b'{"idnode_dump": 1, "schema": 1, "homed_prefixes": [], "count": -1}\n', "whole"),
        (b'{"idnode_dump": 1, "schema": 1, "homed_prefixes": [], "count": true}\n', "whole"),
        (b'{"idnode_dump": 1, "schema": 1, "homed_prefixes": "P", "count": 0}\n', "list"),
    ],
)
async def test_header_is_checked_before_the_database_is_opened(
    tmp_path: Path, first_line: bytes, message: str
) -> None:
    target = tmp_path / "never.db"
    with pytest.raises(DumpError, match=f"^line 1: .*{message}"):
        await restore_database(str(target), io.BytesIO(first_line + b"more\n"))
    assert not target.exists()


# -- dumping -----------------------------------------------------------------------------------
async def test_dump_refuses_what_it_cannot_dump_unchanged(
    tmp_path: Path, pg_fresh_url: str
) -> None:
    with pytest.raises(StoreError, match="no SQLite database"):
        await dump_database(str(tmp_path / "missing.db"), io.BytesIO())
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(DumpError, match="no idnode schema"):
        await dump_database(pg_fresh_url, io.BytesIO())
    with closing(sqlite3.connect(tmp_path / "future.db", isolation_level=None)) as conn:
        migrate(conn)
        conn.execute("INSERT INTO schema_migrations VALUES (999, '0999_x', 'now')")
    with pytest.raises(DumpError, match="use a newer idnode"):
        await dump_database(str(tmp_path / "future.db"), io.BytesIO())


class GrowingStore:
    """A store that gains a handle between counting and scanning (a writer during the dump)."""

    def __init__(self, store: HandleStore) -> None:
        self.store = store

    async def homed_prefixes(self) -> list[str]:
        return await self.store.homed_prefixes()

    async def count_handles(self) -> int:
        count = await self.store.count_handles()
        await self.store.create_handle("P/late", [])
        return count

    async def scan(
        self, after: str | None = None, limit: int = 1000
    ) -> list[tuple[str, tuple[HandleValue, ...]]]:
        return await self.store.scan(after, limit)


async def test_dump_fails_if_the_database_changes_meanwhile(store: HandleStore) -> None:
    await store.create_handle("P/1", [])
    with pytest.raises(DumpError, match=r"changed during the dump \(1 at the start, 2 written\)"):
        await dump_store(GrowingStore(store), io.BytesIO())  # type: ignore[arg-type]


def test_failed_dump_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        main, ["db", "dump", "--db", str(tmp_path / "no.db"), "-o", str(out)]
    )
    assert result.exit_code == 1
    assert "no SQLite database" in result.output
    assert list(tmp_path.iterdir()) == []
