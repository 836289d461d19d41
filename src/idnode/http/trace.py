"""``/api/trace/{handle}`` (traceability) and ``/api/audit`` (the audit trail).

* ``GET /api/trace/{handle}?depth=N&direction=up|down|both`` → 200 and the graph of
  :mod:`idnode.industry.trace` around the handle (``depth`` 0 to
  :data:`~idnode.industry.trace.MAX_DEPTH`, default :data:`~idnode.industry.trace.DEFAULT_DEPTH`;
  ``direction`` default ``both``)::

      {"responseCode": 1, "handle": "<as requested>", "root": "<as stored>",
       "direction": "both", "depth": 5, "truncated": false,
       "nodes": [{"handle", "depth", "location": "local"|"remote"|null, "template",
                  "templateVersion", "attributes": {type: text}, "values": [...],
                  "error": null | {"responseCode", "message"}}, ...],
       "edges": [{"from": referencing handle, "to": referenced handle, "attribute"}, ...]}

  Anyone may ask; every record held here shows the values the caller may read (anonymous:
  PUBLIC_READ ones; an administrator of the record with READ_VALUE: ADMIN_READ ones too), and
  a referrer is listed only if its referencing value is readable. Identifiers of other nodes
  are resolved through the node's resolver (public values; a node without ``roots`` shows
  them with an error). The root not found → 404 (responseCode 100); not served here and no
  resolver → 400 (301).
* ``GET /api/audit?handle=H&after=N&limit=L`` → 200 ``{"responseCode": 1, "entries": [...],
  "next": N}``: the transaction log with who wrote and from where
  (:meth:`~idnode.store.base.HandleStore.audit`), entries with ids above ``after`` (default
  0), of handle H only if given, at most ``limit`` (default 100, at most
  :data:`MAX_AUDIT_LIMIT`); ``next`` is the ``after`` of the next page. Read-only, for
  the readers :func:`~idnode.http.stats.read_scope` admits: server administrators and the
  node_admin and auditor accounts read everything, an enterprise_admin account the entries of
  its enterprise's prefixes (a ``handle`` outside them → 403; other entries are left out of a
  page, ``next`` still moves past them); none → 401 (402), anyone else → 403 (400).
"""

from __future__ import annotations

import datetime
from typing import Any

from idnode.errors import HandleError, InsufficientPermissions
from idnode.http.asgi import Request, Response
from idnode.http.common import (
    ApiEndpoint,
    Params,
    parse_int,
    protocol_error,
    render,
    to_http_error,
    unknown_endpoint,
)
from idnode.http.handles import decode_path
from idnode.http.stats import read_scope
from idnode.industry.grants import GrantVisibility
from idnode.industry.trace import (
    DEFAULT_DEPTH,
    MAX_DEPTH,
    Direction,
    NodeSource,
    Tracer,
)
from idnode.store.txnlog import AuditEntry

__all__ = ["DEFAULT_AUDIT_LIMIT", "MAX_AUDIT_LIMIT", "AuditApi", "TraceApi", "trace_openapi_paths"]

#: Audit entries answered when ``limit`` is not given, and the largest ``limit`` honoured.
DEFAULT_AUDIT_LIMIT = 100
MAX_AUDIT_LIMIT = 1000

_ALLOW = ("GET", "HEAD", "OPTIONS")


class TraceApi(ApiEndpoint):
    """The ``/api/trace`` endpoint of :class:`~idnode.http.api.JsonApi`."""

    methods = _ALLOW

    def tracer(self) -> Tracer:
        """A tracer over this node: its store, its resolver, the data permissions."""
        dispatcher = self.dispatcher
        source = NodeSource(
            dispatcher.store,
            resolver=dispatcher.resolver,
            visibility=GrantVisibility(dispatcher.grants),
            owns=lambda handle: dispatcher.node.owns(handle),
        )
        return Tracer(source)

    async def __call__(self, request: Request, rest: str, params: Params) -> Response:
        """``rest``: the raw path after ``/api/trace/``: the handle."""
        if not rest:
            raise unknown_endpoint(request)
        handle = decode_path(rest)
        depth = params.integer("depth", DEFAULT_DEPTH)
        if not 0 <= depth <= MAX_DEPTH:
            raise protocol_error(f"depth must be 0 to {MAX_DEPTH}", handle=handle)
        try:
            direction = Direction(params.first("direction") or Direction.BOTH)
        except ValueError:
            raise protocol_error("direction must be up, down or both", handle=handle) from None
        viewer = await self.auth.identify(request)
        try:
            graph = await self.tracer().trace(handle, depth, direction, viewer)
        except HandleError as exc:
            raise to_http_error(exc, handle=handle) from exc
        return render(params, {"responseCode": 1, "handle": handle, **graph.to_json()})


