"""The demo topology (:mod:`idnode.demo`) running in-process for a test module: eight real
nodes on 127.0.0.1 on one event loop in a thread (:func:`running_topology`)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from idnode.certified import public_key_pem
from idnode.client import PublicKeyCredentials
from idnode.demo import NODES, DemoNode, setup_topology
from idnode.protocol.types.hs_pubkey import load_private_key
from idnode.resolver import Resolver
from idnode.server.config import NodeConfig
from idnode.server.node import Node
from tests.ports import free_ports

T = TypeVar("T")
HOST = "127.0.0.1"
TIMEOUT = 5.0


@dataclass
class Topology:
    specs: dict[str, DemoNode]
    loop: asyncio.AbstractEventLoop
    nodes: dict[str, Node] = field(default_factory=dict)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def port(self, name: str) -> int:
        return self.specs[name].port

    def directory(self, name: str) -> Path:
        return self.specs[name].config_path.parent

    def start(self, name: str) -> None:
        async def start() -> None:
            node = await Node.open(NodeConfig.load(self.specs[name].config_path))
            await node.start()
            self.nodes[name] = node

        self.call(start())

    def stop(self, name: str) -> None:
        self.call(self.nodes.pop(name).close())

    def credentials(self, name: str) -> PublicKeyCredentials:
        key = load_private_key((self.directory(name) / "admin-key.pem").read_bytes())
        return PublicKeyCredentials(f"0.NA/{self.specs[name].prefix}", 301, key)

    def resolver(self, **kwargs: Any) -> Resolver:
        return Resolver([f"{HOST}:{self.port('root')}"], timeout=TIMEOUT, **kwargs)

    def key_file(self, name: str) -> Path:
        """The PEM public key of ``name``'s server key (written once, beside its directory)."""
        path = self.directory(name).parent / f"{name}.pub.pem"
        if not path.exists():
            key = load_private_key((self.directory(name) / "server-key.pem").read_bytes())
            path.write_bytes(public_key_pem(key.public_key()))
        return path


@contextlib.contextmanager
def running_topology(
    directory: Path,
    *,
    prepare: Callable[[Topology], None] | None = None,
    start: Callable[[str], bool] = lambda name: True,
) -> Iterator[Topology]:
    """Create the topology in ``directory`` on free ports, let ``prepare`` change the nodes'
    configurations, start the nodes ``start`` picks; stop them all on leaving."""
    free = iter(free_ports(2 * len(NODES)))
    ports = [(next(free), next(free)) for _ in NODES]
    specs = asyncio.run(setup_topology(directory, ports=ports))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="idnode-topology", daemon=True)
    thread.start()
    topology = Topology({spec.name: spec for spec in specs}, loop)
    try:
        if prepare is not None:
            prepare(topology)
        for spec in specs:
            if start(spec.name):
                topology.start(spec.name)
        yield topology
    finally:
        for name in list(topology.nodes):
            topology.stop(name)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
