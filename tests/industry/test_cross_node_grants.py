"""Data grants across nodes, on the demo topology (docs/industry.md, "Grants across nodes"):
the node holding a record decides who sees its values, for the identity authenticated *to
it*. A trace from the module maker's node (enterprise-a) reads the wafer maker's lots on
secondary-a through its resolver, anonymously: an attribute a public class grant opens shows
in that trace, one granted only to the module maker's identity does not, even when the trace
is asked as that identity (the identity is not passed from node to node)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from idnode.client import HandleClient, SecretKeyCredentials
from idnode.demo import pv_chain, pv_module
from idnode.industry.grants import Access, ClassGrants, Scope, class_grants_value
from idnode.protocol.codes import Permission
from idnode.server.authz import Identity
from tests.http.conftest import basic
from tests.test_topology import topology
from tests.topology import HOST, TIMEOUT, Topology

__all__ = ["topology"]  # the module-scoped topology fixture of tests/test_topology.py

WAFER_TEMPLATE = "88.118/META_PV_WAFER"
MODULE_MAKER = "300:0.NA/88.118.8"
HIDDEN = int(Permission.ADMIN_READ | Permission.ADMIN_WRITE)


def _secondary_admin(topology: Topology) -> SecretKeyCredentials:
    path = topology.specs["secondary-a"].config_path.parent
    return SecretKeyCredentials("0.NA/88.118", 300, (path / "admin-secret").read_bytes().strip())


def _module_maker_secret(topology: Topology) -> bytes:
    path = topology.specs["enterprise-a"].config_path.parent
    return (path / "admin-secret").read_bytes().strip()


def _trace_attributes(topology: Topology, wafer: str, **kwargs: Any) -> dict[str, str]:
    http = topology.specs["enterprise-a"].http_port
    reply = httpx.get(
        f"http://{HOST}:{http}/api/trace/{pv_module()}",
        params={"direction": "up", "depth": "3"},
        timeout=TIMEOUT,
        **kwargs,
    )
    assert reply.status_code == 200, reply.text
    (node,) = [n for n in reply.json()["nodes"] if n["handle"] == wafer]
    assert node["location"] == "remote" and node["error"] is None, node
    attributes: dict[str, str] = node["attributes"]
    return attributes


def test_a_trace_through_another_node_honours_that_nodes_grants(topology: Topology) -> None:
    module = next(i for i in pv_chain() if i.handle == pv_module())
    cell_lot = next(i for i in pv_chain() if i.handle in module.references())
    wafer = next(i for i in pv_chain() if i.handle in cell_lot.references())
    assert wafer.template.id == WAFER_TEMPLATE
    admin = HandleClient(
        HOST, topology.port("secondary-a"), credentials=_secondary_admin(topology), timeout=TIMEOUT
    )
    # The wafer maker hides two attributes of the lot, then opens one to everyone and the
    # other to the module maker's identity only (class grants of its template).
    hidden = [v.with_changes(permissions=HIDDEN) for v in wafer.values
              if v.type in ("thicknessUm", "quantity")]  # fmt: skip
    asyncio.run(admin.modify_values(wafer.handle, hidden))
    grants = ClassGrants(
        view={
            "thicknessUm": Access(Scope.PUBLIC),
            "quantity": Access(Scope.SPECIFIED, (Identity("0.NA/88.118.8", 300),)),
        }
    )
    asyncio.run(admin.add_values(WAFER_TEMPLATE, [class_grants_value(grants)],
                                        overwrite=True))  # fmt: skip

    # Through enterprise-a's trace, anonymous or as the module maker: the public grant only.
    for headers in ({}, basic(MODULE_MAKER, _module_maker_secret(topology))):
        attributes = _trace_attributes(topology, wafer.handle, headers=headers)
        assert attributes["thicknessUm"] == "150"
        assert "quantity" not in attributes
        assert attributes["size"] == "G12R"  # public values as before

    # The holding node itself answers an anonymous reader the same way.
    http = topology.specs["secondary-a"].http_port
    reply = httpx.get(f"http://{HOST}:{http}/api/handles/{wafer.handle}", timeout=TIMEOUT)
    types = {v["type"] for v in reply.json()["values"]}
    assert "thicknessUm" in types and "quantity" not in types
