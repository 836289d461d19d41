"""A running node: configuration, store, dispatcher and the UDP, TCP and HTTP servers together.

The HTTP application is the router of :func:`idnode.http.api.api_router` (JSON API) in
:class:`~idnode.http.native.NativeOverHttp` (native messages over HTTP) plus
:attr:`Node.http_routes` (e.g. the browser proxy, mounted last as the catch-all ``("",
handler)``) and their OpenAPI path items :attr:`Node.openapi_paths`; set both before
:meth:`Node.start`.

A node is one server of a site: by default a site of one primary server built from
``[node]``; with a ``[site]`` table (:class:`~idnode.server.config.SiteConfig`), one server
of a multi-server site, answering only the handles that hash to it (the dispatcher's share
check), and, for a mirror (non-primary) site or with ``[replication]``, read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from idnode.certified import public_keys_from_pem, retired_attributes
from idnode.client import PublicKeyCredentials
from idnode.console import Console
from idnode.console import mount as mount_console
from idnode.errors import InvalidValue
from idnode.http.api import api_router
from idnode.http.asgi import ASGIApp, Handler
from idnode.http.fastmiss import MissMaker
from idnode.http.gs1 import GS1Rule
from idnode.http.metrics import MetricsEndpoint, timed
from idnode.http.native import NativeOverHttp
from idnode.http.openapi import PathItems
from idnode.http.proxy import proxy_openapi_paths, proxy_routes
from idnode.http.respcache import cached_api
from idnode.http.server import HTTPServer
from idnode.http.sessions import SessionStore
from idnode.protocol.auth import PublicKey
from idnode.protocol.types.hs_pubkey import PrivateKey, PublicKeyData, load_private_key
from idnode.protocol.types.hs_site import (
    PRIMARY_SITE,
    Attribute,
    Interface,
    InterfaceType,
    ServerInfo,
    SiteInfo,
    TransportProtocol,
    address_to_bytes,
    sites_in,
)
from idnode.resolver import Resolver
from idnode.resolver.recursive import root_site
from idnode.server.config import NodeConfig, ResolverConfig, SiteConfig
from idnode.server.dispatch import Dispatcher, NodeIdentity
from idnode.server.metrics import Metrics
from idnode.server.mirror import Mirror, Share
from idnode.server.ratelimit import ClientLimiter, LimitSettings
from idnode.server.respcache import ResponseCache
from idnode.server.sessiondb import SessionDatabase, session_directory
from idnode.server.sharing import share_sessions
from idnode.server.stats import Reporter, StatsFlusher
from idnode.server.transports import TransportLimits, UDPServer, serve_tcp, serve_udp
from idnode.server.workers import SharedChallenges, challenge_directory
from idnode.store import HandleStore, open_store
from idnode.store.generations import Generations

__all__ = ["Node", "build_site"]


def build_site(
    config: NodeConfig, key: PrivateKey, port: int, *, http_port: int | None = None
) -> SiteInfo:
    """This node's HS_SITE, primary unless the node is read-only (a mirror). Without
    ``[site]``: one server at ``config.listen``, with
    :func:`_interfaces` on ``port`` and, when HTTP is configured, ``http_port`` (overriding
    ``config.http_port``: the port actually bound when the configuration says 0), carrying
    the server's public key. With ``[site]``: :func:`_configured_site`."""
    if config.site is not None:
        return _configured_site(config, config.site, key)
    actual = config.http_port if http_port is None else http_port
    server = ServerInfo(
        server_id=1,
        address=address_to_bytes(config.listen, mapped=False),
        public_key=_public_key_data(key.public_key()),
        interfaces=_interfaces(port, actual, https=config.tls_cert is not None),
    )
    return SiteInfo(
        serial=config.site_serial,
        primary_mask=0 if config.read_only else PRIMARY_SITE,
        attributes=(Attribute("desc", config.description), *retired_attributes(config.directory)),
        servers=(server,),
    )


