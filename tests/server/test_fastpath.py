"""Anonymous resolutions answered from the stored record's bytes (idnode.server.fastpath).

Byte identity: for generated records (public and non-public values, references, template
links) and generated requests (index and type lists, PO, protocol versions), whatever the
fast path answers equals what the dispatcher encodes for the same request, on SQLite and on
PostgreSQL; and it does answer every request whose answer is a plain public record (so these
tests fail if the fast path stops being taken). Records linking a template never take it:
their values go through the grants. The record scanner accepts exactly what the decoder
accepts. SQLite reads on the event loop's thread see the last commit while a writer holds an
open write transaction, without waiting for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnode.bootstrap import init_node
from idnode.errors import HandleError
from idnode.industry.layout import TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE
from idnode.protocol.bodies import ResolutionRequest, ResolutionResponse
from idnode.protocol.codes import OpCode, OpFlag, Permission, ResponseCode
from idnode.protocol.message import Message
from idnode.protocol.values import HandleValue, Reference, decode_record, encode_record
from idnode.server import fastpath
from idnode.server.config import NodeConfig
from idnode.server.wire_io import answer, cached
from idnode.store.homedcache import HOMED_TTL
from idnode.store.records import public_values, scan_record
from tests.pgserver import PostgresServer
from tests.server.nodeutil import PREFIX, PRIVATE, RunningNode, no_internal_errors, running_node

__all__ = ["no_internal_errors"]

PUBLIC = int(Permission.PUBLIC_READ | Permission.ADMIN_READ | Permission.ADMIN_WRITE)
PUBLIC_ONLY = int(Permission.PUBLIC_READ)
NO_READ = int(Permission.ADMIN_WRITE)
TYPES = ["URL", "DESC", "EMAIL", "URL.MIRROR", "batch", "Ünï", "DESC.long"]
ASKED_TYPES = ["URL", "url", "DESC", "URL.", "desc.", "EMAIL", "ÜNÏ", "TEMPLATE", "NONE"]
VERSIONS = [((2, 10), (2, 10)), ((2, 1), (0, 0)), ((2, 5), (2, 7)), ((3, 0), (2, 11))]
#: Op flags a request the fast path may take can carry (CT and RD go the ordinary way).
FLAGS = [0, OpFlag.KA, OpFlag.REC, OpFlag.CA, OpFlag.CN, OpFlag.AT, OpFlag.KA | OpFlag.DNRF]

_counter = itertools.count()


# -- generated records and requests ----------------------------------------------------------

references = st.lists(
    st.builds(Reference, st.sampled_from([f"{PREFIX}/R", "0.NA/X", "ü/1"]), st.integers(0, 9)),
    max_size=2,
).map(tuple)


@st.composite
def values(draw: st.DrawFn, *, template: bool = True) -> list[HandleValue]:
    indexes = draw(st.lists(st.sampled_from([1, 2, 3, 4, 5, 7, 100, 2001]), unique=True))
    out = [
        HandleValue(
            index,
            draw(st.sampled_from(TYPES)),
            draw(st.binary(max_size=24)),
            ttl=draw(st.sampled_from([86400, 0, 0xFFFFFFFF])),
            timestamp=draw(st.integers(0, 0xFFFFFFFF)),
            permissions=draw(st.sampled_from([PUBLIC, PUBLIC_ONLY, PUBLIC, PRIVATE, NO_READ])),
            references=draw(references),
        )
        for index in indexes
    ]
    if template and draw(st.integers(0, 4)) == 0:
        link = draw(st.sampled_from([f"{PREFIX}/NO-SUCH-TEMPLATE", "0.TYPE/DO.DOIPMETA"]))
        out.append(HandleValue(TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE, link.encode()))
    return out


selections = st.tuples(
    st.lists(st.sampled_from([1, 2, 3, 5, 100, 1001, 2001, 9]), max_size=3, unique=True).map(tuple),
    st.lists(st.sampled_from(ASKED_TYPES), max_size=3, unique=True).map(tuple),
)


def _request(
    handle: str,
    selection: tuple[tuple[int, ...], tuple[str, ...]],
    *,
    po: bool,
    version: tuple[tuple[int, int], tuple[int, int]] = VERSIONS[0],
    request_id: int = 7,
    flags: int = 0,
) -> bytes:
    return Message(
        op=OpCode.RESOLUTION,
        body=ResolutionRequest(handle, *selection),
        flags=flags | (OpFlag.PO if po else 0),
        request_id=request_id,
        recursion_count=1,
        expiration=1234,
        version=version[0],
        suggested_version=version[1],
    ).encode()


def _reference(
    record: list[HandleValue], selection: tuple[tuple[int, ...], tuple[str, ...]], po: bool
) -> bytes | None:
    """What :func:`public_values` must give, from value objects and the dispatcher's rules."""
    if any(v.index == TEMPLATE_LINK_INDEX and v.type == TEMPLATE_LINK_TYPE for v in record):
        return None
    shown = sorted(record, key=lambda v: v.index)
    indexes, types = selection
    if indexes or types:
        shown = [v for v in shown if v.index in indexes or any(v.type_matches(t) for t in types)]
    if po:
        shown = [v for v in shown if v.public_read]
    if not shown or not all(v.public_read for v in shown):
        return None
    return encode_record(shown)


