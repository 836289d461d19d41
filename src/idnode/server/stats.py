"""Statistics per prefix per day, and a node reporting its prefixes and counts to its parent.

Theory of operation
-------------------
**Resolutions** are counted on the hot path by :class:`ResolutionCounter`: the dispatcher calls
:meth:`ResolutionCounter.resolved` once per successful resolution (over UDP, TCP and HTTP
alike, as they all go through :meth:`~idnode.server.dispatch.Dispatcher.execute`), which is one
dict increment keyed by (prefix as written, UTC day number): no lock (everything runs on the
event loop), no I/O, no allocation beyond the key tuple. A node answering resolutions for
others (a recursive node) counts those too, under their prefixes.

**Registrations** are not counted on the write path at all: every write already appends to
the transaction log, and a registration is a CREATE entry there (native creates, the batch
API and ``idnode import`` alike; a create that overwrites a record is one too, and so are the
creates a mirror applies from its primary). The flusher has the database count the CREATE
entries after the position the statistics reached, per prefix and day, a page of 50,000
entries at a time (``HandleStore.registrations``): after ``idnode import`` of millions of
identifiers the node catches up in SQL, not by reading every entry on the event loop.

**The flusher** (:class:`StatsFlusher`) runs every ``stats_interval`` seconds (default 10)
and at shutdown: it takes the counter's dict (swapping in an empty one), has the database
count the registrations in the log after ``HandleStore.stats_position`` and adds both to the
``stats_daily`` table with ``HandleStore.add_stats``, which moves the log position in the
same transaction. So a restart neither loses what was flushed nor counts a registration
twice; resolutions counted since the last flush are lost only if the process dies without
closing (at most one interval's worth). A failed flush gives the taken counts back to the
counter.

**Reporting** (:class:`Reporter`, ``[report]`` in the configuration): every ``interval``
seconds a node POSTs to ``<parent>/api/report`` a JSON document (:func:`build_report`)::

    {"homed": ["88.118.8"],
     "delegated": [{"prefix": "88.118.8.1", "sites": [[{"address": "10.0.0.5", "port": 2641,
                                                        "httpPort": 8000}]]}],
     "counts": [{"prefix": "88.118.8", "day": "2026-03-02", "resolutions": 1200,
                 "registrations": 35}]}

``counts`` are the node's totals of its homed prefixes for every day since the day before
its last successful report (all days on the first report after start): totals, not
increments, so the parent replaces what it holds and a report repeated after a lost answer
changes nothing. It authenticates as ``identity`` (``index:handle``) with the ``Authorization:
Handle`` scheme (a session and an HS_PUBKEY answer signed with the node's server key:
``alg="SHA256"`` with RSA or DSA, ``alg="SM3"`` with SM2), or,
with ``secret_file``, with HTTP Basic and that secret (an HS_SECKEY). Nothing is ever sent to
an address other than the configured ``parent``.

**The parent** (:func:`accept_report`) takes a report from an identity on the prefix handle
of a prefix it delegated: ``0.NA/<p>`` held in its store, with ``<p>`` derived from a prefix
homed there. Every prefix the report lists (homed, delegated, counted) must be ``<p>`` or
below it. The parent keeps the last report and the counts per child
(``HandleStore.put_child_report``), shown by ``GET /api/stats?children=1``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from idnode.crypto.sm2 import Sm2PrivateKey
from idnode.errors import InsufficientPermissions, InvalidValue
from idnode.protocol import auth
from idnode.protocol.types.hs_pubkey import PrivateKey
from idnode.protocol.types.hs_site import sites_in
from idnode.server.authz import Identity
from idnode.store.base import HandleStore, handle_key
from idnode.store.stats import DayCount, day_of, merge_counts, valid_day
from idnode.store.txnlog import now_ms

__all__ = [
    "Reporter",
    "ResolutionCounter",
    "StatsFlusher",
    "accept_report",
    "build_report",
]

log = logging.getLogger(__name__)

_DAY_SECONDS = 86_400
#: Transaction-log entries counted per flush transaction (the database counts them).
_LOG_PAGE = 50_000
_NA = "0.NA/"


class ResolutionCounter:
    """Successful resolutions per (prefix as written, UTC day number), in memory.

    ``clock`` gives epoch seconds. Only the event loop's thread touches it."""

    __slots__ = ("_clock", "counts")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        #: (prefix, days since 1970-01-01 UTC) → resolutions not yet flushed.
        self.counts: dict[tuple[str, int], int] = {}

    def resolved(self, handle: str) -> None:
        """Count one resolution of ``handle`` (the hot path: one dict increment)."""
        key = (handle.partition("/")[0], int(self._clock()) // _DAY_SECONDS)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1

    def take(self) -> dict[tuple[str, int], int]:
        """The counts so far; the counter starts again from nothing."""
        taken, self.counts = self.counts, {}
        return taken

    def give_back(self, taken: Mapping[tuple[str, int], int]) -> None:
        """Add counts :meth:`take` returned back (their flush failed)."""
        counts = self.counts
        for key, n in taken.items():
            counts[key] = counts.get(key, 0) + n


class StatsFlusher:
    """Writes the counter and the log's registrations to the store (module docstring)."""

    def __init__(
        self,
        store: HandleStore,
        counter: ResolutionCounter,
        interval: float = 10.0,
        page: int = _LOG_PAGE,
    ) -> None:
        self.store = store
        self.counter = counter
        self.interval = interval
        self.page = page  # log entries counted per transaction
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()

    async def flush(self) -> None:
        """Add the resolutions counted since the last flush and the registrations logged
        after the statistics' position; raises the store's error (the counts are kept)."""
        async with self._lock:
            taken = self.counter.take()
            resolutions = [
                DayCount(prefix, day_of(day), resolutions=n) for (prefix, day), n in taken.items()
            ]
            try:
                while True:
                    position = await self.store.stats_position()
                    page = await self.store.registrations(position, self.page)
                    counts = merge_counts([*resolutions, *page.counts])
                    moved = (position, page.last)
                    if (counts or page.last != position) and not await self.store.add_stats(
                        counts, position=moved
                    ):
                        continue  # another flusher moved the position: read again
                    resolutions = []
                    if page.entries < self.page:
                        return
            except BaseException:
                if resolutions:
                    self.counter.give_back(taken)
                raise

    async def run(self) -> None:
        """Flush every ``interval`` seconds until :meth:`stop`, then once more."""
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)
            try:
                await self.flush()
            except Exception:
                log.exception("flushing the statistics failed")

    def stop(self) -> None:
        self._stop.set()


