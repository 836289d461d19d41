"""Templates enforced on writes: :class:`TemplateGuard` checks a write of one identifier, given
its record before (None: it is being created) and after, and plans what the store writes.

Theory of operation
-------------------
Every write path (the native protocol and ``/api/handles`` through the dispatcher, the HTTP
batch, ``idnode import``) computes the complete record the identifier will have and calls
:meth:`TemplateGuard.check`:

1. **Template records.** A record holding the ``TEMPLATE`` marker (``0.TYPE/DO.DOIPMETA`` at
   1001), before or after, is a template. Its definitions must parse
   (:func:`~idnode.industry.records.history_from_values`, which also checks each version
   names this handle), and replacing the stored history must be a change the operations of
   :class:`~idnode.industry.history.TemplateHistory` could make
   (:func:`~idnode.industry.history.check_transition`: published versions are immutable, no
   version or attribute is ever removed). A template identifier stays a template. Errors
   have the field ``TEMPLATE.DEFINITION`` and the code ``template_definition``.
2. **Instances.** A record linking a template at 1001, or whose record before did (so the
   link cannot just be dropped), is validated by :func:`~idnode.industry.validate.validate`
   against the version writes use (:meth:`~idnode.industry.history.TemplateHistory.for_write`)
   of the template it links after the write (or, without a link, before it). The write is a
   registration (``Mode.CREATE``) when the identifier is new or changes template, else a
   modification (``Mode.UPDATE``) whose old record is ``previous``, so values carried over
   unchanged are not checked again. The template is read through
   :class:`~idnode.industry.directory.TemplateSource`: from the store when this node holds
   it, through the resolver when another node does.
3. **The version link.** Unless the write itself gives a 1002 ``TEMPLATE.VERSION`` value, the
   guard sets it to the version validated against: on a registration it is added, on a
   modification an older one carried over is updated. :attr:`WritePlan.rewritten` tells the
   caller the record differs from the plain change, so it must be written whole.
4. **The use of the template** (spec §2.3 template grant: who may "see/use" it). On a
   registration made by a known ``writer``, a template whose record has a ``TEMPLATE.GRANT``
   value (1010) that is ``specified`` admits only its administrators (READ_VALUE through
   the template's HS_ADMIN, or a server administrator) and the identities (or members of
   the groups) it lists; a ``public`` grant, or none, admits everyone. A refusal is the
   field error ``template_use`` on ``TEMPLATE``. Modifications of existing identifiers are
   not use checks (their editors hold HS_ADMIN rights or edit grants on the identifier).
5. **Index entries** (:mod:`idnode.store.writectx`): one REFERENCE entry per identifier named
   by a reference attribute (each item of a multi-valued one) and one UNIQUE entry per value
   of a unique attribute, computed from the record as written. The store writes them in the
   same transaction as the record; a UNIQUE key another identifier holds makes the store
   raise :class:`~idnode.errors.UniqueValueTaken`, which :meth:`WritePlan.unique_violation`
   turns into the field error ``unique``.

Any reason to refuse raises :class:`~idnode.industry.codes.TemplateViolation` with every
:class:`~idnode.industry.codes.FieldError` found, before anything is written. Records that
neither link a template nor are one pass untouched, with no index entries, at the cost of
one scan of their values.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from idnode.errors import InsufficientPermissions, InvalidAdmin, InvalidValue, UniqueValueTaken
from idnode.industry.codes import Code, FieldError, TemplateViolation
from idnode.industry.datatypes import split_items
from idnode.industry.directory import (
    IsLocal,
    Pending,
    RecordReader,
    StoreLookups,
    TemplateSource,
    unique_key,
)
from idnode.industry.grants import Scope, template_grant_from_value
from idnode.industry.history import check_transition
from idnode.industry.layout import (
    DATA_INDEX_START,
    DEFINITION_TYPE,
    TEMPLATE_GRANT_INDEX,
    TEMPLATE_GRANT_TYPE,
    TEMPLATE_LINK_INDEX,
    TEMPLATE_LINK_TYPE,
    TEMPLATE_VERSION_INDEX,
    TEMPLATE_VERSION_TYPE,
)
from idnode.industry.model import AttributeType, InvalidTemplate, Template
from idnode.industry.records import history_from_values, is_template_record, template_link
from idnode.industry.validate import Mode, validate
from idnode.protocol.codes import AdminPermission
from idnode.protocol.values import HandleValue
from idnode.resolver import Resolver
from idnode.server.authz import Authorizer, Identity
from idnode.store.base import HandleStore, handle_key
from idnode.store.writectx import IndexEntry, IndexKind

__all__ = ["TemplateGuard", "WritePlan", "index_entries"]


@dataclass(frozen=True)
class WritePlan:
    """What to write for one identifier, once :meth:`TemplateGuard.check` passed it."""

    values: tuple[HandleValue, ...] | None
    """The record to write (the after-record, with the version link set); None: a delete."""
    entries: frozenset[IndexEntry] = frozenset()
    """The identifier's index entries after the write (empty when it has no template)."""
    template: Template | None = None
    """The template version the identifier was validated against, if any."""
    rewritten: bool = False
    """``values`` differ from the after-record given (the version link was set): the caller
    must write the record whole rather than apply its change."""
    unique_fields: dict[str, FieldError] = field(default_factory=dict, compare=False)
    """Per UNIQUE key of :attr:`entries`: the error to report if the store finds it taken."""

    def unique_violation(self, exc: UniqueValueTaken) -> TemplateViolation:
        """The field error for the store's :class:`UniqueValueTaken` (a race with another
        write of the same value since the check)."""
        error = self.unique_fields.get(exc.key)
        if error is None:  # a key of another plan of the same batch, or unknown
            error = FieldError("TEMPLATE", Code.UNIQUE, exc.message)
        return TemplateViolation([error])


