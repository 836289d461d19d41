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

Keys: ``*_key`` columns are ``COLLATE "C"`` (see :func:`~.migrations.translate_for_postgres`),
so ``ORDER BY`` and the prefix range scans compare bytes and use the primary-key index, as
SQLite does. PostgreSQL text cannot hold U+0000, which handle strings may contain, so strings
are stored with an order-preserving escape (:func:`~.pgdriver.to_db`): U+0000 as U+0001 U+0001
and U+0001 as U+0001 U+0002.

Failures: driver and server errors are raised as StoreError. When a connection is lost (server
restart, network), every pooled connection is dropped and later calls connect afresh; the call
that saw the loss is retried once on a new connection if nothing can have been committed (a
read, or a write that had not yet sent COMMIT), and otherwise fails with StoreError.

Cancelling the task awaiting a write may or may not stop the write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias, TypeVar

import asyncpg

from idnode.errors import HandleAlreadyExists, HandleNotFound, StoreError
from idnode.protocol.values import HandleValue
from idnode.store import records as rec
from idnode.store.base import handle_key
from idnode.store.migrations import migrate_postgres
from idnode.store.pgdriver import (
    CONNECTION_LOST,
    DRIVER_ERRORS,
    connect,
    connection_lost,
    describe,
    from_db,
    keep_session,
    session_settings,
    to_db,
)

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
_IS_HOMED = "SELECT TRUE FROM homed_prefixes WHERE prefix_key = $1"


def _escaped(row: rec.Row) -> rec.Row:
    """A row as stored: key and display string escaped (:func:`to_db`)."""
    key, display, record = row
    return to_db(key), None if display is None else to_db(display), record


