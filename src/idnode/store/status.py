"""Status and migration of a database named the way :func:`idnode.store.open_store` names one
(a ``postgresql://`` URL or a SQLite file path): what the ``idnode db`` commands use.

:func:`database_status` reads without changing anything (a SQLite file is opened read-only);
:func:`migrate_database` applies the pending migrations of :mod:`~.migrations`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from idnode.errors import StoreError
from idnode.store import is_database_url
from idnode.store.migrations import (
    Migration,
    load_migrations,
    migrate,
    migrate_postgres,
    postgres_schema_version,
    sqlite_schema_version,
)

__all__ = ["DatabaseStatus", "database_status", "migrate_database", "redact_url"]

_COUNTS_SQL = "SELECT (SELECT count(*) FROM handles), (SELECT count(*) FROM homed_prefixes)"


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    """What ``idnode db status`` reports about a database."""

    backend: str
    """``sqlite`` or ``postgresql``."""
    location: str
    """The SQLite file's absolute path, or the URL without its password."""
    version: int
    """The schema version (0: nothing applied yet)."""
    latest: int
    """The newest schema version this idnode knows; ``version`` above it is a newer idnode's."""
    pending: tuple[Migration, ...]
    """The migrations ``idnode db migrate`` would apply."""
    handles: int | None
    """Number of handle records; None while the schema does not exist (version 0)."""
    homed_prefixes: int | None
    """Number of homed prefixes; None while the schema does not exist (version 0)."""


def redact_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))


def _status(
    backend: str, location: str, version: int, counts: Sequence[Any] | None
) -> DatabaseStatus:
    """``counts``: the row of :data:`_COUNTS_SQL`, None at version 0."""
    known = load_migrations()
    return DatabaseStatus(
        backend=backend,
        location=location,
        version=version,
        latest=known[-1].version if known else 0,
        pending=tuple(m for m in known if m.version > version),
        handles=None if counts is None else int(counts[0]),
        homed_prefixes=None if counts is None else int(counts[1]),
    )


async def database_status(database: str | Path) -> DatabaseStatus:
    """The :class:`DatabaseStatus` of ``database`` (a ``postgresql://`` URL or a SQLite file
    path, as for :func:`idnode.store.open_store`), read without changing anything.

    Raises :class:`StoreError` if the database cannot be read or (SQLite) does not exist.
    """
    if isinstance(database, str) and is_database_url(database):
        return await _postgres_status(database)
    return await asyncio.to_thread(_sqlite_status, Path(database).resolve())


def _sqlite_status(path: Path) -> DatabaseStatus:
    if not path.is_file():
        raise StoreError(f"no SQLite database at {path}")
    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
            version = sqlite_schema_version(conn)
            counts = conn.execute(_COUNTS_SQL).fetchone() if version else None
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc
    return _status("sqlite", str(path), version, counts)


async def _postgres_status(url: str) -> DatabaseStatus:
    from idnode.store.pgdriver import DRIVER_ERRORS, connect, describe

    conn = await connect(url)
    try:
        version = await postgres_schema_version(conn)
        counts = tuple((await conn.fetch(_COUNTS_SQL))[0].values()) if version else None
    except DRIVER_ERRORS as exc:
        raise StoreError(f"cannot read the database: {describe(exc)}") from exc
    finally:
        await conn.close(timeout=10)
    return _status("postgresql", redact_url(url), version, counts)


async def migrate_database(database: str | Path) -> list[Migration]:
    """Bring ``database`` (named as for :func:`database_status`; a missing SQLite file is
    created) up to the newest migration; return the migrations applied.

    Raises :class:`StoreError` on failure (the database stays at the last version that
    applied).
    """
    if isinstance(database, str) and is_database_url(database):
        from idnode.store.pgdriver import connect

        conn = await connect(database)
        try:
            return await migrate_postgres(conn)
        finally:
            await conn.close(timeout=10)
    return await asyncio.to_thread(_migrate_sqlite_file, Path(database))


def _migrate_sqlite_file(path: Path) -> list[Migration]:
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from exc
    with closing(conn):
        return migrate(conn)
