"""Resolution and get-site-info against a running node, over UDP and TCP (spec §1, §3, §4)."""

from __future__ import annotations

import asyncio

import pytest

from idnode.client import Credentials, SyncHandleClient
from idnode.errors import (
    AuthenticationRequired,
    HandleError,
    HandleNotFound,
    InsufficientPermissions,
    InvalidAdmin,
    InvalidHandle,
    ServerNotResponsible,
    ValuesNotFound,
)
from idnode.protocol import auth
from idnode.protocol.bodies import (
    Body,
    ChallengeBody,
    ErrorBody,
    HandleRequest,
    RawBody,
    ResolutionRequest,
    ResolutionResponse,
)
from idnode.protocol.codes import OpCode, OpFlag, ResponseCode
from idnode.protocol.credential import HS_SIGNED, Credential
from idnode.protocol.framing import MAX_DATAGRAM, Reassembler
from idnode.protocol.message import ENVELOPE_SIZE, Envelope, Message
from idnode.protocol.types.hs_pubkey import PublicKeyData
from idnode.protocol.types.hs_site import InterfaceType, SiteInfo, TransportProtocol
from idnode.protocol.values import HandleValue
from idnode.protocol.wire import Writer
from tests.server.nodeutil import (
    PREFIX,
    PREFIX_HANDLE,
    PRIVATE,
    RunningNode,
    Users,
    text_value,
    udp_datagrams,
)

PV = f"{PREFIX}/PV-2026-000123"
TYPED = f"{PREFIX}/RES-TYPED"
BIG = f"{PREFIX}/RES-BIG"
BIG_TEXT = "".join(f"{i:05d} large value for multi-datagram UDP. " for i in range(80))

TRANSPORTS = [pytest.param(False, id="udp"), pytest.param(True, id="tcp")]


@pytest.fixture(scope="module", autouse=True)
def handles(node: RunningNode) -> None:
    node.put_handle(
        TYPED,
        [
            text_value(1, "URL", "https://example.com/typed"),
            text_value(2, "URL.ALT", "https://alt.example.com/typed"),
            text_value(3, "url.mirror", "https://mirror.example.com/typed"),
            text_value(4, "URLX", "not a sub-type of URL"),
            text_value(5, "DESC", "typed values"),
            text_value(6, "EMAIL", "typed@example.com"),
        ],
    )
    node.put_handle(
        BIG,
        [
            text_value(1, "URL", "https://example.com/big"),
            text_value(2, "DESC", BIG_TEXT),
            text_value(3, "DESC.COPY", BIG_TEXT[::-1]),
        ],
    )


def resolve(
    node: RunningNode,
    handle: str,
    *,
    tcp: bool,
    credentials: Credentials | None = None,
    types: tuple[str, ...] = (),
    indexes: tuple[int, ...] = (),
    public_only: bool | None = None,
) -> tuple[HandleValue, ...]:
    client = node.client(credentials, tcp=tcp)
    return asyncio.run(
        client.resolve(handle, types=types, indexes=indexes, public_only=public_only)
    )


def exchange(node: RunningNode, message: Message, *, tcp: bool) -> Message:
    return asyncio.run(node.client(tcp=tcp).exchange(message, tcp))


def build(node: RunningNode, op: int, body: Body, flags: int = 0) -> Message:
    return node.client().build(op, body, flags)


def by_index(values: tuple[HandleValue, ...]) -> dict[int, tuple[str, bytes]]:
    return {v.index: (v.type, v.data) for v in values}


# -- plain resolution ------------------------------------------------------------------------


@pytest.mark.parametrize("tcp", TRANSPORTS)
def test_resolve_all_public_values(node: RunningNode, tcp: bool) -> None:
    values = resolve(node, PV, tcp=tcp)
    got = by_index(values)
    assert sorted(got) == [1, 2, 3, 4, 100]
    assert got[1] == ("URL", b"https://pv.example.com/modules/PV-2026-000123")
    assert got[3] == ("EMAIL", b"quality@pv.example.com")
    assert got[100][0] == "HS_ADMIN"
    assert all(v.public_read for v in values)
    assert all(v.timestamp > 0 for v in values)


