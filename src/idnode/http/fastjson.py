"""Anonymous ``GET /api/handles/<handle>`` answered from the stored record's bytes.

Most API resolutions are anonymous requests for a plain record. For those the JSON answer is
made straight from the stored record (:mod:`idnode.store.records`), without the dispatcher,
request and response messages or value objects: :func:`answer` reads the record,
:func:`~idnode.store.records.public_selection` picks the values the resolution would show
(the rules of :mod:`idnode.server.fastpath`), and each value becomes its JSON text from its
bytes, as :func:`~idnode.jsonvalues.value_to_json` and :func:`~idnode.http.common.render`
would write it: ``string`` or ``base64`` data by the bytes
(:func:`~idnode.jsonvalues.looks_like_binary`), and for the types whose rendering is
involved (HS_ADMIN, HS_VLIST, HS_SITE, HS_NA_DELEGATE, HS_PUBKEY and their sub-types) the
value's data decoded by :func:`~idnode.jsonvalues.data_to_json`. Status, headers and body are
those of the ordinary path (``tests/http/test_fastjson.py`` compares them).

Taken by a GET or HEAD without an ``Authorization`` header, whose handle is percent-decoded
UTF-8 and not empty and whose ``index`` parameters parse, for a handle this node serves under
a homed prefix (:class:`~idnode.server.fastpath.FastResolver`), when the record exists, holds
no 1001 ``TEMPLATE`` value, something is selected and every value shown has PUBLIC_READ.
``type``, ``publicOnly``, ``pretty`` and ``callback`` are read as the ordinary path reads
them; ``auth`` and ``doNotRefer`` change nothing for a handle served here. Anything else
returns None and the request goes the ordinary way, which reads the record again.

Like the ordinary path, an answer counts one resolution in the statistics, times the store
read in the metrics and, inside the HTTP response cache (:mod:`idnode.http.respcache`),
notes the handle's change counters before the read and marks the answer cacheable
(:func:`read_public` and :func:`settle`, which the browser proxy's
:mod:`idnode.http.fastproxy` uses too).
"""

from __future__ import annotations

import base64
import json
import re
import struct
import time
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring

from idnode.http.asgi import HTTPError, Request, Response
from idnode.http.common import Params, decode_path, render, render_text
from idnode.jsonvalues import data_to_json
from idnode.protocol import types as value_types
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.types.hs_pubkey import PublicKeyData
from idnode.protocol.types.hs_site import SiteInfo
from idnode.protocol.types.hs_vlist import ValueList
from idnode.protocol.values import DEFAULT_PERMISSIONS, TTLType
from idnode.server.dispatch import Dispatcher
from idnode.server.fastpath import read_record, read_record_now, resolver_for
from idnode.server.respcache import NOTE, Note
from idnode.store import records as rec

__all__ = ["answer", "answer_now", "read_public", "read_public_now", "settle", "values_json"]

_string: Callable[[str], str] = encode_basestring  # json.dumps's escaping (ensure_ascii=False)

_U32 = struct.Struct(">I")
_RELATIVE = TTLType.RELATIVE
_DEFAULT_PERMISSIONS = int(DEFAULT_PERMISSIONS)
#: ``permissions`` as written for each value of the low four bits.
_PERMISSIONS = tuple(
    "".join("1" if p & bit else "0" for bit in (0x08, 0x04, 0x02, 0x01)) for p in range(16)
)
#: Bytes that make data binary besides invalid UTF-8 (looks_like_binary).
_BINARY = re.compile(rb"[\x00-\x08\x14-\x1f\x7f]")
#: Codecs whose values data_to_json renders other than as string or base64.
_INVOLVED = (AdminRecord, ValueList, SiteInfo, PublicKeyData)
#: Data of involved types at most this long keep their JSON text in a cache.
_CACHED_DATA = 1024
_LIMIT = 4096  # entries of each cache below; emptied when full

_involved: dict[str, bool] = {}
_involved_json: dict[tuple[str, bytes], str] = {}
_times: dict[int, str] = {}


