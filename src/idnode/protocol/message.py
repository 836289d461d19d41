"""Whole protocol messages: envelope, header, body, credential (RFC 3652 §2, spec §1.3-§1.7).

::

    +----------+  20 bytes: Envelope (not signed)
    | Envelope |
    +----------+  24 bytes: Header  \\
    | Header   |                      > the "header and body" that digests and signatures cover
    +----------+  BodyLength bytes   /
    | Body     |  (responses with RD start with the request digest, spec §1.6)
    +----------+
    | Cred.    |  int4 length + credential bytes (0 = unsigned)
    +----------+

:meth:`Message.decode` takes one complete message (envelope included) and either returns a
:class:`Message` or raises :class:`~idnode.errors.ProtocolViolation`; nothing else escapes.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass, field

from idnode.errors import ProtocolViolation
from idnode.protocol.bodies import (
    Body,
    RawBody,
    RequestDigest,
    request_body_class,
    response_body_class,
)
from idnode.protocol.codes import SUPPORTED_VERSION, OpFlag, ResponseCode
from idnode.protocol.wire import Reader, Writer, check_uint

__all__ = [
    "ENVELOPE_SIZE",
    "HEADER_SIZE",
    "MAX_MESSAGE_LENGTH",
    "Envelope",
    "Message",
]

ENVELOPE_SIZE = 20
HEADER_SIZE = 24
#: Largest MessageLength accepted (spec §1.1, the reference server's limit).
MAX_MESSAGE_LENGTH = 262144

_ENVELOPE = struct.Struct(">BBBBIIII")
_HEADER = struct.Struct(">IIIHBBII")


@dataclass(frozen=True, slots=True)
class Envelope:
    """The 20-byte message envelope (spec §1.4).

    Byte 2 holds the CP/EC/TC flags in its high bits and the suggested major version in its
    low two bits; byte 3 is the suggested minor version (reference server extension).
    """

    major: int
    minor: int
    flags: int
    suggested_major: int
    suggested_minor: int
    session_id: int
    request_id: int
    sequence: int
    length: int

    def encode(self) -> bytes:
        return _ENVELOPE.pack(
            self.major,
            self.minor,
            (self.flags & 0xFC) | (self.suggested_major & 0x03),
            self.suggested_minor,
            self.session_id,
            self.request_id,
            self.sequence,
            self.length,
        )

    @classmethod
    def decode(cls, data: bytes) -> Envelope:
        """Decode the first 20 bytes of ``data``; the length is checked against the limit."""
        if len(data) < ENVELOPE_SIZE:
            raise ProtocolViolation(f"truncated envelope: {len(data)} bytes")
        major, minor, b2, b3, session, request, seq, length = _ENVELOPE.unpack_from(data)
        if length > MAX_MESSAGE_LENGTH:
            raise ProtocolViolation(f"message length {length} exceeds {MAX_MESSAGE_LENGTH}")
        return cls(major, minor, b2 & 0xFC, b2 & 0x03, b3, session, request, seq, length)


@dataclass(frozen=True, slots=True)
class Message:
    """A request (``response_code == 0``) or a response.

    ``version`` is the envelope's protocol version; ``suggested_version`` the highest version
    the sender speaks. ``credential`` is the credential section without its int4 length
    (empty = unsigned; see :mod:`idnode.protocol.credential`). ``request_digest`` is the
    RD-prefix of a response body (present exactly when the RD flag is set on a response).
    ``wire`` keeps the header and body as received, for digests and signature checks.

    Construction checks every field's range and that the body fits the opcode and response
    code (a :class:`RawBody` fits anything: it is how uninterpreted bodies travel).
    """

    op: int
    body: Body = field(default_factory=RawBody)
    response_code: int = ResponseCode.RESERVED
    flags: int = 0
    site_info_serial: int = 0xFFFF
    recursion_count: int = 0
    expiration: int = 0
    request_id: int = 0
    session_id: int = 0
    sequence: int = 0
    version: tuple[int, int] = SUPPORTED_VERSION
    suggested_version: tuple[int, int] = SUPPORTED_VERSION
    envelope_flags: int = 0
    reserved: int = 0
    request_digest: RequestDigest | None = None
    credential: bytes = b""
    wire: bytes = field(default=b"", compare=False, repr=False)

    def __post_init__(self) -> None:
        for value, bits, what in (
            (self.op, 32, "opcode"),
            (self.response_code, 32, "response code"),
            (self.flags, 32, "op flags"),
            (self.site_info_serial, 16, "site info serial"),
            (self.recursion_count, 8, "recursion count"),
            (self.reserved, 8, "reserved header byte"),
            (self.expiration, 32, "expiration"),
            (self.request_id, 32, "request id"),
            (self.session_id, 32, "session id"),
            (self.sequence, 32, "sequence number"),
            (self.version[0], 8, "major version"),
            (self.version[1], 8, "minor version"),
            (self.suggested_version[0], 2, "suggested major version"),
            (self.suggested_version[1], 8, "suggested minor version"),
        ):
            check_uint(value, bits, what)
        if self.envelope_flags & ~0xFC:
            raise ProtocolViolation(f"envelope flags out of range: {self.envelope_flags:#x}")
        expected = (
            request_body_class(self.op)
            if self.is_request
            else response_body_class(self.op, self.response_code, self.version)
        )
        if not isinstance(self.body, expected | RawBody):
            raise ProtocolViolation(
                f"{type(self.body).__name__} is not the body of op {self.op} "
                f"code {self.response_code}"
            )
        is_response = self.response_code != ResponseCode.RESERVED
        rd = bool(self.flags & OpFlag.RD)
        if is_response and rd and self.request_digest is None:
            raise ProtocolViolation("response with the RD flag needs a request digest")
        if self.request_digest is not None and not (is_response and rd):
            raise ProtocolViolation("a request digest belongs only in a response with RD set")

    @property
    def is_request(self) -> bool:
        return self.response_code == ResponseCode.RESERVED

    def has(self, flag: OpFlag) -> bool:
        return bool(self.flags & flag)

    def replace(self, **changes: object) -> Message:
        return dataclasses.replace(self, wire=b"", **changes)  # type: ignore[arg-type]

    # -- encoding ----------------------------------------------------------------------------

    def encode_header_and_body(self) -> bytes:
        """The 24-byte header and the body: what digests and signatures cover."""
        w = Writer()
        if self.request_digest is not None:
            self.request_digest.write(w)
        self.body.write(w)
        body = w.getvalue()
        header = _HEADER.pack(
            self.op,
            self.response_code,
            self.flags,
            self.site_info_serial,
            self.recursion_count,
            self.reserved,
            self.expiration,
            len(body),
        )
        return header + body

    def header_and_body(self) -> bytes:
        """The header and body as received, or as encoded for a message built locally."""
        return self.wire or self.encode_header_and_body()

    def envelope(self, length: int, sequence: int | None = None) -> Envelope:
        return Envelope(
            self.version[0],
            self.version[1],
            self.envelope_flags,
            self.suggested_version[0],
            self.suggested_version[1],
            self.session_id,
            self.request_id,
            self.sequence if sequence is None else sequence,
            length,
        )

    def encode(self) -> bytes:
        """The whole message: envelope, header, body, credential length and credential."""
        payload = self.encode_header_and_body()
        tail = struct.pack(">I", len(self.credential)) + self.credential
        length = len(payload) + len(tail)
        if length > MAX_MESSAGE_LENGTH:
            raise ProtocolViolation(f"message of {length} bytes exceeds {MAX_MESSAGE_LENGTH}")
        return self.envelope(length).encode() + payload + tail

    # -- decoding ----------------------------------------------------------------------------

    @classmethod
    def decode(cls, data: bytes) -> Message:
        """Decode one complete message (envelope first). Raises ProtocolViolation."""
        env = Envelope.decode(data)
        if len(data) != ENVELOPE_SIZE + env.length:
            raise ProtocolViolation(
                f"envelope says {env.length} bytes follow, {len(data) - ENVELOPE_SIZE} do"
            )
        return cls.decode_payload(env, data[ENVELOPE_SIZE:])

    @classmethod
    def decode_payload(cls, env: Envelope, payload: bytes) -> Message:
        """Decode the bytes after ``env`` (header, body, credential)."""
        r = Reader(payload)
        op = r.u32()
        code = r.u32()
        flags = r.u32()
        serial = r.u16()
        recursion = r.u8()
        reserved = r.u8()
        expiration = r.u32()
        body_length = r.u32()
        version = (env.major, env.minor)
        digest: RequestDigest | None = None
        with r.restrict_to(body_length, "message body") as body_reader:
            if code != ResponseCode.RESERVED and flags & OpFlag.RD:
                digest = RequestDigest.read(body_reader)
            if code == ResponseCode.RESERVED:
                body_cls = request_body_class(op)
            else:
                body_cls = response_body_class(op, code, version)
            body: Body = body_cls.read(body_reader)
        wire = payload[: HEADER_SIZE + body_length]
        # The reference decoder reads a credential only if at least 4 bytes remain.
        credential = b""
        if r.remaining >= 4:
            credential = r.byte_array("credential")
        r.expect_end("message")
        return cls(
            op=op,
            body=body,
            response_code=code,
            flags=flags,
            site_info_serial=serial,
            recursion_count=recursion,
            expiration=expiration,
            request_id=env.request_id,
            session_id=env.session_id,
            sequence=env.sequence,
            version=version,
            suggested_version=(env.suggested_major, env.suggested_minor),
            envelope_flags=env.flags,
            reserved=reserved,
            request_digest=digest,
            credential=credential,
            wire=wire,
        )
