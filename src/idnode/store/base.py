"""The storage interface every backend implements.

A store keeps handle records (each value as its encoded bytes, :meth:`HandleValue.encode`) and
the set of prefixes homed on this node. Every method is one atomic transaction: when an
awaited write returns, it is durable (it survives ``kill -9`` of the process). Handles are matched
case-insensitively by :func:`handle_key` (ASCII upper-casing, as the reference server does with
``case_sensitive = no``), while the handle string as first created is kept for display.

Errors are raised from :mod:`idnode.errors`: :class:`HandleNotFound`,
:class:`HandleAlreadyExists`, :class:`ValueAlreadyExists`, :class:`ValuesNotFound`, and
:class:`StoreError` (wrapping driver errors) for everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from idnode.protocol.values import HandleValue

if TYPE_CHECKING:
    from idnode.store.txnlog import Change, Txn, TxnLogState

__all__ = ["HandleStore", "handle_key", "prefix_of"]

_ASCII_UPPER = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def handle_key(handle: str) -> str:
    """The lookup key of ``handle``: ASCII letters upper-cased, everything else unchanged."""
    if handle.isascii():
        return handle.upper()
    return handle.encode("utf-8").translate(_ASCII_UPPER).decode("utf-8")


def prefix_of(handle: str) -> str:
    """The prefix part of ``handle`` (before the first ``/``); a handle without one is a prefix."""
    return handle.split("/", 1)[0]


class HandleStore(Protocol):
    """Async storage of handle records and homed prefixes."""

    async def get_handle(self, handle: str) -> tuple[HandleValue, ...] | None:
        """All values of ``handle`` ordered by index, or None if the handle does not exist."""
        ...

    async def create_handle(
        self, handle: str, values: Sequence[HandleValue], *, overwrite: bool = False
    ) -> None:
        """Create ``handle`` with ``values`` (indexes unique). With ``overwrite`` an existing
        record is replaced whole; without it an existing handle raises HandleAlreadyExists."""
        ...

    async def create_records(self, records: Sequence[tuple[str, bytes]]) -> list[bool]:
        """Bulk registration, one transaction: create every handle of ``records`` (handle,
        :func:`~idnode.protocol.values.encode_record` bytes) that does not exist yet and leave
        existing ones unchanged, so running the same batch twice adds nothing. Returns, per
        record, whether it was created. A handle may appear once per call (InvalidValue
        otherwise, nothing changes); the records must be well formed (callers encode them)."""
        ...

    async def scan(
        self, after: str | None = None, limit: int = 1000
    ) -> list[tuple[str, tuple[HandleValue, ...]]]:
        """Up to ``limit`` handles with their values, in key order, starting after the handle
        whose key is ``handle_key(after)`` (from the start when None): dump and replication."""
        ...

    async def count_handles(self) -> int:
        """The number of handles stored."""
        ...

    async def delete_handle(self, handle: str) -> None:
        """Delete the handle and all its values; HandleNotFound if absent."""
        ...

    async def add_values(
        self, handle: str, values: Sequence[HandleValue], *, overwrite: bool = False
    ) -> None:
        """Add values; HandleNotFound if absent. An index already present raises
        ValueAlreadyExists unless ``overwrite``, in which case it is replaced."""
        ...

    async def modify_values(self, handle: str, values: Sequence[HandleValue]) -> None:
        """Replace values by index; ValuesNotFound if any index is absent (nothing changes)."""
        ...

    async def remove_values(self, handle: str, indexes: Sequence[int]) -> None:
        """Remove values by index; ValuesNotFound if any index is absent (nothing changes)."""
        ...

    async def list_handles(self, prefix: str) -> list[str]:
        """Handles whose prefix part is ``prefix`` (case-insensitive), sorted by key."""
        ...

    async def list_derived_prefixes(self, prefix: str) -> list[str]:
        """Prefix handles ``0.NA/<prefix>.<x>...`` stored here, sorted by key."""
        ...

    async def home_prefix(self, prefix: str) -> None:
        """Mark ``prefix`` (without ``0.NA/``) as served by this node. Idempotent."""
        ...

    async def unhome_prefix(self, prefix: str) -> None:
        """Stop serving ``prefix``; HandleNotFound if it was not homed."""
        ...

    async def homed_prefixes(self) -> list[str]:
        """All homed prefixes, sorted by key."""
        ...

    async def is_homed(self, prefix: str) -> bool:
        """Whether ``prefix`` is homed here (case-insensitive)."""
        ...

    async def txn_log(self, after: int, limit: int = 1000) -> list[Txn]:
        """Up to ``limit`` transaction-log entries with ids above ``after``, in id order. Every
        write appends one entry per handle or prefix it changed (:mod:`~.txnlog`)."""
        ...

    async def txn_log_state(self) -> TxnLogState:
        """The oldest log entry kept and the last transaction id handed out."""
        ...

    async def prune_txn_log(self, before_ms: int) -> int:
        """Drop log entries dated before ``before_ms`` (epoch ms); the number dropped."""
        ...

    async def apply_replicated(
        self, changes: Sequence[Change], *, source: str | None, txn_id: int, date_ms: int
    ) -> None:
        """Apply changes received from a primary and record, in the same transaction, that
        ``source`` has been followed up to ``txn_id`` (its clock: ``date_ms``; None: record
        nothing, for part of a dump). Creates and
        updates replace the whole record; deleting an absent handle, homing a homed prefix
        or unhoming one not homed is not an error. The changes enter this store's own log."""
        ...

    async def replication_source(self, source: str) -> tuple[int, int] | None:
        """(last txn id, last date ms) recorded for ``source``, None if never followed."""
        ...

    async def close(self) -> None:
        """Release connections and threads. Further calls are errors."""
        ...
