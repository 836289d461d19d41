"""A node whose keys are SM2 on every path that signs with the server key: replication streams
(SM3-named, checked by the mirror with the primary's SM2 key from its HS_SITE), statistics
reports to the parent and the HTTP ``Authorization: Handle`` scheme (``alg="SM3"``), and the
``[site]`` key files of a multi-server site. Real nodes, real sockets on 127.0.0.1, real SQLite.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from idnode.bootstrap import init_node
from idnode.client import PublicKeyCredentials
from idnode.crypto import sm2
from idnode.errors import ProtocolViolation
from idnode.protocol import auth
from idnode.protocol import replication as rp
from idnode.protocol.types.hs_pubkey import (
    SM2_PUB_KEY,
    PrivateKey,
    PublicKeyData,
    load_private_key,
)
from idnode.protocol.types.hs_site import ServerInfo
from idnode.protocol.values import HandleValue
from idnode.server.authz import Identity
from idnode.server.config import NodeConfig, ReportConfig, ServerEntry, SiteConfig
from idnode.server.mirror import Mirror, _parser_for
from idnode.server.node import build_site
from idnode.server.replication import ReplicationSource
from idnode.store import HandleStore
from idnode.store.sqlite import SQLiteStore
from tests.http.conftest import basic
from tests.ports import free_ports
from tests.server.nodeutil import (
    HOST,
    PREFIX,
    PREFIX_HANDLE,
    TIMEOUT,
    RunningNode,
    make_rsa_key,
    pubkey_value,
    reconfigure,
    running_node,
)

MIRROR_IDENTITY = Identity(PREFIX_HANDLE, 310)
PV = f"{PREFIX}/PV-2026-000123"


def sm2_node_dir(directory: Path, prefix: str = PREFIX, *, demo: bool = True) -> Path:
    """A node with SM2 server and admin keys (``idnode init --key-type sm2``)."""
    asyncio.run(init_node(directory, prefix, port=0, demo=demo, key_type="sm2"))
    reconfigure(directory, auth_failures_limit=0, writes_per_second=0)
    return directory


def key_of(directory: Path, name: str = "server-key.pem") -> PrivateKey:
    return load_private_key((directory / name).read_bytes())


async def snapshot(store: HandleStore) -> dict[str, tuple[HandleValue, ...]]:
    out: dict[str, tuple[HandleValue, ...]] = {}
    after: str | None = None
    while page := await store.scan(after, 500):
        out.update(page)
        after = page[-1][0]
    return out


# -- replication ------------------------------------------------------------------------------


@pytest.fixture
def sm2_pair(tmp_path: Path) -> Iterator[tuple[RunningNode, Path]]:
    """An SM2 primary listing the (SM2) mirror's server key at 310:0.NA/88.118.8."""
    primary_dir = sm2_node_dir(tmp_path / "primary")
    reconfigure(primary_dir, replication_admins=(MIRROR_IDENTITY,))
    mirror_dir = sm2_node_dir(tmp_path / "mirror", demo=False)
    with running_node(primary_dir) as primary:
        values = primary.get_handle(PREFIX_HANDLE) or ()
        mirror_key = pubkey_value(MIRROR_IDENTITY.index, key_of(mirror_dir))
        primary.put_handle(PREFIX_HANDLE, [*values, mirror_key])
        yield primary, mirror_dir


