"""Records signed by the reference implementation verify here: two records of the Handle.Net v9
distribution's bootstrap file (``0.0/0.0``, the global root, and ``0.NA/0.NA``), each with an
HS_SIGNATURE by ``301:0.NA/0.NA``, whose HS_CERT is issued by the self-signed ``301:0.0/0.0``
(RS256, SHA-256 value digests, valid July 2019 to July 2021)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from idnode.jsonvalues import value_from_json
from idnode.protocol.values import HandleValue
from idnode.trust import RecordReport, TrustPolicy, verify_record
from idnode.trust.chain import Fetch, parse
from idnode.trust.digests import value_digest
from idnode.trust.jwk import from_jwk

DATA = json.loads((Path(__file__).parent / "data" / "reference_bootstrap.json").read_text())
RECORDS = {h: [value_from_json(v) for v in r["values"]] for h, r in DATA["handles"].items()}
IN_RANGE = 1_600_000_000  # 2020-09-13
ROOT_CERT = next(v for v in RECORDS["0.0/0.0"] if v.type == "HS_CERT")
ROOT_KEY = from_jwk(parse(ROOT_CERT.data.decode())[1].public_key)
POLICY = TrustPolicy("0.0/0.0", (ROOT_KEY,))


def fetcher(records: dict[str, list[HandleValue]]) -> Fetch:
    async def fetch(handle: str) -> Sequence[HandleValue]:
        return records[handle]

    return fetch


def verify(
    handle: str,
    values: list[HandleValue],
    records: dict[str, list[HandleValue]] = RECORDS,
    now: float = IN_RANGE,
) -> RecordReport:
    return asyncio.run(verify_record(handle, values, fetcher(records), POLICY, now))


@pytest.mark.parametrize("handle", sorted(RECORDS))
def test_reference_records_verify(handle: str) -> None:
    report = verify(handle, RECORDS[handle])
    assert report.ok, report.problems
    assert report.status == "verified"
    sig = report.signatures[0]
    assert sig.iss == "301:0.NA/0.NA" and sig.root_trusted
    assert [link.where for link in sig.chain] == [
        f"401:{handle}",
        "400:0.NA/0.NA",
        "400:0.0/0.0",
    ]
    assert not report.unsigned and not report.tampered and not report.missing


def test_reference_digests_are_ours() -> None:
    signature = next(v for v in RECORDS["0.0/0.0"] if v.type == "HS_SIGNATURE")
    claims = parse(signature.data.decode())[1]
    assert claims.digests is not None and claims.digests.alg == "SHA-256"
    by_index = {v.index: v for v in RECORDS["0.0/0.0"]}
    for d in claims.digests.digests:
        assert value_digest(by_index[d.index]) == d.digest


def test_changed_value_of_reference_record_is_tampered() -> None:
    values = [
        v.with_changes(data=b"someone@example.com") if v.type == "EMAIL" else v
        for v in RECORDS["0.0/0.0"]
    ]
    report = verify("0.0/0.0", values)
    assert not report.ok
    assert report.tampered == [2]
    assert any("value 2 (EMAIL)" in p and "tampered" in p for p in report.problems)


def test_partly_visible_reference_record_still_verifies() -> None:
    values = [v for v in RECORDS["0.NA/0.NA"] if v.type not in ("HS_SERV", "EMAIL")]
    report = verify("0.NA/0.NA", values)
    assert report.ok, report.problems
    assert report.missing == sorted(
        v.index for v in RECORDS["0.NA/0.NA"] if v.type in ("HS_SERV", "EMAIL")
    )


def test_reference_chain_has_expired_today() -> None:
    report = verify("0.0/0.0", RECORDS["0.0/0.0"], now=1_700_000_000)
    assert not report.ok
    assert any("expired at 2021-07-04" in p for p in report.problems)


def test_another_root_key_is_not_trusted() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    policy = dataclasses.replace(POLICY, root_keys=(other,))
    report = asyncio.run(
        verify_record("0.0/0.0", RECORDS["0.0/0.0"], fetcher(RECORDS), policy, IN_RANGE)
    )
    assert not report.ok and not report.signatures[0].root_trusted
    assert any("not a trusted root key" in p for p in report.problems)
