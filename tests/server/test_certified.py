"""Certified responses end to end: a real node, a real forwarding relay that tampers with the
answers on their way back, and the client and the recursive resolver checking signatures
against the keys the node's HS_SITE publishes. Also SM2 server and identity keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from idnode.bootstrap import init_node
from idnode.certified import (
    RETIRED_KEY_ATTRIBUTE,
    RetiredKey,
    ServerKeys,
    UnverifiedAnswer,
    check_response,
)
from idnode.client import (
    Attempt,
    HandleClient,
    PublicKeyCredentials,
    ServiceUnavailable,
    SiteClient,
)
from idnode.crypto import sm2
from idnode.errors import AuthenticationFailed
from idnode.protocol import auth
from idnode.protocol.bodies import ResolutionRequest
from idnode.protocol.codes import OpCode, OpFlag
from idnode.protocol.credential import Credential
from idnode.protocol.framing import Reassembler
from idnode.protocol.message import ENVELOPE_SIZE, Envelope, Message
from idnode.protocol.types.hs_pubkey import SM2_PUB_KEY, PublicKeyData
from idnode.protocol.types.hs_site import (
    Attribute,
    Interface,
    InterfaceType,
    SiteInfo,
    TransportProtocol,
    address_to_bytes,
)
from idnode.protocol.values import HandleValue
from idnode.resolver import Resolver
from idnode.resolver.cache import cache_key
from idnode.server.config import NodeConfig
from tests.server.nodeutil import (
    HOST,
    PREFIX,
    PREFIX_HANDLE,
    TIMEOUT,
    RunningNode,
    make_rsa_key,
    running_node,
)

PV = f"{PREFIX}/PV-2026-000123"
PV_URL = b"https://pv.example.com/modules/PV-2026-000123"

Mutation = Callable[[bytes], bytes]


# -- a real relay on 127.0.0.1 (UDP and TCP on one port) --------------------------------------


def passthrough(data: bytes) -> bytes:
    return data


def alter_url(data: bytes) -> bytes:
    """Change one letter of the PV module's URL (same length: the message still decodes)."""
    return data.replace(b"pv.example.com", b"pv.examp1e.com")


def strip_signature(data: bytes) -> bytes:
    message = Message.decode(data)
    return message.replace(credential=b"").encode() if message.credential else data


