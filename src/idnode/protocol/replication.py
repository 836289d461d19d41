"""Replication messages and streams: the reference server's ops 1000-1002 (spec §1.11 lists
them; the layouts here follow the reference implementation's encoder, which the spec leaves
out). Pure: bytes in, objects out.

Requests and responses
----------------------
* ``GET_NEXT_TXN_ID`` (1000): a generic request (one handle, blank); success body ``int8``:
  the id the next transaction will get (:class:`NextTxnIdBody`).
* ``RETRIEVE_TXN_LOG`` (1001) (:class:`RetrieveTxnRequest`): ``int8 lastTxnId, int8
  lastQueryDate (ms), u8 receiverHashType, int4 receiverServerCount, int4 receiverServerNumber``.
  From protocol 2.9 a ``u8`` comes first: 0 for that form, 1 for the multi-primary form
  ``byte-array stateJson, u8 hashType, int4 count, int4 number``. Success body: ``u8`` flags,
  bit 0 keep-alive (:class:`RetrieveTxnResponseBody`), then the stream below.
* ``DUMP_HANDLES`` (1002) (:class:`DumpHandlesRequest`): ``u8 hashType, int4 count, int4
  number`` and optionally ``byte-array startingPoint, int4 startingPointType`` (resume).
  Success: an empty body, then the stream below.

The receiver's hash parameters say which share of the handles it wants: the handles whose
:func:`~idnode.protocol.types.hs_site.handle_hash` by ``hashType`` modulo ``count`` is
``number`` (home/unhome transactions go to everyone).

Streams
-------
After the success response, on the same TCP connection, the server writes a *signed stream*:
``int4 streamType`` (0: signed with a public key; -1: unsigned; ``0x544C5300``: TLS follows),
for type 0 ``byte-array hashName`` (``SHA1``), then blocks. A block is a run of bytes followed
by ``int4 length, signature``: the server's signature (``SHA1withRSA`` or ``SHA1withDSA``) over
the bytes since the previous signature. The reference receiver accepts unsigned streams only
inside TLS; idnode sends and accepts type 0. A server whose key is SM2 (an idnode extension)
names the hash ``SM3`` and signs each block with SM2 (the 64-byte ``r || s`` of GB/T 32918.2,
default identifier), as its challenge answers do; the layout is otherwise the same.

Transaction stream (format 1): block ``int4 1, int4 status`` (1 NEED_TO_REDUMP, 2
SENDING_TRANSACTIONS); per transaction a block ``u8 1, int8 txnId, int4 n, n bytes handle, u8
action, int8 date`` followed, for create/update, by ``int4 count`` and ``count`` times ``int4
n, n bytes`` of encoded values; finally a block ``u8 0, int8 date`` (the date the receiver
sends as lastQueryDate next time).

Dump stream (format 2): block ``int4 2``; then records, each one block: 0 this server's
replication state ``int8 date, int8 txnId``; 1 a handle ``int4 n, handle, int4 count, values``
as above; 2 a homed prefix ``int4 n, 0.NA/<prefix>``; (3, 4 and 5 carry multi-primary state,
read and skipped here); finally ``u8 0xFF`` unsigned.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from idnode.errors import ProtocolViolation
from idnode.protocol.wire import Reader, Writer, check_uint

__all__ = [
    "HASH_NAME",
    "SHA1_HASH_NAMES",
    "SM3_HASH_NAME",
    "DumpHandlesRequest",
    "DumpRecord",
    "NextTxnIdBody",
    "RetrieveTxnRequest",
    "RetrieveTxnResponseBody",
    "SignedStreamParser",
    "SignedStreamWriter",
    "StreamStatus",
    "StreamTxn",
    "dump_done",
    "dump_handle",
    "dump_header",
    "dump_homed_prefix",
    "dump_server_state",
    "parse_dump",
    "parse_txn_stream",
    "txn_end",
    "txn_header",
    "txn_record",
]

_I64 = struct.Struct(">q")
_I32 = struct.Struct(">i")

STREAM_TYPE_SIGNED: Final = 0
STREAM_TYPE_UNSIGNED: Final = -1
STREAM_TYPE_TLS: Final = 0x544C5300
#: The hash the reference server signs stream blocks with.
HASH_NAME: Final = b"SHA1"
#: The hash name of a stream signed with an SM2 key (SM2 with SM3).
SM3_HASH_NAME: Final = b"SM3"
#: The hash names a receiver accepts for RSA/DSA streams (the reference writes ``SHA1``).
SHA1_HASH_NAMES: Final = frozenset({b"SHA1", b"SHA-1"})
#: Upper bound on one length-prefixed item of a stream (the reference's MAX_ARRAY_SIZE is
#: similar); a longer one is a malformed stream, not a reason to allocate.
MAX_ITEM: Final = 16 * 1024 * 1024


def _i64(value: int) -> bytes:
    return _I64.pack(value)


def _i32(value: int) -> bytes:
    return _I32.pack(value)


class StreamStatus(enum.IntEnum):
    NEED_TO_REDUMP = 1
    SENDING_TRANSACTIONS = 2


# -- bodies ------------------------------------------------------------------------------------


def _read_i64(r: Reader) -> int:
    return int(_I64.unpack(r.raw(8, "int8"))[0])


def _read_i32(r: Reader) -> int:
    return int(_I32.unpack(r.raw(4, "int4"))[0])


@dataclass(frozen=True, slots=True)
class NextTxnIdBody:
    """Op 1000 success: the id of the next transaction."""

    next_txn_id: int

    def write(self, w: Writer) -> None:
        w.raw(_i64(self.next_txn_id))

    @classmethod
    def read(cls, r: Reader) -> NextTxnIdBody:
        return cls(_read_i64(r))


@dataclass(frozen=True, slots=True)
class RetrieveTxnResponseBody:
    """Op 1001 success: flags (keep-alive); the transaction stream follows on the connection."""

    keep_alive: bool = False

    def write(self, w: Writer) -> None:
        w.u8(1 if self.keep_alive else 0)

    @classmethod
    def read(cls, r: Reader) -> RetrieveTxnResponseBody:
        return cls(bool(r.u8() & 1))


@dataclass(frozen=True, slots=True)
class _ReceiverShare:
    hash_type: int
    server_count: int
    server_number: int

    def _check(self) -> None:
        check_uint(self.hash_type, 8, "hash type")
        if self.server_count < 1 or not 0 <= self.server_number < self.server_count:
            raise ProtocolViolation(
                f"receiver is server {self.server_number} of {self.server_count}"
            )

    def _write_share(self, w: Writer) -> None:
        w.u8(self.hash_type).raw(_i32(self.server_count) + _i32(self.server_number))


@dataclass(frozen=True, slots=True)
class RetrieveTxnRequest(_ReceiverShare):
    """Op 1001: the transactions after ``last_txn_id`` that hash to the receiver. A non-None
    ``state_json`` is the multi-primary form (then the two numbers are unused)."""

    last_txn_id: int = 0
    last_query_date_ms: int = 0
    state_json: bytes | None = None

    def __post_init__(self) -> None:
        self._check()

    def write(self, w: Writer) -> None:
        """The form the reference decodes below protocol 2.9 (idnode sends these requests at
        2.7: see :mod:`idnode.server.mirror`), or the flagged multi-primary form."""
        if self.state_json is not None:
            w.u8(1).byte_array(self.state_json)
        else:
            w.raw(_i64(self.last_txn_id) + _i64(self.last_query_date_ms))
        self._write_share(w)

    @classmethod
    def read(cls, r: Reader) -> RetrieveTxnRequest:
        # Which form, from the bytes alone (the envelope version is not at hand): a leading 1
        # whose byte-array fills the body is the multi-primary form (an unflagged body would
        # start with a transaction id of 2**56 or more); 25 bytes are the unflagged form;
        # anything else leads with the flag 0.
        raw = r.rest()
        body = Reader(raw)
        if raw[:1] == b"\x01" and len(raw) >= 14 and int.from_bytes(raw[1:5]) == len(raw) - 14:
            body.u8()
            state = body.byte_array("replication state")
            return cls(body.u8(), _read_i32(body), _read_i32(body), state_json=state)
        if len(raw) != 25 and body.u8() != 0:
            raise ProtocolViolation(f"unknown retrieve-transactions form {raw[0]}")
        last, date = _read_i64(body), _read_i64(body)
        request = cls(body.u8(), _read_i32(body), _read_i32(body), last, date)
        body.expect_end("retrieve-transactions request")
        return request


@dataclass(frozen=True, slots=True)
class DumpHandlesRequest(_ReceiverShare):
    """Op 1002: every handle that hashes to the receiver, and the homed prefixes. A
    ``starting_point`` resumes an interrupted dump (idnode answers it with a whole dump)."""

    starting_point: bytes | None = None
    starting_point_type: int = 0

    def __post_init__(self) -> None:
        self._check()

    def write(self, w: Writer) -> None:
        self._write_share(w)
        if self.starting_point is not None:
            w.byte_array(self.starting_point).raw(_i32(self.starting_point_type))

    @classmethod
    def read(cls, r: Reader) -> DumpHandlesRequest:
        share = r.u8(), _read_i32(r), _read_i32(r)
        if not r.remaining:
            return cls(*share)
        return cls(*share, r.byte_array("starting point"), _read_i32(r))


# -- signed streams ----------------------------------------------------------------------------


class SignedStreamWriter:
    """Builds a signed stream: :meth:`start`, then :meth:`block` per signed block.
    ``sign`` signs bytes (e.g. ``functools.partial(auth.sign_data, key, "SHA1")``) with the
    hash ``hash_name`` names (:data:`SM3_HASH_NAME` for an SM2 key)."""

    def __init__(self, sign: Callable[[bytes], bytes], hash_name: bytes = HASH_NAME) -> None:
        self._sign = sign
        self.hash_name = hash_name

    def start(self) -> bytes:
        return _i32(STREAM_TYPE_SIGNED) + _i32(len(self.hash_name)) + self.hash_name

    def block(self, data: bytes) -> bytes:
        signature = self._sign(data)
        return data + _i32(len(signature)) + signature


class NeedMoreData(Exception):
    """The buffered bytes end inside an item: feed more and parse again."""


class SignedStreamParser:
    """Reads a signed stream incrementally: :meth:`feed` bytes as they arrive and call the
    read methods; one raises :class:`NeedMoreData` when the bytes so far end inside the item,
    after which the caller feeds more and retries from :meth:`mark` (the state is rewound).

    ``verify(signature, data)`` checks a block signature (the source server's public key);
    a wrong one raises ProtocolViolation, as does an unsigned or TLS stream type, or a hash
    name not in ``hash_names`` (the names the verifier's key signs with: SHA-1 for RSA/DSA,
    ``{SM3_HASH_NAME}`` for SM2).
    """

    def __init__(
        self,
        verify: Callable[[bytes, bytes], bool],
        hash_names: frozenset[bytes] = SHA1_HASH_NAMES,
    ) -> None:
        self._verify = verify
        self._hash_names = hash_names
        self._buffer = bytearray()
        self._pos = 0
        self._block_start = 0
        #: Whether the stream header (type, hash name, first block) has been read.
        self.started = False
        self._mark = (0, 0)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def mark(self) -> None:
        """Where a retry after NeedMoreData starts; also drops the bytes already consumed."""
        del self._buffer[: self._block_start]
        self._pos -= self._block_start
        self._block_start = 0
        self._mark = (self._pos, self._block_start)

    def rewind(self) -> None:
        self._pos, self._block_start = self._mark

    @property
    def buffered(self) -> int:
        return len(self._buffer) - self._pos

    def _take(self, n: int) -> bytes:
        if n < 0 or n > MAX_ITEM:
            raise ProtocolViolation(f"stream item of {n} bytes")
        if self._pos + n > len(self._buffer):
            raise NeedMoreData
        out = bytes(self._buffer[self._pos : self._pos + n])
        self._pos += n
        return out

    def u8(self) -> int:
        return self._take(1)[0]

    def i32(self) -> int:
        return int(_I32.unpack(self._take(4))[0])

    def i64(self) -> int:
        return int(_I64.unpack(self._take(8))[0])

    def item(self) -> bytes:
        """An ``int4`` length and that many bytes."""
        return self._take(self.i32())

    def start(self) -> None:
        """The stream type and hash name; the type must be the signed one."""
        stream_type = self.i32()
        if stream_type != STREAM_TYPE_SIGNED:
            raise ProtocolViolation(f"unsupported replication stream type {stream_type:#x}")
        hash_name = self.item()
        if hash_name not in self._hash_names:
            raise ProtocolViolation(f"unsupported stream signature hash {hash_name!r}")
        self._block_start = self._pos

    def verify_block(self) -> None:
        """Check the signature that ends the current block."""
        data = bytes(self._buffer[self._block_start : self._pos])
        signature = self.item()
        if not self._verify(signature, data):
            raise ProtocolViolation("bad signature on the replication stream")
        self._block_start = self._pos


# -- transaction stream ------------------------------------------------------------------------


def txn_header(status: StreamStatus) -> bytes:
    return _i32(1) + _i32(status)


def _values(values: list[bytes]) -> bytes:
    return _i32(len(values)) + b"".join(_i32(len(v)) + v for v in values)


def txn_record(
    txn_id: int, handle: bytes, action: int, date_ms: int, values: list[bytes] | None
) -> bytes:
    """One transaction; ``values`` (encoded values) for create/update, None otherwise."""
    head = b"\x01" + _i64(txn_id) + _i32(len(handle)) + handle + bytes([action]) + _i64(date_ms)
    return head if values is None else head + _values(values)


def txn_end(date_ms: int) -> bytes:
    return b"\x00" + _i64(date_ms)


@dataclass(frozen=True, slots=True)
class StreamTxn:
    """A transaction as received: ``values`` are encoded values (None for delete/home/unhome)."""

    txn_id: int
    handle: bytes
    action: int
    date_ms: int
    values: tuple[bytes, ...] | None


_WITH_VALUES = (1, 3)  # create, update


def parse_txn_stream(
    parser: SignedStreamParser,
) -> Iterator[StreamStatus | StreamTxn | int]:
    """Items of a transaction stream as far as the buffered bytes go: the status, then
    each transaction, then the final date (an ``int``), after which the stream is over.
    Raises NeedMoreData (state rewound to the last complete item) when it must wait."""
    while True:
        parser.mark()
        try:
            if not parser.started:
                parser.start()
                if parser.i32() != 1:
                    raise ProtocolViolation("unknown transaction stream format")
                status = StreamStatus(parser.i32())
                parser.verify_block()
                parser.started = True
                yield status
                continue
            kind = parser.u8()
            if kind == 0:
                date = parser.i64()
                parser.verify_block()
                yield date
                return
            if kind != 1:
                raise ProtocolViolation(f"unknown transaction stream record {kind}")
            txn_id, handle, action, date = parser.i64(), parser.item(), parser.u8(), parser.i64()
            values = None
            if action in _WITH_VALUES:
                values = tuple(parser.item() for _ in range(_count(parser)))
            parser.verify_block()
        except NeedMoreData:
            parser.rewind()
            raise
        except ValueError as exc:
            raise ProtocolViolation(f"malformed transaction stream: {exc}") from exc
        yield StreamTxn(txn_id, handle, action, date, values)


def _count(parser: SignedStreamParser) -> int:
    n = parser.i32()
    if not 0 <= n <= 65536:
        raise ProtocolViolation(f"{n} values in a replicated record")
    return n


# -- dump stream -------------------------------------------------------------------------------


def dump_header() -> bytes:
    return _i32(2)


def dump_server_state(date_ms: int, txn_id: int) -> bytes:
    return b"\x00" + _i64(date_ms) + _i64(txn_id)


def dump_handle(handle: bytes, values: list[bytes]) -> bytes:
    return b"\x01" + _i32(len(handle)) + handle + _values(values)


def dump_homed_prefix(prefix_handle: bytes) -> bytes:
    return b"\x02" + _i32(len(prefix_handle)) + prefix_handle


def dump_done() -> bytes:
    """The unsigned last byte of a dump."""
    return b"\xff"


@dataclass(frozen=True, slots=True)
class DumpRecord:
    """One record of a dump: kind 0 (server state: ``date_ms``, ``txn_id``), 1 (a handle with
    ``values``), 2 (a homed prefix handle), -1 (the end)."""

    kind: int
    handle: bytes = b""
    values: tuple[bytes, ...] = ()
    date_ms: int = 0
    txn_id: int = 0


def parse_dump(parser: SignedStreamParser) -> Iterator[DumpRecord]:
    """Records of a dump stream as far as the buffered bytes go (see :func:`parse_txn_stream`
    for NeedMoreData); multi-primary records (3, 4, 5) are verified and skipped."""
    while True:
        parser.mark()
        try:
            if not parser.started:
                parser.start()
                if parser.i32() not in (1, 2):
                    raise ProtocolViolation("unknown dump stream format")
                parser.verify_block()
                parser.started = True
                continue
            kind = parser.u8()
            if kind == 0xFF:
                yield DumpRecord(-1)
                return
            record = _dump_record(parser, kind)
            parser.verify_block()
        except NeedMoreData:
            parser.rewind()
            raise
        if record is not None:
            yield record


def _dump_record(parser: SignedStreamParser, kind: int) -> DumpRecord | None:
    if kind == 0:
        date, txn_id = parser.i64(), parser.i64()
        return DumpRecord(0, date_ms=date, txn_id=txn_id)
    if kind == 1:
        handle = parser.item()
        return DumpRecord(1, handle, tuple(parser.item() for _ in range(_count(parser))))
    if kind == 2:
        return DumpRecord(2, parser.item())
    if kind in (3, 4):  # handle / prefix date records: handle, int8 date, int4 priority
        parser.item()
        parser.i64()
        parser.i32()
        return None
    if kind == 5:  # other sites' replication state (a StreamTable text)
        parser.item()
        return None
    raise ProtocolViolation(f"unknown dump stream record {kind}")
