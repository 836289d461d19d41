"""PostgreSQL storage backend: :class:`PostgresStore` implements :class:`~.base.HandleStore`.

The driver is asyncpg (the choice is explained in :mod:`~.pgdriver`, which also holds the
connection plumbing).

Transactions: every write runs in one explicit transaction (``BEGIN ... COMMIT``) in which the
checks and the writes happen together, so a failed check changes nothing; a read is a single
statement, so it sees one snapshot. Sessions run with ``synchronous_commit = on`` whatever the
server default: COMMIT returns only after the WAL is flushed, so a write that has returned
survives a crash of the client or the server (given the server's ``fsync = on``).

Concurrency: writes to one handle serialize on its ``handles`` row. Creation inserts it with
``ON CONFLICT DO NOTHING``: a concurrent creator waits for the first to commit and then sees
the conflict, so exactly one wins and the others get HandleAlreadyExists. Value operations
read the record ``FOR UPDATE``, which after waiting for a concurrent writer returns the row as
that writer committed it (READ COMMITTED). Bulk creation inserts in key order, so two batches
that share handles cannot deadlock.

Bulk registration (:meth:`PostgresStore.create_records`) COPies the batch into a temporary
table of the session (``ON COMMIT DELETE ROWS``, created on first use and kept with the pooled
connection), then runs ``INSERT ... SELECT ... ORDER BY handle_key ON CONFLICT DO NOTHING
RETURNING``, all in one transaction. It replaced a single ``INSERT ... SELECT FROM unnest($1,
$2, $3)`` of three arrays by measurement: 200,000 identifiers in batches of 5,000 on the 2-core
machine (PostgreSQL 15 on 127.0.0.1, fsync on), create_records alone, 6 alternating rounds:
new handles 114k/s with COPY against 97k/s with unnest (medians; ranges 108-144k and
90-121k), the same batches again (all existing) 210k/s against 150k/s. Through ``bench/import.py
--backend postgresql --count 200000``, whose CSV parsing shares the CPU, 63-77k/s against
52-75k/s.

The write index and the audit columns (:mod:`~.indexing`): each write method reads the write
context at entry and, in its transaction, replaces the index rows of the handles it was given
entries for with one ``INSERT ... SELECT FROM unnest(...) ORDER BY kind, entry_key ON
CONFLICT DO NOTHING`` (bulk registration COPies the REFERENCE rows of the handles it
creates, which cannot conflict). A UNIQUE key a concurrent transaction is inserting makes the
insert wait for that transaction: if it commits, the row is not inserted, the key's holder is
read (a new snapshot, READ COMMITTED) and the write fails with UniqueValueTaken; if it rolls
back, the row goes in. Claiming keys in one order keeps two such writers from deadlocking.

Keys: ``*_key`` columns are ``COLLATE "C"`` (see :func:`~.migrations.translate_for_postgres`),
so ``ORDER BY`` and the prefix range scans compare bytes and use the primary-key index, as
SQLite does. PostgreSQL text cannot hold U+0000, which handle strings may contain, so strings
are stored with an order-preserving escape (:func:`~.pgdriver.to_db`): U+0000 as U+0001 U+0001
and U+0001 as U+0001 U+0002.

Record reads (:meth:`PostgresStore.get_record`, and so ``get_handle``), the resolution path:
reads issued concurrently on the event loop are coalesced (:mod:`~.pgbatch`) into one
``SELECT ... WHERE handle_key = ANY($1)`` per batch (a read issued while nothing runs goes at
once, with the single-key statement), and run on a connection the store holds for them
(besides the pool, from a pool of one, to the primary) when it is idle, else on a pooled one;
either way through the same timeouts, retry and standby rules as every other call. Measured
on the 2-core machine (PostgreSQL 15 on 127.0.0.1, 20,000 records, reads of random keys of
which half exist, uvloop, three alternating rounds): 20,000 reads by 64 concurrent callers
took 77-86 µs per read (wall; 58-63 µs of the client's CPU) when each read took a pooled
connection and ran its own statement, 7.5-8.5 µs (4.7-5.1 µs of CPU) coalesced; one caller
reading 5,000 in a row, 98-140 µs per read (68-87 µs of CPU) through the pool, 58-62 µs
(33-35 µs of CPU) on the held connection.

Failures: driver and server errors are raised as StoreError. When a connection is lost (server
restart, network), every pooled connection is dropped and later calls connect afresh; the call
that saw the loss is retried once on a new connection if nothing can have been committed (a
read, or a write that had not yet sent COMMIT), and otherwise fails with StoreError.

High availability (docs/deploy.md, ``deploy/pg-ha``): the URL may name every server of a
replicated cluster, ``postgresql://u:p@h1:5432,h2:5432/db?target_session_attrs=read-write``;
each new connection then goes to whichever server is the primary at that moment, so after a
failover the renewed pool reaches the new primary. While there is none (between the loss of a
primary and the promotion of a standby), a write fails at once with StoreError ("no PostgreSQL
primary is reachable"), and a read is served by a second, read-only pool on any server of the
URL (``target_session_attrs=any``), which is then a hot standby: with synchronous replication
it has every acknowledged write, though it may apply the last ones a moment late.

Cancelling the task awaiting a write may or may not stop the write.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias, TypeVar

import asyncpg

from idnode.errors import HandleAlreadyExists, HandleNotFound, StoreError
from idnode.protocol.values import HandleValue
from idnode.store import records as rec
from idnode.store.accounts_sql import AccountRepository, StatementRepository, postgres_runner
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
from idnode.store.migrations import migrate_postgres
from idnode.store.pgbatch import ReadCoalescer
from idnode.store.pgdriver import (
    CONNECTION_LOST,
    DRIVER_ERRORS,
    connect,
    connection_lost,
    create_pool,
    describe,
    from_db,
    no_primary,
    standby_reads_url,
    to_db,
)
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
from idnode.store.writectx import IndexEntry, IndexKind

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

__all__ = [
    "CONNECTION_LOST",
    "DRIVER_ERRORS",
    "PostgresStore",
    "connect",
    "describe",
    "from_db",
    "to_db",
]

_T = TypeVar("_T")
_Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"  # a pooled connection

_GET = "SELECT record FROM handles WHERE handle_key = $1"
_GET_MANY = "SELECT handle_key, record FROM handles WHERE handle_key = ANY($1::text[])"
_GET_FOR_UPDATE = "SELECT record FROM handles WHERE handle_key = $1 FOR UPDATE"
_INSERT_IF_NEW = (
    "INSERT INTO handles (handle_key, handle, record) VALUES ($1, $2, $3)"
    " ON CONFLICT (handle_key) DO NOTHING RETURNING TRUE"
)
# Bulk registration: COPY into this session's staging table (emptied at every commit), then
# insert the new ones from it in key order.
_STAGING = "idnode_staging"
_STAGING_COLUMNS = ("handle_key", "handle", "record")
_CREATE_STAGING = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING}"
    ' (handle_key TEXT COLLATE "C", handle TEXT, record BYTEA) ON COMMIT DELETE ROWS'
)
_INSERT_STAGED_IF_NEW = (
    "INSERT INTO handles (handle_key, handle, record)"
    f" SELECT handle_key, handle, record FROM pg_temp.{_STAGING} ORDER BY handle_key"
    " ON CONFLICT (handle_key) DO NOTHING RETURNING handle_key"
)
_EXISTING_KEYS = "SELECT handle_key FROM handles WHERE handle_key = ANY($1::text[])"
_LOCK_EXISTING = (
    "SELECT handle_key FROM handles WHERE handle_key = ANY($1::text[])"
    " ORDER BY handle_key FOR SHARE"
)
_REPLACE = (
    "INSERT INTO handles (handle_key, handle, record) VALUES ($1, $2, $3)"
    " ON CONFLICT (handle_key) DO UPDATE SET handle = excluded.handle, record = excluded.record"
)
_SET_RECORD = "UPDATE handles SET record = $1 WHERE handle_key = $2"
_DELETE = "DELETE FROM handles WHERE handle_key = $1"
_COUNT = "SELECT count(*) FROM handles"
_HANDLES_IN_RANGE = (
    "SELECT coalesce(handle, handle_key) FROM handles"
    " WHERE handle_key >= $1 AND handle_key < $2 ORDER BY handle_key"
)
_SCAN = (
    "SELECT coalesce(handle, handle_key), record FROM handles"
    " WHERE handle_key > $1 ORDER BY handle_key LIMIT $2"
)
_HOME = (
    "INSERT INTO homed_prefixes (prefix_key, prefix) VALUES ($1, $2)"
    " ON CONFLICT (prefix_key) DO NOTHING"
)
_UNHOME = "DELETE FROM homed_prefixes WHERE prefix_key = $1"
_HOMED = "SELECT prefix FROM homed_prefixes ORDER BY prefix_key"
_HOMED_KEYS = "SELECT prefix_key FROM homed_prefixes"
# The counter's row lock is held to COMMIT: ids are handed out in commit order.
_NEXT_TXN_IDS = (
    "INSERT INTO txn_counter (id, last_txn_id) VALUES (1, $1) ON CONFLICT (id)"
    " DO UPDATE SET last_txn_id = txn_counter.last_txn_id + excluded.last_txn_id"
    " RETURNING last_txn_id"
)
_LOG_COLUMNS = ("txn_id", "handle", "action", "date_ms", "handle_key", "actor", "origin")
_LOG = (
    "INSERT INTO txn_log (txn_id, handle, action, date_ms, handle_key, actor, origin)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
_TXNS_AFTER = (
    "SELECT txn_id, handle, action, date_ms FROM txn_log WHERE txn_id > $1 ORDER BY txn_id LIMIT $2"
)
_FIRST_TXN = "SELECT txn_id, date_ms FROM txn_log ORDER BY txn_id LIMIT 1"
_LAST_TXN_ID = "SELECT coalesce(max(last_txn_id), 0) FROM txn_counter"
_PRUNE = "DELETE FROM txn_log WHERE date_ms < $1"
_AUDIT_COLUMNS = "SELECT txn_id, handle, action, date_ms, actor, origin FROM txn_log"
_AUDIT = f"{_AUDIT_COLUMNS} WHERE txn_id > $1 ORDER BY txn_id LIMIT $2"
_AUDIT_HANDLE = f"{_AUDIT_COLUMNS} WHERE handle_key = $3 AND txn_id > $1 ORDER BY txn_id LIMIT $2"
_INDEX_COLUMNS = ("kind", "entry_key", "handle_key", "detail")
_INDEX_DELETE = "DELETE FROM handle_index WHERE handle_key = ANY($1::text[])"
_INDEX_INSERT = (
    "INSERT INTO handle_index (kind, entry_key, handle_key, detail)"
    " SELECT * FROM unnest($1::smallint[], $2::text[], $3::text[], $4::text[]) ORDER BY 1, 2"
    " ON CONFLICT DO NOTHING"
)
_UNIQUE_HOLDERS = (
    "SELECT i.entry_key, i.handle_key, coalesce(h.handle, i.handle_key) FROM handle_index i"
    " LEFT JOIN handles h ON h.handle_key = i.handle_key"
    " WHERE i.kind = 2 AND i.entry_key = ANY($1::text[])"
)
_UNIQUE_LOOKUP = (
    "SELECT coalesce(h.handle, h.handle_key) FROM handle_index i"
    " JOIN handles h ON h.handle_key = i.handle_key WHERE i.kind = 2 AND i.entry_key = $1"
)
# A page of referrers: the rows of the first ``limit`` referring handles after the cursor.
_REFERRERS = (
    "SELECT coalesce(h.handle, h.handle_key), i.detail FROM handle_index i"
    " JOIN handles h ON h.handle_key = i.handle_key"
    " WHERE i.kind = 1 AND i.entry_key = $1 AND i.handle_key IN ("
    "SELECT DISTINCT handle_key FROM handle_index"
    " WHERE kind = 1 AND entry_key = $1 AND handle_key > $2 ORDER BY handle_key LIMIT $3)"
    " ORDER BY i.handle_key, i.detail"
)
_REFERENCES = (
    "SELECT entry_key, detail FROM handle_index WHERE handle_key = $1 AND kind = 1"
    " ORDER BY entry_key, detail"
)
_SOURCE = "SELECT last_txn_id, last_date_ms FROM replication_sources WHERE source = $1"
_SET_SOURCE = (
    "INSERT INTO replication_sources (source, last_txn_id, last_date_ms) VALUES ($1, $2, $3)"
    " ON CONFLICT (source) DO UPDATE"
    " SET last_txn_id = excluded.last_txn_id, last_date_ms = excluded.last_date_ms"
)


def _escaped(row: rec.Row) -> rec.Row:
    """A row as stored: key and display string escaped (:func:`to_db`)."""
    key, display, record = row
    return to_db(key), None if display is None else to_db(display), record


async def _log(conn: _Conn, entries: Sequence[tuple[str, Action]], meta: WriteMeta) -> None:
    """Append ``entries`` (handle, action) to the transaction log, in this transaction, with
    the actor and origin of ``meta``. Called last before COMMIT: the counter row stays locked
    only for the commit itself."""
    if not entries:
        return
    last = await conn.fetchval(_NEXT_TXN_IDS, len(entries))
    first, date = last - len(entries) + 1, now_ms()
    actor = None if meta.actor is None else to_db(meta.actor)
    origin = None if meta.origin is None else to_db(meta.origin)
    rows = [
        (first + i, to_db(h), int(a), date, to_db(handle_key(h)), actor, origin)
        for i, (h, a) in enumerate(entries)
    ]
    if len(rows) == 1:
        await conn.execute(_LOG, *rows[0])
    else:
        await conn.copy_records_to_table("txn_log", records=rows, columns=_LOG_COLUMNS)


def _escaped_rows(rows: Iterable[IndexRow]) -> list[IndexRow]:
    """Index rows as stored (text escaped, :func:`to_db`)."""
    return [(kind, to_db(k), to_db(h), to_db(d)) for kind, k, h, d in rows]


async def _replace_index(
    conn: _Conn, replaced: Sequence[str], rows: Sequence[IndexRow], *, fresh: bool = False
) -> None:
    """Delete the index rows of the handles ``replaced`` (keys), then insert ``rows`` (both
    unescaped); raise UniqueValueTaken (the caller's transaction rolls back) if a UNIQUE key
    is held by another handle, including one this transaction wrote.

    ``fresh``: the rows belong to handles this transaction created, which have no rows yet
    and which no other transaction can write before it commits; their REFERENCE rows cannot
    conflict with anything, so they are COPied (bulk registration), and only the UNIQUE rows
    take the ``ON CONFLICT`` path."""
    if replaced:
        await conn.execute(_INDEX_DELETE, [to_db(key) for key in replaced])
    stored = _escaped_rows(rows)
    if fresh:
        copied = [row for row in stored if row[0] != IndexKind.UNIQUE]
        if copied:
            await conn.copy_records_to_table("handle_index", records=copied, columns=_INDEX_COLUMNS)
        stored = [row for row in stored if row[0] == IndexKind.UNIQUE]
    if not stored:
        return
    columns = [list(column) for column in zip(*stored, strict=True)]
    if _count(await conn.execute(_INDEX_INSERT, *columns)) == len(stored):
        return
    keys = [to_db(key) for key in unique_keys(rows)]
    found = await conn.fetch(_UNIQUE_HOLDERS, keys)
    holders = {from_db(r[0]): (from_db(r[1]), from_db(r[2])) for r in found}
    raise unique_conflict(rows, holders)


def _usable(conn: _Conn) -> bool:
    """Whether the held connection ``conn`` is open (not closed, nor given back to its pool
    when its session ended)."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False


def _count(status: str) -> int:
    """The row count of a command status such as ``DELETE 3``."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresStore(rec.ValueEdits):
    """A :class:`~idnode.store.base.HandleStore` in a PostgreSQL database.

    Create it with ``await PostgresStore.open(url)``; release it with ``await store.close()``.
    All methods must be awaited on the event loop that opened the store; any number of tasks
    may call them concurrently (up to ``pool_size`` at a time, the rest wait; record reads
    also have a connection of their own and share statements, see the module docstring).
    Beyond the HandleStore contract, as in :class:`~idnode.store.sqlite.SQLiteStore`: values
    given to one call must have distinct indexes (InvalidValue otherwise, nothing changes);
    :meth:`close` is idempotent, and every other call after it raises StoreError.
    """

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        *,
        timeout: float,
        standby_pool: asyncpg.Pool[asyncpg.Record] | None = None,
        reader_pool: asyncpg.Pool[asyncpg.Record] | None = None,
    ) -> None:
        """Internal: use :meth:`open`."""
        self._pool = pool
        self._standby_pool = standby_pool  # reads while no primary is reachable
        #: Where the record reads' own connection comes from (see :meth:`_read`): one
        #: connection, held, so that a read skips the pool's acquire and release.
        self._reader_pool = reader_pool
        self._reader: _Conn | None = None
        self._reader_busy = False
        self._reader_task: asyncio.Task[None] | None = None
        self._reader_retry_at = 0.0  # monotonic time before which no new one is tried
        self._timeout = timeout
        self._closed = False
        self._homed = HomedCache(self._homed_keys)
        #: Concurrent record reads, coalesced into few statements (:mod:`~.pgbatch`); up to
        #: half the pool runs such statements, the rest stays free for everything else.
        self._reads = ReadCoalescer(
            self._read_one, self._read_many, max_batches=max(1, pool.get_max_size() // 2)
        )
        #: Change counters bumped after each commit that changes records or homed prefixes,
        #: shared with the processes of this host using the database (:mod:`~.generations`);
        #: :meth:`open` maps the shared file.
        self.generations = Generations(None)

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10, timeout: float = 10.0) -> PostgresStore:
        """Connect to the database at ``url`` (``postgresql://user:password@host:port/db``)
        and migrate its schema.

        ``pool_size`` is the most connections kept open; ``timeout`` (seconds) bounds
        connecting, waiting for a pooled connection and each statement (lock waits give up
        after half of it). Raises StoreError if the server cannot be reached, the database
        is not UTF8, or its schema is newer than this idnode's.

        A URL that names several servers and asks for the primary
        (``target_session_attrs=read-write`` or ``primary``) also gets a standby pool (up to
        ``pool_size`` read-only connections, opened only when needed) for reads while no
        primary can be reached; see the module docstring.
        """
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        standby, standby_url = None, standby_reads_url(url)
        try:
            if standby_url is not None:  # opens no connection yet
                standby = await create_pool(
                    standby_url, min_size=0, max_size=pool_size, timeout=timeout, read_only=True
                )
            pool = await create_pool(url, min_size=1, max_size=pool_size, timeout=timeout)
        except DRIVER_ERRORS as exc:
            if standby is not None:
                standby.terminate()
            raise StoreError(f"cannot connect to PostgreSQL: {describe(exc)}") from exc
        # Opens no connection yet: the first record read asks for it (see _read).
        reader = await create_pool(url, min_size=0, max_size=1, timeout=timeout)
        store = cls(pool, timeout=timeout, standby_pool=standby, reader_pool=reader)
        store.generations = generations_for(url)
        try:
            await store._prepare()
        except BaseException:
            await store.close()
            raise
        return store

    async def _prepare(self) -> None:
        try:
            async with self._pool.acquire(timeout=self._timeout) as conn:
                encoding = await conn.fetchval("SELECT current_setting('server_encoding')")
                if encoding != "UTF8":
                    raise StoreError(f"the database encoding is {encoding}, not UTF8")
                await migrate_postgres(conn)
        except DRIVER_ERRORS as exc:
            raise StoreError(f"cannot open the PostgreSQL store: {describe(exc)}") from exc

    async def close(self) -> None:
        """Wait (at most ``timeout``) for calls in progress, then close every connection."""
        if self._closed:
            return
        self._closed = True
        if self._reader_task is not None:
            self._reader_task.cancel()
        reader, self._reader = self._reader, None
        if reader is not None and not self._reader_busy:  # else _read releases it
            await self._release_reader(reader)
        pools = [p for p in (self._pool, self._standby_pool, self._reader_pool) if p is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*(p.close() for p in pools)), self._timeout)
        except TimeoutError:
            for p in pools:
                p.terminate()
        except DRIVER_ERRORS as exc:
            for p in pools:
                p.terminate()
            raise StoreError(f"closing the PostgreSQL store: {describe(exc)}") from exc

    # -- plumbing --------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("store is closed")

    async def _run(
        self,
        work: Callable[[_Conn], Awaitable[_T]],
        *,
        write: bool,
        changed: Iterable[str] | None = (),
        reader: _Conn | None = None,
    ) -> _T:
        """Run ``work`` on a pooled connection, in a transaction if ``write``; after a write,
        bump the :attr:`generations` of the handle keys ``changed`` (None: of everything).
        A read may name the connection of its first attempt (``reader``, see :meth:`_read`),
        which is dropped if that attempt fails in any way; later attempts use the pool.

        When the connection is lost (:func:`~.pgdriver.connection_lost`) or the driver's
        protocol state is broken (InternalClientError, as when the server ends an idle session
        on a crash), the pool is renewed, and ``work`` is retried once unless a COMMIT may have
        been sent; so is a write that reached a read-only server (a standby: nothing was
        written). A read that cannot get a connection to a primary goes to the standby pool, if
        there is one. At most three attempts, each bounded by ``timeout``; every driver error
        ends as StoreError.
        """
        self._check_open()
        pool, retried = self._pool, False
        for _attempt in range(3):
            acquired = committing = False
            try:
                if reader is not None and not write:
                    held, reader, acquired = reader, None, True
                    try:
                        return await work(held)
                    except BaseException:
                        self._drop_reader(held)
                        raise
                async with pool.acquire(timeout=self._timeout) as conn:
                    acquired = True
                    if not write:
                        return await work(conn)
                    try:
                        async with conn.transaction():
                            result = await work(conn)
                            committing = True  # leaving the block sends COMMIT
                    finally:  # also after a failure: an extra bump is harmless
                        if changed is None or changed:
                            self.generations.bump(changed)
                    return result
            except DRIVER_ERRORS as exc:
                lost = connection_lost(exc)
                broken = isinstance(exc, asyncpg.InternalClientError) and not no_primary(exc)
                misrouted = isinstance(exc, asyncpg.ReadOnlySQLTransactionError)
                renew = lost or broken or misrouted
                if renew:
                    # This connection may be unusable, and others to the same server too:
                    # each pooled connection is replaced when next acquired.
                    await pool.expire_connections()
                # No connection to a primary could be made (none is, or none answers).
                unreachable = not acquired and (lost or no_primary(exc))
                standby = self._standby_pool
                if not self._closed:
                    if not write and unreachable and standby is not None and pool is not standby:
                        pool = standby  # a hot standby answers the read
                        continue
                    if renew and not committing and not retried and pool is self._pool:
                        retried = True
                        continue
                if unreachable and standby is not None and pool is self._pool:
                    raise StoreError(
                        "no PostgreSQL primary is reachable (a failover may be in progress):"
                        f" {describe(exc)}"
                    ) from exc
                if lost:
                    raise StoreError(f"lost the PostgreSQL connection: {describe(exc)}") from exc
                what = "write" if write else "read"
                raise StoreError(f"PostgreSQL {what} failed: {describe(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the record reads' own connection -----------------------------------------------------
    async def _read(self, work: Callable[[_Conn], Awaitable[_T]]) -> _T:
        """Run the read ``work`` through :meth:`_run`, first on the record reads' own
        connection if it is open and idle, else on a pooled one.

        Reasons: an acquire and release of asyncpg's pool cost about 40 µs of CPU per read on
        the 2-core test machine (a timer armed and cancelled on each, a task to release), as
        much as the rest of the read (the single-key statement alone: about 29 µs of CPU on a
        held connection, about 72 µs through the pool). The connection comes from a pool of
        one (:meth:`open`), held between reads; it is asked for in the background on the
        first read, and again after it was dropped (any failure on it: the read then goes on
        as :meth:`_run` decides, through the main pool), at most once a second. Busy (a
        statement running on it), it is not waited for: the read takes a pooled connection."""
        conn = self._reader
        if conn is not None and not self._reader_busy and not _usable(conn):
            self._drop_reader(conn)  # closed under it (the server ended the session)
            conn = None
        if conn is None or self._reader_busy:
            if conn is None:
                self._open_reader()
            return await self._run(work, write=False)
        self._reader_busy = True
        try:
            return await self._run(work, write=False, reader=conn)
        finally:
            self._reader_busy = False
            if self._closed:  # close() left it to this read
                await self._release_reader(conn)

    def _open_reader(self) -> None:
        if self._reader_task is not None or self._closed or self._reader_pool is None:
            return
        if time.monotonic() < self._reader_retry_at:
            return
        self._reader_task = asyncio.get_running_loop().create_task(self._acquire_reader())

    async def _acquire_reader(self) -> None:
        assert self._reader_pool is not None
        try:
            conn = await self._reader_pool.acquire(timeout=self._timeout)
        except DRIVER_ERRORS:
            self._reader_retry_at = time.monotonic() + 1.0
            return
        finally:
            self._reader_task = None
        if self._closed:
            await self._release_reader(conn)
        else:
            self._reader = conn

    def _drop_reader(self, conn: _Conn) -> None:
        """Give up ``conn`` after a failure on it: closed at once (its holder returns to the
        pool of one), a new one asked for on a later read."""
        if self._reader is conn:
            self._reader = None
        with contextlib.suppress(asyncpg.InterfaceError):  # already given back
            conn.terminate()

    async def _release_reader(self, conn: _Conn) -> None:
        if self._reader_pool is not None:
            try:
                await self._reader_pool.release(conn, timeout=self._timeout)
            except DRIVER_ERRORS:
                self._drop_reader(conn)

    async def _column(self, sql: str, *params: str) -> list[str]:
        """The first column of every row of a read query, unescaped."""

        async def query(conn: _Conn) -> list[str]:
            return [from_db(row[0]) for row in await conn.fetch(sql, *params)]

        return await self._run(query, write=False)

    # -- handles ---------------------------------------------------------------------------
    async def get_handle(self, handle: str) -> tuple[HandleValue, ...] | None:
        """All values of ``handle`` ordered by index, or None if the handle does not exist."""
        record = await self.get_record(handle)
        return None if record is None else rec.decode(record)

    async def get_record(self, handle: str) -> bytes | None:
        """The stored record of ``handle`` (:func:`~.records.encode`), or None if absent.

        Reads issued concurrently on the event loop are answered together, by one statement
        per batch (:mod:`~.pgbatch`); a lone read runs the single-key statement. Either goes
        through :meth:`_run` (timeouts, retry, standby pool) and fails with StoreError."""
        self._check_open()
        return await self._reads.read(to_db(handle_key(handle)))

    async def _read_one(self, key: str) -> bytes | None:
        """The record stored under ``key`` (escaped), None if absent: one statement, prepared
        once per pooled connection (asyncpg's statement cache)."""

        async def query(conn: _Conn) -> bytes | None:
            record: bytes | None = await conn.fetchval(_GET, key)
            return record

        return await self._read(query)

    async def _read_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The records stored under ``keys`` (escaped, distinct), by key; absent keys are
        left out."""

        async def query(conn: _Conn) -> dict[str, bytes]:
            return {row[0]: row[1] for row in await conn.fetch(_GET_MANY, keys)}

        return await self._read(query)

    async def create_handle(
        self, handle: str, values: Sequence[HandleValue], *, overwrite: bool = False
    ) -> None:
        """Create ``handle`` with ``values``; HandleAlreadyExists unless ``overwrite``, which
        replaces the whole record (including the display string)."""
        key = handle_key(handle)
        row = _escaped((key, rec.display(key, handle), rec.encode(values)))
        meta = write_meta()
        replaced, index_rows = meta.rows_for([(handle, key)])

        async def txn(conn: _Conn) -> None:
            if overwrite:
                await conn.execute(_REPLACE, *row)
            elif await conn.fetchval(_INSERT_IF_NEW, *row) is None:
                raise HandleAlreadyExists(f"handle already exists: {handle}")
            await _replace_index(conn, replaced, index_rows)
            await _log(conn, [(handle, Action.CREATE_HANDLE)], meta)

        await self._run(txn, write=True, changed=(key,))

    async def create_records(self, records: Sequence[tuple[str, bytes]]) -> list[bool]:
        """Bulk registration in one transaction; existing handles are left as they are.
        Returns, per record, whether it was created.

        Fast path (the usual bulk import of new identifiers): look up which keys exist, then
        COPY the others straight into ``handles`` in key order. If a concurrent writer created
        one of them in between, the COPY fails on the primary key; the batch then goes the
        careful way: COPY into a temporary table and insert from there with ``ON CONFLICT DO
        NOTHING`` in key order (batches sharing handles lock them in the same order and
        cannot deadlock).
        """
        self._check_open()
        rows = [_escaped(row) for row in rec.bulk_rows(records)]
        if not rows:
            return []
        meta = write_meta()

        async def txn(conn: _Conn) -> set[str]:
            keys = [row[0] for row in rows]
            existing = {row[0] for row in await conn.fetch(_EXISTING_KEYS, keys)}
            new = sorted(row for row in rows if row[0] not in existing)
            try:
                async with conn.transaction():  # a savepoint: a failed COPY undoes only itself
                    await conn.copy_records_to_table(
                        "handles", records=new, columns=_STAGING_COLUMNS
                    )
                created = {row[0] for row in new}
            except asyncpg.UniqueViolationError:
                await conn.execute(_CREATE_STAGING)
                await conn.copy_records_to_table(
                    _STAGING, schema_name="pg_temp", records=rows, columns=_STAGING_COLUMNS
                )
                created = {row[0] for row in await conn.fetch(_INSERT_STAGED_IF_NEW)}
            if meta.has_index:  # a new handle has no entries yet: nothing to delete
                written = (
                    (from_db(row[1] or row[0]), from_db(row[0]))
                    for row in rows
                    if row[0] in created
                )
                await _replace_index(conn, (), meta.rows_for(written)[1], fresh=True)
            logged = [from_db(row[1] or row[0]) for row in rows if row[0] in created]
            await _log(conn, [(handle, Action.CREATE_HANDLE) for handle in logged], meta)
            return created

        changed = [handle_key(handle) for handle, _record in records]
        created = await self._run(txn, write=True, changed=changed)
        return [row[0] in created for row in rows]

    async def scan(
        self, after: str | None = None, limit: int = 1000
    ) -> list[tuple[str, tuple[HandleValue, ...]]]:
        """Up to ``limit`` handles with their values in key order, after ``after``."""
        start = to_db(rec.scan_start(after))

        async def query(conn: _Conn) -> list[tuple[str, tuple[HandleValue, ...]]]:
            rows = await conn.fetch(_SCAN, start, limit)
            return [(from_db(handle), rec.decode(record)) for handle, record in rows]

        return await self._run(query, write=False)

    async def count_handles(self) -> int:
        """The number of handles stored."""

        async def query(conn: _Conn) -> int:
            return int(await conn.fetchval(_COUNT))

        return await self._run(query, write=False)

    async def delete_handle(self, handle: str) -> None:
        """Delete the handle, all its values and its index entries; HandleNotFound if absent."""
        key = to_db(handle_key(handle))
        meta = write_meta()

        async def txn(conn: _Conn) -> None:
            if _count(await conn.execute(_DELETE, key)) == 0:
                raise HandleNotFound(f"handle not found: {handle}")
            await conn.execute(_INDEX_DELETE, [key])
            await _log(conn, [(handle, Action.DELETE_HANDLE)], meta)

        await self._run(txn, write=True, changed=(handle_key(handle),))

    async def _edit(self, handle: str, edit: rec.Edit) -> None:
        """Replace the record of ``handle`` by ``edit`` of it, in one transaction that holds
        the row lock (``FOR UPDATE``) from the read to the write."""
        key = to_db(handle_key(handle))
        meta = write_meta()
        replaced, index_rows = meta.rows_for([(handle, handle_key(handle))])

        async def txn(conn: _Conn) -> None:
            record = await conn.fetchval(_GET_FOR_UPDATE, key)
            await conn.execute(_SET_RECORD, edit(record), key)
            await _replace_index(conn, replaced, index_rows)
            await _log(conn, [(handle, Action.UPDATE_HANDLE)], meta)

        await self._run(txn, write=True, changed=(handle_key(handle),))

    async def list_handles(self, prefix: str) -> list[str]:
        """Handles ``<prefix>/<suffix>`` (prefix matched case-insensitively), sorted by key.

        A handle without ``/`` is not listed; ``prefix`` containing ``/`` lists nothing.
        """
        self._check_open()
        bounds = rec.handles_range(prefix)
        return [] if bounds is None else await self._column(_HANDLES_IN_RANGE, *map(to_db, bounds))

    async def list_derived_prefixes(self, prefix: str) -> list[str]:
        """Prefix handles ``0.NA/<prefix>.<x>...`` stored here (any depth), sorted by key.

        ``prefix`` is given without ``0.NA/``; the stored handle strings are returned.
        """
        self._check_open()
        bounds = rec.derived_prefixes_range(prefix)
        return [] if bounds is None else await self._column(_HANDLES_IN_RANGE, *map(to_db, bounds))

    # -- the write index -------------------------------------------------------------------
    async def referrers(
        self, handle: str, limit: int = 100, after: str | None = None
    ) -> list[tuple[str, str]]:
        """(referrer, detail) rows of the first ``limit`` handles after ``after`` (key order)
        whose REFERENCE entries name ``handle``."""
        if limit < 1:
            return []
        key, start = to_db(handle_key(handle)), to_db(rec.scan_start(after))

        async def query(conn: _Conn) -> list[tuple[str, str]]:
            rows = await conn.fetch(_REFERRERS, key, start, limit)
            return [(from_db(r[0]), from_db(r[1])) for r in rows]

        return await self._run(query, write=False)

    async def references(self, handle: str) -> list[tuple[str, str]]:
        """(referenced handle key, detail) of the REFERENCE entries of ``handle``."""
        key = to_db(handle_key(handle))

        async def query(conn: _Conn) -> list[tuple[str, str]]:
            rows = await conn.fetch(_REFERENCES, key)
            return [(from_db(r[0]), from_db(r[1])) for r in rows]

        return await self._run(query, write=False)

    async def lookup_unique(self, key: str) -> str | None:
        """The handle holding the UNIQUE entry ``key``, None if none does."""

        async def query(conn: _Conn) -> str | None:
            found = await conn.fetchval(_UNIQUE_LOOKUP, to_db(key))
            return None if found is None else from_db(found)

        return await self._run(query, write=False)

    async def reindex(self, index: Mapping[str, Iterable[IndexEntry]]) -> int:
        """Replace the entries of the handles of ``index`` that exist, records unchanged;
        the number replaced. UniqueValueTaken (nothing changes) on a UNIQUE conflict.

        Each handle's row is locked (``FOR SHARE``) first, so a concurrent delete cannot
        leave entries of a handle that no longer exists."""
        by_key = normalise_index(index)

        async def txn(conn: _Conn) -> int:
            keys = sorted(to_db(key) for key in by_key)
            found = await conn.fetch(_LOCK_EXISTING, keys)
            replaced = sorted(from_db(row[0]) for row in found)
            await _replace_index(conn, replaced, sorted(r for k in replaced for r in by_key[k]))
            return len(replaced)

        return await self._run(txn, write=True)

    # -- homed prefixes --------------------------------------------------------------------
    async def home_prefix(self, prefix: str) -> None:
        """Mark ``prefix`` (without ``0.NA/``) as homed. Idempotent: homing it again keeps
        the display string it was first homed with."""
        key, display = to_db(handle_key(prefix)), to_db(prefix)
        meta = write_meta()

        async def txn(conn: _Conn) -> None:
            if _count(await conn.execute(_HOME, key, display)):
                await _log(conn, [(prefix_entry(prefix), Action.HOME_PREFIX)], meta)

        try:
            await self._run(txn, write=True, changed=None)
        finally:
            self._homed.invalidate()

    async def unhome_prefix(self, prefix: str) -> None:
        """Stop serving ``prefix``; HandleNotFound if it was not homed."""
        key = to_db(handle_key(prefix))
        meta = write_meta()

        async def txn(conn: _Conn) -> None:
            if _count(await conn.execute(_UNHOME, key)) == 0:
                raise HandleNotFound(f"prefix not homed: {prefix}")
            await _log(conn, [(prefix_entry(prefix), Action.UNHOME_PREFIX)], meta)

        try:
            await self._run(txn, write=True, changed=None)
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

        async def query(conn: _Conn) -> list[Txn]:
            rows = await conn.fetch(_TXNS_AFTER, after, limit)
            return [Txn(r[0], from_db(r[1]), Action(r[2]), r[3]) for r in rows]

        return await self._run(query, write=False)

    async def txn_log_state(self) -> TxnLogState:
        """The oldest entry kept and the last id handed out."""

        async def query(conn: _Conn) -> TxnLogState:
            first = await conn.fetchrow(_FIRST_TXN)
            last = await conn.fetchval(_LAST_TXN_ID)
            if first is None:
                return TxnLogState(None, None, last)
            return TxnLogState(first[0], first[1], last)

        return await self._run(query, write=True)  # one snapshot for both statements

    async def prune_txn_log(self, before_ms: int) -> int:
        """Drop log entries dated before ``before_ms``; how many were dropped."""

        async def txn(conn: _Conn) -> int:
            return _count(await conn.execute(_PRUNE, before_ms))

        return await self._run(txn, write=True)

    async def apply_replicated(
        self, changes: Sequence[Change], *, source: str | None, txn_id: int, date_ms: int
    ) -> None:
        """Apply ``changes`` from a primary and record that ``source`` was followed up to
        ``txn_id`` at ``date_ms``, in one transaction; the changes enter this store's own log
        (with the write context's actor and origin). Every handle changed loses its index
        entries (see :meth:`~.base.HandleStore.apply_replicated`)."""
        for change in changes:
            if change.record is not None:
                rec.decode(change.record)  # refuse a record that does not decode
        meta = write_meta()
        unindexed = [
            to_db(handle_key(change.handle))
            for change in changes
            if change.action in (Action.CREATE_HANDLE, Action.UPDATE_HANDLE, Action.DELETE_HANDLE)
        ]

        async def txn(conn: _Conn) -> None:
            for change in changes:
                await self._apply(conn, change)
            if unindexed:
                await conn.execute(_INDEX_DELETE, unindexed)
            await _log(conn, [(change.handle, change.action) for change in changes], meta)
            if source is not None:
                await conn.execute(_SET_SOURCE, source, txn_id, date_ms)

        changed = None
        if all(c.action not in (Action.HOME_PREFIX, Action.UNHOME_PREFIX) for c in changes):
            changed = [handle_key(c.handle) for c in changes]
        try:
            await self._run(txn, write=True, changed=changed)
        finally:
            self._homed.invalidate()

    @staticmethod
    async def _apply(conn: _Conn, change: Change) -> None:
        if change.record is not None:
            key = handle_key(change.handle)
            row = _escaped((key, rec.display(key, change.handle), change.record))
            await conn.execute(_REPLACE, *row)
        elif change.action == Action.DELETE_HANDLE:
            await conn.execute(_DELETE, to_db(handle_key(change.handle)))
        elif change.action == Action.HOME_PREFIX:
            await conn.execute(_HOME, to_db(handle_key(change.prefix)), to_db(change.prefix))
        else:
            await conn.execute(_UNHOME, to_db(handle_key(change.prefix)))

    async def audit(
        self, handle: str | None = None, after_txn: int = 0, limit: int = 100
    ) -> list[AuditEntry]:
        """Up to ``limit`` audit entries with ids above ``after_txn`` (of ``handle`` only, if
        given), in id order."""
        if limit < 1:
            return []

        async def query(conn: _Conn) -> list[AuditEntry]:
            if handle is None:
                rows = await conn.fetch(_AUDIT, after_txn, limit)
            else:
                rows = await conn.fetch(_AUDIT_HANDLE, after_txn, limit, to_db(handle_key(handle)))
            return [
                AuditEntry(
                    r[0],
                    from_db(r[1]),
                    Action(r[2]),
                    r[3],
                    None if r[4] is None else from_db(r[4]),
                    None if r[5] is None else from_db(r[5]),
                )
                for r in rows
            ]

        return await self._run(query, write=False)

    async def replication_source(self, source: str) -> tuple[int, int] | None:
        """(last txn id, last date ms) followed from ``source``, None if never."""

        async def query(conn: _Conn) -> tuple[int, int] | None:
            row = await conn.fetchrow(_SOURCE, source)
            return None if row is None else (int(row[0]), int(row[1]))

        return await self._run(query, write=False)

    # -- accounts, enterprises, prefix applications (schema 0005) --------------------------
    def accounts(self) -> AccountRepository:
        """The accounts repository of this database (:mod:`~.accounts_sql`), run through
        this store's pool with its transaction and retry rules."""
        return StatementRepository(postgres_runner(self._run))

    # -- statistics ------------------------------------------------------------------------
    async def add_stats(
        self, counts: Sequence[DayCount], *, position: tuple[int, int] | None = None
    ) -> bool:
        """Add ``counts`` (upsert-add) and move the log position from ``position[0]`` to
        ``position[1]``; False, nothing written, if it was not at ``position[0]``."""
        rows = [
            (to_db(handle_key(c.prefix)), c.day, to_db(c.prefix), c.resolutions, c.registrations)
            for c in counts
        ]
        rows.sort()  # one lock order for concurrent flushers

        async def txn(conn: _Conn) -> bool:
            if position is not None:
                moved = _count(await conn.execute(_STATS_MOVE, position[1], position[0]))
                if moved == 0:
                    return False
            if rows:
                await conn.executemany(_STATS_ADD, rows)
            return True

        return await self._run(txn, write=True)

    async def stats_position(self) -> int:
        """The last log id whose registrations the statistics hold."""

        async def query(conn: _Conn) -> int:
            value = await conn.fetchval(_STATS_POSITION)
            return 0 if value is None else int(value)

        return await self._run(query, write=False)

    async def registrations(self, after: int, limit: int) -> Registrations:
        """The registrations among the first ``limit`` log entries after ``after``."""

        async def query(conn: _Conn) -> Registrations:
            page = await conn.fetchrow(_PAGE_BOUNDS, after, limit)
            if page is None or not page[0]:
                return Registrations([], 0, after)
            entries, last = page
            rows = await conn.fetch(_REGISTRATIONS, after, last, Action.CREATE_HANDLE)
            counts = [DayCount(from_db(r[0]), day_of(r[1]), 0, r[2]) for r in rows]
            return Registrations(counts, entries, last)

        return await self._run(query, write=False)

    async def stats(
        self, prefix: str | None = None, since: str | None = None, until: str | None = None
    ) -> list[DayCount]:
        """The statistics of ``prefix`` (or all) for the days ``since``..``until``."""
        key = None if prefix is None else to_db(handle_key(prefix))

        async def query(conn: _Conn) -> list[DayCount]:
            rows = await conn.fetch(_STATS_SELECT, key, since, until)
            return [DayCount(from_db(r[0]), r[1], r[2], r[3]) for r in rows]

        return await self._run(query, write=False)

    async def put_child_report(
        self, child: str, report: str, counts: Sequence[DayCount], received_ms: int
    ) -> None:
        """Keep ``child``'s report and replace its counts of the days given."""
        who = to_db(child)
        rows = sorted(
            (who, to_db(handle_key(c.prefix)), c.day, to_db(c.prefix), c.resolutions,
             c.registrations)
            for c in counts
        )  # fmt: skip

        async def txn(conn: _Conn) -> None:
            await conn.execute(_CHILD_REPORT_PUT, who, received_ms, to_db(report))
            if rows:
                await conn.executemany(_CHILD_STATS_PUT, rows)

        await self._run(txn, write=True)

    async def child_reports(
        self, since: str | None = None, until: str | None = None
    ) -> list[ChildReport]:
        """Every child's last report with its counts of the days ``since``..``until``."""

        async def query(conn: _Conn) -> list[ChildReport]:
            counts: dict[str, list[DayCount]] = {}
            for r in await conn.fetch(_CHILD_STATS_SELECT, since, until):
                counts.setdefault(r[0], []).append(DayCount(from_db(r[1]), r[2], r[3], r[4]))
            return [
                ChildReport(from_db(r[0]), r[1], from_db(r[2]), tuple(counts.get(r[0], ())))
                for r in await conn.fetch(_CHILD_REPORTS)
            ]

        return await self._run(query, write=True)  # one snapshot for both statements


_STATS_ADD = (
    "INSERT INTO stats_daily (prefix_key, day, prefix, resolutions, registrations)"
    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (prefix_key, day) DO UPDATE"
    " SET resolutions = stats_daily.resolutions + excluded.resolutions,"
    " registrations = stats_daily.registrations + excluded.registrations"
)
_STATS_MOVE = "UPDATE stats_position SET last_txn_id = $1 WHERE id = 1 AND last_txn_id = $2"
_STATS_POSITION = "SELECT last_txn_id FROM stats_position WHERE id = 1"
_PAGE_BOUNDS = (
    "SELECT count(*), max(txn_id) FROM"
    " (SELECT txn_id FROM txn_log WHERE txn_id > $1 ORDER BY txn_id LIMIT $2) AS page"
)
# prefix_of in SQL (split_part gives all of a handle without "/"); the UTC day of date_ms.
_REGISTRATIONS = (
    "SELECT split_part(handle, '/', 1), date_ms / 86400000, count(*) FROM txn_log"
    " WHERE txn_id > $1 AND txn_id <= $2 AND action = $3 GROUP BY 1, 2"
)
# NULL parameters match everything.
_STATS_SELECT = (
    "SELECT prefix, day, resolutions, registrations FROM stats_daily"
    " WHERE ($1::text IS NULL OR prefix_key = $1) AND ($2::text IS NULL OR day >= $2)"
    " AND ($3::text IS NULL OR day <= $3) ORDER BY day, prefix_key"
)
_CHILD_REPORT_PUT = (
    "INSERT INTO child_reports (child, received_ms, report) VALUES ($1, $2, $3)"
    " ON CONFLICT (child) DO UPDATE"
    " SET received_ms = excluded.received_ms, report = excluded.report"
)
_CHILD_STATS_PUT = (
    "INSERT INTO child_stats (child, prefix_key, day, prefix, resolutions, registrations)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (child, prefix_key, day) DO UPDATE"
    " SET prefix = excluded.prefix, resolutions = excluded.resolutions,"
    " registrations = excluded.registrations"
)
_CHILD_STATS_SELECT = (
    "SELECT child, prefix, day, resolutions, registrations FROM child_stats"
    " WHERE ($1::text IS NULL OR day >= $1) AND ($2::text IS NULL OR day <= $2)"
    " ORDER BY child, day, prefix_key"
)
_CHILD_REPORTS = "SELECT child, received_ms, report FROM child_reports ORDER BY child"
