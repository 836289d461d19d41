"""Templates and instances as handle values."""

from __future__ import annotations

import pytest
from hypothesis import given

from idnode.industry.codes import Code, FieldError
from idnode.industry.history import TemplateHistory
from idnode.industry.layout import DEFINITION_TYPE, TEMPLATE_RECORD_TYPE
from idnode.industry.model import Attribute, InvalidTemplate, Template, TemplateStatus
from idnode.industry.records import (
    history_from_values,
    history_to_values,
    is_template_record,
    link_values,
    template_link,
    values_from_fields,
    with_template_link,
)
from idnode.industry.template_json import template_to_bytes
from idnode.protocol.values import HandleValue, decode_record, encode_record
from tests.industry.strategies import histories

T = Template(
    "88.118.8/META_T",
    2,
    "模板",
    (Attribute("serial", 2000, "序列号"), Attribute("power", 2001, "功率")),
    TemplateStatus.PUBLISHED,
)


@given(histories())
def test_history_round_trip(history: TemplateHistory) -> None:
    values = history_to_values(history)
    assert is_template_record(values)
    assert template_link(values) is None  # a template's record is no instance
    assert history_from_values(history.id, values) == history
    wire = decode_record(encode_record(values))  # as stored and sent
    assert history_from_values(history.id, wire) == history


def test_template_record_layout() -> None:
    history = TemplateHistory((T.replace(version=1), T))
    marker, v1, v2 = history_to_values(history)
    assert (marker.index, marker.type, marker.data) == (1001, "TEMPLATE", b"0.TYPE/DO.DOIPMETA")
    assert (v1.index, v1.type) == (1101, DEFINITION_TYPE)
    assert (v2.index, v2.type, v2.data) == (1102, DEFINITION_TYPE, template_to_bytes(T))


def test_history_from_values_refuses_bad_records() -> None:
    marker = HandleValue(1001, "TEMPLATE", TEMPLATE_RECORD_TYPE.encode())
    misplaced = HandleValue(1105, DEFINITION_TYPE, template_to_bytes(T.replace(version=1)))
    foreign = HandleValue(1101, DEFINITION_TYPE, template_to_bytes(T.replace(version=1)))
    with pytest.raises(InvalidTemplate, match="not a template"):
        history_from_values(T.id, [foreign])
    with pytest.raises(InvalidTemplate, match="stored at index 1105"):
        history_from_values(T.id, [marker, misplaced])
    with pytest.raises(InvalidTemplate, match="is not the template"):
        history_from_values("88.118.8/OTHER", [marker, foreign])
    with pytest.raises(InvalidTemplate, match="at least one version"):
        history_from_values(T.id, [marker])
    # other values (HS_ADMIN, a description) are no concern of the template
    extra = HandleValue(100, "HS_ADMIN", b"\x00")
    assert history_from_values(T.id, [extra, marker, foreign]).latest == T.replace(version=1)


def test_link_values() -> None:
    link, version = link_values(T)
    assert (link.index, link.type, link.data) == (1001, "TEMPLATE", b"88.118.8/META_T")
    assert (version.index, version.type, version.data) == (1002, "TEMPLATE.VERSION", b"2")
    assert template_link([link, version]) == ("88.118.8/META_T", 2)
    assert template_link([link]) == ("88.118.8/META_T", None)
    assert template_link([link, HandleValue(1002, "TEMPLATE.VERSION", b"x")]) == (T.id, None)
    assert template_link([HandleValue(1001, "TEMPLATE", b"\xff")]) is None
    assert template_link([version]) is None


def test_with_template_link_replaces_the_link() -> None:
    stale = [
        HandleValue(2000, "serial", b"A1"),
        HandleValue(1001, "TEMPLATE", b"88.118.8/OLD"),
        HandleValue(1002, "TEMPLATE.VERSION", b"1"),
        HandleValue(1, "URL", b"https://example.com"),
    ]
    fixed = with_template_link(stale, T)
    assert [v.index for v in fixed] == [1, 1001, 1002, 2000]
    assert template_link(fixed) == (T.id, 2)


def test_values_from_fields() -> None:
    url = HandleValue(1, "URL", b"https://example.com/a")
    values, errors = values_from_fields(T, {"POWER": "550", "serial": "A1", "x": "y"}, extra=[url])
    assert [(v.index, v.type, v.data) for v in values] == [
        (1, "URL", b"https://example.com/a"),
        (1001, "TEMPLATE", b"88.118.8/META_T"),
        (1002, "TEMPLATE.VERSION", b"2"),
        (2000, "serial", b"A1"),
        (2001, "power", b"550"),  # the attribute's own spelling
    ]
    assert errors == [
        FieldError("x", Code.UNKNOWN_ATTRIBUTE, "88.118.8/META_T has no attribute 'x'")
    ]
