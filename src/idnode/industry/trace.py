"""Traceability: the graph of identifiers linked by reference attributes (spec
industrial-identifier-system §5, "trace a module back to its polysilicon lot").

An instance's reference attributes (values at index ≥ 2000 whose type its template declares
``reference``) name other identifiers, here or on other nodes. From a root identifier:

* **upstream** is what it references, and what those reference, and so on: read from each
  record's visible values and its template (:func:`references_in`). When the template is not
  at hand (no link, or its record cannot be read), a record held here falls back to its
  REFERENCE entries in the store's write index, each kept only if a visible value of the
  attribute it names is there;
* **downstream** is what references it, and so on: the store's reverse index
  (:meth:`~idnode.store.base.HandleStore.referrers`), never a scan. A referrer is shown only if
  the caller can see the value that references the node, so the graph reveals no link its
  records would hide. The index holds the writes made *on this node*: referrers registered on
  other nodes are not found (no node knows who references its identifiers elsewhere).

Identifiers this node does not hold are read through its :class:`~idnode.resolver.Resolver`
(a node with ``roots`` configured), as public values only; without one they appear as nodes
with an error (``ServerNotResponsible``). Templates are read the same way.

The walk goes level by level up to ``depth`` hops from the root in each direction (``both``
walks up from the root and down from the root, not down from what is upstream), visits each
identifier once per direction (so cycles end), and stops adding identifiers at ``max_nodes``
(the graph is then marked ``truncated``). Reads of one level run concurrently.

What the caller may see is decided by a :class:`Visibility` policy, applied to every record
held here. :class:`HandlePermissions` is the Handle system's: PUBLIC_READ values for everyone,
and ADMIN_READ values too for an identity that may read them as an administrator of the
record (READ_VALUE through its HS_ADMIN values, or a server administrator), exactly as
resolution decides (spec §1.11). :class:`~idnode.industry.grants.GrantVisibility` adds the
per-attribute data grants (spec §2.3) and is the default of :class:`NodeSource`.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from idnode.errors import (
    HandleError,
    HandleNotFound,
    InsufficientPermissions,
    InvalidAdmin,
    OperationNotSupported,
    ServerNotResponsible,
    ValuesNotFound,
)
from idnode.industry.datatypes import split_items
from idnode.industry.grants import GrantPolicy, GrantVisibility
from idnode.industry.history import TemplateHistory
from idnode.industry.layout import DATA_INDEX_START
from idnode.industry.model import AttributeType, Template, is_handle
from idnode.industry.records import history_from_values, template_link
from idnode.jsonvalues import value_to_json
from idnode.protocol.codes import AdminPermission
from idnode.protocol.values import HandleValue
from idnode.server.authz import Authorizer, Identity
from idnode.store.base import HandleStore, handle_key, prefix_of

__all__ = [
    "DEFAULT_DEPTH",
    "DEFAULT_MAX_NODES",
    "MAX_DEPTH",
    "ClientSource",
    "Direction",
    "Fetched",
    "HandlePermissions",
    "NodeSource",
    "PublicOnly",
    "TraceEdge",
    "TraceGraph",
    "TraceNode",
    "TraceSource",
    "Tracer",
    "Visibility",
    "references_in",
]

#: Hops from the root when the caller does not say, and the most a caller may ask for.
DEFAULT_DEPTH = 5
MAX_DEPTH = 20
#: Identifiers in one graph at most (the root included).
DEFAULT_MAX_NODES = 500
#: Records read at once while walking one level.
_CONCURRENCY = 8


class Direction(enum.StrEnum):
    UP = "up"
    """What the root references (its materials, components, parent lots)."""
    DOWN = "down"
    """What references the root (products made from it), from this node's reverse index."""
    BOTH = "both"


