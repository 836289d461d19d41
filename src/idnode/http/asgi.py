"""A small ASGI layer: :class:`Request`, :class:`Response`, :class:`HTTPError` and a router.

Every error an HTTP handler raises becomes one JSON shape (spec §5, pinned by a test)::

    {"responseCode": <Handle response code>, "message": "<text>"[, "handle": "<as requested>"]
     [, "errors": [{"field", "code", "message"[, "index"]}, ...]]}

(``errors``: the per-field errors of a write its metadata template refuses,
:class:`~idnode.industry.codes.TemplateViolation`) with the HTTP status from
:data:`STATUS_FOR_CODE`, the one table mapping Handle response codes to HTTP status codes
(spec §1.10). Pages meant for browsers may render errors as HTML instead
(:class:`HTTPError` carries ``html``).
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from idnode.errors import HandleError
from idnode.industry.codes import TemplateViolation
from idnode.protocol.codes import ResponseCode
from idnode.server.origin import PEER, peer_text

__all__ = [
    "STATUS_FOR_CODE",
    "ASGIApp",
    "HTTPError",
    "Request",
    "Response",
    "Router",
    "html_response",
    "http_date",
    "json_response",
]

log = logging.getLogger(__name__)

#: Largest request body accepted (bytes).
MAX_BODY = 4 * 1024 * 1024

#: Handle response code → HTTP status (spec §1.10 "Default REST HTTP status").
STATUS_FOR_CODE: dict[int, int] = {
    ResponseCode.SUCCESS: 200,
    ResponseCode.ERROR: 500,
    ResponseCode.SERVER_TOO_BUSY: 503,
    ResponseCode.PROTOCOL_ERROR: 400,
    ResponseCode.OPERATION_NOT_SUPPORTED: 501,
    ResponseCode.RECURSION_COUNT_TOO_HIGH: 500,
    ResponseCode.SERVER_BACKUP: 503,
    ResponseCode.HANDLE_NOT_FOUND: 404,
    ResponseCode.HANDLE_ALREADY_EXISTS: 409,
    ResponseCode.INVALID_HANDLE: 400,
    ResponseCode.VALUES_NOT_FOUND: 400,
    ResponseCode.VALUE_ALREADY_EXISTS: 409,
    ResponseCode.INVALID_VALUE: 400,
    ResponseCode.OUT_OF_DATE_SITE_INFO: 500,
    ResponseCode.SERVER_NOT_RESP: 400,
    ResponseCode.SERVICE_REFERRAL: 300,
    ResponseCode.PREFIX_REFERRAL: 300,
    ResponseCode.INVALID_ADMIN: 403,
    ResponseCode.INSUFFICIENT_PERMISSIONS: 403,
    ResponseCode.AUTHENTICATION_NEEDED: 401,
    ResponseCode.AUTHENTICATION_FAILED: 403,
    ResponseCode.INVALID_CREDENTIAL: 403,
    ResponseCode.AUTHEN_TIMEOUT: 500,
    ResponseCode.AUTHEN_ERROR: 500,
}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = "application/json; charset=UTF-8"

    def header(self, name: str, value: str) -> Response:
        self.headers.append((name, value))
        return self

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """The headers as :meth:`send` sends them: names in lower case, then the content
        type and length."""
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        if self.content_type is not None:
            headers.append((b"content-type", self.content_type.encode("latin-1")))
        headers.append((b"content-length", str(len(self.body)).encode()))
        return headers

    async def send(self, send: Send, *, head_only: bool = False) -> None:
        headers = self.raw_headers()
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head_only else self.body})


def json_response(data: Any, status: int = 200, *, pretty: bool = False) -> Response:
    text = json.dumps(data, ensure_ascii=False, indent=2 if pretty else None)
    return Response(status, text.encode("utf-8"))


#: HTTP dates made lately, by the second (:func:`http_date`).
_DATES: dict[int, str] = {}


def http_date(moment: float) -> str:
    """``email.utils.formatdate(moment, usegmt=True)``, the HTTP date of ``moment``,
    remembered by the second: answers made within the same second share the text."""
    second = math.floor(moment)
    if moment - second >= 0.999999:  # rounded to microseconds, it may be the next second
        return email.utils.formatdate(moment, usegmt=True)
    text = _DATES.get(second)
    if text is None:
        if len(_DATES) >= 256:
            _DATES.clear()
        text = _DATES[second] = email.utils.formatdate(second, usegmt=True)
    return text


def html_response(html: str, status: int = 200) -> Response:
    return Response(status, html.encode("utf-8"), content_type="text/html; charset=UTF-8")


class HTTPError(Exception):
    """An error answer: a Handle ``response_code``, the HTTP ``status`` (from the table unless
    given), a message, and optionally the handle as requested, per-field errors and an HTML
    rendering."""

    def __init__(
        self,
        response_code: int,
        message: str = "",
        *,
        status: int | None = None,
        handle: str | None = None,
        html: str | None = None,
        errors: list[dict[str, object]] | None = None,
    ) -> None:
        super().__init__(message)
        self.response_code = int(response_code)
        self.status = status if status is not None else STATUS_FOR_CODE.get(response_code, 500)
        self.message = message
        self.handle = handle
        self.html = html
        self.errors = errors

    @classmethod
    def from_handle_error(
        cls, exc: HandleError, *, handle: str | None = None, status: int | None = None
    ) -> HTTPError:
        code = getattr(exc, "code", type(exc).response_code)
        errors = exc.to_json() if isinstance(exc, TemplateViolation) else None
        return cls(code, exc.message, handle=handle, status=status, errors=errors)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"responseCode": self.response_code}
        if self.handle is not None:
            out["handle"] = self.handle
        out["message"] = self.message
        if self.errors is not None:
            out["errors"] = self.errors
        return out

    def response(self, *, wants_html: bool = False) -> Response:
        if wants_html and self.html is not None:
            return html_response(self.html, self.status)
        return json_response(self.to_json(), self.status)


class Request:
    """One HTTP request. ``path`` is percent-decoded except for ``%2F``-style escapes, which
    the raw path keeps (see :attr:`raw_path`)."""

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self._receive = receive
        self._body: bytes | None = None
        self.method: str = scope["method"]
        raw = scope.get("raw_path") or scope["path"].encode("utf-8")
        self.raw_path: str = raw.decode("latin-1").split("?", 1)[0]
        self.path: str = scope["path"]
        qs = scope.get("query_string", b"").decode("latin-1")
        self.query: list[tuple[str, str]] = parse_qsl(qs, keep_blank_values=True)
        self.headers: dict[str, str] = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
        }

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name`` (None if absent)."""
        for k, v in self.query:
            if k == name:
                return v
        return None

    def params(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]

    def flag(self, name: str, default: bool = False) -> bool:
        """Boolean parameter as the reference server reads it (spec §5): absent → default;
        empty, ``true`` or ``yes`` (any case) → True; anything else → False."""
        value = self.param(name)
        if value is None:
            return default
        return value.lower() in ("", "true", "yes")

    @property
    def client(self) -> str:
        client = self.scope.get("client")
        return f"{client[0]}:{client[1]}" if client else "-"

    def accepts_html(self) -> bool:
        accept = self.headers.get("accept", "")
        return "text/html" in accept or (
            "json" not in accept and "*/*" not in accept and accept == ""
        )

    async def body(self) -> bytes:
        """The whole body; 413 beyond :data:`MAX_BODY`."""
        if self._body is None:
            chunks, size = [], 0
            while True:
                message = await self._receive()
                if message["type"] == "http.disconnect":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > MAX_BODY:
                    raise HTTPError(
                        ResponseCode.PROTOCOL_ERROR, "request body too large", status=413
                    )
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        """The body parsed as JSON; 400 (responseCode 4) if it is not JSON."""
        try:
            return json.loads(await self.body())
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(ResponseCode.PROTOCOL_ERROR, f"malformed JSON: {exc}") from exc


