"""Native sessions against a running node on 127.0.0.1 (spec §1.7, §1.11, §3.3).

Sessions are set up over UDP and over TCP, carry many administrative requests after one
challenge, and are terminated. Refused: a forged MAC (502), a replayed or zero counter (505),
a missing MAC in an authenticated session (404), an unknown, expired or terminated session
(500), a malformed or unusable setup (4 / 501). The session setups recorded from the
reference client are replayed too.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnode.certified import ServerKeys
from idnode.client import Credentials, HandleClient
from idnode.client_session import SessionClient
from idnode.errors import AuthenticationFailed, HandleNotFound, RemoteError
from idnode.protocol.bodies import (
    ErrorBody,
    HandleRequest,
    RawBody,
    ResolutionRequest,
    SessionSetupRequest,
    SessionSetupResponse,
    ValuesRequest,
)
from idnode.protocol.codes import OpCode, OpFlag, ResponseCode
from idnode.protocol.credential import HS_MAC, Credential
from idnode.protocol.message import Message
from idnode.protocol.session import (
    CipherAlgorithm,
    DHKeyPair,
    KeyExchangeMode,
    decrypt_payload,
    decrypt_session_key,
    encrypt_payload,
    mac_credential,
    parse_dh_response_data,
    verify_mac,
)
from idnode.protocol.types.hs_pubkey import DH_PUB_KEY, PublicKeyData
from idnode.protocol.wire import Writer
from idnode.server.sessions import (
    COUNTER_WINDOW,
    ENV_ENCRYPTED,
    ServerSession,
    SessionTable,
    _ReplayWindow,
)
from tests.server.nodeutil import (
    PREFIX,
    RunningNode,
    make_rsa_key,
    pubkey_value,
    tcp_exchange,
    text_value,
    udp_exchange,
)
from tests.vectors_util import load_messages

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


class CountingClient(HandleClient):
    """A HandleClient that records the response code of every exchange (real sockets)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.codes: list[int] = []

    async def exchange(
        self, message: Message, tcp: bool, *, original: Message | None = None
    ) -> Message:
        reply = await super().exchange(message, tcp, original=original)
        self.codes.append(reply.response_code)
        return reply


def counting(node: RunningNode, creds: Credentials | None, *, tcp: bool) -> CountingClient:
    return CountingClient(node.host, node.port, tcp=tcp, timeout=5.0, retries=1, credentials=creds)


def raw(node: RunningNode, message: Message, *, tcp: bool = True) -> Message:
    data = message.encode()
    if tcp:
        return Message.decode(tcp_exchange(node.port, data))
    reply = udp_exchange(node.port, data)
    assert reply is not None
    return Message.decode(reply)


async def authenticated_session(node: RunningNode, handle: str) -> SessionClient:
    """An open session of the bootstrap admin, authenticated by creating ``handle``."""
    session = counting(node, node.secret_credentials, tcp=True).session()
    await session.open()
    await session.create_handle(handle, [text_value(1, "URL", "https://example.org/s")])
    return session


# -- the whole flow ---------------------------------------------------------------------------


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_many_writes_in_one_session_after_one_challenge(node: RunningNode, tcp: bool) -> None:
    client = counting(node, node.secret_credentials, tcp=tcp)
    handles = [f"{PREFIX}/SESSION-{'T' if tcp else 'U'}-{i}" for i in range(25)]

    async def work() -> int:
        async with client.session() as session:
            sid = session.session_id
            for i, handle in enumerate(handles):
                await session.create_handle(handle, [text_value(1, "URL", f"https://e.org/{i}")])
            for handle in handles[:5]:
                await session.modify_values(handle, [text_value(1, "URL", "https://e.org/m")])
                values = await session.resolve(handle, public_only=True)
                assert values[0].data == b"https://e.org/m"
            for handle in handles:
                await session.delete_handle(handle)
            return sid

    sid = run(work())
    assert client.codes.count(ResponseCode.AUTHENTICATION_NEEDED) == 1
    assert all(node.get_handle(h) is None for h in handles)
    # Terminated: the session id is gone.
    assert node.node.dispatcher.sessions.table.peek(sid, 0) is None


