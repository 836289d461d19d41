"""The cache of encoded resolution responses (idnode.server.respcache) on a real node.

Byte identity: for every request the cache may answer, the cached bytes equal what the
dispatcher encodes for that very request (fixed cases and generated ones). Invalidation: a
write through each path (native TCP, the HTTP API, the store as a mirror applies replicated
changes, a bulk registration as the importer makes, a second process writing the same SQLite
file, a prefix unhomed) makes the next request a miss that sees the change. Permissions:
instances of templates, challenged requests, certified and digest requests never come from
the cache, and a PO answer is cached as filtered.
"""

from __future__ import annotations

import asyncio
import gc
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnode.protocol.bodies import ResolutionRequest, ResolutionResponse
from idnode.protocol.codes import OpCode, OpFlag, ResponseCode
from idnode.protocol.message import Message
from idnode.protocol.values import HandleValue, encode_record
from idnode.server.respcache import ResponseCache, request_key
from idnode.server.wire_io import answer
from idnode.store.txnlog import Action, Change
from tests.http.conftest import basic
from tests.server.nodeutil import (
    PREFIX,
    PRIVATE,
    RunningNode,
    create_node_dir,
    modify_in_another_process,
    no_internal_errors,
    running_node,
    text_value,
)

__all__ = ["no_internal_errors"]

HANDLES = [f"{PREFIX}/RC-{n}" for n in range(4)]
#: Flags a cacheable request may carry (CT and RD go the ordinary way).
SELECTIONS = [((), ()), ((1,), ()), ((), ("DESC",)), ((2, 3), ("URL",)), ((9,), ()), ((4,), ())]
VERSIONS = [((2, 10), (2, 10)), ((2, 1), (0, 0)), ((2, 5), (2, 7)), ((3, 0), (2, 11))]
FLAGS = [OpFlag.PO, OpFlag.KA, OpFlag.REC, OpFlag.CA, OpFlag.ENC, OpFlag.CN, OpFlag.AT]


def _record(n: int, text: str = "v1") -> list[HandleValue]:
    """Three values; RC-2 and RC-3 also have one readable by administrators only."""
    values = [
        text_value(1, "URL", f"https://example.com/{n}/{text}"),
        text_value(2, "DESC", f"module {n} {text}"),
        text_value(3, "EMAIL", f"qa{n}@example.com"),
    ]
    if n >= 2:
        values.append(text_value(4, "SECRET", "hidden", permissions=PRIVATE))
    return values


@pytest.fixture(scope="module")
def rc_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    directory = tmp_path_factory.mktemp("respcache")
    create_node_dir(directory)
    with running_node(directory) as running:
        for n, handle in enumerate(HANDLES):
            running.put_handle(handle, _record(n))
        yield running


def _request(
    handle: str,
    *,
    flags: int = 0,
    request_id: int = 1,
    indexes: tuple[int, ...] = (),
    types: tuple[str, ...] = (),
    recursion: int = 0,
    expiration: int = 0,
    serial: int = 0xFFFF,
    version: tuple[int, int] = (2, 10),
    suggested: tuple[int, int] = (2, 10),
) -> bytes:
    return Message(
        op=OpCode.RESOLUTION,
        body=ResolutionRequest(handle, indexes, types),
        flags=flags,
        request_id=request_id,
        recursion_count=recursion,
        expiration=expiration,
        site_info_serial=serial,
        version=version,
        suggested_version=suggested,
    ).encode()


def _cache(node: RunningNode) -> ResponseCache:
    cache = node.node.dispatcher.respcache
    assert cache is not None
    return cache


def _uncached(node: RunningNode, data: bytes) -> bytes:
    """What the dispatcher encodes for ``data`` without the cache."""
    dispatcher = node.node.dispatcher

    async def run() -> bytes:
        return (await dispatcher.dispatch(Message.decode(data))).encode()

    return node.call(run())


def _answer(node: RunningNode, data: bytes) -> bytes:
    """The ordinary path, which fills the cache."""
    return node.call(answer(node.node.dispatcher, data))[0]


def _hit(node: RunningNode, data: bytes) -> bytes | None:
    """The response from the cache alone (None: a miss). :func:`cached` also answers a miss
    from the stored record (idnode.server.fastpath, tests/server/test_fastpath.py)."""
    key = request_key(data)
    if key is None:
        return None

    async def run() -> bytes | None:
        got = _cache(node).get(key, data, node.node.dispatcher.node.site_serial)
        return None if got is None else got[0]

    return node.call(run())


def _code(response: bytes) -> int:
    return Message.decode(response).response_code


