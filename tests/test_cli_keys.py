"""``idnode key rotate-server`` and ``idnode key rotate-admin`` on real node directories, with
the nodes serving on 127.0.0.1 and answers checked against the published HS_SITE."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from idnode.bootstrap import init_node
from idnode.certified import (
    RETIRED_KEY_ATTRIBUTE,
    ServerKeys,
    UnverifiedAnswer,
    retired_keys,
)
from idnode.cli import main
from idnode.client import HandleClient, PublicKeyCredentials
from idnode.crypto import sm2
from idnode.errors import AuthenticationFailed
from idnode.protocol.auth import PrivateKey
from idnode.protocol.types.hs_pubkey import (
    SM2_PUB_KEY,
    PublicKeyData,
    load_private_key,
)
from idnode.protocol.types.hs_site import SiteInfo
from idnode.protocol.values import HandleValue
from idnode.server.config import NodeConfig
from tests.server.nodeutil import (
    HOST,
    PREFIX,
    PREFIX_HANDLE,
    TIMEOUT,
    RunningNode,
    create_node_dir,
    no_internal_errors,
    running_node,
)

__all__ = ["no_internal_errors"]  # the autouse fixture applies to this module

PV = f"{PREFIX}/PV-2026-000123"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def stored_site(node: RunningNode) -> SiteInfo:
    """The HS_SITE on the node's prefix handle, as resolvers find it."""
    values = node.get_handle(PREFIX_HANDLE) or ()
    return SiteInfo.from_bytes(next(v.data for v in values if v.type == "HS_SITE"))


def certified_resolve(node: RunningNode, site: SiteInfo) -> tuple[HandleValue, ...]:
    client = HandleClient(
        HOST, node.port, timeout=TIMEOUT, retries=0, verify_with=ServerKeys.for_site(site)
    )
    return asyncio.run(client.resolve(PV))


def make_node(directory: Path, key_type: str = "rsa") -> Path:
    if key_type == "rsa":
        create_node_dir(directory)
    else:
        asyncio.run(init_node(directory, PREFIX, port=0, demo=True, key_type=key_type))
        path = directory / "idnode.toml"
        config = NodeConfig.load(path)
        config = dataclasses.replace(config, auth_failures_limit=0, writes_per_second=0)
        path.write_text(config.dump(), encoding="utf-8")
    return directory / "idnode.toml"


# -- rotate-server ---------------------------------------------------------------------------


@pytest.mark.parametrize("new_type", [None, "sm2"], ids=["same-kind", "to-sm2"])
def test_rotate_server_keeps_answers_verifiable(tmp_path: Path, new_type: str | None) -> None:
    config_path = make_node(tmp_path)
    with running_node(tmp_path) as node:
        before = stored_site(node)
        old_key_pem = (tmp_path / "server-key.pem").read_bytes()
        certified_resolve(node, before)
        args = ["key", "rotate-server", "--config", str(config_path), "--keep", "3600"]
        result = invoke(*args, *(["--key-type", new_type] if new_type else []))
        assert result.exit_code == 0, result.output
        assert "site serial   1 -> 2" in result.output
        after = stored_site(node)
        # still running with the old key: the new HS_SITE lists it as retired
        assert after.serial == before.serial + 1
        assert [r.key for r in retired_keys(after)] == [before.servers[0].public_key]
        assert after.servers[0].public_key != before.servers[0].public_key
        certified_resolve(node, after)
    assert (tmp_path / "server-key.pem").read_bytes() != old_key_pem
    assert NodeConfig.load(config_path).site_serial == 2
    with running_node(tmp_path) as node:
        new_key = node.server_key
        published = PublicKeyData.from_bytes(stored_site(node).servers[0].public_key)
        assert published == PublicKeyData.from_public_key(new_key.public_key())
        if new_type == "sm2":
            assert published.key_type == SM2_PUB_KEY
            assert isinstance(new_key, sm2.Sm2PrivateKey)
        # the node now signs with the new key: the new HS_SITE verifies, the old one does not
        served = node.node.site
        assert served.serial == 2
        assert any(a.name == RETIRED_KEY_ATTRIBUTE for a in served.attributes)
        certified_resolve(node, stored_site(node))
        with pytest.raises(UnverifiedAnswer):
            certified_resolve(node, before)


