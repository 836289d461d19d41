"""JWS, JWK and algorithms: round trips over every algorithm, and cross-checks with
``cryptography`` used directly (the JWS rules of RFC 7515/7518, not this package's code)."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from idnode.crypto import sm2
from idnode.trust import JsonWebSignature, TrustError
from idnode.trust.algorithms import by_name, names
from idnode.trust.jwk import from_jwk, same_key, to_jwk

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC384_KEY = ec.generate_private_key(ec.SECP384R1())
DSA_KEY = dsa.generate_private_key(key_size=2048)
SM2_KEY = sm2.generate_private_key()
KEYS: dict[str, Any] = {
    "RS256": RSA_KEY,
    "ES256": EC_KEY,
    "ES384": EC384_KEY,
    "DS256": DSA_KEY,
    "SM2SM3": SM2_KEY,
}


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_registry_has_every_algorithm() -> None:
    assert {"RS256", "RS384", "RS512", "ES256", "ES384", "DS256", "SM2SM3"} <= set(names())
    with pytest.raises(TrustError):
        by_name("HS256")  # no MACs: a certificate must be checkable by anyone


@pytest.mark.parametrize("alg", sorted(KEYS))
@settings(max_examples=10, deadline=None)
@given(payload=st.binary(max_size=300))
def test_sign_parse_verify_round_trip(alg: str, payload: bytes) -> None:
    key = KEYS[alg]
    jws = JsonWebSignature.sign(payload, key)
    assert jws.alg == alg
    assert json.loads(b64url(jws.header_b64)) == {"alg": alg}
    for text in (jws.compact(), jws.to_json()):
        parsed = JsonWebSignature.parse(text)
        assert parsed.payload == payload
        assert parsed.verifies(key.public_key())
    other = next(k for a, k in KEYS.items() if a != alg)
    assert not jws.verifies(other.public_key())


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_a_changed_payload_or_signature_does_not_verify(alg: str) -> None:
    key = KEYS[alg]
    jws = JsonWebSignature.sign(b'{"sub":"88.118.8/A"}', key)
    header, payload, signature = jws.compact().split(".")
    forged = base64.urlsafe_b64encode(b'{"sub":"88.118.8/B"}').rstrip(b"=").decode()
    assert not JsonWebSignature.parse(f"{header}.{forged}.{signature}").verifies(key.public_key())
    raw = bytearray(b64url(signature))
    raw[len(raw) // 2] ^= 1
    bad = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert not JsonWebSignature.parse(f"{header}.{payload}.{bad}").verifies(key.public_key())


def test_rs256_is_pkcs1_sha256_over_the_signing_input() -> None:
    jws = JsonWebSignature.sign(b"payload", RSA_KEY)
    data = f"{jws.header_b64}.{jws.payload_b64}".encode()
    RSA_KEY.public_key().verify(jws.signature, data, padding.PKCS1v15(), hashes.SHA256())


def test_es256_made_directly_verifies() -> None:
    """A JWS made by hand with cryptography, as RFC 7518 §3.4 says (r || s)."""
    header = base64.urlsafe_b64encode(b'{"alg":"ES256","typ":"JWT"}').rstrip(b"=")
    payload = base64.urlsafe_b64encode(b'{"iss":"300:0.NA/88.118"}').rstrip(b"=")
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(EC_KEY.sign(header + b"." + payload, ec.ECDSA(hashes.SHA256())))
    sig = base64.urlsafe_b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).rstrip(b"=")
    jws = JsonWebSignature.parse((header + b"." + payload + b"." + sig).decode())
    assert jws.verifies(EC_KEY.public_key())
    # and ours verifies with cryptography directly
    mine = JsonWebSignature.sign(b"x", EC_KEY)
    der = encode_dss_signature(
        int.from_bytes(mine.signature[:32], "big"), int.from_bytes(mine.signature[32:], "big")
    )
    EC_KEY.public_key().verify(der, mine.signing_input, ec.ECDSA(hashes.SHA256()))


def test_sm2sm3_is_sm2_over_the_signing_input() -> None:
    jws = JsonWebSignature.sign(b"payload", SM2_KEY)
    assert jws.alg == "SM2SM3"
    assert sm2.verify(SM2_KEY.public_key(), jws.signing_input, jws.signature)


@pytest.mark.parametrize(
    "text",
    ["", "a.b", "a.b.c.d", "!!!.e30.AA", "e30.e30.AA", "{}", '{"signatures": []}', "x" * 2_000_000],
)
def test_malformed_jws_is_refused(text: str) -> None:
    with pytest.raises(TrustError):
        JsonWebSignature.parse(text)


def test_unknown_alg_does_not_verify() -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    jws = JsonWebSignature.parse(f"{header}.e30.")
    assert not jws.verifies(RSA_KEY.public_key())


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_jwk_round_trip(alg: str) -> None:
    public = KEYS[alg].public_key()
    jwk = to_jwk(public)
    assert same_key(from_jwk(json.loads(json.dumps(jwk))), public)
    assert not same_key(
        from_jwk(jwk), RSA_KEY.public_key() if alg != "RS256" else EC_KEY.public_key()
    )


def test_jwk_forms() -> None:
    rn = RSA_KEY.public_key().public_numbers()
    jwk = to_jwk(RSA_KEY.public_key())
    assert jwk["kty"] == "RSA" and b64url(jwk["e"]) == b"\x01\x00\x01"
    assert int.from_bytes(b64url(jwk["n"]), "big") == rn.n
    # the reference's older form keeps Java's sign byte
    signed_n = base64.urlsafe_b64encode(b"\0" + b64url(jwk["n"])).decode()
    assert same_key(from_jwk({"kty": "RSA", "n": signed_n, "e": "AQAB"}), RSA_KEY.public_key())
    assert to_jwk(SM2_KEY.public_key())["crv"] == "SM2"
    assert to_jwk(EC_KEY.public_key())["crv"] == "P-256"
    assert len(b64url(to_jwk(EC_KEY.public_key())["x"])) == 32


@pytest.mark.parametrize(
    "jwk",
    [
        None,
        [],
        {"kty": "OKP", "crv": "Ed25519", "x": "AA"},
        {"kty": "RSA", "n": "AQAB"},
        {"kty": "EC", "crv": "P-256", "x": "AQ", "y": "AQ"},
        {"kty": "EC", "crv": "SM2", "x": "AQ", "y": "AQ"},
        {"kty": "RSA", "n": "%%%", "e": "AQAB"},
    ],
)
def test_bad_jwk_is_refused(jwk: object) -> None:
    with pytest.raises(TrustError):
        from_jwk(jwk)


def test_oversized_key_is_refused() -> None:
    huge = base64.urlsafe_b64encode(b"\xff" * 4096).rstrip(b"=").decode()
    with pytest.raises(TrustError, match="too large"):
        from_jwk({"kty": "RSA", "n": huge, "e": "AQAB"})


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200) | st.builds(lambda a, b, c: f"{a}.{b}.{c}", *[st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=40
)] * 3))  # fmt: skip
def test_any_text_parses_or_is_refused(text: str) -> None:
    from idnode.trust import HandleClaims

    try:
        jws = JsonWebSignature.parse(text)
    except TrustError:
        return
    assert not jws.verifies(RSA_KEY.public_key())
    with contextlib.suppress(TrustError):
        HandleClaims.from_payload(jws.payload)


def test_deeply_nested_json_is_refused() -> None:
    from idnode.trust import HandleClaims

    nested = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(TrustError):
        HandleClaims.from_payload(nested)
    encoded = base64.urlsafe_b64encode(nested[:300_000]).rstrip(b"=").decode()
    with pytest.raises(TrustError):
        JsonWebSignature.parse(f"{encoded}.e30.AA")
    with pytest.raises(TrustError):
        JsonWebSignature.parse("{" + '"a":[' * 100_000)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    jwk=st.dictionaries(
        st.sampled_from(["kty", "crv", "n", "e", "x", "y", "p", "q", "g"]),
        st.sampled_from(["RSA", "EC", "DSA", "P-256", "SM2", "AQAB", "AA", ""]) | _json_values,
    )
)
def test_any_jwk_decodes_or_is_refused(jwk: dict[str, object]) -> None:
    with contextlib.suppress(TrustError):
        from_jwk(jwk)
