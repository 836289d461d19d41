"""Mirrors follow a primary over the replication operations (1000-1002) on real sockets.

The primary is a node from :func:`create_node_dir` (demo identifiers) that lists the mirror's
identity, ``310:0.NA/88.118.8`` holding the mirror's server key, as a replication admin. The
mirror is a node of its own (own directory, key and SQLite file) driven either by its
:class:`~idnode.server.mirror.Mirror` task (``[replication]``) or, for the step-by-step tests,
by calling :meth:`Mirror.sync` directly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from idnode.bootstrap import init_node
from idnode.client import HandleClient, NoPrimaryAvailable, PublicKeyCredentials, SiteClient
from idnode.errors import InvalidAdmin, OperationNotSupported, ServerNotResponsible
from idnode.protocol.bodies import HandleRequest
from idnode.protocol.codes import OpCode
from idnode.protocol.replication import NextTxnIdBody, RetrieveTxnRequest
from idnode.protocol.types.hs_pubkey import load_private_key
from idnode.protocol.values import HandleValue
from idnode.server.authz import Identity
from idnode.server.config import ReplicationConfig
from idnode.server.mirror import Mirror
from idnode.store import HandleStore
from idnode.store.sqlite import SQLiteStore
from tests.ports import free_ports

from .nodeutil import (
    HOST,
    PREFIX,
    PREFIX_HANDLE,
    TIMEOUT,
    RunningNode,
    add_identities,
    create_node_dir,
    pubkey_value,
    reconfigure,
    running_node,
)

MIRROR_IDENTITY = Identity(PREFIX_HANDLE, 310)


def url(text: str) -> list[HandleValue]:
    return [HandleValue(1, "URL", text.encode())]


@pytest.fixture
def primary_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "primary"
    create_node_dir(directory)
    (port,) = free_ports(1)
    reconfigure(directory, port=port, replication_admins=(MIRROR_IDENTITY,))
    return directory


@pytest.fixture
def mirror_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "mirror"
    asyncio.run(init_node(directory, PREFIX, port=0))
    return directory


@pytest.fixture
def primary(primary_dir: Path, mirror_dir: Path) -> Iterator[RunningNode]:
    with running_node(primary_dir) as node:
        register_mirror(node, mirror_dir)
        yield node


def register_mirror(primary: RunningNode, mirror_dir: Path) -> None:
    """Put the mirror's server key at 310:0.NA/88.118.8 on the primary."""
    key = load_private_key((mirror_dir / "server-key.pem").read_bytes())
    values = primary.get_handle(PREFIX_HANDLE) or ()
    kept = [v for v in values if v.index != 310]
    primary.put_handle(PREFIX_HANDLE, [*kept, pubkey_value(310, key)])


def mirror_credentials(mirror_dir: Path) -> PublicKeyCredentials:
    key = load_private_key((mirror_dir / "server-key.pem").read_bytes())
    return PublicKeyCredentials(MIRROR_IDENTITY.handle, MIRROR_IDENTITY.index, key)


async def snapshot(store: HandleStore) -> dict[str, tuple[HandleValue, ...]]:
    out: dict[str, tuple[HandleValue, ...]] = {}
    after: str | None = None
    while page := await store.scan(after, 500):
        out.update(page)
        after = page[-1][0]
    return out


def primary_snapshot(primary: RunningNode) -> dict[str, tuple[HandleValue, ...]]:
    return primary.call(snapshot(primary.node.store))


async def with_mirror_store(mirror_dir: Path, primary: RunningNode) -> tuple[SQLiteStore, Mirror]:
    store = await SQLiteStore.open(mirror_dir / "mirror-only.db")
    mirror = Mirror(store, HOST, primary.port, mirror_credentials(mirror_dir), timeout=TIMEOUT)
    return store, mirror


# -- step by step -----------------------------------------------------------------------


def test_first_sync_dumps_then_follows_the_log(primary: RunningNode, mirror_dir: Path) -> None:
    client = primary.client(credentials=primary.key_credentials)

    async def scenario() -> None:
        store, mirror = await with_mirror_store(mirror_dir, primary)
        try:
            first = await mirror.sync()
            assert first.dumped > 0 and first.transactions == 0
            assert await snapshot(store) == primary_snapshot(primary)
            assert await store.homed_prefixes() == [PREFIX]

            assert (await mirror.sync()).transactions == 0  # nothing new, no second dump

            await client.create_handle(f"{PREFIX}/new-1", url("https://a/1"))
            await client.create_handle(f"{PREFIX}/new-2", url("https://a/2"))
            await client.modify_values(f"{PREFIX}/new-1", url("https://a/1b"))
            await client.delete_handle(f"{PREFIX}/new-2")
            report = await mirror.sync()
            assert report.dumped == 0
            # The create of new-2 is superseded by its delete; the update carries the state.
            assert report.transactions == 3
            assert await snapshot(store) == primary_snapshot(primary)
            assert await store.get_handle(f"{PREFIX}/new-1") == primary.get_handle(
                f"{PREFIX}/new-1"
            )
        finally:
            await store.close()

    asyncio.run(scenario())


def test_position_survives_a_restart_of_the_mirror(primary: RunningNode, mirror_dir: Path) -> None:
    client = primary.client(credentials=primary.key_credentials)

    async def scenario() -> None:
        store, mirror = await with_mirror_store(mirror_dir, primary)
        await mirror.sync()
        await store.close()
        await client.create_handle(f"{PREFIX}/while-down", url("https://a/down"))
        store, mirror = await with_mirror_store(mirror_dir, primary)
        try:
            report = await mirror.sync()
            assert (report.dumped, report.transactions) == (0, 1)
            assert await store.get_handle(f"{PREFIX}/while-down") is not None
        finally:
            await store.close()

    asyncio.run(scenario())


