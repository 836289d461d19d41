"""Unit tests of the primitive wire encodings (spec §1.2): :class:`Reader` and :class:`Writer`.

The Reader's contract: every read is bounds-checked and raises ProtocolViolation (never
``struct.error``, ``IndexError`` or ``UnicodeDecodeError``), and a hostile length or count is
rejected against the bytes that remain before anything is allocated or looped over.
"""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idnode.errors import ProtocolViolation
from idnode.protocol.bodies import RemoveValuesRequest, ResolutionRequest
from idnode.protocol.values import HandleValue, read_values
from idnode.protocol.wire import Reader, Writer

U32_MAX = 0xFFFFFFFF


def _u32(n: int) -> bytes:
    return struct.pack(">I", n)


# -- Reader: integers --------------------------------------------------------------------------


def test_integers_are_big_endian() -> None:
    r = Reader(bytes.fromhex("01 0203 04050607 ff"))
    assert r.u8() == 0x01
    assert r.u16() == 0x0203
    assert r.u32() == 0x04050607
    assert r.u8() == 0xFF
    assert r.remaining == 0
    assert r.pos == 8


@pytest.mark.parametrize(
    ("data", "read"),
    [
        (b"", Reader.u8),
        (b"\x01", Reader.u16),
        (b"", Reader.u16),
        (b"\x01\x02\x03", Reader.u32),
        (b"", Reader.u32),
    ],
)
def test_truncated_integer_raises_protocol_violation(
    data: bytes, read: Callable[[Reader], int]
) -> None:
    with pytest.raises(ProtocolViolation, match="truncated"):
        read(Reader(data))


def test_failed_read_does_not_move_the_cursor() -> None:
    r = Reader(b"\x00\x01\x02")
    with pytest.raises(ProtocolViolation):
        r.u32()
    assert r.pos == 0
    assert r.u16() == 1


# -- Reader: raw bytes, rest -------------------------------------------------------------------


def test_raw_and_rest() -> None:
    r = Reader(b"abcdef")
    assert r.raw(2) == b"ab"
    assert r.raw(0) == b""
    rest = r.rest()
    assert rest == b"cdef"
    assert type(rest) is bytes
    assert r.remaining == 0
    assert r.rest() == b""


@pytest.mark.parametrize("n", [7, -1, U32_MAX, 2**40])
def test_raw_out_of_bounds(n: int) -> None:
    r = Reader(b"abcdef")
    with pytest.raises(ProtocolViolation):
        r.raw(n)
    assert r.pos == 0


def test_window_start_and_end() -> None:
    r = Reader(b"0123456789", 2, 5)
    assert r.pos == 2
    assert r.remaining == 3
    assert r.raw(3) == b"234"
    with pytest.raises(ProtocolViolation):
        r.u8()


@pytest.mark.parametrize("end", [3, 8])
def test_window_past_the_data_is_never_read_short(end: int) -> None:
    # Reader(data, start, end) with ``end`` beyond ``data`` must not hand out short reads or
    # leak struct.error: either the constructor refuses the window or every read past the
    # real data raises ProtocolViolation.
    data = b"\x00\x01"
    try:
        r = Reader(data, 0, end)
    except (ValueError, ProtocolViolation):
        return
    with pytest.raises(ProtocolViolation):
        r.u32()
    with pytest.raises(ProtocolViolation):
        r.raw(3)


# -- Reader: byte-array and UTF8-String --------------------------------------------------------


def test_byte_array_and_utf8() -> None:
    text = "ĥdl".encode()
    data = _u32(3) + b"abc" + _u32(0) + _u32(len(text)) + text + b"tail"
    r = Reader(data)
    assert r.byte_array() == b"abc"
    assert r.byte_array() == b""
    assert r.utf8() == "ĥdl"
    assert r.rest() == b"tail"


@pytest.mark.parametrize("length", [5, 0x7FFFFFFF, U32_MAX])
def test_byte_array_length_past_the_end(length: int) -> None:
    r = Reader(_u32(length) + b"abcd")
    with pytest.raises(ProtocolViolation, match="need"):
        r.byte_array("value data")


