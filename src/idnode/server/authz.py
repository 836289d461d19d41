"""Who may change what: HS_ADMIN permissions and HS_VLIST groups (spec §2.1, §2.6).

An identity is ``index:handle`` proved by challenge-response. To change handle H it must be
named by an HS_ADMIN value (of H, or of the prefix handle ``0.NA/<prefix>`` for creation) that
has the needed permission bit: directly (an admin index of 0 matches any index of that handle)
or through an HS_VLIST group, followed recursively with a depth limit and cycle check.
Server administrators (configuration) may do everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from idnode.errors import InsufficientPermissions, InvalidAdmin, ProtocolViolation
from idnode.protocol.codes import AdminPermission
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.types.hs_vlist import ValueList
from idnode.protocol.values import HandleValue
from idnode.store.base import HandleStore, handle_key

__all__ = ["Authorizer", "Identity", "admin_records"]

_MAX_GROUP_DEPTH = 8


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated identity: the value ``index`` of ``handle`` holding its key."""

    handle: str
    index: int

    def __str__(self) -> str:
        return f"{self.index}:{self.handle}"

    def names(self, handle: str, index: int) -> bool:
        return handle_key(handle) == handle_key(self.handle) and index in (0, self.index)


def admin_records(values: Iterable[HandleValue]) -> list[AdminRecord]:
    """The HS_ADMIN values among ``values`` that decode (malformed ones grant nothing)."""
    out = []
    for v in values:
        if v.type.upper() == "HS_ADMIN":
            try:
                out.append(AdminRecord.from_bytes(v.data))
            except ProtocolViolation:
                continue
    return out


class Authorizer:
    def __init__(self, store: HandleStore, server_admins: Iterable[Identity] = ()) -> None:
        self._store = store
        self._server_admins = tuple(server_admins)

    async def is_server_admin(self, identity: Identity) -> bool:
        return await self.is_any_of(identity, self._server_admins)

    async def is_any_of(self, identity: Identity, admins: Iterable[Identity]) -> bool:
        """Whether ``identity`` is one of ``admins`` or a member of one that is an HS_VLIST
        group."""
        for admin in admins:
            if await self._is_member(identity, admin.handle, admin.index, 0, set()):
                return True
        return False

    async def require(
        self, identity: Identity, admin_values: Iterable[HandleValue], perm: AdminPermission
    ) -> None:
        """Raise unless ``identity`` holds ``perm`` through ``admin_values`` (or is a server
        admin). InvalidAdmin when no HS_ADMIN names it at all, InsufficientPermissions when
        one does but without the bit."""
        if await self.is_server_admin(identity):
            return
        listed = False
        for record in admin_records(admin_values):
            if await self._is_member(identity, record.handle, record.index, 0, set()):
                if record.has(perm):
                    return
                listed = True
        if listed:
            raise InsufficientPermissions(f"{identity} lacks {perm.name} permission")
        raise InvalidAdmin(f"{identity} is not an administrator here")

    async def _is_member(
        self, identity: Identity, handle: str, index: int, depth: int, seen: set[tuple[str, int]]
    ) -> bool:
        if identity.names(handle, index):
            return True
        key = (handle_key(handle), index)
        if depth >= _MAX_GROUP_DEPTH or key in seen or index == 0:
            return False
        seen.add(key)
        values = await self._store.get_handle(handle)
        for v in values or ():
            if v.index != index or v.type.upper() != "HS_VLIST":
                continue
            try:
                group = ValueList.from_bytes(v.data)
            except ProtocolViolation:
                return False
            for ref in group.entries:
                if await self._is_member(identity, ref.handle, ref.index, depth + 1, seen):
                    return True
        return False
