"""``idnode handle ...``: authenticated administration over the native protocol."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from idnode.bootstrap import HANDLE_ADMIN_PERMISSIONS
from idnode.cli._common import (
    host_port,
    main,
    run_async,
    server_option,
)
from idnode.client import (
    Credentials,
    HandleClient,
    PublicKeyCredentials,
    SecretKeyCredentials,
)
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.types.hs_pubkey import load_private_key
from idnode.protocol.values import HandleValue
from idnode.server.authz import Identity
from idnode.server.config import parse_identity

# -- administration ------------------------------------------------------------------------


def _credentials(
    identity: str, secret_file: Path | None, key_file: Path | None, passphrase: str | None
) -> Credentials:
    try:
        who = parse_identity(identity)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--as") from exc
    if (secret_file is None) == (key_file is None):
        raise click.UsageError("give exactly one of --secret-file and --key-file")
    if secret_file is not None:
        secret = secret_file.read_bytes().rstrip(b"\r\n")
        return SecretKeyCredentials(who.handle, who.index, secret)
    assert key_file is not None
    key = load_private_key(key_file.read_bytes(), passphrase.encode() if passphrase else None)
    return PublicKeyCredentials(who.handle, who.index, key)


def authenticated(f: Callable[..., None]) -> Callable[..., None]:
    """Give a command the options naming the server and the identity to authenticate as, and
    call it with ``client``: a :class:`HandleClient` holding those credentials."""

    @functools.wraps(f)
    def command(
        *,
        server: str,
        identity: str,
        secret_file: Path | None,
        key_file: Path | None,
        passphrase: str | None,
        **kwargs: Any,
    ) -> None:
        host, port = host_port(server)
        credentials = _credentials(identity, secret_file, key_file, passphrase)
        f(client=HandleClient(host, port, credentials=credentials), **kwargs)

    wrapped: Callable[..., None] = command
    for option in (
        click.option(
            "--passphrase",
            envvar="IDNODE_KEY_PASSPHRASE",
            help="Passphrase of an encrypted key file.",
        ),
        click.option(
            "--key-file",
            type=click.Path(path_type=Path, exists=True, dir_okay=False),
            help="Private key of the identity (its HS_PUBKEY).",
        ),
        click.option(
            "--secret-file",
            type=click.Path(path_type=Path, exists=True, dir_okay=False),
            help="File holding the identity's secret (HS_SECKEY).",
        ),
        click.option(
            "--as",
            "identity",
            required=True,
            metavar="INDEX:HANDLE",
            help="Identity to authenticate as, e.g. 300:0.NA/88.118.8.",
        ),
        server_option,
    ):
        wrapped = option(wrapped)
    return wrapped


def _parse_values(specs: tuple[str, ...]) -> list[HandleValue]:
    """``INDEX:TYPE:DATA`` (UTF-8 text) → values."""
    out = []
    for spec in specs:
        index, _, rest = spec.partition(":")
        vtype, sep, data = rest.partition(":")
        if not index.isdigit() or not vtype or not sep:
            raise click.BadParameter(
                f"expected INDEX:TYPE:DATA, got {spec!r}", param_hint="--value"
            )
        out.append(HandleValue(int(index), vtype, data.encode("utf-8")))
    return out


value_option = click.option(
    "--value",
    "values",
    multiple=True,
    metavar="INDEX:TYPE:DATA",
    help="A value with UTF-8 text data, e.g. 1:URL:https://example.com (repeatable).",
)


@main.group()
def handle() -> None:
    """Create, change, delete and list handles (authenticated)."""


@handle.command("create")
@click.argument("name")
@value_option
@click.option(
    "--admin",
    "admin_identity",
    metavar="INDEX:HANDLE",
    help="HS_ADMIN at index 100 (default: the --as identity).",
)
@click.option("--overwrite", is_flag=True, help="Replace the handle if it exists.")
@click.option("--mint", is_flag=True, help="Let the server mint the suffix under NAME.")
@authenticated
def create(
    name: str,
    values: tuple[str, ...],
    admin_identity: str | None,
    overwrite: bool,
    mint: bool,
    client: HandleClient,
) -> None:
    """Create handle NAME with the given values and an HS_ADMIN."""
    record = _parse_values(values)
    if not any(v.type.upper() == "HS_ADMIN" for v in record):
        assert client.credentials is not None
        admin = (
            parse_identity(admin_identity)
            if admin_identity
            else Identity(client.credentials.handle, client.credentials.index)
        )
        data = AdminRecord(HANDLE_ADMIN_PERMISSIONS, admin.handle, admin.index).to_bytes()
        record.append(HandleValue(100, "HS_ADMIN", data))
    created = run_async(client.create_handle(name, record, overwrite=overwrite, mint=mint))
    click.echo(created)


@handle.command("add")
@click.argument("name")
@value_option
@click.option("--overwrite", is_flag=True, help="Replace values whose index exists.")
@authenticated
def add(
    name: str,
    values: tuple[str, ...],
    overwrite: bool,
    client: HandleClient,
) -> None:
    """Add values to handle NAME."""
    run_async(client.add_values(name, _parse_values(values), overwrite=overwrite))
    click.echo(f"added {len(values)} value(s) to {name}")


@handle.command("modify")
@click.argument("name")
@value_option
@authenticated
def modify(
    name: str,
    values: tuple[str, ...],
    client: HandleClient,
) -> None:
    """Replace values of handle NAME, by index."""
    run_async(client.modify_values(name, _parse_values(values)))
    click.echo(f"modified {len(values)} value(s) of {name}")


@handle.command("remove")
@click.argument("name")
@click.argument("indexes", type=int, nargs=-1, required=True)
@authenticated
def remove(
    name: str,
    indexes: tuple[int, ...],
    client: HandleClient,
) -> None:
    """Remove the values at INDEXES from handle NAME."""
    run_async(client.remove_values(name, indexes))
    click.echo(f"removed {len(indexes)} value(s) from {name}")


@handle.command("delete")
@click.argument("name")
@authenticated
def delete(
    name: str,
    client: HandleClient,
) -> None:
    """Delete handle NAME."""
    run_async(client.delete_handle(name))
    click.echo(f"deleted {name}")


@handle.command("list")
@click.argument("prefix")
@click.option("--derived", is_flag=True, help="List derived prefixes instead of handles.")
@authenticated
def list_(
    prefix: str,
    derived: bool,
    client: HandleClient,
) -> None:
    """List the handles (or derived prefixes) under PREFIX."""
    op = client.list_derived_prefixes if derived else client.list_handles
    for name in run_async(op(prefix)):
        click.echo(name)


@handle.command("home")
@click.argument("prefix")
@click.option("--unhome", is_flag=True, help="Stop serving PREFIX instead.")
@authenticated
def home(
    prefix: str,
    unhome: bool,
    client: HandleClient,
) -> None:
    """Start (or with --unhome stop) serving PREFIX on the node (server admins only)."""
    run_async(client.unhome_prefix(prefix) if unhome else client.home_prefix(prefix))
    click.echo(f"{'unhomed' if unhome else 'homed'} {prefix}")
