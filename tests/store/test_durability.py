"""An acknowledged write survives ``kill -9`` of the writing process, on every backend.

For PostgreSQL the server crashes too, while the writer is still writing: ``pg_ctl stop -m
immediate`` ends every server process at once, without a checkpoint, so on restart the server
recovers from the WAL alone. A write acknowledged before its commit reached the WAL on disk
(e.g. ``synchronous_commit = off``) would be lost.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pgserver import PostgresServer

from .conftest import StoreOpener
from .durability_writer import values_for

WRITER = Path(__file__).with_name("durability_writer.py")
ACKS_WANTED = 300
MAX_HANDLES = 100_000  # the child stops by itself at this count
DEADLINE_S = 60.0


class Acknowledgements:
    """Complete lines of the child's stdout, read as they come."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self._fd = proc.stdout.fileno()
        self._buffer = b""
        self.lines: list[str] = []

    def read(self, wanted: int, deadline: float) -> list[str]:
        """Read until ``wanted`` lines in all, end of file, or the deadline; all lines so far."""
        with selectors.DefaultSelector() as selector:
            selector.register(self._fd, selectors.EVENT_READ)
            while len(self.lines) < wanted and time.monotonic() < deadline:
                if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                    break
                chunk = os.read(self._fd, 65536)
                if not chunk:
                    break  # the child exited
                self._buffer += chunk
                *lines, self._buffer = self._buffer.split(b"\n")
                self.lines.extend(line.decode() for line in lines)
        return self.lines


def test_acknowledged_creates_survive_sigkill(
    backend: str,
    store_location: str,
    open_store: StoreOpener,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    server: PostgresServer | None = None
    if backend == "postgresql":
        server = request.getfixturevalue("pg_server")
    stderr_path = tmp_path / "writer.stderr"
    with (
        stderr_path.open("wb") as stderr,
        subprocess.Popen(
            [sys.executable, str(WRITER), store_location, str(MAX_HANDLES)],
            stdout=subprocess.PIPE,
            stderr=stderr,
        ) as proc,
    ):
        acks = Acknowledgements(proc)
        try:
            acks.read(ACKS_WANTED, time.monotonic() + DEADLINE_S)
            if server is not None:
                server.pg_ctl("stop", mode="immediate")  # crash under the running writer
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            if server is not None:
                server.pg_ctl("start")  # crash recovery from the WAL
        acked = acks.read(MAX_HANDLES, time.monotonic() + 10)  # what came before the kill
    # The PostgreSQL writer may have stopped by itself (StoreError) when the server crashed.
    expected_exit = {-signal.SIGKILL} if server is None else {-signal.SIGKILL, 1}
    assert proc.returncode in expected_exit, stderr_path.read_text()
    assert len(acked) >= ACKS_WANTED, stderr_path.read_text()
    assert acked[:3] == ["DUR/0", "DUR/1", "DUR/2"]

    async def check() -> None:
        store = await open_store()
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
