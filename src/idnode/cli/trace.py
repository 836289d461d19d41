"""``idnode trace``: the traceability graph around an identifier, as a tree.

Two ways to ask:

* ``--http URL`` (the default, ``http://127.0.0.1:8000``): the node's ``GET /api/trace``
  (:mod:`idnode.http.trace`), both directions: upstream from the records and their templates,
  downstream from the node's reverse index, other nodes through the node's resolver;
* ``--server HOST:PORT``: over the Handle protocol, resolving each identifier and its template
  at that server (a recursive node resolves the others for us). The protocol has no reverse
  lookup, so only ``--direction up``.

``--as INDEX:HANDLE --secret-file FILE`` authenticates (HTTP Basic, or a secret-key challenge
answer), so values an administrator of a record may read show too. ``--json`` prints the
graph as ``/api/trace`` answers it; otherwise a tree: upstream children are what a node
references (``attribute → handle``), downstream children what references it (``handle
(attribute)``); an identifier met again is not expanded twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import click

from idnode.cli._common import get_json, host_port, main, run_async
from idnode.client import HandleClient, SecretKeyCredentials
from idnode.errors import InsufficientPermissions
from idnode.industry.trace import (
    DEFAULT_DEPTH,
    MAX_DEPTH,
    ClientSource,
    Direction,
    Tracer,
)
from idnode.protocol.values import HandleValue
from idnode.server.config import parse_identity
from idnode.store.base import handle_key

__all__ = ["render_tree"]

DEFAULT_HTTP = "http://127.0.0.1:8000"


@main.command()
@click.argument("handle")
@click.option(
    "--depth",
    type=click.IntRange(0, MAX_DEPTH),
    default=DEFAULT_DEPTH,
    show_default=True,
    help="Hops from HANDLE in each direction.",
)
@click.option(
    "--direction",
    type=click.Choice([d.value for d in Direction]),
    default=Direction.BOTH.value,
    show_default=True,
    help="up: what HANDLE references; down: what references it.",
)
@click.option("--http", "http_url", metavar="URL", help=f"The node's HTTP API [{DEFAULT_HTTP}].")
@click.option(
    "--server", metavar="HOST:PORT", help="Trace over the Handle protocol instead (up only)."
)
@click.option("--as", "identity", metavar="INDEX:HANDLE", help="Authenticate as this identity.")
@click.option(
    "--secret-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the identity's secret (HS_SECKEY).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the graph as JSON.")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for answers.")
def trace(
    handle: str,
    depth: int,
    direction: str,
    http_url: str | None,
    server: str | None,
    identity: str | None,
    secret_file: Path | None,
    as_json: bool,
    timeout: float,
) -> None:
    """Trace HANDLE: what it references and what references it, as a tree."""
    if http_url is not None and server is not None:
        raise click.UsageError("give --http or --server, not both")
    if (identity is None) != (secret_file is None):
        raise click.UsageError("--as and --secret-file go together")
    secret = None if secret_file is None else secret_file.read_bytes().rstrip(b"\r\n")
    if server is not None:
        if direction != Direction.UP:
            raise click.UsageError(
                "over the Handle protocol only --direction up: the reverse index that finds "
                "what references HANDLE is served over HTTP (--http)"
            )
        graph = _trace_native(handle, depth, server, identity, secret, timeout)
    else:
        graph = _trace_http(
            handle, depth, direction, http_url or DEFAULT_HTTP, identity, secret, timeout
        )
    if as_json:
        click.echo(json.dumps(graph, ensure_ascii=False, indent=2))
    else:
        click.echo(render_tree(graph))


def _trace_http(
    handle: str,
    depth: int,
    direction: str,
    base: str,
    identity: str | None,
    secret: bytes | None,
    timeout: float,
) -> dict[str, Any]:
    query = urlencode({"depth": depth, "direction": direction})
    url = f"{base.rstrip('/')}/api/trace/{quote(handle, safe='/')}?{query}"
    basic = (identity, secret) if identity is not None and secret is not None else None
    return get_json(url, base=base, timeout=timeout, basic=basic)


def _trace_native(
    handle: str,
    depth: int,
    server: str,
    identity: str | None,
    secret: bytes | None,
    timeout: float,
) -> dict[str, Any]:
    host, port = host_port(server)
    credentials = None
    if identity is not None and secret is not None:
        try:
            who = parse_identity(identity)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--as") from exc
        credentials = SecretKeyCredentials(who.handle, who.index, secret)
    client = HandleClient(host, port, tcp=True, timeout=timeout, credentials=credentials)

    async def resolve(name: str) -> tuple[HandleValue, ...]:
        try:
            return await client.resolve(name)
        except InsufficientPermissions:  # a value even an admin may not read: the rest
            return await client.resolve(name, public_only=True)

    async def run() -> dict[str, Any]:
        graph = await Tracer(ClientSource(resolve)).trace(handle, depth, Direction.UP)
        return {"responseCode": 1, "handle": handle, **graph.to_json()}

    return run_async(run())


# -- the tree ------------------------------------------------------------------------------------
def render_tree(graph: dict[str, Any]) -> str:
    """The graph (``/api/trace`` JSON) as an indented tree, root first."""
    nodes = {handle_key(n["handle"]): n for n in graph["nodes"]}
    ups: dict[str, list[tuple[str, str]]] = {}
    downs: dict[str, list[tuple[str, str]]] = {}
    for edge in graph["edges"]:
        source, target = handle_key(edge["from"]), handle_key(edge["to"])
        ups.setdefault(source, []).append((target, edge["attribute"]))
        downs.setdefault(target, []).append((source, edge["attribute"]))
    root = handle_key(graph["root"])
    lines = [_label(nodes[root])]
    sections = []
    if graph["direction"] in ("up", "both"):
        sections.append(("upstream (what it references)", ups, True))
    if graph["direction"] in ("down", "both"):
        sections.append(("downstream (what references it)", downs, False))
    for number, (title, links, upward) in enumerate(sections):
        last = number == len(sections) - 1
        lines.append(("└── " if last else "├── ") + title)
        pad = "    " if last else "│   "
        children = links.get(root, [])
        if not children:
            lines.append(pad + "    (none found)")
        _branch(lines, pad, children, nodes, links, upward, {root})
    if graph.get("truncated"):
        lines.append("(truncated: the graph reached its node limit)")
    return "\n".join(lines)


def _branch(
    lines: list[str],
    pad: str,
    children: list[tuple[str, str]],
    nodes: dict[str, dict[str, Any]],
    links: dict[str, list[tuple[str, str]]],
    upward: bool,
    expanded: set[str],
) -> None:
    for position, (key, attribute) in enumerate(children):
        last = position == len(children) - 1
        node = nodes[key]
        text = f"{attribute} → {_label(node)}" if upward else f"{_label(node)}  (its {attribute})"
        again = key in expanded
        lines.append(pad + ("└── " if last else "├── ") + text + ("  (see above)" if again else ""))
        if not again:
            expanded.add(key)
            inner = pad + ("    " if last else "│   ")
            _branch(lines, inner, links.get(key, []), nodes, links, upward, expanded)


def _label(node: dict[str, Any]) -> str:
    parts = [node["handle"]]
    if node.get("template"):
        name = node["template"].rsplit("/", 1)[-1]
        version = node.get("templateVersion")
        parts.append(f"[{name}{f' v{version}' if version else ''}]")
    if node.get("location") == "remote":
        parts.append("(remote)")
    if node.get("error"):
        parts.append(f"(error {node['error']['responseCode']}: {node['error']['message']})")
    return "  ".join(parts)
