"""Fixtures of the HTTP tests: a real node (``tests.server.nodeutil``) serving HTTP on an
ephemeral port, and clients for it.

* ``node``: module-scoped :class:`~tests.server.nodeutil.RunningNode` (demo prefix 88.118.8);
  its HTTP app also runs **in process** through :class:`InProcess` (httpx's ASGITransport on
  the node's own event loop), and over 127.0.0.1 with :func:`live_client`.
* ``api``: an :class:`InProcess` client; ``users``: the identities of
  :func:`~tests.server.nodeutil.add_identities`.
* :func:`raw_asgi`: one request with a byte-exact path (httpx normalises ``..``).

Every test fails if the node logged an internal error (``no_internal_errors``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from idnode.http.asgi import ASGIApp
from tests.server.nodeutil import (
    PREFIX,
    PREFIX_HANDLE,
    RunningNode,
    Users,
    add_identities,
    create_node_dir,
    no_internal_errors,
    running_node,
)

__all__ = [
    "PREFIX",
    "PREFIX_HANDLE",
    "InProcess",
    "RawResponse",
    "basic",
    "live_client",
    "no_internal_errors",
    "raw_asgi",
]

TIMEOUT = 10.0


def basic(identity: str, secret: bytes | str, *, encode: bool = True) -> dict[str, str]:
    """An ``Authorization: Basic`` header for ``index:handle`` (percent-encoded as pyhandle
    does unless ``encode`` is false) and the raw secret."""
    user = quote(identity, safe="") if encode else identity
    raw = user.encode() + b":" + (secret.encode() if isinstance(secret, str) else secret)
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


class InProcess:
    """Sync requests to the node's HTTP app through httpx.ASGITransport, run on the node's
    loop (where its store lives)."""

    def __init__(self, running: RunningNode, *, scheme: str = "http") -> None:
        self.running = running
        self.app: ASGIApp = running.node.http_app()
        self.base_url = f"{scheme}://idnode.test"

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            app: Any = self.app
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
            async with httpx.AsyncClient(transport=transport, base_url=self.base_url) as c:
                return await c.request(method, url, **kwargs)

        return self.running.call(go(), timeout=TIMEOUT)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def asgi_scope(
    method: str, raw_path: bytes, query: bytes, headers: list[tuple[bytes, bytes]]
) -> dict[str, Any]:
    """The ASGI scope of an HTTP/1.1 request for exactly ``raw_path`` (``path`` is its
    percent-decoded form, as an ASGI server gives it)."""
    from urllib.parse import unquote_to_bytes

    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote_to_bytes(raw_path).decode("utf-8", "replace"),
        "raw_path": raw_path,
        "query_string": query,
        "headers": headers,
        "client": ("127.0.0.1", 40001),
        "server": ("idnode.test", 80),
        "root_path": "",
    }


def raw_asgi(
    running: RunningNode,
    app: ASGIApp,
    method: str,
    raw_path: bytes,
    *,
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
) -> RawResponse:
    """One request with exactly ``raw_path`` (``path`` is its percent-decoded form, as an
    ASGI server gives it), answered by ``app`` on the node's loop."""
    scope = asgi_scope(method, raw_path, query, headers or [])
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        await app(scope, receive, send)

    running.call(run(), timeout=TIMEOUT)
    start = sent[0]
    out_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return RawResponse(start["status"], out_headers, b"".join(m.get("body", b"") for m in sent[1:]))


def live_client(running: RunningNode, **kwargs: Any) -> httpx.Client:
    """An httpx client for the node's real HTTP listener on 127.0.0.1."""
    assert running.node.http_port is not None
    base = f"http://{running.host}:{running.node.http_port}"
    return httpx.Client(base_url=base, timeout=TIMEOUT, **kwargs)


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("httpnode")
    create_node_dir(directory)
    return directory


@pytest.fixture(scope="module")
def node(node_dir: Path) -> Iterator[RunningNode]:
    """A started node serving 88.118.8 (demo handles) over UDP, TCP and HTTP, all on
    ephemeral ports."""
    with running_node(node_dir) as running:
        yield running


@pytest.fixture(scope="module")
def users(node: RunningNode) -> Users:
    return add_identities(node)


@pytest.fixture(scope="module")
def api(node: RunningNode) -> InProcess:
    return InProcess(node)


@pytest.fixture(scope="module")
def admin(node: RunningNode) -> dict[str, str]:
    """Basic credentials of the bootstrap admin 300:0.NA/88.118.8 (a server admin)."""
    return basic(f"300:{PREFIX_HANDLE}", node.admin_secret)


_ = no_internal_errors  # re-exported: the autouse fixture applies to every test here
