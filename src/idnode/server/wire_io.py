"""Bytes to responses: the part of every transport that is the same.

:func:`answer` decodes one request, dispatches it and encodes the response. A message that
does not decode is answered with RC_PROTOCOL_ERROR when enough of its header survives to
address a response (its opcode and request id), and dropped otherwise.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator

from idnode.errors import ProtocolViolation
from idnode.protocol.bodies import RawBody
from idnode.protocol.codes import OpFlag, ResponseCode
from idnode.protocol.message import ENVELOPE_SIZE, HEADER_SIZE, Message
from idnode.server import fastpath
from idnode.server.dispatch import Dispatcher
from idnode.server.replication import STREAMS
from idnode.server.respcache import NOTE, Note, request_key

__all__ = ["answer", "cached", "salvage"]

_ENV_HEAD = struct.Struct(">BBBBII")
_HEADER_HEAD = struct.Struct(">III")
_SUCCESS = int(ResponseCode.SUCCESS).to_bytes(4, "big")


def salvage(data: bytes) -> Message | None:
    """Enough of a malformed request to address an error response to, or None."""
    if len(data) < ENVELOPE_SIZE + HEADER_SIZE:
        return None
    major, minor, b2, b3, session_id, request_id = _ENV_HEAD.unpack_from(data)
    op, code, flags = _HEADER_HEAD.unpack_from(data, ENVELOPE_SIZE)
    if code != 0:
        return None  # never answer a response: that could start a loop between two servers
    return Message(
        op=op,
        body=RawBody(),
        flags=flags & ~OpFlag.RD,
        request_id=request_id,
        session_id=session_id,
        version=(major, minor),
        suggested_version=(b2 & 0x03, b3),
    )


async def answer(
    dispatcher: Dispatcher,
    data: bytes,
    streams: list[AsyncIterator[bytes]] | None = None,
) -> tuple[bytes, Message | None]:
    """The encoded response to ``data`` (b"" to drop it) and the decoded request, if any.

    A transport that can send a stream after the response (TCP) passes ``streams``: a
    replication request answered with one appends its producer there
    (:data:`~idnode.server.replication.STREAMS`).
    """
    token = STREAMS.set(streams)
    try:
        return await _answer(dispatcher, data)
    finally:
        STREAMS.reset(token)


async def _answer(dispatcher: Dispatcher, data: bytes) -> tuple[bytes, Message | None]:
    try:
        request = Message.decode(data)
    except ProtocolViolation as exc:
        stub = salvage(data)
        if stub is None:
            return b"", None
        return dispatcher.protocol_error(stub, exc.message).encode(), None
    if not request.is_request:
        return b"", None
    key = request_key(data)
    if key is None:
        return (await dispatcher.dispatch(request)).encode(), request
    cache = dispatcher.respcache
    note = Note()
    fast = await fastpath.answer(dispatcher, data, note)
    if fast is not None:
        if cache is not None:
            cache.put(key, fast, note)
        return fast, request
    if cache is None:
        return (await dispatcher.dispatch(request)).encode(), request
    note = Note()
    token = NOTE.set(note)
    try:
        encoded = (await dispatcher.dispatch(request)).encode()
    finally:
        NOTE.reset(token)
    if note.cacheable and encoded[24:28] == _SUCCESS:
        cache.put(key, encoded, note)
    return encoded, request


def cached(dispatcher: Dispatcher, data: bytes) -> tuple[bytes, int] | None:
    """The response to request ``data`` when it needs no task: from the dispatcher's
    response cache (:mod:`idnode.server.respcache`), or else from the stored record read
    synchronously (:func:`idnode.server.fastpath.answer_now`); with the request's op flags.
    None otherwise (then :func:`answer` it)."""
    key = request_key(data)
    if key is None:
        return None
    cache = dispatcher.respcache
    if cache is not None:
        hit = cache.get(key, data, dispatcher.node.site_serial)
        if hit is not None:
            dispatcher.counter.resolved(hit[1])
            return hit[0], int.from_bytes(data[28:32], "big")
    note = Note()
    response = fastpath.answer_now(dispatcher, data, note)
    if response is None:
        return None
    if cache is not None:
        cache.put(key, response, note)
    return response, int.from_bytes(data[28:32], "big")
