"""Storage of accounts, enterprises and prefix applications (schema ``0005_accounts.sql``,
``0006_logins_after.sql``).

:class:`AccountRepository` is the interface :mod:`idnode.industry.accounts` uses; the stores
implement it through their own connection plumbing (``SQLiteStore.accounts()`` runs each call
on its writer thread or a reader, ``PostgresStore.accounts()`` on its pool, with the retry
and error rules of each store), so every method is one transaction and driver errors come out
as :class:`~idnode.errors.StoreError`. The statements are written once, in SQLite's ``?``
style, and numbered ``$1, $2, ...`` for PostgreSQL by :func:`numbered`.

The repository stores rows; it does not check roles, passwords or which state may follow
which (that is :mod:`idnode.industry.accounts`), except that :meth:`~AccountRepository.
set_prefix_state` changes a prefix only from the state the caller read (compare-and-set), so
two administrators acting at once cannot both move it, and that :meth:`~AccountRepository.
set_account_enabled` stamps every disable into the account's ``logins_after_ms``, so that
however an account is disabled (the APIs, the console, the CLI on the database), the logins
made before end for good.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from idnode.store.base import handle_key

__all__ = [
    "Account",
    "AccountRepository",
    "Enterprise",
    "HasAccounts",
    "PrefixApplication",
    "SqlRunner",
    "Statement",
    "StatementRepository",
    "Transition",
    "numbered",
    "postgres_runner",
    "sqlite_runner",
]


@dataclass(frozen=True, slots=True)
class Account:
    """One login. ``identity`` is ``index:handle``; ``enterprise_id`` is None for node admins
    and auditors. ``logins_after_ms``: when the account was last disabled (Unix milliseconds,
    0 if never); a login token or console session issued at or before it is no longer valid."""

    username: str
    password_hash: str
    v1_digest: str
    role: str
    enterprise_id: str | None
    identity: str
    enabled: bool
    created_ms: int
    logins_after_ms: int = 0


@dataclass(frozen=True, slots=True)
class Enterprise:
    id: str
    name: str
    contact: str
    status: str
    admin_identity: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class PrefixApplication:
    prefix: str
    enterprise_id: str
    state: str
    hosted: bool
    applied_by: str
    updated_ms: int


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change of a prefix application: to ``state``, by ``actor`` at ``at_ms``."""

    seq: int
    state: str
    actor: str
    at_ms: int


@runtime_checkable
class AccountRepository(Protocol):
    async def add_account(self, account: Account) -> bool:
        """Insert ``account``; False (nothing changed) when the username is taken."""
        ...

    async def get_account(self, username: str) -> Account | None: ...

    async def list_accounts(self, enterprise_id: str | None = None) -> list[Account]:
        """Every account by username, or those of one enterprise."""
        ...

    async def set_account_enabled(
        self, username: str, enabled: bool, *, now_ms: int | None = None
    ) -> bool:
        """Enable or disable ``username``; False when there is no such account. Disabling
        also moves its ``logins_after_ms`` on to ``now_ms`` (default: the current time; never
        back), which ends every login made until then."""
        ...

    async def add_enterprise(self, enterprise: Enterprise) -> bool:
        """Insert ``enterprise``; False when the id is taken."""
        ...

    async def get_enterprise(self, enterprise_id: str) -> Enterprise | None: ...

    async def list_enterprises(self) -> list[Enterprise]: ...

    async def add_application(self, application: PrefixApplication) -> bool:
        """Insert an application in its state with its first transition; False when the prefix
        has an application already."""
        ...

    async def get_application(self, prefix: str) -> PrefixApplication | None: ...

    async def list_applications(
        self, enterprise_id: str | None = None
    ) -> list[PrefixApplication]: ...

    async def set_prefix_state(
        self, prefix: str, expected: str, state: str, actor: str, at_ms: int
    ) -> bool:
        """Move ``prefix`` from ``expected`` to ``state`` and record the transition; False
        (nothing changed) when its state is no longer ``expected``."""
        ...

    async def transitions(self, prefix: str) -> list[Transition]: ...


@runtime_checkable
class HasAccounts(Protocol):
    """A store that keeps accounts (SQLite and PostgreSQL)."""

    def accounts(self) -> AccountRepository: ...