def test_session_continues_over_both_transports(node: RunningNode) -> None:
    """A session set up over UDP serves TCP requests and UDP queries alike."""
    handle = f"{PREFIX}/SESSION-MIX"

    async def work() -> None:
        client = counting(node, node.secret_credentials, tcp=False)
        async with client.session() as session:
            await session.create_handle(handle, [text_value(1, "URL", "u")])  # TCP
            values = await session.resolve(handle)  # UDP, as the identity (PO clear)
            assert values[0].data == b"u"
            await session.delete_handle(handle)
        assert client.codes.count(ResponseCode.AUTHENTICATION_NEEDED) == 1

    run(work())


def test_rsa_client_cipher_session(node: RunningNode) -> None:
    key = make_rsa_key()
    handle = f"{PREFIX}/SESSION-RSA"

    async def work() -> None:
        client = node.client(node.key_credentials, tcp=True)
        async with client.session(mode=KeyExchangeMode.CIPHER_CLIENT, exchange_key=key) as s:
            await s.create_handle(handle, [text_value(1, "URL", "r")])
            await s.delete_handle(handle)

    run(work())
    assert node.get_handle(handle) is None


def test_anonymous_session_resolves_and_is_challenged_for_writes(node: RunningNode) -> None:
    async def work() -> None:
        async with node.client(None).session() as session:
            await session.get_site_info()
            with pytest.raises(HandleNotFound):
                await session.resolve(f"{PREFIX}/NO-SUCH-HANDLE")
            with pytest.raises(Exception, match="authentication"):
                await session.create_handle(f"{PREFIX}/SESSION-ANON", [text_value(1, "URL", "a")])

    run(work())
    assert node.get_handle(f"{PREFIX}/SESSION-ANON") is None


def test_certified_response_in_session_is_signed_with_the_session_mac(node: RunningNode) -> None:
    async def work() -> None:
        session = await authenticated_session(node, f"{PREFIX}/SESSION-CT")
        request = session.sign(
            session.client.build(
                OpCode.RESOLUTION, ResolutionRequest(f"{PREFIX}/SESSION-CT"), OpFlag.CT
            )
        )
        reply = await session.client.exchange(request, True)
        assert reply.response_code == ResponseCode.SUCCESS
        credential = Credential.from_bytes(reply.credential)
        assert credential.type == HS_MAC and credential.signer_index >= 1
        assert session._key is not None
        assert verify_mac(
            session._key,
            credential,
            reply.version,
            reply.suggested_version,
            reply.session_id,
            reply.request_id,
            reply.header_and_body(),
        )
        await session.delete_handle(f"{PREFIX}/SESSION-CT")
        await session.close()

    run(work())


# -- refusals -----------------------------------------------------------------------------------


def _create(session: SessionClient, handle: str) -> Message:
    body = ValuesRequest(handle, (text_value(1, "URL", "x"),))
    return session.client.build(OpCode.CREATE_HANDLE, body)


def test_forged_mac_is_refused(node: RunningNode) -> None:
    handle = f"{PREFIX}/SESSION-FORGED"

    async def work() -> tuple[Message, Message]:
        session = await authenticated_session(node, f"{PREFIX}/SESSION-F0")
        signed = session.sign(_create(session, handle))
        cred = Credential.from_bytes(signed.credential)
        forged_sig = bytes([cred.signature[0] ^ 1]) + cred.signature[1:]
        forged = Credential(
            signer_index=cred.signer_index, type=HS_MAC, digest_alg=cred.digest_alg,
            signature=forged_sig,
        )  # fmt: skip
        first = raw(node, signed.replace(credential=forged.to_bytes()))
        missing = raw(node, signed.replace(credential=b""))
        await session.delete_handle(f"{PREFIX}/SESSION-F0")
        await session.close()
        return first, missing

    forged, missing = run(work())
    assert forged.response_code == ResponseCode.INVALID_SESSION_KEY
    assert missing.response_code == ResponseCode.INVALID_CREDENTIAL
    assert node.get_handle(handle) is None