def audit_entry_json(entry: AuditEntry) -> dict[str, Any]:
    """One audit entry as ``/api/audit`` answers it."""
    date = datetime.datetime.fromtimestamp(entry.date_ms / 1000, datetime.UTC)
    return {
        "txnId": entry.txn_id,
        "handle": entry.handle,
        "action": entry.action.name.lower(),
        "date": date.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "actor": entry.actor,
        "origin": entry.origin,
    }


class AuditApi(ApiEndpoint):
    """The ``/api/audit`` endpoint of :class:`~idnode.http.api.JsonApi`."""

    methods = _ALLOW

    async def __call__(self, request: Request, rest: str, params: Params) -> Response:
        if rest:
            raise unknown_endpoint(request)
        scope = await read_scope(self.dispatcher, self.auth, request)
        after = _txn_id(params.first("after"))
        limit = min(_count(params, "limit", DEFAULT_AUDIT_LIMIT), MAX_AUDIT_LIMIT)
        handle = params.first("handle") or None
        if handle is not None and not scope.covers_handle(handle):
            raise to_http_error(
                InsufficientPermissions(f"{scope.reader} may not read the trail of {handle}")
            )
        entries = await self.dispatcher.store.audit(handle, after, limit)
        following = entries[-1].txn_id if entries else after
        entries = [e for e in entries if scope.covers_handle(e.handle)]
        return render(
            params,
            {
                "responseCode": 1,
                "entries": [audit_entry_json(e) for e in entries],
                "next": following,
            },
        )


def _txn_id(value: str | None) -> int:
    """``after``: a transaction id (0 to 2^63 - 1, the log's BIGINT), 0 when absent."""
    if value is None:
        return 0
    if not (value.isascii() and value.isdigit()) or int(value) >= 1 << 63:
        raise protocol_error(f"after must be a transaction id, not {value!r:.40}")
    return int(value)


def _count(params: Params, name: str, default: int) -> int:
    value = params.first(name)
    number = default if value is None else parse_int(value, name)
    if number < 0:
        raise protocol_error(f"{name} must not be negative")
    return number


# -- OpenAPI -------------------------------------------------------------------------------------
def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "application/json": {"schema": schema},
        "application/javascript": {"schema": {"type": "string"}},
    }


_ERROR = {"$ref": "#/components/schemas/Error"}
_NULLABLE_TEXT = {"type": ["string", "null"]}
_FORMAT = [
    _query(
        "pretty", "Indent the JSON (any value but false/no; empty means true).", {"type": "string"}
    ),
    _query("callback", "Answer as JSONP: callback(json);", {"type": "string"}),
]
_NODE = {
    "type": "object",
    "required": ["handle", "depth", "location", "template", "templateVersion", "attributes",
                 "values", "error"],
    "properties": {
        "handle": {"type": "string"},
        "depth": {"type": "integer", "minimum": 0},
        "location": {"enum": ["local", "remote", None]},
        "template": _NULLABLE_TEXT,
        "templateVersion": {"type": ["integer", "null"]},
        "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
        "values": {"type": "array", "items": {"$ref": "#/components/schemas/Value"}},
        "error": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["responseCode", "message"],
                    "properties": {
                        "responseCode": {"type": "integer"},
                        "message": {"type": "string"},
                    },
                    "additionalProperties": False,
                },
            ]
        },
    },
    "additionalProperties": False,
}  # fmt: skip
_GRAPH = {
    "type": "object",
    "required": ["responseCode", "handle", "root", "direction", "depth", "truncated", "nodes",
                 "edges"],
    "properties": {
        "responseCode": {"const": 1},
        "handle": {"type": "string"},
        "root": {"type": "string"},
        "direction": {"enum": ["up", "down", "both"]},
        "depth": {"type": "integer"},
        "truncated": {"type": "boolean"},
        "nodes": {"type": "array", "items": _NODE},
        "edges": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["from", "to", "attribute"],
                "properties": {
                    "from": {"type": "string", "description": "The referencing identifier"},
                    "to": {"type": "string", "description": "The identifier it references"},
                    "attribute": {"type": "string"},
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}  # fmt: skip
_AUDIT = {
    "type": "object",
    "required": ["responseCode", "entries", "next"],
    "properties": {
        "responseCode": {"const": 1},
        "entries": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["txnId", "handle", "action", "date", "actor", "origin"],
                "properties": {
                    "txnId": {"type": "integer"},
                    "handle": {"type": "string"},
                    "action": {
                        "enum": [
                            "create_handle", "delete_handle", "update_handle", "home_prefix",
                            "unhome_prefix",
                        ]
                    },
                    "date": {"type": "string", "format": "date-time"},
                    "actor": _NULLABLE_TEXT,
                    "origin": _NULLABLE_TEXT,
                },
                "additionalProperties": False,
            },
        },
        "next": {"type": "integer", "description": "The `after` of the next page"},
    },
    "additionalProperties": False,
}  # fmt: skip


