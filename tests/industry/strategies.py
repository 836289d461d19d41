"""Hypothesis strategies for templates."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from idnode.industry.history import TemplateHistory
from idnode.industry.model import Attribute, AttributeType, Industry, Template, TemplateStatus

_CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5)
_KEYS = st.from_regex(r"[A-Za-z][A-Za-z0-9_.\-]{0,15}", fullmatch=True).filter(
    lambda k: not k.upper().startswith(("HS_", "TEMPLATE"))
)
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
_DATE_FORMATS = ("YYYY-MM-DD", "YYYYMMDD", "YYMMDD", "YYYY年MM月DD日", "YYYY-MM-DDTHH:mm:ss")
_PATTERNS = ("[0-9]{14}", "PV-[0-9]{4}-[0-9]{6,}", "yes|no", r"\w+")
_HANDLES = st.from_regex(r"88\.[0-9]{1,3}\.[0-9]{1,3}/META_[A-Z0-9_]{1,12}", fullmatch=True)
_DECIMALS = st.decimals(
    min_value=-(10**6), max_value=10**6, places=3, allow_nan=False, allow_infinity=False
)
_INDUSTRIES = (
    Industry("C", "38", "382", "3825"),
    Industry("C", "35", "358", "3581"),
    Industry("A", "01", "011", "0111"),
)


@st.composite
def attributes(draw: st.DrawFn, key: str, index: int, name_zh: str) -> Attribute:
    """Any valid attribute with this key, index and Chinese name."""
    kind = draw(st.sampled_from(AttributeType))
    options: dict[str, Any] = {}
    if kind is AttributeType.NUMBER:
        options["precision"] = draw(st.none() | st.integers(0, 6))
        low, high = sorted((draw(_DECIMALS), draw(_DECIMALS)))
        options["minimum"] = draw(st.none() | st.just(low))
        options["maximum"] = draw(st.none() | st.just(high))
    elif kind is AttributeType.DATE:
        options["date_format"] = draw(st.sampled_from(_DATE_FORMATS))
    elif kind is AttributeType.REFERENCE:
        options["reference_template"] = draw(st.none() | _HANDLES)
    elif kind is AttributeType.STRING:
        options["pattern"] = draw(st.none() | st.sampled_from(_PATTERNS))
        options["check_digit"] = draw(st.sampled_from((None, "gs1", "vin")))
    multiple = draw(st.booleans())
    max_length = draw(st.none() | st.integers(1, 4000))
    return Attribute(
        key=key,
        index=index,
        name_zh=name_zh,
        type=kind,
        name_en=draw(_TEXT),
        definition=draw(_TEXT),
        required=draw(st.booleans()),
        unique=not multiple and draw(st.booleans()),
        enabled=draw(st.booleans()),
        min_length=draw(st.integers(0, max_length or 38)) if max_length else 0,
        max_length=max_length,
        multiple=multiple,
        max_items=draw(st.integers(1, 1000)) if multiple else None,
        **options,
    )


@st.composite
def templates(draw: st.DrawFn, status: TemplateStatus | None = None) -> Template:
    """Any valid template version."""
    keys = draw(st.lists(_KEYS, max_size=6, unique_by=str.casefold))
    names = draw(st.lists(st.text(_CJK, min_size=1, max_size=8), min_size=len(keys),
                          max_size=len(keys), unique=True))  # fmt: skip
    indexes = sorted(draw(st.lists(st.integers(2000, 2_000_000), min_size=len(keys),
                                   max_size=len(keys), unique=True)))  # fmt: skip
    attrs = [draw(attributes(k, i, n)) for k, i, n in zip(keys, indexes, names, strict=True)]
    return Template(
        id=draw(_HANDLES),
        version=draw(st.integers(1, 899)),
        name_zh=draw(st.text(_CJK, min_size=1, max_size=20)),
        attributes=tuple(attrs),
        status=status or draw(st.sampled_from(TemplateStatus)),
        name_en=draw(_TEXT),
        description=draw(_TEXT),
        industry=draw(st.none() | st.sampled_from(_INDUSTRIES)),
        object_type=draw(st.sampled_from((1, 2))),
    )


@st.composite
def histories(draw: st.DrawFn) -> TemplateHistory:
    """A history of 1 to 4 versions sharing one definition (older ones published or
    withdrawn, the newest anything), each with at least one enabled attribute."""
    base = draw(templates())
    if not base.enabled_attributes():
        base = base.with_attributes((Attribute("a", 2000, "甲"),))
    count = draw(st.integers(1, 4))
    old = st.sampled_from((TemplateStatus.PUBLISHED, TemplateStatus.WITHDRAWN))
    versions = [base.replace(version=n, status=draw(old)) for n in range(1, count)]
    versions.append(base.replace(version=count, status=draw(st.sampled_from(TemplateStatus))))
    return TemplateHistory(tuple(versions))
