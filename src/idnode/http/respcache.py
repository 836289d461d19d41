"""The cache of whole HTTP answers (status, headers, body) to anonymous ``GET``/``HEAD``
requests, under the rules of :mod:`idnode.server.respcache`: the JSON API's
``GET /api/handles/<handle>`` and the browser proxy's pages (:mod:`idnode.http.proxy`).

One :class:`HTTPCache` per application serves both ways in: :func:`cached_api` (an ASGI
wrapper) answers from it and fills it, and the HTTP server's protocol
(:mod:`idnode.http.fastserve`) answers a hit straight from the parsed request, before any
ASGI cycle, and a miss too when the wrapper was given a ``make_now`` that makes the
application's answer at once (:mod:`idnode.http.fastmiss`), keeping it as the wrapper would.
The server finds the cache through the ``state`` of the ASGI scope: it puts a
:class:`CacheSlot` under :data:`SLOT_KEY` there, and the wrapper puts its cache into it.

Key: :func:`request_key` of the method, the raw path, the query string and every header but
``user-agent`` and ``connection`` (``accept``, ``accept-language`` and ``host`` may shape an
answer), computed alike from an ASGI scope and from the raw parts of a parsed request. A
request with ``Authorization`` or ``Cookie`` (an identity), or with a body or an unusual form
(``Content-Length``, ``Transfer-Encoding``, ``Expect``, ``Upgrade``), has no key.

What is kept: an answer with status 200 (the proxy: also 301, 302, 303, 307 and 308) with a
``content-length``, when every record read on the way was noted and marked cacheable by the
dispatcher (anonymous, not an instance of a template: see
:class:`~idnode.server.respcache.Note`) and the handler stands for the rest:
``/api/handles/<handle>`` answers from one record; any other handler must :func:`vouch` that
its answer depends on nothing but the key and the records it read (the browser proxy does,
for the resolutions of the handle and the aliases it followed). Each record's change counters
were noted before its read, so a write committed to any of them since makes the entry stale.
An ``Expires`` header the handler computed from TTLs is computed again for each hit
(:func:`vouch`'s ``expires``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any, NamedTuple

from idnode.http.asgi import ASGIApp, Receive, Scope, Send, http_date
from idnode.http.metrics import route_of
from idnode.server.dispatch import Dispatcher
from idnode.server.heap import Churn
from idnode.server.respcache import NOTE, Admission, Note

__all__ = [
    "SLOT_KEY",
    "CacheSlot",
    "CachedAnswer",
    "HTTPCache",
    "Made",
    "MakeNow",
    "cached_api",
    "request_key",
    "vouch",
]

_API = b"/api/handles/"
_IGNORED = frozenset({b"user-agent", b"connection"})
#: Headers that keep a request out of the cache: an identity, or a body or upgrade.
_UNCACHED = frozenset(
    {b"authorization", b"cookie", b"content-length", b"transfer-encoding", b"expect", b"upgrade"}
)
_KEPT_STATUS = frozenset({200, 301, 302, 303, 307, 308})
_EXPIRES = b"expires"

#: An answer made without the application (:attr:`HTTPCache.make_now`): status, headers (as
#: the application sends them) and body, the note of the records read for it, and what
#: :func:`vouch` would have been given (``reads`` -1 when not called, ``expires``).
Made = tuple[int, list[tuple[bytes, bytes]], bytes, Note, int, tuple[float, float] | None]
#: Makes the application's answer to a request that missed, without the application: from
#: the dispatcher and the request's method, raw path, query string and headers; None when
#: it cannot (then the application answers).
MakeNow = Callable[[Dispatcher, bytes, bytes, bytes, list[tuple[bytes, bytes]]], Made | None]

#: The key of the :class:`CacheSlot` in the ASGI scope's ``state``.
SLOT_KEY = "idnode.http_cache"


def request_key(
    method: bytes, raw_path: bytes, query: bytes, headers: Iterable[tuple[bytes, bytes]]
) -> bytes | None:
    """The cache key of a request (header names in lower case, as servers give them), or
    None when its answer may not come from the cache (module docstring)."""
    if method != b"GET" and method != b"HEAD":
        return None
    parts = [method, raw_path, query]
    for name, value in sorted(headers):
        if name in _UNCACHED:
            return None
        if name not in _IGNORED:
            parts += [name, value]
    return b"\0".join(parts)


def _scope_key(scope: Scope) -> bytes | None:
    if scope["type"] != "http":
        return None
    method: str = scope["method"]
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
    return request_key(method.encode(), raw_path, scope.get("query_string", b""), scope["headers"])


class _Page:
    """What a handler said about its answer (:func:`vouch`)."""

    __slots__ = ("expires", "reads")

    def __init__(self) -> None:
        self.reads = -1
        self.expires: tuple[float, float] | None = None


_PAGE: ContextVar[_Page | None] = ContextVar("idnode_http_page", default=None)


def vouch(reads: int, expires: tuple[float, float] | None = None) -> None:
    """Called by a handler while answering: its answer depends on nothing but the request's
    cache key and the ``reads`` records it resolved through the dispatcher (counted: a
    resolution answered elsewhere, by recursion, leaves one unnoted and the answer uncached).
    ``expires``: the answer's ``Expires`` header is ``(at, within)`` of
    :func:`idnode.http.proxy_common.expiry`, made again for each hit. The answer is kept only
    if the dispatcher also marked every read cacheable; without a cache this does nothing."""
    page = _PAGE.get()
    if page is not None:
        page.reads = reads
        page.expires = expires


class CachedAnswer(NamedTuple):
    """One kept answer: what the ASGI application sent, and its HTTP/1.1 serialisation
    after the status line and uvicorn's default headers (``date``), for the protocol to write
    as it is: ``before`` the ``Expires`` value made for the hit (empty without one), then
    ``after_keep`` or ``after_close`` (the rest, ``connection: close`` added), then the
    body. Made by :func:`answer_of`.

    The cache keeps it as one plain tuple of strings, bytes and numbers, ``reads`` spread at
    its end: the garbage collector stops tracking such a tuple at the first collection that
    looks at it, so full collections do not walk every entry. It would go on tracking an
    instance of this subclass, and a tuple holding another tuple until a later collection of
    an older generation (one level per collection: the young collection sees the outer tuple
    before the inner one)."""

    status: int
    headers: bytes
    """The headers the application sent: each name and each value followed by a NUL (which
    uvicorn refuses in both)."""
    body: bytes
    expires_at: float | None
    """With ``expires_within``, the ``Expires`` rule of :func:`vouch`, made again for each
    hit; None when there is none."""
    expires_within: float
    route: str
    before: bytes
    after_keep: bytes
    after_close: bytes
    size: int
    reads: tuple[str | int, ...]
    """Per record read: its handle, its slot and the slot's two counters when read, one
    after another."""


_READS = CachedAnswer._fields.index("reads")
_SIZE = CachedAnswer._fields.index("size")


def answer_of(
    status: int,
    headers: Iterable[tuple[bytes, bytes]],
    body: bytes,
    note: Note,
    expires: tuple[float, float] | None,
    route: str,
) -> CachedAnswer:
    """The :class:`CachedAnswer` of an answer the application sent."""
    sent: list[bytes] = []
    before: list[bytes] = []
    after: list[bytes] = []
    lines = before
    for name, value in headers:
        sent += (name, b"\0", value, b"\0")
        name = name.lower()
        if name == _EXPIRES and expires is not None and lines is before:
            before.append(b"expires: ")
            after.append(b"\r\n")
            lines = after
            continue
        lines.append(b"%s: %s\r\n" % (name, value))
    if lines is before:  # no Expires to make
        before, after = [], before
    head = b"".join(before)
    rest = b"".join(after)
    at, within = (None, 0.0) if expires is None else expires
    return CachedAnswer(
        status,
        b"".join(sent),
        body,
        at,
        within,
        route,
        head,
        rest + b"\r\n",
        rest + b"connection: close\r\n\r\n",
        len(body) + len(head) + 3 * len(rest) + 200,
        tuple(n for handle, slot, stamp in note.seen for n in (handle, slot, *stamp)),
    )


class HTTPCache:
    """The kept answers of one application, bounded by entries (``max_entries``, by default
    the response cache's) and bytes (half the response cache's), least recently used dropped
    first, admitted once full as the response cache admits (a key's second miss); validated
    against the dispatcher's response cache's counters, whose hit, miss and stale figures it
    adds to."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        max_entries: int | None = None,
        make_now: MakeNow | None = None,
    ) -> None:
        cache = dispatcher.respcache
        if cache is None:
            raise ValueError("the dispatcher has no response cache")
        self.dispatcher = dispatcher
        self.counters = cache
        self.generations = cache.generations
        self.max_entries = cache.max_entries if max_entries is None else max_entries
        self.max_bytes = cache.max_bytes // 2
        # Plain tuples of CachedAnswer's fields (see CachedAnswer), made whole on a hit.
        self._entries: OrderedDict[bytes, tuple[Any, ...]] = OrderedDict()
        self._bytes = 0
        self.admission = Admission(self.max_entries)  # once full, as the native cache
        self.churn = Churn()
        self.make_now = make_now

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: bytes) -> CachedAnswer | None:
        """The current answer kept under ``key`` (a hit, counted), or None; a stale one is
        dropped (counted as stale; the miss is counted by :meth:`miss`)."""
        kept = self._entries.get(key)
        if kept is None:
            return None
        current = self.generations.current
        reads = kept[_READS:]
        for n in range(1, len(reads), 4):
            if not current(reads[n], (reads[n + 1], reads[n + 2])):
                self._drop(key)
                self.counters.stale += 1
                return None
        self._entries.move_to_end(key)
        self.counters.hits += 1
        counter = self.dispatcher.counter
        for n in range(0, len(reads), 4):
            counter.resolved(reads[n])
        return CachedAnswer._make((*kept[:_READS], reads))

    def miss(self) -> None:
        self.counters.misses += 1

    def answer_miss(
        self,
        key: bytes,
        method: bytes,
        path: bytes,
        query: bytes,
        headers: list[tuple[bytes, bytes]],
    ) -> CachedAnswer | None:
        """The answer to a request that missed (``key``; its raw parts), made at once by
        :attr:`make_now` as the application would make it, and kept as the application's
        cache wrapper would keep it; None (nothing counted) when it cannot be made so."""
        if self.make_now is None:
            return None
        made = self.make_now(self.dispatcher, method, path, query, headers)
        if made is None:
            return None
        self.miss()
        status, sent, body, note, reads, expires = made
        entry = answer_of(status, sent, body, note, expires, route_of(path.decode("latin-1")))
        if _keepable(status, sent, note, reads, expires, path) and self._admitted(key):
            self._keep(key, entry)
        return entry

    def expires(self, entry: CachedAnswer) -> bytes:
        """The ``Expires`` value of ``entry`` answered now."""
        assert entry.expires_at is not None
        return http_date(min(entry.expires_at, time.time() + entry.expires_within)).encode()

    def headers(self, entry: CachedAnswer) -> list[tuple[bytes, bytes]]:
        """``entry``'s headers as the application would send them now."""
        parts = entry.headers.split(b"\0")
        pairs = zip(parts[0::2], parts[1::2], strict=False)  # the last NUL leaves one more
        if entry.expires_at is None:
            return list(pairs)
        value = self.expires(entry)
        return [(k, value if k.lower() == _EXPIRES else v) for k, v in pairs]

    def wire(self, entry: CachedAnswer, status_line: bytes, defaults: bytes, keep: bool) -> bytes:
        """The bytes of ``entry`` on an HTTP/1.1 connection: ``status_line``, the server's
        ``defaults`` header lines, the kept headers, ``connection: close`` unless ``keep``,
        the body."""
        after = entry.after_keep if keep else entry.after_close
        if entry.expires_at is None:
            return b"".join((status_line, defaults, after, entry.body))
        return b"".join(
            (status_line, defaults, entry.before, self.expires(entry), after, entry.body)
        )

    def store(
        self,
        key: bytes,
        scope: Scope,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        note: Note,
        page: _Page,
    ) -> None:
        """Keep an answer the application just sent, if the rules allow (module docstring)."""
        raw: bytes = scope.get("raw_path") or b""
        if not _keepable(status, headers, note, page.reads, page.expires, raw):
            return
        if not self._admitted(key):  # before the entry is made: most misses are not admitted
            return
        self._keep(
            key, answer_of(status, headers, body, note, page.expires, route_of(scope["path"]))
        )

    def _admitted(self, key: bytes) -> bool:
        """Whether an answer under ``key`` may come in: room left, ``key`` kept already, or
        admitted (:class:`~idnode.server.respcache.Admission`)."""
        full = len(self._entries) >= self.max_entries or self._bytes >= self.max_bytes
        return not full or key in self._entries or self.admission.admit(key)

    def _keep(self, key: bytes, entry: CachedAnswer) -> None:
        """Keep ``entry`` under ``key`` (admitted), the least recently used dropped for it."""
        if entry.size > self.max_bytes // 16:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = (*entry[:_READS], *entry.reads)
        self._bytes += entry.size + len(key)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))
            self.churn.replaced()

    def _drop(self, key: bytes) -> None:
        self._bytes -= self._entries.pop(key)[_SIZE] + len(key)


