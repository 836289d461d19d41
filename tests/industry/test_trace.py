"""Traceability (:mod:`idnode.industry.trace`) over a real store, on both backends: the PV
chain traced down from a polysilicon lot to its modules and up from a module to its lot,
depth and node limits, cycles, what a caller may see, the fallback to the store's index
entries, unreadable links, and the client-side source (upstream only).

The chain (two polysilicon lots of the pv pack, 214 identifiers) is loaded once per backend
with its index entries set through the write context; each test only reads it, or writes
records of its own under the prefix 77.1.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pytest

from idnode.bootstrap import HANDLE_ADMIN_PERMISSIONS
from idnode.errors import HandleNotFound, OperationNotSupported, ServerNotResponsible
from idnode.industry.history import TemplateHistory
from idnode.industry.model import Attribute, AttributeType, Template, TemplateStatus
from idnode.industry.packs import PACKS
from idnode.industry.packs.base import Identifier
from idnode.industry.records import history_to_values, link_values
from idnode.industry.trace import (
    ClientSource,
    Direction,
    HandlePermissions,
    NodeSource,
    TraceGraph,
    Tracer,
    references_in,
)
from idnode.protocol.codes import Permission
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.values import HandleValue
from idnode.server.authz import Authorizer, Identity
from idnode.store.base import HandleStore, handle_key
from idnode.store.postgres import PostgresStore
from idnode.store.sqlite import SQLiteStore
from idnode.store.writectx import IndexEntry, IndexKind, WriteContext, write_context
from tests.industry import pvchain
from tests.pgserver import PostgresServer

T = TypeVar("T")

CHAIN = pvchain.chain(2)
BY_HANDLE = {i.handle: i for i in CHAIN}
LOT, SECOND_LOT = CHAIN[0], CHAIN[pvchain.LOT_SIZE]
FIRST_LOT = CHAIN[: pvchain.LOT_SIZE]
MODULE = next(i for i in FIRST_LOT if "MODULE" in i.template.id)
CELL = next(i for i in FIRST_LOT if "CELL" in i.template.id)
HIDDEN = int(Permission.ADMIN_READ | Permission.ADMIN_WRITE)

OWNER = Identity("77.1/OWNER", 300)
STRANGER = Identity("77.1/STRANGER", 300)
SERVER_ADMIN = Identity("0.NA/77.1", 300)

LINK = Template(
    "77.1/META_LINK", 1, "链接",
    (
        Attribute("next", 2000, "下一个", AttributeType.REFERENCE, multiple=True),
        Attribute("label", 2001, "标签"),
    ),
    TemplateStatus.PUBLISHED,
)  # fmt: skip
PART = Template(
    "77.1/META_PART", 1, "部件",
    (Attribute("assembly", 2000, "总成", AttributeType.REFERENCE),),
    TemplateStatus.PUBLISHED,
)  # fmt: skip


@dataclass
class World:
    runner: asyncio.Runner
    store: HandleStore

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    def tracer(self, *, max_nodes: int = 500, resolver: Any = None) -> Tracer:
        authorizer = Authorizer(self.store, [SERVER_ADMIN])
        source = NodeSource(self.store, resolver=resolver, visibility=HandlePermissions(authorizer))
        return Tracer(source, max_nodes=max_nodes)

    def trace(
        self,
        root: str,
        depth: int = 5,
        direction: Direction = Direction.BOTH,
        viewer: Identity | None = None,
        **options: Any,
    ) -> TraceGraph:
        return self.run(self.tracer(**options).trace(root, depth, direction, viewer))


def instance(handle: str, template: Template, data: dict[str, tuple[str, int]]) -> Identifier:
    """An identifier of ``template`` with ``{key: (text, permissions)}`` and an HS_ADMIN
    naming OWNER with every handle permission."""
    admin = AdminRecord(HANDLE_ADMIN_PERMISSIONS, OWNER.handle, OWNER.index).to_bytes()
    values = [*link_values(template), HandleValue(100, "HS_ADMIN", admin)]
    for key, (text, permissions) in data.items():
        attr = template.attribute(key)
        assert attr is not None
        values.append(HandleValue(attr.index, key, text.encode(), permissions=permissions))
    return Identifier(handle, template, tuple(sorted(values, key=lambda v: v.index)))


async def put(store: HandleStore, *identifiers: Identifier) -> None:
    """Write ``identifiers`` (replacing them) with the entries of their visible-or-not values."""
    index = {i.handle: pvchain.index_entries(i) for i in identifiers}
    with write_context(WriteContext(actor="test", index=index)):
        for i in identifiers:
            await store.create_handle(i.handle, i.values, overwrite=True)


async def setup(store: HandleStore) -> None:
    await pvchain.load(store, CHAIN)
    await store.home_prefix("77.1")
    for template in (LINK, PART):
        values = history_to_values(TemplateHistory.start(template))
        await store.create_handle(template.id, values)
    public = int(Permission.PUBLIC_READ | Permission.ADMIN_READ | Permission.ADMIN_WRITE)
    await put(
        store,
        instance("77.1/A", LINK, {"next": ('["77.1/B"]', public), "label": ("a", public)}),
        instance("77.1/B", LINK, {"next": ('["77.1/A", "77.1/B"]', public)}),
        instance("77.1/ASM", PART, {}),
        instance("77.1/PART-PUB", PART, {"assembly": ("77.1/ASM", public)}),
        instance("77.1/PART-HIDDEN", PART, {"assembly": ("77.1/ASM", HIDDEN)}),
        instance("77.1/DANGLING-1", PART, {"assembly": ("77.1/NOPE", public)}),
        instance("77.1/DANGLING-2", PART, {"assembly": ("66.6/ELSEWHERE", public)}),
    )
    # Linked to a template that does not exist: only the store's entries say what it references.
    orphan = (
        HandleValue(1001, "TEMPLATE", b"77.1/META_GONE"),
        HandleValue(2000, "assembly", b"77.1/ASM"),
        HandleValue(2001, "secret", b"77.1/PART-PUB", permissions=HIDDEN),
    )
    index = {
        "77.1/ORPHAN": frozenset(
            {
                IndexEntry(IndexKind.REFERENCE, "77.1/ASM", "assembly"),
                IndexEntry(IndexKind.REFERENCE, "77.1/PART-PUB", "secret"),
            }
        )
    }
    with write_context(WriteContext(index=index)):
        await store.create_handle("77.1/ORPHAN", orphan)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with asyncio.Runner() as runner:
        store: HandleStore
        if request.param == "sqlite":
            path = tmp_path_factory.mktemp("trace") / "trace.db"
            store = runner.run(SQLiteStore.open(path))
        else:
            server = cast(PostgresServer, request.getfixturevalue("pg_server"))
            server.psql("CREATE DATABASE idnode_trace_core")
            store = runner.run(PostgresStore.open(server.url("idnode_trace_core")))
        try:
            runner.run(setup(store))
            yield World(runner, store)
        finally:
            runner.run(store.close())


def keys(graph: TraceGraph) -> set[str]:
    return {handle_key(n.handle) for n in graph.nodes}


def edges(graph: TraceGraph) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.attribute) for e in graph.edges}


def upstream_path(identifier: Identifier) -> list[Identifier]:
    """``identifier`` and everything above it, following the pack's own references."""
    path = [identifier]
    while refs := path[-1].references():
        path.append(BY_HANDLE[refs[0]])
    return path


