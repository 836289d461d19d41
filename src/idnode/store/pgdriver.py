"""The asyncpg side of the PostgreSQL backend: connecting, session settings, which driver errors
mean what, the URL of the standby pool (high availability: reads while no primary can be
reached, see :mod:`~.postgres`), and the text escape for U+0000. Used by :mod:`~.postgres`,
:mod:`~.migrations` and :mod:`~.status`; the public names are re-exported by
:mod:`idnode.store.postgres`.

Driver: asyncpg, chosen over psycopg 3 (+ psycopg_pool) by a micro-benchmark on this project's
2-core machine: PostgreSQL 15 on 127.0.0.1 with fsync on, the store's table and statements
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
switched off (:func:`keep_session`); with it, get_handle took 290-360 us, no faster than
psycopg.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from idnode.errors import StoreError

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

__all__ = [
    "CONNECTION_LOST",
    "DRIVER_ERRORS",
    "PRIMARY_SESSION_ATTRS",
    "AnyConnection",
    "connect",
    "connection_lost",
    "create_pool",
    "describe",
    "from_db",
    "keep_session",
    "no_primary",
    "session_settings",
    "standby_reads_url",
    "to_db",
]

#: A direct connection (:func:`connect`) or one acquired from a pool.
AnyConnection: TypeAlias = (
    "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"
)

#: Errors of the driver and the network; raised from the store as StoreError.
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


#: ``target_session_attrs`` values that ask for the primary (asyncpg, as libpq, tries the hosts
#: of the URL in order and keeps the first that qualifies).
PRIMARY_SESSION_ATTRS = frozenset({"read-write", "primary"})


def no_primary(exc: BaseException) -> bool:
    """Whether ``exc`` says that no server of the URL qualified (none is the primary just now,
    e.g. during a failover)."""
    return isinstance(exc, asyncpg.TargetServerAttributeNotMatched)


def standby_reads_url(url: str) -> str | None:
    """For a URL that asks for the primary (``target_session_attrs=read-write`` or
    ``primary``), the same URL asking for any server, a hot standby included: where reads go
    while no primary can be reached. None for any other URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    attrs = [value for name, value in query if name == "target_session_attrs"]
    if not attrs or attrs[-1] not in PRIMARY_SESSION_ATTRS:
        return None
    query = [(n, v) for n, v in query if n != "target_session_attrs"]
    query.append(("target_session_attrs", "any"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def describe(exc: BaseException) -> str:
    """The message of a driver error, or its class name if it has none (TimeoutError)."""
    return str(exc) or type(exc).__name__


def connection_lost(exc: BaseException) -> bool:
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


def session_settings(timeout: float) -> dict[str, str]:
    """Session settings: durable commits, and lock waits that give up before the client's
    ``timeout`` so that they fail with a clear server error (LockNotAvailable)."""
    return {
        "application_name": "idnode",
        "synchronous_commit": "on",
        "lock_timeout": f"{max(1, round(timeout * 500))}ms",
    }


async def keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Pool ``reset`` hook: nothing to undo, as idnode changes no session state but for the
    bulk staging table, which is meant to stay (asyncpg still rolls back an open transaction
    on release). Saves a round trip per release."""


async def create_pool(
    url: str, *, min_size: int, max_size: int, timeout: float, read_only: bool = False
) -> asyncpg.Pool[asyncpg.Record]:
    """A pool of connections to ``url`` with idnode's session settings (and, if
    ``read_only``, sessions that refuse writes); it opens ``min_size`` connections at once.
    Raises the driver's error."""
    settings = session_settings(timeout)
    if read_only:
        settings["default_transaction_read_only"] = "on"
    return await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        reset=keep_session,
        timeout=timeout,
        command_timeout=timeout,
        server_settings=settings,
    )


async def connect(url: str, *, timeout: float = 10.0) -> asyncpg.Connection[asyncpg.Record]:
    """One connection to ``url`` with idnode's session settings; StoreError if it fails.

    The caller closes it.
    """
    try:
        return await asyncpg.connect(
            url, timeout=timeout, command_timeout=timeout, server_settings=session_settings(timeout)
        )
    except DRIVER_ERRORS as exc:
        raise StoreError(f"cannot connect to PostgreSQL: {describe(exc)}") from exc