@pytest.mark.parametrize("tcp", TRANSPORTS)
@pytest.mark.parametrize(
    ("types", "indexes", "expected"),
    [
        pytest.param(("URL",), (), [1], id="type"),
        pytest.param(("url",), (), [1], id="type-case-insensitive"),
        pytest.param(("EMAIL", "DESC"), (), [5, 6], id="two-types"),
        pytest.param((), (2, 6), [2, 6], id="index"),
        pytest.param(("EMAIL",), (2,), [2, 6], id="index-or-type"),
        pytest.param(("URL",), (5,), [1, 5], id="both"),
    ],
)
def test_resolve_filters(
    node: RunningNode,
    tcp: bool,
    types: tuple[str, ...],
    indexes: tuple[int, ...],
    expected: list[int],
) -> None:
    values = resolve(node, TYPED, tcp=tcp, types=types, indexes=indexes)
    assert [v.index for v in values] == expected


@pytest.mark.parametrize("tcp", TRANSPORTS)
def test_resolve_subtype_filter(node: RunningNode, tcp: bool) -> None:
    """A listed type ending in "." also matches its sub-types (spec §1.11)."""
    got = by_index(resolve(node, TYPED, tcp=tcp, types=("URL.",)))
    assert {2, 3} <= set(got)
    assert got[2] == ("URL.ALT", b"https://alt.example.com/typed")
    assert not {4, 5, 6} & set(got), "URL. must not match URLX, DESC or EMAIL"


@pytest.mark.parametrize("tcp", TRANSPORTS)
def test_resolve_subtype_filter_case_insensitive(node: RunningNode, tcp: bool) -> None:
    got = by_index(resolve(node, TYPED, tcp=tcp, types=("url.",)))
    assert {2, 3} <= set(got)


@pytest.mark.parametrize("tcp", TRANSPORTS)
def test_resolve_filter_matching_nothing(node: RunningNode, tcp: bool) -> None:
    with pytest.raises(ValuesNotFound):
        resolve(node, TYPED, tcp=tcp, types=("NOPE",))
    with pytest.raises(ValuesNotFound):
        resolve(node, TYPED, tcp=tcp, indexes=(99,))


@pytest.mark.parametrize("tcp", TRANSPORTS)
def test_resolve_is_case_insensitive(node: RunningNode, tcp: bool) -> None:
    assert by_index(resolve(node, PV.lower(), tcp=tcp)) == by_index(resolve(node, PV, tcp=tcp))


@pytest.mark.parametrize("tcp", TRANSPORTS)
def test_resolve_prefix_handle(node: RunningNode, tcp: bool) -> None:
    """The node answers for its own prefix handle; the secret key stays hidden."""
    got = by_index(resolve(node, PREFIX_HANDLE, tcp=tcp))
    assert got[1][0] == "HS_SITE"
    assert got[301][0] == "HS_PUBKEY"
    assert 300 not in got


@pytest.mark.parametrize("tcp", TRANSPORTS)
@pytest.mark.parametrize(
    ("handle", "error"),
    [
        pytest.param(f"{PREFIX}/NO-SUCH-HANDLE", HandleNotFound, id="not-found"),
        pytest.param("99.999/ANYTHING", ServerNotResponsible, id="prefix-not-homed"),
        pytest.param("0.NA/99.999", ServerNotResponsible, id="prefix-handle-not-homed"),
        pytest.param(f"{PREFIX}.5/X", ServerNotResponsible, id="derived-prefix-not-homed"),
        pytest.param("", InvalidHandle, id="empty"),
    ],
)
def test_resolve_errors(
    node: RunningNode, tcp: bool, handle: str, error: type[HandleError]
) -> None:
    with pytest.raises(error):
        resolve(node, handle, tcp=tcp)


