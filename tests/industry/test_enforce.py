"""The template guard (:mod:`idnode.industry.enforce`) against a real SQLite store: template
records and their version rules, instances and their version link, index entries, the
template cache, batches, and the error summary the native protocol carries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from idnode.errors import InvalidValue, UniqueValueTaken
from idnode.industry.codes import Code, FieldError, TemplateViolation, parse_summary, summary
from idnode.industry.directory import Pending
from idnode.industry.enforce import TemplateGuard, WritePlan, index_entries
from idnode.industry.history import TemplateHistory
from idnode.industry.model import Attribute, AttributeType, Template, TemplateStatus
from idnode.industry.records import history_to_values, link_values
from idnode.industry.template_json import template_to_bytes
from idnode.protocol.values import HandleValue
from idnode.store import open_store
from idnode.store.base import HandleStore, handle_key, prefix_of
from idnode.store.writectx import IndexEntry, IndexKind, WriteContext, write_context

PART = "88.118.8/META_E_PART"
LOT = "88.118.8/META_E_LOT"


def lot_template() -> Template:
    return Template(
        LOT,
        1,
        "批次",
        (Attribute("lotNo", 2000, "批次号", required=True),),
        TemplateStatus.PUBLISHED,
    )


def part_template(status: TemplateStatus = TemplateStatus.PUBLISHED) -> Template:
    return Template(
        PART,
        1,
        "零件",
        (
            Attribute("serial", 2000, "序列号", required=True, unique=True, max_length=16),
            Attribute("power", 2001, "功率", AttributeType.NUMBER, precision=1,
                      minimum=Decimal(0), maximum=Decimal(1000)),
            Attribute("lot", 2002, "批次", AttributeType.REFERENCE, reference_template=LOT),
            Attribute("parts", 2003, "部件", AttributeType.REFERENCE, multiple=True),
            Attribute("legacy", 2004, "旧字段", enabled=False),
        ),
        status,
    )  # fmt: skip


def text(index: int, vtype: str, data: str) -> HandleValue:
    return HandleValue(index, vtype, data.encode())


def instance(
    template: Template, fields: dict[str, str], *, version: bool = False
) -> list[HandleValue]:
    """An instance's values: URL at 1, the 1001 link (and 1002 if ``version``), the fields."""
    link = link_values(template) if version else link_values(template)[:1]
    values = [text(1, "URL", "https://example.com/x"), *link]
    for key, data in fields.items():
        attr = template.attribute(key)
        values.append(text(attr.index if attr else 2999, key, data))
    return sorted(values, key=lambda v: v.index)


def codes(exc: pytest.ExceptionInfo[TemplateViolation]) -> list[tuple[str, Code]]:
    return [(e.field, e.code) for e in exc.value.errors]


class Env:
    """A SQLite store with the lot and part templates and one lot, and a guard on it."""

    def __init__(self, store: HandleStore, guard: TemplateGuard) -> None:
        self.store = store
        self.guard = guard

    async def put(self, handle: str, values: Sequence[HandleValue]) -> WritePlan:
        """Check ``handle`` as a create/overwrite and write it with its index entries."""
        before = await self.store.get_handle(handle)
        plan = await self.guard.check(handle, before, values, given=values, timestamp=7)
        index = {handle: plan.entries} if plan.template is not None else {}
        with write_context(WriteContext(actor="test", index=index)):
            await self.store.create_handle(handle, plan.values or (), overwrite=True)
        self.guard.written(handle)
        return plan


@asynccontextmanager
async def environment(tmp_path: Path, **guard_options: Any) -> AsyncIterator[Env]:
    store = await open_store(tmp_path / "enforce.db")
    await store.home_prefix("88.118.8")

    async def is_local(handle: str) -> bool:
        return await store.is_homed(prefix_of(handle))

    guard = TemplateGuard(store, is_local=is_local, **guard_options)
    env = Env(store, guard)
    try:
        await env.put(LOT, history_to_values(TemplateHistory.start(lot_template())))
        await env.put(PART, history_to_values(TemplateHistory.start(part_template())))
        await env.put("88.118.8/LOT-1", instance(lot_template(), {"lotNo": "L1"}))
        yield env
    finally:
        await store.close()


