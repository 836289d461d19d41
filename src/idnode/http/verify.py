"""``/api/verify/{handle}``: trusted resolution over HTTP (docs/trust.md).

``GET /api/verify/88.118.8/PV-1`` reads the identifier's public values (from this node's store
when it holds them, otherwise through its recursive resolver), verifies its HS_SIGNATURE values
and their certificate chains up to the trust root of the node's ``[trust]`` table
(:mod:`idnode.trust`), and answers 200::

    {"responseCode": 1, "handle": "88.118.8/PV-1",
     "verification": {"handle": ..., "status": "verified" | "failed" | "unsigned", "ok": true,
                      "signedValues": [1, 2], "tamperedValues": [], "unsignedValues": [],
                      "missingValues": [], "problems": [], "signatures": [...]}}

A record that fails verification is still a 200 answer: ``ok`` false and ``problems`` say
why. Errors: a node without ``[trust]`` → 400 (responseCode 5); the identifier does not exist
→ 404 (100); not held here and no resolver → 400 (301).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from idnode.errors import HandleError
from idnode.http.asgi import HTTPError, Request, Response
from idnode.http.common import ApiEndpoint, Params, render, to_http_error, unknown_endpoint
from idnode.http.handles import decode_path
from idnode.industry.trace import NodeSource, PublicOnly
from idnode.protocol.codes import ResponseCode
from idnode.protocol.values import HandleValue
from idnode.trust.verify import verify_record

__all__ = ["VerifyApi", "verify_openapi_paths"]


class VerifyApi(ApiEndpoint):
    """The ``/api/verify`` endpoint of :class:`~idnode.http.api.JsonApi`."""

    methods = ("GET", "HEAD", "OPTIONS")

    def source(self) -> NodeSource:
        """Public values of this node's store, then of its resolver."""
        dispatcher = self.dispatcher
        return NodeSource(
            dispatcher.store,
            resolver=dispatcher.resolver,
            visibility=PublicOnly(),
            owns=lambda handle: dispatcher.node.owns(handle),
        )

    async def __call__(self, request: Request, rest: str, params: Params) -> Response:
        if not rest:
            raise unknown_endpoint(request)
        handle = decode_path(rest)
        policy = self.dispatcher.trust
        if policy is None:
            raise HTTPError(
                ResponseCode.OPERATION_NOT_SUPPORTED,
                "this node verifies no signatures: it has no [trust] configuration",
                status=400,
                handle=handle,
            )
        source = self.source()

        async def fetch(name: str) -> Sequence[HandleValue]:
            return (await source.fetch(name, None)).values

        try:
            values = await fetch(handle)
        except HandleError as exc:
            raise to_http_error(exc, handle=handle) from exc
        report = await verify_record(handle, values, fetch, policy)
        answer = {"responseCode": 1, "handle": handle, "verification": report.to_json()}
        return render(params, answer)


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "application/json": {"schema": schema},
        "application/javascript": {"schema": {"type": "string"}},
    }


_ERROR = {"$ref": "#/components/schemas/Error"}
_INDEXES = {"type": "array", "items": {"type": "integer"}}
_TEXTS = {"type": "array", "items": {"type": "string"}}
_TEXT_OR_NULL = {"type": ["string", "null"]}
_LINK = {
    "type": "object",
    "required": ["where", "iss", "sub", "signatureVerifies", "dateInRange", "authorized",
                 "problems"],
    "properties": {
        "where": {"type": "string", "description": "index:handle of the signed value"},
        "iss": _TEXT_OR_NULL,
        "sub": _TEXT_OR_NULL,
        "signatureVerifies": {"type": "boolean"},
        "dateInRange": {"type": "boolean"},
        "authorized": {"type": "boolean"},
        "problems": _TEXTS,
    },
    "additionalProperties": False,
}  # fmt: skip
_SIGNATURE = {
    "type": "object",
    "required": ["index", "iss", "sub", "trusted", "rootTrusted", "verifiedValues",
                 "tamperedValues", "missingValues", "unsignedValues", "chain", "problems"],
    "properties": {
        "index": {"type": "integer"},
        "iss": _TEXT_OR_NULL,
        "sub": _TEXT_OR_NULL,
        "trusted": {"type": "boolean"},
        "rootTrusted": {"type": "boolean"},
        "verifiedValues": _INDEXES,
        "tamperedValues": _INDEXES,
        "missingValues": _INDEXES,
        "unsignedValues": _INDEXES,
        "chain": {"type": "array", "items": _LINK},
        "problems": _TEXTS,
    },
    "additionalProperties": False,
}  # fmt: skip
_REPORT = {
    "type": "object",
    "required": ["responseCode", "handle", "verification"],
    "properties": {
        "responseCode": {"const": 1},
        "handle": {"type": "string"},
        "verification": {
            "type": "object",
            "required": ["handle", "status", "ok", "signedValues", "tamperedValues",
                         "unsignedValues", "missingValues", "problems", "signatures"],
            "properties": {
                "handle": {"type": "string"},
                "status": {"enum": ["verified", "failed", "unsigned"]},
                "ok": {"type": "boolean"},
                "signedValues": _INDEXES,
                "tamperedValues": _INDEXES,
                "unsignedValues": _INDEXES,
                "missingValues": _INDEXES,
                "problems": _TEXTS,
                "signatures": {"type": "array", "items": _SIGNATURE},
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}  # fmt: skip


def verify_openapi_paths() -> dict[str, Any]:
    """The OpenAPI path item of ``/api/verify/{handle}``."""
    errors = {
        400: "Invalid handle (responseCode 102), not served here and no resolver (301), the "
        "node has no [trust] configuration (5)",
        404: "The identifier does not exist (responseCode 100)",
    }
    responses: dict[str, Any] = {
        "200": {"description": "The verification report", "content": _json(_REPORT)}
    }
    for status, text in errors.items():
        responses[str(status)] = {"description": text, "content": _json(_ERROR)}
    return {
        "/api/verify/{handle}": {
            "get": {
                "summary": "Verify an identifier's signed values (HS_SIGNATURE) and their "
                "certificate chains (HS_CERT) up to the node's trust root",
                "parameters": [
                    {
                        "name": "handle",
                        "in": "path",
                        "required": True,
                        "description": "The identifier (percent-decoded once).",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "pretty",
                        "in": "query",
                        "description": "Indent the JSON.",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "callback",
                        "in": "query",
                        "description": "Answer as JSONP: callback(json);",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": responses,
            }
        }
    }
