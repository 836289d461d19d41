"""The PV supply chain of the traceability tests: the pack's templates and identifiers
(polysilicon lot → ingot → wafer lot → cell lot → module), their index entries, and loading
them into a store through the write context (as the dispatcher's template guard does for
writes over the protocols)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from idnode.industry import enforce
from idnode.industry.history import TemplateHistory
from idnode.industry.packs.base import Identifier
from idnode.industry.packs.pv import PVPrefixes, generate, templates
from idnode.industry.records import history_to_values
from idnode.protocol.values import HandleValue, encode_record
from idnode.store.base import HandleStore
from idnode.store.writectx import IndexEntry, WriteContext, write_context

__all__ = [
    "LOT_SIZE",
    "PREFIXES",
    "chain",
    "index_entries",
    "load",
    "template_values",
]

PREFIXES = PVPrefixes()
#: Identifiers per polysilicon lot: the lot, 2 ingots, 4 wafer lots, 4 cell lots, 96 modules.
LOT_SIZE = 107


def chain(lots: int = 2) -> list[Identifier]:
    """The first ``lots`` polysilicon lots of the PV stream (seed 0), upstream first."""
    return list(itertools.islice(generate(PREFIXES, 0), LOT_SIZE * lots))


def template_values() -> dict[str, tuple[HandleValue, ...]]:
    """The records of the pack's templates, by template handle."""
    return {t.id: history_to_values(TemplateHistory.start(t)) for t in templates(PREFIXES)}


def index_entries(identifier: Identifier) -> frozenset[IndexEntry]:
    """REFERENCE entries of its reference attributes, UNIQUE entries of its unique ones, as
    the template guard computes them for a write."""
    return enforce.index_entries(identifier.template, identifier.values)[0]


async def load(
    store: HandleStore,
    identifiers: Iterable[Identifier],
    *,
    actor: str | None = "300:0.NA/88.118.8",
    origin: str | None = "127.0.0.1:9",
    with_templates: bool = True,
) -> None:
    """Home the chain's prefixes, write the templates, and register ``identifiers`` in one
    bulk write carrying their index entries."""
    identifiers = list(identifiers)
    for prefix in {PREFIXES.polysilicon, PREFIXES.wafer, PREFIXES.cell, PREFIXES.module}:
        await store.home_prefix(prefix)
    if with_templates:
        for handle, values in template_values().items():
            await store.create_handle(handle, values, overwrite=True)
    context = WriteContext(
        actor=actor, origin=origin, index={i.handle: index_entries(i) for i in identifiers}
    )
    with write_context(context):
        created = await store.create_records(
            [(i.handle, encode_record(i.values)) for i in identifiers]
        )
    assert all(created)
