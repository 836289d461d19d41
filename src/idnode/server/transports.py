"""asyncio adapters: UDP and TCP sockets around one :class:`Dispatcher` (spec §1.1).

UDP: one request per datagram (a request must fit in 512 bytes); long responses are split
into datagrams by :func:`~idnode.protocol.framing.fragment`. At most ``max_inflight``
requests are worked on at once; beyond that datagrams are dropped, as a DNS server would.

TCP: a stream of messages. A connection stays open after a response only if the request set
the KA flag. Every read has a deadline (``read_timeout`` for the rest of a started message,
``idle_timeout`` between messages), so slow or silent clients cannot hold a connection; at
most ``max_connections`` are open at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

from idnode.errors import ProtocolViolation
from idnode.protocol.codes import OpFlag
from idnode.protocol.framing import fragment
from idnode.protocol.message import ENVELOPE_SIZE, Envelope
from idnode.server.dispatch import Dispatcher
from idnode.server.origin import PEER, peer_text
from idnode.server.wire_io import answer, cached, salvage

__all__ = ["TransportLimits", "UDPServer", "serve_tcp", "serve_udp"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransportLimits:
    max_inflight: int = 1024
    """UDP requests worked on at once; more are dropped."""
    max_connections: int = 1024
    """Open TCP connections; more are closed at once."""
    read_timeout: float = 10.0
    """Seconds to receive the rest of a message once its first byte arrived."""
    idle_timeout: float = 60.0
    """Seconds a kept-alive TCP connection may wait for its next request."""


class UDPServer(asyncio.DatagramProtocol):
    def __init__(self, dispatcher: Dispatcher, limits: TransportLimits) -> None:
        self._dispatcher = dispatcher
        self._limits = limits
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport does not subclass asyncio.DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        started = time.perf_counter()
        hit = cached(self._dispatcher, data)  # answered from the response cache: no task
        if hit is not None:
            if self._transport is not None:
                for datagram in fragment(hit[0]):
                    self._transport.sendto(datagram, addr)
            if (metrics := self._dispatcher.metrics) is not None:
                metrics.native("udp", hit[0], time.perf_counter() - started)
            return
        if len(self._tasks) >= self._limits.max_inflight:
            return
        task = asyncio.get_running_loop().create_task(self._answer(data, addr, started))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str, int], started: float = 0.0) -> None:
        PEER.set(peer_text(addr))  # this task answers this datagram only
        try:
            env = Envelope.decode(data)
            if env.sequence != 0 or len(data) != ENVELOPE_SIZE + env.length:
                raise ProtocolViolation("a UDP request must fit in one datagram")
            opened = self._dispatcher.sessions.unwrap(data)  # ENC: decrypt in its session
            if isinstance(opened, bytes):
                response, request = await answer(self._dispatcher, opened)
                response = self._dispatcher.sessions.wrap(request, response)
            else:
                response = opened.encode()
        except ProtocolViolation as exc:
            stub = salvage(data)
            if stub is None:
                return
            response = self._dispatcher.protocol_error(stub, exc.message).encode()
        except Exception:
            log.exception("UDP request from %s failed", addr)
            return
        if response and self._transport is not None:
            for datagram in fragment(response):
                self._transport.sendto(datagram, addr)
            if (metrics := self._dispatcher.metrics) is not None:
                metrics.native("udp", response, time.perf_counter() - started)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def serve_udp(
    dispatcher: Dispatcher,
    host: str,
    port: int,
    limits: TransportLimits,
    *,
    reuse_port: bool = False,
) -> tuple[asyncio.DatagramTransport, UDPServer]:
    """``reuse_port``: bind with SO_REUSEPORT (worker processes sharing the port)."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: UDPServer(dispatcher, limits), local_addr=(host, port), reuse_port=reuse_port
    )
    return transport, protocol


async def serve_tcp(
    dispatcher: Dispatcher,
    host: str,
    port: int,
    limits: TransportLimits,
    *,
    reuse_port: bool = False,
) -> asyncio.Server:
    open_connections = 0

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_connections
        if open_connections >= limits.max_connections:
            writer.close()
            return
        open_connections += 1
        try:
            await _connection(dispatcher, reader, writer, limits)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except Exception:
            log.exception("TCP connection failed")
        finally:
            open_connections -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return await asyncio.start_server(on_connection, host, port, limit=2**16, reuse_port=reuse_port)


async def _connection(
    dispatcher: Dispatcher,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    limits: TransportLimits,
) -> None:
    PEER.set(peer_text(writer.get_extra_info("peername")))  # this task serves this connection
    while True:
        async with asyncio.timeout(limits.idle_timeout):
            first = await reader.readexactly(1)
        async with asyncio.timeout(limits.read_timeout):
            head = first + await reader.readexactly(ENVELOPE_SIZE - 1)
            try:
                env = Envelope.decode(head)
            except ProtocolViolation as exc:
                # The announced length is over the limit: answer if we can, then hang up.
                stub = salvage(head + await _peek_header(reader))
                if stub is not None:
                    writer.write(dispatcher.protocol_error(stub, exc.message).encode())
                    await writer.drain()
                return
            payload = await reader.readexactly(env.length)
        started = time.perf_counter()
        metrics = dispatcher.metrics
        hit = cached(dispatcher, head + payload)
        if hit is not None:
            writer.write(hit[0])
            if metrics is not None:
                metrics.native("tcp", hit[0], time.perf_counter() - started)
            await writer.drain()
            if not hit[1] & OpFlag.KA:
                return
            continue
        streams: list[AsyncIterator[bytes]] = []
        opened = dispatcher.sessions.unwrap(head + payload)  # ENC: decrypt in its session
        if isinstance(opened, bytes):
            response, request = await answer(dispatcher, opened, streams)
            response = dispatcher.sessions.wrap(request, response)
        else:
            response, request = opened.encode(), None
        if response:
            writer.write(response)
            if metrics is not None:
                metrics.native("tcp", response, time.perf_counter() - started)
            await writer.drain()
        if streams:
            await _send_stream(writer, streams[0], limits)
            return  # the stream ends the connection, as with the reference server
        if request is None or not request.has(OpFlag.KA):
            return


async def _send_stream(
    writer: asyncio.StreamWriter, stream: AsyncIterator[bytes], limits: TransportLimits
) -> None:
    """Write a replication stream; each chunk must be taken by the peer within the read
    timeout (a stalled mirror does not hold the producer forever)."""
    async for chunk in stream:
        writer.write(chunk)
        async with asyncio.timeout(limits.read_timeout):
            await writer.drain()


async def _peek_header(reader: asyncio.StreamReader) -> bytes:
    with contextlib.suppress(asyncio.IncompleteReadError):
        return await reader.readexactly(24)
    return b""