# -- reports: the child's side -------------------------------------------------------------


def _sites(values: tuple[Any, ...]) -> list[list[dict[str, Any]]]:
    """The servers of each HS_SITE value, as reports list them."""
    sites: list[list[dict[str, Any]]] = []
    for _value, site in sites_in(values):
        servers = []
        for server in site.servers:
            entry: dict[str, Any] = {"address": str(server.ip_address)}
            for interface in server.interfaces:
                if interface.protocol in (0, 1):  # UDP, TCP
                    entry.setdefault("port", interface.port)
                elif interface.protocol in (2, 3):  # HTTP, HTTPS
                    entry.setdefault("httpPort", interface.port)
            servers.append(entry)
        sites.append(servers)
    return sites


async def build_report(store: HandleStore, since: str | None) -> dict[str, Any]:
    """The report of this node (module docstring): homed prefixes, the prefixes it delegates
    with their sites, and the counts of its homed prefixes for the days from ``since`` (all
    days when None)."""
    homed = await store.homed_prefixes()
    delegated = []
    for prefix in homed:
        for handle in await store.list_derived_prefixes(prefix):
            derived = handle[len(_NA) :]
            if handle_key(derived) in {handle_key(h) for h in homed}:
                continue  # a prefix it hosts itself is homed, not delegated
            values = await store.get_handle(handle) or ()
            delegated.append({"prefix": derived, "sites": _sites(values)})
    keys = {handle_key(prefix) for prefix in homed}
    counts = [c for c in await store.stats(since=since) if handle_key(c.prefix) in keys]
    return {
        "homed": homed,
        "delegated": delegated,
        "counts": [c.to_json() for c in counts],
    }


