"""Cached HTTP answers written by the server's protocol (idnode.http.fastserve) on a real
node over real sockets: byte identity with the ASGI answer, HTTP/1.1 semantics (pipelining,
HTTP/1.0, ``Connection: close``, HEAD), invalidation by writes (through the API, the store,
another process, and a second record a proxy page read), and no caching for identities."""

from __future__ import annotations

import asyncio
import email.utils
import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from idnode.http.respcache import CacheSlot
from idnode.protocol.values import HandleValue, TTLType
from tests.http.conftest import basic, live_client
from tests.server.nodeutil import (
    PREFIX,
    RunningNode,
    create_node_dir,
    modify_in_another_process,
    no_internal_errors,
    running_node,
    text_value,
)

__all__ = ["no_internal_errors"]

TIMEOUT = 10.0
API = f"/api/handles/{PREFIX}/FS-1"
TARGET = f"{PREFIX}/FS-TARGET"
ALIAS = f"{PREFIX}/FS-ALIAS"


@pytest.fixture(scope="module")
def fs_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    directory = tmp_path_factory.mktemp("fastserve")
    create_node_dir(directory)
    with running_node(directory) as running:
        running.put_handle(f"{PREFIX}/FS-1", [text_value(1, "URL", "https://example.com/1")])
        running.put_handle(f"{PREFIX}/FS-2", [text_value(1, "URL", "https://example.com/2")])
        # an absolute TTL within the two days' cap: the same Expires whenever answered
        at = int(time.time()) + 3600
        fixed = HandleValue(
            1, "URL", b"https://example.com/fixed", ttl_type=TTLType.ABSOLUTE, ttl=at
        )
        running.put_handle(f"{PREFIX}/FS-FIXED", [fixed])
        running.put_handle(TARGET, [text_value(1, "URL", "https://example.com/target-v1")])
        running.put_handle(ALIAS, [text_value(1, "HS_ALIAS", TARGET)])
        yield running


def _settle(node: RunningNode) -> None:
    """Wait until the node's loop has finished what it was doing (an answer is written
    before the application's cache wrapper keeps it)."""
    node.call(asyncio.sleep(0))


def _slot(node: RunningNode) -> CacheSlot:
    http = node.node._http
    assert http is not None
    return http.cache_slot