def test_rotate_server_without_keep_drops_the_old_key(tmp_path: Path) -> None:
    config_path = make_node(tmp_path)
    with running_node(tmp_path) as node:
        before = stored_site(node)
        result = invoke("key", "rotate-server", "--config", str(config_path), "--keep", "0")
        assert result.exit_code == 0, result.output
        after = stored_site(node)
        assert not retired_keys(after)
        # the running node still signs with the old key, which is no longer published
        with pytest.raises(UnverifiedAnswer, match="does not verify"):
            certified_resolve(node, after)
        certified_resolve(node, before)


def test_rotate_server_twice_lists_both_retired_keys(tmp_path: Path) -> None:
    config_path = make_node(tmp_path, "sm2")
    for _ in range(2):
        result = invoke("key", "rotate-server", "--config", str(config_path), "--keep", "600")
        assert result.exit_code == 0, result.output
    assert NodeConfig.load(config_path).site_serial == 3
    with running_node(tmp_path) as node:
        site = stored_site(node)
        assert len(retired_keys(site)) == 2
        assert len(set(r.key for r in retired_keys(site))) == 2
        certified_resolve(node, site)


def test_rotate_server_with_an_unreadable_key_fails_cleanly(tmp_path: Path) -> None:
    config_path = make_node(tmp_path)
    (tmp_path / "server-key.pem").write_bytes(
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    )
    result = invoke("key", "rotate-server", "--config", str(config_path))
    assert result.exit_code == 1
    assert "cannot load the server key" in result.output
    assert NodeConfig.load(config_path).site_serial == 1
    assert not (tmp_path / "retired-server-keys").exists()


# -- rotate-admin ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    directory = tmp_path_factory.mktemp("keys-node")
    make_node(directory)
    with running_node(directory) as running:
        yield running


def write_as(node: RunningNode, index: int, key: PrivateKey, handle: str) -> None:
    credentials = PublicKeyCredentials(PREFIX_HANDLE, index, key)
    client = HandleClient(HOST, node.port, timeout=TIMEOUT, credentials=credentials)
    asyncio.run(client.create_handle(handle, [HandleValue(1, "URL", b"https://k.example")]))


@pytest.mark.parametrize("new_type", [None, "sm2"], ids=["same-kind", "to-sm2"])
def test_rotate_admin_replaces_the_key_without_losing_access(
    admin_node: RunningNode, tmp_path: Path, new_type: str | None
) -> None:
    key_file = tmp_path / "current.pem"
    key_file.write_bytes((admin_node.directory / "admin-key.pem").read_bytes())
    current = load_private_key(key_file.read_bytes())
    out = tmp_path / "new.pem"
    args = ["key", "rotate-admin", "--server", admin_node.server, "--as", f"301:{PREFIX_HANDLE}"]
    args += ["--key-file", str(key_file), "--out", str(out)]
    result = invoke(*args, *(["--key-type", new_type] if new_type else []))
    assert result.exit_code == 0, result.output
    new_key = load_private_key(out.read_bytes())
    if new_type == "sm2":
        assert isinstance(new_key, sm2.Sm2PrivateKey)
    record = admin_node.get_handle(PREFIX_HANDLE) or ()
    at_301 = next(v for v in record if v.index == 301)
    assert at_301.data == PublicKeyData.from_public_key(new_key.public_key()).to_bytes()
    assert [v.index for v in record if v.type == "HS_PUBKEY"] == [301]  # spare removed
    # the new key has the identity's rights; the old one no longer authenticates
    write_as(admin_node, 301, new_key, f"{PREFIX}/ROTATED-{new_type}")
    with pytest.raises(AuthenticationFailed):
        write_as(admin_node, 301, current, f"{PREFIX}/OLD-KEY-{new_type}")
    assert admin_node.get_handle(f"{PREFIX}/OLD-KEY-{new_type}") is None
    (admin_node.directory / "admin-key.pem").write_bytes(out.read_bytes())  # for the next case