# -- the PV chain ----------------------------------------------------------------------------------
def test_down_from_the_polysilicon_lot_finds_its_modules(world: World) -> None:
    graph = world.trace(LOT.handle, depth=4, direction=Direction.DOWN)
    assert keys(graph) == {handle_key(i.handle) for i in FIRST_LOT}
    assert not graph.truncated and graph.nodes[0].handle == LOT.handle
    modules = [n for n in graph.nodes if n.template == MODULE.template.id]
    assert len(modules) == 96 and {n.depth for n in modules} == {4}
    assert MODULE.handle in {n.handle for n in modules}
    assert {e.attribute for e in graph.edges} == {"polysiliconLot", "ingot", "waferLot", "cellLot"}
    assert len(graph.edges) == pvchain.LOT_SIZE - 1  # a tree: one edge per identifier below
    for edge in graph.edges:  # every edge is a reference the source's record makes
        assert edge.target in BY_HANDLE[edge.source].references()


def test_up_from_a_module_finds_the_polysilicon_lot(world: World) -> None:
    graph = world.trace(MODULE.handle, direction=Direction.UP)
    path = upstream_path(MODULE)
    assert [n.handle for n in graph.nodes] == [i.handle for i in path]
    assert path[-1] is LOT
    assert [(n.depth, n.template, n.template_version, n.local) for n in graph.nodes] == [
        (depth, i.template.id, 1, True) for depth, i in enumerate(path)
    ]
    assert edges(graph) == {
        (path[n].handle, path[n + 1].handle, attribute)
        for n, attribute in enumerate(("cellLot", "waferLot", "ingot", "polysiliconLot"))
    }
    module = graph.nodes[0]
    assert module.attributes()["serialNumber"] == MODULE.fields()["serialNumber"]
    assert module.to_json()["attributes"]["cellLot"] == path[1].handle
    assert {v["type"] for v in module.to_json()["values"]} >= {"URL", "TEMPLATE", "powerRatingW"}


