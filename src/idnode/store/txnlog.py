"""The transaction log and replicated changes, as the backends share them (no SQL here).

Every write to a store appends one :class:`Txn` per handle or prefix it changed, in the same
database transaction (schema ``0002_txn_log.sql``). A primary sends the log to its mirrors
(:mod:`idnode.server.replication`): the transaction ids and actions from the log, the values as
the records are when sent, as the reference server does. A mirror applies what it receives as
:class:`Change` lists (``HandleStore.apply_replicated``), recording in the same transaction how
far it has followed that source, so a mirror killed at any point resumes where it stopped.

The log is also the **audit trail** (schema ``0003_index_audit.sql``): each entry carries the
``actor`` and ``origin`` of the write that appended it (from
:func:`idnode.store.writectx.current`), read back as :class:`AuditEntry` by
``HandleStore.audit``. It is append-only: no method updates or deletes an entry, except
``HandleStore.prune_txn_log``, which drops whole entries by age and so shortens the audit
trail and the replication history together; run it by a retention policy that keeps both
as long as they are needed (e.g. the audit retention the operator must meet, and longer than
a mirror may lag).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from idnode.store.records import NA_PREFIX

__all__ = ["Action", "AuditEntry", "Change", "Txn", "TxnLogState", "now_ms", "prefix_entry"]


class Action(enum.IntEnum):
    """The reference server's transaction actions (``Transaction.ACTION_*``)."""

    CREATE_HANDLE = 1
    DELETE_HANDLE = 2
    UPDATE_HANDLE = 3
    HOME_PREFIX = 4
    UNHOME_PREFIX = 5


@dataclass(frozen=True, slots=True)
class Txn:
    """One entry of the log: ``handle`` is the handle as written, or ``0.NA/<prefix>`` for
    :attr:`Action.HOME_PREFIX` / :attr:`Action.UNHOME_PREFIX`."""

    txn_id: int
    handle: str
    action: Action
    date_ms: int


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the audit trail: a :class:`Txn` with who made the write and from where.

    ``actor`` is the identity the write was made as (``index:handle``, or an account name) and
    ``origin`` the client's address, both as the layer above set them in the write context;
    None when unknown (entries written before schema version 3, writes made without a write
    context, e.g. ``idnode import`` run locally, unless it sets one)."""

    txn_id: int
    handle: str
    action: Action
    date_ms: int
    actor: str | None
    origin: str | None


@dataclass(frozen=True, slots=True)
class TxnLogState:
    """``first_txn_id``/``first_date_ms``: the oldest entry still kept (None when the log is
    empty); ``last_txn_id``: the last id handed out (0 before the first write), which stays
    when old entries are pruned."""

    first_txn_id: int | None
    first_date_ms: int | None
    last_txn_id: int


@dataclass(frozen=True, slots=True)
class Change:
    """A replicated change. ``record`` is the handle's whole record
    (:func:`~idnode.protocol.values.encode_record`) for create/update, None otherwise; for the
    prefix actions ``handle`` is ``0.NA/<prefix>``."""

    action: Action
    handle: str
    record: bytes | None = None

    def __post_init__(self) -> None:
        puts = self.action in (Action.CREATE_HANDLE, Action.UPDATE_HANDLE)
        if puts != (self.record is not None):
            raise ValueError(f"{self.action.name} {'needs' if puts else 'takes no'} record")

    @property
    def prefix(self) -> str:
        """The prefix of a home/unhome change (``handle`` without ``0.NA/``)."""
        if self.handle[: len(NA_PREFIX)].upper() == NA_PREFIX.upper():
            return self.handle[len(NA_PREFIX) :]
        return self.handle


def prefix_entry(prefix: str) -> str:
    """The log's handle for a home/unhome of ``prefix``: ``0.NA/<prefix>``."""
    return NA_PREFIX + prefix


def now_ms() -> int:
    """The time stamped on log entries: milliseconds since the epoch."""
    return time.time_ns() // 1_000_000