# -- the graph -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TraceNode:
    """One identifier of the graph, as the caller may see it."""

    handle: str
    depth: int
    """Hops from the root (0 for the root)."""
    values: tuple[HandleValue, ...] = ()
    """The values the caller may see."""
    local: bool | None = None
    """Held by this node (True), read from another node (False); None if it could not be read."""
    template: str | None = None
    template_version: int | None = None
    error: HandleError | None = None
    """Why it could not be read (not found, not served and no resolver, unreachable)."""

    def attributes(self) -> dict[str, str]:
        """The visible data attributes (index ≥ 2000) as ``{type: text}``."""
        out: dict[str, str] = {}
        for v in self.values:
            if v.index >= DATA_INDEX_START:
                try:
                    out[v.type] = v.data.decode("utf-8")
                except UnicodeDecodeError:
                    continue
        return out

    def to_json(self) -> dict[str, Any]:
        error = None
        if self.error is not None:
            error = {"responseCode": int(self.error.response_code), "message": self.error.message}
        return {
            "handle": self.handle,
            "depth": self.depth,
            "location": None if self.local is None else ("local" if self.local else "remote"),
            "template": self.template,
            "templateVersion": self.template_version,
            "attributes": self.attributes(),
            "values": [value_to_json(v) for v in self.values],
            "error": error,
        }


@dataclass(frozen=True, slots=True)
class TraceEdge:
    """``source`` references ``target`` through its attribute ``attribute`` (so ``target`` is
    upstream of ``source``)."""

    source: str
    target: str
    attribute: str

    def to_json(self) -> dict[str, str]:
        return {"from": self.source, "to": self.target, "attribute": self.attribute}


@dataclass(frozen=True, slots=True)
class TraceGraph:
    """The result of :meth:`Tracer.trace`: nodes in the order found (the root first) and the
    edges between them."""

    root: str
    direction: Direction
    depth: int
    nodes: tuple[TraceNode, ...]
    edges: tuple[TraceEdge, ...]
    truncated: bool = False
    """Identifiers were left out because the graph reached its node limit."""

    def node(self, handle: str) -> TraceNode | None:
        """The node of ``handle`` (case-insensitive), None if not in the graph."""
        key = handle_key(handle)
        return next((n for n in self.nodes if handle_key(n.handle) == key), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "direction": str(self.direction),
            "depth": self.depth,
            "truncated": self.truncated,
            "nodes": [n.to_json() for n in self.nodes],
            "edges": [e.to_json() for e in self.edges],
        }


# -- what a reference attribute names ----------------------------------------------------------
def references_in(template: Template, values: Iterable[HandleValue]) -> list[tuple[str, str]]:
    """(referenced handle, attribute key) for every identifier the reference attributes of
    ``template`` name in ``values`` (each item of a multi-valued one), in index order. A value
    counts if it sits at the index of a reference attribute whose key is its type (as
    validation requires); text that is not UTF-8, not a handle, or a malformed array is
    skipped."""
    out: list[tuple[str, str]] = []
    for value in sorted(values, key=lambda v: v.index):
        if value.index < DATA_INDEX_START:
            continue
        attr = template.at_index(value.index)
        if attr is None or attr.key != value.type or attr.type is not AttributeType.REFERENCE:
            continue
        try:
            text = value.data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        items = split_items(attr, text) if text else []
        if isinstance(items, list):
            out.extend((item, attr.key) for item in items if is_handle(item))
    return out


# -- who sees what -----------------------------------------------------------------------------
class Visibility(Protocol):
    """Which values of a record held here the viewer may see (the extension point for
    per-attribute grants)."""

    async def visible(
        self, handle: str, values: tuple[HandleValue, ...], viewer: Identity | None
    ) -> tuple[HandleValue, ...]: ...


class PublicOnly:
    """PUBLIC_READ values only, whoever asks."""

    async def visible(
        self, handle: str, values: tuple[HandleValue, ...], viewer: Identity | None
    ) -> tuple[HandleValue, ...]:
        return tuple(v for v in values if v.public_read)