def run(tmp_path: Path, test: Callable[[Env], Coroutine[Any, Any, None]], **options: Any) -> None:
    async def go() -> None:
        async with environment(tmp_path, **options) as env:
            await test(env)

    asyncio.run(go())


ONE_MISSING = '["88.118.8/LOT-1", "88.118.8/NOPE"]'
GOOD = {"serial": "S-1", "power": "500.5", "lot": "88.118.8/LOT-1", "parts": '["88.118.8/LOT-1"]'}


# -- instances -----------------------------------------------------------------------------------


def test_a_registration_gets_its_version_link_and_index_entries(tmp_path: Path) -> None:
    async def test(env: Env) -> None:
        plan = await env.put("88.118.8/P-1", instance(part_template(), GOOD))
        assert plan.template is not None and plan.template.version == 1
        assert plan.rewritten
        stored = await env.store.get_handle("88.118.8/P-1")
        assert stored is not None
        version = next(v for v in stored if v.index == 1002)
        assert (version.type, version.data, version.timestamp) == ("TEMPLATE.VERSION", b"1", 7)
        unique = f"{handle_key(PART)} serial S-1"
        assert plan.entries == {
            IndexEntry(IndexKind.REFERENCE, "88.118.8/LOT-1", "lot"),
            IndexEntry(IndexKind.REFERENCE, "88.118.8/LOT-1", "parts"),
            IndexEntry(IndexKind.UNIQUE, unique, ""),
        }
        assert await env.store.lookup_unique(unique) == "88.118.8/P-1"
        assert await env.store.references("88.118.8/P-1") == [
            ("88.118.8/LOT-1", "lot"), ("88.118.8/LOT-1", "parts")
        ]  # fmt: skip

    run(tmp_path, test)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({**GOOD, "power": "5.25"}, [("power", Code.PRECISION)]),
        ({**GOOD, "power": "watts"}, [("power", Code.TYPE)]),
        ({**GOOD, "serial": "S" * 17}, [("serial", Code.TOO_LONG)]),
        ({**GOOD, "legacy": "x"}, [("legacy", Code.DISABLED)]),
        ({**GOOD, "colour": "red"}, [("colour", Code.UNKNOWN_ATTRIBUTE)]),
        ({k: v for k, v in GOOD.items() if k != "serial"}, [("serial", Code.REQUIRED)]),
        ({**GOOD, "lot": "88.118.8/NOPE"}, [("lot", Code.REFERENCE_MISSING)]),
        ({**GOOD, "lot": PART}, [("lot", Code.REFERENCE_TEMPLATE)]),
        ({**GOOD, "parts": ONE_MISSING}, [("parts", Code.REFERENCE_MISSING)]),
        ({**GOOD, "serial": "S-0"}, [("serial", Code.UNIQUE)]),
    ],
)  # fmt: skip
def test_bad_registrations_are_refused_per_field(
    tmp_path: Path, fields: dict[str, str], expected: list[tuple[str, Code]]
) -> None:
    async def test(env: Env) -> None:
        await env.put("88.118.8/P-0", instance(part_template(), {**GOOD, "serial": "S-0"}))
        with pytest.raises(TemplateViolation) as exc:
            await env.put("88.118.8/P-BAD", instance(part_template(), fields))
        assert codes(exc) == expected
        assert isinstance(exc.value, InvalidValue)
        assert await env.store.get_handle("88.118.8/P-BAD") is None

    run(tmp_path, test)


