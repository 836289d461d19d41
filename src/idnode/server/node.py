"""A running node: configuration, store, dispatcher and the UDP and TCP servers together."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

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
from idnode.server.config import NodeConfig
from idnode.server.dispatch import Dispatcher, NodeIdentity
from idnode.server.transports import TransportLimits, UDPServer, serve_tcp, serve_udp
from idnode.store import HandleStore, open_store

__all__ = ["Node", "build_site"]


def build_site(config: NodeConfig, key: PrivateKey, port: int) -> SiteInfo:
    """This node's HS_SITE: one primary server, query+admin over TCP, query over UDP (the
    reference server's layout, spec §2.2), carrying the server's public key."""
    server = ServerInfo(
        server_id=1,
        address=address_to_bytes(config.listen, mapped=False),
        public_key=PublicKeyData.from_public_key(key.public_key()).to_bytes(),
        interfaces=(
            Interface(InterfaceType.ADMIN_AND_QUERY, TransportProtocol.TCP, port),
            Interface(InterfaceType.QUERY, TransportProtocol.UDP, port),
        ),
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
        )
        self._bound: _Bound | None = None

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
    def site(self) -> SiteInfo:
        return SiteInfo.from_bytes(self.dispatcher.node.site_data)

    async def start(self) -> None:
        """Bind TCP and UDP on the same port (an ephemeral one if the configuration says 0)."""
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
        if self.config.port == 0:
            site = build_site(self.config, self.key, port)
            self.dispatcher.node = NodeIdentity(site.to_bytes(), site.serial)

    async def serve_forever(self) -> None:
        if self._bound is None:
            await self.start()
        assert self._bound is not None
        await self._bound.tcp.serve_forever()

    async def close(self) -> None:
        if self._bound is not None:
            self._bound.tcp.close()
            self._bound.udp.close()
            with contextlib.suppress(Exception):
                await self._bound.tcp.wait_closed()
            await self._bound.udp_protocol.drain()
            self._bound = None
        await self.store.close()
