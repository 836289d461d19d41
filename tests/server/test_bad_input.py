"""Malformed and hostile input on the real UDP and TCP ports (spec §1.1, §1.3-§1.5).

The node runs with short transport deadlines (``read_timeout`` 0.5 s, ``idle_timeout``
1 s). Every socket operation here has a timeout, and after each test the node must still
answer a normal resolution over UDP and TCP (and, as everywhere, log no internal error).
"""

from __future__ import annotations

import asyncio
import resource
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnode.protocol.bodies import (
    ErrorBody,
    RawBody,
    ResolutionRequest,
    ResolutionResponse,
)
from idnode.protocol.codes import OpCode, OpFlag, ResponseCode
from idnode.protocol.message import ENVELOPE_SIZE, HEADER_SIZE, MAX_MESSAGE_LENGTH, Message
from idnode.server.transports import TransportLimits
from tests.server.nodeutil import (
    PREFIX,
    RunningNode,
    create_node_dir,
    recv_all,
    running_node,
    split_messages,
    tcp_connect,
    tcp_exchange,
    udp_exchange,
)

READ_TIMEOUT = 0.5
IDLE_TIMEOUT = 1.0
LIMITS = TransportLimits(read_timeout=READ_TIMEOUT, idle_timeout=IDLE_TIMEOUT)
PV = f"{PREFIX}/PV-2026-000123"
#: How long to wait for a datagram that must not come.
SILENCE = 0.3

_ENVELOPE = struct.Struct(">BBBBIIII")
_HEADER = struct.Struct(">IIIHBBII")


@pytest.fixture(scope="module")
def node(node_dir: Path) -> Iterator[RunningNode]:
    """The module's node, with short read and idle deadlines."""
    with running_node(node_dir, limits=LIMITS) as running:
        yield running


@pytest.fixture(autouse=True)
def still_answers(node: RunningNode) -> Iterator[None]:
    yield
    assert_alive(node)


def assert_alive(node: RunningNode) -> None:
    for tcp in (False, True):
        values = asyncio.run(node.client(tcp=tcp, timeout=2.0).resolve(PV))
        assert values and values[0].data.startswith(b"https://")


def envelope(
    length: int,
    *,
    request_id: int = 0x01020304,
    session_id: int = 0,
    sequence: int = 0,
    version: tuple[int, int] = (2, 11),
) -> bytes:
    return _ENVELOPE.pack(version[0], version[1], 2, 11, session_id, request_id, sequence, length)


def header(op: int, body_length: int, *, code: int = 0, flags: int = 0) -> bytes:
    return _HEADER.pack(op, code, flags, 0xFFFF, 0, 0, int(time.time()) + 600, body_length)


def raw_message(
    op: int,
    body: bytes,
    *,
    request_id: int = 0x01020304,
    code: int = 0,
    flags: int = 0,
    body_length: int | None = None,
    length: int | None = None,
    sequence: int = 0,
) -> bytes:
    """Envelope + header + body + empty credential, with optionally lying length fields."""
    payload = header(op, len(body) if body_length is None else body_length, code=code, flags=flags)
    payload += body + b"\x00\x00\x00\x00"
    env = envelope(
        len(payload) if length is None else length, request_id=request_id, sequence=sequence
    )
    return env + payload


def resolution_body(handle: str = PV) -> bytes:
    encoded = handle.encode()
    return struct.pack(">I", len(encoded)) + encoded + b"\x00" * 8


def good_request(request_id: int = 0x01020304, flags: int = int(OpFlag.PO)) -> bytes:
    return raw_message(OpCode.RESOLUTION, resolution_body(), request_id=request_id, flags=flags)


def assert_error_reply(data: bytes | None, request_id: int, code: int) -> Message:
    assert data is not None, "expected an error response"
    reply = Message.decode(data)
    assert not reply.is_request
    assert reply.response_code == code, f"got response code {reply.response_code}"
    assert reply.request_id == request_id
    assert isinstance(reply.body, ErrorBody)
    return reply


