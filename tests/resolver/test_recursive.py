"""The recursive resolver against a real three-level topology on 127.0.0.1.

* **root** homes ``0.NA`` and holds ``0.NA/88.118`` (HS_SITE of the secondary node);
* **secondary** homes ``88.118`` and holds ``0.NA/88.118.8`` (HS_SITE of the enterprise
  node), plus the odd prefixes the error tests need;
* **enterprise** homes ``88.118.8`` with the demo handles.

The nodes do not send 303 referrals (the server has no delegation answers yet), so each
level's prefix handle lives on its parent's node, which the server already answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import httpx
import pytest
from click.testing import CliRunner

from idnode.bootstrap import init_node
from idnode.cli import main as cli_main
from idnode.errors import HandleNotFound, ServerNotResponsible
from idnode.protocol.bodies import ReferralBody, ResolutionRequest
from idnode.protocol.codes import OpCode, OpFlag, ResponseCode
from idnode.protocol.message import Message
from idnode.protocol.types.hs_site import (
    Interface,
    InterfaceType,
    ServerInfo,
    SiteInfo,
    TransportProtocol,
    address_to_bytes,
)
from idnode.protocol.values import HandleValue
from idnode.resolver import (
    HandleClientUpstream,
    Hop,
    RecursionLimitExceeded,
    ReferralLoop,
    Resolver,
    ServerAddress,
    TTLCache,
    UpstreamUnavailable,
    root_site,
)
from idnode.server.negotiation import response_to
from tests.ports import free_ports
from tests.server.nodeutil import RunningNode, running_node

TARGET = "88.118.8/PV-2026-000123"
TARGET_URL = b"https://pv.example.com/modules/PV-2026-000123"


@dataclass
class Topology:
    root: RunningNode
    secondary: RunningNode
    enterprise: RunningNode
    dead_port: int

    def resolver(self, **kwargs: object) -> Resolver:
        kwargs.setdefault("timeout", 2.0)
        return Resolver([f"127.0.0.1:{self.root.port}"], **kwargs)  # type: ignore[arg-type]

    def name(self, port: int) -> str:
        names = {self.root.port: "root", self.secondary.port: "secondary"}
        return names.get(port, "enterprise" if port == self.enterprise.port else str(port))


def site_value(site: SiteInfo, vtype: str = "HS_SITE", index: int = 1) -> HandleValue:
    return HandleValue(index, vtype, site.to_bytes(), timestamp=int(time.time()))


def text(index: int, vtype: str, data: str) -> HandleValue:
    return HandleValue(index, vtype, data.encode(), timestamp=int(time.time()))


def fix_own_site(node: RunningNode, prefix: str) -> None:
    """Replace the HS_SITE written at init (port 0) by the running node's real one."""
    record = node.get_handle(f"0.NA/{prefix}")
    assert record is not None
    kept = [v for v in record if v.index != 1]
    node.put_handle(f"0.NA/{prefix}", [site_value(node.node.site), *kept])


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    base = tmp_path_factory.mktemp("topology")

    async def init_all() -> None:
        await init_node(base / "root", "0.NA", port=0)
        await init_node(base / "secondary", "88.118", port=0)
        await init_node(base / "enterprise", "88.118.8", port=0, demo=True)

    asyncio.run(init_all())
    with contextlib.ExitStack() as stack:
        root = stack.enter_context(running_node(base / "root"))
        secondary = stack.enter_context(running_node(base / "secondary"))
        enterprise = stack.enter_context(running_node(base / "enterprise"))
        fix_own_site(root, "0.NA")
        fix_own_site(secondary, "88.118")
        fix_own_site(enterprise, "88.118.8")
        root.put_handle("0.NA/88.118", [site_value(secondary.node.site)])
        secondary.put_handle("0.NA/88.118.8", [site_value(enterprise.node.site)])
        # 88.118.5 points at the root, which does not serve it: 301.
        secondary.put_handle("0.NA/88.118.5", [site_value(root.node.site)])
        # 88.118.6 points at a port where nothing listens.
        (dead_port,) = free_ports(1)
        secondary.put_handle("0.NA/88.118.6", [site_value(root_site("127.0.0.1", dead_port))])
        # 88.118.9 goes through service handles that name each other across two nodes.
        secondary.put_handle("0.NA/88.118.9", [text(1, "HS_SERV", "88.118.8/LOOP-SERV")])
        enterprise.put_handle("88.118.8/LOOP-SERV", [text(1, "HS_SERV", "88.118/LOOP-SERV")])
        secondary.put_handle("88.118/LOOP-SERV", [text(1, "HS_SERV", "88.118.8/LOOP-SERV")])
        # 88.118.4 is served through a (well-formed) service handle held by the secondary.
        secondary.put_handle("0.NA/88.118.4", [text(1, "HS_SERV", "88.118/SERV-ENT")])
        secondary.put_handle("88.118/SERV-ENT", [site_value(enterprise.node.site)])
        yield Topology(root, secondary, enterprise, dead_port)
        for node in (root, secondary, enterprise):
            assert not node.internal_errors


