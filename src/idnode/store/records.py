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
    "remove_values_edit",
    "scan_start",
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
