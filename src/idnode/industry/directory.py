"""Where enforcement reads other identifiers from: this node's store, or the hierarchy.

* :class:`RecordReader` reads a record wherever it lives: from the store when this node holds
  the handle (``is_local``), else through the recursive :class:`~idnode.resolver.Resolver`
  (public values only). A handle on another node with no resolver configured, or whose
  resolution fails, raises :class:`Unreachable` saying why.
* :class:`TemplateSource` reads templates (:class:`~idnode.industry.history.TemplateHistory`)
  through a reader and keeps the parsed ones in a bounded LRU cache. An entry lives at most
  ``max_age`` seconds, and :meth:`TemplateSource.invalidate` drops it as soon as the handle is
  written on this node, so a published, withdrawn or revised template applies to the next
  write. Failures are not cached. Problems with the template itself come out as a
  :class:`~idnode.industry.codes.TemplateViolation` on the ``TEMPLATE`` field.
* :class:`StoreLookups` answers :class:`~idnode.industry.validate.Lookups` from a reader and
  the store's unique index (``HandleStore.lookup_unique``; no scan), overlaid with the items
  of a batch checked before (:class:`Pending`), so an identifier may reference or collide
  with one registered earlier in the same batch.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from idnode.errors import HandleError, HandleNotFound, ValuesNotFound
from idnode.industry.codes import Code, FieldError, TemplateViolation
from idnode.industry.history import TemplateHistory
from idnode.industry.layout import TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE
from idnode.industry.model import InvalidTemplate
from idnode.industry.records import history_from_values, is_template_record, template_link
from idnode.protocol.values import HandleValue
from idnode.resolver import Resolver
from idnode.store.base import HandleStore, handle_key

__all__ = [
    "IsLocal",
    "Pending",
    "RecordReader",
    "StoreLookups",
    "TemplateSource",
    "Unreachable",
    "unique_key",
]

#: Whether this node holds a handle in its own store.
IsLocal = Callable[[str], Awaitable[bool]]


def unique_key(template: str, attribute: str, value: str) -> str:
    """The UNIQUE index key of ``value`` of ``attribute`` of ``template``'s identifiers."""
    return f"{handle_key(template)} {attribute} {value}"


class Unreachable(Exception):
    """A handle on another node cannot be read (no resolver, or the resolution failed)."""


class RecordReader:
    """Reads records from the store (handles this node holds) or through ``resolver``."""

    def __init__(self, store: HandleStore, *, resolver: Resolver | None, is_local: IsLocal) -> None:
        self.store = store
        self.resolver = resolver
        self.is_local = is_local

    async def read(
        self, handle: str, indexes: Sequence[int] = ()
    ) -> tuple[HandleValue, ...] | None:
        """The values of ``handle`` (those at ``indexes`` when given: an existing handle
        without them gives ``()``), None if it does not exist. Raises :class:`Unreachable`."""
        if await self.is_local(handle):
            values = await self.store.get_handle(handle)
            if values is None or not indexes:
                return values
            return tuple(v for v in values if v.index in indexes)
        if self.resolver is None:
            raise Unreachable("it is on another node and this node has no resolver (roots)")
        try:
            return await self.resolver.resolve(handle, indexes=indexes)
        except HandleNotFound:
            return None
        except ValuesNotFound:
            return ()
        except HandleError as exc:
            raise Unreachable(f"resolving it failed: {exc.message or type(exc).__name__}") from exc


@dataclass
class _Cached:
    history: TemplateHistory
    values: tuple[HandleValue, ...]
    expires: float


def _template_error(code: Code, message: str) -> TemplateViolation:
    return TemplateViolation([FieldError(TEMPLATE_LINK_TYPE, code, message, TEMPLATE_LINK_INDEX)])