def test_an_sm2_primary_serves_dumps_and_transactions(
    sm2_pair: tuple[RunningNode, Path],
) -> None:
    primary, mirror_dir = sm2_pair
    assert isinstance(primary.server_key, sm2.Sm2PrivateKey)
    published = PublicKeyData.from_bytes(primary.node.site.servers[0].public_key)
    assert published.key_type == SM2_PUB_KEY
    mirror_key = key_of(mirror_dir)
    credentials = PublicKeyCredentials(MIRROR_IDENTITY.handle, MIRROR_IDENTITY.index, mirror_key)
    writer = primary.client(credentials=primary.key_credentials)
    url = [HandleValue(1, "URL", b"https://sm2.example/1")]

    async def scenario() -> None:
        store = await SQLiteStore.open(mirror_dir / "mirror-only.db")
        try:
            mirror = Mirror(store, HOST, primary.port, credentials, timeout=TIMEOUT)
            first = await mirror.sync()
            assert first.dumped > 0
            expected = await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(snapshot(primary.node.store), primary.loop)
            )
            assert await snapshot(store) == expected
            await writer.create_handle(f"{PREFIX}/sm2-new", url)
            await writer.delete_handle(PV)
            report = await mirror.sync()
            assert (report.dumped, report.transactions) == (0, 2)
            assert await store.get_handle(f"{PREFIX}/sm2-new") == primary.get_handle(
                f"{PREFIX}/sm2-new"
            )
            assert await store.get_handle(PV) is None
        finally:
            await store.close()

    asyncio.run(scenario())


async def _stream(source: ReplicationSource) -> bytes:
    return b"".join([c async for c in source.dump_stream(rp.DumpHandlesRequest(0, 1, 0))])


def _parse(parser: rp.SignedStreamParser, data: bytes) -> list[rp.DumpRecord]:
    parser.feed(data)
    return list(rp.parse_dump(parser))


def _server(key: PrivateKey) -> ServerInfo:
    return ServerInfo(1, b"\x00" * 16, PublicKeyData.from_public_key(key.public_key()).to_bytes())


def test_streams_signed_with_sm2_name_sm3_and_verify_only_with_the_primarys_key(
    tmp_path: Path,
) -> None:
    key, other = sm2.generate_private_key(), sm2.generate_private_key()
    rsa_key = make_rsa_key()

    async def streams() -> tuple[bytes, bytes]:
        store = await SQLiteStore.open(tmp_path / "source.db")
        try:
            for n in range(3):
                await store.create_handle(
                    f"{PREFIX}/S{n}", [HandleValue(1, "URL", f"https://s/{n}".encode())]
                )
            return await _stream(ReplicationSource(store, key)), await _stream(
                ReplicationSource(store, rsa_key)
            )
        finally:
            await store.close()

    signed, rsa_signed = asyncio.run(streams())
    assert signed[: 4 + 4 + 3] == b"\x00\x00\x00\x00\x00\x00\x00\x03SM3"
    records = _parse(_parser_for(_server(key)), signed)
    assert {r.handle for r in records if r.handle} == {f"{PREFIX}/S{n}".encode() for n in range(3)}
    # The RSA stream is unchanged: SHA1-named, SHA1withRSA.
    assert rsa_signed[:12] == b"\x00\x00\x00\x00\x00\x00\x00\x04SHA1"
    assert _parse(_parser_for(_server(rsa_key)), rsa_signed)
    # Another SM2 key, a flipped signature bit, or a hash name the key does not sign with:
    with pytest.raises(ProtocolViolation, match="bad signature"):
        _parse(_parser_for(_server(other)), signed)
    flipped = bytearray(signed)
    flipped[-3] ^= 0x01  # inside the last block's signature
    with pytest.raises(ProtocolViolation, match="bad signature"):
        _parse(_parser_for(_server(key)), bytes(flipped))
    with pytest.raises(ProtocolViolation, match="unsupported stream signature hash"):
        _parse(_parser_for(_server(rsa_key)), signed)
    with pytest.raises(ProtocolViolation, match="unsupported stream signature hash"):
        _parse(_parser_for(_server(key)), rsa_signed)


# -- HTTP Authorization: Handle with SM2 ------------------------------------------------------


@pytest.fixture(scope="module")
def sm2_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    directory = sm2_node_dir(tmp_path_factory.mktemp("sm2-http") / "node")
    with running_node(directory) as node:
        yield node


def _url(node: RunningNode, path: str) -> str:
    return f"http://{HOST}:{node.node.http_port}{path}"


