"""App accounts with identities of their own, on a live node: created over HTTP (with a
public key) or by ``idnode account add --role app`` (a new key pair), an app authenticates
as itself over the native protocol (public-key challenge-response), over HTTP
(``Authorization: Handle``) and with a login token, and disabling its account blocks it on
all three; enabling lets it in again."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from idnode.cli import main as cli_main
from idnode.client import HandleClient, PublicKeyCredentials
from idnode.errors import HandleError
from idnode.industry.accounts import DISABLED_KEY_TYPE, new_account
from idnode.protocol.types.hs_pubkey import load_private_key
from idnode.protocol.values import HandleValue
from tests.http.conftest import live_client
from tests.http.test_auth import _rsa_sign, handle_header
from tests.server.nodeutil import PREFIX_HANDLE, RunningNode, create_node_dir, running_node

ENT = "88.118.8.5"
APP = f"{ENT}/APP.sensor"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    directory = tmp_path_factory.mktemp("appnode")
    create_node_dir(directory)
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
    return out


def login(client: httpx.Client, username: str, password: str) -> dict[str, Any]:
    return call(
        client, "POST", "/identity/token", body={"username": username, "password": password}
    )


@pytest.fixture(scope="module")
def admin_token(client: httpx.Client) -> str:
    """Enterprise ``ent`` with the active prefix ENT and its admin; the admin's token."""
    root = login(client, "root", "root-pass")["data"]["token"]
    steps = [
        ("/api/admin/enterprises", {"id": "ent", "name": "ENT", "contact": "",
                                    "adminIdentity": f"300:0.NA/{ENT}"}),
        ("/api/admin/accounts", {"username": "ent-admin", "password": "pw-ent",
                                 "role": "enterprise_admin", "identity": f"300:0.NA/{ENT}",
                                 "enterprise": "ent"}),
        ("/api/admin/prefixes", {"prefix": ENT, "enterprise": "ent"}),
        (f"/api/admin/prefixes/{ENT}/approve", None),
    ]  # fmt: skip
    for path, body in steps:
        r = call(client, "POST", path, root, body)
        assert r["status"] == 1, r
    token: str = login(client, "ent-admin", "pw-ent")["data"]["token"]
    return token


def native_create(node: RunningNode, handle: str, who: str, key: rsa.RSAPrivateKey) -> None:
    credentials = PublicKeyCredentials(who, 300, key)
    client: HandleClient = node.client(credentials)
    asyncio.run(client.create_handle(handle, [HandleValue(1, "URL", b"https://e.example/x")]))


def http_handle_put(client: httpx.Client, handle: str, who: str, key: rsa.RSAPrivateKey) -> int:
    r = client.post("/api/sessions")
    assert r.status_code == 201, r.text
    session_id, nonce = r.json()["sessionId"], base64.b64decode(r.json()["nonce"])
    cnonce = os.urandom(16)
    signature = _rsa_sign(key, nonce + cnonce)
    header = handle_header(session_id, f"300:{who}", "HS_PUBKEY", "SHA256", signature, cnonce)
    body = {"values": [{"index": 1, "type": "URL", "data": "https://e.example/h"}]}
    put = client.put(f"/api/handles/{handle}", json=body, headers={"Authorization": header})
    return put.status_code


