"""The Handle.Net-compatible HTTP JSON API (spec §5), and :func:`build_app`, the node's whole
HTTP application: the routes of :func:`api_router` behind native messages.

``build_app(dispatcher)`` answers:

* native messages POSTed as ``application/x-hdl-message`` on any path (:mod:`.native`);
* ``/api/handles/...`` (:mod:`.handles`), ``/api/prefixes`` (:mod:`.prefixes`),
  ``/api/sessions`` (:mod:`.session_api`), ``/api/trace/...`` and ``/api/audit``
  (:mod:`.trace`), ``/api/verify/...`` (:mod:`.verify`), ``/api/stats`` and ``/api/report``
  (:mod:`.stats`), ``/api/openapi.json`` (:mod:`.openapi`);
* ``/hrls/handles`` (:mod:`.reverse_lookup`), the reverse-lookup servlet pyhandle searches,
  answered like an endpoint under ``/api/`` (everything below applies to ``/hrls/`` too);
* the SNMS-compatible API and ``/api/admin`` (:mod:`.snms`, before ``/api``) when the
  store keeps accounts;
* then ``extra_routes``, in order: this is where the browser proxy and GS1 Digital Link
  routes are mounted, the proxy as the catch-all ``("", handler)`` route last. Their OpenAPI
  path items go in ``openapi_paths``::

      app = build_app(dispatcher, extra_routes=[("", proxy)], openapi_paths=proxy_paths)

Under ``/api/`` endpoints are matched on the **raw** path (so ``/api%2Fhandles/x`` is not
``/api/handles/x``); an unknown one is 404, a method an endpoint does not take 405 (with
``Allow``), a method HTTP/1.1 does not define 501, ``OPTIONS`` 200 with ``Allow`` (and the CORS
preflight headers). Every error is the JSON error shape of :mod:`.asgi` (JSONP with
``callback``); a 401 carries ``WWW-Authenticate`` (``Basic realm="handle"``, and the Handle
scheme's ``sessionId``/``nonce`` when the request used a session).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any, Protocol

from idnode.errors import HandleError
from idnode.http.asgi import ASGIApp, Handler, HTTPError, Request, Response, Router
from idnode.http.auth import Authenticator, AuthFailed
from idnode.http.batch import BatchApi, batch_openapi_paths
from idnode.http.common import (
    JSON_TYPE,
    MethodNotAllowed,
    Params,
    render,
    to_http_error,
    unknown_endpoint,
)
from idnode.http.handles import HandlesApi
from idnode.http.native import NativeOverHttp
from idnode.http.openapi import PathItems, add_path_items, openapi_document
from idnode.http.prefixes import PrefixesApi
from idnode.http.reverse_lookup import ReverseLookupApi
from idnode.http.session_api import SessionsApi
from idnode.http.sessions import SessionStore
from idnode.http.snms import snms_routes
from idnode.http.stats import ReportApi, StatsApi
from idnode.http.trace import AuditApi, TraceApi, trace_openapi_paths
from idnode.http.verify import VerifyApi, verify_openapi_paths
from idnode.protocol.codes import ResponseCode
from idnode.server.dispatch import Dispatcher

__all__ = ["CORS_EXPOSE", "JsonApi", "api_document", "api_router", "build_app"]

_KNOWN_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE")
_CORS_ALLOW_HEADERS = "X-Requested-With,Authorization,Origin,Accept,Content-Type"
#: ``Access-Control-Expose-Headers`` of every answer to a request with ``Origin``.
CORS_EXPOSE = "Allow,Location,WWW-Authenticate,Content-Length"


class Endpoint(Protocol):
    def allow(self, rest: str) -> tuple[str, ...]: ...

    def body_params(self, method: str) -> bool: ...

    async def __call__(self, request: Request, rest: str, params: Params) -> Response: ...


def api_document(openapi_paths: PathItems = ()) -> dict[str, Any]:
    """The OpenAPI document served at ``/api/openapi.json``: the API, the batch, trace and
    audit endpoints and ``openapi_paths`` (e.g. the proxy's)."""
    document = add_path_items(openapi_document(openapi_paths), batch_openapi_paths())
    document = add_path_items(document, verify_openapi_paths())
    return add_path_items(document, trace_openapi_paths())


class _SessionsEndpoint:
    """Adapts :class:`SessionsApi` (which reads its own parameters) to :class:`Endpoint`."""

    def __init__(self, api: SessionsApi) -> None:
        self.api = api

    def allow(self, rest: str) -> tuple[str, ...]:
        return self.api.allow(rest)

    def body_params(self, method: str) -> bool:
        return False

    async def __call__(self, request: Request, rest: str, params: Params) -> Response:
        return await self.api(request, rest)


class _OpenApiEndpoint:
    def __init__(self, document: dict[str, Any]) -> None:
        self.body = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")

    def allow(self, rest: str) -> tuple[str, ...]:
        return ("GET", "HEAD", "OPTIONS")

    def body_params(self, method: str) -> bool:
        return False

    async def __call__(self, request: Request, rest: str, params: Params) -> Response:
        return Response(200, self.body, content_type=JSON_TYPE)


class JsonApi:
    """Everything under ``/api`` and ``/hrls``: an :data:`~idnode.http.asgi.Handler` for the
    Router."""

    def __init__(
        self, dispatcher: Dispatcher, sessions: SessionStore, openapi_paths: PathItems = ()
    ) -> None:
        self.auth = Authenticator(dispatcher, sessions)
        self.endpoints: list[tuple[str, Endpoint]] = [
            ("/api/handles", HandlesApi(dispatcher, self.auth)),
            ("/api/batch", BatchApi(dispatcher, self.auth)),
            ("/api/prefixes", PrefixesApi(dispatcher, self.auth)),
            ("/api/sessions", _SessionsEndpoint(SessionsApi(self.auth))),
            ("/api/trace", TraceApi(dispatcher, self.auth)),
            ("/api/verify", VerifyApi(dispatcher, self.auth)),
            ("/api/audit", AuditApi(dispatcher, self.auth)),
            ("/api/stats", StatsApi(dispatcher, self.auth)),
            ("/api/report", ReportApi(dispatcher, self.auth)),
            ("/hrls/handles", ReverseLookupApi(dispatcher, self.auth)),
        ]
        self.exact: dict[str, Endpoint] = {
            "/api/openapi.json": _OpenApiEndpoint(api_document(openapi_paths)),
        }

    def find(self, path: str) -> tuple[Endpoint, str] | None:
        if path in self.exact:
            return self.exact[path], ""
        for base, endpoint in self.endpoints:
            if path == base or path.startswith(base + "/"):
                return endpoint, path[len(base) + 1 :]
        return None

    async def __call__(self, request: Request) -> Response:
        params = Params(request.query)
        try:
            response = await self._answer(request, params)
        except HTTPError as exc:
            response = self._error(request, params, exc)
        except HandleError as exc:
            response = self._error(request, params, to_http_error(exc))
        if "origin" in request.headers:
            response.header("access-control-expose-headers", CORS_EXPOSE)
        return response

    async def _answer(self, request: Request, params: Params) -> Response:
        found = self.find(request.raw_path)
        method = request.method
        if method not in _KNOWN_METHODS:
            raise HTTPError(ResponseCode.PROTOCOL_ERROR, f"Unknown method {method}", status=501)
        if found is None:
            if method == "OPTIONS":
                return _options(request, ("OPTIONS",))
            raise unknown_endpoint(request)
        endpoint, rest = found
        allow = endpoint.allow(rest)
        if method == "OPTIONS":
            return _options(request, allow)
        if method not in allow:
            raise MethodNotAllowed(request, allow)
        if endpoint.body_params(method):
            params.pairs = (await Params.read(request, from_body=True)).pairs
        return await endpoint(request, rest, params)

    def _error(self, request: Request, params: Params, exc: HTTPError) -> Response:
        response = render(params, exc.to_json(), exc.status)
        if isinstance(exc, MethodNotAllowed):
            response.header("allow", ", ".join(exc.allow))
        if exc.status == 401:
            scheme = request.headers.get("authorization", "basic").strip()[:6].lower()
            xhr = request.headers.get("x-requested-with") == "XMLHttpRequest"
            if scheme.startswith("basic") and not xhr:
                response.header("www-authenticate", 'Basic realm="handle"')
            session = exc.session if isinstance(exc, AuthFailed) else None
            if session is not None:
                nonce = base64.b64encode(session.nonce).decode()
                response.header(
                    "www-authenticate", f'Handle sessionId="{session.id}", nonce="{nonce}"'
                )
        return response


def _options(request: Request, allow: tuple[str, ...]) -> Response:
    response = Response(200, content_type=None).header("allow", ", ".join(allow))
    if "origin" in request.headers and "access-control-request-method" in request.headers:
        response.header("access-control-allow-methods", "GET,POST,HEAD,PUT,DELETE")
        response.header("access-control-allow-headers", _CORS_ALLOW_HEADERS)
        response.header("access-control-max-age", "86400")
    return response


def api_router(
    dispatcher: Dispatcher,
    *,
    sessions: SessionStore | None = None,
    extra_routes: Iterable[tuple[str, Handler]] = (),
    openapi_paths: PathItems = (),
) -> Router:
    """The routes of the node's HTTP application: the SNMS API, ``/api`` and ``/hrls``, then
    ``extra_routes``. The application is this router inside
    :class:`~idnode.http.native.NativeOverHttp`."""
    api = JsonApi(dispatcher, sessions if sessions is not None else SessionStore(), openapi_paths)
    return Router([*snms_routes(dispatcher), ("/api", api), ("/hrls", api), *extra_routes])


def build_app(
    dispatcher: Dispatcher,
    *,
    sessions: SessionStore | None = None,
    extra_routes: Iterable[tuple[str, Handler]] = (),
    openapi_paths: PathItems = (),
) -> ASGIApp:
    """The HTTP application of :func:`api_router`'s routes, native messages first (what a
    node serves, without its response cache and metrics)."""
    router = api_router(
        dispatcher, sessions=sessions, extra_routes=extra_routes, openapi_paths=openapi_paths
    )
    return NativeOverHttp(router, dispatcher)