# -- the scanner and the value selection, pure -----------------------------------------------


@settings(max_examples=300, deadline=None)
@given(values(), selections, st.booleans())
def test_public_values_match_value_objects(
    record: list[HandleValue], selection: tuple[tuple[int, ...], tuple[str, ...]], po: bool
) -> None:
    stored = encode_record(record)
    assert public_values(stored, *selection, public_only=po) == _reference(record, selection, po)


@settings(max_examples=300, deadline=None)
@given(values(), st.data())
def test_scanner_accepts_what_the_decoder_accepts(
    record: list[HandleValue], data: st.DataObject
) -> None:
    stored = bytearray(encode_record(record))
    if stored:
        for _ in range(data.draw(st.integers(0, 3))):
            at = data.draw(st.integers(0, len(stored) - 1))
            stored[at] = data.draw(st.sampled_from([0, 1, 0x7F, 0xC3, 0xFF]))
    cut = data.draw(st.integers(0, len(stored)))
    damaged = bytes(stored[:cut]) if data.draw(st.booleans()) else bytes(stored)
    scanned = scan_record(damaged)
    try:
        decoded = decode_record(damaged)
    except HandleError:
        assert scanned is None
        return
    assert scanned is not None
    assert [(s[0], s[1], s[2]) for s in scanned] == [
        (v.index, v.type, v.permissions) for v in decoded
    ]
    assert [damaged[s[3] : s[4]] for s in scanned] == [v.encode() for v in decoded]


# -- on a node: SQLite and PostgreSQL ----------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fp_node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningNode]:
    directory = tmp_path_factory.mktemp(f"fastpath-{request.param}")
    database = "idnode.db"
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("pg_server")
        name = f"idnode_fastpath_{next(_counter)}"
        server.psql(f"CREATE DATABASE {name}")
        database = server.url(name)
    asyncio.run(init_node(directory, PREFIX, port=0, demo=True, database=database))
    path = directory / "idnode.toml"
    config = dataclasses.replace(NodeConfig.load(path), auth_failures_limit=0, writes_per_second=0)
    path.write_text(config.dump(), encoding="utf-8")
    with running_node(directory) as running:
        yield running


def _dispatched(node: RunningNode, data: bytes) -> bytes:
    async def run() -> bytes:
        return (await node.node.dispatcher.dispatch(Message.decode(data))).encode()

    return node.call(run())


def _fast(node: RunningNode, data: bytes) -> bytes | None:
    async def run() -> bytes | None:
        return await fastpath.answer(node.node.dispatcher, data, None)

    return node.call(run())


def _fast_now(node: RunningNode, data: bytes) -> bytes | None:
    async def run() -> bytes | None:
        return fastpath.answer_now(node.node.dispatcher, data, None)

    return node.call(run())


