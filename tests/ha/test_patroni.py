"""A node on a Patroni cluster keeps resolving when the PostgreSQL primary dies.

The module's cluster (``ha_cluster``, see conftest: one etcd, two PostgreSQL 15 members under
Patroni, synchronous replication, on 127.0.0.1) serves a node whose database URL names both
members with ``target_session_attrs=read-write``.

* :func:`test_failover_under_load`: one task resolves over UDP and another creates handles
  over TCP while the primary's Patroni and postmaster are killed with SIGKILL (a crash of its
  machine). Patroni promotes the synchronous standby once the leader key expires. Within a
  generous bound, writes must succeed again and reads after them; every create acknowledged
  before, during or after the failover must resolve with its value; and every request must
  have been answered (a write refused during the failover gets an error response, never a
  hang). The measured times are printed (``pytest -s``).
* :func:`test_reads_without_a_primary`: the killed member is brought back (it rejoins as a
  replica), failover is paused (Patroni's maintenance mode) and the primary is killed, so
  there is deterministically no primary: every read is answered (by the standby) and writes
  are refused at once with a clear error; after resuming, the standby is promoted and writes
  succeed.

Every wait is bounded; the cluster is torn down whatever happens (conftest).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from idnode.client import HandleClient
from idnode.deploy.pgha import Cluster
from idnode.errors import HandleError, RemoteError
from idnode.protocol.values import HandleValue
from tests.server.nodeutil import (
    ALL_PERMISSIONS,
    PREFIX,
    PREFIX_HANDLE,
    RunningNode,
    admin_value,
    no_internal_errors,
    running_node,
    text_value,
)

__all__ = ["no_internal_errors"]

# Cluster start-up, two failovers, a rejoin: well under this on the 2-core CI machine.
pytestmark = pytest.mark.timeout(900)

#: How long a failover may take before the test fails (Patroni: ttl 10 s, loop_wait 1 s).
FAILOVER_BOUND_S = 60.0
#: Client timeout: far above any answer time, so that a missing answer means a hang.
CLIENT_TIMEOUT = 15.0
#: Pause between two requests of each load task, and load before the kill.
PAUSE_S = 0.05
WARM_UP_S = 1.0
INITIAL_HANDLES = 10
#: Bound of the load tasks, whatever else happens.
LOAD_BOUND_S = FAILOVER_BOUND_S + 60.0


def url_of(handle: str) -> str:
    return f"https://example.com/{handle}"


def values_of(handle: str) -> list[HandleValue]:
    return [
        text_value(1, "URL", url_of(handle)),
        admin_value(100, ALL_PERMISSIONS, PREFIX_HANDLE, 200),
    ]


def url_in(values: Sequence[HandleValue]) -> str | None:
    urls = [v.data.decode() for v in values if v.type == "URL"]
    return urls[0] if len(urls) == 1 else None


@dataclass(frozen=True)
class Outcome:
    """One request of a load task: when it started and ended, and how it failed (if it did)."""

    started: float
    ended: float
    handle: str
    error: BaseException | None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def unanswered(self) -> bool:
        """No answer came (client timeout, socket error), as opposed to an error response."""
        return self.error is not None and not isinstance(self.error, HandleError)


def clients(node: RunningNode) -> tuple[HandleClient, HandleClient]:
    """(admin over TCP with the admin secret, anonymous reader over UDP)."""
    admin = node.client(node.secret_credentials, timeout=CLIENT_TIMEOUT)
    return admin, node.client(timeout=CLIENT_TIMEOUT)


async def create_all(admin: HandleClient, handles: Sequence[str]) -> None:
    for handle in handles:
        await admin.create_handle(handle, values_of(handle))


async def check_all_resolve(reader: HandleClient, handles: Sequence[str]) -> None:
    """Every handle resolves (over UDP) with its URL."""
    wrong = []
    for handle in handles:
        try:
            found = url_in(await reader.resolve(handle))
        except HandleError as exc:
            wrong.append(f"{handle}: {type(exc).__name__}: {exc}")
            continue
        if found != url_of(handle):
            wrong.append(f"{handle}: URL {found!r}")
    assert not wrong, f"{len(wrong)} of {len(handles)} handles do not resolve: {wrong[:10]}"


async def wait_for_new_primary(cluster: Cluster, old: str, since: float) -> tuple[str, float]:
    """The member that replaced ``old`` as primary and when Patroni reported it."""
    deadline = since + FAILOVER_BOUND_S
    while time.monotonic() < deadline:
        primary = await asyncio.to_thread(cluster.primary)
        if primary not in (None, old):
            return primary, time.monotonic()
        await asyncio.sleep(0.2)
    pytest.fail(
        f"no member replaced the primary {old} within {FAILOVER_BOUND_S:.0f} s\n"
        f"{cluster.status_text()}\n{log_tails(cluster)}"
    )


async def write_until_accepted(admin: HandleClient, handle: str, since: float) -> float:
    """Create ``handle``, retrying while it is refused (the new primary may still be leaving
    recovery when Patroni reports it); when it was acknowledged."""
    deadline = since + FAILOVER_BOUND_S
    while True:
        try:
            await admin.create_handle(handle, values_of(handle))
            return time.monotonic()
        except RemoteError as exc:  # the node's StoreError, as an RC_ERROR response
            if time.monotonic() >= deadline:
                pytest.fail(f"writes still fail {FAILOVER_BOUND_S:.0f} s after the kill: {exc}")
        await asyncio.sleep(0.2)


def log_tails(cluster: Cluster) -> str:
    parts = []
    for name in cluster.member_names:
        log = cluster.member_dir(name) / "patroni.log"
        try:
            lines = log.read_text(errors="replace").splitlines()[-30:]
        except OSError:
            lines = ["(none)"]
        parts.append(f"--- {log}:\n" + "\n".join(lines))
    return "\n".join(parts)


# -- automatic failover under load -----------------------------------------------------------


def test_failover_under_load(ha_cluster: Cluster, ha_node_dir: Path) -> None:
    with running_node(ha_node_dir) as node:
        asyncio.run(_failover_under_load(node, ha_cluster))


async def _failover_under_load(node: RunningNode, cluster: Cluster) -> None:
    admin, reader = clients(node)
    initial = [f"{PREFIX}/HA-{i}" for i in range(INITIAL_HANDLES)]
    await create_all(admin, initial)
    await check_all_resolve(reader, initial)
    acknowledged = list(initial)
    reads: list[Outcome] = []
    writes: list[Outcome] = []
    stop = asyncio.Event()
    hard_stop = time.monotonic() + LOAD_BOUND_S

    def running() -> bool:
        return not stop.is_set() and time.monotonic() < hard_stop

    async def read_load() -> None:
        for n in itertools.count():
            if not running():
                return
            handle, started = initial[n % len(initial)], time.monotonic()
            error: BaseException | None = None
            try:
                found = url_in(await reader.resolve(handle))
                if found != url_of(handle):
                    error = AssertionError(f"wrong URL {found!r}")
            except (HandleError, TimeoutError, OSError) as exc:
                error = exc
            reads.append(Outcome(started, time.monotonic(), handle, error))
            await asyncio.sleep(PAUSE_S)

    async def write_load() -> None:
        for n in itertools.count():
            if not running():
                return
            handle, started = f"{PREFIX}/HA-W-{n}", time.monotonic()
            error: BaseException | None = None
            try:
                await admin.create_handle(handle, values_of(handle))
                acknowledged.append(handle)
            except (HandleError, TimeoutError, OSError) as exc:
                error = exc
            writes.append(Outcome(started, time.monotonic(), handle, error))
            await asyncio.sleep(PAUSE_S)

    load = [asyncio.create_task(read_load()), asyncio.create_task(write_load())]
    try:
        await asyncio.sleep(WARM_UP_S)
        old = await asyncio.to_thread(cluster.primary)
        assert old is not None, cluster.status_text()
        killed_at = time.monotonic()
        killed = await asyncio.to_thread(cluster.kill, old)
        assert killed, f"nothing of {old} was running"
        new, promoted_at = await wait_for_new_primary(cluster, old, killed_at)
        # Load goes on until a write started after the kill was acknowledged and a read
        # started after that succeeded.
        deadline = killed_at + FAILOVER_BOUND_S
        while time.monotonic() < deadline:
            written = [w for w in writes if w.ok and w.started > killed_at]
            if written and any(r.ok and r.started > written[0].ended for r in reads):
                break
            await asyncio.sleep(0.2)
        else:
            refused = [str(w.error) for w in writes if w.started > killed_at][-3:]
            pytest.fail(
                f"no write succeeded within {FAILOVER_BOUND_S:.0f} s of killing {old} "
                f"(last errors: {refused})\n{cluster.status_text()}\n{log_tails(cluster)}"
            )
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*load), 2 * CLIENT_TIMEOUT + 10)

    after = [o for o in reads + writes if o.started > killed_at]
    unanswered = [f"{o.handle}: {type(o.error).__name__}: {o.error}" for o in after if o.unanswered]
    assert not unanswered, f"requests went unanswered during the failover: {unanswered[:5]}"
    wrong_reads = [f"{o.handle}: {o.error}" for o in reads if isinstance(o.error, AssertionError)]
    assert not wrong_reads, f"reads returned wrong data: {wrong_reads[:5]}"

    first_write = next(w for w in writes if w.ok and w.started > killed_at)
    failed_reads = [r for r in reads if r.started > killed_at and not r.ok]
    refused_writes = [w for w in writes if w.started > killed_at and not w.ok]
    read_outage = (
        f"{len(failed_reads)} failed, the last {failed_reads[-1].ended - killed_at:.1f} s after"
        " the kill"
        if failed_reads
        else "none failed (the standby served them until the promotion)"
    )
    print(
        f"\nfailover: killed {old} (pids {killed}); {new} reported primary after "
        f"{promoted_at - killed_at:.1f} s; first acknowledged write after "
        f"{first_write.ended - killed_at:.1f} s ({len(refused_writes)} refused before, e.g. "
        f"{refused_writes[0].error if refused_writes else '-'}); reads after the kill: "
        f"{sum(r.started > killed_at and r.ok for r in reads)} ok, {read_outage}; "
        f"{len(acknowledged)} creates acknowledged in all"
    )

    # Every acknowledged create survived, and the new primary takes writes.
    await check_all_resolve(reader, acknowledged)
    await write_until_accepted(admin, f"{PREFIX}/HA-AFTER", killed_at)
    await check_all_resolve(reader, [f"{PREFIX}/HA-AFTER"])
    assert await asyncio.to_thread(cluster.primary) == new


# -- no primary at all: reads from the standby, writes refused --------------------------------


def test_reads_without_a_primary(ha_cluster: Cluster, ha_node_dir: Path) -> None:
    ha_cluster.up(timeout=180.0)  # the member killed by the previous test rejoins, as a replica
    with running_node(ha_node_dir) as node:
        asyncio.run(_reads_without_a_primary(node, ha_cluster))


async def _reads_without_a_primary(node: RunningNode, cluster: Cluster) -> None:
    admin, reader = clients(node)
    handles = [f"{PREFIX}/HA-P-{i}" for i in range(5)]
    await create_all(admin, handles)
    old = await asyncio.to_thread(cluster.primary)
    assert old is not None, cluster.status_text()
    await asyncio.to_thread(cluster.set_paused, True)
    try:
        killed_at = time.monotonic()
        assert await asyncio.to_thread(cluster.kill, old), f"nothing of {old} was running"
        # Paused, Patroni promotes nobody: the standby alone answers.
        await check_all_resolve(reader, handles)
        assert await reader.resolve(f"{PREFIX}/PV-2026-000123")  # a demo handle, from init
        # The first write may still reach a session of the dead primary that has not yet
        # noticed its death: it fails as a lost connection. That renews the node's pool; from
        # then on a write finds no primary.
        with pytest.raises(RemoteError):
            await admin.create_handle(f"{PREFIX}/HA-P-refused", values_of("refused"))
        started = time.monotonic()
        with pytest.raises(RemoteError, match="no PostgreSQL primary is reachable"):
            await admin.create_handle(f"{PREFIX}/HA-P-refused", values_of("refused"))
        refused_in = time.monotonic() - started
        assert await asyncio.to_thread(cluster.primary) in (None, old)  # nobody promoted
    finally:
        await asyncio.to_thread(cluster.set_paused, False)
    new, promoted_at = await wait_for_new_primary(cluster, old, killed_at)
    accepted_at = await write_until_accepted(admin, f"{PREFIX}/HA-P-after", killed_at)
    await check_all_resolve(reader, [*handles, f"{PREFIX}/HA-P-after"])
    print(
        f"\nno primary: reads served by the standby, a write refused in {refused_in:.2f} s; "
        f"after resuming, {new} primary {promoted_at - killed_at:.1f} s after the kill, "
        f"writes accepted after {accepted_at - killed_at:.1f} s"
    )
