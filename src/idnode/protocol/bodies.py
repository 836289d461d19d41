"""Message bodies, one small frozen dataclass per shape (RFC 3652 §3, spec §1.11).

Each body has ``write(w)`` and a ``read(r)`` classmethod. Which class a message body decodes
as depends on the opcode and response code; :func:`request_body_class` and
:func:`response_body_class` are the tables the message codec uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from idnode.errors import ProtocolViolation
from idnode.protocol.codes import OpCode, ResponseCode
from idnode.protocol.replication import (
    DumpHandlesRequest,
    NextTxnIdBody,
    RetrieveTxnRequest,
    RetrieveTxnResponseBody,
)
from idnode.protocol.values import HandleValue, read_values, write_values
from idnode.protocol.wire import Reader, Writer, check_uint

__all__ = [
    "Body",
    "ChallengeAnswer",
    "ChallengeBody",
    "CreateHandleResponse",
    "EmptyBody",
    "ErrorBody",
    "HandleListBody",
    "HandleRequest",
    "RawBody",
    "ReferralBody",
    "RemoveValuesRequest",
    "RequestDigest",
    "ResolutionRequest",
    "ResolutionResponse",
    "SessionSetupRequest",
    "SessionSetupResponse",
    "SiteInfoBody",
    "ValuesRequest",
    "VerifyChallengeRequest",
    "VerifyChallengeResponse",
    "request_body_class",
    "response_body_class",
]

_DIGEST_SIZES = {1: 16, 2: 20, 3: 32}


@dataclass(frozen=True, slots=True)
class RequestDigest:
    """A digest of a request (spec §1.6): ``u8 hashType`` then the raw digest.

    ``hash_type`` 0 is the old format, where the digest is a length-prefixed byte-array.
    """

    hash_type: int
    digest: bytes

    def __post_init__(self) -> None:
        size = _DIGEST_SIZES.get(self.hash_type)
        if self.hash_type != 0 and size != len(self.digest):
            raise ProtocolViolation(
                f"digest of {len(self.digest)} bytes for hash type {self.hash_type}"
            )

    def write(self, w: Writer) -> None:
        if self.hash_type == 0:
            w.byte_array(self.digest)
        else:
            w.u8(self.hash_type).raw(self.digest)

    @classmethod
    def read(cls, r: Reader) -> RequestDigest:
        hash_type = r.u8()
        if hash_type == 0:
            # Old format: the byte just read is the first byte of an int4 length.
            length = (r.u8() << 16) | (r.u8() << 8) | r.u8()
            return cls(0, r.raw(length, "request digest"))
        size = _DIGEST_SIZES.get(hash_type)
        if size is None:
            raise ProtocolViolation(f"unknown request digest hash type {hash_type}")
        return cls(hash_type, r.raw(size, "request digest"))


# -- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HandleRequest:
    """A body that is one handle: get-site-info, delete handle, list handles, list derived
    prefixes, home/unhome prefix, session terminate (spec §1.9 "generic requests")."""

    handle: str

    def write(self, w: Writer) -> None:
        w.utf8(self.handle)

    @classmethod
    def read(cls, r: Reader) -> HandleRequest:
        return cls(r.utf8("handle"))


@dataclass(frozen=True, slots=True)
class ResolutionRequest:
    """Op 1: handle, index list, type list (RFC 3652 §3.1; empty lists mean all)."""

    handle: str
    indexes: tuple[int, ...] = ()
    types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for i in self.indexes:
            check_uint(i, 32, "index")

    def write(self, w: Writer) -> None:
        w.utf8(self.handle).u32_array(self.indexes).utf8_array(self.types)

    @classmethod
    def read(cls, r: Reader) -> ResolutionRequest:
        return cls(r.utf8("handle"), r.u32_array(), r.utf8_array())


@dataclass(frozen=True, slots=True)
class _HandleAndValues:
    """``UTF8 handle``, ``int4 n``, n values: the shape of two message kinds below."""

    handle: str
    values: tuple[HandleValue, ...]

    def write(self, w: Writer) -> None:
        w.utf8(self.handle)
        write_values(w, self.values)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.utf8("handle"), read_values(r))


@dataclass(frozen=True, slots=True)
class ValuesRequest(_HandleAndValues):
    """Ops 100 create, 102 add value, 104 modify value: handle and values (RFC 3652 §3.3-3.7)."""


@dataclass(frozen=True, slots=True)
class RemoveValuesRequest:
    """Op 103: handle and the indexes to remove (RFC 3652 §3.6)."""

    handle: str
    indexes: tuple[int, ...]

    def __post_init__(self) -> None:
        for i in self.indexes:
            check_uint(i, 32, "index")

    def write(self, w: Writer) -> None:
        w.utf8(self.handle).u32_array(self.indexes)

    @classmethod
    def read(cls, r: Reader) -> RemoveValuesRequest:
        return cls(r.utf8("handle"), r.u32_array())


@dataclass(frozen=True, slots=True)
class ChallengeAnswer:
    """Op 200: the client's answer to a 402 challenge (RFC 3652 §3.5.2, spec §1.11)."""

    auth_type: str
    identity_handle: str
    identity_index: int
    signed_response: bytes

    def __post_init__(self) -> None:
        check_uint(self.identity_index, 32, "identity index")

    def write(self, w: Writer) -> None:
        w.utf8(self.auth_type).utf8(self.identity_handle).u32(self.identity_index)
        w.byte_array(self.signed_response)

    @classmethod
    def read(cls, r: Reader) -> ChallengeAnswer:
        return cls(r.utf8("auth type"), r.utf8("identity handle"), r.u32(), r.byte_array())


