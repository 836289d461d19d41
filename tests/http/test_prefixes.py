"""``/api/prefixes`` (spec §5.3), CORS and OPTIONS, and the OpenAPI document."""

from __future__ import annotations

import asyncio

import pytest

from idnode.errors import HandleNotFound, ServerNotResponsible
from idnode.http.openapi import add_path_items, openapi_document
from tests.http.conftest import PREFIX, PREFIX_HANDLE, InProcess
from tests.server.nodeutil import RunningNode


def test_list_home_unhome(api: InProcess, admin: dict[str, str], node: RunningNode) -> None:
    r = api.get("/api/prefixes", headers=admin)
    assert r.status_code == 200
    assert r.json() == {"responseCode": 1, "totalCount": "1", "prefixes": [PREFIX_HANDLE]}
    r = api.post("/api/prefixes?prefix=0.NA/77.1", headers=admin)
    assert r.status_code == 200 and r.json() == {"responseCode": 1, "handle": "0.NA/77.1"}
    r = api.post("/api/prefixes/0.NA/77.2", headers=admin)  # the prefix in the path
    assert r.json() == {"responseCode": 1, "handle": "0.NA/77.2"}
    r = api.post("/api/prefixes", json={"prefix": "77.3"}, headers=admin)  # bare, in JSON
    assert r.json() == {"responseCode": 1, "handle": "77.3"}
    assert node.homed_prefixes() == sorted([PREFIX, "77.1", "77.2", "77.3"])
    with pytest.raises(HandleNotFound):  # homed: natively, "not found" instead of 301
        asyncio.run(node.client().resolve("77.2/X"))
    r = api.get("/api/prefixes?page=1&pageSize=2", headers=admin)
    assert r.json() == {
        "responseCode": 1,
        "totalCount": "4",
        "page": 1,
        "pageSize": 2,
        "prefixes": ["0.NA/77.3", "0.NA/88.118.8"],
    }
    for prefix in ("0.NA/77.1", "0.NA/77.2", "0.NA/77.3"):
        r = api.delete(f"/api/prefixes?prefix={prefix}", headers=admin)
        assert r.status_code == 200 and r.json() == {"responseCode": 1, "handle": prefix}
    assert node.homed_prefixes() == [PREFIX]
    with pytest.raises(ServerNotResponsible):
        asyncio.run(node.client().resolve("77.2/X"))


def test_options_and_cors(api: InProcess) -> None:
    r = api.request("OPTIONS", f"/api/handles/{PREFIX}/X")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["allow"] == "GET, HEAD, POST, PUT, DELETE, OPTIONS"
    assert api.request("OPTIONS", "/api/sessions").headers["allow"] == "POST, OPTIONS"
    assert (
        api.request("OPTIONS", "/api/prefixes").headers["allow"]
        == "GET, HEAD, POST, DELETE, OPTIONS"
    )
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "PUT"}
    r = api.request("OPTIONS", f"/api/handles/{PREFIX}/X", headers=preflight)
    assert r.headers["access-control-allow-origin"] == "*"
    assert "PUT" in r.headers["access-control-allow-methods"]
    assert "Authorization" in r.headers["access-control-allow-headers"]
    r = api.get(f"/api/handles/{PREFIX}/NOPE", headers={"Origin": "https://app.example"})
    assert "WWW-Authenticate" in r.headers["access-control-expose-headers"]


def test_openapi_document(api: InProcess) -> None:
    r = api.get("/api/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    for path in ("/api/handles/{handle}", "/api/handles", "/api/prefixes", "/api/sessions",
                 "/api/sessions/this", "/api/openapi.json", "/"):  # fmt: skip
        assert path in doc["paths"], path
    assert set(doc["paths"]["/api/handles/{handle}"]) == {"get", "post", "put", "delete"}
    error = doc["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"responseCode", "message", "handle", "errors"}
    assert error["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/FieldError"}


def test_openapi_hook_merges_and_refuses_clashes() -> None:
    proxy = {"/{handle}": {"get": {"responses": {"302": {"description": "redirect"}}}},
             "/": {"get": {"responses": {"200": {"description": "form"}}}}}  # fmt: skip
    doc = openapi_document(proxy)
    assert set(doc["paths"]["/"]) == {"get", "post"}
    assert "/{handle}" in doc["paths"]
    doc = openapi_document([("/01/{gtin}", {"get": {"responses": {}}})])
    assert "/01/{gtin}" in doc["paths"]
    with pytest.raises(ValueError, match="described twice"):
        add_path_items(openapi_document(), {"/": {"post": {"responses": {}}}})
