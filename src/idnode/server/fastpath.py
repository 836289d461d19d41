"""Anonymous resolutions answered from the stored record's bytes, without the dispatcher.

Most resolutions are anonymous requests for a plain record (no template, every asked value
PUBLIC_READ). For those the response body is the handle and a slice of the stored record,
which is the wire form of its values (:mod:`idnode.store.records`): :func:`answer_now` and
:func:`answer` read the handle and the index and type lists from the request's bytes, read
the record, let :func:`~idnode.store.records.public_values` pick the values' bytes, and wrap
them in the response the dispatcher would have made: the envelope and header
:func:`~idnode.server.negotiation.response_to` makes for the same version bytes and op flags
(made once per such pair), with the request id, site info serial, recursion count,
expiration and lengths patched in, as the response cache patches its entries. No message or
value object is built and the dispatcher is not entered. ``tests/server/test_fastpath.py``
proves the bytes equal the dispatcher's.

Taken only by requests :func:`~idnode.server.respcache.request_key` accepts (op RESOLUTION,
no session, credential, CT or RD), for a handle this node serves under a homed prefix (not
``0.NA``), when the record holds no 1001 ``TEMPLATE`` value (instances and templates: their
values are governed by grants) and every value shown has PUBLIC_READ. Anything else, and every
error (not found, nothing selected, a challenge), returns None and the request goes the
ordinary way, which reads the record again and answers as before.

:func:`answer_now` is synchronous, for a transport to answer in its receive callback without
a task: it needs a store that reads a record without waiting (``try_get_record``, SQLite) and
a recent answer to "is this prefix served here" (see :class:`FastResolver`); otherwise None.
:func:`answer` is the awaitable form used once a task runs (PostgreSQL, a first request).
"""

from __future__ import annotations

import asyncio
import struct
import time
import weakref
from collections.abc import Callable
from typing import Literal

from idnode.protocol.bodies import RawBody, ResolutionRequest
from idnode.protocol.codes import OpCode, OpFlag, ResponseCode
from idnode.protocol.message import ENVELOPE_SIZE, MAX_MESSAGE_LENGTH, Message
from idnode.server.dispatch import Dispatcher
from idnode.server.negotiation import response_to
from idnode.server.respcache import Note
from idnode.store import records as rec
from idnode.store.base import handle_key, prefix_of
from idnode.store.generations import Generations
from idnode.store.homedcache import HOMED_TTL

__all__ = ["FastResolver", "answer", "answer_now", "read_record", "read_record_now"]

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_PO = int(OpFlag.PO)


