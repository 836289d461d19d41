"""Native Handle protocol messages over HTTP (spec §1.1; the reference server's
``NativeServlet``).

A ``POST`` whose ``Content-Type`` names ``application/x-hdl-message`` carries one encoded
request (envelope first; one leading CR or LF is skipped, as the reference server does). It is
answered by :func:`idnode.server.wire_io.answer`, the code path of the TCP transport, and the
encoded response comes back as ``application/x-hdl-message``. This applies to every path, so
it wraps the whole application. Bytes that are not a request that can be answered get 400
(responseCode 4) in the JSON error shape.
"""

from __future__ import annotations

import logging

from idnode.http.asgi import ASGIApp, HTTPError, Receive, Request, Response, Scope, Send
from idnode.protocol.codes import ResponseCode
from idnode.protocol.message import ENVELOPE_SIZE, MAX_MESSAGE_LENGTH
from idnode.server.dispatch import Dispatcher
from idnode.server.wire_io import answer

__all__ = ["NATIVE_TYPE", "NativeOverHttp", "is_native"]

NATIVE_TYPE = "application/x-hdl-message"
_MAX = ENVELOPE_SIZE + MAX_MESSAGE_LENGTH + 1

log = logging.getLogger(__name__)


def is_native(scope: Scope) -> bool:
    if scope.get("type") != "http" or scope.get("method") != "POST":
        return False
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-type" and NATIVE_TYPE.encode() in value.lower():
            return True
    return False


class NativeOverHttp:
    """ASGI middleware: native POSTs go to the dispatcher, everything else to ``app``."""

    def __init__(self, app: ASGIApp, dispatcher: Dispatcher) -> None:
        self.app = app
        self.dispatcher = dispatcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_native(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            data = await request.body()
            if len(data) > _MAX:
                raise HTTPError(ResponseCode.PROTOCOL_ERROR, "message too large", status=413)
            if data[:1] in (b"\r", b"\n"):
                data = data[1:]
            encoded, _ = await answer(self.dispatcher, data)
            if not encoded:
                raise HTTPError(ResponseCode.PROTOCOL_ERROR, "not a native Handle request")
            response = Response(200, encoded, content_type=NATIVE_TYPE)
        except HTTPError as exc:
            response = exc.response()
        except Exception:
            log.exception("native message over HTTP from %s failed", request.client)
            response = HTTPError(ResponseCode.ERROR, "internal server error").response()
        await response.send(send)
