"""What the storage backends share besides the schema: the logic around the one-row-per-handle
table, with no SQL and no driver in it.

A stored handle is ``(handle_key, handle, record)``: the key (:func:`~.base.handle_key`), the
display string or NULL when it equals the key (:func:`display`), and the record, i.e.
:func:`~idnode.protocol.values.encode_record` of its values (:func:`encode`, :func:`decode`).

A backend reads and writes these rows; everything about them that does not depend on the
database lives here: checking a bulk batch (:func:`bulk_rows`), where a scan starts
(:func:`scan_start`), the key ranges of the listings (:func:`handles_range`,
:func:`derived_prefixes_range`), and the value operations as :data:`Edit` functions from the
stored record to the new one (:func:`add_values_edit`, :func:`modify_values_edit`,
:func:`remove_values_edit`), which a backend runs inside its write transaction on the locked
row.
"""

from __future__ import annotations

import abc
import struct
from collections.abc import Callable, Sequence

from idnode.errors import (
    HandleError,
    HandleNotFound,
    InvalidValue,
    ProtocolViolation,
    StoreError,
    ValueAlreadyExists,
    ValuesNotFound,
)
from idnode.industry.layout import TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE
from idnode.protocol.codes import Permission
from idnode.protocol.values import HandleValue, decode_record, encode_record
from idnode.store.base import handle_key

__all__ = [
    "NA_PREFIX",
    "Edit",
    "Row",
    "add_values_edit",
    "bulk_rows",
    "decode",
    "derived_prefixes_range",
    "display",
    "distinct",
    "encode",
    "handles_range",
    "modify_values_edit",
    "public_selection",
    "public_values",
    "remove_values_edit",
    "scan_record",
    "scan_start",
    "value_parts",
]

#: The prefix of prefix handles (``0.NA/<prefix>``).
NA_PREFIX = "0.NA/"

#: A row of the ``handles`` table: key, display string (None: as the key), record.
Row = tuple[str, str | None, bytes]

#: A value operation: the stored record (None if the handle does not exist) to the new record.
#: It raises HandleNotFound, ValueAlreadyExists or ValuesNotFound instead when it cannot apply.
Edit = Callable[[bytes | None], bytes]


def display(key: str, handle: str) -> str | None:
    """The display column: NULL when the handle is spelled as its key (saves the bytes)."""
    return None if handle == key else handle


def encode(values: Sequence[HandleValue]) -> bytes:
    """The record of ``values``; InvalidValue if two share an index or one is out of range."""
    try:
        return encode_record(values)
    except ProtocolViolation as exc:
        raise InvalidValue(str(exc)) from exc


def decode(record: bytes) -> tuple[HandleValue, ...]:
    """The values of a stored record; StoreError if it does not decode (a damaged database)."""
    try:
        return decode_record(record)
    except HandleError as exc:
        raise StoreError(f"stored record does not decode: {exc}") from exc


#: A value as :func:`scan_record` sees it: index, type, permissions, and where its encoded
#: bytes start and end in the record.
Scanned = tuple[int, str, int, int, int]

#: index, timestamp, TTL type, TTL, permissions, length of the type: the fixed head of a value.
_VALUE_HEAD = struct.Struct(">IIBIBI")
_U32 = struct.Struct(">I")
_PUBLIC_READ = int(Permission.PUBLIC_READ)


def scan_record(record: bytes) -> list[Scanned] | None:
    """Where each value of a stored record lies, without building value objects; None when
    the record does not decode (:func:`decode` then says why).

    It accepts exactly what :func:`~idnode.protocol.values.decode_record` accepts (the same
    counts checked against the bytes left, UTF-8 types and reference handles, nothing
    trailing), so a value's bytes ``record[start:end]`` are what encoding the decoded value
    gives back."""
    size = len(record)
    if size < 4:
        return None
    (count,) = _U32.unpack_from(record, 0)
    if count * 26 > size - 4:
        return None
    pos = 4
    out: list[Scanned] = []
    try:
        for _ in range(count):
            start = pos
            index, _ts, _ttl_type, _ttl, permissions, type_len = _VALUE_HEAD.unpack_from(
                record, pos
            )
            pos += 18
            if pos + type_len > size:
                return None
            vtype = record[pos : pos + type_len].decode("utf-8")
            pos += type_len
            (data_len,) = _U32.unpack_from(record, pos)
            pos += 4 + data_len
            if pos > size:
                return None
            (refs,) = _U32.unpack_from(record, pos)
            pos += 4
            if refs * 8 > size - pos:
                return None
            for _ in range(refs):
                (ref_len,) = _U32.unpack_from(record, pos)
                pos += 4
                if pos + ref_len > size:
                    return None
                record[pos : pos + ref_len].decode("utf-8")
                pos += ref_len + 4
                if pos > size:
                    return None
            out.append((index, vtype, permissions, start, pos))
    except (struct.error, UnicodeDecodeError):
        return None
    return out if pos == size else None