class HandlePermissions:
    """The Handle system's read permissions (module docstring)."""

    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer

    async def visible(
        self, handle: str, values: tuple[HandleValue, ...], viewer: Identity | None
    ) -> tuple[HandleValue, ...]:
        public = tuple(v for v in values if v.public_read)
        if viewer is None or len(public) == len(values):
            return public
        try:
            await self.authorizer.require(viewer, values, AdminPermission.READ_VALUE)
        except (InvalidAdmin, InsufficientPermissions):
            return public
        return tuple(v for v in values if v.public_read or v.admin_read)


# -- where records come from -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Fetched:
    """A record as the viewer may see it, and whether the answering node holds it."""

    values: tuple[HandleValue, ...]
    local: bool


class TraceSource(Protocol):
    """What :class:`Tracer` reads."""

    async def fetch(self, handle: str, viewer: Identity | None) -> Fetched:
        """The visible values of ``handle``; raises the HandleError of a failure."""
        ...

    async def referrers(self, handle: str, limit: int) -> list[tuple[str, str]]:
        """(referrer, attribute) rows of up to ``limit`` handles referencing ``handle``;
        OperationNotSupported where there is no reverse index."""
        ...

    async def stored_references(self, handle: str) -> list[tuple[str, str]]:
        """(referenced handle key, attribute) from the index entries of ``handle``, for a
        record held here; empty otherwise."""
        ...


class _Resolves(Protocol):
    async def resolve(self, handle: str) -> tuple[HandleValue, ...]: ...


class NodeSource:
    """Records of a node: its store, then its resolver for what it does not hold.

    ``owns(handle)`` says whether a handle of a homed prefix belongs to this server of its
    site (:meth:`~idnode.server.placement.NodeIdentity.owns`); one that does not is read
    through the resolver like any other identifier this node does not hold.
    """

    def __init__(
        self,
        store: HandleStore,
        *,
        resolver: _Resolves | None = None,
        visibility: Visibility | None = None,
        owns: Callable[[str], bool] = lambda handle: True,
    ) -> None:
        self.store = store
        self.resolver = resolver
        self.visibility: Visibility = visibility or GrantVisibility(
            GrantPolicy(Authorizer(store), store.get_handle)
        )
        self.owns = owns

    async def fetch(self, handle: str, viewer: Identity | None) -> Fetched:
        values = await self.store.get_handle(handle)
        if values is not None:
            return Fetched(await self.visibility.visible(handle, values, viewer), True)
        if self.owns(handle) and await self.store.is_homed(prefix_of(handle)):
            raise HandleNotFound(f"handle not found: {handle}")
        if self.resolver is None:
            raise ServerNotResponsible(f"{handle} is not held here and no resolver is set up")
        try:
            return Fetched(await self.resolver.resolve(handle), False)
        except ValuesNotFound:
            return Fetched((), False)  # it exists, with nothing public

    async def referrers(self, handle: str, limit: int) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        after: str | None = None
        while limit > 0:
            page = await self.store.referrers(handle, limit=min(limit, 500), after=after)
            if not page:
                break
            rows.extend(page)
            handles = {handle_key(h) for h, _ in page}
            limit -= len(handles)
            after = page[-1][0]
            if len(handles) < 500:
                break
        return rows

    async def stored_references(self, handle: str) -> list[tuple[str, str]]:
        return await self.store.references(handle)


class ClientSource:
    """Records read with one resolution function (a client of one server): upstream only."""

    def __init__(self, resolve: Callable[[str], Awaitable[tuple[HandleValue, ...]]]) -> None:
        self.resolve = resolve

    async def fetch(self, handle: str, viewer: Identity | None) -> Fetched:
        try:
            return Fetched(await self.resolve(handle), True)
        except ValuesNotFound:
            return Fetched((), True)

    async def referrers(self, handle: str, limit: int) -> list[tuple[str, str]]:
        raise OperationNotSupported("downstream needs the node's reverse index (trace over HTTP)")

    async def stored_references(self, handle: str) -> list[tuple[str, str]]:
        return []


