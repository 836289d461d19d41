"""Validating an identifier's values against its template (spec §2.2 "Conformance rules").

:func:`validate` takes the template version the write path chose
(:meth:`~idnode.industry.history.TemplateHistory.for_write`), the identifier's handle and the
**complete** list of values it will have after the write (for a modification: the old record
with the change applied), and returns every :class:`~idnode.industry.codes.FieldError`; an
empty list means the write may proceed. It never raises for bad input.

What is checked, in order:

1. the template's state: a draft accepts nothing; a withdrawn version accepts modifications
   of existing identifiers (``mode=Mode.UPDATE``) but no registrations (``template_state``);
2. each value, by index: a second value at one index (``duplicate``); 1001 must be
   ``TEMPLATE`` naming the template and 1002, if present, ``TEMPLATE.VERSION`` naming its
   version (``template_link``, ``template_version``); ``GRANT`` values at 1900-1999 are
   single-identifier grants (:mod:`idnode.industry.grants`); any other index from 1000 to
   1999, and a
   ``TEMPLATE`` type anywhere below 2000 (``reserved_index``); indexes below 1000 are the Handle
   system's (HS_ADMIN, URL, ...) and not the template's business; from 2000 on the index and
   type must name one enabled attribute (``unknown_attribute``, ``index_mismatch``,
   ``disabled``), and the data must be UTF-8 text that passes
   :mod:`idnode.industry.datatypes` (``type``, ``too_short``, ``too_long``, ``too_many``,
   ``pattern``, ``check_digit``, ``precision``, ``range``, ``date_format``);
3. the link value is present (``template_link``), every enabled required attribute has a
   non-empty value (``required``);
4. through ``lookups``, for the values that passed: each referenced identifier exists
   (``reference_missing``) and, if the attribute names a template, was registered against it
   (``reference_template``); unique attributes' values are not used by another identifier of
   the template (``unique``).

A value carried over unchanged from ``previous`` (the record before a modification) is not
checked again, so data that was valid stays valid when a later version disables an
attribute or tightens a constraint; the record as a whole must still have every required
attribute of the version it is validated against. :func:`check_values` runs steps 1-3 only.
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from idnode.industry.codes import Code, FieldError
from idnode.industry.datatypes import check_item, split_items
from idnode.industry.layout import (
    DATA_INDEX_START,
    INSTANCE_GRANT_INDEXES,
    INSTANCE_GRANT_TYPE,
    RESERVED_INDEXES,
    TEMPLATE_LINK_INDEX,
    TEMPLATE_LINK_TYPE,
    TEMPLATE_VERSION_INDEX,
    TEMPLATE_VERSION_TYPE,
    is_reserved_type,
)
from idnode.industry.model import Attribute, AttributeType, Template, TemplateStatus
from idnode.protocol.values import HandleValue

__all__ = ["Lookups", "Mode", "check_values", "validate"]

_TEMPLATE_FIELD = TEMPLATE_LINK_TYPE


class Mode(enum.StrEnum):
    """Whether the write registers a new identifier or modifies an existing one."""

    CREATE = "create"
    UPDATE = "update"


class Lookups(Protocol):
    """What validation needs to know about other identifiers (the store answers)."""

    async def exists(self, handle: str) -> bool:
        """Whether identifier ``handle`` exists."""
        ...

    async def template_of(self, handle: str) -> str | None:
        """The template handle named by ``handle``'s 1001 link, None if it has none."""
        ...

    async def is_unique(self, template: str, attribute: str, value: str, handle: str) -> bool:
        """Whether no identifier other than ``handle`` registered against ``template`` has
        ``value`` for ``attribute``."""
        ...


@dataclass(frozen=True, slots=True)
class _Pending:
    """A value that passed the local checks and still needs lookups."""

    attr: Attribute
    index: int
    text: str
    items: tuple[str, ...]


def check_values(
    template: Template,
    values: Sequence[HandleValue],
    *,
    mode: Mode = Mode.CREATE,
    previous: Iterable[HandleValue] = (),
) -> list[FieldError]:
    """Steps 1-3 of the module docstring: everything that needs no lookups."""
    return _local(template, values, mode, previous)[0]