def _handle_header(session: dict[str, Any], identity: str, alg: str, signature: bytes,
                   cnonce: bytes, auth_type: str = "HS_PUBKEY") -> str:  # fmt: skip
    fields = {
        "version": "0",
        "sessionId": str(session["sessionId"]),
        "id": identity.replace(":", "%3A").replace("/", "%2F"),
        "type": auth_type,
        "cnonce": base64.b64encode(cnonce).decode(),
        "alg": alg,
        "signature": base64.b64encode(signature).decode(),
    }
    return "Handle " + ", ".join(f'{k}="{v}"' for k, v in fields.items())


def _new_session(node: RunningNode) -> dict[str, Any]:
    reply = httpx.post(_url(node, "/api/sessions"), timeout=TIMEOUT)
    assert reply.status_code == 201, reply.text
    session: dict[str, Any] = reply.json()
    return session


def test_an_sm2_identity_authenticates_with_the_handle_scheme(sm2_node: RunningNode) -> None:
    key = sm2_node.admin_key
    assert isinstance(key, sm2.Sm2PrivateKey)
    session = _new_session(sm2_node)
    nonce, cnonce = base64.b64decode(session["nonce"]), os.urandom(16)
    signature = auth.sign_data(key, "SM3", nonce + cnonce)
    assert len(signature) == 64
    header = _handle_header(session, f"301:{PREFIX_HANDLE}", "SM3", signature, cnonce)
    reply = httpx.put(_url(sm2_node, "/api/sessions/this"), headers={"Authorization": header})
    assert reply.status_code == 200, reply.text
    assert reply.json()["authenticated"] is True
    assert reply.json()["id"] == f"301:{PREFIX_HANDLE}"
    # The session now carries the identity: an administrator's write goes through.
    by_session = {"Authorization": f'Handle sessionId="{session["sessionId"]}"'}
    body = [{"index": 1, "type": "URL", "data": {"format": "string", "value": "https://sm3/"}}]
    put = httpx.put(
        _url(sm2_node, f"/api/handles/{PREFIX}/SM3-HTTP"), json=body, headers=by_session
    )
    assert put.status_code in (200, 201), put.text
    assert sm2_node.get_handle(f"{PREFIX}/SM3-HTTP") is not None


@pytest.mark.parametrize(
    ("alg", "auth_type", "tamper"),
    [
        ("SM3", "HS_PUBKEY", True),  # a signature over other bytes
        ("SHA256", "HS_PUBKEY", False),  # an SM2 signature named as SHA-256
        ("SM3", "HS_SECKEY", False),  # SM3 is no secret-key algorithm
    ],
)
def test_bad_sm2_answers_are_refused(
    sm2_node: RunningNode, alg: str, auth_type: str, tamper: bool
) -> None:
    session = _new_session(sm2_node)
    nonce, cnonce = base64.b64decode(session["nonce"]), os.urandom(16)
    signed = nonce + (os.urandom(16) if tamper else cnonce)
    signature = auth.sign_data(sm2_node.admin_key, "SM3", signed)
    header = _handle_header(session, f"301:{PREFIX_HANDLE}", alg, signature, cnonce, auth_type)
    reply = httpx.put(_url(sm2_node, "/api/sessions/this"), headers={"Authorization": header})
    assert reply.status_code == 401, reply.text
    assert reply.json()["responseCode"] == 403


# -- statistics reports from an SM2 node ----------------------------------------------------