def _configured_site(config: NodeConfig, site: SiteConfig, key: PrivateKey) -> SiteInfo:
    """The multi-server HS_SITE of the ``[site]`` table: its servers in order, each with
    :func:`_interfaces` on its ports and its public key (this node's own: ``key``'s public
    half), the primary bit only for a primary site, the configured hash option and serial.

    Raises ValueError when a key file is unusable or this node's entry names a key file that
    is not its own server key's public half."""
    own = _public_key_data(key.public_key())
    https = config.tls_cert is not None
    servers = []
    for entry in site.servers:
        public_key = None if entry.key is None else _read_public_key(config.directory / entry.key)
        if entry.id == site.this_server:
            if public_key not in (None, own):
                raise ValueError(f"[site] key of this server ({entry.key}) is not server_key's")
            public_key = own
        assert public_key is not None  # SiteConfig checks that the others have a key file
        servers.append(
            ServerInfo(
                server_id=entry.id,
                address=address_to_bytes(entry.address, mapped=False),
                public_key=public_key,
                interfaces=_interfaces(entry.port, entry.http_port, https=https),
            )
        )
    return SiteInfo(
        serial=site.serial,
        primary_mask=0 if config.read_only else PRIMARY_SITE,
        hash_option=int(site.hash_option),
        attributes=(Attribute("desc", config.description), *retired_attributes(config.directory)),
        servers=tuple(servers),
    )


def _interfaces(port: int, http_port: int | None, *, https: bool) -> tuple[Interface, ...]:
    """The reference server's layout (spec §2.2): query+admin over TCP, query over UDP and,
    with an HTTP port, query+admin over HTTP or HTTPS."""
    interfaces = [
        Interface(InterfaceType.ADMIN_AND_QUERY, TransportProtocol.TCP, port),
        Interface(InterfaceType.QUERY, TransportProtocol.UDP, port),
    ]
    if http_port is not None:
        protocol = TransportProtocol.HTTPS if https else TransportProtocol.HTTP
        interfaces.append(Interface(InterfaceType.ADMIN_AND_QUERY, protocol, http_port))
    return tuple(interfaces)


def _public_key_data(key: PublicKey) -> bytes:
    return PublicKeyData.from_public_key(key).to_bytes()


def _read_public_key(path: Path, where: str = "[site]") -> bytes:
    """The HS_PUBKEY encoding of the PEM public key (RSA, DSA or SM2) in ``path``. An EC key
    on another curve is refused: HS_SITE has no key type for it."""
    try:
        keys = public_keys_from_pem(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{where} cannot read the public key {path}: {exc}") from exc
    return _public_key_data(keys[0])


def recursive_resolver(config: NodeConfig) -> Resolver:
    """The resolver of a recursive node: from ``roots``, with each root's server key from
    ``[resolver] root_keys``, checking every answer when ``[resolver] certified``."""
    settings = config.resolver or ResolverConfig()
    sites = []
    for root in config.roots:
        host, sep, port = root.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"root address {root!r} is not HOST:PORT")
        key_file = settings.key_file(root)
        key = b""
        if key_file is not None:
            key = _read_public_key(config.directory / key_file, "[resolver]")
        sites.append(root_site(host.strip("[]"), int(port), key))
    return Resolver(sites, certified=settings.certified)


@dataclass
class _Bound:
    tcp: asyncio.Server
    udp: asyncio.DatagramTransport
    udp_protocol: UDPServer
    port: int


