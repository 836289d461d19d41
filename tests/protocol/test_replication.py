"""Replication requests, responses and signed streams (ops 1000-1002).

The byte layouts are written out here with :mod:`struct` from the reference encoder's
field order (``Encoder.encodeRetrieveTxnRequest``, ``RetrieveTxnResponse.streamResponse``,
``DumpHandlesResponse.streamResponse``, ``SignedOutputStream``), independently of the codec.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from idnode.errors import ProtocolViolation
from idnode.protocol import auth
from idnode.protocol import replication as rp
from idnode.protocol.bodies import EmptyBody, HandleRequest
from idnode.protocol.codes import OpCode, ResponseCode
from idnode.protocol.message import Message
from idnode.protocol.values import HandleValue
from idnode.protocol.wire import Reader, Writer

T = TypeVar("T")

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)
DSA_KEY = dsa.generate_private_key(key_size=1024)


def body_bytes(body: rp.RetrieveTxnRequest | rp.DumpHandlesRequest) -> bytes:
    w = Writer()
    body.write(w)
    return w.getvalue()


# -- requests and responses ----------------------------------------------------------------------


def test_retrieve_request_layout_before_2_9() -> None:
    request = rp.RetrieveTxnRequest(2, 3, 1, last_txn_id=41, last_query_date_ms=1_700_000_000_123)
    expected = struct.pack(">qqBii", 41, 1_700_000_000_123, 2, 3, 1)
    assert body_bytes(request) == expected
    assert rp.RetrieveTxnRequest.read(Reader(expected)) == request


def test_retrieve_request_flagged_forms_from_2_9() -> None:
    flagged = b"\x00" + struct.pack(">qqBii", 7, 9, 0, 1, 0)
    assert rp.RetrieveTxnRequest.read(Reader(flagged)) == rp.RetrieveTxnRequest(
        0, 1, 0, last_txn_id=7, last_query_date_ms=9
    )
    state = b'{"queues":{}}'
    multi = b"\x01" + struct.pack(">i", len(state)) + state + struct.pack(">Bii", 1, 2, 1)
    request = rp.RetrieveTxnRequest.read(Reader(multi))
    assert request == rp.RetrieveTxnRequest(1, 2, 1, state_json=state)
    assert body_bytes(request) == multi
    with pytest.raises(ProtocolViolation):
        rp.RetrieveTxnRequest.read(Reader(b"\x02" + flagged[1:]))


@pytest.mark.parametrize("count, number", [(0, 0), (2, 2), (1, -1)])
def test_receiver_share_must_make_sense(count: int, number: int) -> None:
    with pytest.raises(ProtocolViolation):
        rp.DumpHandlesRequest(0, count, number)


def test_dump_request_layout_with_and_without_starting_point() -> None:
    plain = rp.DumpHandlesRequest(1, 2, 0)
    assert body_bytes(plain) == struct.pack(">Bii", 1, 2, 0)
    resume = rp.DumpHandlesRequest(1, 2, 0, b"88.118.8/x", 2)
    raw = (
        struct.pack(">Bii", 1, 2, 0) + struct.pack(">i", 10) + b"88.118.8/x" + struct.pack(">i", 2)
    )
    assert body_bytes(resume) == raw
    assert rp.DumpHandlesRequest.read(Reader(raw)) == resume


@pytest.mark.parametrize(
    "op, code, body",
    [
        (OpCode.GET_NEXT_TXN_ID, 0, HandleRequest("")),
        (OpCode.RETRIEVE_TXN_LOG, 0, rp.RetrieveTxnRequest(0, 1, 0, last_txn_id=5)),
        (OpCode.DUMP_HANDLES, 0, rp.DumpHandlesRequest(2, 1, 0)),
        (OpCode.GET_NEXT_TXN_ID, ResponseCode.SUCCESS, rp.NextTxnIdBody(12)),
        (OpCode.RETRIEVE_TXN_LOG, ResponseCode.SUCCESS, rp.RetrieveTxnResponseBody(True)),
        (OpCode.DUMP_HANDLES, ResponseCode.SUCCESS, EmptyBody()),
    ],
)
def test_messages_round_trip(op: int, code: int, body: object) -> None:
    message = Message(op=op, response_code=code, body=body, request_id=9)  # type: ignore[arg-type]
    assert Message.decode(message.encode()) == message


def test_next_txn_id_is_a_signed_long() -> None:
    assert rp.NextTxnIdBody.read(Reader(struct.pack(">q", 2**40))).next_txn_id == 2**40


# -- signed streams -----------------------------------------------------------------------------


def writer_for(key: rsa.RSAPrivateKey | dsa.DSAPrivateKey) -> rp.SignedStreamWriter:
    return rp.SignedStreamWriter(functools.partial(auth.sign_data, key, "SHA1"))


def parser_for(key: rsa.RSAPrivateKey | dsa.DSAPrivateKey) -> rp.SignedStreamParser:
    public = key.public_key()
    return rp.SignedStreamParser(lambda sig, data: auth.verify_data(public, b"SHA1", sig, data))


def drain(
    parser: rp.SignedStreamParser,
    parse: Callable[[rp.SignedStreamParser], Iterator[T]],
    data: bytes,
    chunk: int,
) -> list[T]:
    """Feed ``data`` ``chunk`` bytes at a time, collecting what parses."""
    out: list[T] = []
    items = parse(parser)
    for start in range(0, len(data), chunk):
        parser.feed(data[start : start + chunk])
        while True:
            try:
                out.append(next(items))
            except rp.NeedMoreData:
                items = parse(parser)
                break
            except StopIteration:
                return out
    return out


VALUE = HandleValue(1, "URL", b"https://pv.example.com/m/1").encode()


def txn_stream(key: rsa.RSAPrivateKey | dsa.DSAPrivateKey) -> bytes:
    w = writer_for(key)
    return (
        w.start()
        + w.block(rp.txn_header(rp.StreamStatus.SENDING_TRANSACTIONS))
        + w.block(rp.txn_record(5, b"88.118.8/M1", 1, 1000, [VALUE]))
        + w.block(rp.txn_record(6, b"88.118.8/M0", 2, 1001, None))
        + w.block(rp.txn_record(7, b"0.NA/88.118.8", 4, 1002, None))
        + w.block(rp.txn_end(2000))
    )


def test_stream_layout_matches_the_reference() -> None:
    signatures: list[bytes] = []

    def sign(data: bytes) -> bytes:
        signatures.append(data)
        return b"S" * 3

    w = rp.SignedStreamWriter(sign)
    assert w.start() == struct.pack(">ii", 0, 4) + b"SHA1"
    assert w.block(b"abc") == b"abc" + struct.pack(">i", 3) + b"SSS"
    record = rp.txn_record(5, b"P/a", 3, 77, [b"xy"])
    assert (
        record
        == b"\x01"
        + struct.pack(">qi", 5, 3)
        + b"P/a"
        + b"\x03"
        + struct.pack(">qii", 77, 1, 2)
        + b"xy"
    )
    assert rp.txn_end(9) == b"\x00" + struct.pack(">q", 9)
    assert rp.dump_handle(b"P/a", [b"xy"]) == b"\x01" + struct.pack(">i", 3) + b"P/a" + (
        struct.pack(">ii", 1, 2) + b"xy"
    )
    assert rp.dump_homed_prefix(b"0.NA/P") == b"\x02" + struct.pack(">i", 6) + b"0.NA/P"
    assert rp.dump_server_state(1, 2) == b"\x00" + struct.pack(">qq", 1, 2)
    assert rp.dump_done() == b"\xff"


@pytest.mark.parametrize("key", [RSA_KEY, DSA_KEY], ids=["rsa", "dsa"])
@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_transaction_stream_parses_in_any_chunking(
    key: rsa.RSAPrivateKey | dsa.DSAPrivateKey, chunk: int
) -> None:
    items = drain(parser_for(key), rp.parse_txn_stream, txn_stream(key), chunk)
    assert items == [
        rp.StreamStatus.SENDING_TRANSACTIONS,
        rp.StreamTxn(5, b"88.118.8/M1", 1, 1000, (VALUE,)),
        rp.StreamTxn(6, b"88.118.8/M0", 2, 1001, None),
        rp.StreamTxn(7, b"0.NA/88.118.8", 4, 1002, None),
        2000,
    ]


def test_tampered_stream_is_refused() -> None:
    data = bytearray(txn_stream(RSA_KEY))
    data[data.index(b"M1")] ^= 0x01
    with pytest.raises(ProtocolViolation, match="signature"):
        drain(parser_for(RSA_KEY), rp.parse_txn_stream, bytes(data), 64)


def test_stream_signed_by_another_key_is_refused() -> None:
    with pytest.raises(ProtocolViolation, match="signature"):
        drain(parser_for(DSA_KEY), rp.parse_txn_stream, txn_stream(RSA_KEY), 64)


@pytest.mark.parametrize("stream_type", [-1, rp.STREAM_TYPE_TLS])
def test_unsigned_and_tls_streams_are_refused(stream_type: int) -> None:
    data = struct.pack(">i", stream_type) + rp.txn_header(rp.StreamStatus.SENDING_TRANSACTIONS)
    with pytest.raises(ProtocolViolation, match="stream type"):
        drain(parser_for(RSA_KEY), rp.parse_txn_stream, data, 64)


def test_oversized_item_is_refused_without_allocating() -> None:
    w = writer_for(RSA_KEY)
    data = w.start() + w.block(rp.txn_header(rp.StreamStatus.SENDING_TRANSACTIONS))
    data += b"\x01" + struct.pack(">qi", 1, 2**31 - 1)
    with pytest.raises(ProtocolViolation, match="stream item"):
        drain(parser_for(RSA_KEY), rp.parse_txn_stream, data, 64)


def test_dump_stream_skips_multi_primary_records() -> None:
    w = writer_for(RSA_KEY)
    data = (
        w.start()
        + w.block(rp.dump_header())
        + w.block(b"\x05" + struct.pack(">i", 2) + b"{}")
        + w.block(rp.dump_server_state(10, 3))
        + w.block(b"\x03" + struct.pack(">i", 3) + b"P/a" + struct.pack(">qi", 1, 0))
        + w.block(rp.dump_handle(b"P/a", [VALUE]))
        + w.block(rp.dump_homed_prefix(b"0.NA/P"))
        + rp.dump_done()
    )
    records = drain(parser_for(RSA_KEY), rp.parse_dump, data, 5)
    assert records == [
        rp.DumpRecord(0, date_ms=10, txn_id=3),
        rp.DumpRecord(1, b"P/a", (VALUE,)),
        rp.DumpRecord(2, b"0.NA/P"),
        rp.DumpRecord(-1),
    ]


@settings(max_examples=30, deadline=None)
@given(
    txns=st.lists(
        st.tuples(
            st.integers(1, 2**62),
            st.binary(min_size=1, max_size=40),
            st.sampled_from([1, 2, 3, 4, 5]),
            st.integers(0, 2**62),
            st.lists(st.binary(max_size=30), max_size=4),
        ),
        max_size=8,
    ),
    chunk=st.integers(1, 300),
)
def test_transaction_streams_round_trip(
    txns: list[tuple[int, bytes, int, int, list[bytes]]], chunk: int
) -> None:
    key = RSA_KEY
    w = writer_for(key)
    data = w.start() + w.block(rp.txn_header(rp.StreamStatus.SENDING_TRANSACTIONS))
    expected: list[object] = [rp.StreamStatus.SENDING_TRANSACTIONS]
    for txn_id, handle, action, date, values in txns:
        carried = values if action in (1, 3) else None
        data += w.block(rp.txn_record(txn_id, handle, action, date, carried))
        expected.append(
            rp.StreamTxn(txn_id, handle, action, date, None if carried is None else tuple(values))
        )
    data += w.block(rp.txn_end(5))
    expected.append(5)
    assert drain(parser_for(key), rp.parse_txn_stream, data, chunk) == expected


@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_fail_cleanly(data: bytes) -> None:
    try:
        drain(rp.SignedStreamParser(lambda s, d: True), rp.parse_txn_stream, data, 17)
        drain(rp.SignedStreamParser(lambda s, d: True), rp.parse_dump, data, 17)
    except ProtocolViolation:
        pass
