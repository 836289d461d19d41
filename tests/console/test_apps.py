"""App identities from the console (httpx over real HTTP, the app over the native protocol):
created with a pasted public key or a key pair made by the node (its private key offered
once, never stored), a second key added and the first revoked (the app keeps working with
the new one), disabled and enabled; bad input and CSRF refused."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from idnode.client import HandleClient, PublicKeyCredentials
from idnode.errors import HandleError
from idnode.industry.accounts import DISABLED_KEY_TYPE
from idnode.protocol.types.hs_pubkey import PublicKeyData, load_private_key
from idnode.protocol.values import HandleValue
from tests.console.conftest import ENT_A, ConsoleNode
from tests.console.test_pages import csrf_of, login

_made = iter(range(1000))


def new_key() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem.decode("ascii")


def can_write(node: ConsoleNode, app: str, index: int, key: rsa.RSAPrivateKey) -> bool:
    """Whether the app, authenticated as ``index:<app handle>`` with ``key`` over the native
    protocol, may create an identifier under the enterprise's prefix."""
    client: HandleClient = node.running.client(PublicKeyCredentials(app, index, key))
    handle = f"{ENT_A}/BY-APP-{next(_made)}"
    try:
        asyncio.run(client.create_handle(handle, [HandleValue(1, "URL", b"https://e.example")]))
    except HandleError:
        return False
    return node.running.get_handle(handle) is not None


def app_form(http: httpx.Client, username: str, **fields: str) -> dict[str, str]:
    token = csrf_of(http.get("/console/admin/apps").text)
    return {"csrf": token, "username": username, "password": "app-pass", "enterprise": "ent-a",
            **fields}  # fmt: skip


def action(http: httpx.Client, name: str, what: str, **fields: str) -> httpx.Response:
    token = csrf_of(http.get("/console/admin/app", params={"name": name}).text)
    return http.post("/console/admin/app",
                     data={"csrf": token, "name": name, "action": what, **fields})  # fmt: skip


def test_pasted_key_rotation_and_disabling(http: httpx.Client, console_node: ConsoleNode) -> None:
    login(http, "ent-a-admin")
    first, first_pem = new_key()
    form = app_form(http, "rot-app", key_source="paste", public_key=first_pem)
    r = http.post("/console/admin/apps", data=form)
    app = f"{ENT_A}/APP.rot-app"
    assert r.status_code == 200, r.text
    assert f"300:{app}" in r.text and 'id="private-key"' not in r.text
    stored = console_node.running.get_handle(app)
    assert stored is not None
    key_value = next(v for v in stored if v.index == 300)
    assert PublicKeyData.from_bytes(key_value.data).to_public_key() == first.public_key()
    assert can_write(console_node, app, 300, first)
    assert "rot-app" in http.get("/console/admin/apps").text

    second, second_pem = new_key()
    r = action(http, "rot-app", "add-key", key_source="paste", public_key=second_pem)
    assert r.status_code == 200 and "Key added at index: 301" in r.text, r.text
    assert can_write(console_node, app, 301, second)  # both keys work while the app switches
    assert can_write(console_node, app, 300, first)
    r = action(http, "rot-app", "revoke-key", index="300")
    assert r.status_code == 200 and "Key revoked at index: 300" in r.text
    assert not can_write(console_node, app, 300, first)
    assert can_write(console_node, app, 301, second)
    r = action(http, "rot-app", "revoke-key", index="301")  # its last key
    assert r.status_code == 400 and "only key" in r.text

    r = action(http, "rot-app", "disable")
    assert r.status_code == 200 and 'id="app-state">Disabled' in r.text
    stored = console_node.running.get_handle(app) or ()
    assert {v.type for v in stored if v.index >= 300} == {DISABLED_KEY_TYPE}
    assert not can_write(console_node, app, 301, second)
    r = action(http, "rot-app", "enable")
    assert r.status_code == 200 and 'id="app-state">Enabled' in r.text
    assert can_write(console_node, app, 301, second)


