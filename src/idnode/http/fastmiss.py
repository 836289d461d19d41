"""Misses of the JSON API's and the browser proxy's plain resolutions answered by the HTTP
server's protocol.

A request the HTTP response cache cannot answer goes through uvicorn's request cycle and the
application: a task, the ASGI scope and messages, the metrics, cache, native-message and
router layers, then the handler, which for a plain public record makes its answer from the
stored bytes (:func:`idnode.http.fastjson.answer`, :func:`idnode.http.fastproxy.answer`).
All around that answer costs several times the read and the answer together.
:class:`MissMaker` makes the same answer without any of it when it can be made at once
(:func:`~idnode.http.fastjson.answer_now`, :func:`~idnode.http.fastproxy.answer_now`: a
store that reads without waiting, a prefix checked lately, a plain public record), and the
protocol (:mod:`idnode.http.fastserve`) writes it and keeps it in the cache as the
application's cache wrapper would have kept it.

Taken only by the requests the application's router gives to the handles endpoint of
:class:`~idnode.http.api.JsonApi` or to :class:`~idnode.http.proxy.BrowserProxy` (with the
clock :func:`time.time`, whose answers are kept), asked of the router itself, for a raw path
in ASCII (uvicorn's, and so the router's, percent-decoded path is then made the same way
here) and no ``Authorization`` or ``Cookie`` (the cache key already refuses them). What the
layers would have added, this adds: the router's ``access-control-allow-origin``,
``JsonApi``'s ``access-control-expose-headers`` for a request with ``Origin``, the proxy's
``vary``, the content type and length of :meth:`~idnode.http.asgi.Response.raw_headers`, and
no body for ``HEAD``. ``tests/http/test_fastmiss.py`` compares these answers with the
application's, byte for byte.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, unquote

from idnode.console.app import RootPage
from idnode.errors import StoreError
from idnode.http import fastjson, fastproxy
from idnode.http.api import CORS_EXPOSE, JsonApi
from idnode.http.asgi import Response, Router
from idnode.http.common import Params
from idnode.http.handles import HandlesApi
from idnode.http.proxy import BrowserProxy
from idnode.http.respcache import Made
from idnode.server.dispatch import Dispatcher
from idnode.server.respcache import Note

__all__ = ["MissMaker"]

_HEAD = b"HEAD"


class MissMaker:
    """The :data:`~idnode.http.respcache.MakeNow` of an application routed by ``router``
    (module docstring)."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def __call__(
        self,
        dispatcher: Dispatcher,
        method: bytes,
        path: bytes,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> Made | None:
        """The application's answer to anonymous ``method`` (``GET`` or ``HEAD``) ``path``
        (raw) with ``query`` and ``headers`` (names in lower case), made at once; None when
        it is not one made here, and the request goes the application's way."""
        if not path.isascii():
            return None
        raw = path.decode("ascii")
        decoded = unquote(raw) if "%" in raw else raw
        handler = self.router.find(decoded)
        if isinstance(handler, RootPage) and decoded != "/":
            handler = handler.proxy  # the console's home page is "/" alone
        try:
            if isinstance(handler, JsonApi):
                found = handler.find(raw)
                if found is None or not isinstance(found[0], HandlesApi):
                    return None
                return _api(dispatcher, method, found[1], query, headers)
            if isinstance(handler, BrowserProxy) and not query and handler.clock is time.time:
                return _proxy(dispatcher, method, raw[1:], headers)
        except StoreError:
            return None  # the application's way makes the error answer
        return None


def _api(
    dispatcher: Dispatcher,
    method: bytes,
    rest: str,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
) -> Made | None:
    origin = False
    for name, _ in headers:
        if name == b"authorization":
            return None
        if name == b"origin":
            origin = True
    params = Params(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    note = Note()
    response = fastjson.answer_now(dispatcher, rest, params, note)
    if response is None:
        return None
    if origin:
        response.header("access-control-expose-headers", CORS_EXPOSE)
    return _sent(method, response, note, -1, None)


def _proxy(
    dispatcher: Dispatcher, method: bytes, rest: str, headers: list[tuple[bytes, bytes]]
) -> Made | None:
    accept = ""
    for name, value in headers:  # the last one counts, as in Request.headers
        if name == b"authorization" or name == b"cookie":
            return None
        if name == b"accept":
            accept = value.decode("latin-1")
    note = Note()
    made = fastproxy.answer_now(dispatcher, rest, accept, note)
    if made is None:
        return None
    response, rule = made
    response.header("vary", "Accept")
    return _sent(method, response, note, 1, rule)


def _sent(
    method: bytes,
    response: Response,
    note: Note,
    vouched: int,
    expires: tuple[float, float] | None,
) -> Made:
    """What the router sends of ``response``, with what the handler vouched for."""
    response.header("access-control-allow-origin", "*")
    body = b"" if method == _HEAD else response.body
    return response.status, response.raw_headers(), body, note, vouched, expires
