"""The writes of the administration pages, each a native request run by
:meth:`~idnode.server.dispatch.Dispatcher.execute` as the account's identity (the same path
as the SNMS API): creating a template, registering an identifier, setting an attribute's view
grant. Errors come out as :class:`~idnode.errors.HandleError` (a template's refusal as
:class:`~idnode.industry.codes.TemplateViolation` with its per-field errors)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from idnode.errors import HandleNotFound, InvalidValue
from idnode.industry.accounts import ADMIN_GROUP_INDEX, ENTERPRISE_PERMISSIONS
from idnode.industry.grants import (
    Access,
    ClassGrants,
    InstanceGrant,
    Scope,
    class_grants_from_value,
    class_grants_value,
    instance_grant_from_value,
    instance_grant_value,
    parse_identity,
)
from idnode.industry.history import TemplateHistory
from idnode.industry.layout import (
    CLASS_GRANT_INDEX,
    CLASS_GRANT_TYPE,
    DATA_INDEX_START,
    INSTANCE_GRANT_INDEXES,
    INSTANCE_GRANT_TYPE,
)
from idnode.industry.model import Attribute, Template, TemplateStatus
from idnode.industry.records import history_from_values, history_to_values, values_from_fields
from idnode.industry.template_json import attribute_from_json
from idnode.protocol.bodies import ValuesRequest
from idnode.protocol.codes import OpCode, OpFlag
from idnode.protocol.message import Message
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.values import HandleValue
from idnode.server.authz import Identity
from idnode.server.dispatch import Dispatcher
from idnode.store.base import prefix_of

__all__ = [
    "TEMPLATE_MARK",
    "add_attributes",
    "attribute_rows",
    "class_grants_of",
    "create_template",
    "instance_grant_of",
    "register",
    "set_instance_grant",
    "set_view_grants",
    "template_definition",
]

#: Suffix start of the templates the console creates: ``<prefix>/META_<name>`` (as SNMS).
TEMPLATE_MARK = "META_"


def group_admin(handle: str) -> HandleValue:
    """HS_ADMIN at 100 naming the admin group of ``handle``'s prefix (as the SNMS API)."""
    data = AdminRecord(ENTERPRISE_PERMISSIONS, f"0.NA/{prefix_of(handle)}", ADMIN_GROUP_INDEX)
    return HandleValue(100, "HS_ADMIN", data.to_bytes())


async def _run(
    dispatcher: Dispatcher, identity: Identity, op: int, body: Any, flags: int = 0
) -> None:
    await dispatcher.execute(Message(op=op, body=body, flags=flags), identity)


def attribute_rows(form: Mapping[str, Sequence[str]], first_index: int) -> list[Attribute]:
    """The attributes of the editor's rows: the parallel lists ``key``, ``attr_zh``,
    ``attr_en``, ``type`` and ``required`` (the row numbers checked), indexes from
    ``first_index`` in row order. Rows without a key are skipped. Raises InvalidValue."""
    keys, zh, en, types = (list(form.get(n, [])) for n in ("key", "attr_zh", "attr_en", "type"))
    required = set(form.get("required", []))
    out: list[Attribute] = []
    for row, key in enumerate(keys):
        key = key.strip()
        if not key:
            continue
        item = {
            "idType": key,
            "name": (zh[row] if row < len(zh) else "").strip() or key,
            "englishName": (en[row] if row < len(en) else "").strip(),
            "required": str(row) in required,
            "metadata": {"type": (types[row] if row < len(types) else "") or "string"},
        }
        out.append(attribute_from_json(item, index=first_index + len(out), path=f"row {row + 1}"))
    return out


def template_definition(form: Mapping[str, Sequence[str]], handle: str) -> Template:
    """A published template (version 1) from the editor's fields: ``name_zh``, ``name_en``
    and the rows of :func:`attribute_rows`. Raises InvalidValue."""

    def one(name: str) -> str:
        values = form.get(name, [])
        return values[0].strip() if values else ""

    attributes = attribute_rows(form, DATA_INDEX_START)
    if not attributes:
        raise InvalidValue("a template needs at least one attribute")
    return Template(handle, 1, one("name_zh"), tuple(attributes), TemplateStatus.PUBLISHED,
                    name_en=one("name_en"))  # fmt: skip