class Reporter:
    """Sends :func:`build_report` to the parent every ``interval`` seconds (module docstring).

    ``secret`` (HTTP Basic) or, without one, ``key`` (the node's server key, ``Authorization:
    Handle``) authenticates ``identity``. ``flusher`` is flushed before each report so that it
    carries the latest counts."""

    def __init__(
        self,
        store: HandleStore,
        parent: str,
        identity: Identity,
        *,
        key: PrivateKey | None = None,
        secret: bytes | None = None,
        interval: float = 300.0,
        timeout: float = 10.0,
        flusher: StatsFlusher | None = None,
    ) -> None:
        if key is None and secret is None:
            raise ValueError("a report needs the server key or a secret")
        self.store = store
        self.parent = parent.rstrip("/")
        self.identity = identity
        self.key = key
        self.secret = secret
        self.interval = interval
        self.timeout = timeout
        self.flusher = flusher
        #: The day from which the next report sends counts (None: every day).
        self.since: str | None = None
        #: Reports the parent accepted.
        self.sent = 0
        self._stop = asyncio.Event()

    async def report(self) -> dict[str, Any]:
        """Flush, build and send one report; the parent's answer. Raises OSError (network),
        TimeoutError, or ValueError when the parent refuses it."""
        if self.flusher is not None:
            await self.flusher.flush()
        today = int(time.time()) // _DAY_SECONDS
        document = await build_report(self.store, self.since)
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        answer = await asyncio.to_thread(self._post, body)
        self.since = day_of(today - 1)  # totals of yesterday may still grow after midnight
        self.sent += 1
        return answer

    def _post(self, body: bytes) -> dict[str, Any]:
        """POST ``body`` to the parent's ``/api/report`` (blocking: runs in a thread)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        headers["Authorization"] = self._authorization()
        return self._request("POST", "/api/report", body, headers)

    def _authorization(self) -> str:
        user = quote(str(self.identity), safe="")
        if self.secret is not None:
            token = base64.b64encode(user.encode() + b":" + self.secret).decode("ascii")
            return f"Basic {token}"
        assert self.key is not None
        session = self._request("POST", "/api/sessions", b"", {"Accept": "application/json"})
        nonce = base64.b64decode(str(session["nonce"]))
        cnonce = os.urandom(16)
        # SHA-256 with RSA/DSA; SM3 with an SM2 key (the HTTP scheme's alg="SM3")
        sm3 = isinstance(self.key, Sm2PrivateKey)
        hash_name = auth.SM3_HASH_NAME if sm3 else "SHA-256"
        signature = auth.sign_data(self.key, hash_name, nonce + cnonce)
        fields = {
            "sessionId": str(session["sessionId"]),
            "id": user,
            "type": "HS_PUBKEY",
            "cnonce": base64.b64encode(cnonce).decode("ascii"),
            "alg": "SM3" if sm3 else "SHA256",
            "signature": base64.b64encode(signature).decode("ascii"),
        }
        return "Handle " + ", ".join(f'{name}="{value}"' for name, value in fields.items())

    def _request(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, Any]:
        request = urllib.request.Request(
            self.parent + path, data=body, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise ValueError(f"{method} {path}: HTTP {exc.code} {detail}") from exc
        if not isinstance(answer, dict):
            raise ValueError(f"{method} {path}: not a JSON object")
        return answer

    async def run(self) -> None:
        """Report every ``interval`` seconds (the first at once) until :meth:`stop`."""
        while not self._stop.is_set():
            try:
                await self.report()
            except (OSError, TimeoutError, ValueError) as exc:
                log.warning("reporting to %s failed: %s", self.parent, exc)
            except Exception:
                log.exception("reporting to %s failed", self.parent)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def stop(self) -> None:
        self._stop.set()


# -- reports: the parent's side ------------------------------------------------------------


def _under(prefix: str, root: str) -> bool:
    key, root_key = handle_key(prefix), handle_key(root)
    return key == root_key or key.startswith(root_key + ".")


def _prefix_list(document: Mapping[str, Any], name: str) -> list[str]:
    items = document.get(name, [])
    if not isinstance(items, list) or not all(isinstance(p, str) and p for p in items):
        raise InvalidValue(f"{name} must be a list of prefixes")
    return list(items)


def _counts(document: Mapping[str, Any]) -> list[DayCount]:
    items = document.get("counts", [])
    if not isinstance(items, list):
        raise InvalidValue("counts must be a list")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise InvalidValue("each count must be an object")
        prefix, day = item.get("prefix"), item.get("day")
        numbers = [item.get("resolutions", 0), item.get("registrations", 0)]
        if not isinstance(prefix, str) or not prefix or not isinstance(day, str):
            raise InvalidValue("each count needs a prefix and a day")
        if not valid_day(day):
            raise InvalidValue(f"bad day {day!r} (expected YYYY-MM-DD)")
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in numbers):
            raise InvalidValue("resolutions and registrations must be counts")
        out.append(DayCount(prefix, day, numbers[0], numbers[1]))
    return out


async def accept_report(
    store: HandleStore, identity: Identity, document: Any, received_ms: int | None = None
) -> int:
    """Keep the report ``document`` of the child authenticated as ``identity`` (module
    docstring); the number of counts kept. Raises InvalidValue for a malformed report or a
    prefix outside the child's, InsufficientPermissions when ``identity`` is not on the
    prefix handle of a prefix this node delegated (held here, below a prefix homed here,
    not homed here itself)."""
    if not isinstance(document, dict):
        raise InvalidValue("a report is a JSON object")
    handle = identity.handle
    if handle_key(handle[: len(_NA)]) != handle_key(_NA):
        raise InsufficientPermissions(f"{identity} is not on a prefix handle")
    child_prefix = handle[len(_NA) :]
    homed_here = await store.homed_prefixes()
    hosted = any(handle_key(p) == handle_key(child_prefix) for p in homed_here)
    below = any(_under(child_prefix, p) for p in homed_here)
    if hosted or not below or await store.get_handle(handle) is None:
        raise InsufficientPermissions(f"{child_prefix} is not a prefix this node delegated")
    homed = _prefix_list(document, "homed")
    raw_delegated = document.get("delegated", [])
    if not isinstance(raw_delegated, list) or not all(
        isinstance(d, dict) and isinstance(d.get("prefix"), str) for d in raw_delegated
    ):
        raise InvalidValue("delegated must be a list of objects with a prefix")
    counts = _counts(document)
    listed = [*homed, *(d["prefix"] for d in raw_delegated), *(c.prefix for c in counts)]
    outside = sorted({p for p in listed if not _under(p, child_prefix)})
    if outside:
        raise InvalidValue(f"prefixes outside {child_prefix}: {', '.join(outside)}")
    kept = {"homed": homed, "delegated": raw_delegated}
    text = json.dumps(kept, ensure_ascii=False, separators=(",", ":"))
    when = now_ms() if received_ms is None else received_ms
    await store.put_child_report(str(identity), text, merge_counts(counts), when)
    return len(counts)
