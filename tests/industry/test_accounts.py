"""The accounts repository on both backends, and the password and token rules
(idnode.industry.accounts, idnode.store.accounts_sql)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from idnode.errors import InvalidValue
from idnode.industry.accounts import (
    Login,
    TokenStore,
    hash_password,
    new_account,
    verify_password,
)
from idnode.store.accounts_sql import Enterprise, HasAccounts, PrefixApplication
from idnode.store.postgres import PostgresStore
from idnode.store.sqlite import SQLiteStore
from tests.pgserver import PostgresServer


async def exercise(store: HasAccounts) -> None:
    repo = store.accounts()
    account = new_account("root", "pw", "node_admin", "300:0.NA/88.118.8", now_ms=1)
    assert await repo.add_account(account)
    assert not await repo.add_account(account)
    assert await repo.get_account("root") == account and account.logins_after_ms == 0
    # every disable stamps when the account's logins ended; enabling keeps it; never back
    for enabled, now_ms, after in ((False, 5000, 5000), (True, 9000, 5000), (False, 4000, 5000),
                                   (True, None, 5000), (False, 7000, 7000)):  # fmt: skip
        assert await repo.set_account_enabled("root", enabled, now_ms=now_ms)
        found = await repo.get_account("root")
        assert found is not None and (found.enabled, found.logins_after_ms) == (enabled, after)
    before = int(time.time() * 1000)
    assert await repo.set_account_enabled("root", False)  # the current time by default
    found = await repo.get_account("root")
    assert found is not None and not found.enabled
    assert before <= found.logins_after_ms <= time.time() * 1000
    assert [a.logins_after_ms for a in await repo.list_accounts()] == [found.logins_after_ms]
    assert not await repo.set_account_enabled("nobody", False)
    enterprise = Enterprise("ent", "Ent", "x@example.com", "active", "300:0.NA/88.1.2", 1)
    assert await repo.add_enterprise(enterprise) and not await repo.add_enterprise(enterprise)
    assert await repo.list_enterprises() == [enterprise]
    application = PrefixApplication("88.1.2", "ent", "applied", True, "root", 5)
    assert await repo.add_application(application)
    assert not await repo.add_application(application)
    assert await repo.set_prefix_state("88.1.2", "applied", "active", "root", 6)
    assert not await repo.set_prefix_state("88.1.2", "applied", "active", "root", 7)
    assert (await repo.get_application("88.1.2")).state == "active"  # type: ignore[union-attr]
    assert [(t.seq, t.state, t.at_ms) for t in await repo.transitions("88.1.2")] == [
        (1, "applied", 5),
        (2, "active", 6),
    ]
    assert await repo.list_applications("ent") == await repo.list_applications()


def test_sqlite_repository(tmp_path: Path) -> None:
    async def run() -> None:
        store = await SQLiteStore.open(tmp_path / "a.db")
        try:
            await exercise(store)
        finally:
            await store.close()

    asyncio.run(run())


def test_postgres_repository(pg_server: PostgresServer) -> None:
    pg_server.psql("CREATE DATABASE idnode_accounts")

    async def run() -> None:
        store = await PostgresStore.open(pg_server.url("idnode_accounts"))
        try:
            await exercise(store)
        finally:
            await store.close()

    asyncio.run(run())


def test_passwords_and_tokens() -> None:
    stored = hash_password("secret")
    assert verify_password("secret", stored) and not verify_password("Secret", stored)
    assert not verify_password("secret", "garbage")
    now = [1000.0]
    tokens = TokenStore(lambda: now[0], lifetime=10)
    token = tokens.issue("root")
    assert tokens.check(token) == Login("root", 1000.0)
    now[0] += 11
    assert tokens.check(token) is None and tokens.check("unknown") is None
    with pytest.raises(InvalidValue):
        new_account("x" * 51, "pw", "app", "300:88.1/A", enterprise_id="e")
    with pytest.raises(InvalidValue):
        new_account("app", "pw", "app", "300:88.1/A")  # an app needs an enterprise