def _iso(ts: int) -> str:
    """:func:`~idnode.jsonvalues.iso_timestamp`, as JSON text (a quoted string)."""
    text = _times.get(ts)
    if text is None:
        if len(_times) >= _LIMIT:
            _times.clear()
        text = _times[ts] = time.strftime('"%Y-%m-%dT%H:%M:%SZ"', time.gmtime(ts))
    return text


def _is_involved(vtype: str) -> bool:
    involved = _involved.get(vtype)
    if involved is None:
        if len(_involved) >= _LIMIT:
            _involved.clear()
        codec = value_types.codec_for(vtype)
        involved = _involved[vtype] = codec is not None and issubclass(
            codec,  # type: ignore[arg-type]
            _INVOLVED,
        )
    return involved


def _data_json(vtype: str, data: bytes) -> str:
    """The ``data`` member of a value as JSON text."""
    if _is_involved(vtype):
        if len(data) > _CACHED_DATA:
            return _dumps(data_to_json(vtype, data))
        key = (vtype, data)
        text = _involved_json.get(key)
        if text is None:
            if len(_involved_json) >= _LIMIT:
                _involved_json.clear()
            text = _involved_json[key] = _dumps(data_to_json(vtype, data))
        return text
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        decoded = None
    if decoded is not None and _BINARY.search(data) is None:
        return '{"format":"string","value":' + _string(decoded) + "}"
    return '{"format":"base64","value":"' + base64.b64encode(data).decode("ascii") + '"}'


