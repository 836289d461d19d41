"""Primitive encodings of the Handle protocol (RFC 3652 §2.1, spec §1.2).

:class:`Reader` is a cursor over immutable bytes. Every read is bounds-checked and raises
:class:`~idnode.errors.ProtocolViolation`, never ``struct.error``/``IndexError``/
``UnicodeDecodeError``. Length prefixes are checked against the bytes that remain before
anything is allocated, so hostile lengths cannot cause large allocations.
:class:`Writer` appends to a ``bytearray``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager

from idnode.errors import ProtocolViolation

__all__ = ["Reader", "Writer", "check_uint"]

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def check_uint(value: int, bits: int, what: str) -> None:
    """Raise ProtocolViolation unless ``value`` fits an unsigned field of ``bits`` bits."""
    if not 0 <= value < (1 << bits):
        raise ProtocolViolation(f"{what} out of range: {value}")


class Reader:
    """Bounds-checked big-endian reader."""

    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        end = len(data) if end is None else end
        if not 0 <= start <= end <= len(data):
            raise ProtocolViolation(f"window {start}..{end} outside {len(data)} bytes")
        self._data = data
        self._pos = start
        self._end = end

    @property
    def pos(self) -> int:
        return self._pos

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def _need(self, n: int, what: str) -> int:
        if n < 0 or self._pos + n > self._end:
            raise ProtocolViolation(f"truncated {what}: need {n} bytes, {self.remaining} left")
        start = self._pos
        self._pos += n
        return start

    def u8(self) -> int:
        return self._data[self._need(1, "u8")]

    def u16(self) -> int:
        return int(_U16.unpack_from(self._data, self._need(2, "int2"))[0])

    def u32(self) -> int:
        return int(_U32.unpack_from(self._data, self._need(4, "int4"))[0])

    def raw(self, n: int, what: str = "bytes") -> bytes:
        start = self._need(n, what)
        return bytes(self._data[start : start + n])

    def rest(self) -> bytes:
        return self.raw(self.remaining)

    def byte_array(self, what: str = "byte-array") -> bytes:
        """int4 length, then that many bytes."""
        return self.raw(self.u32(), what)

    def utf8(self, what: str = "UTF8-String") -> str:
        data = self.byte_array(what)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolViolation(f"{what} is not valid UTF-8") from exc

    def count(self, min_item_size: int, what: str = "array") -> int:
        """An int4 element count, checked against the bytes left (each item >= min_item_size)."""
        n = self.u32()
        if n * min_item_size > self.remaining:
            raise ProtocolViolation(f"{what} count {n} exceeds the message")
        return n

    def u32_array(self) -> tuple[int, ...]:
        n = self.count(4, "int4-array")
        return tuple(self.u32() for _ in range(n))

    def utf8_array(self) -> tuple[str, ...]:
        n = self.count(4, "string-array")
        return tuple(self.utf8() for _ in range(n))

    def expect_end(self, what: str) -> None:
        if self._pos != self._end:
            raise ProtocolViolation(f"{self.remaining} unexpected trailing bytes in {what}")

    @contextmanager
    def restrict_to(self, n: int, what: str) -> Iterator[Reader]:
        """Read exactly ``n`` bytes of a length-prefixed structure through a sub-reader."""
        start = self._need(n, what)
        sub = Reader(self._data, start, start + n)
        yield sub
        sub.expect_end(what)


class Writer:
    """Big-endian writer appending to a bytearray."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def u8(self, v: int) -> Writer:
        self.buf.append(v)
        return self

    def u16(self, v: int) -> Writer:
        self.buf += _U16.pack(v)
        return self

    def u32(self, v: int) -> Writer:
        self.buf += _U32.pack(v)
        return self

    def raw(self, data: bytes) -> Writer:
        self.buf += data
        return self

    def byte_array(self, data: bytes) -> Writer:
        self.buf += _U32.pack(len(data))
        self.buf += data
        return self

    def utf8(self, s: str) -> Writer:
        return self.byte_array(s.encode("utf-8"))

    def u32_array(self, items: tuple[int, ...] | list[int]) -> Writer:
        self.u32(len(items))
        for i in items:
            self.u32(i)
        return self

    def utf8_array(self, items: tuple[str, ...] | list[str]) -> Writer:
        self.u32(len(items))
        for s in items:
            self.utf8(s)
        return self

    def getvalue(self) -> bytes:
        return bytes(self.buf)
