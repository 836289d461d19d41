"""Schema migrations: discovery, ordering, transactions, version checks, statement splitting,
the translation rules for PostgreSQL, and the URL redaction of ``idnode db status``.

Applying the translated migrations to a real PostgreSQL is in test_postgres.py."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from idnode.errors import StoreError
from idnode.store.migrations import (
    Migration,
    current_version,
    load_migrations,
    migrate,
    pending_migrations,
    split_statements,
    translate_for_postgres,
)
from idnode.store.sqlite import SQLiteStore
from idnode.store.status import redact_url


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "m.db"


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(db_path, isolation_level=None)) as connection:
        yield connection


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql, encoding="utf-8")
    return directory


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_packaged_migrations_start_at_one_without_gaps() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "0001_init"
    assert sum("CREATE TABLE" in s for s in migrations[0].statements()) == 2


def test_init_schema_uses_portable_types(conn: sqlite3.Connection) -> None:
    migrate(conn)
    assert tables(conn) >= {"handles", "homed_prefixes", "schema_migrations"}
    for table in ("handles", "homed_prefixes", "schema_migrations"):
        declared = {row[2] for row in conn.execute(f"PRAGMA table_info({table})")}
        assert declared <= {"TEXT", "INTEGER", "BIGINT", "BLOB"}, table


def test_migrate_fresh_database_then_nothing_pending(conn: sqlite3.Connection) -> None:
    applied = migrate(conn)
    assert applied == list(load_migrations())
    assert current_version(conn) == applied[-1].version
    rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    assert rows == [(m.version, m.name) for m in applied]
    assert migrate(conn) == []
    assert not conn.in_transaction


def test_migrations_apply_in_order(tmp_path: Path, conn: sqlite3.Connection) -> None:
    directory = write_migrations(
        tmp_path / "schema",
        {
            "0002_fill.sql": "INSERT INTO t (x) VALUES ('a;b');\nINSERT INTO t (x) VALUES ('c');",
            "0001_make.sql": "-- first\nCREATE TABLE t (x TEXT NOT NULL);\n",
            "README.md": "not a migration",
        },
    )
    migrations = load_migrations(directory)
    assert [m.name for m in migrations] == ["0001_make", "0002_fill"]
    assert [m.version for m in migrate(conn, migrations)] == [1, 2]
    assert conn.execute("SELECT x FROM t ORDER BY x").fetchall() == [("a;b",), ("c",)]


def test_failing_migration_rolls_back_to_previous_version(
    tmp_path: Path, conn: sqlite3.Connection
) -> None:
    files = {
        "0001_a.sql": "CREATE TABLE a (x INTEGER);",
        "0002_b.sql": "CREATE TABLE b (x INTEGER);\nINSERT INTO missing VALUES (1);",
    }
    directory = write_migrations(tmp_path / "schema", files)
    with pytest.raises(StoreError, match="0002_b") as info:
        migrate(conn, load_migrations(directory))
    assert isinstance(info.value.__cause__, sqlite3.Error)
    assert current_version(conn) == 1
    assert "a" in tables(conn)
    assert "b" not in tables(conn)
    assert not conn.in_transaction
    write_migrations(directory, {"0002_b.sql": "CREATE TABLE b (x INTEGER);"})
    assert [m.name for m in migrate(conn, load_migrations(directory))] == ["0002_b"]
    assert "b" in tables(conn)


def test_database_newer_than_code_is_refused(conn: sqlite3.Connection, db_path: Path) -> None:
    migrate(conn)
    conn.execute("INSERT INTO schema_migrations VALUES (9999, '9999_future', 'x')")
    with pytest.raises(StoreError, match="newer"):
        migrate(conn)
    with pytest.raises(StoreError, match="newer"):
        pending_migrations(9999, load_migrations())

    async def open_it() -> None:
        await SQLiteStore.open(db_path)

    with pytest.raises(StoreError, match="newer"):
        asyncio.run(open_it())


def test_pending_migrations() -> None:
    ms = tuple(Migration(v, f"000{v}_m", "") for v in (1, 2, 3))
    assert pending_migrations(0, ms) == ms
    assert pending_migrations(2, ms) == ms[2:]
    assert pending_migrations(3, ms) == ()
    assert pending_migrations(0, ()) == ()


@pytest.mark.parametrize(
    "names",
    [
        ["1_short.sql"],
        ["0001_Upper.sql"],
        ["0001-dash.sql"],
        ["0001_a.sql", "0001_b.sql"],
        ["0001_a.sql", "0003_c.sql"],
        ["0002_b.sql"],
    ],
)
def test_bad_migration_sets_are_rejected(tmp_path: Path, names: list[str]) -> None:
    directory = write_migrations(tmp_path / "schema", dict.fromkeys(names, "SELECT 1;"))
    with pytest.raises(StoreError):
        load_migrations(directory)


def test_migrate_rejects_a_gapped_sequence(conn: sqlite3.Connection) -> None:
    with pytest.raises(StoreError):
        migrate(conn, [Migration(2, "0002_x", "SELECT 1;")])
    assert "schema_migrations" not in tables(conn)


def test_concurrent_migrators_apply_each_version_once(db_path: Path) -> None:
    applied: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            with closing(sqlite3.connect(db_path, isolation_level=None, timeout=30)) as c:
                done = migrate(c)
            with lock:
                applied.extend(m.version for m in done)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(applied) == [m.version for m in load_migrations()]


def test_split_statements() -> None:
    sql = """
    -- a comment; with a semicolon
    CREATE TABLE "odd;name" (x TEXT DEFAULT ';');  /* block; comment */
    ;
    CREATE TRIGGER trg AFTER INSERT ON "odd;name" BEGIN
        DELETE FROM "odd;name" WHERE x = 'y';
    END;
    INSERT INTO "odd;name" VALUES ('it''s; fine'); -- trailing comment
    """
    statements = split_statements(sql)
    assert len(statements) == 3
    assert statements[0].startswith("-- a comment")
    assert statements[0].endswith("(x TEXT DEFAULT ';');")
    assert statements[1].startswith("CREATE TRIGGER trg")
    assert statements[1].endswith("END;")
    assert statements[2] == "INSERT INTO \"odd;name\" VALUES ('it''s; fine');"
    assert split_statements("") == []
    assert split_statements("-- only a comment\n") == []
    with pytest.raises(StoreError, match="unterminated"):
        split_statements("CREATE TABLE a (x);\nCREATE TABLE b (x)")


# -- translation for PostgreSQL --------------------------------------------------------------
@pytest.mark.parametrize(
    ("sqlite", "postgres"),
    [
        ("CREATE TABLE t (v BLOB NOT NULL);", "CREATE TABLE t (v BYTEA NOT NULL);"),
        (
            "CREATE TABLE t (handle_key TEXT NOT NULL PRIMARY KEY, handle TEXT);",
            'CREATE TABLE t (handle_key TEXT COLLATE "C" NOT NULL PRIMARY KEY, handle TEXT);',
        ),
        (
            "ALTER TABLE t ADD COLUMN other_key text;",
            'ALTER TABLE t ADD COLUMN other_key text COLLATE "C";',
        ),
        ('CREATE TABLE t (a_key TEXT COLLATE "C");', 'CREATE TABLE t (a_key TEXT COLLATE "C");'),
        ("CREATE TABLE t (x TEXT)\n  WITHOUT ROWID;", "CREATE TABLE t (x TEXT);"),
        (
            "CREATE TABLE t (keys TEXT, a_key TEXTS, b BLOBS);",
            "CREATE TABLE t (keys TEXT, a_key TEXTS, b BLOBS);",
        ),
        (
            "INSERT INTO t VALUES ('BLOB a_key TEXT) WITHOUT ROWID', 'it''s BLOB');",
            "INSERT INTO t VALUES ('BLOB a_key TEXT) WITHOUT ROWID', 'it''s BLOB');",
        ),
        (
            '-- a BLOB\nCREATE TABLE "BLOB" ("x_key TEXT" INTEGER); /* y_key TEXT */',
            '-- a BLOB\nCREATE TABLE "BLOB" ("x_key TEXT" INTEGER); /* y_key TEXT */',
        ),
    ],
)
def test_translate_for_postgres(sqlite: str, postgres: str) -> None:
    assert translate_for_postgres(sqlite) == postgres


def test_redact_url() -> None:
    assert redact_url("postgresql://u:secret@h:5/db?x=1") == "postgresql://u:***@h:5/db?x=1"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("postgres://h/db") == "postgres://h/db"
