"""HTTP Basic, sessions and the ``Authorization: Handle`` scheme (spec §5.4, §5.5), and
permissions identical to the native protocol."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa

from idnode.errors import HandleError
from idnode.http.api import build_app
from idnode.http.auth import parse_basic, parse_handle_authorization, signed_response
from idnode.http.sessions import SessionStore
from idnode.protocol.auth import java_pbkdf2_hmac_sha1
from idnode.protocol.values import HandleValue
from idnode.server.authz import Identity
from tests.http.conftest import PREFIX, PREFIX_HANDLE, InProcess, basic
from tests.server.nodeutil import RunningNode, Users, matrix_target, seckey_value, text_value

PV = f"{PREFIX}/PV-2026-000123"
JSON = {"Content-Type": "application/json"}
ADMIN_VALUE = {
    "index": 100,
    "type": "HS_ADMIN",
    "data": {
        "format": "admin",
        "value": {"index": 200, "handle": PREFIX_HANDLE, "permissions": "*"},
    },
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def put(api: InProcess, handle: str, headers: dict[str, str], body: object = None) -> Any:
    body = [ADMIN_VALUE] if body is None else body
    return api.put(f"/api/handles/{handle}", content=json.dumps(body), headers={**headers, **JSON})


# -- Basic -------------------------------------------------------------------------------------


def test_basic_username_forms(api: InProcess, node: RunningNode) -> None:
    secret = node.admin_secret
    pyhandle = {
        "Authorization": "Basic " + b64(quote(f"300:{PREFIX_HANDLE}").encode() + b":" + secret)
    }
    assert "%3A0.NA/" in base64.b64decode(pyhandle["Authorization"][6:]).decode()
    assert put(api, f"{PREFIX}/BASIC-1", pyhandle).status_code == 200
    assert put(api, f"{PREFIX}/BASIC-2", basic(f"300:{PREFIX_HANDLE}", secret)).status_code == 200
    # not percent-encoded: the first ':' of the decoded bytes ends the username ("300")
    raw = basic(f"300:{PREFIX_HANDLE}", secret, encode=False)
    r = put(api, f"{PREFIX}/BASIC-3", raw)
    assert r.status_code == 401 and r.json()["responseCode"] == 403
    # the scheme name is case-insensitive; index 0 or no index names no key
    lower = {"Authorization": "basic " + basic(f"300:{PREFIX_HANDLE}", secret)["Authorization"][6:]}
    assert put(api, f"{PREFIX}/BASIC-4", lower).status_code == 200
    assert put(api, f"{PREFIX}/BASIC-5", basic(f"0:{PREFIX_HANDLE}", secret)).status_code == 401
    assert put(api, f"{PREFIX}/BASIC-6", basic(PREFIX_HANDLE, secret)).status_code == 401
    assert node.get_handle(f"{PREFIX}/BASIC-3") is None


def test_basic_password_is_not_percent_decoded(api: InProcess, node: RunningNode) -> None:
    """b2handle percent-encodes the password; the reference server does not decode it."""
    handle = f"{PREFIX}/PCT-USER"
    node.put_handle(handle, [seckey_value(300, b"p%41ss:w+rd")])
    identity, public = f"300:{handle}", f"{PREFIX}/PCT-PUBLIC"
    node.put_handle(public, [text_value(1, "URL", "https://public.example")])
    r = api.get(f"/api/handles/{public}", headers=basic(identity, b"p%41ss:w+rd"))
    assert r.status_code == 200
    for wrong in (b"pAss:w+rd", quote("p%41ss:w+rd", safe="").encode()):
        assert api.get(f"/api/handles/{public}", headers=basic(identity, wrong)).status_code == 401
    # an authenticated non-admin asking for a record with restricted values: 403, as natively
    r = api.get(f"/api/handles/{PV}", headers=basic(identity, b"p%41ss:w+rd"))
    assert r.status_code == 403 and r.json()["responseCode"] == 400


def test_basic_parsing() -> None:
    assert parse_basic("Basic " + b64(b"300%3A0.NA%2F1:s:e")) == (Identity("0.NA/1", 300), b"s:e")
    assert parse_basic("Basic " + b64(b"abc:s")) == (Identity("abc", 0), b"s")
    assert parse_basic("Basic " + b64(b"12a%3Ax:s")) == (Identity("12a:x", 0), b"s")
    assert parse_basic("Basic " + b64(b"12a:x%3Ay:s")) == (Identity("12a", 0), b"x%3Ay:s")
    assert parse_basic("Basic " + b64(b"300%3A0.NA%2F1+x:s")) == (Identity("0.NA/1+x", 300), b"s")
    assert parse_basic("Basic " + b64(b"nocolon")) is None
    assert parse_basic("Basic") is None
    assert parse_basic("Basic a b") is None
    assert parse_basic("Basic ***") is None


def test_wrong_credentials_refuse_even_reads(api: InProcess, node: RunningNode) -> None:
    """As the reference server's filter: credentials that fail stop the request (401)."""
    r = api.get(f"/api/handles/{PV}", headers=basic(f"300:{PREFIX_HANDLE}", b"wrong"))
    assert r.status_code == 401 and r.json()["responseCode"] == 403
    assert r.json()["handle"] == PV


