"""Bulk-import benchmark: idnode's importer against the raw write speed of each database.

For each backend (SQLite, PostgreSQL) it imports N generated identifiers (a typical solar
module record: URL, description, batch, e-mail, and the default HS_ADMIN) from a CSV file with
``idnode.importer.run_import``, then loads the very same rows, encoded beforehand, with the
fastest plain way the database offers (``executemany`` into the same SQLite schema; ``COPY``
into the same PostgreSQL table), and prints both rates side by side with the bytes on disk per
identifier. It prints figures and never fails on them.

    .venv/bin/python bench/import.py            # 1,000,000 identifiers
    .venv/bin/python bench/import.py --count 100000 --backend sqlite

PostgreSQL is a throwaway server started in a temporary directory (as for the tests).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from idnode.importer import ImportOptions, RecordEncoder, run_import
from idnode.server.authz import Identity
from idnode.store import open_store
from idnode.store.base import handle_key
from idnode.store.migrations import migrate

ADMIN = Identity("0.NA/88.118.8", 200)
#: Parsing processes of the importer (ImportOptions.workers), set by --workers.
WORKERS = 1
HEADER = "handle,1:URL,2:DESC,3:BATCH,4:EMAIL\n"


def row(i: int) -> str:
    return (
        f"88.118.8/PV-2026-{i:09d},https://pv.example.com/m/PV-2026-{i:09d},"
        f"PV module 550 W mono,CELL-LOT-{i // 5000:05d},quality@pv.example.com\n"
    )


def write_csv(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write(HEADER)
        for i in range(count):
            f.write(row(i))


def encoded_rows(count: int) -> list[tuple[str, str | None, bytes]]:
    """The rows as stored, made outside the timed part of the baselines."""
    encoder = RecordEncoder(int(time.time()), ADMIN)
    cols = [
        encoder.column(1, "URL"),
        encoder.column(2, "DESC"),
        encoder.column(3, "BATCH"),
        encoder.column(4, "EMAIL"),
    ]
    assert encoder.admin is not None
    out: list[tuple[str, str | None, bytes]] = []
    for i in range(count):
        handle, *cells = row(i).rstrip("\n").split(",")
        values = [c.encode(cell.encode()) for c, cell in zip(cols, cells, strict=True)]
        record = (5).to_bytes(4, "big") + b"".join(values) + encoder.admin
        out.append((handle_key(handle), None, record))
    return out


async def idnode_import(location: str, csv_path: Path, batch: int) -> float:
    store = await open_store(location)
    try:
        options = ImportOptions(
            admin=ADMIN, homed=frozenset({"88.118.8"}), batch_size=batch, workers=WORKERS
        )
        started = time.perf_counter()
        summary = await run_import(store, csv_path, options)
        elapsed = time.perf_counter() - started
        assert summary.created == summary.rows, summary
        return summary.rows / elapsed
    finally:
        await store.close()


def sqlite_baseline(path: Path, rows: list[tuple[str, str | None, bytes]], batch: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    migrate(conn)
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO handles VALUES (?, ?, ?)", rows[start : start + batch])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(rows) / elapsed


def sqlite_bytes(path: Path, count: int) -> float:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return size / count


async def pg_baseline(url: str, rows: list[tuple[str, str | None, bytes]], batch: int) -> float:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "handles",
                    records=rows[start : start + batch],
                    columns=["handle_key", "handle", "record"],
                )
        return len(rows) / (time.perf_counter() - started)
    finally:
        await conn.close()


async def pg_bytes(url: str, count: int) -> float:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        size = await conn.fetchval("SELECT pg_total_relation_size('handles')")
        return float(size) / count
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "all"], default="all")
    parser.add_argument("--workers", type=int, default=1, help="importer parsing processes")
    args = parser.parse_args()
    global WORKERS
    WORKERS = args.workers
    table: list[tuple[str, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="idnode-bench-") as tmp:
        work = Path(tmp)
        csv_path = work / "ids.csv"
        print(f"generating {args.count:,} identifiers ...", file=sys.stderr)
        write_csv(csv_path, args.count)
        rows = encoded_rows(args.count)
        if args.backend in ("sqlite", "all"):
            db = work / "idnode.db"
            rate = asyncio.run(idnode_import(str(db), csv_path, args.batch))
            per_id = sqlite_bytes(db, args.count)
            raw = sqlite_baseline(work / "raw.db", rows, args.batch)
            table.append(("SQLite", rate, raw, per_id))
        if args.backend in ("postgresql", "all"):
            from tests.pgserver import PostgresServer

            server = PostgresServer.start()
            try:
                server.psql("CREATE DATABASE bench_idnode")
                server.psql("CREATE DATABASE bench_raw")
                url = server.url("bench_idnode")
                rate = asyncio.run(idnode_import(url, csv_path, args.batch))
                per_id = asyncio.run(pg_bytes(url, args.count))
                raw_url = server.url("bench_raw")
                asyncio.run(_migrate_pg(raw_url))
                raw = asyncio.run(pg_baseline(raw_url, rows, args.batch))
                table.append(("PostgreSQL", rate, raw, per_id))
            finally:
                server.stop()
    print()
    print(
        f"bulk import, {args.count:,} identifiers, batches of {args.batch}, "
        f"{args.workers} parsing process(es)"
    )
    print(
        f"machine: {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {_cpus()} cores"
    )
    print()
    print("| backend | idnode import (ids/s) | raw baseline (ids/s) | ratio | bytes/id |")
    print("|---|---:|---:|---:|---:|")
    for name, rate, raw, per_id in table:
        print(f"| {name} | {rate:,.0f} | {raw:,.0f} | {rate / raw:.0%} | {per_id:,.0f} |")


async def _migrate_pg(url: str) -> None:
    from idnode.store.status import migrate_database

    await migrate_database(url)


def _cpus() -> int:
    return os.cpu_count() or 1


if __name__ == "__main__":
    main()
