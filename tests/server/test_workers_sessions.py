"""Sessions and login tokens across the worker processes of one node (``workers = N``).

Native sessions (op 400), ``/api/sessions`` and SNMS tokens are kept in the node's shared
session database (idnode.server.sessiondb) when it runs several workers. Two nodes of one
directory on two ports stand for two workers, so that every hand-over is certain: a session
set up by one is used, replay-checked and ended in the other. Then a real ``idnode serve``
with two workers on 127.0.0.1: a session set up over UDP and used by many TCP requests on
new connections, ``/api/sessions`` and SNMS tokens used over many new HTTP connections (which
the kernel spreads over the workers), and their ends seen by all.
"""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from idnode.client import HandleClient, SecretKeyCredentials
from idnode.industry.accounts import new_account
from idnode.protocol.bodies import ResolutionRequest, ValuesRequest
from idnode.protocol.codes import OpCode, ResponseCode
from idnode.protocol.values import HandleValue
from idnode.store import open_store
from tests.server.nodeutil import (
    HOST,
    PREFIX,
    PREFIX_HANDLE,
    RunningNode,
    no_internal_errors,
    running_node,
    text_value,
)
from tests.server.test_workers import (
    _children,
    _wait,
    serving,
    two_worker_config,
    two_worker_dir,
)

__all__ = ["no_internal_errors"]

IDENTITY = f"300:{PREFIX_HANDLE}"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[RunningNode, RunningNode]]:
    two_worker_dir(tmp_path)
    with running_node(tmp_path) as first, running_node(tmp_path) as second:
        assert first.port != second.port
        yield first, second


def _value(n: int) -> HandleValue:
    return HandleValue(n, "URL", f"https://x.example/{n}".encode())


# -- native sessions ----------------------------------------------------------------------------


def test_native_session_across_workers(pair: tuple[RunningNode, RunningNode]) -> None:
    first, second = pair
    handle = f"{PREFIX}/SESSION-CROSS"
    first.put_handle(handle, [text_value(1, "DESC", "x")])
    creds = first.secret_credentials
    udp_first = HandleClient(HOST, first.port, timeout=5.0, credentials=creds)
    tcp = {
        0: HandleClient(HOST, first.port, tcp=True, timeout=5.0, credentials=creds),
        1: HandleClient(HOST, second.port, tcp=True, timeout=5.0, credentials=creds),
    }

    async def run() -> None:
        session = udp_first.session()
        await session.open()  # over UDP, to the first worker
        # the first administrative request goes to the second worker: challenged there ...
        write = session.sign(tcp[1].build(OpCode.ADD_VALUE, ValuesRequest(handle, (_value(2),))))
        challenge = await tcp[1].exchange(write, True)
        assert challenge.response_code == ResponseCode.AUTHENTICATION_NEEDED
        assert challenge.session_id == session.session_id
        # ... answered to the first, which unlocks it and authenticates the session
        answer = tcp[1].challenge_answer(write, challenge)
        done = await tcp[0].exchange(answer, True)
        assert done.response_code == ResponseCode.SUCCESS, done
        # then requests alternate between the workers, with no challenge
        for n in range(3, 13):
            session.client = tcp[n % 2]
            await session.add_values(handle, [_value(n)])
        # a message run by one worker is refused when replayed to either
        message = session.sign(tcp[0].build(OpCode.ADD_VALUE, ValuesRequest(handle, (_value(20),))))
        assert (await tcp[0].exchange(message, True)).response_code == ResponseCode.SUCCESS
        for client in tcp.values():
            again = await client.exchange(message, True)
            assert again.response_code == ResponseCode.SESSION_MESSAGE_REJECTED
        # the server's counters of both workers never repeat (the client checks them)
        for n in range(4):
            session.client = tcp[n % 2]
            assert await session.resolve(handle)
        # ended in the second worker, it is gone in the first
        session.client = tcp[1]
        await session.close()
        late = session_message(session, tcp[0], handle)
        reply = await tcp[0].exchange(late, True)
        assert reply.response_code == ResponseCode.SESSION_TIMEOUT

    asyncio.run(run())
    values = first.get_handle(handle)
    assert values is not None
    assert sorted(v.index for v in values) == [1, *range(2, 13), 20]


