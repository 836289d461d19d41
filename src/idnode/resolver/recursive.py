"""A recursive Handle resolver: root → prefix sites → the handle's site (spec §4).

Theory of operation
-------------------
``resolve(handle)`` walks the hierarchy with :class:`Resolver`'s own cache in front:

1. A handle without a slash is the prefix handle ``0.NA/<handle>``.
2. **Where a prefix handle lives** (:meth:`Resolver._authority`): ``0.NA/P`` for a top-level P
   (no dot, or ``0.NA`` itself) lives at the root sites (explicit configuration; there is no
   built-in list). For a derived prefix ``a.b.c`` it lives at the site serving the parent
   prefix handle ``0.NA/a.b``: its HS_SITE.PREFIX / HS_SERV.PREFIX (legacy HS_NA_DELEGATE)
   values if it has them, else its HS_SITE / HS_SERV. When the parent prefix handle does not
   exist, the parent's own authority answers for the child too (so a root holding
   ``0.NA/88.118`` but no ``0.NA/88`` works).
3. **Where a handle lives**: a ``0.NA/P`` handle at P's authority; any other ``P/S`` at the
   sites named by the HS_SITE values of ``0.NA/P`` (HS_SERV: resolve the service handle to its
   HS_SITE values first; legacy HS_NA_DELEGATE as a last resort).
4. **Asking a site list** (:meth:`Resolver._ask`): a resolution is a read, so any site
   serves it, primary or mirror, in the order the values give them. First the server each
   site's hash option picks (:meth:`SiteInfo.choose_server`), site after site; then, in case
   a site record is stale, the other servers. Per server UDP first, TCP on failure (timeout,
   connection refused, garbage). 301 → the next server, and when every server that answered
   said 301, :class:`~idnode.errors.ServerNotResponsible`. 302/303 referral → ask the sites
   in the referral's values. No answer anywhere → :class:`UpstreamUnavailable`.
5. **Failover**: a server address that did not answer (timeout, connection refused) is
   remembered as down for ``down_for`` seconds (:class:`~idnode.client.DownServers`, timed
   by ``clock``); while it is, every resolution asks it last, after every other candidate,
   so once a primary dies only the first resolution waits for it and the next ones go
   straight to the next server or site (a mirror). An answer from it clears the mark; down
   servers are still asked when nothing else answers, never skipped.
6. **Limits**: every network exchange is bounded by ``timeout``, UDP resends included (the
   default upstream sends ``retries + 1`` datagrams, each waiting ``timeout / (retries + 1)``),
   so a dead server costs at most ``2 * timeout`` (UDP, then TCP) before the next one is
   asked: with ``timeout=0.3`` the first resolution after a primary dies is answered by its
   mirror within 0.6 s plus the mirror's answer. Every step (prefix level, service handle,
   referral, request) counts against ``max_depth`` (:class:`RecursionLimitExceeded`);
   asking the same (handle, site) twice in one resolution or re-entering a service handle
   being resolved is a :class:`ReferralLoop`.
7. **Caching** (:mod:`idnode.resolver.cache`): every answer (final or intermediate) is cached
   by (handle, query) for its TTL; "not found" answers for the cache's negative TTL.
8. **Coalescing**: identical requests to the same server in flight at once share one exchange
   (coalescing at the request level cannot deadlock, unlike joining whole resolutions that may
   wait on each other).
9. **Trace**: each network exchange is reported as a :class:`Hop` to the caller's ``trace``.
10. **Certified answers** (``certified=True``): every request sets CT and RD and every answer
    must be signed by the key the asked server's HS_SITE publishes (or a retired key it still
    lists, :mod:`idnode.certified`); an unsigned, altered or forged answer counts as no
    answer from that server (the next one is asked), and when no server gave a verifiable
    answer the resolution fails with :class:`~idnode.certified.UnverifiedAnswer`. Root sites
    given as ``HOST:PORT`` carry no key: give them as SiteInfo records to verify from the root.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from idnode.certified import CERTIFIED_FLAGS, ServerKeys, UnverifiedAnswer, check_response
from idnode.client import DownServers, HandleClient, ServerAddress, server_addresses
from idnode.errors import (
    HandleError,
    HandleNotFound,
    InvalidHandle,
    ProtocolViolation,
    RecursionCountTooHigh,
    ServerNotResponsible,
    ValuesNotFound,
    error_for_code,
)
from idnode.protocol.bodies import ErrorBody, ReferralBody, ResolutionRequest, ResolutionResponse
from idnode.protocol.codes import OpCode, OpFlag, ResponseCode
from idnode.protocol.message import Message
from idnode.protocol.types.hs_site import (
    Interface,
    InterfaceType,
    ServerInfo,
    SiteInfo,
    TransportProtocol,
    address_to_bytes,
)
from idnode.protocol.values import HandleValue
from idnode.resolver.cache import CacheKey, TTLCache, cache_key
from idnode.store.base import handle_key, prefix_of

__all__ = [
    "PREFIX_TYPES",
    "HandleClientUpstream",
    "Hop",
    "RecursionLimitExceeded",
    "ReferralLoop",
    "Resolver",
    "ServerAddress",
    "Upstream",
    "UpstreamUnavailable",
    "root_site",
]

#: Types asked of a prefix handle (spec §2.2, §2.3, §4).
PREFIX_TYPES = ("HS_SITE", "HS_SITE.PREFIX", "HS_SERV", "HS_SERV.PREFIX", "HS_NA_DELEGATE")
#: Types asked of a service handle (spec §2.3).
_SERVICE_TYPES = ("HS_SITE", "HS_SERV")
_DELEGATION = (("HS_SITE.PREFIX", "HS_NA_DELEGATE"), ("HS_SERV.PREFIX",))
_SERVICE = (("HS_SITE",), ("HS_SERV",))
_LEGACY = (("HS_NA_DELEGATE",), ())
_ANY_SITE = (("HS_SITE", "HS_SITE.PREFIX", "HS_NA_DELEGATE"), ("HS_SERV", "HS_SERV.PREFIX"))
_NOT_FOUND = (HandleNotFound, ValuesNotFound)
_REFERRALS = (ResponseCode.SERVICE_REFERRAL, ResponseCode.PREFIX_REFERRAL)
_TRY_NEXT = (ResponseCode.SERVER_NOT_RESP, ResponseCode.SERVER_TOO_BUSY)
_EXPIRY = 12 * 3600


class RecursionLimitExceeded(RecursionCountTooHigh):
    """The resolution needed more steps than the resolver's limit."""