def _dumps(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _references(record: bytes, pos: int, count: int) -> str:
    """The ``references`` member (with its leading comma) of ``count`` references at
    ``pos``."""
    references = []
    for _ in range(count):
        (length,) = _U32.unpack_from(record, pos)
        pos += 4
        name = record[pos : pos + length].decode("utf-8")
        pos += length
        (index,) = _U32.unpack_from(record, pos)
        pos += 4
        references.append(f'{{"handle":{_string(name)},"index":{index}}}')
    return ',"references":[' + ",".join(references) + "]"


def values_json(record: bytes, selected: list[rec.Scanned]) -> str:
    """The ``values`` array of the answer, compact JSON text: the values of ``record`` at
    ``selected`` (from :func:`~idnode.store.records.scan_record`, which checked the bytes)."""
    out = []
    for index, vtype, permissions, start, _end in selected:
        ts, ttl_type, ttl, begin, pos = rec.value_parts(record, start)
        data = _data_json(vtype, record[begin:pos])
        shown = (
            ""
            if permissions == _DEFAULT_PERMISSIONS
            else f',"permissions":"{_PERMISSIONS[permissions & 0x0F]}"'
        )
        ttl_text = str(ttl) if ttl_type == _RELATIVE else _iso(ttl)
        stamp = f',"timestamp":{_iso(ts)}' if ts else ""
        (count,) = _U32.unpack_from(record, pos)
        references = _references(record, pos + 4, count) if count else ""
        out.append(
            f'{{"index":{index},"type":{_string(vtype)},"data":{data}{shown},'
            f'"ttl":{ttl_text}{stamp}{references}}}'
        )
    return "[" + ",".join(out) + "]"


async def read_public(
    dispatcher: Dispatcher,
    handle: str,
    indexes: Sequence[int],
    types: Sequence[str],
    *,
    public_only: bool,
) -> tuple[bytes, list[rec.Scanned]] | None:
    """The stored record of ``handle`` and the values an anonymous resolution of it shows
    (:func:`~idnode.store.records.public_selection`), read as the dispatcher reads it: for a
    handle this node serves (:class:`~idnode.server.fastpath.FastResolver`), the handle's
    change counters noted in the HTTP response cache's note before the read, the read timed
    in the metrics. None when the handle is not served here, the record is absent or the
    answer is not that plain (nothing to note then). The caller answers from the record or
    declines, and says which with :func:`settle`."""
    if not await resolver_for(dispatcher).served(handle):
        return None
    note = None if dispatcher.respcache is None else NOTE.get()
    record = await read_record(dispatcher, handle, note)
    selected = (
        rec.public_selection(record, indexes, types, public_only=public_only) if record else None
    )
    if not record or selected is None:
        settle(dispatcher, handle, answered=False)
        return None
    return record, selected


def read_public_now(
    dispatcher: Dispatcher,
    handle: str,
    indexes: Sequence[int],
    types: Sequence[str],
    *,
    public_only: bool,
    note: Note,
) -> tuple[bytes, list[rec.Scanned]] | None:
    """:func:`read_public` without waiting, the read noted in ``note`` (for the HTTP
    server's protocol, :mod:`idnode.http.fastmiss`): None also when it cannot be read at once
    (a store without ``try_get_record``, a busy database, a prefix not checked lately: see
    :func:`~idnode.server.fastpath.answer_now`). A caller declining drops ``note`` and the
    ordinary path reads again; one answering says so with :func:`settle`, given ``note``."""
    if not resolver_for(dispatcher).served_now(handle):
        return None
    record = read_record_now(dispatcher, handle, note)
    if not record:
        return None
    selected = rec.public_selection(record, indexes, types, public_only=public_only)
    return None if selected is None else (record, selected)


def settle(
    dispatcher: Dispatcher, handle: str, *, answered: bool, note: Note | None = None
) -> None:
    """After :func:`read_public` gave a record: ``answered`` from it, count the resolution
    and mark the read cacheable (what any anonymous requester sees, from this record alone);
    else forget the noted read, since the ordinary path reads again and notes that read (one
    read in all, so that an answer it may keep is kept; a stamp noted here can only make the
    entry stale sooner). ``note``: the one :func:`read_public_now` was given, else the HTTP
    response cache's."""
    if note is None and dispatcher.respcache is not None:
        note = NOTE.get()
    if answered:
        dispatcher.counter.resolved(handle)
        if note is not None:
            note.cacheable = True
    elif note is not None:
        note.reads -= 1


def _asked(rest: str, params: Params) -> tuple[str, Sequence[int], list[str], bool] | None:
    """The handle, index list, type list and ``publicOnly`` of a request for handle path
    ``rest``, or None when it is not one this module answers (an empty handle, or one the
    ordinary path makes an error of)."""
    try:
        handle = decode_path(rest)
        indexes = params.indexes() or ()
    except HTTPError:
        return None  # the ordinary path makes the error
    if not handle:
        return None
    public_only = params.flag("publicOnly") if params.first("publicOnly") is not None else True
    return handle, indexes, params.all("type"), public_only


def _respond(handle: str, record: bytes, selected: list[rec.Scanned], params: Params) -> Response:
    text = (
        f'{{"responseCode":1,"handle":{_string(handle)},"values":{values_json(record, selected)}}}'
    )
    if params.flag("pretty"):
        return render(params, json.loads(text))
    return render_text(params, text)


async def answer(
    dispatcher: Dispatcher, request: Request, rest: str, params: Params
) -> Response | None:
    """The answer to the API request for handle path ``rest`` (raw, after
    ``/api/handles/``), made from the stored record; None when it is not one this module
    makes (see the module docstring)."""
    if request.method not in ("GET", "HEAD") or "authorization" in request.headers:
        return None
    asked = _asked(rest, params)
    if asked is None:
        return None
    handle, indexes, types, public_only = asked
    found = await read_public(dispatcher, handle, indexes, types, public_only=public_only)
    if found is None:
        return None
    settle(dispatcher, handle, answered=True)
    return _respond(handle, *found, params)


def answer_now(dispatcher: Dispatcher, rest: str, params: Params, note: Note) -> Response | None:
    """:func:`answer` to an anonymous ``GET`` or ``HEAD`` made without waiting, for the HTTP
    server's protocol (:mod:`idnode.http.fastmiss`), the read noted in ``note``
    (:func:`read_public_now`); None when it cannot be made at once or not by this module."""
    asked = _asked(rest, params)
    if asked is None:
        return None
    handle, indexes, types, public_only = asked
    found = read_public_now(dispatcher, handle, indexes, types, public_only=public_only, note=note)
    if found is None:
        return None
    settle(dispatcher, handle, answered=True, note=note)
    return _respond(handle, *found, params)
