"""HTTP authentication sessions (spec §5.4): a server nonce per session, and the identity once
a client has answered it.

:class:`SessionStore` is bounded and expiring: a session not used for ``timeout`` seconds is
gone, and beyond ``capacity`` sessions the least recently used one is dropped, so anonymous
clients creating sessions cannot grow memory without bound. Time and randomness are injected
(``clock``, ``random_bytes``) so tests can step through expiry.

A node of several worker processes (``workers = N``) uses :class:`SharedSessionStore`
instead: an HTTP client opens connections that the kernel spreads over the workers, so a
session created by one must be found, authenticated and deleted by any other. Its sessions are
rows of the node's shared session database (:mod:`idnode.server.sessiondb`): a lookup is one
indexed read; the last use is written back at most once a second (:data:`TOUCH`, plenty for a
30-minute idle timeout); authenticating writes the identity to the row, and deleting removes
it, for every worker at once. A stateless signed session id would not do: the identity is
bound to the session *after* its id was handed out, and a deleted session must stop working.
Each change to a session goes through the store (:meth:`SessionStore.authenticated`), so the
two stores are interchangeable; the single-process node keeps the in-memory one, with no
file access per request.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from idnode.server.authz import Identity
from idnode.server.sessiondb import SessionDatabase

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_TIMEOUT",
    "TOUCH",
    "Session",
    "SessionStore",
    "SharedSessionStore",
]

#: Idle seconds after which a session expires (the reference server's default: 30 minutes).
DEFAULT_TIMEOUT = 1800.0
#: Sessions kept at most.
DEFAULT_CAPACITY = 10000
#: Seconds between two writes of a shared session's last use.
TOUCH = 1.0


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

    def authenticated(self, session: Session, identity: Identity, header: str) -> None:
        """``session`` has proved to be ``identity`` with the ``Authorization`` ``header``."""
        session.identity, session.auth_header = identity, header

    def _expire(self, now: float) -> None:
        while self._sessions:
            key, session = next(iter(self._sessions.items()))
            if session.last_used + self.timeout > now:
                break
            del self._sessions[key]


class SharedSessionStore(SessionStore):
    """Sessions in the shared session database ``db`` (module docstring); the
    :class:`Session` objects it returns are snapshots, changed through the store."""

    def __init__(
        self,
        db: SessionDatabase,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        capacity: int = DEFAULT_CAPACITY,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        super().__init__(timeout=timeout, capacity=capacity, clock=clock, random_bytes=random_bytes)
        self.db = db
        self._sweep_at = 0.0

    def __len__(self) -> int:
        return int(self.db.connection.execute("SELECT COUNT(*) FROM http").fetchone()[0])

    def create(self) -> Session:
        now = self._clock()
        with self.db.transaction() as db:
            if now >= self._sweep_at:  # expired ones, at most once a second
                self._sweep_at = now + 1.0
                db.execute("DELETE FROM http WHERE last_used <= ?", (now - self.timeout,))
            while True:
                session_id = base64.urlsafe_b64encode(self._random(18)).decode("ascii")
                session = Session(session_id, self._random(16), now)
                try:
                    db.execute(
                        "INSERT INTO http (id, nonce, last_used) VALUES (?, ?, ?)",
                        (session.id, session.nonce, now),
                    )
                    break
                except sqlite3.IntegrityError:
                    continue
            (count,) = db.execute("SELECT COUNT(*) FROM http").fetchone()
            if count > self.capacity:
                db.execute(
                    "DELETE FROM http WHERE id IN (SELECT id FROM http ORDER BY last_used LIMIT ?)",
                    (count - self.capacity,),
                )
        return session

    def get(self, session_id: str) -> Session | None:
        now = self._clock()
        db = self.db.connection
        row = db.execute(
            "SELECT nonce, last_used, identity_handle, identity_index, auth_header "
            "FROM http WHERE id = ?",
            (session_id,),
        ).fetchone()
        if row is None:
            return None
        nonce, last_used, handle, index, header = row
        if last_used + self.timeout <= now:
            db.execute("DELETE FROM http WHERE id = ?", (session_id,))
            return None
        if now - last_used >= TOUCH:
            db.execute(
                "UPDATE http SET last_used = ? WHERE id = ? AND last_used < ?",
                (now, session_id, now),
            )
        identity = None if handle is None else Identity(handle, index)
        return Session(session_id, bytes(nonce), now, identity, header)

    def delete(self, session_id: str) -> bool:
        cursor = self.db.connection.execute("DELETE FROM http WHERE id = ?", (session_id,))
        return cursor.rowcount > 0

    def authenticated(self, session: Session, identity: Identity, header: str) -> None:
        super().authenticated(session, identity, header)
        self.db.connection.execute(
            "UPDATE http SET identity_handle = ?, identity_index = ?, auth_header = ? WHERE id = ?",
            (identity.handle, identity.index, header, session.id),
        )
