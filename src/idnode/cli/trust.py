"""``idnode sign``, ``idnode cert ...`` and the ``--verify`` of ``idnode resolve``: signed values
and certificates (docs/trust.md)."""

from __future__ import annotations

import datetime
import functools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from idnode.cli._common import host_port, main, run_async
from idnode.cli.admin import authenticated
from idnode.client import HandleClient, PublicKeyCredentials
from idnode.protocol.values import HandleValue
from idnode.server.config import NodeConfig, parse_identity
from idnode.trust import (
    PERMISSIONS,
    JsonWebSignature,
    Permission,
    RecordReport,
    TrustError,
    TrustPolicy,
    client_fetch,
    issue_certificate,
    resolver_fetch,
    sign_values,
    verify_record,
)
from idnode.trust.chain import DEFAULT_MAX_CHAIN_LENGTH, parse
from idnode.trust.keys import load_public_key, load_signing_key, public_key_of
from idnode.trust.names import ValueRef, same_handle
from idnode.trust.signing import free_index, signature_value

__all__ = ["Verification", "print_report", "verification_options"]

#: Seconds before now that validity starts by default, for verifiers whose clocks are behind
#: (as the reference's signer does).
CLOCK_SKEW = 600


def _identity(text: str, what: str) -> str:
    try:
        who = parse_identity(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=what) from exc
    return f"{who.index}:{who.handle}"


def _signing_key(path: Path, passphrase: str | None) -> object:
    try:
        return load_signing_key(path.read_bytes(), passphrase.encode() if passphrase else None)
    except TrustError as exc:
        raise click.BadParameter(str(exc), param_hint=str(path)) from exc


def _validity(days: float, not_before: str | None) -> tuple[int, int, int]:
    now = int(time.time())
    start = now - CLOCK_SKEW
    if not_before is not None:
        try:
            moment = datetime.datetime.fromisoformat(not_before.replace("Z", "+00:00"))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--not-before") from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        start = int(moment.timestamp())
    return now, start, start + round(days * 86400)


_days_option = click.option(
    "--days", default=365.0, show_default=True, help="Days the signature is valid (exp)."
)
_not_before_option = click.option(
    "--not-before",
    metavar="ISO-DATE",
    help=f"Start of validity (nbf); default: {CLOCK_SKEW // 60} minutes ago.",
)
_chain_option = click.option(
    "--chain",
    "chain",
    multiple=True,
    metavar="REF",
    help="Where the signer's certificates are, nearest first (INDEX:HANDLE or HANDLE); "
    "default: the signer's own handle (repeatable).",
)


# -- idnode sign ---------------------------------------------------------------------------------


@main.command()
@click.argument("handle")
@click.option(
    "--signer",
    metavar="INDEX:HANDLE",
    help="The identity signing, whose certificate vouches for it (default: --as).",
)
@click.option(
    "--signing-key",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Private key to sign with (default: --key-file).",
)
@click.option(
    "--index",
    "sig_index",
    type=click.IntRange(1, 0xFFFFFFFF),
    help="Index of the HS_SIGNATURE value (default: the signer's existing one, else the "
    "first free index from 400).",
)
@click.option(
    "--all-values",
    is_flag=True,
    help="Sign the values only administrators may read too (their digests become public).",
)
@_days_option
@_not_before_option
@_chain_option
@authenticated
def sign(
    handle: str,
    signer: str | None,
    signing_key: Path | None,
    sig_index: int | None,
    all_values: bool,
    days: float,
    not_before: str | None,
    chain: tuple[str, ...],
    client: HandleClient,
) -> None:
    """Sign the values of HANDLE: add (or replace) its HS_SIGNATURE value.

    The values are read with the --as credentials, the public ones (all with --all-values)
    signed as --signer with --signing-key, and the signature is written back with the same
    credentials."""
    credentials = client.credentials
    assert credentials is not None
    issuer = (
        _identity(signer, "--signer") if signer else f"{credentials.index}:{credentials.handle}"
    )
    if signing_key is not None:
        key = _signing_key(signing_key, None)
    elif isinstance(credentials, PublicKeyCredentials):
        key = credentials.private_key
    else:
        raise click.UsageError("--signing-key is needed with --secret-file")
    now, start, end = _validity(days, not_before)

    async def run() -> tuple[int, JsonWebSignature]:
        values = await client.resolve(handle)
        chosen = values if all_values else tuple(v for v in values if v.public_read)
        try:
            jws = sign_values(
                handle, chosen, issuer, key, now=now, not_before=start, expires=end, chain=chain
            )
        except TrustError as exc:
            raise click.ClickException(str(exc)) from exc
        index = sig_index or _signature_index(values, issuer)
        await client.add_values(handle, [signature_value(index, jws, now)], overwrite=True)
        return index, jws

    index, jws = run_async(run())
    digests = parse(jws.compact())[1].digests
    signed = 0 if digests is None else len(digests.digests)
    click.echo(f"signed {signed} value(s) of {handle} as {issuer}: HS_SIGNATURE at {index}")


