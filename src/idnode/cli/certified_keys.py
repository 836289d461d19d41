"""The server keys ``idnode resolve --certified`` checks answers with.

What is trusted is what the user gives: ``--server-key FILE`` (PEM public keys of the server,
or of each ``--root`` in order), or a pin file (``--pin FILE``). A pin file that exists is read
like ``--server-key``; one that does not is created from the server's own GET_SITE_INFO
answer (trust on first use: that first answer is believed, later ones must be signed by the
keys it named) and its fingerprints are printed, to be compared with what the server's
operator publishes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import click

from idnode.certified import ServerKeys, public_key_pem, public_keys_from_pem
from idnode.cli._common import host_port, run_async
from idnode.client import HandleClient
from idnode.errors import HandleError
from idnode.protocol import auth
from idnode.protocol.types.hs_pubkey import PublicKeyData
from idnode.protocol.types.hs_site import SiteInfo
from idnode.resolver.recursive import root_site

__all__ = ["fingerprint", "read_keys", "root_sites", "server_keys"]


def read_keys(path: Path) -> tuple[auth.PublicKey, ...]:
    """The PEM public keys (RSA, DSA or SM2) in ``path``; a usage error otherwise."""
    try:
        return public_keys_from_pem(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--server-key") from exc


def fingerprint(key: auth.PublicKey) -> str:
    """SHA-256 of the key's HS_PUBKEY encoding, hex in groups of four."""
    digest = hashlib.sha256(PublicKeyData.from_public_key(key).to_bytes()).hexdigest()
    return ":".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def _pin(path: Path, server: str, tcp: bool, timeout: float) -> tuple[auth.PublicKey, ...]:
    """Fetch the server's HS_SITE keys, write them to ``path`` and say so on stderr."""
    host, port = host_port(server)
    site = run_async(HandleClient(host, port, tcp=tcp, timeout=timeout).get_site_info())
    keys: list[auth.PublicKey] = []
    for info in site.servers:
        try:
            keys.append(PublicKeyData.from_bytes(info.public_key).to_public_key())
        except (HandleError, ValueError):
            continue
    if not keys:
        raise click.ClickException(f"{server} publishes no usable server key in its HS_SITE")
    path.write_bytes(b"".join(public_key_pem(k) for k in keys))
    click.echo(f"pinned the keys {server} sent in its HS_SITE to {path}:", err=True)
    for key in keys:
        click.echo(f"  {fingerprint(key)}", err=True)
    return tuple(keys)


def server_keys(
    server: str, key_files: Sequence[Path], pin: Path | None, *, tcp: bool, timeout: float
) -> ServerKeys:
    """The keys answers from ``server`` must be signed with (``--server-key`` / ``--pin``)."""
    if key_files:
        keys = tuple(k for path in key_files for k in read_keys(path))
    elif pin is None:
        raise click.UsageError("--certified needs --server-key FILE or --pin FILE")
    elif pin.exists():
        keys = read_keys(pin)
    else:
        keys = _pin(pin, server, tcp, timeout)
    return ServerKeys(keys, server)


def root_sites(roots: Sequence[str], key_files: Sequence[Path]) -> list[SiteInfo]:
    """One site per ``--root``, carrying the key of the ``--server-key`` at the same place."""
    if len(key_files) != len(roots):
        raise click.UsageError(
            "--certified with --root needs one --server-key per --root, in the same order"
        )
    sites = []
    for root, path in zip(roots, key_files, strict=True):
        host, port = host_port(root)
        key = PublicKeyData.from_public_key(read_keys(path)[0]).to_bytes()
        sites.append(root_site(host.strip("[]"), port, key))
    return sites
