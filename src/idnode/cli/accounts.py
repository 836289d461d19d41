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
from cryptography.hazmat.primitives.asymmetric import rsa

from idnode.cli._common import DEFAULT_CONFIG, main
from idnode.errors import HandleError
from idnode.industry.accounts import (
    APP_KEY_INDEX,
    Role,
    StoreWriter,
    app_handle,
    app_values,
    home_prefix,
    new_account,
    public_key_data,
    refresh_groups,
    set_app_key_enabled,
)
from idnode.protocol.types.hs_pubkey import PublicKeyData, dump_private_key_pem
from idnode.server.config import NodeConfig
from idnode.store import HandleStore, open_store
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


def _with_store(
    config_path: Path, work: Callable[[HandleStore, AccountRepository], Awaitable[T]]
) -> T:
    """Run ``work`` on the node's database and its accounts; errors as click errors."""

    async def run() -> T:
        store = await open_store(NodeConfig.load(config_path).database_location)
        try:
            if not isinstance(store, HasAccounts):
                raise click.ClickException("this database keeps no accounts")
            return await work(store, store.accounts())
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except HandleError as exc:
        raise click.ClickException(exc.message) from exc


def _with_accounts(config_path: Path, work: Callable[[AccountRepository], Awaitable[T]]) -> T:
    """Run ``work`` on the accounts of the node's database; errors as click errors."""
    return _with_store(config_path, lambda _store, repo: work(repo))


@account.command("add")
@click.argument("username")
@click.option(
    "--role", type=click.Choice([r.value for r in Role]), required=True, help="The account's role."
)
@click.option(
    "--identity",
    default=None,
    help="The Handle identity (index:handle) the account acts as; its HS_ADMIN rights apply. "
    "Required except for an app, which by default gets an identity of its own: "
    "300:<prefix>/APP.<username> with a key pair.",
)
@click.option("--enterprise", default=None, help="Enterprise id (enterprise_admin and app).")
@click.option(
    "--password-file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="File holding the password (first line).",
)
@click.option(
    "--key-out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="App: where to write the new private key (PEM, mode 0600; default "
    "<node dir>/<username>-key.pem).",
)
@click.option(
    "--public-key",
    "public_key",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="App: use this PEM public key (RSA or DSA) instead of generating a key pair.",
)
@_CONFIG
def account_add(
    username: str,
    role: str,
    identity: str | None,
    enterprise: str | None,
    password_file: Path,
    key_out: Path | None,
    public_key: Path | None,
    config_path: Path,
) -> None:
    """Create the account USERNAME.

    An app account without --identity gets an identity handle of its own under its
    enterprise's active prefix, holding its public key (HS_PUBKEY at 300): a new RSA key pair
    whose private key goes to --key-out, or --public-key. It authenticates as itself over the
    native protocol and HTTP (--as 300:<prefix>/APP.<username> --key-file KEY), or logs in."""
    password = password_file.read_text(encoding="utf-8").splitlines()[0]
    if role == Role.APP and identity is None:
        _add_app(username, password, enterprise, key_out, public_key, config_path)
        return
    if identity is None:
        raise click.ClickException(f"--identity is required for the role {role}")
    try:
        record = new_account(username, password, role, identity, enterprise_id=enterprise)
    except HandleError as exc:
        raise click.ClickException(exc.message) from exc

    async def add(store: HandleStore, repo: AccountRepository) -> bool:
        if not await repo.add_account(record):
            return False
        if enterprise is not None:
            await refresh_groups(_writer(store), repo, enterprise)
        return True

    if not _with_store(config_path, add):
        raise click.ClickException(f"account {username} exists already")
    click.echo(f"account {username} ({role}, acting as {identity}) created")


def _writer(store: HandleStore) -> StoreWriter:
    return StoreWriter(store, actor="idnode account", origin="cli")


def _add_app(
    username: str,
    password: str,
    enterprise: str | None,
    key_out: Path | None,
    public_key: Path | None,
    config_path: Path,
) -> None:
    if enterprise is None:
        raise click.ClickException("an app account needs --enterprise")
    key = None
    if public_key is not None:
        try:
            pubkey = public_key_data(public_key.read_bytes())
        except HandleError as exc:
            raise click.ClickException(exc.message) from exc
    else:
        key_out = key_out or config_path.parent / f"{username}-key.pem"
        if key_out.exists():
            raise click.ClickException(f"{key_out} exists")
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pubkey = PublicKeyData.from_public_key(key.public_key()).to_bytes()

    async def add(store: HandleStore, repo: AccountRepository) -> str:
        prefix = await home_prefix(repo, enterprise)
        handle = app_handle(prefix, username)
        record = new_account(
            username, password, Role.APP, f"{APP_KEY_INDEX}:{handle}", enterprise_id=enterprise
        )
        if await repo.get_account(username) is not None:
            raise click.ClickException(f"account {username} exists already")
        writer = _writer(store)
        await writer.create(handle, app_values(prefix, pubkey))
        await repo.add_account(record)
        await refresh_groups(writer, repo, enterprise)
        return record.identity

    identity = _with_store(config_path, add)
    if key is not None and key_out is not None:
        key_out.touch(mode=0o600)
        key_out.write_bytes(dump_private_key_pem(key))
        click.echo(f"private key written to {key_out}")
    click.echo(f"account {username} (app, acting as {identity}) created")


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
    """Disable USERNAME: it can no longer log in, its login tokens and console sessions end
    for good (also in a running node: they stay ended after enable), it leaves its
    enterprise's admin groups, and an app's own key stops verifying."""
    _set_enabled(config_path, username, False)


@account.command("enable")
@click.argument("username")
@_CONFIG
def account_enable(username: str, config_path: Path) -> None:
    """Enable USERNAME again."""
    _set_enabled(config_path, username, True)


def _set_enabled(config_path: Path, username: str, enabled: bool) -> None:
    async def change(store: HandleStore, repo: AccountRepository) -> bool:
        found = await repo.get_account(username)
        if found is None or not await repo.set_account_enabled(username, enabled):
            return False
        writer = _writer(store)
        if found.enterprise_id is not None:
            await refresh_groups(writer, repo, found.enterprise_id)
        await set_app_key_enabled(writer, found, enabled)
        return True

    if not _with_store(config_path, change):
        raise click.ClickException(f"no account {username}")
    click.echo(f"account {username} {'enabled' if enabled else 'disabled'}")