def udp_silence(node: RunningNode, data: bytes) -> None:
    assert udp_exchange(node.port, data, timeout=SILENCE) is None


def test_good_request_sanity(node: RunningNode) -> None:
    """The hand-built request of this module is answered, over both transports."""
    reply = Message.decode(udp_exchange(node.port, good_request(7)) or b"")
    assert reply.response_code == ResponseCode.SUCCESS and reply.request_id == 7
    (reply,) = split_messages(tcp_exchange(node.port, good_request(8)))
    assert reply.response_code == ResponseCode.SUCCESS and reply.request_id == 8
    assert isinstance(reply.body, ResolutionResponse)


# -- random bytes ----------------------------------------------------------------------------

FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_OPS = st.one_of(st.sampled_from([int(op) for op in OpCode]), st.integers(0, 0xFFFFFFFF))


@st.composite
def framed(draw: st.DrawFn, max_body: int = 400) -> bytes:
    """Envelope + header + random body, with length fields that are right or random."""
    body = draw(st.binary(max_size=max_body))
    credential = draw(st.sampled_from([b"\x00\x00\x00\x00", b"", b"\x00\x00\x00\x10"]))
    body_length = draw(st.one_of(st.just(len(body)), st.integers(0, 0xFFFFFFFF)))
    op = draw(_OPS)
    flags = draw(st.integers(0, 0xFFFFFFFF))
    payload = _HEADER.pack(op, 0, flags, 0xFFFF, 0, 0, 0, body_length) + body + credential
    length = draw(st.one_of(st.just(len(payload)), st.integers(0, 0xFFFFFFFF)))
    env = _ENVELOPE.pack(
        draw(st.integers(0, 255)),
        draw(st.integers(0, 255)),
        draw(st.integers(0, 255)),
        draw(st.integers(0, 255)),
        draw(st.integers(0, 0xFFFFFFFF)),
        draw(st.integers(0, 0xFFFFFFFF)),
        draw(st.one_of(st.just(0), st.integers(0, 0xFFFFFFFF))),
        length,
    )
    return env + payload


GARBAGE = st.one_of(st.binary(max_size=600), framed())


def reply_expected(data: bytes) -> bool:
    """Whether the server must answer: enough header to address a response, and a request."""
    if len(data) < ENVELOPE_SIZE + HEADER_SIZE:
        return False
    code: int = struct.unpack_from(">I", data, ENVELOPE_SIZE + 4)[0]
    return code == 0


