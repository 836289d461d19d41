"""The SNMS-compatible REST API (spec §3.1) and the account administration API.

Every answer is HTTP 200 with the SNMS envelope ``{"status", "message", "data"}``:

====  ===========================================================================
 1    success
-1    not logged in: no or unknown/expired Bearer token, or a failed login
-2    business failure, ``message`` says why; a write its metadata template refuses has
      the per-field errors (``[{"field", "code", "message", "index"}]``) in ``data``
-3    no permission: the account's role, or the Handle identity it acts as lacks the
      HS_ADMIN permission for the write (e.g. another enterprise's prefix)
-4    internal error (logged)
====  ===========================================================================

Endpoints (``Authorization: Bearer <token>`` on all but the two logins):

* ``POST /identity/token``, ``POST /identity/token/v1``: ``{username, password}`` → ``data:
  {"token": ...}`` (:mod:`idnode.industry.accounts`);
* ``/snms/api/v5/template`` GET (``?prefix=&version=``), POST, PUT, DELETE: the SNMS template
  ``prefix`` + ``version`` is the template identifier ``<prefix>/META_<version>``
  (:func:`template_handle`);
* ``/identityv2/data``: GET ``/detail?handle=``, POST, PUT, DELETE; POST ``/batchCreate``,
  PUT ``/batchUpdate``, DELETE ``/batchDelete`` (at most 2000 items, per-item results);
* ``/api/admin/accounts`` (an app with ``publicKey`` gets an identity of its own,
  :meth:`~idnode.industry.accounts.AccountService.create_app`),
  ``/api/admin/accounts/<username>/enable|disable``, ``/api/admin/enterprises``,
  ``/api/admin/prefixes[/<prefix>[/<action>]]``.

Every write is a native request run by :meth:`Dispatcher.execute
<idnode.server.dispatch.Dispatcher.execute>` (batch registration by
:meth:`~idnode.server.dispatch.Dispatcher.register_handles`) as the account's Handle identity:
the permissions, template enforcement, index and audit trail of every other write path.
docs/snms-api.md documents the bodies.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from idnode.errors import (
    AuthenticationFailed,
    AuthenticationRequired,
    AuthenticationTimeout,
    HandleError,
    HandleNotFound,
    InsufficientPermissions,
    InvalidAdmin,
    InvalidValue,
)
from idnode.http.asgi import Handler, HTTPError, Request, Response, json_response
from idnode.industry.accounts import (
    ADMIN_GROUP_INDEX,
    ENTERPRISE_PERMISSIONS,
    AccountService,
    Role,
    parse_identity,
    public_key_data,
    service_for,
)
from idnode.industry.codes import TemplateViolation
from idnode.industry.history import TemplateHistory, merge_attributes
from idnode.industry.model import TemplateStatus
from idnode.industry.records import history_from_values, history_to_values
from idnode.industry.template_json import attribute_from_json, template_from_json, template_to_json
from idnode.protocol.bodies import (
    HandleRequest,
    ResolutionRequest,
    ResolutionResponse,
    ValuesRequest,
)
from idnode.protocol.codes import OpCode, OpFlag
from idnode.protocol.message import Message
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.values import HandleValue
from idnode.server.dispatch import Dispatcher
from idnode.store.accounts_sql import Account, PrefixApplication
from idnode.store.base import prefix_of

__all__ = ["MAX_BATCH", "SnmsApi", "snms_routes", "template_handle"]

log = logging.getLogger(__name__)

#: Most items of one batch call (spec §2.1 item 3).
MAX_BATCH = 2000
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_WRITERS = (Role.NODE_ADMIN, Role.ENTERPRISE_ADMIN, Role.APP)
_READERS = (*_WRITERS, Role.AUDITOR)


class _Failure(Exception):
    """An SNMS answer other than success: ``status``, ``message`` and maybe ``data``."""

    def __init__(self, status: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.data = status, message, data


def envelope(status: int, message: str = "success", data: Any = None) -> Response:
    return json_response({"status": status, "message": message, "data": data})


def failure_of(exc: HandleError) -> _Failure:
    """The SNMS status of a HandleError (see the module docstring)."""
    if isinstance(exc, AuthenticationFailed | AuthenticationRequired | AuthenticationTimeout):
        return _Failure(-1, exc.message or "not logged in")
    if isinstance(exc, InsufficientPermissions | InvalidAdmin):
        return _Failure(-3, exc.message or "no permission")
    if isinstance(exc, TemplateViolation):
        return _Failure(-2, exc.message, exc.to_json())
    return _Failure(-2, exc.message or (type(exc).__doc__ or "failed").strip().splitlines()[0])


def template_handle(prefix: str, version: str) -> str:
    """The identifier of the SNMS template ``prefix`` + ``version``: ``<prefix>/META_<version>``."""
    if not _VERSION.fullmatch(version):
        raise InvalidValue(f"version must be 1-128 of A-Z a-z 0-9 . _ - (not {version!r:.60})")
    return f"{prefix}/META_{version}"


def _text(body: dict[str, Any], name: str, limit: int = 255) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidValue(f"{name}: expected a non-empty text of at most {limit} characters")
    return value


def _group_admin(handle: str) -> HandleValue:
    """HS_ADMIN at 100 naming the enterprise admin group of ``handle``'s prefix."""
    group = f"0.NA/{prefix_of(handle)}"
    data = AdminRecord(ENTERPRISE_PERMISSIONS, group, ADMIN_GROUP_INDEX).to_bytes()
    return HandleValue(100, "HS_ADMIN", data)


