"""The browser proxy's plain redirect answered from the stored bytes (idnode.http.fastproxy).

Equality: for generated records (URL values at various indexes, several of them, exact and
``URL.*`` types in any case, safe and unsafe schemes, padded, non-ASCII and quoting URLs,
binary data, values without PUBLIC_READ, HS_ALIAS to existing and absent handles, 10320/LOC,
template links, other types, both TTL types and out-of-range TTL types) and generated
requests (GET and HEAD; the proxy's query parameters; Accept headers asking for HTML, JSON or
nothing; Authorization and Cookie; the path as stored, lower case or fully percent-encoded),
the proxy answers with the same status, headers and body whether the fast path is on or off
(one fixed clock: ``Expires`` included), and so does the whole application with its HTTP
response cache (``Expires`` then within a second). The fast path answers exactly the requests
whose answer is a redirect made from one plain public record, and declines every other.
Its answers go into the HTTP response cache like the ordinary ones. Through the real HTTP
listener: a write is seen at once, and ``Authorization`` never takes the fast path (the
store-read metrics tell which path answered).
"""

from __future__ import annotations

import email.utils
import itertools
import math
import time
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from idnode.http import fastproxy
from idnode.http.asgi import Request, Response, http_date
from idnode.http.proxy import BrowserProxy
from idnode.http.proxy_common import expiry, negotiated_json
from idnode.industry.layout import TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE
from idnode.protocol.codes import Permission
from idnode.protocol.values import HandleValue
from tests.http.conftest import PREFIX, PREFIX_HANDLE, asgi_scope, basic, live_client
from tests.http.test_fastjson import _declined, _receive, _run, _store_reads, _unique
from tests.server.nodeutil import RunningNode, text_value

_counter = itertools.count()
#: A handle every generated alias may point to (created once per module).
TARGET = f"{PREFIX}/FP-TARGET"
CLOCK = 1_800_000_000.25

# -- generated records -------------------------------------------------------------------------

_URLS = [
    "https://pv.example.com/module/123",
    "http://a.example/x?y=1&z=<q>#f",
    "  https://pad.example/path  ",
    "HTTPS://UP.example/",
    "https://ünï.example/ä b?q=ü",
    'https://x.example/"quote"\'<tag>&amp;',
    "http://[::1/broken",
    "mailto:quality@pv.example.com",
    "hdl:88.118.8/X",
    "javascript:alert(1)",
    "data:text/html,<b>x</b>",
    "relative/path",
    "",
    "ftp://files.example/a%20b",
    "https://tab.example/\tx\ny",
]
_LOC = (
    '<locations><location href="https://loc.example/a" weight="1" />'
    '<location href="https://loc.example/b" /></locations>'
)
TYPES = ["URL", "URL", "url", "URL.ALT", "Url.x", "URL.", "DESC", "EMAIL", "HS_ALIAS", "10320/LOC"]
PUBLIC = 0x0E
PERMISSIONS = [PUBLIC, PUBLIC, PUBLIC, 0x0C, 0x02, 0x00, 0x0F]


@st.composite
def data_for(draw: st.DrawFn, vtype: str) -> bytes:
    if vtype == "HS_ALIAS":
        return draw(st.sampled_from([TARGET, f"{PREFIX}/FP-ABSENT", " " + TARGET])).encode()
    if vtype == "10320/LOC":
        return _LOC.encode()
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.binary(max_size=12))
    if kind == 1:
        return draw(st.text(max_size=12)).encode("utf-8", "surrogatepass")
    return draw(st.sampled_from(_URLS)).encode("utf-8")