def test_generated_key_is_offered_once_and_not_kept(
    http: httpx.Client, console_node: ConsoleNode
) -> None:
    login(http, "ent-a-admin")
    r = http.post("/console/admin/apps", data=app_form(http, "gen-app", key_source="generate"))
    assert r.status_code == 200, r.text
    assert "the only time it is shown" in r.text and r.headers["cache-control"] == "no-store"
    found = re.search(r'href="data:application/x-pem-file;base64,([A-Za-z0-9+/=]+)"', r.text)
    assert found, r.text
    pem = base64.b64decode(found.group(1))
    private = load_private_key(pem)
    app = f"{ENT_A}/APP.gen-app"
    stored = console_node.running.get_handle(app) or ()
    key_value = next(v for v in stored if v.index == 300)
    assert PublicKeyData.from_bytes(key_value.data).to_public_key() == private.public_key()
    assert isinstance(private, rsa.RSAPrivateKey) and can_write(console_node, app, 300, private)
    # shown once: the app's page does not show it again, and the node never wrote it
    assert "PRIVATE KEY" not in http.get("/console/admin/app", params={"name": "gen-app"}).text
    body = pem.split(b"\n")[1]
    directory = console_node.running.node.config.directory
    for path in Path(directory).rglob("*"):
        if path.is_file():
            assert body not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {
                "key_source": "paste",
                "public_key": "-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----",
            },
            "malformed public key",
        ),
        ({"key_source": "paste", "public_key": "hello"}, "malformed public key"),
        ({"key_source": "paste", "public_key": ""}, "paste a PEM public key"),
        (
            {
                "key_source": "paste",
                "public_key": "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----",
            },
            "public key only",
        ),
    ],
)
def test_bad_keys_are_refused_clearly(
    http: httpx.Client, console_node: ConsoleNode, fields: dict[str, str], message: str
) -> None:
    login(http, "ent-a-admin")
    r = http.post("/console/admin/apps", data=app_form(http, "bad-key-app", **fields))
    assert r.status_code == 400 and message in r.text, r.text
    assert 'role="alert"' in r.text and 'value="bad-key-app"' in r.text  # the form kept
    assert console_node.running.get_handle(f"{ENT_A}/APP.bad-key-app") is None


def test_csrf_roles_and_other_bad_requests(http: httpx.Client) -> None:
    _key, pem = new_key()
    login(http, "ent-a-admin")
    form = app_form(http, "csrf-app", key_source="paste", public_key=pem)
    assert http.post("/console/admin/apps", data={**form, "csrf": ""}).status_code == 403
    assert http.post("/console/admin/apps", data={**form, "csrf": "0" * 40}).status_code == 403
    r = http.post("/console/admin/app", data={"name": "csrf-app", "action": "disable"})
    assert r.status_code == 403
    assert http.post("/console/admin/apps", data=form).status_code == 200
    assert action(http, "csrf-app", "explode").status_code == 400
    assert action(http, "csrf-app", "revoke-key", index="x").status_code == 400
    assert action(http, "csrf-app", "revoke-key", index="999").status_code == 400
    r = action(http, "csrf-app", "add-key", key_source="paste", public_key="junk")
    assert r.status_code == 400 and "malformed public key" in r.text
    assert http.get("/console/admin/app", params={"name": "nobody"}).status_code == 404
    with httpx.Client(base_url=str(http.base_url), timeout=10.0) as other:
        login(other, "ent-b-admin")  # another enterprise: not its app
        assert other.get("/console/admin/app", params={"name": "csrf-app"}).status_code == 404
        token = csrf_of(other.get("/console/admin/apps").text)
        r = other.post("/console/admin/app",
                       data={"csrf": token, "name": "csrf-app", "action": "disable"})  # fmt: skip
        assert r.status_code == 404
        r = other.post("/console/admin/apps", data={**form, "csrf": token, "username": "b-x",
                                                    "enterprise": "ent-a"})  # fmt: skip
        assert r.status_code == 400 and "own enterprise" in r.text
    r = http.post("/console/admin/apps", data=form)  # the name is taken
    assert r.status_code == 400 and "taken" in r.text


def test_disabling_an_app_ends_its_console_sessions(http: httpx.Client) -> None:
    _key, pem = new_key()
    login(http, "ent-a-admin")
    form = app_form(http, "session-app", key_source="paste", public_key=pem)
    assert http.post("/console/admin/apps", data=form).status_code == 200
    with httpx.Client(base_url=str(http.base_url), timeout=10.0) as app:
        token = csrf_of(app.get("/console/login").text)
        r = app.post("/console/login", data={"username": "session-app", "password": "app-pass",
                                             "csrf": token})  # fmt: skip
        assert r.status_code == 303 and app.get("/console/admin").status_code == 200
        assert action(http, "session-app", "disable").status_code == 200
        assert app.get("/console/admin").status_code == 303  # to the login page
        assert action(http, "session-app", "enable").status_code == 200
        assert app.get("/console/admin").status_code == 303  # the old session stays ended
