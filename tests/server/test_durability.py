"""Acknowledged writes survive ``kill -9`` of a real ``idnode serve`` process.

The server runs as a subprocess (``python -m idnode.cli serve --config ...``) on SQLite and on
PostgreSQL. Several clients create handles with the admin secret, over the native protocol
(TCP) or the HTTP API (PUT with Basic authentication); once enough creates are acknowledged
a separate thread kills the server with SIGKILL while other creates are in flight. After a
restart every acknowledged handle must resolve with exactly its values, and a create that was
not acknowledged must be either absent or complete (never half-written).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from idnode.bootstrap import init_node
from idnode.client import HandleClient, SecretKeyCredentials
from idnode.errors import HandleNotFound
from idnode.jsonvalues import value_to_json
from idnode.protocol.values import HandleValue
from tests.pgserver import PostgresServer
from tests.server.nodeutil import (
    HOST,
    PREFIX,
    PREFIX_HANDLE,
    admin_value,
    text_value,
)

#: Bounds of the write stream.
WORKERS = 4
MAX_CREATES = 200
MAX_SECONDS = 2.0
KILL_AFTER = 40
STARTUP_TIMEOUT = 30.0

_SERVING = re.compile(r"idnode serving .* on [^ ]+:(\d+) .*http://[^ ]+:(\d+)/")


class ServerProcess:
    """``idnode serve`` in a subprocess; ``port`` is parsed from its start-up line."""

    def __init__(self, config_path: Path) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "idnode.cli", "serve", "--config", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self.port, self.http_port = self._wait_for_ports()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_ports(self) -> tuple[int, int]:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"server did not start: {self.output}") from None
            if line is None:
                self.stop()
                raise RuntimeError(f"server exited at start-up: {self.output}")
            self.output.append(line)
            match = _SERVING.search(line)
            if match:
                return int(match.group(1)), int(match.group(2))

    def kill(self) -> None:
        """SIGKILL (what ``kill -9`` sends)."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it does not exit in 10 s; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return self.proc.returncode


def values_for(handle: str) -> list[HandleValue]:
    return [
        text_value(1, "URL", f"https://example.com/durable/{handle}"),
        text_value(2, "DESC", f"durability test value of {handle} " + "x" * 200),
        admin_value(100, 0x0FFF, PREFIX_HANDLE, 200),
    ]


async def write_stream(
    server: ServerProcess, transport: str, creds: SecretKeyCredentials, acked: list[str],
    attempted: list[str], ack_event: threading.Event,
) -> None:  # fmt: skip
    """WORKERS concurrent creators until the server dies, MAX_CREATES or MAX_SECONDS."""
    deadline = time.monotonic() + MAX_SECONDS
    counter = iter(range(MAX_CREATES))
    user = quote(f"{creds.index}:{creds.handle}", safe="")
    auth = httpx.BasicAuth(user, creds.secret.decode())

    async def create(http: httpx.AsyncClient, client: HandleClient, handle: str) -> None:
        if transport == "native":
            await client.create_handle(handle, values_for(handle))
            return
        body = {"values": [value_to_json(v) for v in values_for(handle)]}
        response = await http.put(f"/api/handles/{handle}?overwrite=false", json=body)
        if response.status_code != 201:
            raise ConnectionError(f"HTTP {response.status_code}: {response.text}")

    async def worker() -> None:
        client = HandleClient(HOST, server.port, tcp=True, timeout=3.0, credentials=creds)
        base = f"http://{HOST}:{server.http_port}"
        async with httpx.AsyncClient(base_url=base, auth=auth, timeout=3.0) as http:
            for i in counter:
                if time.monotonic() > deadline:
                    return
                handle = f"{PREFIX}/DURABLE-{i:04d}"
                attempted.append(handle)
                try:
                    await create(http, client, handle)
                except (OSError, asyncio.IncompleteReadError, TimeoutError, httpx.HTTPError):
                    return  # the server is gone
                acked.append(handle)
                if len(acked) >= KILL_AFTER:
                    ack_event.set()

    await asyncio.gather(*(worker() for _ in range(WORKERS)))


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    """The node's database: a SQLite file in the node directory, or a fresh PostgreSQL one."""
    if request.param == "sqlite":
        return "idnode.db"
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"idnode_durable_{next(_databases)}"
    server.psql(f"CREATE DATABASE {name}")
    return server.url(name)


_databases = itertools.count()


@pytest.mark.parametrize("transport", ["native", "http"])
def test_acknowledged_creates_survive_kill_9(tmp_path: Path, database: str, transport: str) -> None:
    asyncio.run(init_node(tmp_path, PREFIX, port=0, demo=True, database=database))
    config_path = tmp_path / "idnode.toml"
    creds = SecretKeyCredentials(
        PREFIX_HANDLE, 300, (tmp_path / "admin-secret").read_bytes().rstrip(b"\r\n")
    )
    acked: list[str] = []
    attempted: list[str] = []
    ack_event = threading.Event()

    server = ServerProcess(config_path)
    try:
        probe = HandleClient(HOST, server.port, tcp=True, timeout=3.0)
        assert asyncio.run(probe.resolve(f"{PREFIX}/PV-2026-000123"))

        def killer() -> None:
            if ack_event.wait(MAX_SECONDS + 10):
                server.kill()

        killer_thread = threading.Thread(target=killer, daemon=True)
        killer_thread.start()
        asyncio.run(write_stream(server, transport, creds, acked, attempted, ack_event))
        ack_event.set()  # if the stream ended early, kill now
        killer_thread.join(10)
        server.proc.wait(10)
        assert server.proc.returncode == -signal.SIGKILL
    finally:
        server.stop()

    assert len(acked) >= KILL_AFTER, f"only {len(acked)} creates acknowledged before the kill"
    assert len(attempted) > len(acked), "the kill should interrupt the stream"

    server = ServerProcess(config_path)
    try:
        client = HandleClient(HOST, server.port, tcp=True, timeout=5.0, credentials=creds)

        async def check() -> list[str]:
            lost = []
            for handle in attempted:
                try:
                    values = await client.resolve(handle)
                except HandleNotFound:
                    if handle in acked:
                        lost.append(handle)
                    continue
                expected = values_for(handle)
                got = [(v.index, v.type, v.data) for v in values]
                assert got == [(v.index, v.type, v.data) for v in expected], handle
            return lost

        lost = asyncio.run(check())
        assert not lost, f"{len(lost)} acknowledged handles lost: {lost[:5]}"
        listed = asyncio.run(client.list_handles(PREFIX))
        assert set(acked) <= set(listed)
    finally:
        status = server.stop()
    assert status == 0, f"the restarted server did not stop cleanly: {server.output}"
