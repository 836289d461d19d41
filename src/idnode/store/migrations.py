"""Numbered schema migrations shared by the storage backends.

A migration is a plain SQL file ``schema/NNNN_name.sql`` in this package (``NNNN`` = version,
four digits; ``name`` = lower-case letters, digits and ``_``). Versions start at 1 and have no
gaps. The ``schema_migrations`` table records every applied version; the schema version of a
database is the highest recorded one (0 for a fresh database).

The files are the single source of truth for both backends. They are written in SQLite's
dialect, restricted to what PostgreSQL also accepts once :func:`translate_for_postgres` has
applied its three rules: the type ``BLOB`` becomes ``BYTEA``, a ``*_key`` column declared
``TEXT`` gets ``COLLATE "C"`` (byte order, as SQLite's BINARY collation, whatever the
database's default collation; the prefix range scans and ``ORDER BY`` rely on it), and the
table option ``WITHOUT ROWID`` is dropped. The PostgreSQL tests apply every packaged
migration, so a file outside that subset fails there.

Backend-neutral parts: :func:`load_migrations`, :meth:`Migration.statements`,
:func:`pending_migrations`, :data:`MIGRATIONS_TABLE_SQL`, :data:`CURRENT_VERSION_SQL` and
:func:`current_version` (any DB-API connection with ``execute(sql)``). :func:`migrate` applies
migrations to a SQLite connection, :func:`migrate_postgres` to an asyncpg connection (under an
advisory lock). :mod:`idnode.store.status` takes a database the way
:func:`idnode.store.open_store` does, for the ``idnode db`` commands.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any, Protocol

from idnode.errors import StoreError

if TYPE_CHECKING:
    from idnode.store.pgdriver import AnyConnection

__all__ = [
    "CURRENT_VERSION_SQL",
    "MIGRATIONS_TABLE_SQL",
    "POSTGRES_LOCK_KEY",
    "Migration",
    "current_version",
    "load_migrations",
    "migrate",
    "migrate_postgres",
    "pending_migrations",
    "postgres_schema_version",
    "split_statements",
    "sqlite_schema_version",
    "translate_for_postgres",
]

#: Creates the bookkeeping table (portable SQL; ``applied_at`` is an ISO-8601 UTC timestamp).
MIGRATIONS_TABLE_SQL = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)"""

#: The schema version of a database: its highest applied migration, 0 if none.
CURRENT_VERSION_SQL = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"

#: Key of the transaction-level advisory lock PostgreSQL migrators hold (advisory locks are
#: per database): the bytes of ``idnode`` read as an integer.
POSTGRES_LOCK_KEY = int.from_bytes(b"idnode", "big")