def test_replayed_and_zero_counters_are_refused(node: RunningNode) -> None:
    handle = f"{PREFIX}/SESSION-REPLAY"

    async def work() -> list[Message]:
        session = await authenticated_session(node, f"{PREFIX}/SESSION-R0")
        signed = session.sign(_create(session, handle))
        replies = [raw(node, signed), raw(node, signed)]
        # Counter 0, correctly MACed, on a new request.
        assert session._key is not None
        delete = session.client.build(OpCode.DELETE_HANDLE, HandleRequest(handle))
        delete = delete.replace(session_id=session.session_id)
        zero = mac_credential(
            session._key, delete.version, delete.suggested_version, delete.session_id,
            delete.request_id, 0, delete.encode_header_and_body(),
        )  # fmt: skip
        replies.append(raw(node, delete.replace(credential=zero.to_bytes())))
        await session.delete_handle(handle)
        await session.delete_handle(f"{PREFIX}/SESSION-R0")
        await session.close()
        return replies

    first, replayed, zero = run(work())
    assert first.response_code == ResponseCode.SUCCESS
    assert replayed.response_code == ResponseCode.SESSION_MESSAGE_REJECTED
    assert zero.response_code == ResponseCode.SESSION_MESSAGE_REJECTED
    assert node.get_handle(handle) is None


def test_unknown_expired_and_terminated_sessions(node: RunningNode) -> None:
    async def work() -> list[Message]:
        session = await authenticated_session(node, f"{PREFIX}/SESSION-X0")
        replies = []
        # An id no session has (session ids are random 31-bit numbers).
        unknown = session.sign(_create(session, f"{PREFIX}/SESSION-X1"))
        table = node.node.dispatcher.sessions.table
        bogus = next(i for i in range(1, 1000) if table.peek(i, 0) is None)
        replies.append(raw(node, unknown.replace(session_id=bogus)))
        # Expired: the session was last used longer ago than its timeout.
        live = table.peek(session.session_id, 0)
        assert isinstance(live, ServerSession)

        async def age() -> None:
            live.last_used -= live.timeout + 1

        node.call(age())
        replies.append(raw(node, session.sign(_create(session, f"{PREFIX}/SESSION-X2"))))
        return replies

    unknown, expired = run(work())
    for reply in (unknown, expired):
        assert reply.response_code == ResponseCode.SESSION_TIMEOUT
        assert isinstance(reply.body, ErrorBody)
    for suffix in ("X1", "X2"):
        assert node.get_handle(f"{PREFIX}/SESSION-{suffix}") is None
    node.call(_delete(node, f"{PREFIX}/SESSION-X0"))


async def _delete(node: RunningNode, handle: str) -> None:
    await node.node.store.delete_handle(handle)


def test_terminate_checks_the_mac_and_ends_the_session(node: RunningNode) -> None:
    async def work() -> list[Message]:
        session = node.client(node.secret_credentials, tcp=True).session()
        await session.open()
        terminate = session.sign(session.client.build(OpCode.SESSION_TERMINATE, HandleRequest("/")))
        bad = Credential.from_bytes(terminate.credential)
        bad_sig = bytes(len(bad.signature))
        forged = Credential(
            signer_index=bad.signer_index, type=HS_MAC, digest_alg=bad.digest_alg,
            signature=bad_sig,
        )  # fmt: skip
        replies = [raw(node, terminate.replace(credential=forged.to_bytes()))]
        replies.append(raw(node, terminate))
        replies.append(raw(node, session.sign(_create(session, f"{PREFIX}/SESSION-T1"))))
        return replies

    forged, ended, after = run(work())
    assert forged.response_code == ResponseCode.INVALID_SESSION_KEY
    assert ended.response_code == ResponseCode.SUCCESS
    assert after.response_code == ResponseCode.SESSION_TIMEOUT


# -- setup ----------------------------------------------------------------------------------------


