"""An acknowledged write survives ``kill -9`` of the writing process."""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from idnode.store.sqlite import SQLiteStore

from .durability_writer import values_for

WRITER = Path(__file__).with_name("durability_writer.py")
ACKS_WANTED = 300
MAX_HANDLES = 100_000  # the child stops by itself at this count
DEADLINE_S = 60.0


def read_acknowledgements(proc: subprocess.Popen[bytes], wanted: int, deadline: float) -> list[str]:
    """Complete lines from the child's stdout until ``wanted`` lines or the deadline."""
    assert proc.stdout is not None
    acked: list[str] = []
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while len(acked) < wanted and time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break  # the child exited
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            acked.extend(line.decode() for line in lines)
    return acked


def test_acknowledged_creates_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "durable.db"
    stderr_path = tmp_path / "writer.stderr"
    with (
        stderr_path.open("wb") as stderr,
        subprocess.Popen(
            [sys.executable, str(WRITER), str(db), str(MAX_HANDLES)],
            stdout=subprocess.PIPE,
            stderr=stderr,
        ) as proc,
    ):
        try:
            acked = read_acknowledgements(proc, ACKS_WANTED, time.monotonic() + DEADLINE_S)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, stderr_path.read_text()
    assert len(acked) >= ACKS_WANTED, stderr_path.read_text()
    assert acked[:3] == ["DUR/0", "DUR/1", "DUR/2"]

    async def check() -> None:
        store = await SQLiteStore.open(db)
        try:
            for handle in acked:
                n = int(handle.removeprefix("DUR/"))
                assert await store.get_handle(handle) == tuple(values_for(n)), handle
            # Writes are atomic: whatever else made it to disk is a whole record too.
            stored = await store.list_handles("DUR")
            assert set(acked) <= set(stored)
            for handle in stored:
                n = int(handle.removeprefix("DUR/"))
                assert await store.get_handle(handle) == tuple(values_for(n)), handle
        finally:
            await store.close()

    asyncio.run(check())
