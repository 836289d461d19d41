"""``/api/handles/{handle}`` and ``/api/handles?prefix=P`` (spec §5.1, §5.2; the reference
server's ``HandleJsonRestApiServlet``).

The handle is the raw request path after ``/api/handles/``, percent-decoded once (``+`` stays
a plus, ``%2F`` becomes a slash, nothing is normalised: ``..`` and case are kept) and must be
UTF-8. Every answer that concerns a handle echoes it in ``handle`` exactly as decoded, errors
included (pyhandle reads ``handle`` even from a 404). ``hdl:``/``doi:`` are not stripped: such a
"prefix" is not homed here, so 400 with responseCode 301, as the reference server answers.

Each operation is one native request run by the dispatcher as the caller's identity:

====================================  ==============================================
GET (POST: parameters in the body)    RESOLUTION; ``index``, ``type`` filters; PO unless
                                      authenticated (``publicOnly`` overrides); 200, or 200
                                      ``responseCode 200`` when no value matches
GET with empty handle and ``prefix``  LIST_HANDLES of ``0.NA/<prefix>``, paged
PUT without ``index``                 CREATE_HANDLE (replacing when ``overwrite``, default true)
PUT with ``index=N``... / ``various`` ADD_VALUE (replacing existing indexes when ``overwrite``)
DELETE without / with ``index``       DELETE_HANDLE / REMOVE_VALUE
====================================  ==============================================

An anonymous GET or HEAD of a plain public record is answered by :mod:`.fastjson` from the
stored record's bytes, with the same bytes as the resolution below would give.

PUT answers 201 when it created without overwrite, else 200. A PUT body is read and checked
whole (JSON content type, shape, every value, indexes matching the query) before anything runs,
and the dispatcher validates every value, and the record against its metadata template,
before the store writes atomically: a bad request changes nothing. A record its template
refuses gets 400 (responseCode 202) with ``errors``, the per-field errors
(:class:`~idnode.industry.codes.TemplateViolation`).
"""

from __future__ import annotations

from typing import Any

from idnode.errors import HandleError, InvalidValue, ValuesNotFound
from idnode.http import fastjson
from idnode.http.asgi import HTTPError, Request, Response
from idnode.http.common import (
    ApiEndpoint,
    Params,
    decode_path,
    execute,
    is_json,
    paged,
    protocol_error,
    render,
    to_http_error,
)
from idnode.jsonvalues import value_from_json, value_to_json
from idnode.protocol.bodies import (
    CreateHandleResponse,
    HandleListBody,
    HandleRequest,
    RemoveValuesRequest,
    ResolutionRequest,
    ResolutionResponse,
    ValuesRequest,
)
from idnode.protocol.codes import OpCode, OpFlag, ResponseCode
from idnode.protocol.values import HandleValue
from idnode.server.authz import Identity
from idnode.store.base import handle_key

__all__ = ["HandlesApi", "decode_path", "parse_put_body", "prefix_handle"]

_ALLOW = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS")


def prefix_handle(prefix: str) -> str:
    """``P`` or ``0.NA/P`` → ``0.NA/P`` (clients send either, spec §5.2)."""
    return prefix if handle_key(prefix).startswith("0.NA/") else f"0.NA/{prefix}"


def parse_put_body(handle: str, data: Any) -> list[HandleValue]:
    """The values of a PUT body: an array, ``{"values": [...], "handle"?}`` or one value."""
    if isinstance(data, dict) and "values" in data:
        named = data.get("handle")
        if named is not None and (
            not isinstance(named, str) or handle_key(named) != handle_key(handle)
        ):
            raise protocol_error("Mismatched handle in PUT request")
        items = data["values"] if data["values"] is not None else []
    elif isinstance(data, dict) and all(k in data for k in ("index", "type", "data")):
        items = [data]
    else:
        items = data
    if not isinstance(items, list):
        raise protocol_error("Invalid JSON in PUT request: expected values")
    values = []
    for position, item in enumerate(items):
        try:
            values.append(value_from_json(item))
        except InvalidValue as exc:
            raise protocol_error(f"Invalid value at position {position}: {exc.message}") from exc
    return values