def _setup(node: RunningNode, body: SessionSetupRequest, *, tcp: bool = False) -> Message:
    client = node.client(None)
    request = client.build(OpCode.SESSION_SETUP, body, OpFlag.CT | OpFlag.RD)
    return raw(node, request, tcp=tcp)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_unusable_setups_fail_cleanly(node: RunningNode, tcp: bool) -> None:
    weak = PublicKeyData.from_integers(DH_PUB_KEY, 5, 2**127 - 1, 2).to_bytes()
    not_dh = PublicKeyData.from_integers("RSA_PUB_KEY", 3, 2**1023 + 1).to_bytes()
    for body in (
        SessionSetupRequest(4, 60, "", 0, weak),
        SessionSetupRequest(4, 60, "", 0, not_dh),
        SessionSetupRequest(4, 60, "", 0, b"garbage"),
        SessionSetupRequest(1, 60, "", 0, weak),
        SessionSetupRequest(3, 60, "", 0, key_handle=f"{PREFIX}/NO-KEY", key_index=1),
        SessionSetupRequest(7, 60, "", 0),
    ):
        reply = _setup(node, body, tcp=tcp)
        assert reply.response_code == ResponseCode.SESSION_FAILED, body
        assert reply.session_id == 0


def test_malformed_setup_body_is_a_protocol_error(node: RunningNode) -> None:
    good = node.client(None).build(
        OpCode.SESSION_SETUP,
        SessionSetupRequest(4, 60, "", 0, DHKeyPair.generate().public.to_bytes()),
    )
    data = good.encode()
    # Cut the public key short, keeping the lengths consistent with the shorter body.
    body_start = 20 + 24
    body = bytearray(data[body_start:-4])
    del body[40:]
    header = bytearray(data[20:44])
    struct.pack_into(">I", header, 20, len(body))
    payload = bytes(header) + bytes(body) + bytes(4)
    envelope = bytearray(data[:20])
    struct.pack_into(">I", envelope, 16, len(payload))
    truncated = bytes(envelope) + payload
    for reply_data in (tcp_exchange(node.port, truncated), udp_exchange(node.port, truncated)):
        assert reply_data is not None
        reply = Message.decode(reply_data)
        assert reply.response_code == ResponseCode.PROTOCOL_ERROR


def test_server_cipher_session_with_key_exchange(node: RunningNode) -> None:
    """Mode 2: the server sends its RSA key, the client its key in op 402 (both forms)."""
    for with_algorithm in (False, True):
        reply = _setup(node, SessionSetupRequest(2, 60, "", 0), tcp=True)
        assert reply.response_code == ResponseCode.SUCCESS
        body = reply.body
        assert isinstance(body, SessionSetupResponse)
        server_key = PublicKeyData.from_bytes(body.data).to_public_key()
        assert isinstance(server_key, rsa.RSAPublicKey)
        key = bytes(range(32))
        plain = (b"\x00\x00\x00\x03" if with_algorithm else b"") + key
        encrypted = server_key.encrypt(plain, padding.PKCS1v15())
        client = node.client(None)
        exchange = client.build(
            OpCode.SESSION_EXCHANGEKEY, RawBody(Writer().byte_array(encrypted).getvalue())
        ).replace(session_id=reply.session_id)
        assert raw(node, exchange).response_code == ResponseCode.SUCCESS
        # The session key now MACs requests: terminate with it.
        terminate = client.build(OpCode.SESSION_TERMINATE, HandleRequest("/")).replace(
            session_id=reply.session_id
        )
        cred = mac_credential(
            key, terminate.version, terminate.suggested_version, terminate.session_id,
            terminate.request_id, 1, terminate.encode_header_and_body(),
        )  # fmt: skip
        ended = raw(node, terminate.replace(credential=cred.to_bytes()))
        assert ended.response_code == ResponseCode.SUCCESS


