"""The data sets: N identifiers ``88.118.8/BENCH-<n>`` in every form a server here serves.

Each identifier has a solar module's record of four values (URL, DESC, EMAIL, BATCH, as the
demo module ``PV-2026-000123``) plus the HS_ADMIN that the importer adds (index 100, naming
``200:0.NA/88.118.8``):

* **idnode**: a node made by ``idnode init`` (SQLite, or an empty PostgreSQL database), the
  rows loaded from a CSV file with :func:`idnode.importer.run_import` (batches of 5000, one
  parsing process: the defaults of ``idnode import``).
* **Knot DNS**: a zone file for ``bench.test.``: ``bench-<n>`` with one TXT record holding the
  same five texts (the admin value as ``200:0.NA/88.118.8``).
* **nginx**: one file per identifier, ``<root>/api/handles/88.118.8/BENCH-<n>``, the JSON that
  idnode's ``GET /api/handles/88.118.8/BENCH-<n>`` answers (same shape and size), on tmpfs
  when it fits in memory (writing 10^6 small files on a virtual disk takes minutes; served,
  they come from the page cache either way), else on disk.

Everything is written under a directory the caller owns; nothing here starts a server.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.loadgen import DNS_ZONE, PREFIX

__all__ = [
    "IdnodeData",
    "build_idnode",
    "json_files_place",
    "json_files_room",
    "prewarm",
    "write_csv",
    "write_json_files",
    "write_zone",
]

IDNODE = str(Path(sys.executable).with_name("idnode"))
ADMIN = "200:0.NA/88.118.8"
DESC = "Monocrystalline PV module, 550 W, 144 half-cut cells"
EMAIL = "quality@pv.example.com"
#: Memory-backed file system for the nginx files when they fit (see json_files_place).
SHM = Path("/dev/shm")


def url(n: int) -> str:
    return f"https://pv.example.com/modules/BENCH-{n}"


def batch(n: int) -> str:
    return f"CELL-LOT-2026-{n // 5000:04d}"


def write_csv(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("handle,1:URL,2:DESC,3:EMAIL,4:BATCH\n")
        desc = f'"{DESC}"'
        for n in range(count):
            f.write(f"{PREFIX}/BENCH-{n},{url(n)},{desc},{EMAIL},{batch(n)}\n")


@dataclass(frozen=True)
class IdnodeData:
    config: Path
    """The node's ``idnode.toml``."""
    database: str
    """SQLite file or postgresql:// URL."""
    import_rate: float
    """Identifiers per second of the import."""
    bytes_per_id: float


def build_idnode(
    directory: Path, csv_path: Path, count: int, database_url: str | None
) -> IdnodeData:
    """``idnode init`` a node in ``directory`` (on ``database_url``, an empty PostgreSQL
    database, or SQLite) and import ``csv_path`` into it."""
    argv = [IDNODE, "init", str(directory), "--prefix", PREFIX]
    if database_url is not None:
        argv += ["--db", database_url]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=300)
    database = database_url or str(directory / "idnode.db")
    rate = asyncio.run(_import(database, csv_path))
    if database_url is None:
        size = _sqlite_bytes(Path(database))
    else:
        size = asyncio.run(_pg_bytes(database_url))
    return IdnodeData(directory / "idnode.toml", database, rate, size / count)


async def _import(database: str, csv_path: Path) -> float:
    from idnode.importer import ImportOptions, run_import
    from idnode.server.authz import Identity
    from idnode.store import open_store
    from idnode.store.base import handle_key

    store = await open_store(database)
    try:
        index, _, handle = ADMIN.partition(":")
        options = ImportOptions(
            admin=Identity(handle, int(index)),
            homed=frozenset({handle_key(PREFIX)}),
            batch_size=5000,
            workers=1,
        )
        started = time.perf_counter()
        summary = await run_import(store, csv_path, options)
        elapsed = time.perf_counter() - started
        if summary.failed:
            raise RuntimeError(f"import of {csv_path}: {summary.failed} rows failed")
        # The checkpoint and error report are for resuming; a second data set starts afresh.
        for extra in (".checkpoint.json", ".errors.jsonl"):
            csv_path.with_name(csv_path.name + extra).unlink(missing_ok=True)
        return summary.rows / elapsed
    finally:
        await store.close()