# -- byte identity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "first, second",
    [
        ({}, {"request_id": 77}),
        ({"request_id": 5}, {"request_id": 0xFFFFFFFF, "recursion": 3, "expiration": 1234}),
        ({"flags": OpFlag.KA}, {"flags": OpFlag.KA, "request_id": 9, "serial": 7}),
        ({"types": ("URL",)}, {"types": ("URL",), "request_id": 2}),
        ({"indexes": (2, 3)}, {"indexes": (2, 3), "request_id": 3}),
        ({"flags": OpFlag.PO}, {"flags": OpFlag.PO, "request_id": 4}),
        ({"version": (2, 1), "suggested": (0, 0)}, {"version": (2, 1), "suggested": (0, 0)}),
    ],
)
def test_cached_bytes_equal_uncached(
    rc_node: RunningNode, first: dict[str, Any], second: dict[str, Any]
) -> None:
    handle = HANDLES[0]
    data1 = _request(handle, **first)
    if _code(_uncached(rc_node, data1)) != ResponseCode.SUCCESS:
        pytest.skip("not a success")
    assert _answer(rc_node, data1) == _uncached(rc_node, data1)
    data2 = _request(handle, **second)
    assert request_key(data1) == request_key(data2)
    hit = _hit(rc_node, data2)
    assert hit is not None
    assert hit == _uncached(rc_node, data2)


def test_po_answer_is_cached_filtered(rc_node: RunningNode) -> None:
    data = _request(HANDLES[1], flags=OpFlag.PO, request_id=11)
    _answer(rc_node, data)
    hit = _hit(rc_node, _request(HANDLES[1], flags=OpFlag.PO, request_id=12))
    assert hit is not None
    assert list(_values(hit)) == [1, 2, 3]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    handle=st.sampled_from(HANDLES),
    flags=st.sets(st.sampled_from(FLAGS), max_size=3),
    ids=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    recursion=st.integers(0, 255),
    expiration=st.integers(0, 2**32 - 1),
    serial=st.integers(0, 0xFFFF),
    select=st.sampled_from(SELECTIONS),
    version=st.sampled_from(VERSIONS),
)
def test_generated_requests_byte_identical(
    rc_node: RunningNode,
    handle: str,
    flags: set[OpFlag],
    ids: tuple[int, int],
    recursion: int,
    expiration: int,
    serial: int,
    select: tuple[tuple[int, ...], tuple[str, ...]],
    version: tuple[tuple[int, int], tuple[int, int]],
) -> None:
    bits = 0
    for flag in flags:
        bits |= flag
    common: dict[str, Any] = {"flags": bits, "indexes": select[0], "types": select[1]}
    common |= {"version": version[0], "suggested": version[1]}
    data1 = _request(handle, request_id=ids[0], **common)
    data2 = _request(
        handle,
        request_id=ids[1],
        recursion=recursion,
        expiration=expiration,
        serial=serial,
        **common,
    )
    first = _answer(rc_node, data1)
    hit = _hit(rc_node, data2)
    if _code(first) == ResponseCode.SUCCESS:
        assert first == _uncached(rc_node, data1)
        assert hit is not None, "a successful anonymous resolution is cached"
        assert hit == _uncached(rc_node, data2)
    else:
        assert hit is None, "only successes are cached"


# -- what is never cached --------------------------------------------------------------------


def test_bypassed_requests(rc_node: RunningNode) -> None:
    handle = HANDLES[2]
    for flags in (OpFlag.CT, OpFlag.RD):
        data = _request(handle, flags=flags)
        assert request_key(data) is None
        _answer(rc_node, data)
        assert _hit(rc_node, data) is None
    # values with ADMIN_READ only: a challenge, never stored
    secret = _request(handle, types=("SECRET",))
    assert _code(_answer(rc_node, secret)) == ResponseCode.AUTHENTICATION_NEEDED
    assert _hit(rc_node, secret) is None
    # an absent handle
    missing = _request(f"{PREFIX}/RC-ABSENT")
    assert _code(_answer(rc_node, missing)) == ResponseCode.HANDLE_NOT_FOUND
    assert _hit(rc_node, missing) is None
    # a message with a session id, or a non-resolution
    assert request_key(_request(handle)[:4] + b"\0\0\0\1" + _request(handle)[8:]) is None
    site = Message(op=OpCode.GET_SITE_INFO).encode()
    assert request_key(site) is None


