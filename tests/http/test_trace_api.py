"""``GET /api/trace/{handle}``, ``GET /api/audit`` and ``idnode trace`` against real nodes.

The module's node (the HTTP tests' demo node, 88.118.8) gets one polysilicon lot of the PV
chain written into its store with its index entries (as the dispatcher's template guard
writes them); a second pair of nodes splits the chain: the lot on a root node homing
88.118.1, everything downstream of it on a node whose resolver starts at that root. Writes
made over the protocols show their actor and origin in the audit trail, and a chain
registered over the native protocol (entries computed by the node) traces as well.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from idnode.bootstrap import HANDLE_ADMIN_PERMISSIONS, init_node
from idnode.cli import main
from idnode.client import SecretKeyCredentials
from idnode.http.api import api_document
from idnode.industry.history import TemplateHistory
from idnode.industry.packs import PACKS
from idnode.industry.records import history_to_values
from idnode.protocol.codes import Permission
from idnode.protocol.values import HandleValue
from tests.http.conftest import PREFIX_HANDLE, InProcess, basic, live_client
from tests.industry import pvchain
from tests.server.nodeutil import (
    PREFIX,
    RunningNode,
    Users,
    admin_value,
    create_node_dir,
    running_node,
)

CHAIN = pvchain.chain(1)
LOT = CHAIN[0]
MODULE = CHAIN[-1]
BY_HANDLE = {i.handle: i for i in CHAIN}
OWNER = admin_value(100, HANDLE_ADMIN_PERMISSIONS, PREFIX_HANDLE, 200)


def upstream(handle: str) -> list[str]:
    path = [handle]
    while refs := BY_HANDLE[path[-1]].references():
        path.append(refs[0])
    return path


def path_of(handle: str) -> str:
    return "/api/trace/" + quote(handle, safe="/")


@pytest.fixture(scope="module")
def chain_node(node: RunningNode) -> RunningNode:
    """The module's node with the chain, and a module hiding its cell-lot reference."""
    node.call(pvchain.load(node.node.store, CHAIN))
    cell = MODULE.references()[0]
    hidden = int(Permission.ADMIN_READ | Permission.ADMIN_WRITE)
    values = [
        v.with_changes(permissions=hidden) if v.type == "cellLot" else v for v in MODULE.values
    ]
    values = [v for v in values if v.type != "serialNumber"]
    secret = dataclasses.replace(MODULE, handle=f"{PREFIX}/PV-SECRET", values=tuple(values))
    node.call(pvchain.load(node.node.store, [secret], with_templates=False))
    assert cell in secret.references()
    return node


# -- /api/trace ------------------------------------------------------------------------------------
def test_trace_down_from_the_lot_and_up_from_a_module(
    chain_node: RunningNode, api: InProcess
) -> None:
    down = api.get(path_of(LOT.handle), params={"depth": "4", "direction": "down"})
    assert down.status_code == 200, down.text
    graph = down.json()
    assert (graph["responseCode"], graph["handle"], graph["root"]) == (1, LOT.handle, LOT.handle)
    assert {n["handle"] for n in graph["nodes"]} == {i.handle for i in CHAIN}
    assert len(graph["edges"]) == len(CHAIN) - 1 and not graph["truncated"]

    up = api.get(path_of(MODULE.handle), params={"direction": "up"}).json()
    assert [n["handle"] for n in up["nodes"]] == upstream(MODULE.handle)
    assert up["nodes"][-1]["template"] == "88.118.8/META_PV_POLYSILICON"
    assert up["nodes"][-1]["attributes"]["lotNumber"] == LOT.fields()["lotNumber"]
    assert [e["attribute"] for e in up["edges"]] == [
        "cellLot",
        "waferLot",
        "ingot",
        "polysiliconLot",
    ]
    head = api.request("HEAD", path_of(MODULE.handle))
    assert head.status_code == 200 and head.content == b""