@FUZZ
@given(data=GARBAGE.filter(lambda d: len(d) <= 512))
def test_random_datagrams(node: RunningNode, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        sock.connect((node.host, node.port))
        sock.send(data)
        request_id = struct.unpack_from(">I", data, 8)[0] if len(data) >= 12 else None
        if reply_expected(data):
            reply = Message.decode(sock.recv(65536))
            assert not reply.is_request
            assert reply.request_id == request_id
            assert reply.response_code != ResponseCode.ERROR, "internal error"
        # The node still answers, and nothing else (no answer to a dropped datagram) comes.
        sock.send(good_request(0x7EADBEEF))
        reply = Message.decode(sock.recv(65536))
        assert reply.request_id == 0x7EADBEEF
        assert reply.response_code == ResponseCode.SUCCESS


@FUZZ
@given(data=GARBAGE)
def test_random_tcp_streams(node: RunningNode, data: bytes) -> None:
    stream = tcp_exchange(node.port, data, timeout=3.0)
    for reply in split_messages(stream):
        assert not reply.is_request
        assert reply.response_code != ResponseCode.ERROR, "internal error"


# -- truncated and mis-sized messages --------------------------------------------------------


@pytest.mark.parametrize("size", [1, 4, 12, 19])
def test_truncated_envelope_udp(node: RunningNode, size: int) -> None:
    udp_silence(node, good_request()[:size])


@pytest.mark.parametrize("size", [1, 12, 19, 20, 30, 43])
def test_truncated_message_tcp(node: RunningNode, size: int) -> None:
    """A stream that ends inside a message is closed without an answer."""
    assert tcp_exchange(node.port, good_request()[:size]) == b""


def test_truncated_header_udp(node: RunningNode) -> None:
    """Too short to address a response (< 44 bytes): dropped."""
    udp_silence(node, good_request()[:30])


def test_truncated_body_udp(node: RunningNode) -> None:
    """The envelope promises more than the datagram holds: PROTOCOL_ERROR, same request id."""
    data = good_request(request_id=0x0A0B0C0D)
    reply = udp_exchange(node.port, data[:-10])
    assert_error_reply(reply, 0x0A0B0C0D, ResponseCode.PROTOCOL_ERROR)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            raw_message(1, resolution_body(), request_id=0x51, body_length=200), id="body-long"
        ),
        pytest.param(
            raw_message(1, resolution_body(), request_id=0x51, body_length=10), id="body-short"
        ),
        pytest.param(
            raw_message(1, resolution_body(), request_id=0x51, body_length=0xFFFFFFFF),
            id="body-huge",
        ),
        pytest.param(
            raw_message(1, resolution_body() + b"\x00" * 7, request_id=0x51), id="body-trailing"
        ),
        pytest.param(good_request(0x51)[:-4] + b"\x00\x00\x00\x09", id="credential-length-wrong"),
    ],
)
def test_wrong_inner_lengths(node: RunningNode, tcp: bool, data: bytes) -> None:
    if tcp:
        replies = split_messages(tcp_exchange(node.port, data))
        assert len(replies) == 1
        assert_error_reply(replies[0].encode(), 0x51, ResponseCode.PROTOCOL_ERROR)
    else:
        assert_error_reply(udp_exchange(node.port, data), 0x51, ResponseCode.PROTOCOL_ERROR)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            raw_message(1, resolution_body(), request_id=0x52, length=400), id="envelope-long"
        ),
        pytest.param(
            raw_message(1, resolution_body(), request_id=0x52, length=30), id="envelope-short"
        ),
        pytest.param(
            raw_message(1, resolution_body(), request_id=0x52, sequence=1), id="sequence-1"
        ),
    ],
)
def test_wrong_envelope_lengths_udp(node: RunningNode, data: bytes) -> None:
    assert_error_reply(udp_exchange(node.port, data), 0x52, ResponseCode.PROTOCOL_ERROR)


def test_envelope_shorter_than_message_tcp(node: RunningNode) -> None:
    """The envelope length cuts the message: the part it covers is malformed."""
    data = raw_message(1, resolution_body(), request_id=0x53, length=30)
    replies = split_messages(tcp_exchange(node.port, data))
    assert len(replies) == 1
    assert_error_reply(replies[0].encode(), 0x53, ResponseCode.PROTOCOL_ERROR)


# -- oversized messages ------------------------------------------------------------------------


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(
    "length", [0x80000000, 0xFFFFFFFF, MAX_MESSAGE_LENGTH + 1], ids=["2GB", "4GB", "max+1"]
)
def test_huge_envelope_with_header_tcp(node: RunningNode, length: int) -> None:
    """An envelope claiming more than the limit gets PROTOCOL_ERROR at once, then EOF."""
    rss = _max_rss_mb()
    start = time.monotonic()
    data = envelope(length, request_id=0x61) + header(OpCode.RESOLUTION, 1000)
    with tcp_connect(node.port) as sock:
        sock.sendall(data)
        stream = recv_all(sock, timeout=3.0)
    assert time.monotonic() - start < READ_TIMEOUT + 1.0
    replies = split_messages(stream)
    assert len(replies) == 1
    assert_error_reply(replies[0].encode(), 0x61, ResponseCode.PROTOCOL_ERROR)
    assert _max_rss_mb() - rss < 64


def test_huge_envelope_alone_tcp(node: RunningNode) -> None:
    """Only the envelope, then silence: the connection is closed within the read timeout."""
    start = time.monotonic()
    with tcp_connect(node.port) as sock:
        sock.sendall(envelope(0x80000000, request_id=0x62))
        stream = recv_all(sock, timeout=READ_TIMEOUT + 3.0)
    assert time.monotonic() - start < READ_TIMEOUT + 1.5
    assert stream == b""


