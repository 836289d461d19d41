"""``idnode key ...``: rotating the server key of a node and the key of an admin identity.

``rotate-server`` (on the node's directory): a new server key replaces the old one in the
key file; the old public key is listed as retired (``retired-server-keys``, published in the
HS_SITE as ``idnode.retired-key`` until ``--keep`` runs out, so answers it signed still
verify); the site serial goes up; the HS_SITE values carrying the old key on the node's
prefix handles are rewritten with the new key, the new serial and the retired-key list. The
node signs with the new key from its next start; until then both keys verify.

``rotate-admin`` (over the network, authenticated with the old key): the new key is written
to ``--out`` first, then added to the identity's handle at a spare index and checked (the
server must accept a challenge answer signed by it), then put in place of the old key at the
identity's own index (so group memberships and HS_ADMIN references stay valid), checked
again by removing the spare value as the identity, with the new key. At every step one key
that works stays on the handle: access is never lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from pathlib import Path

import click

from idnode.certified import (
    RETIRED_KEY_ATTRIBUTE,
    RetiredKey,
    drop_expired,
    load_retired,
    retired_attributes,
    save_retired,
)
from idnode.cli._common import DEFAULT_CONFIG, host_port, main, run_async, server_option
from idnode.client import HandleClient, PublicKeyCredentials
from idnode.crypto import sm2
from idnode.crypto.keys import KEY_TYPES, generate_key
from idnode.errors import (
    AuthenticationFailed,
    InsufficientPermissions,
    InvalidAdmin,
    InvalidValue,
)
from idnode.protocol.auth import PrivateKey
from idnode.protocol.types.hs_pubkey import (
    PublicKeyData,
    dump_private_key_pem,
    load_private_key,
)
from idnode.protocol.types.hs_site import Attribute, sites_in
from idnode.protocol.values import HandleValue
from idnode.server.config import NodeConfig, parse_identity
from idnode.store import open_store

#: How long a retired server key is still accepted by default: a week.
DEFAULT_KEEP = 7 * 24 * 3600
#: Where ``rotate-admin`` starts looking for a spare index on the identity's handle.
SPARE_INDEX_START = 400


def key_kind(key: PrivateKey) -> str:
    if isinstance(key, sm2.Sm2PrivateKey):
        return "sm2"
    from cryptography.hazmat.primitives.asymmetric import dsa

    return "dsa" if isinstance(key, dsa.DSAPrivateKey) else "rsa"


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600) through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@main.group()
def key() -> None:
    """Key rotation: the node's server key, an admin identity's key."""


# -- rotate-server ---------------------------------------------------------------------------


@key.command("rotate-server")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="Node configuration file (made by `idnode init`).",
)
@click.option(
    "--key-type",
    type=click.Choice(KEY_TYPES),
    default=None,
    help="Kind of the new key (default: the kind of the current one).",
)
@click.option(
    "--keep",
    type=click.IntRange(0, None),
    default=DEFAULT_KEEP,
    show_default=True,
    help="Seconds the old key stays listed (its signatures still verify).",
)
def rotate_server(config_path: Path, key_type: str | None, keep: int) -> None:
    """Replace the node's server key, keeping the old one listed in the HS_SITE for --keep
    seconds, and publish the HS_SITE with a new serial. Restart the node to sign with the
    new key."""
    config = NodeConfig.load(config_path)
    passphrase = config.server_key_passphrase()
    try:
        old_key = load_private_key(config.server_key_path.read_bytes(), passphrase)
    except (OSError, InvalidValue) as exc:
        raise click.ClickException(f"cannot load the server key: {exc}") from exc
    new_key = generate_key(key_type or key_kind(old_key))
    old_public = PublicKeyData.from_public_key(old_key.public_key()).to_bytes()
    new_public = PublicKeyData.from_public_key(new_key.public_key()).to_bytes()
    now = int(time.time())
    server_id = 1 if config.site is None else config.site.this_server
    retired = [r for r in load_retired(config.directory) if r.expires > now]
    retired.append(RetiredKey(server_id, now + keep, old_public))
    new_config = dataclasses.replace(config, site_serial=(config.site_serial + 1) & 0xFFFF)
    # Publish first (old and new keys both verify), then switch the key file.
    save_retired(config.directory, retired)
    attributes = retired_attributes(config.directory, now)
    changed = asyncio.run(
        _publish(new_config, old_public, new_public, new_config.site_serial, attributes, now)
    )
    _write_private(config.server_key_path, dump_private_key_pem(new_key, passphrase))
    _write_private(config_path, new_config.dump().encode("utf-8"))
    click.echo(f"new {key_type or key_kind(old_key)} server key: {config.server_key_path}")
    click.echo(f"  site serial   {config.site_serial} -> {new_config.site_serial}")
    until = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(now + keep))
    click.echo(f"  old key       listed until {until}")
    click.echo(f"  HS_SITE       rewritten on {changed} prefix handle(s)")
    click.echo(
        "restart the node to sign with the new key; give the new HS_SITE to the parent "
        "node that delegates the prefix"
    )


async def _publish(
    config: NodeConfig,
    old_public: bytes,
    new_public: bytes,
    serial: int,
    attributes: tuple[Attribute, ...],
    now: int,
) -> int:
    """Rewrite the HS_SITE values that carry ``old_public`` on the homed prefix handles:
    that server's key becomes ``new_public``, the serial ``serial``, and the retired-key
    attributes those of the node. Returns the number of handles changed."""
    store = await open_store(config.database_location)
    changed = 0
    try:
        for prefix in await store.homed_prefixes():
            handle = f"0.NA/{prefix}"
            updated = []
            for value, site in sites_in(await store.get_handle(handle) or ()):
                if not any(s.public_key == old_public for s in site.servers):
                    continue
                servers = tuple(
                    dataclasses.replace(s, public_key=new_public)
                    if s.public_key == old_public
                    else s
                    for s in site.servers
                )
                kept = [a for a in drop_expired(site, now) if a.name != RETIRED_KEY_ATTRIBUTE]
                rotated = dataclasses.replace(
                    site, serial=serial, servers=servers, attributes=(*kept, *attributes)
                )
                updated.append(value.with_changes(data=rotated.to_bytes(), timestamp=now))
            if updated:
                await store.modify_values(handle, updated)
                changed += 1
    finally:
        await store.close()
    return changed


# -- rotate-admin ----------------------------------------------------------------------------


@key.command("rotate-admin")
@server_option
@click.option("--as", "identity", required=True, metavar="INDEX:HANDLE", help="The identity.")
@click.option(
    "--key-file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="The identity's current private key.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write the new private key (PEM; must not exist).",
)
@click.option(
    "--key-type",
    type=click.Choice(KEY_TYPES),
    default=None,
    help="Kind of the new key (default: the kind of the current one).",
)
@click.option("--bits", default=2048, show_default=True, help="Key size (RSA and DSA).")
@click.option(
    "--passphrase",
    envvar="IDNODE_KEY_PASSPHRASE",
    help="Passphrase of the current key file; the new one is encrypted with it too.",
)
def rotate_admin(
    server: str,
    identity: str,
    key_file: Path,
    out: Path,
    key_type: str | None,
    bits: int,
    passphrase: str | None,
) -> None:
    """Replace the HS_PUBKEY of INDEX:HANDLE with a new key without losing access: add the
    new key at a spare index, check that the server accepts it, put it at the identity's
    index, check again, remove the spare value."""
    try:
        who = parse_identity(identity)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--as") from exc
    if out.exists():
        raise click.ClickException(f"{out} exists")
    secret = passphrase.encode() if passphrase else None
    try:
        old_key = load_private_key(key_file.read_bytes(), secret)
    except InvalidValue as exc:
        raise click.ClickException(f"cannot load {key_file}: {exc}") from exc
    host, port = host_port(server)
    old = HandleClient(host, port, credentials=PublicKeyCredentials(who.handle, who.index, old_key))
    current, taken = run_async(_current_key(old, who.handle, who.index))
    new_key = generate_key(key_type or key_kind(old_key), bits)
    _write_private(out, dump_private_key_pem(new_key, secret))  # kept before the server knows it
    spare = run_async(_rotate_admin(old, current, taken, new_key))
    click.echo(f"new key of {who.index}:{who.handle} in {out} (checked with the server)")
    click.echo(f"  the old key no longer authenticates; spare index {spare} was used and removed")


async def _current_key(old: HandleClient, handle: str, index: int) -> tuple[HandleValue, set[int]]:
    """The identity's HS_PUBKEY value and the indexes taken on its handle, read with the
    old key (so a key that does not authenticate stops everything before any change)."""
    values = await old.resolve(handle, public_only=False, authoritative=True)
    current = next((v for v in values if v.index == index), None)
    if current is None or current.type.upper() != "HS_PUBKEY":
        raise InvalidValue(f"{index}:{handle} holds no HS_PUBKEY")
    return current, {v.index for v in values}


async def _rotate_admin(
    old: HandleClient, current: HandleValue, taken: set[int], new_key: PrivateKey
) -> int:
    assert isinstance(old.credentials, PublicKeyCredentials)
    handle, index = old.credentials.handle, old.credentials.index
    host, port = old.host, old.port
    spare = next(
        i for i in range(max(SPARE_INDEX_START, max(taken) + 1), 1 << 31) if i not in taken
    )
    data = PublicKeyData.from_public_key(new_key.public_key()).to_bytes()
    # 1. the new key at a spare index, and a check that the server accepts it there
    spare_value = HandleValue(spare, "HS_PUBKEY", data, permissions=current.permissions)
    await old.add_values(handle, [spare_value])
    probe = HandleClient(host, port, credentials=PublicKeyCredentials(handle, spare, new_key))
    try:
        await probe.modify_values(handle, [spare_value])
    except (InsufficientPermissions, InvalidAdmin):
        pass  # authenticated (the answer verified); the spare identity just has no rights
    except AuthenticationFailed:
        await old.remove_values(handle, [spare])
        raise
    # 2. the new key in place of the old one, then a check with the identity's own rights
    await old.modify_values(handle, [current.with_changes(data=data)])
    new = HandleClient(host, port, credentials=PublicKeyCredentials(handle, index, new_key))
    await new.remove_values(handle, [spare])
    return spare