def test_template_problems_name_the_link(tmp_path: Path) -> None:
    async def test(env: Env) -> None:
        cases = {
            "88.118.8/META_NONE": Code.TEMPLATE_LINK,  # no such identifier
            "88.118.8/LOT-1": Code.TEMPLATE_LINK,  # not a template
            "99.9/META_ELSEWHERE": Code.TEMPLATE_UNAVAILABLE,  # another node, no resolver
        }
        for link, code in cases.items():
            values = [text(1001, "TEMPLATE", link), text(2000, "serial", "S-9")]
            with pytest.raises(TemplateViolation) as exc:
                await env.put("88.118.8/P-LINK", values)
            assert codes(exc) == [("TEMPLATE", code)], exc.value.message
            assert exc.value.errors[0].index == 1001
        with pytest.raises(TemplateViolation, match="no resolver"):
            await env.put("88.118.8/P-LINK", [text(1001, "TEMPLATE", "99.9/META_ELSEWHERE")])

    run(tmp_path, test)


def test_references_on_another_node_without_a_resolver_say_so(tmp_path: Path) -> None:
    async def test(env: Env) -> None:
        fields = {**GOOD, "parts": '["99.9/X"]'}
        with pytest.raises(TemplateViolation) as exc:
            await env.put("88.118.8/P-REMOTE", instance(part_template(), fields))
        (error,) = exc.value.errors
        assert (error.field, error.code) == ("parts", Code.REFERENCE_MISSING)
        assert "99.9/X cannot be checked" in error.message and "no resolver" in error.message

    run(tmp_path, test)


def test_unchanged_values_are_not_checked_again_and_the_link_follows_the_version(
    tmp_path: Path,
) -> None:
    """P-1 was registered with ``legacy`` enabled (version 1); version 2 disables it and caps
    power at 100. Changing the serial keeps both old values, and bumps 1002 to 2; a new
    power value is checked against version 2."""

    async def test(env: Env) -> None:
        enabled = part_template().with_attributes(
            a.replace(enabled=True) if a.key == "legacy" else a for a in part_template().attributes
        )
        history = TemplateHistory.start(enabled)
        await env.store.delete_handle(PART)  # the environment's version 1 has it disabled
        await env.put(PART, history_to_values(history))
        await env.put("88.118.8/P-1", instance(enabled, {**GOOD, "legacy": "old"}))
        second = history.new_version().disable_attribute("legacy")
        second = second.update_attribute("power", maximum=Decimal(100)).publish()
        await env.put(PART, history_to_values(second))

        before = await env.store.get_handle("88.118.8/P-1")
        assert before is not None
        after = [text(2000, "serial", "S-2") if v.index == 2000 else v for v in before]
        plan = await env.guard.check("88.118.8/P-1", before, after, given=after[1:2], timestamp=9)
        assert plan.rewritten and plan.template is not None and plan.template.version == 2
        assert next(v for v in plan.values or () if v.index == 1002).data == b"2"
        raised = [text(2001, "power", "500") if v.index == 2001 else v for v in before]
        with pytest.raises(TemplateViolation) as exc:
            await env.guard.check("88.118.8/P-1", before, raised)
        assert codes(exc) == [("power", Code.RANGE)]
        # The link cannot be dropped, nor a required value removed.
        unlinked = [v for v in before if v.index != 1001]
        with pytest.raises(TemplateViolation) as exc:
            await env.guard.check("88.118.8/P-1", before, unlinked)
        assert ("TEMPLATE", Code.TEMPLATE_LINK) in codes(exc)
        without_serial = [v for v in before if v.index != 2000]
        with pytest.raises(TemplateViolation) as exc:
            await env.guard.check("88.118.8/P-1", before, without_serial)
        assert codes(exc) == [("serial", Code.REQUIRED)]

    run(tmp_path, test)


def test_a_withdrawn_template_keeps_its_data_editable_but_takes_no_registrations(
    tmp_path: Path,
) -> None:
    async def test(env: Env) -> None:
        await env.put("88.118.8/P-1", instance(part_template(), GOOD))
        withdrawn = TemplateHistory.start(part_template()).withdraw()
        await env.put(PART, history_to_values(withdrawn))
        with pytest.raises(TemplateViolation) as exc:
            await env.put("88.118.8/P-2", instance(part_template(), {**GOOD, "serial": "S-2"}))
        assert codes(exc) == [("TEMPLATE", Code.TEMPLATE_STATE)]
        before = await env.store.get_handle("88.118.8/P-1")
        assert before is not None
        after = [text(2001, "power", "1.5") if v.index == 2001 else v for v in before]
        await env.put("88.118.8/P-1", after)

    run(tmp_path, test)


