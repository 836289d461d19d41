"""Trusted resolution in the demo topology as created (:mod:`idnode.demo`): the identifiers the
demo signs verify up to its trust root ``0.NA/TRUST`` through the recursive node (certified), on
enterprise-a's and the recursive node's ``/api/verify`` and with ``idnode resolve --verify``; a
value changed with ``idnode handle modify`` shows as tampered until it is signed again."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from idnode.cli import main
from idnode.client import HandleClient
from idnode.demo import (
    SM2_SIGNER,
    TRUST_ROOT,
    TRUST_ROOT_PUBLIC_KEY,
    signed_handles,
)
from idnode.server.config import NodeConfig
from idnode.trust import RecordReport, TrustPolicy, verify_with_client
from idnode.trust.keys import load_public_key
from tests.topology import HOST, TIMEOUT, Topology, running_topology

PV = "88.118.8/PV-2026-000123"


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    with running_topology(
        tmp_path_factory.mktemp("demo-trust"),
        start=lambda name: name not in ("mirror-a", "enterprise-b2"),
    ) as topology:
        yield topology


def root_public_key(topology: Topology) -> Path:
    return topology.directory("root").parent / TRUST_ROOT_PUBLIC_KEY


def verify(topology: Topology, handle: str) -> RecordReport:
    """Verify through the recursive node with the library, trusting the demo's root key."""
    key = load_public_key(root_public_key(topology).read_bytes())
    client = HandleClient(HOST, topology.port("recursive"), timeout=TIMEOUT)
    return asyncio.run(verify_with_client(handle, client, TrustPolicy(TRUST_ROOT, (key,))))


def verify_http(topology: Topology, name: str, handle: str) -> dict[str, object]:
    port = topology.specs[name].http_port
    reply = httpx.get(f"http://{HOST}:{port}/api/verify/{handle}", timeout=30)
    assert reply.status_code == 200, reply.text
    body: dict[str, object] = reply.json()["verification"]
    return body


def forget(topology: Topology) -> None:
    """Empty the recursive node's cache (a test changed a record)."""
    resolver = topology.nodes["recursive"].dispatcher.resolver
    assert resolver is not None
    resolver.cache.purge(float("inf"))


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def resolve_verify(topology: Topology, handle: str, *where: str) -> Result:
    """``idnode resolve --verify`` as the demo prints it (from the root by default)."""
    where = where or ("--root", f"{HOST}:{topology.port('root')}")
    return cli(
        "resolve", handle, *where, "--verify", "--trust-root", TRUST_ROOT,
        "--trust-key", str(root_public_key(topology)),
    )  # fmt: skip


def enterprise_admin(topology: Topology) -> list[str]:
    return [
        "--server", f"{HOST}:{topology.port('enterprise-a')}", "--as", "301:0.NA/88.118.8",
        "--key-file", str(topology.directory("enterprise-a") / "admin-key.pem"),
    ]  # fmt: skip


def test_the_demo_writes_keys_and_configures_the_verifying_nodes(topology: Topology) -> None:
    trust = topology.directory("root").parent / "trust"
    assert stat.S_IMODE((trust / "trust-root-key.pem").stat().st_mode) == 0o600
    sm2_key = topology.directory("enterprise-a") / "signing-sm2-key.pem"
    assert stat.S_IMODE(sm2_key.stat().st_mode) == 0o600
    for name in ("enterprise-a", "recursive"):
        config = NodeConfig.load(topology.specs[name].config_path)
        assert config.trust is not None and config.trust.root == TRUST_ROOT
        key = config.directory / config.trust.root_keys[0]
        assert key.read_bytes() == root_public_key(topology).read_bytes()
    recursive = NodeConfig.load(topology.specs["recursive"].config_path)
    assert recursive.resolver is not None and recursive.resolver.certified
    resolver = topology.nodes["recursive"].dispatcher.resolver
    assert resolver is not None and resolver.certified
    assert NodeConfig.load(topology.specs["secondary-a"].config_path).trust is None


def test_every_signed_identifier_verifies_up_to_the_demo_root(topology: Topology) -> None:
    for handle, signer in signed_handles().items():
        report = verify(topology, handle)
        assert report.ok and report.status == "verified", (handle, report.problems)
        assert report.tampered == [] and report.unsigned == [] and report.missing == []
        (signature,) = report.signatures
        assert signature.trusted and signature.iss == signer
        assert [(link.where, link.iss) for link in signature.chain] == [
            (f"400:{handle}", signer),
            ("400:0.NA/88.118.8" if signer != SM2_SIGNER else "401:0.NA/88.118.8",
             "301:0.NA/88.118"),
            ("400:0.NA/88.118", f"301:{TRUST_ROOT}"),
            (f"400:{TRUST_ROOT}", f"301:{TRUST_ROOT}"),
        ]  # fmt: skip
        for name in ("recursive", "enterprise-a"):
            body = verify_http(topology, name, handle)
            assert body["status"] == "verified" and body["ok"] is True, (name, body)
    # An identifier the demo does not sign is reported unsigned, not verified.
    assert verify_http(topology, "recursive", "88.118.9/INGOT-2026-0087")["status"] == "unsigned"


def test_the_printed_commands_verify(topology: Topology) -> None:
    for where in ((), ("--server", f"{HOST}:{topology.port('recursive')}")):
        result = resolve_verify(topology, PV, *where)
        assert result.exit_code == 0, result.output
        assert "verification: VERIFIED" in result.output
        assert f"signature 400 by {SM2_SIGNER}: trusted" in result.output
    # Without the root's key (another key given), nothing is trusted.
    wrong = cli(
        "resolve", PV, "--root", f"{HOST}:{topology.port('root')}", "--verify",
        "--trust-root", TRUST_ROOT,
        "--trust-key", str(topology.directory("root") / "admin-key.pem"),
    )  # fmt: skip
    assert wrong.exit_code == 1 and "verification: FAILED" in wrong.output


def test_a_modified_value_fails_until_signed_again(topology: Topology) -> None:
    changed = cli(
        "handle", "modify", PV, "--value", "2:DESC:Monocrystalline PV module, 600 W",
        *enterprise_admin(topology),
    )  # fmt: skip
    assert changed.exit_code == 0, changed.output
    try:
        result = resolve_verify(topology, PV)
        assert result.exit_code == 1, result.output
        assert "verification: FAILED" in result.output
        assert "TAMPERED values: 2" in result.output
        assert "value 2 (DESC) differs from what was signed (tampered)" in result.output
        body = verify_http(topology, "enterprise-a", PV)
        assert body["ok"] is False and body["tamperedValues"] == [2]
        forget(topology)  # the recursive node cached the record as signed
        body = verify_http(topology, "recursive", PV)
        assert body["ok"] is False and body["tamperedValues"] == [2]
        assert not verify(topology, PV).ok
    finally:
        # The enterprise signs the new values with its SM2 key: the record verifies again.
        signed = cli(
            "sign", PV, "--signer", SM2_SIGNER, "--signing-key",
            str(topology.directory("enterprise-a") / "signing-sm2-key.pem"),
            *enterprise_admin(topology),
        )  # fmt: skip
        assert signed.exit_code == 0, signed.output
        assert f"as {SM2_SIGNER}: HS_SIGNATURE at 400" in signed.output
    forget(topology)
    assert resolve_verify(topology, PV).exit_code == 0
    assert verify_http(topology, "recursive", PV)["status"] == "verified"
