"""What the browser proxy (:mod:`idnode.http.proxy`) and the GS1 Digital Link resolver
(:mod:`idnode.http.gs1`) share: public resolution through the dispatcher with HS_ALIAS
following, content negotiation, turning stored URLs into safe ``Location`` values, ``Expires``
from TTLs, and the JSON/HTML error answer.

Resolution (spec handle-protocol §5.6) always runs anonymously through
:meth:`Dispatcher.execute` with the PO flag, so the proxy sees exactly what an anonymous
native client sees: values with PUBLIC_READ, and attribute values the data permissions
(:mod:`idnode.industry.grants`) show to everyone.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes, urlsplit

from idnode.errors import HandleError, HandleNotFound, ValuesNotFound
from idnode.http.asgi import (
    STATUS_FOR_CODE,
    HTTPError,
    Request,
    Response,
    http_date,
    json_response,
)
from idnode.protocol.bodies import ResolutionRequest, ResolutionResponse
from idnode.protocol.codes import OpCode, OpFlag, ResponseCode
from idnode.protocol.message import Message
from idnode.protocol.values import HandleValue, TTLType
from idnode.server.dispatch import Dispatcher
from idnode.store import handle_key

__all__ = [
    "HTML_HEADERS",
    "MAX_ALIASES",
    "MAX_RECOGNIZED_TTL",
    "SAFE_SCHEMES",
    "Resolved",
    "accepts_json",
    "base_url",
    "error_answer",
    "error_html",
    "esc",
    "expires_at",
    "expires_header",
    "expiry",
    "first_url_value",
    "handle_from_raw_path",
    "handle_path",
    "html_answer",
    "html_page",
    "http_error",
    "is_safe_url",
    "negotiated_json",
    "not_found_html",
    "resolve_public",
    "to_uri",
]

#: Longest HS_ALIAS chain followed (the reference proxy's MAX_ALIASES).
MAX_ALIASES = 20
#: TTLs above two days are capped there (spec §4, Java MAX_RECOGNIZED_TTL).
MAX_RECOGNIZED_TTL = 172800

#: URL schemes the proxy redirects to and renders as links; anything else (``javascript:``,
#: ``data:``, relative references...) is shown as text only.
SAFE_SCHEMES = frozenset(
    {"http", "https", "ftp", "ftps", "sftp", "mailto", "tel", "urn", "hdl", "doi", "info", "news"}
)

#: Characters left as they are when a URL goes into a header: RFC 3986 reserved and unreserved
#: characters and ``%`` (existing escapes stay). Everything else is percent-encoded as UTF-8.
_URI_SAFE = "!#$%&'()*+,-./:;=?@[]~_"

#: Security headers of every HTML page: no script, no external resources, no framing.
HTML_HEADERS = (
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
)

_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;"
    "color:#222}h1{font-size:1.4em}table{border-collapse:collapse;width:100%}"
    "th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}"
    "th{background:#eee}td.data{white-space:pre-wrap;word-break:break-all}"
    "code{font-size:.9em}.note{color:#555}footer{margin-top:2em;color:#777;font-size:.85em}"
)


def esc(text: object) -> str:
    """``html.escape`` with quotes: safe in element content and in quoted attributes."""
    return html.escape(str(text), quote=True)


def html_page(title: str, body_html: str) -> str:
    """A complete, self-contained HTML page (``title`` is escaped, ``body_html`` is not)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>\n<body>\n{body_html}\n"
        "<footer>idnode identifier resolution node</footer>\n</body></html>\n"
    )


def html_answer(page: str, status: int = 200) -> Response:
    """An HTML response with the :data:`HTML_HEADERS`."""
    return Response(status, page.encode("utf-8"), list(HTML_HEADERS), "text/html; charset=UTF-8")


# -- request helpers -------------------------------------------------------------------------


def handle_from_raw_path(request: Request, skip: int = 1) -> str:
    """The request path after its first ``skip`` characters, percent-decoded exactly once
    (``+`` stays a plus). 400 if the escapes do not decode to UTF-8."""
    raw = request.scope.get("raw_path")
    if raw is None:  # the server gave no raw path: scope["path"] is already decoded
        return str(request.scope["path"])[skip:]
    text = raw.decode("latin-1").split("?", 1)[0][skip:]
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPError(ResponseCode.INVALID_HANDLE, "the path is not valid UTF-8") from exc


def _accept_entries(header: str) -> list[tuple[str, float]]:
    out = []
    for item in header.split(","):
        parts = [p.strip() for p in item.split(";")]
        if not parts[0]:
            continue
        q = 1.0
        for p in parts[1:]:
            if p.lower().startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        out.append((parts[0].lower(), q))
    return out


def negotiated_json(request: Request, json_types: Sequence[str] = ("application/json",)) -> bool:
    """Whether the ``Accept`` header asks for one of ``json_types`` at least as much as for
    HTML. Wildcards (``*/*``) count for HTML: browsers, curl and anything without an opinion
    get the browser answer."""
    return accepts_json(request.headers.get("accept", ""), json_types)


