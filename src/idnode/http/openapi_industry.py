"""OpenAPI path items of the industrial layer's HTTP endpoints, merged into the document by
:func:`~idnode.http.openapi.openapi_document`:

* the SNMS-compatible API (:mod:`idnode.http.snms`, docs/snms-api.md): ``/identity/token``
  (and ``/v1``), ``/snms/api/v5/template``, ``/identityv2/data`` and its batch and detail
  paths, ``/api/admin/...``. Every answer is HTTP 200 with the SNMS envelope
  ``{"status", "message", "data"}`` (status 1 success, -1 not logged in, -2 refused, -3 no
  permission, -4 internal error); they authenticate with ``Authorization: Bearer <token>``;
* ``/api/stats`` and ``/api/report`` (:mod:`idnode.http.stats`).

(``/api/trace/{handle}`` and ``/api/audit`` are described by :mod:`idnode.http.trace`.)
"""

from __future__ import annotations

from typing import Any

from idnode.http.openapi_schemas import ref

__all__ = ["INDUSTRY_SCHEMAS", "industry_openapi_paths"]

_DAY = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _snms(
    summary: str, *, body: dict[str, Any] | None = None, params: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": {
            "200": {
                "description": "The SNMS envelope: status 1 success (data as documented in "
                "docs/snms-api.md), -1 not logged in, -2 refused (a template's per-field "
                "errors in data), -3 no permission, -4 internal error",
                "content": _json(ref("SnmsEnvelope")),
            }
        },
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _json(body)}
    if params:
        operation["parameters"] = params
    return operation


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


_LOGIN = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
}
_ITEM = {
    "type": "object",
    "required": ["index", "type", "data"],
    "properties": {
        "index": {"type": "integer", "minimum": 2000},
        "type": {"type": "string"},
        "auth": {"type": "string"},
        "data": {
            "type": "object",
            "properties": {"format": {"const": "string"}, "value": {"type": "string"}},
        },
    },
}
_REGISTER = {
    "type": "object",
    "required": ["handle", "templateVersion", "value"],
    "properties": {
        "handle": {"type": "string", "description": "<prefix>/<suffix>"},
        "templateVersion": {
            "type": "string",
            "description": "The template <prefix>/META_<templateVersion>",
        },
        "value": {"type": "array", "items": _ITEM},
    },
}
_TEMPLATE = {
    "type": "object",
    "required": ["prefix", "version"],
    "description": "An SNMS v5 data template (docs/industry.md, JSON)",
    "properties": {
        "prefix": {"type": "string"},
        "version": {"type": "string"},
        "items": {"type": "array", "items": {"type": "object"}},
    },
}
_BATCH = {"type": "array", "maxItems": 2000}


def _snms_paths() -> dict[str, Any]:
    prefix_version = [
        _query("prefix", "The enterprise prefix owning the template."),
        _query("version", "The SNMS template version (its key)."),
    ]
    return {
        "/identity/token": {
            "post": {
                **_snms("Log in: a Bearer token valid 24 hours", body=_LOGIN),
                "security": [{}],
            }
        },
        "/identity/token/v1": {
            "post": {
                **_snms(
                    "Log in with password = sha256_hex(sha256_hex(plain) + 'yyyy-MM-dd')",
                    body=_LOGIN,
                ),
                "security": [{}],
            }
        },
        "/snms/api/v5/template": {
            "get": _snms("A template's newest version", params=prefix_version),
            "post": _snms("Create a template (published unless metaState 0)", body=_TEMPLATE),
            "put": _snms("Edit a template incrementally (items by idType)", body=_TEMPLATE),
            "delete": _snms("Withdraw a template's current version", body=_TEMPLATE),
        },
        "/identityv2/data": {
            "post": _snms("Register an identifier against a template", body=_REGISTER),
            "put": _snms("Replace an identifier's template link and data", body=_REGISTER),
            "delete": _snms(
                "Delete an identifier",
                body={
                    "type": "object",
                    "required": ["handle"],
                    "properties": {"handle": {"type": "string"}},
                },
            ),
        },
        "/identityv2/data/detail": {
            "get": _snms(
                "Resolve an identifier as the account may see it (data permissions applied)",
                params=[_query("handle", "The identifier.")],
            )
        },
        "/identityv2/data/batchCreate": {
            "post": _snms(
                "Register up to 2000 identifiers; per-item results",
                body={**_BATCH, "items": _REGISTER},
            )
        },
        "/identityv2/data/batchUpdate": {
            "put": _snms("Replace up to 2000 identifiers", body={**_BATCH, "items": _REGISTER})
        },
        "/identityv2/data/batchDelete": {
            "delete": _snms(
                "Delete up to 2000 identifiers", body={**_BATCH, "items": {"type": "string"}}
            )
        },
        "/api/admin/accounts": {
            "get": _snms("The accounts (node admins, auditors)"),
            "post": _snms(
                "Create an account (node admins); an app with publicKey gets an identity of "
                "its own (enterprise admins too, for their enterprise)",
                body={"type": "object", "required": ["username", "password", "role"]},
            ),
        },
        "/api/admin/accounts/{username}/{action}": {
            "post": _snms(
                "Enable or disable an account (action enable or disable)",
                params=[_path("username", "The account."), _path("action", "enable or disable")],
            )
        },
        "/api/admin/enterprises": {
            "get": _snms("The enterprises (node admins, auditors)"),
            "post": _snms(
                "Create an enterprise (node admins)",
                body={"type": "object", "required": ["id", "name", "adminIdentity"]},
            ),
        },
        "/api/admin/prefixes": {
            "get": _snms("Prefix applications (an enterprise's own for its accounts)"),
            "post": _snms(
                "Apply for a prefix", body={"type": "object", "required": ["prefix", "enterprise"]}
            ),
        },
        "/api/admin/prefixes/{prefix}": {
            "get": _snms(
                "A prefix application and its transitions",
                params=[_path("prefix", "The prefix.")],
            )
        },
        "/api/admin/prefixes/{prefix}/{action}": {
            "post": _snms(
                "approve, activate, suspend, resume or cancel a prefix (node admins)",
                params=[
                    _path("prefix", "The prefix."),
                    _path("action", "approve, activate, suspend, resume or cancel"),
                ],
            )
        },
    }


