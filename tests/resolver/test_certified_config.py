"""Certified resolution configured on a recursive node (``[resolver] certified = true`` with the
root's key) and asked for on the command line (``idnode resolve --certified``), in the demo
topology (:mod:`idnode.demo`: eight real nodes on 127.0.0.1). A forwarding relay that alters
answers (tests/server/test_certified.py) is put in front of enterprise-a by pointing the
delegation of 88.118.8 at it: the recursive node then refuses what it relays, while a resolver
that does not ask for certified answers is fooled.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from idnode.cli import main
from idnode.client import HandleClient
from idnode.demo import HOSTED_HANDLES, SITE_B_HANDLES
from idnode.errors import HandleError
from idnode.protocol.codes import ResponseCode
from idnode.protocol.types.hs_site import (
    Interface,
    InterfaceType,
    SiteInfo,
    TransportProtocol,
    address_to_bytes,
)
from idnode.protocol.values import HandleValue
from idnode.resolver import Resolver
from idnode.server.config import NodeConfig, ResolverConfig
from tests.server.test_certified import Relay, alter_url, passthrough
from tests.topology import HOST, TIMEOUT, Topology, running_topology

PV = "88.118.8/PV-2026-000123"
PV_URL = b"https://pv.example.com/modules/PV-2026-000123"
ALTERED = b"https://pv.examp1e.com/modules/PV-2026-000123"


def forget(topology: Topology) -> None:
    """Empty the recursive node's cache (a test changes a delegation)."""
    resolver = topology.nodes["recursive"].dispatcher.resolver
    assert resolver is not None
    resolver.cache.purge(float("inf"))


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    directory = tmp_path_factory.mktemp("certified-topology")
    with running_topology(directory) as topology:
        # The demo's recursive node resolves certified, trusting the root's server key.
        settings = NodeConfig.load(topology.specs["recursive"].config_path).resolver
        assert settings is not None and settings.certified and settings.root_keys
        yield topology


def urls(values: tuple[HandleValue, ...] | list[HandleValue]) -> list[bytes]:
    return [v.data for v in values if v.type == "URL"]


# -- the configuration --------------------------------------------------------------------------


def test_resolver_table_round_trips_and_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "idnode.toml"
    settings = ResolverConfig(certified=True, root_keys=(("127.0.0.1:2641", "root.pub.pem"),))
    config = NodeConfig(directory=tmp_path, roots=("127.0.0.1:2641",), resolver=settings)
    path.write_text(config.dump())
    assert 'root_keys = {"127.0.0.1:2641" = "root.pub.pem"}' in path.read_text()
    assert NodeConfig.load(path) == dataclasses.replace(config, directory=tmp_path.resolve())
    head = '[node]\nroots = ["127.0.0.1:2641", "127.0.0.2:2641"]\n[resolver]\n'
    cases = {
        'certified = true\nroot_keys = {"127.0.0.1:2641" = "a.pem"}\n': "no key for the roots",
        'root_keys = {"127.0.0.9:2641" = "a.pem"}\n': "not in roots",
        'certified = "yes"\n': "true or false",
        "checked = true\n": "unknown settings",
        'root_keys = ["a.pem"]\n': "root_keys must be a table",
    }
    for text, message in cases.items():
        path.write_text(head + text)
        with pytest.raises(ValueError, match=message):
            NodeConfig.load(path)
    path.write_text("[node]\n[resolver]\ncertified = true\n")
    with pytest.raises(ValueError, match="certified needs roots"):
        NodeConfig.load(path)


def test_a_root_key_file_that_is_not_a_key_stops_the_node(tmp_path: Path) -> None:
    (tmp_path / "root.pub.pem").write_text("not a key\n")
    settings = ResolverConfig(certified=True, root_keys=(("127.0.0.1:9", "root.pub.pem"),))
    config = NodeConfig(directory=tmp_path, roots=("127.0.0.1:9",), resolver=settings)
    from idnode.server.node import recursive_resolver

    with pytest.raises(ValueError, match=r"\[resolver\] cannot read the public key"):
        recursive_resolver(config)


