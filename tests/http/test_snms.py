"""The SNMS-compatible API and /api/admin on a live node over real HTTP (docs/snms-api.md):
a node admin creates an enterprise and approves its prefix; its admin logs in, creates and
publishes a template, registers identifiers against it; permissions, suspension, the limiter."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from idnode.industry.accounts import new_account, v1_answer
from idnode.server.origin import PEER
from tests.http.conftest import live_client
from tests.server.nodeutil import PREFIX_HANDLE, RunningNode, create_node_dir, running_node

ENT_A, ENT_B = "88.118.8.1", "88.118.8.2"
TEMPLATE = {
    "prefix": ENT_A,
    "version": "battery",
    "name": "电池",
    "englishName": "Battery",
    "items": [
        {"idIndex": 2000, "idType": "model", "name": "型号", "required": True,
         "metadata": {"type": "string", "maxLength": 20}},
        {"idIndex": 2001, "idType": "capacity", "name": "容量",
         "metadata": {"type": "number", "minimum": "1", "maximum": "500"}},
    ],
}  # fmt: skip


def register_body(handle: str, model: str, capacity: str = "100") -> dict[str, Any]:
    return {
        "handle": handle,
        "templateVersion": "battery",
        "value": [
            {"index": 2000, "type": "model", "auth": "",
             "data": {"format": "string", "value": model}},
            {"index": 2001, "type": "capacity", "data": {"format": "string", "value": capacity}},
        ],
    }  # fmt: skip


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    directory: Path = tmp_path_factory.mktemp("snmsnode")
    create_node_dir(directory, limits=True)
    with running_node(directory) as running:
        account = new_account("root", "root-pass", "node_admin", f"300:{PREFIX_HANDLE}")
        running.call(running.node.store.accounts().add_account(account))  # type: ignore[attr-defined]
        yield running


@pytest.fixture(scope="module")
def client(node: RunningNode) -> Iterator[httpx.Client]:
    with live_client(node) as c:
        yield c


def call(client: httpx.Client, method: str, path: str, token: str | None = None,
         body: Any = None, **params: str) -> dict[str, Any]:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = client.request(method, path, json=body, headers=headers, params=params)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    assert set(out) == {"status", "message", "data"}
    return out


def login(client: httpx.Client, username: str, password: str) -> str:
    r = call(client, "POST", "/identity/token", body={"username": username, "password": password})
    assert r["status"] == 1, r
    token: str = r["data"]["token"]
    return token


@pytest.fixture(scope="module")
def tokens(client: httpx.Client) -> dict[str, str]:
    """Enterprises A and B with approved prefixes, their admins, an app of A, an auditor."""
    root = login(client, "root", "root-pass")
    for ent, prefix in (("ent-a", ENT_A), ("ent-b", ENT_B)):
        r = call(client, "POST", "/api/admin/enterprises", root,
                 {"id": ent, "name": ent.upper(), "contact": "ops@example.com",
                  "adminIdentity": f"300:0.NA/{prefix}"})  # fmt: skip
        assert r["status"] == 1, r
        r = call(client, "POST", "/api/admin/accounts", root,
                 {"username": f"{ent}-admin", "password": "pw-" + ent, "role": "enterprise_admin",
                  "identity": f"300:0.NA/{prefix}", "enterprise": ent})  # fmt: skip
        assert r["status"] == 1 and "passwordHash" not in r["data"], r
        r = call(client, "POST", "/api/admin/prefixes", root, {"prefix": prefix, "enterprise": ent})
        assert r["status"] == 1 and r["data"]["state"] == "applied", r
        r = call(client, "POST", f"/api/admin/prefixes/{prefix}/approve", root)
        assert r["status"] == 1 and r["data"]["state"] == "active", r
    r = call(client, "POST", "/api/admin/accounts", root,
             {"username": "app-a", "password": "app-pw", "role": "app",
              "identity": f"300:{ENT_A}/APP1", "enterprise": "ent-a"})  # fmt: skip
    assert r["status"] == 1, r
    r = call(client, "POST", "/api/admin/accounts", root,
             {"username": "audit", "password": "audit-pw", "role": "auditor",
              "identity": f"300:{PREFIX_HANDLE}"})  # fmt: skip
    assert r["status"] == 1, r
    return {
        "root": root,
        "a": login(client, "ent-a-admin", "pw-ent-a"),
        "b": login(client, "ent-b-admin", "pw-ent-b"),
        "app": login(client, "app-a", "app-pw"),
        "audit": login(client, "audit", "audit-pw"),
    }


def test_full_flow(node: RunningNode, client: httpx.Client, tokens: dict[str, str]) -> None:
    a = tokens["a"]
    assert node.is_homed(ENT_A)
    history = call(client, "GET", f"/api/admin/prefixes/{ENT_A}", tokens["audit"])
    assert [t["state"] for t in history["data"]["transitions"]] == ["applied", "active"]
    assert history["data"]["transitions"][1]["actor"] == "root"

    # a template: created as a draft, edited, published through PUT
    r = call(client, "POST", "/snms/api/v5/template", a, {**TEMPLATE, "metaState": 0})
    assert r == {"status": 1, "message": "success", "data": True}
    r = call(client, "POST", "/identityv2/data", a, register_body(f"{ENT_A}/B-0", "X1"))
    assert r["status"] == -2 and r["data"][0]["code"] == "template_state", r
    serial = {"idType": "serial", "name": "序列号", "metadata": {"type": "string"}}
    edit = {"prefix": ENT_A, "version": "battery", "items": [serial]}
    assert call(client, "PUT", "/snms/api/v5/template", a, edit)["status"] == 1
    r = call(client, "GET", "/snms/api/v5/template", a, prefix=ENT_A, version="battery")
    assert r["status"] == 1 and r["data"]["metaState"] == 1, r
    assert [i["idIndex"] for i in r["data"]["items"]] == [2000, 2001, 2002]

    # single registration, then one its template refuses: -2 with the field error
    assert (
        call(client, "POST", "/identityv2/data", a, register_body(f"{ENT_A}/B-1", "X1"))["status"]
        == 1
    )
    r = call(client, "POST", "/identityv2/data", a, register_body(f"{ENT_A}/B-2", "X2", "900"))
    assert r["status"] == -2
    assert [(e["field"], e["code"]) for e in r["data"]] == [("capacity", "range")]
    assert node.get_handle(f"{ENT_A}/B-2") is None
    r = call(client, "POST", "/identityv2/data", a, register_body(f"{ENT_A}/B-1", "X1"))
    assert r["status"] == -2 and "exists" in r["message"].lower()

    # detail
    r = call(client, "GET", "/identityv2/data/detail", a, handle=f"{ENT_A}/B-1")
    assert r["status"] == 1 and r["data"]["templateVersion"] == "battery"
    by_index = {v["index"]: v for v in r["data"]["value"]}
    assert by_index[2000]["data"] == {"format": "string", "value": "X1"}

    # update, batch create, batch update, batch delete
    assert (
        call(client, "PUT", "/identityv2/data", tokens["app"], register_body(f"{ENT_A}/B-1", "X9"))[
            "status"
        ]
        == 1
    )
    r = call(client, "GET", "/identityv2/data/detail", a, handle=f"{ENT_A}/B-1")
    assert {v["index"]: v for v in r["data"]["value"]}[2000]["data"]["value"] == "X9"
    batch = [register_body(f"{ENT_A}/C-{n}", f"C{n}") for n in range(3)]
    batch.append(register_body(f"{ENT_A}/C-bad", "C", "0"))
    batch.append(register_body(f"{ENT_A}/B-1", "dup"))
    r = call(client, "POST", "/identityv2/data/batchCreate", tokens["app"], batch)
    assert r["status"] == 1
    msgs = [item["msg"] for item in r["data"]]
    assert msgs[:3] == ["success"] * 3
    assert r["data"][3]["errors"][0]["code"] == "range"
    assert "exists" in msgs[4].lower()
    updates = [register_body(f"{ENT_A}/C-0", "C0b"), register_body(f"{ENT_A}/NOPE", "N")]
    r = call(client, "PUT", "/identityv2/data/batchUpdate", a, updates)
    assert r["data"][0]["msg"] == "success"
    assert "not exist" in r["data"][1]["msg"]
    r = call(client, "DELETE", "/identityv2/data/batchDelete", a, [f"{ENT_A}/C-1", f"{ENT_A}/NOPE"])
    assert r["status"] == 1
    assert (r["data"][0]["handle"], r["data"][0]["code"]) == (f"{ENT_A}/C-1", 1)
    assert r["data"][1]["code"] == -2
    assert node.get_handle(f"{ENT_A}/C-1") is None
    assert call(client, "DELETE", "/identityv2/data", a, {"handle": f"{ENT_A}/C-2"})["status"] == 1

    # the audit trail names the identity the account acts as
    trail = node.call(node.node.store.audit(f"{ENT_A}/C-0"))
    assert trail and trail[0].actor == f"300:{ENT_A}/APP1"


def test_permissions(node: RunningNode, client: httpx.Client, tokens: dict[str, str]) -> None:
    # B's admin and A's app cannot write under each other's prefix
    r = call(client, "POST", "/snms/api/v5/template", tokens["b"],
             {**TEMPLATE, "prefix": ENT_B})  # fmt: skip
    assert r["status"] == 1
    body = register_body(f"{ENT_B}/X-1", "X")
    assert call(client, "POST", "/identityv2/data", tokens["app"], body)["status"] == -3
    assert node.get_handle(f"{ENT_B}/X-1") is None
    # auditors read but do not write; nobody without a token
    assert call(client, "POST", "/identityv2/data", tokens["audit"], body)["status"] == -3
    assert call(client, "POST", "/identityv2/data", None, body)["status"] == -1
    assert call(client, "POST", "/identityv2/data", "forged", body)["status"] == -1
    assert call(client, "POST", "/api/admin/prefixes/x/approve", tokens["a"])["status"] == -3


def test_suspended_prefix_refuses_writes(
    node: RunningNode, client: httpx.Client, tokens: dict[str, str]
) -> None:
    root, b = tokens["root"], tokens["b"]
    call(client, "POST", "/snms/api/v5/template", b, {**TEMPLATE, "prefix": ENT_B})
    assert (
        call(client, "POST", f"/api/admin/prefixes/{ENT_B}/suspend", root)["data"]["state"]
        == "suspended"
    )
    assert not node.is_homed(ENT_B)
    r = call(client, "POST", "/identityv2/data", b, register_body(f"{ENT_B}/S-1", "S"))
    assert r["status"] == -2 and node.get_handle(f"{ENT_B}/S-1") is None
    r = call(client, "POST", f"/api/admin/prefixes/{ENT_B}/suspend", root)
    assert r["status"] == -2 and "suspended" in r["message"]
    assert (
        call(client, "POST", f"/api/admin/prefixes/{ENT_B}/resume", root)["data"]["state"]
        == "active"
    )
    assert (
        call(client, "POST", "/identityv2/data", b, register_body(f"{ENT_B}/S-1", "S"))["status"]
        == 1
    )


def test_logins(node: RunningNode, client: httpx.Client, tokens: dict[str, str]) -> None:
    limiter = node.node.dispatcher.limiter
    before = len(limiter._clients["127.0.0.1"].failures) if "127.0.0.1" in limiter._clients else 0
    r = call(client, "POST", "/identity/token", body={"username": "root", "password": "wrong"})
    assert r["status"] == -1 and r["data"] is None
    assert len(limiter._clients["127.0.0.1"].failures) == before + 1
    day = datetime.datetime.now(datetime.UTC).date().isoformat()
    body = {"username": "root", "password": v1_answer("root-pass", day)}
    assert call(client, "POST", "/identity/token/v1", body=body)["status"] == 1
    body["password"] = v1_answer("root-pass", "2001-01-01")
    assert call(client, "POST", "/identity/token/v1", body=body)["status"] == -1
    assert PEER.get() is None  # the test thread has no peer; the node's tasks had one


def test_first_node_admin_from_the_cli(tmp_path: Path) -> None:
    """`idnode account add` bootstraps a node administrator who can then log in over HTTP;
    `idnode account disable` ends that."""
    from click.testing import CliRunner

    from idnode.cli import main
    from tests.server.nodeutil import create_node_dir, running_node

    directory = tmp_path / "node"
    create_node_dir(directory)
    config = str(directory / "idnode.toml")
    secret = tmp_path / "pw"
    secret.write_text("s3cret-admin\n")
    runner = CliRunner()
    added = runner.invoke(
        main,
        ["account", "add", "root-admin", "--role", "node_admin",
         "--identity", "300:0.NA/88.118.8", "--password-file", str(secret), "--config", config],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = runner.invoke(main, ["account", "list", "--config", config])
    assert (
        "root-admin" in listed.output
        and "node_admin" in listed.output
        and "enabled" in listed.output
    )
    again = runner.invoke(
        main,
        ["account", "add", "root-admin", "--role", "auditor",
         "--identity", "300:0.NA/88.118.8", "--password-file", str(secret), "--config", config],
    )  # fmt: skip
    assert again.exit_code == 1 and "exists already" in again.output
    with running_node(directory) as node:
        url = f"http://127.0.0.1:{node.node.http_port}/identity/token"
        login = httpx.post(url, json={"username": "root-admin", "password": "s3cret-admin"})
        assert login.json()["status"] == 1 and login.json()["data"]["token"]
    assert (
        runner.invoke(main, ["account", "disable", "root-admin", "--config", config]).exit_code == 0
    )
    with running_node(directory) as node:
        url = f"http://127.0.0.1:{node.node.http_port}/identity/token"
        login = httpx.post(url, json={"username": "root-admin", "password": "s3cret-admin"})
        assert login.json()["status"] == -1


def test_stats_and_audit_reach_by_role(
    node: RunningNode, client: httpx.Client, tokens: dict[str, str]
) -> None:
    """Node admins and auditors read every prefix's statistics and audit trail (read-only),
    an enterprise admin its own prefixes, an app neither; the server administrator's Basic
    credentials as before."""
    body = register_body(f"{ENT_A}/R-1", "R1")
    call(client, "POST", "/snms/api/v5/template", tokens["a"], TEMPLATE)
    call(client, "POST", "/identityv2/data", tokens["a"], body)

    def get(path: str, token: str | None, **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return client.get(path, headers=headers, params=params)

    every = {}
    for who in ("root", "audit"):
        stats = get("/api/stats", tokens[who])
        assert stats.status_code == 200, stats.text
        every[who] = {row["prefix"] for row in stats.json()["stats"]}
        trail = get("/api/audit", tokens[who], limit="1000")
        assert trail.status_code == 200, trail.text
        handles = {e["handle"] for e in trail.json()["entries"]}
        assert {f"0.NA/{ENT_A}", f"0.NA/{ENT_B}", f"{ENT_A}/R-1"} <= handles
        assert get("/api/stats", tokens[who], children="1").status_code == 200
    assert ENT_A in every["audit"] and every["audit"] == every["root"]
    assert len(every["root"]) > 1
    # enterprise A: its prefix only
    stats = get("/api/stats", tokens["a"])
    assert stats.status_code == 200, stats.text
    assert {row["prefix"] for row in stats.json()["stats"]} == {ENT_A}
    assert get("/api/stats", tokens["a"], prefix=ENT_B).status_code == 403
    assert get("/api/stats", tokens["a"], children="1").status_code == 403
    trail = get("/api/audit", tokens["a"], limit="1000").json()["entries"]
    assert all(e["handle"].startswith((f"{ENT_A}/", f"0.NA/{ENT_A}")) for e in trail)
    assert f"{ENT_A}/R-1" in {e["handle"] for e in trail}
    assert get("/api/audit", tokens["a"], handle=f"0.NA/{ENT_B}").status_code == 403
    assert get("/api/audit", tokens["a"], handle=f"{ENT_A}/R-1").status_code == 200
    # an app reads neither; no or a bad token is 401
    assert get("/api/stats", tokens["app"]).status_code == 403
    assert get("/api/audit", tokens["app"]).status_code == 403
    assert get("/api/stats", None).status_code == 401
    assert get("/api/audit", "forged").status_code == 401
    # read-only: the auditor's token writes nothing, on any interface
    assert call(client, "POST", "/identityv2/data", tokens["audit"],
                register_body(f"{ENT_A}/R-2", "R2"))["status"] == -3  # fmt: skip
    put = client.put(
        f"/api/handles/{ENT_A}/R-2",
        headers={"Authorization": f"Bearer {tokens['audit']}"},
        json={"values": [{"index": 1, "type": "URL", "data": "https://e.example"}]},
    )
    assert put.status_code == 401
    assert node.get_handle(f"{ENT_A}/R-2") is None
    # Basic as the server administrator still reads everything
    from tests.http.conftest import basic

    admin = basic(f"300:{PREFIX_HANDLE}", node.admin_secret)
    assert client.get("/api/audit", headers=admin).status_code == 200
