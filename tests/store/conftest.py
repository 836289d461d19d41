"""Fixtures for the storage tests, and a tiny runner for ``async def`` tests.

``store`` is parametrized by backend: to add one, append its name to ``BACKENDS`` and a
branch to ``open_store`` that opens a fresh, empty store of that kind (opening it again in the
same test must give the same data, for the reopen tests).

The project does not use pytest-asyncio: :func:`pytest_pyfunc_call` below runs an
``async def test_...`` to completion on the test's ``runner`` fixture (the event loop the
``store`` fixture opened the store on), or on a fresh loop if the test has no runner.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from idnode.store.base import HandleStore
from idnode.store.sqlite import SQLiteStore

BACKENDS = ("sqlite",)

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


@pytest.fixture
def open_store(backend: str, tmp_path: Path) -> StoreOpener:
    """Opens this test's store (a real database file for SQLite). The caller closes it."""

    async def opener() -> HandleStore:
        if backend == "sqlite":
            return await SQLiteStore.open(tmp_path / "store.db")
        raise AssertionError(f"unknown backend {backend!r}")

    return opener


@pytest.fixture
def store(runner: asyncio.Runner, open_store: StoreOpener) -> Iterator[HandleStore]:
    """An open, empty store, closed after the test (closing twice is allowed)."""
    opened = runner.run(open_store())
    yield opened
    runner.run(opened.close())