def _connect(node: RunningNode) -> socket.socket:
    port = node.node.http_port
    assert port is not None
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def _request(path: str, *, method: str = "GET", version: str = "1.1", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/{version}\r\nHost: idnode.test\r\n{extra}\r\n".encode()


def _read_answers(sock: socket.socket, count: int, *, head: bool = False) -> list[bytes]:
    """``count`` whole answers (by ``content-length``) read from ``sock``."""
    buffer = b""
    answers: list[bytes] = []
    while len(answers) < count:
        end = buffer.find(b"\r\n\r\n")
        if end >= 0:
            header = buffer[: end + 4]
            length = 0
            for line in header.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            size = end + 4 + (0 if head else length)
            if len(buffer) >= size:
                answers.append(buffer[:size])
                buffer = buffer[size:]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after {len(answers)} answers")
        buffer += chunk
    assert buffer == b""
    return answers


def _exchange(node: RunningNode, data: bytes, count: int = 1, *, head: bool = False) -> list[bytes]:
    with _connect(node) as sock:
        sock.sendall(data)
        return _read_answers(sock, count, head=head)


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(TIMEOUT)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def _header(answer: bytes, name: str) -> str | None:
    for line in answer.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.encode():
            return value.strip().decode()
    return None


def _without(answer: bytes, *names: str) -> bytes:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = [
        line
        for line in head.split(b"\r\n")
        if line.partition(b":")[0].strip().lower() not in {n.encode() for n in names}
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _prime(node: RunningNode, data: bytes, *, head: bool = False) -> bytes:
    """One ASGI answer (a miss that fills the cache), then check the next is a hit written by
    the protocol; returns the ASGI answer."""
    slot = _slot(node)
    first = _exchange(node, data, head=head)[0]
    answered = slot.answered
    second = _exchange(node, data, head=head)[0]
    assert slot.answered == answered + 1, "the second answer did not come from the protocol"
    assert _without(second, "date", "expires") == _without(first, "date", "expires")
    expires = [_header(a, "expires") for a in (first, second)]
    if expires[0] != expires[1]:  # a relative TTL, and a second went by between the two
        moments = [email.utils.parsedate_to_datetime(e or "").timestamp() for e in expires]
        assert moments[1] - moments[0] == 1
    return first


# -- byte identity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, head",
    [
        (_request(API), False),
        (_request(API, method="HEAD"), True),
        (_request(API + "?type=URL", extra="Accept: application/json\r\n"), False),
        (_request(f"/{PREFIX}/FS-FIXED"), False),
        (_request(f"/{PREFIX}/FS-FIXED", method="HEAD"), True),
        (_request(f"/{PREFIX}/FS-FIXED?noredirect"), False),
        (_request(f"/{PREFIX}/FS-FIXED", extra="Accept: application/json\r\n"), False),
    ],
    ids=["api", "api-head", "api-json", "proxy", "proxy-head", "proxy-page", "proxy-json"],
)
def test_hit_equals_asgi_answer(fs_node: RunningNode, data: bytes, head: bool) -> None:
    first = _prime(fs_node, data, head=head)
    answered = _slot(fs_node).answered
    again = _exchange(fs_node, data, head=head)[0]  # (these answers' Expires is fixed)
    assert _slot(fs_node).answered == answered + 1
    assert _without(again, "date") == _without(first, "date")
    if head:
        assert first.endswith(b"\r\n\r\n")
        assert int(_header(first, "content-length") or 0) > 0


def test_expires_is_made_for_each_hit(fs_node: RunningNode) -> None:
    """A redirect's Expires follows the TTL from the moment of each answer, cached or not."""
    data = _request(f"/{PREFIX}/FS-1")
    _exchange(fs_node, data)
    for _ in range(2):
        answered = _slot(fs_node).answered
        before = time.time()
        answer = _exchange(fs_node, data)[0]
        after = time.time()
        assert _slot(fs_node).answered == answered + 1
        assert answer.startswith(b"HTTP/1.1 302 ")
        expires = email.utils.parsedate_to_datetime(_header(answer, "expires") or "").timestamp()
        assert int(before) + 86400 <= expires <= after + 86400
        time.sleep(1.1)


# -- HTTP/1.1 semantics ----------------------------------------------------------------------


def test_pipelined_answers_keep_their_order(fs_node: RunningNode) -> None:
    cached = _request(f"/api/handles/{PREFIX}/FS-2")
    _prime(fs_node, cached)
    slot = _slot(fs_node)
    # hit, then an ASGI request (an absent handle), then the same hit: it must wait
    miss = _request(f"/api/handles/{PREFIX}/FS-ABSENT?n={time.time_ns()}")
    answered = slot.answered
    first, second, third = _exchange(fs_node, cached + miss + cached, 3)
    assert slot.answered == answered + 1  # the third went the ASGI way behind the second
    assert _without(first, "date") == _without(third, "date")
    assert second.startswith(b"HTTP/1.1 404 ")
    assert json.loads(second.partition(b"\r\n\r\n")[2])["handle"] == f"{PREFIX}/FS-ABSENT"
    # several hits in one read
    answers = _exchange(fs_node, cached * 5, 5)
    assert len({_without(a, "date") for a in answers}) == 1


def test_connection_close_and_http10(fs_node: RunningNode) -> None:
    _prime(fs_node, _request(API))
    slot = _slot(fs_node)
    for data in (
        _request(API, extra="Connection: close\r\n"),
        _request(API, version="1.0"),
        _request(API, version="1.0", extra="Connection: keep-alive\r\n"),  # as uvicorn: closed
    ):
        with _connect(fs_node) as sock:
            answered = slot.answered
            sock.sendall(data + _request(API))  # nothing is answered after the close
            answer = _read_answers(sock, 1)[0]
            assert slot.answered == answered + 1
            assert answer.startswith(b"HTTP/1.1 200 ")
            assert _header(answer, "connection") == "close"
            assert _closed(sock)


def test_keep_alive_connection_serves_hits_and_misses(fs_node: RunningNode) -> None:
    _prime(fs_node, _request(API))
    with _connect(fs_node) as sock:
        for n in range(3):
            sock.sendall(_request(API, method="HEAD"))
            assert _header(_read_answers(sock, 1, head=True)[0], "connection") is None
            sock.sendall(_request(f"{API}?type=URL&k={n}-{time.time_ns()}"))
            assert _read_answers(sock, 1)[0].startswith(b"HTTP/1.1 200 ")


def test_requests_with_bodies_or_upgrades_go_the_asgi_way(fs_node: RunningNode) -> None:
    _prime(fs_node, _request(API))
    slot = _slot(fs_node)
    answered = slot.answered
    for extra in ("Content-Length: 0\r\n", "Expect: 100-continue\r\nContent-Length: 0\r\n"):
        answer = _exchange(fs_node, _request(API, extra=extra))[0]
        assert answer.startswith(b"HTTP/1.1 200 ")
    assert slot.answered == answered


# -- invalidation ----------------------------------------------------------------------------


def _values(answer: bytes) -> list[str]:
    return [v["data"]["value"] for v in json.loads(answer.partition(b"\r\n\r\n")[2])["values"]]


def test_write_through_the_api_is_seen_at_once(fs_node: RunningNode) -> None:
    path = f"/api/handles/{PREFIX}/FS-W"
    fs_node.put_handle(f"{PREFIX}/FS-W", [text_value(1, "URL", "https://example.com/w1")])
    _prime(fs_node, _request(path))
    admin = basic(f"300:0.NA/{PREFIX}", fs_node.admin_secret)
    value = {"index": 1, "type": "URL", "data": {"format": "string", "value": "https://w2.example"}}
    with live_client(fs_node) as client:
        reply = client.put(f"{path}?index=1&overwrite=true", json=[value], headers=admin)
        assert reply.status_code == 200, reply.text
    assert _values(_exchange(fs_node, _request(path))[0]) == ["https://w2.example"]
    assert _values(_prime(fs_node, _request(path))) == ["https://w2.example"]


def test_write_by_another_process_is_seen_at_once(fs_node: RunningNode) -> None:
    handle = f"{PREFIX}/FS-P"
    path = f"/api/handles/{handle}"
    fs_node.put_handle(handle, [text_value(1, "URL", "https://example.com/p1")])
    _prime(fs_node, _request(path))
    modify_in_another_process(
        fs_node.config.database_location, handle, 1, "URL", b"https://other.example"
    )
    assert _values(_exchange(fs_node, _request(path))[0]) == ["https://other.example"]


def test_proxy_page_is_invalidated_by_each_record_it_read(fs_node: RunningNode) -> None:
    data = _request(f"/{ALIAS}")
    first = _exchange(fs_node, data)[0]
    assert _header(first, "location") == "https://example.com/target-v1"
    _prime(fs_node, data)
    # the second record the page read (the alias target) changes
    fs_node.call(
        fs_node.node.store.modify_values(TARGET, [text_value(1, "URL", "https://example.com/v2")])
    )
    slot = _slot(fs_node)
    answered = slot.answered
    assert _header(_exchange(fs_node, data)[0], "location") == "https://example.com/v2"
    assert slot.answered == answered  # stale: answered the ASGI way
    _prime(fs_node, data)
    # the first one (the alias) changes
    fs_node.call(
        fs_node.node.store.modify_values(ALIAS, [text_value(1, "HS_ALIAS", f"{PREFIX}/FS-2")])
    )
    assert _header(_exchange(fs_node, data)[0], "location") == "https://example.com/2"


def test_errors_and_the_form_are_not_cached(fs_node: RunningNode) -> None:
    slot = _slot(fs_node)
    cache = slot.cache
    assert cache is not None
    for path in (f"/{PREFIX}/NO-SUCH", "/", f"/api/handles/{PREFIX}/NO-SUCH"):
        _settle(fs_node)
        entries = len(cache)
        for _ in range(2):
            _exchange(fs_node, _request(path))
        _settle(fs_node)
        assert len(cache) == entries


# -- identities ------------------------------------------------------------------------------


def test_nothing_cached_for_credentials(fs_node: RunningNode) -> None:
    slot = _slot(fs_node)
    cache = slot.cache
    assert cache is not None
    admin = basic(f"300:0.NA/{PREFIX}", fs_node.admin_secret)["Authorization"]
    for extra in (f"Authorization: {admin}\r\n", "Cookie: idnode_session=x\r\n"):
        for path in (f"/api/handles/{PREFIX}/FS-2?c=1", f"/{PREFIX}/FS-2?c=1"):
            _settle(fs_node)
            entries, answered = len(cache), slot.answered
            for _ in range(2):
                answer = _exchange(fs_node, _request(path, extra=extra))[0]
                assert answer.split(b" ")[1] in (b"200", b"302")
            _settle(fs_node)
            assert (len(cache), slot.answered) == (entries, answered)


def test_hits_are_counted(fs_node: RunningNode) -> None:
    metrics = fs_node.node.dispatcher.metrics
    assert metrics is not None
    respcache = fs_node.node.dispatcher.respcache
    assert respcache is not None
    _prime(fs_node, _request(API))
    _prime(fs_node, _request(f"/{PREFIX}/FS-1"))
    api_before = metrics.http_requests.get(("api_handles", 200), 0)
    proxy_before = metrics.http_requests.get(("proxy", 302), 0)
    hits = respcache.hits
    counts = sum(fs_node.node.dispatcher.counter.counts.values())
    _exchange(fs_node, _request(API))
    _exchange(fs_node, _request(f"/{PREFIX}/FS-1"))
    assert metrics.http_requests[("api_handles", 200)] == api_before + 1
    assert metrics.http_requests[("proxy", 302)] == proxy_before + 1
    assert respcache.hits == hits + 2
    after = sum(fs_node.node.dispatcher.counter.counts.values())
    assert after == counts + 2 or after < counts  # (unless the statistics were flushed)


def test_live_client_sees_the_same_answers(fs_node: RunningNode) -> None:
    with live_client(fs_node) as client:
        replies = [client.get(API) for _ in range(3)]
        assert {r.text for r in replies} == {replies[0].text}
        redirect = client.get(f"/{PREFIX}/FS-1", follow_redirects=False)
        again = client.get(f"/{PREFIX}/FS-1", follow_redirects=False)
        assert redirect.status_code == again.status_code == 302
        assert redirect.headers["location"] == again.headers["location"]
    assert isinstance(replies[0], httpx.Response)


def test_paused_writing_keeps_order(fs_node: RunningNode) -> None:
    """Pipelined hits sent while the client does not read: once the server's writing pauses
    the rest go the ASGI way behind it, and every answer arrives, in order."""
    big = f"{PREFIX}/FS-BIG"
    fs_node.put_handle(big, [text_value(1, "DESC", "x" * 30000)])
    large, small = _request(f"/api/handles/{big}"), _request(API)
    _prime(fs_node, large)
    _prime(fs_node, small)
    expected = [_without(_exchange(fs_node, d)[0], "date") for d in (large, small)]
    slot = _slot(fs_node)
    answered = slot.answered
    count = 600  # about 18 MB of answers: more than the sockets' buffers hold
    with _connect(fs_node) as sock:
        sock.sendall(b"".join(large if n % 2 == 0 else small for n in range(count)))
        time.sleep(0.5)
        answers = _read_answers(sock, count)
    assert [_without(a, "date") for a in answers] == [expected[n % 2] for n in range(count)]
    assert answered < slot.answered < answered + count  # some went the ASGI way


def test_template_instance_page_is_not_cached(fs_node: RunningNode) -> None:
    from idnode.industry.layout import TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE

    instance = f"{PREFIX}/FS-INSTANCE"
    link = text_value(TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE, f"{PREFIX}/FS-TPL")
    fs_node.put_handle(instance, [text_value(1, "URL", "https://example.com/i"), link])
    slot = _slot(fs_node)
    answered = slot.answered
    for _ in range(3):
        answer = _exchange(fs_node, _request(f"/{instance}"))[0]
        assert answer.startswith(b"HTTP/1.1 302 ")
    assert slot.answered == answered
