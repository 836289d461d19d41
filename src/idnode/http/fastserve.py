"""Answers from the HTTP response cache written by the protocol, before any ASGI cycle.

:class:`FastProtocol` is the server's httptools protocol
(:class:`~idnode.http.guard.GuardedProtocol`, itself uvicorn's). When a request's headers
are complete and it is a ``GET`` or ``HEAD`` whose key
(:func:`~idnode.http.respcache.request_key`) finds a current answer in the application's
:class:`~idnode.http.respcache.HTTPCache`, it writes that answer's bytes to the transport
at once: the status line, uvicorn's default headers (``date``), the headers and body the
application sent when the answer was made (``Expires`` made again), and ``connection: close``
where uvicorn would add it. No scope, task or ASGI message is made. A request that misses
is answered the same way when the cache can have the application's answer made at once
(:meth:`~idnode.http.respcache.HTTPCache.answer_miss`: on SQLite, anonymous API resolutions
of plain records and the proxy's plain redirects, :mod:`idnode.http.fastmiss`), which it
keeps. Everything else goes
uvicorn's way unchanged, and so does a request that could be answered from the cache when:

* an ASGI cycle is still running on the connection (pipelined requests are answered in
  order: the cached answer waits its turn in uvicorn's queue and the application's cache
  wrapper answers it);
* the transport's writing is paused (flow control), or the server is at its connection or
  task limit (uvicorn answers 503);
* the request target is not a path (``*``, an absolute URL) or has a fragment; the request
  has a body, ``Expect``, ``Upgrade``, ``Authorization`` or ``Cookie`` (no key).

Keep-alive follows uvicorn: an HTTP/1.0 request, or one with ``Connection: close``, is
answered with ``connection: close`` and the connection closed; pipelined requests behind it
are not answered. The keep-alive timer is armed after the read that was answered, the
request counts in the server's ``total_requests``, in the access log when one is configured,
in ``/metrics`` (route and status, with its duration) and in the resolution statistics and
the cache's hits (:meth:`~idnode.http.respcache.HTTPCache.lookup`).
"""

from __future__ import annotations

import time
import urllib.parse

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from idnode.http.guard import GuardedProtocol
from idnode.http.respcache import CacheSlot, HTTPCache, request_key

__all__ = ["FastProtocol"]


class FastProtocol(GuardedProtocol):
    """The protocol answering cache hits itself (module docstring)."""

    #: Set per server (:class:`~idnode.http.server.HTTPServer`).
    cache_slot = CacheSlot()

    _fast = False  # the request being parsed was answered from the cache
    _answered = False  # a request was answered from the cache in the current read

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._answered:
            self._answered = False
            cycle = self.cycle
            if (
                self.timeout_keep_alive_task is None
                and (cycle is None or cycle.response_complete)
                and not self.transport.is_closing()
            ):
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )

    def on_message_begin(self) -> None:
        # The ASGI scope is made only for a request that goes uvicorn's way
        # (on_headers_complete); a cached answer needs the target and the headers.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self._in_head = True
        self._fast = False

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self.transport.is_closing():  # after an answer that closed: nothing more is answered
            self._fast = True
            self._disarm()
            return
        cache = self.cache_slot.cache
        if cache is not None and self._answer_from(cache):
            self._fast = True
            self._disarm()
            return
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        HttpToolsProtocol.on_message_begin(self)  # the scope, as uvicorn makes it
        self.url, self.expect_100_continue = url, expect
        self.headers.extend(headers)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._fast:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._fast:
            self._fast = False
            return
        super().on_message_complete()

    def _answer_from(self, cache: HTTPCache) -> bool:
        """Write the cached answer to the request just parsed; False (nothing written) when it
        must go uvicorn's way."""
        parser = self.parser
        method = parser.get_method()
        if method != b"GET" and method != b"HEAD":
            return False
        cycle = self.cycle
        if (cycle is not None and not cycle.response_complete) or self.flow.write_paused:
            return False
        limit = self.limit_concurrency
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            return False
        url = self.url
        if url[:1] != b"/" or b"#" in url or parser.should_upgrade():
            return False
        path, _, query = url.partition(b"?")
        key = request_key(method, path, query, self.headers)
        if key is None:
            return False
        started = time.perf_counter()
        entry = cache.lookup(key)
        if entry is None:
            entry = cache.answer_miss(key, method, path, query, self.headers)
            if entry is None:
                return False
        version = parser.get_http_version()
        keep = version != "1.0" and parser.should_keep_alive()
        slot = self.cache_slot
        slot.answered += 1
        self.server_state.total_requests += 1
        self._answered = True
        defaults = slot.default_lines(self.server_state.default_headers)
        data = cache.wire(entry, STATUS_LINE[entry.status], defaults, keep)
        metrics = cache.dispatcher.metrics
        if metrics is not None:
            metrics.http(entry.route, entry.status, time.perf_counter() - started)
        self.transport.write(data)
        if self.access_log:
            self._log_access(method, path, query, version, entry.status)
        if not keep:
            self.transport.close()
        return True

    def _log_access(
        self, method: bytes, path: bytes, query: bytes, version: str, status: int
    ) -> None:
        """The line uvicorn logs for a request."""
        text = path.decode("ascii", "replace")
        if "%" in text:
            text = urllib.parse.unquote(text)
        target = urllib.parse.quote(self.root_path + text)
        if query:
            target += "?" + query.decode("ascii", "replace")
        client = f"{self.client[0]}:{self.client[1]}" if self.client else ""
        self.access_logger.info(
            '%s - "%s %s HTTP/%s" %d', client, method.decode("ascii"), target, version, status
        )
