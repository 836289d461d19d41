"""What a write carries besides the record: who made it, and the index entries of the records
it writes. Set by the caller (:func:`write_context`), read by the store at the start of each
write method and written **in the same transaction** as the records.

* ``actor`` / ``origin``: the identity (``index:handle``, or an account name) and the client
  address of the request; stored with the write's transaction-log entries, which are the
  audit trail (``HandleStore.audit``).
* ``index``: per handle (as written), the complete set of :class:`IndexEntry` it has after
  the write. The store replaces the handle's entries with these; a handle written without an
  entry here keeps the entries it had (a deleted handle loses them). Entries of kind
  :attr:`IndexKind.UNIQUE` are unique across the store: a write that would give one key two
  handles fails as a whole with :class:`~idnode.errors.UniqueValueTaken` and changes nothing.

The store does not interpret templates: the layer above computes the entries (references
from reference attributes, unique attribute values) and the store keeps them consistent with
the records, atomically. A contextvar, rather than a parameter on every write method, keeps
the :class:`~idnode.store.base.HandleStore` signatures as the protocol layer uses them.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

__all__ = ["IndexEntry", "IndexKind", "WriteContext", "current", "write_context"]


class IndexKind(enum.IntEnum):
    REFERENCE = 1
    """``key`` is the handle_key of an identifier this record references (traceability: the
    reverse lookup "which records reference X" reads these)."""
    UNIQUE = 2
    """``key`` is ``<template handle key> <attribute> <value>`` of a unique attribute."""


@dataclass(frozen=True, slots=True, order=True)
class IndexEntry:
    kind: IndexKind
    key: str
    detail: str = ""
    """Free text kept with the entry (for references: the attribute that holds it)."""


@dataclass(frozen=True)
class WriteContext:
    actor: str | None = None
    origin: str | None = None
    index: Mapping[str, frozenset[IndexEntry]] = field(default_factory=dict)


_CURRENT: contextvars.ContextVar[WriteContext | None] = contextvars.ContextVar(
    "idnode_write_context", default=None
)


def current() -> WriteContext:
    """The context of the write being made (an empty one outside :func:`write_context`)."""
    return _CURRENT.get() or WriteContext()


@contextlib.contextmanager
def write_context(context: WriteContext) -> Iterator[WriteContext]:
    """Make the writes inside the block carry ``context``."""
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)
