"""The HTTP server's protection against slow clients, and TLS certificate reload, on real
sockets (an HTTPServer serving a trivial ASGI app on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from idnode.http.server import HTTPServer

from ..tlsutil import make_certificate

HOST = "127.0.0.1"


async def hello(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while True:  # read the whole body (a stalled one ends in http.disconnect)
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body"):
            break
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def started(server: HTTPServer) -> HTTPServer:
    await server.start()
    return server


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes ``sock`` within ``seconds`` (reads until EOF or reset)."""
    sock.settimeout(seconds)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if not sock.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


@pytest.mark.parametrize(
    "partial",
    [
        b"",
        b"GET / HTTP/1.1\r\nHost: x\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
    ],
    ids=["silent", "slow-headers", "slow-body"],
)
def test_slow_clients_are_disconnected_and_others_served(partial: bytes) -> None:
    async def scenario() -> None:
        server = await started(HTTPServer(hello, HOST, 0, head_timeout=0.5, body_timeout=0.5))
        try:
            loop = asyncio.get_running_loop()
            slow = [socket.create_connection((HOST, server.port), timeout=5) for _ in range(20)]
            try:
                for sock in slow:
                    sock.sendall(partial)
                start = time.monotonic()
                async with httpx.AsyncClient() as client:  # a normal client is served meanwhile
                    reply = await client.get(f"http://{HOST}:{server.port}/", timeout=5)
                assert reply.text == "ok"
                results = await asyncio.gather(
                    *(loop.run_in_executor(None, closed_within, s, 5.0) for s in slow)
                )
                assert all(results)
                print(f"20 slow clients disconnected after {time.monotonic() - start:.2f} s")
            finally:
                for sock in slow:
                    sock.close()
        finally:
            await server.close()

    asyncio.run(scenario())


def test_kept_alive_connection_gets_a_new_head_deadline() -> None:
    async def scenario() -> None:
        server = await started(HTTPServer(hello, HOST, 0, head_timeout=0.5, body_timeout=0.5))
        try:
            sock = socket.create_connection((HOST, server.port), timeout=5)
            with sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                first = await asyncio.get_running_loop().run_in_executor(None, sock.recv, 4096)
                assert b"200" in first
                await asyncio.sleep(0.7)  # idle between requests: the keep-alive rule (5 s)
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # then a slow second request
                assert await asyncio.get_running_loop().run_in_executor(
                    None, closed_within, sock, 5.0
                )
        finally:
            await server.close()

    asyncio.run(scenario())


def fingerprint(port: int) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((HOST, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


@pytest.fixture
def certificates(tmp_path: Path) -> tuple[Path, Path, Path]:
    live, other = tmp_path / "live", tmp_path / "other"
    live.mkdir()
    other.mkdir()
    make_certificate(live)
    make_certificate(other)
    return live / "tls-cert.pem", live / "tls-key.pem", other


def test_certificate_reload_without_restart(certificates: tuple[Path, Path, Path]) -> None:
    cert, key, other = certificates

    async def scenario() -> None:
        server = HTTPServer(hello, HOST, 0, certfile=cert, keyfile=key, tls_watch=0.1)
        await server.start()
        try:
            loop = asyncio.get_running_loop()
            before = await loop.run_in_executor(None, fingerprint, server.port)
            shutil.copy(other / "tls-cert.pem", cert)
            shutil.copy(other / "tls-key.pem", key)
            deadline = time.monotonic() + 10
            after = before
            while after == before and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                after = await loop.run_in_executor(None, fingerprint, server.port)
            assert after != before, "the new certificate was not picked up"
            # A broken file keeps the certificate in use.
            cert.write_text("not a certificate")
            assert not server.reload_tls()
            assert await loop.run_in_executor(None, fingerprint, server.port) == after
        finally:
            await server.close()

    asyncio.run(scenario())