@dataclass(frozen=True, slots=True)
class VerifyChallengeRequest:
    """Op 201: ask the identity's server to check a secret-key answer (spec §1.11)."""

    handle: str
    index: int
    nonce: bytes
    digest: RequestDigest
    signed_response: bytes

    def __post_init__(self) -> None:
        check_uint(self.index, 32, "identity index")

    def write(self, w: Writer) -> None:
        w.utf8(self.handle).u32(self.index).byte_array(self.nonce)
        self.digest.write(w)
        w.byte_array(self.signed_response)

    @classmethod
    def read(cls, r: Reader) -> VerifyChallengeRequest:
        handle = r.utf8("identity handle")
        index = r.u32()
        nonce = r.byte_array("nonce")
        digest = RequestDigest.read(r)
        return cls(handle, index, nonce, digest, r.byte_array("signed response"))


@dataclass(frozen=True, slots=True)
class SessionSetupRequest:
    """Op 400 (spec §1.11). Mode 1 client key and 4 Diffie-Hellman carry a public key;
    mode 3 names a key held in a handle.

    The reference encoder counts the int2 mode as four bytes in BodyLength, so its requests
    end with two zero bytes (seen in every recorded session setup); ``padding`` keeps them.
    """

    mode: int
    timeout: int
    identity_handle: str
    identity_index: int
    public_key: bytes = b""
    key_handle: str = ""
    key_index: int = 0
    padding: bytes = b"\x00\x00"

    def __post_init__(self) -> None:
        check_uint(self.mode, 16, "key exchange mode")
        check_uint(self.timeout, 32, "session timeout")
        check_uint(self.identity_index, 32, "identity index")
        check_uint(self.key_index, 32, "key index")
        if self.public_key and self.mode not in (1, 4):
            raise ProtocolViolation(f"key exchange mode {self.mode} carries no public key")
        if (self.key_handle or self.key_index) and self.mode != 3:
            raise ProtocolViolation(f"key exchange mode {self.mode} names no key handle")
        if len(self.padding) > 4:
            raise ProtocolViolation("session setup padding longer than 4 bytes")

    def write(self, w: Writer) -> None:
        w.u16(self.mode).u32(self.timeout).utf8(self.identity_handle).u32(self.identity_index)
        if self.mode in (1, 4):
            w.byte_array(self.public_key)
        elif self.mode == 3:
            w.utf8(self.key_handle).u32(self.key_index)
        w.raw(self.padding)

    @classmethod
    def read(cls, r: Reader) -> SessionSetupRequest:
        mode, timeout = r.u16(), r.u32()
        handle, index = r.utf8("identity handle"), r.u32()
        public_key, key_handle, key_index = b"", "", 0
        if mode in (1, 4):
            public_key = r.byte_array("public key")
        elif mode == 3:
            key_handle, key_index = r.utf8("key handle"), r.u32()
        if r.remaining > 4:
            raise ProtocolViolation(f"{r.remaining} unexpected bytes after session setup")
        padding = r.rest()
        return cls(mode, timeout, handle, index, public_key, key_handle, key_index, padding)