@pytest.mark.parametrize("name", ["session-create-seckey", "genericbatch-create-session"])
def test_recorded_reference_session_setup_replays(node: RunningNode, name: str) -> None:
    """The reference client's setup (UDP, DH mode 4) gets a session; its later create names
    the reference server's session id, which is no session here: 500, as the reference
    answers an unknown session."""
    setup, _response, create = load_messages(name)[:3]
    reply_data = udp_exchange(node.port, setup.data)
    assert reply_data is not None
    reply = Message.decode(reply_data)
    assert reply.response_code == ResponseCode.SUCCESS
    assert reply.session_id != 0 and reply.has(OpFlag.RD) and reply.has(OpFlag.CT)
    body = reply.body
    assert isinstance(body, SessionSetupResponse) and body.mode == KeyExchangeMode.DH
    algorithm, server_key = parse_dh_response_data(body.data)
    assert algorithm == CipherAlgorithm.AES
    request_body = Message.decode(setup.data).body
    assert isinstance(request_body, SessionSetupRequest)
    assert server_key.p.bit_length() == 1024
    # Signed with the server key (the client authenticates the server this way).
    assert Credential.from_bytes(reply.credential).type == "HS_SIGNED"
    if node.node.dispatcher.sessions.table.peek(create.session_id, 0) is None:
        answer = Message.decode(tcp_exchange(node.port, create.data))
        assert answer.response_code == ResponseCode.SESSION_TIMEOUT


def test_session_errors_reach_the_client_as_remote_errors(node: RunningNode) -> None:
    async def work() -> None:
        session = node.client(node.secret_credentials, tcp=True).session()
        await session.open()
        session.session_id ^= 0x40000000  # not our session any more
        with pytest.raises(RemoteError) as info:
            await session.get_site_info()
        assert info.value.code == ResponseCode.SESSION_TIMEOUT
        await session.close()  # a session the server does not know counts as closed

    run(work())


# -- the table and the replay window (pure) ------------------------------------------------------


def _session(session_id: int, now: float, timeout: float = 100.0) -> ServerSession:
    return ServerSession(session_id, b"k" * 32, 3, 4, None, timeout, now)


def test_table_is_bounded_and_expires() -> None:
    table = SessionTable(capacity=3)
    for i in range(1, 5):
        table.add(_session(i, now=0.0), now=0.0)
    assert len(table) == 3 and table.get(1, 1.0) is None  # the least recently used went
    assert table.get(2, 50.0) is not None  # used at 50: lives until 150
    assert table.get(3, 120.0) is None  # last used at 0, timeout 100
    assert table.get(2, 149.0) is not None
    assert table.get(2, 300.0) is None
    assert table.new_id() != 0


def test_replay_window() -> None:
    window = _ReplayWindow()
    assert window.add(1, unique=True)
    assert not window.add(1, unique=True)
    assert window.add(3, unique=True) and window.add(2, unique=True)  # out of order is fine
    assert not window.add(0, unique=True)
    assert window.add(0, unique=False)
    for counter in range(10, 10 + COUNTER_WINDOW):
        assert window.add(counter, unique=True)
    assert not window.add(5, unique=True)  # at or below the oldest forgotten: refused
    assert window.add(10 + COUNTER_WINDOW, unique=True)


# -- encryption (the ENC flag) -------------------------------------------------------------------


def _encrypted(message: Message, key: bytes) -> bytes:
    data = message.encode()
    sealed = encrypt_payload(key, CipherAlgorithm.AES, data[20:])
    envelope = bytearray(data[:20])
    envelope[2] |= ENV_ENCRYPTED
    struct.pack_into(">I", envelope, 16, len(sealed))
    return bytes(envelope) + sealed