def snms_routes(dispatcher: Dispatcher) -> list[tuple[str, Handler]]:
    """The routes of :class:`SnmsApi` over the dispatcher's store, with the node's token
    store (:func:`~idnode.industry.accounts.service_for`); none when the store keeps no
    accounts."""
    service = service_for(dispatcher)
    return [] if service is None else SnmsApi(dispatcher, service).routes()


class SnmsApi:
    """The routes of this module, to mount before ``/api`` (:meth:`routes`)."""

    def __init__(self, dispatcher: Dispatcher, service: AccountService) -> None:
        self.dispatcher = dispatcher
        self.service = service

    def routes(self) -> list[tuple[str, Handler]]:
        return [
            ("/identity/token", self._wrap(self._token)),
            ("/snms/api/v5/template", self._wrap(self._template)),
            ("/identityv2/data", self._wrap(self._data)),
            ("/api/admin", self._wrap(self._admin)),
        ]

    def _wrap(self, handler: Callable[[Request], Awaitable[Any]]) -> Handler:
        async def answer(request: Request) -> Response:
            try:
                return envelope(1, "success", await handler(request))
            except _Failure as exc:
                return envelope(exc.status, exc.message, exc.data)
            except HandleError as exc:
                failure = failure_of(exc)
                return envelope(failure.status, failure.message, failure.data)
            except HTTPError as exc:
                return envelope(-2, exc.message)
            except Exception:
                log.exception("SNMS %s %s failed", request.method, request.path)
                return envelope(-4, "internal error")

        return answer

    # -- plumbing --------------------------------------------------------------------------
    async def _account(self, request: Request, roles: tuple[Role, ...]) -> Account:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _Failure(-1, "not logged in: send Authorization: Bearer <token>")
        account = await self.service.authenticate(token.strip())
        AccountService.require(account, *roles)
        return account

    @staticmethod
    async def _body(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            raise _Failure(-2, f"malformed JSON: {exc}") from exc

    async def _object(self, request: Request) -> dict[str, Any]:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise _Failure(-2, "expected a JSON object")
        return body

    async def _run(self, account: Account, op: int, body: Any, flags: int = 0) -> Message:
        request = Message(op=op, body=body, flags=flags)
        return await self.dispatcher.execute(request, parse_identity(account.identity))

    @staticmethod
    def _route(request: Request, base: str) -> tuple[str, str]:
        rest = request.path[len(base) :].strip("/")
        return request.method, rest

    # -- login -----------------------------------------------------------------------------
    async def _token(self, request: Request) -> Any:
        method, rest = self._route(request, "/identity/token")
        if method != "POST" or rest not in ("", "v1"):
            raise _Failure(-2, f"unknown endpoint {method} {request.path}")
        body = await self._object(request)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise _Failure(-1, "username and password are required")
        token = await self.service.login(username, password, hashed=rest == "v1")
        return {"token": token}

    # -- templates -------------------------------------------------------------------------
    async def _template(self, request: Request) -> Any:
        method, rest = self._route(request, "/snms/api/v5/template")
        if rest:
            raise _Failure(-2, f"unknown endpoint {method} {request.path}")
        if method == "GET":
            account = await self._account(request, _READERS)
            prefix, version = request.param("prefix") or "", request.param("version") or ""
            handle = template_handle(prefix, version)
            history = await self._history(handle)
            return {**template_to_json(history.latest), "version": version,
                    "revision": history.latest.version}  # fmt: skip
        account = await self._account(request, _WRITERS)
        body = await self._object(request)
        prefix, version = _text(body, "prefix"), _text(body, "version", 128)
        handle = template_handle(prefix, version)
        if method == "POST":
            await self._create_template(account, handle, body)
        elif method == "PUT":
            await self._edit_template(account, handle, body)
        elif method == "DELETE":
            history = await self._history(handle)
            await self._write_template(account, history.withdraw())
        else:
            raise _Failure(-2, f"unknown endpoint {method} {request.path}")
        return True

    async def _history(self, handle: str) -> TemplateHistory:
        values = await self.dispatcher.store.get_handle(handle)
        if values is None:
            raise HandleNotFound(f"no template {handle}")
        return history_from_values(handle, values)

    async def _create_template(self, account: Account, handle: str, body: dict[str, Any]) -> None:
        definition = {**body, "version": 1, "metaState": body.get("metaState", 1)}
        definition.pop("handle", None)
        definition.pop("prefix", None)
        template = template_from_json(definition, handle=handle)
        history = TemplateHistory.start(template)
        values = (_group_admin(handle), *history_to_values(history))
        await self._run(account, OpCode.CREATE_HANDLE, ValuesRequest(handle, values))

    async def _edit_template(self, account: Account, handle: str, body: dict[str, Any]) -> None:
        """SNMS v5 incremental edit: ``items`` replace the attributes they name (by idType)
        and add the others, in the draft (a published newest version opens version n+1);
        then the draft is published unless ``metaState`` is 0."""
        history = await self._history(handle)
        items = body.get("items", [])
        if not isinstance(items, list):
            raise InvalidValue("items: expected an array")
        if items:
            if history.draft is None:
                history = history.new_version()
            draft = history.latest
            updates = []
            next_index = max((a.index for a in draft.attributes), default=1999) + 1
            for n, item in enumerate(items):
                key = item.get("idType") if isinstance(item, dict) else None
                known = next((a for a in draft.attributes if a.key == key), None)
                index = known.index if known is not None else next_index
                next_index += known is None
                updates.append(attribute_from_json(item, index=index, path=f"items[{n}]"))
            merged = merge_attributes(draft, updates)
            history = history.revise(merged)
        publish = body.get("metaState", 1) in (1, "1")
        withdrawn = (
            history.current is not None and history.current.status is TemplateStatus.WITHDRAWN
        )
        if publish and (history.draft is not None or withdrawn):
            history = history.publish()
        await self._write_template(account, history)

    async def _write_template(self, account: Account, history: TemplateHistory) -> None:
        body = ValuesRequest(history.id, history_to_values(history))
        await self._run(account, OpCode.ADD_VALUE, body, OpFlag.OVRW)

    # -- identifiers -----------------------------------------------------------------------
    async def _data(self, request: Request) -> Any:
        method, rest = self._route(request, "/identityv2/data")
        if (method, rest) == ("GET", "detail"):
            account = await self._account(request, _READERS)
            return await self._detail(account, request.param("handle") or "")
        account = await self._account(request, _WRITERS)
        if (method, rest) == ("POST", ""):
            handle, values = _register_body(await self._object(request))
            await self._run(account, OpCode.CREATE_HANDLE, ValuesRequest(handle, values))
            return True
        if (method, rest) == ("PUT", ""):
            await self._update(account, await self._object(request))
            return True
        if (method, rest) == ("DELETE", ""):
            handle = _text(await self._object(request), "handle")
            await self._run(account, OpCode.DELETE_HANDLE, HandleRequest(handle))
            return True
        if (method, rest) == ("POST", "batchCreate"):
            return await self._batch_create(account, await self._items(request))
        if (method, rest) == ("PUT", "batchUpdate"):
            return await self._batch_update(account, await self._items(request))
        if (method, rest) == ("DELETE", "batchDelete"):
            return await self._batch_delete(account, await self._items(request))
        raise _Failure(-2, f"unknown endpoint {method} {request.path}")

    async def _items(self, request: Request) -> list[Any]:
        items = await self._body(request)
        if not isinstance(items, list):
            raise _Failure(-2, "expected a JSON array")
        if len(items) > MAX_BATCH:
            raise _Failure(-2, f"at most {MAX_BATCH} items per call")
        return items

    async def _detail(self, account: Account, handle: str) -> dict[str, Any]:
        if not handle:
            raise InvalidValue("handle: required")
        message = await self._run(account, OpCode.RESOLUTION, ResolutionRequest(handle))
        assert isinstance(message.body, ResolutionResponse)
        return detail_json(handle, message.body.values)

    async def _update(self, account: Account, body: dict[str, Any]) -> None:
        """Replace the identifier's template link and data (indexes 1000 and up) by the
        body's; values below 1000 (HS_ADMIN, URL, ...) are kept. One overwriting CREATE, so
        the template checks the record as a modification."""
        handle, values = _register_body(body)
        existing = await self.dispatcher.store.get_handle(handle)
        if existing is None:
            raise HandleNotFound("identifier does not exist")
        kept = [v for v in existing if v.index < 1000]
        new = [v for v in values if v.index >= 1000]
        body_ = ValuesRequest(handle, (*kept, *new))
        await self._run(account, OpCode.CREATE_HANDLE, body_, OpFlag.OVRW)

    async def _batch_create(self, account: Account, items: list[Any]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        valid: list[tuple[str, tuple[HandleValue, ...]]] = []
        positions: list[int] = []
        for position, item in enumerate(items):
            try:
                handle, values = _register_body(item)
            except HandleError as exc:
                results.append(_item_result(_handle_of(item), exc))
                continue
            results.append({"handle": handle, "msg": "success"})
            valid.append((handle, values))
            positions.append(position)
        identity = parse_identity(account.identity)
        outcomes = await self.dispatcher.register_handles(valid, identity) if valid else []
        for position, outcome in zip(positions, outcomes, strict=True):
            if outcome.code != 1:
                results[position]["msg"] = outcome.message or "failed"
            if outcome.errors:
                results[position]["errors"] = [e.to_json() for e in outcome.errors]
        return results

    async def _batch_update(self, account: Account, items: list[Any]) -> list[dict[str, Any]]:
        results = []
        for item in items:
            try:
                if not isinstance(item, dict):
                    raise InvalidValue("each item must be an object")
                await self._update(account, item)
                results.append({"handle": _handle_of(item), "msg": "success"})
            except HandleError as exc:
                results.append(_item_result(_handle_of(item), exc))
        return results

    async def _batch_delete(self, account: Account, items: list[Any]) -> list[dict[str, Any]]:
        results = []
        for handle in items:
            try:
                if not isinstance(handle, str) or not handle:
                    raise InvalidValue("each item must be a handle")
                await self._run(account, OpCode.DELETE_HANDLE, HandleRequest(handle))
                results.append({"handle": handle, "code": 1, "msg": "success"})
            except HandleError as exc:
                failure = failure_of(exc)
                name = handle if isinstance(handle, str) else ""
                results.append({"handle": name, "code": failure.status, "msg": failure.message})
        return results

    # -- administration --------------------------------------------------------------------
    async def _admin(self, request: Request) -> Any:
        method, rest = self._route(request, "/api/admin")
        parts = rest.split("/") if rest else []
        service = self.service
        if parts == ["accounts"]:
            if method == "GET":
                account = await self._account(request, (Role.NODE_ADMIN, Role.AUDITOR))
                return [account_json(a) for a in await service.repository.list_accounts()]
            account = await self._account(request, (Role.NODE_ADMIN, Role.ENTERPRISE_ADMIN))
            body = await self._object(request)
            enterprise = body.get("enterprise")
            if body.get("role") == Role.APP and "publicKey" in body:
                created = await service.create_app(
                    account, _text(body, "username", 50), _text(body, "password", 64),
                    _text(body, "enterprise", 50),
                    public_key_data(_text(body, "publicKey", 20_000).encode()),
                )  # fmt: skip
                return account_json(created)
            AccountService.require(account, Role.NODE_ADMIN)
            created = await service.create_account(
                account, _text(body, "username", 50), _text(body, "password", 64),
                _text(body, "role"), _text(body, "identity"),
                enterprise if isinstance(enterprise, str) else None,
            )  # fmt: skip
            return account_json(created)
        if len(parts) == 3 and parts[0] == "accounts" and parts[2] in ("enable", "disable"):
            if method != "POST":
                raise _Failure(-2, f"unknown endpoint {method} {request.path}")
            account = await self._account(request, (Role.NODE_ADMIN, Role.ENTERPRISE_ADMIN))
            changed = await service.set_enabled(account, parts[1], parts[2] == "enable")
            return account_json(changed)
        if parts == ["enterprises"]:
            if method == "GET":
                await self._account(request, (Role.NODE_ADMIN, Role.AUDITOR))
                return [vars_of(e) for e in await service.repository.list_enterprises()]
            account = await self._account(request, (Role.NODE_ADMIN,))
            body = await self._object(request)
            enterprise = await service.create_enterprise(
                account, _text(body, "id", 50), _text(body, "name", 200),
                str(body.get("contact", "")), _text(body, "adminIdentity"),
            )  # fmt: skip
            return vars_of(enterprise)
        if parts and parts[0] == "prefixes":
            return await self._prefixes(request, method, parts[1:])
        raise _Failure(-2, f"unknown endpoint {method} {request.path}")

    async def _prefixes(self, request: Request, method: str, parts: list[str]) -> Any:
        service = self.service
        if not parts and method == "GET":
            account = await self._account(request, _READERS)
            own = (
                account.enterprise_id
                if account.role not in (Role.NODE_ADMIN, Role.AUDITOR)
                else None
            )
            if account.role in (Role.ENTERPRISE_ADMIN, Role.APP) and own is None:
                raise InsufficientPermissions("no enterprise")
            return [application_json(a) for a in await service.repository.list_applications(own)]
        if not parts and method == "POST":
            account = await self._account(request, (Role.NODE_ADMIN, Role.ENTERPRISE_ADMIN))
            body = await self._object(request)
            hosted = body.get("hosted", True) not in (False, 0, "false")
            application = await service.apply(
                account, _text(body, "prefix", 128), _text(body, "enterprise", 50), hosted=hosted
            )
            return application_json(application)
        if len(parts) == 1 and method == "GET":
            account = await self._account(request, (Role.NODE_ADMIN, Role.AUDITOR))
            found = await service.repository.get_application(parts[0])
            if found is None:
                raise HandleNotFound(f"no application for the prefix {parts[0]}")
            history = [vars_of(t) for t in await service.history(parts[0])]
            return {**application_json(found), "transitions": history}
        if len(parts) == 2 and method == "POST":
            account = await self._account(request, (Role.NODE_ADMIN,))
            return application_json(await service.transition(account, parts[0], parts[1]))
        raise _Failure(-2, f"unknown endpoint {method} {request.path}")


def vars_of(obj: Any) -> dict[str, Any]:
    """A slotted dataclass as a JSON object with camelCase member names."""
    out = {}
    for name in obj.__slots__:
        head, *tail = name.split("_")
        out[head + "".join(t.title() for t in tail)] = getattr(obj, name)
    return out


def account_json(account: Account) -> dict[str, Any]:
    """An account without its password hashes."""
    out = vars_of(account)
    del out["passwordHash"], out["v1Digest"]
    return out


def application_json(application: PrefixApplication) -> dict[str, Any]:
    return vars_of(application)


def _handle_of(item: Any) -> str:
    handle = item.get("handle") if isinstance(item, dict) else None
    return handle if isinstance(handle, str) else ""


def _item_result(handle: str, exc: HandleError) -> dict[str, Any]:
    failure = failure_of(exc)
    result: dict[str, Any] = {"handle": handle, "msg": failure.message}
    if failure.data is not None:
        result["errors"] = failure.data
    return result


def _register_body(body: Any) -> tuple[str, tuple[HandleValue, ...]]:
    """(handle, values) of an SNMS register body: the HS_ADMIN of the enterprise group at
    100, the template link at 1001 (``<prefix>/META_<templateVersion>``) and one value per
    item (``data.format`` must be ``string``); InvalidValue for a malformed body."""
    if not isinstance(body, dict):
        raise InvalidValue("expected a register body object")
    handle = _text(body, "handle")
    if "/" not in handle:
        raise InvalidValue(f"handle: {handle!r} is not <prefix>/<suffix>")
    template = template_handle(prefix_of(handle), _text(body, "templateVersion", 128))
    items = body.get("value")
    if not isinstance(items, list):
        raise InvalidValue("value: expected an array")
    values = [_group_admin(handle), HandleValue(1001, "TEMPLATE", template.encode())]
    for n, item in enumerate(items):
        where = f"value[{n}]"
        if not isinstance(item, dict):
            raise InvalidValue(f"{where}: expected an object")
        index, vtype, data = item.get("index"), item.get("type"), item.get("data")
        if isinstance(index, str) and index.isdigit():
            index = int(index)
        if not isinstance(index, int) or isinstance(index, bool) or index < 2000:
            raise InvalidValue(f"{where}.index: expected an integer of 2000 or more")
        if not isinstance(vtype, str) or not vtype:
            raise InvalidValue(f"{where}.type: expected the attribute's idType")
        if not isinstance(data, dict) or data.get("format", "string") != "string":
            raise InvalidValue(f'{where}.data: expected {{"format": "string", "value": ...}}')
        text = data.get("value")
        if not isinstance(text, str):
            raise InvalidValue(f"{where}.data.value: expected a text")
        values.append(HandleValue(index, vtype, text.encode("utf-8")))
    return handle, tuple(values)


def detail_json(handle: str, values: tuple[HandleValue, ...]) -> dict[str, Any]:
    """The SNMS resolve answer: the values except HS_* ones, each as ``{index, type, auth,
    data: {format, value}}`` (``string`` for UTF-8, else ``base64``); ``templateVersion`` is
    the SNMS version of the template linked at 1001 (the handle itself if it is not
    ``<prefix>/META_<version>``)."""

    prefix = prefix_of(handle)
    template_version = ""
    out = []
    for v in values:
        if v.type.upper().startswith("HS_"):
            continue
        try:
            text, fmt = v.data.decode("utf-8"), "string"
        except UnicodeDecodeError:
            text, fmt = base64.b64encode(v.data).decode(), "base64"
        if v.index == 1001 and v.type == "TEMPLATE":
            marker = f"{prefix}/META_"
            template_version = text[len(marker) :] if text.startswith(marker) else text
            text = template_version
        out.append(
            {"index": v.index, "type": v.type, "auth": "", "data": {"format": fmt, "value": text}}
        )
    return {"prefix": prefix, "handle": handle, "templateVersion": template_version, "value": out}