def _plain_public(response: bytes, record: list[HandleValue]) -> bool:
    """Whether ``response`` is a success showing only public values of a record that links
    no template: then the fast path must have answered."""
    message = Message.decode(response)
    if message.response_code != ResponseCode.SUCCESS:
        return False
    if any(v.index == TEMPLATE_LINK_INDEX and v.type == TEMPLATE_LINK_TYPE for v in record):
        return False
    assert isinstance(message.body, ResolutionResponse)
    return all(v.public_read for v in message.body.values)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    values(),
    st.lists(
        st.tuples(selections, st.booleans(), st.sampled_from(VERSIONS), st.sampled_from(FLAGS)),
        min_size=1,
        max_size=4,
    ),
)
def test_fast_bytes_equal_dispatched(
    fp_node: RunningNode,
    record: list[HandleValue],
    requests: list[
        tuple[
            tuple[tuple[int, ...], tuple[str, ...]],
            bool,
            tuple[tuple[int, int], tuple[int, int]],
            int,
        ]
    ],
) -> None:
    handle = f"{PREFIX}/FP-{next(_counter)}"
    fp_node.put_handle(handle, record)
    sqlite = fp_node.config.database == "idnode.db"
    for n, (selection, po, version, flags) in enumerate(requests):
        data = _request(handle, selection, po=po, version=version, request_id=n + 1, flags=flags)
        dispatched = _dispatched(fp_node, data)
        fast = _fast(fp_node, data)
        now = _fast_now(fp_node, data)
        if fast is not None:
            assert fast == dispatched
        if now is not None:
            assert now == dispatched
        if _plain_public(dispatched, record):
            assert fast is not None
            assert (now is not None) == sqlite  # synchronous reads: SQLite only
        else:
            assert fast is None and now is None
        # the transports' entry points give the same bytes, whichever way they answer
        got = cached(fp_node.node.dispatcher, data)
        if got is not None:
            assert got[0] == dispatched
        answered = fp_node.call(answer(fp_node.node.dispatcher, data))[0]
        if Message.decode(dispatched).response_code == ResponseCode.SUCCESS:
            assert answered == dispatched
        else:  # a challenge carries a fresh nonce and session id
            assert answered[24:28] == dispatched[24:28]


def test_absent_handle_and_other_prefix_go_the_ordinary_way(fp_node: RunningNode) -> None:
    for handle in (f"{PREFIX}/FP-ABSENT", "99.999/X", "0.NA/" + PREFIX):
        data = _request(handle, ((), ()), po=False)
        assert _fast(fp_node, data) is None
        assert _fast_now(fp_node, data) is None
        assert Message.decode(_dispatched(fp_node, data)).response_code != 0


def test_response_longer_than_a_message_goes_the_ordinary_way(fp_node: RunningNode) -> None:
    handle = f"{PREFIX}/FP-HUGE"
    fp_node.put_handle(handle, [HandleValue(1, "DATA", b"x" * 300_000)])
    data = _request(handle, ((), ()), po=False)
    assert _fast(fp_node, data) is None
    assert _fast_now(fp_node, data) is None
    assert _fast(fp_node, _request(handle, ((2,), ()), po=False)) is None  # nothing selected
    small = _request(handle, ((), ("NONE",)), po=False)
    assert _fast(fp_node, small) is None


def test_writes_are_seen_at_once(fp_node: RunningNode) -> None:
    handle = f"{PREFIX}/FP-CHANGING"
    data = _request(handle, ((), ()), po=False)
    for text in ("one", "two", "three"):
        fp_node.put_handle(handle, [HandleValue(1, "URL", text.encode())])
        fast = _fast(fp_node, data)
        assert fast is not None and fast == _dispatched(fp_node, data)
        assert text.encode() in fast


