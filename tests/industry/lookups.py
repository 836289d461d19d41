"""An in-memory :class:`~idnode.industry.validate.Lookups` for the tests."""

from __future__ import annotations

from collections.abc import Iterable

from idnode.industry.layout import DATA_INDEX_START
from idnode.industry.records import template_link
from idnode.protocol.values import HandleValue


class InMemoryLookups:
    """Identifiers held in a dict; unique values indexed by (template, attribute, value)."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[HandleValue, ...]] = {}
        self._used: dict[tuple[str, str, str], set[str]] = {}

    def add(self, handle: str, values: Iterable[HandleValue]) -> None:
        """Store ``handle`` (replacing an older record of it)."""
        self.remove(handle)
        self.records[handle] = tuple(values)
        for key in self._keys(self.records[handle]):
            self._used.setdefault(key, set()).add(handle)

    def remove(self, handle: str) -> None:
        for key in self._keys(self.records.pop(handle, ())):
            self._used[key].discard(handle)

    @staticmethod
    def _keys(values: tuple[HandleValue, ...]) -> list[tuple[str, str, str]]:
        link = template_link(values)
        if link is None:
            return []
        return [
            (link[0], v.type, v.data.decode("utf-8", "replace"))
            for v in values
            if v.index >= DATA_INDEX_START
        ]

    async def exists(self, handle: str) -> bool:
        return handle in self.records

    async def template_of(self, handle: str) -> str | None:
        link = template_link(self.records.get(handle, ()))
        return None if link is None else link[0]

    async def is_unique(self, template: str, attribute: str, value: str, handle: str) -> bool:
        return not (self._used.get((template, attribute, value), set()) - {handle})