def test_template_instance_is_not_cached(rc_node: RunningNode) -> None:
    """An instance's visible attributes depend on its template's grants (another record):
    its responses always go through the grants."""
    from idnode.industry.layout import TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE

    instance = f"{PREFIX}/RC-INSTANCE"
    link = text_value(TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE, f"{PREFIX}/RC-TPL")
    values = [*_record(9), link, text_value(2001, "serialNo", "S-1")]
    rc_node.put_handle(instance, values)
    data = _request(instance, flags=OpFlag.PO)  # PO: what the grants hide is left out
    assert _code(_answer(rc_node, data)) == ResponseCode.SUCCESS
    assert _hit(rc_node, data) is None


# -- invalidation ----------------------------------------------------------------------------


def _prime(node: RunningNode, handle: str) -> bytes:
    data = _request(handle, request_id=100, flags=OpFlag.PO)
    _answer(node, data)
    assert _hit(node, data) is not None
    return data


def _values(response: bytes) -> dict[int, bytes]:
    body = Message.decode(response).body
    assert isinstance(body, ResolutionResponse)
    return {v.index: v.data for v in body.values}


def test_native_write_invalidates(rc_node: RunningNode) -> None:
    handle = HANDLES[3]
    data = _prime(rc_node, handle)
    client = rc_node.client(rc_node.secret_credentials, tcp=True)
    asyncio.run(client.modify_values(handle, [text_value(2, "DESC", "changed natively")]))
    assert _hit(rc_node, data) is None
    assert _values(_answer(rc_node, data))[2] == b"changed natively"


