"""``idnode cert issue/show`` offline, and their refusals."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from idnode.cli import main
from idnode.trust.chain import parse
from idnode.trust.jwk import from_jwk, same_key


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def write_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key


def test_issue_and_show(tmp_path: Path) -> None:
    issuer = write_key(tmp_path / "issuer.pem")
    subject = write_key(tmp_path / "subject.pem")
    result = cli(
        "cert", "issue", "301:0.NA/88.118", "--subject-key", str(tmp_path / "subject.pem"),
        "--perm", "derivedPrefixes:0.NA/88.118", "--perm", "thisHandle:0.NA/88.118",
        "--issuer", "301:0.NA/TRUST", "--issuer-key", str(tmp_path / "issuer.pem"),
        "--not-before", "2026-01-01", "--days", "10",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    jws, claims = parse(result.output.strip())
    assert jws.alg == "ES256" and jws.verifies(issuer.public_key())
    assert claims.sub == "301:0.NA/88.118" and claims.iss == "301:0.NA/TRUST"
    assert [str(p) for p in claims.perms or ()] == [
        "derivedPrefixes:0.NA/88.118",
        "thisHandle:0.NA/88.118",
    ]
    assert claims.nbf == 1767225600 and claims.exp == 1767225600 + 10 * 86400
    assert same_key(from_jwk(claims.public_key), subject.public_key())
    (tmp_path / "cert.jws").write_text(result.output)
    shown = cli("cert", "show", f"@{tmp_path / 'cert.jws'}")
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.output)
    assert doc["header"] == {"alg": "ES256"} and doc["claims"]["sub"] == "301:0.NA/88.118"


def test_self_signed(tmp_path: Path) -> None:
    root = write_key(tmp_path / "root.pem")
    result = cli(
        "cert", "issue", "301:0.NA/TRUST", "--self-signed", "--issuer-key",
        str(tmp_path / "root.pem"), "--perm", "everything",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    jws, claims = parse(result.output.strip())
    assert claims.self_issued and jws.verifies(root.public_key())


def test_refusals(tmp_path: Path) -> None:
    write_key(tmp_path / "k.pem")
    (tmp_path / "junk.pem").write_text(
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    )
    key = str(tmp_path / "k.pem")
    cases = [
        (["--self-signed", "--issuer-key", key, "--perm", "owner:0.NA/1"], "not one of"),
        (["--self-signed", "--issuer-key", key, "--perm", "derivedPrefixes"], "needs a handle"),
        (["--issuer-key", key, "--perm", "everything"], "give --issuer and --subject-key"),
        (["--self-signed", "--issuer-key", str(tmp_path / "junk.pem"), "--perm", "everything"],
         "cannot load the private key"),
    ]  # fmt: skip
    for args, message in cases:
        result = cli("cert", "issue", "301:0.NA/X", *args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert cli("cert", "issue", "0.NA/X", "--self-signed", "--issuer-key", key,
               "--perm", "everything").exit_code == 2  # fmt: skip
    bad = cli("cert", "show", "not-a-jws")
    assert bad.exit_code == 1 and "not a compact JWS" in bad.output


def test_resolve_verify_needs_a_root() -> None:
    result = cli("resolve", "88.118.8/x", "--verify")
    assert result.exit_code == 2 and "--verify needs --trust-root" in result.output
