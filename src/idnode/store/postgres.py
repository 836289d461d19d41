"""PostgreSQL storage backend: :class:`PostgresStore` implements :class:`~.base.HandleStore`.

Driver: asyncpg, chosen over psycopg 3 (+ psycopg_pool) by a micro-benchmark on this project's
2-core machine: PostgreSQL 15 on 127.0.0.1 with fsync on, this module's table and statements
(get: one SELECT; create: BEGIN, INSERT ... ON CONFLICT DO NOTHING, COMMIT), 300-byte records,
2,000 operations, prepared statements with both drivers; asyncpg 0.32.0, psycopg 3.3.9 +
psycopg_pool 3.3.3. Two runs, each the median of 3 rounds (the machine is noisy)::

                       one task at a time              16 concurrent tasks
                       get_handle    create_handle     get_handle       create_handle
    asyncpg, uvloop    200 / 165 us  669 / 607 us      17.3k / 12.5k/s  5.9k / 3.7k/s
    asyncpg, asyncio   228 / 196 us  649 / 720 us      11.9k / 13.8k/s  4.2k / 3.5k/s
    psycopg, uvloop    239 / 272 us  711 / 898 us      13.7k /  9.1k/s  4.5k / 2.9k/s
    psycopg, asyncio   229 / 308 us  803 / 892 us      12.1k /  7.1k/s  3.8k / 2.3k/s

asyncpg is faster in all but one cell (a tie within the noise), clearly so on uvloop, which
the node runs on. The asyncpg figures are with the pool's per-release ``RESET ALL`` round trip
switched off (:func:`_keep_session`); with it, get_handle took 290-360 us, no faster than
psycopg.

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

Keys: ``*_key`` columns are ``COLLATE "C"`` (see :func:`~.migrations.translate_for_postgres`),
so ``ORDER BY`` and the prefix range scans compare bytes and use the primary-key index, as
SQLite does. PostgreSQL text cannot hold U+0000, which handle strings may contain, so strings
are stored with an order-preserving escape (:func:`to_db`): U+0000 as U+0001 U+0001 and U+0001
as U+0001 U+0002.

Failures: driver and server errors are raised as StoreError. When a connection is lost (server
restart, network), every pooled connection is dropped and later calls connect afresh; the call
that saw the loss is retried once on a new connection if nothing can have been committed (a
read, or a write that had not yet sent COMMIT), and otherwise fails with StoreError.

Cancelling the task awaiting a write may or may not stop the write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar

import asyncpg  # type: ignore[import-untyped]

from idnode.errors import (
    HandleAlreadyExists,
    HandleError,
    HandleNotFound,
    InvalidValue,
    ProtocolViolation,
    StoreError,
    ValueAlreadyExists,
    ValuesNotFound,
)
from idnode.protocol.values import HandleValue, decode_record, encode_record
from idnode.store.base import handle_key
from idnode.store.migrations import migrate_postgres

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

#: Errors of the driver and the network; raised from PostgresStore as StoreError.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # e.g. a protocol state error on a connection being dropped
    OSError,
    TimeoutError,
)
#: Errors meaning the connection is gone (class 08, server shutdown or start-up, socket errors).
CONNECTION_LOST: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    OSError,
)

_NA = "0.NA/"

_GET = "SELECT record FROM handles WHERE handle_key = $1"
_GET_FOR_UPDATE = "SELECT record FROM handles WHERE handle_key = $1 FOR UPDATE"
_INSERT_IF_NEW = (
    "INSERT INTO handles (handle_key, handle, record) VALUES ($1, $2, $3)"
    " ON CONFLICT (handle_key) DO NOTHING RETURNING TRUE"
)
_INSERT_MANY_IF_NEW = (
    "INSERT INTO handles (handle_key, handle, record)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[])"
    " ON CONFLICT (handle_key) DO NOTHING RETURNING handle_key"
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
_IS_HOMED = "SELECT TRUE FROM homed_prefixes WHERE prefix_key = $1"


class _Connection(Protocol):
    """The part of ``asyncpg.Connection`` this module uses (asyncpg ships no type hints)."""

    async def execute(self, query: str, *args: object, timeout: float | None = None) -> str: ...
    async def fetch(
        self, query: str, *args: object, timeout: float | None = None
    ) -> list[Sequence[Any]]: ...
    async def fetchval(self, query: str, *args: object, timeout: float | None = None) -> Any: ...
    def transaction(self) -> AbstractAsyncContextManager[Any]: ...
    async def close(self, *, timeout: float | None = None) -> None: ...


class _Pool(Protocol):
    """The part of ``asyncpg.Pool`` this module uses."""

    def acquire(
        self, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[_Connection]: ...
    async def expire_connections(self) -> None: ...
    async def close(self) -> None: ...
    def terminate(self) -> None: ...


def describe(exc: BaseException) -> str:
    """The message of a driver error, or its class name if it has none (TimeoutError)."""
    return str(exc) or type(exc).__name__


def to_db(text: str) -> str:
    """``text`` as stored: U+0001 becomes U+0001 U+0002, then U+0000 becomes U+0001 U+0001.

    PostgreSQL text cannot contain U+0000. The escape keeps the byte order of strings (each
    escaped character still sorts where the original did, and no escaped character is a
    prefix of another), so ORDER BY and range scans on escaped keys give SQLite's order.
    """
    if "\x00" not in text and "\x01" not in text:
        return text
    return text.replace("\x01", "\x01\x02").replace("\x00", "\x01\x01")


def from_db(text: str) -> str:
    """The inverse of :func:`to_db`."""
    if "\x01" not in text:
        return text
    return text.replace("\x01\x01", "\x00").replace("\x01\x02", "\x01")


async def _keep_session(conn: object) -> None:
    """Pool ``reset`` hook: nothing to undo, as idnode changes no session state (asyncpg
    still rolls back an open transaction on release). Saves a round trip per release."""


async def connect(url: str, *, timeout: float = 10.0) -> _Connection:
    """One connection to ``url`` with idnode's session settings; StoreError if it fails.

    The caller closes it.
    """
    try:
        conn: _Connection = await asyncpg.connect(
            url, timeout=timeout, command_timeout=timeout, server_settings=_settings(timeout)
        )
    except DRIVER_ERRORS as exc:
        raise StoreError(f"cannot connect to PostgreSQL: {describe(exc)}") from exc
    return conn


def _settings(timeout: float) -> dict[str, str]:
    """Session settings: durable commits, and lock waits that give up before the client's
    ``timeout`` so that they fail with a clear server error (LockNotAvailable)."""
    return {
        "application_name": "idnode",
        "synchronous_commit": "on",
        "lock_timeout": f"{max(1, round(timeout * 500))}ms",
    }


def _display(key: str, handle: str) -> str | None:
    """The display column: NULL when the handle is spelled as its key (saves the bytes)."""
    return None if handle == key else to_db(handle)


def _encode(values: Sequence[HandleValue]) -> bytes:
    try:
        return encode_record(values)
    except ProtocolViolation as exc:
        raise InvalidValue(str(exc)) from exc


def _decode(record: bytes) -> tuple[HandleValue, ...]:
    try:
        return decode_record(record)
    except HandleError as exc:
        raise StoreError(f"stored record does not decode: {exc}") from exc


def _distinct(values: Sequence[HandleValue]) -> dict[int, HandleValue]:
    by_index = {v.index: v for v in values}
    if len(by_index) != len(values):
        raise InvalidValue("two values share an index")
    return by_index


async def _current(conn: _Connection, key: str, handle: str) -> dict[int, HandleValue]:
    """The handle's values by index, its row locked until the end of the transaction;
    HandleNotFound if absent."""
    record = await conn.fetchval(_GET_FOR_UPDATE, key)
    if record is None:
        raise HandleNotFound(f"handle not found: {handle}")
    return {v.index: v for v in _decode(record)}


def _connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` or an error it was raised from or while handling is one of
    :data:`CONNECTION_LOST` (e.g. the rollback after a lost connection fails with
    "the underlying connection is closed")."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, CONNECTION_LOST):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _count(status: str) -> int:
    """The row count of a command status such as ``DELETE 3``."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresStore:
    """A :class:`~idnode.store.base.HandleStore` in a PostgreSQL database.

    Create it with ``await PostgresStore.open(url)``; release it with ``await store.close()``.
    All methods must be awaited on the event loop that opened the store; any number of tasks
    may call them concurrently (up to ``pool_size`` at a time, the rest wait). Beyond the
    HandleStore contract, as in :class:`~idnode.store.sqlite.SQLiteStore`: values given to
    one call must have distinct indexes (InvalidValue otherwise, nothing changes);
    :meth:`close` is idempotent, and every other call after it raises StoreError.
    """

    def __init__(self, pool: _Pool, *, timeout: float) -> None:
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
            pool: _Pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=pool_size,
                reset=_keep_session,
                timeout=timeout,
                command_timeout=timeout,
                server_settings=_settings(timeout),
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

    async def _run(self, work: Callable[[_Connection], Awaitable[_T]], *, write: bool) -> _T:
        """Run ``work`` on a pooled connection, in a transaction if ``write``.

        When the connection is lost (:func:`_connection_lost`) the pool is renewed, and
        ``work`` is retried once unless a COMMIT may have been sent. Every driver error ends
        as StoreError.
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
                lost = _connection_lost(exc)
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

        async def query(conn: _Connection) -> list[str]:
            return [from_db(row[0]) for row in await conn.fetch(sql, *params)]

        return await self._run(query, write=False)

    # -- handles ---------------------------------------------------------------------------
    async def get_handle(self, handle: str) -> tuple[HandleValue, ...] | None:
        """All values of ``handle`` ordered by index, or None if the handle does not exist."""
        key = to_db(handle_key(handle))

        async def query(conn: _Connection) -> tuple[HandleValue, ...] | None:
            record = await conn.fetchval(_GET, key)
            return None if record is None else _decode(record)

        return await self._run(query, write=False)

    async def create_handle(
        self, handle: str, values: Sequence[HandleValue], *, overwrite: bool = False
    ) -> None:
        """Create ``handle`` with ``values``; HandleAlreadyExists unless ``overwrite``, which
        replaces the whole record (including the display string)."""
        key = handle_key(handle)
        row = (to_db(key), _display(key, handle), _encode(values))

        async def txn(conn: _Connection) -> None:
            if overwrite:
                await conn.execute(_REPLACE, *row)
            elif await conn.fetchval(_INSERT_IF_NEW, *row) is None:
                raise HandleAlreadyExists(f"handle already exists: {handle}")

        await self._run(txn, write=True)

    async def create_records(self, records: Sequence[tuple[str, bytes]]) -> list[bool]:
        """Bulk registration in one transaction (one statement); existing handles are left as
        they are. Returns, per record, whether it was created."""
        keys = [handle_key(h) for h, _ in records]
        if len(set(keys)) != len(keys):
            raise InvalidValue("a handle appears twice in one batch")
        rows = sorted(
            (to_db(k), _display(k, h), rec) for k, (h, rec) in zip(keys, records, strict=True)
        )  # key order: batches sharing handles lock them in the same order
        columns = [list(column) for column in zip(*rows, strict=True)] or [[], [], []]

        async def txn(conn: _Connection) -> set[str]:
            return {row[0] for row in await conn.fetch(_INSERT_MANY_IF_NEW, *columns)}

        created = await self._run(txn, write=True)
        return [to_db(k) in created for k in keys]

    async def scan(
        self, after: str | None = None, limit: int = 1000
    ) -> list[tuple[str, tuple[HandleValue, ...]]]:
        """Up to ``limit`` handles with their values in key order, after ``after``."""
        start = "" if after is None else to_db(handle_key(after))  # "" sorts before every key

        async def query(conn: _Connection) -> list[tuple[str, tuple[HandleValue, ...]]]:
            rows = await conn.fetch(_SCAN, start, limit)
            return [(from_db(handle), _decode(record)) for handle, record in rows]

        return await self._run(query, write=False)

    async def count_handles(self) -> int:
        """The number of handles stored."""

        async def query(conn: _Connection) -> int:
            return int(await conn.fetchval(_COUNT))

        return await self._run(query, write=False)

    async def delete_handle(self, handle: str) -> None:
        """Delete the handle and all its values; HandleNotFound if absent."""
        key = to_db(handle_key(handle))

        async def txn(conn: _Connection) -> None:
            if _count(await conn.execute(_DELETE, key)) == 0:
                raise HandleNotFound(f"handle not found: {handle}")

        await self._run(txn, write=True)

    async def add_values(
        self, handle: str, values: Sequence[HandleValue], *, overwrite: bool = False
    ) -> None:
        """Add values; HandleNotFound if absent; ValueAlreadyExists for an index already
        present unless ``overwrite`` (then it is replaced). On error nothing changes."""
        key = to_db(handle_key(handle))
        new = _distinct(values)

        async def txn(conn: _Connection) -> None:
            current = await _current(conn, key, handle)
            taken = current.keys() & new.keys()
            if taken and not overwrite:
                raise ValueAlreadyExists(f"{handle}: indexes {sorted(taken)} already exist")
            await conn.execute(_SET_RECORD, _encode(list((current | new).values())), key)

        await self._run(txn, write=True)

    async def modify_values(self, handle: str, values: Sequence[HandleValue]) -> None:
        """Replace values by index; HandleNotFound if the handle is absent, ValuesNotFound if
        any index is absent. On error nothing changes."""
        key = to_db(handle_key(handle))
        new = _distinct(values)

        async def txn(conn: _Connection) -> None:
            current = await _current(conn, key, handle)
            missing = new.keys() - current.keys()
            if missing:
                raise ValuesNotFound(f"{handle}: no values at indexes {sorted(missing)}")
            await conn.execute(_SET_RECORD, _encode(list((current | new).values())), key)

        await self._run(txn, write=True)

    async def remove_values(self, handle: str, indexes: Sequence[int]) -> None:
        """Remove values by index; HandleNotFound if the handle is absent, ValuesNotFound if
        any index is absent. On error nothing changes. The handle stays, even if empty."""
        key = to_db(handle_key(handle))
        wanted = set(indexes)

        async def txn(conn: _Connection) -> None:
            current = await _current(conn, key, handle)
            missing = wanted - current.keys()
            if missing:
                raise ValuesNotFound(f"{handle}: no values at indexes {sorted(missing)}")
            kept = [v for i, v in current.items() if i not in wanted]
            await conn.execute(_SET_RECORD, _encode(kept), key)

        await self._run(txn, write=True)

    async def list_handles(self, prefix: str) -> list[str]:
        """Handles ``<prefix>/<suffix>`` (prefix matched case-insensitively), sorted by key.

        A handle without ``/`` is not listed; ``prefix`` containing ``/`` lists nothing.
        """
        self._check_open()
        if "/" in prefix:
            return []
        key = to_db(handle_key(prefix))
        # Every key that starts with "KEY/" and nothing else: "0" follows "/" in byte order.
        return await self._column(_HANDLES_IN_RANGE, key + "/", key + "0")

    async def list_derived_prefixes(self, prefix: str) -> list[str]:
        """Prefix handles ``0.NA/<prefix>.<x>...`` stored here (any depth), sorted by key.

        ``prefix`` is given without ``0.NA/``; the stored handle strings are returned.
        """
        self._check_open()
        if "/" in prefix:
            return []
        key = to_db(_NA + handle_key(prefix))
        # Every key that starts with "0.NA/KEY.": "/" follows "." in byte order.
        return await self._column(_HANDLES_IN_RANGE, key + ".", key + "/")

    # -- homed prefixes --------------------------------------------------------------------
    async def home_prefix(self, prefix: str) -> None:
        """Mark ``prefix`` (without ``0.NA/``) as homed. Idempotent: homing it again keeps
        the display string it was first homed with."""
        key, display = to_db(handle_key(prefix)), to_db(prefix)

        async def txn(conn: _Connection) -> None:
            await conn.execute(_HOME, key, display)

        await self._run(txn, write=True)

    async def unhome_prefix(self, prefix: str) -> None:
        """Stop serving ``prefix``; HandleNotFound if it was not homed."""
        key = to_db(handle_key(prefix))

        async def txn(conn: _Connection) -> None:
            if _count(await conn.execute(_UNHOME, key)) == 0:
                raise HandleNotFound(f"prefix not homed: {prefix}")

        await self._run(txn, write=True)

    async def homed_prefixes(self) -> list[str]:
        """All homed prefixes (as first homed), sorted by key."""
        return await self._column(_HOMED)

    async def is_homed(self, prefix: str) -> bool:
        """Whether ``prefix`` is homed here (case-insensitive)."""
        key = to_db(handle_key(prefix))

        async def query(conn: _Connection) -> bool:
            return await conn.fetchval(_IS_HOMED, key) is not None

        return await self._run(query, write=False)