def test_huge_envelope_then_data_tcp(node: RunningNode) -> None:
    """The client keeps sending after a 2 GB envelope: answered and closed, nothing buffered."""
    rss = _max_rss_mb()
    start = time.monotonic()
    with tcp_connect(node.port) as sock:
        sock.sendall(envelope(0x80000000, request_id=0x63) + header(OpCode.RESOLUTION, 10**9))
        sent = 0
        chunk = b"\xaa" * 65536
        sock.settimeout(0.5)
        # Push up to 8 MB; the server stops reading (the send blocks or the peer resets).
        try:
            while sent < 8 * 2**20 and time.monotonic() - start < 3.0:
                sent += sock.send(chunk)
        except (TimeoutError, ConnectionError):
            pass
        # The answer may be lost to the reset that unread data causes; the close must come.
        recv_all(sock, timeout=3.0)
    assert time.monotonic() - start < 7.0
    assert sent < 8 * 2**20, f"the server kept reading {sent} bytes after refusing the message"
    assert _max_rss_mb() - rss < 64


# -- well-formed but unacceptable requests ---------------------------------------------------


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize(
    "op",
    [9999, 0, int(OpCode.LIST_NA), int(OpCode.BACKUP_SERVER)],
    ids=["9999", "reserved-0", "list-na", "backup-server"],
)
def test_unsupported_opcode(node: RunningNode, tcp: bool, op: int) -> None:
    # Sessions (op 400) are supported: tests/server/test_sessions.py.
    data = raw_message(op, b"\x00\x00\x00\x00", request_id=0x71)
    if tcp:
        (reply,) = split_messages(tcp_exchange(node.port, data))
        assert_error_reply(reply.encode(), 0x71, ResponseCode.OPERATION_NOT_SUPPORTED)
    else:
        reply_data = udp_exchange(node.port, data)
        assert_error_reply(reply_data, 0x71, ResponseCode.OPERATION_NOT_SUPPORTED)


def _response_as_request() -> bytes:
    reply = Message(
        op=OpCode.RESOLUTION,
        body=ResolutionResponse(PV, ()),
        response_code=ResponseCode.SUCCESS,
        request_id=0x81,
    )
    return reply.encode()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_response_as_request(), id="success-response"),
        pytest.param(
            raw_message(
                1, b"\x00\x00\x00\x00", code=ResponseCode.HANDLE_NOT_FOUND, request_id=0x81
            ),
            id="error-response",
        ),
        pytest.param(
            raw_message(1, b"\xff\xff", code=ResponseCode.SUCCESS, request_id=0x81),
            id="malformed-response",
        ),
    ],
)
def test_response_sent_as_request_is_dropped(node: RunningNode, data: bytes) -> None:
    udp_silence(node, data)
    assert tcp_exchange(node.port, data) == b""


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\xff" * 24, id="ff"),
        pytest.param(b"\x00\x00\x00\x05abc", id="short-string"),
        pytest.param(resolution_body()[:-4], id="missing-type-list"),
        pytest.param(b"\x00\x00\x00\x02ab\x7f\xff\xff\xff", id="huge-index-count"),
        pytest.param(b"\x00\x00\x00\x02\xc3\x28\x00\x00\x00\x00\x00\x00\x00\x00", id="bad-utf8"),
    ],
)
def test_garbage_body(node: RunningNode, tcp: bool, body: bytes) -> None:
    data = raw_message(OpCode.RESOLUTION, body, request_id=0x91)
    if tcp:
        (reply,) = split_messages(tcp_exchange(node.port, data))
        assert_error_reply(reply.encode(), 0x91, ResponseCode.PROTOCOL_ERROR)
    else:
        assert_error_reply(udp_exchange(node.port, data), 0x91, ResponseCode.PROTOCOL_ERROR)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize(
    "op",
    [OpCode.CREATE_HANDLE, OpCode.CHALLENGE_RESPONSE, OpCode.VERIFY_CHALLENGE, OpCode.REMOVE_VALUE],
    ids=lambda op: op.name.lower(),
)
def test_garbage_body_of_other_ops(node: RunningNode, tcp: bool, op: OpCode) -> None:
    data = raw_message(op, b"\x00\x00\x00\x01X\x00\x00\x00\x09\x01", request_id=0x92)
    if tcp:
        (reply,) = split_messages(tcp_exchange(node.port, data))
        assert_error_reply(reply.encode(), 0x92, ResponseCode.PROTOCOL_ERROR)
    else:
        assert_error_reply(udp_exchange(node.port, data), 0x92, ResponseCode.PROTOCOL_ERROR)