def flip_signature_byte(data: bytes) -> bytes:
    message = Message.decode(data)
    if not message.credential:
        return data
    credential = Credential.from_bytes(message.credential)
    signature = bytearray(credential.signature)
    signature[len(signature) // 2] ^= 0x40
    forged = dataclasses.replace(credential, signature=bytes(signature))
    return message.replace(credential=forged.to_bytes()).encode()


def resign_with(key: auth.PrivateKey) -> Mutation:
    """Alter the URL and sign the altered answer with another key (a forger's)."""

    def forge(data: bytes) -> bytes:
        message = Message.decode(alter_url(data))
        credential = auth.sign_message(
            key,
            message.version,
            message.suggested_version,
            message.session_id,
            message.request_id,
            0,
            message.header_and_body(),
        )
        return message.replace(credential=credential.to_bytes()).encode()

    return forge


class Relay:
    """Forwards UDP datagrams and TCP connections from ``port`` to the node at
    ``target_port``, passing every answer through ``mutate`` on its way back."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mutate: Mutation = passthrough
        self.answers = 0
        self._stop = threading.Event()
        self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._tcp.bind((HOST, 0))
        self.port: int = self._tcp.getsockname()[1]
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind((HOST, self.port))
        self._tcp.listen(16)
        self._threads = [
            threading.Thread(target=self._serve_udp, daemon=True),
            threading.Thread(target=self._serve_tcp, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._tcp.close()
        self._udp.close()

    def _answer(self, data: bytes) -> bytes:
        self.answers += 1
        return self.mutate(data)

    def _serve_udp(self) -> None:
        upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        upstream.connect((HOST, self.target_port))
        client: tuple[str, int] | None = None
        reassembler = Reassembler(max_pending=4)
        with upstream:
            while not self._stop.is_set():
                ready, _, _ = select.select([self._udp, upstream], [], [], 0.1)
                if self._udp in ready:
                    data, client = self._udp.recvfrom(65535)
                    upstream.send(data)
                if upstream in ready:
                    # an answer may come in several datagrams: reassembled, mutated, sent whole
                    whole = reassembler.feed(upstream.recv(65535), time.monotonic())
                    if whole is not None and client is not None:
                        self._udp.sendto(self._answer(whole), client)

    def _serve_tcp(self) -> None:
        self._tcp.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._tcp.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._pump, args=(conn,), daemon=True).start()

    def _pump(self, conn: socket.socket) -> None:
        with conn, socket.create_connection((HOST, self.target_port), timeout=TIMEOUT) as up:
            conn.settimeout(TIMEOUT)
            request = conn.recv(65535)  # the clients here send one message per connection
            up.sendall(request)
            with contextlib.suppress(OSError, ConnectionError):
                while True:
                    head = _recv_exactly(up, ENVELOPE_SIZE)
                    if not head:
                        return
                    body = _recv_exactly(up, Envelope.decode(head).length)
                    conn.sendall(self._answer(head + body))


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


@pytest.fixture
def relay(node: RunningNode) -> Iterator[Relay]:
    running = Relay(node.port)
    try:
        yield running
    finally:
        running.close()


def site_of(node: RunningNode) -> SiteInfo:
    return node.node.site


def keys_of(node: RunningNode) -> ServerKeys:
    return ServerKeys.for_site(site_of(node))


def client_via(relay: Relay, keys: ServerKeys, *, tcp: bool) -> HandleClient:
    return HandleClient(HOST, relay.port, tcp=tcp, timeout=TIMEOUT, retries=0, verify_with=keys)


def resolve(client: HandleClient, handle: str = PV) -> tuple[HandleValue, ...]:
    return asyncio.run(client.resolve(handle))


# -- the client ---------------------------------------------------------------------------


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_certified_answer_through_an_honest_relay_verifies(
    node: RunningNode, relay: Relay, tcp: bool
) -> None:
    values = resolve(client_via(relay, keys_of(node), tcp=tcp))
    assert any(v.data == PV_URL for v in values)
    assert relay.answers >= 1


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (alter_url, "does not verify"),
        (strip_signature, "not signed"),
        (flip_signature_byte, "does not verify"),
        (resign_with(make_rsa_key()), "does not verify"),
    ],
    ids=["altered", "stripped", "flipped", "forged"],
)
def test_tampered_answers_are_refused(
    node: RunningNode, relay: Relay, tcp: bool, mutation: Mutation, message: str
) -> None:
    relay.mutate = mutation
    with pytest.raises(UnverifiedAnswer, match=message):
        resolve(client_via(relay, keys_of(node), tcp=tcp))
    assert relay.answers >= 1


def test_a_signature_by_another_servers_key_is_refused(node: RunningNode) -> None:
    other = sm2.generate_private_key()
    server = site_of(node).servers[0]
    impostor = dataclasses.replace(
        server, public_key=PublicKeyData.from_public_key(other.public_key()).to_bytes()
    )
    keys = ServerKeys.of(impostor)
    client = HandleClient(HOST, node.port, timeout=TIMEOUT, verify_with=keys)
    with pytest.raises(UnverifiedAnswer, match="does not verify"):
        resolve(client)


def test_unsigned_traffic_is_not_signed(node: RunningNode) -> None:
    client = node.client()
    request = client.build(OpCode.RESOLUTION, _resolution_body(), OpFlag.PO)
    reply = asyncio.run(client.exchange(request, False))
    assert not reply.credential


def test_certified_admin_request_with_challenge_verifies(node: RunningNode) -> None:
    """The 402 challenge and the answer to the challenge response are both checked."""
    client = HandleClient(
        HOST, node.port, timeout=TIMEOUT, credentials=node.key_credentials,
        verify_with=keys_of(node),
    )  # fmt: skip
    handle = f"{PREFIX}/CERTIFIED-WRITE"
    asyncio.run(client.create_handle(handle, [HandleValue(1, "URL", b"https://x.example")]))
    assert node.get_handle(handle) is not None


def test_answer_for_another_request_is_refused(node: RunningNode) -> None:
    client = node.client()
    first = client.build(OpCode.RESOLUTION, _resolution_body(), OpFlag.PO | OpFlag.CT | OpFlag.RD)
    second = client.build(OpCode.RESOLUTION, _resolution_body(), OpFlag.PO | OpFlag.CT | OpFlag.RD)
    reply = asyncio.run(client.exchange(first, False))
    check_response(reply, first, keys_of(node))
    replayed = second.replace(request_id=first.request_id)  # same id, other request bytes
    replayed = replayed.replace(expiration=first.expiration + 1)
    with pytest.raises(UnverifiedAnswer, match="another request"):
        check_response(reply, replayed, keys_of(node))
    with pytest.raises(UnverifiedAnswer, match="another request"):
        check_response(reply, second, keys_of(node))


def test_malformed_credential_is_refused(node: RunningNode) -> None:
    client = node.client()
    request = client.build(OpCode.RESOLUTION, _resolution_body(), OpFlag.CT | OpFlag.RD)
    reply = asyncio.run(client.exchange(request, False))
    for credential in (b"\x00", reply.credential[:-3], reply.credential + b"\x00"):
        with pytest.raises(UnverifiedAnswer, match="malformed"):
            check_response(reply.replace(credential=credential), request, keys_of(node))


def _resolution_body() -> ResolutionRequest:
    return ResolutionRequest(PV, (), ())


def test_site_client_fails_over_past_a_tampered_site(node: RunningNode, relay: Relay) -> None:
    relay.mutate = alter_url
    tampered = dataclasses.replace(relay_site(node, relay), primary_mask=0)  # a "mirror"
    attempts: list[Attempt] = []
    client = SiteClient(
        [tampered, site_of(node)], timeout=TIMEOUT, retries=0, certified=True,
        trace=attempts.append,
    )  # fmt: skip
    values = asyncio.run(client.resolve(PV))
    assert any(v.data == PV_URL for v in values)
    assert any("does not verify" in a.error for a in attempts)
    only_tampered = SiteClient([tampered], timeout=TIMEOUT, retries=0, certified=True)
    with pytest.raises(ServiceUnavailable, match="does not verify"):
        asyncio.run(only_tampered.resolve(PV))


# -- retired keys ----------------------------------------------------------------------------


def test_retired_key_verifies_until_it_expires(node: RunningNode) -> None:
    site = site_of(node)
    server = site.servers[0]
    new_key = make_rsa_key()
    rotated_server = dataclasses.replace(
        server, public_key=PublicKeyData.from_public_key(new_key.public_key()).to_bytes()
    )
    now = time.time()
    retired = RetiredKey(server.server_id, int(now) + 60, server.public_key)
    rotated = dataclasses.replace(
        site, servers=(rotated_server,), attributes=(*site.attributes, retired.attribute())
    )
    client = node.client()
    request = client.build(OpCode.RESOLUTION, _resolution_body(), OpFlag.CT | OpFlag.RD)
    reply = asyncio.run(client.exchange(request, False))  # signed with the old (node's) key
    check_response(reply, request, ServerKeys.for_site(rotated, now=now))
    with pytest.raises(UnverifiedAnswer):
        check_response(reply, request, ServerKeys.for_site(rotated, now=now + 61))
    other_server = dataclasses.replace(retired, server_id=server.server_id + 1)
    elsewhere = dataclasses.replace(rotated, attributes=(other_server.attribute(),))
    with pytest.raises(UnverifiedAnswer):
        check_response(reply, request, ServerKeys.for_site(elsewhere, now=now))


@pytest.mark.parametrize("value", ["", "1", "1 2", "x 2 00", "1 y 00", "1 2 zz", "1 2 00 extra"])
def test_malformed_retired_key_attributes_are_ignored(value: str) -> None:
    assert RetiredKey.from_attribute(Attribute(RETIRED_KEY_ATTRIBUTE, value)) is None


# -- the recursive resolver --------------------------------------------------------------------


def relay_site(node: RunningNode, relay: Relay) -> SiteInfo:
    """The node's HS_SITE with its address moved to the relay."""
    site = site_of(node)
    interfaces = (
        Interface(InterfaceType.QUERY, TransportProtocol.UDP, relay.port),
        Interface(InterfaceType.ADMIN_AND_QUERY, TransportProtocol.TCP, relay.port),
    )
    server = dataclasses.replace(
        site.servers[0], address=address_to_bytes(HOST), interfaces=interfaces
    )
    return dataclasses.replace(site, servers=(server,))


@contextlib.contextmanager
def prefix_site_at_relay(node: RunningNode, relay: Relay) -> Iterator[SiteInfo]:
    """Point the prefix handle's HS_SITE at the relay for the duration; the node is also the
    root (it homes the parent prefixes, whose prefix handles do not exist)."""
    for parent in ("88", "88.118"):
        node.call(node.node.store.home_prefix(parent))
    original = node.get_handle(PREFIX_HANDLE)
    assert original is not None
    site = relay_site(node, relay)
    values = [v.with_changes(data=site.to_bytes()) if v.type == "HS_SITE" else v for v in original]
    node.put_handle(PREFIX_HANDLE, values)
    try:
        yield site
    finally:
        node.put_handle(PREFIX_HANDLE, list(original))


def test_certified_resolver_accepts_honest_answers(node: RunningNode, relay: Relay) -> None:
    with prefix_site_at_relay(node, relay) as site:
        resolver = Resolver([site], timeout=TIMEOUT, certified=True)
        values = asyncio.run(resolver.resolve(PV))
    assert any(v.data == PV_URL for v in values)
    assert relay.answers >= 2  # the prefix handle, then the identifier
    assert resolver.cache.get(cache_key(PV, (), ()), time.time()) is not None


@pytest.mark.parametrize(
    "mutation",
    [alter_url, strip_signature, flip_signature_byte, resign_with(sm2.generate_private_key())],
    ids=["altered", "stripped", "flipped", "forged-sm2"],
)
def test_certified_resolver_refuses_tampered_answers(
    node: RunningNode, relay: Relay, mutation: Mutation
) -> None:
    relay.mutate = mutation
    with prefix_site_at_relay(node, relay) as site:
        resolver = Resolver([site], timeout=TIMEOUT, retries=0, certified=True)
        with pytest.raises(UnverifiedAnswer, match="no verifiable answer"):
            asyncio.run(resolver.resolve(PV))
    assert resolver.cache.get(cache_key(PV, (), ()), time.time()) is None  # nothing kept


def test_uncertified_resolver_is_fooled_by_the_same_relay(node: RunningNode, relay: Relay) -> None:
    """The control: without certification the altered answer gets through."""
    relay.mutate = alter_url
    with prefix_site_at_relay(node, relay) as site:
        values = asyncio.run(Resolver([site], timeout=TIMEOUT).resolve(PV))
    assert any(b"pv.examp1e.com" in v.data for v in values)


def test_certified_resolver_needs_keys_for_the_root(node: RunningNode) -> None:
    resolver = Resolver([f"{HOST}:{node.port}"], timeout=TIMEOUT, retries=0, certified=True)
    with pytest.raises(UnverifiedAnswer, match="no usable key"):
        asyncio.run(resolver.resolve(PV))


# -- SM2 server and identity keys ----------------------------------------------------------------


@pytest.fixture(scope="module")
def sm2_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    directory = tmp_path_factory.mktemp("sm2-node")
    asyncio.run(init_node(directory, PREFIX, port=0, demo=True, key_type="sm2"))
    path = directory / "idnode.toml"
    config = dataclasses.replace(NodeConfig.load(path), auth_failures_limit=0, writes_per_second=0)
    path.write_text(config.dump(), encoding="utf-8")
    with running_node(directory) as running:
        yield running


def test_sm2_node_publishes_an_sm2_server_key(sm2_node: RunningNode) -> None:
    assert isinstance(sm2_node.server_key, sm2.Sm2PrivateKey)
    server = site_of(sm2_node).servers[0]
    data = PublicKeyData.from_bytes(server.public_key)
    assert data.key_type == SM2_PUB_KEY
    assert data.to_public_key() == sm2_node.server_key.public_key()
    pem = (Path(sm2_node.directory) / "server-key.pem").read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_sm2_certified_answers_verify(sm2_node: RunningNode, tcp: bool) -> None:
    client = HandleClient(
        HOST, sm2_node.port, tcp=tcp, timeout=TIMEOUT, verify_with=keys_of(sm2_node)
    )
    request = client.build(OpCode.RESOLUTION, _resolution_body(), OpFlag.CT | OpFlag.RD)
    reply = asyncio.run(client.exchange(request, tcp))
    credential = Credential.from_bytes(reply.credential)
    assert credential.digest_alg == "SM3"
    assert len(credential.signature) == 64
    assert any(v.data == PV_URL for v in resolve(client))


def test_sm2_admin_identity_authenticates_and_writes(sm2_node: RunningNode) -> None:
    assert isinstance(sm2_node.admin_key, sm2.Sm2PrivateKey)
    record = sm2_node.get_handle(PREFIX_HANDLE)
    assert record is not None
    key_value = next(v for v in record if v.index == 301)
    assert PublicKeyData.from_bytes(key_value.data).key_type == SM2_PUB_KEY
    client = HandleClient(
        HOST, sm2_node.port, timeout=TIMEOUT, credentials=sm2_node.key_credentials,
        verify_with=keys_of(sm2_node),
    )  # fmt: skip
    handle = f"{PREFIX}/SM2-WRITE"
    asyncio.run(client.create_handle(handle, [HandleValue(1, "URL", b"https://sm2.example")]))
    assert sm2_node.get_handle(handle) is not None


def test_wrong_sm2_key_is_refused(sm2_node: RunningNode) -> None:
    wrong = PublicKeyCredentials(PREFIX_HANDLE, 301, sm2.generate_private_key())
    client = HandleClient(HOST, sm2_node.port, timeout=TIMEOUT, credentials=wrong)
    with pytest.raises(AuthenticationFailed):
        asyncio.run(client.create_handle(f"{PREFIX}/SM2-WRONG", [HandleValue(1, "URL", b"x")]))
    assert sm2_node.get_handle(f"{PREFIX}/SM2-WRONG") is None


@pytest.mark.parametrize(
    "point",
    [
        b"\x04" + b"\x01" * 64,  # off the curve
        b"\x04" + b"\x00" * 10,  # too short
        b"",
    ],
    ids=["off-curve", "short", "empty"],
)
def test_malformed_sm2_identity_keys_fail_authentication(
    sm2_node: RunningNode, point: bytes
) -> None:
    handle = f"{PREFIX}/SM2-BAD-KEY"
    data = PublicKeyData(SM2_PUB_KEY, (point,)).to_bytes()
    sm2_node.put_handle(
        handle,
        [HandleValue(300, "HS_PUBKEY", data), HandleValue(1, "URL", b"https://bad.example")],
    )
    credentials = PublicKeyCredentials(handle, 300, sm2.generate_private_key())
    client = HandleClient(HOST, sm2_node.port, timeout=TIMEOUT, credentials=credentials)
    with pytest.raises(AuthenticationFailed, match="unusable"):
        asyncio.run(client.add_values(handle, [HandleValue(2, "URL", b"https://x.example")]))
    # the node is still answering
    assert any(v.data == PV_URL for v in resolve(sm2_node.client()))


def test_truncated_sm2_pubkey_value_is_a_protocol_violation() -> None:
    from idnode.errors import ProtocolViolation

    data = PublicKeyData(SM2_PUB_KEY, (b"\x04" + b"\x01" * 64,)).to_bytes()
    with pytest.raises(ProtocolViolation):
        PublicKeyData.from_bytes(data[:-5])
    assert PublicKeyData.from_bytes(data).to_bytes() == data
    point = b"\x04" + b"\x01" * 64
    layout = struct.pack(">I", 11) + b"SM2_PUB_KEY" + b"\x00\x00" + struct.pack(">I", 65) + point
    assert data == layout
