"""What every JSON API handler shares: parameters, rendering, and running a request through the
dispatcher (spec §5).

* :class:`Params`: query parameters, plus for POST the JSON-object or form body (the reference
  server's ``JsonParameterServletReq``), read with the reference's rules: ``flag`` is the
  "absent = false; empty, ``true`` or ``yes`` = true" rule of §5, ``java_bool`` is Java's
  ``Boolean.parseBoolean`` (only ``true``, any case) used for ``overwrite`` and
  ``mintNewSuffix``, integers are Java ``Integer.parseInt``.
* :func:`render`: compact JSON (``pretty`` indents it), or JSONP when ``callback`` is given
  (``application/javascript``, the callback name scrubbed to identifier characters);
  :func:`render_text` sends JSON text already made the same way.
* :func:`decode_path`: a raw path segment percent-decoded once as UTF-8.
* :func:`execute`: one request :class:`~idnode.protocol.message.Message` run by
  :meth:`~idnode.server.dispatch.Dispatcher.execute` as an identity (or anonymously): the same
  code path, permissions and validation as the native protocol.
* :func:`to_http_error`: a :class:`~idnode.errors.HandleError` as the one JSON error shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from idnode.errors import HandleError
from idnode.http.asgi import HTTPError, Request, Response
from idnode.http.auth import Authenticator
from idnode.protocol.bodies import Body
from idnode.protocol.codes import ResponseCode
from idnode.protocol.message import Message
from idnode.server.authz import Identity
from idnode.server.dispatch import Dispatcher

__all__ = [
    "JSON_TYPE",
    "ApiEndpoint",
    "MethodNotAllowed",
    "Params",
    "decode_path",
    "execute",
    "is_json",
    "paged",
    "protocol_error",
    "render",
    "render_text",
    "to_http_error",
    "unknown_endpoint",
]

JSON_TYPE = "application/json; charset=UTF-8"
_INT = re.compile(r"[+-]?[0-9]+")
_INT32_MAX = 0x7FFFFFFF


class MethodNotAllowed(HTTPError):
    """405 for a method the endpoint does not take; ``allow`` goes in the Allow header."""

    def __init__(self, request: Request, allow: tuple[str, ...]) -> None:
        super().__init__(ResponseCode.PROTOCOL_ERROR, _unknown_message(request), status=405)
        self.allow = allow


def _unknown_message(request: Request) -> str:
    return f"Unknown HTTP API endpoint {request.method} {request.raw_path}"


def unknown_endpoint(request: Request) -> HTTPError:
    """404 for a path below an endpoint that has no such resource."""
    return HTTPError(ResponseCode.PROTOCOL_ERROR, _unknown_message(request), status=404)


class ApiEndpoint:
    """What the endpoints mounted in :class:`~idnode.http.api.JsonApi` share: the dispatcher
    that runs their requests, the authenticator that says who asks, the methods they take
    (:attr:`methods`, for 405 and the Allow header) and, unless a subclass says otherwise,
    no parameters read from a form body by the router."""

    methods: tuple[str, ...] = ("GET", "HEAD", "OPTIONS")

    def __init__(self, dispatcher: Dispatcher, auth: Authenticator) -> None:
        self.dispatcher = dispatcher
        self.auth = auth

    def allow(self, rest: str) -> tuple[str, ...]:
        return self.methods

    def body_params(self, method: str) -> bool:
        return False


def decode_path(raw: str) -> str:
    """A raw path segment (latin-1 text of the request bytes) percent-decoded once as UTF-8."""
    try:
        return unquote_to_bytes(raw.encode("latin-1")).decode("utf-8")
    except UnicodeError as exc:
        raise HTTPError(ResponseCode.INVALID_HANDLE, "the handle is not UTF-8") from exc


def protocol_error(message: str, *, status: int = 400, handle: str | None = None) -> HTTPError:
    """The reference server's answer to a request it cannot parse: responseCode 4."""
    return HTTPError(ResponseCode.PROTOCOL_ERROR, message, status=status, handle=handle)


def is_json(request: Request) -> bool:
    """``Content-Type`` is ``application/json``, optionally with parameters (Java
    ``hasJsonEntity``)."""
    content_type = request.headers.get("content-type", "").strip().lower()
    return content_type == "application/json" or bool(
        re.match(r"application/json\s*;", content_type)
    )


