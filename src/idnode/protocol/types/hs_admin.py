"""HS_ADMIN value data: who may administer a handle, and how (spec §2.1, RFC 3651 §3.2.1).

Wire layout::

    int2        permissions   bit mask, see AdminPermission
    UTF8-String admin handle
    int4        admin index   0 = any key-bearing index of that handle

Legacy form: encoders up to Handle.Net 7.3 sized the permission field as an int4 but wrote an
int2, so the record ends with two extra (zero) bytes. Java recognises it by length alone
(exactly two bytes left after the index, its ``legacyByteLength`` flag) and writes it back the
same way; :class:`AdminRecord` keeps those two bytes so ``to_bytes`` reproduces the input.

The REST form of the permissions (spec §2.1) is a 12-character binary string, most
significant bit (LIST_HANDLES) first: :func:`permissions_to_string` and
:func:`permissions_from_json`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Self

from idnode.errors import InvalidValue, ProtocolViolation
from idnode.protocol.codes import AdminPermission
from idnode.protocol.types import register
from idnode.protocol.wire import Reader, Writer

__all__ = [
    "ALL_PERMISSIONS",
    "AdminRecord",
    "permissions_from_json",
    "permissions_to_string",
]

#: The twelve defined permission bits (spec §2.1); JSON ``"*"`` and ``true`` mean all of them.
ALL_PERMISSIONS = 0x0FFF
_NUM_BITS = 12
_LEGACY_PADDING_LEN = 2
_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFFFFFF


@register("HS_ADMIN")
@dataclass(frozen=True, slots=True)
class AdminRecord:
    """One HS_ADMIN value: ``permissions`` granted to the identity ``index:handle`` (spec §2.1)."""

    permissions: int
    handle: str
    index: int
    #: ``b""`` normally; the two trailing bytes of the legacy (<= 7.3) form, kept verbatim.
    legacy_padding: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.handle, str):
            raise TypeError("AdminRecord.handle must be str")
        if not isinstance(self.legacy_padding, bytes):
            raise TypeError("AdminRecord.legacy_padding must be bytes")
        if not 0 <= self.permissions <= _U16_MAX:
            raise ProtocolViolation(f"HS_ADMIN permissions out of range: {self.permissions}")
        if not 0 <= self.index <= _U32_MAX:
            raise ProtocolViolation(f"HS_ADMIN admin index out of range: {self.index}")
        if len(self.legacy_padding) not in (0, _LEGACY_PADDING_LEN):
            raise ProtocolViolation("HS_ADMIN legacy padding must be empty or 2 bytes")

    # -- permissions -------------------------------------------------------------------------
    @property
    def legacy_byte_length(self) -> bool:
        """True for the legacy encoding with two trailing bytes (Java ``legacyByteLength``)."""
        return bool(self.legacy_padding)

    @property
    def admin_permissions(self) -> AdminPermission:
        """The defined permission bits as a flag set (bits above 0x0800 dropped)."""
        return AdminPermission(self.permissions & ALL_PERMISSIONS)

    def has(self, perm: AdminPermission | int) -> bool:
        """True if every bit of ``perm`` is granted."""
        return (self.permissions & perm) == perm

    @property
    def permissions_string(self) -> str:
        """The REST JSON form of the permissions, e.g. ``"011111110011"`` (spec §2.1)."""
        return permissions_to_string(self.permissions)

    # -- wire ----------------------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        r = Reader(data)
        permissions = r.u16()
        handle = r.utf8("HS_ADMIN admin handle")
        index = r.u32()
        # Java: legacy iff exactly two bytes remain here; anything else left over is an error.
        padding = r.raw(_LEGACY_PADDING_LEN) if r.remaining == _LEGACY_PADDING_LEN else b""
        r.expect_end("HS_ADMIN")
        return cls(permissions, handle, index, padding)

    def to_bytes(self) -> bytes:
        w = Writer().u16(self.permissions).utf8(self.handle).u32(self.index)
        return w.raw(self.legacy_padding).getvalue()


def permissions_to_string(permissions: int) -> str:
    """The 12-bit permission mask in binary, LIST_HANDLES first, ADD_HANDLE last (spec §2.1).

    Bits above the twelve defined ones are not represented (as in Java).
    """
    return format(permissions & ALL_PERMISSIONS, f"0{_NUM_BITS}b")


def permissions_from_json(value: object) -> int:
    """Parse the ``permissions`` member of a REST HS_ADMIN value (spec §2.1) as Java does.

    * string: bit *i* is set if the *i*-th character from the **right** is ``'1'``, so shorter
      strings leave the high bits 0, characters other than ``'1'`` count as 0 and only the last
      twelve characters matter; ``"*"`` means all permissions;
    * boolean: all permissions or none;
    * number: its binary string, i.e. its low twelve bits (two's complement for negatives;
      a fraction is truncated towards zero);
    * array: element *i* (ADD_HANDLE first, the reverse of the string order) grants bit *i* if
      it is truthy (non-empty string, non-zero number, true, or any array/object); elements
      past the twelfth are ignored;
    * null / absent: no permissions.

    Raises :class:`~idnode.errors.InvalidValue` for anything else (e.g. an object).
    """
    if value is None:
        return 0
    if isinstance(value, bool):
        return ALL_PERMISSIONS if value else 0
    if isinstance(value, str):
        if value == "*":
            return ALL_PERMISSIONS
        bits = 0
        for i, ch in enumerate(reversed(value[-_NUM_BITS:])):
            if ch == "1":
                bits |= 1 << i
        return bits
    if isinstance(value, int):
        return value & ALL_PERMISSIONS
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValue(f"invalid HS_ADMIN permissions: {value!r}")
        return int(value) & ALL_PERMISSIONS
    if isinstance(value, list | tuple):
        bits = 0
        for i, element in enumerate(value[:_NUM_BITS]):
            if _is_truthy(element):
                bits |= 1 << i
        return bits
    raise InvalidValue(f"invalid HS_ADMIN permissions: {type(value).__name__}")


def _is_truthy(element: object) -> bool:
    """JSON truthiness as Java's REST layer sees it (array form of the permissions)."""
    if element is None:
        return False
    if isinstance(element, bool):
        return element
    if isinstance(element, str):
        return element != ""
    if isinstance(element, int | float):
        return not math.isnan(element) and element != 0
    return True  # arrays and objects
