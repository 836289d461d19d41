"""SQLite storage backend: :class:`SQLiteStore` implements :class:`~idnode.store.base.HandleStore`.

Threading follows datasette: one dedicated writer thread owns the only write connection, and
every write is a single ``BEGIN IMMEDIATE ... COMMIT`` transaction in which the checks and the
writes happen together, so a failed check changes nothing. Reads run on a small pool of
reader threads, each with its own (``query_only``) connection, and the event loop awaits
their futures (``run_in_executor`` on these executors); except the read of one record by key
(:meth:`SQLiteStore.get_record`, behind every resolution), which the event loop's thread runs
itself on its own read-only connection, because the hand-off to a thread costs more than
the query (see that method for what it may block on).

Durability: WAL journal mode with ``synchronous=FULL`` fsyncs the WAL on every commit, so a
write that has returned survives ``kill -9`` and power loss. Every query uses an index;
prefix listings are key-range scans, e.g. ``handle_key >= 'P/' AND handle_key < 'P0'``.

The write index and the audit columns (:mod:`~.indexing`): each write method reads the write
context at entry, on the event loop, and writes the index rows and the log's actor and origin
in its transaction. The single writer thread makes the UNIQUE check race-free here; the
partial unique index enforces it all the same.

Cancelling the task awaiting a write does not stop the write: it may still be committed.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, TypeVar

from idnode.errors import HandleAlreadyExists, HandleNotFound, StoreError
from idnode.protocol.values import HandleValue
from idnode.store import records as rec
from idnode.store.accounts_sql import AccountRepository, StatementRepository, sqlite_runner
from idnode.store.base import handle_key
from idnode.store.generations import Generations, generations_for
from idnode.store.homedcache import HomedCache
from idnode.store.indexing import (
    IndexRow,
    WriteMeta,
    normalise_index,
    unique_conflict,
    unique_keys,
    write_meta,
)
from idnode.store.migrations import migrate
from idnode.store.stats import ChildReport, DayCount, Registrations, day_of
from idnode.store.txnlog import (
    Action,
    AuditEntry,
    Change,
    Txn,
    TxnLogState,
    now_ms,
    prefix_entry,
)
from idnode.store.writectx import IndexEntry

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")

_GET = "SELECT record FROM handles WHERE handle_key = ?"
#: How long :meth:`SQLiteStore.get_record` lets a lock stall the event loop before it hands
#: the read to a reader thread.
_DIRECT_BUSY_MS = 20
#: How much of the database file the loop's reading connection maps into memory (bytes;
#: SQLite caps it at its compile-time limit, 2 GiB in the usual builds): a page read from
#: the map costs no system call and no copy (about a quarter off a look-up at 10^6 rows).
_DIRECT_MMAP = 1 << 31
_INSERT = "INSERT INTO handles (handle_key, handle, record) VALUES (?, ?, ?)"
_INSERT_IF_NEW = (
    "INSERT INTO handles (handle_key, handle, record) VALUES (?, ?, ?)"
    " ON CONFLICT (handle_key) DO NOTHING"
)
_REPLACE = (
    "INSERT INTO handles (handle_key, handle, record) VALUES (?, ?, ?)"
    " ON CONFLICT (handle_key) DO UPDATE SET handle = excluded.handle, record = excluded.record"
)
_SET_RECORD = "UPDATE handles SET record = ? WHERE handle_key = ?"
_DELETE = "DELETE FROM handles WHERE handle_key = ?"
_HANDLES_IN_RANGE = (
    "SELECT coalesce(handle, handle_key) FROM handles"
    " WHERE handle_key >= ? AND handle_key < ? ORDER BY handle_key"
)
_SCAN = (
    "SELECT coalesce(handle, handle_key), record FROM handles"
    " WHERE handle_key > ? ORDER BY handle_key LIMIT ?"
)
_HOME = (
    "INSERT INTO homed_prefixes (prefix_key, prefix) VALUES (?, ?)"
    " ON CONFLICT (prefix_key) DO NOTHING"
)
_UNHOME = "DELETE FROM homed_prefixes WHERE prefix_key = ?"
_HOMED = "SELECT prefix FROM homed_prefixes ORDER BY prefix_key"
_HOMED_KEYS = "SELECT prefix_key FROM homed_prefixes"
_NEXT_TXN_IDS = (
    "INSERT INTO txn_counter (id, last_txn_id) VALUES (1, ?) ON CONFLICT (id)"
    " DO UPDATE SET last_txn_id = txn_counter.last_txn_id + excluded.last_txn_id"
    " RETURNING last_txn_id"
)
_LOG = (
    "INSERT INTO txn_log (txn_id, handle, action, date_ms, handle_key, actor, origin)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_TXNS_AFTER = (
    "SELECT txn_id, handle, action, date_ms FROM txn_log WHERE txn_id > ? ORDER BY txn_id LIMIT ?"
)
_FIRST_TXN = "SELECT txn_id, date_ms FROM txn_log ORDER BY txn_id LIMIT 1"
_LAST_TXN_ID = "SELECT coalesce(max(last_txn_id), 0) FROM txn_counter"
_PRUNE = "DELETE FROM txn_log WHERE date_ms < ?"
_AUDIT_COLUMNS = "SELECT txn_id, handle, action, date_ms, actor, origin FROM txn_log"
_AUDIT = f"{_AUDIT_COLUMNS} WHERE txn_id > ? ORDER BY txn_id LIMIT ?"
_AUDIT_HANDLE = f"{_AUDIT_COLUMNS} WHERE handle_key = ? AND txn_id > ? ORDER BY txn_id LIMIT ?"
_INDEX_DELETE = "DELETE FROM handle_index WHERE handle_key = ?"
_INDEX_INSERT = (
    "INSERT INTO handle_index (kind, entry_key, handle_key, detail) VALUES (?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)
_UNIQUE_HOLDER = (
    "SELECT i.handle_key, coalesce(h.handle, i.handle_key) FROM handle_index i"
    " LEFT JOIN handles h ON h.handle_key = i.handle_key WHERE i.kind = 2 AND i.entry_key = ?"
)
_UNIQUE_LOOKUP = (
    "SELECT coalesce(h.handle, h.handle_key) FROM handle_index i"
    " JOIN handles h ON h.handle_key = i.handle_key WHERE i.kind = 2 AND i.entry_key = ?"
)
# A page of referrers: the rows of the first ``limit`` referring handles after the cursor.
_REFERRERS = (
    "SELECT coalesce(h.handle, h.handle_key), i.detail FROM handle_index i"
    " JOIN handles h ON h.handle_key = i.handle_key"
    " WHERE i.kind = 1 AND i.entry_key = ? AND i.handle_key IN ("
    "SELECT DISTINCT handle_key FROM handle_index"
    " WHERE kind = 1 AND entry_key = ? AND handle_key > ? ORDER BY handle_key LIMIT ?)"
    " ORDER BY i.handle_key, i.detail"
)
_REFERENCES = (
    "SELECT entry_key, detail FROM handle_index WHERE handle_key = ? AND kind = 1"
    " ORDER BY entry_key, detail"
)
_SOURCE = "SELECT last_txn_id, last_date_ms FROM replication_sources WHERE source = ?"
_SET_SOURCE = (
    "INSERT INTO replication_sources (source, last_txn_id, last_date_ms) VALUES (?, ?, ?)"
    " ON CONFLICT (source) DO UPDATE"
    " SET last_txn_id = excluded.last_txn_id, last_date_ms = excluded.last_date_ms"
)


def _log(conn: sqlite3.Connection, entries: Sequence[tuple[str, Action]], meta: WriteMeta) -> None:
    """Append ``entries`` (handle, action) to the transaction log, in this transaction, with
    the actor and origin of ``meta``."""
    if not entries:
        return
    (last,) = conn.execute(_NEXT_TXN_IDS, (len(entries),)).fetchone()
    first, date = last - len(entries) + 1, now_ms()
    actor, origin = meta.actor, meta.origin
    conn.executemany(
        _LOG,
        [
            (first + i, handle, int(action), date, handle_key(handle), actor, origin)
            for i, (handle, action) in enumerate(entries)
        ],
    )


def _replace_index(
    conn: sqlite3.Connection, replaced: Sequence[str], rows: Sequence[IndexRow]
) -> None:
    """Delete the index rows of the handles ``replaced`` (keys), then insert ``rows``; raise
    UniqueValueTaken (the caller's transaction rolls back) if a UNIQUE key is held by
    another handle, including one this transaction wrote."""
    if replaced:
        conn.executemany(_INDEX_DELETE, [(key,) for key in replaced])
    if not rows:
        return
    if conn.executemany(_INDEX_INSERT, rows).rowcount == len(rows):
        return
    holders: dict[str, tuple[str, str]] = {}
    for key in unique_keys(rows):
        found = conn.execute(_UNIQUE_HOLDER, (key,)).fetchone()
        if found is not None:
            holders[key] = (found[0], found[1])
    raise unique_conflict(rows, holders)


def _existing(conn: sqlite3.Connection, keys: Sequence[str]) -> set[str]:
    """Which of the handle ``keys`` exist."""
    existing: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT handle_key FROM handles WHERE handle_key IN ({marks})"
        existing.update(key for (key,) in conn.execute(sql, chunk))
    return existing


def _changed_keys(changes: Sequence[Change]) -> list[str] | None:
    """The handle keys replicated ``changes`` touch; None (everything) when a prefix is
    homed or unhomed."""
    if any(c.action in (Action.HOME_PREFIX, Action.UNHOME_PREFIX) for c in changes):
        return None
    return [handle_key(c.handle) for c in changes]


def _record_of(cursor: sqlite3.Cursor) -> bytes | None:
    row = cursor.fetchone()
    return None if row is None else bytes(row[0])


def _connect(path: str, busy_timeout_ms: int, *, query_only: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with idnode's pragmas.

    ``check_same_thread`` is off only so that :meth:`SQLiteStore.close` can close a reader
    connection from the writer thread after the reader threads have exited; while the store
    is open each connection is used by its own thread only.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms:d}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")
        if query_only:
            conn.execute("PRAGMA query_only = ON")
    except BaseException:
        conn.close()
        raise
    return conn


class SQLiteStore(rec.ValueEdits):
    """A :class:`~idnode.store.base.HandleStore` in one SQLite database file.

    Create it with ``await SQLiteStore.open(path)``; release it with ``await store.close()``.
    All methods must be awaited on a running event loop; any number of tasks may call them
    concurrently. Beyond the HandleStore contract: values given to one call must have
    distinct indexes (InvalidValue otherwise, nothing changes); :meth:`close` is idempotent,
    and every other call after it raises StoreError.
    """

    def __init__(self, path: str, *, readers: int, busy_timeout_ms: int) -> None:
        """Internal: use :meth:`open`, which also opens and migrates the database."""
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="idnode-sqlite-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="idnode-sqlite-reader")
        self._write_conn: sqlite3.Connection | None = None  # owned by the writer thread
        self._local = threading.local()  # .conn: the reader connection of a reader thread
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_conns_lock = threading.Lock()
        self._closed = False
        self._homed = HomedCache(self._homed_keys)
        #: Change counters bumped after each commit that changes records or homed prefixes,
        #: shared with every process using this file (:mod:`~.generations`).
        self.generations: Generations = generations_for(path)

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], *, readers: int = 4, busy_timeout: float = 5.0
    ) -> SQLiteStore:
        """Open the database file at ``path``, creating it if absent, and migrate its schema.

        ``readers`` is the number of reader threads; ``busy_timeout`` (seconds) is how long a
        connection waits for a lock held by another process. Raises StoreError if the file
        cannot be opened, is not a database, cannot use WAL mode or has a newer schema.
        """
        if readers < 1:
            raise ValueError("readers must be at least 1")
        store = cls(os.fspath(path), readers=readers, busy_timeout_ms=round(busy_timeout * 1000))
        try:
            await asyncio.get_running_loop().run_in_executor(store._writer, store._open_writer)
        except BaseException:
            await store.close()
            raise
        return store

    def _open_writer(self) -> None:
        """Writer thread: open the write connection, switch to WAL and migrate."""
        try:
            conn = self._write_conn = _connect(self._path, self._busy_timeout_ms, query_only=False)
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self._path!r}: {exc}") from exc
        if str(mode).lower() != "wal":
            raise StoreError(f"cannot use WAL journal mode for {self._path!r} (got {mode!r})")
        migrate(conn)

    async def close(self) -> None:
        """Finish queued reads and writes, then close every connection and stop the threads."""
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._writer, self._shutdown)
        finally:
            self._writer.shutdown(wait=False)  # its only thread is idle and exits right away

    def _shutdown(self) -> None:
        """Writer thread, after every queued write: stop the readers and close connections."""
        self._readers.shutdown(wait=True)
        conns, self._reader_conns = self._reader_conns, []
        if self._write_conn is not None:
            conns.append(self._write_conn)
            self._write_conn = None
        failure: sqlite3.Error | None = None
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error as exc:
                failure = failure or exc
        if failure is not None:
            raise StoreError(f"closing {self._path!r}: {failure}") from failure

    # -- plumbing --------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("store is closed")

    async def _write(
        self, txn: Callable[[sqlite3.Connection], _T], changed: Iterable[str] | None = ()
    ) -> _T:
        """Run ``txn`` on the writer thread inside one BEGIN IMMEDIATE ... COMMIT; then bump
        the :attr:`generations` of the handle keys ``changed`` (None: of everything)."""
        self._check_open()
        return await asyncio.get_running_loop().run_in_executor(
            self._writer, self._run_transaction, txn, changed
        )

    def _run_transaction(
        self, txn: Callable[[sqlite3.Connection], _T], changed: Iterable[str] | None = ()
    ) -> _T:
        conn = self._write_conn
        if conn is None:
            raise StoreError("store is closed")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = txn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:  # also after a failed COMMIT: an extra bump is harmless
                if changed is None or changed:
                    self.generations.bump(changed)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite write failed: {exc}") from exc
        return result

    async def _read(self, query: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``query`` on a reader thread with that thread's connection."""
        self._check_open()
        return await asyncio.get_running_loop().run_in_executor(
            self._readers, self._run_query, query
        )

    def _run_query(self, query: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = _connect(self._path, self._busy_timeout_ms, query_only=True)
                with self._reader_conns_lock:
                    self._reader_conns.append(conn)
                self._local.conn = conn
            return query(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite read failed: {exc}") from exc

    async def _column(self, sql: str, params: tuple[str, ...] = ()) -> list[str]:
        """The first column of every row of a read query."""

        def query(conn: sqlite3.Connection) -> list[str]:
            return [row[0] for row in conn.execute(sql, params)]

        return await self._read(query)

    # -- handles ---------------------------------------------------------------------------
    async def get_handle(self, handle: str) -> tuple[HandleValue, ...] | None:
        """All values of ``handle`` ordered by index, or None if the handle does not exist."""
        record = await self.get_record(handle)
        return None if record is None else rec.decode(record)

    async def get_record(self, handle: str) -> bytes | None:
        """The stored record of ``handle`` (:func:`~.records.encode`), or None if absent.

        Read on the calling thread (the event loop's), not on a reader thread: a point
        look-up by primary key in pages the operating system holds costs a few microseconds,
        far less than handing the query to a thread and the result back to the loop. Each
        thread calling it gets its own read-only connection (:meth:`_direct`); in WAL mode it
        reads the last committed state while the writer thread writes, without waiting for
        it. What can block the loop: a page that is not in memory is read from disk (one
        small read per level of the key index missing from the caches, a fraction of a
        millisecond on a local SSD; the upper levels stay in the connection's page cache,
        and the operating system keeps a database that fits in memory there after its first
        read, so on a warm node this is the exception); and a read that finds the database
        locked (WAL recovery after a crash, another process truncating the WAL), for which
        the connection waits at most ``_DIRECT_BUSY_MS`` before the read is handed to a
        reader thread, which waits as long as the store's busy timeout. Every other
        request on the loop waits meanwhile, as it would wait for any other CPU work of
        the loop; the thread hop saved on every read is worth more than that rare stall.
        """
        record = self.try_get_record(handle)
        if record is not False:
            return record
        key = handle_key(handle)  # locked or busy: wait for it off the loop
        return await self._read(lambda conn: _record_of(conn.execute(_GET, (key,))))

    def try_get_record(self, handle: str) -> bytes | Literal[False] | None:
        """:meth:`get_record` without waiting: False when the database is locked (then
        await :meth:`get_record`). Synchronous, for a transport's receive callback."""
        self._check_open()
        try:
            return _record_of(self._direct().execute(_GET, (handle_key(handle),)))
        except sqlite3.OperationalError:
            return False
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite read failed: {exc}") from exc

    def _direct(self) -> sqlite3.Connection:
        """This thread's connection for :meth:`get_record` (opened on first use, closed by
        :meth:`close`), reading the file through a memory map (:data:`_DIRECT_MMAP`)."""
        conn: sqlite3.Connection | None = getattr(self._local, "direct", None)
        if conn is None:
            try:
                conn = _connect(self._path, _DIRECT_BUSY_MS, query_only=True)
                conn.execute(f"PRAGMA mmap_size = {_DIRECT_MMAP:d}")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open {self._path!r}: {exc}") from exc
            with self._reader_conns_lock:
                self._reader_conns.append(conn)
            self._local.direct = conn
        return conn

    async def create_handle(
        self, handle: str, values: Sequence[HandleValue], *, overwrite: bool = False
    ) -> None:
        """Create ``handle`` with ``values``; HandleAlreadyExists unless ``overwrite``, which
        replaces the whole record (including the display string)."""
        key = handle_key(handle)
        row = (key, rec.display(key, handle), rec.encode(values))
        meta = write_meta()
        replaced, index_rows = meta.rows_for([(handle, key)])

        def txn(conn: sqlite3.Connection) -> None:
            if overwrite:
                conn.execute(_REPLACE, row)
            elif conn.execute(_INSERT_IF_NEW, row).rowcount == 0:
                raise HandleAlreadyExists(f"handle already exists: {handle}")
            _replace_index(conn, replaced, index_rows)
            _log(conn, [(handle, Action.CREATE_HANDLE)], meta)

        await self._write(txn, (key,))

    async def create_records(self, records: Sequence[tuple[str, bytes]]) -> list[bool]:
        """Bulk registration in one transaction; existing handles are left as they are."""
        rows = rec.bulk_rows(records)
        keys = [row[0] for row in rows]
        meta = write_meta()

        def txn(conn: sqlite3.Connection) -> list[bool]:
            existing = _existing(conn, keys)
            new = [row for row in rows if row[0] not in existing]
            conn.executemany(_INSERT, new)
            if meta.has_index:  # a new handle has no entries yet: nothing to delete
                written = ((row[1] or row[0], row[0]) for row in new)
                _replace_index(conn, (), meta.rows_for(written)[1])
            _log(conn, [(row[1] or row[0], Action.CREATE_HANDLE) for row in new], meta)
            return [key not in existing for key in keys]

        return await self._write(txn, keys)

    async def scan(
        self, after: str | None = None, limit: int = 1000
    ) -> list[tuple[str, tuple[HandleValue, ...]]]:
        """Up to ``limit`` handles with their values in key order, after ``after``."""
        start = rec.scan_start(after)

        def query(conn: sqlite3.Connection) -> list[tuple[str, tuple[HandleValue, ...]]]:
            rows = conn.execute(_SCAN, (start, limit)).fetchall()
            return [(handle, rec.decode(record)) for handle, record in rows]

        return await self._read(query)

    async def count_handles(self) -> int:
        """The number of handles stored."""

        def query(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT count(*) FROM handles").fetchone()[0])

        return await self._read(query)

    async def delete_handle(self, handle: str) -> None:
        """Delete the handle, all its values and its index entries; HandleNotFound if absent."""
        key = handle_key(handle)
        meta = write_meta()

        def txn(conn: sqlite3.Connection) -> None:
            if conn.execute(_DELETE, (key,)).rowcount == 0:
                raise HandleNotFound(f"handle not found: {handle}")
            conn.execute(_INDEX_DELETE, (key,))
            _log(conn, [(handle, Action.DELETE_HANDLE)], meta)

        await self._write(txn, (key,))

    async def _edit(self, handle: str, edit: rec.Edit) -> None:
        """Replace the record of ``handle`` by ``edit`` of it, in one write transaction."""
        key = handle_key(handle)
        meta = write_meta()
        replaced, index_rows = meta.rows_for([(handle, key)])

        def txn(conn: sqlite3.Connection) -> None:
            row = conn.execute(_GET, (key,)).fetchone()
            conn.execute(_SET_RECORD, (edit(None if row is None else row[0]), key))
            _replace_index(conn, replaced, index_rows)
            _log(conn, [(handle, Action.UPDATE_HANDLE)], meta)

        await self._write(txn, (key,))

    async def list_handles(self, prefix: str) -> list[str]:
        """Handles ``<prefix>/<suffix>`` (prefix matched case-insensitively), sorted by key.

        A handle without ``/`` is not listed; ``prefix`` containing ``/`` lists nothing.
        """
        self._check_open()
        bounds = rec.handles_range(prefix)
        return [] if bounds is None else await self._column(_HANDLES_IN_RANGE, bounds)

    async def list_derived_prefixes(self, prefix: str) -> list[str]:
        """Prefix handles ``0.NA/<prefix>.<x>...`` stored here (any depth), sorted by key.

        ``prefix`` is given without ``0.NA/``; the stored handle strings are returned.
        """
        self._check_open()
        bounds = rec.derived_prefixes_range(prefix)
        return [] if bounds is None else await self._column(_HANDLES_IN_RANGE, bounds)

    # -- the write index -------------------------------------------------------------------
    async def referrers(
        self, handle: str, limit: int = 100, after: str | None = None
    ) -> list[tuple[str, str]]:
        """(referrer, detail) rows of the first ``limit`` handles after ``after`` (key order)
        whose REFERENCE entries name ``handle``."""
        if limit < 1:
            return []
        key, start = handle_key(handle), rec.scan_start(after)

        def query(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            return [(h, d) for h, d in conn.execute(_REFERRERS, (key, key, start, limit))]

        return await self._read(query)

    async def references(self, handle: str) -> list[tuple[str, str]]:
        """(referenced handle key, detail) of the REFERENCE entries of ``handle``."""
        key = handle_key(handle)

        def query(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            return [(k, d) for k, d in conn.execute(_REFERENCES, (key,))]

        return await self._read(query)

    async def lookup_unique(self, key: str) -> str | None:
        """The handle holding the UNIQUE entry ``key``, None if none does."""

        def query(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(_UNIQUE_LOOKUP, (key,)).fetchone()
            return None if row is None else str(row[0])

        return await self._read(query)

    async def reindex(self, index: Mapping[str, Iterable[IndexEntry]]) -> int:
        """Replace the entries of the handles of ``index`` that exist, records unchanged;
        the number replaced. UniqueValueTaken (nothing changes) on a UNIQUE conflict."""
        by_key = normalise_index(index)

        def txn(conn: sqlite3.Connection) -> int:
            existing = _existing(conn, list(by_key))
            replaced = [key for key in by_key if key in existing]
            _replace_index(conn, replaced, sorted(r for k in replaced for r in by_key[k]))
            return len(replaced)

        return await self._write(txn)

    # -- homed prefixes --------------------------------------------------------------------
    async def home_prefix(self, prefix: str) -> None:
        """Mark ``prefix`` (without ``0.NA/``) as homed. Idempotent: homing it again keeps
        the display string it was first homed with."""
        row = (handle_key(prefix), prefix)
        meta = write_meta()

        def txn(conn: sqlite3.Connection) -> None:
            if conn.execute(_HOME, row).rowcount:
                _log(conn, [(prefix_entry(prefix), Action.HOME_PREFIX)], meta)

        try:
            await self._write(txn, None)
        finally:
            self._homed.invalidate()

    async def unhome_prefix(self, prefix: str) -> None:
        """Stop serving ``prefix``; HandleNotFound if it was not homed."""
        key = handle_key(prefix)
        meta = write_meta()

        def txn(conn: sqlite3.Connection) -> None:
            if conn.execute(_UNHOME, (key,)).rowcount == 0:
                raise HandleNotFound(f"prefix not homed: {prefix}")
            _log(conn, [(prefix_entry(prefix), Action.UNHOME_PREFIX)], meta)

        try:
            await self._write(txn, None)
        finally:
            self._homed.invalidate()

    async def homed_prefixes(self) -> list[str]:
        """All homed prefixes (as first homed), sorted by key."""
        return await self._column(_HOMED)

    async def is_homed(self, prefix: str) -> bool:
        """Whether ``prefix`` is homed here (case-insensitive), from the in-memory set of
        homed prefixes (:mod:`~.homedcache`)."""
        return handle_key(prefix) in await self._homed.keys()

    async def _homed_keys(self) -> list[str]:
        return await self._column(_HOMED_KEYS)

    # -- transaction log and replication -----------------------------------------------------
    async def txn_log(self, after: int, limit: int = 1000) -> list[Txn]:
        """Up to ``limit`` log entries with ids above ``after``, in id order."""

        def query(conn: sqlite3.Connection) -> list[Txn]:
            rows = conn.execute(_TXNS_AFTER, (after, limit)).fetchall()
            return [
                Txn(txn_id, handle, Action(action), date) for txn_id, handle, action, date in rows
            ]

        return await self._read(query)

    async def txn_log_state(self) -> TxnLogState:
        """The oldest entry kept and the last id handed out."""

        def query(conn: sqlite3.Connection) -> TxnLogState:
            first = conn.execute(_FIRST_TXN).fetchone()
            (last,) = conn.execute(_LAST_TXN_ID).fetchone()
            if first is None:
                return TxnLogState(None, None, last)
            return TxnLogState(first[0], first[1], last)

        return await self._read(query)

    async def prune_txn_log(self, before_ms: int) -> int:
        """Drop log entries dated before ``before_ms``; how many were dropped."""
        return await self._write(lambda conn: conn.execute(_PRUNE, (before_ms,)).rowcount)

    async def apply_replicated(
        self, changes: Sequence[Change], *, source: str | None, txn_id: int, date_ms: int
    ) -> None:
        """Apply ``changes`` from a primary and record that ``source`` was followed up to
        ``txn_id`` at ``date_ms``, in one transaction; the changes enter this store's own log
        (with the write context's actor and origin). Every handle changed loses its index
        entries (see :meth:`~.base.HandleStore.apply_replicated`)."""
        rows = [self._replicated_row(change) for change in changes]
        meta = write_meta()
        unindexed = [
            (handle_key(change.handle),)
            for change in changes
            if change.action in (Action.CREATE_HANDLE, Action.UPDATE_HANDLE, Action.DELETE_HANDLE)
        ]

        def txn(conn: sqlite3.Connection) -> None:
            for change, row in zip(changes, rows, strict=True):
                self._apply(conn, change, row)
            conn.executemany(_INDEX_DELETE, unindexed)
            _log(conn, [(change.handle, change.action) for change in changes], meta)
            if source is not None:
                conn.execute(_SET_SOURCE, (source, txn_id, date_ms))

        try:
            await self._write(txn, _changed_keys(changes))
        finally:
            self._homed.invalidate()

    @staticmethod
    def _replicated_row(change: Change) -> rec.Row | None:
        if change.record is None:
            return None
        rec.decode(change.record)  # refuse a record that does not decode before writing it
        key = handle_key(change.handle)
        return key, rec.display(key, change.handle), change.record

    @staticmethod
    def _apply(conn: sqlite3.Connection, change: Change, row: rec.Row | None) -> None:
        if row is not None:
            conn.execute(_REPLACE, row)
        elif change.action == Action.DELETE_HANDLE:
            conn.execute(_DELETE, (handle_key(change.handle),))
        elif change.action == Action.HOME_PREFIX:
            conn.execute(_HOME, (handle_key(change.prefix), change.prefix))
        else:
            conn.execute(_UNHOME, (handle_key(change.prefix),))

    async def audit(
        self, handle: str | None = None, after_txn: int = 0, limit: int = 100
    ) -> list[AuditEntry]:
        """Up to ``limit`` audit entries with ids above ``after_txn`` (of ``handle`` only, if
        given), in id order."""
        if limit < 1:
            return []
        params: tuple[str | int, ...] = (after_txn, limit)
        sql = _AUDIT
        if handle is not None:
            sql, params = _AUDIT_HANDLE, (handle_key(handle), *params)

        def query(conn: sqlite3.Connection) -> list[AuditEntry]:
            return [
                AuditEntry(txn_id, logged, Action(action), date, actor, origin)
                for txn_id, logged, action, date, actor, origin in conn.execute(sql, params)
            ]

        return await self._read(query)

    async def replication_source(self, source: str) -> tuple[int, int] | None:
        """(last txn id, last date ms) followed from ``source``, None if never."""

        def query(conn: sqlite3.Connection) -> tuple[int, int] | None:
            row = conn.execute(_SOURCE, (source,)).fetchone()
            return None if row is None else (int(row[0]), int(row[1]))

        return await self._read(query)

    # -- accounts, enterprises, prefix applications (schema 0005) --------------------------
    def accounts(self) -> AccountRepository:
        """The accounts repository of this database (:mod:`~.accounts_sql`), run through
        this store's reader threads and writer thread."""
        return StatementRepository(sqlite_runner(self._read, self._write))

    # -- statistics ------------------------------------------------------------------------
    async def add_stats(
        self, counts: Sequence[DayCount], *, position: tuple[int, int] | None = None
    ) -> bool:
        """Add ``counts`` (upsert-add) and move the log position from ``position[0]`` to
        ``position[1]``; False, nothing written, if it was not at ``position[0]``."""
        rows = [
            (handle_key(c.prefix), c.day, c.prefix, c.resolutions, c.registrations) for c in counts
        ]

        def txn(conn: sqlite3.Connection) -> bool:
            if position is not None:
                moved = conn.execute(_STATS_MOVE, (position[1], position[0])).rowcount
                if moved == 0:
                    return False
            conn.executemany(_STATS_ADD, rows)
            return True

        return await self._write(txn)

    async def stats_position(self) -> int:
        """The last log id whose registrations the statistics hold."""

        def query(conn: sqlite3.Connection) -> int:
            row = conn.execute(_STATS_POSITION).fetchone()
            return 0 if row is None else int(row[0])

        return await self._read(query)

    async def registrations(self, after: int, limit: int) -> Registrations:
        """The registrations among the first ``limit`` log entries after ``after``."""

        def query(conn: sqlite3.Connection) -> Registrations:
            entries, last = conn.execute(_PAGE_BOUNDS, (after, limit)).fetchone()
            if not entries:
                return Registrations([], 0, after)
            rows = conn.execute(_REGISTRATIONS, (after, last, Action.CREATE_HANDLE)).fetchall()
            counts = [DayCount(prefix, day_of(day), 0, n) for prefix, day, n in rows]
            return Registrations(counts, entries, last)

        return await self._read(query)

    async def stats(
        self, prefix: str | None = None, since: str | None = None, until: str | None = None
    ) -> list[DayCount]:
        """The statistics of ``prefix`` (or all) for the days ``since``..``until``."""
        where, params = _stats_filter(prefix, since, until)
        sql = f"{_STATS_SELECT}{where} ORDER BY day, prefix_key"

        def query(conn: sqlite3.Connection) -> list[DayCount]:
            return [DayCount(p, d, r, g) for p, d, r, g in conn.execute(sql, params)]

        return await self._read(query)

    async def put_child_report(
        self, child: str, report: str, counts: Sequence[DayCount], received_ms: int
    ) -> None:
        """Keep ``child``'s report and replace its counts of the days given."""
        rows = [
            (child, handle_key(c.prefix), c.day, c.prefix, c.resolutions, c.registrations)
            for c in counts
        ]

        def txn(conn: sqlite3.Connection) -> None:
            conn.execute(_CHILD_REPORT_PUT, (child, received_ms, report))
            conn.executemany(_CHILD_STATS_PUT, rows)

        await self._write(txn)

    async def child_reports(
        self, since: str | None = None, until: str | None = None
    ) -> list[ChildReport]:
        """Every child's last report with its counts of the days ``since``..``until``."""
        where, params = _stats_filter(None, since, until)
        counts_sql = f"{_CHILD_STATS_SELECT}{where} ORDER BY child, day, prefix_key"

        def query(conn: sqlite3.Connection) -> list[ChildReport]:
            counts: dict[str, list[DayCount]] = {}
            for child, p, d, r, g in conn.execute(counts_sql, params):
                counts.setdefault(child, []).append(DayCount(p, d, r, g))
            return [
                ChildReport(child, received, report, tuple(counts.get(child, ())))
                for child, received, report in conn.execute(_CHILD_REPORTS)
            ]

        return await self._read(query)


_STATS_ADD = (
    "INSERT INTO stats_daily (prefix_key, day, prefix, resolutions, registrations)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (prefix_key, day) DO UPDATE"
    " SET resolutions = stats_daily.resolutions + excluded.resolutions,"
    " registrations = stats_daily.registrations + excluded.registrations"
)
_STATS_MOVE = "UPDATE stats_position SET last_txn_id = ? WHERE id = 1 AND last_txn_id = ?"
_STATS_POSITION = "SELECT last_txn_id FROM stats_position WHERE id = 1"
_PAGE_BOUNDS = (
    "SELECT count(*), max(txn_id) FROM"
    " (SELECT txn_id FROM txn_log WHERE txn_id > ? ORDER BY txn_id LIMIT ?)"
)
# prefix_of in SQL: the handle up to its first "/", or all of it; the UTC day of date_ms.
_REGISTRATIONS = (
    "SELECT CASE WHEN instr(handle, '/') > 0 THEN substr(handle, 1, instr(handle, '/') - 1)"
    " ELSE handle END, date_ms / 86400000, count(*) FROM txn_log"
    " WHERE txn_id > ? AND txn_id <= ? AND action = ? GROUP BY 1, 2"
)
_STATS_SELECT = "SELECT prefix, day, resolutions, registrations FROM stats_daily"
_CHILD_REPORT_PUT = (
    "INSERT INTO child_reports (child, received_ms, report) VALUES (?, ?, ?)"
    " ON CONFLICT (child) DO UPDATE"
    " SET received_ms = excluded.received_ms, report = excluded.report"
)
_CHILD_STATS_PUT = (
    "INSERT INTO child_stats (child, prefix_key, day, prefix, resolutions, registrations)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (child, prefix_key, day) DO UPDATE"
    " SET prefix = excluded.prefix, resolutions = excluded.resolutions,"
    " registrations = excluded.registrations"
)
_CHILD_STATS_SELECT = "SELECT child, prefix, day, resolutions, registrations FROM child_stats"
_CHILD_REPORTS = "SELECT child, received_ms, report FROM child_reports ORDER BY child"


def _stats_filter(
    prefix: str | None, since: str | None, until: str | None
) -> tuple[str, tuple[str, ...]]:
    """The WHERE clause (with a leading space, or empty) and parameters of a statistics query."""
    conditions: list[str] = []
    params: list[str] = []
    for condition, value in (
        ("prefix_key = ?", None if prefix is None else handle_key(prefix)),
        ("day >= ?", since),
        ("day <= ?", until),
    ):
        if value is not None:
            conditions.append(condition)
            params.append(value)
    return (" WHERE " + " AND ".join(conditions) if conditions else ""), tuple(params)
