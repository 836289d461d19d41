"""``/api/handles``: resolution, writes, deletion, listing (spec §5.1, §5.2), in process."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from idnode.protocol.values import HandleValue
from tests.http.conftest import PREFIX, PREFIX_HANDLE, InProcess, basic
from tests.server.nodeutil import RunningNode, admin_value, text_value

PV = f"{PREFIX}/PV-2026-000123"
ADMIN_VALUE = {
    "index": 100,
    "type": "HS_ADMIN",
    "data": {
        "format": "admin",
        "value": {"index": "200", "handle": PREFIX_HANDLE, "permissions": "011111110011"},
    },
}


def values_of(response_json: dict[str, Any]) -> dict[int, Any]:
    values = response_json["values"]
    assert isinstance(values, list)
    return {v["index"]: v for v in values}


def put_json(api: InProcess, path: str, body: object, headers: dict[str, str], **kw: object):
    return api.put(
        path,
        content=json.dumps(body),
        headers={**headers, "Content-Type": "application/json"},
        **kw,
    )


# -- GET -------------------------------------------------------------------------------------


def test_get_record(api: InProcess) -> None:
    r = api.get(f"/api/handles/{PV}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=UTF-8"
    assert r.headers["access-control-allow-origin"] == "*"
    body = r.json()
    assert list(body) == ["responseCode", "handle", "values"]
    assert body["responseCode"] == 1 and body["handle"] == PV
    url = values_of(body)[1]
    assert url["type"] == "URL" and url["ttl"] == 86400
    assert url["data"] == {
        "format": "string",
        "value": "https://pv.example.com/modules/PV-2026-000123",
    }
    assert time.strptime(url["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert "permissions" not in url  # only unusual permissions are written
    admin = values_of(body)[100]["data"]
    assert admin == {
        "format": "admin",
        "value": {"handle": PREFIX_HANDLE, "index": 200, "permissions": "111111110011"},
    }
    # the non-public value is left out for an anonymous client (publicOnly defaults to true)
    assert 5 not in values_of(body)


def test_prefix_handle_is_public_for_pyhandle(api: InProcess) -> None:
    """pyhandle's constructor GETs 0.NA/<prefix> anonymously and wants 200, responseCode 1
    and the handle echoed exactly; the HS_SECKEY is not among the values."""
    r = api.get(f"/api/handles/{PREFIX_HANDLE}", headers={"Accept": "application/json"})
    assert r.status_code == 200
    body = r.json()
    assert body["responseCode"] == 1 and body["handle"] == PREFIX_HANDLE
    types = {v["type"] for v in body["values"]}
    assert "HS_SITE" in types and "HS_PUBKEY" in types and "HS_SECKEY" not in types


def test_get_echoes_the_request_verbatim(api: InProcess) -> None:
    lower = f"{PREFIX}/pv-2026-000123"
    r = api.get(f"/api/handles/{lower}")
    assert r.status_code == 200 and r.json()["handle"] == lower
    r = api.get(f"/api/handles/{PREFIX}%2FPV-2026-000123")  # an encoded slash is a slash
    assert r.status_code == 200 and r.json()["handle"] == PV


@pytest.mark.parametrize(
    ("query", "indexes"),
    [
        ("index=1", {1}),
        ("index=1&index=3", {1, 3}),
        ("type=URL", {1}),
        ("type=EMAIL&index=2", {2, 3}),
        ("type=desc", {2}),
        ("type=HS_ADMIN&type=BATCH", {4, 100}),
    ],
)
def test_get_filters(api: InProcess, query: str, indexes: set[int]) -> None:
    r = api.get(f"/api/handles/{PV}?{query}")
    assert r.status_code == 200
    assert set(values_of(r.json())) == indexes


def test_get_type_prefix_matches_subtypes(api: InProcess, node: RunningNode) -> None:
    handle = f"{PREFIX}/HTTP-SUBTYPES"
    node.put_handle(handle, [text_value(1, "URL", "a"), text_value(2, "URL.ALT", "b")])
    r = api.get(f"/api/handles/{handle}?type=URL.")
    assert set(values_of(r.json())) == {2}


def test_get_no_value_matches(api: InProcess) -> None:
    r = api.get(f"/api/handles/{PV}?type=NOTHING")
    assert r.status_code == 200
    assert r.json() == {"responseCode": 200, "handle": PV, "values": []}


def test_get_not_found(api: InProcess) -> None:
    r = api.get(f"/api/handles/{PREFIX}/NO-SUCH-HANDLE")
    assert r.status_code == 404
    assert r.json() == {
        "responseCode": 100,
        "handle": f"{PREFIX}/NO-SUCH-HANDLE",
        "message": "Handle not found.",
    }


def test_get_restricted_values(api: InProcess, admin: dict[str, str]) -> None:
    # authenticated: publicOnly defaults to false, the admin may read value 5
    r = api.get(f"/api/handles/{PV}", headers=admin)
    assert 5 in values_of(r.json())
    assert values_of(r.json())[5]["permissions"] == "1100"
    r = api.get(f"/api/handles/{PV}?publicOnly=true", headers=admin)
    assert 5 not in values_of(r.json())
    # anonymous asking for restricted values: authentication needed
    r = api.get(f"/api/handles/{PV}?publicOnly=false")
    assert r.status_code == 401
    assert r.json()["responseCode"] == 402
    assert 'Basic realm="handle"' in r.headers.get_list("www-authenticate")
    r = api.get(f"/api/handles/{PV}?publicOnly=no")  # not "", true or yes: false
    assert r.status_code == 401


def test_get_boolean_parameters(api: InProcess) -> None:
    for value in ("", "true", "TRUE", "yes"):
        r = api.get(f"/api/handles/{PV}?publicOnly={value}&auth={value}")
        assert r.status_code == 200, value


def test_pretty_and_jsonp(api: InProcess) -> None:
    compact = api.get(f"/api/handles/{PV}?index=1")
    pretty = api.get(f"/api/handles/{PV}?index=1&pretty")
    assert b"\n" not in compact.content and b'":' in compact.content
    assert pretty.content.startswith(b"{\n  ")
    assert pretty.json() == compact.json()
    r = api.get(f"/api/handles/{PV}?index=1&callback=show")
    assert r.headers["content-type"] == "application/javascript; charset=UTF-8"
    assert r.text == f"show({compact.text});"
    r = api.get(f"/api/handles/{PV}?index=1&callback=9a<b>.c$")
    assert r.text.startswith("_a_b__c$(")  # scrubbed to identifier characters
    r = api.get(f"/api/handles/{PREFIX}/NOPE?callback=cb")
    assert r.status_code == 404 and r.text.startswith("cb({") and r.text.endswith("});")


def test_head(api: InProcess) -> None:
    r = api.request("HEAD", f"/api/handles/{PV}")
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["content-length"]) > 0


def test_post_is_get_with_body_parameters(api: InProcess) -> None:
    r = api.post(f"/api/handles/{PV}", json={"index": [1, 3], "pretty": True})
    assert r.status_code == 200 and set(values_of(r.json())) == {1, 3}
    assert r.content.startswith(b"{\n")
    r = api.post(f"/api/handles/{PV}", data={"type": "EMAIL"})
    assert set(values_of(r.json())) == {3}
    r = api.post(f"/api/handles/{PV}?index=2", json={"index": 4})
    assert set(values_of(r.json())) == {2, 4}
    r = api.post(f"/api/handles/{PV}", content=b"[1]", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["responseCode"] == 4
    # a POST never writes
    assert api.post(f"/api/handles/{PREFIX}/POSTED", json={"values": []}).status_code == 404


# -- PUT ---------------------------------------------------------------------------------------


def test_create_like_pyhandle(api: InProcess, admin: dict[str, str], node: RunningNode) -> None:
    handle = f"{PREFIX}/HTTP-CREATE"
    body = {
        "values": [
            ADMIN_VALUE,
            {"index": 1, "type": "URL", "data": "https://example.com/created"},
            {"index": 2, "type": "CHECKSUM", "data": "abc"},
        ]
    }
    r = put_json(api, f"/api/handles/{handle}?overwrite=false", body, admin)
    assert r.status_code == 201 and r.json() == {"responseCode": 1, "handle": handle}
    stored = node.get_handle(handle)
    assert stored is not None and [v.index for v in stored] == [1, 2, 100]
    assert stored[0].data == b"https://example.com/created"
    # again without overwrite: exists
    r = put_json(api, f"/api/handles/{handle}?overwrite=false", body, admin)
    assert r.status_code == 409 and r.json()["responseCode"] == 101
    assert r.json()["handle"] == handle
    # overwrite (the default): replaced whole, 200
    body2 = [ADMIN_VALUE, {"index": 7, "type": "URL", "data": "https://example.com/v2"}]
    r = put_json(api, f"/api/handles/{handle}", body2, admin)
    assert r.status_code == 200 and r.json() == {"responseCode": 1, "handle": handle}
    stored = node.get_handle(handle)
    assert stored is not None and [v.index for v in stored] == [7, 100]


def test_create_single_value_object(
    api: InProcess, admin: dict[str, str], node: RunningNode
) -> None:
    handle = f"{PREFIX}/HTTP-SINGLE"
    value = {"index": 1, "type": "URL", "data": {"format": "string", "value": "https://x.example"}}
    r = put_json(api, f"/api/handles/{handle}", value, admin)
    assert r.status_code == 200
    stored = node.get_handle(handle)
    assert stored is not None and stored[0].data == b"https://x.example"


def test_overwrite_parameter_is_java_boolean(api: InProcess, admin: dict[str, str]) -> None:
    handle = f"{PREFIX}/HTTP-OVERWRITE"
    body = [ADMIN_VALUE]
    assert put_json(api, f"/api/handles/{handle}", body, admin).status_code == 200
    # only "true" (any case) is true: "yes" and "" mean false here (Boolean.parseBoolean)
    for value in ("yes", "", "1"):
        r = put_json(api, f"/api/handles/{handle}?overwrite={value}", body, admin)
        assert r.status_code == 409, value
    assert put_json(api, f"/api/handles/{handle}?overwrite=TRUE", body, admin).status_code == 200


def test_add_values_with_index(api: InProcess, admin: dict[str, str], node: RunningNode) -> None:
    handle = f"{PREFIX}/HTTP-ADD"
    node.put_handle(
        handle,
        [text_value(1, "URL", "https://a.example"), admin_value(100, 0x0FFF, PREFIX_HANDLE, 200)],
    )
    new = {"index": 2, "type": "EMAIL", "data": "a@example.com"}
    r = put_json(api, f"/api/handles/{handle}?index=2&overwrite=false", {"values": [new]}, admin)
    assert r.status_code == 201 and r.json() == {"responseCode": 1, "handle": handle}
    r = put_json(api, f"/api/handles/{handle}?index=2&overwrite=false", {"values": [new]}, admin)
    assert r.status_code == 409 and r.json()["responseCode"] == 201
    # pyhandle's modify: PUT ?index=1&overwrite=true replaces the value at 1
    changed = {"index": 1, "type": "URL", "data": "https://b.example", "ttl": 3600}
    r = put_json(api, f"/api/handles/{handle}?index=1&overwrite=true", {"values": [changed]}, admin)
    assert r.status_code == 200
    stored = {v.index: v for v in node.get_handle(handle) or ()}
    assert stored[1].data == b"https://b.example" and stored[1].ttl == 3600
    assert stored[2].data == b"a@example.com"
    # index=various: whatever the body holds
    many = [{"index": 3, "type": "A", "data": "x"}, {"index": 4, "type": "B", "data": "y"}]
    r = put_json(api, f"/api/handles/{handle}?index=various", many, admin)
    assert r.status_code == 200
    assert {v.index for v in node.get_handle(handle) or ()} == {1, 2, 3, 4, 100}


def test_mint_new_suffix(api: InProcess, admin: dict[str, str], node: RunningNode) -> None:
    r = put_json(
        api, f"/api/handles/{PREFIX}/MINT-?mintNewSuffix=true&overwrite=false", [ADMIN_VALUE], admin
    )
    assert r.status_code == 201
    minted = r.json()["handle"]
    assert minted.startswith(f"{PREFIX}/MINT--") and len(minted) > len(PREFIX) + 7
    assert node.get_handle(minted) is not None


def test_value_formats_round_trip(api: InProcess, admin: dict[str, str]) -> None:
    handle = f"{PREFIX}/HTTP-FORMATS"
    site = api.get(f"/api/handles/{PREFIX_HANDLE}?index=1").json()["values"][0]["data"]
    pubkey = api.get(f"/api/handles/{PREFIX_HANDLE}?index=301").json()["values"][0]["data"]
    assert pubkey["format"] == "key" and pubkey["value"]["kty"] == "RSA"
    values = [
        ADMIN_VALUE,
        {"index": 1, "type": "BIN", "data": {"format": "base64", "value": "AAEC/w=="}},
        {"index": 2, "type": "HEX", "data": {"format": "hex", "value": "00ff10"}},
        {
            "index": 3,
            "type": "HS_VLIST",
            "data": {"format": "vlist", "value": [{"handle": PREFIX_HANDLE, "index": "300"}]},
        },
        {"index": 4, "type": "HS_SITE", "data": site},
        {"index": 5, "type": "HS_PUBKEY", "data": pubkey},
        {
            "index": 6,
            "type": "URL",
            "data": "https://e.example",
            "permissions": "1111",
            "ttl": "2030-01-02T03:04:05Z",
            "references": [{"handle": PV, "index": 1}],
        },
    ]
    assert put_json(api, f"/api/handles/{handle}", values, admin).status_code == 200
    got = values_of(api.get(f"/api/handles/{handle}").json())
    assert got[1]["data"] == {"format": "base64", "value": "AAEC/w=="}
    assert got[2]["data"] == {"format": "base64", "value": "AP8Q"}
    assert got[3]["data"] == {"format": "vlist", "value": [{"handle": PREFIX_HANDLE, "index": 300}]}
    assert got[4]["data"] == site
    assert got[5]["data"] == pubkey
    assert got[6]["permissions"] == "1111" and got[6]["ttl"] == "2030-01-02T03:04:05Z"
    assert got[6]["references"] == [{"handle": PV, "index": 1}]
    assert got[100]["data"]["value"]["index"] == 200  # pyhandle's string index, as a number


# -- DELETE --------------------------------------------------------------------------------------


def test_delete_values_and_handle(api: InProcess, admin: dict[str, str], node: RunningNode) -> None:
    handle = f"{PREFIX}/HTTP-DELETE"
    node.put_handle(
        handle,
        [
            text_value(1, "URL", "u"),
            text_value(2, "X", "x"),
            text_value(3, "Y", "y"),
            admin_value(100, 0x0FFF, PREFIX_HANDLE, 200),
        ],
    )
    r = api.delete(f"/api/handles/{handle}?index=2&index=3", headers=admin)
    assert r.status_code == 200 and r.json() == {"responseCode": 1, "handle": handle}
    assert [v.index for v in node.get_handle(handle) or ()] == [1, 100]
    r = api.delete(f"/api/handles/{handle}?index=9", headers=admin)
    assert r.status_code == 400 and r.json()["responseCode"] == 200
    r = api.delete(f"/api/handles/{handle}", headers=admin)
    assert r.status_code == 200 and r.json() == {"responseCode": 1, "handle": handle}
    assert node.get_handle(handle) is None
    r = api.delete(f"/api/handles/{handle}", headers=admin)
    assert r.status_code == 404
    assert r.json() == {"responseCode": 100, "handle": handle, "message": "Handle not found."}


# -- listing -------------------------------------------------------------------------------------


def test_list_handles(api: InProcess, admin: dict[str, str], node: RunningNode) -> None:
    everything = sorted(node.list_handles(), key=str.upper)
    for prefix in (PREFIX, PREFIX_HANDLE):
        r = api.get(f"/api/handles?prefix={prefix}", headers=admin)
        assert r.status_code == 200
        body = r.json()
        assert body == {
            "responseCode": 1,
            "prefix": prefix,
            "totalCount": str(len(everything)),
            "handles": body["handles"],
        }
        assert sorted(body["handles"], key=str.upper) == everything
    r = api.get(f"/api/handles/?prefix={PREFIX}&page=1&pageSize=2", headers=admin)
    body = r.json()
    assert (
        body["page"] == 1 and body["pageSize"] == 2 and body["totalCount"] == str(len(everything))
    )
    full = api.get(f"/api/handles?prefix={PREFIX}", headers=admin).json()["handles"]
    assert body["handles"] == full[2:4]
    r = api.get(f"/api/handles?prefix={PREFIX}&page=0&pageSize=0", headers=admin)
    assert r.json()["handles"] == []
    r = api.get(f"/api/handles?prefix={PREFIX}&page=3", headers=admin)  # page alone: no paging
    assert "page" not in r.json() and len(r.json()["handles"]) == len(everything)


def test_list_handles_needs_list_permission(api: InProcess, users: object) -> None:
    r = api.get(f"/api/handles?prefix={PREFIX}")
    assert r.status_code == 401 and r.json() == {
        "responseCode": 402,
        "handle": PREFIX,
        "message": "Authentication needed.",
    }
    user_a = basic(f"301:{PREFIX}/USER-A", b"user-a-secret")
    r = api.get(f"/api/handles?prefix={PREFIX}", headers=user_a)
    assert r.status_code == 403 and r.json()["responseCode"] == 400
    partial = basic(f"300:{PREFIX}/USER-P", b"partial-secret")  # LIST_HANDLES only
    assert api.get(f"/api/handles?prefix={PREFIX}", headers=partial).status_code == 200


def test_empty_handle(api: InProcess, admin: dict[str, str]) -> None:
    for path in ("/api/handles", "/api/handles/"):
        r = api.get(path)
        assert r.status_code == 400
        assert r.json() == {"responseCode": 102, "message": "Empty handle invalid"}
    r = put_json(api, "/api/handles/", [ADMIN_VALUE], admin)
    assert r.status_code == 400 and r.json()["responseCode"] == 102
    assert api.delete("/api/handles/", headers=admin).status_code == 400


def test_values_stored_as_given(node: RunningNode, api: InProcess, admin: dict[str, str]) -> None:
    """Timestamps are the server's; everything else is what the client sent."""
    handle = f"{PREFIX}/HTTP-TS"
    body = [
        ADMIN_VALUE,
        {"index": 1, "type": "URL", "data": "u", "timestamp": "2001-01-01T00:00:00Z"},
    ]
    before = int(time.time())
    assert put_json(api, f"/api/handles/{handle}", body, admin).status_code == 200
    stored = node.get_handle(handle)
    assert stored is not None
    assert all(isinstance(v, HandleValue) and v.timestamp >= before for v in stored)
