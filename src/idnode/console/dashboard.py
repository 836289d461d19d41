"""The node dashboard's data: statistics per day and prefix (flushed first, as ``/api/stats``
does), the resolver cache's hit rate, and whether the node's peers answer.

Peers: the root sites it resolves through (``roots``), the parent it reports to
(``[report]``), the primary it follows (``[replication]``), and the servers of every site
the hierarchy lists for its homed prefixes (the HS_SITE values of ``0.NA/<prefix>`` as the
resolver reads them from the parent: primary and mirrors). A peer is reachable when a TCP
connection to it opens within :data:`PROBE_TIMEOUT` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from idnode.console.charts import Chart, bar_chart, days_back, top_prefixes
from idnode.errors import HandleError, ProtocolViolation
from idnode.protocol.types.hs_site import SiteInfo, TransportProtocol, address_from_bytes
from idnode.server.config import NodeConfig
from idnode.server.dispatch import Dispatcher
from idnode.server.stats import StatsFlusher

__all__ = ["DAYS", "PROBE_TIMEOUT", "Dashboard", "Peer", "gather"]

DAYS = 14
PROBE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Peer:
    role: str
    address: str
    up: bool = False
    millis: float | None = None


@dataclass(frozen=True)
class Dashboard:
    registrations: Chart
    resolutions: Chart
    top: list[tuple[str, int, int]]
    prefixes: list[str]
    """Every prefix with counts in the period (for choosing one)."""
    cache_rate: float | None
    cache_hits: int
    cache_lookups: int
    peers: list[Peer]


def _host_port(text: str, default: int) -> tuple[str, int] | None:
    if "://" in text:
        parts = urlsplit(text)
        if parts.hostname is None:
            return None
        return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return (text, default) if text else None
    return host.strip("[]"), int(port)


async def _probe(role: str, host: str, port: int) -> Peer:
    started = time.perf_counter()
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_TIMEOUT)
    except (OSError, TimeoutError):
        return Peer(role, f"{host}:{port}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return Peer(role, f"{host}:{port}", True, round((time.perf_counter() - started) * 1000, 1))


def _site_servers(site: SiteInfo) -> list[tuple[str, int]]:
    out = []
    for server in site.servers:
        try:
            address = address_from_bytes(server.address)
        except (ProtocolViolation, ValueError):
            continue
        host = str(address)
        port = next((i.port for i in server.interfaces if i.protocol == TransportProtocol.TCP),
                    None)  # fmt: skip
        if port is not None:
            out.append((host, port))
    return out


async def _peers(dispatcher: Dispatcher, config: NodeConfig | None) -> list[Peer]:
    wanted: list[tuple[str, str, int]] = []
    if config is not None:
        for root in config.roots:
            found = _host_port(root, 2641)
            if found:
                wanted.append(("root", *found))
        if config.report is not None:
            found = _host_port(config.report.parent, 80)
            if found:
                wanted.append(("parent", *found))
        if config.replication is not None and config.replication.primary:
            found = _host_port(config.replication.primary, 2641)
            if found:
                wanted.append(("primary", *found))
    if dispatcher.resolver is not None:
        for prefix in await dispatcher.store.homed_prefixes():
            try:
                values = await dispatcher.resolver.resolve(f"0.NA/{prefix}")
            except HandleError:
                continue
            sites = [v for v in values if v.type == "HS_SITE"]
            for n, value in enumerate(sites):
                try:
                    servers = _site_servers(SiteInfo.from_bytes(value.data))
                except (ProtocolViolation, ValueError):
                    continue
                role = f"{prefix} {'primary' if n == 0 else 'mirror'}"
                wanted += [(role, host, port) for host, port in servers]
    unique = list(dict.fromkeys(wanted))
    return list(await asyncio.gather(*(_probe(*peer) for peer in unique)))


async def gather(
    dispatcher: Dispatcher,
    config: NodeConfig | None,
    prefix: str | None = None,
    today: datetime.date | None = None,
) -> Dashboard:
    """The dashboard of the last :data:`DAYS` days; the charts of ``prefix`` only if given."""
    await StatsFlusher(dispatcher.store, dispatcher.counter).flush()
    day = today or datetime.datetime.now(datetime.UTC).date()
    days = days_back(day, DAYS)
    counts = await dispatcher.store.stats(None, days[0], days[-1])
    charted = counts if prefix is None else await dispatcher.store.stats(prefix, days[0], days[-1])
    rate, hits, lookups = None, 0, 0
    if dispatcher.resolver is not None:
        stats = dispatcher.resolver.cache.stats
        hits, lookups = stats.hits, stats.hits + stats.misses
        rate = hits / lookups if lookups else 0.0
    return Dashboard(
        registrations=bar_chart(days, charted, "registrations"),
        resolutions=bar_chart(days, charted, "resolutions"),
        top=top_prefixes(counts),
        prefixes=sorted({c.prefix for c in counts}),
        cache_rate=rate,
        cache_hits=hits,
        cache_lookups=lookups,
        peers=await _peers(dispatcher, config),
    )
