"""Public keys as JSON Web Keys (RFC 7517/7518 §6), as certificates carry them.

* RSA: ``{"kty": "RSA", "n": ..., "e": ...}``;
* EC: ``{"kty": "EC", "crv": "P-256" | "P-384", "x": ..., "y": ...}`` (coordinates padded to
  the curve size);
* DSA: ``{"kty": "DSA", "y": ..., "p": ..., "q": ..., "g": ...}`` (the reference's own form);
* SM2: ``{"kty": "EC", "crv": "SM2", "x": ..., "y": ...}``, when :mod:`idnode.trust.sm2`
  registers it.

Numbers are base64url big-endian magnitudes. Writing strips leading zero bytes; reading also
takes the reference's older form, which keeps Java's sign byte (``"n": "AL..."``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from idnode.trust.b64 import b64_decode, b64url_encode
from idnode.trust.errors import TrustError

__all__ = ["from_jwk", "register_codec", "same_key", "to_jwk"]

Encoder = Callable[[object], dict[str, str] | None]
Decoder = Callable[[dict[str, Any]], object | None]

_ENCODERS: list[Encoder] = []
_DECODERS: list[Decoder] = []


def register_codec(encode: Encoder, decode: Decoder) -> None:
    """Add a key kind: ``encode(key)`` is its JWK or None if the key is not of that kind;
    ``decode(jwk)`` is the key or None if the JWK is not of that kind (TrustError if it is
    but is malformed). Codecs registered later are tried first."""
    _ENCODERS.insert(0, encode)
    _DECODERS.insert(0, decode)


def _num(n: int, size: int = 0) -> str:
    return b64url_encode(n.to_bytes(max(size, (n.bit_length() + 7) // 8, 1), "big"))


#: Bytes a key number may have (16384-bit RSA moduli and DSA primes): larger keys are refused
#: before any arithmetic, so a published certificate cannot make verification slow.
MAX_NUMBER_BYTES = 2048


def _int(jwk: dict[str, Any], name: str) -> int:
    text = jwk.get(name)
    if not isinstance(text, str) or not text:
        raise TrustError(f"JWK: {name} is missing")
    raw = b64_decode(text, f"JWK {name}").lstrip(b"\0")
    if len(raw) > MAX_NUMBER_BYTES:
        raise TrustError(f"JWK: {name} is too large")
    return int.from_bytes(raw, "big")


_CURVES: dict[str, tuple[type[ec.EllipticCurve], int]] = {
    "P-256": (ec.SECP256R1, 32),
    "P-384": (ec.SECP384R1, 48),
}


def _encode_builtin(key: object) -> dict[str, str] | None:
    if isinstance(key, rsa.RSAPublicKey):
        rn = key.public_numbers()
        return {"kty": "RSA", "n": _num(rn.n), "e": _num(rn.e)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        for crv, (curve, size) in _CURVES.items():
            if isinstance(key.curve, curve):
                en = key.public_numbers()
                return {"kty": "EC", "crv": crv, "x": _num(en.x, size), "y": _num(en.y, size)}
        return None
    if isinstance(key, dsa.DSAPublicKey):
        dn = key.public_numbers()
        pn = dn.parameter_numbers
        return {"kty": "DSA", "y": _num(dn.y), "p": _num(pn.p), "q": _num(pn.q), "g": _num(pn.g)}
    return None


def _decode_builtin(jwk: dict[str, Any]) -> object | None:
    kty = str(jwk.get("kty", "")).upper()
    try:
        if kty == "RSA":
            return rsa.RSAPublicNumbers(_int(jwk, "e"), _int(jwk, "n")).public_key()
        crv = jwk.get("crv")
        if kty == "EC" and isinstance(crv, str) and crv in _CURVES:
            curve, _size = _CURVES[crv]
            numbers = ec.EllipticCurvePublicNumbers(_int(jwk, "x"), _int(jwk, "y"), curve())
            return numbers.public_key()
        if kty == "DSA":
            params = dsa.DSAParameterNumbers(_int(jwk, "p"), _int(jwk, "q"), _int(jwk, "g"))
            return dsa.DSAPublicNumbers(_int(jwk, "y"), params).public_key()
    except ValueError as exc:
        if isinstance(exc, TrustError):
            raise
        raise TrustError(f"JWK: not a valid {kty} key: {exc}") from exc
    return None


register_codec(_encode_builtin, _decode_builtin)


def to_jwk(key: object) -> dict[str, str]:
    """``key`` (a public key) as a JWK; TrustError for a kind no codec knows."""
    for encode in _ENCODERS:
        jwk = encode(key)
        if jwk is not None:
            return jwk
    raise TrustError(f"cannot write a {type(key).__name__} as a JWK")


def from_jwk(jwk: Any) -> object:
    """The public key of a JWK; TrustError if it is malformed or of an unknown kind."""
    if not isinstance(jwk, dict):
        raise TrustError("JWK: expected a JSON object")
    for decode in _DECODERS:
        key = decode(jwk)
        if key is not None:
            return key
    raise TrustError(f"JWK: unsupported key type {jwk.get('kty')!r} {jwk.get('crv', '')!r}")


def same_key(a: object, b: object) -> bool:
    """Whether two public keys are the same key (compared by their JWKs)."""
    try:
        return to_jwk(a) == to_jwk(b)
    except TrustError:
        return False
