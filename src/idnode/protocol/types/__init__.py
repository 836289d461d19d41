"""Typed views of handle value data, looked up by value type (spec §2).

Each value type is a frozen dataclass with ``from_bytes(data)`` and ``to_bytes()``, registered
under its type name with :func:`register`. Sub-types share their parent's codec
(``HS_SITE.PREFIX`` and ``HS_SITE.6`` decode as ``HS_SITE``, ``URL.ALT`` as ``URL``). Types
without a registered codec have no typed view: their :class:`~idnode.protocol.values.HandleValue`
keeps the raw bytes and re-encodes them unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

__all__ = ["ValueData", "codec_for", "parse", "register"]


class ValueData(Protocol):
    def to_bytes(self) -> bytes: ...


class ValueCodec(Protocol):
    def from_bytes(self, data: bytes, /) -> ValueData: ...


_REGISTRY: dict[str, ValueCodec] = {}
_T = TypeVar("_T")


def register(*type_names: str) -> Callable[[_T], _T]:
    """Class decorator: register a value-data class under one or more type names."""

    def deco(cls: _T) -> _T:
        for name in type_names:
            _REGISTRY[name.upper()] = cls  # type: ignore[assignment]
        return cls

    return deco


def codec_for(value_type: str) -> ValueCodec | None:
    """The codec for ``value_type``, case-insensitive; ``A.B`` falls back to ``A``."""
    name = value_type.upper()
    codec = _REGISTRY.get(name)
    if codec is None and "." in name:
        codec = _REGISTRY.get(name.split(".", 1)[0])
    return codec


def parse(value_type: str, data: bytes) -> ValueData | None:
    """Decode ``data`` as ``value_type``; None for types without a codec.

    Raises :class:`~idnode.errors.ProtocolViolation` if the bytes do not fit the type.
    """
    codec = codec_for(value_type)
    return None if codec is None else codec.from_bytes(data)


from idnode.protocol.types import hs_admin, hs_seckey, hs_site, hs_vlist, text  # noqa: E402,F401,I001
from idnode.protocol.types import hs_pubkey  # noqa: E402,F401
