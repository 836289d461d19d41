"""``POST /api/batch``: register up to :data:`MAX_ITEMS` identifiers in one call.

Body: ``{"handles": [{"handle": "P/S", "values": [<value as in PUT>...]}, ...]}``. Each item
is checked as a create would be (handle, prefix served here, ADD_HANDLE for the caller, every
value, its metadata template: :meth:`~idnode.server.dispatch.Dispatcher.register_handles`)
and the valid ones are written in one transaction, the same bulk path as
``idnode import`` (:meth:`~idnode.store.base.HandleStore.create_records`). Existing handles
are left unchanged. A bad item does not stop the others; the answer has one result per item,
in order::

    {"responseCode": 1, "total": 3, "created": 2, "failed": 1,
     "results": [{"handle": "P/A", "responseCode": 1}, ...,
                 {"handle": "P/C", "responseCode": 101, "message": "Handle already exists."},
                 {"handle": "P/D", "responseCode": 202, "message": "range: power at 2002: ...",
                  "errors": [{"field": "power", "code": "range", "message": "...",
                              "index": 2002}]}]}

An item its template refuses has ``errors``, the per-field errors, as a refused PUT has.

Authentication as for the rest of the API (HTTP Basic or a ``Handle`` session); anonymous
calls get 401 with responseCode 402.
"""

from __future__ import annotations

from typing import Any

from idnode.errors import HandleError
from idnode.http.asgi import HTTPError, Request, Response
from idnode.http.common import ApiEndpoint, Params, is_json, protocol_error, render
from idnode.http.openapi_schemas import ref
from idnode.jsonvalues import value_from_json
from idnode.protocol.codes import ResponseCode
from idnode.protocol.values import HandleValue

__all__ = ["MAX_ITEMS", "BatchApi", "batch_openapi_paths"]

#: Most identifiers accepted in one call.
MAX_ITEMS = 2000


class BatchApi(ApiEndpoint):
    methods = ("POST", "OPTIONS")

    async def __call__(self, request: Request, rest: str, params: Params) -> Response:
        if rest:
            raise HTTPError(ResponseCode.PROTOCOL_ERROR, "Unknown HTTP API endpoint", status=404)
        identity = await self.auth.identify(request)
        if identity is None:
            raise HTTPError(ResponseCode.AUTHENTICATION_NEEDED, "Authentication required")
        if not is_json(request):
            raise protocol_error("Content-Type must be application/json")
        body = await request.json()
        items = body.get("handles") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise protocol_error('expected {"handles": [...]}')
        if len(items) > MAX_ITEMS:
            raise protocol_error(f"at most {MAX_ITEMS} identifiers per call", status=413)
        names: list[str] = []
        results: list[dict[str, Any]] = []
        valid: list[tuple[str, list[HandleValue]]] = []
        positions: list[int] = []
        for position, item in enumerate(items):
            handle, values, error = _item(item)
            names.append(handle)
            results.append({"handle": handle, "responseCode": ResponseCode.SUCCESS})
            if error is not None:
                results[-1] |= {"responseCode": error[0], "message": error[1]}
            else:
                valid.append((handle, values))
                positions.append(position)
        outcomes = await self.dispatcher.register_handles(valid, identity) if valid else []
        for position, outcome in zip(positions, outcomes, strict=True):
            if outcome.code != ResponseCode.SUCCESS:
                results[position] |= {"responseCode": int(outcome.code), "message": outcome.message}
            if outcome.errors:
                results[position]["errors"] = [e.to_json() for e in outcome.errors]
        failed = sum(1 for r in results if r["responseCode"] != ResponseCode.SUCCESS)
        return render(
            params,
            {
                "responseCode": ResponseCode.SUCCESS,
                "total": len(results),
                "created": len(results) - failed,
                "failed": failed,
                "results": results,
            },
        )


def _item(item: Any) -> tuple[str, list[HandleValue], tuple[int, str] | None]:
    """(handle, values, None) or (handle, [], (responseCode, message)) for one item."""
    if not isinstance(item, dict):
        return "", [], (ResponseCode.PROTOCOL_ERROR, "each item must be an object")
    handle = item.get("handle")
    if not isinstance(handle, str) or not handle:
        return "", [], (ResponseCode.INVALID_HANDLE, "each item needs a 'handle' string")
    raw = item.get("values")
    if not isinstance(raw, list):
        return handle, [], (ResponseCode.PROTOCOL_ERROR, "'values' must be a list")
    try:
        return handle, [value_from_json(v) for v in raw], None
    except HandleError as exc:
        return handle, [], (int(exc.response_code), exc.message)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        return handle, [], (ResponseCode.INVALID_VALUE, str(exc))


def batch_openapi_paths() -> dict[str, Any]:
    """The OpenAPI path item of ``/api/batch``."""
    value = {"$ref": "#/components/schemas/ValueInput"}
    result = {
        "type": "object",
        "required": ["handle", "responseCode"],
        "properties": {
            "handle": {"type": "string"},
            "responseCode": {"type": "integer"},
            "message": {"type": "string"},
            "errors": {"type": "array", "items": ref("FieldError")},
        },
    }
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "/api/batch": {
            "post": {
                "summary": f"Register up to {MAX_ITEMS} identifiers, one result per item",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["handles"],
                                "properties": {
                                    "handles": {
                                        "type": "array",
                                        "maxItems": MAX_ITEMS,
                                        "items": {
                                            "type": "object",
                                            "required": ["handle", "values"],
                                            "properties": {
                                                "handle": {"type": "string"},
                                                "values": {"type": "array", "items": value},
                                            },
                                        },
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "One result per item",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "responseCode": {"type": "integer"},
                                        "total": {"type": "integer"},
                                        "created": {"type": "integer"},
                                        "failed": {"type": "integer"},
                                        "results": {"type": "array", "items": result},
                                    },
                                }
                            }
                        },
                    },
                    "400": {"description": "Not a batch", **error},
                    "401": {"description": "Authentication required", **error},
                    "403": {"description": "Credentials that do not verify", **error},
                    "413": {"description": "Too many identifiers or too large", **error},
                },
            }
        }
    }
