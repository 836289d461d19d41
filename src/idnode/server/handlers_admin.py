"""Administration: creating, deleting and editing handles, batch registration, homing prefixes.

Every write checks responsibility (:class:`~idnode.server.placement.Placement`), then the
permission: HS_ADMIN values and HS_VLIST groups (:mod:`idnode.server.authz`), or for an
attribute value (index ≥ 2000) of an instance an edit grant (:mod:`idnode.industry.grants`).
New values are validated and timestamped here; the record a write will leave goes through
:class:`~idnode.server.writes.Writes` (template checks, write context) to the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from idnode.errors import (
    HandleAlreadyExists,
    HandleError,
    InsufficientPermissions,
    InvalidAdmin,
    InvalidHandle,
    InvalidValue,
    ProtocolViolation,
    ServerNotResponsible,
    UniqueValueTaken,
    ValuesNotFound,
)
from idnode.industry.directory import Pending
from idnode.industry.enforce import WritePlan
from idnode.industry.grants import GrantPolicy
from idnode.industry.layout import DATA_INDEX_START
from idnode.protocol import types as value_types
from idnode.protocol.bodies import (
    Body,
    CreateHandleResponse,
    EmptyBody,
    HandleRequest,
    RemoveValuesRequest,
    ValuesRequest,
)
from idnode.protocol.codes import AdminPermission, OpFlag, ResponseCode
from idnode.protocol.message import Message
from idnode.protocol.values import HandleValue
from idnode.server.authz import Authorizer, Identity
from idnode.server.handlers_read import read_record
from idnode.server.metrics import Metrics
from idnode.server.placement import NOT_PRIMARY, Placement
from idnode.server.writes import BatchResult, Writes, batch_error, edited
from idnode.store.base import HandleStore, handle_key, prefix_of
from idnode.store.records import add_values_edit, modify_values_edit, remove_values_edit

__all__ = ["MAX_HANDLE_BYTES", "MAX_VALUES", "AdminHandlers"]

#: Reference server limits (spec §1.1).
MAX_HANDLE_BYTES = 2048
MAX_VALUES = 2048
#: Suffixes drawn at most when minting (a handle that still hashes elsewhere gets 301).
_MINT_ATTEMPTS = 64

#: Value writes an edit grant can stand in for (never the HS_ADMIN ones).
_GRANTABLE_WRITES = frozenset(
    {AdminPermission.ADD_VALUE, AdminPermission.MODIFY_VALUE, AdminPermission.REMOVE_VALUE}
)


class AdminHandlers:
    """Handlers of the administrative ops and the batch registration of the HTTP API.
    ``metrics`` is called per request: the node sets it after the dispatcher is built."""

    def __init__(
        self,
        store: HandleStore,
        placement: Placement,
        authorizer: Authorizer,
        grants: GrantPolicy,
        writes: Writes,
        *,
        read_only: bool,
        clock: Callable[[], float],
        random_bytes: Callable[[int], bytes],
        metrics: Callable[[], Metrics | None],
    ) -> None:
        self._store = store
        self._placement = placement
        self._authorizer = authorizer
        self._grants = grants
        self._writes = writes
        self._read_only = read_only
        self._clock = clock
        self._random = random_bytes
        self._metrics = metrics

    # -- validation ----------------------------------------------------------------------------

    @staticmethod
    def _check_handle(handle: str) -> None:
        if "/" not in handle or handle.startswith("/") or handle.endswith("/"):
            raise InvalidHandle(f"invalid handle {handle!r}: expected <prefix>/<suffix>")
        if len(handle.encode("utf-8")) > MAX_HANDLE_BYTES:
            raise InvalidHandle(f"handle longer than {MAX_HANDLE_BYTES} bytes")

    def _stamp(self, values: Sequence[HandleValue]) -> list[HandleValue]:
        """Validate new values and set their timestamps (the server sets them, spec §5.1)."""
        if len(values) > MAX_VALUES:
            raise InvalidValue(f"more than {MAX_VALUES} values")
        seen: set[int] = set()
        now = int(self._clock())
        out = []
        for v in values:
            if v.index in seen:
                raise InvalidValue(f"index {v.index} given twice")
            if v.index == 0:
                raise InvalidValue("index 0 is not a valid value index")
            seen.add(v.index)
            try:
                value_types.parse(v.type, v.data)
            except ProtocolViolation as exc:
                raise InvalidValue(f"value {v.index} is not a valid {v.type}: {exc}") from exc
            out.append(v.with_changes(timestamp=now))
        return out

    async def _record(self, handle: str) -> tuple[HandleValue, ...]:
        return await read_record(self._store, self._metrics(), handle)

    async def _prefix_admins(self, handle: str) -> tuple[HandleValue, ...]:
        """HS_ADMIN-bearing record governing creation under ``handle``'s prefix: the parent
        prefix handle for ``0.NA/P.C``, else ``0.NA/<prefix>``. Empty when absent."""
        prefix = prefix_of(handle)
        if handle_key(prefix) == "0.NA":
            child = handle.split("/", 1)[1]
            parent = child.rsplit(".", 1)[0] if "." in child else "0.NA"
            record = await self._store.get_handle(f"0.NA/{parent}")
        else:
            record = await self._store.get_handle(f"0.NA/{prefix}")
        return record or ()

    @staticmethod
    def _is_admin_value(v: HandleValue | None) -> bool:
        return v is not None and v.type.upper() == "HS_ADMIN"

    # -- administration ------------------------------------------------------------------------

    async def create(self, request: Message, identity: Identity | None) -> Body:
        assert identity is not None
        body = request.body
        assert isinstance(body, ValuesRequest)
        handle = body.handle
        if request.has(OpFlag.MINT):
            handle = self._mint(handle)
        await self._may_create(handle, identity)
        overwrite = request.has(OpFlag.OVRW)
        existing = None
        if overwrite:
            existing = await self._store.get_handle(handle)
            if existing is not None:
                await self._authorizer.require(identity, existing, AdminPermission.DELETE_HANDLE)
        values = self._stamp(body.values)
        plan = await self._writes.check(handle, existing, values, values, writer=identity)
        record = plan.values or ()
        await self._writes.run(
            identity,
            {handle: plan},
            lambda: self._store.create_handle(handle, record, overwrite=overwrite),
        )
        return CreateHandleResponse(handle)

    async def _may_create(self, handle: str, identity: Identity) -> None:
        """Raise unless ``handle`` is well formed, served here, and ``identity`` may create it:
        ADD_HANDLE on ``0.NA/<prefix>``, or ADD_NA on the parent for a prefix handle."""
        self._check_handle(handle)
        await self._placement.require_responsible(handle)
        is_prefix = handle_key(prefix_of(handle)) == "0.NA"
        perm = AdminPermission.ADD_NA if is_prefix else AdminPermission.ADD_HANDLE
        await self._authorizer.require(identity, await self._prefix_admins(handle), perm)

    async def create_handles(
        self, items: Sequence[tuple[str, Sequence[HandleValue]]], identity: Identity
    ) -> list[tuple[int, str]]:
        """:meth:`register_handles` without the per-field errors: (code, message) per item."""
        return [(r.code, r.message) for r in await self.register_handles(items, identity)]

    async def register_handles(
        self, items: Sequence[tuple[str, Sequence[HandleValue]]], identity: Identity
    ) -> list[BatchResult]:
        """Batch registration (the HTTP batch endpoint): every item is checked as a create
        would be (handle, responsibility, permission, values, template), then the valid ones
        are written in one transaction with :meth:`HandleStore.create_records`. Existing
        handles are left unchanged. An item may reference, but not share a unique value
        with, an earlier item of the batch. Returns one :class:`BatchResult` per item. A
        read-only server refuses the whole batch (301); in a site of several servers, items
        that hash to another server get 301 each."""
        if self._read_only:
            raise ServerNotResponsible(NOT_PRIMARY)
        results = [BatchResult(ResponseCode.SUCCESS)] * len(items)
        allowed: dict[str, HandleError | None] = {}  # per prefix: the permission outcome
        plans: dict[int, tuple[str, WritePlan]] = {}  # the items that passed, to write
        pending = Pending()
        seen: set[str] = set()
        for position, (handle, values) in enumerate(items):
            try:
                self._check_handle(handle)
                self._placement.require_share(handle)  # per item: permission cached per prefix
                scope = handle_key(prefix_of(handle))
                if scope == "0.NA":  # prefix handles: each has its own parent
                    await self._may_create(handle, identity)
                else:
                    if scope not in allowed:
                        try:
                            await self._may_create(handle, identity)
                            allowed[scope] = None
                        except HandleError as exc:
                            allowed[scope] = exc
                    if (denied := allowed[scope]) is not None:
                        raise denied
                key = handle_key(handle)
                if key in seen:
                    raise HandleAlreadyExists("given twice in this batch")
                seen.add(key)
                stamped = self._stamp(values)
                plan = await self._writes.check(
                    handle, None, stamped, stamped, pending, writer=identity
                )
                plans[position] = handle, plan
            except HandleError as exc:
                results[position] = batch_error(exc)
        try:
            created = await self._writes.create_records(identity, plans)
        except UniqueValueTaken:
            # Another write took a unique value since the check: register one by one.
            created = await self._writes.create_one_by_one(identity, plans, results)
        for position, was_created in created.items():
            if not was_created:
                message = "Handle already exists."
                results[position] = BatchResult(ResponseCode.HANDLE_ALREADY_EXISTS, message)
        return results

    def _mint(self, handle: str) -> str:
        """A new handle under ``handle``'s prefix: ``<handle>`` + a random suffix, drawn
        again until the handle hashes to this server (spec §2.2; expected tries: the number
        of servers of the site)."""
        for _attempt in range(_MINT_ATTEMPTS):
            suffix = self._random(10).hex().upper()
            if "/" not in handle:
                minted = f"{handle}/{suffix}"
            else:
                minted = f"{handle}{suffix}" if handle.endswith("/") else f"{handle}-{suffix}"
            if self._placement.owns(minted):
                break
        return minted

    async def delete(self, request: Message, identity: Identity | None) -> Body:
        assert identity is not None
        body = request.body
        assert isinstance(body, HandleRequest)
        await self._placement.require_responsible(body.handle)
        record = await self._record(body.handle)
        if handle_key(prefix_of(body.handle)) == "0.NA":
            # A prefix handle: DELETE_NA, granted on it or on its parent (as ADD_NA is).
            admins = record + await self._prefix_admins(body.handle)
            await self._authorizer.require(identity, admins, AdminPermission.DELETE_NA)
        else:
            await self._authorizer.require(identity, record, AdminPermission.DELETE_HANDLE)
        plan = WritePlan(None)  # a deleted identifier loses its index entries with it
        await self._writes.run(
            identity, {body.handle: plan}, lambda: self._store.delete_handle(body.handle)
        )
        return EmptyBody()

    async def add(self, request: Message, identity: Identity | None) -> Body:
        assert identity is not None
        body = request.body
        assert isinstance(body, ValuesRequest)
        await self._placement.require_responsible(body.handle)
        record = await self._record(body.handle)
        by_index = {v.index: v for v in record}
        overwrite = request.has(OpFlag.OVRW)
        for v in body.values:
            old = by_index.get(v.index)
            if old is not None and overwrite:
                admin = self._is_admin_value(old) or self._is_admin_value(v)
                perm = AdminPermission.MODIFY_ADMIN if admin else AdminPermission.MODIFY_VALUE
            else:
                admin = self._is_admin_value(v)
                perm = AdminPermission.ADD_ADMIN if admin else AdminPermission.ADD_VALUE
            await self._may_write(identity, record, perm, old if overwrite else None, v)
        values = self._stamp(body.values)
        after = edited(record, add_values_edit(body.handle, values, overwrite=overwrite))
        await self._writes.change(
            identity,
            body.handle,
            record,
            after,
            values,
            lambda: self._store.add_values(body.handle, values, overwrite=overwrite),
        )
        return EmptyBody()

    async def modify(self, request: Message, identity: Identity | None) -> Body:
        assert identity is not None
        body = request.body
        assert isinstance(body, ValuesRequest)
        await self._placement.require_responsible(body.handle)
        record = await self._record(body.handle)
        by_index = {v.index: v for v in record}
        for v in body.values:
            old = by_index.get(v.index)
            if old is None:
                raise ValuesNotFound(f"no value at index {v.index}")
            admin = self._is_admin_value(old) or self._is_admin_value(v)
            perm = AdminPermission.MODIFY_ADMIN if admin else AdminPermission.MODIFY_VALUE
            await self._may_write(identity, record, perm, old, v)
        values = self._stamp(body.values)
        after = edited(record, modify_values_edit(body.handle, values))
        await self._writes.change(
            identity,
            body.handle,
            record,
            after,
            values,
            lambda: self._store.modify_values(body.handle, values),
        )
        return EmptyBody()

    async def remove(self, request: Message, identity: Identity | None) -> Body:
        assert identity is not None
        body = request.body
        assert isinstance(body, RemoveValuesRequest)
        await self._placement.require_responsible(body.handle)
        record = await self._record(body.handle)
        by_index = {v.index: v for v in record}
        for index in body.indexes:
            old = by_index.get(index)
            if old is None:
                raise ValuesNotFound(f"no value at index {index}")
            admin = self._is_admin_value(old)
            perm = AdminPermission.REMOVE_ADMIN if admin else AdminPermission.REMOVE_VALUE
            await self._may_write(identity, record, perm, old, None)
        after = edited(record, remove_values_edit(body.handle, body.indexes))
        await self._writes.change(
            identity,
            body.handle,
            record,
            after,
            (),
            lambda: self._store.remove_values(body.handle, body.indexes),
        )
        return EmptyBody()

    async def _may_write(
        self,
        identity: Identity,
        record: tuple[HandleValue, ...],
        perm: AdminPermission,
        old: HandleValue | None,
        new: HandleValue | None,
    ) -> None:
        """Raise unless ``identity`` may change ``old`` into ``new`` (either None for an add or
        a remove): ``perm`` through the record's HS_ADMIN, or else, for an attribute value
        (index ≥ 2000, the same attribute before and after) of an instance, an edit grant
        for that attribute (:meth:`RecordGrants.can_edit`). The HS_ADMIN error stands
        otherwise."""
        try:
            await self._authorizer.require(identity, record, perm)
        except (InvalidAdmin, InsufficientPermissions):
            if perm not in _GRANTABLE_WRITES:
                raise
            changed = [v for v in (old, new) if v is not None]
            if any(v.index < DATA_INDEX_START for v in changed):
                raise
            if len({v.type.casefold() for v in changed}) != 1:
                raise
            grants = await self._grants.for_record(record)
            if not await grants.can_edit(identity, changed[0].type):
                raise

    # -- prefixes ------------------------------------------------------------------------------

    async def _home_prefix(self, request: Message, identity: Identity | None) -> str:
        assert identity is not None
        body = request.body
        assert isinstance(body, HandleRequest)
        if not await self._authorizer.is_server_admin(identity):
            raise InvalidAdmin(f"{identity} is not a server administrator")
        handle = body.handle
        if handle_key(prefix_of(handle)) != "0.NA" or "/" not in handle:
            raise InvalidHandle(f"expected a prefix handle 0.NA/<prefix>, got {handle!r}")
        return handle.split("/", 1)[1]

    async def home(self, request: Message, identity: Identity | None) -> Body:
        await self._store.home_prefix(await self._home_prefix(request, identity))
        return EmptyBody()

    async def unhome(self, request: Message, identity: Identity | None) -> Body:
        await self._store.unhome_prefix(await self._home_prefix(request, identity))
        return EmptyBody()