Handler = Callable[[Request], Awaitable[Response]]


class Router:
    """Routes by path prefix, first match wins; the last route may be a catch-all ("")."""

    def __init__(self, routes: Iterable[tuple[str, Handler]] = ()) -> None:
        self.routes: list[tuple[str, Handler]] = list(routes)

    def add(self, prefix: str, handler: Handler) -> None:
        self.routes.append((prefix, handler))

    def find(self, path: str) -> Handler | None:
        for prefix, handler in self.routes:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/") or prefix == "":
                return handler
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        handler = self.find(request.path)
        PEER.set(peer_text(scope.get("client")))  # ASGI servers run each request in a task
        try:
            if handler is None:
                raise HTTPError(
                    ResponseCode.PROTOCOL_ERROR,
                    f"Unknown HTTP API endpoint {request.path}",
                    status=405,
                )
            response = await handler(request)
        except HTTPError as exc:
            response = exc.response(wants_html=request.accepts_html())
        except HandleError as exc:
            response = HTTPError.from_handle_error(exc).response()
        except Exception:
            log.exception("HTTP %s %s failed", request.method, request.path)
            response = HTTPError(ResponseCode.ERROR, "internal server error").response()
        response.header("access-control-allow-origin", "*")
        await response.send(send, head_only=request.method == "HEAD")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
