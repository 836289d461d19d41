"""Value types whose data is UTF-8 text (spec §2.3, §2.7).

* ``URL``: a URL (the proxy redirects to the first one); ``URL.ALT`` etc. via the dot fallback.
* ``EMAIL``: an e-mail address.
* ``HS_ALIAS``: the handle this one is an alias of; resolvers follow it.
* ``HS_SERV`` (and ``HS_SERV.PREFIX``): the service handle whose HS_SITE values serve a prefix.

The data is the text's UTF-8 bytes, nothing else: no length prefix, no terminator. Bytes that
are not valid UTF-8 raise :class:`~idnode.errors.ProtocolViolation` (Java decodes them
leniently); the raw bytes stay available on the
:class:`~idnode.protocol.values.HandleValue`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from idnode.errors import ProtocolViolation
from idnode.protocol.types import register

__all__ = ["URL", "Alias", "Email", "ServiceHandle", "TextValue"]


@dataclass(frozen=True, slots=True)
class TextValue:
    """Base of the text types; values of different types never compare equal."""

    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"{type(self).__name__}.text must be str")
        try:
            self.text.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates
            raise ProtocolViolation(f"{type(self).__name__} text is not valid Unicode") from exc

    def __str__(self) -> str:
        return self.text

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolViolation(f"{cls.__name__} data is not valid UTF-8") from exc
        return cls(text)

    def to_bytes(self) -> bytes:
        return self.text.encode("utf-8")


@register("URL")
@dataclass(frozen=True, slots=True)
class URL(TextValue):
    """``URL`` data (spec §2.7)."""


@register("EMAIL")
@dataclass(frozen=True, slots=True)
class Email(TextValue):
    """``EMAIL`` data (spec §2.7)."""


@register("HS_ALIAS")
@dataclass(frozen=True, slots=True)
class Alias(TextValue):
    """``HS_ALIAS`` data: the target handle (spec §2.7)."""


@register("HS_SERV")
@dataclass(frozen=True, slots=True)
class ServiceHandle(TextValue):
    """``HS_SERV`` / ``HS_SERV.PREFIX`` data: a service handle such as ``0.NA/10`` (spec §2.3)."""
