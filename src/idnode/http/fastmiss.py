"""Misses of ``GET /api/handles/<handle>`` answered by the HTTP server's protocol.

A request the HTTP response cache cannot answer goes through uvicorn's request cycle and the
application: a task, the ASGI scope and messages, the metrics, cache, native-message and
router layers, :class:`~idnode.http.api.JsonApi`, then
:func:`idnode.http.fastjson.answer`, which makes the JSON from the stored record. Around that
answer, the rest costs several times the read and the JSON together. :func:`api_answer` makes
the same answer without any of it when it can be made at once
(:func:`~idnode.http.fastjson.answer_now`: a store that reads without waiting, a prefix
checked lately, a plain public record), and the protocol (:mod:`idnode.http.fastserve`)
writes it and keeps it in the cache as the application's cache wrapper would have kept it.

What the layers would have added, this adds: the router's ``access-control-allow-origin``,
``JsonApi``'s ``access-control-expose-headers`` for a request with ``Origin``, the content
type and length of :meth:`~idnode.http.asgi.Response.raw_headers`, and no body for ``HEAD``.
Only a request the router would give to ``JsonApi``'s handles endpoint is taken: a raw path
under ``/api/handles/`` in ASCII (the percent-decoded path the router matches then starts the
same way), no ``Authorization`` or ``Cookie`` (the cache key already refuses them).
``tests/http/test_fastmiss.py`` compares these answers with the application's, byte for byte.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from idnode.errors import StoreError
from idnode.http.api import CORS_EXPOSE
from idnode.http.common import Params
from idnode.http.fastjson import answer_now
from idnode.http.respcache import Made
from idnode.server.dispatch import Dispatcher
from idnode.server.respcache import Note

__all__ = ["api_answer"]

_API = b"/api/handles/"
_HEAD = b"HEAD"


def api_answer(
    dispatcher: Dispatcher,
    method: bytes,
    path: bytes,
    query: bytes,
    headers: list[tuple[bytes, bytes]],
) -> Made | None:
    """The application's answer to anonymous ``method`` (``GET`` or ``HEAD``) ``path`` (raw)
    with ``query`` and ``headers`` (names in lower case), made at once; None when it is not
    one made here (module docstring), and the request goes the application's way."""
    if not path.startswith(_API) or not path.isascii():
        return None
    origin = False
    for name, _ in headers:
        if name == b"authorization":
            return None
        if name == b"origin":
            origin = True
    params = Params(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    note = Note()
    try:
        response = answer_now(dispatcher, path[len(_API) :].decode("latin-1"), params, note)
    except StoreError:
        return None  # the application's way makes the error answer
    if response is None:
        return None
    if origin:
        response.header("access-control-expose-headers", CORS_EXPOSE)
    response.header("access-control-allow-origin", "*")
    body = b"" if method == _HEAD else response.body
    return response.status, response.raw_headers(), body, note
