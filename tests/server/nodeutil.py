"""Helpers for the integration tests: a real node on 127.0.0.1 in a background thread.

:func:`running_node` opens a :class:`~idnode.server.node.Node` on its own event loop in a
daemon thread (so plain sync tests, :class:`~idnode.client.SyncHandleClient` and the CLI can
talk to it over real sockets) and stops it cleanly: the loop closes the node, the thread is
joined. :class:`RunningNode` knows the node's address, directory and admin credentials, and
reads or writes the store directly on the node's loop (:meth:`RunningNode.call`).

:func:`add_identities` creates the users the authorization tests need (see :class:`Users`).

Raw-socket helpers (:func:`udp_exchange`, :func:`tcp_exchange`, ...) always set a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from idnode.bootstrap import HANDLE_ADMIN_PERMISSIONS, init_node
from idnode.client import HandleClient, PublicKeyCredentials, SecretKeyCredentials
from idnode.protocol.codes import AdminPermission, Permission
from idnode.protocol.framing import Reassembler
from idnode.protocol.message import ENVELOPE_SIZE, Envelope, Message
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.types.hs_pubkey import PrivateKey, PublicKeyData, load_private_key
from idnode.protocol.types.hs_vlist import ValueList
from idnode.protocol.values import HandleValue, Reference
from idnode.server.authz import Identity
from idnode.server.config import NodeConfig
from idnode.server.node import Node
from idnode.server.transports import TransportLimits

T = TypeVar("T")

PREFIX = "88.118.8"
PREFIX_HANDLE = f"0.NA/{PREFIX}"
HOST = "127.0.0.1"
#: Socket and client timeout of the tests: generous for a loaded CI box, still bounded.
TIMEOUT = 5.0
PRIVATE = int(Permission.ADMIN_READ | Permission.ADMIN_WRITE)
ALL_PERMISSIONS = 0x0FFF

#: Index of the prefix-admin group on the prefix handle (not a server admin group).
PREFIX_GROUP_INDEX = 201


def make_dsa_key() -> dsa.DSAPrivateKey:
    return dsa.generate_private_key(key_size=2048)


def make_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pubkey_value(index: int, key: PrivateKey) -> HandleValue:
    data = PublicKeyData.from_public_key(key.public_key()).to_bytes()
    return HandleValue(index, "HS_PUBKEY", data, timestamp=int(time.time()))


def seckey_value(index: int, secret: bytes) -> HandleValue:
    return HandleValue(index, "HS_SECKEY", secret, timestamp=int(time.time()), permissions=PRIVATE)


def admin_value(index: int, perms: int, handle: str, admin_index: int) -> HandleValue:
    data = AdminRecord(perms, handle, admin_index).to_bytes()
    return HandleValue(index, "HS_ADMIN", data, timestamp=int(time.time()))


def vlist_value(index: int, *members: tuple[str, int]) -> HandleValue:
    data = ValueList(tuple(Reference(h, i) for h, i in members)).to_bytes()
    return HandleValue(index, "HS_VLIST", data, timestamp=int(time.time()))


def text_value(index: int, vtype: str, text: str, permissions: int | None = None) -> HandleValue:
    if permissions is None:
        return HandleValue(index, vtype, text.encode("utf-8"))
    return HandleValue(index, vtype, text.encode("utf-8"), permissions=permissions)


def without_timestamps(values: tuple[HandleValue, ...] | None) -> list[tuple[Any, ...]] | None:
    """``values`` as comparable tuples ignoring the (server-set) timestamps."""
    if values is None:
        return None
    return [(v.index, v.type.upper(), v.data, v.permissions, v.references) for v in values]


@dataclass
class RunningNode:
    """A started node: address, directory, admin credentials and direct store access."""

    directory: Path
    config: NodeConfig
    node: Node
    loop: asyncio.AbstractEventLoop
    host: str
    port: int
    admin_secret: bytes
    admin_key: PrivateKey
    server_key: PrivateKey
    #: ERROR records logged by ``idnode`` while the node ran: internal errors (bugs).
    internal_errors: list[logging.LogRecord] = dataclasses.field(default_factory=list)

    @property
    def config_path(self) -> Path:
        return self.directory / "idnode.toml"

    @property
    def server(self) -> str:
        """``HOST:PORT`` as the CLI's ``--server`` takes it."""
        return f"{self.host}:{self.port}"

    @property
    def secret_credentials(self) -> SecretKeyCredentials:
        """The bootstrap admin ``300:0.NA/<prefix>`` (HS_SECKEY, server-admin group member)."""
        return SecretKeyCredentials(PREFIX_HANDLE, 300, self.admin_secret)

    @property
    def key_credentials(self) -> PublicKeyCredentials:
        """The bootstrap admin ``301:0.NA/<prefix>`` (RSA HS_PUBKEY, server-admin group)."""
        return PublicKeyCredentials(PREFIX_HANDLE, 301, self.admin_key)

    def client(
        self,
        credentials: SecretKeyCredentials | PublicKeyCredentials | None = None,
        *,
        tcp: bool = False,
        timeout: float = TIMEOUT,
        retries: int = 1,
    ) -> HandleClient:
        return HandleClient(
            self.host, self.port, tcp=tcp, timeout=timeout, retries=retries,
            credentials=credentials,
        )  # fmt: skip

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the node's event loop (e.g. a store method) and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def get_handle(self, handle: str) -> tuple[HandleValue, ...] | None:
        return self.call(self.node.store.get_handle(handle))

    def put_handle(self, handle: str, values: list[HandleValue]) -> None:
        """Create (or replace) ``handle`` directly in the store, bypassing the protocol."""
        self.call(self.node.store.create_handle(handle, values, overwrite=True))

    def is_homed(self, prefix: str) -> bool:
        return self.call(self.node.store.is_homed(prefix))

    def list_handles(self, prefix: str = PREFIX) -> list[str]:
        return self.call(self.node.store.list_handles(prefix))

    def homed_prefixes(self) -> list[str]:
        return self.call(self.node.store.homed_prefixes())


