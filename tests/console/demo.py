"""The demo topology (:mod:`idnode.demo`) running in a background thread, for the tests and
the screenshots that need several nodes: :func:`running_demo` yields the enterprise node's
HTTP base URL."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from idnode.demo import running_topology, setup_topology
from tests.ports import free_ports

__all__ = ["running_demo"]

#: Seconds the topology may take to be created and started.
START_TIMEOUT = 180.0


@contextlib.contextmanager
def running_demo(directory: Path) -> Iterator[str]:
    """Create the demo under ``directory`` with free ports on 127.0.0.1, start its nodes,
    yield ``http://127.0.0.1:<port>`` of enterprise-a; stop them on exit."""
    ready, stop = threading.Event(), threading.Event()
    box: dict[str, Any] = {}

    async def serve() -> None:
        ports = free_ports(16)
        pairs = list(zip(ports[::2], ports[1::2], strict=True))
        nodes = await setup_topology(directory, ports=pairs)
        async with running_topology(nodes) as running:
            names = [spec.name for spec in nodes]
            box["http"] = running[names.index("enterprise-a")].http_port
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)

    def main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported to the caller
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=main, name="idnode-demo", daemon=True)
    thread.start()
    try:
        if not ready.wait(START_TIMEOUT):
            raise RuntimeError(f"the demo did not start within {START_TIMEOUT} s")
        if "error" in box:
            raise RuntimeError("the demo failed to start") from box["error"]
        yield f"http://127.0.0.1:{box['http']}"
    finally:
        stop.set()
        thread.join(30)