def _keepable(
    status: int,
    headers: list[tuple[bytes, bytes]],
    note: Note,
    vouched: int,
    expires: tuple[float, float] | None,
    raw_path: bytes,
) -> bool:
    """Whether an answer to a request for ``raw_path`` may be kept (module docstring), its
    handler having vouched for ``vouched`` reads (-1: not called) and ``expires``
    (:func:`vouch`)."""
    if status not in _KEPT_STATUS or not note.cacheable:
        return False
    if vouched >= 0:
        if vouched != note.reads:
            return False
    elif status != 200 or note.reads != 1 or not raw_path.startswith(_API) or raw_path == _API:
        return False
    names = [name.lower() for name, _ in headers]
    if b"content-length" not in names or b"connection" in names:
        return False
    return b"transfer-encoding" not in names and (expires is None or _EXPIRES in names)


class CacheSlot:
    """Where an HTTP server learns its application's cache (module docstring), and the
    server's default header lines, made once per change."""

    __slots__ = ("answered", "cache", "defaults", "defaults_of")

    def __init__(self) -> None:
        self.cache: HTTPCache | None = None
        #: Requests the protocol answered from the cache itself.
        self.answered = 0
        self.defaults_of: object = None
        self.defaults = b""

    def default_lines(self, defaults: list[tuple[bytes, bytes]]) -> bytes:
        """uvicorn's default headers (``date``, changed once a second) as header lines."""
        if defaults is not self.defaults_of:
            self.defaults = b"".join(b"%s: %s\r\n" % (k.lower(), v) for k, v in defaults)
            self.defaults_of = defaults
        return self.defaults