#: Nodes started by :func:`running_node` and not yet stopped.
LIVE_NODES: list[RunningNode] = []


class _ErrorRecorder(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def no_internal_errors() -> Iterator[None]:
    """Fails a test during which a running node logged an internal error (an ERROR record of
    the ``idnode`` logger: an exception the dispatcher or a transport did not expect).
    Import it into a test module or conftest to make it apply there."""
    before = {id(n): len(n.internal_errors) for n in LIVE_NODES}
    yield
    for n in LIVE_NODES:
        new = n.internal_errors[before.get(id(n), 0) :]
        messages = [f"{r.name}: {r.getMessage()}" for r in new]
        assert not new, f"the node logged internal errors: {messages}"


def create_node_dir(directory: Path, *, limits: bool = False) -> None:
    """``init_node(directory, PREFIX, port=0, demo=True)``. The per-address limits on failed
    authentications and writes are switched off unless ``limits``: every test client is
    127.0.0.1, and the authorization matrix fails on purpose far more often than they allow
    (tests/server/test_limits.py runs with them on)."""
    asyncio.run(init_node(directory, PREFIX, port=0, demo=True))
    if not limits:
        path = directory / "idnode.toml"
        config = dataclasses.replace(
            NodeConfig.load(path), auth_failures_limit=0, writes_per_second=0
        )
        path.write_text(config.dump(), encoding="utf-8")


@contextlib.contextmanager
def running_node(
    directory: Path,
    *,
    limits: TransportLimits | None = None,
    extra_server_admins: tuple[Identity, ...] = (),
) -> Iterator[RunningNode]:
    """Start the node in ``directory`` (made by :func:`create_node_dir`) in a thread.

    The node is closed on its own loop and the thread joined when the context exits.
    """
    config = NodeConfig.load(directory / "idnode.toml")
    if extra_server_admins:
        admins = config.server_admins + extra_server_admins
        config = dataclasses.replace(config, server_admins=admins)
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        node = await Node.open(config, limits)
        try:
            await node.start()
        except BaseException:
            await node.close()
            raise
        stop = asyncio.Event()
        box.update(node=node, loop=asyncio.get_running_loop(), stop=stop)
        ready.set()
        try:
            await stop.wait()
        finally:
            await node.close()

    def thread_main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported to the test thread below
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=thread_main, name="idnode-test-node", daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the node did not start within 30 s")
    if "error" in box:
        thread.join(5)
        raise RuntimeError("the node failed to start") from box["error"]
    node: Node = box["node"]
    loop: asyncio.AbstractEventLoop = box["loop"]
    running = RunningNode(
        directory=directory,
        config=config,
        node=node,
        loop=loop,
        host=HOST,
        port=node.port,
        admin_secret=(directory / "admin-secret").read_bytes().rstrip(b"\r\n"),
        admin_key=load_private_key((directory / "admin-key.pem").read_bytes()),
        server_key=load_private_key((directory / "server-key.pem").read_bytes()),
    )
    recorder = _ErrorRecorder(running.internal_errors)
    logging.getLogger("idnode").addHandler(recorder)
    LIVE_NODES.append(running)
    try:
        yield running
    finally:
        LIVE_NODES.remove(running)
        stop: asyncio.Event = box["stop"]
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        logging.getLogger("idnode").removeHandler(recorder)
        if thread.is_alive():
            raise RuntimeError("the node thread did not stop within 30 s")
        if "error" in box:
            raise RuntimeError("the node failed while stopping") from box["error"]


# -- users of the authorization tests ------------------------------------------------------


@dataclass(frozen=True)
class Users:
    """Identities created on the node by :func:`add_identities`.

    * ``user_a`` (``88.118.8/USER-A``): RSA HS_PUBKEY at 300, HS_SECKEY at 301; admin of
      nothing (a plain authenticated non-admin).
    * ``dsa`` (``88.118.8/USER-DSA``): DSA HS_PUBKEY at 300; member of the server-admin group
      ``200:0.NA/88.118.8``.
    * ``handle_admin`` (``300:88.118.8/USER-H``, secret): named only in the HS_ADMIN of
      handles made by :func:`matrix_target`, never on the prefix handle.
    * ``partial`` (``300:88.118.8/USER-P``, secret): LIST_HANDLES only on the prefix handle,
      ADD_VALUE|MODIFY_VALUE only on matrix targets.
    * ``group_member`` (``300:88.118.8/USER-G``, secret): member of the prefix-admin group
      ``201:0.NA/88.118.8`` (HANDLE_ADMIN_PERMISSIONS on the prefix handle; not a server
      admin), which matrix targets also name.
    """

    user_a_key: rsa.RSAPrivateKey
    user_a_secret: bytes
    dsa_key: dsa.DSAPrivateKey
    handle_admin_secret: bytes
    partial_secret: bytes
    group_member_secret: bytes

    @property
    def user_a(self) -> PublicKeyCredentials:
        return PublicKeyCredentials(f"{PREFIX}/USER-A", 300, self.user_a_key)

    @property
    def user_a_seckey(self) -> SecretKeyCredentials:
        return SecretKeyCredentials(f"{PREFIX}/USER-A", 301, self.user_a_secret)

    @property
    def dsa(self) -> PublicKeyCredentials:
        return PublicKeyCredentials(f"{PREFIX}/USER-DSA", 300, self.dsa_key)

    @property
    def handle_admin(self) -> SecretKeyCredentials:
        return SecretKeyCredentials(f"{PREFIX}/USER-H", 300, self.handle_admin_secret)

    @property
    def partial(self) -> SecretKeyCredentials:
        return SecretKeyCredentials(f"{PREFIX}/USER-P", 300, self.partial_secret)

    @property
    def group_member(self) -> SecretKeyCredentials:
        return SecretKeyCredentials(f"{PREFIX}/USER-G", 300, self.group_member_secret)


#: Permissions of ``partial`` on matrix targets and on the prefix handle.
PARTIAL_TARGET_PERMS = int(AdminPermission.ADD_VALUE | AdminPermission.MODIFY_VALUE)
PARTIAL_PREFIX_PERMS = int(AdminPermission.LIST_HANDLES)


def add_identities(running: RunningNode) -> Users:
    """Create the :class:`Users` handles and groups directly in the node's store."""
    users = Users(
        user_a_key=make_rsa_key(),
        user_a_secret=b"user-a-secret",
        dsa_key=make_dsa_key(),
        handle_admin_secret=b"handle-admin-secret",
        partial_secret=b"partial-secret",
        group_member_secret=b"group-member-secret",
    )
    owner = admin_value(100, HANDLE_ADMIN_PERMISSIONS, PREFIX_HANDLE, 200)
    running.put_handle(
        f"{PREFIX}/USER-A",
        [owner, pubkey_value(300, users.user_a_key), seckey_value(301, users.user_a_secret)],
    )
    running.put_handle(f"{PREFIX}/USER-DSA", [owner, pubkey_value(300, users.dsa_key)])
    running.put_handle(f"{PREFIX}/USER-H", [owner, seckey_value(300, users.handle_admin_secret)])
    running.put_handle(f"{PREFIX}/USER-P", [owner, seckey_value(300, users.partial_secret)])
    running.put_handle(f"{PREFIX}/USER-G", [owner, seckey_value(300, users.group_member_secret)])
    prefix_record = running.get_handle(PREFIX_HANDLE)
    assert prefix_record is not None
    kept = [v for v in prefix_record if v.index not in (101, 102, 200, PREFIX_GROUP_INDEX)]
    running.put_handle(
        PREFIX_HANDLE,
        [
            *kept,
            vlist_value(
                200, (PREFIX_HANDLE, 300), (PREFIX_HANDLE, 301), (f"{PREFIX}/USER-DSA", 300)
            ),
            vlist_value(PREFIX_GROUP_INDEX, (f"{PREFIX}/USER-G", 300)),
            admin_value(101, HANDLE_ADMIN_PERMISSIONS, PREFIX_HANDLE, PREFIX_GROUP_INDEX),
            admin_value(102, PARTIAL_PREFIX_PERMS, f"{PREFIX}/USER-P", 300),
        ],
    )
    return users


def matrix_target(running: RunningNode, handle: str) -> None:
    """(Re)create ``handle``: URL at 1, DESC at 2, and HS_ADMIN values naming the handle
    admin (full handle permissions), the partial admin and the prefix-admin group, but not
    the server-admin group."""
    running.put_handle(
        handle,
        [
            text_value(1, "URL", f"https://example.com/{handle}"),
            text_value(2, "DESC", "matrix target"),
            admin_value(100, HANDLE_ADMIN_PERMISSIONS, f"{PREFIX}/USER-H", 300),
            admin_value(101, PARTIAL_TARGET_PERMS, f"{PREFIX}/USER-P", 300),
            admin_value(102, HANDLE_ADMIN_PERMISSIONS, PREFIX_HANDLE, PREFIX_GROUP_INDEX),
        ],
    )


# -- raw sockets -----------------------------------------------------------------------------


def udp_exchange(
    port: int, data: bytes, *, timeout: float = TIMEOUT, host: str = HOST
) -> bytes | None:
    """Send one datagram and reassemble the reply (None if none comes within ``timeout``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.send(data)
        reassembler = Reassembler()
        deadline = time.monotonic() + timeout
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                datagram = sock.recv(65536)
            except TimeoutError:
                return None
            whole = reassembler.feed(datagram, time.monotonic())
            if whole is not None:
                return whole


def udp_datagrams(
    port: int, data: bytes, *, count_timeout: float = 1.0, host: str = HOST
) -> list[bytes]:
    """Send one datagram; every datagram received until ``count_timeout`` of silence."""
    out: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        sock.send(data)
        sock.settimeout(TIMEOUT)
        while True:
            try:
                out.append(sock.recv(65536))
            except TimeoutError:
                return out
            sock.settimeout(count_timeout)


def recv_all(sock: socket.socket, *, timeout: float = TIMEOUT) -> bytes:
    """Read until the peer closes (or resets) the connection; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the server did not close the connection")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def tcp_connect(port: int, *, host: str = HOST, timeout: float = TIMEOUT) -> socket.socket:
    return socket.create_connection((host, port), timeout=timeout)


def tcp_exchange(port: int, data: bytes, *, timeout: float = TIMEOUT, host: str = HOST) -> bytes:
    """Send ``data``, half-close, and return everything the server sends before closing."""
    with tcp_connect(port, host=host, timeout=timeout) as sock:
        sock.sendall(data)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        return recv_all(sock, timeout=timeout)


def split_messages(stream: bytes) -> list[Message]:
    """Decode a TCP byte stream into messages (fails on a trailing partial message)."""
    out = []
    pos = 0
    while pos < len(stream):
        env = Envelope.decode(stream[pos : pos + ENVELOPE_SIZE])
        end = pos + ENVELOPE_SIZE + env.length
        assert end <= len(stream), "partial message at the end of the stream"
        out.append(Message.decode(stream[pos:end]))
        pos = end
    return out


# -- multi-server sites and mirrors ----------------------------------------------------------


def write_public_key(path: Path, key: PrivateKey) -> None:
    """Write the public half of ``key`` as a PEM file (what ``[site] servers`` keys name)."""
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def reconfigure(directory: Path, **changes: Any) -> NodeConfig:
    """Rewrite ``directory``'s ``idnode.toml`` with ``changes`` (NodeConfig fields, e.g.
    ``site=SiteConfig(...)``) and return the configuration as loaded back."""
    path = directory / "idnode.toml"
    config = dataclasses.replace(NodeConfig.load(path), **changes)
    path.write_text(config.dump(), encoding="utf-8")
    return NodeConfig.load(path)


def modify_in_another_process(
    database: str, handle: str, index: int, vtype: str, data: bytes
) -> None:
    """Set value ``index`` of ``handle`` to (``vtype``, ``data``) from a second process opening
    the same SQLite file (as ``idnode handle`` or ``idnode import`` run against a node's file)."""
    script = f"""
import asyncio
from idnode.store.sqlite import SQLiteStore
from idnode.protocol.values import HandleValue

async def main():
    store = await SQLiteStore.open({database!r})
    await store.modify_values({handle!r}, [HandleValue({index!r}, {vtype!r}, {data!r})])
    await store.close()

asyncio.run(main())
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