def test_an_app_created_over_http_acts_as_itself_until_disabled(
    node: RunningNode, client: httpx.Client, admin_token: str
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    r = call(client, "POST", "/api/admin/accounts", admin_token,
             {"username": "sensor", "password": "pw-sensor", "role": "app",
              "enterprise": "ent", "publicKey": pem.decode()})  # fmt: skip
    assert r["status"] == 1, r
    assert r["data"]["identity"] == f"300:{APP}" and r["data"]["role"] == "app"
    record = {v.index: v for v in node.get_handle(APP) or ()}
    assert record[300].type == "HS_PUBKEY" and record[100].type == "HS_ADMIN"
    # native challenge-response with its own key; the trail names it
    native_create(node, f"{ENT}/BY-APP-1", APP, key)
    (entry,) = node.call(node.node.store.audit(f"{ENT}/BY-APP-1"))
    assert entry.actor == f"300:{APP}"
    # HTTP Handle authentication, and its login token
    assert http_handle_put(client, f"{ENT}/BY-APP-2", APP, key) == 200
    token = login(client, "sensor", "pw-sensor")["data"]["token"]
    detail = call(client, "GET", "/identityv2/data/detail", token, handle=f"{ENT}/BY-APP-1")
    assert detail["status"] == 1, detail
    # another enterprise's admin cannot add apps to this one
    r = call(client, "POST", "/api/admin/accounts", admin_token,
             {"username": "intruder", "password": "x", "role": "app", "enterprise": "other",
              "publicKey": pem.decode()})  # fmt: skip
    assert r["status"] == -3, r

    # disabled: blocked on every interface
    r = call(client, "POST", "/api/admin/accounts/sensor/disable", admin_token)
    assert r["status"] == 1 and r["data"]["enabled"] is False, r
    assert {v.index: v.type for v in node.get_handle(APP) or ()}[300] == DISABLED_KEY_TYPE
    assert call(client, "GET", "/identityv2/data/detail", token, handle=f"{ENT}/BY-APP-1")[
        "status"] == -1  # fmt: skip
    assert login(client, "sensor", "pw-sensor")["status"] == -1
    with pytest.raises(HandleError):
        native_create(node, f"{ENT}/BY-APP-3", APP, key)
    assert http_handle_put(client, f"{ENT}/BY-APP-4", APP, key) == 401
    assert node.get_handle(f"{ENT}/BY-APP-3") is None
    assert node.get_handle(f"{ENT}/BY-APP-4") is None

    # enabled again
    r = call(client, "POST", "/api/admin/accounts/sensor/enable", admin_token)
    assert r["status"] == 1 and r["data"]["enabled"] is True, r
    native_create(node, f"{ENT}/BY-APP-5", APP, key)


def test_idnode_account_add_app_generates_the_key_pair(
    node: RunningNode, admin_token: str, tmp_path: Path
) -> None:
    password = tmp_path / "pw"
    password.write_text("pw-cli\n")
    key_file = tmp_path / "cli-app-key.pem"
    config = str(node.config_path)
    runner = CliRunner()
    added = runner.invoke(cli_main, [
        "account", "add", "cli-app", "--role", "app", "--enterprise", "ent",
        "--password-file", str(password), "--key-out", str(key_file), "--config", config,
    ])  # fmt: skip
    assert added.exit_code == 0, added.output
    assert f"acting as 300:{ENT}/APP.cli-app" in added.output
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = load_private_key(key_file.read_bytes())
    assert isinstance(key, rsa.RSAPrivateKey)
    who = f"{ENT}/APP.cli-app"
    native_create(node, f"{ENT}/BY-CLI-1", who, key)
    # the CLI writes as the app too, with the key file
    created = runner.invoke(cli_main, [
        "handle", "create", f"{ENT}/BY-CLI-0", "--value", "1:URL:https://e.example/0",
        "--server", node.server, "--as", f"300:{who}", "--key-file", str(key_file),
    ])  # fmt: skip
    assert created.exit_code == 0, created.output
    assert node.get_handle(f"{ENT}/BY-CLI-0") is not None
    disabled = runner.invoke(cli_main, ["account", "disable", "cli-app", "--config", config])
    assert disabled.exit_code == 0, disabled.output
    with pytest.raises(HandleError):
        native_create(node, f"{ENT}/BY-CLI-2", who, key)
    # a public key given instead of a generated pair
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "given.pub.pem"
    pem.write_bytes(other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    added = runner.invoke(cli_main, [
        "account", "add", "cli-app-2", "--role", "app", "--enterprise", "ent",
        "--password-file", str(password), "--public-key", str(pem), "--config", config,
    ])  # fmt: skip
    assert added.exit_code == 0, added.output
    native_create(node, f"{ENT}/BY-CLI-3", f"{ENT}/APP.cli-app-2", other)
