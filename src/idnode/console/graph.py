"""Layout of a trace graph for drawing as SVG (pure).

Identifiers are placed in columns by their signed distance from the root: upstream (what the
root is made from, followed along ``from → to`` edges) to the left, downstream (what is made
from it) to the right, the root in the middle column. Within a column nodes keep the order the
trace found them. Edges are drawn from the upstream identifier to the one referencing it, so
the picture reads left to right as material flows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from idnode.industry.trace import TraceEdge, TraceNode
from idnode.store.base import handle_key

__all__ = ["BOX_H", "BOX_W", "Layout", "PlacedEdge", "PlacedNode", "layout", "merge"]

BOX_W, BOX_H = 200, 54
_GAP_X, _GAP_Y, _MARGIN = 70, 18, 12


@dataclass(frozen=True)
class PlacedNode:
    node: TraceNode
    x: int
    y: int
    level: int
    label: str
    """The template's name (or the error) shown under the handle."""
    root: bool = False


@dataclass(frozen=True)
class PlacedEdge:
    x1: int
    y1: int
    x2: int
    y2: int
    attribute: str


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    nodes: tuple[PlacedNode, ...]
    edges: tuple[PlacedEdge, ...]


def merge(
    parts: Iterable[tuple[Sequence[TraceNode], Sequence[TraceEdge]]],
) -> tuple[list[TraceNode], list[TraceEdge]]:
    """The union of several traces (the first holds the root): each identifier and edge
    once, the first reading of a node kept."""
    nodes: dict[str, TraceNode] = {}
    edges: dict[tuple[str, str, str], TraceEdge] = {}
    for part_nodes, part_edges in parts:
        for node in part_nodes:
            nodes.setdefault(handle_key(node.handle), node)
        for edge in part_edges:
            key = (handle_key(edge.source), handle_key(edge.target), edge.attribute)
            edges.setdefault(key, edge)
    return list(nodes.values()), list(edges.values())


def _levels(root: str, nodes: Sequence[TraceNode], edges: Sequence[TraceEdge]) -> dict[str, int]:
    """Signed distance of each node from ``root``: negative upstream, positive downstream
    (breadth first; a node reached both ways keeps the first level found)."""
    ups: dict[str, list[str]] = {}
    downs: dict[str, list[str]] = {}
    for e in edges:
        ups.setdefault(handle_key(e.source), []).append(handle_key(e.target))
        downs.setdefault(handle_key(e.target), []).append(handle_key(e.source))
    levels = {handle_key(root): 0}
    queue = deque([handle_key(root)])
    while queue:
        key = queue.popleft()
        level = levels[key]
        for nxt, step in [(n, -1) for n in ups.get(key, ())] + [(n, 1) for n in downs.get(key, ())]:
            if nxt in levels:
                continue
            if level != 0 and (step > 0) != (level > 0):
                continue  # do not turn around: upstream of a downstream node is not drawn left
            levels[nxt] = level + step
            queue.append(nxt)
    for node in nodes:  # reached only by turning around (e.g. expanded nodes): next to a neighbour
        levels.setdefault(handle_key(node.handle), 0)
    return levels


def _label(node: TraceNode, names: dict[str, str]) -> str:
    if node.error is not None:
        return node.error.message or type(node.error).__name__
    if node.template is not None:
        return names.get(node.template, node.template.rsplit("/", 1)[-1])
    return ""


def layout(
    root: str,
    nodes: Sequence[TraceNode],
    edges: Sequence[TraceEdge],
    template_names: dict[str, str] | None = None,
) -> Layout:
    """Positions of ``nodes`` and ``edges`` (see the module docstring); ``template_names``
    maps template handles to the name to show."""
    names = template_names or {}
    levels = _levels(root, nodes, edges)
    columns: dict[int, list[TraceNode]] = {}
    for node in nodes:
        columns.setdefault(levels[handle_key(node.handle)], []).append(node)
    order = sorted(columns)
    tallest = max((len(c) for c in columns.values()), default=1)
    height = 2 * _MARGIN + tallest * BOX_H + (tallest - 1) * _GAP_Y
    placed: dict[str, PlacedNode] = {}
    for column, level in enumerate(order):
        members = columns[level]
        span = len(members) * BOX_H + (len(members) - 1) * _GAP_Y
        top = (height - span) // 2
        for row, node in enumerate(members):
            key = handle_key(node.handle)
            placed[key] = PlacedNode(
                node,
                _MARGIN + column * (BOX_W + _GAP_X),
                top + row * (BOX_H + _GAP_Y),
                level,
                _label(node, names),
                root=key == handle_key(root),
            )
    lines = []
    for e in edges:
        upstream, user = placed.get(handle_key(e.target)), placed.get(handle_key(e.source))
        if upstream is None or user is None:
            continue
        left, right = (upstream, user) if upstream.x <= user.x else (user, upstream)
        lines.append(
            PlacedEdge(
                left.x + BOX_W, left.y + BOX_H // 2, right.x, right.y + BOX_H // 2, e.attribute
            )
        )
    width = 2 * _MARGIN + len(order) * BOX_W + max(0, len(order) - 1) * _GAP_X
    return Layout(width, height, tuple(placed.values()), tuple(lines))
