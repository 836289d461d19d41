"""Data permissions: per-attribute view and edit grants (spec industrial-identifier-system §2.3).

Grants are handle values, so they replicate, audit and are administered like any other value
(the record's HS_ADMIN decides who may write them). Their data is compact UTF-8 JSON; an
identity is ``index:handle``, and one naming an HS_VLIST stands for its members (the
:class:`~idnode.server.authz.Authorizer`'s groups)::

    template record
      1010  TEMPLATE.GRANT       {"scope": "public"|"specified", "users": ["300:88.118.9/APP"]}
      1011  TEMPLATE.CLASSGRANT  {"items": {"<attribute key>": {
                                      "view": {"scope": "public"|"specified", "users": [...]},
                                      "edit": {"users": [...]}}}}
    instance record
      1900-1999  GRANT           {"grantType": 1|2, "readerScope": "public"|"specified",
                                  "readers": [...], "writers": [...]}

Who may **view** a value (:meth:`RecordGrants.can_view`):

* a value no grant governs (:meth:`RecordGrants.governs`) follows the Handle rules: everyone
  if it has PUBLIC_READ, else an identity with READ_VALUE through the record's HS_ADMIN (or a
  server administrator) if it has ADMIN_READ;
* an instance's attribute values (index ≥ 2000 in a record linking a template) are governed.
  An identity with READ_VALUE on the record (or a server administrator) sees them all. Anyone
  else sees a value when the class grant of its attribute has a ``view`` entry that is public
  or names them (without a ``view`` entry the value's own PUBLIC_READ flag decides), when the
  class ``edit`` entry names them (edit implies view), or when an individual grant of the
  identifier (``grantType`` 2) has ``readerScope`` public or lists them as reader or writer;
* a template record whose template-level grant is ``specified`` governs its definitions:
  administrators and the listed identities see them. A ``public`` template grant shows them
  to everyone.

Who may **edit** an attribute value without being an administrator of the record
(:meth:`RecordGrants.can_edit`): the identities of the class ``edit`` entry of that attribute,
and the writers of an individual grant. Edit grants are always specified (spec §2.3).

A malformed grant value grants nothing (like a malformed HS_ADMIN).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from idnode.errors import InsufficientPermissions, InvalidAdmin, InvalidValue
from idnode.industry.layout import (
    CLASS_GRANT_INDEX,
    CLASS_GRANT_TYPE,
    DATA_INDEX_START,
    DEFINITION_TYPE,
    INSTANCE_GRANT_INDEXES,
    INSTANCE_GRANT_TYPE,
    TEMPLATE_GRANT_INDEX,
    TEMPLATE_GRANT_TYPE,
)
from idnode.industry.records import is_template_record, template_link
from idnode.protocol.codes import AdminPermission, Permission
from idnode.protocol.values import HandleValue
from idnode.server.authz import Authorizer, Identity

__all__ = [
    "Access",
    "ClassGrants",
    "GrantPolicy",
    "GrantVisibility",
    "InstanceGrant",
    "RecordGrants",
    "Scope",
    "TemplateRecords",
    "class_grants_from_value",
    "class_grants_value",
    "instance_grant_from_value",
    "instance_grant_value",
    "parse_identity",
    "template_grant_from_value",
    "template_grant_value",
]

#: Grant values are readable by everyone, like HS_ADMIN: other nodes evaluating a template's
#: class grants read them through public resolution.
GRANT_PERMISSIONS = int(Permission.PUBLIC_READ | Permission.ADMIN_READ | Permission.ADMIN_WRITE)

#: Where a template's record comes from: its values, or None when it cannot be read.
TemplateRecords = Callable[[str], Awaitable[tuple[HandleValue, ...] | None]]


class Scope(enum.StrEnum):
    """Who a view grant admits (spec §2.3 ``scope`` 1 / 2)."""

    PUBLIC = "public"  #: everyone, anonymous callers included
    SPECIFIED = "specified"  #: the listed identities and groups


def parse_identity(text: str) -> Identity:
    """``index:handle`` as an :class:`Identity`; raises InvalidValue."""
    index, sep, handle = text.partition(":")
    if not sep or not index.isdigit() or "/" not in handle:
        raise InvalidValue(f"expected an identity index:handle, got {text!r}")
    return Identity(handle, int(index))


@dataclass(frozen=True, slots=True)
class Access:
    """A scope and the identities (or groups) it lists."""

    scope: Scope = Scope.SPECIFIED
    users: tuple[Identity, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"scope": self.scope.value, "users": [str(u) for u in self.users]}

    @classmethod
    def from_json(cls, obj: Any, *, what: str) -> Access:
        if not isinstance(obj, dict):
            raise InvalidValue(f"{what}: expected an object")
        try:
            scope = Scope(obj.get("scope", Scope.SPECIFIED.value))
        except ValueError:
            raise InvalidValue(f"{what}.scope: expected public or specified") from None
        return cls(scope, _users(obj.get("users", []), f"{what}.users"))

    def with_users(self, add: Iterable[Identity] = (), remove: Iterable[Identity] = ()) -> Access:
        gone = set(remove)
        users = [u for u in self.users if u not in gone]
        users += [u for u in add if u not in users]
        return Access(self.scope, tuple(users))


def _users(obj: Any, what: str) -> tuple[Identity, ...]:
    if not isinstance(obj, list) or not all(isinstance(u, str) for u in obj):
        raise InvalidValue(f"{what}: expected a list of index:handle texts")
    return tuple(parse_identity(u) for u in obj)


@dataclass(frozen=True, slots=True)
class ClassGrants:
    """The class grants of a template, by attribute key (compared ignoring case)."""

    view: Mapping[str, Access] = field(default_factory=dict)
    edit: Mapping[str, tuple[Identity, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        items: dict[str, Any] = {}
        for key, access in self.view.items():
            items.setdefault(key, {})["view"] = access.to_json()
        for key, users in self.edit.items():
            items.setdefault(key, {})["edit"] = {"users": [str(u) for u in users]}
        return {"items": items}

    def view_of(self, key: str) -> Access | None:
        return next((a for k, a in self.view.items() if k.casefold() == key.casefold()), None)

    def editors_of(self, key: str) -> tuple[Identity, ...]:
        found = (u for k, u in self.edit.items() if k.casefold() == key.casefold())
        return next(found, ())


@dataclass(frozen=True, slots=True)
class InstanceGrant:
    """A single-identifier grant: ``grantType`` 1 follows the class grants (grants nothing
    more), 2 is individual: readers (or everyone) may view every attribute, writers may edit
    every attribute."""

    grant_type: int = 2
    reader_scope: Scope = Scope.SPECIFIED
    readers: tuple[Identity, ...] = ()
    writers: tuple[Identity, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "grantType": self.grant_type,
            "readerScope": self.reader_scope.value,
            "readers": [str(u) for u in self.readers],
            "writers": [str(u) for u in self.writers],
        }

    @classmethod
    def from_json(cls, obj: Any) -> InstanceGrant:
        if not isinstance(obj, dict):
            raise InvalidValue("GRANT: expected an object")
        grant_type = obj.get("grantType", 2)
        if grant_type not in (1, 2):
            raise InvalidValue("GRANT.grantType: expected 1 (follow class) or 2 (individual)")
        try:
            scope = Scope(obj.get("readerScope", Scope.SPECIFIED.value))
        except ValueError:
            raise InvalidValue("GRANT.readerScope: expected public or specified") from None
        readers = _users(obj.get("readers", []), "GRANT.readers")
        return cls(grant_type, scope, readers, _users(obj.get("writers", []), "GRANT.writers"))


# -- values ------------------------------------------------------------------------------------
def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _json_of(value: HandleValue) -> Any:
    try:
        return json.loads(value.data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidValue(f"{value.type} at {value.index} is not JSON") from None


def template_grant_value(access: Access) -> HandleValue:
    """The 1010 TEMPLATE.GRANT value holding ``access``."""
    data = _json_bytes(access.to_json())
    return HandleValue(
        TEMPLATE_GRANT_INDEX, TEMPLATE_GRANT_TYPE, data, permissions=GRANT_PERMISSIONS
    )


def template_grant_from_value(value: HandleValue) -> Access:
    """Raises InvalidValue for a malformed value."""
    return Access.from_json(_json_of(value), what=TEMPLATE_GRANT_TYPE)


def class_grants_value(grants: ClassGrants) -> HandleValue:
    """The 1011 TEMPLATE.CLASSGRANT value holding ``grants``."""
    data = _json_bytes(grants.to_json())
    return HandleValue(CLASS_GRANT_INDEX, CLASS_GRANT_TYPE, data, permissions=GRANT_PERMISSIONS)


def class_grants_from_value(value: HandleValue) -> ClassGrants:
    """Raises InvalidValue for a malformed value."""
    obj = _json_of(value)
    items = obj.get("items") if isinstance(obj, dict) else None
    if not isinstance(items, dict):
        raise InvalidValue(f"{CLASS_GRANT_TYPE}: expected {{'items': {{...}}}}")
    view: dict[str, Access] = {}
    edit: dict[str, tuple[Identity, ...]] = {}
    for key, entry in items.items():
        if not isinstance(entry, dict):
            raise InvalidValue(f"{CLASS_GRANT_TYPE}.items.{key}: expected an object")
        if "view" in entry:
            view[key] = Access.from_json(entry["view"], what=f"items.{key}.view")
        if "edit" in entry:
            edit_obj = entry["edit"]
            if not isinstance(edit_obj, dict) or edit_obj.get("scope", "specified") != "specified":
                raise InvalidValue(f"items.{key}.edit: edit grants are always specified")
            edit[key] = _users(edit_obj.get("users", []), f"items.{key}.edit.users")
    return ClassGrants(view, edit)


def instance_grant_value(
    grant: InstanceGrant, index: int = INSTANCE_GRANT_INDEXES[0]
) -> HandleValue:
    """A GRANT value (default index 1900) holding ``grant``."""
    data = _json_bytes(grant.to_json())
    return HandleValue(index, INSTANCE_GRANT_TYPE, data, permissions=GRANT_PERMISSIONS)


def instance_grant_from_value(value: HandleValue) -> InstanceGrant:
    """Raises InvalidValue for a malformed value."""
    return InstanceGrant.from_json(_json_of(value))


def _parsed(values: Iterable[HandleValue], index: int, vtype: str) -> HandleValue | None:
    return next((v for v in values if v.index == index and v.type == vtype), None)


# -- evaluation --------------------------------------------------------------------------------
class RecordGrants:
    """The grants that apply to one record, evaluated for any viewer (module docstring).

    Membership checks go through the :class:`Authorizer` and are remembered for the lifetime
    of this object (one request)."""

    def __init__(
        self,
        authorizer: Authorizer,
        record: Sequence[HandleValue],
        *,
        instance: bool = False,
        classes: ClassGrants | None = None,
        individual: Sequence[InstanceGrant] = (),
        template_access: Access | None = None,
    ) -> None:
        self.authorizer = authorizer
        self.record = tuple(record)
        self.instance = instance
        self.classes = classes or ClassGrants()
        self.individual = tuple(g for g in individual if g.grant_type == 2)
        self.template_access = template_access
        self._admin: dict[tuple[Identity, AdminPermission], bool] = {}
        self._member: dict[tuple[Identity, tuple[Identity, ...]], bool] = {}

    def governs(self, value: HandleValue) -> bool:
        """Whether grants, not the Handle rules alone, decide who sees ``value``."""
        if self.instance:
            return value.index >= DATA_INDEX_START
        return self.template_access is not None and value.type == DEFINITION_TYPE

    async def is_admin(self, viewer: Identity, perm: AdminPermission) -> bool:
        """Whether ``viewer`` holds ``perm`` through the record's HS_ADMIN (or is a server
        administrator)."""
        key = (viewer, perm)
        if key not in self._admin:
            try:
                await self.authorizer.require(viewer, self.record, perm)
                self._admin[key] = True
            except (InvalidAdmin, InsufficientPermissions):
                self._admin[key] = False
        return self._admin[key]

    async def _in(self, viewer: Identity | None, users: tuple[Identity, ...]) -> bool:
        if viewer is None or not users:
            return False
        key = (viewer, users)
        if key not in self._member:
            self._member[key] = await self.authorizer.is_any_of(viewer, users)
        return self._member[key]

    async def can_view(self, viewer: Identity | None, value: HandleValue) -> bool:
        """Whether ``viewer`` (None: anonymous) may see ``value`` of this record."""
        if not self.governs(value):
            if value.public_read:
                return True
            return (
                viewer is not None
                and value.admin_read
                and await self.is_admin(viewer, AdminPermission.READ_VALUE)
            )
        if viewer is not None and await self.is_admin(viewer, AdminPermission.READ_VALUE):
            return True
        if not self.instance:
            access = self.template_access
            assert access is not None
            return access.scope is Scope.PUBLIC or await self._in(viewer, access.users)
        view = self.classes.view_of(value.type)
        if view is None:
            if value.public_read:
                return True
        elif view.scope is Scope.PUBLIC or await self._in(viewer, view.users):
            return True
        if await self._in(viewer, self.classes.editors_of(value.type)):
            return True
        for grant in self.individual:
            if grant.reader_scope is Scope.PUBLIC:
                return True
            if await self._in(viewer, grant.readers + grant.writers):
                return True
        return False

    async def can_edit(self, editor: Identity, attribute: str) -> bool:
        """Whether ``editor`` has an edit grant for ``attribute`` (an instance's attribute key)
        of this record: the class ``edit`` entry or an individual grant's writers."""
        if not self.instance:
            return False
        if await self._in(editor, self.classes.editors_of(attribute)):
            return True
        for grant in self.individual:
            if await self._in(editor, grant.writers):
                return True
        return False

    async def visible(
        self, values: Iterable[HandleValue], viewer: Identity | None
    ) -> tuple[HandleValue, ...]:
        """The values of ``values`` that ``viewer`` may see, in their order."""
        return tuple([v for v in values if await self.can_view(viewer, v)])


class GrantPolicy:
    """Builds :class:`RecordGrants` for records: an instance's class grants come from its
    template's record, read with ``template_record`` (the store for a template held here,
    else public resolution); a template that cannot be read contributes no class grants."""

    def __init__(self, authorizer: Authorizer, template_record: TemplateRecords) -> None:
        self.authorizer = authorizer
        self.template_record = template_record

    async def for_record(self, record: Sequence[HandleValue]) -> RecordGrants:
        """The grants of ``record`` (an instance, a template or neither). Costs one scan of
        the values, plus one read of the template's record for an instance."""
        link = template_link(record)
        if link is not None:
            classes = None
            template = await self.template_record(link[0])
            value = _parsed(template or (), CLASS_GRANT_INDEX, CLASS_GRANT_TYPE)
            if value is not None:
                try:
                    classes = class_grants_from_value(value)
                except InvalidValue:
                    classes = None
            individual = []
            for v in record:
                if v.index in INSTANCE_GRANT_INDEXES and v.type == INSTANCE_GRANT_TYPE:
                    try:
                        individual.append(instance_grant_from_value(v))
                    except InvalidValue:
                        continue
            return RecordGrants(
                self.authorizer, record, instance=True, classes=classes, individual=individual
            )
        if is_template_record(record):
            value = _parsed(record, TEMPLATE_GRANT_INDEX, TEMPLATE_GRANT_TYPE)
            access = None
            if value is not None:
                try:
                    access = template_grant_from_value(value)
                except InvalidValue:
                    access = Access()  # malformed: admins only
            return RecordGrants(self.authorizer, record, template_access=access)
        return RecordGrants(self.authorizer, record)


class GrantVisibility:
    """The trace's :class:`~idnode.industry.trace.Visibility` under data permissions: what
    :meth:`RecordGrants.can_view` allows, as resolution answers it."""

    def __init__(self, policy: GrantPolicy) -> None:
        self.policy = policy

    async def visible(
        self, handle: str, values: tuple[HandleValue, ...], viewer: Identity | None
    ) -> tuple[HandleValue, ...]:
        grants = await self.policy.for_record(values)
        return await grants.visible(values, viewer)
