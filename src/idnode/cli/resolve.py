"""``idnode resolve``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from idnode.cli import certified_keys
from idnode.cli._common import (
    host_port,
    main,
    run_async,
    server_option,
)
from idnode.cli.trust import Verification, print_report, verification_options
from idnode.client import HandleClient
from idnode.jsonvalues import data_to_json, value_to_json
from idnode.protocol.codes import ResponseCode
from idnode.protocol.types.hs_site import SiteInfo
from idnode.protocol.values import HandleValue
from idnode.trust import RecordReport

# -- resolve -------------------------------------------------------------------------------


def _text(v: HandleValue) -> str:
    data = data_to_json(v.type, v.data)
    if data["format"] == "string":
        return str(data["value"])
    if data["format"] == "admin":
        a = data["value"]
        return f"{a['index']}:{a['handle']} perms={a['permissions']}"
    if data["format"] == "vlist":
        return ", ".join(f"{e['index']}:{e['handle']}" for e in data["value"])
    if data["format"] == "site":
        s = data["value"]
        return f"site serial={s['serialNumber']} servers={len(s['servers'])}"
    return f"({len(v.data)} bytes) {v.data[:24].hex()}{'…' if len(v.data) > 24 else ''}"


def _print_values(
    handle: str, values: tuple[HandleValue, ...], as_json: bool, report: RecordReport | None
) -> None:
    if as_json:
        doc: dict[str, Any] = {"handle": handle, "values": [value_to_json(v) for v in values]}
        if report is not None:
            doc["verification"] = report.to_json()
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    click.echo(handle)
    for v in values:
        click.echo(f"  {v.index:>5}  {v.type:<14} {_text(v)}")
    if report is not None:
        print_report(report)


@main.command()
@click.argument("handle")
@server_option
@click.option("--tcp", is_flag=True, help="Use TCP instead of UDP.")
@click.option("--type", "types", multiple=True, help="Only values of this type (repeatable).")
@click.option("--index", "indexes", type=int, multiple=True, help="Only this index (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the REST API's JSON form.")
@click.option("--timeout", default=5.0, show_default=True, help="Seconds to wait for an answer.")
@click.option(
    "--root",
    "roots",
    multiple=True,
    metavar="HOST:PORT",
    help="Resolve recursively from this root node (repeatable) instead of asking --server: "
    "prefix handle by prefix handle, down to the node serving HANDLE.",
)
@click.option("--trace", is_flag=True, help="With --root: print every hop to stderr.")
@click.option(
    "--certified",
    is_flag=True,
    help="Ask for signed answers and refuse any whose signature does not verify with the "
    "server's key (--server-key or --pin; with --root, every server on the way is checked "
    "against the key its HS_SITE publishes, starting from the roots' --server-key).",
)
@click.option(
    "--server-key",
    "server_key_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE",
    help="With --certified: PEM public key (RSA, DSA or SM2) of --server, or of each --root "
    "in the same order (repeatable).",
)
@click.option(
    "--pin",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="With --certified and --server: the server's keys, saved in FILE from its HS_SITE "
    "the first time (trust on first use; the fingerprints are printed) and read from it after.",
)
@verification_options
def resolve(
    handle: str,
    server: str,
    tcp: bool,
    types: tuple[str, ...],
    indexes: tuple[int, ...],
    as_json: bool,
    timeout: float,
    roots: tuple[str, ...],
    trace: bool,
    certified: bool,
    server_key_files: tuple[Path, ...],
    pin: Path | None,
    verification: Verification | None,
) -> None:
    """Resolve HANDLE and print its public values (with --verify the values' signatures are
    checked, with --certified the answers' signatures: docs/trust.md)."""
    if (server_key_files or pin is not None) and not certified:
        raise click.UsageError("--server-key and --pin go with --certified")
    if roots:
        if pin is not None:
            raise click.UsageError("--pin goes with --server; give --root its --server-key")
        sites = certified_keys.root_sites(roots, server_key_files) if certified else None
        values = _resolve_recursively(handle, roots, types, indexes, timeout, trace, sites)
    else:
        if trace:
            raise click.UsageError("--trace needs --root (a direct query has one hop)")
        host, port = host_port(server)
        keys = None
        if certified:
            keys = certified_keys.server_keys(
                server, server_key_files, pin, tcp=tcp, timeout=timeout
            )
        client = HandleClient(host, port, tcp=tcp, timeout=timeout, verify_with=keys)
        values = run_async(client.resolve(handle, types=types, indexes=indexes))
    report = None
    if verification is not None:
        report = verification.run(
            handle, values, roots=roots, server=server, tcp=tcp, timeout=timeout
        )
    _print_values(handle, values, as_json, report)
    if report is not None and not report.ok:
        raise SystemExit(1)


def _resolve_recursively(
    handle: str,
    roots: tuple[str, ...],
    types: tuple[str, ...],
    indexes: tuple[int, ...],
    timeout: float,
    trace: bool,
    certified_sites: list[SiteInfo] | None = None,
) -> tuple[HandleValue, ...]:
    from idnode.resolver import Hop, Resolver

    if certified_sites is not None:
        resolver = Resolver(certified_sites, timeout=timeout, certified=True)
    else:
        resolver = Resolver([host_port(root) for root in roots], timeout=timeout)

    def show(hop: Hop) -> None:
        outcome = hop.error or (
            "no answer" if hop.response_code is None else _code_name(hop.response_code)
        )
        shared = " (shared)" if hop.shared else ""
        click.echo(f"  {hop.handle:<32} @ {hop.address}  {outcome}{shared}", err=True)

    if trace:
        click.echo(f"resolving {handle} from {', '.join(roots)}", err=True)
    return run_async(resolver.resolve(handle, types, indexes, trace=show if trace else None))


def _code_name(code: int) -> str:
    try:
        return f"{code} {ResponseCode(code).name}"
    except ValueError:
        return str(code)