class ReferralLoop(RecursionLimitExceeded):
    """Referrals or service handles lead back to where the resolution has already been."""


class UpstreamUnavailable(HandleError):
    """No server of the sites to ask answered in time."""


@dataclass(frozen=True, slots=True)
class Hop:
    """One network exchange of a resolution (for ``idnode resolve --trace``)."""

    handle: str
    """The handle asked."""
    address: ServerAddress
    """The server asked."""
    response_code: int | None
    """The answer's response code; None when no answer came (see ``error``)."""
    shared: bool = False
    """True when an identical request already in flight answered (no extra traffic)."""
    error: str = ""
    """Why there was no answer."""


class Upstream(Protocol):
    """Sends one request to one server and returns the response (any response code).

    Raises TimeoutError / OSError when no answer comes, ProtocolViolation for garbage.
    """

    async def exchange(self, address: ServerAddress, request: Message) -> Message: ...


class HandleClientUpstream:
    """The default :class:`Upstream`: :class:`~idnode.client.HandleClient` over UDP or TCP,
    each whole exchange bounded by ``timeout`` seconds. Over UDP the ``retries`` resends
    happen within it: each of the ``retries + 1`` datagrams waits ``timeout / (retries + 1)``,
    so a server that does not answer costs ``timeout``, however many resends."""

    def __init__(self, *, timeout: float = 2.0, retries: int = 1) -> None:
        if timeout <= 0 or retries < 0:
            raise ValueError("timeout must be positive and retries not negative")
        self.timeout = timeout
        self.retries = retries

    async def exchange(self, address: ServerAddress, request: Message) -> Message:
        attempt = self.timeout if address.tcp else self.timeout / (self.retries + 1)
        client = HandleClient(
            address.host, address.port, tcp=address.tcp, timeout=attempt, retries=self.retries
        )
        async with asyncio.timeout(self.timeout):
            return await client.exchange(request, address.tcp)