def test_rotate_admin_with_a_wrong_key_changes_nothing(
    admin_node: RunningNode, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(sm2.generate_private_key().to_pem())
    before = admin_node.get_handle(PREFIX_HANDLE)
    args = ["key", "rotate-admin", "--server", admin_node.server, "--as", f"301:{PREFIX_HANDLE}"]
    result = invoke(*args, "--key-file", str(wrong), "--out", str(tmp_path / "new.pem"))
    assert result.exit_code == 1
    assert "response code" in result.output
    assert not (tmp_path / "new.pem").exists()
    assert admin_node.get_handle(PREFIX_HANDLE) == before


def test_rotate_admin_needs_an_hs_pubkey_identity(admin_node: RunningNode, tmp_path: Path) -> None:
    key_file = tmp_path / "k.pem"
    key_file.write_bytes((admin_node.directory / "admin-key.pem").read_bytes())
    args = ["key", "rotate-admin", "--server", admin_node.server, "--as", f"300:{PREFIX_HANDLE}"]
    result = invoke(*args, "--key-file", str(key_file), "--out", str(tmp_path / "new.pem"))
    assert result.exit_code == 1
    assert "no HS_PUBKEY" in result.output or "response code" in result.output


def test_rotate_admin_refuses_an_existing_output(admin_node: RunningNode, tmp_path: Path) -> None:
    out = tmp_path / "exists.pem"
    out.write_bytes(b"keep me")
    args = ["key", "rotate-admin", "--server", admin_node.server, "--as", f"301:{PREFIX_HANDLE}"]
    result = invoke(
        *args, "--key-file", str(admin_node.directory / "admin-key.pem"), "--out", str(out)
    )
    assert result.exit_code == 1
    assert out.read_bytes() == b"keep me"


def test_malformed_key_file_is_a_clean_error(admin_node: RunningNode, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n")
    args = ["key", "rotate-admin", "--server", admin_node.server, "--as", f"301:{PREFIX_HANDLE}"]
    result = invoke(*args, "--key-file", str(bad), "--out", str(tmp_path / "n.pem"))
    assert result.exit_code == 1
    assert "cannot load" in result.output


# -- choosing SM2 at init and keygen -----------------------------------------------------------


def test_init_with_sm2_keys(tmp_path: Path) -> None:
    result = invoke("init", str(tmp_path / "n"), "--port", "0", "--key-type", "sm2")
    assert result.exit_code == 0, result.output
    server_key = load_private_key((tmp_path / "n" / "server-key.pem").read_bytes())
    admin_key = load_private_key((tmp_path / "n" / "admin-key.pem").read_bytes())
    assert isinstance(server_key, sm2.Sm2PrivateKey)
    assert isinstance(admin_key, sm2.Sm2PrivateKey)


def test_keygen_sm2(tmp_path: Path) -> None:
    out = tmp_path / "k.pem"
    result = invoke("keygen", str(out), "--type", "sm2", "--passphrase", "pw")
    assert result.exit_code == 0, result.output
    key = load_private_key(out.read_bytes(), b"pw")
    assert isinstance(key, sm2.Sm2PrivateKey)
    printed = PublicKeyData.from_bytes(bytes.fromhex(result.output.strip()))
    assert printed == PublicKeyData.from_public_key(key.public_key())
    assert printed.key_type == SM2_PUB_KEY


def test_unknown_key_type_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("init", str(tmp_path / "n"), "--key-type", "ed25519")
    assert result.exit_code == 2
    assert not (tmp_path / "n").exists()