@pytest.mark.parametrize("tcp", TRANSPORTS)
def test_resolve_error_response_shape(node: RunningNode, tcp: bool) -> None:
    """An error answers with the request's opcode and id and an error body."""
    request = build(node, OpCode.RESOLUTION, ResolutionRequest(f"{PREFIX}/NO-SUCH"), OpFlag.PO)
    reply = exchange(node, request, tcp=tcp)
    assert reply.response_code == ResponseCode.HANDLE_NOT_FOUND
    assert reply.op == OpCode.RESOLUTION
    assert reply.request_id == request.request_id
    assert isinstance(reply.body, ErrorBody)


@pytest.mark.parametrize("tcp", TRANSPORTS)
def test_resolve_handle_not_utf8(node: RunningNode, tcp: bool) -> None:
    """A handle that is not UTF-8 is a malformed request: PROTOCOL_ERROR, same request id."""
    body = Writer().byte_array(b"88.118.8/\xff\xfe").u32(0).u32(0).getvalue()
    request = build(node, OpCode.RESOLUTION, RawBody(body))
    reply = exchange(node, request, tcp=tcp)
    assert reply.response_code == ResponseCode.PROTOCOL_ERROR
    assert reply.request_id == request.request_id


# -- restricted values (spec §1.11, §3.1) --------------------------------------------------------


@pytest.mark.parametrize("tcp", TRANSPORTS)
def test_restricted_value_hidden_with_po(node: RunningNode, tcp: bool) -> None:
    """Anonymous resolution sets PO by default: the non-public value is left out."""
    assert 5 not in by_index(resolve(node, PV, tcp=tcp))
    with pytest.raises(ValuesNotFound):
        resolve(node, PV, tcp=tcp, indexes=(5,))


@pytest.mark.parametrize("tcp", TRANSPORTS)
def test_restricted_value_challenged_without_po(node: RunningNode, tcp: bool) -> None:
    with pytest.raises(AuthenticationRequired):
        resolve(node, PV, tcp=tcp, public_only=False)
    request = build(node, OpCode.RESOLUTION, ResolutionRequest(PV, (5,)))
    reply = exchange(node, request, tcp=tcp)
    assert reply.response_code == ResponseCode.AUTHENTICATION_NEEDED
    assert reply.request_id == request.request_id
    assert reply.session_id != 0
    assert isinstance(reply.body, ChallengeBody)
    assert len(reply.body.nonce) == 16
    assert reply.request_digest is not None
    expected = auth.request_digest(request.encode_header_and_body(), reply.request_digest.hash_type)
    assert reply.request_digest.digest == expected


@pytest.mark.parametrize("tcp", TRANSPORTS)
def test_public_values_without_po_not_challenged(node: RunningNode, tcp: bool) -> None:
    request = build(node, OpCode.RESOLUTION, ResolutionRequest(PV, (1, 2)))
    reply = exchange(node, request, tcp=tcp)
    assert reply.response_code == ResponseCode.SUCCESS
    assert isinstance(reply.body, ResolutionResponse)
    assert [v.index for v in reply.body.values] == [1, 2]


@pytest.mark.parametrize("tcp", TRANSPORTS)
@pytest.mark.parametrize("who", ["secret", "rsa", "dsa"])
def test_restricted_value_returned_to_admin(
    node: RunningNode, users: Users, tcp: bool, who: str
) -> None:
    choices: dict[str, Credentials] = {
        "secret": node.secret_credentials,
        "rsa": node.key_credentials,
        "dsa": users.dsa,
    }
    creds = choices[who]
    got = by_index(resolve(node, PV, tcp=tcp, credentials=creds))
    assert got[5] == ("INTERNAL.COST", b"CNY 612.40")
    assert sorted(got) == [1, 2, 3, 4, 5, 100]
    only = resolve(node, PV, tcp=tcp, credentials=creds, indexes=(5,))
    assert [(v.index, v.permissions) for v in only] == [(5, PRIVATE)]