class FastResolver:
    """A dispatcher's memory of the prefixes it served lately.

    "Is ``P/S`` served here" is ``P`` homed (:meth:`Dispatcher._serves`), an awaitable store
    call. A yes is remembered here with the store's slot-0 change counter
    (:mod:`idnode.store.generations`, bumped by every home and unhome of every process on the
    database) and trusted while that counter is unchanged and for at most half of
    :data:`~idnode.store.homedcache.HOMED_TTL`: a home or unhome made through idnode's store
    code is seen at once, one made otherwise within the store's own delay plus that half.

    A yes older than a quarter of that is checked again in the background when next used
    (:meth:`served_now` still answers from it meanwhile), so that a prefix in steady use is
    never found unknown: each time one was, every request for it until the store had
    answered went the slower way.
    """

    def __init__(self, dispatcher: Dispatcher, *, clock: Callable[[], float] = time.monotonic):
        self.dispatcher = dispatcher
        self._clock = clock
        self._served: dict[str, tuple[float, int]] = {}
        self._checking: dict[str, asyncio.Task[bool]] = {}  # the background checks
        #: Responses with an empty body by version bytes and op flags (:func:`_template`).
        self.templates: dict[bytes, bytes] = {}

    def _generations(self) -> Generations | None:
        generations = getattr(self.dispatcher.store, "generations", None)
        return generations if isinstance(generations, Generations) else None

    def served_now(self, handle: str) -> bool:
        """Whether ``handle`` is known to be served here without asking the store (False:
        unknown, or not served)."""
        prefix = prefix_of(handle)  # as spelt: a few spellings at most
        seen = self._served.get(prefix)
        if seen is None:
            return False
        age = self._clock() - seen[0]
        if age > HOMED_TTL / 2 or not self.dispatcher.node.owns(handle):
            return False
        generations = self._generations()
        if generations is None or generations.stamp(0)[0] != seen[1]:
            return False
        if age > HOMED_TTL / 4 and prefix not in self._checking:
            self._check_later(prefix, handle)
        return True

    def _check_later(self, prefix: str, handle: str) -> None:
        """Check ``prefix`` again in the background (called without an event loop running,
        as a synchronous caller may: not checked, the memory runs out as it would)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._check(handle))
        self._checking[prefix] = task
        task.add_done_callback(lambda done: self._checked(prefix, done))

    def _checked(self, prefix: str, task: asyncio.Task[bool]) -> None:
        del self._checking[prefix]
        if task.cancelled() or task.exception() is not None or not task.result():
            self._served.pop(prefix, None)  # asked again by the next request, which says why

    async def served(self, handle: str) -> bool:
        """Whether ``handle`` is served here under a homed prefix other than ``0.NA``."""
        return self.served_now(handle) or await self._check(handle)

    async def _check(self, handle: str) -> bool:
        """:meth:`served`, asking the store."""
        prefix = prefix_of(handle)
        if handle_key(prefix) == "0.NA" or not self.dispatcher.node.owns(handle):
            return False
        generations = self._generations()
        before = None if generations is None else generations.stamp(0)[0]
        checked = self._clock()
        if not await self.dispatcher._serves(handle):
            return False
        if before is not None:
            self._served[prefix] = (checked, before)
            if len(self._served) > 4096:  # a bound; the homed prefixes are few
                self._served.clear()
        return True


_RESOLVERS: weakref.WeakKeyDictionary[Dispatcher, FastResolver] = weakref.WeakKeyDictionary()


#: The last one asked for (a node has one dispatcher), not kept alive by this reference.
_last: list[weakref.ref[FastResolver]] = []


def resolver_for(dispatcher: Dispatcher) -> FastResolver:
    """The :class:`FastResolver` of ``dispatcher`` (made on first use)."""
    last = _last[0]() if _last else None
    if last is not None and last.dispatcher is dispatcher:
        return last
    resolver = _RESOLVERS.get(dispatcher)
    if resolver is None:
        resolver = _RESOLVERS[dispatcher] = FastResolver(dispatcher)
    _last[:] = [weakref.ref(resolver)]
    return resolver


def _parse(data: bytes) -> tuple[str, tuple[int, ...], tuple[str, ...]] | None:
    """Handle, index list and type list of request ``data`` (which :func:`request_key`
    accepted: its layout and lengths are checked), or None when :meth:`Message.decode`
    would not take it as it is (then the ordinary path answers, with an error if due)."""
    size = len(data) - 4  # the body ends before the (empty) credential
    if size + 4 - ENVELOPE_SIZE > MAX_MESSAGE_LENGTH:
        return None
    try:
        (length,) = _U32.unpack_from(data, 44)
        pos = 48 + length
        if pos > size:
            return None
        handle = data[48:pos].decode("utf-8")
        (count,) = _U32.unpack_from(data, pos)
        pos += 4
        if count * 4 > size - pos:
            return None
        indexes = struct.unpack_from(f">{count}I", data, pos) if count else ()
        pos += 4 * count
        (count,) = _U32.unpack_from(data, pos)
        pos += 4
        if count * 4 > size - pos:
            return None
        types = []
        for _ in range(count):
            (length,) = _U32.unpack_from(data, pos)
            pos += 4
            if pos + length > size:
                return None
            types.append(data[pos : pos + length].decode("utf-8"))
            pos += length
    except (struct.error, UnicodeDecodeError):
        return None
    if pos != size or not handle:
        return None
    return handle, indexes, tuple(types)


def _template(data: bytes) -> bytes:
    """The response :func:`response_to` makes for request ``data`` with an empty body: its
    envelope, header and credential depend on the request only through the version bytes
    and the op flags (and the fields :func:`_response` patches in)."""
    request = Message(
        op=OpCode.RESOLUTION,
        body=ResolutionRequest("-"),
        flags=_U32.unpack_from(data, 28)[0],
        version=(data[0], data[1]),
        suggested_version=(data[2] & 0x03, data[3]),
        envelope_flags=data[2] & 0xFC,
    )
    return response_to(request, ResponseCode.SUCCESS, RawBody(), site_info_serial=0).encode()


def _response(
    dispatcher: Dispatcher, data: bytes, handle: str, values: bytes, note: Note | None
) -> bytes | None:
    """The success response to request ``data`` showing ``values`` (an encoded value
    list): the bytes the dispatcher's ResolutionResponse would encode to; None when it
    would be longer than a message may be (the ordinary path answers that with an error)."""
    name = handle.encode("utf-8")
    body_length = 4 + len(name) + len(values)
    if 28 + body_length > MAX_MESSAGE_LENGTH:
        return None
    resolver = resolver_for(dispatcher)
    shape = data[0:4] + data[28:32]
    template = resolver.templates.get(shape)
    if template is None:
        if len(resolver.templates) >= 64:
            resolver.templates.clear()
        template = resolver.templates[shape] = _template(data)
    dispatcher.counter.resolved(handle)
    if note is not None:
        note.cacheable = True  # what any anonymous requester sees, from this record alone
    return b"".join(
        (
            template[0:8],
            data[8:12],  # request id
            template[12:16],
            _U32.pack(28 + body_length),
            template[20:32],
            _U16.pack(dispatcher.node.site_serial),
            data[34:35],  # recursion count
            template[35:36],
            data[36:40],  # expiration
            _U32.pack(body_length),
            _U32.pack(len(name)),
            name,
            values,
            template[44:48],  # the empty credential
        )
    )


def _start_read(dispatcher: Dispatcher, note: Note | None, handle: str) -> float:
    """Before reading ``handle``'s record: note its change counters in ``note`` (see
    respcache); when the read starts, for the metrics."""
    if note is not None and dispatcher.respcache is not None:
        dispatcher.respcache.begin(note, handle)
    return time.perf_counter() if dispatcher.metrics is not None else 0.0


def _end_read(dispatcher: Dispatcher, started: float) -> None:
    if dispatcher.metrics is not None:
        dispatcher.metrics.store_call("get_record", time.perf_counter() - started)


async def read_record(dispatcher: Dispatcher, handle: str, note: Note | None) -> bytes | None:
    """The stored record of ``handle`` (a handle this node serves: :class:`FastResolver`)
    read for an answer made from it: the read noted in ``note`` before it and timed in the
    metrics, as the dispatcher's resolution reads it. None if the handle does not exist."""
    started = _start_read(dispatcher, note, handle)
    record = await dispatcher.store.get_record(handle)
    _end_read(dispatcher, started)
    return record


