"""The response cache for ``GET /api/handles/<handle>``: whole HTTP answers (status, headers,
body) to anonymous requests, under the rules of :mod:`idnode.server.respcache`.

A request qualifies when it is a GET or HEAD of ``/api/handles/<handle>`` without
``Authorization`` or ``Cookie`` headers. The key is the method, the raw path, the query string
and every header but ``user-agent`` and ``connection`` (``accept`` and ``host`` may shape an
answer). The answer is kept when the dispatcher resolved exactly one record on the way and
marked the resolution cacheable (anonymous, not an instance of a template: see
:class:`~idnode.server.respcache.Note`) and the status is 200; its counters were noted before
that read, so a write committed since makes the entry stale, as for native responses. The
browser proxy is not cached: a page may depend on more than one record.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from idnode.http.asgi import ASGIApp, Receive, Scope, Send
from idnode.server.dispatch import Dispatcher
from idnode.server.respcache import NOTE, Note

__all__ = ["cached_api"]

_PATH = "/api/handles/"
_IGNORED = frozenset({b"user-agent", b"connection"})
_PRIVATE = frozenset({b"authorization", b"cookie"})


class _Answer:
    __slots__ = ("body", "handle", "headers", "size", "slot", "stamp", "status")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        note: Note,
        stamp: tuple[int, int],
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.handle = note.handle
        self.slot = note.slot
        self.stamp = stamp
        self.size = len(body) + sum(len(k) + len(v) for k, v in headers)


def _key(scope: Scope) -> bytes | None:
    if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
        return None
    path: str = scope["path"]
    if not path.startswith(_PATH) or len(path) == len(_PATH):
        return None
    parts = [scope["method"].encode(), scope.get("raw_path") or path.encode("utf-8")]
    parts.append(scope.get("query_string", b""))
    for name, value in sorted(scope["headers"]):
        if name in _PRIVATE:
            return None
        if name not in _IGNORED:
            parts += [name, value]
    return b"\0".join(parts)


def cached_api(app: ASGIApp, dispatcher: Dispatcher, *, max_entries: int = 10_000) -> ASGIApp:
    """``app`` with the answers of ``GET /api/handles/<handle>`` kept in a cache checked
    against the store's change counters (the dispatcher's :class:`ResponseCache`'s); a
    dispatcher without a response cache gets ``app`` unchanged."""
    cache = dispatcher.respcache
    if cache is None:
        return app
    generations = cache.generations
    entries: OrderedDict[bytes, _Answer] = OrderedDict()
    held = [0]  # bytes of the entries

    def drop(key: bytes) -> None:
        held[0] -= entries.pop(key).size + len(key)

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        key = _key(scope)
        if key is None:
            await app(scope, receive, send)
            return
        entry = entries.get(key)
        if entry is not None:
            if generations.current(entry.slot, entry.stamp):
                entries.move_to_end(key)
                cache.hits += 1
                dispatcher.counter.resolved(entry.handle)
                await send(
                    {
                        "type": "http.response.start",
                        "status": entry.status,
                        "headers": entry.headers,
                    }
                )
                await send({"type": "http.response.body", "body": entry.body})
                return
            drop(key)
            cache.stale += 1
        cache.misses += 1
        note = Note()
        token = NOTE.set(note)
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
            await send(message)

        try:
            await app(scope, receive, capture)
        finally:
            NOTE.reset(token)
        stamp = note.stamp
        if not note.cacheable or note.reads != 1 or stamp is None or start.get("status") != 200:
            return
        headers: list[tuple[bytes, bytes]] = list(start.get("headers", []))
        answer = _Answer(200, headers, b"".join(chunks), note, stamp)
        if key in entries:
            drop(key)
        entries[key] = answer
        held[0] += answer.size + len(key)
        while len(entries) > max_entries or held[0] > cache.max_bytes // 4:
            drop(next(iter(entries)))

    return wrapper