# -- slow clients ----------------------------------------------------------------------------


def _time_until_closed(sock: socket.socket, limit: float) -> tuple[float, bytes]:
    start = time.monotonic()
    data = recv_all(sock, timeout=limit)
    return time.monotonic() - start, data


def test_half_message_then_stall(node: RunningNode) -> None:
    data = good_request(0xA1)
    with tcp_connect(node.port) as sock:
        sock.sendall(data[: len(data) // 2])
        elapsed, received = _time_until_closed(sock, READ_TIMEOUT + 3.0)
    assert received == b""
    assert READ_TIMEOUT * 0.8 <= elapsed < READ_TIMEOUT + 1.5


def test_half_envelope_then_stall(node: RunningNode) -> None:
    with tcp_connect(node.port) as sock:
        sock.sendall(good_request(0xA2)[:7])
        elapsed, received = _time_until_closed(sock, READ_TIMEOUT + 3.0)
    assert received == b""
    assert READ_TIMEOUT * 0.8 <= elapsed < READ_TIMEOUT + 1.5


def test_trickling_client_hits_the_message_deadline(node: RunningNode) -> None:
    """Bytes arriving slowly but steadily do not extend the deadline of one message."""
    data = good_request(0xA3)
    start = time.monotonic()
    closed = False
    with tcp_connect(node.port) as sock:
        for i in range(len(data) - 1):
            try:
                sock.sendall(data[i : i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.05)
            if time.monotonic() - start > READ_TIMEOUT + 2.0:
                break
        if not closed:
            received = recv_all(sock, timeout=3.0)
            assert received == b""
    assert time.monotonic() - start < READ_TIMEOUT + 2.5


def test_silent_connection_closed_after_idle_timeout(node: RunningNode) -> None:
    with tcp_connect(node.port) as sock:
        elapsed, received = _time_until_closed(sock, IDLE_TIMEOUT + 3.0)
    assert received == b""
    assert IDLE_TIMEOUT * 0.8 <= elapsed < IDLE_TIMEOUT + 1.5


def test_keep_alive_then_idle(node: RunningNode) -> None:
    """With KA two requests share a connection; then the idle timeout closes it."""
    first = good_request(0xB1, flags=int(OpFlag.PO | OpFlag.KA))
    second = good_request(0xB2, flags=int(OpFlag.PO | OpFlag.KA))
    with tcp_connect(node.port) as sock:
        sock.sendall(first + second)
        start = time.monotonic()
        stream = recv_all(sock, timeout=IDLE_TIMEOUT + 3.0)
        elapsed = time.monotonic() - start
    replies = split_messages(stream)
    assert [r.request_id for r in replies] == [0xB1, 0xB2]
    assert all(r.response_code == ResponseCode.SUCCESS for r in replies)
    assert all(r.has(OpFlag.KA) for r in replies)
    assert IDLE_TIMEOUT * 0.8 <= elapsed < IDLE_TIMEOUT + 1.5


def test_pipelined_requests_are_answered_in_order(node: RunningNode) -> None:
    """Cache hits (answered as the bytes arrive) and requests answered by a task of their
    own, pipelined on one kept-alive connection, come back in the order sent."""
    ka = int(OpFlag.PO | OpFlag.KA)
    missing = raw_message(
        OpCode.RESOLUTION, resolution_body(f"{PREFIX}/NO-SUCH"), request_id=0xF2, flags=ka
    )
    unsupported = raw_message(4242, b"", request_id=0xF4, flags=ka)
    tcp_exchange(node.port, good_request(0xF0))  # the answer to PV is now in the cache
    stream = good_request(0xF1, flags=ka) + missing + good_request(0xF3, flags=ka)
    stream += unsupported + good_request(0xF5, flags=ka) * 3 + good_request(0xF6)
    replies = split_messages(tcp_exchange(node.port, stream))
    assert [r.request_id for r in replies] == [0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF5, 0xF5, 0xF6]
    assert [r.response_code for r in replies] == [
        ResponseCode.SUCCESS,
        ResponseCode.HANDLE_NOT_FOUND,
        ResponseCode.SUCCESS,
        ResponseCode.OPERATION_NOT_SUPPORTED,
        *[ResponseCode.SUCCESS] * 4,
    ]


def test_a_peer_not_reading_its_answers_is_dropped(node: RunningNode) -> None:
    """A client that sends requests but never reads the answers is cut off once the answers
    have waited ``read_timeout``; the server neither buffers without end nor waits forever."""
    request = good_request(0xF7, flags=int(OpFlag.PO | OpFlag.KA))
    reply_length = len(tcp_exchange(node.port, good_request(0xF8)))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", node.port))
    with sock:
        sock.setblocking(False)
        chunk, sent, start = request * 512, 0, time.monotonic()
        while sent < 64 * 2**20 and time.monotonic() - start < 2.0:
            try:
                sent += sock.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
            except ConnectionError:
                break
        assert sent < 64 * 2**20, "the server kept reading requests it could not answer"
        time.sleep(READ_TIMEOUT + 1.0)
        sock.setblocking(True)
        received = recv_all(sock, timeout=10.0)
    assert len(received) < sent // len(request) * reply_length
    assert_alive(node)


def test_without_keep_alive_one_request_per_connection(node: RunningNode) -> None:
    stream = tcp_exchange(node.port, good_request(0xC1) + good_request(0xC2))
    assert [r.request_id for r in split_messages(stream)] == [0xC1]


def test_many_idle_connections_do_not_block_others(node: RunningNode) -> None:
    socks = [tcp_connect(node.port) for _ in range(20)]
    try:
        for s in socks[::2]:
            s.sendall(good_request()[:10])
        assert_alive(node)
    finally:
        for s in socks:
            s.close()


def test_message_body_decoded_as_raw_for_unknown_op(node: RunningNode) -> None:
    """Unknown operations get RawBody, so an arbitrary body still gets op-not-supported."""
    message = Message(op=4242, body=RawBody(b"\x01\x02\x03"), request_id=0xD1)
    reply = udp_exchange(node.port, message.encode())
    assert_error_reply(reply, 0xD1, ResponseCode.OPERATION_NOT_SUPPORTED)


def test_resolution_request_class_round_trip(node: RunningNode) -> None:
    """The hand-made body equals the library's encoding (guards the helpers above)."""
    message = Message(op=OpCode.RESOLUTION, body=ResolutionRequest(PV), request_id=1)
    assert message.encode()[ENVELOPE_SIZE + HEADER_SIZE : -4] == resolution_body()


def test_connection_limit(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Beyond max_connections a connection is closed at once; freed slots are reused."""
    directory = tmp_path_factory.mktemp("limited")
    create_node_dir(directory)
    limits = TransportLimits(max_connections=3, read_timeout=2.0, idle_timeout=5.0)
    with running_node(directory, limits=limits) as small:
        held = [tcp_connect(small.port) for _ in range(3)]
        try:
            for sock in held:  # make sure the server has accepted all three
                sock.sendall(good_request()[:5])
            time.sleep(0.2)
            start = time.monotonic()
            assert tcp_exchange(small.port, good_request(0xE1), timeout=3.0) == b""
            assert time.monotonic() - start < 1.0
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        for i in range(5):  # slots are freed again
            (reply,) = split_messages(tcp_exchange(small.port, good_request(0xE2 + i)))
            assert reply.response_code == ResponseCode.SUCCESS