def session_message(session: Any, client: HandleClient, handle: str) -> Any:
    """A request signed in ``session`` (its key is kept so it can be signed after close)."""
    key = session._key
    session._key = key or b"\x00" * 16
    try:
        return session.sign(client.build(OpCode.RESOLUTION, ResolutionRequest(handle)))
    finally:
        session._key = key


def test_encrypted_session_across_workers(pair: tuple[RunningNode, RunningNode]) -> None:
    first, second = pair
    handle = f"{PREFIX}/SESSION-ENC"
    first.put_handle(handle, [text_value(1, "DESC", "x")])
    creds = first.secret_credentials
    clients = [
        HandleClient(HOST, node.port, tcp=True, timeout=5.0, credentials=creds)
        for node in (first, second)
    ]

    async def run() -> None:
        async with clients[0].session(encrypt=True) as session:
            for n in range(2, 8):
                session.client = clients[n % 2]
                await session.add_values(handle, [_value(n)])
            session.client = clients[1]

    asyncio.run(run())
    values = second.get_handle(handle)
    assert values is not None and sorted(v.index for v in values) == list(range(1, 8))


def test_session_database_is_private(pair: tuple[RunningNode, RunningNode]) -> None:
    first, _second = pair
    directory = first.directory / ".sessions"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# -- /api/sessions ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _answer(session_id: str, nonce: bytes, secret: bytes) -> str:
    import hmac

    cnonce = os.urandom(16)
    signature = hmac.new(secret, nonce + cnonce, "sha256").digest()
    fields = {
        "version": "0",
        "sessionId": session_id,
        "id": quote(IDENTITY, safe=""),
        "type": "HS_SECKEY",
        "cnonce": _b64(cnonce),
        "alg": "HMAC-SHA256",
        "signature": _b64(signature),
    }
    return "Handle " + ", ".join(f'{k}="{v}"' for k, v in fields.items())


def _http(node: RunningNode) -> str:
    assert node.node.http_port is not None
    return f"http://{HOST}:{node.node.http_port}"


def test_http_sessions_across_workers(pair: tuple[RunningNode, RunningNode]) -> None:
    first, second = pair
    urls = [_http(first), _http(second)]
    created = httpx.post(f"{urls[0]}/api/sessions")
    assert created.status_code == 201
    session_id, nonce = created.json()["sessionId"], base64.b64decode(created.json()["nonce"])
    # answered in the second worker
    header = _answer(session_id, nonce, first.admin_secret)
    r = httpx.put(f"{urls[1]}/api/sessions/this", headers={"Authorization": header})
    assert r.status_code == 200 and r.json()["id"] == IDENTITY, r.text
    only = {"Authorization": f'Handle sessionId="{session_id}"'}
    for n in range(6):  # writes with the session alone, in both workers
        handle = f"{PREFIX}/HTTP-SESSION-{n}"
        body = {"values": [{"index": 1, "type": "URL", "data": f"https://x.example/{n}"}]}
        r = httpx.put(f"{urls[n % 2]}/api/handles/{handle}", json=body, headers=only)
        assert r.status_code in (200, 201), r.text
        assert first.get_handle(handle) is not None
    r = httpx.get(f"{urls[0]}/api/sessions/this", headers=only)
    assert r.json()["authenticated"] is True and r.json()["id"] == IDENTITY
    # the repeated answer header is accepted in the first worker too (no new check needed)
    r = httpx.get(f"{urls[0]}/api/sessions/this", headers={"Authorization": header})
    assert r.status_code == 200 and r.json()["id"] == IDENTITY
    # deleted in the first worker: gone in both
    assert httpx.delete(f"{urls[0]}/api/sessions/this", headers=only).status_code == 204
    for url in urls:
        assert httpx.get(f"{url}/api/sessions/this", headers=only).status_code == 403
        r = httpx.put(f"{url}/api/handles/{PREFIX}/HTTP-LATE", json={"values": []}, headers=only)
        assert r.status_code == 401