def test_records_without_a_template_pass_untouched(tmp_path: Path) -> None:
    async def test(env: Env) -> None:
        values = [text(1, "URL", "https://example.com"), text(2000, "anything", "goes")]
        plan = await env.guard.check("88.118.8/PLAIN", None, values)
        assert plan == WritePlan(tuple(values))
        assert await env.guard.check("88.118.8/PLAIN", values, None) == WritePlan(None)

    run(tmp_path, test)


# -- template records ------------------------------------------------------------------------


def test_template_records_follow_the_version_rules(tmp_path: Path) -> None:
    async def test(env: Env) -> None:
        published = TemplateHistory.start(part_template())
        stored = history_to_values(published)
        # A published version is immutable...
        changed = published.versions[0].replace(name_zh="改名")
        with pytest.raises(TemplateViolation) as exc:
            await env.put(PART, history_to_values(TemplateHistory((changed,))))
        assert codes(exc) == [("TEMPLATE.DEFINITION", Code.TEMPLATE_DEFINITION)]
        assert "immutable" in exc.value.message
        # ...attributes are never removed, versions never dropped, the marker stays.
        second = published.new_version()
        await env.put(PART, history_to_values(second))
        dropped = second.latest.with_attributes(second.latest.attributes[1:])
        definition = HandleValue(1102, "TEMPLATE.DEFINITION", template_to_bytes(dropped))
        with pytest.raises(TemplateViolation, match="cannot be removed"):
            await env.put(PART, [*stored, definition])
        with pytest.raises(TemplateViolation, match="never removed"):
            await env.put(PART, stored)
        with pytest.raises(TemplateViolation, match="stays"):
            await env.put(PART, [text(1, "URL", "https://example.com")])
        # A definition that does not parse, or names another template.
        bad = [*stored[:1], HandleValue(1101, "TEMPLATE.DEFINITION", b"{")]
        with pytest.raises(TemplateViolation, match="not UTF-8 JSON"):
            await env.guard.check("88.118.8/META_NEW", None, bad)
        with pytest.raises(TemplateViolation, match="is not the template"):
            await env.guard.check("88.118.8/META_NEW", None, stored)
        # Withdrawing and publishing again are allowed.
        withdrawn = second.publish().withdraw()
        await env.put(PART, history_to_values(withdrawn))
        await env.put(PART, history_to_values(withdrawn.publish()))

    run(tmp_path, test)


# -- the cache ---------------------------------------------------------------------------------


def test_the_cache_is_bounded_expires_and_is_invalidated_by_writes(tmp_path: Path) -> None:
    now = [0.0]

    async def test(env: Env) -> None:
        source = env.guard.templates
        await source.history(PART)
        await source.history(LOT)
        assert len(source) == 1  # size 1: the lot pushed the part out
        # A write elsewhere (straight into the store) is seen once the entry expires...
        await env.store.create_handle(
            LOT, history_to_values(TemplateHistory.start(lot_template()).withdraw()), overwrite=True
        )
        assert (await source.history(LOT)).latest.status is TemplateStatus.PUBLISHED
        now[0] += 61
        assert (await source.history(LOT)).latest.status is TemplateStatus.WITHDRAWN
        # ...and a write through this node at once.
        await env.put(LOT, history_to_values(TemplateHistory.start(lot_template())))
        assert (await source.history(LOT)).latest.status is TemplateStatus.PUBLISHED

    run(tmp_path, test, cache_size=1, max_age=60.0, clock=lambda: now[0])


# -- batches -------------------------------------------------------------------------------------