def value_parts(record: bytes, start: int) -> tuple[int, int, int, int, int]:
    """Timestamp, TTL type, TTL, and where the data starts and ends, of the value whose
    encoded bytes start at ``start`` in ``record`` (a :data:`Scanned` value's start, so
    :func:`scan_record` has checked the bytes)."""
    _index, timestamp, ttl_type, ttl, _permissions, type_len = _VALUE_HEAD.unpack_from(
        record, start
    )
    pos = start + 18 + type_len
    (length,) = _U32.unpack_from(record, pos)
    return timestamp, ttl_type, ttl, pos + 4, pos + 4 + length


def _type_matches(mine: str, wanted: Sequence[str]) -> bool:
    """:meth:`HandleValue.type_matches` for any of ``wanted`` (already upper case)."""
    mine = mine.upper()
    return any(mine == w or (w.endswith(".") and mine.startswith(w)) for w in wanted)


def public_values(
    record: bytes, indexes: Sequence[int], types: Sequence[str], *, public_only: bool
) -> bytes | None:
    """The encoded value list (``int4 n`` and the values, as in a resolution response) an
    anonymous resolution of a record without grants shows: the values selected by
    ``indexes`` or ``types`` (every value when both are empty), only the PUBLIC_READ ones if
    ``public_only`` (the PO flag).

    None when the answer is not that plain, for the caller to take the general path: the
    record does not decode, it links a template (1001 ``TEMPLATE``: an instance or a
    template, whose values grants govern), nothing is selected (an error), or a selected
    value lacks PUBLIC_READ (a challenge or an error). The bytes are the stored values'
    bytes, sliced, never re-encoded."""
    scanned = public_selection(record, indexes, types, public_only=public_only)
    if scanned is None:
        return None
    if len(scanned) == _U32.unpack_from(record, 0)[0]:
        return record  # every value: the record is the value list
    return _U32.pack(len(scanned)) + b"".join(record[s[3] : s[4]] for s in scanned)


def public_selection(
    record: bytes, indexes: Sequence[int], types: Sequence[str], *, public_only: bool
) -> list[Scanned] | None:
    """The values :func:`public_values` shows, as :func:`scan_record` gives them (in the
    record's order); None when it gives None."""
    scanned = scan_record(record)
    if scanned is None:
        return None
    for index, vtype, _perm, _start, _end in scanned:
        if index == TEMPLATE_LINK_INDEX and vtype == TEMPLATE_LINK_TYPE:
            return None
    if indexes or types:
        wanted = [t.upper() for t in types]
        scanned = [
            s for s in scanned if s[0] in indexes or (wanted and _type_matches(s[1], wanted))
        ]
    if public_only:
        scanned = [s for s in scanned if s[2] & _PUBLIC_READ]
    if not scanned:
        return None
    for s in scanned:
        if not s[2] & _PUBLIC_READ:
            return None
    return scanned


def distinct(values: Sequence[HandleValue]) -> dict[int, HandleValue]:
    """``values`` by index; InvalidValue if two share an index."""
    by_index = {v.index: v for v in values}
    if len(by_index) != len(values):
        raise InvalidValue("two values share an index")
    return by_index


def bulk_rows(records: Sequence[tuple[str, bytes]]) -> list[Row]:
    """The rows of a :meth:`~.base.HandleStore.create_records` batch, in the batch's order;
    InvalidValue if a handle appears twice (case-insensitively)."""
    keys = [handle_key(h) for h, _ in records]
    rows = [(k, display(k, h), record) for k, (h, record) in zip(keys, records, strict=True)]
    if len({row[0] for row in rows}) != len(rows):
        raise InvalidValue("a handle appears twice in one batch")
    return rows