def _opened(data: bytes, key: bytes) -> Message:
    assert data[2] & ENV_ENCRYPTED
    payload = decrypt_payload(key, CipherAlgorithm.AES, data[20:])
    envelope = bytearray(data[:20])
    envelope[2] &= ~ENV_ENCRYPTED & 0xFF
    struct.pack_into(">I", envelope, 16, len(payload))
    return Message.decode(bytes(envelope) + payload)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_encrypted_requests_and_responses(node: RunningNode, tcp: bool) -> None:
    handle = f"{PREFIX}/SESSION-ENC-{'T' if tcp else 'U'}"

    async def work() -> tuple[Message, Message, Message]:
        session = await authenticated_session(node, handle)
        assert session._key is not None
        key = session._key
        request = session.sign(
            session.client.build(OpCode.RESOLUTION, ResolutionRequest(handle), OpFlag.ENC)
        )
        sent = _encrypted(request, key)
        if tcp:
            reply_data = tcp_exchange(node.port, sent)
        else:
            maybe = udp_exchange(node.port, sent)
            assert maybe is not None
            reply_data = maybe
        resolved = _opened(reply_data, key)
        # Garbage that does not decrypt: 501; an unknown session: 500 (opcode 0, in clear).
        garbled = bytearray(sent)
        garbled[-1] ^= 0xFF
        garbled[-17] ^= 0xFF
        bad = Message.decode(tcp_exchange(node.port, bytes(garbled)))
        unknown_data = bytearray(sent)
        unknown_data[4:8] = b"\x00\x00\x00\x01" if session.session_id != 1 else b"\x00\x00\x00\x02"
        unknown = Message.decode(tcp_exchange(node.port, bytes(unknown_data)))
        await session.delete_handle(handle)
        await session.close()
        return resolved, bad, unknown

    resolved, bad, unknown = run(work())
    assert resolved.response_code == ResponseCode.SUCCESS
    assert resolved.has(OpFlag.ENC)
    assert bad.response_code in (ResponseCode.SESSION_FAILED, ResponseCode.INVALID_SESSION_KEY)
    assert unknown.response_code == ResponseCode.SESSION_TIMEOUT and unknown.op == 0


# -- more flows -----------------------------------------------------------------------------------


def test_key_held_in_a_handle_session(node: RunningNode) -> None:
    """Mode 3: the server encrypts the session key with an RSA HS_PUBKEY held here."""
    key = make_rsa_key()
    holder = f"{PREFIX}/SESSION-KEYHOLDER"
    node.put_handle(holder, [pubkey_value(300, key)])
    body = SessionSetupRequest(3, 600, "", 0, key_handle=holder, key_index=300)
    reply = _setup(node, body, tcp=True)
    assert reply.response_code == ResponseCode.SUCCESS
    answer = reply.body
    assert isinstance(answer, SessionSetupResponse)
    algorithm, session_key = decrypt_session_key(key, answer.data)
    assert algorithm == CipherAlgorithm.AES and len(session_key) == 32
    client = node.client(None)
    terminate = client.build(OpCode.SESSION_TERMINATE, HandleRequest("/")).replace(
        session_id=reply.session_id
    )
    cred = mac_credential(
        session_key, terminate.version, terminate.suggested_version, terminate.session_id,
        terminate.request_id, 1, terminate.encode_header_and_body(),
    )  # fmt: skip
    assert raw(node, terminate.replace(credential=cred.to_bytes())).response_code == 1
    node.call(_delete(node, holder))


def test_answer_by_another_identity_does_not_authenticate_the_session(node: RunningNode) -> None:
    """A session set up for one identity and answered by another runs that request as the
    other identity, but stays unauthenticated: the next request is challenged again."""
    handles = [f"{PREFIX}/SESSION-OTHER-{i}" for i in range(2)]

    async def work() -> list[int]:
        # Set up naming 300:0.NA/<prefix>, then answer challenges as 301:0.NA/<prefix>.
        session = node.client(node.secret_credentials, tcp=True).session()
        await session.open()
        answering = counting(node, node.key_credentials, tcp=True)
        session.client = answering
        for handle in handles:
            await session.create_handle(handle, [text_value(1, "URL", "o")])
        for handle in handles:
            await session.delete_handle(handle)
        await session.close()
        return answering.codes

    codes = run(work())
    assert codes.count(ResponseCode.AUTHENTICATION_NEEDED) == 4  # every write challenged
    assert all(node.get_handle(h) is None for h in handles)


def test_concurrent_requests_in_one_session(node: RunningNode) -> None:
    """Counters may arrive out of order (concurrent TCP connections): all are accepted once."""
    handles = [f"{PREFIX}/SESSION-CONC-{i}" for i in range(12)]

    async def work() -> None:
        async with node.client(node.secret_credentials, tcp=True).session() as session:
            await session.create_handle(handles[0], [text_value(1, "URL", "c")])
            await asyncio.gather(
                *(session.create_handle(h, [text_value(1, "URL", "c")]) for h in handles[1:])
            )
            await asyncio.gather(*(session.delete_handle(h) for h in handles))

    run(work())
    assert all(node.get_handle(h) is None for h in handles)


