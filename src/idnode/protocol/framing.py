"""Framing of messages on UDP and TCP (spec §1.1, §0.8).

UDP: a message whose envelope and payload exceed 512 bytes goes out as several datagrams.
Every datagram carries a full envelope with the same request id, sequence numbers 0, 1, 2...,
and the *total* payload length; each holds at most 492 payload bytes (the reference server's
layout, seen in every multi-datagram recording). :class:`Reassembler` puts them back together.

TCP: a stream of envelope + MessageLength bytes; :class:`StreamDecoder` splits it.

Both are sans-IO: bytes in, complete message bytes out; time is passed in.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from idnode.errors import ProtocolViolation
from idnode.protocol.message import ENVELOPE_SIZE, Envelope

__all__ = ["MAX_DATAGRAM", "Reassembler", "StreamDecoder", "fragment"]

#: Largest UDP datagram of the protocol.
MAX_DATAGRAM = 512
_CHUNK = MAX_DATAGRAM - ENVELOPE_SIZE


def fragment(message: bytes) -> list[bytes]:
    """Split an encoded message into UDP datagrams (one if it fits in 512 bytes)."""
    if len(message) <= MAX_DATAGRAM:
        return [message]
    env = Envelope.decode(message)
    payload = message[ENVELOPE_SIZE:]
    out = []
    for seq, start in enumerate(range(0, len(payload), _CHUNK)):
        head = Envelope(
            env.major,
            env.minor,
            env.flags,
            env.suggested_major,
            env.suggested_minor,
            env.session_id,
            env.request_id,
            seq,
            len(payload),
        )
        out.append(head.encode() + payload[start : start + _CHUNK])
    return out


@dataclass
class _Partial:
    envelope: Envelope
    started: float
    chunks: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


class Reassembler:
    """Collects UDP datagrams into whole messages.

    ``feed(datagram, now)`` returns the complete message (envelope with sequence 0, then the
    payload) once every datagram of it has arrived, else None. At most ``max_pending``
    messages are held, each for at most ``timeout`` seconds.
    """

    def __init__(self, *, max_pending: int = 64, timeout: float = 10.0) -> None:
        self._pending: OrderedDict[int, _Partial] = OrderedDict()
        self._max_pending = max_pending
        self._timeout = timeout

    def feed(self, datagram: bytes, now: float) -> bytes | None:
        env = Envelope.decode(datagram)
        chunk = datagram[ENVELOPE_SIZE:]
        if env.sequence == 0 and len(chunk) == env.length:
            return datagram
        expected = -(-env.length // _CHUNK)
        if env.sequence >= expected or len(chunk) > _CHUNK or not chunk:
            raise ProtocolViolation(
                f"datagram {env.sequence} does not fit a {env.length}-byte message"
            )
        self._expire(now)
        part = self._pending.get(env.request_id)
        if part is None or part.envelope.length != env.length:
            part = _Partial(env, now)
            self._pending[env.request_id] = part
            while len(self._pending) > self._max_pending:
                self._pending.popitem(last=False)
        if env.sequence not in part.chunks:
            part.chunks[env.sequence] = chunk
            part.size += len(chunk)
        if part.size < env.length or len(part.chunks) < expected:
            return None
        del self._pending[env.request_id]
        payload = b"".join(part.chunks[i] for i in range(expected))
        if len(payload) != env.length:
            raise ProtocolViolation("datagrams do not add up to the message length")
        first = part.envelope
        head = Envelope(
            first.major,
            first.minor,
            first.flags,
            first.suggested_major,
            first.suggested_minor,
            first.session_id,
            first.request_id,
            0,
            env.length,
        )
        return head.encode() + payload

    def _expire(self, now: float) -> None:
        while self._pending:
            key, part = next(iter(self._pending.items()))
            if now - part.started <= self._timeout:
                break
            del self._pending[key]


class StreamDecoder:
    """Splits a TCP byte stream into messages.

    ``feed(data)`` buffers bytes; ``next_message()`` returns one complete message (envelope
    included) or None if more bytes are needed. An envelope announcing more than the
    protocol's maximum raises ProtocolViolation before anything is buffered for it.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_message(self) -> bytes | None:
        if len(self._buf) < ENVELOPE_SIZE:
            return None
        env = Envelope.decode(bytes(self._buf[:ENVELOPE_SIZE]))
        total = ENVELOPE_SIZE + env.length
        if len(self._buf) < total:
            return None
        msg = bytes(self._buf[:total])
        del self._buf[:total]
        return msg