def cached_api(
    app: ASGIApp,
    dispatcher: Dispatcher,
    *,
    max_entries: int | None = None,
    make_now: MakeNow | None = None,
) -> ASGIApp:
    """``app`` with its anonymous answers kept in an :class:`HTTPCache` checked against the
    store's change counters (the dispatcher's :class:`ResponseCache`'s); a dispatcher without
    a response cache gets ``app`` unchanged. ``max_entries``: by default the response
    cache's. ``make_now``: makes some of ``app``'s answers to requests that miss, for the
    server's protocol to write at once (:meth:`HTTPCache.answer_miss`)."""
    if dispatcher.respcache is None:
        return app
    cache = HTTPCache(dispatcher, max_entries=max_entries, make_now=make_now)

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        key = _scope_key(scope)
        if key is None:
            await app(scope, receive, send)
            return
        state = scope.get("state")
        if state is not None:
            slot = state.get(SLOT_KEY)
            if slot is not None and slot.cache is not cache:
                slot.cache = cache
        entry = cache.lookup(key)
        if entry is not None:
            headers = cache.headers(entry)
            await send({"type": "http.response.start", "status": entry.status, "headers": headers})
            await send({"type": "http.response.body", "body": entry.body})
            return
        cache.miss()
        note, page = Note(), _Page()
        note_token, page_token = NOTE.set(note), _PAGE.set(page)
        start: dict[str, Any] = {}
        chunks: list[bytes] | None = None

        async def capture(message: dict[str, Any]) -> None:
            nonlocal chunks
            if message["type"] == "http.response.start":
                start.update(message)
                if message["status"] in _KEPT_STATUS and note.cacheable:
                    chunks = []
            elif message["type"] == "http.response.body" and chunks is not None:
                chunks.append(bytes(message.get("body", b"")))
                if message.get("more_body"):
                    chunks = None  # streamed answers are not kept
            await send(message)

        try:
            await app(scope, receive, capture)
        finally:
            NOTE.reset(note_token)
            _PAGE.reset(page_token)
        if chunks is not None:
            headers = list(start.get("headers", []))
            cache.store(key, scope, start["status"], headers, b"".join(chunks), note, page)

    return wrapper
