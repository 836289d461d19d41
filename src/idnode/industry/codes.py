"""Per-field validation errors: :class:`FieldError` and the machine codes of :class:`Code`.

``field`` names what is wrong: an attribute's key (SNMS ``idType``) when the value belongs to
an attribute, else the value's own type (an unknown attribute), or ``TEMPLATE`` for the
template link and the template's state. ``index`` is the handle value index concerned, when
there is one. ``message`` is for people; ``code`` is stable for programs.

:class:`TemplateViolation` carries the errors of one refused write. It is an
:class:`~idnode.errors.InvalidValue`, so the native protocol answers RC_INVALID_VALUE with
:func:`summary` as the message (one line per error, which :func:`parse_summary` reads back),
and the HTTP layer adds the errors themselves to its JSON error body.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from idnode.errors import InvalidValue

__all__ = ["Code", "FieldError", "TemplateViolation", "parse_summary", "summary"]


class Code(enum.StrEnum):
    """Stable machine codes of :class:`FieldError`."""

    REQUIRED = "required"  #: a required attribute has no value (or an empty one)
    UNKNOWN_ATTRIBUTE = "unknown_attribute"  #: neither the index nor the type is in the template
    INDEX_MISMATCH = "index_mismatch"  #: index and type name different attributes
    DISABLED = "disabled"  #: the attribute is disabled: no new values
    DUPLICATE = "duplicate"  #: two values for one attribute or one index
    RESERVED_INDEX = "reserved_index"  #: 1000-1999, or a TEMPLATE type, outside the link
    TYPE = "type"  #: not UTF-8 text, or not a number / handle / URL / list
    TOO_SHORT = "too_short"  #: fewer characters than minLength
    TOO_LONG = "too_long"  #: more characters than maxLength
    TOO_MANY = "too_many"  #: a multi-valued attribute has more than maxItems items
    PATTERN = "pattern"  #: the text does not match the attribute's pattern
    CHECK_DIGIT = "check_digit"  #: a GTIN/VIN whose check digit is wrong
    PRECISION = "precision"  #: more decimals than the attribute's precision
    RANGE = "range"  #: a number below minimum or above maximum
    DATE_FORMAT = "date_format"  #: not a real date in the attribute's date format
    REFERENCE_MISSING = "reference_missing"  #: the referenced identifier does not exist
    REFERENCE_TEMPLATE = "reference_template"  #: it exists but not with the required template
    UNIQUE = "unique"  #: another identifier of the template already has this value
    TEMPLATE_LINK = "template_link"  #: the 1001 link is missing or names another template
    TEMPLATE_VERSION = "template_version"  #: the 1002 version is not the one validated against
    TEMPLATE_STATE = "template_state"  #: draft (nothing) or withdrawn (no new registrations)
    TEMPLATE_DEFINITION = "template_definition"  #: a template's own record breaks the rules
    TEMPLATE_UNAVAILABLE = "template_unavailable"  #: the linked template could not be read
    TEMPLATE_USE = "template_use"  #: the writer is not granted the use of the template


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason a write is refused."""

    field: str
    code: Code
    message: str
    index: int | None = None

    def to_json(self) -> dict[str, object]:
        """``{"field", "code", "message"[, "index"]}``, the shape the HTTP layers can embed."""
        out: dict[str, object] = {"field": self.field, "code": str(self.code)}
        out["message"] = self.message
        if self.index is not None:
            out["index"] = self.index
        return out


# An error with an index first: its field may hold ": " (a value type is any text).
_INDEXED = re.compile(r"(?P<code>[a-z_]+): (?P<field>.+?) at (?P<index>[0-9]+): (?P<message>.*)")
_WHOLE = re.compile(r"(?P<code>[a-z_]+): (?P<field>.+?): (?P<message>.*)")


def _line(error: FieldError) -> str:
    where = "" if error.index is None else f" at {error.index}"
    message = " ".join(error.message.split())  # one line per error, whatever the text holds
    return f"{error.code}: {error.field}{where}: {message}"


def summary(errors: Iterable[FieldError]) -> str:
    """One line per error, ``<code>: <field>[ at <index>]: <message>``, e.g.
    ``range: powerRatingW at 2002: 900 is above the maximum 800``."""
    return "\n".join(_line(e) for e in errors)


def parse_summary(text: str) -> list[FieldError]:
    """The errors of a :func:`summary` (e.g. the message of an RC_INVALID_VALUE answer over the
    native protocol); lines that are not in its shape are skipped, so any other message gives
    an empty list."""
    out: list[FieldError] = []
    for line in text.splitlines():
        match = _INDEXED.fullmatch(line) or _WHOLE.fullmatch(line)
        if match is None or match["code"] not in _CODES:
            continue
        index = int(match["index"]) if "index" in match.groupdict() else None
        out.append(FieldError(match["field"], Code(match["code"]), match["message"], index))
    return out


_CODES = frozenset(c.value for c in Code)


class TemplateViolation(InvalidValue):
    """A write breaks its metadata template (or a template's own rules)."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        if not self.errors:
            raise ValueError("a TemplateViolation needs at least one FieldError")
        super().__init__(summary(self.errors))

    def to_json(self) -> list[dict[str, object]]:
        """The errors as the HTTP layers embed them (:meth:`FieldError.to_json`)."""
        return [e.to_json() for e in self.errors]
