"""Misses of ``GET /api/handles/<handle>`` answered by the HTTP server's protocol
(idnode.http.fastmiss), on a real node over real sockets.

For generated records and requests (the strategies of ``test_fastjson``: GET and HEAD, the
API's parameters valid or not, ``Origin`` and ``Accept``, handles as stored, in lower case or
wholly percent-encoded), the answer the protocol makes to a request that misses the cache is
the application's answer to the same request, byte for byte but for ``date``; the protocol
makes exactly the answers that are a plain public record (so the test fails if it stops
making them) and leaves every other to the application. What it makes is kept in the cache
and dropped by a write; pipelined requests keep their order whoever answers them.
"""

from __future__ import annotations

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
from tests.http.conftest import PREFIX
from tests.http.test_fastjson import _plain, queries, records
from tests.http.test_fastserve import _read_answers, _without
from tests.server.nodeutil import RunningNode, text_value

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
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), [], body


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


def test_made_answers_are_kept_and_dropped_by_a_write(node: RunningNode) -> None:
    handle = f"{PREFIX}/FM-KEPT"
    node.put_handle(handle, [text_value(1, "URL", "https://one.example")])
    _learn(node, handle)
    data = f"GET /api/handles/{handle} HTTP/1.1\r\nHost: idnode.test\r\n\r\n".encode()
    respcache = node.node.dispatcher.respcache
    assert respcache is not None
    misses, hits = respcache.misses, respcache.hits
    first, made = _by_protocol(node, data)
    assert made and b"one.example" in first
    assert respcache.misses == misses + 1
    second, by_protocol = _by_protocol(node, data)
    assert by_protocol and respcache.hits == hits + 1
    assert _without(second, "date") == _without(first, "date")
    node.put_handle(handle, [text_value(1, "URL", "https://two.example")])
    third, made = _by_protocol(node, data)
    assert made and b"two.example" in third
    assert respcache.misses == misses + 2


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
        ("/api/handles/88.118.8/FM-RAW-\u00fc", []),  # not ASCII: the application decodes it
        ("/api/handles/88.118.8/FM-RAW-%C3%BC?index=x", []),  # an error to make
        ("/api/handles/88.118.8/FM-ABSENT", []),
        ("/api/handles/99.999/FM-RAW", []),  # a prefix not served here
        ("/api/handles/88.118.8/FM-RAW-%C3%BC", ["Cookie: a=b"]),  # no cache key
        ("/88.118.8/FM-RAW-%C3%BC", []),  # the proxy
    ],
    ids=["raw-utf8", "bad-index", "absent", "elsewhere", "cookie", "proxy"],
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
    assert _without(answer, "date", "expires") == _without(application, "date", "expires")
