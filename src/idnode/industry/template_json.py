"""Templates as JSON, in the SNMS v5 template shape (spec industrial-identifier-system §2.2,
§3.1) extended with the IDHub fields SNMS lacks. One version of a template::

    {"handle": "88.118.8/META_PV_MODULE", "prefix": "88.118.8", "version": 2,
     "metaState": 1,                        # 0 draft, 1 published, 2 withdrawn
     "name": "光伏组件", "englishName": "PV module", "description": "...",
     "industryCategory": "C", "industrySpecific": "38", "industryTrade": "382",
     "industrySubclass": "3825",            # GB/T 4754, all four or none
     "type": 2,                             # 1 active identifier carrier, 2 other
     "items": [
       {"idIndex": 2000, "idType": "serialNumber", "name": "组件序列号",
        "englishName": "Module serial number", "definition": "...",
        "required": true, "uniqueField": true, "state": 1,      # state: 1 enabled, 0 disabled
        "metadata": {"type": "string", "minLength": 1, "maxLength": 64,
                     "pattern": "...", "checkDigit": "gs1"}}]}

``metadata.type`` is ``string``, ``number``, ``date``, ``reference``, ``url`` or ``file``
(lowercase, as SNMS demands for ``string``). Type options: ``accuracy`` (decimals), ``minimum``
and ``maximum`` (decimal strings) for numbers; ``dateFormat`` for dates;
``referenceMetaHandle`` for references; ``pattern`` and ``checkDigit`` (``gs1``, ``vin``) for
strings; ``multiple`` and ``maxItems`` for any multi-valued attribute.

:func:`template_to_json` writes every member. :func:`template_from_json` also reads what SNMS
and IDHub clients send: flags as booleans or 0/1, integers as numbers or digit strings,
``minimum``/``maximum`` as numbers; missing ``idIndex`` values are assigned in order after the
highest given (from 2000); missing members take their defaults; unknown members are ignored;
``prefix``, if present, must be the handle's prefix. Anything else raises
:class:`~idnode.industry.model.InvalidTemplate` naming the member.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from idnode.industry.checkdigits import CHECK_DIGIT_SCHEMES, CheckDigitScheme
from idnode.industry.datatypes import format_number
from idnode.industry.layout import DATA_INDEX_START
from idnode.industry.model import (
    Attribute,
    AttributeType,
    Industry,
    InvalidTemplate,
    Template,
    TemplateStatus,
)

__all__ = [
    "META_STATES",
    "attribute_from_json",
    "attribute_to_json",
    "template_from_bytes",
    "template_from_json",
    "template_to_bytes",
    "template_to_json",
]

#: ``metaState`` of each status.
META_STATES = {TemplateStatus.DRAFT: 0, TemplateStatus.PUBLISHED: 1, TemplateStatus.WITHDRAWN: 2}
_STATUS_OF = {number: status for status, number in META_STATES.items()}
_SCHEMES: dict[str, CheckDigitScheme] = {scheme: scheme for scheme in CHECK_DIGIT_SCHEMES}
_SCHEMES_TEXT = ", ".join(CHECK_DIGIT_SCHEMES)
_INDUSTRY = ("industryCategory", "industrySpecific", "industryTrade", "industrySubclass")


# -- output ------------------------------------------------------------------------------------
def template_to_json(template: Template) -> dict[str, Any]:
    """One template version in the shape of the module docstring."""
    out: dict[str, Any] = {
        "handle": template.id,
        "prefix": template.prefix,
        "version": template.version,
        "metaState": META_STATES[template.status],
        "name": template.name_zh,
        "englishName": template.name_en,
        "description": template.description,
        "type": template.object_type,
    }
    if template.industry is not None:
        i = template.industry
        out.update(zip(_INDUSTRY, (i.category, i.specific, i.trade, i.subclass), strict=True))
    out["items"] = [attribute_to_json(a) for a in template.attributes]
    return out


def attribute_to_json(attr: Attribute) -> dict[str, Any]:
    """One SNMS ``items[]`` member."""
    metadata: dict[str, Any] = {
        "type": str(attr.type),
        "minLength": attr.min_length,
        "maxLength": attr.max_length,
    }
    options: dict[str, Any] = {
        "accuracy": attr.precision,
        "minimum": None if attr.minimum is None else format_number(attr.minimum),
        "maximum": None if attr.maximum is None else format_number(attr.maximum),
        "dateFormat": attr.date_format,
        "referenceMetaHandle": attr.reference_template,
        "pattern": attr.pattern,
        "checkDigit": attr.check_digit,
        "multiple": attr.multiple or None,
        "maxItems": attr.max_items,
    }
    metadata.update((k, v) for k, v in options.items() if v is not None)
    return {
        "idIndex": attr.index,
        "idType": attr.key,
        "name": attr.name_zh,
        "englishName": attr.name_en,
        "definition": attr.definition,
        "required": attr.required,
        "uniqueField": attr.unique,
        "state": 1 if attr.enabled else 0,
        "metadata": metadata,
    }


def template_to_bytes(template: Template) -> bytes:
    """Compact UTF-8 JSON of :func:`template_to_json` (the data of a definition value)."""
    text = json.dumps(template_to_json(template), ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8")


# -- input -------------------------------------------------------------------------------------
class _Members:
    """Typed access to the members of one JSON object, naming them in errors."""

    def __init__(self, obj: object, path: str) -> None:
        if not isinstance(obj, Mapping):
            raise InvalidTemplate(f"{path or 'template'}: expected a JSON object")
        self.obj: Mapping[str, Any] = obj
        self.path = path

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.obj.get(key) is not None

    def text(self, key: str, default: str | None = None) -> str:
        value = self.obj.get(key)
        if value is None and default is not None:
            return default
        if not isinstance(value, str):
            raise InvalidTemplate(f"{self.name(key)}: expected a string")
        return value

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.obj.get(key)
        if value is None and default is not None:
            return default
        if isinstance(value, str) and value.isascii() and value.isdigit():
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidTemplate(f"{self.name(key)}: expected an integer")
        return value

    def optional_integer(self, key: str) -> int | None:
        return self.integer(key) if self.has(key) else None

    def flag(self, key: str, default: bool) -> bool:
        value = self.obj.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise InvalidTemplate(f"{self.name(key)}: expected true/false or 0/1")

    def decimal(self, key: str) -> Decimal | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidTemplate(f"{self.name(key)}: expected a number")
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise InvalidTemplate(f"{self.name(key)}: expected a number") from None
        if not number.is_finite():
            raise InvalidTemplate(f"{self.name(key)}: expected a finite number")
        return number


def template_from_json(obj: object, *, handle: str | None = None) -> Template:
    """The template version ``obj`` describes. ``handle`` supplies the template's identifier
    when ``obj`` has none (SNMS create bodies); if both are given they must agree."""
    m = _Members(obj, "")
    given = m.optional_text("handle")
    if given is not None and handle is not None and given != handle:
        raise InvalidTemplate(f"handle: {given!r} is not the template {handle!r}")
    template_id = given or handle
    if template_id is None:
        raise InvalidTemplate("handle: missing")
    prefix = m.optional_text("prefix")
    if prefix is not None and prefix != template_id.partition("/")[0]:
        raise InvalidTemplate(f"prefix: {prefix!r} is not the prefix of {template_id!r}")
    state = m.integer("metaState", 0)
    if state not in _STATUS_OF:
        raise InvalidTemplate("metaState: expected 0 (draft), 1 (published) or 2 (withdrawn)")
    items = m.obj.get("items", [])
    if not isinstance(items, list):
        raise InvalidTemplate("items: expected an array")
    return Template(
        id=template_id,
        version=m.integer("version"),
        name_zh=m.text("name"),
        attributes=_attributes(items),
        status=_STATUS_OF[state],
        name_en=m.text("englishName", ""),
        description=m.text("description", ""),
        industry=_industry(m),
        object_type=m.integer("type", 2),
    )


def _industry(m: _Members) -> Industry | None:
    present = [key for key in _INDUSTRY if m.has(key)]
    if not present:
        return None
    if len(present) != len(_INDUSTRY):
        raise InvalidTemplate(f"{', '.join(_INDUSTRY)}: give all four or none")
    category, specific, trade, subclass = (m.text(key) for key in _INDUSTRY)
    return Industry(category, specific, trade, subclass)


def _attributes(items: list[Any]) -> tuple[Attribute, ...]:
    members = [_Members(item, f"items[{n}]") for n, item in enumerate(items)]
    given = [m.optional_integer("idIndex") for m in members]
    next_index = max((i for i in given if i is not None), default=DATA_INDEX_START - 1) + 1
    out: list[Attribute] = []
    for m, index in zip(members, given, strict=True):
        if index is None:
            index, next_index = next_index, next_index + 1
        out.append(attribute_from_json(m.obj, index=index, path=m.path))
    return tuple(out)


def attribute_from_json(obj: object, *, index: int | None = None, path: str = "item") -> Attribute:
    """The attribute of one ``items[]`` member; ``index`` is used when it has no ``idIndex``."""
    m = _Members(obj, path)
    given = m.optional_integer("idIndex")
    attr_index = given if given is not None else index
    if attr_index is None:
        raise InvalidTemplate(f"{m.name('idIndex')}: missing")
    meta = _Members(m.obj.get("metadata", {}), m.name("metadata"))
    kind = meta.text("type", "string")
    try:
        attr_type = AttributeType(kind)
    except ValueError:
        names = ", ".join(t.value for t in AttributeType)
        raise InvalidTemplate(f"{meta.name('type')}: expected one of {names}") from None
    check = meta.optional_text("checkDigit")
    scheme = None if check is None else _SCHEMES.get(check)
    if check is not None and scheme is None:
        raise InvalidTemplate(f"{meta.name('checkDigit')}: expected one of {_SCHEMES_TEXT}")
    return Attribute(
        key=m.text("idType"),
        index=attr_index,
        name_zh=m.text("name"),
        type=attr_type,
        name_en=m.text("englishName", ""),
        definition=m.text("definition", ""),
        required=m.flag("required", False),
        unique=m.flag("uniqueField", False),
        enabled=m.flag("state", True),
        min_length=meta.integer("minLength", 0),
        max_length=meta.optional_integer("maxLength"),
        precision=meta.optional_integer("accuracy"),
        minimum=meta.decimal("minimum"),
        maximum=meta.decimal("maximum"),
        date_format=meta.optional_text("dateFormat"),
        reference_template=meta.optional_text("referenceMetaHandle"),
        pattern=meta.optional_text("pattern"),
        check_digit=scheme,
        multiple=meta.flag("multiple", False),
        max_items=meta.optional_integer("maxItems"),
    )


def template_from_bytes(data: bytes, *, handle: str | None = None) -> Template:
    """:func:`template_from_json` of UTF-8 JSON ``data``."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidTemplate(f"template definition is not UTF-8 JSON: {exc}") from None
    return template_from_json(obj, handle=handle)
