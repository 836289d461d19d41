"""What the backends share about the write index and the audit columns (no SQL here).

A write method calls :func:`write_meta` **at entry**, on the event-loop thread: the write
context is a contextvar (:mod:`~idnode.store.writectx`), which a thread of an executor does
not see. :class:`WriteMeta` holds what the write needs from it, checked and normalised:

* ``actor`` / ``origin`` for the transaction-log entries the write appends;
* the index rows of each handle the context gives entries for
  (:meth:`WriteMeta.rows_for`). REFERENCE keys are normalised with
  :func:`~idnode.store.base.handle_key` (so a reverse lookup matches case-insensitively, as
  handles do); UNIQUE keys are kept as given.

A backend then, in the write's transaction: deletes the old rows of the handles it replaces,
inserts the new rows with ``ON CONFLICT DO NOTHING``, and when fewer rows went in than were
given, reads the holders of the UNIQUE keys (:func:`unique_keys`) and raises the
:class:`~idnode.errors.UniqueValueTaken` that :func:`unique_conflict` names (rolling the
transaction back). On PostgreSQL rows are inserted in (kind, key) order, so concurrent
writers claiming overlapping UNIQUE keys wait for each other in one order and cannot
deadlock (SQLite has one writer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from idnode.errors import InvalidValue, StoreError, UniqueValueTaken
from idnode.store.base import handle_key
from idnode.store.writectx import IndexEntry, IndexKind, current

__all__ = [
    "IndexRow",
    "WriteMeta",
    "normalise_index",
    "unique_conflict",
    "unique_keys",
    "write_meta",
]

#: A row of ``handle_index``: (kind, entry_key, handle_key, detail).
IndexRow = tuple[int, str, str, str]


def _entry_rows(key: str, entries: Iterable[IndexEntry]) -> list[IndexRow]:
    """The rows of handle ``key``'s ``entries``, without duplicates (two REFERENCE keys may
    differ only in case); InvalidValue for an empty key, an unknown kind, or two UNIQUE
    entries with one key."""
    rows: set[IndexRow] = set()
    unique: set[str] = set()
    for entry in entries:
        kind = entry.kind
        if kind == IndexKind.REFERENCE:
            entry_key = handle_key(entry.key)
        elif kind == IndexKind.UNIQUE:
            entry_key = entry.key
            if entry_key in unique:
                raise InvalidValue(f"{key} has two UNIQUE index entries with key {entry_key!r}")
            unique.add(entry_key)
        else:
            raise InvalidValue(f"an index entry of {key} has the unknown kind {kind!r}")
        if not entry_key:
            raise InvalidValue(f"an index entry of {key} has an empty key")
        rows.add((int(kind), entry_key, key, entry.detail))
    return list(rows)


def normalise_index(index: Mapping[str, Iterable[IndexEntry]]) -> dict[str, list[IndexRow]]:
    """``index`` (entries per handle as written) as rows per handle key; InvalidValue
    for two spellings of one handle, an empty key, or two UNIQUE entries of one handle with
    the same key."""
    out: dict[str, list[IndexRow]] = {}
    for handle, entries in index.items():
        key = handle_key(handle)
        if key in out:
            raise InvalidValue(f"index entries given twice for {handle} (differing case)")
        out[key] = _entry_rows(key, entries)
    return out


class WriteMeta:
    """The write context of one store write, as the backend uses it: ``actor``, ``origin``
    and the index entries per handle.

    The entries of a handle are looked up by the handle as the write names it, else by its
    handle key (another spelling in the context; two such spellings are InvalidValue). They
    are checked and turned into rows only for the handles a write changes, so a bulk write
    does not re-read a large context for every batch.
    """

    __slots__ = ("_index", "_keyed", "actor", "origin")

    def __init__(
        self,
        actor: str | None = None,
        origin: str | None = None,
        index: Mapping[str, Iterable[IndexEntry]] | None = None,
    ) -> None:
        self.actor = actor
        self.origin = origin
        self._index: Mapping[str, Iterable[IndexEntry]] = index or {}
        self._keyed: dict[str, Iterable[IndexEntry]] | None = None

    @property
    def has_index(self) -> bool:
        """Whether the context gives entries for any handle."""
        return bool(self._index)

    def _entries(self, handle: str, key: str) -> Iterable[IndexEntry] | None:
        found = self._index.get(handle)
        if found is not None or not self._index:
            return found
        if self._keyed is None:
            keyed: dict[str, Iterable[IndexEntry]] = {}
            for written, entries in self._index.items():
                if keyed.setdefault(handle_key(written), entries) is not entries:
                    raise InvalidValue(f"index entries given twice for {written} (differing case)")
            self._keyed = keyed
        return self._keyed.get(key)

    def rows_for(self, handles: Iterable[tuple[str, str]]) -> tuple[list[str], list[IndexRow]]:
        """For the handles a write changes, as (handle as written, handle key) pairs: the keys
        of those whose entries it replaces (the ones the context names) and their new rows.
        InvalidValue for malformed entries (see :func:`normalise_index`)."""
        replaced: list[str] = []
        rows: list[IndexRow] = []
        for handle, key in handles:
            entries = self._entries(handle, key)
            if entries is not None:
                replaced.append(key)
                rows.extend(_entry_rows(key, entries))
        return replaced, rows


def write_meta() -> WriteMeta:
    """The current write context (:func:`~idnode.store.writectx.current`) as a WriteMeta."""
    context = current()
    return WriteMeta(context.actor, context.origin, context.index)


def unique_keys(rows: Iterable[IndexRow]) -> list[str]:
    """The keys of the UNIQUE rows among ``rows``, in order."""
    return [row[1] for row in rows if row[0] == IndexKind.UNIQUE]


def unique_conflict(
    rows: Iterable[IndexRow], holders: Mapping[str, tuple[str, str]]
) -> UniqueValueTaken:
    """The error for the first UNIQUE row of ``rows`` (in key order) whose key another
    handle holds.

    ``holders`` maps UNIQUE keys to their holder now, as (handle key, display handle), read in
    the write's transaction after its inserts. Called when fewer rows went in than were given;
    if no row conflicts with another handle after all, the rows did not go in for a reason
    the schema does not allow, and that is a StoreError.
    """
    for kind, entry_key, key, _detail in sorted(rows):
        holder = holders.get(entry_key) if kind == IndexKind.UNIQUE else None
        if holder is not None and holder[0] != key:
            return UniqueValueTaken(entry_key, holder[1])
    raise StoreError("index entries were not written, and no unique value conflicts")
