"""Validation: every bad input is refused with the right per-field error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from decimal import Decimal

import pytest

from idnode.industry.codes import Code, FieldError
from idnode.industry.history import TemplateHistory
from idnode.industry.model import Attribute, AttributeType, Template, TemplateStatus
from idnode.industry.records import link_values, values_from_fields
from idnode.industry.validate import Mode, check_values, validate
from idnode.protocol.values import HandleValue
from tests.industry.lookups import InMemoryLookups

A = AttributeType
PARENT_TEMPLATE = "88.118.8/META_P"
T = Template(
    "88.118.8/META_T",
    2,
    "测试模板",
    (
        Attribute("serial", 2000, "序列号", required=True, unique=True, pattern="[A-Z]{2}[0-9]{4}"),
        Attribute("power", 2001, "功率", A.NUMBER, precision=1, minimum=Decimal(0),
                  maximum=Decimal(800)),
        Attribute("made", 2002, "生产日期", A.DATE),
        Attribute("parent", 2003, "上级", A.REFERENCE, reference_template=PARENT_TEMPLATE),
        Attribute("site", 2004, "网址", A.URL),
        Attribute("report", 2005, "报告", A.FILE),
        Attribute("old", 2006, "旧属性", enabled=False),
        Attribute("gtin", 2007, "GTIN", check_digit="gs1"),
        Attribute("parts", 2008, "部件", A.REFERENCE, multiple=True, max_items=3),
        Attribute("note", 2009, "备注", min_length=2, max_length=10),
        Attribute("owner", 2010, "所有人", A.REFERENCE),
    ),
    TemplateStatus.PUBLISHED,
    name_en="Test template",
)  # fmt: skip
HANDLE = "88.118.8/ITEM-1"
GOOD = {
    "serial": "AB1234",
    "power": "550.5",
    "made": "2026-03-31",
    "parent": "88.118.8/P-1",
    "site": "https://example.com/item/1",
    "report": "s3://reports/item-1.pdf",
    "gtin": "06912345678902",
    "parts": '["88.118.8/P-1","88.118.9/X-1"]',
    "note": "ok",
}


def lookups() -> InMemoryLookups:
    """P-1 (template META_P), X-1 (template META_X), and ITEM-9 using serial ZZ9999."""
    store = InMemoryLookups()
    store.add("88.118.8/P-1", [HandleValue(1001, "TEMPLATE", PARENT_TEMPLATE.encode())])
    store.add("88.118.9/X-1", [HandleValue(1001, "TEMPLATE", b"88.118.8/META_X")])
    store.add("88.118.8/ITEM-9", [*link_values(T), HandleValue(2000, "serial", b"ZZ9999")])
    return store


def record(**changes: str | None) -> list[HandleValue]:
    fields = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    values, errors = values_from_fields(T, fields)
    assert not errors
    return values


def run(
    values: Sequence[HandleValue],
    template: Template = T,
    mode: Mode = Mode.CREATE,
    previous: Sequence[HandleValue] = (),
) -> list[FieldError]:
    return asyncio.run(validate(template, HANDLE, values, lookups(), mode=mode, previous=previous))


def codes(errors: list[FieldError]) -> list[tuple[str, Code]]:
    return [(e.field, e.code) for e in errors]


def test_a_conforming_record_passes() -> None:
    assert run(record()) == []
    assert check_values(T, record()) == []
    # optional attributes may be absent or empty; Handle-system values are not governed
    admin = HandleValue(100, "HS_ADMIN", b"\x00\x0f")
    assert run([*record(power=None, made=""), admin, HandleValue(1, "URL", b"x")]) == []


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"serial": None}, "serial", Code.REQUIRED),
        ({"serial": ""}, "serial", Code.REQUIRED),
        ({"serial": "ab1234"}, "serial", Code.PATTERN),
        ({"power": "5.25"}, "power", Code.PRECISION),
        ({"power": "1e3"}, "power", Code.TYPE),
        ({"power": "NaN"}, "power", Code.TYPE),
        ({"power": "800.1"}, "power", Code.RANGE),
        ({"power": "-1"}, "power", Code.RANGE),
        ({"made": "2026-02-30"}, "made", Code.DATE_FORMAT),
        ({"made": "31/03/2026"}, "made", Code.DATE_FORMAT),
        ({"parent": "not a handle"}, "parent", Code.TYPE),
        ({"site": "ftp://example.com/x"}, "site", Code.TYPE),
        ({"site": "https:///nohost"}, "site", Code.TYPE),
        ({"report": "file:///etc/passwd"}, "report", Code.TYPE),
        ({"old": "anything"}, "old", Code.DISABLED),
        ({"gtin": "06912345678903"}, "gtin", Code.CHECK_DIGIT),
        ({"parts": "88.118.8/P-1"}, "parts", Code.TYPE),
        ({"parts": '["a/1", 2]'}, "parts", Code.TYPE),
        ({"parts": json.dumps(["a/1", "a/2", "a/3", "a/4"])}, "parts", Code.TOO_MANY),
        ({"parts": '["88.118.8/P-1", "nohandle"]'}, "parts", Code.TYPE),
        ({"note": "x"}, "note", Code.TOO_SHORT),
        ({"note": "x" * 11}, "note", Code.TOO_LONG),
    ],
)
def test_local_errors(changes: dict[str, str | None], field: str, code: Code) -> None:
    errors = run(record(**changes))
    assert codes(errors) == [(field, code)]
    assert errors[0].index == T.attribute(field).index  # type: ignore[union-attr]
    assert check_values(T, record(**changes)) == errors


def test_multi_valued_errors_name_the_item() -> None:
    (error,) = run(record(parts='["88.118.8/P-1", "nohandle"]'))
    assert error.message.startswith("item 2: ")


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"parent": "88.118.8/NOPE"}, "parent", Code.REFERENCE_MISSING),
        ({"parent": "88.118.9/X-1"}, "parent", Code.REFERENCE_TEMPLATE),
        ({"parts": '["88.118.8/P-1","88.118.8/GONE"]'}, "parts", Code.REFERENCE_MISSING),
        ({"owner": "88.118.8/NOPE"}, "owner", Code.REFERENCE_MISSING),
        ({"serial": "ZZ9999"}, "serial", Code.UNIQUE),
    ],
)
def test_lookup_errors(changes: dict[str, str], field: str, code: Code) -> None:
    assert codes(run(record(**changes))) == [(field, code)]
    assert check_values(T, record(**changes)) == []  # only lookups can tell


def test_unique_ignores_the_identifier_itself() -> None:
    store = lookups()
    mine = record(serial="ZZ9999")
    errors = asyncio.run(validate(T, "88.118.8/ITEM-9", mine, store, mode=Mode.UPDATE))
    assert errors == []


def test_an_empty_list_is_no_value() -> None:
    bom = Attribute("bom", 2000, "物料清单", A.REFERENCE, required=True, multiple=True)
    template = T.replace(attributes=(bom,))
    empty = [*link_values(template), HandleValue(2000, "bom", b" [ ] ")]
    assert codes(run(empty, template)) == [("bom", Code.REQUIRED)]
    one = [*link_values(template), HandleValue(2000, "bom", b'["88.118.8/P-1"]')]
    assert run(one, template) == []


def test_unknown_and_mismatched_values() -> None:
    values = [v for v in record() if v.type not in ("note", "parent")] + [
        HandleValue(2050, "color", b"red"),  # in no attribute
        HandleValue(2051, "note", b"hi"),  # 'note' lives at 2009
        HandleValue(2003, "mother", b"88.118.8/P-1"),  # 2003 is 'parent'
    ]
    errors = run(values)
    assert codes(errors) == [
        ("mother", Code.INDEX_MISMATCH),
        ("color", Code.UNKNOWN_ATTRIBUTE),
        ("note", Code.INDEX_MISMATCH),
    ]
    assert "attribute 'note' is at index 2009, not 2051" in errors[2].message


def test_misplaced_required_value_is_not_also_missing() -> None:
    values = [v for v in record() if v.type != "serial"] + [HandleValue(2099, "serial", b"AB1")]
    assert codes(run(values)) == [("serial", Code.INDEX_MISMATCH)]


def test_type_is_matched_exactly() -> None:
    values = [v for v in record() if v.type != "serial"] + [HandleValue(2000, "SERIAL", b"AB1")]
    assert codes(run(values)) == [("SERIAL", Code.INDEX_MISMATCH)]


def test_duplicates_and_encoding() -> None:
    values = [*record(), HandleValue(2002, "made", b"2026-01-01")]
    assert codes(run(values)) == [("made", Code.DUPLICATE)]
    bad = [v for v in record() if v.type != "note"] + [HandleValue(2009, "note", b"\xff\xfe")]
    assert codes(run(bad)) == [("note", Code.TYPE)]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (HandleValue(1000, "X", b""), Code.RESERVED_INDEX),
        (HandleValue(1500, "DESC", b"x"), Code.RESERVED_INDEX),
        (HandleValue(5, "TEMPLATE", b"88.118.8/META_X"), Code.RESERVED_INDEX),
        (HandleValue(7, "template.version", b"1"), Code.RESERVED_INDEX),
    ],
)
def test_reserved_indexes(value: HandleValue, code: Code) -> None:
    assert codes(run([*record(), value])) == [(value.type, code)]


def test_template_link() -> None:
    unlinked = [v for v in record() if v.index not in (1001, 1002)]
    assert codes(run(unlinked)) == [("TEMPLATE", Code.TEMPLATE_LINK)]  # 1002 is optional
    other = [v for v in unlinked] + [HandleValue(1001, "TEMPLATE", b"88.118.8/META_X")]
    (error,) = run(other)
    assert (error.code, error.index) == (Code.TEMPLATE_LINK, 1001)
    wrong_type = [*unlinked, HandleValue(1001, "TEMPLATE_ID", T.id.encode())]
    assert codes(run(wrong_type)) == [("TEMPLATE", Code.TEMPLATE_LINK)]
    old = [*unlinked, link_values(T)[0], HandleValue(1002, "TEMPLATE.VERSION", b"1")]
    assert codes(run(old)) == [("TEMPLATE", Code.TEMPLATE_VERSION)]


def test_template_state() -> None:
    draft = T.replace(status=TemplateStatus.DRAFT)
    withdrawn = T.replace(status=TemplateStatus.WITHDRAWN)
    assert codes(run(record(), draft)) == [("TEMPLATE", Code.TEMPLATE_STATE)]
    assert codes(run(record(), draft, Mode.UPDATE)) == [("TEMPLATE", Code.TEMPLATE_STATE)]
    (error,) = run(record(), withdrawn)
    assert (error.code, error.index) == (Code.TEMPLATE_STATE, None)
    assert "withdrawn" in error.message
    # withdrawal keeps existing data valid: it may still be modified
    assert run(record(note="changed"), withdrawn, Mode.UPDATE) == []


def test_errors_are_all_reported_in_index_order() -> None:
    values = record(serial=None, power="x", made="never", note="x")
    values = [v for v in values if v.index != 1001]
    assert codes(run(values)) == [
        ("TEMPLATE", Code.TEMPLATE_LINK),
        ("serial", Code.REQUIRED),
        ("power", Code.TYPE),
        ("made", Code.DATE_FORMAT),
        ("note", Code.TOO_SHORT),
    ]


def test_unchanged_values_stay_valid_under_a_newer_version() -> None:
    """v1 had 'color' and a looser 'note'; v2 disables 'color' and tightens 'note'."""
    v1 = T.replace(
        version=1,
        attributes=(*T.attributes[:9], Attribute("note", 2009, "备注"), *T.attributes[10:],
                    Attribute("color", 2011, "颜色")),
    )  # fmt: skip
    history = TemplateHistory.start(v1.replace(status=TemplateStatus.DRAFT)).publish()
    history = history.new_version().disable_attribute("color")
    history = history.update_attribute("note", min_length=2, max_length=10).publish()
    v2 = history.for_write()
    assert v2.version == 2
    old_values, _ = values_from_fields(v1, {**GOOD, "note": "a long old note", "color": "red"})
    new_values = [*link_values(v2), *(v for v in old_values if v.index >= 2000)]
    new_values = [v for v in new_values if v.type != "power"]  # the change itself
    assert run(new_values, v2, Mode.UPDATE, previous=old_values) == []
    # without the old record to compare against, both values are refused
    assert codes(run(new_values, v2, Mode.UPDATE)) == [
        ("note", Code.TOO_LONG),
        ("color", Code.DISABLED),
    ]
    # a changed value is checked
    changed = [v for v in new_values if v.type != "color"] + [HandleValue(2011, "color", b"x")]
    assert codes(run(changed, v2, Mode.UPDATE, previous=old_values)) == [("color", Code.DISABLED)]


def test_field_error_json() -> None:
    error = FieldError("power", Code.RANGE, "too big", 2001)
    assert error.to_json() == {
        "field": "power",
        "code": "range",
        "message": "too big",
        "index": 2001,
    }
    assert FieldError("TEMPLATE", Code.TEMPLATE_STATE, "draft").to_json() == {
        "field": "TEMPLATE",
        "code": "template_state",
        "message": "draft",
    }
