"""The mirror's side of replication: follow a primary site with ops 1001/1002.

A mirror node (``[replication] primary = "HOST:PORT"``) is read-only: it answers resolutions
from its own store and refuses writes (301, :class:`~idnode.server.dispatch.Dispatcher` with
``read_only``). :class:`Mirror` keeps the store in step with the primary site:

1. Ask the configured server for the site's HS_SITE (GET_SITE_INFO), to learn every server
   of the primary site and its public key.
2. For each server of the site (a source, recorded as ``"<n>:<address>:<port>"``): if this
   store has never followed it, ask for a dump (DUMP_HANDLES); otherwise ask for the
   transactions after the last one applied (RETRIEVE_TXN_LOG); a NEED_TO_REDUMP answer
   leads to a dump. Requests authenticate as ``identity`` with the node's server key, are
   sent at protocol 2.7 over TCP (so a reference primary answers with a signed stream rather
   than TLS), and the stream's signatures are checked against the server's HS_SITE key.
3. Apply what arrives in batches (``HandleStore.apply_replicated``): each batch and the
   position it reaches commit together, so a mirror killed at any point resumes from the last
   batch. A dump is applied without recording a position until it is complete (then handles
   of that source's share that the dump did not contain are deleted): an interrupted dump is
   started again.
4. Sleep ``interval`` seconds and start over; failures are logged and retried on the next
   round, never fatal.

The mirror only asks for its own share of the handles (its site's hash option, server count
and number), as a reference mirror does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Final, TypeVar

from idnode.client import Credentials, HandleClient
from idnode.crypto.sm2 import Sm2PublicKey
from idnode.errors import HandleError, ProtocolViolation, error_for_code
from idnode.protocol import auth
from idnode.protocol import replication as rp
from idnode.protocol.bodies import Body, ErrorBody
from idnode.protocol.codes import OpCode, OpFlag, ResponseCode
from idnode.protocol.framing import StreamDecoder
from idnode.protocol.message import ENVELOPE_SIZE, Envelope, Message
from idnode.protocol.types.hs_pubkey import PublicKeyData
from idnode.protocol.types.hs_site import (
    ServerInfo,
    SiteInfo,
    TransportProtocol,
    address_from_bytes,
    handle_hash,
)
from idnode.protocol.values import HandleValue, encode_record
from idnode.store import HandleStore, handle_key
from idnode.store.txnlog import Action, Change

__all__ = ["Mirror", "Share", "SyncReport"]

log = logging.getLogger(__name__)

#: The version replication requests are sent at (see the module docstring).
REQUEST_VERSION: Final = (2, 7)
#: Changes applied per store transaction.
_BATCH: Final = 500
_READ_SIZE: Final = 1 << 16


@dataclass(frozen=True)
class Share:
    """Which handles this mirror server holds: those whose hash (``hash_type``) modulo
    ``server_count`` is ``server_number`` (everything for a one-server site)."""

    hash_type: int = 0
    server_count: int = 1
    server_number: int = 0


@dataclass
class SyncReport:
    """What one round did, per source: transactions applied, handles loaded by a dump."""

    transactions: int = 0
    dumped: int = 0
    deleted_after_dump: int = 0
    sources: list[str] = field(default_factory=list)


class Mirror:
    """Follows the primary site reachable at ``host:port`` into ``store``."""

    def __init__(
        self,
        store: HandleStore,
        host: str,
        port: int,
        credentials: Credentials,
        *,
        share: Share | None = None,
        interval: float = 1.0,
        timeout: float = 10.0,
    ) -> None:
        self.store = store
        self.host = host
        self.port = port
        self.credentials = credentials
        self.share = share or Share()
        self.interval = interval
        self.timeout = timeout
        #: Completed rounds and the time (monotonic) of the last successful one.
        self.rounds = 0
        self.last_success: float | None = None
        self._stop = asyncio.Event()

    async def run(self) -> None:
        """Sync every ``interval`` seconds until :meth:`stop`."""
        while not self._stop.is_set():
            try:
                await self.sync()
            except (OSError, TimeoutError, HandleError) as exc:
                log.warning("replication from %s:%d failed: %s", self.host, self.port, exc)
            except Exception:
                log.exception("replication from %s:%d failed", self.host, self.port)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def stop(self) -> None:
        self._stop.set()

    async def sync(self) -> SyncReport:
        """One round over every server of the primary site."""
        client = HandleClient(self.host, self.port, tcp=True, timeout=self.timeout)
        site = await client.get_site_info()
        report = SyncReport()
        for number, server in enumerate(site.servers):
            if self._other_share(site, number):
                continue
            source = _source_name(number, server)
            report.sources.append(source)
            position = await self.store.replication_source(source)
            if position is None or not await self._pull(server, source, position, report):
                await self._dump(site, number, server, source, report)
        self.rounds += 1
        self.last_success = time.monotonic()
        return report

    def _other_share(self, site: SiteInfo, number: int) -> bool:
        """A primary server holds nothing of this mirror's share when both sites split the
        handles the same way and its number is not ours (the reference's shortcut)."""
        share = self.share
        same_split = site.hash_option == share.hash_type and len(site.servers) == share.server_count
        return same_split and number != share.server_number

    # -- transactions ---------------------------------------------------------------------------

    async def _pull(
        self, server: ServerInfo, source: str, position: tuple[int, int], report: SyncReport
    ) -> bool:
        """Apply the transactions after ``position``; False when the source says to redump."""
        last_id, last_date = position
        request = rp.RetrieveTxnRequest(
            self.share.hash_type,
            self.share.server_count,
            self.share.server_number,
            last_txn_id=last_id,
            last_query_date_ms=last_date,
        )
        parser = _parser_for(server)
        pending: list[Change] = []
        async with self._streaming(server, OpCode.RETRIEVE_TXN_LOG, request) as chunks:
            async for item in _items(chunks, parser, rp.parse_txn_stream):
                if isinstance(item, rp.StreamStatus):
                    if item == rp.StreamStatus.NEED_TO_REDUMP:
                        log.warning("%s asks this mirror to reload everything", source)
                        return False
                elif isinstance(item, rp.StreamTxn):
                    pending.append(_change(item))
                    last_id = item.txn_id
                    if len(pending) >= _BATCH:
                        await self._apply(pending, source, last_id, item.date_ms)
                        report.transactions += len(pending)
                        pending = []
                else:  # the final date: the stream is complete
                    await self._apply(pending, source, last_id, item)
                    report.transactions += len(pending)
                    return True
        raise ProtocolViolation(f"the transaction stream from {source} ended early")

    async def _apply(
        self, changes: list[Change], source: str | None, txn_id: int, date: int
    ) -> None:
        await self.store.apply_replicated(changes, source=source, txn_id=txn_id, date_ms=date)

    # -- dumps ----------------------------------------------------------------------------------

    async def _dump(
        self, site: SiteInfo, number: int, server: ServerInfo, source: str, report: SyncReport
    ) -> None:
        request = rp.DumpHandlesRequest(
            self.share.hash_type, self.share.server_count, self.share.server_number
        )
        parser = _parser_for(server)
        seen: set[str] = set()
        prefixes: set[str] = set()
        position = (0, 0)
        pending: list[Change] = []
        async with self._streaming(server, OpCode.DUMP_HANDLES, request) as chunks:
            async for record in _items(chunks, parser, rp.parse_dump):
                if record.kind == 0:
                    position = (record.txn_id, record.date_ms)
                elif record.kind == 1:
                    handle = _text(record.handle)
                    seen.add(handle_key(handle))
                    pending.append(Change(Action.UPDATE_HANDLE, handle, _record(record.values)))
                elif record.kind == 2:
                    prefix = Change(Action.HOME_PREFIX, _text(record.handle)).prefix
                    prefixes.add(handle_key(prefix))
                    pending.append(Change(Action.HOME_PREFIX, f"0.NA/{prefix}"))
                else:
                    break
                if len(pending) >= _BATCH:
                    await self._apply(pending, None, 0, 0)
                    report.dumped += len(pending)
                    pending = []
            else:
                raise ProtocolViolation(f"the dump from {source} ended early")
        stale = [c async for c in self._stale(site, number, seen, prefixes)]
        report.dumped += len(pending)
        report.deleted_after_dump += len(stale)
        await self._apply([*pending, *stale], source, *position)

    async def _stale(
        self, site: SiteInfo, number: int, seen: set[str], prefixes: set[str]
    ) -> _AsyncChanges:
        """Deletions of what this store holds from the dumped server's share but the dump
        did not contain."""
        after: str | None = None
        while True:
            page = await self.store.scan(after, 1000)
            if not page:
                break
            after = page[-1][0]
            for handle, _values in page:
                if handle_key(handle) in seen or not _holds(site, number, handle):
                    continue
                yield Change(Action.DELETE_HANDLE, handle)
        for prefix in await self.store.homed_prefixes():
            if handle_key(prefix) not in prefixes:
                yield Change(Action.UNHOME_PREFIX, f"0.NA/{prefix}")

    # -- the connection ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _streaming(
        self, server: ServerInfo, op: OpCode, body: Body
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """Send an authenticated request to ``server`` over TCP and yield the bytes that
        follow its success response. The reference server answers one request per
        connection, so the answer to its challenge goes on a second one."""
        host, port = _tcp_address(server)
        client = HandleClient(
            host, port, tcp=True, timeout=self.timeout, credentials=self.credentials
        )
        request = client.build(op, body, int(OpFlag.CT)).replace(
            version=REQUEST_VERSION, suggested_version=REQUEST_VERSION
        )
        for _attempt in range(2):
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), self.timeout
            )
            try:
                writer.write(request.encode())
                await writer.drain()
                reply = await asyncio.wait_for(_read_message(reader), self.timeout)
                if reply.response_code == ResponseCode.AUTHENTICATION_NEEDED and (
                    request.op != OpCode.CHALLENGE_RESPONSE
                ):
                    request = client.challenge_answer(request, reply).replace(
                        version=REQUEST_VERSION, suggested_version=REQUEST_VERSION
                    )
                    continue
                if reply.response_code != ResponseCode.SUCCESS:
                    text = reply.body.text if isinstance(reply.body, ErrorBody) else ""
                    raise error_for_code(reply.response_code, text)
                yield _chunks(reader, self.timeout)
                return
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
        raise ProtocolViolation(f"{host}:{port} asked for authentication twice")


