"""``idnode demo topology``: a small identifier hierarchy on 127.0.0.1.

Four nodes, each in a directory of its own under the topology's directory:

=============  =========  ===================================================================
node           homes      holds
=============  =========  ===================================================================
``root``       ``0.NA``   ``0.NA/88.118`` → the secondary node's site (a top-level node)
``secondary``  ``88.118`` ``0.NA/88.118.8`` → the enterprise node's site (an industry node)
``enterprise`` 88.118.8   the demo identifiers of a solar, medical, electronics, auto maker
``recursive``  99.9       nothing else: configured with the root, it resolves for clients
=============  =========  ===================================================================

Node ``i`` (in that order) listens on UDP/TCP ``base_port + i`` and HTTP ``http_base + i``
unless ``ports`` says otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from idnode.bootstrap import init_node
from idnode.protocol.types.hs_pubkey import load_private_key
from idnode.protocol.values import HandleValue
from idnode.server.config import NodeConfig
from idnode.server.node import Node, build_site
from idnode.store import open_store

__all__ = ["NODES", "DemoNode", "running_topology", "setup_topology"]

#: (name, homed prefix) of the nodes, in port order.
NODES = (
    ("root", "0.NA"),
    ("secondary", "88.118"),
    ("enterprise", "88.118.8"),
    ("recursive", "99.9"),
)


@dataclass(frozen=True)
class DemoNode:
    name: str
    prefix: str
    config_path: Path
    port: int
    http_port: int


async def setup_topology(
    directory: Path,
    *,
    base_port: int = 22641,
    http_base: int = 28001,
    ports: Sequence[tuple[int, int]] | None = None,
) -> list[DemoNode]:
    """Create the four nodes under ``directory`` (kept if they exist) and link them.
    ``ports`` gives each node's (UDP/TCP, HTTP) ports instead of the consecutive ones."""
    if ports is None:
        ports = [(base_port + i, http_base + i) for i in range(len(NODES))]
    nodes = []
    for (name, prefix), (port, http_port) in zip(NODES, ports, strict=True):
        path = directory / name
        if not (path / "idnode.toml").exists():
            await init_node(
                path,
                prefix,
                port=port,
                demo=name == "enterprise",
                description=f"idnode demo {name}",
            )
            config = NodeConfig.load(path / "idnode.toml")
            config = dataclasses.replace(config, http_port=http_port)
            if name == "recursive":
                config = dataclasses.replace(config, roots=(f"127.0.0.1:{ports[0][0]}",))
            (path / "idnode.toml").write_text(config.dump(), encoding="utf-8")
        config = NodeConfig.load(path / "idnode.toml")
        nodes.append(
            DemoNode(name, prefix, path / "idnode.toml", config.port, config.http_port or 0)
        )
    by_name = {node.name: node for node in nodes}
    await _delegate(by_name["root"], "88.118", by_name["secondary"])
    await _delegate(by_name["secondary"], "88.118.8", by_name["enterprise"])
    return nodes


async def _delegate(holder: DemoNode, prefix: str, to: DemoNode) -> None:
    """Store on ``holder`` the prefix handle ``0.NA/<prefix>`` naming ``to``'s site."""
    config = NodeConfig.load(to.config_path)
    key = load_private_key(config.server_key_path.read_bytes())
    site = build_site(config, key, config.port, http_port=config.http_port)
    value = HandleValue(1, "HS_SITE", site.to_bytes(), timestamp=int(time.time()))
    store = await open_store(NodeConfig.load(holder.config_path).database_location)
    try:
        await store.create_handle(f"0.NA/{prefix}", [value], overwrite=True)
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def running_topology(nodes: list[DemoNode]) -> AsyncIterator[list[Node]]:
    """Start every node of the topology in this event loop; close them on exit."""
    running: list[Node] = []
    try:
        for node in nodes:
            started = await Node.open(NodeConfig.load(node.config_path))
            running.append(started)
            await started.start()
        yield running
    finally:
        await asyncio.gather(*(node.close() for node in running), return_exceptions=True)