async def validate(
    template: Template,
    handle: str,
    values: Sequence[HandleValue],
    lookups: Lookups,
    *,
    mode: Mode = Mode.CREATE,
    previous: Iterable[HandleValue] = (),
) -> list[FieldError]:
    """Every reason the identifier ``handle`` with ``values`` breaks ``template``, ordered by
    index (template-wide errors first); empty when the write conforms."""
    errors, pending = _local(template, values, mode, previous)
    checks = [_check_pending(template, handle, p, lookups) for p in pending]
    found = await asyncio.gather(*checks)
    errors.extend(e for e in found if e is not None)
    errors.sort(key=lambda e: -1 if e.index is None else e.index)
    return errors


def _local(
    template: Template,
    values: Sequence[HandleValue],
    mode: Mode,
    previous: Iterable[HandleValue],
) -> tuple[list[FieldError], list[_Pending]]:
    errors = _state_errors(template, mode)
    pending: list[_Pending] = []
    unchanged = {(v.index, v.type, v.data) for v in previous}
    indexes: set[int] = set()
    present: set[str] = set()
    for value in values:
        if value.index in indexes:
            errors.append(_error(value.type, Code.DUPLICATE, "a second value", value.index))
            continue
        indexes.add(value.index)
        if value.index < DATA_INDEX_START:
            errors.extend(_system_value_errors(template, value))
            continue
        attr = _attribute_of(template, value, errors, present)
        if attr is None:
            continue
        if _has_content(attr, value.data):
            present.add(attr.key)
        if (value.index, value.type, value.data) in unchanged:
            continue
        found = _check_value(attr, value, errors)
        if found is None:
            continue
        if attr.type is AttributeType.REFERENCE or attr.unique:
            pending.append(_Pending(attr, value.index, *found))
    if TEMPLATE_LINK_INDEX not in indexes:
        errors.append(
            _error(_TEMPLATE_FIELD, Code.TEMPLATE_LINK, "no template link", TEMPLATE_LINK_INDEX)
        )
    for attr in template.attributes:
        if attr.enabled and attr.required and attr.key not in present:
            errors.append(_error(attr.key, Code.REQUIRED, "a value is required", attr.index))
    errors.sort(key=lambda e: -1 if e.index is None else e.index)
    return errors, pending


def _error(field: str, code: Code, message: str, index: int | None) -> FieldError:
    return FieldError(field, code, message, index)


def _state_errors(template: Template, mode: Mode) -> list[FieldError]:
    name = f"template {template.id} version {template.version}"
    if template.status is TemplateStatus.DRAFT:
        message = f"{name} is a draft: publish it first"
    elif template.status is TemplateStatus.WITHDRAWN and mode is Mode.CREATE:
        message = f"{name} is withdrawn: no new registrations"
    else:
        return []
    return [_error(_TEMPLATE_FIELD, Code.TEMPLATE_STATE, message, None)]


def _system_value_errors(template: Template, value: HandleValue) -> list[FieldError]:
    """Errors of a value below the data indexes: the link, the version, reserved indexes."""
    if value.index == TEMPLATE_LINK_INDEX:
        if value.type != TEMPLATE_LINK_TYPE or value.data != template.id.encode():
            message = f"must be {TEMPLATE_LINK_TYPE} {template.id}"
            return [_error(_TEMPLATE_FIELD, Code.TEMPLATE_LINK, message, value.index)]
        return []
    if value.index == TEMPLATE_VERSION_INDEX:
        if value.type != TEMPLATE_VERSION_TYPE or value.data != str(template.version).encode():
            message = f"must be {TEMPLATE_VERSION_TYPE} {template.version}"
            return [_error(_TEMPLATE_FIELD, Code.TEMPLATE_VERSION, message, value.index)]
        return []
    if value.index in INSTANCE_GRANT_INDEXES and value.type == INSTANCE_GRANT_TYPE:
        return []  # a single-identifier grant (idnode.industry.grants)
    if value.index in RESERVED_INDEXES or is_reserved_type(value.type):
        message = "indexes 1000-1999 and TEMPLATE types are reserved for the template link"
        return [_error(value.type, Code.RESERVED_INDEX, message, value.index)]
    return []