def test_trace_shows_only_what_the_caller_may_read(
    chain_node: RunningNode, api: InProcess, admin: dict[str, str], users: Users
) -> None:
    cell = MODULE.references()[0]
    params = {"depth": "1", "direction": "down"}
    anonymous = api.get(path_of(cell), params=params).json()
    assert f"{PREFIX}/PV-SECRET" not in {n["handle"] for n in anonymous["nodes"]}
    assert len(anonymous["nodes"]) == 1 + 24
    stranger = basic(f"301:{PREFIX}/USER-A", users.user_a_secret)
    assert api.get(path_of(cell), params=params, headers=stranger).json() == anonymous
    as_admin = api.get(path_of(cell), params=params, headers=admin).json()
    assert f"{PREFIX}/PV-SECRET" in {n["handle"] for n in as_admin["nodes"]}
    secret_up = api.get(path_of(f"{PREFIX}/PV-SECRET"), params={"direction": "up"}).json()
    assert [n["handle"] for n in secret_up["nodes"]] == [f"{PREFIX}/PV-SECRET"]
    assert "cellLot" not in secret_up["nodes"][0]["attributes"]


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        (path_of(LOT.handle), {"depth": "21"}, 400, 4),
        (path_of(LOT.handle), {"depth": "-1"}, 400, 4),
        (path_of(LOT.handle), {"depth": "x"}, 400, 4),
        (path_of(LOT.handle), {"direction": "sideways"}, 400, 4),
        (path_of(f"{PREFIX}/NO-SUCH"), {}, 404, 100),
        (path_of("99.99/ELSEWHERE"), {}, 400, 301),
        ("/api/trace", {}, 404, 4),
    ],
)
def test_trace_errors(
    chain_node: RunningNode,
    api: InProcess,
    path: str,
    params: dict[str, str],
    status: int,
    code: int,
) -> None:
    response = api.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.json()["responseCode"] == code
    assert set(response.json()) <= {"responseCode", "message", "handle"}


# -- /api/audit ------------------------------------------------------------------------------------
def test_audit_is_for_server_admins(chain_node: RunningNode, api: InProcess, users: Users) -> None:
    anonymous = api.get("/api/audit")
    assert (anonymous.status_code, anonymous.json()["responseCode"]) == (401, 402)
    user = basic(f"301:{PREFIX}/USER-A", users.user_a_secret)
    refused = api.get("/api/audit", headers=user)
    assert (refused.status_code, refused.json()["responseCode"]) == (403, 400)
    wrong = api.get("/api/audit", headers=basic(f"300:{PREFIX_HANDLE}", "wrong"))
    assert wrong.status_code == 401


def test_audit_pages_and_filters(
    chain_node: RunningNode, api: InProcess, admin: dict[str, str]
) -> None:
    trail = api.get("/api/audit", params={"handle": MODULE.handle.lower()}, headers=admin)
    assert trail.status_code == 200, trail.text
    [entry] = trail.json()["entries"]
    assert entry["handle"] == MODULE.handle and entry["action"] == "create_handle"
    assert (entry["actor"], entry["origin"]) == ("300:0.NA/88.118.8", "127.0.0.1:9")
    assert entry["date"].endswith("Z") and trail.json()["next"] == entry["txnId"]
    first = api.get("/api/audit", params={"limit": "3"}, headers=admin).json()
    assert len(first["entries"]) == 3
    second = api.get(
        "/api/audit", params={"after": str(first["next"]), "limit": "3"}, headers=admin
    )
    ids = [e["txnId"] for e in first["entries"] + second.json()["entries"]]
    assert ids == sorted(ids) and len(set(ids)) == 6
    empty = api.get("/api/audit", params={"after": str(2**62)}, headers=admin).json()
    assert (empty["entries"], empty["next"]) == ([], 2**62)
    for bad in ({"after": "-1"}, {"limit": "-1"}, {"after": "x"}, {"after": str(2**63)}):
        assert api.get("/api/audit", params=bad, headers=admin).status_code == 400