def _text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def index_entries(
    template: Template, values: Iterable[HandleValue]
) -> tuple[frozenset[IndexEntry], dict[str, FieldError]]:
    """The index entries of an instance of ``template`` with ``values`` (module docstring,
    step 4), and for each UNIQUE key the ``unique`` error that names its attribute."""
    entries: set[IndexEntry] = set()
    unique: dict[str, FieldError] = {}
    for value in values:
        if value.index < DATA_INDEX_START:
            continue
        attr = template.at_index(value.index)
        text = _text(value.data)
        if attr is None or attr.key != value.type or not text:
            continue
        if attr.type is AttributeType.REFERENCE:
            items = split_items(attr, text)
            for item in items if isinstance(items, list) else ():
                entries.add(IndexEntry(IndexKind.REFERENCE, handle_key(item), attr.key))
        if attr.unique:
            key = unique_key(template.id, attr.key, text)
            entries.add(IndexEntry(IndexKind.UNIQUE, key, ""))
            message = f"{text!r} is already used by another identifier of {template.id}"
            unique[key] = FieldError(attr.key, Code.UNIQUE, message, value.index)
    return frozenset(entries), unique


def _with_version(
    values: Sequence[HandleValue],
    template: Template,
    mode: Mode,
    given: Sequence[HandleValue],
    timestamp: int,
) -> tuple[HandleValue, ...]:
    """``values`` with the 1002 version link set as step 3 of the module docstring says."""
    if any(v.index == TEMPLATE_VERSION_INDEX for v in given):
        return tuple(values)
    version = str(template.version).encode()
    current = next((v for v in values if v.index == TEMPLATE_VERSION_INDEX), None)
    if current is None:
        if mode is not Mode.CREATE:
            return tuple(values)
        added = HandleValue(TEMPLATE_VERSION_INDEX, TEMPLATE_VERSION_TYPE, version)
        merged = [*values, added.with_changes(timestamp=timestamp)]
        return tuple(sorted(merged, key=lambda v: v.index))
    if current.type != TEMPLATE_VERSION_TYPE or current.data == version:
        return tuple(values)  # a wrong type is validate's to report
    bumped = current.with_changes(data=version, timestamp=timestamp)
    return tuple(bumped if v is current else v for v in values)


def _definition_error(message: str) -> TemplateViolation:
    return TemplateViolation([FieldError(DEFINITION_TYPE, Code.TEMPLATE_DEFINITION, message)])


