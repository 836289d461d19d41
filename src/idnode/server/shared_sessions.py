"""Native sessions shared by the worker processes of a node (``workers = N``).

:class:`SharedSessionTable` is a :class:`~idnode.server.sessions.SessionTable` whose sessions
are rows of the node's shared session database (:mod:`idnode.server.sessiondb`), so that a
session set up by one worker (say over UDP) goes on in whichever worker gets its next
request (a TCP connection hashed elsewhere). What each step costs and why it is safe:

* **Setup** (op 400): one ``INSERT`` (an id chosen again if another worker took it).
* **A request in the session**: one read of the row (the session, as a snapshot); its last
  use is written back at most once a second (:data:`TOUCH`), which is all the idle timeout
  needs.
* **Replay window**: a counter is accepted by a write transaction that reads the session's
  window, checks the counter and stores the window with it (``BEGIN IMMEDIATE``: the workers'
  checks are serialised by the database lock). So a counter is accepted once per *session*,
  whichever worker gets it: a message replayed to another worker is refused (505) exactly as
  one replayed to the same worker, and the window's floor moves for all of them. (Keeping
  the window per worker would let a captured message run once in every worker.)
* **Server counter** (the ``HS_MAC`` of responses): incremented in the row by one
  ``UPDATE ... RETURNING``, so two workers never sign two responses with one counter (the
  client refuses a repeated one).
* **Authentication, the mode-2 key (op 402), a pending challenge**: written to the row when
  they change; a challenge is taken by a transaction that reads and clears it, so an answer
  unlocks its request once, in one worker.
* **Termination** (op 401) deletes the row: every worker answers the session's next request
  with 500.

Bounds as in memory: a session expires after its idle timeout (expired rows are deleted at
most once a second, and whenever one is looked up), and beyond ``capacity`` the least
recently used ones are deleted. The key is in the row (the database is private to the node's
user: mode 0600 in a 0700 directory); deleted rows are overwritten.
"""

from __future__ import annotations

import sqlite3
from array import array

from idnode.protocol.session import DEFAULT_SESSION_TIMEOUT
from idnode.server.authz import Identity
from idnode.server.challenges import PendingChallenge
from idnode.server.sessiondb import SessionDatabase
from idnode.server.sessions import (
    COUNTER_WINDOW,
    ServerSession,
    SessionTable,
    SessionTimeout,
)

__all__ = ["TOUCH", "SharedSessionTable", "admit"]

#: Seconds between two writes of a session's last use.
TOUCH = 1.0
_COLUMNS = (
    "id, key, algorithm, mode, identity_handle, identity_index, timeout, last_used, authenticated"
)


def admit(floor: int, seen: bytes, counter: int, *, unique: bool) -> tuple[bool, int, bytes]:
    """The replay window of :class:`~idnode.server.sessions.SessionTable`, on its stored form:
    ``seen``, the last :data:`COUNTER_WINDOW` counters in the order they came (4 bytes each),
    and ``floor``, at or below which every counter counts as seen. Returns (accepted, the new
    floor, the new ``seen``)."""
    counters = array("I")
    counters.frombytes(seen)
    if unique and (counter <= floor or counter in counters):
        return False, floor, seen
    if counter == 0:
        return not unique, floor, seen
    if counter not in counters:
        counters.append(counter)
    if len(counters) > COUNTER_WINDOW:
        del counters[: len(counters) - COUNTER_WINDOW]
        floor = max(floor, counters[0])
    return True, floor, counters.tobytes()


