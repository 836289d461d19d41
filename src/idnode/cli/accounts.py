"""``idnode account``: accounts of the REST APIs (SNMS login, ``/api/admin``), kept in the
node's database. For the first node administrator, and for operators working on the database
directly; once a node administrator exists, ``POST /api/admin/accounts`` does the same over
HTTP (and also adds enterprise accounts to their enterprise's admin group)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from idnode.cli._common import DEFAULT_CONFIG, main
from idnode.errors import HandleError
from idnode.industry.accounts import Role, new_account
from idnode.server.config import NodeConfig
from idnode.store import open_store
from idnode.store.accounts_sql import AccountRepository, HasAccounts

T = TypeVar("T")

_CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="Node configuration file naming the database.",
)


@main.group()
def account() -> None:
    """Accounts of the REST APIs (roles: node_admin, auditor, enterprise_admin, app)."""


def _with_accounts(config_path: Path, work: Callable[[AccountRepository], Awaitable[T]]) -> T:
    """Run ``work`` on the accounts of the node's database; errors as click errors."""

    async def run() -> T:
        store = await open_store(NodeConfig.load(config_path).database_location)
        try:
            if not isinstance(store, HasAccounts):
                raise click.ClickException("this database keeps no accounts")
            return await work(store.accounts())
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except HandleError as exc:
        raise click.ClickException(exc.message) from exc


@account.command("add")
@click.argument("username")
@click.option(
    "--role", type=click.Choice([r.value for r in Role]), required=True, help="The account's role."
)
@click.option(
    "--identity",
    required=True,
    help="The Handle identity (index:handle) the account acts as; its HS_ADMIN rights apply.",
)
@click.option("--enterprise", default=None, help="Enterprise id (enterprise_admin and app).")
@click.option(
    "--password-file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="File holding the password (first line).",
)
@_CONFIG
def account_add(
    username: str,
    role: str,
    identity: str,
    enterprise: str | None,
    password_file: Path,
    config_path: Path,
) -> None:
    """Create the account USERNAME."""
    password = password_file.read_text(encoding="utf-8").splitlines()[0]
    try:
        record = new_account(username, password, role, identity, enterprise_id=enterprise)
    except HandleError as exc:
        raise click.ClickException(exc.message) from exc
    if not _with_accounts(config_path, lambda repo: repo.add_account(record)):
        raise click.ClickException(f"account {username} exists already")
    click.echo(f"account {username} ({role}, acting as {identity}) created")


@account.command("list")
@_CONFIG
def account_list(config_path: Path) -> None:
    """List the accounts."""
    for a in _with_accounts(config_path, lambda repo: repo.list_accounts()):
        state = "enabled" if a.enabled else "disabled"
        enterprise = a.enterprise_id or "-"
        click.echo(f"{a.username:<24} {a.role:<17} {enterprise:<16} {a.identity:<32} {state}")


@account.command("disable")
@click.argument("username")
@_CONFIG
def account_disable(username: str, config_path: Path) -> None:
    """Disable USERNAME: it can no longer log in, and its tokens stop working."""
    _set_enabled(config_path, username, False)


@account.command("enable")
@click.argument("username")
@_CONFIG
def account_enable(username: str, config_path: Path) -> None:
    """Enable USERNAME again."""
    _set_enabled(config_path, username, True)


def _set_enabled(config_path: Path, username: str, enabled: bool) -> None:
    if not _with_accounts(config_path, lambda repo: repo.set_account_enabled(username, enabled)):
        raise click.ClickException(f"no account {username}")
    click.echo(f"account {username} {'enabled' if enabled else 'disabled'}")
