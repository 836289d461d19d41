"""``idnode demo topology``: root → secondary → enterprise, and a recursive node."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from idnode.client import HandleClient
from idnode.demo import running_topology, setup_topology
from idnode.resolver import Hop, Resolver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_topology_resolves_through_every_level(tmp_path: Path) -> None:
    ports = [(free_port(), free_port()) for _ in range(4)]

    async def scenario() -> None:
        nodes = await setup_topology(tmp_path, ports=ports)
        assert [n.name for n in nodes] == ["root", "secondary", "enterprise", "recursive"]
        async with running_topology(nodes):
            hops: list[Hop] = []
            resolver = Resolver([f"127.0.0.1:{ports[0][0]}"], timeout=3.0)
            values = await resolver.resolve("88.118.8/PV-2026-000123", ["URL"], trace=hops.append)
            assert [v.data for v in values] == [b"https://pv.example.com/modules/PV-2026-000123"]
            walk = [(hop.handle, hop.address.port) for hop in hops if hop.response_code == 1]
            assert walk == [
                ("0.NA/88.118", ports[0][0]),
                ("0.NA/88.118.8", ports[1][0]),
                ("88.118.8/PV-2026-000123", ports[2][0]),
            ]
            recursive = HandleClient("127.0.0.1", ports[3][0], timeout=3.0)
            values = await recursive.resolve("88.118.8/MD-UDI-06912345678902", types=["URL"])
            assert [v.data for v in values] == [b"https://med.example.com/udi/06912345678902"]

    asyncio.run(scenario())
    # A second set-up keeps the nodes and their data.
    asyncio.run(setup_topology(tmp_path, ports=ports))
    assert (tmp_path / "enterprise" / "idnode.db").exists()