def root_site(host: str, port: int = 2641, public_key: bytes = b"") -> SiteInfo:
    """A one-server site answering queries over UDP and TCP at ``host:port`` (for root
    configuration given as addresses); ``public_key`` (HS_PUBKEY encoding) is the server key
    its answers are checked with when resolving certified (none: they cannot be)."""
    interfaces = (
        Interface(InterfaceType.QUERY, TransportProtocol.UDP, port),
        Interface(InterfaceType.QUERY, TransportProtocol.TCP, port),
    )
    return SiteInfo(servers=(ServerInfo(1, address_to_bytes(host), public_key, interfaces),))


def _parse_root(root: SiteInfo | str | tuple[str, int]) -> SiteInfo:
    if isinstance(root, SiteInfo):
        return root
    if isinstance(root, tuple):
        return root_site(*root)
    host, sep, port = root.rpartition(":")
    if not sep or not host:
        raise ValueError(f"root address {root!r} is not HOST:PORT")
    return root_site(host.strip("[]"), int(port))


def _fingerprint(site: SiteInfo) -> tuple[tuple[bytes, tuple[Interface, ...]], ...]:
    return tuple((s.address, s.interfaces) for s in site.servers)


@dataclass
class _Walk:
    """State of one resolution: steps taken, places visited, the caller's trace."""

    max_depth: int
    trace: Callable[[Hop], None] | None
    steps: int = 0
    visited: set[tuple[object, object]] = field(default_factory=set)
    services: list[str] = field(default_factory=list)

    def step(self, what: str) -> None:
        self.steps += 1
        if self.steps > self.max_depth:
            raise RecursionLimitExceeded(f"more than {self.max_depth} resolution steps (at {what})")

    @contextlib.contextmanager
    def service(self, handle: str) -> Iterator[None]:
        key = handle_key(handle)
        if key in self.services:
            chain = " -> ".join([*self.services, key])
            raise ReferralLoop(f"service handle loop: {chain}")
        self.services.append(key)
        try:
            yield
        finally:
            self.services.pop()


@dataclass(frozen=True, slots=True)
class _Referral:
    values: tuple[HandleValue, ...]


