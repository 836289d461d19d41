"""Per-field validation errors: :class:`FieldError` and the machine codes of :class:`Code`.

``field`` names what is wrong: an attribute's key (SNMS ``idType``) when the value belongs to
an attribute, else the value's own type (an unknown attribute), or ``TEMPLATE`` for the
template link and the template's state. ``index`` is the handle value index concerned, when
there is one. ``message`` is for people; ``code`` is stable for programs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Code", "FieldError"]


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
