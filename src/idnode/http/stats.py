"""``/api/stats`` (statistics per prefix per day) and ``/api/report`` (child nodes reporting).

* ``GET /api/stats?prefix=P&from=YYYY-MM-DD&to=YYYY-MM-DD`` → 200::

      {"responseCode": 1, "prefix": null, "from": null, "to": null,
       "stats": [{"prefix": "88.118.8", "day": "2026-03-02", "resolutions": 1200,
                  "registrations": 35}, ...],
       "totals": {"resolutions": 1200, "registrations": 35}}

  per prefix per UTC day, ordered by day then prefix, of prefix P only and of the days
  ``from`` to ``to`` (inclusive) when given. The node flushes its counters first
  (:class:`~idnode.server.stats.StatsFlusher`), so the answer counts every resolution
  answered and every registration made before the request.
* ``GET /api/stats?children=1&from=&to=`` (``children`` 1, true, yes or empty) → 200
  ``{"responseCode": 1, "children": [{"child": "320:0.NA/88.118.8", "received": "<ISO
  date>", "homed": [...], "delegated": [...], "stats": [...], "totals": {...}}, ...]}``:
  what the child nodes reported (their last report, and their counts of the days asked
  for).

  Both read-only, for the readers :func:`read_scope` admits (as ``/api/audit``): server
  administrators and the node_admin and auditor accounts see every prefix; an
  enterprise_admin account sees the prefixes of its enterprise only (a ``prefix`` outside
  them → 403, the rows of other prefixes are left out, ``children`` → 403). A reader
  authenticates as for the rest of the API (Basic or ``Authorization: Handle``, as an
  identity; an identity that is an account's identity gets that account's reach) or with
  ``Authorization: Bearer <token>`` from the SNMS login (``/identity/token``). None → 401
  (responseCode 402), a bad or expired token → 401 (403), anyone else → 403 (400); a bad
  day → 400 (4).
* ``POST /api/report`` with a report (:mod:`idnode.server.stats`) as its JSON body, from a
  child node authenticated as an identity on the prefix handle of a prefix this node
  delegated (e.g. an HS_PUBKEY at ``320:0.NA/88.118.8`` holding the child's server key, with
  ``Authorization: Handle``; or an HS_SECKEY with Basic) → 200 ``{"responseCode": 1,
  "child": "<identity>", "counts": N}``. Anonymous → 401 (402); an identity not on such a
  prefix handle → 403 (401); a malformed report, or one listing a prefix outside the
  child's → 400 (202).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

from idnode.errors import HandleError, InsufficientPermissions, InvalidAdmin
from idnode.http.asgi import HTTPError, Request, Response
from idnode.http.auth import Authenticator, AuthFailed
from idnode.http.common import (
    ApiEndpoint,
    Params,
    is_json,
    protocol_error,
    render,
    to_http_error,
    unknown_endpoint,
)
from idnode.industry.accounts import Role, service_for
from idnode.protocol.codes import ResponseCode
from idnode.server.authz import Identity
from idnode.server.dispatch import Dispatcher
from idnode.server.stats import StatsFlusher, accept_report
from idnode.store.accounts_sql import Account
from idnode.store.base import handle_key, prefix_of
from idnode.store.stats import ChildReport, DayCount, valid_day

__all__ = ["ReadScope", "ReportApi", "StatsApi", "read_scope", "stats_json"]


def _day(params: Params, name: str) -> str | None:
    value = params.first(name) or None
    if value is not None and not valid_day(value):
        raise protocol_error(f"{name} must be a day, YYYY-MM-DD, not {value!r:.40}")
    return value


def stats_json(counts: list[DayCount] | tuple[DayCount, ...]) -> dict[str, Any]:
    """``stats`` and ``totals`` of an answer."""
    return {
        "stats": [c.to_json() for c in counts],
        "totals": {
            "resolutions": sum(c.resolutions for c in counts),
            "registrations": sum(c.registrations for c in counts),
        },
    }


def _child_json(report: ChildReport) -> dict[str, Any]:
    date = datetime.datetime.fromtimestamp(report.received_ms / 1000, datetime.UTC)
    listed = json.loads(report.report)
    return {
        "child": report.child,
        "received": date.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "homed": listed.get("homed", []),
        "delegated": listed.get("delegated", []),
        **stats_json(report.counts),
    }


async def _identify(auth: Authenticator, request: Request) -> Identity:
    identity = await auth.identify(request)
    if identity is None:
        raise HTTPError(ResponseCode.AUTHENTICATION_NEEDED, "Authentication needed")
    return identity


@dataclass(frozen=True)
class ReadScope:
    """What a reader of statistics and of the audit trail may see: every prefix
    (``prefixes`` None) or exactly the listed ones (a prefix derived from one may belong to
    another enterprise: it is covered when it is listed)."""

    reader: str
    prefixes: frozenset[str] | None = None

    def covers_prefix(self, prefix: str) -> bool:
        if self.prefixes is None:
            return True
        return handle_key(prefix) in self.prefixes

    def covers_handle(self, handle: str) -> bool:
        """Whether ``handle`` is an identifier, or the prefix handle ``0.NA/<p>``, of a
        covered prefix."""
        prefix = prefix_of(handle)
        if handle_key(prefix) == "0.NA" and "/" in handle:
            return self.covers_prefix(handle.split("/", 1)[1])
        return self.covers_prefix(prefix)


_EVERYTHING = (Role.NODE_ADMIN, Role.AUDITOR)
_ENTERPRISE_PREFIX_STATES = ("approved", "active", "suspended", "cancelled")


async def _account_scope(dispatcher: Dispatcher, account: Account) -> ReadScope:
    if account.role in _EVERYTHING:
        return ReadScope(account.username)
    service = service_for(dispatcher)
    if account.role != Role.ENTERPRISE_ADMIN or service is None or not account.enterprise_id:
        raise to_http_error(
            InsufficientPermissions(f"{account.username} ({account.role}) reads no statistics")
        )
    applications = await service.repository.list_applications(account.enterprise_id)
    prefixes = frozenset(
        handle_key(a.prefix) for a in applications if a.state in _ENTERPRISE_PREFIX_STATES
    )
    return ReadScope(account.username, prefixes)


async def read_scope(dispatcher: Dispatcher, auth: Authenticator, request: Request) -> ReadScope:
    """Who reads ``/api/stats`` or ``/api/audit``, and how far (the module docstring); raises
    the HTTPError of a refusal."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        service = service_for(dispatcher)
        if service is None or not token.strip():
            raise AuthFailed("this node keeps no accounts")
        try:
            account = await service.authenticate(token.strip())
        except HandleError as exc:
            raise AuthFailed(exc.message) from exc
        return await _account_scope(dispatcher, account)
    identity = await _identify(auth, request)
    if await dispatcher.authorizer.is_server_admin(identity):
        return ReadScope(str(identity))
    service = service_for(dispatcher)
    accounts = [] if service is None else await service.repository.list_accounts()
    mine = [a for a in accounts if a.enabled and a.identity == str(identity)]
    mine.sort(key=lambda a: a.role not in _EVERYTHING)  # the widest reach first
    for account in mine:
        try:
            return await _account_scope(dispatcher, account)
        except HTTPError:
            continue
    raise to_http_error(InvalidAdmin(f"{identity} is not a server administrator"))


