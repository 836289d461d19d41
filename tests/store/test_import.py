"""Bulk import (idnode.importer and ``idnode import``) on every backend."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from idnode.bootstrap import init_node
from idnode.importer import ImportOptions, run_import
from idnode.protocol.codes import Permission
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.values import HandleValue, encode_record
from idnode.server.authz import Identity
from idnode.store import open_store
from idnode.store.base import HandleStore, handle_key

ADMIN = Identity("0.NA/88.118.8", 200)
HOMED = frozenset({"88.118.8"})
OPTIONS = ImportOptions(admin=ADMIN, homed=HOMED, batch_size=7)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[dict[str, object]]:
    report = path.with_name(path.name + ".errors.jsonl")
    return [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]


async def test_csv_rows_become_records_with_an_admin(store: HandleStore, tmp_path: Path) -> None:
    src = write(
        tmp_path / "pv.csv",
        "handle,1:URL,2:DESC,5:INTERNAL.COST:1100\n"
        "88.118.8/PV-1,https://pv.example.com/1,module one,CNY 600\n"
        "88.118.8/PV-2,https://pv.example.com/2,,\n",
    )
    summary = await run_import(store, src, OPTIONS, clock=lambda: 1_800_000_000.0)
    assert (summary.rows, summary.created, summary.existing, summary.failed) == (2, 2, 0, 0)
    admin = AdminRecord(0x0FF3, ADMIN.handle, ADMIN.index).to_bytes()
    ts = 1_800_000_000
    assert await store.get_handle("88.118.8/PV-1") == (
        HandleValue(1, "URL", b"https://pv.example.com/1", timestamp=ts),
        HandleValue(2, "DESC", b"module one", timestamp=ts),
        HandleValue(
            5,
            "INTERNAL.COST",
            b"CNY 600",
            timestamp=ts,
            permissions=Permission.ADMIN_READ | Permission.ADMIN_WRITE,
        ),
        HandleValue(100, "HS_ADMIN", admin, timestamp=ts),
    )
    # Empty cells are absent values.
    values = await store.get_handle("88.118.8/PV-2")
    assert values is not None and [v.index for v in values] == [1, 100]


async def test_fast_encoding_equals_the_codec(store: HandleStore, tmp_path: Path) -> None:
    src = write(tmp_path / "a.csv", "handle,3:EMAIL,1:URL\n88.118.8/X,a@example.org,https://x\n")
    await run_import(store, src, OPTIONS, clock=lambda: 5.0)
    values = await store.get_handle("88.118.8/X")
    assert values is not None
    # A record re-encoded by the codec is byte-identical to the importer's own encoding.
    scanned = await store.scan()
    assert encode_record(scanned[0][1]) == encode_record(values)
    assert [v.index for v in values] == [1, 3, 100]


async def test_suffix_column_uses_the_prefix_option(store: HandleStore, tmp_path: Path) -> None:
    src = write(tmp_path / "s.csv", "suffix,1:URL\nMD-1,https://med.example.com/1\n")
    options = ImportOptions(prefix="88.118.8", admin=ADMIN, homed=HOMED)
    assert (await run_import(store, src, options)).created == 1
    assert await store.get_handle("88.118.8/MD-1") is not None


async def test_bad_rows_are_reported_and_the_rest_registered(
    store: HandleStore, tmp_path: Path
) -> None:
    src = write(
        tmp_path / "mixed.csv",
        "handle,1:URL,100:HS_ADMIN\n"
        "88.118.8/OK-1,https://ok/1,\n"
        "no-slash,https://bad,\n"
        "88.118.9/ELSEWHERE,https://bad,\n"
        "88.118.8/OK-2,https://ok/2,\n"
        "88.118.8/TOO,many,cells,here\n"
        "88.118.8/ADMIN-BAD,https://bad,00ff\n"
        "88.118.8/ok-1,https://duplicate,\n",
    )
    # Without an admin identity, a file must have an HS_ADMIN column.
    no_admin = ImportOptions(admin=None, homed=HOMED)
    with pytest.raises(ValueError, match="HS_ADMIN"):
        await run_import(store, write(tmp_path / "noadmin.csv", "handle,1:URL\n"), no_admin)
    summary = await run_import(store, src, ImportOptions(admin=ADMIN, homed=HOMED))
    assert (summary.rows, summary.created, summary.failed) == (7, 2, 5)
    errors = errors_of(src)
    assert [e["line"] for e in errors] == [3, 4, 6, 7, 8]
    assert "expected <prefix>/<suffix>" in str(errors[0]["error"])
    assert "not homed" in str(errors[1]["error"])
    assert "cells" in str(errors[2]["error"])
    assert "HS_ADMIN" in str(errors[3]["error"])
    assert "duplicate of line 2" in str(errors[4]["error"])
    assert await store.get_handle("88.118.8/ELSEWHERE") is None
    assert await store.count_handles() == 2


async def test_bad_header_is_refused_before_anything_is_written(
    store: HandleStore, tmp_path: Path
) -> None:
    for header in ("name,1:URL", "handle,URL", "handle,x:URL", "handle,1:URL:abc", "handle,0:URL"):
        src = write(tmp_path / "h.csv", f"{header}\n88.118.8/A,b\n")
        with pytest.raises(ValueError):
            await run_import(store, src, OPTIONS)
    assert await store.count_handles() == 0


@pytest.mark.parametrize("workers", [0, 1], ids=["thread", "process"])
async def test_import_twice_adds_nothing(store: HandleStore, tmp_path: Path, workers: int) -> None:
    rows = "".join(f"88.118.8/R-{i},https://r/{i}\n" for i in range(30))
    src = write(tmp_path / "r.csv", "handle,1:URL\n" + rows)
    options = ImportOptions(admin=ADMIN, homed=HOMED, batch_size=7, workers=workers)
    first = await run_import(store, src, options)
    second = await run_import(store, src, options)
    assert (first.created, first.existing) == (30, 0)
    assert (second.created, second.existing) == (0, 30)
    assert await store.count_handles() == 30
    assert not src.with_name("r.csv.checkpoint.json").exists()


async def test_jsonl_records(store: HandleStore, tmp_path: Path) -> None:
    lines = [
        {
            "handle": "88.118.8/J-1",
            "values": [
                {"index": 1, "type": "URL", "data": "https://j/1"},
                {"index": 2, "type": "BLOB", "data": {"format": "base64", "value": "AAEC"}},
            ],
        },
        {"suffix": "J-2", "values": [{"index": 1, "type": "URL", "data": "https://j/2"}]},
        {"handle": "88.118.8/J-3", "values": [{"index": "x", "type": "URL", "data": "y"}]},
        "not an object",
    ]
    src = write(tmp_path / "j.jsonl", "".join(json.dumps(x) + "\n" for x in lines) + "{oops\n")
    options = ImportOptions(prefix="88.118.8", admin=ADMIN, homed=HOMED)
    summary = await run_import(store, src, options)
    assert (summary.created, summary.failed) == (2, 3)
    values = await store.get_handle("88.118.8/J-1")
    assert values is not None
    assert [(v.index, v.type, v.data) for v in values][:2] == [
        (1, "URL", b"https://j/1"),
        (2, "BLOB", b"\x00\x01\x02"),
    ]
    assert [e["line"] for e in errors_of(src)] == [3, 4, 5]


def test_kill_during_import_then_rerun_gives_exactly_the_input(
    store_location: str, tmp_path: Path
) -> None:
    """``idnode import`` killed with SIGKILL mid-way, then run again: every row once."""
    node = tmp_path / "node"
    asyncio.run(init_node(node, "88.118.8", port=0))
    total = 40_000
    src = tmp_path / "big.csv"
    with src.open("w", encoding="utf-8") as f:
        f.write("handle,1:URL,2:DESC\n")
        for i in range(total):
            f.write(f"88.118.8/K-{i:06d},https://k.example.com/{i},item {i}\n")
    command = [
        sys.executable,
        "-m",
        "idnode.cli",
        "import",
        str(src),
        "--config",
        str(node / "idnode.toml"),
        "--db",
        store_location,
        "--batch-size",
        "500",
        "--no-progress",
    ]
    checkpoint = src.with_name("big.csv.checkpoint.json")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if checkpoint.exists() and json.loads(checkpoint.read_text())["rows"] >= 5000:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the import finished before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    assert checkpoint.exists()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    assert "resumed" in done.stdout
    assert not checkpoint.exists()

    async def check() -> None:
        store = await open_store(store_location)
        try:
            assert await store.count_handles() == total
            seen, after = 0, None
            while batch := await store.scan(after, 5000):
                for handle, values in batch:
                    i = int(handle.rsplit("-", 1)[1])
                    assert values[0].data == f"https://k.example.com/{i}".encode()
                    seen += 1
                after = batch[-1][0]
            assert seen == total
            assert handle_key(after or "") == "88.118.8/K-039999"
        finally:
            await store.close()

    asyncio.run(check())
