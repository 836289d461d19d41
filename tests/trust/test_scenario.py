"""The trust scenario on real nodes (the demo topology on 127.0.0.1): a trust root certifies a
secondary node, which certifies an enterprise, which signs a product's values; clients verify
them through the recursive node (native protocol, HTTP ``/api/verify``, ``idnode resolve
--verify``), and tampering anywhere is detected.

Identities: the trust root ``301:0.NA/SCENARIO-ROOT`` (an RSA key of its own, on the root node;
the demo's own hierarchy under ``0.NA/TRUST`` is tested in test_demo_trust.py), the secondary
``301:0.NA/88.118`` (secondary-a's administrator key: its certificate is on the root node), the
enterprise ``301:0.NA/88.118.8`` (an SM2 key; its certificate is on secondary-a), which signs
with ``idnode sign`` while authenticating as enterprise-a's administrator.

Values that tests change are written with TTL 0, so the recursive node does not cache them and
every verification sees the change.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from idnode.cli import main
from idnode.client import HandleClient
from idnode.crypto import sm2
from idnode.protocol.values import HandleValue
from idnode.server.config import NodeConfig
from idnode.trust import (
    RecordReport,
    TrustConfig,
    TrustPolicy,
    sign_values,
    verify_record,
    verify_with_client,
    verify_with_resolver,
)
from idnode.trust.fetch import client_fetch
from idnode.trust.keys import load_public_key, load_signing_key
from idnode.trust.signing import signature_value
from tests.topology import HOST, TIMEOUT, Topology, running_topology

#: Not the demo's own root (0.NA/TRUST): this hierarchy is built here, by hand, and its
#: certificates replace the demo's at index 400.
ROOT = "0.NA/SCENARIO-ROOT"
ROOT_ID = f"301:{ROOT}"
SECONDARY_ID = "301:0.NA/88.118"
ENTERPRISE_ID = "301:0.NA/88.118.8"
CERT_INDEX = 400


@dataclasses.dataclass
class Scenario:
    topology: Topology
    keys: Path  # directory of the key files

    def node_dir(self, name: str) -> Path:
        return self.topology.specs[name].config_path.parent

    def server(self, name: str) -> str:
        return f"{HOST}:{self.topology.port(name)}"

    def admin(self, name: str) -> HandleClient:
        return HandleClient(
            HOST, self.topology.port(name), credentials=self.topology.credentials(name),
            timeout=TIMEOUT,
        )  # fmt: skip

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, list(args))

    def issue(self, subject: str, *args: str) -> str:
        result = self.cli("cert", "issue", subject, *args)
        assert result.exit_code == 0, result.output
        return result.output.strip()

    def put_cert(self, name: str, handle: str, jws: str, index: int = CERT_INDEX) -> None:
        value = HandleValue(index, "HS_CERT", jws.encode(), ttl=0)
        asyncio.run(self.admin(name).add_values(handle, [value], overwrite=True))

    def cert_of(self, name: str, handle: str) -> str:
        values = asyncio.run(self.admin(name).resolve(handle, indexes=[CERT_INDEX]))
        return values[0].data.decode()

    @contextlib.contextmanager
    def swapped_cert(self, name: str, handle: str, jws: str) -> Iterator[None]:
        original = self.cert_of(name, handle)
        self.put_cert(name, handle, jws)
        try:
            yield
        finally:
            self.put_cert(name, handle, original)

    def product(self, suffix: str, sign: bool = True, *options: str) -> str:
        """A product on enterprise-a (TTL 0 values), signed with ``idnode sign``."""
        handle = f"88.118.8/{suffix}"
        values = [
            HandleValue(1, "URL", f"https://pv.example.com/modules/{suffix}".encode(), ttl=0),
            HandleValue(2001, "power", b"410W", ttl=0),
            HandleValue(2002, "batch", b"B-7", ttl=0, permissions=0x0C),  # admins only
        ]
        asyncio.run(self.admin("enterprise-a").create_handle(handle, values, overwrite=True))
        if sign:
            self.sign(handle, "enterprise-sm2.pem", *options)
        return handle

    def sign(self, handle: str, key: str = "enterprise-sm2.pem", *options: str) -> None:
        result = self.cli(
            "sign", handle, "--signer", ENTERPRISE_ID, "--signing-key", str(self.keys / key),
            *self.admin_options("enterprise-a"), *options,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        signed = 3 if "--all-values" in options else 2
        assert f"signed {signed} value(s) of {handle} as {ENTERPRISE_ID}" in result.output

    def admin_options(self, name: str) -> list[str]:
        prefix = self.topology.specs[name].prefix
        return [
            "--server", self.server(name), "--as", f"301:0.NA/{prefix}",
            "--key-file", str(self.node_dir(name) / "admin-key.pem"),
        ]  # fmt: skip

    def policy(self, max_chain_length: int = 50) -> TrustPolicy:
        key = load_public_key((self.keys / "trust-root.pub.pem").read_bytes())
        return TrustPolicy(ROOT, (key,), max_chain_length)

    def verify(self, handle: str, max_chain_length: int = 50) -> RecordReport:
        """Verify through the recursive node with the library (native protocol)."""
        client = HandleClient(HOST, self.topology.port("recursive"), timeout=TIMEOUT)
        return asyncio.run(verify_with_client(handle, client, self.policy(max_chain_length)))

    def verify_http(self, handle: str) -> dict[str, object]:
        port = self.topology.specs["recursive"].http_port
        reply = httpx.get(f"http://{HOST}:{port}/api/verify/{handle}", timeout=30)
        assert reply.status_code == 200, reply.text
        body: dict[str, object] = reply.json()["verification"]
        return body

    def problems(self, handle: str, **kwargs: int) -> str:
        report = self.verify(handle, **kwargs)
        assert not report.ok
        return "\n".join(report.problems)


def _write_keys(directory: Path) -> None:
    root = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = serialization.PrivateFormat.PKCS8
    (directory / "trust-root-key.pem").write_bytes(
        root.private_bytes(serialization.Encoding.PEM, pem, serialization.NoEncryption())
    )
    (directory / "trust-root.pub.pem").write_bytes(
        root.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (directory / "enterprise-sm2.pem").write_bytes(sm2.generate_private_key().to_pem())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (directory / "other-key.pem").write_bytes(
        other.private_bytes(serialization.Encoding.PEM, pem, serialization.NoEncryption())
    )


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    directory = tmp_path_factory.mktemp("trust")
    keys = directory / "keys"
    keys.mkdir()
    _write_keys(keys)

    def trust_root(topology: Topology) -> None:
        for name in ("recursive", "enterprise-a"):  # both verify for their HTTP clients
            path = topology.specs[name].config_path
            (path.parent / "trust-root.pub.pem").write_bytes(
                (keys / "trust-root.pub.pem").read_bytes()
            )
            config = dataclasses.replace(
                NodeConfig.load(path), trust=TrustConfig(ROOT, ("trust-root.pub.pem",))
            )
            path.write_text(config.dump(), encoding="utf-8")

    with running_topology(
        directory / "nodes",
        prepare=trust_root,
        start=lambda name: name not in ("mirror-a", "enterprise-b2"),
    ) as topology:
        s = Scenario(topology, keys)
        _build_hierarchy(s)
        yield s


def _build_hierarchy(s: Scenario) -> None:
    root_key = str(s.keys / "trust-root-key.pem")
    root_cert = s.issue(ROOT_ID, "--self-signed", "--issuer-key", root_key, "--perm", "everything")
    created = s.cli(
        "handle", "create", ROOT, "--value", f"{CERT_INDEX}:HS_CERT:{root_cert}",
        *s.admin_options("root"),
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    secondary_cert = s.issue(
        SECONDARY_ID, "--subject-key", str(s.node_dir("secondary-a") / "admin-key.pem"),
        "--perm", "derivedPrefixes:0.NA/88.118", "--issuer", ROOT_ID, "--issuer-key", root_key,
    )  # fmt: skip
    s.put_cert("root", "0.NA/88.118", secondary_cert)
    enterprise_cert = _enterprise_cert(s)
    s.put_cert("secondary-a", "0.NA/88.118.8", enterprise_cert)  # what resolvers reach
    # enterprise-a keeps its own copy of its prefix handle (its administrators' keys): a
    # verifier on that node reads that copy, so the certificate goes there too
    s.put_cert("enterprise-a", "0.NA/88.118.8", enterprise_cert)


def _enterprise_cert(s: Scenario, *extra: str) -> str:
    return s.issue(
        ENTERPRISE_ID, "--subject-key", str(s.keys / "enterprise-sm2.pem"),
        "--perm", "handlesUnderThisPrefix:0.NA/88.118.8", "--issuer", SECONDARY_ID,
        "--issuer-key", str(s.node_dir("secondary-a") / "admin-key.pem"), *extra,
    )  # fmt: skip


# -- the good case -----------------------------------------------------------------------------


def test_signed_product_verifies_through_the_recursive_node(scenario: Scenario) -> None:
    handle = scenario.product("PV-TRUST-0001")
    report = scenario.verify(handle)
    assert report.ok, report.problems
    assert report.signed == [1, 2001] and report.missing == []
    resolver = scenario.topology.resolver()
    assert asyncio.run(verify_with_resolver(handle, resolver, scenario.policy())).ok
    chain = report.signatures[0].chain
    assert [(link.where, link.iss) for link in chain] == [
        (f"400:{handle}", ENTERPRISE_ID),
        ("400:0.NA/88.118.8", SECONDARY_ID),
        ("400:0.NA/88.118", ROOT_ID),
        (f"400:{ROOT}", ROOT_ID),
    ]


def test_http_verify_on_the_recursive_node(scenario: Scenario) -> None:
    handle = scenario.product("PV-TRUST-0002", True, "--all-values")
    body = scenario.verify_http(handle)
    assert body["status"] == "verified" and body["ok"] is True
    assert body["signedValues"] == [1, 2001] and body["missingValues"] == [2002]
    # enterprise-a reads the record from its store (all public values), the chain via its roots
    enterprise = scenario.topology.specs["enterprise-a"].http_port
    reply = httpx.get(f"http://{HOST}:{enterprise}/api/verify/{handle}", timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.json()["verification"]["status"] == "verified", reply.text
    secondary = scenario.topology.specs["secondary-a"].http_port
    reply = httpx.get(f"http://{HOST}:{secondary}/api/verify/{handle}", timeout=30)
    assert reply.status_code == 400 and reply.json()["responseCode"] == 5  # no [trust]
    port = scenario.topology.specs["recursive"].http_port
    reply = httpx.get(f"http://{HOST}:{port}/api/verify/88.118.8/NO-SUCH", timeout=30)
    assert reply.status_code == 404


def test_cli_resolve_verify(scenario: Scenario) -> None:
    handle = scenario.product("PV-TRUST-0003")
    trust = ["--trust-root", ROOT, "--trust-key", str(scenario.keys / "trust-root.pub.pem")]
    result = scenario.cli(
        "resolve", handle, "--server", scenario.server("recursive"), "--verify", *trust
    )
    assert result.exit_code == 0, result.output
    assert "verification: VERIFIED" in result.output
    assert f"signature 400 by {ENTERPRISE_ID}: trusted" in result.output
    root = scenario.server("root")
    result = scenario.cli("resolve", handle, "--root", root, "--verify", "--json", *trust)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["verification"]["status"] == "verified"
    result = scenario.cli(
        "resolve", handle, "--server", scenario.server("recursive"), "--type", "URL", "--json",
        "--verify", *trust,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    partial = json.loads(result.output)["verification"]
    assert partial["status"] == "verified"  # only URL asked for: 2001 signed but not seen
    assert partial["signedValues"] == [1] and partial["missingValues"] == [2001]
    config = scenario.topology.specs["recursive"].config_path
    result = scenario.cli(
        "resolve", handle, "--server", scenario.server("recursive"), "--verify",
        "--trust-config", str(config), "--max-chain", "2",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "the certificate chain is longer than 2 certificates" in result.output


# -- tampering ---------------------------------------------------------------------------------


def test_value_changed_on_the_enterprise_node(scenario: Scenario) -> None:
    handle = scenario.product("PV-TRUST-0010")
    assert scenario.verify(handle).ok
    changed = HandleValue(2001, "power", b"450W", ttl=0)
    asyncio.run(scenario.admin("enterprise-a").modify_values(handle, [changed]))
    report = scenario.verify(handle)
    assert not report.ok and report.tampered == [2001] and report.signed == [1]
    assert "value 2001 (power) differs from what was signed (tampered)" in report.problems
    body = scenario.verify_http(handle)
    assert body["ok"] is False and body["tamperedValues"] == [2001]
    result = scenario.cli(
        "resolve", handle, "--server", scenario.server("recursive"), "--verify",
        "--trust-root", ROOT, "--trust-key", str(scenario.keys / "trust-root.pub.pem"),
    )  # fmt: skip
    assert result.exit_code == 1 and "TAMPERED values: 2001" in result.output


def test_value_added_on_the_enterprise_node(scenario: Scenario) -> None:
    handle = scenario.product("PV-TRUST-0011")
    added = HandleValue(3, "URL", b"https://counterfeit.example.com", ttl=0)
    asyncio.run(scenario.admin("enterprise-a").add_values(handle, [added]))
    report = scenario.verify(handle)
    assert not report.ok and report.unsigned == [3] and report.signed == [1, 2001]


def test_certificate_changed(scenario: Scenario) -> None:
    handle = scenario.product("PV-TRUST-0012")
    original = scenario.cert_of("secondary-a", "0.NA/88.118.8")
    header, payload, signature = original.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["perms"] = [{"perm": "everything"}]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with scenario.swapped_cert("secondary-a", "0.NA/88.118.8", f"{header}.{forged}.{signature}"):
        assert (
            "the certificate at 400:0.NA/88.118.8 does not verify with the key certified for "
            f"{SECONDARY_ID}" in scenario.problems(handle)
        )
    assert scenario.verify(handle).ok


def test_signature_from_the_wrong_key(scenario: Scenario) -> None:
    handle = scenario.product("PV-TRUST-0013", sign=False)
    scenario.sign(handle, key="other-key.pem")
    assert (
        f"the signature at 400:{handle} does not verify with the key certified for "
        f"{ENTERPRISE_ID}" in scenario.problems(handle)
    )


def test_expired_certificate(scenario: Scenario) -> None:
    handle = scenario.product("PV-TRUST-0014")
    expired = _enterprise_cert(scenario, "--not-before", "2024-01-01T00:00:00Z", "--days", "30")
    with scenario.swapped_cert("secondary-a", "0.NA/88.118.8", expired):
        assert (
            "the certificate at 400:0.NA/88.118.8 expired at 2024-01-31T00:00:00Z"
            in scenario.problems(handle)
        )


def test_chain_loop(scenario: Scenario) -> None:
    handle = scenario.product("PV-TRUST-0015")
    looping = scenario.issue(
        SECONDARY_ID, "--subject-key", str(scenario.node_dir("secondary-a") / "admin-key.pem"),
        "--perm", "everything", "--issuer", ENTERPRISE_ID,
        "--issuer-key", str(scenario.keys / "enterprise-sm2.pem"),
    )  # fmt: skip
    with scenario.swapped_cert("root", "0.NA/88.118", looping):
        assert "the certificate chain loops: 0.NA/88.118.8 comes back" in scenario.problems(handle)


def test_chain_too_long(scenario: Scenario) -> None:
    handle = scenario.product("PV-TRUST-0016")
    assert scenario.verify(handle, max_chain_length=3).ok
    assert "the certificate chain is longer than 2 certificates" in scenario.problems(
        handle, max_chain_length=2
    )


def test_secondary_cannot_certify_outside_its_prefixes(scenario: Scenario) -> None:
    """The secondary is certified for 88.118's derived prefixes only: its enterprise's
    signature over an identifier of 88.119.1 is refused, the chain read through the recursive
    node."""
    handle = "88.119.1/PART-BRAKE-PAD-0042"
    values = (HandleValue(1, "URL", b"https://auto.example.com/part-brake-pad-0042"),)
    key = load_signing_key((scenario.keys / "enterprise-sm2.pem").read_bytes())
    signed = (*values, signature_value(400, sign_values(handle, values, ENTERPRISE_ID, key)))
    client = HandleClient(HOST, scenario.topology.port("recursive"), timeout=TIMEOUT)
    report = asyncio.run(verify_record(handle, signed, client_fetch(client), scenario.policy()))
    assert not report.ok
    assert f"{SECONDARY_ID} is not permitted to sign for {handle}" in "\n".join(report.problems)