def accepts_json(accept: str, json_types: Sequence[str] = ("application/json",)) -> bool:
    """:func:`negotiated_json` of an ``Accept`` header's text."""
    entries = _accept_entries(accept)
    json_q = max((q for t, q in entries if t in json_types), default=0.0)
    html_q = max(
        (q for t, q in entries if t in ("text/html", "application/xhtml+xml")), default=0.0
    )
    return json_q > 0 and json_q >= html_q


def base_url(request: Request, configured: str | None = None) -> str:
    """The public base URL (no trailing slash): ``configured`` if given, else the request's
    scheme, its ``Host`` header (when it looks like a host) and the ASGI root path."""
    if configured:
        return configured.rstrip("/")
    scheme = request.scope.get("scheme", "http")
    host = request.headers.get("host", "")
    if not re.fullmatch(r"[A-Za-z0-9.\-]+(:\d+)?|\[[0-9A-Fa-f:.]+\](:\d+)?", host):
        server = request.scope.get("server") or ("localhost", None)
        host = server[0] if server[1] in (None, 80, 443) else f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}{request.scope.get('root_path', '')}"


def handle_path(handle: str) -> str:
    """``handle`` as a path segment of the proxy: escaped so that one decoding restores it."""
    return quote(handle, safe="/:@!$&'()*+,;=-._~")


# -- URLs ------------------------------------------------------------------------------------


def is_safe_url(url: str) -> bool:
    """Whether ``url`` is absolute with a scheme the proxy redirects to (:data:`SAFE_SCHEMES`)."""
    match = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*):", url.strip())
    return match is not None and match.group(1).lower() in SAFE_SCHEMES


def to_uri(url: str) -> str:
    """``url`` as ASCII fit for a ``Location``/``Link`` header: an internationalised host is
    IDNA-encoded, every other character outside RFC 3986 (non-ASCII, spaces, controls, quotes,
    angle brackets) is percent-encoded, so no stored value can inject a header."""
    url = url.strip()
    if url.isascii():  # no internationalised host: only escapes to make
        return quote(url, safe=_URI_SAFE)
    try:
        parts = urlsplit(url)
        host = parts.hostname  # lower-cased by urlsplit
        if host and not host.isascii() and parts.scheme.lower() in ("http", "https", "ftp"):
            netloc = parts.netloc
            start = netloc.lower().find(host)
            if start >= 0 and len(netloc.lower()) == len(netloc):
                ascii_host = host.encode("idna").decode("ascii")
                netloc = netloc[:start] + ascii_host + netloc[start + len(host) :]
                url = url.replace(parts.netloc, netloc, 1)
    except (ValueError, UnicodeError):
        pass
    return quote(url, safe=_URI_SAFE)


def first_url_value(values: Iterable[HandleValue]) -> HandleValue | None:
    """The value the proxy redirects to (spec §5.6): the first ``URL`` value whose data is a
    safe URL, else the first such ``URL.*`` sub-type value."""
    candidates = [v for v in values if v.type_matches("URL") or v.type_matches("URL.")]
    for exact in (True, False):
        for v in candidates:
            if v.type.upper() == "URL" or not exact:
                text = v.data.decode("utf-8", errors="replace")
                if is_safe_url(text):
                    return v
    return None


def expiry(values: Iterable[HandleValue]) -> tuple[float, float] | None:
    """When an answer built from ``values`` expires, as ``(at, within)``: at the time ``at``
    (the earliest absolute TTL) or ``within`` seconds of the answer (the shortest relative
    TTL), whichever comes first; every TTL capped at :data:`MAX_RECOGNIZED_TTL` (reference
    proxy, spec §4). None without values. :func:`expires_at` turns it into a time."""
    at, within, seen = math.inf, float(MAX_RECOGNIZED_TTL), False
    for v in values:
        seen = True
        if v.ttl_type == TTLType.ABSOLUTE:
            at = min(at, float(v.ttl))
        else:
            within = min(within, float(v.ttl))
    return (at, within) if seen else None


def expires_at(rule: tuple[float, float], now: float) -> float:
    """The expiry time of :func:`expiry`'s ``rule`` for an answer made at ``now``."""
    return min(rule[0], now + rule[1])


def expires_header(values: Iterable[HandleValue], now: float) -> str | None:
    """The ``Expires`` date of an answer built from ``values`` at ``now``: the earliest
    expiry among them (:func:`expiry`)."""
    rule = expiry(values)
    if rule is None:
        return None
    return http_date(expires_at(rule, now))


# -- resolution ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """The outcome of :func:`resolve_public`."""

    requested: str
    handle: str
    """The handle whose values these are: ``requested`` or the end of its alias chain."""
    values: tuple[HandleValue, ...]
    """Public values matching the filters; empty if the handle has none (it exists)."""
    aliases: tuple[HandleValue, ...] = ()
    """The HS_ALIAS values followed, in order (their TTLs bound the answer's lifetime)."""
    chain: tuple[str, ...] = ()
    """The handles visited, ``requested`` first and ``handle`` last."""


