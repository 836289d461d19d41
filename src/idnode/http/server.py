"""Serving the HTTP application inside the node's own process and event loop, with uvicorn
(the choice and its measurements: docs/http-api.md, "Choice of server").

:class:`HTTPServer` binds its socket itself (so an ephemeral port is known at once), runs
``uvicorn.Server.serve`` as a task of the running loop, and never touches signal handlers:
the process that embeds it (``idnode serve``) owns SIGINT/SIGTERM and calls :meth:`close`.
With ``certfile``/``keyfile`` it serves HTTPS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from idnode.http.asgi import ASGIApp

__all__ = ["HTTPServer"]

log = logging.getLogger(__name__)

#: Connections served at once; beyond it uvicorn answers 503.
MAX_CONNECTIONS = 1000
#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE = 5
#: Seconds :meth:`HTTPServer.close` waits for requests in progress.
GRACEFUL_SHUTDOWN = 3


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the embedding process handles signals


class HTTPServer:
    """One HTTP(S) listener for ``app``; :meth:`start`, then :meth:`close`."""

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        *,
        certfile: Path | None = None,
        keyfile: Path | None = None,
    ) -> None:
        self.config = uvicorn.Config(
            app,
            host=host,
            port=port,
            interface="asgi3",
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            limit_concurrency=MAX_CONNECTIONS,
            timeout_keep_alive=KEEP_ALIVE,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
            ssl_certfile=str(certfile) if certfile else None,
            ssl_keyfile=str(keyfile) if keyfile else None,
        )
        self._server = _EmbeddedServer(self.config)
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def tls(self) -> bool:
        return self.config.ssl_certfile is not None

    @property
    def port(self) -> int:
        if self._socket is None:
            raise RuntimeError("HTTP server not started")
        return int(self._socket.getsockname()[1])

    async def start(self) -> None:
        """Bind, load the TLS files (errors surface here) and start serving."""
        self.config.load()
        host = self.config.host
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        self._socket = socket.create_server((host, self.config.port), family=family)
        self._socket.setblocking(False)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError("HTTP server stopped while starting")
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        """Stop accepting, let requests in progress finish (bounded), release the socket."""
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(self._task, GRACEFUL_SHUTDOWN + 5)
        except TimeoutError:
            log.warning("HTTP server did not stop in time; cancelled")
        finally:
            self._task = None
            if self._socket is not None:
                self._socket.close()