Rows = list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement in SQLite's ``?`` style. A ``guard`` statement that returns no rows ends
    the transaction there: the statements after it do not run (and the guard itself, an
    ``INSERT ... DO NOTHING`` or ``UPDATE ... WHERE`` that matched nothing, changed nothing)."""

    sql: str
    params: tuple[Any, ...] = ()
    guard: bool = False


class SqlRunner(Protocol):
    """What a store lends the repository: run ``statements`` in one transaction (``write``)
    or as one read, returning the rows of each statement that ran."""

    async def __call__(self, statements: Sequence[Statement], *, write: bool) -> list[Rows]: ...


def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (the statements here have no ``?``
    inside literals)."""
    counter = iter(range(1, 1000))
    return re.sub(r"\?", lambda _m: f"${next(counter)}", sql)


_ACCOUNT_COLUMNS = (
    "username, password_hash, v1_digest, role, enterprise_id, identity, enabled, created_ms,"
    " logins_after_ms"
)
_ENTERPRISE_COLUMNS = "id, name, contact, status, admin_identity, created_ms"
_APPLICATION_COLUMNS = "prefix, enterprise_id, state, hosted, applied_by, updated_ms"
_NEXT_SEQ = "(SELECT coalesce(max(seq), 0) + 1 FROM prefix_transitions WHERE prefix_key = ?)"
_TRANSITION = (
    f"INSERT INTO prefix_transitions (prefix_key, seq, state, actor, at_ms)"
    f" VALUES (?, {_NEXT_SEQ}, ?, ?, ?)"
)


def _account(row: tuple[Any, ...]) -> Account:
    return Account(
        row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), int(row[7]), int(row[8])
    )  # fmt: skip


def _enterprise(row: tuple[Any, ...]) -> Enterprise:
    return Enterprise(row[0], row[1], row[2], row[3], row[4], int(row[5]))


def _application(row: tuple[Any, ...]) -> PrefixApplication:
    return PrefixApplication(row[0], row[1], row[2], bool(row[3]), row[4], int(row[5]))