def _attribute_of(
    template: Template, value: HandleValue, errors: list[FieldError], present: set[str]
) -> Attribute | None:
    """The attribute a data value belongs to; None (and an error) if index and type do not
    name the same attribute. A value that clearly meant an attribute counts as present."""
    at_index = template.at_index(value.index)
    if at_index is not None and at_index.key == value.type:
        return at_index
    named = template.attribute(value.type)
    if named is not None and named is not at_index:
        present.add(named.key)
        message = f"attribute {named.key!r} is at index {named.index}, not {value.index}"
        errors.append(_error(named.key, Code.INDEX_MISMATCH, message, value.index))
    elif at_index is not None:
        present.add(at_index.key)
        message = f"index {value.index} holds {at_index.key!r}, not {value.type!r}"
        errors.append(_error(value.type, Code.INDEX_MISMATCH, message, value.index))
    else:
        message = f"{template.id} has no attribute {value.type!r} (index {value.index})"
        errors.append(_error(value.type, Code.UNKNOWN_ATTRIBUTE, message, value.index))
    return None


def _has_content(attr: Attribute, data: bytes) -> bool:
    """Whether a value counts as given for ``required``: not empty, and for a multi-valued
    attribute not an empty JSON array."""
    if not data:
        return False
    if not attr.multiple:
        return True
    try:
        items: object = json.loads(data)
    except ValueError:
        return True
    return items != []


def _check_value(
    attr: Attribute, value: HandleValue, errors: list[FieldError]
) -> tuple[str, tuple[str, ...]] | None:
    """``(text, items)`` of a data value that passes the local checks; None otherwise (with
    an error, except for an empty value, which the required check reports)."""
    if not attr.enabled:
        errors.append(_error(attr.key, Code.DISABLED, "the attribute is disabled", attr.index))
        return None
    try:
        text = value.data.decode("utf-8")
    except UnicodeDecodeError:
        errors.append(_error(attr.key, Code.TYPE, "the value is not UTF-8 text", attr.index))
        return None
    if not text:
        return None
    items = split_items(attr, text)
    if isinstance(items, tuple):
        errors.append(_error(attr.key, items[0], items[1], attr.index))
        return None
    if not items:
        return None
    for n, item in enumerate(items):
        failure = check_item(attr, item)
        if failure is not None:
            code, message = failure
            where = f"item {n + 1}: " if attr.multiple else ""
            errors.append(_error(attr.key, code, where + message, attr.index))
            return None
    return text, tuple(items)


async def _check_pending(
    template: Template, handle: str, pending: _Pending, lookups: Lookups
) -> FieldError | None:
    attr = pending.attr
    if attr.type is AttributeType.REFERENCE:
        results = await asyncio.gather(*(_check_reference(attr, i, lookups) for i in pending.items))
        for n, result in enumerate(results):
            if result is not None:
                where = f"item {n + 1}: " if attr.multiple else ""
                return _error(attr.key, result[0], where + result[1], pending.index)
    if attr.unique and not await lookups.is_unique(template.id, attr.key, pending.text, handle):
        message = f"{pending.text!r} is already used by another identifier of {template.id}"
        return _error(attr.key, Code.UNIQUE, message, pending.index)
    return None


async def _check_reference(
    attr: Attribute, target: str, lookups: Lookups
) -> tuple[Code, str] | None:
    if not await lookups.exists(target):
        return Code.REFERENCE_MISSING, f"{target} does not exist"
    wanted = attr.reference_template
    if wanted is not None:
        actual = await lookups.template_of(target)
        if actual != wanted:
            return Code.REFERENCE_TEMPLATE, f"{target} is not registered against {wanted}"
    return None
