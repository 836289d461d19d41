"""The demo topology (:mod:`idnode.demo`): every role of the hierarchy on 127.0.0.1.

One topology serves the whole module (eight nodes on their own event loop in a thread); the
failover test stops enterprise-a and starts it again before it ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from idnode.client import HandleClient, NoPrimaryAvailable, SiteClient
from idnode.demo import (
    HOSTED_HANDLES,
    SITE_B_HANDLES,
    pv_chain,
    pv_module,
)
from idnode.errors import HandleNotFound, ServerNotResponsible
from idnode.protocol.values import HandleValue
from idnode.resolver import Hop
from idnode.resolver.recursive import ReferralLoop
from idnode.server.node import Node
from tests.topology import HOST, TIMEOUT, Topology, running_topology

PV = "88.118.8/PV-2026-000123"


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with running_topology(tmp_path_factory.mktemp("topology")) as topology:
        yield topology


def wait_for(condition: Any, what: str, seconds: float = 20.0) -> float:
    """Poll ``condition()`` until true (bounded in time); the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if condition():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def urls(values: tuple[HandleValue, ...] | list[HandleValue]) -> list[bytes]:
    return [v.data for v in values if v.type == "URL"]


# -- the walk --------------------------------------------------------------------------------------


def test_resolution_travels_root_secondary_enterprise(topology: Topology) -> None:
    hops: list[Hop] = []
    values = asyncio.run(topology.resolver().resolve(PV, ["URL"], trace=hops.append))
    assert urls(values) == [b"https://pv.example.com/modules/PV-2026-000123"]
    walk = [(hop.handle, hop.address.port) for hop in hops if hop.response_code == 1]
    assert walk == [
        ("0.NA/88.118", topology.port("root")),
        ("0.NA/88.118.8", topology.port("secondary-a")),
        (PV, topology.port("enterprise-a")),
    ]


def test_the_two_server_site_answers_by_hash(topology: Topology) -> None:
    hops: list[Hop] = []
    resolver = topology.resolver()
    for handle, url in SITE_B_HANDLES.items():
        values = asyncio.run(resolver.resolve(handle, trace=hops.append))
        assert urls(values) == [url.encode()]
    answered = {hop.address.port for hop in hops if hop.handle in SITE_B_HANDLES}
    b1, b2 = topology.port("enterprise-b1"), topology.port("enterprise-b2")
    assert answered == {b1, b2}  # the identifiers are spread over both servers
    shares: dict[int, set[str]] = {b1: set(), b2: set()}
    for handle in SITE_B_HANDLES:
        for port in (b1, b2):
            client = HandleClient(HOST, port, timeout=TIMEOUT)
            try:
                asyncio.run(client.resolve(handle))
                shares[port].add(handle)
            except ServerNotResponsible:
                pass
    assert shares[b1].isdisjoint(shares[b2])
    assert shares[b1] | shares[b2] == set(SITE_B_HANDLES)


EVERY_KIND = [
    (PV, b"https://pv.example.com/modules/PV-2026-000123"),  # an enterprise node's identifier
    *((h, u.encode()) for h, u in HOSTED_HANDLES.items()),  # hosted on a secondary node
    *((h, u.encode()) for h, u in SITE_B_HANDLES.items()),  # on a two-server site
    ("0.NA/88.118.8", None),  # a prefix handle held by a secondary node
    ("0.NA/88.119", None),  # a prefix handle held by the root
]


@pytest.mark.parametrize("transport", ["udp", "tcp", "http"])
def test_every_kind_of_identifier_through_the_recursive_node(
    topology: Topology, transport: str
) -> None:
    recursive = topology.specs["recursive"]
    for handle, url in EVERY_KIND:
        if transport == "http":
            reply = httpx.get(
                f"http://{HOST}:{recursive.http_port}/api/handles/{handle}", timeout=TIMEOUT
            )
            assert reply.status_code == 200, (handle, reply.text)
            body = reply.json()
            found = [v["data"]["value"].encode() for v in body["values"] if v["type"] == "URL"]
            types = {v["type"] for v in body["values"]}
        else:
            client = HandleClient(HOST, recursive.port, tcp=transport == "tcp", timeout=TIMEOUT)
            values = asyncio.run(client.resolve(handle))
            found, types = urls(values), {v.type for v in values}
        if url is None:
            assert "HS_SITE" in types, handle
        else:
            assert found == [url], handle


def test_missing_identifier_through_the_recursive_node(topology: Topology) -> None:
    client = HandleClient(HOST, topology.port("recursive"), timeout=TIMEOUT)
    with pytest.raises(HandleNotFound):
        asyncio.run(client.resolve("88.119.1/NO-SUCH-PART"))


# -- caching ----------------------------------------------------------------------------------


