"""``idnode stats``: resolutions and registrations per prefix per day, from a node's
``GET /api/stats`` (server administrators; HTTP Basic with ``--as`` and ``--secret-file``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import click

from idnode.cli._common import get_json, main

DEFAULT_HTTP = "http://127.0.0.1:8000"


@main.command()
@click.option(
    "--http",
    "http_url",
    default=DEFAULT_HTTP,
    show_default=True,
    metavar="URL",
    help="The node's HTTP API.",
)
@click.option("--prefix", help="Only this prefix.")
@click.option("--from", "since", metavar="YYYY-MM-DD", help="From this UTC day on.")
@click.option("--to", "until", metavar="YYYY-MM-DD", help="Up to this UTC day.")
@click.option("--children", is_flag=True, help="What child nodes reported instead.")
@click.option(
    "--as",
    "identity",
    required=True,
    metavar="INDEX:HANDLE",
    help="A server administrator of the node.",
)
@click.option(
    "--secret-file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The identity's secret (HS_SECKEY).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait.")
def stats(
    http_url: str,
    prefix: str | None,
    since: str | None,
    until: str | None,
    children: bool,
    identity: str,
    secret_file: Path,
    as_json: bool,
    timeout: float,
) -> None:
    """Print the node's statistics: per prefix and UTC day, the resolutions it answered and
    the registrations made on it (or, with --children, what its child nodes reported)."""
    query = {k: v for k, v in (("prefix", prefix), ("from", since), ("to", until)) if v}
    if children:
        query["children"] = "1"
    url = f"{http_url.rstrip('/')}/api/stats?{urlencode(query)}"
    secret = secret_file.read_bytes().rstrip(b"\r\n")
    answer = get_json(url, base=http_url, timeout=timeout, basic=(identity, secret))
    if as_json:
        click.echo(json.dumps(answer, ensure_ascii=False, indent=2))
    elif children:
        for child in answer.get("children", []):
            homed = ", ".join(child.get("homed", []))
            click.echo(f"{child['child']}  homes {homed}  (last report {child['received']})")
            for item in child.get("delegated", []):
                click.echo(f"  delegates {item['prefix']}")
            _table(child.get("stats", []), indent="  ")
    else:
        _table(answer.get("stats", []))


def _table(rows: list[dict[str, Any]], indent: str = "") -> None:
    click.echo(f"{indent}{'day':<10}  {'prefix':<20} {'resolutions':>12} {'registrations':>14}")
    for row in rows:
        click.echo(
            f"{indent}{row['day']:<10}  {row['prefix']:<20} {row['resolutions']:>12}"
            f" {row['registrations']:>14}"
        )