def _error_responses(texts: dict[int, str]) -> dict[str, Any]:
    return {
        str(status): {"description": text, "content": _json(ref("Error"))}
        for status, text in texts.items()
    }


_READERS = (
    "Server administrators, node_admin and auditor accounts: every prefix; an "
    "enterprise_admin account: its enterprise's prefixes. Basic or Handle authentication, or "
    "Authorization: Bearer <token> from /identity/token."
)


def _stats_paths() -> dict[str, Any]:
    return {
        "/api/stats": {
            "get": {
                "summary": "Registrations and resolutions per prefix per day (read-only). "
                + _READERS,
                "security": [{"basic": []}, {"handle": []}, {"bearer": []}],
                "parameters": [
                    _query("prefix", "Only this prefix."),
                    _query("from", "First day, YYYY-MM-DD (UTC).", _DAY),
                    _query("to", "Last day, YYYY-MM-DD (UTC).", _DAY),
                    _query("children", "1: what child nodes reported instead."),
                    _query("pretty", "Indent the JSON."),
                ],
                "responses": {
                    "200": {
                        "description": "The counts, or the children's reports",
                        "content": _json(ref("StatsAnswer")),
                    },
                    **_error_responses(
                        {
                            400: "A bad day (responseCode 4)",
                            401: "Authentication needed (responseCode 402), or credentials or a "
                            "token that do not verify (403)",
                            403: "Not a reader of this (responseCode 400 or 401)",
                        }
                    ),
                },
            }
        },
        "/api/report": {
            "post": {
                "summary": "A child node reports its prefixes and counts (as an identity on "
                "the prefix handle of a prefix this node delegated)",
                "security": [{"basic": []}, {"handle": []}],
                "requestBody": {
                    "required": True,
                    "content": _json({"type": "object", "description": "idnode.server.stats"}),
                },
                "responses": {
                    "200": {
                        "description": "Accepted",
                        "content": _json(
                            {
                                "type": "object",
                                "required": ["responseCode", "child", "counts"],
                                "properties": {
                                    "responseCode": {"const": 1},
                                    "child": {"type": "string"},
                                    "counts": {"type": "integer"},
                                },
                            }
                        ),
                    },
                    **_error_responses(
                        {
                            400: "Not JSON or a malformed report (responseCode 4 or 202)",
                            401: "Authentication needed (responseCode 402) or credentials that do "
                            "not verify (403)",
                            403: "Not an identity of a delegated prefix (responseCode 401)",
                            413: "Request body too large",
                        }
                    ),
                },
            }
        },
    }


def industry_openapi_paths() -> dict[str, Any]:
    """The path items of the SNMS API, ``/api/stats`` and ``/api/report``."""
    return {**_snms_paths(), **_stats_paths()}


_COUNT = {
    "type": "object",
    "required": ["prefix", "day", "resolutions", "registrations"],
    "properties": {
        "prefix": {"type": "string"},
        "day": _DAY,
        "resolutions": {"type": "integer"},
        "registrations": {"type": "integer"},
    },
}
_TOTALS = {
    "type": "object",
    "required": ["resolutions", "registrations"],
    "properties": {"resolutions": {"type": "integer"}, "registrations": {"type": "integer"}},
}
_NULLABLE_DAY = {"oneOf": [{"type": "null"}, _DAY]}
#: Component schemas of these paths (merged into the document's).
INDUSTRY_SCHEMAS: dict[str, Any] = {
    "SnmsEnvelope": {
        "type": "object",
        "required": ["status", "message", "data"],
        "properties": {
            "status": {"enum": [1, -1, -2, -3, -4]},
            "message": {"type": "string"},
            "data": {},
        },
        "additionalProperties": False,
    },
    "StatsAnswer": {
        "oneOf": [
            {
                "type": "object",
                "required": ["responseCode", "prefix", "from", "to", "stats", "totals"],
                "properties": {
                    "responseCode": {"const": 1},
                    "prefix": {"oneOf": [{"type": "null"}, {"type": "string"}]},
                    "from": _NULLABLE_DAY,
                    "to": _NULLABLE_DAY,
                    "stats": {"type": "array", "items": _COUNT},
                    "totals": _TOTALS,
                },
                "additionalProperties": False,
            },
            {
                "type": "object",
                "required": ["responseCode", "children"],
                "properties": {
                    "responseCode": {"const": 1},
                    "children": {"type": "array", "items": {"type": "object"}},
                },
                "additionalProperties": False,
            },
        ]
    },
}