class Node:
    """Open with :meth:`open`, then :meth:`start`; :meth:`close` stops and releases all."""

    def __init__(
        self,
        config: NodeConfig,
        store: HandleStore,
        key: PrivateKey,
        limits: TransportLimits,
        *,
        worker: int = 0,
    ) -> None:
        self.config = config
        #: Which worker process this is (idnode.server.workers); 0 when the node is one.
        self.worker = worker
        self.store = store
        self.key = key
        self.limits = limits
        site = build_site(config, key, config.port)
        self.dispatcher = Dispatcher(
            store,
            self._identity(site),
            server_admins=config.server_admins,
            challenge_timeout=config.challenge_timeout,
            server_key=key,
            resolver=recursive_resolver(config) if config.roots else None,
            read_only=config.read_only,
            replication_admins=config.replication_admins,
            limiter=ClientLimiter(
                LimitSettings(
                    max_failures=config.auth_failures_limit,
                    block=config.auth_block,
                    writes_per_second=config.writes_per_second,
                    write_burst=max(1, round(config.writes_per_second * 5)),
                )
            ),
        )
        if config.trust is not None:
            self.dispatcher.trust = config.trust.policy(config.directory)
        generations = getattr(store, "generations", None)
        if config.response_cache > 0 and isinstance(generations, Generations):
            self.dispatcher.respcache = ResponseCache(
                generations, max_entries=config.response_cache
            )
        if config.metrics != "off":
            self.dispatcher.metrics = Metrics(worker=str(worker))
            if self.dispatcher.respcache is not None:
                self.dispatcher.metrics.cache = self.dispatcher.respcache.stats
        if config.workers > 1:  # a challenge may be answered to another worker
            self.dispatcher.challenges = SharedChallenges(
                challenge_directory(config), timeout=config.challenge_timeout
            )
        #: ``/api/sessions`` sessions. With several workers, these, the native sessions and
        #: the SNMS login tokens are shared through a database (idnode.server.sharing).
        self.http_sessions = SessionStore()
        self.session_db: SessionDatabase | None = None
        if config.workers > 1:
            self.session_db, self.http_sessions = share_sessions(
                self.dispatcher, session_directory(config)
            )
        #: Follows the primary site when this node is a mirror (``[replication]``).
        self.mirror = self._mirror(site)
        self._mirror_task: asyncio.Task[None] | None = None
        #: Flushes the statistics every ``stats_interval`` seconds and at close.
        self.stats = StatsFlusher(store, self.dispatcher.counter, config.stats_interval)
        #: Reports to the parent node (``[report]``); None when not configured.
        self.reporter = self._reporter()
        self._tasks: list[asyncio.Task[None]] = []
        self._bound: _Bound | None = None
        self._http: HTTPServer | None = None
        rules = tuple(_gs1_rule(text) for text in config.gs1_rules)
        #: The web console (``/console``, and the home page ``/``; docs/console.md).
        self.console = Console(self.dispatcher, rules=rules, config=config)
        #: Routes mounted after ``/api``: the console, the GS1 Digital Link paths, then the
        #: browser proxy as the catch-all; may be replaced before start().
        self.http_routes: list[tuple[str, Handler]] = mount_console(
            self.console, proxy_routes(self.dispatcher, rules)
        )
        #: OpenAPI path items of :attr:`http_routes`, merged into ``/api/openapi.json``.
        self.openapi_paths: PathItems = proxy_openapi_paths(rules)

    @classmethod
    async def open(
        cls, config: NodeConfig, limits: TransportLimits | None = None, *, worker: int = 0
    ) -> Node:
        try:
            key = load_private_key(
                config.server_key_path.read_bytes(), config.server_key_passphrase()
            )
        except InvalidValue as exc:
            raise ValueError(f"cannot load the server key {config.server_key_path}: {exc}") from exc
        store = await open_store(config.database_location)
        return cls(config, store, key, limits or TransportLimits(), worker=worker)

    @property
    def port(self) -> int:
        """The bound UDP/TCP port (differs from the configuration when it asked for 0)."""
        if self._bound is None:
            raise RuntimeError("node not started")
        return self._bound.port

    def reload_tls(self) -> bool:
        """Load the HTTPS certificate and key again (see :meth:`HTTPServer.reload_tls`);
        False when the node serves no HTTPS or the files do not load."""
        return self._http is not None and self._http.reload_tls()

    @property
    def http_port(self) -> int | None:
        """The bound HTTP(S) port, None when HTTP is not configured."""
        if self._bound is None:
            raise RuntimeError("node not started")
        return None if self._http is None else self._http.port

    def http_app(self) -> ASGIApp:
        """The HTTP application: JSON API and native messages, ``/metrics`` (unless
        ``metrics = "off"``), then :attr:`http_routes`; anonymous answers kept in the HTTP
        response cache, every request timed in the metrics."""
        metrics = self.dispatcher.metrics
        routes = self.http_routes
        if metrics is not None:
            public = self.config.metrics == "public"
            endpoint = MetricsEndpoint(self.dispatcher, metrics, public=public)
            routes = [("/metrics", endpoint), *routes]
        router = api_router(
            self.dispatcher,
            sessions=self.http_sessions,
            extra_routes=routes,
            openapi_paths=self.openapi_paths,
        )
        app = cached_api(
            NativeOverHttp(router, self.dispatcher), self.dispatcher, make_now=MissMaker(router)
        )
        return app if metrics is None else timed(app, metrics)

    @property
    def site(self) -> SiteInfo:
        return SiteInfo.from_bytes(self.dispatcher.node.site_data)

    async def start(self) -> None:
        """Bind TCP and UDP on the same port (an ephemeral one if the configuration says 0),
        then HTTP (or HTTPS) on ``http_port`` unless it is None."""
        for _attempt in range(20):
            shared = self.config.workers > 1  # SO_REUSEPORT: the workers share the ports
            tcp = await serve_tcp(
                self.dispatcher,
                self.config.listen,
                self.config.port,
                self.limits,
                reuse_port=shared,
            )
            port = tcp.sockets[0].getsockname()[1]
            try:
                udp, protocol = await serve_udp(
                    self.dispatcher, self.config.listen, port, self.limits, reuse_port=shared
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
            http.reuse_port = self.config.workers > 1
            try:
                await http.start()
            except BaseException:
                await self._close_native()
                raise
            self._http = http
        if self.config.port == 0 or self.config.http_port == 0:
            http_port = None if self._http is None else self._http.port
            site = build_site(self.config, self.key, port, http_port=http_port)
            self.dispatcher.node = self._identity(site)
        if self.worker > 0:  # one process follows the primary, reports and publishes
            self._tasks.append(asyncio.create_task(self.stats.run(), name="idnode-stats"))
            return
        await self._publish_site()
        if self.mirror is not None:
            self._mirror_task = asyncio.create_task(self.mirror.run(), name="idnode-mirror")
        self._tasks.append(asyncio.create_task(self.stats.run(), name="idnode-stats"))
        if self.reporter is not None:
            self._tasks.append(asyncio.create_task(self.reporter.run(), name="idnode-report"))

    def _identity(self, site: SiteInfo) -> NodeIdentity:
        """What the dispatcher says about this node: ``site`` and this node's place in it."""
        index = 0 if self.config.site is None else self.config.site.this_index
        return NodeIdentity(site.to_bytes(), site.serial, server_index=index)

    async def _publish_site(self) -> None:
        """Keep the HS_SITE values that describe this node (those carrying its server key) on
        the prefix handles of its homed prefixes equal to the site it now serves, so that
        resolvers find it where it listens (after a change of address or port).

        A read-only node (mirror site, or ``[replication]``) leaves its data alone: what it
        holds is replicated from the primary, not its to change."""
        if self.config.read_only or self.config.replication is not None:
            return
        current = self.dispatcher.node.site_data
        key = _public_key_data(self.key.public_key())
        for prefix in await self.store.homed_prefixes():
            handle = f"0.NA/{prefix}"
            stale = []
            for value, site in sites_in(await self.store.get_handle(handle) or ()):
                if value.data == current:
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

    def _mirror(self, site: SiteInfo) -> Mirror | None:
        replication = self.config.replication
        if replication is None or replication.primary is None:
            return None
        if replication.identity is None:
            raise ValueError("[replication] primary needs an identity to authenticate as")
        host, port = replication.primary.rsplit(":", 1)
        identity = replication.identity
        credentials = PublicKeyCredentials(identity.handle, identity.index, self.key)
        share = Share(site.hash_option, len(site.servers), self._identity(site).server_index)
        return Mirror(
            self.store,
            host.strip("[]"),
            int(port),
            credentials,
            share=share,
            interval=replication.interval,
        )

    def _reporter(self) -> Reporter | None:
        report = self.config.report
        if report is None:
            return None
        secret = None
        if report.secret_file is not None:
            secret = (self.config.directory / report.secret_file).read_bytes().rstrip(b"\r\n")
        return Reporter(
            self.store,
            report.parent,
            report.identity,
            key=self.key,
            secret=secret,
            interval=report.interval,
            flusher=self.stats,
        )

    async def _stop_tasks(self) -> None:
        """Stop the reporter, then the statistics flusher (which flushes a last time)."""
        if self.reporter is not None:
            self.reporter.stop()
        self.stats.stop()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            with contextlib.suppress(TimeoutError):  # wait_for cancels a hung round
                await asyncio.wait_for(task, 15.0)

    async def close(self) -> None:
        if self.mirror is not None and self._mirror_task is not None:
            self.mirror.stop()
            with contextlib.suppress(TimeoutError):  # wait_for cancels a hung round
                await asyncio.wait_for(self._mirror_task, self.mirror.timeout)
            self._mirror_task = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self._close_native()
        await self._stop_tasks()
        await self.console.imports.close()
        await self.store.close()
        if self.session_db is not None:
            self.session_db.close()
            self.session_db = None

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
