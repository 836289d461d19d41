"""Handle values (RFC 3651 §3, RFC 3652 §3.1, spec §1.8).

A :class:`HandleValue` keeps its data as the raw bytes that go on the wire; typed views of the
data (HS_ADMIN, HS_SITE, ...) come from :mod:`idnode.protocol.types`. Storage keeps each value's
encoded bytes (:meth:`HandleValue.encode`) as the single source of truth.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from idnode.errors import ProtocolViolation
from idnode.protocol.codes import Permission
from idnode.protocol.wire import Reader, Writer

__all__ = [
    "DEFAULT_PERMISSIONS",
    "DEFAULT_TTL",
    "HandleValue",
    "Reference",
    "TTLType",
    "decode_record",
    "encode_record",
    "read_values",
    "write_values",
]

#: Handle.net's default TTL in seconds.
DEFAULT_TTL = 86400
#: admin read + admin write + public read (spec §1.8).
DEFAULT_PERMISSIONS = Permission.ADMIN_READ | Permission.ADMIN_WRITE | Permission.PUBLIC_READ

_U32_MAX = 0xFFFFFFFF


class TTLType:
    RELATIVE = 0  #: TTL is a number of seconds
    ABSOLUTE = 1  #: TTL is an epoch time


@dataclass(frozen=True, slots=True)
class Reference:
    """A reference from a value to another value: (handle, index) (RFC 3651 §3.1)."""

    handle: str
    index: int

    def __post_init__(self) -> None:
        _check_u32(self.index, "reference index")


@dataclass(frozen=True, slots=True)
class HandleValue:
    """One value of a handle record."""

    index: int
    type: str
    data: bytes = b""
    ttl: int = DEFAULT_TTL
    ttl_type: int = TTLType.RELATIVE
    timestamp: int = 0
    permissions: int = int(DEFAULT_PERMISSIONS)
    references: tuple[Reference, ...] = ()

    def __post_init__(self) -> None:
        _check_u32(self.index, "index")
        _check_u32(self.ttl, "ttl")
        _check_u32(self.timestamp, "timestamp")
        if not 0 <= self.ttl_type <= 0xFF:
            raise ProtocolViolation(f"ttl type out of range: {self.ttl_type}")
        if not 0 <= self.permissions <= 0xFF:
            raise ProtocolViolation(f"permissions out of range: {self.permissions}")
        if not isinstance(self.data, bytes):
            raise TypeError("HandleValue.data must be bytes")

    # -- permissions -------------------------------------------------------------------------
    @property
    def public_read(self) -> bool:
        return bool(self.permissions & Permission.PUBLIC_READ)

    @property
    def admin_read(self) -> bool:
        return bool(self.permissions & Permission.ADMIN_READ)

    # -- type matching (spec §1.11: a listed type ending in '.' matches its sub-types) -------
    def type_matches(self, wanted: str) -> bool:
        mine = self.type.upper()
        want = wanted.upper()
        if mine == want:
            return True
        return want.endswith(".") and mine.startswith(want)

    def with_changes(self, **changes: object) -> HandleValue:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    # -- wire ----------------------------------------------------------------------------------
    def write(self, w: Writer) -> None:
        w.u32(self.index).u32(self.timestamp).u8(self.ttl_type).u32(self.ttl).u8(self.permissions)
        w.utf8(self.type).byte_array(self.data)
        w.u32(len(self.references))
        for ref in self.references:
            w.utf8(ref.handle).u32(ref.index)

    def encode(self) -> bytes:
        w = Writer()
        self.write(w)
        return w.getvalue()

    @classmethod
    def read(cls, r: Reader) -> HandleValue:
        index = r.u32()
        timestamp = r.u32()
        ttl_type = r.u8()
        ttl = r.u32()
        permissions = r.u8()
        vtype = r.utf8("value type")
        data = r.byte_array("value data")
        n = r.count(8, "reference list")
        refs = tuple(Reference(r.utf8("reference handle"), r.u32()) for _ in range(n))
        return cls(index, vtype, data, ttl, ttl_type, timestamp, permissions, refs)

    @classmethod
    def decode(cls, data: bytes) -> HandleValue:
        r = Reader(data)
        value = cls.read(r)
        r.expect_end("handle value")
        return value


def _check_u32(v: int, what: str) -> None:
    if not 0 <= v <= _U32_MAX:
        raise ProtocolViolation(f"{what} out of range: {v}")


def write_values(w: Writer, values: tuple[HandleValue, ...]) -> None:
    """``int4 n`` then n encoded values."""
    w.u32(len(values))
    for v in values:
        v.write(w)


def read_values(r: Reader) -> tuple[HandleValue, ...]:
    # The fixed part of a value is 14 bytes plus three int4 lengths/counts.
    n = r.count(26, "value list")
    return tuple(HandleValue.read(r) for _ in range(n))


def encode_record(values: Sequence[HandleValue]) -> bytes:
    """A handle record as stored: ``int4 n`` and the encoded values in index order (the wire
    form of a value list). ProtocolViolation if two values share an index."""
    ordered = sorted(values, key=lambda v: v.index)
    for a, b in itertools.pairwise(ordered):
        if a.index == b.index:
            raise ProtocolViolation(f"duplicate value index {a.index}")
    w = Writer()
    write_values(w, tuple(ordered))
    return w.getvalue()


def decode_record(data: bytes) -> tuple[HandleValue, ...]:
    """The values of a record made by :func:`encode_record`."""
    r = Reader(data)
    values = read_values(r)
    r.expect_end("handle record")
    return values