# -- the certified recursive node -----------------------------------------------------------------

EVERY_KIND = [
    (PV, PV_URL),  # an enterprise node's identifier
    *((h, u.encode()) for h, u in HOSTED_HANDLES.items()),  # hosted on a secondary node
    *((h, u.encode()) for h, u in SITE_B_HANDLES.items()),  # on a two-server site
    ("0.NA/88.118.8", None),  # a prefix handle held by a secondary node
    ("0.NA/88.119", None),  # a prefix handle held by the root
]


@pytest.mark.parametrize("transport", ["udp", "tcp", "http"])
def test_the_certified_recursive_node_resolves_every_kind(
    topology: Topology, transport: str
) -> None:
    resolver = topology.nodes["recursive"].dispatcher.resolver
    assert resolver is not None and resolver.certified
    forget(topology)
    recursive = topology.specs["recursive"]
    for handle, url in EVERY_KIND:
        if transport == "http":
            reply = httpx.get(
                f"http://{HOST}:{recursive.http_port}/api/handles/{handle}", timeout=TIMEOUT
            )
            assert reply.status_code == 200, (handle, reply.text)
            body = reply.json()["values"]
            found = [v["data"]["value"].encode() for v in body if v["type"] == "URL"]
            types = {v["type"] for v in body}
        else:
            client = HandleClient(HOST, recursive.port, tcp=transport == "tcp", timeout=TIMEOUT)
            values = asyncio.run(client.resolve(handle))
            found, types = urls(values), {v.type for v in values}
        if url is None:
            assert "HS_SITE" in types, handle
        else:
            assert found == [url], handle


def relay_site(topology: Topology, relay: Relay) -> SiteInfo:
    """enterprise-a's HS_SITE (its key) with its address moved to the relay."""
    site = topology.nodes["enterprise-a"].site
    interfaces = (
        Interface(InterfaceType.QUERY, TransportProtocol.UDP, relay.port),
        Interface(InterfaceType.ADMIN_AND_QUERY, TransportProtocol.TCP, relay.port),
    )
    server = dataclasses.replace(
        site.servers[0], address=address_to_bytes(HOST), interfaces=interfaces
    )
    return dataclasses.replace(site, servers=(server,))


@pytest.fixture
def relay(topology: Topology) -> Iterator[Relay]:
    """A relay in front of enterprise-a, the only site the delegation of 88.118.8 names while
    the test runs."""
    running = Relay(topology.port("enterprise-a"))
    secondary = topology.nodes["secondary-a"].store
    original = topology.call(secondary.get_handle("0.NA/88.118.8"))
    assert original is not None
    site = relay_site(topology, running)
    values = [HandleValue(1, "HS_SITE", site.to_bytes())]
    topology.call(secondary.create_handle("0.NA/88.118.8", values, overwrite=True))
    forget(topology)
    try:
        yield running
    finally:
        running.close()
        topology.call(secondary.create_handle("0.NA/88.118.8", list(original), overwrite=True))
        forget(topology)


def _through_recursive(topology: Topology, *, tcp: bool) -> tuple[HandleValue, ...]:
    client = HandleClient(HOST, topology.port("recursive"), tcp=tcp, timeout=TIMEOUT, retries=0)
    return asyncio.run(client.resolve(PV))


