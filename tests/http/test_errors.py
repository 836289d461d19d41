# ruff: noqa: E501  (the table of cases below reads best one case per line)
"""Every error path of the HTTP interface: status, responseCode, and the one JSON error shape
(exactly ``responseCode``, ``message``, when the request names a handle, ``handle``, and when
a write breaks its metadata template, ``errors``); bad input changes nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from idnode.http.api import build_app
from tests.http.conftest import PREFIX, PREFIX_HANDLE, InProcess, basic, raw_asgi
from tests.server.nodeutil import RunningNode, Users, admin_value, matrix_target, text_value

PV = f"{PREFIX}/PV-2026-000123"
TARGET = f"{PREFIX}/HTTP-ERR-TARGET"
JSON = {"Content-Type": "application/json"}
ADMIN_VALUE = {
    "index": 100,
    "type": "HS_ADMIN",
    "data": {
        "format": "admin",
        "value": {"index": 200, "handle": PREFIX_HANDLE, "permissions": "*"},
    },
}


@dataclass
class Case:
    method: str
    path: str
    status: int
    code: int
    handle: str | None = None
    body: object = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: str | None = None  # "admin", "user_a", "partial", "wrong"
    errors: list[tuple[str, str]] | None = None  # per-field errors: (field, code)


def _put(
    path: str,
    body: object,
    status: int,
    code: int,
    handle: str | None,
    *,
    auth: str | None = None,
    headers: dict[str, str] | None = None,
) -> Case:
    return Case(
        "PUT", path, status, code, handle, body=body, headers=headers or dict(JSON), auth=auth
    )


GOOD = [ADMIN_VALUE, {"index": 1, "type": "URL", "data": "https://example.com/x"}]

CASES: dict[str, Case] = {
    "not-found": Case("GET", f"/api/handles/{PREFIX}/NOPE", 404, 100, f"{PREFIX}/NOPE"),
    "hdl-prefix": Case("GET", f"/api/handles/hdl:{PV}", 400, 301, f"hdl:{PV}"),
    "doi-prefix": Case("GET", "/api/handles/doi:10.1000/182", 400, 301, "doi:10.1000/182"),
    "prefix-elsewhere": Case("GET", "/api/handles/99.999/X", 400, 301, "99.999/X"),
    "empty-handle": Case("GET", "/api/handles/", 400, 102),
    "bad-index": Case("GET", f"/api/handles/{PV}?index=abc", 400, 4, PV),
    "negative-index": Case("GET", f"/api/handles/{PV}?index=-1", 400, 4, PV),
    "huge-index": Case("GET", f"/api/handles/{PV}?index=99999999999", 400, 4, PV),
    "not-utf8": Case("GET", "/api/handles/88.118.8/%FF", 400, 102),
    "restricted-anonymous": Case("GET", f"/api/handles/{PV}?publicOnly=false", 401, 402, PV),
    "post-not-object": Case("POST", f"/api/handles/{PV}", 400, 4, PV, content=b"[]", headers=dict(JSON)),
    "post-bad-json": Case("POST", f"/api/handles/{PV}", 400, 4, PV, content=b"{", headers=dict(JSON)),
    "put-anonymous": _put(f"/api/handles/{TARGET}", GOOD, 401, 402, TARGET),
    "put-text-plain": Case("PUT", f"/api/handles/{TARGET}", 400, 4, TARGET, content=b"[]", headers={"Content-Type": "text/plain"}, auth="admin"),
    "put-no-content-type": Case("PUT", f"/api/handles/{TARGET}", 400, 4, TARGET, content=b"[]", auth="admin"),
    "put-malformed-json": Case("PUT", f"/api/handles/{TARGET}", 400, 4, TARGET, content=b'{"values": [', headers=dict(JSON), auth="admin"),
    "put-not-utf8-json": Case("PUT", f"/api/handles/{TARGET}", 400, 4, TARGET, content=b'["\xff"]', headers=dict(JSON), auth="admin"),
    "put-number": _put(f"/api/handles/{TARGET}", 5, 400, 4, TARGET, auth="admin"),
    "put-object": _put(f"/api/handles/{TARGET}", {"x": 1}, 400, 4, TARGET, auth="admin"),
    "put-values-not-list": _put(f"/api/handles/{TARGET}", {"values": "x"}, 400, 4, TARGET, auth="admin"),
    "put-index-type": _put(f"/api/handles/{TARGET}", [{"index": "x", "type": "URL", "data": "u"}], 400, 4, TARGET, auth="admin"),
    "put-index-float": _put(f"/api/handles/{TARGET}", [{"index": 1.5, "type": "URL", "data": "u"}], 400, 4, TARGET, auth="admin"),
    "put-type-number": _put(f"/api/handles/{TARGET}", [{"index": 1, "type": 5, "data": "u"}], 400, 4, TARGET, auth="admin"),
    "put-data-null": _put(f"/api/handles/{TARGET}", [{"index": 1, "type": "URL", "data": None}], 400, 4, TARGET, auth="admin"),
    "put-data-list": _put(f"/api/handles/{TARGET}", [{"index": 1, "type": "URL", "data": [1]}], 400, 4, TARGET, auth="admin"),
    "put-null-value": _put(f"/api/handles/{TARGET}", [None], 400, 4, TARGET, auth="admin"),
    "put-bad-format": _put(f"/api/handles/{TARGET}", [{"index": 1, "type": "X", "data": {"format": "rot13", "value": "x"}}], 400, 4, TARGET, auth="admin"),
    "put-bad-base64": _put(f"/api/handles/{TARGET}", [{"index": 1, "type": "X", "data": {"format": "base64", "value": "!!"}}], 400, 4, TARGET, auth="admin"),
    "put-bad-hex": _put(f"/api/handles/{TARGET}", [{"index": 1, "type": "X", "data": {"format": "hex", "value": "abc"}}], 400, 4, TARGET, auth="admin"),
    "put-bad-ttl": _put(f"/api/handles/{TARGET}", [{"index": 1, "type": "X", "data": "d", "ttl": "soon"}], 400, 4, TARGET, auth="admin"),
    "put-bad-admin": _put(f"/api/handles/{TARGET}", [{"index": 100, "type": "HS_ADMIN", "data": {"format": "admin", "value": {"handle": PREFIX_HANDLE}}}], 400, 4, TARGET, auth="admin"),
    "put-admin-bytes": _put(f"/api/handles/{TARGET}", [{"index": 100, "type": "HS_ADMIN", "data": "not an admin record"}], 400, 202, TARGET, auth="admin"),
    "put-duplicate-index": _put(f"/api/handles/{TARGET}", [ADMIN_VALUE, ADMIN_VALUE], 400, 202, TARGET, auth="admin"),
    "put-index-zero": _put(f"/api/handles/{TARGET}", [{"index": 0, "type": "URL", "data": "u"}], 400, 202, TARGET, auth="admin"),
    "put-mismatched-indexes": _put(f"/api/handles/{TARGET}?index=1&index=2", [{"index": 1, "type": "URL", "data": "u"}], 400, 4, TARGET, auth="admin"),
    "put-mismatched-handle": _put(f"/api/handles/{TARGET}", {"handle": f"{PREFIX}/OTHER", "values": GOOD}, 400, 4, TARGET, auth="admin"),
    "put-bad-query-index": _put(f"/api/handles/{TARGET}?index=x", GOOD, 400, 4, TARGET, auth="admin"),
    "put-exists": _put(f"/api/handles/{TARGET}?overwrite=false", GOOD, 409, 101, TARGET, auth="admin"),
    "put-value-exists": _put(f"/api/handles/{TARGET}?index=1&overwrite=false", [{"index": 1, "type": "URL", "data": "u"}], 409, 201, TARGET, auth="admin"),
    "put-add-to-missing": _put(f"/api/handles/{PREFIX}/NOPE?index=1", [{"index": 1, "type": "URL", "data": "u"}], 404, 100, f"{PREFIX}/NOPE", auth="admin"),
    "put-elsewhere": _put("/api/handles/99.999/X", GOOD, 400, 301, "99.999/X", auth="admin"),
    "put-handle-too-long": _put(f"/api/handles/{PREFIX}/{'L' * 2100}", GOOD, 400, 102, f"{PREFIX}/{'L' * 2100}", auth="admin"),
    "put-no-slash": _put(f"/api/handles/{PREFIX}", GOOD, 400, 102, PREFIX, auth="admin"),
    "put-empty-handle": _put("/api/handles/", GOOD, 400, 102, None, auth="admin"),
    "put-wrong-secret": _put(f"/api/handles/{TARGET}", GOOD, 401, 403, TARGET, auth="wrong"),
    "put-malformed-basic": _put(f"/api/handles/{TARGET}", GOOD, 401, 403, TARGET, headers={**JSON, "Authorization": "Basic %%%"}),
    "put-other-scheme": _put(f"/api/handles/{TARGET}", GOOD, 401, 403, TARGET, headers={**JSON, "Authorization": "Bearer abc"}),
    "put-unknown-session": _put(f"/api/handles/{TARGET}", GOOD, 401, 403, TARGET, headers={**JSON, "Authorization": 'Handle sessionId="nope"'}),
    "put-not-admin": _put(f"/api/handles/{TARGET}", GOOD, 403, 400, TARGET, auth="user_a"),
    "put-breaks-template": Case("PUT", f"/api/handles/{TARGET}", 400, 202, TARGET, body=[ADMIN_VALUE, {"index": 1001, "type": "TEMPLATE", "data": f"{PREFIX}/META_NONE"}], headers=dict(JSON), auth="admin", errors=[("TEMPLATE", "template_link")]),
    "put-insufficient": _put(f"/api/handles/{TARGET}?index=100", [ADMIN_VALUE], 403, 401, TARGET, auth="partial"),
    "delete-anonymous": Case("DELETE", f"/api/handles/{TARGET}", 401, 402, TARGET),
    "delete-missing-index": Case("DELETE", f"/api/handles/{TARGET}?index=77", 400, 200, TARGET, auth="admin"),
    "delete-not-found": Case("DELETE", f"/api/handles/{PREFIX}/NOPE", 404, 100, f"{PREFIX}/NOPE", auth="admin"),
    "delete-not-admin": Case("DELETE", f"/api/handles/{TARGET}", 403, 400, TARGET, auth="user_a"),
    "list-anonymous": Case("GET", f"/api/handles?prefix={PREFIX}", 401, 402, PREFIX),
    "list-bad-page": Case("GET", f"/api/handles?prefix={PREFIX}&page=x&pageSize=1", 400, 4, PREFIX, auth="admin"),
    "list-elsewhere": Case("GET", "/api/handles?prefix=99.999", 400, 301, "99.999", auth="admin"),
    "unknown-endpoint": Case("GET", "/api/nothing", 404, 4),
    "unknown-endpoint-api": Case("DELETE", "/api", 404, 4),
    "mixed-case-endpoint": Case("GET", f"/api/Handles/{PV}", 404, 4),
    "unknown-method": Case("PATCH", f"/api/handles/{PV}", 501, 4),
    "trace": Case("TRACE", f"/api/handles/{PV}", 405, 4),
    "prefixes-put": Case("PUT", "/api/prefixes", 405, 4),
    "prefixes-get-named": Case("GET", "/api/prefixes?prefix=0.NA/1", 405, 4, auth="admin"),
    "prefixes-anonymous": Case("GET", "/api/prefixes", 401, 402),
    "prefixes-not-server-admin": Case("GET", "/api/prefixes", 403, 400, auth="user_a"),
    "prefixes-post-missing": Case("POST", "/api/prefixes", 400, 4, auth="admin"),
    "prefixes-delete-missing": Case("DELETE", "/api/prefixes", 400, 4, auth="admin"),
    "prefixes-home-anonymous": Case("POST", "/api/prefixes?prefix=0.NA/77.7", 401, 402, "0.NA/77.7"),
    "prefixes-home-not-admin": Case("POST", "/api/prefixes?prefix=0.NA/77.7", 403, 400, "0.NA/77.7", auth="user_a"),
    "prefixes-bad-json": Case("POST", "/api/prefixes", 400, 4, content=b"{", headers=dict(JSON), auth="admin"),
    "sessions-get": Case("GET", "/api/sessions", 405, 4),
    "sessions-with-id": Case("POST", "/api/sessions", 400, 4, headers={"Authorization": 'Handle sessionId="x"'}),
    "sessions-unknown": Case("GET", "/api/sessions/this", 403, 403, headers={"Authorization": 'Handle sessionId="nope"'}),
    "sessions-other": Case("GET", "/api/sessions/other", 403, 403),
    "sessions-delete-none": Case("DELETE", "/api/sessions/this", 403, 403),
    "sessions-wrong-basic": Case("PUT", "/api/sessions/this", 401, 403, auth="wrong"),
    "native-garbage": Case("POST", "/", 400, 4, content=b"\x00" * 10, headers={"Content-Type": "application/x-hdl-message"}),
    "native-too-large": Case("POST", "/x", 413, 4, content=b"\x00" * (5 * 1024 * 1024), headers={"Content-Type": "application/x-hdl-message"}),
    "body-too-large": Case("PUT", f"/api/handles/{TARGET}", 413, 4, TARGET, content=b" " * (4 * 1024 * 1024 + 1), headers=dict(JSON), auth="admin"),
}  # fmt: skip


def _headers(case: Case, node: RunningNode) -> dict[str, str]:
    credentials = {
        "admin": (f"300:{PREFIX_HANDLE}", node.admin_secret),
        "user_a": (f"301:{PREFIX}/USER-A", b"user-a-secret"),
        "partial": (f"300:{PREFIX}/USER-P", b"partial-secret"),
        "wrong": (f"300:{PREFIX_HANDLE}", b"not-the-secret"),
    }
    headers = dict(case.headers)
    if case.auth is not None:
        headers.update(basic(*credentials[case.auth]))
    return headers


@pytest.fixture(scope="module")
def target(node: RunningNode, users: Users) -> None:
    matrix_target(node, TARGET)


def _send(api: InProcess, node: RunningNode, case: Case):
    kwargs: dict[str, object] = {"headers": _headers(case, node)}
    if case.content is not None:
        kwargs["content"] = case.content
    elif case.body is not None:
        kwargs["content"] = json.dumps(case.body).encode()
    return api.request(case.method, case.path, **kwargs)


@pytest.mark.parametrize("name", list(CASES))
def test_error_shape(name: str, api: InProcess, node: RunningNode, target: None) -> None:
    case = CASES[name]
    before = node.get_handle(TARGET)
    r = _send(api, node, case)
    assert r.status_code == case.status, r.text
    assert r.headers["content-type"] == "application/json; charset=UTF-8"
    body = r.json()
    expected_keys = {"responseCode", "message"} | ({"handle"} if case.handle is not None else set())
    expected_keys |= {"errors"} if case.errors is not None else set()
    assert set(body) == expected_keys, body
    if case.errors is not None:
        assert [(e["field"], e["code"]) for e in body["errors"]] == case.errors
    assert body["responseCode"] == case.code, body
    assert isinstance(body["message"], str) and body["message"]
    if case.handle is not None:
        assert body["handle"] == case.handle
    if case.status == 405:
        assert r.headers["allow"]
    if case.status == 401 and (case.auth or "").startswith("wrong"):
        assert 'Basic realm="handle"' in r.headers.get_list("www-authenticate")
    assert node.get_handle(TARGET) == before, "an error changed the target"


def test_error_walk_covers_every_status(api: InProcess) -> None:
    statuses = {c.status for c in CASES.values()}
    assert statuses == {400, 401, 403, 404, 405, 409, 413, 501}


def test_unknown_session_offers_a_new_one(api: InProcess, node: RunningNode) -> None:
    r = api.get(f"/api/handles/{PV}", headers={"Authorization": 'Handle sessionId="nope"'})
    assert r.status_code == 401
    challenge = [h for h in r.headers.get_list("www-authenticate") if h.startswith("Handle")]
    assert len(challenge) == 1 and 'sessionId="' in challenge[0] and 'nonce="' in challenge[0]


def test_nothing_written_on_bad_create(
    api: InProcess, node: RunningNode, admin: dict[str, str]
) -> None:
    handle = f"{PREFIX}/HTTP-NEVER"
    bad_bodies: list[object] = [
        [ADMIN_VALUE, {"index": 1, "type": "URL", "data": None}],
        [ADMIN_VALUE, {"index": 1, "type": "HS_VLIST", "data": "not a vlist"}],
        [
            ADMIN_VALUE,
            {"index": 2, "type": "URL", "data": "u"},
            {"index": 2, "type": "X", "data": "v"},
        ],
        {"values": [ADMIN_VALUE], "handle": f"{PREFIX}/ELSEWHERE"},
    ]
    for body in bad_bodies:
        r = api.put(f"/api/handles/{handle}", content=json.dumps(body), headers={**admin, **JSON})
        assert r.status_code == 400, body
        assert node.get_handle(handle) is None
    # a partly valid add changes nothing either
    node.put_handle(
        handle, [text_value(1, "URL", "u"), admin_value(100, 0x0FFF, PREFIX_HANDLE, 200)]
    )
    before = node.get_handle(handle)
    body = [
        {"index": 2, "type": "URL", "data": "ok"},
        {"index": 3, "type": "HS_ADMIN", "data": "bad"},
    ]
    r = api.put(
        f"/api/handles/{handle}?index=2&index=3",
        content=json.dumps(body),
        headers={**admin, **JSON},
    )
    assert r.status_code == 400 and node.get_handle(handle) == before


# -- paths: nothing escapes, nothing is normalised ----------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status", "code", "handle"),
    [
        (b"/api/handles/../api/handles/88.118.8/PV-2026-000123", 400, 301, "../api/handles/88.118.8/PV-2026-000123"),
        (b"/api/handles/88.118.8/../0.NA/88.118.8", 404, 100, "88.118.8/../0.NA/88.118.8"),
        (b"/api/handles/88.118.8%2F..%2F0.NA%2F88.118.8", 404, 100, "88.118.8/../0.NA/88.118.8"),
        (b"/api/handles/./88.118.8/PV-2026-000123", 400, 301, "./88.118.8/PV-2026-000123"),
        (b"/api/handles//88.118.8/PV-2026-000123", 400, 301, "/88.118.8/PV-2026-000123"),
        (b"/api/handles/88.118.8/PV-2026-000123%00", 404, 100, "88.118.8/PV-2026-000123\x00"),
        (b"/api%2Fhandles/88.118.8/PV-2026-000123", 404, 4, None),
        (b"/api/handles%2F88.118.8/PV-2026-000123", 404, 4, None),
    ],
)  # fmt: skip
def test_raw_paths(
    node: RunningNode, raw: bytes, status: int, code: int, handle: str | None
) -> None:
    app = build_app(node.node.dispatcher)
    r = raw_asgi(node, app, "GET", raw)
    assert r.status == status, r.body
    body = r.json()
    assert body["responseCode"] == code
    assert body.get("handle") == handle


def test_plus_and_case_are_kept(node: RunningNode, api: InProcess) -> None:
    node.put_handle(f"{PREFIX}/A+B C", [text_value(1, "URL", "https://plus.example")])
    app = build_app(node.node.dispatcher)
    r = raw_asgi(node, app, "GET", b"/api/handles/88.118.8/a+b%20c")
    assert r.status == 200 and r.json()["handle"] == "88.118.8/a+b%20c".replace("%20", " ")
    r = raw_asgi(node, app, "GET", b"/api/handles/88.118.8/A%2BB%20C")
    assert r.status == 200 and r.json()["handle"] == "88.118.8/A+B C"


def test_dot_segments_do_not_write_elsewhere(node: RunningNode, admin: dict[str, str]) -> None:
    app = build_app(node.node.dispatcher)
    headers = [(k.lower().encode(), v.encode()) for k, v in {**admin, **JSON}.items()]
    body = json.dumps([ADMIN_VALUE]).encode()
    r = raw_asgi(
        node, app, "PUT", b"/api/handles/88.118.8/../88.118.8/DOTS", headers=headers, body=body
    )
    assert r.status == 200 and r.json()["handle"] == "88.118.8/../88.118.8/DOTS"
    assert node.get_handle("88.118.8/../88.118.8/DOTS") is not None
    assert node.get_handle("88.118.8/DOTS") is None
    r = raw_asgi(node, app, "PUT", b"/api/handles/../0.NA/88.118.8", headers=headers, body=body)
    assert r.status == 400 and r.json()["responseCode"] == 301
    assert any(v.type == "HS_SITE" for v in node.get_handle(PREFIX_HANDLE) or ())