class TemplateGuard:
    """Checks writes of identifiers against their templates (module docstring).

    ``is_local`` says whether this node holds a handle (then it is read from ``store``);
    other handles are read through ``resolver`` when there is one. Parsed templates are
    cached (``cache_size`` templates, each for at most ``max_age`` seconds of ``clock``);
    call :meth:`written` after writing or deleting a handle on this node. ``authorizer``
    decides the use of templates (step 4; by default one over ``store`` without server
    administrators).
    """

    def __init__(
        self,
        store: HandleStore,
        *,
        is_local: IsLocal,
        resolver: Resolver | None = None,
        cache_size: int = 256,
        max_age: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        authorizer: Authorizer | None = None,
    ) -> None:
        self.authorizer = authorizer or Authorizer(store)
        self.reader = RecordReader(store, resolver=resolver, is_local=is_local)
        self.templates = TemplateSource(self.reader, size=cache_size, max_age=max_age, clock=clock)

    def written(self, handle: str) -> None:
        """``handle`` was written or deleted here: a cached template of it is stale."""
        self.templates.invalidate(handle)

    async def check(
        self,
        handle: str,
        before: Sequence[HandleValue] | None,
        after: Sequence[HandleValue] | None,
        *,
        given: Sequence[HandleValue] = (),
        timestamp: int = 0,
        pending: Pending | None = None,
        writer: Identity | None = None,
    ) -> WritePlan:
        """Check the write turning ``before`` into ``after`` (None: absent) and return what
        to write. ``given`` are the values the write itself sets (a 1002 among them is kept
        as given); ``timestamp`` is put on a version link the guard adds or updates.
        ``pending`` holds a batch's earlier items, and the item is added to it when it
        passes. ``writer``: who writes, for the use of the template (None: not checked).
        Raises :class:`TemplateViolation`."""
        if after is None:
            return WritePlan(None)
        after = tuple(after)
        if is_template_record(after) or (before is not None and is_template_record(before)):
            self._check_template_record(handle, before, after)
            plan = WritePlan(after)
        else:
            plan = await self._check_instance(
                handle, before, after, given, timestamp, pending, writer
            )
        if pending is not None and plan.values is not None:
            pending.add(handle, plan.values, list(plan.unique_fields))
        return plan

    @staticmethod
    def _check_template_record(
        handle: str, before: Sequence[HandleValue] | None, after: tuple[HandleValue, ...]
    ) -> None:
        if not is_template_record(after):
            raise _definition_error(
                f"{handle} is a template: its 1001 TEMPLATE marker stays, and it stays one"
            )
        try:
            new = history_from_values(handle, after)
            if before is not None and is_template_record(before):
                check_transition(history_from_values(handle, before), new)
        except InvalidTemplate as exc:
            raise _definition_error(exc.message) from exc

    async def _check_instance(
        self,
        handle: str,
        before: Sequence[HandleValue] | None,
        after: tuple[HandleValue, ...],
        given: Sequence[HandleValue],
        timestamp: int,
        pending: Pending | None,
        writer: Identity | None = None,
    ) -> WritePlan:
        link_after = template_link(after)
        link_before = None if before is None else template_link(before)
        link = link_after or link_before
        if link is None:
            return WritePlan(after)
        same = link_before is not None and handle_key(link_before[0]) == handle_key(link[0])
        mode = Mode.UPDATE if same else Mode.CREATE
        previous = tuple(before or ()) if same else ()
        template = (await self.templates.history(link[0], pending)).for_write()
        if mode is Mode.CREATE and writer is not None:
            await self.check_use(link[0], writer, pending)
        values = _with_version(after, template, mode, given, timestamp)
        lookups = StoreLookups(self.reader, pending)
        errors = await validate(template, handle, values, lookups, mode=mode, previous=previous)
        if errors:
            raise TemplateViolation(_explain_unreachable(errors, lookups.unreachable))
        entries, unique = index_entries(template, values)
        return WritePlan(values, entries, template, values != after, unique)

    async def may_use(
        self, template: str, writer: Identity, pending: Pending | None = None
    ) -> bool:
        """Whether ``writer`` may register identifiers against ``template`` (step 4 of the
        module docstring). Raises :class:`TemplateViolation` when the template cannot be
        read."""
        record = await self.templates.record(template, pending)
        value = next(
            (v for v in record
             if v.index == TEMPLATE_GRANT_INDEX and v.type == TEMPLATE_GRANT_TYPE),
            None,
        )  # fmt: skip
        if value is None:
            return True
        try:
            access = template_grant_from_value(value)
        except InvalidValue:
            access = None  # malformed: its administrators only
        if access is not None and access.scope is Scope.PUBLIC:
            return True
        if access is not None and await self.authorizer.is_any_of(writer, access.users):
            return True
        try:
            await self.authorizer.require(writer, record, AdminPermission.READ_VALUE)
        except (InvalidAdmin, InsufficientPermissions):
            return False
        return True

    async def check_use(
        self, template: str, writer: Identity, pending: Pending | None = None
    ) -> None:
        """Raise the ``template_use`` error unless :meth:`may_use`."""
        if not await self.may_use(template, writer, pending):
            message = (
                f"{writer} may not register identifiers against {template}: its template "
                "grant is specified and does not list this identity"
            )
            error = FieldError(TEMPLATE_LINK_TYPE, Code.TEMPLATE_USE, message, TEMPLATE_LINK_INDEX)
            raise TemplateViolation([error])


def _explain_unreachable(errors: list[FieldError], unreachable: dict[str, str]) -> list[FieldError]:
    """``reference_missing`` errors about references that could not be checked say so."""
    if not unreachable:
        return errors
    out = []
    for error in errors:
        if error.code is Code.REFERENCE_MISSING:
            for target, reason in unreachable.items():
                missing = f"{target} does not exist"
                if missing in error.message:
                    checked = f"{target} cannot be checked: {reason}"
                    error = dataclasses.replace(
                        error, message=error.message.replace(missing, checked)
                    )
        out.append(error)
    return out