def test_a_batch_item_may_reference_but_not_collide_with_an_earlier_one(tmp_path: Path) -> None:
    async def test(env: Env) -> None:
        pending = Pending()
        lot = instance(lot_template(), {"lotNo": "L2"})
        await env.guard.check("88.118.8/LOT-2", None, lot, pending=pending)
        first = instance(part_template(), {**GOOD, "lot": "88.118.8/LOT-2"})
        await env.guard.check("88.118.8/P-A", None, first, pending=pending)
        with pytest.raises(TemplateViolation) as exc:
            await env.guard.check("88.118.8/P-B", None, first, pending=pending)
        assert codes(exc) == [("serial", Code.UNIQUE)]
        # Templates registered earlier in the batch apply to later items.
        other = "88.118.8/META_E_NEW"
        new_template = lot_template().replace(id=other)
        await env.guard.check(
            other, None, history_to_values(TemplateHistory.start(new_template)), pending=pending
        )
        await env.guard.check(
            "88.118.8/N-1", None, instance(new_template, {"lotNo": "x"}), pending=pending
        )

    run(tmp_path, test)


def test_a_unique_value_taken_after_the_check_becomes_the_field_error(tmp_path: Path) -> None:
    async def test(env: Env) -> None:
        values = instance(part_template(), GOOD)
        plan_a = await env.guard.check("88.118.8/P-A", None, values)
        plan_b = await env.guard.check("88.118.8/P-B", None, values)  # both checked first
        await env.put("88.118.8/P-A", values)
        with (
            pytest.raises(UniqueValueTaken) as taken,
            write_context(WriteContext(index={"88.118.8/P-B": plan_b.entries})),
        ):
            await env.store.create_handle("88.118.8/P-B", plan_b.values or ())
        violation = plan_b.unique_violation(taken.value)
        assert [(e.field, e.code, e.index) for e in violation.errors] == [
            ("serial", Code.UNIQUE, 2000)
        ]
        assert plan_a.unique_fields.keys() == plan_b.unique_fields.keys()
        assert await env.store.get_handle("88.118.8/P-B") is None

    run(tmp_path, test)


# -- the summary on the wire ---------------------------------------------------------------------


def test_the_summary_reads_back() -> None:
    errors = [
        FieldError("TEMPLATE", Code.TEMPLATE_STATE, "template x version 1 is a draft: publish it"),
        FieldError("power", Code.RANGE, "above the maximum\n100", 2001),
        FieldError("odd type: x", Code.UNKNOWN_ATTRIBUTE, "no such attribute", 2999),
    ]
    text_ = summary(errors)
    assert text_.splitlines() == [
        "template_state: TEMPLATE: template x version 1 is a draft: publish it",
        "range: power at 2001: above the maximum 100",
        "unknown_attribute: odd type: x at 2999: no such attribute",
    ]
    back = parse_summary(text_)
    assert [(e.code, e.index) for e in back] == [(e.code, e.index) for e in errors]
    assert [e.field for e in back][:2] == ["TEMPLATE", "power"]
    assert parse_summary("Handle already exists.") == []
    violation = TemplateViolation(errors)
    assert violation.message == text_
    assert violation.to_json()[1] == {
        "field": "power", "code": "range", "message": "above the maximum\n100", "index": 2001
    }  # fmt: skip
    with pytest.raises(ValueError):
        TemplateViolation([])


def test_index_entries_skip_values_of_other_attributes() -> None:
    template = part_template()
    values = [
        text(2002, "lot", "88.118.8/lot-1"),
        text(2003, "parts", "not a list"),
        text(2003, "wrongtype", "88.118.8/X"),
        text(2000, "serial", ""),
        HandleValue(2000, "serial", b"\xff"),
    ]
    entries, unique = index_entries(template, values)
    assert entries == {IndexEntry(IndexKind.REFERENCE, "88.118.8/LOT-1", "lot")}
    assert unique == {}


def test_json_of_the_error_list_is_plain() -> None:
    violation = TemplateViolation(
        [FieldError("serial", Code.REQUIRED, "a value is required", 2000)]
    )
    assert json.loads(json.dumps(violation.to_json())) == [
        {"field": "serial", "code": "required", "message": "a value is required", "index": 2000}
    ]