class Resolver:
    """Resolves any handle starting from ``root_sites`` (SiteInfo records or ``HOST:PORT``).

    ``cache`` (a fresh :class:`TTLCache` by default) may be shared; ``clock`` gives epoch
    seconds for cache times and down marks; ``max_depth`` bounds the steps of one resolution;
    ``timeout`` bounds every exchange of the default upstream (``retries`` UDP resends
    included); ``down_for`` is how long a server that did not answer is asked last;
    ``upstream`` replaces the transport; ``certified`` asks for signed answers and refuses
    those that do not verify (see Certified answers above).
    """

    def __init__(
        self,
        root_sites: Sequence[SiteInfo | str | tuple[str, int]],
        *,
        cache: TTLCache | None = None,
        clock: Callable[[], float] = time.time,
        max_depth: int = 24,
        timeout: float = 2.0,
        retries: int = 1,
        down_for: float = 5.0,
        upstream: Upstream | None = None,
        certified: bool = False,
    ) -> None:
        if not root_sites:
            raise ValueError("at least one root site is needed (there is no built-in root)")
        if max_depth < 1:
            raise ValueError("max_depth must be at least 1")
        self.root_sites = tuple(_parse_root(r) for r in root_sites)
        self.cache = TTLCache() if cache is None else cache
        self.clock = clock
        self.max_depth = max_depth
        self.upstream: Upstream = upstream or HandleClientUpstream(timeout=timeout, retries=retries)
        #: Exchanges actually sent (coalesced joiners and cache hits not counted).
        self.upstream_requests = 0
        #: Server addresses that recently did not answer: asked last (see Failover above).
        self.down = DownServers(down_for)
        self._inflight: dict[tuple[object, ...], asyncio.Future[Message]] = {}
        #: Ask for signed answers and refuse those that do not verify.
        self.certified = certified

    # -- public --------------------------------------------------------------------------------

    async def resolve(
        self,
        handle: str,
        types: Sequence[str] = (),
        indexes: Sequence[int] = (),
        *,
        trace: Callable[[Hop], None] | None = None,
    ) -> tuple[HandleValue, ...]:
        """The public values of ``handle`` matching ``types``/``indexes`` (all if both are
        empty), found by walking the hierarchy from the root.

        Raises the :mod:`idnode.errors` class of the authoritative answer (HandleNotFound,
        ValuesNotFound, ...), ServerNotResponsible, UpstreamUnavailable,
        RecursionLimitExceeded or ReferralLoop. ``trace`` is called for each exchange.
        """
        if not handle or handle.startswith("/") or handle.endswith("/"):
            raise InvalidHandle(f"invalid handle {handle!r}")
        if "/" not in handle:
            handle = f"0.NA/{handle}"
        walk = _Walk(self.max_depth, trace)
        return await self._lookup(handle, tuple(types), tuple(indexes), walk)

    async def sites_for(self, handle: str) -> tuple[SiteInfo, ...]:
        """The sites responsible for ``handle`` (what a REC-capable server needs)."""
        return await self._sites_for_handle(handle, _Walk(self.max_depth, None))

    # -- the walk ------------------------------------------------------------------------------

    async def _lookup(
        self, handle: str, types: tuple[str, ...], indexes: tuple[int, ...], walk: _Walk
    ) -> tuple[HandleValue, ...]:
        key = cache_key(handle, types, indexes)
        cached = self._cached(key)
        if cached is not None:
            return cached
        try:
            sites = await self._sites_for_handle(handle, walk)
        except _NOT_FOUND as exc:
            self.cache.put_negative(key, exc.response_code, exc.message, self.clock())
            raise
        return await self._ask_cached(key, sites, handle, types, indexes, walk)

    def _cached(self, key: CacheKey) -> tuple[HandleValue, ...] | None:
        entry = self.cache.get(key, self.clock())
        if entry is None:
            return None
        if entry.values is None:
            raise error_for_code(entry.error_code, entry.error_message)
        return entry.values

    async def _ask_cached(
        self,
        key: CacheKey,
        sites: Sequence[SiteInfo],
        handle: str,
        types: tuple[str, ...],
        indexes: tuple[int, ...],
        walk: _Walk,
    ) -> tuple[HandleValue, ...]:
        cached = self._cached(key)
        if cached is not None:
            return cached
        try:
            values = await self._ask(sites, handle, types, indexes, walk)
        except _NOT_FOUND as exc:
            self.cache.put_negative(key, exc.response_code, exc.message, self.clock())
            raise
        self.cache.put(key, values, self.clock())
        return values

    async def _sites_for_handle(self, handle: str, walk: _Walk) -> tuple[SiteInfo, ...]:
        prefix = prefix_of(handle)
        if handle_key(prefix) == "0.NA":
            return await self._authority(handle.split("/", 1)[1], walk)
        try:
            values = await self._lookup(f"0.NA/{prefix}", PREFIX_TYPES, (), walk)
        except _NOT_FOUND as exc:
            raise HandleNotFound(f"prefix {prefix} is not registered") from exc
        for kinds in (_SERVICE, _LEGACY):
            sites = await self._sites_from(values, kinds, walk)
            if sites:
                return sites
        raise HandleNotFound(f"prefix {prefix} has no HS_SITE or HS_SERV values")

    async def _authority(self, prefix: str, walk: _Walk) -> tuple[SiteInfo, ...]:
        """The sites holding the prefix handle ``0.NA/<prefix>`` (spec §4, derived prefixes)."""
        if "." not in prefix or handle_key(prefix) == "0.NA":
            return self.root_sites
        walk.step(f"0.NA/{prefix}")
        parent = prefix.rsplit(".", 1)[0]
        parent_sites = await self._authority(parent, walk)
        parent_handle = f"0.NA/{parent}"
        key = cache_key(parent_handle, PREFIX_TYPES)
        try:
            values = await self._ask_cached(
                key, parent_sites, parent_handle, PREFIX_TYPES, (), walk
            )
        except _NOT_FOUND:
            return parent_sites
        for kinds in (_DELEGATION, _SERVICE):
            sites = await self._sites_from(values, kinds, walk)
            if sites:
                return sites
        return parent_sites

    async def _sites_from(
        self,
        values: Sequence[HandleValue],
        kinds: tuple[tuple[str, ...], tuple[str, ...]],
        walk: _Walk,
    ) -> tuple[SiteInfo, ...]:
        """Sites named by ``values``: HS_SITE-like types in ``kinds[0]`` directly, HS_SERV-like
        types in ``kinds[1]`` through their service handle. Malformed records are skipped."""
        site_types, service_types = kinds
        sites: list[SiteInfo] = []
        for v in values:
            vtype = v.type.upper()
            if vtype in site_types:
                with contextlib.suppress(ProtocolViolation):
                    sites.append(SiteInfo.from_bytes(v.data))
            elif vtype in service_types:
                try:
                    service = v.data.decode("utf-8")
                except UnicodeDecodeError:
                    continue
                sites.extend(await self._service_sites(service, walk))
        return tuple(s for s in sites if s.servers)

    async def _service_sites(self, service: str, walk: _Walk) -> tuple[SiteInfo, ...]:
        """The HS_SITE values of a service handle (spec §2.3)."""
        with walk.service(service):
            walk.step(service)
            values = await self._lookup(service, _SERVICE_TYPES, (), walk)
            return await self._sites_from(values, _SERVICE, walk)

    # -- asking sites --------------------------------------------------------------------------

    async def _ask(
        self,
        sites: Sequence[SiteInfo],
        handle: str,
        types: tuple[str, ...],
        indexes: tuple[int, ...],
        walk: _Walk,
    ) -> tuple[HandleValue, ...]:
        """Ask ``sites`` for ``handle``, following 302/303 referrals."""
        hkey = (handle_key(handle), types, indexes)
        while True:
            fresh = [s for s in sites if (hkey, _fingerprint(s)) not in walk.visited]
            if not fresh:
                raise ReferralLoop(f"referrals for {handle} lead back to sites already asked")
            walk.visited.update((hkey, _fingerprint(s)) for s in fresh)
            outcome = await self._ask_sites(fresh, handle, types, indexes, walk)
            if not isinstance(outcome, _Referral):
                return outcome
            walk.step(f"referral for {handle}")
            sites = await self._sites_from(outcome.values, _ANY_SITE, walk)
            if not sites:
                raise ServerNotResponsible(f"referral for {handle} names no usable site")

    async def _ask_sites(
        self,
        sites: Sequence[SiteInfo],
        handle: str,
        types: tuple[str, ...],
        indexes: tuple[int, ...],
        walk: _Walk,
    ) -> tuple[HandleValue, ...] | _Referral:
        refused = 0
        failures: list[str] = []
        answered: set[int] = set()  # servers that answered: their other transports are skipped
        unverified = 0
        for server, address, keys in self._candidates(sites, handle):
            if server in answered:
                continue
            walk.step(f"{handle} at {address}")
            try:
                reply = await self._send(address, handle, types, indexes, walk, keys)
            except (OSError, TimeoutError, ProtocolViolation) as exc:
                unverified += isinstance(exc, UnverifiedAnswer)
                failures.append(f"{address}: {exc or type(exc).__name__}")
                continue  # the next transport of this server, then the next server
            answered.add(server)
            code = reply.response_code
            if code == ResponseCode.SUCCESS:
                if not isinstance(reply.body, ResolutionResponse):
                    raise ProtocolViolation(f"{address} answered without values")
                return reply.body.values
            if code in _REFERRALS:
                body = reply.body
                values = body.values if isinstance(body, ReferralBody) else None
                return _Referral(values or ())
            if code in _TRY_NEXT:
                refused += code == ResponseCode.SERVER_NOT_RESP
                continue
            text = reply.body.text if isinstance(reply.body, ErrorBody) else ""
            raise error_for_code(code, text)
        if refused and not failures:
            raise ServerNotResponsible(f"no server asked is responsible for {handle}")
        detail = "; ".join(failures) or "no server has a query interface"
        if unverified:
            raise UnverifiedAnswer(f"no verifiable answer for {handle}: {detail}")
        raise UpstreamUnavailable(f"no answer for {handle}: {detail}")

    def _candidates(
        self, sites: Sequence[SiteInfo], handle: str
    ) -> list[tuple[int, ServerAddress, ServerKeys | None]]:
        """(server number, address, keys to check certified answers with, when asked for)
        to ask in turn: :func:`_servers_in_order` with each server's query addresses (UDP,
        then TCP), those remembered as down moved last."""
        candidates = [
            (number, address, ServerKeys.of(server, site) if self.certified else None)
            for number, (site, server) in enumerate(_servers_in_order(sites, handle))
            for address in server_addresses(server)
        ]
        return self.down.order(candidates, self.clock(), key=lambda c: c[1])

    async def _send(
        self,
        address: ServerAddress,
        handle: str,
        types: tuple[str, ...],
        indexes: tuple[int, ...],
        walk: _Walk,
        keys: ServerKeys | None = None,
    ) -> Message:
        """One exchange, shared with an identical one already in flight; with ``keys``, a
        certified one (UnverifiedAnswer when the answer does not verify with them)."""
        key: tuple[object, ...] = (address, cache_key(handle, types, indexes), keys is None)
        future = self._inflight.get(key)
        shared = future is not None
        if future is None:
            request = Message(
                op=OpCode.RESOLUTION,
                body=ResolutionRequest(handle, indexes, types),
                flags=int(OpFlag.PO) | (0 if keys is None else CERTIFIED_FLAGS),
                request_id=int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF,
                expiration=int(self.clock()) + _EXPIRY,
            )
            self.upstream_requests += 1
            future = asyncio.ensure_future(self._exchange(address, request, keys))
            self._inflight[key] = future
            future.add_done_callback(lambda f: self._finished(key, f))
        try:
            reply = await asyncio.shield(future)
        except (OSError, TimeoutError, ProtocolViolation) as exc:
            if not isinstance(exc, ProtocolViolation):  # garbage is an answer, of a kind
                self.down.mark_down(address, self.clock())
            self._report(walk, Hop(handle, address, None, shared, str(exc) or type(exc).__name__))
            raise
        self.down.mark_up(address)
        self._report(walk, Hop(handle, address, reply.response_code, shared))
        return reply

    async def _exchange(
        self, address: ServerAddress, request: Message, keys: ServerKeys | None
    ) -> Message:
        reply = await self.upstream.exchange(address, request)
        if keys is not None:
            check_response(reply, request, keys)
        return reply

    def _finished(self, key: tuple[object, ...], future: asyncio.Future[Message]) -> None:
        if self._inflight.get(key) is future:
            del self._inflight[key]
        if not future.cancelled():
            future.exception()  # retrieved here, so an unawaited failure is not logged

    @staticmethod
    def _report(walk: _Walk, hop: Hop) -> None:
        if walk.trace is not None:
            walk.trace(hop)


def _servers_in_order(
    sites: Sequence[SiteInfo], handle: str
) -> Iterator[tuple[SiteInfo, ServerInfo]]:
    """The server the hash picks in each site (spec §2.2), site after site; then the other
    servers of each site (they answer 301 unless the site record is stale); each with its
    site."""
    chosen: list[int] = []
    for site in sites:
        try:
            chosen.append(site.server_index_for(handle) if site.servers else -1)
        except HandleError:
            chosen.append(0)
    for site, first in zip(sites, chosen, strict=True):
        if first >= 0:
            yield site, site.servers[first]
    for site, first in zip(sites, chosen, strict=True):
        yield from ((site, s) for i, s in enumerate(site.servers) if i != first)
