"""Rebuilding the write index (references and unique values) from the stored records.

The index is written with every write (:mod:`idnode.store.writectx`), so it needs rebuilding
only where records arrived without it: a database restored from a dump (dumps carry records,
not index entries) or a mirror about to become a primary (replicated writes carry none).
:func:`reindex` reads every record, computes the entries of each identifier linked to a
template (the version it names, else the current one) and replaces them in batches.
Identifiers whose template cannot be read keep no entries and are counted as skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from idnode.errors import HandleError
from idnode.industry.enforce import TemplateGuard, index_entries
from idnode.industry.records import template_link
from idnode.protocol.values import HandleValue
from idnode.store import HandleStore
from idnode.store.writectx import IndexEntry

__all__ = ["ReindexReport", "reindex"]


@dataclass
class ReindexReport:
    records: int = 0
    indexed: int = 0
    skipped: int = 0


async def reindex(store: HandleStore, guard: TemplateGuard, *, batch: int = 1000) -> ReindexReport:
    """Recompute and replace the index entries of every templated identifier in ``store``."""
    report = ReindexReport()
    pending: dict[str, frozenset[IndexEntry]] = {}
    after: str | None = None
    while page := await store.scan(after, batch):
        after = page[-1][0]
        for handle, values in page:
            report.records += 1
            entries = await _entries(guard, values)
            if entries is None:
                report.skipped += 1 if template_link(values) else 0
                continue
            pending[handle] = entries
        if len(pending) >= batch:
            report.indexed += await store.reindex(pending)
            pending = {}
    if pending:
        report.indexed += await store.reindex(pending)
    return report


async def _entries(
    guard: TemplateGuard, values: Iterable[HandleValue]
) -> frozenset[IndexEntry] | None:
    values = tuple(values)
    link = template_link(values)
    if link is None:
        return None
    template_handle, version = link
    try:
        history = await guard.templates.history(template_handle)
        template = history.version(version) if version is not None else history.latest
    except HandleError:
        return None
    entries, _unique = index_entries(template, values)
    return entries