async def add_attributes(
    dispatcher: Dispatcher, identity: Identity, handle: str, form: Mapping[str, Sequence[str]]
) -> Template:
    """Add the editor's rows to template ``handle``: into its draft, or a new version opened
    from the newest one; then publish it (as an SNMS template edit). The published version."""
    record = await dispatcher.store.get_handle(handle)
    if record is None:
        raise HandleNotFound(f"no template {handle}")
    history = history_from_values(handle, record)
    if history.draft is None:
        history = history.new_version()
    draft = history.latest
    added = attribute_rows(form, draft.next_index())
    if not added:
        raise InvalidValue("fill in at least one attribute")
    history = history.revise(draft.with_attributes((*draft.attributes, *added))).publish()
    body = ValuesRequest(handle, history_to_values(history))
    await _run(dispatcher, identity, OpCode.ADD_VALUE, body, OpFlag.OVRW)
    return history.latest


async def create_template(dispatcher: Dispatcher, identity: Identity, template: Template) -> None:
    """Create the template's record (its history starts with ``template``)."""
    history = TemplateHistory.start(template)
    values = (group_admin(template.id), *history_to_values(history))
    await _run(dispatcher, identity, OpCode.CREATE_HANDLE, ValuesRequest(template.id, values))


async def register(
    dispatcher: Dispatcher,
    identity: Identity,
    handle: str,
    template: Template,
    fields: Mapping[str, str],
    url: str = "",
) -> None:
    """Register ``handle`` against ``template`` with ``fields`` (attribute key → text; empty
    texts are left out) and an optional ``URL`` value at 1."""
    if "/" not in handle:
        raise InvalidValue(f"{handle!r} is not <prefix>/<suffix>")
    extra = [group_admin(handle)]
    if url:
        extra.append(HandleValue(1, "URL", url.encode("utf-8")))
    filled = {k: v for k, v in fields.items() if v != ""}
    values, errors = values_from_fields(template, filled, extra=extra)
    if errors:
        raise InvalidValue("; ".join(e.message for e in errors))
    await _run(dispatcher, identity, OpCode.CREATE_HANDLE, ValuesRequest(handle, tuple(values)))


async def class_grants_of(dispatcher: Dispatcher, template: str) -> ClassGrants:
    """The class grants stored on ``template``'s record (none when absent or malformed)."""
    record = await dispatcher.store.get_handle(template)
    if record is None:
        raise HandleNotFound(f"no template {template}")
    value = next((v for v in record if v.index == CLASS_GRANT_INDEX
                  and v.type == CLASS_GRANT_TYPE), None)  # fmt: skip
    if value is None:
        return ClassGrants()
    try:
        return class_grants_from_value(value)
    except InvalidValue:
        return ClassGrants()


def _users(text: str) -> tuple[Identity, ...]:
    return tuple(parse_identity(line.strip()) for line in text.splitlines() if line.strip())


async def set_view_grants(
    dispatcher: Dispatcher,
    identity: Identity,
    template: str,
    views: Mapping[str, tuple[str, str]],
) -> None:
    """Replace the ``view`` grants of the template's attributes by ``views`` (attribute key
    → (scope ``""``/``public``/``specified``, identities one per line); ``""`` removes the
    attribute's view grant, so the value's own flags decide). Edit grants are kept."""
    record = await dispatcher.store.get_handle(template)
    if record is None:
        raise HandleNotFound(f"no template {template}")
    history_from_values(template, record)  # it is a template
    current = await class_grants_of(dispatcher, template)
    view = dict(current.view)
    for key, (scope, users) in views.items():
        view.pop(key, None)
        if scope:
            try:
                view[key] = Access(Scope(scope), _users(users))
            except ValueError as exc:
                raise InvalidValue(f"{key}: {exc}") from None
    value = class_grants_value(ClassGrants(view, dict(current.edit)))
    body = ValuesRequest(template, (value,))
    await _run(dispatcher, identity, OpCode.ADD_VALUE, body, OpFlag.OVRW)


def instance_grant_of(values: Sequence[HandleValue]) -> InstanceGrant | None:
    """The individual grant at index 1900 of an identifier's values (None: none, or
    malformed)."""
    first = INSTANCE_GRANT_INDEXES[0]
    value = next((v for v in values if v.index == first and v.type == INSTANCE_GRANT_TYPE), None)
    if value is None:
        return None
    try:
        return instance_grant_from_value(value)
    except InvalidValue:
        return None


async def set_instance_grant(
    dispatcher: Dispatcher, identity: Identity, handle: str, scope: str, readers: str
) -> None:
    """Write the identifier's individual grant (index 1900): every attribute viewable by
    everyone (``public``) or by the listed identities (``specified``, one a line; none
    grants nothing)."""
    try:
        grant = InstanceGrant(2, Scope(scope or Scope.SPECIFIED), _users(readers))
    except ValueError as exc:
        raise InvalidValue(f"scope: {exc}") from None
    body = ValuesRequest(handle, (instance_grant_value(grant),))
    await _run(dispatcher, identity, OpCode.ADD_VALUE, body, OpFlag.OVRW)
