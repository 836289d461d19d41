"""A Handle protocol client over UDP and TCP, with challenge-response authentication.

:class:`HandleClient` talks to one server; :class:`SiteClient` to a service given as sites
(HS_SITE records), failing over between them. Both are async and offer the same operations
(:class:`HandleOperations`); :class:`SyncHandleClient` wraps HandleClient for scripts and the
CLI. A 402 challenge is answered with the client's :class:`Credentials` (secret key or private
key) after checking that the challenge's request digest matches the request sent (spec §3.1).
Error responses raise the matching :mod:`idnode.errors` class.

Failover (:class:`SiteClient`)
------------------------------
1. **Which server of a site**: the one the request's handle hashes to by the site's hash
   option (spec §2.2); the other servers of that site do not hold the handle. Listing
   handles asks every server of a site (each holds its share) and joins the answers.
2. **Reads** (resolution, listing, site info) go to any site: the site that answered the
   previous read first, then the others in the order given.
3. **Writes** (create, delete, add/modify/remove values, home/unhome) go to primary sites
   (PrimaryMask 0x80) only, in order: never to a mirror. No primary site, or no primary
   server answering, raises :class:`NoPrimaryAvailable`.
4. **Failing over**: a server that does not answer (timeout, connection refused, including
   an ICMP port-unreachable on UDP) is skipped for the next site, and remembered as down
   (:class:`DownServers`) for ``down_for`` seconds: later requests try it last, so they go
   straight to the next site instead of waiting for the same timeout again. A 301 answer
   also moves on to the next site; it is raised when no other site answers. Any other error
   answer (not found, permissions, ...) is the answer and is raised at once.
5. **Time**: ``timeout`` bounds one exchange with one server address; over UDP the
   ``retries`` resends happen within it (each waits ``timeout / (retries + 1)``). A read
   tries UDP, then TCP, so a dead server costs at most ``2 * timeout`` before the next
   site is asked, and nothing once it is remembered as down.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from idnode.certified import CERTIFIED_FLAGS, ServerKeys, check_response
from idnode.errors import (
    AuthenticationFailed,
    AuthenticationRequired,
    HandleError,
    InvalidValue,
    ProtocolViolation,
    ServerNotResponsible,
    error_for_code,
)
from idnode.protocol import auth
from idnode.protocol.bodies import (
    Body,
    ChallengeAnswer,
    ChallengeBody,
    CreateHandleResponse,
    ErrorBody,
    HandleListBody,
    HandleRequest,
    RemoveValuesRequest,
    ResolutionRequest,
    ResolutionResponse,
    SiteInfoBody,
    ValuesRequest,
)
from idnode.protocol.codes import OpCode, OpFlag, ResponseCode
from idnode.protocol.framing import Reassembler, StreamDecoder
from idnode.protocol.message import ENVELOPE_SIZE, Envelope, Message
from idnode.protocol.types.hs_pubkey import PrivateKey
from idnode.protocol.types.hs_site import (
    ServerInfo,
    SiteInfo,
    TransportProtocol,
    address_from_bytes,
)
from idnode.protocol.values import HandleValue

if TYPE_CHECKING:
    from idnode.client_session import SessionClient

__all__ = [
    "Attempt",
    "Credentials",
    "DownServers",
    "HandleClient",
    "HandleOperations",
    "NoPrimaryAvailable",
    "PublicKeyCredentials",
    "SecretKeyCredentials",
    "ServerAddress",
    "ServiceUnavailable",
    "SiteClient",
    "SyncHandleClient",
    "server_addresses",
]

T = TypeVar("T")

_DIGESTS = {0: hashlib.md5, 1: hashlib.md5, 2: hashlib.sha1, 3: hashlib.sha256}
_EXPIRY = 12 * 3600  # the reference client's default request lifetime


@dataclass(frozen=True)
class SecretKeyCredentials:
    """Authenticate as ``index:handle`` with the secret held in its HS_SECKEY value."""

    handle: str
    index: int
    secret: bytes

    auth_type = "HS_SECKEY"

    def answer(self, nonce: bytes, digest: bytes, version: tuple[int, int]) -> bytes:
        alg = auth.secret_key_algorithm_for_version(version)
        return auth.make_secret_key_answer(self.secret, nonce, digest, alg)

    def __repr__(self) -> str:
        return f"SecretKeyCredentials({self.index}:{self.handle})"


@dataclass(frozen=True)
class PublicKeyCredentials:
    """Authenticate as ``index:handle`` with the private half of its HS_PUBKEY value."""

    handle: str
    index: int
    private_key: PrivateKey

    auth_type = "HS_PUBKEY"

    def answer(self, nonce: bytes, digest: bytes, version: tuple[int, int]) -> bytes:
        hash_name = auth.default_signature_hash(version, self.private_key)
        return auth.make_public_key_answer(self.private_key, nonce, digest, hash_name)

    def __repr__(self) -> str:
        return f"PublicKeyCredentials({self.index}:{self.handle})"


Credentials = SecretKeyCredentials | PublicKeyCredentials


class HandleOperations(abc.ABC):
    """The Handle operations, each one :meth:`request`: what :class:`HandleClient` (one
    server) and :class:`SiteClient` (sites, with failover) have in common."""

    credentials: Credentials | None

    @abc.abstractmethod
    async def request(self, op: int, body: Body, *, flags: int = 0, admin: bool = False) -> Body:
        """Send a request (answering a challenge if one comes) and return the success body;
        ``admin`` marks requests that go over TCP. Raises the :mod:`idnode.errors` class of an
        error response."""

    # -- operations ---------------------------------------------------------------------------

    async def resolve(
        self,
        handle: str,
        *,
        types: Sequence[str] = (),
        indexes: Sequence[int] = (),
        authoritative: bool = False,
        public_only: bool | None = None,
    ) -> tuple[HandleValue, ...]:
        """The values of ``handle`` matching the filters (all if none are given).

        ``public_only`` defaults to True without credentials, False with them (then values
        without PUBLIC_READ are returned to an authorised admin after a challenge).
        """
        if public_only is None:
            public_only = self.credentials is None
        # REC, as the reference client sends it: a recursive node may resolve for us.
        flags = OpFlag.REC | (OpFlag.PO if public_only else 0) | (OpFlag.AT if authoritative else 0)
        body = ResolutionRequest(handle, tuple(indexes), tuple(types))
        reply = await self.request(OpCode.RESOLUTION, body, flags=flags)
        assert isinstance(reply, ResolutionResponse)
        return reply.values

    async def get_site_info(self) -> SiteInfo:
        reply = await self.request(OpCode.GET_SITE_INFO, HandleRequest("/"))
        assert isinstance(reply, SiteInfoBody)
        return SiteInfo.from_bytes(reply.data)

    async def create_handle(
        self,
        handle: str,
        values: Sequence[HandleValue],
        *,
        overwrite: bool = False,
        mint: bool = False,
    ) -> str:
        """Create ``handle``; returns its name (the minted one when ``mint`` is set)."""
        flags = (OpFlag.OVRW if overwrite else 0) | (OpFlag.MINT if mint else 0)
        body = ValuesRequest(handle, tuple(values))
        reply = await self.request(OpCode.CREATE_HANDLE, body, flags=flags, admin=True)
        assert isinstance(reply, CreateHandleResponse)
        return reply.handle or handle

    async def delete_handle(self, handle: str) -> None:
        await self.request(OpCode.DELETE_HANDLE, HandleRequest(handle), admin=True)

    async def add_values(
        self, handle: str, values: Sequence[HandleValue], *, overwrite: bool = False
    ) -> None:
        flags = OpFlag.OVRW if overwrite else 0
        body = ValuesRequest(handle, tuple(values))
        await self.request(OpCode.ADD_VALUE, body, flags=flags, admin=True)

    async def modify_values(self, handle: str, values: Sequence[HandleValue]) -> None:
        body = ValuesRequest(handle, tuple(values))
        await self.request(OpCode.MODIFY_VALUE, body, admin=True)

    async def remove_values(self, handle: str, indexes: Sequence[int]) -> None:
        body = RemoveValuesRequest(handle, tuple(indexes))
        await self.request(OpCode.REMOVE_VALUE, body, admin=True)

    async def list_handles(self, prefix: str) -> list[str]:
        """Handles under ``prefix`` (given with or without ``0.NA/``)."""
        return await self._list(OpCode.LIST_HANDLES, prefix)

    async def list_derived_prefixes(self, prefix: str) -> list[str]:
        return await self._list(OpCode.LIST_DERIVED_PREFIXES, prefix)

    async def home_prefix(self, prefix: str) -> None:
        await self.request(OpCode.HOME_NA, HandleRequest(_prefix_handle(prefix)), admin=True)

    async def unhome_prefix(self, prefix: str) -> None:
        await self.request(OpCode.UNHOME_NA, HandleRequest(_prefix_handle(prefix)), admin=True)

    async def _list(self, op: OpCode, prefix: str) -> list[str]:
        reply = await self.request(op, HandleRequest(_prefix_handle(prefix)), admin=True)
        assert isinstance(reply, HandleListBody)
        return list(reply.handles)


class HandleClient(HandleOperations):
    """Talks to one server at ``host:port``.

    ``tcp`` chooses TCP for every request; otherwise queries go over UDP (retried
    ``retries`` times, each attempt waiting ``timeout``) and administration over TCP, as the
    reference client does. :meth:`for_sites` makes a client for several sites instead.

    With ``verify_with`` (the server's keys from its HS_SITE, :class:`ServerKeys`) every
    request asks for a certified answer (CT and RD) and an answer that is unsigned or whose
    signature does not verify raises :class:`~idnode.certified.UnverifiedAnswer`.
    """

    def __init__(
        self,
        host: str,
        port: int = 2641,
        *,
        tcp: bool = False,
        timeout: float = 5.0,
        retries: int = 2,
        credentials: Credentials | None = None,
        verify_with: ServerKeys | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tcp = tcp
        self.timeout = timeout
        self.retries = retries
        self.credentials = credentials
        self.verify_with = verify_with

    @staticmethod
    def for_sites(sites: Sequence[SiteInfo], **kwargs: Any) -> SiteClient:
        """A client for several sites instead of one server: a :class:`SiteClient` (keyword
        arguments as SiteClient takes them)."""
        return SiteClient(sites, **kwargs)

    def session(self, **kwargs: Any) -> SessionClient:
        """A native session with this server (:class:`~idnode.client_session.SessionClient`,
        keyword arguments as it takes them), to use as ``async with client.session() as s``:
        many administrative requests authenticated once."""
        from idnode.client_session import SessionClient

        return SessionClient(self, **kwargs)

    # -- messages -----------------------------------------------------------------------------

    def build(self, op: int, body: Body, flags: int = 0) -> Message:
        return Message(
            op=op,
            body=body,
            flags=int(flags),
            request_id=int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF,
            expiration=int(time.time()) + _EXPIRY,
        )

    async def request(self, op: int, body: Body, *, flags: int = 0, admin: bool = False) -> Body:
        """Send a request, answer a challenge if one comes, and return the success body.

        Raises the :mod:`idnode.errors` class of an error response.
        """
        use_tcp = self.tcp or admin
        if self.verify_with is not None:
            flags |= CERTIFIED_FLAGS
        message = self.build(op, body, flags)
        reply = await self.exchange(message, use_tcp)
        if reply.response_code == ResponseCode.AUTHENTICATION_NEEDED:
            reply = await self._authenticate(message, reply, use_tcp)
        return _success_body(reply)

    async def _authenticate(self, request: Message, challenge: Message, tcp: bool) -> Message:
        answer = self.challenge_answer(request, challenge)
        return await self.exchange(answer, tcp, original=request)

    def challenge_answer(self, request: Message, challenge: Message) -> Message:
        """The answer (op 200) to ``challenge``, the 402 response to ``request``, signed with
        the client's credentials, for the caller to send (spec §3.1). Raises
        AuthenticationRequired without credentials, ProtocolViolation for a malformed
        challenge and AuthenticationFailed when its digest is not that of ``request``."""
        if self.credentials is None:
            raise AuthenticationRequired("the server asks for authentication; give credentials")
        body = challenge.body
        if not isinstance(body, ChallengeBody):
            raise ProtocolViolation("malformed challenge")
        if challenge.request_digest is not None:
            hash_type, digest = challenge.request_digest.hash_type, challenge.request_digest.digest
        elif body.old_digest is not None:
            hash_type, digest = 0, body.old_digest
        else:
            raise ProtocolViolation("challenge without a request digest")
        ours = _DIGESTS[hash_type](request.encode_header_and_body()).digest()
        if not hmac.compare_digest(ours, digest):
            raise AuthenticationFailed("the challenge is not for the request we sent")
        version = min(challenge.version, challenge.suggested_version or challenge.version)
        answer_body = ChallengeAnswer(
            self.credentials.auth_type,
            self.credentials.handle,
            self.credentials.index,
            self.credentials.answer(body.nonce, digest, version),
        )
        return self.build(OpCode.CHALLENGE_RESPONSE, answer_body, request.flags).replace(
            session_id=challenge.session_id
        )

    async def exchange(
        self, message: Message, tcp: bool, *, original: Message | None = None
    ) -> Message:
        """Send one message and return the (first) response to it, checked against
        ``verify_with`` when the message asks for a certified answer (``original``: the
        request a challenge answer ``message`` authenticates, whose digest the answer bears)."""
        reply = await (self._exchange_tcp(message) if tcp else self._exchange_udp(message))
        if self.verify_with is not None and message.has(OpFlag.CT):
            check_response(reply, message, self.verify_with, original=original)
        return reply

    async def _exchange_tcp(self, message: Message) -> Message:
        async with asyncio.timeout(self.timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                writer.write(message.encode())
                await writer.drain()
                return await _read_reply(reader, message.request_id)
            except asyncio.IncompleteReadError as exc:
                raise ConnectionError("the server closed the connection without answering") from exc
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

    async def _exchange_udp(self, message: Message) -> Message:
        loop = asyncio.get_running_loop()
        data = message.encode()
        if len(data) > 512:
            return await self._exchange_tcp(message)
        done: asyncio.Future[Message] = loop.create_future()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UDPReply(done, message.request_id),
            remote_addr=(self.host, self.port),
        )
        try:
            for _attempt in range(self.retries + 1):
                transport.sendto(data)
                try:
                    return await asyncio.wait_for(asyncio.shield(done), self.timeout)
                except TimeoutError:
                    continue
            raise TimeoutError(f"no answer from {self.host}:{self.port} over UDP")
        finally:
            transport.close()


class _UDPReply(asyncio.DatagramProtocol):
    def __init__(self, done: asyncio.Future[Message], request_id: int) -> None:
        self._done = done
        self._request_id = request_id
        self._reassembler = Reassembler(max_pending=4)

    def error_received(self, exc: Exception) -> None:
        """An ICMP error for our datagram (e.g. port unreachable: nothing listens there) ends
        the exchange at once with that error (ConnectionRefusedError) instead of a timeout."""
        if not self._done.done():
            self._done.set_exception(exc)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self._done.done():
            return
        try:
            whole = self._reassembler.feed(data, time.monotonic())
            if whole is None:
                return
            reply = Message.decode(whole)
        except ProtocolViolation as exc:
            self._done.set_exception(exc)
            return
        if reply.request_id == self._request_id and not reply.is_request:
            self._done.set_result(reply)


async def _read_reply(reader: asyncio.StreamReader, request_id: int) -> Message:
    """Read responses until one answers ``request_id``; continuation parts (CN) of a list
    are merged into one message."""
    decoder = StreamDecoder()
    merged: list[str] = []
    while True:
        head = await reader.readexactly(ENVELOPE_SIZE)
        env = Envelope.decode(head)
        decoder.feed(head + await reader.readexactly(env.length))
        data = decoder.next_message()
        assert data is not None
        reply = Message.decode(data)
        if reply.request_id != request_id:
            continue
        if isinstance(reply.body, HandleListBody) and reply.has(OpFlag.CN):
            merged.extend(reply.body.handles)
            continue
        if merged and isinstance(reply.body, HandleListBody):
            return reply.replace(body=HandleListBody((*merged, *reply.body.handles)))
        return reply


def _success_body(reply: Message) -> Body:
    if reply.response_code == ResponseCode.SUCCESS:
        return reply.body
    text = reply.body.text if isinstance(reply.body, ErrorBody) else ""
    raise error_for_code(reply.response_code, text)


def _prefix_handle(prefix: str) -> str:
    return prefix if prefix.upper().startswith("0.NA/") else f"0.NA/{prefix}"


class SyncHandleClient:
    """Blocking wrapper: each call runs the async client on a private event loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._client = HandleClient(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not asyncio.iscoroutinefunction(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run(method(*args, **kwargs))

        return call


# -- several sites ------------------------------------------------------------------------------


class ServiceUnavailable(HandleError):
    """No server of the sites asked answered (timeouts, refused connections)."""


class NoPrimaryAvailable(ServiceUnavailable):
    """A write found no primary server to take it: none of the sites is primary, or no
    primary server answered. Writes never go to a mirror."""


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """Where one request goes: host, port and transport."""

    host: str
    port: int
    tcp: bool = False

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{'tcp' if self.tcp else 'udp'}"


def server_addresses(
    server: ServerInfo, *, admin: bool = False, tcp_only: bool = False
) -> list[ServerAddress]:
    """Where to send a request to ``server`` (spec §2.2): a query to its UDP query interface,
    then its TCP one (TCP only with ``tcp_only``); administration to its TCP admin interface."""
    host = str(address_from_bytes(server.address))
    protocols = [(TransportProtocol.TCP, True)]
    if not (admin or tcp_only):
        protocols.insert(0, (TransportProtocol.UDP, False))
    out = []
    for protocol, tcp in protocols:
        interface = server.interface_for(protocol, admin=admin)
        if interface is not None:
            out.append(ServerAddress(host, interface.port, tcp))
    return out


class DownServers:
    """Server addresses that recently failed to answer, remembered for ``down_for`` seconds.

    Failover code puts them last (:meth:`order`), so a request goes straight to a server that
    may answer instead of waiting for a dead one's timeout again; they are still tried when
    nothing else answers, and an answer clears the mark at once. Times are passed in (any
    clock, used consistently), so callers and tests choose the clock.
    """

    #: Beyond this many marks, expired ones are dropped when a new one is added.
    PRUNE_AT = 1024

    def __init__(self, down_for: float = 5.0) -> None:
        if down_for < 0:
            raise ValueError("down_for must not be negative")
        self.down_for = down_for
        self._until: dict[ServerAddress, float] = {}

    def mark_down(self, address: ServerAddress, now: float) -> None:
        """``address`` did not answer at ``now``."""
        if len(self._until) >= self.PRUNE_AT:
            self._until = {a: t for a, t in self._until.items() if t > now}
        self._until[address] = now + self.down_for

    def mark_up(self, address: ServerAddress) -> None:
        """``address`` answered."""
        self._until.pop(address, None)

    def is_down(self, address: ServerAddress, now: float) -> bool:
        until = self._until.get(address)
        if until is None:
            return False
        if now >= until:
            del self._until[address]
            return False
        return True

    def order(self, items: Iterable[T], now: float, key: Callable[[T], ServerAddress]) -> list[T]:
        """``items`` with those whose address (``key``) is down moved to the end; otherwise
        in the same order."""
        listed = list(items)
        up = [item for item in listed if not self.is_down(key(item), now)]
        return up + [item for item in listed if self.is_down(key(item), now)]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One exchange :class:`SiteClient` tried (for tracing and tests)."""

    site: int
    """Index of the site in :attr:`SiteClient.sites`."""
    address: ServerAddress
    """The server asked."""
    error: str = ""
    """Why it gave no usable answer (no answer, 301); empty when it answered."""


#: Operations that change data: primary sites only.
_WRITE_OPS = frozenset(
    {
        OpCode.CREATE_HANDLE,
        OpCode.DELETE_HANDLE,
        OpCode.ADD_VALUE,
        OpCode.REMOVE_VALUE,
        OpCode.MODIFY_VALUE,
        OpCode.HOME_NA,
        OpCode.UNHOME_NA,
    }
)
#: Failures that mean "this server did not answer": fail over.
_NO_ANSWER = (OSError, TimeoutError, ProtocolViolation)


class SiteClient(HandleOperations):
    """A Handle service given as ``sites`` (HS_SITE records, e.g. a primary and its mirrors):
    each request goes to the server its handle hashes to, reads to any site, writes to
    primary sites only, failing over as the module docstring describes.

    ``timeout`` bounds one exchange with one server (UDP resends within it); ``down_for``
    is how long a server that did not answer is tried last; ``clock`` (monotonic seconds)
    times that; ``trace`` is called with every :class:`Attempt`. ``credentials`` and ``tcp``
    are as for :class:`HandleClient`. :meth:`discover` builds one from server addresses.
    With ``certified``, every answer must be signed by a key its site's HS_SITE publishes
    (``verify_with`` of :class:`HandleClient`); one that is not is garbage: the next site
    is asked.
    """

    def __init__(
        self,
        sites: Sequence[SiteInfo],
        *,
        credentials: Credentials | None = None,
        tcp: bool = False,
        timeout: float = 5.0,
        retries: int = 2,
        down_for: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        trace: Callable[[Attempt], None] | None = None,
        certified: bool = False,
    ) -> None:
        self.certified = certified
        self.sites = tuple(s for s in sites if s.servers)
        if not self.sites:
            raise ValueError("at least one site with servers is needed")
        self.credentials = credentials
        self.tcp = tcp
        self.timeout = timeout
        self.retries = retries
        self.down = DownServers(down_for)
        self.clock = clock
        self.trace = trace
        #: Index of the site that answered the last read: the next read asks it first.
        self.preferred: int | None = None

    @classmethod
    async def discover(cls, servers: Sequence[str | tuple[str, int]], **kwargs: Any) -> SiteClient:
        """A client for the sites that ``servers`` (``HOST:PORT`` or (host, port)) say they
        belong to: each is asked for its HS_SITE (get site info); servers of the same site
        count once; those that do not answer are left out. Raises ServiceUnavailable when
        none answers."""
        timeout = float(kwargs.get("timeout", 5.0))
        sites: list[SiteInfo] = []
        failures: list[str] = []
        for server in servers:
            host, port = _host_port(server)
            client = HandleClient(host, port, tcp=True, timeout=timeout)
            try:
                site = await client.get_site_info()
            except _NO_ANSWER as exc:
                failures.append(f"{host}:{port}: {exc or type(exc).__name__}")
                continue
            if site not in sites:
                sites.append(site)
        if not sites:
            raise ServiceUnavailable(f"no server answered: {'; '.join(failures)}")
        return cls(sites, **kwargs)

    # -- requests -----------------------------------------------------------------------------

    async def request(self, op: int, body: Body, *, flags: int = 0, admin: bool = False) -> Body:
        """Send the request to the server its handle hashes to in each site, in turn (writes:
        primary sites only), until one answers; see the module docstring."""
        write = op in _WRITE_OPS
        order = self._write_order() if write else self._read_order()
        handle = getattr(body, "handle", "")
        candidates = [
            (index, address)
            for index in order
            for address in self._addresses(_chosen_server(self.sites[index], handle), admin)
        ]
        failures: list[str] = []
        refusal: ServerNotResponsible | None = None
        answered: set[int] = set()  # sites that answered 301: their other addresses are skipped
        for index, address in self.down.order(candidates, self.clock(), key=lambda c: c[1]):
            if index in answered:
                continue
            try:
                result = await self._exchange(index, address, op, body, flags, admin)
            except _NO_ANSWER as exc:
                failures.append(f"{address}: {exc or type(exc).__name__}")
                continue
            except ServerNotResponsible as exc:
                answered.add(index)
                refusal = exc
                continue
            except HandleError:
                self._answered(index, write)
                raise
            self._answered(index, write)
            return result
        return self._give_up(handle, write, failures, refusal)

    async def _list(self, op: OpCode, prefix: str) -> list[str]:
        """Every server of a site holds its share (spec §2.2): ask each server of one site (in
        read order; the next site when one of them does not answer) and join the answers."""
        body = HandleRequest(_prefix_handle(prefix))
        failures: list[str] = []
        for index in self._read_order():
            try:
                replies = [
                    await self._on_server(index, server, op, body, admin=True)
                    for server in self.sites[index].servers
                ]
            except _NO_ANSWER as exc:
                failures.append(str(exc) or type(exc).__name__)
                continue
            self._answered(index, write=False)
            handles: dict[str, None] = {}
            for reply in replies:
                assert isinstance(reply, HandleListBody)
                handles.update(dict.fromkeys(reply.handles))
            return list(handles)
        raise ServiceUnavailable(f"no site answered in full for {prefix}: {'; '.join(failures)}")

    async def home_prefix(self, prefix: str) -> None:
        """Home ``prefix`` on every server of every primary site (each serves its share)."""
        await self._on_every_primary(OpCode.HOME_NA, HandleRequest(_prefix_handle(prefix)))

    async def unhome_prefix(self, prefix: str) -> None:
        """Unhome ``prefix`` on every server of every primary site."""
        await self._on_every_primary(OpCode.UNHOME_NA, HandleRequest(_prefix_handle(prefix)))

    async def _on_every_primary(self, op: OpCode, body: Body) -> None:
        failures: list[str] = []
        for index in self._write_order():
            for server in self.sites[index].servers:
                try:
                    await self._on_server(index, server, op, body, admin=True)
                except _NO_ANSWER as exc:
                    failures.append(str(exc) or type(exc).__name__)
        if failures:
            raise NoPrimaryAvailable(f"not every primary server answered: {'; '.join(failures)}")

    async def _on_server(
        self, index: int, server: ServerInfo, op: int, body: Body, *, admin: bool
    ) -> Body:
        """The answer of ``server`` (its addresses in turn, down ones last); raises the last
        failure when none of its addresses answers."""
        addresses = self.down.order(self._addresses(server, admin), self.clock(), key=lambda a: a)
        if not addresses:
            raise ServiceUnavailable(f"server {server.server_id} has no usable interface")
        for address in addresses[:-1]:
            with contextlib.suppress(*_NO_ANSWER):
                return await self._exchange(index, address, op, body, 0, admin)
        return await self._exchange(index, addresses[-1], op, body, 0, admin)

    # -- plumbing -----------------------------------------------------------------------------

    def _read_order(self) -> list[int]:
        """Every site, the one that answered the last read first."""
        order = list(range(len(self.sites)))
        if self.preferred is not None:
            order.remove(self.preferred)
            order.insert(0, self.preferred)
        return order

    def _write_order(self) -> list[int]:
        """The primary sites, in order; NoPrimaryAvailable when there is none."""
        primaries = [i for i, site in enumerate(self.sites) if site.is_primary]
        if not primaries:
            raise NoPrimaryAvailable(
                f"none of the {len(self.sites)} sites is primary; writes never go to a mirror"
            )
        return primaries

    def _addresses(self, server: ServerInfo, admin: bool) -> list[ServerAddress]:
        return server_addresses(server, admin=admin, tcp_only=self.tcp)

    def _answered(self, index: int, write: bool) -> None:
        if not write:
            self.preferred = index

    async def _exchange(
        self, index: int, address: ServerAddress, op: int, body: Body, flags: int, admin: bool
    ) -> Body:
        """One request to one server address, marking it down or up and reporting the attempt."""
        attempt = self.timeout if address.tcp else self.timeout / (self.retries + 1)
        client = HandleClient(
            address.host,
            address.port,
            tcp=address.tcp,
            timeout=attempt,
            retries=self.retries,
            credentials=self.credentials,
            verify_with=ServerKeys.for_site(self.sites[index]) if self.certified else None,
        )
        try:
            result = await client.request(op, body, flags=flags, admin=admin)
        except (OSError, TimeoutError) as exc:
            self.down.mark_down(address, self.clock())
            self._report(index, address, str(exc) or type(exc).__name__)
            raise
        except ProtocolViolation as exc:  # it answered, with garbage: not down, not usable
            self._report(index, address, f"protocol violation: {exc.message}")
            raise
        except HandleError as exc:
            self.down.mark_up(address)
            self._report(index, address, f"{exc.response_code}: {exc.message}")
            raise
        self.down.mark_up(address)
        self._report(index, address, "")
        return result

    def _report(self, index: int, address: ServerAddress, error: str) -> None:
        if self.trace is not None:
            self.trace(Attempt(index, address, error))

    @staticmethod
    def _give_up(
        handle: str, write: bool, failures: list[str], refusal: ServerNotResponsible | None
    ) -> Body:
        """Raise what a request that no site answered ends with: the 301 when every site
        that answered refused and none failed, else (No primary / service) unavailable."""
        if refusal is not None and not failures:
            raise refusal
        detail = "; ".join(failures) or "no server with a usable interface"
        if write:
            raise NoPrimaryAvailable(f"no primary server answered for {handle!r}: {detail}")
        raise ServiceUnavailable(f"no server answered for {handle!r}: {detail}")


def _chosen_server(site: SiteInfo, handle: str) -> ServerInfo:
    """The server of ``site`` that ``handle`` hashes to (spec §2.2); the first one when the
    site's hash option is unknown."""
    try:
        return site.choose_server(handle)
    except InvalidValue:
        return site.servers[0]


def _host_port(server: str | tuple[str, int]) -> tuple[str, int]:
    if isinstance(server, tuple):
        return server
    host, sep, port = server.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"server address {server!r} is not HOST:PORT")
    return host.strip("[]"), int(port)