# -- the walk ------------------------------------------------------------------------------------
@dataclass
class _Known:
    """What one walk learnt about an identifier."""

    node: TraceNode
    refs: list[tuple[str, str]] = field(default_factory=list)
    """(referenced handle, attribute), from the visible values."""


class Tracer:
    """Builds trace graphs from a :class:`TraceSource` (module docstring)."""

    def __init__(self, source: TraceSource, *, max_nodes: int = DEFAULT_MAX_NODES) -> None:
        if max_nodes < 1:
            raise ValueError("max_nodes must be at least 1")
        self.source = source
        self.max_nodes = max_nodes

    async def trace(
        self,
        root: str,
        depth: int = DEFAULT_DEPTH,
        direction: Direction = Direction.BOTH,
        viewer: Identity | None = None,
    ) -> TraceGraph:
        """The graph around ``root`` up to ``depth`` hops in ``direction``, as ``viewer``
        (None: anonymous) may see it. Raises the root's HandleError if the root cannot be
        read, ValueError for a depth outside 0..MAX_DEPTH, and OperationNotSupported for a
        downstream walk over a source without a reverse index."""
        if not 0 <= depth <= MAX_DEPTH:
            raise ValueError(f"depth must be 0 to {MAX_DEPTH}")
        direction = Direction(direction)
        walk = _Walk(self.source, viewer, self.max_nodes)
        first = await walk.learn(root, 0)
        if first.node.error is not None:
            raise first.node.error
        walk.nodes[handle_key(root)] = first
        if direction in (Direction.UP, Direction.BOTH):
            await walk.up(handle_key(root), depth)
        if direction in (Direction.DOWN, Direction.BOTH):
            await walk.down(handle_key(root), depth)
        return TraceGraph(
            root=first.node.handle,
            direction=direction,
            depth=depth,
            nodes=tuple(known.node for known in walk.nodes.values()),
            edges=tuple(walk.edges.values()),
            truncated=walk.truncated,
        )


