"""Serving the HTTP application inside the node's own process and event loop, with uvicorn
(the choice and its measurements: docs/http-api.md, "Choice of server").

:class:`HTTPServer` binds its socket itself (so an ephemeral port is known at once), runs
``uvicorn.Server.serve`` as a task of the running loop, and never touches signal handlers:
the process that embeds it (``idnode serve``) owns SIGINT/SIGTERM and calls :meth:`close`.
With ``certfile``/``keyfile`` it serves HTTPS.

Slow clients: uvicorn bounds only the idle time between requests; the protocol adds a
deadline for each request's head and one for its body (:mod:`idnode.http.guard`), so a
slowloris client holds a connection slot for seconds, not forever.

Cached answers: the protocol (:class:`~idnode.http.fastserve.FastProtocol`) answers a request
whose answer the application keeps in its HTTP cache (:mod:`idnode.http.respcache`) straight
from the parsed request, before any ASGI cycle; the server hands it the cache through a
:class:`~idnode.http.respcache.CacheSlot` in the lifespan state, which the application's cache
wrapper fills on its first request.

Certificate reload: :meth:`HTTPServer.reload_tls` loads the certificate and key files again
into the live TLS context; handshakes after it use the new certificate, connections already
open keep theirs. A watcher task does it when either file's modification time changes
(checked every ``tls_watch`` seconds), and ``idnode serve`` also does it on SIGHUP. A file
that fails to load leaves the old certificate in use and is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from idnode.http.asgi import ASGIApp
from idnode.http.fastserve import FastProtocol
from idnode.http.guard import BODY_TIMEOUT, HEAD_TIMEOUT
from idnode.http.respcache import SLOT_KEY, CacheSlot

__all__ = ["HTTPServer"]

log = logging.getLogger(__name__)

#: Connections served at once; beyond it uvicorn answers 503.
MAX_CONNECTIONS = 1000
#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE = 5
#: Seconds :meth:`HTTPServer.close` waits for requests in progress.
GRACEFUL_SHUTDOWN = 3
#: Seconds between two checks of the TLS files for a change.
TLS_WATCH = 5.0


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
        head_timeout: float = HEAD_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
        tls_watch: float = TLS_WATCH,
    ) -> None:
        #: Where the protocol finds the application's HTTP cache (module docstring).
        self.cache_slot = CacheSlot()
        protocol = type(
            "ServerProtocol",
            (FastProtocol,),
            {
                "head_timeout": head_timeout,
                "body_timeout": body_timeout,
                "cache_slot": self.cache_slot,
            },
        )
        self._tls_files = (certfile, keyfile) if certfile and keyfile else None
        self._tls_watch = tls_watch
        self._tls_stamp = self._stamp()
        self._watcher: asyncio.Task[None] | None = None
        self.config = uvicorn.Config(
            app,
            host=host,
            port=port,
            interface="asgi3",
            http=protocol,
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
        #: Bind with SO_REUSEPORT (several worker processes share the port).
        self.reuse_port = False
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
        self._socket = socket.create_server(
            (host, self.config.port), family=family, reuse_port=self.reuse_port
        )
        self._socket.setblocking(False)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError("HTTP server stopped while starting")
            await asyncio.sleep(0.005)
        self._server.lifespan.state[SLOT_KEY] = self.cache_slot
        if self._tls_files is not None:
            self._watcher = asyncio.create_task(self._watch_tls(), name="idnode-tls-watch")

    def _stamp(self) -> tuple[float, ...] | None:
        if self._tls_files is None:
            return None
        try:
            return tuple(path.stat().st_mtime for path in self._tls_files if path)
        except OSError:
            return None

    def reload_tls(self) -> bool:
        """Load the certificate and key files again into the serving TLS context. False (the
        old certificate stays, the error is logged) when they do not load."""
        context = self.config.ssl
        if self._tls_files is None or not isinstance(context, ssl.SSLContext):
            return False
        certfile, keyfile = self._tls_files
        try:
            context.load_cert_chain(str(certfile), str(keyfile))
        except (OSError, ssl.SSLError) as exc:
            log.error("TLS certificate not reloaded (the old one stays): %s", exc)
            return False
        log.info("TLS certificate reloaded from %s", certfile)
        return True

    async def _watch_tls(self) -> None:
        # A change is loaded once the files have stayed unchanged for one more interval, so a
        # certificate and key written one after the other are not loaded as a mismatched pair.
        seen = self._tls_stamp
        while True:
            await asyncio.sleep(self._tls_watch)
            stamp = self._stamp()
            if stamp is not None and stamp == seen and stamp != self._tls_stamp:
                self._tls_stamp = stamp
                self.reload_tls()
            seen = stamp

    async def close(self) -> None:
        """Stop accepting, let requests in progress finish (bounded), release the socket."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
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