def test_http_write_invalidates(rc_node: RunningNode) -> None:
    handle = HANDLES[3]
    data = _prime(rc_node, handle)
    port = rc_node.node.http_port
    body = {
        "values": [
            {
                "index": 1,
                "type": "URL",
                "data": {"format": "string", "value": "https://x.example/http"},
            }
        ]
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/handles/{handle}?index=1&overwrite=true",
        data=json.dumps(body).encode(),
        method="PUT",
        headers={
            "content-type": "application/json",
            **basic(f"300:0.NA/{PREFIX}", rc_node.admin_secret),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status in (200, 201)
    assert _hit(rc_node, data) is None
    assert _values(_answer(rc_node, data))[1] == b"https://x.example/http"


def test_replicated_write_invalidates(rc_node: RunningNode) -> None:
    handle = HANDLES[0]
    data = _prime(rc_node, handle)
    record = encode_record(_record(0, "replicated"))
    change = Change(Action.UPDATE_HANDLE, handle, record)
    rc_node.call(rc_node.node.store.apply_replicated([change], source=None, txn_id=1, date_ms=1))
    assert _hit(rc_node, data) is None
    assert _values(_answer(rc_node, data))[2] == b"module 0 replicated"


def test_bulk_registration_and_unhome_invalidate(rc_node: RunningNode) -> None:
    """A bulk registration (the importer's path) bumps the slots of its handles; homing or
    unhoming a prefix drops everything."""
    store = rc_node.node.store
    cache = _cache(rc_node)
    fresh = f"{PREFIX}/RC-BULK"
    slot = cache.generations.slot(fresh.upper())
    before = cache.generations.stamp(slot)
    rc_node.call(store.create_records([(fresh, encode_record(_record(5)))]))
    assert not cache.generations.current(slot, before)
    data = _prime(rc_node, HANDLES[1])
    rc_node.call(store.home_prefix("99.RC"))
    assert _hit(rc_node, data) is None
    rc_node.call(store.unhome_prefix("99.RC"))


def test_second_process_write_invalidates(rc_node: RunningNode) -> None:
    """Another process opening the same SQLite file (as ``idnode handle`` or ``idnode import``
    against a node's file do) writes; this process's cache sees it at once."""
    handle = HANDLES[2]
    data = _prime(rc_node, handle)
    modify_in_another_process(
        rc_node.config.database_location, handle, 2, "DESC", b"from another process"
    )
    assert _hit(rc_node, data) is None
    assert _values(_answer(rc_node, data))[2] == b"from another process"


def test_generations_file_is_shared(rc_node: RunningNode) -> None:
    path = Path(rc_node.config.database_location + "-gen")
    assert path.exists()
    assert _cache(rc_node).generations.path == path


def test_bounded_and_reported(rc_node: RunningNode) -> None:
    cache = ResponseCache(_cache(rc_node).generations, max_entries=2)
    from idnode.server.respcache import Note

    def put(key: bytes) -> None:
        note = Note()
        cache.begin(note, HANDLES[0])
        note.cacheable = True
        cache.put(key, b"x" * 60, note)

    for n in range(5):
        put(bytes([n]))
    stats = cache.stats()
    assert stats.entries == 2
    assert stats.bytes == 2 * 61
    # Full: keys seen once are not admitted, the first two stay.
    assert cache.get(bytes([0]), b"\0" * 40, 1) is not None
    assert cache.get(bytes([4]), b"", 1) is None
    # A key that missed before is admitted and the least recently used entry goes.
    put(bytes([4]))
    assert cache.stats().entries == 2
    assert cache.get(bytes([1]), b"", 1) is None
    assert cache.get(bytes([4]), b"\0" * 40, 1) is not None
    assert cache.get(bytes([0]), b"\0" * 40, 1) is not None


def test_entries_leave_the_collector_at_the_first_young_collection(rc_node: RunningNode) -> None:
    """Kept entries hold no container, so the collector stops tracking them the first time
    it looks at them: full collections do not walk the cache."""
    cache = ResponseCache(_cache(rc_node).generations)
    from idnode.server.respcache import Note

    for n in range(200):
        note = Note()
        cache.begin(note, HANDLES[n % len(HANDLES)])
        note.cacheable = True
        cache.put(n.to_bytes(2, "big"), b"x" * 60, note)
    gc.collect(0)
    assert not any(gc.is_tracked(entry) for entry in cache._entries.values())


def test_udp_and_tcp_serve_hits(rc_node: RunningNode) -> None:
    from tests.server.nodeutil import tcp_exchange, udp_exchange

    data = _request(HANDLES[1], request_id=4242)
    first = udp_exchange(rc_node.port, data)
    assert first is not None
    hits = _cache(rc_node).hits
    again = udp_exchange(rc_node.port, _request(HANDLES[1], request_id=4343))
    assert again is not None and Message.decode(again).request_id == 4343
    assert _cache(rc_node).hits == hits + 1
    over_tcp = tcp_exchange(rc_node.port, _request(HANDLES[1], request_id=4444))
    assert Message.decode(over_tcp).request_id == 4444
    assert over_tcp == _uncached(rc_node, _request(HANDLES[1], request_id=4444))


def test_no_cache_when_disabled(tmp_path: Path) -> None:
    import dataclasses

    from idnode.server.config import NodeConfig

    create_node_dir(tmp_path)
    path = tmp_path / "idnode.toml"
    config = dataclasses.replace(NodeConfig.load(path), response_cache=0)
    path.write_text(config.dump(), encoding="utf-8")
    assert NodeConfig.load(path).response_cache == 0
    with running_node(tmp_path) as running:
        assert running.node.dispatcher.respcache is None
        assert asyncio.iscoroutinefunction(running.node.store.get_handle)


# -- GET /api/handles/<handle> ---------------------------------------------------------------


def _http_get(node: RunningNode, path: str, headers: dict[str, str] | None = None) -> bytes:
    url = f"http://127.0.0.1:{node.node.http_port}{path}"
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as reply:
        assert reply.status == 200
        return bytes(reply.read())


def test_http_api_answers_from_the_cache(rc_node: RunningNode) -> None:
    cache = _cache(rc_node)
    handle = HANDLES[1]
    path = f"/api/handles/{handle}?type=URL&type=DESC"
    first = _http_get(rc_node, path)
    hits = cache.hits
    assert _http_get(rc_node, path) == first
    assert cache.hits == hits + 1
    # an authenticated request goes the ordinary way (and sees the same public values)
    admin = basic(f"300:0.NA/{PREFIX}", rc_node.admin_secret)
    assert json.loads(_http_get(rc_node, path, admin)) == json.loads(first)
    assert cache.hits == hits + 1
    # a write makes the next answer fresh
    rc_node.call(rc_node.node.store.modify_values(handle, [text_value(2, "DESC", "http fresh")]))
    fresh = json.loads(_http_get(rc_node, path))
    assert cache.hits == hits + 1
    assert [v["data"]["value"] for v in fresh["values"]][1] == "http fresh"
    assert json.loads(_http_get(rc_node, path)) == fresh
    assert cache.hits == hits + 2


def test_http_api_instance_not_cached(rc_node: RunningNode) -> None:
    from idnode.industry.layout import TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE

    instance = f"{PREFIX}/RC-HTTP-INSTANCE"
    link = text_value(TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE, f"{PREFIX}/RC-TPL")
    rc_node.put_handle(instance, [*_record(7), link])
    cache = _cache(rc_node)
    _http_get(rc_node, f"/api/handles/{instance}")
    hits = cache.hits
    _http_get(rc_node, f"/api/handles/{instance}")
    assert cache.hits == hits
