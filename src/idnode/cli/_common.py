"""What every command module shares: the ``main`` group, options and error handling."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import click

from idnode.errors import HandleError
from idnode.protocol.codes import ResponseCode

T = TypeVar("T")

DEFAULT_CONFIG = Path("var/idnode.toml")


def run_async(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except HandleError as exc:
        code = int(getattr(exc, "code", type(exc).response_code))
        if code in (ResponseCode.SERVICE_REFERRAL, ResponseCode.PREFIX_REFERRAL):
            raise click.ClickException(
                f"the server refers to another node (response code {code}); "
                "resolve with --root HOST:PORT to follow the hierarchy"
            ) from exc
        raise click.ClickException(f"{exc.message} (response code {code})") from exc
    except (TimeoutError, ConnectionError, OSError, EOFError) as exc:
        raise click.ClickException(f"cannot reach the server: {exc}") from exc


def host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


server_option = click.option(
    "--server",
    default="127.0.0.1:2641",
    show_default=True,
    help="The node to talk to, HOST:PORT.",
)


@click.group()
@click.version_option(package_name="idnode")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """idnode: an identifier resolution node speaking the Handle protocol."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def get_json(
    url: str, *, base: str, timeout: float, basic: tuple[str, bytes] | None = None
) -> dict[str, Any]:
    """GET ``url`` from the node's HTTP interface at ``base`` as JSON, with HTTP Basic for
    ``basic`` (identity ``index:handle``, secret) when given. An error answer or an
    unreachable node becomes a ClickException with the node's message."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if basic is not None:
        identity, secret = basic
        user = quote(identity, safe="").encode() + b":" + secret
        request.add_header("Authorization", "Basic " + base64.b64encode(user).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: dict[str, Any] = json.load(response)
            return body
    except urllib.error.HTTPError as exc:
        try:
            error = json.load(exc)
            detail = f"{error.get('message', '')} (response code {error.get('responseCode')})"
        except ValueError:
            detail = f"HTTP {exc.code}"
        raise click.ClickException(detail) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise click.ClickException(f"cannot reach {base}: {exc}") from exc
