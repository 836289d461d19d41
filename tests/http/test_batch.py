"""``POST /api/batch``: up to 2000 identifiers per call, one result per item."""

from __future__ import annotations

import asyncio
from typing import Any

from idnode.http.batch import MAX_ITEMS
from idnode.protocol.codes import ResponseCode
from tests.http.conftest import InProcess, basic
from tests.server.nodeutil import PREFIX, RunningNode, Users


def item(suffix: str, url: str = "https://batch.example.com/") -> dict[str, Any]:
    return {
        "handle": f"{PREFIX}/{suffix}",
        "values": [{"index": 1, "type": "URL", "data": url + suffix}],
    }


def test_batch_registers_and_reports_per_item(
    api: InProcess, admin: dict[str, str], node: RunningNode
) -> None:
    api.put(
        f"/api/handles/{PREFIX}/BATCH-OLD", headers=admin, json=[item("BATCH-OLD")["values"][0]]
    )
    handles = [
        item("BATCH-1"),
        item("BATCH-2"),
        item("BATCH-OLD"),  # exists: left as it is
        {"handle": "88.118.9/ELSEWHERE", "values": []},  # prefix not served here
        {
            "handle": f"{PREFIX}/BATCH-BAD",
            "values": [
                {"index": 100, "type": "HS_ADMIN", "data": {"format": "hex", "value": "00"}}
            ],
        },
        {"handle": "no-slash", "values": []},
        item("batch-1"),  # the same handle as BATCH-1 (case-insensitive)
        {"values": []},
    ]
    r = api.post("/api/batch", headers=admin, json={"handles": handles})
    assert r.status_code == 200, r.text
    body = r.json()
    codes = [res["responseCode"] for res in body["results"]]
    assert codes == [
        ResponseCode.SUCCESS,
        ResponseCode.SUCCESS,
        ResponseCode.HANDLE_ALREADY_EXISTS,
        ResponseCode.SERVER_NOT_RESP,
        ResponseCode.INVALID_VALUE,
        ResponseCode.INVALID_HANDLE,
        ResponseCode.HANDLE_ALREADY_EXISTS,
        ResponseCode.INVALID_HANDLE,
    ]
    assert (body["total"], body["created"], body["failed"]) == (8, 2, 6)
    assert [res["handle"] for res in body["results"]][:3] == [
        f"{PREFIX}/BATCH-1",
        f"{PREFIX}/BATCH-2",
        f"{PREFIX}/BATCH-OLD",
    ]
    # Written for real, visible through the native protocol.
    values = asyncio.run(node.client().resolve(f"{PREFIX}/BATCH-2"))
    assert [(v.index, v.type, v.data) for v in values] == [
        (1, "URL", b"https://batch.example.com/BATCH-2")
    ]
    assert node.get_handle(f"{PREFIX}/BATCH-BAD") is None


def test_batch_needs_authentication_and_permission(
    api: InProcess, node: RunningNode, users: Users
) -> None:
    body = {"handles": [item("BATCH-ANON")]}
    r = api.post("/api/batch", json=body)
    assert (r.status_code, r.json()["responseCode"]) == (401, ResponseCode.AUTHENTICATION_NEEDED)
    r = api.post(
        "/api/batch", json=body, headers=basic(f"301:{PREFIX}/USER-A", users.user_a_secret)
    )
    assert r.status_code == 200
    assert r.json()["results"][0]["responseCode"] == ResponseCode.INVALID_ADMIN
    assert node.get_handle(f"{PREFIX}/BATCH-ANON") is None


def test_batch_bad_requests(api: InProcess, admin: dict[str, str]) -> None:
    too_many = {"handles": [item(f"MANY-{i}") for i in range(MAX_ITEMS + 1)]}
    r = api.post("/api/batch", headers=admin, json=too_many)
    assert (r.status_code, r.json()["responseCode"]) == (413, ResponseCode.PROTOCOL_ERROR)
    payloads: list[Any] = [[], {"handles": "x"}, {"other": []}]
    for payload in payloads:
        r = api.post("/api/batch", headers=admin, json=payload)
        assert (r.status_code, r.json()["responseCode"]) == (400, ResponseCode.PROTOCOL_ERROR)
    malformed = admin | {"content-type": "application/json"}
    r = api.post("/api/batch", headers=malformed, content=b"{")
    assert (r.status_code, r.json()["responseCode"]) == (400, ResponseCode.PROTOCOL_ERROR)
    r = api.get("/api/batch", headers=admin)
    assert r.status_code == 405


def test_full_batch_of_2000(api: InProcess, admin: dict[str, str], node: RunningNode) -> None:
    body = {"handles": [item(f"FULL-{i:04d}") for i in range(MAX_ITEMS)]}
    r = api.post("/api/batch", headers=admin, json=body)
    assert r.status_code == 200 and r.json()["created"] == MAX_ITEMS
    again = api.post("/api/batch", headers=admin, json=body).json()
    assert (again["created"], again["failed"]) == (0, MAX_ITEMS)
    assert node.get_handle(f"{PREFIX}/FULL-1999") is not None
