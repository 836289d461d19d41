"""The metadata template model (spec industrial-identifier-system §2.2): :class:`Template`
(one version of a template, itself an identifier) and its :class:`Attribute` s.

Every invariant is checked at construction, so a Template that exists is well formed:

* a template: ``id`` is a handle (``prefix/suffix``, at most 255 characters); ``version`` is
  1 to :data:`~idnode.industry.layout.MAX_VERSION`; a Chinese name of 1 to 100 characters, an
  English name of at most 100 (IDHub ``metaName`` ≤ 100), a description of at most 1000;
  optional GB/T 4754 industry (letter, 2, 3 and 4 digits, each extending the one before);
  ``object_type`` 1 (active identifier carrier) or 2 (other), as SNMS ``type``; attribute keys
  unique ignoring case, indexes unique, Chinese names unique (SNMS: "unique within template").
* an attribute: ``key`` (SNMS ``idType``, the handle value type of its values) is a letter then
  letters, digits, ``_``, ``.``, ``-`` (at most 128), not ``HS_*`` and not template machinery;
  ``index`` ≥ 2000; a Chinese name of 1 to 50 characters, an English name of at most 50;
  ``min_length`` ≤ ``max_length`` ≤ 4000 (defaults by type below); options that only make
  sense for one type (precision and range for numbers, date format for dates, the reference
  template for references, pattern and check digit for strings, item limit for multi-valued
  attributes) are None elsewhere; a multi-valued attribute is not unique.

Defaults filled in at construction (so JSON round trips are exact): ``max_length`` string
4000 (IDHub), number 38 (IDHub), date 64, reference 255 (SNMS handle limit), url and file 2048;
``date_format`` ``YYYY-MM-DD``; ``max_items`` 100 for a multi-valued attribute.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from idnode.errors import InvalidValue
from idnode.industry.checkdigits import CHECK_DIGIT_SCHEMES, CheckDigitScheme
from idnode.industry.dates import DEFAULT_DATE_FORMAT, InvalidDateFormat, compile_date_format
from idnode.industry.layout import DATA_INDEX_START, MAX_VERSION, is_reserved_type

__all__ = [
    "MAX_ITEMS_LIMIT",
    "MAX_LENGTH_LIMIT",
    "Attribute",
    "AttributeType",
    "Industry",
    "InvalidTemplate",
    "Template",
    "TemplateStatus",
    "is_handle",
]

#: Longest value text any attribute may allow (IDHub's default string maximum).
MAX_LENGTH_LIMIT = 4000
#: Most items a multi-valued attribute may allow.
MAX_ITEMS_LIMIT = 1000
_MAX_PATTERN = 200
_MAX_PRECISION = 38
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,127}")
_U32_MAX = 0xFFFFFFFF


class InvalidTemplate(InvalidValue):
    """Invalid metadata template."""


class AttributeType(enum.StrEnum):
    """Data type of an attribute (IDHub ``dataType``; SNMS ``metadata.type`` spelling)."""

    STRING = "string"  #: free text (IDHub 1)
    NUMBER = "number"  #: decimal number, optionally with a precision and a range (IDHub 2)
    DATE = "date"  #: a date in the attribute's date format (IDHub 3)
    REFERENCE = "reference"  #: another identifier's handle (IDHub 5)
    URL = "url"  #: an absolute http(s) URL
    FILE = "file"  #: an uploaded object's URL: http(s) or s3 (IDHub 4)


class TemplateStatus(enum.StrEnum):
    """Lifecycle of a template version (IDHub ``metaState``: 0, 1; 2 is ours)."""

    DRAFT = "draft"  #: editable in place; accepts no registrations
    PUBLISHED = "published"  #: immutable; accepts registrations
    WITHDRAWN = "withdrawn"  #: immutable; existing data stays valid, no new registrations


_DEFAULT_MAX_LENGTH = {
    AttributeType.STRING: MAX_LENGTH_LIMIT,
    AttributeType.NUMBER: 38,
    AttributeType.DATE: 64,
    AttributeType.REFERENCE: 255,
    AttributeType.URL: 2048,
    AttributeType.FILE: 2048,
}


def is_handle(text: str) -> bool:
    """Whether ``text`` looks like a handle: a prefix without spaces or control characters,
    ``/``, a non-empty suffix without control characters; at most 255 characters."""
    prefix, slash, suffix = text.partition("/")
    return (
        bool(slash and prefix and suffix)
        and len(text) <= 255
        and text.isprintable()
        and not any(c.isspace() for c in prefix)
    )


def _check_text(value: str, what: str, *, low: int, high: int) -> None:
    if not low <= len(value) <= high:
        raise InvalidTemplate(f"{what} must have {low} to {high} characters")


@dataclass(frozen=True, slots=True)
class Industry:
    """GB/T 4754 classification: 门类 (letter), 大类 (2 digits), 中类 (3), 小类 (4), each code
    extending the one before (``C`` / ``38`` / ``382`` / ``3825``)."""

    category: str
    specific: str
    trade: str
    subclass: str

    def __post_init__(self) -> None:
        if not (len(self.category) == 1 and "A" <= self.category <= "T"):
            raise InvalidTemplate(f"industry category must be a letter A-T: {self.category!r}")
        for code, digits, parent in (
            (self.specific, 2, ""),
            (self.trade, 3, self.specific),
            (self.subclass, 4, self.trade),
        ):
            if not (len(code) == digits and code.isascii() and code.isdigit()):
                raise InvalidTemplate(f"industry code {code!r} must have {digits} digits")
            if not code.startswith(parent):
                raise InvalidTemplate(f"industry code {code!r} does not extend {parent!r}")


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute (SNMS item, IDHub 实体/元素) of a template. See the module docstring for
    the rules checked here and the defaults filled in."""

    key: str
    """SNMS ``idType`` / IDHub ``englishName``: the handle value type of this attribute."""
    index: int
    """SNMS ``idIndex`` / IDHub ``itemIndex``: the handle value index, ≥ 2000."""
    name_zh: str
    """Chinese display name (SNMS ``name``, IDHub ``chineseName``)."""
    type: AttributeType = AttributeType.STRING
    name_en: str = ""
    """English display name."""
    definition: str = ""
    """What the attribute means (IDHub ``definition``, ≤ 200)."""
    required: bool = False
    unique: bool = False
    """No two identifiers of the template may share a value (IDHub ``uniqueField``)."""
    enabled: bool = True
    """Disabled attributes are kept (never deleted) but refuse new values (SNMS ``state``)."""
    min_length: int = 0
    max_length: int | None = None
    precision: int | None = None
    """Numbers: most digits after the decimal point (IDHub ``accuracy``); None: any."""
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    date_format: str | None = None
    reference_template: str | None = None
    """References: the template the referenced identifier must be registered against
    (IDHub ``referenceMetaHandle``); None: any identifier."""
    pattern: str | None = None
    """Strings: a regular expression the whole value must match."""
    check_digit: CheckDigitScheme | None = None
    """Strings: the value must end in a valid check digit of this scheme."""
    multiple: bool = False
    """The value is a JSON array of texts, each checked on its own (e.g. a BOM)."""
    max_items: int | None = None

    def __post_init__(self) -> None:
        what = f"attribute {self.key!r}"
        if not _KEY.fullmatch(self.key):
            raise InvalidTemplate(f"{what}: a key is a letter then letters, digits, _ . -")
        if self.key.upper().startswith("HS_") or is_reserved_type(self.key):
            raise InvalidTemplate(f"{what}: the key is reserved for the Handle system")
        if not DATA_INDEX_START <= self.index <= _U32_MAX:
            raise InvalidTemplate(f"{what}: index {self.index} is not a data index (>= 2000)")
        object.__setattr__(self, "type", AttributeType(self.type))
        _check_text(self.name_zh, f"{what}: Chinese name", low=1, high=50)
        _check_text(self.name_en, f"{what}: English name", low=0, high=50)
        _check_text(self.definition, f"{what}: definition", low=0, high=200)
        if self.max_length is None:
            object.__setattr__(self, "max_length", _DEFAULT_MAX_LENGTH[self.type])
        if self.type is AttributeType.DATE and self.date_format is None:
            object.__setattr__(self, "date_format", DEFAULT_DATE_FORMAT)
        if self.multiple and self.max_items is None:
            object.__setattr__(self, "max_items", 100)
        self._check_lengths(what)
        self._check_type_options(what)

    def _check_lengths(self, what: str) -> None:
        assert self.max_length is not None
        if not 0 <= self.min_length <= self.max_length <= MAX_LENGTH_LIMIT:
            raise InvalidTemplate(
                f"{what}: lengths must satisfy 0 <= minLength <= maxLength <= {MAX_LENGTH_LIMIT}"
            )
        if self.multiple:
            assert self.max_items is not None
            if not 1 <= self.max_items <= MAX_ITEMS_LIMIT:
                raise InvalidTemplate(f"{what}: maxItems must be 1 to {MAX_ITEMS_LIMIT}")
            if self.unique:
                raise InvalidTemplate(f"{what}: a multi-valued attribute cannot be unique")
        elif self.max_items is not None:
            raise InvalidTemplate(f"{what}: maxItems needs a multi-valued attribute")

    def _check_type_options(self, what: str) -> None:
        kind = self.type
        options = {
            "precision": (self.precision, AttributeType.NUMBER),
            "minimum": (self.minimum, AttributeType.NUMBER),
            "maximum": (self.maximum, AttributeType.NUMBER),
            "dateFormat": (self.date_format, AttributeType.DATE),
            "referenceMetaHandle": (self.reference_template, AttributeType.REFERENCE),
            "pattern": (self.pattern, AttributeType.STRING),
            "checkDigit": (self.check_digit, AttributeType.STRING),
        }
        for name, (option, owner) in options.items():
            if option is not None and kind is not owner:
                raise InvalidTemplate(f"{what}: {name} applies to {owner} attributes only")
        if self.precision is not None and not 0 <= self.precision <= _MAX_PRECISION:
            raise InvalidTemplate(f"{what}: precision must be 0 to {_MAX_PRECISION}")
        for bound in (self.minimum, self.maximum):
            if bound is not None and not isinstance(bound, Decimal):
                raise TypeError("Attribute minimum and maximum are Decimal numbers")
            if bound is not None and not bound.is_finite():
                raise InvalidTemplate(f"{what}: range bounds must be finite numbers")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise InvalidTemplate(f"{what}: minimum is above maximum")
        if self.date_format is not None:
            try:
                compile_date_format(self.date_format)
            except InvalidDateFormat as exc:
                raise InvalidTemplate(f"{what}: {exc}") from None
        if self.reference_template is not None and not is_handle(self.reference_template):
            raise InvalidTemplate(f"{what}: referenceMetaHandle must be a handle")
        if self.pattern is not None:
            _check_text(self.pattern, f"{what}: pattern", low=1, high=_MAX_PATTERN)
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise InvalidTemplate(f"{what}: bad pattern: {exc}") from None
        if self.check_digit is not None and self.check_digit not in CHECK_DIGIT_SCHEMES:
            raise InvalidTemplate(f"{what}: checkDigit must be one of {CHECK_DIGIT_SCHEMES}")

    def replace(self, **changes: object) -> Attribute:
        """A copy with ``changes``; options the new type does not use must be reset too."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Template:
    """One version of a metadata template. See the module docstring for the rules."""

    id: str
    """The template's own identifier (IDHub ``metaHandle``), e.g. ``88.118.8/META_PV_MODULE``."""
    version: int
    name_zh: str
    """Chinese name (SNMS template ``name``, IDHub ``metaName``)."""
    attributes: tuple[Attribute, ...] = ()
    status: TemplateStatus = TemplateStatus.DRAFT
    name_en: str = ""
    description: str = ""
    industry: Industry | None = None
    object_type: int = 2
    """SNMS ``type``: 1 active identifier carrier (主动标识载体), 2 other."""
    _by_index: dict[int, Attribute] = field(init=False, repr=False, compare=False, hash=False)
    _by_key: dict[str, Attribute] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not is_handle(self.id):
            raise InvalidTemplate(f"template id {self.id!r} is not a handle (prefix/suffix)")
        if not 1 <= self.version <= MAX_VERSION:
            raise InvalidTemplate(f"template version must be 1 to {MAX_VERSION}")
        object.__setattr__(self, "status", TemplateStatus(self.status))
        object.__setattr__(self, "attributes", tuple(self.attributes))
        _check_text(self.name_zh, "template Chinese name", low=1, high=100)
        _check_text(self.name_en, "template English name", low=0, high=100)
        _check_text(self.description, "template description", low=0, high=1000)
        if self.object_type not in (1, 2):
            raise InvalidTemplate("template type must be 1 (active carrier) or 2 (other)")
        by_index: dict[int, Attribute] = {}
        by_key: dict[str, Attribute] = {}
        names: set[str] = set()
        for attr in self.attributes:
            if not isinstance(attr, Attribute):
                raise TypeError("Template.attributes holds Attribute objects")
            if attr.index in by_index:
                raise InvalidTemplate(f"two attributes use index {attr.index}")
            if attr.key.casefold() in by_key:
                raise InvalidTemplate(f"two attributes use key {attr.key!r}")
            if attr.name_zh in names:
                raise InvalidTemplate(f"two attributes use the Chinese name {attr.name_zh!r}")
            by_index[attr.index] = attr
            by_key[attr.key.casefold()] = attr
            names.add(attr.name_zh)
        object.__setattr__(self, "_by_index", by_index)
        object.__setattr__(self, "_by_key", by_key)

    @property
    def prefix(self) -> str:
        """The prefix owning the template (SNMS ``prefix``)."""
        return self.id.partition("/")[0]

    def attribute(self, key: str) -> Attribute | None:
        """The attribute with ``key`` (ignoring case), or None."""
        return self._by_key.get(key.casefold())

    def at_index(self, index: int) -> Attribute | None:
        """The attribute at handle value ``index``, or None."""
        return self._by_index.get(index)

    def enabled_attributes(self) -> tuple[Attribute, ...]:
        return tuple(a for a in self.attributes if a.enabled)

    def next_index(self) -> int:
        """The index a new attribute gets: one above the highest, 2000 for the first."""
        return max((a.index for a in self.attributes), default=DATA_INDEX_START - 1) + 1

    def replace(self, **changes: object) -> Template:
        """A copy with ``changes`` (checked like a new Template); no lifecycle rules applied:
        :class:`~idnode.industry.history.TemplateHistory` enforces those."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_attributes(self, attributes: Iterable[Attribute]) -> Template:
        return self.replace(attributes=tuple(attributes))