@st.composite
def records(draw: st.DrawFn) -> list[HandleValue]:
    indexes = draw(st.lists(st.sampled_from([1, 2, 3, 4, 7, 100, 2001]), min_size=1, unique=True))
    out = []
    for index in indexes:
        vtype = draw(st.sampled_from(TYPES))
        out.append(
            HandleValue(
                index,
                vtype,
                draw(data_for(vtype)),
                ttl=draw(
                    st.sampled_from([86400, 0, 300, 0xFFFFFFFF, 1_700_000_000, 1_800_000_100])
                ),
                ttl_type=draw(st.sampled_from([0, 0, 1, 7])),
                timestamp=draw(st.sampled_from([0, 1_700_000_000])),
                permissions=draw(st.sampled_from(PERMISSIONS)),
            )
        )
    if draw(st.integers(0, 6)) == 0:
        out.append(HandleValue(TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE, b"88.118.8/NO-SUCH-T"))
    return out


# -- generated requests ------------------------------------------------------------------------

_QUERIES = [
    *[b""] * 12,
    b"noredirect",
    b"urlappend=/more",
    b"action=showvalues",
    b"action=redirect",
    b"auth",
    b"ignore_aliases",
    b"index=1",
    b"type=URL",
    b"pretty",
    b"x=1",
]
_ACCEPTS = [
    *[None] * 4,
    *["text/html"] * 2,
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "*/*",
    "application/json",
    "application/json;q=0.5, text/html",
    "application/json, text/html;q=0.9",
    "text/html;q=0.1, application/json;q=0.1",
]
_PUBLIC_READ = int(Permission.PUBLIC_READ)


def _path(handle: str, spelling: str) -> bytes:
    name = handle.lower() if spelling == "lower" else handle
    safe = "" if spelling == "encoded" else "/"  # encoded: %2F for the slash too
    return ("/" + quote(name, safe=safe)).encode("ascii")


def _proxy_answer(node: RunningNode, scope: dict[str, Any], *, fast: bool) -> Response:
    """The proxy's own answer with a fixed clock (so ``Expires`` is comparable)."""

    async def run() -> Response:
        proxy = BrowserProxy(node.node.dispatcher, clock=lambda: CLOCK)
        return await proxy(Request(scope, _receive))

    if fast:
        return node.call(run())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fastproxy, "answer", _declined)
        return node.call(run())


def _fast(node: RunningNode, scope: dict[str, Any]) -> Response | None:
    """What the fast path itself answers (None: declined)."""

    async def run() -> Response | None:
        return await fastproxy.answer(node.node.dispatcher, Request(scope, _receive))

    return node.call(run())


def _app_ordinary(node: RunningNode, scope: dict[str, Any]) -> Any:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fastproxy, "answer", _declined)
        return _run(node, _unique(scope))


def _same_but_expires(one: Any, other: Any) -> None:
    """Two whole answers equal but for ``Expires``, which may differ by the second it was
    made in."""
    assert one[0] == other[0] and one[2] == other[2]
    strip = [[(k, v) for k, v in answer[1] if k != b"expires"] for answer in (one, other)]
    assert strip[0] == strip[1]
    dates = [[v for k, v in answer[1] if k == b"expires"] for answer in (one, other)]
    assert len(dates[0]) == len(dates[1]) <= 1
    if dates[0]:
        times = [email.utils.parsedate_to_datetime(d[0].decode()).timestamp() for d in dates]
        assert abs(times[0] - times[1]) <= 2


def _eligible(record: list[HandleValue], scope: dict[str, Any], status: int) -> bool:
    """Whether the fast path must answer: a plain anonymous request for HTML (as the proxy
    negotiates it), redirected (302) by a record without template link whose public values
    include no HS_ALIAS."""
    request = Request(scope, _receive)
    if request.query or "authorization" in request.headers or "cookie" in request.headers:
        return False
    if status != 302 or negotiated_json(request):
        return False
    if any(v.index == TEMPLATE_LINK_INDEX and v.type == TEMPLATE_LINK_TYPE for v in record):
        return False
    shown = [v for v in record if v.permissions & _PUBLIC_READ]
    return not any(v.type.upper() == "HS_ALIAS" for v in shown)