def resolve(
    resolver: Resolver, handle: str, types: tuple[str, ...] = ()
) -> tuple[tuple[HandleValue, ...], list[Hop]]:
    hops: list[Hop] = []
    values = asyncio.run(resolver.resolve(handle, types, trace=hops.append))
    return values, hops


def test_resolves_through_root_secondary_enterprise(topology: Topology) -> None:
    values, hops = resolve(topology.resolver(), TARGET)
    assert next(v.data for v in values if v.type == "URL") == TARGET_URL
    assert not any(v.type == "INTERNAL.COST" for v in values)  # not public
    assert [(h.handle, topology.name(h.address.port), h.response_code) for h in hops] == [
        ("0.NA/88", "root", ResponseCode.HANDLE_NOT_FOUND),
        ("0.NA/88.118", "root", ResponseCode.SUCCESS),
        ("0.NA/88.118.8", "secondary", ResponseCode.SUCCESS),
        (TARGET, "enterprise", ResponseCode.SUCCESS),
    ]
    assert all(h.address.host == "127.0.0.1" and not h.address.tcp for h in hops)


def test_type_filter_and_prefix_handles(topology: Topology) -> None:
    resolver = topology.resolver()
    values, _ = resolve(resolver, TARGET, ("URL",))
    assert [v.type for v in values] == ["URL"]
    values, hops = resolve(resolver, "88.118.8", ("HS_SITE",))  # no slash: 0.NA/88.118.8
    assert SiteInfo.from_bytes(values[0].data) == topology.enterprise.node.site
    # The sites were cached by the first resolution; only the new query goes out.
    assert [(h.handle, topology.name(h.address.port)) for h in hops] == [
        ("0.NA/88.118.8", "secondary")
    ]


def test_root_handle_and_sites_for(topology: Topology) -> None:
    resolver = topology.resolver()
    values, hops = resolve(resolver, "0.NA", ("HS_SITE",))  # 0.NA/0.NA, asked at the root
    assert SiteInfo.from_bytes(values[0].data) == topology.root.node.site
    assert [topology.name(h.address.port) for h in hops] == ["root"]
    sites = asyncio.run(resolver.sites_for(TARGET))
    assert sites == (topology.enterprise.node.site,)


class RecordingUpstream:
    """A swapped-in transport: the default one, recording where each request went."""

    def __init__(self) -> None:
        self.inner = HandleClientUpstream(timeout=2.0)
        self.sent: list[tuple[ServerAddress, str]] = []

    async def exchange(self, address: ServerAddress, request: Message) -> Message:
        assert isinstance(request.body, ResolutionRequest)
        self.sent.append((address, request.body.handle))
        return await self.inner.exchange(address, request)


def test_the_upstream_is_swappable(topology: Topology) -> None:
    upstream = RecordingUpstream()
    resolver = Resolver([topology.root.node.site], upstream=upstream)
    values, hops = resolve(resolver, TARGET)
    assert values and upstream.sent == [(h.address, h.handle) for h in hops]


