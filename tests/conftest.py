"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pgserver import PostgresNotInstalled, PostgresServer


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the whole session, stopped and deleted at the end.

    Fails (never skips) when PostgreSQL is not installed: CI installs it (.ci/run).
    """
    try:
        server = PostgresServer.start()
    except PostgresNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