_AsyncChanges = AsyncIterator[Change]
_T = TypeVar("_T")


def _source_name(number: int, server: ServerInfo) -> str:
    host, port = _tcp_address(server)
    return f"{number}:{host}:{port}"


def _tcp_address(server: ServerInfo) -> tuple[str, int]:
    interface = server.interface_for(TransportProtocol.TCP, admin=False)
    if interface is None:
        raise ProtocolViolation(f"server {server.server_id} of the primary site has no TCP")
    return str(address_from_bytes(server.address)), interface.port


def _holds(site: SiteInfo, number: int, handle: str) -> bool:
    """Whether server ``number`` of ``site`` holds ``handle`` by the site's hash."""
    if len(site.servers) == 1:
        return True
    try:
        return handle_hash(handle, site.hash_option) % len(site.servers) == number
    except HandleError:
        return True


def _parser_for(server: ServerInfo) -> rp.SignedStreamParser:
    """A stream parser checking signatures against ``server``'s HS_SITE public key: SHA-1
    with an RSA or DSA key, SM3 with an SM2 key (a stream naming another hash is refused)."""
    try:
        key = PublicKeyData.from_bytes(server.public_key).to_public_key()
    except (HandleError, ValueError) as exc:
        raise ProtocolViolation(f"server {server.server_id} has no usable public key") from exc
    if isinstance(key, Sm2PublicKey):
        return rp.SignedStreamParser(
            lambda signature, data: auth.verify_data(key, rp.SM3_HASH_NAME, signature, data),
            frozenset({rp.SM3_HASH_NAME}),
        )
    return rp.SignedStreamParser(
        lambda signature, data: auth.verify_data(key, rp.HASH_NAME, signature, data)
    )