def _signature_index(values: tuple[HandleValue, ...], issuer: str) -> int:
    for value in values:
        if value.type.upper() != "HS_SIGNATURE":
            continue
        try:
            claims = parse(value.data.decode("utf-8"))[1]
        except (TrustError, UnicodeDecodeError):
            continue
        if same_handle(claims.iss, issuer):
            return value.index
    return free_index(values)


# -- idnode cert ---------------------------------------------------------------------------------


@main.group()
def cert() -> None:
    """Make and read HS_CERT certificates."""


def _permission(text: str) -> Permission:
    perm, _sep, handle = text.partition(":")
    if perm not in PERMISSIONS:
        raise click.BadParameter(
            f"{perm!r} is not one of {', '.join(PERMISSIONS)}", param_hint="--perm"
        )
    if perm != "everything" and not handle:
        raise click.BadParameter(f"{perm} needs a handle: {perm}:0.NA/PREFIX", param_hint="--perm")
    return Permission(perm, handle or None)


@cert.command("issue")
@click.argument("subject", metavar="SUBJECT")
@click.option(
    "--subject-key",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The subject's public key (PEM, JWK or a private key's PEM); not with --self-signed.",
)
@click.option(
    "--perm",
    "perms",
    multiple=True,
    required=True,
    metavar="PERM[:HANDLE]",
    help="What the subject may sign for: everything, thisHandle:H, derivedPrefixes:0.NA/P, "
    "handlesUnderThisPrefix:0.NA/P (repeatable).",
)
@click.option("--issuer", metavar="INDEX:HANDLE", help="The identity issuing the certificate.")
@click.option(
    "--issuer-key",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="The issuer's private key.",
)
@click.option("--passphrase", envvar="IDNODE_KEY_PASSPHRASE", help="Passphrase of --issuer-key.")
@click.option(
    "--self-signed",
    is_flag=True,
    help="A trust root's own certificate: SUBJECT is the issuer, with --issuer-key's key.",
)
@_days_option
@_not_before_option
@_chain_option
def issue(
    subject: str,
    subject_key: Path | None,
    perms: tuple[str, ...],
    issuer: str | None,
    issuer_key: Path,
    passphrase: str | None,
    self_signed: bool,
    days: float,
    not_before: str | None,
    chain: tuple[str, ...],
) -> None:
    """Print a certificate (a compact JWS) saying SUBJECT (INDEX:HANDLE) holds a key and may
    sign for --perm. Store it in the subject's handle as an HS_CERT value, e.g.
    ``idnode handle add 0.NA/88.118.8 --value "400:HS_CERT:$(idnode cert issue ...)"``."""
    subject = _identity(subject, "SUBJECT")
    key = _signing_key(issuer_key, passphrase)
    if self_signed:
        if subject_key is not None or (issuer and _identity(issuer, "--issuer") != subject):
            raise click.UsageError("--self-signed takes neither --subject-key nor another --issuer")
        issuer, public = subject, public_key_of(key)
    else:
        if issuer is None or subject_key is None:
            raise click.UsageError("give --issuer and --subject-key (or --self-signed)")
        issuer = _identity(issuer, "--issuer")
        try:
            public = load_public_key(subject_key.read_bytes())
        except TrustError as exc:
            raise click.BadParameter(str(exc), param_hint="--subject-key") from exc
    now, start, end = _validity(days, not_before)
    try:
        jws = issue_certificate(
            subject,
            public,
            [_permission(p) for p in perms],
            issuer,
            key,
            now=now,
            not_before=start,
            expires=end,
            chain=chain,
        )
    except TrustError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(jws.compact())


@cert.command("show")
@click.argument("jws")
def show(jws: str) -> None:
    """Print the header and claims of JWS (a certificate or signature; '-' reads stdin, '@FILE'
    a file)."""
    if jws == "-":
        jws = sys.stdin.read()
    elif jws.startswith("@"):
        jws = Path(jws[1:]).read_text(encoding="utf-8")
    try:
        parsed, claims = parse(jws)
    except TrustError as exc:
        raise click.ClickException(str(exc)) from exc
    doc = {"header": parsed.header, "claims": claims.to_json()}
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))


