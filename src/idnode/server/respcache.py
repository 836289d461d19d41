"""A cache of encoded resolution responses, checked against the store's change counters.

What is cached
--------------
The whole encoded response (envelope, header, body, empty credential) to an anonymous
resolution request answered from this node's store with RC_SUCCESS, keyed by the bytes of
the request that decide the response: the envelope's version bytes (the response version is
negotiated from them), the op flags, and the body (handle, index list, type list). A later
request with the same key gets a copy of those bytes with the fields that differ patched in:
request id, recursion count and expiration (echoed from the request) and the site info
serial (the node's current one). :func:`request_key` takes only requests whose response
carries nothing else of the request: op RESOLUTION, session id 0, sequence 0, an empty
credential, and neither CT (certified responses are signed over the request id) nor RD (the
digest covers the whole request); every other request goes the ordinary way.
``tests/server/test_respcache.py`` proves the cached bytes equal the dispatcher's for many
requests, including generated ones.

Permissions
-----------
Only responses to anonymous requests are stored, and only when the answer depends on the
record alone: the dispatcher marks a resolution cacheable (:meth:`Note.cacheable`) unless the
record is an instance of a template, whose visible attributes depend on grants held in
another record (the template). Such records, challenged requests and anything answered for an
identity are never stored, so a cached response is exactly what any anonymous requester is
shown. Referrals, recursive answers and errors are not stored either.

Invalidation
------------
Every store bumps shared change counters after each commit (:mod:`idnode.store.generations`):
a handle's slot for a write of that handle (create, modify, delete, bulk create, import,
replicated changes from a primary, through any transport), slot 0 for changes of homed
prefixes. Counters live in a memory-mapped file shared by every process using the same SQLite
file (or, for PostgreSQL, the same database from this host): several worker processes, an
``idnode import`` or ``idnode handle`` run against the file. A resolution notes the slot's
counters *before* reading the record, and the entry is trusted only while they are unchanged:
a write that commits during the read leaves the entry already stale; one that commits after
the note bumps the slot after its commit, before its acknowledgement. A hit costs two loads
from the mapping and a dictionary look-up; a false sharing of a slot (65,535 of them) costs
only a miss.

Not seen: writes made without idnode's store code (an ``sqlite3`` shell, SQL sent by hand),
and writes by processes on other hosts sharing a PostgreSQL database. Set
``response_cache = 0`` for such deployments.

Bounded: at most ``max_entries`` entries and ``max_bytes`` bytes of responses, least recently
used dropped first; :meth:`ResponseCache.stats` reports entries, bytes, hits and misses.

Admission: until the cache is full every answer is kept. Once full, an answer is kept only
when its key missed before since the last reset of a small memory of recent misses (hashes
of at most ``max_entries`` keys, forgotten all at once when full), so that identifiers
asked once, as in a uniform scan of more identifiers than the cache holds, do not push out
the ones asked again and again, and a miss that is not kept costs a set look-up instead of
an insertion and an eviction.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass

from idnode.protocol.codes import OpCode, OpFlag
from idnode.server.heap import Churn
from idnode.store.base import handle_key
from idnode.store.generations import Generations

__all__ = ["NOTE", "Admission", "CacheStats", "Note", "ResponseCache", "request_key"]

_RESOLUTION_HEAD = struct.pack(">II", OpCode.RESOLUTION, 0)  # op, response code of a request
_ZERO4 = b"\x00\x00\x00\x00"
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_BYPASS = int(OpFlag.CT | OpFlag.RD)  # an int: IntFlag arithmetic is slow
#: Envelope (20) + header (24) + credential length (4).
_FIXED = 48


def request_key(data: bytes) -> bytes | None:
    """The cache key of request ``data`` (one whole message), or None when its response may
    not come from the cache (see the module docstring)."""
    n = len(data)
    if n < _FIXED or data[20:28] != _RESOLUTION_HEAD:
        return None
    if data[4:8] != _ZERO4 or data[12:16] != _ZERO4 or data[-4:] != _ZERO4:
        return None  # a session, a fragment, or a credential
    if _U32.unpack_from(data, 16)[0] != n - 20 or _U32.unpack_from(data, 40)[0] != n - _FIXED:
        return None
    if _U32.unpack_from(data, 28)[0] & _BYPASS:
        return None
    return data[0:4] + data[28:32] + data[44 : n - 4]


class Note:
    """What the dispatcher tells the transport about the resolutions it is answering.

    Every record read is noted: :meth:`ResponseCache.begin` sets ``handle`` and ``slot``, then
    ``stamp``, before each read, and setting ``stamp`` also appends ``(handle, slot, stamp)``
    to ``seen``. A resolution whose answer any anonymous requester would get sets
    ``cacheable = True`` after its read; ``cacheable`` reads True only when every read noted
    was marked so (setting it False spoils the note for good). An answer built from several
    records (a proxy page following aliases) is thus kept only if each read is, and it stays
    current only while the slots of all of them are unchanged. ``handle``, ``slot`` and
    ``stamp`` describe the last read.
    """

    __slots__ = ("_marked", "_stamp", "handle", "reads", "seen", "slot")

    def __init__(self) -> None:
        self.reads = 0  # records read by resolutions while answering
        self.handle = ""
        self.slot = 0
        self._stamp: tuple[int, int] | None = None
        self._marked = 0  # reads marked cacheable (-1: spoiled)
        self.seen: list[tuple[str, int, tuple[int, int]]] = []

    @property
    def stamp(self) -> tuple[int, int] | None:
        return self._stamp

    @stamp.setter
    def stamp(self, stamp: tuple[int, int] | None) -> None:
        self._stamp = stamp
        if stamp is not None:
            self.seen.append((self.handle, self.slot, stamp))

    @property
    def cacheable(self) -> bool:
        return self.reads > 0 and self._marked == self.reads

    @cacheable.setter
    def cacheable(self, value: bool) -> None:
        if not value:
            self._marked = -1
        elif self._marked >= 0:
            self._marked += 1


#: Set by the transport around a dispatch whose response may be stored (None otherwise).
NOTE: ContextVar[Note | None] = ContextVar("idnode_response_note", default=None)


@dataclass(frozen=True)
class CacheStats:
    entries: int
    bytes: int
    hits: int
    misses: int
    stale: int


#: A cache entry: the response, its handle, the handle's slot and the slot's two counters
#: when the record was read. A flat tuple of strings, bytes and numbers, which the garbage
#: collector stops tracking at the first collection that looks at it, so that a full
#: collection does not walk every entry (an object per entry made collections of 100,000
#: entries take tens of milliseconds; a tuple inside, one level per collection).
_Entry = tuple[bytes, str, int, int, int]


class Admission:
    """Which answers a full cache takes (module docstring, "Admission"): a key's second
    miss since the memory of misses was last emptied."""

    __slots__ = ("_missed", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)  # keys remembered before the memory is emptied
        self._missed: set[int] = set()  # hashes of keys that missed once

    def admit(self, key: bytes) -> bool:
        """Whether to keep the answer to ``key``, which missed a full cache."""
        seen = hash(key)
        missed = self._missed
        if seen in missed:
            missed.discard(seen)
            return True
        if len(missed) >= self.limit:
            missed.clear()
        missed.add(seen)
        return False

    def clear(self) -> None:
        self._missed.clear()


class ResponseCache:
    def __init__(
        self, generations: Generations, *, max_entries: int = 100_000, max_bytes: int = 64 << 20
    ) -> None:
        self.generations = generations
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._bytes = 0
        self.admission = Admission(max_entries)
        self.churn = Churn()
        self.hits = 0
        self.misses = 0
        self.stale = 0

    # -- the dispatcher's side ---------------------------------------------------------------

    def begin(self, note: Note, handle: str) -> None:
        """Before reading ``handle``'s record: note its counters."""
        slot = Generations.slot(handle_key(handle))
        note.reads += 1
        note.handle, note.slot = handle, slot
        note.stamp = self.generations.stamp(slot)

    # -- the transport's side ----------------------------------------------------------------

    def get(self, key: bytes, request: bytes, serial: int) -> tuple[bytes, str] | None:
        """The response to ``request`` (whose key is ``key``) and its handle, from the cache;
        None on a miss."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        response, handle, slot, first, second = entry
        if not self.generations.current(slot, (first, second)):
            self._drop(key)
            self.stale += 1
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        out = bytearray(response)
        out[8:12] = request[8:12]  # request id
        out[32:34] = _U16.pack(serial)  # site info serial
        out[34] = request[34]  # recursion count
        out[36:40] = request[36:40]  # expiration
        return bytes(out), handle

    def put(self, key: bytes, response: bytes, note: Note) -> None:
        """Keep ``response`` when the dispatcher marked it cacheable."""
        if not note.cacheable or note.stamp is None or len(response) > self.max_bytes // 16:
            return
        if key in self._entries:
            self._drop(key)
        elif (
            len(self._entries) >= self.max_entries or self._bytes >= self.max_bytes
        ) and not self.admission.admit(key):
            return
        self._entries[key] = (response, note.handle, note.slot, *note.stamp)
        self._bytes += len(response) + len(key)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))
            self.churn.replaced()

    def _drop(self, key: bytes) -> None:
        entry = self._entries.pop(key)
        self._bytes -= len(entry[0]) + len(key)

    def clear(self) -> None:
        self._entries.clear()
        self.admission.clear()
        self._bytes = 0

    def stats(self) -> CacheStats:
        return CacheStats(len(self._entries), self._bytes, self.hits, self.misses, self.stale)