def test_client_refuses_a_forged_response_mac(node: RunningNode) -> None:
    async def work() -> None:
        session = await authenticated_session(node, f"{PREFIX}/SESSION-CMAC")
        request = session.sign(
            session.client.build(
                OpCode.RESOLUTION, ResolutionRequest(f"{PREFIX}/SESSION-CMAC"), OpFlag.CT
            )
        )
        reply = await session.client.exchange(request, True)
        session._check_mac(reply)  # genuine: accepted
        with pytest.raises(AuthenticationFailed):
            session._check_mac(reply)  # the same server counter again: a replay
        cred = Credential.from_bytes(reply.credential)
        forged = Credential(
            signer_index=cred.signer_index + 1000, type=HS_MAC, digest_alg=cred.digest_alg,
            signature=bytes(32),
        )  # fmt: skip
        with pytest.raises(AuthenticationFailed):
            session._check_mac(reply.replace(credential=forged.to_bytes()))
        await session.delete_handle(f"{PREFIX}/SESSION-CMAC")
        await session.close()

    run(work())


def test_encrypted_session_client(node: RunningNode) -> None:
    handles = [f"{PREFIX}/SESSION-ENCC-{i}" for i in range(5)]
    client = counting(node, node.secret_credentials, tcp=False)

    async def work() -> None:
        async with client.session(encrypt=True) as session:
            table = node.node.dispatcher.sessions.table
            for handle in handles:
                await session.create_handle(handle, [text_value(1, "URL", "e")])
                live = table.peek(session.session_id, 0)
                assert live is not None and live.authenticated
            values = await session.resolve(handles[0])
            assert values[0].data == b"e"
            for handle in handles:
                await session.delete_handle(handle)

    run(work())
    assert client.codes == [ResponseCode.SUCCESS]  # the setup; the rest went encrypted
    assert all(node.get_handle(h) is None for h in handles)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_session_setups_get_an_answer(node: RunningNode, data: st.DataObject) -> None:
    """Random byte changes to the reference client's setup (after the envelope): always a
    well-formed answer, never an internal error (checked for every test by conftest)."""
    setup = bytearray(load_messages("session-create-seckey")[0].data)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(20, len(setup) - 1))
        setup[position] = data.draw(st.integers(0, 255))
    reply = udp_exchange(node.port, bytes(setup), timeout=2.0)
    if reply is not None:  # a response is never answered; anything else is
        answer = Message.decode(reply)
        assert answer.response_code != ResponseCode.ERROR


def test_a_resent_request_gets_the_same_challenge(node: RunningNode) -> None:
    handle = f"{PREFIX}/SESSION-RESEND"

    async def work() -> tuple[Message, Message, Message]:
        session = node.client(node.secret_credentials, tcp=True).session()
        await session.open()
        unsigned = _create(session, handle)
        first = raw(node, session.sign(unsigned))
        again = raw(node, session.sign(unsigned))  # re-signed with a new counter, as Java does
        answer = session.client.challenge_answer(unsigned, again)
        done = raw(node, answer)
        await session.delete_handle(handle)  # the session is authenticated now: no challenge
        await session.close()
        return first, again, done

    first, again, done = run(work())
    assert first.response_code == again.response_code == ResponseCode.AUTHENTICATION_NEEDED
    assert first.body == again.body  # the same nonce
    assert done.response_code == ResponseCode.SUCCESS
    assert node.get_handle(handle) is None


def test_session_with_certified_answers(node: RunningNode) -> None:
    """A client that checks certified answers: the setup answer is signed by the server key,
    the answers in the session are MACed (both checked)."""
    site = run(node.client(None).get_site_info())
    keys = ServerKeys.of(site.servers[0], site)
    handle = f"{PREFIX}/SESSION-CERT"

    async def work() -> None:
        client = HandleClient(
            node.host, node.port, credentials=node.secret_credentials, verify_with=keys
        )
        async with client.session() as session:
            await session.create_handle(handle, [text_value(1, "URL", "c")])
            assert (await session.resolve(handle))[0].data == b"c"
            await session.delete_handle(handle)

    run(work())
    assert node.get_handle(handle) is None