def test_second_resolve_is_served_from_the_cache_until_expiry(topology: Topology) -> None:
    offset = [0.0]
    resolver = topology.resolver(clock=lambda: time.time() + offset[0])
    first, hops = resolve(resolver, TARGET)
    assert len(hops) == 4 and resolver.upstream_requests == 4
    again, hops = resolve(resolver, TARGET)
    assert again == first and hops == [] and resolver.upstream_requests == 4
    assert resolver.cache.stats.hits >= 1
    offset[0] = 86400 + 1  # past the default TTL of every value
    _, hops = resolve(resolver, TARGET)
    assert len(hops) == 4 and resolver.upstream_requests == 8


def test_not_found_is_cached_negatively(topology: Topology) -> None:
    now = [time.time()]
    resolver = topology.resolver(clock=lambda: now[0], cache=TTLCache(negative_ttl=30))
    for _ in range(2):
        with pytest.raises(HandleNotFound):
            resolve(resolver, "88.118.8/NO-SUCH-THING")
        assert resolver.upstream_requests == 4  # the second time: from the cache
    now[0] += 31
    with pytest.raises(HandleNotFound):
        resolve(resolver, "88.118.8/NO-SUCH-THING")
    assert resolver.upstream_requests == 5  # only the handle again: its sites are still cached


def test_prefix_nobody_registered(topology: Topology) -> None:
    start = time.monotonic()
    with pytest.raises(HandleNotFound, match=r"prefix 88\.999 is not registered"):
        resolve(topology.resolver(), "88.999/X")
    assert time.monotonic() - start < 2


def test_prefix_served_by_a_dead_server(topology: Topology) -> None:
    resolver = topology.resolver(timeout=0.3, retries=0)
    start = time.monotonic()
    hops: list[Hop] = []
    with pytest.raises(UpstreamUnavailable, match=str(topology.dead_port)):
        asyncio.run(resolver.resolve("88.118.6/X", trace=hops.append))
    assert time.monotonic() - start < 3
    dead = [h for h in hops if h.address.port == topology.dead_port]
    assert [h.address.tcp for h in dead] == [False, True]  # UDP, then the TCP fallback
    assert all(h.response_code is None and h.error for h in dead)


def test_server_not_responsible(topology: Topology) -> None:
    with pytest.raises(ServerNotResponsible):
        resolve(topology.resolver(), "88.118.5/X")


def test_service_handle(topology: Topology) -> None:
    # 0.NA/88.118.4 says HS_SERV 88.118/SERV-ENT, whose HS_SITE is the enterprise node, which
    # does not serve 88.118.4: the resolver gets there through the service handle, then 301.
    hops: list[Hop] = []
    with pytest.raises(ServerNotResponsible):
        asyncio.run(topology.resolver().resolve("88.118.4/ANY", trace=hops.append))
    assert [(h.handle, topology.name(h.address.port), h.response_code) for h in hops][-2:] == [
        ("88.118/SERV-ENT", "secondary", ResponseCode.SUCCESS),
        ("88.118.4/ANY", "enterprise", ResponseCode.SERVER_NOT_RESP),
    ]


def test_service_handle_loop_between_two_nodes(topology: Topology) -> None:
    start = time.monotonic()
    with pytest.raises(ReferralLoop, match="service handle loop"):
        resolve(topology.resolver(), "88.118.9/X")
    assert time.monotonic() - start < 2


def test_recursion_limit(topology: Topology) -> None:
    with pytest.raises(RecursionLimitExceeded, match="more than 3"):
        resolve(topology.resolver(max_depth=3), TARGET)


def test_concurrent_identical_resolutions_are_coalesced(topology: Topology) -> None:
    resolver = topology.resolver()
    hops: list[Hop] = []

    async def many() -> list[tuple[HandleValue, ...]]:
        tasks = [resolver.resolve(TARGET, trace=hops.append) for _ in range(8)]
        return await asyncio.gather(*tasks)

    results = asyncio.run(many())
    assert all(r == results[0] for r in results)
    assert resolver.upstream_requests == 4  # one per level, not 8 per level
    at_target = [h for h in hops if h.handle == TARGET]
    assert len([h for h in at_target if not h.shared]) == 1


def test_root_configuration() -> None:
    with pytest.raises(ValueError, match="root"):
        Resolver([])
    with pytest.raises(ValueError, match="HOST:PORT"):
        Resolver(["localhost"])
    site = root_site("127.0.0.1", 2641)
    assert Resolver([("127.0.0.1", 2641)]).root_sites == (site,)
    assert Resolver([site]).root_sites == Resolver(["127.0.0.1:2641"]).root_sites


