"""Template and Attribute invariants, checked at construction."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from idnode.errors import InvalidValue
from idnode.industry.model import (
    Attribute,
    AttributeType,
    Industry,
    InvalidTemplate,
    Template,
    TemplateStatus,
    is_handle,
)


def test_defaults_are_filled_in() -> None:
    assert Attribute("s", 2000, "甲").max_length == 4000
    assert Attribute("n", 2000, "甲", AttributeType.NUMBER).max_length == 38
    assert Attribute("r", 2000, "甲", AttributeType.REFERENCE).max_length == 255
    date = Attribute("d", 2000, "甲", AttributeType.DATE)
    assert date.date_format == "YYYY-MM-DD"
    assert Attribute("m", 2000, "甲", multiple=True).max_items == 100


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": "1abc"}, "a key is a letter"),
        ({"key": "HS_ADMIN"}, "reserved"),
        ({"key": "TEMPLATE"}, "reserved"),
        ({"key": "template.version"}, "reserved"),
        ({"index": 1001}, "not a data index"),
        ({"name_zh": ""}, "Chinese name"),
        ({"name_en": "x" * 51}, "English name"),
        ({"min_length": 5, "max_length": 4}, "lengths"),
        ({"max_length": 4001}, "lengths"),
        ({"precision": 2}, "precision applies to number"),
        ({"date_format": "YYYY"}, "dateFormat applies to date"),
        ({"reference_template": "88.1/META"}, "referenceMetaHandle applies"),
        ({"type": AttributeType.NUMBER, "pattern": "x"}, "pattern applies to string"),
        ({"type": AttributeType.DATE, "check_digit": "gs1"}, "checkDigit applies"),
        ({"type": AttributeType.NUMBER, "precision": 39}, "precision must be"),
        ({"type": AttributeType.NUMBER, "minimum": Decimal(2), "maximum": Decimal(1)}, "minimum"),
        ({"type": AttributeType.NUMBER, "minimum": Decimal("NaN")}, "finite"),
        ({"type": AttributeType.DATE, "date_format": "QQ"}, "unknown letter"),
        ({"type": AttributeType.REFERENCE, "reference_template": "nohandle"}, "a handle"),
        ({"pattern": "("}, "bad pattern"),
        ({"pattern": "x" * 201}, "pattern"),
        ({"check_digit": "luhn"}, "checkDigit must be"),
        ({"multiple": True, "unique": True}, "cannot be unique"),
        ({"multiple": True, "max_items": 0}, "maxItems"),
        ({"max_items": 3}, "needs a multi-valued"),
    ],
)
def test_bad_attributes(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"key": "k", "index": 2000, "name_zh": "甲", **kwargs}
    with pytest.raises(InvalidTemplate, match=message):
        Attribute(**args)


def test_invalid_template_is_an_invalid_value() -> None:
    # so the dispatcher answers RC_INVALID_VALUE for it
    assert issubclass(InvalidTemplate, InvalidValue)


def _template(**kwargs: Any) -> Template:
    args: dict[str, Any] = {"id": "88.118.8/META_T", "version": 1, "name_zh": "模板", **kwargs}
    return Template(**args)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"id": "META_T"}, "not a handle"),
        ({"id": "88 1/META"}, "not a handle"),
        ({"version": 0}, "version must be"),
        ({"version": 900}, "version must be"),
        ({"name_zh": ""}, "Chinese name"),
        ({"description": "x" * 1001}, "description"),
        ({"object_type": 3}, "type must be"),
        (
            {"attributes": (Attribute("a", 2000, "甲"), Attribute("b", 2000, "乙"))},
            "index 2000",
        ),
        ({"attributes": (Attribute("a", 2000, "甲"), Attribute("A", 2001, "乙"))}, "key 'A'"),
        ({"attributes": (Attribute("a", 2000, "甲"), Attribute("b", 2001, "甲"))}, "Chinese"),
    ],
)
def test_bad_templates(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTemplate, match=message):
        _template(**kwargs)


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        (("3", "38", "382", "3825"), "letter"),
        (("C", "3", "382", "3825"), "2 digits"),
        (("C", "38", "392", "3825"), "does not extend"),
        (("C", "38", "382", "3925"), "does not extend"),
    ],
)
def test_bad_industry(codes: tuple[str, str, str, str], message: str) -> None:
    with pytest.raises(InvalidTemplate, match=message):
        Industry(*codes)


def test_lookups_and_helpers() -> None:
    a, b = Attribute("serialNumber", 2000, "序列号"), Attribute("power", 2005, "功率")
    t = _template(attributes=(a, b), status=TemplateStatus.PUBLISHED)
    assert t.prefix == "88.118.8"
    assert t.attribute("SERIALNUMBER") is a
    assert t.attribute("nope") is None
    assert t.at_index(2005) is b
    assert t.at_index(2001) is None
    assert t.next_index() == 2006
    assert _template().next_index() == 2000
    assert t.replace(name_zh="新") == _template(
        attributes=(a, b), status=TemplateStatus.PUBLISHED, name_zh="新"
    )
    disabled = t.with_attributes((a, b.replace(enabled=False)))
    assert disabled.enabled_attributes() == (a,)
    assert hash(t) == hash(_template(attributes=(a, b), status=TemplateStatus.PUBLISHED))


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("88.118.8/PV-1", True),
        ("88.118.8/a b", True),
        ("88.118.8/", False),
        ("/x", False),
        ("88 118/x", False),
        ("88.1/x\n", False),
        ("88.1/" + "x" * 251, False),
    ],
)
def test_is_handle(text: str, ok: bool) -> None:
    assert is_handle(text) is ok
