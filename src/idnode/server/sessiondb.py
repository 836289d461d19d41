"""The session state the worker processes of one node share (``workers = N``).

A node run by several workers (:mod:`idnode.server.workers`) gets each request from whichever
worker the kernel's hash picks: a native session set up over UDP is used next on a TCP
connection that may land on another worker, an HTTP client opens a new connection for each
request. So the state of a session must be where every worker sees it at once. It lives in a
small SQLite database of its own, **not** the node's handle database:

``<node dir>/.sessions/sessions.db`` (directory mode 0700, files mode 0600: it holds session
keys), in WAL mode, one connection per worker. Tables:

* ``native``: native sessions (op 400): key, identity, authenticated flag, idle timeout and
  last use, the replay window of client counters, the server's counter, a pending challenge
  (:mod:`idnode.server.shared_sessions`);
* ``http``: ``/api/sessions`` sessions: nonce, identity, last use (:mod:`idnode.http.sessions`);
* ``meta``: the key SNMS login tokens are signed with (:mod:`idnode.industry.tokens`).

Why a database and not files or signed tokens: the replay window of a native session changes
with every request and must be checked and updated atomically across workers (a counter
accepted once per *worker* could be replayed to another one), and the HTTP session's identity
changes after the session id was handed out; a transaction (``BEGIN IMMEDIATE``, a few tens
of microseconds, writes serialised by SQLite's lock with a 5 s busy timeout) does exactly
that. SNMS tokens, whose content never changes, are signed instead, and nothing of them is
stored (a disabled account's are ended by the account's own row in the node's database). Cost,
measured on a 2-core virtual machine: a request in a native session spends about 0.1 ms in the
database (the read, the counter transaction, the server's counter) against 2 us in memory, an
``/api/sessions`` lookup about 10 us against 0.5 us: small beside an administrative write,
which waits for its own synced commit.

Durability: commits are not synced (``synchronous = NORMAL``): they survive a worker being
killed, and may be lost only with the machine (power loss, kernel crash). Losing the last
counters of a session would let a replay through, so the database records the kernel's boot
id and, opened after a reboot, drops every native and HTTP session (clients set up new ones,
as after any restart of a single-process node). Where no boot id is available, every commit is
synced (``synchronous = FULL``). Deleted rows are overwritten (``secure_delete``), so an ended
session's key does not stay in the file. A single-process node (``workers = 1``) keeps all of
this in memory and never opens the database.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["BUSY_TIMEOUT", "SessionDatabase", "session_directory"]

#: Milliseconds a worker waits for another's write transaction.
BUSY_TIMEOUT = 5000
FILE = "sessions.db"
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS native (
    id INTEGER PRIMARY KEY,
    key BLOB,
    algorithm INTEGER NOT NULL,
    mode INTEGER NOT NULL,
    identity_handle TEXT,
    identity_index INTEGER,
    timeout REAL NOT NULL,
    last_used REAL NOT NULL,
    authenticated INTEGER NOT NULL DEFAULT 0,
    floor INTEGER NOT NULL DEFAULT 0,
    seen BLOB NOT NULL DEFAULT x'',
    server_counter INTEGER NOT NULL DEFAULT 0,
    pending BLOB
);
CREATE INDEX IF NOT EXISTS native_used ON native (last_used);
CREATE TABLE IF NOT EXISTS http (
    id TEXT PRIMARY KEY,
    nonce BLOB NOT NULL,
    last_used REAL NOT NULL,
    identity_handle TEXT,
    identity_index INTEGER,
    auth_header TEXT
);
CREATE INDEX IF NOT EXISTS http_used ON http (last_used);
DROP TABLE IF EXISTS token_generation;
"""


def session_directory(config: Any) -> Path:
    """Where the workers of the node configured by ``config`` share session state."""
    return Path(config.directory) / ".sessions"


def _boot_id() -> str | None:
    try:
        return _BOOT_ID.read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


class SessionDatabase:
    """One worker's connection to the shared session database (module docstring). Used from
    the worker's event loop thread only."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        path = directory / FILE
        with contextlib.suppress(FileExistsError):  # created private before SQLite opens it
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self.path = path
        self.connection = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT / 1000
        )
        boot = _boot_id()
        db = self.connection
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {'NORMAL' if boot else 'FULL'}")
        db.execute("PRAGMA secure_delete = ON")
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            row = db.execute("SELECT value FROM meta WHERE name = 'boot'").fetchone()
            if boot is not None and (row is None or row[0] != boot.encode()):
                db.execute("DELETE FROM native")  # commits may have been lost with the machine
                db.execute("DELETE FROM http")
                db.execute("INSERT OR REPLACE INTO meta VALUES ('boot', ?)", (boot.encode(),))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on leaving, rolled back on an
        exception."""
        db = self.connection
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def secret(self, name: str, size: int = 32) -> bytes:
        """The random secret ``name`` of the node, made (once, whichever worker is first) on
        first use and kept in the database."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta VALUES (?, ?)", (name, secrets.token_bytes(size))
            )
            row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return bytes(row[0])

    def close(self) -> None:
        self.connection.close()
