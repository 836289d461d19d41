"""HTTP authentication sessions (spec §5.4): a server nonce per session, and the identity once
a client has answered it.

:class:`SessionStore` is bounded and expiring: a session not used for ``timeout`` seconds is
gone, and beyond ``capacity`` sessions the least recently used one is dropped, so anonymous
clients creating sessions cannot grow memory without bound. Time and randomness are injected
(``clock``, ``random_bytes``) so tests can step through expiry.
"""

from __future__ import annotations

import base64
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from idnode.server.authz import Identity

__all__ = ["DEFAULT_CAPACITY", "DEFAULT_TIMEOUT", "Session", "SessionStore"]

#: Idle seconds after which a session expires (the reference server's default: 30 minutes).
DEFAULT_TIMEOUT = 1800.0
#: Sessions kept at most.
DEFAULT_CAPACITY = 10000


@dataclass
class Session:
    """One session: its id, the 16-byte server nonce a client signs, and who it proved to be."""

    id: str
    nonce: bytes
    last_used: float
    identity: Identity | None = None
    #: The ``Authorization`` header that authenticated the session: repeating it needs no
    #: new signature check (the reference server's "seen before" rule).
    auth_header: str | None = None


class SessionStore:
    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self.timeout = timeout
        self.capacity = capacity
        self._clock = clock
        self._random = random_bytes

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self) -> Session:
        """A new session with a fresh nonce (drops expired and, beyond capacity, old ones)."""
        now = self._clock()
        self._expire(now)
        session_id = base64.urlsafe_b64encode(self._random(18)).decode("ascii")
        while session_id in self._sessions:
            session_id = base64.urlsafe_b64encode(self._random(18)).decode("ascii")
        session = Session(session_id, self._random(16), now)
        self._sessions[session_id] = session
        while len(self._sessions) > self.capacity:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str) -> Session | None:
        """The live session ``session_id`` (its idle time restarts), or None."""
        now = self._clock()
        self._expire(now)
        session = self._sessions.get(session_id)
        if session is not None:
            session.last_used = now
            self._sessions.move_to_end(session_id)
        return session

    def delete(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    def _expire(self, now: float) -> None:
        while self._sessions:
            key, session = next(iter(self._sessions.items()))
            if session.last_used + self.timeout > now:
                break
            del self._sessions[key]