def scan_start(after: str | None) -> str:
    """The key a scan continues after: "" (which sorts before every key) from the start."""
    return "" if after is None else handle_key(after)


def handles_range(prefix: str) -> tuple[str, str] | None:
    """Keys ``[low, high)`` of the handles ``<prefix>/<suffix>``; None (nothing to list) if
    ``prefix`` contains ``/``. Every key that starts with "KEY/": "0" follows "/" in byte
    order."""
    if "/" in prefix:
        return None
    key = handle_key(prefix)
    return key + "/", key + "0"


def derived_prefixes_range(prefix: str) -> tuple[str, str] | None:
    """Keys ``[low, high)`` of the prefix handles ``0.NA/<prefix>.<x>...`` (any depth); None
    if ``prefix`` contains ``/``. Every key that starts with "0.NA/KEY.": "/" follows "."."""
    if "/" in prefix:
        return None
    key = NA_PREFIX + handle_key(prefix)
    return key + ".", key + "/"


def _current(handle: str, record: bytes | None) -> dict[int, HandleValue]:
    if record is None:
        raise HandleNotFound(f"handle not found: {handle}")
    return {v.index: v for v in decode(record)}


def add_values_edit(handle: str, values: Sequence[HandleValue], *, overwrite: bool) -> Edit:
    """Adds ``values``: ValueAlreadyExists for an index already present unless ``overwrite``
    (then it is replaced). InvalidValue right away if two of ``values`` share an index."""
    new = distinct(values)

    def edit(record: bytes | None) -> bytes:
        current = _current(handle, record)
        taken = current.keys() & new.keys()
        if taken and not overwrite:
            raise ValueAlreadyExists(f"{handle}: indexes {sorted(taken)} already exist")
        return encode(list((current | new).values()))

    return edit


def modify_values_edit(handle: str, values: Sequence[HandleValue]) -> Edit:
    """Replaces values by index: ValuesNotFound if any index is absent. InvalidValue right
    away if two of ``values`` share an index."""
    new = distinct(values)

    def edit(record: bytes | None) -> bytes:
        current = _current(handle, record)
        missing = new.keys() - current.keys()
        if missing:
            raise ValuesNotFound(f"{handle}: no values at indexes {sorted(missing)}")
        return encode(list((current | new).values()))

    return edit


def remove_values_edit(handle: str, indexes: Sequence[int]) -> Edit:
    """Removes values by index: ValuesNotFound if any index is absent. The handle stays, even
    if empty."""
    wanted = set(indexes)

    def edit(record: bytes | None) -> bytes:
        current = _current(handle, record)
        missing = wanted - current.keys()
        if missing:
            raise ValuesNotFound(f"{handle}: no values at indexes {sorted(missing)}")
        return encode([v for i, v in current.items() if i not in wanted])

    return edit


class ValueEdits(abc.ABC):
    """add/modify/remove values for a backend that can apply an :data:`Edit` to one record
    atomically (:meth:`_edit`)."""

    @abc.abstractmethod
    async def _edit(self, handle: str, edit: Edit) -> None:
        """Replace the record of ``handle`` by ``edit`` of it, in one transaction."""

    async def add_values(
        self, handle: str, values: Sequence[HandleValue], *, overwrite: bool = False
    ) -> None:
        """Add values; HandleNotFound if absent; ValueAlreadyExists for an index already
        present unless ``overwrite`` (then it is replaced). On error nothing changes."""
        await self._edit(handle, add_values_edit(handle, values, overwrite=overwrite))

    async def modify_values(self, handle: str, values: Sequence[HandleValue]) -> None:
        """Replace values by index; HandleNotFound if the handle is absent, ValuesNotFound if
        any index is absent. On error nothing changes."""
        await self._edit(handle, modify_values_edit(handle, values))

    async def remove_values(self, handle: str, indexes: Sequence[int]) -> None:
        """Remove values by index; HandleNotFound if the handle is absent, ValuesNotFound if
        any index is absent. On error nothing changes. The handle stays, even if empty."""
        await self._edit(handle, remove_values_edit(handle, indexes))
