"""The browser proxy's plain redirect answered from the stored record's bytes.

Most proxy requests are a browser following a link: an anonymous ``GET /<handle>`` of a
record whose first URL value is where it should go. For those the 302 is made straight from
the stored record (:mod:`idnode.store.records`), without the dispatcher, messages or value
objects: :func:`answer` reads the record as :mod:`idnode.http.fastjson` does
(:func:`~idnode.http.fastjson.read_public`: the values an anonymous resolution with the PO
flag shows), picks the value :func:`~idnode.http.proxy_common.first_url_value` would pick
from their types, decoding only the URL values' data, and makes the answer of
:class:`~idnode.http.proxy.BrowserProxy`: the redirect page, ``Location``, ``Expires`` from
the URL value's TTL. Status, headers and body are those of the ordinary path
(``tests/http/test_fastproxy.py`` compares them).

Taken by a GET or HEAD with no query string, without ``Authorization`` or ``Cookie``, whose
``Accept`` header does not ask for JSON, whose path decodes to a handle this node serves under
a homed prefix, when the record exists, holds no 1001 ``TEMPLATE`` value, shows something and
only PUBLIC_READ values, none of them an ``HS_ALIAS`` (an alias is followed), and one of them
a URL value with a safe scheme. Anything else returns None and the request goes the ordinary
way, which reads the record again.

Like the ordinary path, an answer counts one resolution in the statistics, times the store
read in the metrics and, inside the HTTP response cache (:mod:`idnode.http.respcache`),
notes the handle's change counters before the read and vouches for one read, with the
``Expires`` rule to make again for each hit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from idnode.http.asgi import HTTPError, Request, Response, http_date
from idnode.http.fastjson import read_public, read_public_now, settle
from idnode.http.proxy_common import (
    MAX_RECOGNIZED_TTL,
    accepts_json,
    expires_at,
    handle_from_raw_path,
    html_answer,
    is_safe_url,
    to_uri,
)
from idnode.http.proxy_pages import redirect_page
from idnode.http.respcache import vouch
from idnode.protocol.values import TTLType
from idnode.server.dispatch import Dispatcher
from idnode.server.respcache import Note
from idnode.store import records as rec

__all__ = ["answer", "answer_now", "redirect_target"]

_ABSOLUTE = TTLType.ABSOLUTE
_MAX_TTL = float(MAX_RECOGNIZED_TTL)
_LIMIT = 256  # entries of each memory below; emptied when full
#: Whether an ``Accept`` header asks for JSON (:func:`negotiated_json`), by its text.
_asks_json: dict[str, bool] = {}


def _url_of(record: bytes, value: rec.Scanned) -> tuple[str, int, int]:
    """The data of ``value`` as the proxy reads a URL, its TTL type and its TTL."""
    _ts, ttl_type, ttl, begin, end = rec.value_parts(record, value[3])
    return record[begin:end].decode("utf-8", "replace"), ttl_type, ttl


def redirect_target(record: bytes, selected: list[rec.Scanned]) -> tuple[str, int, int] | None:
    """The URL the proxy redirects to among the ``selected`` values of ``record`` (as
    :func:`~idnode.http.proxy_common.first_url_value` picks it: the first ``URL`` value with
    a safe URL, else the first such ``URL.*`` value), stripped, with that value's TTL type
    and TTL; None when there is none or a value is an ``HS_ALIAS`` (followed by the
    proxy)."""
    exact: tuple[str, int, int] | None = None
    sub: tuple[str, int, int] | None = None
    for value in selected:
        vtype = value[1].upper()
        if vtype == "HS_ALIAS":
            return None
        if vtype == "URL":
            if exact is None:
                found = _url_of(record, value)
                if is_safe_url(found[0]):
                    exact = found
        elif vtype.startswith("URL.") and sub is None and exact is None:
            found = _url_of(record, value)
            if is_safe_url(found[0]):
                sub = found
    target = exact if exact is not None else sub
    if target is None:
        return None
    return target[0].strip(), target[1], target[2]


def _expiry(ttl_type: int, ttl: int) -> tuple[float, float]:
    """:func:`~idnode.http.proxy_common.expiry` of one value."""
    if ttl_type == _ABSOLUTE:
        return float(ttl), _MAX_TTL
    return math.inf, min(_MAX_TTL, float(ttl))


def _wants_json(accept: str) -> bool:
    wanted = _asks_json.get(accept)
    if wanted is None:
        if len(_asks_json) >= _LIMIT:
            _asks_json.clear()
        wanted = _asks_json[accept] = accepts_json(accept)
    return wanted


def _redirect(target: tuple[str, int, int], now: float) -> tuple[Response, tuple[float, float]]:
    """The proxy's redirect to ``target`` (:func:`redirect_target`) answered at ``now``, and
    its ``Expires`` rule (:func:`~idnode.http.proxy_common.expiry`)."""
    url, ttl_type, ttl = target
    uri = to_uri(url)
    rule = _expiry(ttl_type, ttl)
    response = html_answer(redirect_page(url, uri), 302).header("location", uri)
    response.header("expires", http_date(expires_at(rule, now)))
    return response, rule


async def answer(
    dispatcher: Dispatcher, request: Request, clock: Callable[[], float] = time.time
) -> Response | None:
    """The proxy's redirect for ``request``, made from the stored record (without the
    ``Vary`` header the proxy adds to every answer); None when it is not one this module
    makes (see the module docstring). ``clock``: the proxy's; an answer made with another
    clock than :func:`time.time` is not vouched for, as on the ordinary path."""
    if request.method not in ("GET", "HEAD") or request.scope.get("query_string"):
        return None
    headers = request.headers
    if "authorization" in headers or "cookie" in headers or _wants_json(headers.get("accept", "")):
        return None
    try:
        handle = handle_from_raw_path(request)
    except HTTPError:
        return None  # the ordinary path makes the error
    if not handle:
        return None  # the query form
    found = await read_public(dispatcher, handle, (), (), public_only=True)
    if found is None:
        return None
    target = redirect_target(*found)
    if target is None:
        settle(dispatcher, handle, answered=False)
        return None
    response, rule = _redirect(target, clock())
    settle(dispatcher, handle, answered=True)
    if clock is time.time:
        vouch(1, rule)
    return response


def answer_now(
    dispatcher: Dispatcher, raw: str, accept: str, note: Note
) -> tuple[Response, tuple[float, float]] | None:
    """:func:`answer` to an anonymous ``GET`` or ``HEAD`` with no query string, of raw path
    ``/`` + ``raw`` (latin-1 text) with ``accept`` (the ``Accept`` header, empty if none),
    made without waiting for the HTTP server's protocol (:mod:`idnode.http.fastmiss`) with the
    clock :func:`time.time`: the read noted in ``note`` (marked cacheable when answered), the
    answer's ``Expires`` rule given with it. None when it cannot be made at once (as
    :func:`~idnode.http.fastjson.answer_now`) or not by this module."""
    if _wants_json(accept):
        return None
    try:
        handle = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return None  # the ordinary path makes the error
    if not handle:
        return None
    found = read_public_now(dispatcher, handle, (), (), public_only=True, note=note)
    target = None if found is None else redirect_target(*found)
    if target is None:
        return None
    settle(dispatcher, handle, answered=True, note=note)
    return _redirect(target, time.time())