@pytest.fixture(scope="module", autouse=True)
def alias_target(node: RunningNode) -> None:
    node.put_handle(TARGET, [text_value(1, "URL", "https://target.example/")])


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    records(),
    st.lists(
        st.tuples(
            st.sampled_from(_QUERIES),
            st.sampled_from(["GET", "GET", "HEAD"]),
            st.sampled_from(_ACCEPTS),
            st.sampled_from(["", "", "", "", "", "authorization", "cookie"]),
            st.sampled_from(["as stored", "lower", "encoded"]),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_fast_answer_equals_ordinary(
    node: RunningNode,
    record: list[HandleValue],
    requests: list[tuple[bytes, str, str | None, str, str]],
) -> None:
    handle = f"{PREFIX}/FP-ü-{next(_counter)}"
    node.put_handle(handle, record)
    for query, method, accept, header, spelling in requests:
        headers: list[tuple[bytes, bytes]] = [(b"host", b"idnode.test")]
        if accept is not None:
            headers.append((b"accept", accept.encode()))
        if header == "authorization":
            value = basic(f"300:{PREFIX_HANDLE}", node.admin_secret)["Authorization"]
            headers.append((b"authorization", value.encode()))
        elif header == "cookie":
            headers.append((b"cookie", b"session=x"))
        scope = asgi_scope(method, _path(handle, spelling), query, headers)
        ordinary = _proxy_answer(node, scope, fast=False)
        got = _proxy_answer(node, scope, fast=True)
        assert (got.status, got.headers, got.body, got.content_type) == (
            ordinary.status,
            ordinary.headers,
            ordinary.body,
            ordinary.content_type,
        )
        _same_but_expires(_run(node, _unique(scope)), _app_ordinary(node, scope))
        fast = _fast(node, scope)
        event("fast" if fast is not None else "declined")
        if _eligible(record, scope, ordinary.status):
            assert fast is not None, (query, method, accept)
            assert fast.status == 302
        else:
            assert fast is None


@given(
    st.sampled_from([0, 1, 2, 7, 255]),
    st.sampled_from([0, 1, 300, 172_800, 172_801, 1_800_000_000, 0xFFFFFFFF])
    | st.integers(0, 0xFFFFFFFF),
)
def test_expiry_as_the_proxy(ttl_type: int, ttl: int) -> None:
    value = HandleValue(1, "URL", b"https://x.example", ttl=ttl, ttl_type=ttl_type)
    assert fastproxy._expiry(ttl_type, ttl) == expiry([value])


@given(st.floats(0, 2**32 + 172_800, allow_nan=False) | st.integers(0, 2**32).map(float))
def test_http_dates_as_formatdate(moment: float) -> None:
    for at in (moment, math.floor(moment) + 0.9999996, math.floor(moment) + 0.9999994):
        assert http_date(at) == email.utils.formatdate(at, usegmt=True)


# -- the response cache ----------------------------------------------------------------------


def test_fast_answers_are_cached_and_invalidated(node: RunningNode) -> None:
    handle = f"{PREFIX}/FP-CACHED"
    node.put_handle(handle, [text_value(1, "URL", "https://one.example")])
    scope = asgi_scope("GET", f"/{handle}".encode(), b"", [(b"x-c", b"1")])
    assert _fast(node, scope) is not None
    respcache = node.node.dispatcher.respcache
    assert respcache is not None
    first = _run(node, scope)
    assert first[0] == 302
    hits = respcache.hits
    _same_but_expires(_run(node, scope), first)
    assert respcache.hits == hits + 1  # kept, as the ordinary path's answers are
    node.put_handle(handle, [text_value(1, "URL", "https://two.example")])
    third = _run(node, scope)
    assert (b"location", b"https://two.example") in third[1]
    _same_but_expires(third, _app_ordinary(node, scope))


def test_declines_what_it_does_not_make(node: RunningNode) -> None:
    handle = f"{PREFIX}/FP-DECLINED"
    node.put_handle(handle, [text_value(1, "URL", "https://x.example")])
    alias = f"{PREFIX}/FP-ALIAS"
    node.put_handle(alias, [text_value(1, "HS_ALIAS", handle)])
    loc = f"{PREFIX}/FP-LOC"
    node.put_handle(loc, [text_value(1, "10320/LOC", _LOC)])
    unsafe = f"{PREFIX}/FP-UNSAFE"
    node.put_handle(unsafe, [text_value(1, "URL", "javascript:alert(1)")])
    private = f"{PREFIX}/FP-PRIVATE"
    node.put_handle(private, [text_value(1, "URL", "https://x.example", permissions=0x0C)])
    instance = f"{PREFIX}/FP-INSTANCE"
    node.put_handle(
        instance,
        [
            text_value(1, "URL", "https://x.example"),
            HandleValue(TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE, b"88.118.8/NO-SUCH-T"),
        ],
    )
    path = f"/{handle}".encode()
    cases = [
        asgi_scope("POST", path, b"", []),
        asgi_scope("OPTIONS", path, b"", []),
        asgi_scope("GET", path, b"", [(b"authorization", b'Handle clientCert="true"')]),
        asgi_scope("GET", path, b"", [(b"cookie", b"a=b")]),
        asgi_scope("GET", path, b"", [(b"accept", b"application/json")]),
        asgi_scope("GET", path, b"noredirect", []),
        asgi_scope("GET", path, b"urlappend=x", []),
        asgi_scope("GET", b"/", b"", []),
        asgi_scope("GET", f"/{PREFIX}/FP-ABSENT".encode(), b"", []),
        asgi_scope("GET", b"/99.999/X", b"", []),
        asgi_scope("GET", f"/0.NA/{PREFIX}".encode(), b"", []),
        asgi_scope("GET", b"/%FF", b"", []),
        asgi_scope("GET", f"/{alias}".encode(), b"", []),
        asgi_scope("GET", f"/{loc}".encode(), b"", []),
        asgi_scope("GET", f"/{unsafe}".encode(), b"", []),
        asgi_scope("GET", f"/{private}".encode(), b"", []),
        asgi_scope("GET", f"/{instance}".encode(), b"", []),
    ]
    for scope in cases:
        assert _fast(node, scope) is None, scope["raw_path"]
    for method in ("GET", "HEAD"):
        fast = _fast(node, asgi_scope(method, path, b"", [(b"accept", b"text/html")]))
        assert fast is not None and fast.status == 302


# -- through the real HTTP listener ------------------------------------------------------------


def test_live_write_seen_at_once(node: RunningNode, admin: dict[str, str]) -> None:
    handle = f"{PREFIX}/FP-LIVE-{time.time_ns()}"
    with live_client(node) as client:
        for n in range(4):
            body = {"values": [{"index": 1, "type": "URL", "data": f"https://v{n}.example"}]}
            put = client.put(f"/api/handles/{handle}", json=body, headers=admin)
            assert put.status_code in (200, 201), put.text
            before = _store_reads(node, admin).get("get_record", 0)
            for _ in range(2):  # the second from the response cache
                reply = client.get(f"/{handle}")
                assert reply.status_code == 302
                assert reply.headers["location"] == f"https://v{n}.example"
                assert "expires" in reply.headers
            assert _store_reads(node, admin).get("get_record", 0) == before + 1  # the fast path


def test_live_authorization_never_fast(node: RunningNode, admin: dict[str, str]) -> None:
    handle = f"{PREFIX}/FP-AUTH-{time.time_ns()}"
    node.put_handle(handle, [text_value(1, "URL", "https://auth.example")])
    with live_client(node) as client:
        anonymous = client.get(f"/{handle}")
        assert anonymous.status_code == 302
        before = _store_reads(node, admin)
        for _ in range(3):
            reply = client.get(f"/{handle}", headers=admin)
            assert reply.status_code == 302
            assert reply.headers["location"] == anonymous.headers["location"]
            assert reply.content == anonymous.content
        after = _store_reads(node, admin)
    assert after.get("get_record", 0) == before.get("get_record", 0)
    assert after.get("get_handle", 0) >= before.get("get_handle", 0) + 3