# -- the Handle scheme -------------------------------------------------------------------------


def new_session(api: InProcess, **kwargs: Any) -> tuple[str, bytes]:
    r = api.post("/api/sessions", **kwargs)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/api/sessions/this"
    body = r.json()
    nonce = base64.b64decode(body["nonce"])
    assert len(nonce) == 16 and body["sessionId"]
    return body["sessionId"], nonce


def handle_header(
    session_id: str,
    identity: str,
    kind: str,
    alg: str,
    signature: bytes,
    cnonce: bytes,
    **extra: str,
) -> str:
    fields = {
        "version": "0",
        "sessionId": session_id,
        "id": quote(identity, safe=""),
        "type": kind,
        "cnonce": b64(cnonce),
        "alg": alg,
        "signature": b64(signature),
        **extra,
    }
    return "Handle " + ", ".join(f'{k}="{v}"' for k, v in fields.items())


def seckey_mac(alg: str, secret: bytes, data: bytes) -> bytes:
    if alg == "HMAC-SHA256":
        return hmac.new(secret, data, "sha256").digest()
    if alg == "HMAC-SHA1":
        return hmac.new(secret, data, "sha1").digest()
    name = {"SHA256": "sha256", "SHA1": "sha1", "MD5": "md5"}[alg]
    return hashlib.new(name, secret + data + secret).digest()


@pytest.mark.parametrize("alg", ["HMAC-SHA256", "HMAC-SHA1", "SHA256", "SHA1", "MD5"])
def test_session_secret_key(api: InProcess, node: RunningNode, alg: str) -> None:
    session_id, nonce = new_session(api)
    cnonce = os.urandom(16)
    identity = f"300:{PREFIX_HANDLE}"
    header = handle_header(
        session_id,
        identity,
        "HS_SECKEY",
        alg,
        seckey_mac(alg, node.admin_secret, nonce + cnonce),
        cnonce,
    )
    r = api.put("/api/sessions/this", headers={"Authorization": header})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "sessionId": session_id,
        "nonce": b64(nonce),
        "authenticated": True,
        "id": identity,
    }
    # the session alone now authenticates a write
    only_session = {"Authorization": f'Handle sessionId="{session_id}"'}
    handle = f"{PREFIX}/SESSION-{alg}"
    assert put(api, handle, only_session).status_code == 200
    assert node.get_handle(handle) is not None
    r = api.get("/api/sessions/this", headers=only_session)
    assert r.json()["authenticated"] is True and r.json()["id"] == identity


def test_session_pbkdf2(api: InProcess, node: RunningNode) -> None:
    session_id, nonce = new_session(api)
    cnonce, salt = os.urandom(16), os.urandom(16)
    key = java_pbkdf2_hmac_sha1(node.admin_secret, salt, 10000, 160)
    mac = hmac.new(key, nonce + cnonce, "sha1").digest()
    header = handle_header(
        session_id,
        f"300:{PREFIX_HANDLE}",
        "HS_SECKEY",
        "PBKDF2-HMAC-SHA1",
        mac,
        cnonce,
        salt=b64(salt),
        iterations="10000",
        length="160",
    )
    assert api.put("/api/sessions/this", headers={"Authorization": header}).status_code == 200


