"""uvicorn's httptools protocol with deadlines for slow clients.

uvicorn bounds only the idle time between requests. :class:`GuardedProtocol` adds two
deadlines per request: the request line and headers must arrive within ``head_timeout``
seconds of the connection (or of the request's first bytes on a kept-alive one), the body
within ``body_timeout`` of the headers; a client that misses one is disconnected (a handler
waiting for the body then sees ``http.disconnect``). So a slowloris client holds a connection
slot for seconds, not forever.

A request that arrives whole in one read costs no timer: the head deadline of a kept-alive
connection's next request is armed only when a read ends inside its line or headers.
"""

from __future__ import annotations

import asyncio
import logging

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["BODY_TIMEOUT", "HEAD_TIMEOUT", "GuardedProtocol"]

log = logging.getLogger(__name__)

#: Seconds a client has to send a request's line and headers, then its body.
HEAD_TIMEOUT = 10.0
BODY_TIMEOUT = 60.0


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head and body deadlines (module docstring)."""

    head_timeout = HEAD_TIMEOUT
    body_timeout = BODY_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = False  # between a request's first byte and the end of its headers
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

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head and self._deadline is None and not self.transport.is_closing():
            self._arm(self.head_timeout)  # a kept-alive connection's next request, incomplete

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()
        self._arm(self.body_timeout)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