def test_both_directions_from_a_cell_lot(world: World) -> None:
    graph = world.trace(CELL.handle, depth=5, direction=Direction.BOTH)
    above = {handle_key(i.handle) for i in upstream_path(CELL)}
    below = {handle_key(i.handle) for i in FIRST_LOT if i.references() == [CELL.handle]}
    assert len(above) == 4 and len(below) == 24
    assert keys(graph) == above | below  # not the siblings of what is upstream


def test_depth_bounds_the_walk(world: World) -> None:
    assert [n.handle for n in world.trace(LOT.handle, depth=0).nodes] == [LOT.handle]
    two = world.trace(LOT.handle, depth=2, direction=Direction.DOWN)
    assert {n.template for n in two.nodes} == {
        f"88.118.8/META_PV_{kind}" for kind in ("POLYSILICON", "INGOT", "WAFER")
    }
    assert len(two.nodes) == 1 + 2 + 4
    three = world.trace(MODULE.handle, depth=3, direction=Direction.UP)
    assert [n.handle for n in three.nodes] == [i.handle for i in upstream_path(MODULE)[:4]]
    with pytest.raises(ValueError):
        world.trace(LOT.handle, depth=21)


def test_the_node_limit_truncates(world: World) -> None:
    graph = world.trace(LOT.handle, depth=4, direction=Direction.DOWN, max_nodes=10)
    assert len(graph.nodes) == 10 and graph.truncated
    assert all(handle_key(e.source) in keys(graph) for e in graph.edges)
    assert all(handle_key(e.target) in keys(graph) for e in graph.edges)
    whole = world.trace(SECOND_LOT.handle, depth=4, direction=Direction.DOWN, max_nodes=107)
    assert len(whole.nodes) == 107 and not whole.truncated


def test_the_graph_as_json(world: World) -> None:
    data = world.trace(CELL.handle, depth=1, direction=Direction.UP).to_json()
    assert set(data) == {"root", "direction", "depth", "truncated", "nodes", "edges"}
    assert (data["root"], data["direction"], data["depth"]) == (CELL.handle, "up", 1)
    assert [n["handle"] for n in data["nodes"]] == [CELL.handle, CELL.references()[0]]
    assert data["nodes"][1]["location"] == "local" and data["nodes"][1]["error"] is None
    assert data["edges"] == [
        {"from": CELL.handle, "to": CELL.references()[0], "attribute": "waferLot"}
    ]


# -- cycles, visibility, fallbacks, errors ---------------------------------------------------------
def test_cycles_end(world: World) -> None:
    for direction in Direction:
        graph = world.trace("77.1/A", depth=20, direction=direction)
        assert keys(graph) == {"77.1/A", "77.1/B"}
    both = world.trace("77.1/A", depth=20)
    assert edges(both) == {
        ("77.1/A", "77.1/B", "next"),
        ("77.1/B", "77.1/A", "next"),
        ("77.1/B", "77.1/B", "next"),
    }


def test_callers_see_only_readable_values_and_links(world: World) -> None:
    anonymous = world.trace("77.1/ASM", depth=1, direction=Direction.DOWN)
    assert keys(anonymous) == {"77.1/ASM", "77.1/PART-PUB", "77.1/ORPHAN"}  # not the hidden
    stranger = world.trace("77.1/ASM", depth=1, direction=Direction.DOWN, viewer=STRANGER)
    assert keys(stranger) == keys(anonymous)
    for viewer in (OWNER, SERVER_ADMIN):
        graph = world.trace("77.1/ASM", depth=1, direction=Direction.DOWN, viewer=viewer)
        assert keys(graph) == keys(anonymous) | {"77.1/PART-HIDDEN"}
    up = world.trace("77.1/PART-HIDDEN", depth=3, direction=Direction.UP)
    assert keys(up) == {"77.1/PART-HIDDEN"}
    assert "assembly" not in up.nodes[0].attributes()
    owned = world.trace("77.1/PART-HIDDEN", depth=3, direction=Direction.UP, viewer=OWNER)
    assert keys(owned) == {"77.1/PART-HIDDEN", "77.1/ASM"}
    assert owned.nodes[0].attributes()["assembly"] == "77.1/ASM"