def _param_string(value: Any, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    raise protocol_error(f"parameter {name!r} must be a string, number or boolean")


class Params:
    """Request parameters in order; a name may repeat."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.pairs = list(pairs)

    @classmethod
    async def read(cls, request: Request, *, from_body: bool) -> Params:
        """The query parameters, then (``from_body``) those of a JSON-object or form body."""
        pairs = list(request.query)
        if not from_body:
            return cls(pairs)
        content_type = request.headers.get("content-type", "").lower()
        if is_json(request):
            body = await request.body()
            if body.strip():
                data = await request.json()
                if not isinstance(data, dict):
                    raise protocol_error("Expected JSON object")
                for name, value in data.items():
                    items = value if isinstance(value, list) else [value]
                    pairs += [(name, _param_string(v, name)) for v in items if v is not None]
        elif content_type.startswith("application/x-www-form-urlencoded"):
            text = (await request.body()).decode("utf-8", "replace")
            pairs += parse_qsl(text, keep_blank_values=True)
        return cls(pairs)

    def first(self, name: str) -> str | None:
        return next((v for k, v in self.pairs if k == name), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]

    def flag(self, name: str) -> bool:
        """Absent → False; empty, ``true`` or ``yes`` (any case) → True; else False (§5)."""
        value = self.first(name)
        return value is not None and value.lower() in ("", "true", "yes")

    def java_bool(self, name: str, default: bool) -> bool:
        """``Boolean.parseBoolean``: True only for ``true`` (any case); ``default`` if absent."""
        value = self.first(name)
        return default if value is None else value.lower() == "true"

    def integer(self, name: str, default: int) -> int:
        value = self.first(name)
        return default if value is None else parse_int(value, name)

    def indexes(self) -> tuple[int, ...] | None:
        """The repeated ``index`` parameter, or None when absent."""
        values = self.all("index")
        if not values:
            return None
        indexes = tuple(parse_int(v, "index") for v in values)
        if any(i < 0 for i in indexes):
            raise protocol_error(f"negative index in {values}")
        return indexes


def parse_int(value: str, name: str) -> int:
    """Java ``Integer.parseInt``: optional sign, ASCII digits, 32-bit range; else 400/4."""
    if not (value.isascii() and _INT.fullmatch(value)) or abs(int(value)) > _INT32_MAX + 1:
        raise protocol_error(f"{name} must be an integer, not {value!r:.40}")
    return int(value)


def _scrub_callback(name: str) -> str:
    """Java ``scrubCallbackParameter``: every character that cannot be in a JS identifier → _."""
    return "".join(
        ch
        if ch in "_$"
        or ("a" <= ch <= "z")
        or ("A" <= ch <= "Z")
        or (i and "0" <= ch <= "9")
        or ord(ch) >= 0xA0
        else "_"
        for i, ch in enumerate(name)
    )


def render(params: Params, data: Any, status: int = 200) -> Response:
    """``data`` as JSON (indented with ``pretty``), or as JSONP with ``callback``."""
    if params.flag("pretty"):
        text = json.dumps(data, ensure_ascii=False, indent=2)
    else:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return render_text(params, text, status)


def render_text(params: Params, text: str, status: int = 200) -> Response:
    """JSON ``text`` as :func:`render` sends it: as is, or as JSONP with ``callback``."""
    callback = params.first("callback")
    if callback is None:
        return Response(status, text.encode("utf-8"), content_type=JSON_TYPE)
    body = f"{_scrub_callback(callback)}({text});".encode()
    response = Response(status, body, content_type="application/javascript; charset=UTF-8")
    return response.header("x-content-type-options", "nosniff")


def to_http_error(exc: HandleError, *, handle: str | None = None) -> HTTPError:
    """``exc`` as the JSON error shape; an empty message becomes the class's default text."""
    error = HTTPError.from_handle_error(exc, handle=handle)
    if not error.message:
        error.message = (type(exc).__doc__ or "").strip().splitlines()[0]
    return error


async def execute(
    dispatcher: Dispatcher, op: int, body: Body, identity: Identity | None, flags: int = 0
) -> Message:
    """Run one request through the dispatcher; the success response, or a HandleError."""
    request = Message(op=op, body=body, flags=flags)
    return await dispatcher.execute(request, identity)


def paged(items: list[str], params: Params, what: str) -> dict[str, Any]:
    """``totalCount`` (a string), and ``page``/``pageSize`` plus that page of ``items`` when
    both are given and not negative (Java ``ListCallback``; pageSize 0 gives no items)."""
    page, page_size = params.integer("page", -1), params.integer("pageSize", -1)
    out: dict[str, Any] = {"totalCount": str(len(items))}
    if page >= 0 and page_size >= 0:
        out["page"], out["pageSize"] = page, page_size
        items = items[page * page_size : (page + 1) * page_size]
    out[what] = items
    return out