class _Walk:
    """One trace: the identifiers found (by key), the edges, and the caches of templates and
    of records read but not (yet) in the graph."""

    def __init__(self, source: TraceSource, viewer: Identity | None, max_nodes: int) -> None:
        self.source = source
        self.viewer = viewer
        self.max_nodes = max_nodes
        self.nodes: dict[str, _Known] = {}
        self.edges: dict[tuple[str, str, str], TraceEdge] = {}
        self.truncated = False
        self._read: dict[str, _Known] = {}  # read, not necessarily in the graph
        self._templates: dict[str, TemplateHistory | None] = {}
        self._limit = asyncio.Semaphore(_CONCURRENCY)

    # -- reading ---------------------------------------------------------------------------
    async def learn(self, handle: str, depth: int) -> _Known:
        """Read ``handle`` (once per walk) and what it references."""
        key = handle_key(handle)
        known = self._read.get(key)
        if known is not None:
            return known
        async with self._limit:
            try:
                fetched = await self.source.fetch(handle, self.viewer)
            except HandleError as exc:
                known = _Known(TraceNode(handle, depth, error=exc))
            else:
                known = await self._interpret(handle, depth, fetched)
        self._read[key] = known
        return known

    async def _interpret(self, handle: str, depth: int, fetched: Fetched) -> _Known:
        template = await self._template(fetched.values)
        if template is not None:
            refs = references_in(template, fetched.values)
        elif fetched.local:
            refs = await self._stored_references(handle, fetched.values)
        else:
            refs = []
        node = TraceNode(
            handle,
            depth,
            fetched.values,
            fetched.local,
            template.id if template is not None else None,
            template.version if template is not None else None,
        )
        return _Known(node, refs)

    async def _stored_references(
        self, handle: str, values: Sequence[HandleValue]
    ) -> list[tuple[str, str]]:
        """The store's REFERENCE entries of ``handle`` whose attribute has a visible value."""
        shown = {v.type.casefold() for v in values if v.index >= DATA_INDEX_START}
        stored = await self.source.stored_references(handle)
        return [(target, detail) for target, detail in stored if detail.casefold() in shown]

    async def _template(self, values: Sequence[HandleValue]) -> Template | None:
        """The template version the (visible) values link to, if its record can be read."""
        link = template_link(values)
        if link is None:
            return None
        handle, version = link
        key = handle_key(handle)
        if key not in self._templates:
            try:
                record = await self.source.fetch(handle, None)
                self._templates[key] = history_from_values(handle, record.values)
            except HandleError:
                self._templates[key] = None
        history = self._templates[key]
        if history is None:
            return None
        if version is not None and 1 <= version <= len(history.versions):
            return history.version(version)
        return history.for_write()

    # -- growing the graph ------------------------------------------------------------------
    def _edge(self, source: str, target: str, attribute: str) -> None:
        edge = TraceEdge(source, target, attribute)
        self.edges.setdefault((handle_key(source), handle_key(target), attribute), edge)

    def _room(self) -> bool:
        if len(self.nodes) < self.max_nodes:
            return True
        self.truncated = True
        return False

    async def up(self, root: str, depth: int) -> None:
        """Follow references from ``root`` (a key) for ``depth`` levels."""
        seen, frontier = {root}, [root]
        for level in range(1, depth + 1):
            wanted: dict[str, str] = {}  # key -> handle, to read at this level
            for key in frontier:
                for target, _attribute in self.nodes[key].refs:
                    target_key = handle_key(target)
                    if target_key not in self.nodes and target_key not in wanted:
                        wanted[target_key] = target
            await asyncio.gather(*(self.learn(h, level) for h in wanted.values()))
            following: list[str] = []
            for key in frontier:
                source = self.nodes[key].node.handle
                for target, attribute in self.nodes[key].refs:
                    target_key = handle_key(target)
                    if target_key not in self.nodes:
                        if not self._room():
                            continue
                        self.nodes[target_key] = self._read[target_key]
                    self._edge(source, self.nodes[target_key].node.handle, attribute)
                    if target_key not in seen:
                        seen.add(target_key)
                        following.append(target_key)
            frontier = following
            if not frontier:
                break

    async def down(self, root: str, depth: int) -> None:
        """Follow referrers of ``root`` (a key) for ``depth`` levels. A referrer joins only if
        the value referencing the node is visible to the viewer."""
        seen, frontier = {root}, [root]
        for level in range(1, depth + 1):
            found: list[tuple[str, str, str]] = []  # (node key, referrer, attribute)
            for key in frontier:
                budget = self.max_nodes - len(self.nodes) + 1
                handle = self.nodes[key].node.handle
                rows = await self.source.referrers(handle, budget)
                if len({handle_key(h) for h, _ in rows}) >= budget:
                    self.truncated = True
                found.extend((key, referrer, attribute) for referrer, attribute in rows)
            unread = {handle_key(r): r for _, r, _ in found if handle_key(r) not in self.nodes}
            await asyncio.gather(*(self.learn(h, level) for h in unread.values()))
            following: list[str] = []
            for key, referrer, attribute in found:
                referrer_key = handle_key(referrer)
                known = self.nodes.get(referrer_key) or self._read[referrer_key]
                shown = {(handle_key(t), a) for t, a in known.refs}
                if (key, attribute) not in shown:
                    continue  # the caller cannot see that it references this node
                if referrer_key not in self.nodes:
                    if not self._room():
                        continue
                    self.nodes[referrer_key] = known
                self._edge(known.node.handle, self.nodes[key].node.handle, attribute)
                if referrer_key not in seen:
                    seen.add(referrer_key)
                    following.append(referrer_key)
            frontier = following
            if not frontier:
                break