def test_cache_hit_and_expiry_through_injected_time(topology: Topology) -> None:
    now = [1_000_000.0]
    resolver = topology.resolver(clock=lambda: now[0])

    async def resolve() -> list[tuple[str, int]]:
        hops: list[Hop] = []
        await resolver.resolve(PV, trace=hops.append)
        return [(hop.handle, hop.address.port) for hop in hops]

    first = asyncio.run(resolve())
    assert {port for _, port in first} == {
        topology.port(name) for name in ("root", "secondary-a", "enterprise-a")
    }
    assert asyncio.run(resolve()) == []  # all from the cache
    now[0] += 86_400 + 1  # past every TTL (a day)
    assert asyncio.run(resolve()) == first


# -- limits -----------------------------------------------------------------------------------


def test_a_referral_loop_ends_with_an_error(topology: Topology) -> None:
    """``0.NA/77`` on the root names the root itself: asking it for ``77/x`` refers back."""
    root = topology.nodes["root"]
    site = HandleValue(1, "HS_SITE", root.dispatcher.node.site_data)
    topology.call(root.store.create_handle("0.NA/77", [site], overwrite=True))
    start = time.monotonic()
    with pytest.raises(ReferralLoop):
        asyncio.run(topology.resolver().resolve("77/x"))
    client = HandleClient(HOST, topology.port("recursive"), timeout=TIMEOUT, retries=0)
    reply = asyncio.run(client.exchange(client.build(1, _resolution("77/x"), 0x10000000), False))
    assert reply.response_code != 1
    print(
        f"loop detected in {time.monotonic() - start:.3f} s, recursive node answered "
        f"{reply.response_code}"
    )


def _resolution(handle: str) -> Any:
    from idnode.protocol.bodies import ResolutionRequest

    return ResolutionRequest(handle)


# -- failover (stops and restarts enterprise-a) -------------------------------------------


def test_mirror_serves_reads_when_the_primary_dies_then_catches_up(topology: Topology) -> None:
    mirror = topology.nodes["mirror-a"]
    sites = [topology.nodes["enterprise-a"].site, mirror.site]
    writer = SiteClient(sites, credentials=topology.credentials("enterprise-a"), timeout=0.3)
    fresh = "88.118.8/MODULE-LOT-LATE"
    asyncio.run(writer.create_handle(fresh, [HandleValue(1, "URL", b"https://pv/late")]))
    wait_for(lambda: topology.call(mirror.store.get_handle(fresh)) is not None, "replication")

    topology.stop("enterprise-a")
    recursive = HandleClient(HOST, topology.port("recursive"), timeout=TIMEOUT)
    start = time.monotonic()
    values = asyncio.run(recursive.resolve(fresh))  # not cached: asked of the mirror
    print(f"read through the mirror {time.monotonic() - start:.3f} s after the primary died")
    assert urls(values) == [b"https://pv/late"]
    with pytest.raises(NoPrimaryAvailable):
        asyncio.run(writer.create_handle("88.118.8/LOST", [HandleValue(1, "URL", b"x")]))
    with pytest.raises(ServerNotResponsible):
        direct = HandleClient(
            HOST, topology.port("mirror-a"), credentials=topology.credentials("enterprise-a")
        )
        asyncio.run(direct.create_handle("88.118.8/LOST", [HandleValue(1, "URL", b"x")]))

    topology.start("enterprise-a")
    rejoined = "88.118.8/AFTER-REJOIN"
    asyncio.run(writer.create_handle(rejoined, [HandleValue(1, "URL", b"https://pv/r")]))
    primary = topology.nodes["enterprise-a"]

    def same() -> bool:
        return topology.call(_snapshot(primary)) == topology.call(_snapshot(mirror))

    took = wait_for(same, "catch-up")
    print(f"mirror caught up {took:.2f} s after the primary rejoined")
    assert topology.call(mirror.store.get_handle("88.118.8/LOST")) is None


async def _snapshot(node: Node) -> dict[str, tuple[HandleValue, ...]]:
    out: dict[str, tuple[HandleValue, ...]] = {}
    after: str | None = None
    while page := await node.store.scan(after, 500):
        out.update(page)
        after = page[-1][0]
    return out


# -- the PV supply chain across enterprises ---------------------------------------------------


def test_tracing_a_module_reaches_the_other_enterprise(topology: Topology) -> None:
    """The module maker's node (enterprise-a) traces a module up to the polysilicon lot of the
    wafer maker, whose prefix 88.118.9 is hosted on secondary-a: through its resolver."""
    module = pv_module()
    chain = {i.handle: i for i in pv_chain()}
    http = topology.specs["enterprise-a"].http_port
    reply = httpx.get(
        f"http://{HOST}:{http}/api/trace/{module}",
        params={"direction": "up", "depth": "6"},
        timeout=TIMEOUT,
    )
    assert reply.status_code == 200, reply.text
    handles = {node["handle"] for node in reply.json()["nodes"]}
    kinds = {chain[h].template.id.rsplit("_", 1)[-1] for h in handles if h in chain}
    assert kinds == {"MODULE", "CELL", "WAFER", "INGOT", "POLYSILICON"}
    assert any(h.startswith("88.118.9/PS") for h in handles)
