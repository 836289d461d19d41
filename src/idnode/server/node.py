"""A running node: configuration, store, dispatcher and the UDP, TCP and HTTP servers together.

The HTTP application is :func:`idnode.http.api.build_app` (JSON API, native messages over
HTTP) plus :attr:`Node.http_routes` (e.g. the browser proxy, mounted last as the catch-all
``("", handler)``) and their OpenAPI path items :attr:`Node.openapi_paths`; set both before
:meth:`Node.start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from idnode.errors import ProtocolViolation
from idnode.http.api import build_app
from idnode.http.asgi import ASGIApp, Handler
from idnode.http.gs1 import GS1Rule
from idnode.http.openapi import PathItems
from idnode.http.proxy import proxy_openapi_paths, proxy_routes
from idnode.http.server import HTTPServer
from idnode.protocol.types.hs_pubkey import PrivateKey, PublicKeyData, load_private_key
from idnode.protocol.types.hs_site import (
    Attribute,
    Interface,
    InterfaceType,
    ServerInfo,
    SiteInfo,
    TransportProtocol,
    address_to_bytes,
)
from idnode.resolver import Resolver
from idnode.server.config import NodeConfig
from idnode.server.dispatch import Dispatcher, NodeIdentity
from idnode.server.transports import TransportLimits, UDPServer, serve_tcp, serve_udp
from idnode.store import HandleStore, open_store

__all__ = ["Node", "build_site"]


def build_site(
    config: NodeConfig, key: PrivateKey, port: int, *, http_port: int | None = None
) -> SiteInfo:
    """This node's HS_SITE: one primary server, query+admin over TCP, query over UDP and, when
    HTTP is configured, query+admin over HTTP or HTTPS (the reference server's layout, spec
    §2.2), carrying the server's public key. ``http_port`` overrides ``config.http_port``
    (the port actually bound when the configuration says 0)."""
    interfaces = [
        Interface(InterfaceType.ADMIN_AND_QUERY, TransportProtocol.TCP, port),
        Interface(InterfaceType.QUERY, TransportProtocol.UDP, port),
    ]
    if config.http_port is not None:
        protocol = TransportProtocol.HTTP if config.tls_cert is None else TransportProtocol.HTTPS
        actual = config.http_port if http_port is None else http_port
        interfaces.append(Interface(InterfaceType.ADMIN_AND_QUERY, protocol, actual))
    server = ServerInfo(
        server_id=1,
        address=address_to_bytes(config.listen, mapped=False),
        public_key=PublicKeyData.from_public_key(key.public_key()).to_bytes(),
        interfaces=tuple(interfaces),
    )
    return SiteInfo(
        serial=config.site_serial,
        primary_mask=0x80,
        attributes=(Attribute("desc", config.description),),
        servers=(server,),
    )


@dataclass
class _Bound:
    tcp: asyncio.Server
    udp: asyncio.DatagramTransport
    udp_protocol: UDPServer
    port: int


class Node:
    """Open with :meth:`open`, then :meth:`start`; :meth:`close` stops and releases all."""

    def __init__(
        self, config: NodeConfig, store: HandleStore, key: PrivateKey, limits: TransportLimits
    ) -> None:
        self.config = config
        self.store = store
        self.key = key
        self.limits = limits
        site = build_site(config, key, config.port)
        self.dispatcher = Dispatcher(
            store,
            NodeIdentity(site.to_bytes(), site.serial),
            server_admins=config.server_admins,
            challenge_timeout=config.challenge_timeout,
            server_key=key,
            resolver=Resolver(config.roots) if config.roots else None,
        )
        self._bound: _Bound | None = None
        self._http: HTTPServer | None = None
        rules = tuple(_gs1_rule(text) for text in config.gs1_rules)
        #: Routes mounted after ``/api``: the GS1 Digital Link paths, then the browser proxy
        #: as the catch-all; may be replaced before start().
        self.http_routes: list[tuple[str, Handler]] = proxy_routes(self.dispatcher, rules)
        #: OpenAPI path items of :attr:`http_routes`, merged into ``/api/openapi.json``.
        self.openapi_paths: PathItems = proxy_openapi_paths(rules)

    @classmethod
    async def open(cls, config: NodeConfig, limits: TransportLimits | None = None) -> Node:
        key = load_private_key(config.server_key_path.read_bytes())
        store = await open_store(config.database_location)
        return cls(config, store, key, limits or TransportLimits())

    @property
    def port(self) -> int:
        """The bound UDP/TCP port (differs from the configuration when it asked for 0)."""
        if self._bound is None:
            raise RuntimeError("node not started")
        return self._bound.port

    @property
    def http_port(self) -> int | None:
        """The bound HTTP(S) port, None when HTTP is not configured."""
        if self._bound is None:
            raise RuntimeError("node not started")
        return None if self._http is None else self._http.port

    def http_app(self) -> ASGIApp:
        """The HTTP application: JSON API and native messages, then :attr:`http_routes`."""
        return build_app(
            self.dispatcher, extra_routes=self.http_routes, openapi_paths=self.openapi_paths
        )

    @property
    def site(self) -> SiteInfo:
        return SiteInfo.from_bytes(self.dispatcher.node.site_data)

    async def start(self) -> None:
        """Bind TCP and UDP on the same port (an ephemeral one if the configuration says 0),
        then HTTP (or HTTPS) on ``http_port`` unless it is None."""
        for _attempt in range(20):
            tcp = await serve_tcp(
                self.dispatcher, self.config.listen, self.config.port, self.limits
            )
            port = tcp.sockets[0].getsockname()[1]
            try:
                udp, protocol = await serve_udp(
                    self.dispatcher, self.config.listen, port, self.limits
                )
            except OSError:
                tcp.close()
                await tcp.wait_closed()
                if self.config.port != 0:
                    raise
                continue
            self._bound = _Bound(tcp, udp, protocol, port)
            break
        else:
            raise OSError("could not bind UDP and TCP on one port")
        if self.config.http_port is not None:
            http = HTTPServer(
                self.http_app(),
                self.config.listen,
                self.config.http_port,
                certfile=self.config.tls_cert_path,
                keyfile=self.config.tls_key_path,
            )
            try:
                await http.start()
            except BaseException:
                await self._close_native()
                raise
            self._http = http
        if self.config.port == 0 or self.config.http_port == 0:
            http_port = None if self._http is None else self._http.port
            site = build_site(self.config, self.key, port, http_port=http_port)
            self.dispatcher.node = NodeIdentity(site.to_bytes(), site.serial)
        await self._publish_site()

    async def _publish_site(self) -> None:
        """Keep the HS_SITE values that describe this node (those carrying its server key) on
        the prefix handles of its homed prefixes equal to the site it now serves, so that
        resolvers find it where it listens (after a change of address or port)."""
        current = self.dispatcher.node.site_data
        key = PublicKeyData.from_public_key(self.key.public_key()).to_bytes()
        for prefix in await self.store.homed_prefixes():
            handle = f"0.NA/{prefix}"
            stale = []
            for value in await self.store.get_handle(handle) or ():
                if value.type.upper() != "HS_SITE" or value.data == current:
                    continue
                try:
                    site = SiteInfo.from_bytes(value.data)
                except ProtocolViolation:
                    continue
                if any(server.public_key == key for server in site.servers):
                    stale.append(value.with_changes(data=current, timestamp=int(time.time())))
            if stale:
                await self.store.modify_values(handle, stale)

    async def serve_forever(self) -> None:
        if self._bound is None:
            await self.start()
        assert self._bound is not None
        await self._bound.tcp.serve_forever()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self._close_native()
        await self.store.close()

    async def _close_native(self) -> None:
        if self._bound is not None:
            self._bound.tcp.close()
            self._bound.udp.close()
            with contextlib.suppress(Exception):
                await self._bound.tcp.wait_closed()
            await self._bound.udp_protocol.drain()
            self._bound = None


def _gs1_rule(text: str) -> GS1Rule:
    """``AI:TEMPLATE`` from the configuration as a rule; ValueError if malformed."""
    ai, sep, template = text.partition(":")
    if not sep or not ai.isdigit() or not template:
        raise ValueError(f"gs1_rules: expected AI:TEMPLATE, got {text!r}")
    return GS1Rule(template=template, ai=ai)