@pytest.mark.parametrize("tcp", [False, True])
def test_an_honest_relay_passes_and_an_altering_one_is_refused(
    topology: Topology, relay: Relay, tcp: bool
) -> None:
    relay.mutate = passthrough
    assert urls(_through_recursive(topology, tcp=tcp)) == [PV_URL]
    assert relay.answers >= 1
    forget(topology)
    relay.mutate = alter_url
    before = relay.answers
    with pytest.raises(HandleError) as refused:
        _through_recursive(topology, tcp=tcp)
    assert relay.answers > before  # the altered answer did reach the recursive node
    assert refused.value.response_code == ResponseCode.PROTOCOL_ERROR
    assert "no verifiable answer" in refused.value.message
    # Over HTTP too; and the same relay fools a resolver that does not ask for signatures.
    forget(topology)
    http = topology.specs["recursive"].http_port
    reply = httpx.get(f"http://{HOST}:{http}/api/handles/{PV}", timeout=TIMEOUT)
    assert reply.status_code == 400 and reply.json()["responseCode"] == 4, reply.text
    assert ALTERED.decode() not in reply.text
    plain = Resolver([f"{HOST}:{topology.port('root')}"], timeout=TIMEOUT)
    assert urls(asyncio.run(plain.resolve(PV))) == [ALTERED]


# -- idnode resolve --certified ----------------------------------------------------------------


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_cli_certified_from_a_server_key(topology: Topology) -> None:
    server = f"{HOST}:{topology.port('enterprise-a')}"
    key = str(topology.key_file("enterprise-a"))
    for tcp in ((), ("--tcp",)):
        result = invoke("resolve", PV, "--server", server, "--certified", "--server-key", key, *tcp)
        assert result.exit_code == 0, result.output
        assert PV_URL.decode() in result.output
    wrong = str(topology.key_file("secondary-a"))  # another server's key
    result = invoke("resolve", PV, "--server", server, "--certified", "--server-key", wrong)
    assert result.exit_code != 0
    assert "does not verify" in result.output or "signature" in result.output


def test_cli_certified_through_an_altering_relay(topology: Topology, relay: Relay) -> None:
    key = str(topology.key_file("enterprise-a"))
    via = f"{HOST}:{relay.port}"
    relay.mutate = alter_url
    result = invoke("resolve", PV, "--server", via, "--certified", "--server-key", key)
    assert result.exit_code != 0 and ALTERED.decode() not in result.output
    # Recursively from the root (its key given): the delegation names the relay.
    root = f"{HOST}:{topology.port('root')}"
    root_key = str(topology.key_file("root"))
    result = invoke("resolve", PV, "--root", root, "--certified", "--server-key", root_key)
    assert result.exit_code != 0 and "no verifiable answer" in result.output
    relay.mutate = passthrough
    result = invoke("resolve", PV, "--root", root, "--certified", "--server-key", root_key)
    assert result.exit_code == 0, result.output
    assert PV_URL.decode() in result.output


def test_cli_pins_the_server_key_on_first_use(topology: Topology, tmp_path: Path) -> None:
    server = f"{HOST}:{topology.port('enterprise-a')}"
    pin = tmp_path / "enterprise-a.pin.pem"
    first = invoke("resolve", PV, "--server", server, "--certified", "--pin", str(pin))
    assert first.exit_code == 0, first.output
    assert "pinned the keys" in first.output and pin.exists()
    assert pin.read_bytes() == topology.key_file("enterprise-a").read_bytes()
    again = invoke("resolve", PV, "--server", server, "--certified", "--pin", str(pin))
    assert again.exit_code == 0 and "pinned" not in again.output
    # A pin of another server's key refuses this one's answers.
    pin.write_bytes(topology.key_file("root").read_bytes())
    refused = invoke("resolve", PV, "--server", server, "--certified", "--pin", str(pin))
    assert refused.exit_code != 0


def test_cli_certified_options_are_checked(topology: Topology) -> None:
    server = f"{HOST}:{topology.port('enterprise-a')}"
    key = str(topology.key_file("enterprise-a"))
    assert invoke("resolve", PV, "--server", server, "--certified").exit_code == 2
    assert invoke("resolve", PV, "--server", server, "--server-key", key).exit_code == 2
    root = f"{HOST}:{topology.port('root')}"
    assert invoke("resolve", PV, "--root", root, "--certified").exit_code == 2