def read_record_now(
    dispatcher: Dispatcher, handle: str, note: Note | None
) -> bytes | Literal[False] | None:
    """:func:`read_record` without waiting, for a handle :meth:`FastResolver.served_now`
    said is served here: False when the store cannot read it so (not SQLite, or the database
    was busy)."""
    try_get_record: Callable[[str], bytes | Literal[False] | None] | None = getattr(
        dispatcher.store, "try_get_record", None
    )
    if try_get_record is None:
        return False
    started = _start_read(dispatcher, note, handle)
    record = try_get_record(handle)
    _end_read(dispatcher, started)
    return record


def _from_record(
    dispatcher: Dispatcher,
    data: bytes,
    parsed: tuple[str, tuple[int, ...], tuple[str, ...]],
    record: bytes | Literal[False] | None,
    note: Note | None,
) -> bytes | None:
    """The response to request ``data`` (``parsed``: its handle, index list and type list)
    from the handle's stored ``record``; None when the record is absent (an error to make),
    the database was busy (False), or the answer is not that plain."""
    if not record:
        return None
    handle, indexes, types = parsed
    values = rec.public_values(
        record, indexes, types, public_only=bool(_U32.unpack_from(data, 28)[0] & _PO)
    )
    return None if values is None else _response(dispatcher, data, handle, values, note)


def answer_now(dispatcher: Dispatcher, data: bytes, note: Note | None) -> bytes | None:
    """The response to request ``data`` (which :func:`request_key` accepted), answered
    synchronously from the stored record; None when it cannot be (then :func:`answer` or the
    dispatcher)."""
    if not hasattr(dispatcher.store, "try_get_record"):
        return None
    parsed = _parse(data)
    if parsed is None or not resolver_for(dispatcher).served_now(parsed[0]):
        return None
    record = read_record_now(dispatcher, parsed[0], note)
    return _from_record(dispatcher, data, parsed, record, note)


async def answer(dispatcher: Dispatcher, data: bytes, note: Note | None) -> bytes | None:
    """:func:`answer_now`, awaiting the store and the check of the handle's prefix."""
    parsed = _parse(data)
    if parsed is None or not await resolver_for(dispatcher).served(parsed[0]):
        return None
    record = await read_record(dispatcher, parsed[0], note)
    return _from_record(dispatcher, data, parsed, record, note)
