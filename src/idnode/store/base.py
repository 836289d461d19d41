"""The storage interface every backend implements.

A store keeps handle records (each value as its encoded bytes, :meth:`HandleValue.encode`) and
the set of prefixes homed on this node. Every method is one atomic transaction: when an
awaited write returns, it is durable (it survives ``kill -9`` of the process). Handles are matched
case-insensitively by :func:`handle_key` (ASCII upper-casing, as the reference server does with
``case_sensitive = no``), while the handle string as first created is kept for display.

Errors are raised from :mod:`idnode.errors`: :class:`HandleNotFound`,
:class:`HandleAlreadyExists`, :class:`ValueAlreadyExists`, :class:`ValuesNotFound`,
:class:`UniqueValueTaken`, and :class:`StoreError` (wrapping driver errors) for everything else.

The write index and the audit trail: every write method reads the write context
(:func:`idnode.store.writectx.current`) when it is called and, in the same transaction as the
record change, stores its ``actor`` and ``origin`` with the transaction-log entries it appends
and replaces the index entries of each handle it writes that the context gives entries for (a
handle written without entries keeps those it had; a deleted handle loses its entries). A
UNIQUE entry whose key another handle holds, or that two handles of one write claim, fails
the whole write with UniqueValueTaken. :meth:`HandleStore.referrers`,
:meth:`~HandleStore.references` and :meth:`~HandleStore.lookup_unique` read the index (never a
scan); :meth:`~HandleStore.audit` reads the log, which nothing updates and only
:meth:`~HandleStore.prune_txn_log` shortens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from idnode.protocol.values import HandleValue

if TYPE_CHECKING:
    from idnode.store.stats import ChildReport, DayCount, Registrations
    from idnode.store.txnlog import AuditEntry, Change, Txn, TxnLogState
    from idnode.store.writectx import IndexEntry

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

    async def get_record(self, handle: str) -> bytes | None:
        """The stored record of ``handle`` (the wire form of its value list,
        :func:`~idnode.store.records.encode`), or None if the handle does not exist."""
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
        otherwise, nothing changes); the records must be well formed (callers encode them).
        The index entries of the handles created come from the write context like those of
        any write (existing handles keep theirs); a UNIQUE conflict fails the whole batch."""
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
        """Whether ``prefix`` is homed here (case-insensitive). Answered from memory: this
        store's own home/unhome are seen at once, another process's within a second
        (:mod:`~.homedcache`)."""
        ...

    async def txn_log(self, after: int, limit: int = 1000) -> list[Txn]:
        """Up to ``limit`` transaction-log entries with ids above ``after``, in id order. Every
        write appends one entry per handle or prefix it changed (:mod:`~.txnlog`)."""
        ...

    async def txn_log_state(self) -> TxnLogState:
        """The oldest log entry kept and the last transaction id handed out."""
        ...

    async def prune_txn_log(self, before_ms: int) -> int:
        """Drop log entries dated before ``before_ms`` (epoch ms); the number dropped.

        The log is also the audit trail (:meth:`audit`), and this is the only way its entries
        go: pruning shortens both, so it should follow a retention policy that keeps the
        audit trail as long as required (and the log longer than any mirror may lag)."""
        ...

    async def audit(
        self, handle: str | None = None, after_txn: int = 0, limit: int = 100
    ) -> list[AuditEntry]:
        """The audit trail: up to ``limit`` log entries with ids above ``after_txn``, in id
        order, each with the actor and origin of its write (None where unknown); only the
        entries of ``handle`` (matched case-insensitively, through an index) if given. Page on
        with ``after_txn`` = the last id returned. There is no way to change an entry."""
        ...

    async def referrers(
        self, handle: str, limit: int = 100, after: str | None = None
    ) -> list[tuple[str, str]]:
        """Where ``handle`` is used: (referring handle as stored, detail) for every REFERENCE
        entry whose key is ``handle_key(handle)``, ordered by the referrer's key then detail.
        ``limit`` counts referring handles, not rows (a handle referencing ``handle`` through
        two attributes gives two rows, never split over pages); ``after`` continues after
        the handle with that key (the last referrer of the previous page)."""
        ...

    async def references(self, handle: str) -> list[tuple[str, str]]:
        """What ``handle``'s REFERENCE entries name: (referenced handle key, detail), sorted.
        Empty for a handle without entries (or that does not exist)."""
        ...

    async def lookup_unique(self, key: str) -> str | None:
        """The handle (as stored) holding the UNIQUE entry ``key``, None if no handle does."""
        ...

    async def reindex(self, index: Mapping[str, Iterable[IndexEntry]]) -> int:
        """Replace the index entries of the handles in ``index`` (keyed by handle) with the
        entries given, without changing their records or the log: rebuilding the index of a
        database restored from a dump or of a mirror (whose replicated writes carry none).
        Handles that do not exist are skipped; returns how many were reindexed. One
        transaction: a UNIQUE conflict raises UniqueValueTaken and changes nothing."""
        ...

    async def apply_replicated(
        self, changes: Sequence[Change], *, source: str | None, txn_id: int, date_ms: int
    ) -> None:
        """Apply changes received from a primary and record, in the same transaction, that
        ``source`` has been followed up to ``txn_id`` (its clock: ``date_ms``; None: record
        nothing, for part of a dump). Creates and
        updates replace the whole record; deleting an absent handle, homing a homed prefix
        or unhoming one not homed is not an error. The changes enter this store's own log,
        with the write context's actor and origin.

        The index is not replicated: every handle changed here loses its index entries (the
        context's are ignored), so a mirror never holds entries that no longer match its
        records, and never refuses a change from its primary over a UNIQUE key. Its reverse
        lookups are therefore empty; :meth:`reindex` rebuilds the index (e.g. before a mirror
        becomes a primary)."""
        ...

    async def replication_source(self, source: str) -> tuple[int, int] | None:
        """(last txn id, last date ms) recorded for ``source``, None if never followed."""
        ...

    async def close(self) -> None:
        """Release connections and threads. Further calls are errors."""
        ...

    # -- statistics (schema 0004_stats.sql, idnode.store.stats) ------------------------------

    async def add_stats(
        self, counts: Sequence[DayCount], *, position: tuple[int, int] | None = None
    ) -> bool:
        """Add ``counts`` to the per prefix per day statistics (a row absent is created), in
        one transaction. With ``position`` = (from, to), the same transaction moves the
        statistics' position in the transaction log (:meth:`stats_position`) from ``from`` to
        ``to``; if it is not at ``from`` (another flusher moved it), nothing is written and
        the result is False. True otherwise."""
        ...

    async def stats_position(self) -> int:
        """The last transaction-log id whose registrations the statistics hold (0 at first)."""
        ...

    async def registrations(self, after: int, limit: int) -> Registrations:
        """The registrations (CREATE_HANDLE entries) among the first ``limit`` log entries
        with ids above ``after``, counted per prefix and UTC day by the database, so that a
        node catching up on a large import does not read the entries one by one."""
        ...

    async def stats(
        self, prefix: str | None = None, since: str | None = None, until: str | None = None
    ) -> list[DayCount]:
        """The statistics per prefix per day, ordered by day then prefix key: of ``prefix``
        only (case-insensitive) if given, of the UTC days ``since`` to ``until`` (inclusive,
        ``YYYY-MM-DD``) if given."""
        ...

    async def put_child_report(
        self, child: str, report: str, counts: Sequence[DayCount], received_ms: int
    ) -> None:
        """Keep the report of the child node ``child`` (its identity): ``report`` (JSON text)
        replaces the child's last one, and each of ``counts`` (the child's totals of one
        prefix and day) replaces the row held for that prefix and day. One transaction."""
        ...

    async def child_reports(
        self, since: str | None = None, until: str | None = None
    ) -> list[ChildReport]:
        """The children's last reports, ordered by child, each with the counts it reported
        for the days ``since`` to ``until`` (inclusive) if given."""
        ...