def test_without_its_template_a_local_record_falls_back_to_its_entries(world: World) -> None:
    graph = world.trace("77.1/ORPHAN", depth=2, direction=Direction.UP)
    assert graph.nodes[0].template is None
    assert edges(graph) == {("77.1/ORPHAN", "77.1/ASM", "assembly")}  # "secret" is hidden
    owned = world.trace("77.1/ORPHAN", depth=1, direction=Direction.UP, viewer=SERVER_ADMIN)
    assert keys(owned) == {"77.1/ORPHAN", "77.1/ASM", "77.1/PART-PUB"}


def test_links_that_cannot_be_read_are_nodes_with_an_error(world: World) -> None:
    for handle, target, error in (
        ("77.1/DANGLING-1", "77.1/NOPE", HandleNotFound),
        ("77.1/DANGLING-2", "66.6/ELSEWHERE", ServerNotResponsible),
    ):
        graph = world.trace(handle, direction=Direction.UP)
        assert [n.handle for n in graph.nodes] == [handle, target]
        assert isinstance(graph.nodes[1].error, error) and graph.nodes[1].local is None
        assert graph.nodes[1].to_json()["error"]["responseCode"] == error.response_code


def test_a_root_that_cannot_be_read_is_an_error(world: World) -> None:
    with pytest.raises(HandleNotFound):
        world.trace("77.1/NONE")
    with pytest.raises(ServerNotResponsible):
        world.trace("55.5/X")


def test_identifiers_of_other_nodes_come_from_the_resolver(world: World) -> None:
    class Resolver:
        def __init__(self) -> None:
            self.asked: list[str] = []

        async def resolve(self, handle: str) -> tuple[HandleValue, ...]:
            self.asked.append(handle)
            if handle == "66.6/ELSEWHERE":
                return (HandleValue(1, "URL", b"https://elsewhere.example/"),)
            raise HandleNotFound()

    resolver = Resolver()
    graph = world.trace("77.1/DANGLING-2", direction=Direction.UP, resolver=resolver)
    remote = graph.nodes[1]
    assert (remote.handle, remote.local, remote.error) == ("66.6/ELSEWHERE", False, None)
    assert remote.to_json()["location"] == "remote"
    assert resolver.asked == ["66.6/ELSEWHERE"]  # held here: never resolved


def test_a_client_source_traces_upstream_only(world: World) -> None:
    async def resolve(handle: str) -> tuple[HandleValue, ...]:
        values = await world.store.get_handle(handle)
        if values is None:
            raise HandleNotFound()
        return tuple(v for v in values if v.public_read)

    tracer = Tracer(ClientSource(resolve))
    graph = world.run(tracer.trace(MODULE.handle, 5, Direction.UP))
    assert [n.handle for n in graph.nodes] == [i.handle for i in upstream_path(MODULE)]
    with pytest.raises(OperationNotSupported):
        world.run(tracer.trace(LOT.handle, 2, Direction.DOWN))


# -- what a reference attribute names --------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PACKS))
def test_references_in_agrees_with_every_pack(name: str) -> None:
    pack = PACKS[name]
    for identifier in itertools.islice(pack.generate(pack.default_prefixes, 1), 120):
        found = references_in(identifier.template, identifier.values)
        assert [target for target, _ in found] == identifier.references()


def test_references_in_skips_what_is_not_a_reference() -> None:
    values = (
        HandleValue(1, "URL", b"88.1/NOT-DATA"),
        HandleValue(2000, "next", b"not json"),
        HandleValue(2001, "label", b"77.1/A"),
        HandleValue(2002, "next", b'["77.1/A"]'),  # not the attribute's index
    )
    assert references_in(LINK, values) == []
    many = (HandleValue(2000, "next", '["77.1/A", "", "no slash", "77.1/Ü"]'.encode()),)
    assert references_in(LINK, many) == [("77.1/A", "next"), ("77.1/Ü", "next")]
