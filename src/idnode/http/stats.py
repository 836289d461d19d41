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

  Both: server administrators only, authenticated as for the rest of the API (as
  ``/api/audit``): none → 401 (responseCode 402), another identity → 403 (400); a bad day →
  400 (4).
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
from typing import Any

from idnode.errors import HandleError, InvalidAdmin
from idnode.http.asgi import HTTPError, Request, Response
from idnode.http.auth import Authenticator
from idnode.http.common import (
    ApiEndpoint,
    Params,
    is_json,
    protocol_error,
    render,
    to_http_error,
    unknown_endpoint,
)
from idnode.protocol.codes import ResponseCode
from idnode.server.authz import Identity
from idnode.server.dispatch import Dispatcher
from idnode.server.stats import StatsFlusher, accept_report
from idnode.store.stats import ChildReport, DayCount, valid_day

__all__ = ["ReportApi", "StatsApi", "stats_json"]


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


class StatsApi(ApiEndpoint):
    """The ``/api/stats`` endpoint of :class:`~idnode.http.api.JsonApi`."""

    methods = ("GET", "HEAD", "OPTIONS")

    def __init__(self, dispatcher: Dispatcher, auth: Authenticator) -> None:
        super().__init__(dispatcher, auth)
        self.flusher = StatsFlusher(dispatcher.store, dispatcher.counter)

    async def __call__(self, request: Request, rest: str, params: Params) -> Response:
        if rest:
            raise unknown_endpoint(request)
        identity = await _identify(self.auth, request)
        if not await self.dispatcher.authorizer.is_server_admin(identity):
            raise to_http_error(InvalidAdmin(f"{identity} is not a server administrator"))
        since, until = _day(params, "from"), _day(params, "to")
        store = self.dispatcher.store
        if params.flag("children") or params.first("children") == "1":
            reports = await store.child_reports(since, until)
            children = [_child_json(r) for r in reports]
            return render(params, {"responseCode": 1, "children": children})
        prefix = params.first("prefix") or None
        await self.flusher.flush()
        counts = await store.stats(prefix, since, until)
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