@pytest.mark.parametrize("tcp", TRANSPORTS)
@pytest.mark.parametrize("who", ["rsa", "secret"])
def test_restricted_value_refused_to_non_admin(
    node: RunningNode, users: Users, tcp: bool, who: str
) -> None:
    creds: Credentials = users.user_a if who == "rsa" else users.user_a_seckey
    with pytest.raises((InsufficientPermissions, InvalidAdmin)):
        resolve(node, PV, tcp=tcp, credentials=creds)
    # With PO an authenticated client still gets the public values without a challenge.
    got = by_index(resolve(node, PV, tcp=tcp, credentials=creds, public_only=True))
    assert 5 not in got and 1 in got


# -- site info -------------------------------------------------------------------------------


@pytest.mark.parametrize("tcp", TRANSPORTS)
def test_get_site_info(node: RunningNode, tcp: bool) -> None:
    site = asyncio.run(node.client(tcp=tcp).get_site_info())
    assert isinstance(site, SiteInfo)
    assert site.serial == node.config.site_serial
    assert site.is_primary
    assert site.attribute("desc") == node.config.description
    (server,) = site.servers
    assert str(server.ip_address) == "127.0.0.1"
    assert (
        server.public_key == PublicKeyData.from_public_key(node.server_key.public_key()).to_bytes()
    )
    assert {(i.protocol, i.port) for i in server.interfaces} == {
        (TransportProtocol.TCP, node.port),
        (TransportProtocol.UDP, node.port),
        (TransportProtocol.HTTP, node.node.http_port),
    }
    tcp_interface = server.interface_for(TransportProtocol.TCP, admin=True)
    assert tcp_interface is not None
    assert tcp_interface.type == InterfaceType.ADMIN_AND_QUERY
    assert server.interface_for(TransportProtocol.UDP, admin=False) is not None


def test_prefix_handle_publishes_the_site_the_node_serves(node: RunningNode) -> None:
    """The node created its HS_SITE with port 0; started on ephemeral ports it rewrites the
    stored copy on its prefix handle, so resolvers find it where it listens."""
    client = node.client()
    (site_value,) = asyncio.run(client.resolve("0.NA/88.118.8", types=["HS_SITE"]))
    site = SiteInfo.from_bytes(site_value.data)
    ports = {(i.protocol, i.port) for i in site.servers[0].interfaces}
    assert (TransportProtocol.TCP, node.port) in ports
    assert site_value.data == asyncio.run(client.get_site_info()).to_bytes()


@pytest.mark.parametrize("tcp", TRANSPORTS)
def test_get_site_info_raw(node: RunningNode, tcp: bool) -> None:
    request = build(node, OpCode.GET_SITE_INFO, HandleRequest(""))
    reply = exchange(node, request, tcp=tcp)
    assert reply.response_code == ResponseCode.SUCCESS
    assert reply.op == OpCode.GET_SITE_INFO
    assert reply.request_id == request.request_id
    assert reply.site_info_serial == node.config.site_serial


# -- long responses over UDP -------------------------------------------------------------------


def test_large_udp_response_via_client(node: RunningNode) -> None:
    values = resolve(node, BIG, tcp=False)
    got = by_index(values)
    assert got[2] == ("DESC", BIG_TEXT.encode())
    assert got[3] == ("DESC.COPY", BIG_TEXT[::-1].encode())


def test_large_udp_response_is_split_into_datagrams(node: RunningNode) -> None:
    request = build(node, OpCode.RESOLUTION, ResolutionRequest(BIG), OpFlag.PO)
    data = request.encode()
    assert len(data) <= MAX_DATAGRAM
    datagrams = udp_datagrams(node.port, data, count_timeout=0.5)
    assert len(datagrams) > 1
    assert all(len(d) <= MAX_DATAGRAM for d in datagrams)
    envelopes = [Envelope.decode(d) for d in datagrams]
    assert {e.request_id for e in envelopes} == {request.request_id}
    assert sorted(e.sequence for e in envelopes) == list(range(len(datagrams)))
    total = envelopes[0].length
    assert sum(len(d) - ENVELOPE_SIZE for d in datagrams) == total
    reassembler = Reassembler()
    whole = None
    for d in datagrams:
        whole = reassembler.feed(d, 0.0)
    assert whole is not None
    reply = Message.decode(whole)
    assert reply.response_code == ResponseCode.SUCCESS
    assert isinstance(reply.body, ResolutionResponse)
    assert by_index(reply.body.values)[2] == ("DESC", BIG_TEXT.encode())