class StatementRepository:
    """:class:`AccountRepository` over a store's :class:`SqlRunner`."""

    def __init__(self, run: SqlRunner) -> None:
        self._run = run

    async def _read(self, sql: str, *params: Any) -> Rows:
        return (await self._run([Statement(sql, params)], write=False))[0]

    async def _write(self, *statements: Statement) -> bool:
        """Run ``statements`` in one transaction; True when every one of them ran (no guard
        came back empty)."""
        results = await self._run(statements, write=True)
        guards_held = all(rows for s, rows in zip(statements, results, strict=False) if s.guard)
        return len(results) == len(statements) and guards_held

    async def add_account(self, account: Account) -> bool:
        a = account
        return await self._write(
            Statement(
                f"INSERT INTO accounts ({_ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (username) DO NOTHING RETURNING username",
                (a.username, a.password_hash, a.v1_digest, a.role, a.enterprise_id,
                 a.identity, int(a.enabled), a.created_ms, a.logins_after_ms),
                guard=True,
            )
        )  # fmt: skip

    async def get_account(self, username: str) -> Account | None:
        sql = f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE username = ?"
        rows = await self._read(sql, username)
        return _account(rows[0]) if rows else None

    async def list_accounts(self, enterprise_id: str | None = None) -> list[Account]:
        sql = f"SELECT {_ACCOUNT_COLUMNS} FROM accounts"
        if enterprise_id is None:
            rows = await self._read(f"{sql} ORDER BY username")
        else:
            rows = await self._read(
                f"{sql} WHERE enterprise_id = ? ORDER BY username", enterprise_id
            )
        return [_account(r) for r in rows]

    async def set_account_enabled(
        self, username: str, enabled: bool, *, now_ms: int | None = None
    ) -> bool:
        if enabled:
            sql = "UPDATE accounts SET enabled = 1 WHERE username = ? RETURNING username"
            return await self._write(Statement(sql, (username,), guard=True))
        now = int(time.time() * 1000) if now_ms is None else now_ms
        sql = (
            "UPDATE accounts SET enabled = 0, logins_after_ms ="
            " CASE WHEN logins_after_ms > ? THEN logins_after_ms ELSE ? END"
            " WHERE username = ? RETURNING username"
        )
        return await self._write(Statement(sql, (now, now, username), guard=True))

    async def add_enterprise(self, enterprise: Enterprise) -> bool:
        e = enterprise
        return await self._write(
            Statement(
                f"INSERT INTO enterprises ({_ENTERPRISE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING RETURNING id",
                (e.id, e.name, e.contact, e.status, e.admin_identity, e.created_ms),
                guard=True,
            )
        )

    async def get_enterprise(self, enterprise_id: str) -> Enterprise | None:
        sql = f"SELECT {_ENTERPRISE_COLUMNS} FROM enterprises WHERE id = ?"
        rows = await self._read(sql, enterprise_id)
        return _enterprise(rows[0]) if rows else None

    async def list_enterprises(self) -> list[Enterprise]:
        rows = await self._read(f"SELECT {_ENTERPRISE_COLUMNS} FROM enterprises ORDER BY id")
        return [_enterprise(r) for r in rows]

    async def add_application(self, application: PrefixApplication) -> bool:
        a, key = application, handle_key(application.prefix)
        return await self._write(
            Statement(
                f"INSERT INTO prefix_applications (prefix_key, {_APPLICATION_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (prefix_key) DO NOTHING"
                " RETURNING prefix_key",
                (key, a.prefix, a.enterprise_id, a.state, int(a.hosted), a.applied_by,
                 a.updated_ms),
                guard=True,
            ),
            Statement(_TRANSITION, (key, key, a.state, a.applied_by, a.updated_ms)),
        )  # fmt: skip

    async def get_application(self, prefix: str) -> PrefixApplication | None:
        sql = f"SELECT {_APPLICATION_COLUMNS} FROM prefix_applications WHERE prefix_key = ?"
        rows = await self._read(sql, handle_key(prefix))
        return _application(rows[0]) if rows else None

    async def list_applications(self, enterprise_id: str | None = None) -> list[PrefixApplication]:
        sql = f"SELECT {_APPLICATION_COLUMNS} FROM prefix_applications"
        if enterprise_id is None:
            rows = await self._read(f"{sql} ORDER BY prefix_key")
        else:
            rows = await self._read(
                f"{sql} WHERE enterprise_id = ? ORDER BY prefix_key", enterprise_id
            )
        return [_application(r) for r in rows]

    async def set_prefix_state(
        self, prefix: str, expected: str, state: str, actor: str, at_ms: int
    ) -> bool:
        key = handle_key(prefix)
        return await self._write(
            Statement(
                "UPDATE prefix_applications SET state = ?, updated_ms = ?"
                " WHERE prefix_key = ? AND state = ? RETURNING prefix_key",
                (state, at_ms, key, expected),
                guard=True,
            ),
            Statement(_TRANSITION, (key, key, state, actor, at_ms)),
        )

    async def transitions(self, prefix: str) -> list[Transition]:
        sql = (
            "SELECT seq, state, actor, at_ms FROM prefix_transitions"
            " WHERE prefix_key = ? ORDER BY seq"
        )
        rows = await self._read(sql, handle_key(prefix))
        return [Transition(int(r[0]), r[1], r[2], int(r[3])) for r in rows]


SqliteCall = Callable[[Callable[[sqlite3.Connection], list[Rows]]], Awaitable[list[Rows]]]
PostgresCall = Callable[..., Awaitable[list[Rows]]]


def _run_sqlite(conn: sqlite3.Connection, statements: Sequence[Statement]) -> list[Rows]:
    out: list[Rows] = []
    for statement in statements:
        rows = [tuple(r) for r in conn.execute(statement.sql, statement.params)]
        out.append(rows)
        if statement.guard and not rows:
            break
    return out


def sqlite_runner(read: SqliteCall, write: SqliteCall) -> SqlRunner:
    """A :class:`SqlRunner` over ``SQLiteStore._read`` / ``_write`` (a reader thread; the
    writer thread inside ``BEGIN IMMEDIATE ... COMMIT``)."""

    async def run(statements: Sequence[Statement], *, write_: bool = False) -> list[Rows]:
        call = write if write_ else read
        return await call(lambda conn: _run_sqlite(conn, statements))

    async def runner(statements: Sequence[Statement], *, write: bool) -> list[Rows]:
        return await run(statements, write_=write)

    return runner


def postgres_runner(run: PostgresCall) -> SqlRunner:
    """A :class:`SqlRunner` over ``PostgresStore._run`` (a pooled connection, a transaction
    for writes, the store's retry rules)."""

    async def runner(statements: Sequence[Statement], *, write: bool) -> list[Rows]:
        async def work(conn: Any) -> list[Rows]:
            out: list[Rows] = []
            for statement in statements:
                records = await conn.fetch(numbered(statement.sql), *statement.params)
                out.append([tuple(r) for r in records])
                if statement.guard and not records:
                    break
            return out

        return await run(work, write=write)

    return runner