def _sqlite_bytes(path: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def _pg_bytes(url: str) -> int:
    """Tables, their indexes and TOAST, of the node's schema."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        size = await conn.fetchval(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        )
        return int(size or 0)
    finally:
        await conn.close()


def write_zone(path: Path, count: int) -> None:
    """The zone ``bench.test.`` with ``count`` TXT records (RFC 1035 master file)."""
    with path.open("w", encoding="ascii") as f:
        f.write(
            f"$ORIGIN {DNS_ZONE}.\n$TTL 86400\n"
            f"@ SOA ns.{DNS_ZONE}. hostmaster.{DNS_ZONE}. 1 3600 900 604800 86400\n"
            "@ NS ns\nns A 127.0.0.1\n"
        )
        rest = f'"{DESC}" "{EMAIL}"'
        for n in range(count):
            f.write(f'bench-{n} TXT "{url(n)}" {rest} "{batch(n)}" "{ADMIN}"\n')


def _json(n: int, stamp: str) -> str:
    def value(index: int, vtype: str, fmt: str, data: str) -> str:
        return (
            f'{{"index":{index},"type":"{vtype}","data":{{"format":"{fmt}","value":{data}}},'
            f'"ttl":86400,"timestamp":"{stamp}"}}'
        )

    admin = '{"handle":"0.NA/88.118.8","index":200,"permissions":"111111110011"}'
    values = ",".join(
        (
            value(1, "URL", "string", f'"{url(n)}"'),
            value(2, "DESC", "string", f'"{DESC}"'),
            value(3, "EMAIL", "string", f'"{EMAIL}"'),
            value(4, "BATCH", "string", f'"{batch(n)}"'),
            value(100, "HS_ADMIN", "admin", admin),
        )
    )
    return f'{{"responseCode":1,"handle":"{PREFIX}/BENCH-{n}","values":[{values}]}}'


def json_files_room(root: Path, count: int) -> str | None:
    """Why ``count`` files cannot be written under ``root`` (None if they can): they may use
    at most half of the free inodes and half of the free space (one 4 KiB block each)."""
    st = os.statvfs(root)
    if count > st.f_favail // 2:
        return f"{count:,} files need {count:,} inodes, {st.f_favail:,} are free"
    need = count * 4096
    free = st.f_bavail * st.f_frsize
    if need > free // 2:
        return f"{count:,} files need about {need / 2**30:.0f} GiB, {free / 2**30:.0f} GiB are free"
    return None


def json_files_place(work: Path, count: int, mem_available: int) -> tuple[Path | None, str]:
    """A new directory for ``count`` JSON files and what it is on: tmpfs (``/dev/shm``) if
    they take at most a quarter of the available memory (about 5 KiB each with the inode),
    else ``work`` on disk; or None and why they fit nowhere."""
    if SHM.is_dir() and count * 5120 <= mem_available // 4 and json_files_room(SHM, count) is None:
        return Path(tempfile.mkdtemp(prefix="idnode-resbench-", dir=SHM)), "tmpfs"
    why = json_files_room(work, count)
    if why is not None:
        return None, why
    return Path(tempfile.mkdtemp(prefix="nginx-files-", dir=work)), "disk"


def write_json_files(root: Path, count: int) -> float:
    """Write the files under ``root``; the bytes on disk per identifier (blocks of a file,
    plus the directory's share)."""
    directory = root / "api" / "handles" / PREFIX
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for n in range(count):
        with open(directory / f"BENCH-{n}", "w", encoding="utf-8") as f:
            f.write(_json(n, stamp))
    blocks = (directory / "BENCH-0").stat().st_blocks * 512
    return blocks + directory.stat().st_size / count


def prewarm(paths: list[Path], mem_available: int) -> str:
    """Read the files ``paths`` (directories: every file under them) once, so that the
    operating system's page cache holds them when a server starts, as Knot holds its zone
    and nginx its files on tmpfs; skipped when they exceed half of ``mem_available``.
    What was done, for the log."""
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*")))]
    files = [f for f in files if f.is_file()]
    total = sum(f.stat().st_size for f in files)
    if total > mem_available // 2:
        return f"{total / 2**30:.1f} GiB not read ahead (more than half the available memory)"
    started = time.monotonic()
    for f in files:
        with f.open("rb", buffering=0) as stream:
            while stream.read(1 << 20):
                pass
    return f"{total / 2**30:.1f} GiB read into the page cache in {time.monotonic() - started:.0f} s"
