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
import contextvars
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

from idnode.errors import ProtocolViolation
from idnode.protocol.codes import OpFlag
from idnode.protocol.framing import fragment
from idnode.protocol.message import ENVELOPE_SIZE, HEADER_SIZE, Envelope
from idnode.server.dispatch import Dispatcher
from idnode.server.origin import PEER, peer_text
from idnode.server.wire_io import answer, cached, salvage

__all__ = ["TCPConnection", "TransportLimits", "UDPServer", "serve_tcp", "serve_udp"]

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
            self._send(hit[0], addr, started)
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
        if response:
            self._send(response, addr, started)

    def _send(self, response: bytes, addr: tuple[str, int], started: float) -> None:
        """Send ``response`` to ``addr`` and time it in the metrics from ``started``."""
        if self._transport is None:
            return
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
    """Serve the Handle protocol over TCP on ``host``:``port`` (:class:`TCPConnection`)."""
    loop = asyncio.get_running_loop()
    count = _OpenCount()
    return await loop.create_server(
        lambda: TCPConnection(dispatcher, limits, count), host, port, reuse_port=reuse_port
    )


class _OpenCount:
    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open = 0


#: Bytes buffered while a request is being answered before reading pauses.
_READ_LIMIT = 1 << 17


class TCPConnection(asyncio.Protocol):
    """One TCP connection: messages one after another, each answered before the next is
    looked at.

    A request the response cache answers (:func:`~idnode.server.wire_io.cached`) is answered
    inside :meth:`data_received`, with no task; any other runs as a task of its own, during
    which further bytes wait in the buffer (reading pauses beyond ``_READ_LIMIT``). While the
    peer is not taking what was written (the transport paused writing), nothing more is
    answered.

    Deadlines (module docstring): ``read_timeout`` from the first byte of a message to its
    last, and for a peer not taking a response; ``idle_timeout`` from a response (or the
    connection's start) to the next message's first byte; none while a request is being
    answered. One timer per connection, re-armed when it fires before the deadline then in
    force, and brought forward only when part of a message or an answer waits, so a message
    that arrives whole costs no timer work.
    """

    def __init__(self, dispatcher: Dispatcher, limits: TransportLimits, count: _OpenCount) -> None:
        self._dispatcher = dispatcher
        self._limits = limits
        self._count = count
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._idle_since = 0.0  # when the connection last had nothing to do
        self._message_since: float | None = None  # first byte of the message being read
        self._writable: asyncio.Future[None] | None = None  # while writing is paused
        self._blocked_since = 0.0  # when writing paused
        self._refusal: str | None = None  # why the envelope was refused (_refuse)
        self._paused_reading = False
        self._eof = False
        self._context = contextvars.copy_context()  # PEER, for the tasks of this connection

    # -- asyncio callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._count.open >= self._limits.max_connections:
            transport.close()
            return
        self._transport = cast(asyncio.Transport, transport)
        self._count.open += 1
        self._context.run(PEER.set, peer_text(transport.get_extra_info("peername")))
        self._idle_since = self._loop.time()
        self._rearm()

    def data_received(self, data: bytes) -> None:
        if self._transport is None:
            return
        self._buffer += data
        if self._message_since is None:
            self._message_since = self._loop.time()
        if self._task is None and self._writable is None:
            self._process()
        if self._transport is None:
            return
        if self._message_since is not None:  # part of a message waits: its deadline holds
            self._tighten()
        if len(self._buffer) > _READ_LIMIT:
            self._transport.pause_reading()
            self._paused_reading = True

    def eof_received(self) -> bool:
        self._eof = True
        if self._task is None and self._writable is None:
            self._close()
        return True  # otherwise the transport stays open for the answer being made

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self._loop.create_future()
            self._blocked_since = self._loop.time()
            self._tighten()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)
        if self._task is None:
            self._process()

    def connection_lost(self, exc: Exception | None) -> None:
        self._close()
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_exception(ConnectionResetError("connection lost"))
            writable.exception()  # retrieved here: the answering task may not be waiting
        if self._task is not None:
            self._task.cancel()

    # -- requests ------------------------------------------------------------------------------

    def _process(self) -> None:
        """Answer the whole messages in the buffer, in order, until one needs a task."""
        buffer = self._buffer
        while self._transport is not None and self._task is None and self._writable is None:
            if self._refusal is not None:
                self._refuse(self._refusal)
                break
            if len(buffer) < ENVELOPE_SIZE:
                break
            try:
                length = Envelope.decode(bytes(buffer[:ENVELOPE_SIZE])).length
            except ProtocolViolation as exc:
                self._refusal = exc.message
                self._refuse(exc.message)
                break
            end = ENVELOPE_SIZE + length
            if len(buffer) < end:
                break
            message = bytes(buffer[:end])
            del buffer[:end]
            now = self._loop.time()
            self._message_since = now if buffer else None
            started = time.perf_counter()
            hit = cached(self._dispatcher, message)
            if hit is None:
                self._task = self._loop.create_task(
                    self._answer(message, started), context=self._context
                )
                return
            self._send(hit[0], started)
            if not hit[1] & OpFlag.KA:
                self._close()
                return
            self._idle_since = now
        if self._transport is None:
            return
        if self._eof and self._task is None and self._writable is None:
            self._close()
        elif self._paused_reading and len(buffer) <= _READ_LIMIT:
            self._paused_reading = False
            self._transport.resume_reading()

    async def _answer(self, message: bytes, started: float) -> None:
        """Answer ``message`` the ordinary way, then go on with the buffer."""
        dispatcher = self._dispatcher
        keep = False
        try:
            streams: list[AsyncIterator[bytes]] = []
            opened = dispatcher.sessions.unwrap(message)  # ENC: decrypt in its session
            if isinstance(opened, bytes):
                response, request = await answer(dispatcher, opened, streams)
                response = dispatcher.sessions.wrap(request, response)
            else:
                response, request = opened.encode(), None
            if response:
                self._send(response, started)
            if streams:
                await self._send_stream(streams[0])  # the stream ends the connection
            else:
                keep = request is not None and request.has(OpFlag.KA)
        except (ConnectionError, TimeoutError):
            pass
        except Exception:
            log.exception("TCP connection failed")
        finally:
            self._task = None
        if not keep:
            self._close()
            return
        self._idle_since = self._loop.time()
        self._process()

    def _send(self, response: bytes, started: float) -> None:
        """Write ``response`` to a request read at ``started`` (``perf_counter``), timed in
        the metrics."""
        if self._transport is None:
            return
        self._transport.write(response)
        if (metrics := self._dispatcher.metrics) is not None:
            metrics.native("tcp", response, time.perf_counter() - started)

    async def _send_stream(self, stream: AsyncIterator[bytes]) -> None:
        """Write a replication stream; each chunk must be taken by the peer within the read
        timeout (a stalled mirror does not hold the producer forever)."""
        async for chunk in stream:
            if self._transport is None:
                return
            self._transport.write(chunk)
            if self._writable is not None:
                async with asyncio.timeout(self._limits.read_timeout):
                    await self._writable

    def _refuse(self, reason: str) -> None:
        """The envelope was refused for ``reason`` (it announced more than a message may
        hold): once the message header after it is in, answer PROTOCOL_ERROR if that header
        names a request, then hang up without reading on (no header within the read deadline:
        hang up)."""
        if self._transport is None or len(self._buffer) < ENVELOPE_SIZE + HEADER_SIZE:
            return
        stub = salvage(bytes(self._buffer[: ENVELOPE_SIZE + HEADER_SIZE]))
        if stub is not None:
            self._transport.write(self._dispatcher.protocol_error(stub, reason).encode())
        self._close()

    # -- deadlines -----------------------------------------------------------------------------

    def _deadline(self) -> float:
        if self._writable is not None:
            return self._blocked_since + self._limits.read_timeout
        if self._task is not None:
            return self._loop.time() + self._limits.read_timeout  # answering: look later
        if self._message_since is not None:
            return self._message_since + self._limits.read_timeout
        return self._idle_since + self._limits.idle_timeout

    def _tighten(self) -> None:
        """Bring the timer forward to the deadline now in force if that is earlier."""
        if self._timer is not None and self._timer.when() > self._deadline():
            self._rearm()

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(self._deadline(), self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self._transport is None:
            return
        if self._loop.time() < self._deadline():
            self._rearm()
        else:  # a peer not taking its responses: drop them rather than wait to flush them
            self._close(abort=self._writable is not None)

    def _close(self, *, abort: bool = False) -> None:
        transport, self._transport = self._transport, None
        if transport is None:
            return
        self._count.open -= 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if abort:
            transport.abort()
        else:
            transport.close()