# -- responses ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmptyBody:
    """Generic success: no body (spec §1.11)."""

    def write(self, w: Writer) -> None:
        pass

    @classmethod
    def read(cls, r: Reader) -> EmptyBody:
        return cls()


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """Any failure code: one byte-array holding a UTF-8 message (spec §1.11)."""

    message: bytes = b""

    @property
    def text(self) -> str:
        return self.message.decode("utf-8", "replace")

    def write(self, w: Writer) -> None:
        w.byte_array(self.message)

    @classmethod
    def read(cls, r: Reader) -> ErrorBody:
        # The reference decoder tolerates an absent message.
        return cls(r.byte_array("error message") if r.remaining else b"")


@dataclass(frozen=True, slots=True)
class ResolutionResponse(_HandleAndValues):
    """Op 1 success: the handle and the matching values (RFC 3652 §3.1)."""


@dataclass(frozen=True, slots=True)
class ReferralBody:
    """302 service referral / 303 prefix referral: handle, then optional values saying where
    to go (spec §1.11). ``values`` is None when the body ends after the handle."""

    handle: str
    values: tuple[HandleValue, ...] | None = None

    def write(self, w: Writer) -> None:
        w.utf8(self.handle)
        if self.values is not None:
            write_values(w, self.values)

    @classmethod
    def read(cls, r: Reader) -> ReferralBody:
        handle = r.utf8("handle")
        return cls(handle, read_values(r) if r.remaining else None)


@dataclass(frozen=True, slots=True)
class ChallengeBody:
    """402 authentication needed: the nonce (spec §1.11). Peers before 2.1 also get the
    request's MD5 digest as a byte-array (``old_digest``); later ones get it in the RD prefix."""

    nonce: bytes
    old_digest: bytes | None = None

    def write(self, w: Writer) -> None:
        w.byte_array(self.nonce)
        if self.old_digest is not None:
            w.byte_array(self.old_digest)

    @classmethod
    def read(cls, r: Reader) -> ChallengeBody:
        nonce = r.byte_array("nonce")
        return cls(nonce, r.byte_array("request digest") if r.remaining else None)


@dataclass(frozen=True, slots=True)
class CreateHandleResponse:
    """Op 100 success: empty, or the created handle (spec §0.4: the reference server always
    returns it)."""

    handle: str | None = None

    def write(self, w: Writer) -> None:
        if self.handle is not None:
            w.utf8(self.handle)

    @classmethod
    def read(cls, r: Reader) -> CreateHandleResponse:
        return cls(r.utf8("handle") if r.remaining else None)


@dataclass(frozen=True, slots=True)
class HandleListBody:
    """Ops 105 list handles / 302 list derived prefixes success: ``int4 n``, n handles."""

    handles: tuple[str, ...]

    def write(self, w: Writer) -> None:
        w.utf8_array(self.handles)

    @classmethod
    def read(cls, r: Reader) -> HandleListBody:
        return cls(r.utf8_array())


@dataclass(frozen=True, slots=True)
class SiteInfoBody:
    """Op 2 success: the raw HS_SITE record (spec §1.11, §2.2)."""

    data: bytes

    def write(self, w: Writer) -> None:
        w.raw(self.data)

    @classmethod
    def read(cls, r: Reader) -> SiteInfoBody:
        return cls(r.rest())


@dataclass(frozen=True, slots=True)
class VerifyChallengeResponse:
    """Op 201 success: one byte, 1 = the answer is valid (spec §1.11)."""

    valid: bool

    def write(self, w: Writer) -> None:
        w.u8(1 if self.valid else 0)

    @classmethod
    def read(cls, r: Reader) -> VerifyChallengeResponse:
        return cls(r.u8() == 1)


@dataclass(frozen=True, slots=True)
class SessionSetupResponse:
    """Op 400 success: ``int2 mode``, ``byte-array data`` (spec §1.11), with the same two
    bytes of padding as :class:`SessionSetupRequest`."""

    mode: int
    data: bytes
    padding: bytes = b"\x00\x00"

    def __post_init__(self) -> None:
        check_uint(self.mode, 16, "key exchange mode")
        if len(self.padding) > 4:
            raise ProtocolViolation("session setup padding longer than 4 bytes")

    def write(self, w: Writer) -> None:
        w.u16(self.mode).byte_array(self.data).raw(self.padding)

    @classmethod
    def read(cls, r: Reader) -> SessionSetupResponse:
        mode, data = r.u16(), r.byte_array("session data")
        if r.remaining > 4:
            raise ProtocolViolation(f"{r.remaining} unexpected bytes after session setup")
        return cls(mode, data, r.rest())