# -- idnode resolve --verify ---------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """What ``--verify`` checks against."""

    policy: TrustPolicy

    def run(
        self,
        handle: str,
        values: tuple[HandleValue, ...],
        *,
        roots: tuple[str, ...],
        server: str,
        tcp: bool,
        timeout: float,
    ) -> RecordReport:
        """Verify ``values`` of ``handle`` (its HS_SIGNATURE values read apart if a filter
        left them out), the chain read the way they were (from the roots recursively, or from
        the server)."""
        if roots:
            from idnode.resolver import Resolver

            fetch = resolver_fetch(Resolver([host_port(r) for r in roots], timeout=timeout))
        else:
            host, port = host_port(server)
            fetch = client_fetch(HandleClient(host, port, tcp=tcp, timeout=timeout))

        async def verify() -> RecordReport:
            shown = values
            if not any(v.type.upper() == "HS_SIGNATURE" for v in values):
                # a resolution filtered by type or index: the signatures are read apart
                signatures = [v for v in await fetch(handle) if v.type.upper() == "HS_SIGNATURE"]
                shown = (*values, *signatures)
            return await verify_record(handle, shown, fetch, self.policy)

        return run_async(verify())


def _policy(
    trust_root: str | None,
    trust_keys: tuple[Path, ...],
    trust_config: Path | None,
    max_chain: int | None,
) -> TrustPolicy:
    if trust_config is not None:
        if trust_root or trust_keys:
            raise click.UsageError("--trust-config goes without --trust-root and --trust-key")
        try:
            config = NodeConfig.load(trust_config)
        except (OSError, ValueError) as exc:
            raise click.BadParameter(str(exc), param_hint="--trust-config") from exc
        if config.trust is None:
            raise click.BadParameter("it has no [trust] table", param_hint="--trust-config")
        try:
            policy = config.trust.policy(config.directory)
        except (OSError, TrustError) as exc:
            raise click.ClickException(f"cannot read a trust root key: {exc}") from exc
        if max_chain is not None:
            policy = TrustPolicy(policy.root_handle, policy.root_keys, max_chain)
        return policy
    if not trust_root or not trust_keys:
        raise click.UsageError("--verify needs --trust-root and --trust-key, or --trust-config")
    keys = []
    for path in trust_keys:
        try:
            keys.append(load_public_key(path.read_bytes()))
        except TrustError as exc:
            raise click.BadParameter(str(exc), param_hint="--trust-key") from exc
    return TrustPolicy(
        ValueRef.parse(trust_root).handle, tuple(keys), max_chain or DEFAULT_MAX_CHAIN_LENGTH
    )


def verification_options(f: Callable[..., None]) -> Callable[..., None]:
    """Give a command ``--verify`` and the trust options, and call it with ``verification``:
    a :class:`Verification`, or None without ``--verify``."""

    @functools.wraps(f)
    def command(
        *,
        verify: bool,
        trust_root: str | None,
        trust_keys: tuple[Path, ...],
        trust_config: Path | None,
        max_chain: int | None,
        **kwargs: Any,
    ) -> None:
        verification = None
        if verify:
            verification = Verification(_policy(trust_root, trust_keys, trust_config, max_chain))
        f(verification=verification, **kwargs)

    wrapped: Callable[..., None] = command
    for option in (
        click.option(
            "--max-chain",
            type=click.IntRange(1, 1000),
            help=f"Most certificates in a chain (default {DEFAULT_MAX_CHAIN_LENGTH}).",
        ),
        click.option(
            "--trust-config",
            type=click.Path(path_type=Path, exists=True, dir_okay=False),
            help="Take the trust root from this node configuration's [trust] table.",
        ),
        click.option(
            "--trust-key",
            "trust_keys",
            multiple=True,
            type=click.Path(path_type=Path, exists=True, dir_okay=False),
            help="A public key of the trust root (PEM or JWK file; repeatable).",
        ),
        click.option("--trust-root", metavar="HANDLE", help="The trust root handle."),
        click.option(
            "--verify",
            is_flag=True,
            help="Check the HS_SIGNATURE values and their certificate chains up to the trust "
            "root; exit status 1 if the record does not verify.",
        ),
    ):
        wrapped = option(wrapped)
    return wrapped


def print_report(report: RecordReport) -> None:
    """The report, for people."""
    click.echo(f"verification: {report.status.upper()}")
    if report.signed:
        click.echo(f"  signed values:   {', '.join(map(str, report.signed))}")
    if report.missing:
        click.echo(f"  signed, not visible: {', '.join(map(str, report.missing))}")
    if report.tampered:
        click.echo(f"  TAMPERED values: {', '.join(map(str, report.tampered))}")
    if report.unsigned:
        click.echo(f"  unsigned values: {', '.join(map(str, report.unsigned))}")
    for sig in report.signatures:
        state = "trusted" if sig.trusted else "NOT trusted"
        click.echo(f"  signature {sig.index} by {sig.iss}: {state}")
        for link in sig.chain:
            mark = "ok" if not link.problems else "FAILED"
            click.echo(f"    {link.where:<32} issued by {link.iss}: {mark}")
    for problem in report.problems:
        click.echo(f"  - {problem}")