# -- SNMS tokens --------------------------------------------------------------------------------


def _snms(url: str, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.request(method, f"{url}{path}", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _login(url: str, username: str, password: str) -> str:
    out = _snms(url, "POST", "/identity/token", body={"username": username, "password": password})
    assert out["status"] == 1, out
    token: str = out["data"]["token"]
    return token


def test_snms_tokens_across_workers(pair: tuple[RunningNode, RunningNode]) -> None:
    first, second = pair
    urls = [_http(first), _http(second)]
    for username, role in (("root", "node_admin"), ("audit", "auditor")):
        account = new_account(username, f"{username}-pw", role, IDENTITY)
        first.call(first.node.store.accounts().add_account(account))  # type: ignore[attr-defined]
    root = _login(urls[0], "root", "root-pw")
    audit = _login(urls[1], "audit", "audit-pw")
    for n in range(4):
        assert _snms(urls[n % 2], "GET", "/api/admin/accounts", root)["status"] == 1
        assert _snms(urls[n % 2], "GET", "/api/admin/accounts", audit)["status"] == 1
        r = httpx.get(f"{urls[n % 2]}/api/stats", headers={"Authorization": f"Bearer {audit}"})
        assert r.status_code == 200, r.text
    # disabled through the second worker: the token ends in both ...
    out = _snms(urls[1], "POST", "/api/admin/accounts/audit/disable", root)
    assert out["status"] == 1, out
    for url in urls:
        assert _snms(url, "GET", "/api/admin/accounts", audit)["status"] == -1
    # ... and stays ended when the account is enabled again; a new login works everywhere
    assert _snms(urls[0], "POST", "/api/admin/accounts/audit/enable", root)["status"] == 1
    for url in urls:
        assert _snms(url, "GET", "/api/admin/accounts", audit)["status"] == -1
    fresh = _login(urls[0], "audit", "audit-pw")
    for url in urls:
        assert _snms(url, "GET", "/api/admin/accounts", fresh)["status"] == 1
    # a token altered in any part is refused
    name, expires, mac = fresh.split(".")
    for forged in (
        f"{name}.{int(expires) + 3600}.{mac}",
        f"{name}.0.{expires}.{mac}",
        f"{base64.urlsafe_b64encode(b'root').decode().rstrip('=')}.{expires}.{mac}",
        "nonsense",
    ):
        assert _snms(urls[1], "GET", "/api/admin/accounts", forged)["status"] == -1


# -- a real node with two workers ---------------------------------------------------------------


def _sockets(table: str, port: int) -> set[str]:
    """Inodes of the sockets of ``/proc/net/<table>`` bound to ``port`` (TCP: listening)."""
    inodes = set()
    for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if int(local.rsplit(":", 1)[1], 16) == port and (table != "tcp" or state == "0A"):
            inodes.add(inode)
    return inodes


def _bound(pid: int, *ports: tuple[str, int]) -> bool:
    """Whether process ``pid`` holds a socket on each (table, port) of ``ports``."""
    try:
        links = {os.readlink(p) for p in Path(f"/proc/{pid}/fd").iterdir()}
    except (FileNotFoundError, PermissionError):
        return False
    held = {link[len("socket:[") : -1] for link in links if link.startswith("socket:[")}
    return all(held & _sockets(table, port) for table, port in ports)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, int, bytes]]:
    """``idnode serve`` with two workers: (port, HTTP port, the admin's secret)."""
    config = two_worker_config(tmp_path)
    port, http_port = config.port, config.http_port
    assert http_port is not None

    async def add_account() -> None:
        store = await open_store(config.database_location)
        try:
            account = new_account("root", "root-pw", "node_admin", IDENTITY)
            await store.accounts().add_account(account)  # type: ignore[attr-defined]
        finally:
            await store.close()

    asyncio.run(add_account())
    with serving(tmp_path) as parent:
        ports = (("tcp", port), ("udp", port), ("tcp", http_port))
        _wait(
            lambda: all(_bound(pid, *ports) for pid in _children(parent.pid)),
            30,
            "both workers to listen",
        )
        secret = (tmp_path / "admin-secret").read_bytes().rstrip(b"\r\n")
        yield port, http_port, secret
    assert b"Traceback" not in (tmp_path / "serve.log").read_bytes()


