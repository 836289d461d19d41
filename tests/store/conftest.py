"""Fixtures for the storage tests, and a tiny runner for ``async def`` tests.

``store`` is parametrized by backend: to add one, append its name to ``BACKENDS``, a branch
to ``store_location`` naming a fresh, empty database of that kind, and one to ``open_store``
that opens it (opening it again in the same test must give the same data, for the reopen
tests).

PostgreSQL: ``pg_server`` starts one throwaway server for the session (initdb + pg_ctl in a
temp dir, see :mod:`tests.pgserver`); it fails, never skips, when PostgreSQL is not installed.
The store tests share one migrated database, emptied (TRUNCATE) before each test, which is
much faster than a database per test; ``pg_fresh_url`` makes a new, empty (unmigrated)
database for tests that need one.

The project does not use pytest-asyncio: :func:`pytest_pyfunc_call` below runs an
``async def test_...`` to completion on the test's ``runner`` fixture (the event loop the
``store`` fixture opened the store on), or on a fresh loop if the test has no runner.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from idnode.store.base import HandleStore
from idnode.store.postgres import PostgresStore
from idnode.store.sqlite import SQLiteStore
from idnode.store.status import migrate_database
from tests.pgserver import PostgresServer

BACKENDS = ("sqlite", "postgresql")

#: The migrated database the PostgreSQL store tests share.
PG_STORE_DATABASE = "idnode_store"

# Empties every table but the migration bookkeeping, whatever the migrations created.
_TRUNCATE_ALL = """SET lock_timeout = '10s';
DO $$ BEGIN
  EXECUTE (SELECT 'TRUNCATE ' || string_agg(format('%I', tablename), ', ')
           FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations');
END $$"""

_fresh_databases = itertools.count()

#: Opens the test's store; each call opens the same database again.
StoreOpener = Callable[[], Coroutine[Any, Any, HandleStore]]


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    test = pyfuncitem.obj
    if not inspect.iscoroutinefunction(test):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in inspect.signature(test).parameters}
    runner = pyfuncitem.funcargs.get("runner")
    if isinstance(runner, asyncio.Runner):
        runner.run(test(**kwargs))
    else:
        asyncio.run(test(**kwargs))
    return True


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """The event loop of one test."""
    with asyncio.Runner() as loop_runner:
        yield loop_runner


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return cast(str, request.param)


@pytest.fixture(scope="session")
def pg_store_database(pg_server: PostgresServer) -> str:
    """The URL of the migrated database the store tests share."""
    pg_server.psql(f"CREATE DATABASE {PG_STORE_DATABASE}")
    url = pg_server.url(PG_STORE_DATABASE)
    asyncio.run(migrate_database(url))
    return url


@pytest.fixture
def pg_url(pg_server: PostgresServer, pg_store_database: str) -> str:
    """The URL of the shared store database, emptied for this test."""
    pg_server.psql(_TRUNCATE_ALL, PG_STORE_DATABASE)
    return pg_store_database


@pytest.fixture
def pg_fresh_url(pg_server: PostgresServer) -> str:
    """The URL of a new, empty database (no schema) of its own for this test."""
    name = f"idnode_fresh_{next(_fresh_databases)}"
    pg_server.psql(f"CREATE DATABASE {name}")
    return pg_server.url(name)


@pytest.fixture
def store_location(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where this test's store lives: a SQLite file path or a PostgreSQL URL, empty."""
    if backend == "sqlite":
        return str(tmp_path / "store.db")
    if backend == "postgresql":
        return cast(str, request.getfixturevalue("pg_url"))  # starts PostgreSQL only if used
    raise AssertionError(f"unknown backend {backend!r}")


@pytest.fixture
def open_store(backend: str, store_location: str) -> StoreOpener:
    """Opens this test's store (a real database). The caller closes it."""

    async def opener() -> HandleStore:
        if backend == "sqlite":
            return await SQLiteStore.open(store_location)
        if backend == "postgresql":
            return await PostgresStore.open(store_location)
        raise AssertionError(f"unknown backend {backend!r}")

    return opener


@pytest.fixture
def store(runner: asyncio.Runner, open_store: StoreOpener) -> Iterator[HandleStore]:
    """An open, empty store, closed after the test (closing twice is allowed)."""
    opened = runner.run(open_store())
    yield opened
    runner.run(opened.close())