class TemplateSource:
    """Parsed templates by handle, read through ``reader`` and cached (module docstring).
    ``clock`` gives seconds; ``max_age`` may be ``math.inf`` (a one-off job such as an
    import, which then reads each template once)."""

    def __init__(
        self,
        reader: RecordReader,
        *,
        size: int = 256,
        max_age: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if size < 1:
            raise ValueError("the template cache holds at least one template")
        self.reader = reader
        self.size = size
        self.max_age = max_age
        self._clock = clock
        self._cache: collections.OrderedDict[str, _Cached] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    def invalidate(self, handle: str) -> None:
        """Forget ``handle`` (called whenever it is written or deleted on this node)."""
        self._cache.pop(handle_key(handle), None)

    async def history(self, handle: str, pending: Pending | None = None) -> TemplateHistory:
        """Every version of template ``handle`` (from ``pending`` when a batch registers it
        before its instances; not cached then). Raises :class:`TemplateViolation`:
        ``template_link`` when it does not exist or is not a template,
        ``template_unavailable`` when it cannot be read or its record is not valid."""
        key = handle_key(handle)
        if pending is not None and key in pending.records:
            return self._parse(handle, pending.records[key])
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached.expires > now:
            self._cache.move_to_end(key)
            return cached.history
        try:
            values = await self.reader.read(handle)
        except Unreachable as exc:
            raise _template_error(
                Code.TEMPLATE_UNAVAILABLE, f"template {handle} cannot be read: {exc}"
            ) from exc
        history = self._parse(handle, values)
        expires = now + self.max_age if math.isfinite(self.max_age) else math.inf
        self._cache[key] = _Cached(history, values or (), expires)
        self._cache.move_to_end(key)
        while len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return history

    async def record(self, handle: str, pending: Pending | None = None) -> tuple[HandleValue, ...]:
        """The values of template ``handle`` as :meth:`history` read them (same cache, same
        errors): its grant values with its definitions."""
        key = handle_key(handle)
        if pending is not None and key in pending.records:
            return pending.records[key]
        await self.history(handle)
        cached = self._cache.get(key)
        if cached is not None:
            return cached.values
        values = await self.reader.read(handle)  # evicted at once by a tiny cache
        return values or ()

    @staticmethod
    def _parse(handle: str, values: tuple[HandleValue, ...] | None) -> TemplateHistory:
        if values is None:
            raise _template_error(Code.TEMPLATE_LINK, f"template {handle} does not exist")
        if not is_template_record(values):
            raise _template_error(Code.TEMPLATE_LINK, f"{handle} is not a template")
        try:
            return history_from_values(handle, values)
        except InvalidTemplate as exc:
            message = f"template {handle} is not valid: {exc.message}"
            raise _template_error(Code.TEMPLATE_UNAVAILABLE, message) from exc


@dataclass
class Pending:
    """Identifiers of a batch that passed their checks but are not written yet."""

    records: dict[str, tuple[HandleValue, ...]] = field(default_factory=dict)
    """handle key → values."""
    unique: dict[str, str] = field(default_factory=dict)
    """unique index key → handle key of the item claiming it."""

    def add(self, handle: str, values: tuple[HandleValue, ...], unique: Sequence[str]) -> None:
        key = handle_key(handle)
        self.records[key] = values
        for entry in unique:
            self.unique.setdefault(entry, key)


class StoreLookups:
    """:class:`~idnode.industry.validate.Lookups` from ``reader`` and the store's unique
    index, with ``pending`` items first. References the reader cannot check are reported as
    missing; :attr:`unreachable` says why, per handle, for the error message."""

    def __init__(self, reader: RecordReader, pending: Pending | None = None) -> None:
        self.reader = reader
        self.pending = pending or Pending()
        self.unreachable: dict[str, str] = {}

    async def _read(self, handle: str) -> tuple[HandleValue, ...] | None:
        pending = self.pending.records.get(handle_key(handle))
        if pending is not None:
            return pending
        try:
            return await self.reader.read(handle, (TEMPLATE_LINK_INDEX,))
        except Unreachable as exc:
            self.unreachable[handle] = str(exc)
            return None

    async def exists(self, handle: str) -> bool:
        return await self._read(handle) is not None

    async def template_of(self, handle: str) -> str | None:
        link = template_link(await self._read(handle) or ())
        return None if link is None else link[0]

    async def is_unique(self, template: str, attribute: str, value: str, handle: str) -> bool:
        key = unique_key(template, attribute, value)
        mine = handle_key(handle)
        claimed = self.pending.unique.get(key)
        if claimed is not None and claimed != mine:
            return False
        holder = await self.reader.store.lookup_unique(key)
        return holder is None or handle_key(holder) == mine