def test_two_workers_sessions_and_tokens(served: tuple[int, int, bytes]) -> None:
    port, http_port, secret = served
    creds = SecretKeyCredentials(PREFIX_HANDLE, 300, secret)
    handle = f"{PREFIX}/SERVED-SESSION"

    async def native() -> None:
        udp = HandleClient(HOST, port, timeout=5.0, retries=2, credentials=creds)
        tcp = HandleClient(HOST, port, tcp=True, timeout=10.0, credentials=creds)
        session = udp.session()
        await session.open()  # over UDP
        session.client = tcp  # then TCP, a new connection for every request
        await session.create_handle(handle, [_value(1)])
        for n in range(2, 32):
            await session.add_values(handle, [_value(n)])
        replayed = session.sign(tcp.build(OpCode.ADD_VALUE, ValuesRequest(handle, (_value(40),))))
        assert (await tcp.exchange(replayed, True)).response_code == ResponseCode.SUCCESS
        for _ in range(8):  # new connections: both workers refuse it
            again = await tcp.exchange(replayed, True)
            assert again.response_code == ResponseCode.SESSION_MESSAGE_REJECTED
        await session.close()
        for _ in range(8):
            late = session_message(session, tcp, handle)
            assert (await tcp.exchange(late, True)).response_code == ResponseCode.SESSION_TIMEOUT
        values = await tcp.resolve(handle)
        assert sorted(v.index for v in values) == [*range(1, 32), 40]

    asyncio.run(native())

    url = f"http://{HOST}:{http_port}"
    basic = "Basic " + _b64(f"{quote(IDENTITY, safe='')}:".encode() + secret)
    created = httpx.post(f"{url}/api/sessions", headers={"Authorization": basic})
    assert created.status_code == 201 and created.json()["authenticated"] is True, created.text
    only = {"Authorization": f'Handle sessionId="{created.json()["sessionId"]}"'}
    for n in range(20):  # httpx.put: a new connection each time
        body = {"values": [{"index": 1, "type": "URL", "data": f"https://x.example/{n}"}]}
        r = httpx.put(f"{url}/api/handles/{PREFIX}/SERVED-HTTP-{n}", json=body, headers=only)
        assert r.status_code in (200, 201), r.text
    assert httpx.delete(f"{url}/api/sessions/this", headers=only).status_code == 204
    for _ in range(10):
        assert httpx.get(f"{url}/api/sessions/this", headers=only).status_code == 403

    token = _login(url, "root", "root-pw")
    for _ in range(20):
        assert _snms(url, "GET", "/api/admin/accounts", token)["status"] == 1
    out = _snms(url, "POST", "/api/admin/accounts", token,
                {"username": "audit", "password": "audit-pw", "role": "auditor",
                 "identity": IDENTITY})  # fmt: skip
    assert out["status"] == 1, out
    audit = _login(url, "audit", "audit-pw")
    for _ in range(10):
        assert _snms(url, "GET", "/api/admin/accounts", audit)["status"] == 1
    assert _snms(url, "POST", "/api/admin/accounts/audit/disable", token)["status"] == 1
    for _ in range(10):
        assert _snms(url, "GET", "/api/admin/accounts", audit)["status"] == -1
