"""The OpenAPI 3.1 description of the HTTP interface, served at ``/api/openapi.json``.

The industrial layer's endpoints (SNMS API, ``/api/stats``, ``/api/report``) come from
:mod:`idnode.http.openapi_industry`.

:func:`openapi_document` builds it; other HTTP features (the browser proxy, GS1 Digital Link)
describe their routes by passing path items to ``build_app(..., openapi_paths=...)``, which
merges them with :func:`add_path_items` (a path described twice is an error, so nothing is
silently replaced). Every JSON answer of ``/api/handles`` and ``/api/prefixes`` may also come
as JSONP (``callback``), so each of their responses lists both media types.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from idnode.http.openapi_industry import INDUSTRY_SCHEMAS, industry_openapi_paths
from idnode.http.openapi_schemas import SCHEMAS, ref

__all__ = ["PathItems", "add_path_items", "openapi_document"]

#: Path items: ``{path: item}`` or ``(path, item)`` pairs.
PathItems = Mapping[str, dict[str, Any]] | Iterable[tuple[str, dict[str, Any]]]

_ERROR_TEXT = {
    400: "Bad request (responseCode 4 unparsable, 102 invalid handle, 200 values not found, "
    "202 invalid value, 301 prefix not homed here)",
    401: "Authentication needed (responseCode 402) or credentials that do not verify (403)",
    403: "Not permitted (responseCode 400 not an admin, 401 insufficient permissions)",
    404: "Handle not found (responseCode 100)",
    405: "Method not allowed here",
    409: "Handle (responseCode 101) or value (201) already exists",
    413: "Request body too large",
}


_ref = ref


def _content(schema: dict[str, Any], *, jsonp: bool) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if jsonp:
        content["application/javascript"] = {"schema": {"type": "string"}}
    return content


def _responses(
    ok: dict[int, tuple[str, dict[str, Any]]], errors: Iterable[int], *, jsonp: bool = True
) -> dict[str, Any]:
    out: dict[str, Any] = {
        str(status): {"description": text, "content": _content(schema, jsonp=jsonp)}
        for status, (text, schema) in ok.items()
    }
    for status in errors:
        out[str(status)] = {
            "description": _ERROR_TEXT[status],
            "content": _content(_ref("Error"), jsonp=jsonp),
        }
    return out


def _query(
    name: str, description: str, schema: dict[str, Any] | None = None, *, array: bool = False
) -> dict[str, Any]:
    schema = schema or {"type": "string"}
    if array:
        schema = {"type": "array", "items": schema}
    param: dict[str, Any] = {
        "name": name,
        "in": "query",
        "description": description,
        "schema": schema,
    }
    if array:
        param["style"], param["explode"] = "form", True
    return param


_FORMAT = [
    _query("pretty", "Indent the JSON (any value but false/no; empty means true)."),
    _query("callback", "Answer as JSONP: callback(json);"),
]
_HANDLE_PARAM = {
    "name": "handle",
    "in": "path",
    "required": True,
    "description": "The handle, e.g. 88.118.8/PV-2026-000123 (its slash may be sent raw). "
    "Percent-decoded once and echoed verbatim in `handle`.",
    "schema": {"type": "string"},
}
_RESOLVE_PARAMS = [
    _query(
        "index",
        "Only values at these indexes (or of the given types).",
        {"type": "integer", "minimum": 0},
        array=True,
    ),
    _query("type", "Only values of these types; `URL.` also matches its sub-types.", array=True),
    _query("publicOnly", "Only PUBLIC_READ values. Default: true unless authenticated."),
    _query("auth", "Authoritative resolution (always the case here)."),
    _query("cert", "Ask for a certified answer (no effect on JSON)."),
    _query("doNotRefer", "Do not answer with a referral."),
]
_PAGING = [
    _query("page", "Page number (0-based); with pageSize.", {"type": "integer", "minimum": 0}),
    _query("pageSize", "Page size; with page.", {"type": "integer", "minimum": 0}),
]
_INDEX_ONE = {"type": "integer", "minimum": 0, "maximum": 2147483647}
_COUNT = {"type": "integer", "minimum": 0, "maximum": 2147483647}

_PUT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"type": "array", "items": _ref("ValueInput")},
                    {
                        "type": "object",
                        "required": ["values"],
                        "properties": {
                            "handle": {"type": "string"},
                            "values": {"type": "array", "items": _ref("ValueInput")},
                        },
                    },
                    _ref("ValueInput"),
                ]
            }
        }
    },
}
_PREFIX_PARAM = _query("prefix", "The prefix handle 0.NA/P (a bare P means 0.NA/P).")
_SESSION_ERRORS = {
    str(s): {
        "description": _ERROR_TEXT.get(s, "Unknown or expired session"),
        "content": _content(_ref("Error"), jsonp=False),
    }
    for s in (400, 401, 403)
}


def _paths() -> dict[str, Any]:
    handle_get = {
        "summary": "Resolve a handle",
        "parameters": [_HANDLE_PARAM, *_RESOLVE_PARAMS, *_FORMAT],
        "responses": _responses(
            {200: ("The values (responseCode 1), or none matched (200)", _ref("Record"))},
            (400, 401, 403, 404, 413),
        ),
    }
    return {
        "/api/handles/{handle}": {
            "get": handle_get,
            "post": {
                **handle_get,
                "summary": "Resolve a handle, parameters in a JSON or form body",
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                    }
                },
            },
            "put": {
                "summary": "Create or replace a handle, or add/replace values (with index)",
                "parameters": [
                    _HANDLE_PARAM,
                    _query(
                        "index",
                        "Add these values (must match the body's indexes), or `various`.",
                        {"oneOf": [_INDEX_ONE, {"const": "various"}]},
                        array=True,
                    ),
                    _query(
                        "overwrite",
                        "Replace an existing handle/value (only `true` counts; default true).",
                    ),
                    _query("mintNewSuffix", "The server picks the suffix (`true`)."),
                    *_FORMAT,
                ],
                "requestBody": _PUT_BODY,
                "responses": _responses(
                    {
                        200: ("Written", _ref("Written")),
                        201: ("Created (overwrite=false)", _ref("Written")),
                    },
                    (400, 401, 403, 404, 409, 413),
                ),
            },
            "delete": {
                "summary": "Delete a handle, or the values at index=...",
                "parameters": [
                    _HANDLE_PARAM,
                    _query("index", "Remove these values.", _INDEX_ONE, array=True),
                    *_FORMAT,
                ],
                "responses": _responses({200: ("Deleted", _ref("Written"))}, (400, 401, 403, 404)),
            },
        },
        "/api/handles": {
            "get": {
                "summary": "List the handles of a prefix (LIST_HANDLES permission)",
                "parameters": [_query("prefix", "The prefix, P or 0.NA/P."), *_PAGING, *_FORMAT],
                "responses": _responses(
                    {200: ("The handles", _ref("HandleList"))}, (400, 401, 403)
                ),
            }
        },
        "/api/prefixes": {
            "get": {
                "summary": "List the prefixes homed here (server administrators)",
                "parameters": [*_PAGING, *_FORMAT],
                "responses": _responses(
                    {200: ("The prefixes", _ref("PrefixList"))}, (400, 401, 403)
                ),
            },
            "post": {
                "summary": "Home a prefix (server administrators)",
                "parameters": [_PREFIX_PARAM, *_FORMAT],
                "responses": _responses({200: ("Homed", _ref("Written"))}, (400, 401, 403, 413)),
            },
            "delete": {
                "summary": "Unhome a prefix (server administrators)",
                "parameters": [_PREFIX_PARAM, *_FORMAT],
                "responses": _responses({200: ("Unhomed", _ref("Written"))}, (400, 401, 403, 413)),
            },
        },
        "/api/sessions": {
            "post": {
                "summary": "Open a session: its id and the server nonce to sign",
                "responses": {
                    "201": {
                        "description": "Created",
                        "content": _content(_ref("Session"), jsonp=False),
                    },
                    **_SESSION_ERRORS,
                },
            }
        },
        "/api/sessions/this": {
            "get": {
                "summary": "The session named by Authorization: Handle sessionId=...",
                "responses": {
                    "200": {
                        "description": "The session",
                        "content": _content(_ref("Session"), jsonp=False),
                    },
                    **_SESSION_ERRORS,
                },
            },
            "put": {
                "summary": "Authenticate the session (Authorization: Handle answer)",
                "requestBody": {"content": {"application/json": {"schema": _ref("SessionAnswer")}}},
                "responses": {
                    "200": {
                        "description": "Authenticated",
                        "content": _content(_ref("Session"), jsonp=False),
                    },
                    **_SESSION_ERRORS,
                },
            },
            "delete": {
                "summary": "End the session",
                "responses": {"204": {"description": "Ended"}, **_SESSION_ERRORS},
            },
        },
        "/hrls/handles": {
            "get": {
                "summary": "Reverse lookup (authenticated): handles with a public value of each "
                "given type whose data matches (`*` is a wildcard); any value type may be a "
                "parameter, not only URL and CHECKSUM. A linear scan of the store.",
                "parameters": [
                    _query("URL", "Match URL values."),
                    _query("CHECKSUM", "Match CHECKSUM values."),
                    _query("limit", "At most this many handles (default 1000, max 10000).", _COUNT),
                    _query("page", "Skip this many matching handles.", _COUNT),
                    *_FORMAT,
                ],
                "responses": _responses(
                    {200: ("The handles", {"type": "array", "items": {"type": "string"}})},
                    (400, 401),
                ),
            }
        },
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/": {
            "post": {
                "summary": "A native Handle protocol message (any path takes it); a form "
                "posted to / is the browser proxy's query form",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-hdl-message": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "properties": {"hdl": {"type": "string"}},
                            }
                        },
                    },
                },
                "responses": {
                    "200": {
                        "description": "The encoded response message (native), or the query "
                        "form again (a form without a handle)",
                        "content": {
                            "application/x-hdl-message": {
                                "schema": {"type": "string", "format": "binary"}
                            },
                            "text/html": {"schema": {"type": "string"}},
                        },
                    },
                    "303": {
                        "description": "A form naming a handle: see the handle's page",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                    "400": {
                        "description": "Not a native request, or a form with an empty handle "
                        "(an HTML page unless JSON is asked for)",
                        "content": {
                            **_content(_ref("Error"), jsonp=False),
                            "text/html": {"schema": {"type": "string"}},
                        },
                    },
                    "405": {
                        "description": "Another content type: not a native message, and no "
                        "other route takes POST /",
                        "content": _content(_ref("Error"), jsonp=False),
                    },
                    "413": {
                        "description": _ERROR_TEXT[413],
                        "content": _content(_ref("Error"), jsonp=False),
                    },
                },
            }
        },
    }


def add_path_items(document: dict[str, Any], items: PathItems) -> dict[str, Any]:
    """Merge path items (``{path: item}`` or ``(path, item)`` pairs) into ``document["paths"]``
    (in place, and returned). A path may gain operations, but an operation (method) already
    described for it raises ValueError: e.g. ``POST /`` is the native-message endpoint here."""
    paths = document.setdefault("paths", {})
    pairs = items.items() if isinstance(items, Mapping) else items
    for path, item in pairs:
        existing = paths.setdefault(path, {})
        clash = set(existing) & set(item)
        if clash:
            raise ValueError(f"OpenAPI: {sorted(clash)} of {path} described twice")
        existing.update(copy.deepcopy(item))
    return document


def openapi_document(extra: PathItems = (), *, version: str = "0.1.0") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the JSON API, native messages over HTTP, and ``extra``."""
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "idnode Handle.Net-compatible HTTP API",
            "version": version,
            "description": (
                "The Handle.Net v9 JSON REST API served by an idnode node (docs/http-api.md)."
            ),
        },
        "paths": {**_paths(), **industry_openapi_paths()},
        "components": {
            "schemas": copy.deepcopy({**SCHEMAS, **INDUSTRY_SCHEMAS}),
            "securitySchemes": {
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": (
                        "Username: percent-encoded index:handle, e.g. 300%3A0.NA%2F88.118.8."
                    ),
                },
                "handle": {
                    "type": "http",
                    "scheme": "handle",
                    "description": (
                        "Authorization: Handle sessionId=..., id=..., type=..., cnonce=..., "
                        "alg=..., signature=... (see /api/sessions)."
                    ),
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A login token of /identity/token (the SNMS API, "
                    "/api/stats, /api/audit).",
                },
            },
        },
        "security": [{}, {"basic": []}, {"handle": []}],
    }
    return add_path_items(document, extra)