def test_byte_array_truncated_length_prefix() -> None:
    with pytest.raises(ProtocolViolation):
        Reader(b"\x00\x00\x01").byte_array()


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff",  # never valid in UTF-8
        b"\xc3",  # truncated two-byte sequence
        b"\xed\xa0\x80",  # an encoded surrogate
        b"\xc0\xaf",  # overlong '/'
    ],
)
def test_invalid_utf8_raises_protocol_violation(raw: bytes) -> None:
    with pytest.raises(ProtocolViolation, match="UTF-8") as info:
        Reader(_u32(len(raw)) + raw).utf8("handle")
    assert isinstance(info.value.__cause__, UnicodeDecodeError)


# -- Reader: counts and arrays -----------------------------------------------------------------


def test_u32_array_and_utf8_array() -> None:
    data = _u32(2) + _u32(1) + _u32(U32_MAX) + _u32(2) + _u32(3) + b"URL" + _u32(0)
    r = Reader(data)
    assert r.u32_array() == (1, U32_MAX)
    assert r.utf8_array() == ("URL", "")
    assert r.remaining == 0
    assert Reader(_u32(0)).u32_array() == ()
    assert Reader(_u32(0)).utf8_array() == ()


def test_count_is_checked_against_the_remaining_bytes() -> None:
    assert Reader(_u32(2) + bytes(8)).count(4) == 2
    with pytest.raises(ProtocolViolation, match="count 3 exceeds"):
        Reader(_u32(3) + bytes(8)).count(4, "int4-array")


HOSTILE_COUNT = _u32(U32_MAX) + bytes(12)
_VALUE_FIXED_PART = bytes(14)  # index, timestamp, ttlType, ttl, permissions (spec §1.8)
_VALUE_UP_TO_REFERENCES = _VALUE_FIXED_PART + _u32(3) + b"URL" + _u32(0)
_HANDLE = _u32(4) + b"T/12"


@pytest.mark.parametrize(
    ("prefix", "read"),
    [
        (b"", lambda r: r.count(1)),
        (b"", Reader.u32_array),
        (b"", Reader.utf8_array),
        (b"", Reader.byte_array),
        (b"", Reader.utf8),
        (b"", read_values),
        (_VALUE_FIXED_PART, HandleValue.read),  # type length
        (_VALUE_UP_TO_REFERENCES, HandleValue.read),  # reference count
        (_HANDLE, ResolutionRequest.read),  # index count
        (_HANDLE + _u32(0), ResolutionRequest.read),  # type count
        (_HANDLE, RemoveValuesRequest.read),  # index count
    ],
    ids=[
        "count",
        "u32_array",
        "utf8_array",
        "byte_array",
        "utf8",
        "read_values",
        "value-type-length",
        "value-reference-count",
        "resolution-index-count",
        "resolution-type-count",
        "remove-index-count",
    ],
)
def test_hostile_count_fails_fast_without_allocating(
    prefix: bytes, read: Callable[[Reader], object]
) -> None:
    # 0xFFFFFFFF items (or bytes) announced with 12 bytes left: rejected as soon as the count
    # is read (no item consumed), with no large allocation.
    r = Reader(prefix + HOSTILE_COUNT)
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolViolation):
            read(r)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.pos == len(prefix) + 4
    assert peak < 64 * 1024


# -- Reader: expect_end and restrict_to --------------------------------------------------------


def test_expect_end() -> None:
    r = Reader(b"ab")
    with pytest.raises(ProtocolViolation, match="2 unexpected trailing bytes in body"):
        r.expect_end("body")
    r.raw(2)
    r.expect_end("body")


def test_restrict_to_confines_reads_to_the_sub_range() -> None:
    r = Reader(_u32(7) + b"abc" + b"rest")
    with r.restrict_to(4, "int") as sub:
        assert sub.u32() == 7
        with pytest.raises(ProtocolViolation):
            sub.u8()  # the parent still has bytes, the restricted range has none
    assert r.pos == 4
    assert r.rest() == b"abcrest"


