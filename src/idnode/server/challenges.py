"""Pending challenge-response authentications (spec §3.1, §0.6).

A 402 challenge carries a server-chosen, non-zero session id in its envelope; the client's
answer (op 200) echoes it. This table maps that id to what the answer must be checked against
and the request it unlocks. Time is passed in (``now``); entries expire after ``timeout``
seconds and the table never holds more than ``capacity`` entries (oldest dropped first), so a
flood of unanswered requests cannot grow memory without bound.
"""

from __future__ import annotations

import secrets
import struct
from collections import OrderedDict
from dataclasses import dataclass

from idnode.errors import ProtocolViolation
from idnode.protocol.message import Message

__all__ = ["Challenges", "PendingChallenge"]


@dataclass(frozen=True, slots=True)
class PendingChallenge:
    request: Message  #: the request the answer will unlock
    nonce: bytes  #: the 16 random bytes sent to the client
    digest: bytes  #: the raw digest of the request (no hash-type byte)
    expires: float  #: when the answer stops being accepted

    #: The head of :meth:`to_bytes`: expiry, nonce length, digest length.
    HEAD = struct.Struct(">dHH")

    def to_bytes(self) -> bytes:
        """The challenge as bytes, for tables that keep it outside this process."""
        head = self.HEAD.pack(self.expires, len(self.nonce), len(self.digest))
        return head + self.nonce + self.digest + self.request.encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> PendingChallenge | None:
        """What :meth:`to_bytes` wrote; None for anything else."""
        if len(data) < cls.HEAD.size:
            return None
        expires, nonce_length, digest_length = cls.HEAD.unpack_from(data)
        start = cls.HEAD.size
        nonce = data[start : start + nonce_length]
        digest = data[start + nonce_length : start + nonce_length + digest_length]
        try:
            request = Message.decode(data[start + nonce_length + digest_length :])
        except ProtocolViolation:
            return None
        return cls(request, nonce, digest, expires)


class Challenges:
    def __init__(self, *, timeout: float = 60.0, capacity: int = 10000) -> None:
        self._pending: OrderedDict[int, PendingChallenge] = OrderedDict()
        self._timeout = timeout
        self._capacity = capacity

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, request: Message, nonce: bytes, digest: bytes, now: float) -> int:
        """Remember a challenge; returns its session id: random, never 0, so that nobody can
        guess the id of another client's pending challenge and answer it first."""
        self._expire(now)
        session_id = secrets.randbelow(0x7FFFFFFF) + 1
        while session_id in self._pending:
            session_id = secrets.randbelow(0x7FFFFFFF) + 1
        self._pending[session_id] = PendingChallenge(request, nonce, digest, now + self._timeout)
        while len(self._pending) > self._capacity:
            self._pending.popitem(last=False)
        return session_id

    def take(self, session_id: int, now: float) -> PendingChallenge | None:
        """Remove and return the live challenge for ``session_id`` (each answer is single-use)."""
        self._expire(now)
        return self._pending.pop(session_id, None)

    def _expire(self, now: float) -> None:
        while self._pending:
            key, pending = next(iter(self._pending.items()))
            if pending.expires > now:
                break
            del self._pending[key]
