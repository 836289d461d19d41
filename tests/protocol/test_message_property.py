"""Property tests of the message codec and framing (hypothesis).

* Round trips: every body class, HandleValue (with references) and whole messages (requests
  and responses, RD digest exactly on responses with the RD flag, credential bytes) satisfy
  ``decode(encode(x)) == x``; UDP fragments reassemble in any order; a TCP stream splits at
  any chunking.
* The bad-input invariant (STYLE.md §6, h11's fuzzer): for any bytes, ``Message.decode``,
  ``Reassembler.feed`` and ``StreamDecoder`` either succeed or raise ProtocolViolation, never
  anything else. Inputs are random bytes, random bodies behind well-formed envelopes and
  headers, and valid messages with flipped, cut, inserted and deleted bytes and rewritten
  length fields.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnode.errors import ProtocolViolation
from idnode.protocol.bodies import (
    Body,
    ChallengeAnswer,
    ChallengeBody,
    CreateHandleResponse,
    EmptyBody,
    ErrorBody,
    HandleListBody,
    HandleRequest,
    RawBody,
    ReferralBody,
    RemoveValuesRequest,
    RequestDigest,
    ResolutionRequest,
    ResolutionResponse,
    SessionSetupRequest,
    SessionSetupResponse,
    SiteInfoBody,
    ValuesRequest,
    VerifyChallengeRequest,
    VerifyChallengeResponse,
)
from idnode.protocol.framing import Reassembler, StreamDecoder, fragment
from idnode.protocol.message import Envelope, Message
from idnode.protocol.replication import (
    DumpHandlesRequest,
    NextTxnIdBody,
    RetrieveTxnRequest,
    RetrieveTxnResponseBody,
)
from idnode.protocol.values import HandleValue, Reference
from idnode.protocol.wire import Reader, Writer

ROUND_TRIP = settings(max_examples=100, deadline=None)
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

RD = 0x00800000
U32_MAX = 0xFFFFFFFF

# -- primitive strategies ----------------------------------------------------------------------

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, U32_MAX)
texts = st.text(max_size=12)
blobs = st.binary(max_size=40)


def tuples(
    elements: st.SearchStrategy[Any], max_size: int = 4
) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(elements, max_size=max_size).map(tuple)


# -- values and bodies -------------------------------------------------------------------------

references = st.builds(Reference, handle=texts, index=u32)
handle_values = st.builds(
    HandleValue,
    index=u32,
    type=texts,
    data=blobs,
    ttl=u32,
    ttl_type=u8,
    timestamp=u32,
    permissions=u8,
    references=tuples(references, 3),
)
value_lists = tuples(handle_values, 3)

_DIGEST_SIZES = {1: 16, 2: 20, 3: 32}
request_digests = st.one_of(
    st.sampled_from(sorted(_DIGEST_SIZES)).flatmap(
        lambda t: st.binary(min_size=_DIGEST_SIZES[t], max_size=_DIGEST_SIZES[t]).map(
            lambda d: RequestDigest(t, d)
        )
    ),
    blobs.map(lambda d: RequestDigest(0, d)),  # old format: length-prefixed (spec §1.6)
)


@st.composite
def session_setup_requests(draw: st.DrawFn) -> SessionSetupRequest:
    mode = draw(st.one_of(st.sampled_from([1, 2, 3, 4]), u16))
    public_key, key_handle, key_index = b"", "", 0
    if mode in (1, 4):
        public_key = draw(blobs)
    elif mode == 3:
        key_handle, key_index = draw(texts), draw(u32)
    return SessionSetupRequest(
        mode=mode,
        timeout=draw(u32),
        identity_handle=draw(texts),
        identity_index=draw(u32),
        public_key=public_key,
        key_handle=key_handle,
        key_index=key_index,
        padding=draw(st.binary(max_size=4)),
    )


handle_requests = st.builds(HandleRequest, texts)
resolution_requests = st.builds(ResolutionRequest, texts, tuples(u32), tuples(texts))
values_requests = st.builds(ValuesRequest, texts, value_lists)
remove_requests = st.builds(RemoveValuesRequest, texts, tuples(u32))
challenge_answers = st.builds(ChallengeAnswer, texts, texts, u32, blobs)
verify_requests = st.builds(VerifyChallengeRequest, texts, u32, blobs, request_digests, blobs)
empty_bodies = st.just(EmptyBody())
error_bodies = st.builds(ErrorBody, blobs)
resolution_responses = st.builds(ResolutionResponse, texts, value_lists)
referrals = st.builds(ReferralBody, texts, st.none() | value_lists)
challenges = st.builds(ChallengeBody, blobs, st.none() | blobs)
create_responses = st.builds(CreateHandleResponse, st.none() | texts)
handle_lists = st.builds(HandleListBody, tuples(texts))
site_infos = st.builds(SiteInfoBody, blobs)
verify_responses = st.builds(VerifyChallengeResponse, st.booleans())
session_setup_responses = st.builds(SessionSetupResponse, u16, blobs, st.binary(max_size=4))
raw_bodies = st.builds(RawBody, blobs)
i63 = st.integers(0, 2**63 - 1)


@st.composite
def receiver_shares(draw: st.DrawFn) -> tuple[int, int, int]:
    count = draw(st.integers(1, 64))
    return draw(u8), count, draw(st.integers(0, count - 1))


retrieve_requests = st.one_of(
    receiver_shares().flatmap(lambda s: st.builds(RetrieveTxnRequest, *map(st.just, s), i63, i63)),
    receiver_shares().flatmap(
        lambda s: st.builds(RetrieveTxnRequest, *map(st.just, s), state_json=blobs)
    ),
)
dump_requests = st.one_of(
    receiver_shares().map(lambda s: DumpHandlesRequest(*s)),
    receiver_shares().flatmap(
        lambda s: st.builds(DumpHandlesRequest, *map(st.just, s), blobs, u32.map(lambda v: v >> 1))
    ),
)
next_txn_ids = st.builds(NextTxnIdBody, i63)
retrieve_responses = st.builds(RetrieveTxnResponseBody, st.booleans())

BODIES: dict[type[Any], st.SearchStrategy[Any]] = {
    HandleRequest: handle_requests,
    ResolutionRequest: resolution_requests,
    ValuesRequest: values_requests,
    RemoveValuesRequest: remove_requests,
    ChallengeAnswer: challenge_answers,
    VerifyChallengeRequest: verify_requests,
    SessionSetupRequest: session_setup_requests(),
    EmptyBody: empty_bodies,
    ErrorBody: error_bodies,
    ResolutionResponse: resolution_responses,
    ReferralBody: referrals,
    ChallengeBody: challenges,
    CreateHandleResponse: create_responses,
    HandleListBody: handle_lists,
    SiteInfoBody: site_infos,
    VerifyChallengeResponse: verify_responses,
    SessionSetupResponse: session_setup_responses,
    RawBody: raw_bodies,
    RetrieveTxnRequest: retrieve_requests,
    DumpHandlesRequest: dump_requests,
    NextTxnIdBody: next_txn_ids,
    RetrieveTxnResponseBody: retrieve_responses,
}

#: Request body by opcode (spec §1.9, §1.11); other opcodes carry a RawBody.
REQUEST_BODIES: dict[int, st.SearchStrategy[Any]] = {
    1: resolution_requests,
    2: handle_requests,
    100: values_requests,
    101: handle_requests,
    102: values_requests,
    103: remove_requests,
    104: values_requests,
    105: handle_requests,
    200: challenge_answers,
    201: verify_requests,
    300: handle_requests,
    301: handle_requests,
    302: handle_requests,
    400: session_setup_requests(),
    401: handle_requests,
    1000: handle_requests,
    1001: retrieve_requests,
    1002: dump_requests,
    1003: handle_requests,
}
#: Success (response code 1) body by opcode (spec §1.11); other opcodes carry a RawBody.
SUCCESS_BODIES: dict[int, st.SearchStrategy[Any]] = {
    1: resolution_responses,
    2: site_infos,
    100: create_responses,
    101: empty_bodies,
    102: empty_bodies,
    103: empty_bodies,
    104: empty_bodies,
    105: handle_lists,
    201: verify_responses,
    300: empty_bodies,
    301: empty_bodies,
    302: handle_lists,
    400: session_setup_responses,
    401: empty_bodies,
    402: empty_bodies,
    1000: next_txn_ids,
    1001: retrieve_responses,
    1002: empty_bodies,
    1003: empty_bodies,
}
KNOWN_OPS = sorted(set(REQUEST_BODIES) | set(SUCCESS_BODIES) | {0, 106})
ops = st.one_of(st.sampled_from(KNOWN_OPS), u32)
response_codes = st.one_of(
    st.sampled_from([1, 2, 4, 100, 101, 200, 301, 302, 303, 402, 403, 500]), st.integers(1, U32_MAX)
)


def response_body(op: int, code: int, version: tuple[int, int]) -> st.SearchStrategy[Any]:
    """The body strategy for a response (spec §1.10, §1.11)."""
    if code == 1:
        return SUCCESS_BODIES.get(op, raw_bodies)
    if code == 402:
        return challenges
    if code == 302 or (code == 303 and version >= (2, 5) and version[0] != 5):  # 5.x: old 2.0
        return referrals
    return error_bodies


@st.composite
def messages(
    draw: st.DrawFn,
    *,
    response: bool | None = None,
    body: st.SearchStrategy[Any] | None = None,
    op: int | None = None,
    code: int | None = None,
) -> Message:
    is_response = draw(st.booleans()) if response is None else response
    version = draw(st.one_of(st.just((2, 11)), st.tuples(u8, u8)))
    op = draw(ops) if op is None else op
    if is_response:
        code = draw(response_codes) if code is None else code
        body_strategy = response_body(op, code, version)
    else:
        code = 0
        body_strategy = REQUEST_BODIES.get(op, raw_bodies)
    flags = draw(st.one_of(st.sampled_from([0x19000000, 0x99000000, 0x99800000]), u32))
    digest = draw(request_digests) if is_response and flags & RD else None
    return Message(
        op=op,
        body=draw(body if body is not None else body_strategy),
        response_code=code,
        flags=flags,
        site_info_serial=draw(u16),
        recursion_count=draw(u8),
        expiration=draw(u32),
        request_id=draw(u32),
        session_id=draw(u32),
        sequence=draw(u32),
        version=version,
        suggested_version=draw(st.tuples(st.integers(0, 3), u8)),
        envelope_flags=draw(st.integers(0, 0x3F).map(lambda f: f << 2)),
        reserved=draw(u8),
        request_digest=digest,
        credential=draw(st.binary(max_size=60)),
    )


# -- round trips -------------------------------------------------------------------------------


@ROUND_TRIP
@given(handle_values)
def test_handle_value_round_trip(value: HandleValue) -> None:
    assert HandleValue.decode(value.encode()) == value


@pytest.mark.parametrize("body_class", list(BODIES), ids=lambda c: c.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_body_round_trip(body_class: type[Any], data: st.DataObject) -> None:
    body = data.draw(BODIES[body_class])
    w = Writer()
    body.write(w)
    r = Reader(w.getvalue())
    assert body_class.read(r) == body
    r.expect_end(body_class.__name__)


def test_every_body_class_has_a_strategy() -> None:
    assert set(BODIES) == set(Body.__args__)


@ROUND_TRIP
@given(request_digests)
def test_request_digest_round_trip(digest: RequestDigest) -> None:
    w = Writer()
    digest.write(w)
    r = Reader(w.getvalue())
    assert RequestDigest.read(r) == digest
    r.expect_end("digest")


@ROUND_TRIP
@given(messages(response=False))
def test_request_round_trip(message: Message) -> None:
    data = message.encode()
    decoded = Message.decode(data)
    assert decoded == message
    assert decoded.encode() == data
    assert decoded.request_digest is None


@ROUND_TRIP
@given(messages(response=True))
def test_response_round_trip(message: Message) -> None:
    data = message.encode()
    decoded = Message.decode(data)
    assert decoded == message
    assert decoded.encode() == data
    assert (decoded.request_digest is not None) == bool(decoded.flags & RD)


@ROUND_TRIP
@given(messages())
def test_header_and_body_is_what_was_sent(message: Message) -> None:
    data = message.encode()
    decoded = Message.decode(data)
    assert decoded.header_and_body() == message.encode_header_and_body()
    assert data[20:].startswith(decoded.header_and_body())
    assert data.endswith(struct.pack(">I", len(message.credential)) + message.credential)


def test_request_digest_only_on_responses_with_rd() -> None:
    digest = RequestDigest(3, bytes(32))
    with pytest.raises(ProtocolViolation):
        Message(op=1, response_code=0, flags=RD, request_digest=digest)
    with pytest.raises(ProtocolViolation):
        Message(op=1, response_code=1, flags=0, request_digest=digest)
    with pytest.raises(ProtocolViolation):
        Message(op=1, response_code=1, flags=RD, request_digest=None)
    Message(op=1, response_code=0, flags=RD)  # RD on a request carries no digest
    Message(op=1, response_code=402, flags=RD, request_digest=digest, body=ChallengeBody(b""))


@pytest.mark.parametrize(
    "changes",
    [
        {"envelope_flags": 0x01},  # low bits of envelope byte 2 hold the suggested major
        {"envelope_flags": 0x100},
        {"suggested_version": (4, 11)},  # two bits for the suggested major (spec §1.4)
        {"version": (256, 0)},
        {"op": 2**32},
        {"site_info_serial": 0x10000},
        {"flags": -1},
        {"body": lambda: ResolutionRequest("20.500.999/T1", indexes=(2**32,))},
        {"body": lambda: HandleRequest("\ud800")},  # a lone surrogate, e.g. from JSON
    ],
    ids=[
        "envelope_flags=0x01",
        "envelope_flags=0x100",
        "suggested_version=4.11",
        "version=256.0",
        "op=2**32",
        "site_info_serial=0x10000",
        "flags=-1",
        "index=2**32",
        "handle=lone-surrogate",
    ],
)
def test_out_of_range_fields_are_refused_or_round_trip(changes: dict[str, Any]) -> None:
    # A Message that can be built and encoded must decode back to itself; one that cannot
    # be represented on the wire must be refused with ProtocolViolation (or ValueError), not
    # silently changed and not with struct.error from deep inside encode().
    fields: dict[str, Any] = {"op": 1, "body": ResolutionRequest("20.500.999/T1")} | changes
    try:
        if callable(fields["body"]):  # bodies that may refuse to be built
            fields["body"] = fields["body"]()
        message = Message(**fields)
        data = message.encode()
    except (ProtocolViolation, ValueError):
        return
    assert Message.decode(data) == message


# -- framing -----------------------------------------------------------------------------------

big_messages = messages(
    response=True, op=2, code=1, body=st.builds(SiteInfoBody, st.binary(max_size=3000))
).map(lambda m: m.replace(sequence=0))

multi_datagram_messages = messages(
    response=True,
    op=2,
    code=1,
    body=st.builds(SiteInfoBody, st.binary(min_size=500, max_size=2000)),
).map(lambda m: m.replace(sequence=0))


def _envelope(datagram: bytes) -> Envelope:
    return Envelope.decode(datagram[:20])


@ROUND_TRIP
@given(message=big_messages, data=st.data())
def test_fragment_then_reassemble_in_any_order(message: Message, data: st.DataObject) -> None:
    encoded = message.encode()
    datagrams = fragment(encoded)
    payload_length = len(encoded) - 20
    if len(encoded) <= 512:
        assert datagrams == [encoded]
    else:
        assert encoded[:20] == datagrams[0][:20]
        for seq, datagram in enumerate(datagrams):
            env = _envelope(datagram)
            assert (env.sequence, env.length, env.request_id) == (
                seq,
                payload_length,
                message.request_id,
            )
            assert len(datagram) == 20 + min(492, payload_length - 492 * seq)
        assert b"".join(d[20:] for d in datagrams) == encoded[20:]
    order = data.draw(st.permutations(datagrams))
    reassembler = Reassembler()
    results = [reassembler.feed(d, 0.0) for d in order]
    assert results == [None] * (len(order) - 1) + [encoded]
    assert Message.decode(encoded) == message


@ROUND_TRIP
@given(first=multi_datagram_messages, second=multi_datagram_messages, data=st.data())
def test_reassemble_interleaved_and_duplicated_datagrams(
    first: Message, second: Message, data: st.DataObject
) -> None:
    # a duplicate that arrives after its message completed starts that message again (a
    # retransmission can be reassembled twice); one that arrives before is ignored.
    second = second.replace(request_id=(first.request_id + 1) & U32_MAX)
    wanted = [first.encode(), second.encode()]
    datagrams = fragment(wanted[0]) + fragment(wanted[1])
    assert len(datagrams) >= 4
    duplicates = data.draw(st.lists(st.sampled_from(datagrams), max_size=3))
    order = data.draw(st.permutations(datagrams + duplicates))
    reassembler = Reassembler()
    out = [m for d in order if (m := reassembler.feed(d, 0.0)) is not None]
    assert set(out) == set(wanted)
    assert len(out) <= 2 + len(duplicates) // 2


def test_duplicate_datagram_before_completion_is_ignored() -> None:
    message = Message(op=2, response_code=1, body=SiteInfoBody(bytes(range(256)) * 4))
    first, second, third = fragment(message.encode())
    reassembler = Reassembler()
    results = [reassembler.feed(d, 0.0) for d in (second, first, second, first, third)]
    assert results == [None, None, None, None, message.encode()]


@ROUND_TRIP
@given(
    batch=st.lists(messages(), min_size=1, max_size=4),
    cuts=st.lists(st.integers(1, 64), min_size=1, max_size=40),
)
def test_stream_decoder_any_chunking(batch: list[Message], cuts: list[int]) -> None:
    encoded = [m.encode() for m in batch]
    stream = b"".join(encoded)
    decoder = StreamDecoder()
    out: list[bytes] = []
    pos = 0
    i = 0
    while pos < len(stream):
        size = cuts[i % len(cuts)]
        decoder.feed(stream[pos : pos + size])
        pos += size
        i += 1
        while (msg := decoder.next_message()) is not None:
            out.append(msg)
    assert out == encoded
    assert decoder.buffered == 0
    assert [Message.decode(m) for m in out] == batch


# -- the bad-input invariant -------------------------------------------------------------------


def _decode_or_violation(data: bytes) -> Message | None:
    """Message.decode, where only ProtocolViolation may escape; a decoded message re-encodes
    to bytes that decode to the same message."""
    try:
        message = Message.decode(data)
    except ProtocolViolation:
        return None
    assert Message.decode(message.encode()) == message
    return message


def _with_envelope(payload: bytes, head: bytes = bytes.fromhex("020b020b") + bytes(12)) -> bytes:
    return head[:16] + struct.pack(">I", len(payload)) + payload


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_decode_or_raise_protocol_violation(data: bytes) -> None:
    _decode_or_violation(data)


@FUZZ
@given(head=st.binary(min_size=16, max_size=16), payload=st.binary(max_size=400))
def test_random_payload_behind_a_valid_envelope(head: bytes, payload: bytes) -> None:
    _decode_or_violation(_with_envelope(payload, head))


#: Bytes built from small int4s (plausible lengths and counts), hash-type bytes and short
#: strings, so random bodies get past the first length prefix more often than random bytes.
token_streams = st.lists(
    st.one_of(
        st.integers(0, 40).map(lambda n: struct.pack(">I", n)),
        st.sampled_from([b"\x00", b"\x01", b"\x02", b"\x03", b"\x22"]),
        st.binary(max_size=8),
        st.sampled_from([b"HS_ADMIN", b"URL", b"HS_SECKEY", b"SHA-256"]),
    ),
    max_size=40,
).map(b"".join)


@st.composite
def well_framed_random_bodies(draw: st.DrawFn) -> bytes:
    """A well-formed envelope and header around a random body and credential section."""
    op = draw(ops)
    code = draw(st.one_of(st.just(0), response_codes))
    flags = draw(st.sampled_from([0, 0x19000000, 0x99000000, RD, 0x99800000]) | u32)
    body = draw(st.one_of(st.binary(max_size=200), token_streams))
    header = struct.pack(
        ">IIIHBBII", op, code, flags, draw(u16), draw(u8), draw(u8), draw(u32), len(body)
    )
    tail = draw(
        st.one_of(
            st.just(b""),
            st.just(bytes(4)),
            blobs.map(lambda c: struct.pack(">I", len(c)) + c),
            st.binary(max_size=12),
        )
    )
    version = draw(st.sampled_from([b"\x02\x0b", b"\x02\x00", b"\x02\x04", b"\x05\x00"]))
    return _with_envelope(header + body + tail, version + b"\x02\x0b" + bytes(12))


@FUZZ
@given(well_framed_random_bodies())
def test_random_bodies_decode_or_raise_protocol_violation(data: bytes) -> None:
    _decode_or_violation(data)


INTERESTING_U32 = [0, 1, 2, 3, 4, 5, 15, 16, 0x7F, 0xFF, 0x100, 0x7FFFFFFF, 0x80000000, U32_MAX]


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with 1-4 random mutations, then optionally its length fields repaired so
    the mutation reaches the body decoders."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "u32", "byte"]))
        pos = draw(st.integers(0, len(data)))
        if kind == "flip" and pos < len(data):
            data[pos] ^= draw(st.integers(1, 0xFF))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif kind == "u32":
            value = draw(st.one_of(st.sampled_from(INTERESTING_U32), u32))
            data[pos : pos + 4] = struct.pack(">I", value)
        elif kind == "byte" and pos < len(data):
            data[pos] = draw(st.sampled_from([0, 1, 2, 3, 0x7F, 0x80, 0xFF]))
    fix = draw(st.sampled_from(["none", "envelope", "envelope+body"]))
    if fix != "none" and len(data) >= 20:
        data[16:20] = struct.pack(">I", len(data) - 20)
    if fix == "envelope+body" and len(data) >= 44:
        slack = draw(st.sampled_from([0, 4, 8]))
        data[40:44] = struct.pack(">I", max(0, len(data) - 44 - slack))
    return bytes(data)


@FUZZ
@given(data=st.data(), message=messages())
def test_mutated_messages_decode_or_raise_protocol_violation(
    data: st.DataObject, message: Message
) -> None:
    _decode_or_violation(data.draw(mutated(message.encode())))


@pytest.mark.parametrize(
    "length_offset",
    [16, 40, 44, 48],
    ids=["envelope.messageLength", "header.bodyLength", "first-body-length", "second-body-int4"],
)
@settings(max_examples=60, deadline=None)
@given(message=messages(), value=st.one_of(st.sampled_from(INTERESTING_U32), u32))
def test_rewritten_length_fields(length_offset: int, message: Message, value: int) -> None:
    data = bytearray(message.encode())
    if len(data) < length_offset + 4:
        data.extend(bytes(length_offset + 4 - len(data)))
    data[length_offset : length_offset + 4] = struct.pack(">I", value)
    if length_offset != 16:
        data[16:20] = struct.pack(">I", len(data) - 20)
    _decode_or_violation(bytes(data))


# Reassembler and StreamDecoder ------------------------------------------------------------------


def _feed_or_violation(feed: Callable[[], bytes | None]) -> bool:
    """Run one feed; return False once it raised ProtocolViolation. Output must decode or
    raise ProtocolViolation too."""
    try:
        out = feed()
    except ProtocolViolation:
        return False
    if out is not None:
        assert isinstance(out, bytes)
        _decode_or_violation(out)
    return True


@st.composite
def hostile_datagrams(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "envelope", "fragment"]))
    if kind == "random":
        return draw(st.binary(max_size=600))
    if kind == "envelope":
        env = struct.pack(
            ">BBBBIIII",
            2,
            11,
            2,
            11,
            0,
            draw(st.integers(0, 3)),  # few request ids, so datagrams collide
            draw(st.one_of(st.integers(0, 4), u32)),
            draw(st.one_of(st.integers(0, 1500), st.sampled_from(INTERESTING_U32))),
        )
        return env + draw(st.binary(max_size=520))
    message = draw(big_messages).replace(request_id=draw(st.integers(0, 3)))
    datagrams = fragment(message.encode())
    return draw(mutated(draw(st.sampled_from(datagrams))))


@FUZZ
@given(
    datagrams=st.lists(hostile_datagrams(), min_size=1, max_size=8),
    times=st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=8),
)
def test_reassembler_feed_returns_or_raises_protocol_violation(
    datagrams: list[bytes], times: list[float]
) -> None:
    reassembler = Reassembler(max_pending=2, timeout=10.0)
    for i, datagram in enumerate(datagrams):
        now = times[i % len(times)]
        _feed_or_violation(lambda d=datagram, t=now: reassembler.feed(d, t))  # type: ignore[misc]


@FUZZ
@given(
    message=messages(),
    data=st.data(),
    cuts=st.lists(st.integers(1, 64), min_size=1, max_size=20),
)
def test_stream_decoder_returns_or_raises_protocol_violation(
    message: Message, data: st.DataObject, cuts: list[int]
) -> None:
    stream = data.draw(
        st.one_of(
            st.binary(max_size=600),
            mutated(message.encode() + message.encode()),
        )
    )
    decoder = StreamDecoder()
    pos = 0
    i = 0
    while pos < len(stream):
        decoder.feed(stream[pos : pos + cuts[i % len(cuts)]])
        pos += cuts[i % len(cuts)]
        i += 1
        while True:
            try:
                out = decoder.next_message()
            except ProtocolViolation:
                return  # the connection is unusable; an adapter closes it
            if out is None:
                break
            _decode_or_violation(out)


def test_stream_decoder_rejects_an_oversized_envelope_early() -> None:
    decoder = StreamDecoder()
    decoder.feed(bytes.fromhex("020b020b") + bytes(12) + struct.pack(">I", U32_MAX))
    with pytest.raises(ProtocolViolation):
        decoder.next_message()


def test_envelope_rejects_lengths_above_the_limit() -> None:
    env = bytes.fromhex("020b020b") + bytes(12)
    assert Envelope.decode(env + struct.pack(">I", 262144)).length == 262144
    with pytest.raises(ProtocolViolation):
        Envelope.decode(env + struct.pack(">I", 262145))
    with pytest.raises(ProtocolViolation):
        Envelope.decode(env)  # 16 bytes: truncated