# -- certified responses (spec §3.3) ---------------------------------------------------------


def verify_certified(node: RunningNode, reply: Message) -> bool:
    assert reply.credential, "a certified request must get a signed response"
    credential = Credential.from_bytes(reply.credential)
    assert credential.type == HS_SIGNED
    site = asyncio.run(node.client().get_site_info())
    key = PublicKeyData.from_bytes(site.servers[0].public_key).to_public_key()
    return auth.verify_message_signature(
        key,
        credential,
        reply.version,
        reply.suggested_version,
        reply.session_id,
        reply.request_id,
        reply.header_and_body(),
    )


@pytest.mark.parametrize("tcp", TRANSPORTS)
@pytest.mark.parametrize(
    ("handle", "code"),
    [
        pytest.param(PV, ResponseCode.SUCCESS, id="success"),
        pytest.param(BIG, ResponseCode.SUCCESS, id="multi-datagram"),
        pytest.param(f"{PREFIX}/NO-SUCH", ResponseCode.HANDLE_NOT_FOUND, id="error"),
    ],
)
def test_certified_response(node: RunningNode, tcp: bool, handle: str, code: int) -> None:
    request = build(node, OpCode.RESOLUTION, ResolutionRequest(handle), OpFlag.CT | OpFlag.PO)
    reply = exchange(node, request, tcp=tcp)
    assert reply.response_code == code
    assert reply.has(OpFlag.CT)
    assert verify_certified(node, reply)
    # The signature covers the header and body: a changed byte does not verify.
    tampered = bytearray(reply.header_and_body())
    tampered[-1] ^= 0x01
    credential = Credential.from_bytes(reply.credential)
    site_key = node.server_key.public_key()
    assert not auth.verify_message_signature(
        site_key,
        credential,
        reply.version,
        reply.suggested_version,
        reply.session_id,
        reply.request_id,
        bytes(tampered),
    )


@pytest.mark.parametrize("tcp", TRANSPORTS)
def test_uncertified_response_is_unsigned(node: RunningNode, tcp: bool) -> None:
    reply = exchange(
        node, build(node, OpCode.RESOLUTION, ResolutionRequest(PV), OpFlag.PO), tcp=tcp
    )
    assert reply.response_code == ResponseCode.SUCCESS
    assert reply.credential == b""


# -- load and the blocking client ------------------------------------------------------------


def test_concurrent_resolutions(node: RunningNode) -> None:
    """100 simultaneous resolutions (half UDP, half TCP) are all answered correctly."""

    async def many() -> list[tuple[HandleValue, ...]]:
        clients = [node.client(tcp=False), node.client(tcp=True)]
        handles = [PV, TYPED, BIG, f"{PREFIX}/PCB-7731-A"]
        return await asyncio.gather(*(clients[i % 2].resolve(handles[i % 4]) for i in range(100)))

    results = asyncio.run(many())
    assert all(results)
    assert {len(r) for r in results[::4]} == {5}
    assert all(by_index(r)[2] == ("DESC", BIG_TEXT.encode()) for r in results[2::4])


def test_sync_client(node: RunningNode) -> None:
    client = SyncHandleClient(
        node.host, node.port, tcp=True, timeout=5.0, credentials=node.secret_credentials
    )
    handle = f"{PREFIX}/RES-SYNC"
    assert client.create_handle(handle, [text_value(1, "URL", "https://example.com/s")]) == handle
    values = client.resolve(handle)
    assert [(v.index, v.data) for v in values] == [(1, b"https://example.com/s")]
    site = client.get_site_info()
    assert site.servers[0].interfaces[0].port == node.port
    client.delete_handle(handle)
    with pytest.raises(HandleNotFound):
        client.resolve(handle)
