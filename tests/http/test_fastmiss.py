"""Misses of the JSON API's and the browser proxy's plain resolutions answered by the HTTP
server's protocol (idnode.http.fastmiss), on a real node over real sockets.

For generated records and requests (the strategies of ``test_fastjson`` and
``test_fastproxy``: GET and HEAD, the API's and the proxy's parameters valid or not,
``Origin`` and ``Accept`` headers, handles as stored, in lower case or wholly
percent-encoded), the answer the protocol makes to a request that misses the cache is the
application's answer to the same request, byte for byte but for ``date`` (and a redirect's
``Expires``, made within the same second or the next); the protocol makes exactly the
answers that are a plain public record or a plain redirect (so the tests fail if it stops
making them) and leaves every other to the application. What it makes is kept in the cache
and dropped by a write; pipelined requests keep their order whoever answers them.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import socket
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from idnode.http.respcache import CacheSlot, HTTPCache
from idnode.protocol.values import HandleValue
from idnode.server import fastpath
from tests.http import test_fastproxy as proxy_cases
from tests.http.conftest import PREFIX, asgi_scope
from tests.http.test_fastjson import _plain, queries, records
from tests.http.test_fastproxy import _eligible, _same_but_expires, alias_target
from tests.http.test_fastserve import _read_answers, _without
from tests.server.nodeutil import RunningNode, text_value

__all__ = ["alias_target"]  # the proxy records' alias target, made for this module too

TIMEOUT = 10.0
_counter = itertools.count()


@pytest.fixture(scope="module", autouse=True)
def _prefixes_remembered() -> Iterator[None]:
    """A prefix found served stays known for the module (it is half a second otherwise, and
    a request after that goes the application's way while the protocol learns it again):
    so that which requests the protocol answers does not depend on the machine's speed. Homes
    and unhomes are still seen at once through the store's change counter."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fastpath, "HOMED_TTL", 3600.0)
        yield


def _slot(node: RunningNode) -> CacheSlot:
    http = node.node._http
    assert http is not None
    return http.cache_slot


def _cache(node: RunningNode) -> HTTPCache:
    """The application's cache, which the server learns from the first request it passes
    to the application."""
    if _slot(node).cache is None:
        _exchange(node, _request("GET", f"/api/handles/{PREFIX}/FM-FIRST", []))
    cache = _slot(node).cache
    assert cache is not None
    return cache


def _request(method: str, target: str, headers: list[str]) -> bytes:
    """One request with a header of its own (never answered from the cache)."""
    lines = [f"{method} {target} HTTP/1.1", "Host: idnode.test", *headers]
    lines.append(f"X-Test: {next(_counter)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _exchange(node: RunningNode, data: bytes, count: int = 1, *, head: bool = False) -> list[bytes]:
    port = node.node.http_port
    assert port is not None
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        return _read_answers(sock, count, head=head)


def _by_protocol(node: RunningNode, data: bytes, *, head: bool = False) -> tuple[bytes, bool]:
    """The answer to ``data``, and whether the protocol made it."""
    slot = _slot(node)
    before = slot.answered
    answer = _exchange(node, data, head=head)[0]
    return answer, slot.answered == before + 1


def _by_application(node: RunningNode, data: bytes, *, head: bool = False) -> bytes:
    """The answer to ``data`` with the protocol making none."""
    cache = _cache(node)
    make_now, cache.make_now = cache.make_now, None
    try:
        return _exchange(node, data, head=head)[0]
    finally:
        cache.make_now = make_now


def _parts(answer: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers (but ``date``) and body of a whole answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.lower() != b"date":
            headers.append((name.lower(), value.strip()))
    return int(lines[0].split(b" ", 2)[1]), headers, body


def _learn(node: RunningNode, handle: str) -> None:
    """Let the node find the handle's prefix served (what any request to it does)."""
    node.call(fastpath.resolver_for(node.node.dispatcher).served(handle))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    records(),
    st.lists(
        st.tuples(
            queries,
            st.sampled_from(["GET", "GET", "HEAD"]),
            st.sampled_from(["", "origin", "accept"]),
            st.sampled_from(["as stored", "lower", "encoded"]),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_made_answer_equals_the_application_s(
    node: RunningNode,
    record: list[HandleValue],
    requests: list[tuple[list[tuple[str, str]], str, str, str]],
) -> None:
    handle = f"{PREFIX}/FM-ü-{next(_counter)}"
    node.put_handle(handle, record)
    _learn(node, handle)
    for query, method, header, spelling in requests:
        name = handle.lower() if spelling == "lower" else handle
        safe = "/" if spelling != "encoded" else ""
        target = "/api/handles/" + quote(name, safe=safe)
        if query:
            target += "?" + urlencode(query)
        headers = {
            "": [],
            "origin": ["Origin: https://app.example"],
            "accept": ["Accept: application/json"],
        }[header]
        head = method == "HEAD"
        application = _by_application(node, _request(method, target, headers), head=head)
        made, by_protocol = _by_protocol(node, _request(method, target, headers), head=head)
        assert _without(made, "date") == _without(application, "date")
        if head:
            application = _by_application(node, _request("GET", target, headers))
        plain = _plain(_parts(application), record, authorized=False)
        event("made" if by_protocol else "application")
        assert by_protocol == plain, (target, method)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    proxy_cases.records(),
    st.lists(
        st.tuples(
            st.sampled_from(proxy_cases._QUERIES),
            st.sampled_from(["GET", "GET", "HEAD"]),
            st.sampled_from(proxy_cases._ACCEPTS),
            st.sampled_from(["as stored", "lower", "encoded"]),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_made_redirect_equals_the_application_s(
    node: RunningNode,
    record: list[HandleValue],
    requests: list[tuple[bytes, str, str | None, str]],
) -> None:
    handle = f"{PREFIX}/FM-P-ü-{next(_counter)}"
    node.put_handle(handle, record)
    _learn(node, handle)
    for query, method, accept, spelling in requests:
        path = proxy_cases._path(handle, spelling).decode()
        target = path + (f"?{query.decode()}" if query else "")
        headers = [] if accept is None else [f"Accept: {accept}"]
        head = method == "HEAD"
        application = _by_application(node, _request(method, target, headers), head=head)
        made, by_protocol = _by_protocol(node, _request(method, target, headers), head=head)
        _same_but_expires(_parts(made), _parts(application))
        if head:
            application = _by_application(node, _request("GET", target, headers))
        scope = asgi_scope(
            method,
            path.encode(),
            query,
            [] if accept is None else [(b"accept", accept.encode())],
        )
        event("made" if by_protocol else "application")
        assert by_protocol == _eligible(record, scope, _parts(application)[0]), (target, accept)


@pytest.mark.parametrize("target", ["/api/handles/{}", "/{}"], ids=["api", "proxy"])
def test_made_answers_are_kept_and_dropped_by_a_write(node: RunningNode, target: str) -> None:
    handle = f"{PREFIX}/FM-KEPT-{next(_counter)}"
    node.put_handle(handle, [text_value(1, "URL", "https://one.example")])
    _learn(node, handle)
    data = f"GET {target.format(handle)} HTTP/1.1\r\nHost: idnode.test\r\n\r\n".encode()
    respcache = node.node.dispatcher.respcache
    assert respcache is not None
    misses, hits = respcache.misses, respcache.hits
    first, made = _by_protocol(node, data)
    assert made and b"one.example" in first
    assert respcache.misses == misses + 1
    second, by_protocol = _by_protocol(node, data)
    assert by_protocol and respcache.hits == hits + 1
    _same_but_expires(_parts(second), _parts(first))
    node.put_handle(handle, [text_value(1, "URL", "https://two.example")])
    third, made = _by_protocol(node, data)
    assert made and b"two.example" in third
    assert respcache.misses == misses + 2


def test_kept_entries_leave_the_collector_at_the_first_young_collection(
    node: RunningNode,
) -> None:
    """Entries of the HTTP cache (made here, by the application, with an ``Expires`` rule or
    without) hold no container, so the collector stops tracking them the first time it
    looks at them: full collections do not walk the cache."""
    handle = f"{PREFIX}/FM-GC"
    node.put_handle(handle, [text_value(1, "URL", "https://gc.example")])
    _learn(node, handle)
    for target in (f"/api/handles/{handle}", f"/{handle}", f"/{handle}?noredirect"):
        _exchange(node, _request("GET", target, []))
    node.call(asyncio.sleep(0))  # the application's entry is kept after its answer is sent
    entries = list(_cache(node)._entries.values())
    assert len(entries) >= 3
    gc.collect(0)
    assert not any(gc.is_tracked(entry) for entry in entries)


def test_pipelined_requests_keep_their_order(node: RunningNode) -> None:
    handles = [f"{PREFIX}/FM-PIPE-{n}" for n in range(3)]
    for n, handle in enumerate(handles):
        node.put_handle(handle, [text_value(1, "URL", f"https://pipe{n}.example")])
    _learn(node, handles[0])
    requests = [
        _request("GET", f"/api/handles/{handles[0]}", []),  # made by the protocol
        _request("GET", f"/api/handles/{PREFIX}/FM-ABSENT", []),  # the application's 404
        _request("GET", f"/api/handles/{handles[1]}", []),  # waits for the 404: the application
        _request("GET", f"/api/handles/{handles[2]}", []),
    ]
    answers = _exchange(node, b"".join(requests), len(requests))
    assert [a.split(b" ", 2)[1] for a in answers] == [b"200", b"404", b"200", b"200"]
    assert b"pipe0" in answers[0] and b"pipe1" in answers[2] and b"pipe2" in answers[3]


@pytest.mark.parametrize(
    "target, headers",
    [
        ("/api/handles/88.118.8/FM-RAW-\u00fc", []),  # not ASCII: left to the parser and the router
        ("/api/handles/88.118.8/FM-RAW-%C3%BC?index=x", []),  # an error to make
        ("/api/handles/88.118.8/FM-ABSENT", []),
        ("/api/handles/99.999/FM-RAW", []),  # a prefix not served here
        ("/api/handles/88.118.8/FM-RAW-%C3%BC", ["Cookie: a=b"]),  # no cache key
        ("/api%2Fhandles/88.118.8/FM-RAW-%C3%BC", []),  # the proxy's, asking for a handle api/...
        ("/88.118.8/FM-RAW-%C3%BC?noredirect", []),  # the proxy's page
        ("/88.118.8/FM-RAW-%C3%BC", ["Accept: application/json"]),  # the proxy's JSON
        ("/88.118.8/FM-RAW-%FF", []),  # not UTF-8
        ("/01/09506000134352", []),  # a GS1 Digital Link
        ("/", []),  # the console's home page
        ("/console/", []),
        ("/metrics", []),
    ],
    ids=[
        "raw-utf8",
        "bad-index",
        "absent",
        "elsewhere",
        "cookie",
        "encoded-api",
        "proxy-page",
        "proxy-json",
        "proxy-not-utf8",
        "gs1",
        "home",
        "console",
        "metrics",
    ],
)
def test_what_the_protocol_leaves_to_the_application(
    node: RunningNode, target: str, headers: list[str]
) -> None:
    handle = f"{PREFIX}/FM-RAW-\u00fc"
    node.put_handle(handle, [text_value(1, "URL", "https://raw.example")])
    _learn(node, handle)
    data = _request("GET", target, headers)
    answer, made = _by_protocol(node, data)
    assert not made
    application = _by_application(node, data)
    _same_but_expires(_parts(answer), _parts(application))


@pytest.mark.parametrize(
    "target",
    [
        "/api/handles/88.118.8/%",
        "/api/handles/88.118.8/FM-ODD%2",
        "/api/handles//88.118.8/FM-ODD",
        "/api/handles/88.118.8/FM-ODD?",
        "/api/handles/88.118.8/FM-ODD?&&=&index",
        "/api/handles/88.118.8%2FFM-ODD",
        "/api/handles/88.118.8/FM-ODD/",
        "/api/handles/88.118.8/FM-ODD%00",
        "/api/handles/" + "A" * 4000,
        "//88.118.8/FM-ODD",
        "/88.118.8/FM-ODD?",
        "/88.118.8%2FFM-ODD",
        "/%ZZ",
        "/88.118.8/FM-ODD%0D%0ALocation:%20x",
    ],
)
def test_odd_targets_answered_as_the_application(node: RunningNode, target: str) -> None:
    """Whoever answers an odd request target, the answer is the application's."""
    node.put_handle(f"{PREFIX}/FM-ODD", [text_value(1, "URL", "https://odd.example")])
    _learn(node, f"{PREFIX}/FM-ODD")
    for method in ("GET", "HEAD"):
        head = method == "HEAD"
        made, _ = _by_protocol(node, _request(method, target, []), head=head)
        application = _by_application(node, _request(method, target, []), head=head)
        _same_but_expires(_parts(made), _parts(application))