def test_writes_over_the_protocols_are_audited_with_actor_and_origin(
    chain_node: RunningNode, api: InProcess, admin: dict[str, str]
) -> None:
    handle = f"{PREFIX}/AUDIT-HTTP"
    body = {"values": [{"index": 1, "type": "URL", "data": "https://example.com/a"}]}
    assert api.put(f"/api/handles/{handle}", json=body, headers=admin).status_code in (200, 201)
    client = chain_node.client(chain_node.secret_credentials, tcp=True)
    native = f"{PREFIX}/AUDIT-NATIVE"
    asyncio.run(client.create_handle(native, [HandleValue(1, "URL", b"https://example.com/n")]))
    for name, origin in ((handle, "127.0.0.1:40000"), (native, "127.0.0.1:")):
        entries = api.get("/api/audit", params={"handle": name}, headers=admin).json()["entries"]
        assert [e["action"] for e in entries] == ["create_handle"]
        assert entries[0]["actor"] == f"300:{PREFIX_HANDLE}"
        assert entries[0]["origin"].startswith(origin)


# -- the CLI ---------------------------------------------------------------------------------------
def test_cli_prints_the_tree_over_http(chain_node: RunningNode) -> None:
    url = f"http://{chain_node.host}:{chain_node.node.http_port}"
    result = CliRunner().invoke(main, ["trace", MODULE.handle, "--http", url, "--direction", "up"])
    assert result.exit_code == 0, result.output
    cell, wafer, ingot, lot = upstream(MODULE.handle)[1:]
    assert result.output.splitlines() == [
        f"{MODULE.handle}  [META_PV_MODULE v1]",
        "└── upstream (what it references)",
        f"    └── cellLot → {cell}  [META_PV_CELL v1]",
        f"        └── waferLot → {wafer}  [META_PV_WAFER v1]",
        f"            └── ingot → {ingot}  [META_PV_INGOT v1]",
        f"                └── polysiliconLot → {lot}  [META_PV_POLYSILICON v1]",
    ]
    as_json = CliRunner().invoke(
        main, ["trace", LOT.handle, "--http", url, "--depth", "2", "--json", "--as",
               f"300:{PREFIX_HANDLE}", "--secret-file", str(chain_node.directory / "admin-secret")],
    )  # fmt: skip
    assert as_json.exit_code == 0, as_json.output
    graph = json.loads(as_json.output)
    assert graph["direction"] == "both" and len(graph["nodes"]) == 1 + 2 + 4
    both = CliRunner().invoke(
        main, ["trace", BY_HANDLE[MODULE.references()[0]].handle, "--http", url]
    )
    assert "├── upstream (what it references)" in both.output
    assert "└── downstream (what references it)" in both.output
    assert f"{MODULE.handle}  [META_PV_MODULE v1]  (its cellLot)" in both.output


def test_cli_traces_upstream_over_the_handle_protocol(chain_node: RunningNode) -> None:
    over_http = CliRunner().invoke(
        main,
        ["trace", MODULE.handle, "--direction", "up", "--json", "--http",
         f"http://{chain_node.host}:{chain_node.node.http_port}"],
    )  # fmt: skip
    native = CliRunner().invoke(
        main, ["trace", MODULE.handle, "--direction", "up", "--json", "--server", chain_node.server]
    )
    assert native.exit_code == 0, native.output
    assert json.loads(native.output) == json.loads(over_http.output)
    refused = CliRunner().invoke(main, ["trace", MODULE.handle, "--server", chain_node.server])
    assert refused.exit_code == 2 and "--direction up" in refused.output
    missing = CliRunner().invoke(
        main,
        [
            "trace",
            f"{PREFIX}/NO-SUCH",
            "--http",
            f"http://{chain_node.host}:{chain_node.node.http_port}",
        ],
    )
    assert missing.exit_code == 1 and "response code 100" in missing.output
    unreachable = CliRunner().invoke(main, ["trace", MODULE.handle, "--http", "http://127.0.0.1:9"])
    assert unreachable.exit_code == 1 and "cannot reach" in unreachable.output


def test_the_openapi_document_describes_trace_and_audit(chain_node: RunningNode) -> None:
    document = api_document()
    assert set(document["paths"]["/api/trace/{handle}"]) == {"get"}
    assert set(document["paths"]["/api/audit"]) == {"get"}
    with live_client(chain_node) as client:
        served = client.get("/api/openapi.json").json()
    assert served["paths"]["/api/trace/{handle}"] == document["paths"]["/api/trace/{handle}"]