def _rsa_sign(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _dsa_sign(key: dsa.DSAPrivateKey, data: bytes) -> bytes:
    return key.sign(data, hashes.SHA256())


@pytest.mark.parametrize("who", ["rsa", "dsa"])
def test_session_public_key_on_the_request_itself(
    api: InProcess, node: RunningNode, users: Users, who: str
) -> None:
    """The answer can go directly on an API request (no PUT /api/sessions/this first)."""
    session_id, nonce = new_session(api)
    cnonce = os.urandom(20)
    if who == "rsa":
        identity, signature = f"301:{PREFIX_HANDLE}", _rsa_sign(node.admin_key, nonce + cnonce)  # type: ignore[arg-type]
    else:
        identity, signature = f"300:{PREFIX}/USER-DSA", _dsa_sign(users.dsa_key, nonce + cnonce)
    header = {
        "Authorization": handle_header(
            session_id, identity, "HS_PUBKEY", "SHA256", signature, cnonce
        )
    }
    handle = f"{PREFIX}/SESSION-PUB-{who}"
    assert put(api, handle, header).status_code == 200
    assert put(api, handle + "-2", header).status_code == 200  # the same header again
    r = api.get("/api/sessions/this", headers={"Authorization": f'Handle sessionId="{session_id}"'})
    assert r.json()["id"] == identity


def test_session_answer_as_json_body(api: InProcess, node: RunningNode) -> None:
    session_id, nonce = new_session(api)
    cnonce = os.urandom(16)
    body = {
        "sessionId": session_id,
        "id": f"300:{PREFIX_HANDLE}",
        "type": "HS_SECKEY",
        "cnonce": b64(cnonce),
        "alg": "HMAC-SHA256",
        "signature": b64(seckey_mac("HMAC-SHA256", node.admin_secret, nonce + cnonce)),
    }
    r = api.post("/api/sessions/this", json=body)  # POST on /this is PUT
    assert r.status_code == 200 and r.json()["authenticated"] is True


@pytest.mark.parametrize(
    "change",
    [
        {"signature": b64(b"\x00" * 32)},
        {"version": "1"},
        {"alg": "ROT13"},
        {"type": "HS_NOPE"},
        {"cnonce": "%%%"},
        {"id": quote(f"301:{PREFIX_HANDLE}", safe="")},  # an RSA key, a MAC answer
        {"id": quote(f"300:{PREFIX}/NOPE", safe="")},
    ],
)
def test_session_bad_answers(api: InProcess, node: RunningNode, change: dict[str, str]) -> None:
    session_id, nonce = new_session(api)
    cnonce = os.urandom(16)
    fields = {
        "version": "0",
        "sessionId": session_id,
        "id": quote(f"300:{PREFIX_HANDLE}", safe=""),
        "type": "HS_SECKEY",
        "cnonce": b64(cnonce),
        "alg": "HMAC-SHA256",
        "signature": b64(seckey_mac("HMAC-SHA256", node.admin_secret, nonce + cnonce)),
    }
    fields.update(change)
    header = "Handle " + ", ".join(f'{k}="{v}"' for k, v in fields.items())
    r = api.put("/api/sessions/this", headers={"Authorization": header})
    assert r.status_code == 401 and set(r.json()) == {"responseCode", "message"}
    r = put(api, f"{PREFIX}/NEVER-SESSION", {"Authorization": header})
    assert r.status_code == 401 and node.get_handle(f"{PREFIX}/NEVER-SESSION") is None
    r = api.get("/api/sessions/this", headers={"Authorization": f'Handle sessionId="{session_id}"'})
    assert r.json() == {"sessionId": session_id, "nonce": b64(nonce)}


def test_session_missing_fields(api: InProcess) -> None:
    session_id, _ = new_session(api)
    r = api.put(
        "/api/sessions/this",
        headers={"Authorization": f'Handle sessionId="{session_id}", id="300%3A0.NA%2F88.118.8"'},
    )
    assert r.status_code == 401 and "Missing fields" in r.json()["message"]


def test_session_lifecycle(api: InProcess, node: RunningNode) -> None:
    assert api.get("/api/sessions/this").json() == {"authenticated": False}
    r = api.post("/api/sessions", headers=basic(f"300:{PREFIX_HANDLE}", node.admin_secret))
    assert r.status_code == 201 and r.json()["authenticated"] is True
    session_id = r.json()["sessionId"]
    only = {"Authorization": f'Handle sessionId="{session_id}"'}
    assert put(api, f"{PREFIX}/SESSION-BASIC", only).status_code == 200
    r = api.delete("/api/sessions/this", headers=only)
    assert r.status_code == 204 and r.content == b""
    assert api.get("/api/sessions/this", headers=only).status_code == 403
    assert put(api, f"{PREFIX}/SESSION-GONE", only).status_code == 401
    # wrong Basic on POST still opens a session, unauthenticated, saying why
    r = api.post("/api/sessions", headers=basic(f"300:{PREFIX_HANDLE}", b"wrong"))
    assert r.status_code == 201 and "authenticated" not in r.json() and r.json()["error"]
    # a session that was never authenticated is anonymous
    session_id, _ = new_session(api)
    r = put(api, f"{PREFIX}/SESSION-ANON", {"Authorization": f'Handle sessionId="{session_id}"'})
    assert r.status_code == 401 and r.json()["responseCode"] == 402


def test_sessions_expire(node: RunningNode) -> None:
    now = [1000.0]
    store = SessionStore(timeout=60, capacity=3, clock=lambda: now[0])
    api = InProcess(node)
    api.app = build_app(node.node.dispatcher, sessions=store)
    r = api.post("/api/sessions", headers=basic(f"300:{PREFIX_HANDLE}", node.admin_secret))
    only = {"Authorization": f'Handle sessionId="{r.json()["sessionId"]}"'}
    now[0] += 59
    assert api.get("/api/sessions/this", headers=only).json()["authenticated"] is True
    now[0] += 59  # idle time restarts on use
    assert api.get("/api/sessions/this", headers=only).status_code == 200
    now[0] += 61
    assert api.get("/api/sessions/this", headers=only).status_code == 403
    assert len(store) == 0


def test_session_store_is_bounded() -> None:
    now = [0.0]
    store = SessionStore(timeout=10, capacity=3, clock=lambda: now[0], random_bytes=os.urandom)
    first = store.create()
    others = [store.create() for _ in range(3)]
    assert len(store) == 3 and store.get(first.id) is None
    assert store.get(others[0].id) is others[0]
    store.create()  # evicts the least recently used: others[1]
    assert store.get(others[1].id) is None and store.get(others[0].id) is not None
    now[0] = 100
    assert store.get(others[0].id) is None and len(store) == 0
    assert store.delete("nope") is False


def test_handle_header_parsing() -> None:
    parsed = parse_handle_authorization(
        'Handle version="0", sessionId=abc, id="300%3A0.NA%2F1", signature="a\\"b"'
    )
    assert parsed is not None
    assert parsed.get("sessionid") == "abc" and parsed.get("ID") == "300:0.NA/1"
    assert parsed.get("signature") == 'a"b'
    loose = parse_handle_authorization("handle   sessionId=x,,  cnonce=y")
    assert loose is not None and loose.fields == {"sessionid": "x", "cnonce": "y"}
    for bad in ("Handle", "Handle x", 'Handle a="b" c="d"', "Basic abc", "Handle a=b,, junk"):
        assert parse_handle_authorization(bad) is None, bad
    assert signed_response("HS_SECKEY", "hmac-sha256", b"m") == b"\x13m"
    assert signed_response("HS_SECKEY", "PBKDF2WithHmacSHA1", b"m", (b"s", 1, 160)) == (
        b"\x22"
        + b"\x00\x00\x00\x01s"
        + b"\x00\x00\x00\x01"
        + b"\x00\x00\x00\xa0"
        + b"\x00\x00\x00\x01m"
    )
    assert (
        signed_response("HS_PUBKEY", "SHA-256", b"sig")
        == b"\x00\x00\x00\x07SHA-256\x00\x00\x00\x03sig"
    )
    assert signed_response("HS_PUBKEY", "HMAC-SHA1", b"sig") is None
    assert signed_response("HS_SECKEY", "nope", b"sig") is None


# -- the same permissions as the native protocol ------------------------------------------------

TARGET = f"{PREFIX}/HTTP-PARITY"
#: An enterprise prefix this node does not serve: its identities cannot be verified here.
OTHER_PREFIX = "88.119.1"


def _credentials(node: RunningNode, users: Users) -> dict[str, tuple[str, bytes]]:
    return {
        "server-admin": (f"300:{PREFIX_HANDLE}", node.admin_secret),
        "user-a": (f"301:{PREFIX}/USER-A", users.user_a_secret),
        "handle-admin": (f"300:{PREFIX}/USER-H", users.handle_admin_secret),
        "partial": (f"300:{PREFIX}/USER-P", users.partial_secret),
        "group-member": (f"300:{PREFIX}/USER-G", users.group_member_secret),
        "wrong-secret": (f"300:{PREFIX_HANDLE}", b"not-the-secret"),
        "unknown-identity": (f"300:{PREFIX}/NOBODY", b"x"),
        "other-enterprise": (f"300:{OTHER_PREFIX}/ADMIN", b"their-secret"),
    }


Operation = tuple[Callable[[Any], Any], Callable[[InProcess, dict[str, str]], Any]]


def _operations() -> dict[str, Operation]:
    value9 = HandleValue(9, "NOTE", b"n")
    return {
        "add-value": (
            lambda c: c.add_values(TARGET, [value9]),
            lambda api, h: put(
                api,
                f"{TARGET}?index=9&overwrite=false",
                h,
                [{"index": 9, "type": "NOTE", "data": "n"}],
            ),
        ),
        "modify-value": (
            lambda c: c.add_values(TARGET, [HandleValue(1, "URL", b"m")], overwrite=True),
            lambda api, h: put(
                api, f"{TARGET}?index=1", h, [{"index": 1, "type": "URL", "data": "m"}]
            ),
        ),
        "remove-value": (
            lambda c: c.remove_values(TARGET, [2]),
            lambda api, h: api.delete(f"/api/handles/{TARGET}?index=2", headers=h),
        ),
        "delete-handle": (
            lambda c: c.delete_handle(TARGET),
            lambda api, h: api.delete(f"/api/handles/{TARGET}", headers=h),
        ),
        "create-handle": (
            lambda c: c.create_handle(f"{PREFIX}/HTTP-PARITY-NEW", [value9], overwrite=True),
            lambda api, h: put(
                api, f"{PREFIX}/HTTP-PARITY-NEW", h, [{"index": 9, "type": "NOTE", "data": "n"}]
            ),
        ),
        "list-handles": (
            lambda c: c.list_handles(PREFIX),
            lambda api, h: api.get(f"/api/handles?prefix={PREFIX}", headers=h),
        ),
        "list-prefixes": (
            None,  # type: ignore[dict-item]
            lambda api, h: api.get("/api/prefixes", headers=h),
        ),
    }


def _native_code(node: RunningNode, who: tuple[str, bytes], operation: Callable[[Any], Any]) -> int:
    from idnode.client import SecretKeyCredentials

    index, handle = who[0].split(":", 1)
    client = node.client(SecretKeyCredentials(handle, int(index), who[1]), tcp=True)
    try:
        asyncio.run(operation(client))
    except HandleError as exc:
        return int(getattr(exc, "code", type(exc).response_code))
    return 1


@pytest.mark.parametrize("op", list(_operations()))
@pytest.mark.parametrize(
    "who",
    [
        "server-admin",
        "user-a",
        "handle-admin",
        "partial",
        "group-member",
        "anonymous",
        "wrong-secret",
        "unknown-identity",
        "other-enterprise",
    ],
)
def test_permissions_match_native(
    api: InProcess, node: RunningNode, users: Users, op: str, who: str
) -> None:
    native_op, http_op = _operations()[op]
    creds = _credentials(node, users).get(who)
    headers = basic(*creds) if creds else {}
    matrix_target(node, TARGET)
    node.call(node.node.store.delete_handle(f"{PREFIX}/HTTP-PARITY-NEW")) if node.get_handle(
        f"{PREFIX}/HTTP-PARITY-NEW"
    ) else None
    r = http_op(api, headers)
    http_code = r.json()["responseCode"]
    http_state = (node.get_handle(TARGET), node.get_handle(f"{PREFIX}/HTTP-PARITY-NEW"))
    if native_op is None or creds is None:
        # no native twin here: anonymous is always 402; list-prefixes is op 302 blank
        expected = 402 if creds is None else (1 if who == "server-admin" else 400)
        if who in ("wrong-secret", "unknown-identity", "other-enterprise"):
            expected = 403  # authentication failed before the operation
        assert http_code == expected
        return
    matrix_target(node, TARGET)
    if node.get_handle(f"{PREFIX}/HTTP-PARITY-NEW"):
        node.call(node.node.store.delete_handle(f"{PREFIX}/HTTP-PARITY-NEW"))
    native_code = _native_code(node, creds, native_op)
    native_state = (node.get_handle(TARGET), node.get_handle(f"{PREFIX}/HTTP-PARITY-NEW"))
    assert http_code == native_code, (op, who)
    strip = lambda values: None if values is None else [(v.index, v.type, v.data) for v in values]  # noqa: E731
    assert [strip(s) for s in http_state] == [strip(s) for s in native_state]
    if http_code == 1:
        assert r.status_code in (200, 201)


def test_anonymous_user_is_never_a_server_admin(api: InProcess) -> None:
    assert api.get("/api/prefixes").status_code == 401