class SharedSessionTable(SessionTable):
    """Native sessions in the shared session database ``db`` (module docstring). The
    :class:`ServerSession` objects it returns are snapshots: every change goes through the
    table's methods."""

    def __init__(
        self,
        db: SessionDatabase,
        *,
        capacity: int = 10000,
        max_timeout: float = DEFAULT_SESSION_TIMEOUT,
    ) -> None:
        super().__init__(capacity=capacity, max_timeout=max_timeout)
        self.db = db
        self._sweep_at = 0.0

    def __len__(self) -> int:
        return int(self.db.connection.execute("SELECT COUNT(*) FROM native").fetchone()[0])

    def add(self, session: ServerSession, now: float) -> None:
        identity = session.identity
        with self.db.transaction() as db:
            self._sweep(db, now)
            while True:
                try:
                    db.execute(
                        "INSERT INTO native (id, key, algorithm, mode, identity_handle, "
                        "identity_index, timeout, last_used) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            session.session_id,
                            session.key,
                            session.algorithm,
                            session.mode,
                            None if identity is None else identity.handle,
                            None if identity is None else identity.index,
                            session.timeout,
                            now,
                        ),
                    )
                    break
                except sqlite3.IntegrityError:  # the id is another live session's
                    session.session_id = self.new_id()
            (count,) = db.execute("SELECT COUNT(*) FROM native").fetchone()
            if count > self.capacity:
                db.execute(
                    "DELETE FROM native WHERE id IN "
                    "(SELECT id FROM native ORDER BY last_used LIMIT ?)",
                    (count - self.capacity,),
                )

    def _sweep(self, db: sqlite3.Connection, now: float) -> None:
        if now >= self._sweep_at:
            self._sweep_at = now + 1.0
            db.execute("DELETE FROM native WHERE last_used + timeout < ?", (now,))

    def _row(self, session_id: int, now: float, *, pending: bool) -> ServerSession | None:
        columns = _COLUMNS + (", pending" if pending else "")
        row = self.db.connection.execute(
            f"SELECT {columns} FROM native WHERE id = ?", (session_id,)
        ).fetchone()
        if row is None:
            return None
        handle, index = row[4], row[5]
        session = ServerSession(
            session_id=row[0],
            key=None if row[1] is None else bytes(row[1]),
            algorithm=row[2],
            mode=row[3],
            identity=None if handle is None else Identity(handle, index),
            timeout=row[6],
            last_used=row[7],
            authenticated=bool(row[8]),
            pending=PendingChallenge.from_bytes(row[9]) if pending and row[9] is not None else None,
        )
        if session.expired(now):
            self.remove(session_id)
            return None
        return session

    def get(self, session_id: int, now: float) -> ServerSession | None:
        session = self._row(session_id, now, pending=True)
        if session is None:
            return None
        if now - session.last_used >= TOUCH:
            self.db.connection.execute(
                "UPDATE native SET last_used = ? WHERE id = ? AND last_used < ?",
                (now, session_id, now),
            )
        session.last_used = now
        return session

    def peek(self, session_id: int, now: float) -> ServerSession | None:
        return self._row(session_id, now, pending=False)

    def remove(self, session_id: int) -> None:
        self.db.connection.execute("DELETE FROM native WHERE id = ?", (session_id,))

    def record_counter(self, session: ServerSession, counter: int, *, unique: bool) -> bool:
        with self.db.transaction() as db:
            row = db.execute(
                "SELECT floor, seen FROM native WHERE id = ?", (session.session_id,)
            ).fetchone()
            if row is None:  # ended meanwhile (op 401 to another worker)
                raise SessionTimeout()
            accepted, floor, seen = admit(row[0], bytes(row[1]), counter, unique=unique)
            if not accepted:
                return False
            db.execute(
                "UPDATE native SET floor = ?, seen = ?, last_used = MAX(last_used, ?) WHERE id = ?",
                (floor, seen, session.last_used, session.session_id),
            )
        return True

    def next_counter(self, session: ServerSession) -> int:
        row = self.db.connection.execute(
            "UPDATE native SET server_counter = server_counter % 4294967295 + 1 "
            "WHERE id = ? RETURNING server_counter",
            (session.session_id,),
        ).fetchone()
        if row is None:  # ended meanwhile: the client refuses the response anyway
            return session.next_counter()
        return int(row[0])

    def set_key(self, session: ServerSession, algorithm: int, key: bytes) -> None:
        super().set_key(session, algorithm, key)
        self.db.connection.execute(
            "UPDATE native SET algorithm = ?, key = ? WHERE id = ?",
            (algorithm, key, session.session_id),
        )

    def set_authenticated(self, session: ServerSession) -> None:
        super().set_authenticated(session)
        self.db.connection.execute(
            "UPDATE native SET authenticated = 1 WHERE id = ?", (session.session_id,)
        )

    def hold(self, session: ServerSession, pending: PendingChallenge) -> None:
        super().hold(session, pending)
        self.db.connection.execute(
            "UPDATE native SET pending = ? WHERE id = ?",
            (pending.to_bytes(), session.session_id),
        )

    def take_pending(self, session: ServerSession) -> PendingChallenge | None:
        session.pending = None
        with self.db.transaction() as db:
            row = db.execute(
                "SELECT pending FROM native WHERE id = ?", (session.session_id,)
            ).fetchone()
            if row is None or row[0] is None:
                return None
            db.execute("UPDATE native SET pending = NULL WHERE id = ?", (session.session_id,))
        return PendingChallenge.from_bytes(bytes(row[0]))