# -- across nodes ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Pair:
    root: RunningNode
    """Homes 0.NA and 88.118.1: the polysilicon lot."""
    node: RunningNode
    """Homes 88.118.8, .2 and .3: templates and everything downstream of the lot; its resolver
    starts at ``root``."""


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp("pair")
    root_dir, node_dir = base / "root", base / "node"
    asyncio.run(init_node(root_dir, pvchain.PREFIXES.polysilicon, port=0))
    asyncio.run(init_node(node_dir, PREFIX, port=0))
    with running_node(root_dir) as root:
        root.call(root.node.store.home_prefix("0.NA"))
        config = node_dir / "idnode.toml"
        config.write_text(config.read_text() + f'roots = ["127.0.0.1:{root.port}"]\n')
        with running_node(node_dir) as node:
            root.call(pvchain.load(root.node.store, CHAIN[:1], with_templates=False))
            node.call(pvchain.load(node.node.store, CHAIN[1:]))
            node.call(node.node.store.unhome_prefix(pvchain.PREFIXES.polysilicon))
            yield Pair(root, node)


def test_upstream_crosses_to_the_node_holding_the_lot(pair: Pair) -> None:
    api = InProcess(pair.node)
    graph = api.get(path_of(MODULE.handle), params={"direction": "up"}).json()
    assert [n["handle"] for n in graph["nodes"]] == upstream(MODULE.handle)
    assert [n["location"] for n in graph["nodes"]] == ["local"] * 4 + ["remote"]
    lot = graph["nodes"][-1]
    assert lot["template"] == "88.118.8/META_PV_POLYSILICON"  # read here, where it lives
    assert lot["attributes"]["lotNumber"] == LOT.fields()["lotNumber"]


def test_downstream_of_a_remote_identifier_is_what_this_node_indexed(pair: Pair) -> None:
    here = InProcess(pair.node).get(path_of(LOT.handle), params={"depth": "4", "direction": "down"})
    assert here.status_code == 200, here.text
    nodes = here.json()["nodes"]
    assert nodes[0]["location"] == "remote"
    assert {n["handle"] for n in nodes} == {i.handle for i in CHAIN}
    there = InProcess(pair.root).get(path_of(LOT.handle), params={"direction": "down"}).json()
    assert [n["handle"] for n in there["nodes"]] == [LOT.handle]  # its index knows no referrer


# -- a chain registered over the native protocol ---------------------------------------------------
def test_a_chain_registered_over_the_protocol_traces(tmp_path: Path) -> None:
    """Templates and identifiers written over the native protocol: the node computes the
    index entries itself (the template guard), so the reverse index finds the modules."""
    create_node_dir(tmp_path)
    pack = PACKS["pv"]
    names = ("templates", "polysilicon", "wafer", "cell", "module")
    prefixes = dataclasses.replace(pack.default_prefixes, **dict.fromkeys(names, PREFIX))
    identifiers = list(itertools.islice(pack.generate(prefixes, 3), 30))
    with running_node(tmp_path) as node:
        admin = node.client(node.secret_credentials, tcp=True)

        async def register() -> None:
            for template in pack.templates(prefixes):
                history = history_to_values(TemplateHistory.start(template))
                await admin.create_handle(template.id, [*history, OWNER])
            for identifier in identifiers:
                await admin.create_handle(identifier.handle, [*identifier.values, OWNER])

        asyncio.run(register())
        api = InProcess(node)
        lot = identifiers[0].handle
        graph: dict[str, Any] = api.get(
            path_of(lot), params={"depth": "4", "direction": "down"}
        ).json()
        assert {n["handle"] for n in graph["nodes"]} == {i.handle for i in identifiers}
        credentials = SecretKeyCredentials(PREFIX_HANDLE, 300, node.admin_secret)
        headers = basic(f"{credentials.index}:{credentials.handle}", credentials.secret)
        trail = api.get("/api/audit", params={"handle": lot}, headers=headers).json()
        assert [e["actor"] for e in trail["entries"]] == [f"300:{PREFIX_HANDLE}"]
