"""``idnode resolve``."""

from __future__ import annotations

import json

import click

from idnode.cli._common import (
    host_port,
    main,
    run_async,
    server_option,
)
from idnode.client import HandleClient
from idnode.jsonvalues import data_to_json, value_to_json
from idnode.protocol.codes import ResponseCode
from idnode.protocol.values import HandleValue

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


def _print_values(handle: str, values: tuple[HandleValue, ...], as_json: bool) -> None:
    if as_json:
        doc = {"handle": handle, "values": [value_to_json(v) for v in values]}
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    click.echo(handle)
    for v in values:
        click.echo(f"  {v.index:>5}  {v.type:<14} {_text(v)}")


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
) -> None:
    """Resolve HANDLE and print its public values."""
    if roots:
        values = _resolve_recursively(handle, roots, types, indexes, timeout, trace)
    else:
        if trace:
            raise click.UsageError("--trace needs --root (a direct query has one hop)")
        host, port = host_port(server)
        client = HandleClient(host, port, tcp=tcp, timeout=timeout)
        values = run_async(client.resolve(handle, types=types, indexes=indexes))
    _print_values(handle, values, as_json)


def _resolve_recursively(
    handle: str,
    roots: tuple[str, ...],
    types: tuple[str, ...],
    indexes: tuple[int, ...],
    timeout: float,
    trace: bool,
) -> tuple[HandleValue, ...]:
    from idnode.resolver import Hop, Resolver

    root_sites = [host_port(root) for root in roots]
    resolver = Resolver(root_sites, timeout=timeout)

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