def test_unhomed_prefix_is_seen_at_once(fp_node: RunningNode) -> None:
    prefix = "88.118.77"
    handle = f"{prefix}/FP-1"
    fp_node.call(fp_node.node.store.home_prefix(prefix))
    fp_node.put_handle(handle, [HandleValue(1, "URL", b"x")])
    data = _request(handle, ((), ()), po=False)
    assert _fast(fp_node, data) is not None
    fp_node.call(fp_node.node.store.unhome_prefix(prefix))
    assert _fast_now(fp_node, data) is None
    assert _fast(fp_node, data) is None
    assert Message.decode(_dispatched(fp_node, data)).response_code != ResponseCode.SUCCESS


def test_prefix_in_steady_use_stays_known(fp_node: RunningNode) -> None:
    """A prefix asked for again and again is checked again in the background before its
    half second is up, so the synchronous answer never finds it unknown."""
    handle = f"{PREFIX}/FP-STEADY"
    now = [1000.0]
    resolver = fastpath.FastResolver(fp_node.node.dispatcher, clock=lambda: now[0])

    async def steady() -> int:
        assert await resolver.served(handle)
        checks = 0
        for _ in range(40):  # 8 s of requests, 0.2 s apart
            now[0] += 0.2
            assert resolver.served_now(handle)
            pending = list(resolver._checking.values())
            checks += len(pending)
            await asyncio.gather(*pending)
            await asyncio.sleep(0)  # the check's done callback
        return checks

    assert fp_node.call(steady()) >= 8 / (HOMED_TTL / 2)
    now[0] += 0.3  # asked outside an event loop: answered from memory, nothing scheduled
    assert resolver.served_now(handle)
    assert not resolver._checking


def test_prefix_unhomed_behind_the_node_s_back_is_forgotten(
    fp_node: RunningNode, request: pytest.FixtureRequest
) -> None:
    """A prefix unhomed by another program (a DELETE in the database: no change counter
    bumped) is trusted until its background check has asked the store, then forgotten."""
    from idnode.store.sqlite import SQLiteStore

    store = fp_node.node.store
    prefix = "88.118.78"
    handle = f"{prefix}/FP-GONE"
    fp_node.call(store.home_prefix(prefix))
    now = [1000.0]
    resolver = fastpath.FastResolver(fp_node.node.dispatcher, clock=lambda: now[0])
    assert fp_node.call(resolver.served(handle))
    delete = f"DELETE FROM homed_prefixes WHERE prefix_key = '{prefix}'"
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store._path) as conn:
            conn.execute(delete)
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        server.psql(delete, fp_node.node.config.database.rsplit("/", 1)[1])
    time.sleep(HOMED_TTL * 1.1)  # the store's own memory of its homed prefixes runs out

    async def later() -> bool:
        now[0] += HOMED_TTL / 3
        assert resolver.served_now(handle)  # still trusted: its check starts
        await asyncio.gather(*resolver._checking.values())
        await asyncio.sleep(0)  # the check's done callback
        return resolver.served_now(handle)

    assert fp_node.call(later()) is False


def test_sqlite_read_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    """A write transaction held open by another connection: the event loop's read returns
    the last committed record at once (WAL), and sees the new one after the commit."""
    from idnode.store.sqlite import SQLiteStore

    path = tmp_path / "wal.db"

    async def run() -> None:
        store = await SQLiteStore.open(path)
        try:
            await store.create_handle(f"{PREFIX}/W", [HandleValue(1, "URL", b"old")])
            other = sqlite3.connect(path, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute(
                    "UPDATE handles SET record = ? WHERE handle_key = ?",
                    (encode_record([HandleValue(1, "URL", b"new")]), f"{PREFIX}/W"),
                )
                started = time.perf_counter()
                record = store.try_get_record(f"{PREFIX}/W")
                assert time.perf_counter() - started < 0.5
                assert record == encode_record([HandleValue(1, "URL", b"old")])
                other.execute("COMMIT")
            finally:
                other.close()
            assert await store.get_record(f"{PREFIX}/W") == encode_record(
                [HandleValue(1, "URL", b"new")]
            )
            assert await store.get_record(f"{PREFIX}/ABSENT") is None
        finally:
            await store.close()

    asyncio.run(run())