def _count(status: str) -> int:
    """The row count of a command status such as ``DELETE 3``."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresStore(rec.ValueEdits):
    """A :class:`~idnode.store.base.HandleStore` in a PostgreSQL database.

    Create it with ``await PostgresStore.open(url)``; release it with ``await store.close()``.
    All methods must be awaited on the event loop that opened the store; any number of tasks
    may call them concurrently (up to ``pool_size`` at a time, the rest wait). Beyond the
    HandleStore contract, as in :class:`~idnode.store.sqlite.SQLiteStore`: values given to
    one call must have distinct indexes (InvalidValue otherwise, nothing changes);
    :meth:`close` is idempotent, and every other call after it raises StoreError.
    """

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], *, timeout: float) -> None:
        """Internal: use :meth:`open`."""
        self._pool = pool
        self._timeout = timeout
        self._closed = False

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10, timeout: float = 10.0) -> PostgresStore:
        """Connect to the database at ``url`` (``postgresql://user:password@host:port/db``)
        and migrate its schema.

        ``pool_size`` is the most connections kept open; ``timeout`` (seconds) bounds
        connecting, waiting for a pooled connection and each statement (lock waits give up
        after half of it). Raises StoreError if the server cannot be reached, the database
        is not UTF8, or its schema is newer than this idnode's.
        """
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                reset=keep_session,
                timeout=timeout,
                command_timeout=timeout,
                server_settings=session_settings(timeout),
            )
        except DRIVER_ERRORS as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {describe(exc)}") from exc
        store = cls(pool, timeout=timeout)
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
        try:
            await asyncio.wait_for(self._pool.close(), self._timeout)
        except TimeoutError:
            self._pool.terminate()
        except DRIVER_ERRORS as exc:
            self._pool.terminate()
            raise StoreError(f"closing the PostgreSQL store: {describe(exc)}") from exc

    # -- plumbing --------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("store is closed")

    async def _run(self, work: Callable[[_Conn], Awaitable[_T]], *, write: bool) -> _T:
        """Run ``work`` on a pooled connection, in a transaction if ``write``.

        When the connection is lost (:func:`~.pgdriver.connection_lost`) the pool is renewed,
        and ``work`` is retried once unless a COMMIT may have been sent. Every driver error
        ends as StoreError.
        """
        self._check_open()
        for attempt in (1, 2):
            committing = False
            try:
                async with self._pool.acquire(timeout=self._timeout) as conn:
                    if not write:
                        return await work(conn)
                    async with conn.transaction():
                        result = await work(conn)
                        committing = True  # leaving the block sends COMMIT
                    return result
            except DRIVER_ERRORS as exc:
                lost = connection_lost(exc)
                if lost or isinstance(exc, asyncpg.InternalClientError):
                    # This connection may be unusable, and others to the same server too:
                    # each pooled connection is replaced when next acquired.
                    await self._pool.expire_connections()
                if lost and not committing and attempt == 1 and not self._closed:
                    continue
                if lost:
                    raise StoreError(f"lost the PostgreSQL connection: {describe(exc)}") from exc
                what = "write" if write else "read"
                raise StoreError(f"PostgreSQL {what} failed: {describe(exc)}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _column(self, sql: str, *params: str) -> list[str]:
        """The first column of every row of a read query, unescaped."""

        async def query(conn: _Conn) -> list[str]:
            return [from_db(row[0]) for row in await conn.fetch(sql, *params)]

        return await self._run(query, write=False)

    # -- handles ---------------------------------------------------------------------------
    async def get_handle(self, handle: str) -> tuple[HandleValue, ...] | None:
        """All values of ``handle`` ordered by index, or None if the handle does not exist."""
        key = to_db(handle_key(handle))

        async def query(conn: _Conn) -> tuple[HandleValue, ...] | None:
            record = await conn.fetchval(_GET, key)
            return None if record is None else rec.decode(record)

        return await self._run(query, write=False)

    async def create_handle(
        self, handle: str, values: Sequence[HandleValue], *, overwrite: bool = False
    ) -> None:
        """Create ``handle`` with ``values``; HandleAlreadyExists unless ``overwrite``, which
        replaces the whole record (including the display string)."""
        key = handle_key(handle)
        row = _escaped((key, rec.display(key, handle), rec.encode(values)))

        async def txn(conn: _Conn) -> None:
            if overwrite:
                await conn.execute(_REPLACE, *row)
            elif await conn.fetchval(_INSERT_IF_NEW, *row) is None:
                raise HandleAlreadyExists(f"handle already exists: {handle}")

        await self._run(txn, write=True)

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

        async def txn(conn: _Conn) -> set[str]:
            keys = [row[0] for row in rows]
            existing = {row[0] for row in await conn.fetch(_EXISTING_KEYS, keys)}
            new = sorted(row for row in rows if row[0] not in existing)
            try:
                async with conn.transaction():  # a savepoint: a failed COPY undoes only itself
                    await conn.copy_records_to_table(
                        "handles", records=new, columns=_STAGING_COLUMNS
                    )
                return {row[0] for row in new}
            except asyncpg.UniqueViolationError:
                pass
            await conn.execute(_CREATE_STAGING)
            await conn.copy_records_to_table(
                _STAGING, schema_name="pg_temp", records=rows, columns=_STAGING_COLUMNS
            )
            return {row[0] for row in await conn.fetch(_INSERT_STAGED_IF_NEW)}

        created = await self._run(txn, write=True)
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
        """Delete the handle and all its values; HandleNotFound if absent."""
        key = to_db(handle_key(handle))

        async def txn(conn: _Conn) -> None:
            if _count(await conn.execute(_DELETE, key)) == 0:
                raise HandleNotFound(f"handle not found: {handle}")

        await self._run(txn, write=True)

    async def _edit(self, handle: str, edit: rec.Edit) -> None:
        """Replace the record of ``handle`` by ``edit`` of it, in one transaction that holds
        the row lock (``FOR UPDATE``) from the read to the write."""
        key = to_db(handle_key(handle))

        async def txn(conn: _Conn) -> None:
            record = await conn.fetchval(_GET_FOR_UPDATE, key)
            await conn.execute(_SET_RECORD, edit(record), key)

        await self._run(txn, write=True)

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

    # -- homed prefixes --------------------------------------------------------------------
    async def home_prefix(self, prefix: str) -> None:
        """Mark ``prefix`` (without ``0.NA/``) as homed. Idempotent: homing it again keeps
        the display string it was first homed with."""
        key, display = to_db(handle_key(prefix)), to_db(prefix)

        async def txn(conn: _Conn) -> None:
            await conn.execute(_HOME, key, display)

        await self._run(txn, write=True)

    async def unhome_prefix(self, prefix: str) -> None:
        """Stop serving ``prefix``; HandleNotFound if it was not homed."""
        key = to_db(handle_key(prefix))

        async def txn(conn: _Conn) -> None:
            if _count(await conn.execute(_UNHOME, key)) == 0:
                raise HandleNotFound(f"prefix not homed: {prefix}")

        await self._run(txn, write=True)

    async def homed_prefixes(self) -> list[str]:
        """All homed prefixes (as first homed), sorted by key."""
        return await self._column(_HOMED)

    async def is_homed(self, prefix: str) -> bool:
        """Whether ``prefix`` is homed here (case-insensitive)."""
        key = to_db(handle_key(prefix))

        async def query(conn: _Conn) -> bool:
            return await conn.fetchval(_IS_HOMED, key) is not None

        return await self._run(query, write=False)