def _responses(ok: tuple[str, dict[str, Any]], errors: dict[int, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": ok[0], "content": _json(ok[1])}}
    for status, text in errors.items():
        out[str(status)] = {"description": text, "content": _json(_ERROR)}
    return out


def trace_openapi_paths() -> dict[str, Any]:
    """The OpenAPI path items of ``/api/trace/{handle}`` and ``/api/audit``."""
    count = {"type": "integer", "minimum": 0, "maximum": 2147483647}
    return {
        "/api/trace/{handle}": {
            "get": {
                "summary": "The traceability graph around an identifier: what it references "
                "(upstream) and what references it (downstream, from this node's index), as "
                "the caller may see it",
                "parameters": [
                    {
                        "name": "handle",
                        "in": "path",
                        "required": True,
                        "description": "The root identifier (percent-decoded once).",
                        "schema": {"type": "string"},
                    },
                    _query(
                        "depth",
                        f"Hops from the root, 0 to {MAX_DEPTH} (default {DEFAULT_DEPTH}).",
                        {"type": "integer", "minimum": 0, "maximum": MAX_DEPTH},
                    ),
                    _query(
                        "direction",
                        "up (references), down (referrers) or both (default).",
                        {"enum": ["up", "down", "both"]},
                    ),
                    *_FORMAT,
                ],
                "responses": _responses(
                    ("The graph", _GRAPH),
                    {
                        400: "Bad depth or direction (responseCode 4), invalid handle (102), "
                        "not served here and no resolver (301)",
                        401: "Credentials that do not verify (responseCode 403)",
                        404: "The identifier does not exist (responseCode 100)",
                    },
                ),
            }
        },
        "/api/audit": {
            "get": {
                "summary": "The audit trail: every write with who made it and from where "
                "(read-only; server administrators, node_admin and auditor accounts: all of "
                "it; an enterprise_admin account: its enterprise's prefixes; Basic, Handle "
                "or Bearer authentication)",
                "security": [{"basic": []}, {"handle": []}, {"bearer": []}],
                "parameters": [
                    _query("handle", "Only the entries of this handle.", {"type": "string"}),
                    _query(
                        "after",
                        "Entries with a transaction id above this.",
                        {"type": "integer", "minimum": 0, "maximum": (1 << 63) - 1},
                    ),
                    _query(
                        "limit",
                        f"At most this many entries (default {DEFAULT_AUDIT_LIMIT}, "
                        f"at most {MAX_AUDIT_LIMIT}).",
                        count,
                    ),
                    *_FORMAT,
                ],
                "responses": _responses(
                    ("The entries, oldest first", _AUDIT),
                    {
                        400: "Bad parameters (responseCode 4)",
                        401: "Authentication needed (responseCode 402) or credentials or a "
                        "token that do not verify (403)",
                        403: "Not a reader of this (responseCode 400 or 401)",
                    },
                ),
            }
        },
    }
