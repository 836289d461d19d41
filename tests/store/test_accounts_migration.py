"""Schema version 6 (``0006_logins_after.sql``) on a database of version 5 with accounts, on
SQLite and on a real PostgreSQL: opening the store migrates it, every account is kept (as
never disabled since: ``logins_after_ms`` 0), and a disable then stamps the column."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

from idnode.store.accounts_sql import HasAccounts, numbered
from idnode.store.migrations import load_migrations, migrate, migrate_postgres
from idnode.store.postgres import PostgresStore, connect
from idnode.store.sqlite import SQLiteStore

#: Two accounts as schema version 5 stored them (one enabled, one disabled).
V5_ROWS = [
    ("root", "scrypt$1$1$1$00$00", "ab" * 32, "node_admin", None, "300:0.NA/88.118.8", 1, 11),
    ("app", "scrypt$1$1$1$00$00", "cd" * 32, "app", "ent", "300:88.118.8.1/APP.app", 0, 12),
]  # fmt: skip
V5_INSERT = "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def before_version_6() -> tuple[int, ...]:
    versions = tuple(m.version for m in load_migrations())
    assert versions[-1] >= 6 and load_migrations()[5].name == "0006_logins_after"
    return versions


async def check_migrated(store: HasAccounts) -> None:
    repo = store.accounts()
    accounts = await repo.list_accounts()
    assert [(a.username, a.role, a.enabled, a.created_ms, a.logins_after_ms) for a in accounts] == [
        ("app", "app", False, 12, 0),
        ("root", "node_admin", True, 11, 0),
    ]
    assert accounts[1].identity == "300:0.NA/88.118.8" and accounts[0].enterprise_id == "ent"
    before = int(time.time() * 1000)
    assert await repo.set_account_enabled("root", False)
    root = await repo.get_account("root")
    assert root is not None and not root.enabled and root.logins_after_ms >= before


async def test_sqlite_database_of_version_5_migrates(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    before_version_6()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        assert [m.version for m in migrate(conn, load_migrations()[:5])] == [1, 2, 3, 4, 5]
        conn.executemany(V5_INSERT, V5_ROWS)
    store = await SQLiteStore.open(path)
    try:
        await check_migrated(store)
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as conn:
        (version,) = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    assert version == load_migrations()[-1].version


async def test_postgres_database_of_version_5_migrates(pg_fresh_url: str) -> None:
    before_version_6()
    conn = await connect(pg_fresh_url)
    try:
        applied = await migrate_postgres(conn, load_migrations()[:5])
        assert [m.version for m in applied] == [1, 2, 3, 4, 5]
        await conn.executemany(numbered(V5_INSERT), V5_ROWS)
    finally:
        await conn.close(timeout=5)
    store = await PostgresStore.open(pg_fresh_url)
    try:
        await check_migrated(store)
    finally:
        await store.close()
    conn = await connect(pg_fresh_url)
    try:
        version = await conn.fetchval("SELECT max(version) FROM schema_migrations")
        declared = await conn.fetchrow(
            "SELECT data_type, is_nullable, column_default FROM information_schema.columns"
            " WHERE table_name = 'accounts' AND column_name = 'logins_after_ms'"
        )
    finally:
        await conn.close(timeout=5)
    assert version == load_migrations()[-1].version
    assert declared is not None and tuple(declared) == ("bigint", "NO", "0")