def test_pruned_log_makes_the_mirror_reload_and_drop_stale_handles(
    primary: RunningNode, mirror_dir: Path
) -> None:
    client = primary.client(credentials=primary.key_credentials)

    async def scenario() -> None:
        store, mirror = await with_mirror_store(mirror_dir, primary)
        try:
            await mirror.sync()
            await store.create_handle(f"{PREFIX}/only-on-mirror", url("https://stale/"))
            await client.create_handle(f"{PREFIX}/after-prune", url("https://a/p"))
            primary.call(primary.node.store.prune_txn_log(time.time_ns() // 1_000_000 + 1))
            report = await mirror.sync()
            assert report.dumped > 0 and report.deleted_after_dump == 1
            assert await store.get_handle(f"{PREFIX}/only-on-mirror") is None
            assert await snapshot(store) == primary_snapshot(primary)
            assert (await mirror.sync()).dumped == 0  # back to following the log
        finally:
            await store.close()

    asyncio.run(scenario())


def test_replication_needs_a_replication_admin(primary: RunningNode, mirror_dir: Path) -> None:
    users = add_identities(primary)

    async def scenario() -> None:
        store = await SQLiteStore.open(mirror_dir / "x.db")
        stranger = users.user_a  # a valid identity, not a replication admin
        try:
            with pytest.raises(InvalidAdmin):
                await Mirror(store, HOST, primary.port, stranger, timeout=TIMEOUT).sync()
        finally:
            await store.close()

    asyncio.run(scenario())
    # Server admins may replicate too, and ask for the next transaction id.
    admin = HandleClient(HOST, primary.port, tcp=True, timeout=TIMEOUT)
    admin.credentials = mirror_credentials(mirror_dir)
    reply = asyncio.run(admin.request(OpCode.GET_NEXT_TXN_ID, HandleRequest(""), admin=True))
    assert isinstance(reply, NextTxnIdBody)
    assert reply.next_txn_id == primary.call(primary.node.store.txn_log_state()).last_txn_id + 1


def test_streams_are_refused_over_udp(primary: RunningNode, mirror_dir: Path) -> None:
    client = HandleClient(
        HOST, primary.port, timeout=TIMEOUT, credentials=mirror_credentials(mirror_dir)
    )
    body = RetrieveTxnRequest(0, 1, 0)
    message = client.build(OpCode.RETRIEVE_TXN_LOG, body)

    async def over_udp() -> None:
        reply = await client.exchange(message, tcp=False)
        answer = client.challenge_answer(message, reply)
        final = await client.exchange(answer, tcp=False)
        assert final.response_code == OperationNotSupported.response_code

    asyncio.run(over_udp())


# -- a mirror node: failover, rejoin, catch up ---------------------------------------------


def wait_for(condition: object, what: str, seconds: float = 20.0) -> float:
    """Poll ``condition()`` until true (bounded); the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if condition():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def test_mirror_node_serves_reads_when_the_primary_dies_and_catches_up(
    primary_dir: Path, mirror_dir: Path
) -> None:
    primary_port = reconfigure(primary_dir).port
    reconfigure(
        mirror_dir,
        replication=ReplicationConfig(
            primary=f"{HOST}:{primary_port}", identity=MIRROR_IDENTITY, interval=0.1
        ),
    )
    handle = f"{PREFIX}/PV-2026-000123"
    with running_node(primary_dir) as primary:
        register_mirror(primary, mirror_dir)
        with running_node(mirror_dir) as mirror:
            assert mirror.node.mirror is not None
            took = wait_for(
                lambda: mirror.get_handle(handle) == primary.get_handle(handle), "first sync"
            )
            print(f"mirror loaded the primary in {took:.2f} s")
            sites = [primary.node.site, mirror.node.site]
            assert [s.is_primary for s in sites] == [True, False]
            primary_site = sites[0]
            client = SiteClient(sites, credentials=primary.key_credentials, timeout=0.3)
            asyncio.run(client.create_handle(f"{PREFIX}/before-kill", url("https://a/b")))
            wait_for(lambda: mirror.get_handle(f"{PREFIX}/before-kill") is not None, "replication")
            with pytest.raises(ServerNotResponsible):  # the mirror itself refuses writes
                mirror_client = mirror.client(credentials=primary.key_credentials)
                asyncio.run(mirror_client.create_handle(f"{PREFIX}/x", url("https://x/")))

    # (The primary stopped with its context above; restart the mirror alone.)
    with running_node(mirror_dir) as mirror:
        client = SiteClient(
            [primary_site, mirror.node.site],
            credentials=PublicKeyCredentials(PREFIX_HANDLE, 300, mirror.admin_key),
            timeout=0.3,
        )
        start = time.monotonic()
        values = asyncio.run(client.resolve(f"{PREFIX}/before-kill"))
        print(f"read through the mirror {time.monotonic() - start:.3f} s after the primary died")
        assert [v.data for v in values] == [b"https://a/b"]
        with pytest.raises(NoPrimaryAvailable):
            asyncio.run(client.create_handle(f"{PREFIX}/during-outage", url("https://a/o")))

        with running_node(primary_dir) as primary:  # the primary rejoins on its port
            writer = primary.client(credentials=primary.key_credentials)
            asyncio.run(writer.create_handle(f"{PREFIX}/after-rejoin", url("https://a/r")))
            took = wait_for(
                lambda: primary_snapshot(primary) == mirror.call(snapshot(mirror.node.store)),
                "catch-up",
            )
            print(f"mirror caught up {took:.2f} s after the write")
            assert mirror.get_handle(f"{PREFIX}/during-outage") is None
