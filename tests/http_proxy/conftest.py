"""Fixtures of the proxy and GS1 tests: the routes of :func:`idnode.http.proxy.proxy_routes`
in a :class:`~idnode.http.asgi.Router`, driven in-process with httpx's ASGITransport, over
the store of a real demo node (``init_node(<tmp>, "88.118.8", port=0, demo=True)``).

``proxy_node`` (module scope) owns an event loop, the store and a :class:`Dispatcher` built as
the node builds it; tests call it synchronously. ``proxy_node.put`` writes records straight
into the store (handle names are per test, so tests do not interfere);
``proxy_node.client(...)`` builds an app with the given options. The clock of the proxy is
fixed at :data:`NOW` so ``Expires`` values are exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from idnode.bootstrap import init_node
from idnode.http.asgi import Router
from idnode.http.proxy import proxy_routes
from idnode.protocol.types.hs_pubkey import load_private_key
from idnode.protocol.values import HandleValue
from idnode.server.config import NodeConfig
from idnode.server.dispatch import Dispatcher, NodeIdentity
from idnode.server.node import build_site
from idnode.store import HandleStore, open_store

PREFIX = "88.118.8"
BASE = "http://proxy.test"
#: The proxy's clock.
NOW = 1_800_000_000.0


def text(index: int, vtype: str, data: str, **kw: Any) -> HandleValue:
    """A value holding ``data`` as UTF-8."""
    return HandleValue(index, vtype, data.encode("utf-8"), **kw)


class SyncClient:
    """An httpx AsyncClient on the app, called synchronously on the harness loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, app: Router) -> None:
        self.loop = loop
        # httpx types the ASGI scope as MutableMapping; the Router takes the dict ASGI servers send
        transport = httpx.ASGITransport(app=cast(Any, app))
        self.client = httpx.AsyncClient(transport=transport, base_url=BASE)

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, url, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def json(self, url: str, **kw: Any) -> httpx.Response:
        """GET with ``Accept: application/json``."""
        headers = {"accept": "application/json", **kw.pop("headers", {})}
        return self.request("GET", url, headers=headers, **kw)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())


class ProxyNode:
    def __init__(self, directory: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.config = NodeConfig.load(directory / "idnode.toml")
        self.store: HandleStore = self.loop.run_until_complete(
            open_store(self.config.database_location)
        )
        key = load_private_key(self.config.server_key_path.read_bytes())
        site = build_site(self.config, key, self.config.port)
        self.dispatcher = Dispatcher(
            self.store,
            NodeIdentity(site.to_bytes(), site.serial),
            server_admins=self.config.server_admins,
        )
        self.clients: list[SyncClient] = []

    def put(self, handle: str, values: Sequence[HandleValue]) -> None:
        """Create or replace ``handle`` in the store."""
        self.loop.run_until_complete(self.store.create_handle(handle, values, overwrite=True))

    def client(self, **options: Any) -> SyncClient:
        """A client of ``Router(proxy_routes(dispatcher, **options))`` (clock fixed at NOW)."""
        options.setdefault("clock", lambda: NOW)
        client = SyncClient(self.loop, Router(proxy_routes(self.dispatcher, **options)))
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.loop.run_until_complete(self.store.close())
        self.loop.close()


@pytest.fixture(scope="module")
def proxy_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyNode]:
    directory = tmp_path_factory.mktemp("proxy-node")
    asyncio.run(init_node(directory, PREFIX, port=0, demo=True))
    node = ProxyNode(directory)
    try:
        yield node
    finally:
        node.close()


@pytest.fixture(scope="module")
def client(proxy_node: ProxyNode) -> SyncClient:
    """A client of the default routes (demo GS1 rule, fixed clock)."""
    return proxy_node.client()
