"""``GET /metrics``: the node process's :class:`~idnode.server.metrics.Metrics` in the
Prometheus text exposition format, and the ASGI wrapper that times every HTTP request.

Access (``metrics`` in the node configuration): ``"public"`` answers anyone; ``"admin"``
(the default) answers server administrators only, authenticated as for the JSON API (HTTP
Basic with the identity's HS_SECKEY, or a Handle-scheme session): 401 without credentials,
403 for an identity that is not a server administrator; ``"off"`` mounts no such path.
"""

from __future__ import annotations

import time

from idnode.http.asgi import ASGIApp, HTTPError, Receive, Request, Response, Scope, Send
from idnode.http.auth import Authenticator
from idnode.http.sessions import SessionStore
from idnode.protocol.codes import ResponseCode
from idnode.server.dispatch import Dispatcher
from idnode.server.metrics import Metrics

__all__ = ["CONTENT_TYPE", "MetricsEndpoint", "route_of", "timed"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsEndpoint:
    def __init__(self, dispatcher: Dispatcher, metrics: Metrics, *, public: bool) -> None:
        self.dispatcher = dispatcher
        self.metrics = metrics
        self.public = public
        self.auth = Authenticator(dispatcher, SessionStore())

    async def __call__(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise HTTPError(ResponseCode.OPERATION_NOT_SUPPORTED, "GET only", status=405)
        if not self.public:
            identity = await self.auth.identify(request)
            if identity is None:
                raise HTTPError(ResponseCode.AUTHENTICATION_NEEDED, "Authentication needed")
            if not await self.dispatcher.authorizer.is_server_admin(identity):
                raise HTTPError(
                    ResponseCode.INVALID_ADMIN, f"{identity} is not a server administrator"
                )
        body = self.metrics.render().encode("utf-8")
        return Response(200, body, content_type=CONTENT_TYPE)


def route_of(path: str) -> str:
    """The label of a request path: few values, whatever the handle."""
    if path.startswith("/api/handles"):
        return "api_handles"
    if path.startswith(("/api", "/hrls")):
        return "api"
    if path == "/metrics":
        return "metrics"
    if path == "/":
        return "native"  # native messages are POSTed to the root (or a proxy page)
    return "proxy"


def timed(app: ASGIApp, metrics: Metrics) -> ASGIApp:
    """``app``, recording every HTTP request's route, status and duration in ``metrics``."""

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, object]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])  # type: ignore[call-overload]
            await send(message)

        try:
            await app(scope, receive, send_status)
        finally:
            metrics.http(route_of(scope["path"]), status, time.perf_counter() - started)

    return wrapper
