"""The component schemas of the OpenAPI document (:mod:`idnode.http.openapi`): the JSON shapes
of the API (spec §5.1-§5.4), including the one error shape."""

from __future__ import annotations

from typing import Any

__all__ = ["SCHEMAS", "ref"]


def ref(name: str) -> dict[str, Any]:
    """A reference to the component schema ``name``."""
    return {"$ref": "#/components/schemas/" + name}


_ref = ref

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "The one error shape (pinned by tests).",
        "required": ["responseCode", "message"],
        "properties": {
            "responseCode": {"type": "integer"},
            "handle": {"type": "string"},
            "message": {"type": "string"},
            "errors": {
                "type": "array",
                "description": "Per-field errors of a write its metadata template refuses.",
                "items": _ref("FieldError"),
            },
        },
        "additionalProperties": False,
    },
    "FieldError": {
        "type": "object",
        "description": "Why a value breaks its template (docs/industry.md, Validation).",
        "required": ["field", "code", "message"],
        "properties": {
            "field": {"type": "string", "description": "Attribute key, value type or TEMPLATE"},
            "code": {"type": "string", "description": "Stable machine code, e.g. range"},
            "message": {"type": "string"},
            "index": {"type": "integer", "description": "The handle value index concerned"},
        },
        "additionalProperties": False,
    },
    "Data": {
        "type": "object",
        "required": ["format", "value"],
        "properties": {
            "format": {"enum": ["string", "base64", "hex", "admin", "vlist", "site", "key"]},
            "value": {},
        },
    },
    "Reference": {
        "type": "object",
        "required": ["handle", "index"],
        "properties": {"handle": {"type": "string"}, "index": {"type": ["integer", "string"]}},
    },
    "Value": {
        "type": "object",
        "description": "A handle value as the server writes it.",
        "required": ["index", "type", "data", "ttl"],
        "properties": {
            "index": {"type": "integer"},
            "type": {"type": "string"},
            "data": _ref("Data"),
            "permissions": {"type": "string", "pattern": "^[01]{4}$"},
            "ttl": {"type": ["integer", "string"]},
            "timestamp": {"type": "string"},
            "references": {"type": "array", "items": _ref("Reference")},
        },
        "additionalProperties": False,
    },
    "ValueInput": {
        "type": "object",
        "description": (
            "A value to write: data as a bare string or {format, value}; index as a number "
            "or numeric string."
        ),
        "required": ["index", "type", "data"],
        "properties": {
            "index": {"type": ["integer", "string"]},
            "type": {"type": "string"},
            "data": {"oneOf": [{"type": "string"}, _ref("Data")]},
            "permissions": {"type": "string"},
            "ttl": {"type": ["integer", "string"]},
            "timestamp": {"type": "string"},
            "references": {"type": "array", "items": _ref("Reference")},
        },
    },
    "Record": {
        "type": "object",
        "required": ["responseCode", "handle", "values"],
        "properties": {
            "responseCode": {"enum": [1, 200]},
            "handle": {"type": "string"},
            "values": {"type": "array", "items": _ref("Value")},
        },
        "additionalProperties": False,
    },
    "Written": {
        "type": "object",
        "required": ["responseCode", "handle"],
        "properties": {"responseCode": {"const": 1}, "handle": {"type": "string"}},
        "additionalProperties": False,
    },
    "HandleList": {
        "type": "object",
        "required": ["responseCode", "prefix", "totalCount", "handles"],
        "properties": {
            "responseCode": {"const": 1},
            "prefix": {"type": "string"},
            "totalCount": {"type": "string", "description": "A number, as a string."},
            "page": {"type": "integer"},
            "pageSize": {"type": "integer"},
            "handles": {"type": "array", "items": {"type": "string"}},
        },
        "additionalProperties": False,
    },
    "PrefixList": {
        "type": "object",
        "required": ["responseCode", "totalCount", "prefixes"],
        "properties": {
            "responseCode": {"const": 1},
            "totalCount": {"type": "string"},
            "page": {"type": "integer"},
            "pageSize": {"type": "integer"},
            "prefixes": {"type": "array", "items": {"type": "string"}},
        },
        "additionalProperties": False,
    },
    "Session": {
        "type": "object",
        "properties": {
            "sessionId": {"type": "string"},
            "nonce": {"type": "string", "contentEncoding": "base64"},
            "authenticated": {"type": "boolean"},
            "id": {"type": "string"},
            "error": {"type": "string"},
        },
        "additionalProperties": False,
    },
    "SessionAnswer": {
        "type": "object",
        "description": "The Authorization: Handle fields, as a JSON body.",
        "properties": {
            n: {"type": "string"} for n in ("sessionId", "id", "type", "cnonce", "alg", "signature")
        },
    },
}