class StatsApi(ApiEndpoint):
    """The ``/api/stats`` endpoint of :class:`~idnode.http.api.JsonApi`."""

    methods = ("GET", "HEAD", "OPTIONS")

    def __init__(self, dispatcher: Dispatcher, auth: Authenticator) -> None:
        super().__init__(dispatcher, auth)
        self.flusher = StatsFlusher(dispatcher.store, dispatcher.counter)

    async def __call__(self, request: Request, rest: str, params: Params) -> Response:
        if rest:
            raise unknown_endpoint(request)
        scope = await read_scope(self.dispatcher, self.auth, request)
        since, until = _day(params, "from"), _day(params, "to")
        store = self.dispatcher.store
        if params.flag("children") or params.first("children") == "1":
            if scope.prefixes is not None:
                raise to_http_error(
                    InsufficientPermissions(f"{scope.reader} reads its own prefixes only")
                )
            reports = await store.child_reports(since, until)
            children = [_child_json(r) for r in reports]
            return render(params, {"responseCode": 1, "children": children})
        prefix = params.first("prefix") or None
        if prefix is not None and not scope.covers_prefix(prefix):
            raise to_http_error(
                InsufficientPermissions(f"{scope.reader} may not read the prefix {prefix}")
            )
        await self.flusher.flush()
        counts = [
            c for c in await store.stats(prefix, since, until) if scope.covers_prefix(c.prefix)
        ]
        answer = {"responseCode": 1, "prefix": prefix, "from": since, "to": until}
        return render(params, {**answer, **stats_json(counts)})


class ReportApi(ApiEndpoint):
    """The ``/api/report`` endpoint of :class:`~idnode.http.api.JsonApi`."""

    methods = ("POST", "OPTIONS")

    async def __call__(self, request: Request, rest: str, params: Params) -> Response:
        if rest:
            raise unknown_endpoint(request)
        identity = await _identify(self.auth, request)
        if not is_json(request):
            raise protocol_error("a report is application/json")
        try:
            document = json.loads(await request.body())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise protocol_error(f"the report is not JSON: {exc}") from exc
        try:
            kept = await accept_report(self.dispatcher.store, identity, document)
        except HandleError as exc:
            raise to_http_error(exc) from exc
        return render(params, {"responseCode": 1, "child": str(identity), "counts": kept})