def test_restrict_to_stops_a_length_prefixed_field_from_overrunning() -> None:
    # a byte-array claiming 6 bytes inside a 5-byte structure, with more data after it
    r = Reader(_u32(6) + b"a" + b"nextfield")
    with pytest.raises(ProtocolViolation), r.restrict_to(5, "value") as sub:
        sub.byte_array()


def test_restrict_to_rejects_unread_bytes() -> None:
    r = Reader(b"abcdef")
    with pytest.raises(ProtocolViolation, match="1 unexpected trailing bytes in body"):  # noqa: SIM117
        with r.restrict_to(3, "body") as sub:
            sub.raw(2)


@pytest.mark.parametrize("n", [7, -1, U32_MAX])
def test_restrict_to_longer_than_the_data(n: int) -> None:
    r = Reader(b"abcdef")
    with pytest.raises(ProtocolViolation), r.restrict_to(n, "body"):
        pytest.fail("must not yield")  # pragma: no cover


def test_restrict_to_nests() -> None:
    r = Reader(b"\x01\x02\x03\x04\x05")
    with r.restrict_to(4, "outer") as outer:
        assert outer.u8() == 1
        with outer.restrict_to(2, "inner") as inner:
            assert inner.u16() == 0x0203
        with pytest.raises(ProtocolViolation):
            outer.u16()  # one byte left in outer, even though the parent has two
        assert outer.u8() == 4
    assert r.u8() == 5


def test_restrict_to_inside_a_window() -> None:
    r = Reader(b"XXabcdYY", 2, 6)
    with pytest.raises(ProtocolViolation), r.restrict_to(5, "body"):
        pass  # pragma: no cover
    with r.restrict_to(4, "body") as sub:
        assert sub.rest() == b"abcd"


# -- Writer ------------------------------------------------------------------------------------


def test_writer_primitives() -> None:
    w = Writer()
    assert w.u8(1) is w
    w.u16(0x0203).u32(0x04050607).raw(b"xy").byte_array(b"abc").utf8("ĥ")
    assert w.getvalue() == bytes.fromhex("01 0203 04050607 7879 00000003616263 00000002c4a5")
    assert type(w.getvalue()) is bytes


def test_writer_arrays() -> None:
    w = Writer().u32_array((1, U32_MAX)).utf8_array(["URL", ""]).u32_array([]).utf8_array(())
    assert w.getvalue() == (
        _u32(2) + _u32(1) + _u32(U32_MAX) + _u32(2) + _u32(3) + b"URL" + _u32(0) + _u32(0) * 2
    )


def test_writer_empty() -> None:
    assert Writer().getvalue() == b""
    assert Writer().byte_array(b"").utf8("").getvalue() == bytes(8)


@pytest.mark.parametrize(
    "write",
    [
        lambda w: w.u8(256),
        lambda w: w.u8(-1),
        lambda w: w.u16(0x10000),
        lambda w: w.u32(U32_MAX + 1),
        lambda w: w.u32(-1),
    ],
)
def test_writer_rejects_out_of_range_integers(write: Callable[[Writer], object]) -> None:
    with pytest.raises((ValueError, struct.error, OverflowError)):
        write(Writer())


_u32s = st.integers(0, U32_MAX)


@settings(max_examples=100, deadline=None)
@given(
    a=st.integers(0, 0xFF),
    b=st.integers(0, 0xFFFF),
    c=_u32s,
    blob=st.binary(max_size=64),
    text=st.text(max_size=32),
    ints=st.lists(_u32s, max_size=8),
    texts=st.lists(st.text(max_size=8), max_size=8),
)
def test_writer_reader_round_trip(
    a: int, b: int, c: int, blob: bytes, text: str, ints: list[int], texts: list[str]
) -> None:
    data = (
        Writer()
        .u8(a)
        .u16(b)
        .u32(c)
        .byte_array(blob)
        .utf8(text)
        .u32_array(ints)
        .utf8_array(texts)
        .getvalue()
    )
    r = Reader(data)
    assert (r.u8(), r.u16(), r.u32()) == (a, b, c)
    assert r.byte_array() == blob
    assert r.utf8() == text
    assert r.u32_array() == tuple(ints)
    assert r.utf8_array() == tuple(texts)
    r.expect_end("test")
