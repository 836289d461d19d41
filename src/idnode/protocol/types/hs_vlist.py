"""HS_VLIST value data: a list of value references, used as an admin group (spec §2.6).

Wire layout: ``int4 n``, then n × (``UTF8-String handle``, ``int4 index``). Authorization treats
each entry as an identity and checks it recursively (spec §2.1).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Self

from idnode.protocol.types import register
from idnode.protocol.values import Reference
from idnode.protocol.wire import Reader, Writer

__all__ = ["ValueList"]

# UTF8-String length + int4 index.
_MIN_ENTRY_SIZE = 8


@register("HS_VLIST")
@dataclass(frozen=True, slots=True)
class ValueList:
    """An HS_VLIST value: references ``(handle, index)`` in record order (spec §2.6)."""

    entries: tuple[Reference, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(self.entries))
        if not all(isinstance(e, Reference) for e in self.entries):
            raise TypeError("ValueList.entries must hold Reference objects")

    def __iter__(self) -> Iterator[Reference]:
        return iter(self.entries)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        r = Reader(data)
        n = r.count(_MIN_ENTRY_SIZE, "HS_VLIST")
        entries = tuple(Reference(r.utf8("HS_VLIST handle"), r.u32()) for _ in range(n))
        r.expect_end("HS_VLIST")
        return cls(entries)

    def to_bytes(self) -> bytes:
        w = Writer().u32(len(self.entries))
        for ref in self.entries:
            w.utf8(ref.handle).u32(ref.index)
        return w.getvalue()