class HandlesApi(ApiEndpoint):
    methods = _ALLOW
    # No form parameters for the router: POST reads them in __call__, so that its errors
    # name the handle.

    async def __call__(self, request: Request, rest: str, params: Params) -> Response:
        """``rest``: the raw path after ``/api/handles/``."""
        fast = await fastjson.answer(self.dispatcher, request, rest, params)
        if fast is not None:
            return fast
        handle = decode_path(rest)
        try:
            if request.method == "POST":
                params.pairs = (await Params.read(request, from_body=True)).pairs
            identity = await self.auth.identify(request)
            if request.method in ("GET", "HEAD", "POST"):
                if handle == "":
                    return await self._list(params, identity)
                return await self._resolve(handle, params, identity)
            if handle == "":
                raise HTTPError(ResponseCode.INVALID_HANDLE, "Empty handle invalid")
            if request.method == "PUT":
                return await self._put(request, handle, params, identity)
            return await self._delete(handle, params, identity)
        except HandleError as exc:
            raise to_http_error(exc, handle=handle or None) from exc
        except HTTPError as exc:
            if exc.handle is None and handle:
                exc.handle = handle
            raise

    async def _resolve(self, handle: str, params: Params, identity: Identity | None) -> Response:
        indexes, types = params.indexes() or (), tuple(params.all("type"))
        public_only = identity is None
        if params.first("publicOnly") is not None:
            public_only = params.flag("publicOnly")
        flags = (OpFlag.PO if public_only else 0) | (OpFlag.AT if params.flag("auth") else 0)
        flags |= OpFlag.REC  # a recursive node answers for handles it does not serve
        flags |= OpFlag.DNRF if params.flag("doNotRefer") else 0
        body = ResolutionRequest(handle, indexes, types)
        try:
            response = await execute(self.dispatcher, OpCode.RESOLUTION, body, identity, flags)
        except ValuesNotFound:
            return render(
                params,
                {"responseCode": ResponseCode.VALUES_NOT_FOUND, "handle": handle, "values": []},
            )
        result = response.body
        assert isinstance(result, ResolutionResponse)
        values = [value_to_json(v) for v in result.values]
        return render(params, {"responseCode": 1, "handle": handle, "values": values})

    async def _list(self, params: Params, identity: Identity | None) -> Response:
        prefix = params.first("prefix")
        if prefix is None:
            raise HTTPError(ResponseCode.INVALID_HANDLE, "Empty handle invalid")
        try:
            body = HandleRequest(prefix_handle(prefix))
            response = await execute(self.dispatcher, OpCode.LIST_HANDLES, body, identity)
            result = response.body
            assert isinstance(result, HandleListBody)
            listing = paged(list(result.handles), params, "handles")
        except HandleError as exc:
            raise to_http_error(exc, handle=prefix) from exc
        except HTTPError as exc:
            exc.handle = prefix
            raise
        return render(params, {"responseCode": 1, "prefix": prefix, **listing})

    async def _put(
        self, request: Request, handle: str, params: Params, identity: Identity | None
    ) -> Response:
        if not is_json(request):
            content_type = request.headers.get("content-type")
            raise protocol_error(f"Unsupported media type {content_type}")
        various = params.first("index") == "various"
        indexes = None if various else params.indexes()
        values = parse_put_body(handle, await request.json())
        if indexes is not None and set(indexes) != {v.index for v in values}:
            raise protocol_error("Mismatched indexes in PUT request")
        overwrite = params.java_bool("overwrite", True)
        flags = (OpFlag.OVRW if overwrite else 0) | (
            OpFlag.MINT if params.java_bool("mintNewSuffix", False) else 0
        )
        op = OpCode.CREATE_HANDLE if indexes is None and not various else OpCode.ADD_VALUE
        body = ValuesRequest(handle, tuple(values))
        response = await execute(self.dispatcher, op, body, identity, flags)
        result = response.body
        created = result.handle if isinstance(result, CreateHandleResponse) else None
        status = 200 if overwrite else 201
        return render(params, {"responseCode": 1, "handle": created or handle}, status)

    async def _delete(self, handle: str, params: Params, identity: Identity | None) -> Response:
        indexes = params.indexes()
        if indexes is None:
            await execute(self.dispatcher, OpCode.DELETE_HANDLE, HandleRequest(handle), identity)
        else:
            body = RemoveValuesRequest(handle, indexes)
            await execute(self.dispatcher, OpCode.REMOVE_VALUE, body, identity)
        return render(params, {"responseCode": 1, "handle": handle})