async def _resolve_once(
    dispatcher: Dispatcher,
    handle: str,
    indexes: tuple[int, ...],
    types: tuple[str, ...],
    authoritative: bool,
) -> tuple[HandleValue, ...]:
    flags = OpFlag.PO | OpFlag.REC | (OpFlag.AT if authoritative else 0)
    message = Message(
        op=OpCode.RESOLUTION, body=ResolutionRequest(handle, indexes, types), flags=flags
    )
    try:
        response = await dispatcher.execute(message, None)
    except ValuesNotFound:
        return ()
    body = response.body
    assert isinstance(body, ResolutionResponse)
    return body.values  # what an anonymous caller may see (PUBLIC_READ, or a public grant)


async def resolve_public(
    dispatcher: Dispatcher,
    handle: str,
    *,
    indexes: Sequence[int] = (),
    types: Sequence[str] = (),
    follow_aliases: bool = True,
    authoritative: bool = False,
    max_aliases: int = MAX_ALIASES,
) -> Resolved:
    """Resolve ``handle`` anonymously (PO flag) through ``dispatcher``, following HS_ALIAS
    values (at most ``max_aliases`` hops; a loop is an error) unless ``follow_aliases`` is
    false. ``indexes``/``types`` filter as in the native protocol; HS_ALIAS is added to a type
    filter so aliases are still seen. ``authoritative`` sets the AT flag (a single node has no
    cache to bypass, so it changes nothing today).

    Raises the dispatcher's :class:`HandleError` (HandleNotFound, ServerNotResponsible,
    InvalidHandle, ...) for the first handle that fails, and :class:`HTTPError` with
    RECURSION_COUNT_TOO_HIGH (HTTP 404, as the reference proxy) for a loop or a chain that is
    too long.
    """
    wanted_types = tuple(types)
    if follow_aliases and (indexes or types):
        wanted_types += ("HS_ALIAS",)
    chain = [handle]
    aliases: list[HandleValue] = []
    current = handle
    while True:
        try:
            values = await _resolve_once(
                dispatcher, current, tuple(indexes), wanted_types, authoritative
            )
        except HandleNotFound as exc:
            if not aliases:
                raise
            raise HTTPError(
                ResponseCode.HANDLE_NOT_FOUND,
                f"{current}, the alias target of {chain[-2]}, does not exist",
                handle=handle,
            ) from exc
        alias = next((v for v in values if v.type.upper() == "HS_ALIAS"), None)
        if not follow_aliases or alias is None:
            return Resolved(handle, current, values, tuple(aliases), tuple(chain))
        target = alias.data.decode("utf-8", errors="replace").strip()
        trail = " → ".join([*chain, target])
        if any(handle_key(target) == handle_key(h) for h in chain):
            raise HTTPError(
                ResponseCode.RECURSION_COUNT_TOO_HIGH,
                f"alias loop: {trail}",
                status=404,
                handle=handle,
            )
        if len(aliases) >= max_aliases:
            raise HTTPError(
                ResponseCode.RECURSION_COUNT_TOO_HIGH,
                f"alias chain longer than {max_aliases}: {trail}",
                status=404,
                handle=handle,
            )
        if not target:
            raise HTTPError(
                ResponseCode.INVALID_VALUE, f"empty HS_ALIAS in {current}", handle=handle
            )
        aliases.append(alias)
        chain.append(target)
        current = target


# -- errors ----------------------------------------------------------------------------------


def not_found_html(handle: str, message: str = "Not Found") -> str:
    """The 404 page; its text matches what pyhandle/b2handle look for (spec §5.6)."""
    return html_page(
        f"Error - {message}",
        f"<h1>Error - {esc(message)}</h1>\n<p>The handle you requested -- "
        f"<b><i>{esc(handle)}</i></b> -- cannot be found.</p>",
    )


def error_html(status: int, message: str, handle: str | None = None) -> str:
    detail = f"<p>Handle: <b>{esc(handle)}</b></p>" if handle else ""
    return html_page(
        f"Error {status}",
        f"<h1>Error {status}</h1>\n<p>{esc(message)}</p>{detail}",
    )


def http_error(exc: HandleError | HTTPError, handle: str | None) -> HTTPError:
    """``exc`` as an :class:`HTTPError` with an HTML rendering (404 page for not found)."""
    if isinstance(exc, HTTPError):
        err = exc
    else:
        code = getattr(exc, "code", type(exc).response_code)
        message = exc.message
        if isinstance(exc, HandleNotFound) and not message:
            message = "Handle Not Found"
        err = HTTPError(code, message, handle=handle, status=STATUS_FOR_CODE.get(code, 500))
    if err.html is None:
        if err.response_code == ResponseCode.HANDLE_NOT_FOUND:
            err.html = not_found_html(err.handle or handle or "", "Not Found")
        elif err.status == 404:
            err.html = not_found_html(err.handle or handle or "", err.message)
        else:
            err.html = error_html(err.status, err.message, err.handle)
    return err


def error_answer(err: HTTPError, *, as_json: bool, pretty: bool = False) -> Response:
    """The one error shape: ``{"responseCode","handle"?,"message"}`` or the HTML page."""
    if as_json or err.html is None:
        return json_response(err.to_json(), err.status, pretty=pretty)
    return html_answer(err.html, err.status)
