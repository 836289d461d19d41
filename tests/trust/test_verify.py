"""Verification rules over an in-memory hierarchy (:mod:`tests.trust.pki`): values, chains,
permissions, validity, loops and length."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idnode.protocol.values import HandleValue
from idnode.trust import HandleClaims, Permission, RecordReport, TrustConfig, verify_handle
from idnode.trust.chain import parse
from idnode.trust.perms import covers
from idnode.trust.signed_values import check_values
from idnode.trust.signing import sign_values
from tests.trust import pki
from tests.trust.pki import (
    ENTERPRISE_ID,
    ENTERPRISE_KEY,
    PRODUCT,
    ROOT_ID,
    ROOT_KEY,
    SECONDARY_ID,
    SECONDARY_KEY,
    Hierarchy,
)


def run(h: Hierarchy, handle: str = PRODUCT, max_chain: int = 50) -> RecordReport:
    return asyncio.run(verify_handle(handle, h.fetch(), pki.policy(max_chain), h.now))


def problems(report: RecordReport) -> str:
    return "\n".join(report.problems)


def test_the_hierarchy_verifies() -> None:
    report = run(pki.standard())
    assert report.ok and report.status == "verified", report.problems
    assert report.signed == [1, 2, 2001, 2002]
    assert [link.iss for link in report.signatures[0].chain] == [
        ENTERPRISE_ID,
        SECONDARY_ID,
        ROOT_ID,
        ROOT_ID,
    ]


def test_partly_visible_record_verifies_and_lists_what_is_missing() -> None:
    h = pki.standard()
    h.records[PRODUCT] = [v for v in h.records[PRODUCT] if v.public_read]
    report = run(h)
    assert report.ok, report.problems
    assert report.missing == [2002] and 2002 not in report.tampered


def test_changed_value_is_tampered() -> None:
    h = pki.standard()
    h.put(PRODUCT, HandleValue(2001, "power", b"450W"))
    report = run(h)
    assert not report.ok and report.status == "failed"
    assert report.tampered == [2001] and report.signed == [1, 2, 2002]
    assert "value 2001 (power) differs from what was signed (tampered)" in report.problems


def test_changed_permissions_of_a_value_are_tampered() -> None:
    h = pki.standard()
    url = h.records[PRODUCT][0]
    h.put(PRODUCT, url.with_changes(permissions=url.permissions | 0x01))
    assert run(h).tampered == [1]


def test_added_value_is_unsigned() -> None:
    h = pki.standard()
    h.put(PRODUCT, HandleValue(3, "URL", b"https://evil.example.com"))
    report = run(h)
    assert not report.ok and report.unsigned == [3] and not report.tampered
    assert "value 3 (URL) is not covered by a trusted signature" in report.problems


def test_no_signature_is_unsigned() -> None:
    h = pki.standard()
    h.records[PRODUCT] = [v for v in h.records[PRODUCT] if v.type != "HS_SIGNATURE"]
    report = run(h)
    assert report.status == "unsigned" and not report.ok


def test_changed_certificate_does_not_verify() -> None:
    h = pki.standard()
    cert = h.records["0.NA/88.118.8"][0]
    header, _payload, signature = cert.data.decode().split(".")
    claims = parse(cert.data.decode())[1]
    forged = HandleClaims(**{**claims.__dict__, "perms": (Permission("everything"),)})
    payload = base64.urlsafe_b64encode(forged.payload()).rstrip(b"=").decode()
    h.put("0.NA/88.118.8", cert.with_changes(data=f"{header}.{payload}.{signature}".encode()))
    report = run(h)
    assert not report.ok
    assert (
        "the certificate at 400:0.NA/88.118.8 does not verify with the key certified for "
        "301:0.NA/88.118" in problems(report)
    )


def test_signature_with_another_key_does_not_verify() -> None:
    h = pki.standard()
    h.sign(PRODUCT, ENTERPRISE_ID, pki.new_rsa())
    report = run(h)
    assert not report.ok
    assert (
        f"the signature at 400:{PRODUCT} does not verify with the key certified for "
        f"{ENTERPRISE_ID}" in problems(report)
    )


def test_certificate_with_another_subject_key_is_refused() -> None:
    h = pki.standard()
    h.certify(
        ENTERPRISE_ID,
        pki.new_rsa(),
        [Permission("handlesUnderThisPrefix", "0.NA/88.118.8")],
        SECONDARY_ID,
        SECONDARY_KEY,
    )
    assert not run(h).ok


def test_expired_and_not_yet_valid_certificates_are_refused() -> None:
    h = pki.standard()
    perms = [Permission("handlesUnderThisPrefix", "0.NA/88.118.8")]
    h.certify(
        ENTERPRISE_ID, ENTERPRISE_KEY, perms, SECONDARY_ID, SECONDARY_KEY,
        not_before=h.now - 100, expires=h.now - 10,
    )  # fmt: skip
    assert "the certificate at 400:0.NA/88.118.8 expired at" in problems(run(h))
    h.certify(
        ENTERPRISE_ID, ENTERPRISE_KEY, perms, SECONDARY_ID, SECONDARY_KEY,
        not_before=h.now + 3600, expires=h.now + 7200,
    )  # fmt: skip
    assert "the certificate at 400:0.NA/88.118.8 is not valid before" in problems(run(h))


def test_expired_signature_is_refused() -> None:
    h = pki.standard()
    h.sign(PRODUCT, ENTERPRISE_ID, ENTERPRISE_KEY, not_before=h.now - 100, expires=h.now - 1)
    assert f"the signature at 400:{PRODUCT} expired at" in problems(run(h))


def test_latest_certificate_about_the_issuer_is_used() -> None:
    h = pki.standard()
    perms = [Permission("handlesUnderThisPrefix", "0.NA/88.118.8")]
    h.now -= 1000
    h.certify(ENTERPRISE_ID, pki.new_rsa(), perms, SECONDARY_ID, SECONDARY_KEY, index=401)
    h.now += 1000
    assert run(h).ok


def test_permissions_must_cover_the_handle() -> None:
    h = pki.standard()
    other = "88.119.1/VIN-LSVAU2180N2183294"
    h.put(other, HandleValue(1, "URL", b"https://auto.example.com/"))
    h.sign(other, ENTERPRISE_ID, ENTERPRISE_KEY)
    report = run(h, other)
    assert not report.ok
    text = problems(report)
    assert f"{SECONDARY_ID} is not permitted to sign for {other}" in text
    assert f"{ENTERPRISE_ID} is not permitted to sign for {other}" in text
    assert "handlesUnderThisPrefix:0.NA/88.118.8" in text


def test_signature_about_another_handle_is_refused() -> None:
    h = pki.standard()
    copy = "88.118.8/PV-2026-000124"
    h.records[copy] = list(h.records[PRODUCT])
    assert f"is about {PRODUCT}, not {copy}" in problems(run(h, copy))


def test_chain_ending_elsewhere_is_not_trusted() -> None:
    h = pki.standard()
    h.certify(SECONDARY_ID, SECONDARY_KEY, [Permission("everything")], SECONDARY_ID, SECONDARY_KEY)
    report = run(h)
    assert not report.signatures[0].root_trusted
    assert "the chain ends at 301:0.NA/88.118, not at the trust root 0.NA/TRUST" in problems(report)


def test_loop_is_refused() -> None:
    h = pki.standard()
    perms = [Permission("everything")]
    h.certify(SECONDARY_ID, SECONDARY_KEY, perms, ENTERPRISE_ID, ENTERPRISE_KEY)
    report = run(h)
    assert not report.ok
    assert "the certificate chain loops: 0.NA/88.118.8 comes back" in problems(report)


def test_chain_length_is_bounded() -> None:
    assert run(pki.standard(), max_chain=3).ok
    report = run(pki.standard(), max_chain=2)
    assert "the certificate chain is longer than 2 certificates" in problems(report)


def test_chain_claim_names_where_certificates_are() -> None:
    h = pki.standard()
    cert = h.records.pop("0.NA/88.118")[0]
    h.put("0.NA/88.118.8", cert.with_changes(index=410))
    h.sign(PRODUCT, ENTERPRISE_ID, ENTERPRISE_KEY, chain=["0.NA/88.118.8", "410:0.NA/88.118.8"])
    assert run(h).ok, run(h).problems


def test_missing_issuer_is_reported() -> None:
    h = pki.standard()
    del h.records["0.NA/88.118"]
    assert "cannot resolve 0.NA/88.118: handle not found" in problems(run(h))
    h = pki.standard()
    h.records["0.NA/88.118"] = []
    assert "no certificate about 301:0.NA/88.118 at 0.NA/88.118" in problems(run(h))


def test_garbage_signature_is_reported() -> None:
    h = pki.standard()
    h.put(PRODUCT, HandleValue(401, "HS_SIGNATURE", b"\xff not a jws"))
    report = run(h)
    assert not report.ok and "HS_SIGNATURE 401 cannot be read" in problems(report)


@pytest.mark.parametrize(
    ("perm", "handle", "expected"),
    [
        (Permission("everything"), "1.2/x", True),
        (Permission("derivedPrefixes", "0.NA/88.118"), "88.118.8/x", True),
        (Permission("derivedPrefixes", "0.NA/88.118"), "0.NA/88.118.8", True),
        (Permission("derivedPrefixes", "0.NA/88.118"), "88.118/x", False),
        (Permission("derivedPrefixes", "0.NA/88.118"), "88.1188/x", False),
        (Permission("handlesUnderThisPrefix", "0.NA/88.118.8"), "88.118.8/x", True),
        (Permission("handlesUnderThisPrefix", "0.na/88.118.8"), "88.118.8/x", True),
        (Permission("handlesUnderThisPrefix", "0.NA/88.118.8"), "88.118.80/x", False),
        (Permission("handlesUnderThisPrefix", "0.NA/88.118"), "88.118.8/x", False),
        (Permission("thisHandle", "88.118.8/x"), "88.118.8/x", True),
        (Permission("thisHandle", "88.118.8/x"), "88.118.8/X", False),
        (Permission("homedPrefix", "0.NA/88.118.8"), "88.118.8/x", False),
        (Permission("derivedPrefixes"), "88.118.8/x", False),
    ],
)
def test_permissions(perm: Permission, handle: str, expected: bool) -> None:
    assert covers([perm], handle) is expected


values_strategy = st.lists(
    st.builds(
        HandleValue,
        index=st.integers(1, 0xFFFFFFFF),
        type=st.text(min_size=1, max_size=12),
        data=st.binary(max_size=64),
        ttl=st.integers(0, 0xFFFFFFFF),
        timestamp=st.integers(0, 0xFFFFFFFF),
        permissions=st.integers(0, 0x0F),
    ),
    max_size=8,
    unique_by=lambda v: v.index,
)


@settings(max_examples=40, deadline=None)
@given(values=values_strategy, seen=st.data())
def test_signed_values_check_any_subset(values: list[HandleValue], seen: st.DataObject) -> None:
    """Any values signed, any subset seen: the seen ones verify, the others are missing;
    timestamps (not signed) may change."""
    values = [v for v in values if v.type.upper() != "HS_SIGNATURE"]
    claims = parse(sign_values(PRODUCT, values, ENTERPRISE_ID, ROOT_KEY).compact())[1]
    assert claims.digests is not None
    subset = (
        seen.draw(st.lists(st.sampled_from(values), unique_by=lambda v: v.index)) if values else []
    )
    shown = [v.with_changes(timestamp=0) for v in subset]
    check = check_values(PRODUCT, shown, claims.digests)
    assert sorted(check.verified) == sorted(v.index for v in subset)
    assert check.missing == sorted({v.index for v in values} - {v.index for v in subset})
    assert not check.tampered and not check.unsigned


@settings(max_examples=40, deadline=None)
@given(
    iss=st.text(max_size=20),
    sub=st.text(max_size=20),
    times=st.lists(st.integers(0, 2**40), min_size=3, max_size=3),
    perms=st.lists(st.builds(Permission, st.sampled_from(["everything", "thisHandle"]),
                             st.none() | st.text(max_size=10)), max_size=3),
    chain=st.none() | st.lists(st.text(max_size=10), max_size=3),
    extra=st.dictionaries(st.sampled_from(["org", "sn", "ca"]),
                          st.text(max_size=5) | st.booleans()),
)  # fmt: skip
def test_claims_round_trip(
    iss: str, sub: str, times: list[int], perms: list[Permission],
    chain: list[str] | None, extra: dict[str, object],
) -> None:  # fmt: skip
    claims = HandleClaims(
        iss=iss, sub=sub, iat=times[0], nbf=times[1], exp=times[2], perms=tuple(perms),
        chain=None if chain is None else tuple(chain), extra=extra,
    )  # fmt: skip
    assert HandleClaims.from_payload(claims.payload()) == claims


def test_trust_config(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = ROOT_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "root.pem").write_bytes(pem)
    config = TrustConfig.from_table(
        {"root": "0.NA/TRUST", "root_keys": ["root.pem"], "max_chain_length": 3}, "[trust]"
    )
    policy = config.policy(tmp_path)
    assert policy.max_chain_length == 3 and policy.root_handle == "0.NA/TRUST"
    h = pki.standard()
    assert asyncio.run(verify_handle(PRODUCT, h.fetch(), policy, h.now)).ok
    for bad in (
        {"root": "0.NA/TRUST"},
        {"root": "TRUST", "root_keys": ["k"]},
        {"root": "0.NA/T", "root_keys": []},
        {"root": "0.NA/T", "root_keys": ["k"], "max_chain_length": 0},
        {"root": "0.NA/T", "root_keys": ["k"], "other": 1},
    ):
        with pytest.raises(ValueError):
            TrustConfig.from_table(bad, "[trust]")


def test_signatures_per_record_are_bounded() -> None:
    h = pki.standard()
    signature = next(v for v in h.records[PRODUCT] if v.type == "HS_SIGNATURE")
    for index in range(401, 420):
        h.put(PRODUCT, signature.with_changes(index=index))
    report = run(h)
    assert len(report.signatures) == 16
    assert f"{PRODUCT} has 20 HS_SIGNATURE values; the first 16 are checked" in report.problems