_RECORD_SQL = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"
_PG_RECORD_SQL = "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)"
_PG_HAS_TABLE_SQL = "SELECT to_regclass('schema_migrations') IS NOT NULL"
_SQLITE_HAS_TABLE_SQL = (
    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
)
# Literals, quoted identifiers and comments are matched first so that they are left alone.
_PG_TRANSLATION = re.compile(
    r"""(?P<skip>'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/)"""
    r"""|\b(?P<key>\w+_key\s+TEXT)\b(?!\s+COLLATE\b)"""
    r"""|\b(?P<blob>BLOB)\b"""
    r"""|\)(?P<rowid>\s*WITHOUT\s+ROWID)\b""",
    re.IGNORECASE | re.DOTALL,
)
_FILENAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema migration: ``version`` (>= 1), ``name`` (the file stem) and its SQL text."""

    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """The SQL statements of this migration, in order (see :func:`split_statements`)."""
        return split_statements(self.sql)

    def postgres_statements(self) -> list[str]:
        """:meth:`statements`, each translated by :func:`translate_for_postgres`."""
        return [translate_for_postgres(statement) for statement in self.statements()]


class _Cursor(Protocol):
    def fetchone(self) -> Any: ...


class _Connection(Protocol):
    def execute(self, sql: str, /) -> _Cursor: ...


def translate_for_postgres(sql: str) -> str:
    """``sql`` (a statement of a migration file, SQLite's dialect) for PostgreSQL.

    Three rules, applied outside string literals, quoted identifiers and comments:

    1. the type ``BLOB`` becomes ``BYTEA``;
    2. a column whose name ends in ``_key``, declared ``TEXT``, gets ``COLLATE "C"`` (unless a
       COLLATE clause follows already): such columns hold handle keys, which must sort and
       range-scan by bytes as in SQLite, not by the database's linguistic collation;
    3. the table option ``WITHOUT ROWID`` after a table's closing parenthesis is dropped
       (a PostgreSQL table is a heap with separate indexes either way).

    Everything else must already be valid in both dialects.
    """

    def replace(match: re.Match[str]) -> str:
        if match["key"] is not None:
            return f'{match["key"]} COLLATE "C"'
        if match["blob"] is not None:
            return "BYTEA"
        if match["rowid"] is not None:
            return ")"
        return match[0]

    return _PG_TRANSLATION.sub(replace, sql)


def split_statements(sql: str) -> list[str]:
    """Split a SQL script into single statements (each ending in ``;``).

    A ``;`` inside a string literal, a quoted identifier, a comment or a trigger body does not
    end a statement. Text after the last statement may only be comments and whitespace;
    anything else raises :class:`StoreError`.
    """
    statements: list[str] = []
    start = 0
    for pos, char in enumerate(sql):
        if char == ";" and sqlite3.complete_statement(sql[start : pos + 1]):
            statement = sql[start : pos + 1].strip()
            if _COMMENTS.sub("", statement).strip() != ";":
                statements.append(statement)
            start = pos + 1
    if _COMMENTS.sub("", sql[start:]).strip():
        raise StoreError(f"unterminated SQL statement: {sql[start:].strip()[:60]!r}")
    return statements


def load_migrations(directory: Traversable | None = None) -> tuple[Migration, ...]:
    """The migrations in ``directory`` (default: this package's ``schema``), ordered by version.

    Raises :class:`StoreError` for a ``.sql`` file with a malformed name, a duplicate version
    or a gap in the version sequence.
    """
    root = files("idnode.store") / "schema" if directory is None else directory
    found: list[Migration] = []
    for entry in root.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILENAME.fullmatch(entry.name)
        if match is None:
            raise StoreError(f"migration file name is not NNNN_name.sql: {entry.name!r}")
        found.append(
            Migration(int(match[1]), entry.name[: -len(".sql")], entry.read_text(encoding="utf-8"))
        )
    found.sort(key=lambda m: m.version)
    _check_sequence(found)
    return tuple(found)


def _check_sequence(migrations: Sequence[Migration]) -> None:
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise StoreError(
                f"migration versions must run 1, 2, 3... without gaps or duplicates: "
                f"expected {expected}, found {migration.name!r}"
            )


def pending_migrations(current: int, migrations: Sequence[Migration]) -> tuple[Migration, ...]:
    """The migrations (from a :func:`load_migrations` sequence) above version ``current``.

    Raises :class:`StoreError` if ``current`` is newer than the newest migration known here:
    the database was written by a newer idnode.
    """
    latest = migrations[-1].version if migrations else 0
    if current > latest:
        raise StoreError(
            f"database schema version {current} is newer than this idnode supports ({latest})"
        )
    return tuple(m for m in migrations if m.version > current)


def current_version(conn: _Connection) -> int:
    """The schema version recorded in ``conn``'s ``schema_migrations`` table (0 if empty).

    The table must exist (:data:`MIGRATIONS_TABLE_SQL`; :func:`migrate` creates it).
    """
    row = conn.execute(CURRENT_VERSION_SQL).fetchone()
    return int(row[0])


def migrate(
    conn: sqlite3.Connection, migrations: Sequence[Migration] | None = None
) -> list[Migration]:
    """Bring the SQLite database of ``conn`` up to the newest migration; return those applied.

    Each migration runs in its own ``BEGIN IMMEDIATE`` transaction together with its
    ``schema_migrations`` row, re-reading the version inside the transaction, so concurrent
    migrators apply each version once and a failing migration leaves the database at the
    previous version. ``conn`` must not be inside a transaction. ``migrations`` defaults to
    :func:`load_migrations`. Errors are raised as :class:`StoreError`.
    """
    known = load_migrations() if migrations is None else tuple(migrations)
    _check_sequence(known)
    applied: list[Migration] = []
    while True:  # each round applies one migration or returns, so it ends within len(known)+1
        migration: Migration | None = None
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(MIGRATIONS_TABLE_SQL)
                todo = pending_migrations(current_version(conn), known)
                if todo:
                    migration = todo[0]
                    for statement in migration.statements():
                        conn.execute(statement)
                    applied_at = datetime.now(UTC).isoformat(timespec="seconds")
                    conn.execute(_RECORD_SQL, (migration.version, migration.name, applied_at))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            what = f"migration {migration.name}" if migration else "reading the schema version"
            raise StoreError(f"{what} failed: {exc}") from exc
        if migration is None:
            return applied
        applied.append(migration)


async def migrate_postgres(
    conn: AnyConnection, migrations: Sequence[Migration] | None = None, *, timeout: float = 300.0
) -> list[Migration]:
    """Bring the PostgreSQL database of ``conn`` (an asyncpg connection, not inside a
    transaction) up to the newest migration; return those applied.

    Each migration runs in its own transaction, translated by :func:`translate_for_postgres`,
    together with its ``schema_migrations`` row; the transaction first takes the advisory lock
    :data:`POSTGRES_LOCK_KEY` and then re-reads the version, so concurrent migrators (other
    processes too) apply each version once, and a failing migration leaves the database at
    the previous version. ``timeout`` (seconds) bounds the wait for the lock and for any other
    lock (server-side ``lock_timeout``); the client gives up on a statement after twice that.
    Errors are raised as :class:`StoreError`.
    """
    from idnode.store.pgdriver import DRIVER_ERRORS, describe  # asyncpg: only when used

    known = load_migrations() if migrations is None else tuple(migrations)
    _check_sequence(known)
    applied: list[Migration] = []
    while True:  # each round applies one migration or returns, so it ends within len(known)+1
        migration: Migration | None = None
        try:
            async with conn.transaction():
                lock_timeout = f"{max(1, round(timeout * 1000))}ms"
                await conn.execute("SELECT set_config('lock_timeout', $1, true)", lock_timeout)
                await conn.execute(
                    "SELECT pg_advisory_xact_lock($1)", POSTGRES_LOCK_KEY, timeout=2 * timeout
                )
                await conn.execute(MIGRATIONS_TABLE_SQL, timeout=2 * timeout)
                version = int(await conn.fetchval(CURRENT_VERSION_SQL))
                todo = pending_migrations(version, known)
                if todo:
                    migration = todo[0]
                    for statement in migration.postgres_statements():
                        await conn.execute(statement, timeout=2 * timeout)
                    applied_at = datetime.now(UTC).isoformat(timespec="seconds")
                    await conn.execute(
                        _PG_RECORD_SQL, migration.version, migration.name, applied_at
                    )
        except DRIVER_ERRORS as exc:
            what = f"migration {migration.name}" if migration else "locking the schema"
            raise StoreError(f"{what} failed: {describe(exc)}") from exc
        if migration is None:
            return applied
        applied.append(migration)


def sqlite_schema_version(conn: sqlite3.Connection) -> int:
    """The schema version of a SQLite database; 0 if it has no ``schema_migrations`` table."""
    (has_table,) = conn.execute(_SQLITE_HAS_TABLE_SQL).fetchone()
    return current_version(conn) if has_table else 0


async def postgres_schema_version(conn: AnyConnection) -> int:
    """The schema version of a PostgreSQL database (asyncpg connection); 0 if it has no
    ``schema_migrations`` table."""
    if not await conn.fetchval(_PG_HAS_TABLE_SQL):
        return 0
    return int(await conn.fetchval(CURRENT_VERSION_SQL))