def test_an_sm2_child_reports_to_its_parent(tmp_path: Path) -> None:
    child, parent_prefix = "88.118.8", "88.118"
    reporter = Identity(f"0.NA/{child}", 320)
    asyncio.run(init_node(tmp_path / "parent", parent_prefix, port=0))
    child_dir = sm2_node_dir(tmp_path / "child", child)
    pubkey = PublicKeyData.from_public_key(key_of(child_dir).public_key()).to_bytes()
    assert PublicKeyData.from_bytes(pubkey).key_type == SM2_PUB_KEY
    with running_node(tmp_path / "parent") as parent:
        parent.put_handle(f"0.NA/{child}", [HandleValue(reporter.index, "HS_PUBKEY", pubkey)])
        report = ReportConfig(f"http://{HOST}:{parent.node.http_port}", reporter, 3600.0)
        reconfigure(child_dir, report=report)
        admin = basic(f"300:0.NA/{parent_prefix}", parent.admin_secret)
        with running_node(child_dir) as running_child:
            assert running_child.node.reporter is not None
            answer = running_child.call(running_child.node.reporter.report())
            assert answer.get("responseCode") == 1, answer
            stats = _url(parent, "/api/stats?children=1")
            children = httpx.get(stats, headers=admin, timeout=TIMEOUT).json()["children"]
            assert [c["child"] for c in children] == [str(reporter)]
            assert child in children[0]["homed"]


# -- [site] key files ---------------------------------------------------------------------------


def _write_pem(path: Path, public: Any) -> None:
    if isinstance(public, sm2.Sm2PublicKey):
        path.write_bytes(public.to_pem())
        return
    path.write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def test_site_key_files_may_be_sm2(tmp_path: Path) -> None:
    own, other = sm2.generate_private_key(), sm2.generate_private_key()
    _write_pem(tmp_path / "server2.pub.pem", other.public_key())
    table = SiteConfig(
        servers=(
            ServerEntry(1, "127.0.0.1", 2641),
            ServerEntry(2, "127.0.0.2", 2651, key="server2.pub.pem"),
        ),
        this_server=1,
    )
    config = NodeConfig(directory=tmp_path, site=table)
    site = build_site(config, own, 0)
    keys = [PublicKeyData.from_bytes(s.public_key).to_public_key() for s in site.servers]
    assert keys == [own.public_key(), other.public_key()]
    # This node's own entry may name its SM2 key file too (as server 2 sees the site).
    _write_pem(tmp_path / "server1.pub.pem", own.public_key())
    entries = (dataclasses.replace(table.servers[0], key="server1.pub.pem"), table.servers[1])
    as_two = dataclasses.replace(table, servers=entries, this_server=2)
    assert build_site(dataclasses.replace(config, site=as_two), other, 0) == site
    # A key OpenSSL wrote (SM2 SubjectPublicKeyInfo) reads the same as idnode's.
    assert sm2.Sm2PublicKey.from_pem((tmp_path / "server2.pub.pem").read_bytes()) == (
        other.public_key()
    )
    # RSA keys still read, in SubjectPublicKeyInfo or PKCS#1 form.
    rsa_key = make_rsa_key()
    (tmp_path / "server2.pub.pem").write_bytes(
        rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        )
    )
    published = PublicKeyData.from_bytes(build_site(config, own, 0).servers[1].public_key)
    assert published == PublicKeyData.from_public_key(rsa_key.public_key())
    # EC on another curve has no HS_SITE key type: refused with the file named.
    _write_pem(tmp_path / "server2.pub.pem", ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(ValueError, match=r"server2\.pub\.pem"):
        build_site(config, own, 0)


def test_a_two_server_sm2_site_answers_with_both_keys(tmp_path: Path) -> None:
    """A running node whose [site] lists an SM2 peer publishes both SM2 keys."""
    directory = sm2_node_dir(tmp_path / "one", demo=False)
    peer = sm2.generate_private_key()
    _write_pem(directory / "server2.pub.pem", peer.public_key())
    (port,) = free_ports(1)
    table = SiteConfig(
        servers=(
            ServerEntry(1, HOST, port),
            ServerEntry(2, HOST, 1, key="server2.pub.pem"),
        ),
        this_server=1,
    )
    reconfigure(directory, port=port, site=table)
    with running_node(directory) as node:
        site = asyncio.run(node.client(tcp=True).get_site_info())
        keys = [PublicKeyData.from_bytes(s.public_key).to_public_key() for s in site.servers]
        assert keys == [key_of(directory).public_key(), peer.public_key()]
