"""Templates as SNMS-shaped JSON."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given

from idnode.industry.model import AttributeType, Industry, InvalidTemplate, Template, TemplateStatus
from idnode.industry.template_json import (
    template_from_bytes,
    template_from_json,
    template_to_bytes,
    template_to_json,
)
from tests.industry.strategies import templates


@given(templates())
def test_json_round_trip(template: Template) -> None:
    assert template_from_json(template_to_json(template)) == template
    text = json.dumps(template_to_json(template), ensure_ascii=False)
    assert template_from_json(json.loads(text)) == template
    assert template_from_bytes(template_to_bytes(template)) == template


#: The request example of SNMS v3 "新增数据模板" (create a data template), plus a handle.
SNMS_BODY = {
    "prefix": "88.101.5",
    "version": "1",
    "industryCategory": "A",
    "industrySpecific": "01",
    "industryTrade": "011",
    "industrySubclass": "0111",
    "type": 1,
    "description": "测试模板",
    "name": "测试模板",
    "items": [
        {
            "name": "e1",
            "idType": "ip",
            "metadata": {"type": "string", "minLength": 1, "maxLength": 10},
            "required": False,
        }
    ],
}


def test_reads_an_snms_body() -> None:
    t = template_from_json(SNMS_BODY, handle="88.101.5/META_1")
    assert t.id == "88.101.5/META_1"
    assert t.version == 1
    assert t.status is TemplateStatus.DRAFT
    assert t.industry == Industry("A", "01", "011", "0111")
    assert t.object_type == 1
    (item,) = t.attributes
    assert (item.key, item.index, item.name_zh, item.type) == ("ip", 2000, "e1", "string")
    assert (item.min_length, item.max_length, item.required, item.enabled) == (1, 10, False, True)


def test_output_shape() -> None:
    t = template_from_json(SNMS_BODY, handle="88.101.5/META_1")
    out = template_to_json(t)
    assert out == {
        "handle": "88.101.5/META_1",
        "prefix": "88.101.5",
        "version": 1,
        "metaState": 0,
        "name": "测试模板",
        "englishName": "",
        "description": "测试模板",
        "type": 1,
        "industryCategory": "A",
        "industrySpecific": "01",
        "industryTrade": "011",
        "industrySubclass": "0111",
        "items": [
            {
                "idIndex": 2000,
                "idType": "ip",
                "name": "e1",
                "englishName": "",
                "definition": "",
                "required": False,
                "uniqueField": False,
                "state": 1,
                "metadata": {"type": "string", "minLength": 1, "maxLength": 10},
            }
        ],
    }


def test_idhub_style_flags_and_extensions() -> None:
    body: dict[str, Any] = {
        "handle": "88.118.8/META_PV",
        "version": 3,
        "metaState": 2,
        "name": "光伏组件",
        "items": [
            {"idIndex": 2005, "idType": "b", "name": "乙", "required": 1, "uniqueField": 1},
            {
                "idType": "power",
                "name": "功率",
                "state": 0,
                "metadata": {"type": "number", "accuracy": "1", "minimum": 0, "maximum": "800.5"},
            },
            {"idType": "d", "name": "丁", "metadata": {"type": "date", "dateFormat": "YYMMDD"}},
            {
                "idType": "parts",
                "name": "部件",
                "metadata": {
                    "type": "reference",
                    "referenceMetaHandle": "88.118.8/META_CELL",
                    "multiple": True,
                    "maxItems": 10,
                },
            },
        ],
    }
    t = template_from_json(body)
    assert t.status is TemplateStatus.WITHDRAWN
    b, power, d, parts = t.attributes
    assert (b.index, b.required, b.unique) == (2005, True, True)
    assert (power.index, power.enabled, power.precision) == (2006, False, 1)
    assert (power.minimum, power.maximum) == (Decimal(0), Decimal("800.5"))
    assert (d.index, d.type, d.date_format) == (2007, AttributeType.DATE, "YYMMDD")
    assert (parts.reference_template, parts.multiple, parts.max_items) == (
        "88.118.8/META_CELL",
        True,
        10,
    )
    assert template_to_json(t)["items"][1]["metadata"] == {
        "type": "number",
        "minLength": 0,
        "maxLength": 38,
        "accuracy": 1,
        "minimum": "0",
        "maximum": "800.5",
    }


def test_unknown_members_are_ignored() -> None:
    body = {**SNMS_BODY, "id": 177, "handle": "88.101.5/META_1"}
    assert template_from_json(body).id == "88.101.5/META_1"


_BASE: dict[str, Any] = {"handle": "88.1.1/META", "version": 1, "name": "模板"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "expected a JSON object"),
        ({"version": 1, "name": "模板"}, "handle: missing"),
        ({**_BASE, "prefix": "88.1.2"}, "prefix"),
        ({**_BASE, "version": "1.0.1"}, "version: expected an integer"),
        ({**_BASE, "version": True}, "version: expected an integer"),
        ({**_BASE, "metaState": 5}, "metaState"),
        ({**_BASE, "name": 5}, "name: expected a string"),
        ({**_BASE, "items": {}}, "items: expected an array"),
        ({**_BASE, "industryCategory": "C"}, "all four or none"),
        ({**_BASE, "items": [5]}, r"items\[0\]: expected a JSON object"),
        ({**_BASE, "items": [{"name": "甲"}]}, r"items\[0\].idType: expected a string"),
        ({**_BASE, "items": [{"idType": "a", "name": "甲", "required": 2}]}, "0/1"),
        (
            {**_BASE, "items": [{"idType": "a", "name": "甲", "metadata": {"type": "String"}}]},
            r"items\[0\].metadata.type: expected one of",
        ),
        (
            {**_BASE, "items": [{"idType": "a", "name": "甲", "metadata": {"checkDigit": "x"}}]},
            "checkDigit",
        ),
        (
            {
                **_BASE,
                "items": [
                    {"idType": "a", "name": "甲", "metadata": {"type": "number", "minimum": "x"}}
                ],
            },
            r"minimum: expected a number",
        ),
        (
            {
                **_BASE,
                "items": [
                    {"idType": "a", "name": "甲", "metadata": {"type": "number", "maximum": "Inf"}}
                ],
            },
            "finite",
        ),
    ],
)
def test_bad_json(body: Any, message: str) -> None:
    with pytest.raises(InvalidTemplate, match=message):
        template_from_json(body)


def test_handle_argument_must_agree() -> None:
    with pytest.raises(InvalidTemplate, match="is not the template"):
        template_from_json(_BASE, handle="88.1.1/OTHER")
    assert template_from_json(_BASE, handle="88.1.1/META").id == "88.1.1/META"


def test_bytes_must_be_utf8_json() -> None:
    with pytest.raises(InvalidTemplate, match="not UTF-8 JSON"):
        template_from_bytes(b"\xff{")
    with pytest.raises(InvalidTemplate, match="not UTF-8 JSON"):
        template_from_bytes(b"{")