def _text(handle: bytes) -> str:
    try:
        return handle.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolViolation("a replicated handle is not UTF-8") from exc


def _record(values: tuple[bytes, ...]) -> bytes:
    """The stored record of replicated encoded values (each decoded, so a damaged value is
    refused here rather than stored)."""
    return encode_record([HandleValue.decode(v) for v in values])


def _change(txn: rp.StreamTxn) -> Change:
    try:
        action = Action(txn.action)
    except ValueError as exc:
        raise ProtocolViolation(f"unknown transaction action {txn.action}") from exc
    handle = _text(txn.handle)
    if txn.values is not None:
        return Change(action, handle, _record(txn.values))
    if action in (Action.CREATE_HANDLE, Action.UPDATE_HANDLE):
        raise ProtocolViolation(f"transaction {txn.txn_id} has no values")
    return Change(action, handle)


async def _read_message(reader: asyncio.StreamReader) -> Message:
    head = await reader.readexactly(ENVELOPE_SIZE)
    env = Envelope.decode(head)
    decoder = StreamDecoder()
    decoder.feed(head + await reader.readexactly(env.length))
    data = decoder.next_message()
    assert data is not None
    return Message.decode(data)


async def _chunks(reader: asyncio.StreamReader, timeout: float) -> AsyncIterator[bytes]:
    """The bytes of the stream as they arrive; each read bounded by ``timeout``."""
    while True:
        data = await asyncio.wait_for(reader.read(_READ_SIZE), timeout)
        if not data:
            return
        yield data


async def _items(
    chunks: AsyncIterator[bytes],
    parser: rp.SignedStreamParser,
    parse: Callable[[rp.SignedStreamParser], Iterator[_T]],
) -> AsyncIterator[_T]:
    """Parse items from ``chunks`` as they arrive."""
    items = parse(parser)
    async for data in chunks:
        parser.feed(data)
        while True:
            try:
                yield next(items)
            except rp.NeedMoreData:
                items = parse(parser)  # the parser rewound to the last complete item
                break
            except StopIteration:
                return
