"""Serving the HTTP application inside the node's own process and event loop, with uvicorn
(the choice and its measurements: docs/http-api.md, "Choice of server").

:class:`HTTPServer` binds its socket itself (so an ephemeral port is known at once), runs
``uvicorn.Server.serve`` as a task of the running loop, and never touches signal handlers:
the process that embeds it (``idnode serve``) owns SIGINT/SIGTERM and calls :meth:`close`.
With ``certfile``/``keyfile`` it serves HTTPS.

Slow clients: uvicorn bounds only the idle time between requests. :class:`_GuardedProtocol`
adds two deadlines per request: the request line and headers must arrive within
``head_timeout`` seconds of the connection (or of the request's first byte on a kept-alive
one), the body within ``body_timeout`` of the headers; a client that misses one is
disconnected (a handler waiting for the body then sees ``http.disconnect``). So a slowloris
client holds a connection slot for seconds, not forever.

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
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from idnode.http.asgi import ASGIApp

__all__ = ["HTTPServer"]

log = logging.getLogger(__name__)

#: Connections served at once; beyond it uvicorn answers 503.
MAX_CONNECTIONS = 1000
#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE = 5
#: Seconds :meth:`HTTPServer.close` waits for requests in progress.
GRACEFUL_SHUTDOWN = 3
#: Seconds a client has to send a request's line and headers, then its body.
HEAD_TIMEOUT = 10.0
BODY_TIMEOUT = 60.0
#: Seconds between two checks of the TLS files for a change.
TLS_WATCH = 5.0


class _GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head and body deadlines (module docstring)."""

    head_timeout = HEAD_TIMEOUT
    body_timeout = BODY_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm(self.head_timeout)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info("closing a slow HTTP client %s", self.client)
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a kept-alive connection's next request
            self._arm(self.head_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


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
        protocol = type(
            "GuardedProtocol",
            (_GuardedProtocol,),
            {"head_timeout": head_timeout, "body_timeout": body_timeout},
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