# -- referrals -------------------------------------------------------------------------------
# The node does not answer 302/303 yet, so these tests put a small referral-speaking peer on
# 127.0.0.1 (real UDP, real protocol messages) in front of the real nodes.


class ReferralPeer(asyncio.DatagramProtocol):
    """Answers every resolution request with ``code`` and a referral body of ``values``."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.values: tuple[HandleValue, ...] = ()
        self.asked: list[str] = []
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = Message.decode(data)
        assert isinstance(request.body, ResolutionRequest) and self._transport is not None
        self.asked.append(request.body.handle)
        body = ReferralBody(request.body.handle, self.values)
        reply = response_to(request, self.code, body, site_info_serial=1)
        self._transport.sendto(reply.encode(), addr)


@contextlib.asynccontextmanager
async def referral_peer(code: int) -> AsyncIterator[tuple[ReferralPeer, SiteInfo]]:
    loop = asyncio.get_running_loop()
    transport, peer = await loop.create_datagram_endpoint(
        lambda: ReferralPeer(code), local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    interfaces = (Interface(InterfaceType.QUERY, TransportProtocol.UDP, port),)
    site = SiteInfo(servers=(ServerInfo(1, address_to_bytes("127.0.0.1"), b"", interfaces),))
    try:
        yield peer, site
    finally:
        transport.close()


@pytest.mark.parametrize(
    ("code", "vtype"),
    [
        (ResponseCode.PREFIX_REFERRAL, "HS_SITE.PREFIX"),
        (ResponseCode.SERVICE_REFERRAL, "HS_SITE"),
    ],
)
def test_referrals_are_followed(topology: Topology, code: int, vtype: str) -> None:
    """A root that refers every prefix handle to the real root: the walk goes on from there."""

    async def run() -> tuple[tuple[HandleValue, ...], list[Hop], list[str]]:
        async with referral_peer(code) as (peer, site):
            peer.values = (site_value(topology.root.node.site, vtype),)
            hops: list[Hop] = []
            values = await Resolver([site]).resolve(TARGET, trace=hops.append)
            return values, hops, peer.asked

    values, hops, asked = asyncio.run(run())
    assert next(v.data for v in values if v.type == "URL") == TARGET_URL
    assert asked == ["0.NA/88", "0.NA/88.118"]
    assert [(h.handle, topology.name(h.address.port), h.response_code) for h in hops] == [
        ("0.NA/88", str(hops[0].address.port), code),
        ("0.NA/88", "root", ResponseCode.HANDLE_NOT_FOUND),
        ("0.NA/88.118", str(hops[0].address.port), code),
        ("0.NA/88.118", "root", ResponseCode.SUCCESS),
        ("0.NA/88.118.8", "secondary", ResponseCode.SUCCESS),
        (TARGET, "enterprise", ResponseCode.SUCCESS),
    ]


def test_referral_loop_between_two_servers() -> None:
    """Two servers each saying the other serves the prefix: a clean error, at once."""

    async def run() -> list[Hop]:
        async with (
            referral_peer(ResponseCode.PREFIX_REFERRAL) as (a, site_a),
            referral_peer(ResponseCode.PREFIX_REFERRAL) as (b, site_b),
        ):
            a.values = (site_value(site_b, "HS_SITE.PREFIX"),)
            b.values = (site_value(site_a, "HS_SITE.PREFIX"),)
            hops: list[Hop] = []
            with pytest.raises(ReferralLoop, match="lead back"):
                await Resolver([site_a], timeout=1.0).resolve("20/X", trace=hops.append)
            return hops

    start = time.monotonic()
    hops = asyncio.run(run())
    assert time.monotonic() - start < 2
    assert [h.response_code for h in hops] == [ResponseCode.PREFIX_REFERRAL] * 2


def test_referral_without_sites() -> None:
    async def run() -> None:
        async with referral_peer(ResponseCode.PREFIX_REFERRAL) as (_, site):
            with pytest.raises(ServerNotResponsible, match="no usable site"):
                await Resolver([site], timeout=1.0).resolve("20/X")

    asyncio.run(run())


def test_cli_resolve_from_the_root_with_trace(topology: Topology) -> None:
    """``idnode resolve --root ... --trace`` shows the walk root → secondary → enterprise."""
    root = f"{topology.root.host}:{topology.root.port}"
    result = CliRunner().invoke(
        cli_main, ["resolve", "88.118.8/PV-2026-000123", "--root", root, "--trace", "--type", "URL"]
    )
    assert result.exit_code == 0, result.output
    assert "https://pv.example.com/modules/PV-2026-000123" in result.stdout
    hops = [line.split() for line in result.stderr.splitlines()[1:]]
    asked = [(hop[0], hop[2]) for hop in hops]
    assert asked[-1] == (
        "88.118.8/PV-2026-000123",
        f"{topology.enterprise.host}:{topology.enterprise.port}/udp",
    )
    assert ("0.NA/88.118.8", f"{topology.secondary.host}:{topology.secondary.port}/udp") in asked
    assert all(hop[3] == "1" for hop in hops if hop[0] in ("0.NA/88.118.8", "0.NA/88.118"))
    assert CliRunner().invoke(cli_main, ["resolve", "x/y", "--trace"]).exit_code == 2


def test_recursive_node_answers_for_the_hierarchy(topology: Topology, tmp_path: Path) -> None:
    """A node configured with ``roots`` resolves, for requests with REC, the handles it does
    not serve: over the native protocol and the HTTP API. Without REC it answers 301."""
    asyncio.run(init_node(tmp_path, "99.1", port=0))
    config = tmp_path / "idnode.toml"
    root = f"127.0.0.1:{topology.root.port}"
    config.write_text(config.read_text() + f'roots = ["{root}"]\n')
    with running_node(tmp_path) as recursive:
        client = recursive.client()
        values = asyncio.run(client.resolve("88.118.8/PV-2026-000123", types=["URL"]))
        assert [v.data for v in values] == [b"https://pv.example.com/modules/PV-2026-000123"]
        without_rec = client.build(
            OpCode.RESOLUTION, ResolutionRequest("88.118.8/PV-2026-000123"), OpFlag.PO
        )
        reply = asyncio.run(client.exchange(without_rec, False))
        assert reply.response_code == ResponseCode.SERVER_NOT_RESP
        with pytest.raises(HandleNotFound):
            asyncio.run(client.resolve("88.118.8/NO-SUCH-THING"))
        url = f"http://127.0.0.1:{recursive.node.http_port}/api/handles/88.118.8/PCB-7731-A"
        with httpx.Client(timeout=5) as http:
            body = http.get(url, params={"type": "URL"}).json()
        assert body["responseCode"] == 1
        assert body["values"][0]["data"]["value"] == "https://ems.example.com/boards/PCB-7731-A"
        # The node's own prefix is still answered from its own store.
        asyncio.run(client.resolve("0.NA/99.1"))
        assert not recursive.internal_errors


def test_a_node_refers_to_the_node_it_delegated_to(topology: Topology) -> None:
    """The secondary holds 0.NA/88.118.8 (the enterprise's site): asked directly for a
    handle under 88.118.8 it answers 303 with that site, unless the client says DNRF or is
    older than 2.5 (then 301)."""
    client = topology.secondary.client()
    handle = "88.118.8/PV-2026-000123"
    request = client.build(OpCode.RESOLUTION, ResolutionRequest(handle), OpFlag.PO)
    reply = asyncio.run(client.exchange(request, False))
    assert reply.response_code == ResponseCode.PREFIX_REFERRAL
    assert isinstance(reply.body, ReferralBody)
    (site_value,) = reply.body.values or ()
    assert site_value.type == "HS_SITE"
    assert SiteInfo.from_bytes(site_value.data) == topology.enterprise.node.site
    no_referral = client.build(
        OpCode.RESOLUTION, ResolutionRequest(handle), OpFlag.PO | OpFlag.DNRF
    )
    assert asyncio.run(client.exchange(no_referral, False)).response_code == 301
    old = request.replace(version=(2, 1), suggested_version=(0, 0))
    assert asyncio.run(client.exchange(old, False)).response_code == 301
