"""The browser proxy: ``GET /{handle}`` answered like ``hdl.handle.net``/``doi.org``
(spec handle-protocol §5.6), and the mounting helpers for the whole non-API surface.

Mounting (for the app builder)::

    from idnode.http.proxy import proxy_openapi_paths, proxy_routes

    app = build_app(..., extra_routes=proxy_routes(dispatcher))      # after the /api/ routes
    openapi["paths"].update(proxy_openapi_paths())

:func:`proxy_routes` returns ``[("/01", gs1), ("/00", gs1), ..., ("", proxy)]``: one route per
GS1 primary key that has a rule (:mod:`idnode.http.gs1`), then the catch-all proxy. Mount them
after ``/api/``: the catch-all answers every path.

Behaviour of the proxy (``BrowserProxy``):

* ``GET /`` → the query form. ``GET /?hdl=...`` (the form) or ``POST /`` with a form body →
  redirect to ``/<handle>``; ``hdl:``, ``doi:``, ``info:hdl/``, ``urn:hdl:`` prefixes and proxy
  URLs typed into the form are normalised away. An empty ``hdl`` → 400.
* ``GET /<handle>``: the handle is the raw path after ``/``, percent-decoded exactly once and
  otherwise verbatim (no prefix stripping; ``+`` is a plus). It is resolved anonymously with the
  PO flag through the dispatcher, so values without PUBLIC_READ never appear. HS_ALIAS values
  are followed (at most 20 hops, loops detected) unless ``?ignore_aliases``.
* Redirect: the first ``URL`` value (exact type first, then ``URL.*`` sub-types) whose data has
  a safe scheme (:data:`~idnode.http.proxy_common.SAFE_SCHEMES`) → **302** with
  ``Location: <url><urlappend>`` (percent-encoded to ASCII), ``Expires`` from the TTLs of that
  value and of the aliases followed (capped at two days), and a small HTML body linking to it.
  An alias is followed server-side: the browser goes straight to the final URL.
* ``?noredirect`` (any value) or ``?action=showvalues`` → 200 HTML table of the values. No URL
  value → the same table. ``?type=``/``?index=`` (repeatable) filter; badly formed indexes are
  ignored (as in the reference proxy). ``?auth`` asks for an authoritative answer: it sets the AT
  flag, which changes nothing on a single node (there is no cache to bypass).
* ``Accept: application/json`` (preferred over HTML) → the JSON record of the API
  (``{"responseCode":1,"handle":...,"values":[...]}``; 200 ``responseCode 200`` when no value
  matches); ``?pretty`` indents it. With aliases followed, ``handle`` names the final handle.
* Errors, as HTML or JSON by ``Accept``: unknown handle → 404 (the page says "The handle you
  requested -- h -- cannot be found"); prefix not homed here → 400 ``responseCode 301`` ("That
  prefix doesn't live here"); alias loop or chain too long → 404 ``responseCode 6``.
* ``HEAD`` is ``GET`` without a body; other methods → 405.

The common case, an anonymous ``GET``/``HEAD`` without a query string redirected by a plain
public record, is answered from the stored record's bytes by :mod:`idnode.http.fastproxy`
(the same answer, made without the dispatcher); everything else goes the way above.

Cached: a redirect, a values page or a JSON record of a resolution is kept by the HTTP
response cache (:mod:`idnode.http.respcache`) when every record it read (the handle and each
alias followed) was resolved from this node's store, anonymously and not as an instance of a
template; the key holds the path, the query and the request's headers (``Accept`` included),
and a write to any of those records makes the entry stale. ``Expires`` is made again for each
answer from the cache. Errors, the query form and answers to requests with ``Authorization``
or ``Cookie`` are never kept.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_to_bytes, urlencode, urlsplit

from idnode.errors import HandleError
from idnode.http import fastproxy
from idnode.http.asgi import Handler, HTTPError, Request, Response, json_response
from idnode.http.gs1 import DEFAULT_GS1_RULES, GS1Resolver, GS1Rule, gs1_openapi_paths
from idnode.http.proxy_common import (
    MAX_ALIASES,
    error_answer,
    expires_header,
    expiry,
    first_url_value,
    handle_from_raw_path,
    handle_path,
    html_answer,
    http_error,
    negotiated_json,
    resolve_public,
    to_uri,
)
from idnode.http.proxy_pages import query_form_page, redirect_page, values_page
from idnode.http.respcache import vouch
from idnode.jsonvalues import value_to_json
from idnode.protocol.codes import ResponseCode
from idnode.server.dispatch import Dispatcher

__all__ = [
    "BrowserProxy",
    "normalize_handle_input",
    "proxy_handler",
    "proxy_openapi_paths",
    "proxy_routes",
]

_U32_MAX = 0xFFFFFFFF


def normalize_handle_input(text: str) -> str:
    """A handle typed into the query form: trimmed, without ``hdl:``, ``doi:``, ``info:hdl/``,
    ``info:doi/``, ``urn:hdl:``/``urn:doi:`` (whose first ``:`` becomes ``/``), and a pasted
    proxy URL (``https://hdl.handle.net/20.1000/1``) reduced to its decoded path."""
    text = text.strip()
    if re.match(r"(?i)https?://", text):
        text = unquote(urlsplit(text).path.lstrip("/")).strip()
    low = text.lower()
    for prefix in ("info:hdl/", "info:doi/", "hdl:", "doi:"):
        if low.startswith(prefix):
            return text[len(prefix) :].strip()
    for prefix in ("urn:hdl:", "urn:doi:"):
        if low.startswith(prefix):
            rest = text[len(prefix) :]
            colon, slash = rest.find(":"), rest.find("/")
            if colon >= 0 and (slash < 0 or slash > colon):
                rest = rest[:colon] + "/" + rest[colon + 1 :]
            return rest.strip()
    return text


def _query(request: Request) -> list[tuple[str, str]]:
    """Query parameters split on ``&``/``;`` and decoded once, ``+`` kept as a plus (as the
    reference proxy reads them, so ``urlappend=a+b`` appends ``a+b``)."""
    out = []
    for piece in re.split(rb"[&;]", request.scope.get("query_string", b"")):
        if piece:
            key, _, value = piece.partition(b"=")
            out.append(
                (
                    unquote_to_bytes(key).decode("utf-8", "replace"),
                    unquote_to_bytes(value).decode("utf-8", "replace"),
                )
            )
    return out


def _indexes(values: list[str]) -> tuple[int, ...]:
    return tuple(int(v) for v in values if v.strip().isdigit() and int(v) <= _U32_MAX)


class BrowserProxy:
    """The ASGI handler of every non-API path (see the module docstring)."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        clock: Callable[[], float] = time.time,
        max_aliases: int = MAX_ALIASES,
        examples: Sequence[str] = (),
    ) -> None:
        self.dispatcher = dispatcher
        self.clock = clock
        self.max_aliases = max_aliases
        self.examples = tuple(examples)

    async def __call__(self, request: Request) -> Response:
        fast = await fastproxy.answer(self.dispatcher, request, self.clock)
        if fast is not None:
            return fast.header("vary", "Accept")
        as_json = negotiated_json(request)
        pretty = request.flag("pretty")
        handle: str | None = None
        try:
            if request.method == "OPTIONS":
                return Response(204, content_type=None).header("allow", "GET, HEAD, POST")
            handle = handle_from_raw_path(request)
            if handle == "":
                if request.method not in ("GET", "HEAD", "POST"):
                    raise self._not_allowed("GET, HEAD, POST")
                return await self._root(request)
            if request.method not in ("GET", "HEAD"):
                raise self._not_allowed("GET, HEAD")
            response = await self._resolve(request, handle, as_json=as_json, pretty=pretty)
        except (HandleError, HTTPError) as exc:
            err = http_error(exc, handle)
            response = error_answer(err, as_json=as_json, pretty=pretty)
            if err.status == 405:
                response.header("allow", "GET, HEAD" if handle else "GET, HEAD, POST")
        return response.header("vary", "Accept")

    @staticmethod
    def _not_allowed(allow: str) -> HTTPError:
        return HTTPError(
            ResponseCode.OPERATION_NOT_SUPPORTED,
            f"method not allowed here (allowed: {allow})",
            status=405,
        )

    async def _root(self, request: Request) -> Response:
        """The query form, or the redirect a submitted form asks for."""
        root = request.scope.get("root_path", "")
        if request.method == "POST":
            form = parse_qsl((await request.body()).decode("utf-8", "replace"), True)
            typed = next((v for k, v in form if k == "hdl"), None)
            extra = urlencode([(k, v) for k, v in form if k != "hdl"])
        else:
            typed = request.param("hdl")
            raw = request.scope.get("query_string", b"").decode("latin-1")
            extra = "&".join(p for p in re.split("[&;]", raw) if p and p.split("=")[0] != "hdl")
        if typed is None:
            return html_answer(query_form_page(root, self.examples))
        handle = normalize_handle_input(typed)
        if not handle:
            raise HTTPError(ResponseCode.INVALID_HANDLE, "Empty handle invalid")
        location = f"{root}/{handle_path(handle)}" + (f"?{extra}" if extra else "")
        status = 303 if request.method == "POST" else 302
        return html_answer(redirect_page(location), status).header("location", location)

    async def _resolve(
        self, request: Request, handle: str, *, as_json: bool, pretty: bool
    ) -> Response:
        params = _query(request)
        names = {k for k, _ in params}
        types = tuple(v for k, v in params if k == "type" and v)
        indexes = _indexes([v for k, v in params if k == "index"])
        resolved = await resolve_public(
            self.dispatcher,
            handle,
            indexes=indexes,
            types=types,
            follow_aliases="ignore_aliases" not in names,
            authoritative="auth" in names,
            max_aliases=self.max_aliases,
        )
        reads = len(resolved.chain)  # one resolution per handle of the chain
        cached = self.clock is time.time  # answers made with another clock are not kept
        if as_json:
            if cached:
                vouch(reads)
            if not resolved.values:
                body: dict[str, Any] = {"responseCode": 200, "handle": resolved.handle}
            else:
                values = [value_to_json(v) for v in resolved.values]
                body = {"responseCode": 1, "handle": resolved.handle, "values": values}
            return json_response(body, pretty=pretty)
        action = next((v.lower() for k, v in params if k == "action"), "redirect")
        show = "noredirect" in names or action in ("showvalues", "showurls")
        target = None if show else first_url_value(resolved.values)
        if target is None:
            root = request.scope.get("root_path", "")
            filtered = bool(types or indexes)
            if cached:
                vouch(reads)
            return html_answer(values_page(resolved, root, filtered=filtered))
        append = next((v for k, v in params if k == "urlappend"), "")
        url = target.data.decode("utf-8", "replace").strip() + append
        uri = to_uri(url)
        response = html_answer(redirect_page(url, uri), 302).header("location", uri)
        lifetime = [*resolved.aliases, target]
        expires = expires_header(lifetime, self.clock())
        if expires is not None:
            response.header("expires", expires)
        if cached:
            vouch(reads, expiry(lifetime))
        return response


def proxy_handler(dispatcher: Dispatcher, **options: Any) -> Handler:
    """A :class:`BrowserProxy` (``options``: ``clock``, ``max_aliases``, ``examples``)."""
    return BrowserProxy(dispatcher, **options)


def proxy_routes(
    dispatcher: Dispatcher,
    gs1_rules: Sequence[GS1Rule] = DEFAULT_GS1_RULES,
    *,
    base_url: str | None = None,
    clock: Callable[[], float] = time.time,
    examples: Sequence[str] = (),
) -> list[tuple[str, Handler]]:
    """The routes of the proxy and the GS1 resolver, to mount **after** ``/api/``:
    ``("/<ai>", gs1)`` for each primary key AI that ``gs1_rules`` map (``()`` mounts none),
    then the catch-all ``("", proxy)``.

    ``base_url`` is the public URL of the node (scheme, host, optional path) used for absolute
    links in GS1 answers; by default it is taken from the request's ``Host`` header.
    """
    routes: list[tuple[str, Handler]] = []
    if gs1_rules:
        resolver = GS1Resolver(dispatcher, gs1_rules, base_url=base_url)
        routes += [(f"/{ai}", resolver) for ai in resolver.primary_ais]
    routes.append(("", BrowserProxy(dispatcher, clock=clock, examples=examples)))
    return routes


_HTML = {"text/html": {"schema": {"type": "string"}}}
_ERRORS = {
    "400": {"description": "Invalid handle, or its prefix does not live here (responseCode 301)"},
    "404": {"description": "Handle not found (HTML page or JSON by Accept)"},
}


def _param(name: str, description: str, *, array: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if array:
        schema = {"type": "array", "items": {"type": "string"}}
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def proxy_openapi_paths(gs1_rules: Sequence[GS1Rule] = DEFAULT_GS1_RULES) -> dict[str, Any]:
    """OpenAPI 3 path items of :func:`proxy_routes` (same ``gs1_rules``), to merge into the
    ``paths`` of ``/api/openapi.json``."""
    handle_op = {
        "tags": ["proxy"],
        "summary": "Resolve a handle for a browser (spec §5.6)",
        "description": "The handle is the rest of the path (it contains '/'), percent-decoded "
        "once. Redirects to the first URL value; JSON record with Accept: application/json.",
        "parameters": [
            {
                "name": "handle",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": "prefix/suffix, sent with its '/' unescaped",
            },
            _param("noredirect", "Show the values instead of redirecting"),
            _param("type", "Only values of this type (repeatable)", array=True),
            _param("index", "Only values at this index (repeatable)", array=True),
            _param("urlappend", "Appended to the redirect target"),
            _param("ignore_aliases", "Do not follow HS_ALIAS"),
            _param("auth", "Authoritative resolution (no effect on a single node)"),
            _param("action", "redirect (default) or showvalues"),
            _param("pretty", "Indent the JSON answer"),
        ],
        "responses": {
            "302": {
                "description": "Redirect to the URL value; Expires from its TTL",
                "headers": {"Location": {"schema": {"type": "string"}}},
            },
            "200": {
                "description": "Values page (HTML), or the JSON record",
                "content": {**_HTML, "application/json": {"schema": {"type": "object"}}},
            },
            **_ERRORS,
        },
    }
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "tags": ["proxy"],
                "summary": "Query form; with hdl, redirect to /{hdl}",
                "parameters": [_param("hdl", "Handle; hdl:/doi: prefixes are removed")],
                "responses": {
                    "200": {"description": "The form", "content": _HTML},
                    "302": {"description": "Redirect to /{handle}"},
                    "400": {"description": "Empty handle"},
                },
            }
        },
        "/{handle}": {"get": handle_op, "head": {**handle_op, "summary": "As GET, no body"}},
    }
    paths.update(gs1_openapi_paths(gs1_rules))
    return paths
