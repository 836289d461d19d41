"""Several worker processes on one port (``workers = N``, idnode.server.workers).

A real ``idnode serve`` with two workers on 127.0.0.1, on SQLite and on PostgreSQL: both
workers serve, writes through different connections (spread over the workers) all succeed,
``kill -9`` of a worker gets it restarted, and every acknowledged write is still there. A
challenge issued by one worker and answered to another succeeds (two nodes of one directory
on two ports stand for two workers, so that the hand-over is certain, not left to the
kernel's hash), over TCP and over UDP; and an answer is accepted only once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from idnode.bootstrap import init_node
from idnode.client import HandleClient, SecretKeyCredentials
from idnode.errors import AuthenticationTimeout
from idnode.protocol.bodies import ResolutionRequest, ValuesRequest
from idnode.protocol.codes import OpCode, ResponseCode
from idnode.protocol.values import HandleValue
from idnode.server.config import NodeConfig
from tests.pgserver import PostgresServer
from tests.ports import free_ports
from tests.server.nodeutil import (
    HOST,
    PREFIX,
    PREFIX_HANDLE,
    PRIVATE,
    create_node_dir,
    no_internal_errors,
    running_node,
    text_value,
)

__all__ = ["no_internal_errors"]

DEMO = f"{PREFIX}/PV-2026-000123"
_databases = itertools.count()


def _free_port() -> int:
    return free_ports(1)[0]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except FileNotFoundError:
        return []


def _wait(predicate: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _resolves(port: int, handle: str = DEMO, *, tcp: bool = False) -> bool:
    client = HandleClient(HOST, port, tcp=tcp, timeout=2.0, retries=0)
    try:
        return bool(asyncio.run(client.resolve(handle)))
    except Exception:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return "idnode.db"
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"idnode_workers_{next(_databases)}"
    server.psql(f"CREATE DATABASE {name}")
    return server.url(name)


def two_worker_config(directory: Path, database: str | None = None) -> NodeConfig:
    """A demo node in ``directory`` set up for ``idnode serve`` with two workers on free
    ports, without the per-address limits."""
    asyncio.run(init_node(directory, PREFIX, port=0, demo=True, database=database or "idnode.db"))
    path = directory / "idnode.toml"
    config = dataclasses.replace(
        NodeConfig.load(path),
        workers=2,
        port=_free_port(),
        http_port=_free_port(),
        writes_per_second=0,
        auth_failures_limit=0,
    )
    path.write_text(config.dump(), encoding="utf-8")
    return config


@contextlib.contextmanager
def serving(directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``idnode serve`` of the node in ``directory`` (output in serve.log) until the block
    ends; then SIGTERM, and the parent must exit cleanly."""
    log = (directory / "serve.log").open("wb")
    parent = subprocess.Popen(
        [sys.executable, "-m", "idnode.cli", "serve", "--config", str(directory / "idnode.toml")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(lambda: len(_children(parent.pid)) == 2, 30, "two workers")
        yield parent
    finally:
        parent.send_signal(signal.SIGTERM)
        try:
            parent.wait(30)
        except subprocess.TimeoutExpired:
            parent.kill()
            parent.wait()
        log.close()
    assert parent.returncode == 0, (directory / "serve.log").read_text()


def test_workers_serve_restart_and_keep_writes(tmp_path: Path, database: str) -> None:
    config = two_worker_config(tmp_path, database)
    port = config.port
    secret = (tmp_path / "admin-secret").read_bytes().rstrip(b"\r\n")
    creds = SecretKeyCredentials(PREFIX_HANDLE, 300, secret)
    with serving(tmp_path) as parent:
        _wait(lambda: _resolves(port) and _resolves(port, tcp=True), 30, "the workers to serve")
        workers = set(_children(parent.pid))

        async def write(n: int) -> str:
            handle = f"{PREFIX}/WORKER-{n}"
            client = HandleClient(HOST, port, tcp=True, timeout=10.0, credentials=creds)
            await client.create_handle(handle, [text_value(1, "URL", f"https://x.example/{n}")])
            return handle

        async def writes(numbers: range) -> list[str]:
            return list(await asyncio.gather(*(write(n) for n in numbers)))

        acked = asyncio.run(writes(range(24)))  # 24 connections: both workers write
        victim = sorted(workers)[0]
        os.kill(victim, signal.SIGKILL)
        _wait(
            lambda: len(_children(parent.pid)) == 2 and victim not in _children(parent.pid),
            30,
            "the killed worker to be replaced",
        )
        _wait(lambda: _resolves(port), 30, "the node to serve again")
        acked += asyncio.run(writes(range(24, 30)))
        for handle in acked:
            assert _resolves(port, handle, tcp=True), handle
        assert parent.poll() is None, "the parent survives its worker"
    assert b"restarting" in (tmp_path / "serve.log").read_bytes()


def two_worker_dir(directory: Path) -> None:
    """A node directory whose configuration says two workers (for two in-process nodes
    standing in for them: the hand-over between them is then certain)."""
    create_node_dir(directory)
    path = directory / "idnode.toml"
    config = dataclasses.replace(NodeConfig.load(path), workers=2)
    path.write_text(config.dump(), encoding="utf-8")


# -- challenges across workers ------------------------------------------------------------------


@pytest.mark.parametrize("tcp", [True, False], ids=["tcp", "udp"])
def test_challenge_answered_to_another_worker(tmp_path: Path, tcp: bool) -> None:
    two_worker_dir(tmp_path)
    with running_node(tmp_path) as first, running_node(tmp_path) as second:
        assert first.port != second.port
        handle = f"{PREFIX}/CROSS-{'TCP' if tcp else 'UDP'}"
        first.put_handle(handle, [text_value(1, "SECRET", "s3cret", permissions=PRIVATE)])
        creds = first.secret_credentials
        to_first = HandleClient(HOST, first.port, tcp=tcp, timeout=5.0, credentials=creds)
        to_second = HandleClient(HOST, second.port, tcp=tcp, timeout=5.0, credentials=creds)

        async def exchange() -> None:
            # a resolution of an ADMIN_READ value: the first worker challenges
            request = to_first.build(OpCode.RESOLUTION, ResolutionRequest(handle))
            challenge = await to_first.exchange(request, tcp)
            assert challenge.response_code == ResponseCode.AUTHENTICATION_NEEDED
            answer = to_first.challenge_answer(request, challenge)
            # ... the second worker gets the answer and unlocks the request
            reply = await to_second.exchange(answer, tcp)
            assert reply.response_code == ResponseCode.SUCCESS
            # an answer is single-use, whichever worker sees it again
            again = await to_first.exchange(answer, tcp)
            assert again.response_code == AuthenticationTimeout.response_code
            # an administrative request the same way (a write)
            value = HandleValue(2, "URL", b"https://x.example/cross")
            write = to_second.build(OpCode.ADD_VALUE, ValuesRequest(handle, (value,)))
            challenge = await to_second.exchange(write, True)
            assert challenge.response_code == ResponseCode.AUTHENTICATION_NEEDED
            done = await to_first.exchange(to_second.challenge_answer(write, challenge), True)
            assert done.response_code == ResponseCode.SUCCESS

        asyncio.run(exchange())
        values = first.get_handle(handle)
        assert values is not None and [v.index for v in values] == [1, 2]
