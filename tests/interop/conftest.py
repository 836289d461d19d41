"""Fixtures of the interop tests: a real node serving its JSON API over **HTTPS** with a
self-signed certificate made here, for unmodified client libraries from PyPI (pyhandle).

* ``https_node``: module-scoped :class:`HttpsNode`, a :class:`~tests.server.nodeutil.RunningNode`
  (demo prefix 88.118.8, see :mod:`tests.server.nodeutil`) whose HTTP listener speaks TLS with
  a certificate for ``127.0.0.1`` (CN and SAN), plus what a client needs: the base URL, the
  certificate file to trust, the admin username ``300:0.NA/88.118.8`` and its password.
* :meth:`HttpsNode.native`: the node's values of a handle read back over the **native**
  protocol (:class:`idnode.client.HandleClient`), to check what an HTTP client wrote.
* ``traffic`` (autouse): a :class:`Traffic` recorder of every request the ``requests`` library sends
  during a test (method, URL, headers, body, status), so tests can check what a client library
  put on the wire (and what it did *not* send); it can run a callback just before a given
  request, and it closes every connection and session at the end (no keep-alive socket
  outlives a test).

Every test fails if the node logged an internal error (``no_internal_errors``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from idnode.errors import HandleNotFound
from idnode.protocol.values import HandleValue
from idnode.server.config import NodeConfig
from tests.server.nodeutil import (
    PREFIX,
    PREFIX_HANDLE,
    RunningNode,
    create_node_dir,
    no_internal_errors,
    running_node,
)
from tests.tlsutil import make_certificate

__all__ = [
    "PREFIX",
    "PREFIX_HANDLE",
    "Exchange",
    "HttpsNode",
    "Traffic",
    "make_certificate",
    "no_internal_errors",
]

HOST = "127.0.0.1"

# pyhandle 1.5.0's clientcredentials.py and handleexceptions.py contain invalid string escapes
# ('\*', '\s'). Compiling them warns (DeprecationWarning on 3.11, SyntaxWarning from 3.12),
# which `filterwarnings = error` turns into a SyntaxError at collection whenever no cached
# bytecode exists (PYTHONDONTWRITEBYTECODE, a pycache prefix, a --no-compile install). Import
# them once here with exactly that warning ignored; the test modules then get them from
# sys.modules.
with warnings.catch_warnings():
    for _category in (DeprecationWarning, SyntaxWarning):
        warnings.filterwarnings("ignore", "invalid escape sequence", _category)
    import pyhandle.clientcredentials
    import pyhandle.handleexceptions  # noqa: F401


@dataclass(frozen=True)
class HttpsNode:
    """A running node serving HTTPS, and the settings a client library needs for it."""

    running: RunningNode
    #: The self-signed certificate of the HTTPS listener (what ``HTTPS_verify`` points at).
    cert: Path

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>``: pyhandle's ``handle_server_url``."""
        return f"https://{HOST}:{self.running.node.http_port}"

    @property
    def username(self) -> str:
        """The bootstrap admin ``300:0.NA/88.118.8`` (HS_SECKEY; a server admin)."""
        return f"300:{PREFIX_HANDLE}"

    @property
    def password(self) -> str:
        return self.running.admin_secret.decode("ascii")

    def native(self, handle: str) -> tuple[HandleValue, ...] | None:
        """The values of ``handle`` resolved over the native protocol (authoritative, as the
        bootstrap admin, so non-public values are included); None if the handle is not found."""

        async def go() -> tuple[HandleValue, ...] | None:
            client = self.running.client(self.running.secret_credentials, tcp=True)
            try:
                return await client.resolve(handle, authoritative=True)
            except HandleNotFound:
                return None

        return asyncio.run(go())


@dataclass(frozen=True)
class Exchange:
    """One request sent through ``requests``, and the status and body of its answer."""

    method: str
    url: str
    headers: dict[str, str]
    body: str | bytes | None
    status: int
    answer: bytes

    @property
    def path_and_query(self) -> str:
        """The URL without ``https://host:port``."""
        return "/" + self.url.split("/", 3)[3]


@dataclass
class Traffic:
    """What ``requests`` sent during one test (see the ``traffic`` fixture)."""

    exchanges: list[Exchange] = field(default_factory=list)
    sessions: list[requests.Session] = field(default_factory=list)
    #: method → callback run once, just before the next request with that method is sent.
    before: dict[str, Callable[[], None]] = field(default_factory=dict)

    @property
    def requests(self) -> list[tuple[str, str]]:
        """``(method, path and query)`` of every request, in order."""
        return [(e.method, e.path_and_query) for e in self.exchanges]

    @property
    def methods(self) -> list[str]:
        return [e.method for e in self.exchanges]

    def last(self, method: str) -> Exchange:
        return next(e for e in reversed(self.exchanges) if e.method == method)

    def clear(self) -> None:
        self.exchanges.clear()


@pytest.fixture(autouse=True)
def traffic(monkeypatch: pytest.MonkeyPatch) -> Iterator[Traffic]:
    """Records every request of ``requests.Session`` (which pyhandle uses for everything)
    during the test, and closes the sessions' connections afterwards. Autouse, so that no test
    here leaves a keep-alive connection to the module's node open."""
    recorded = Traffic()
    original = requests.Session.request

    def request(
        session: requests.Session, method: str | bytes, url: str | bytes, *args: Any, **kw: Any
    ) -> requests.Response:
        if session not in recorded.sessions:
            recorded.sessions.append(session)
        method = method.decode() if isinstance(method, bytes) else method
        callback = recorded.before.pop(method.upper(), None)
        if callback is not None:
            callback()
        response = original(session, method, url, *args, **kw)
        recorded.exchanges.append(
            Exchange(
                method.upper(),
                url.decode() if isinstance(url, bytes) else url,
                dict(kw.get("headers") or {}),
                kw.get("data"),
                response.status_code,
                response.content,
            )
        )
        return response

    monkeypatch.setattr(requests.Session, "request", request)
    try:
        yield recorded
    finally:
        # urllib3 2 closes a pool's connections only when the pool is garbage-collected
        # (Session.close just forgets it), and a response still referenced, e.g. by an exception
        # pyhandle raised (kept in a reference cycle), keeps its pool alive. An idle TLS
        # connection left open delays the node's shutdown and leaks its transport: close every
        # pool explicitly.
        for session in recorded.sessions:
            for adapter in session.adapters.values():
                if isinstance(adapter, requests.adapters.HTTPAdapter):
                    pools = adapter.poolmanager.pools
                    for key in list(pools.keys()):
                        pools[key].close()
            session.close()


@pytest.fixture(scope="module")
def https_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsNode]:
    """A node for 88.118.8 (demo handles) on ephemeral ports, its HTTP interface on TLS."""
    directory = tmp_path_factory.mktemp("interop")
    create_node_dir(directory)
    cert, key = make_certificate(directory)
    config_path = directory / "idnode.toml"
    config = NodeConfig.load(config_path)
    config = dataclasses.replace(config, tls_cert=cert.name, tls_key=key.name)
    config_path.write_text(config.dump(), encoding="utf-8")
    with running_node(directory) as running:
        assert running.node.http_port is not None
        yield HttpsNode(running, cert)


_ = no_internal_errors  # re-exported: the autouse fixture applies to every test here