@dataclass(frozen=True, slots=True)
class RawBody:
    """A body idnode does not interpret (unknown or not yet implemented operations)."""

    data: bytes = b""

    def write(self, w: Writer) -> None:
        w.raw(self.data)

    @classmethod
    def read(cls, r: Reader) -> RawBody:
        return cls(r.rest())


Body = (
    HandleRequest
    | ResolutionRequest
    | ValuesRequest
    | RemoveValuesRequest
    | ChallengeAnswer
    | VerifyChallengeRequest
    | SessionSetupRequest
    | EmptyBody
    | ErrorBody
    | ResolutionResponse
    | ReferralBody
    | ChallengeBody
    | CreateHandleResponse
    | HandleListBody
    | SiteInfoBody
    | VerifyChallengeResponse
    | SessionSetupResponse
    | RetrieveTxnRequest
    | DumpHandlesRequest
    | NextTxnIdBody
    | RetrieveTxnResponseBody
    | RawBody
)
BodyClass = type[Body]

_REQUESTS: dict[int, BodyClass] = {
    OpCode.RESOLUTION: ResolutionRequest,
    OpCode.GET_SITE_INFO: HandleRequest,
    OpCode.CREATE_HANDLE: ValuesRequest,
    OpCode.DELETE_HANDLE: HandleRequest,
    OpCode.ADD_VALUE: ValuesRequest,
    OpCode.REMOVE_VALUE: RemoveValuesRequest,
    OpCode.MODIFY_VALUE: ValuesRequest,
    OpCode.LIST_HANDLES: HandleRequest,
    OpCode.LIST_DERIVED_PREFIXES: HandleRequest,
    OpCode.CHALLENGE_RESPONSE: ChallengeAnswer,
    OpCode.VERIFY_CHALLENGE: VerifyChallengeRequest,
    OpCode.HOME_NA: HandleRequest,
    OpCode.UNHOME_NA: HandleRequest,
    OpCode.SESSION_SETUP: SessionSetupRequest,
    OpCode.SESSION_TERMINATE: HandleRequest,
    OpCode.GET_NEXT_TXN_ID: HandleRequest,
    OpCode.RETRIEVE_TXN_LOG: RetrieveTxnRequest,
    OpCode.DUMP_HANDLES: DumpHandlesRequest,
    OpCode.BACKUP_SERVER: HandleRequest,
}

_SUCCESSES: dict[int, BodyClass] = {
    OpCode.RESOLUTION: ResolutionResponse,
    OpCode.GET_SITE_INFO: SiteInfoBody,
    OpCode.CREATE_HANDLE: CreateHandleResponse,
    OpCode.LIST_HANDLES: HandleListBody,
    OpCode.LIST_DERIVED_PREFIXES: HandleListBody,
    OpCode.VERIFY_CHALLENGE: VerifyChallengeResponse,
    OpCode.SESSION_SETUP: SessionSetupResponse,
    OpCode.DELETE_HANDLE: EmptyBody,
    OpCode.ADD_VALUE: EmptyBody,
    OpCode.MODIFY_VALUE: EmptyBody,
    OpCode.REMOVE_VALUE: EmptyBody,
    OpCode.HOME_NA: EmptyBody,
    OpCode.UNHOME_NA: EmptyBody,
    OpCode.SESSION_TERMINATE: EmptyBody,
    OpCode.BACKUP_SERVER: EmptyBody,
    OpCode.SESSION_EXCHANGEKEY: EmptyBody,
    OpCode.GET_NEXT_TXN_ID: NextTxnIdBody,
    OpCode.RETRIEVE_TXN_LOG: RetrieveTxnResponseBody,
    OpCode.DUMP_HANDLES: EmptyBody,
}


def request_body_class(op: int) -> BodyClass:
    """The body class of a request with opcode ``op`` (RawBody for uninterpreted ops)."""
    return _REQUESTS.get(op, RawBody)


def response_body_class(op: int, code: int, version: tuple[int, int]) -> BodyClass:
    """The body class of a response, chosen by response code, then opcode (spec §1.11)."""
    if code == ResponseCode.SUCCESS:
        return _SUCCESSES.get(op, RawBody)
    if code == ResponseCode.AUTHENTICATION_NEEDED:
        return ChallengeBody
    # Major version 5 is how very old clients said 2.0 (spec §1.4).
    modern = version >= (2, 5) and version[0] != 5
    if code == ResponseCode.SERVICE_REFERRAL or (code == ResponseCode.PREFIX_REFERRAL and modern):
        return ReferralBody
    return ErrorBody
