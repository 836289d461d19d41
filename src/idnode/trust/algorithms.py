"""JWS signature algorithms (RFC 7518 §3), as a registry.

=========  ==========================================  ======================================
``alg``    key                                          signature bytes
=========  ==========================================  ======================================
RS256      RSA, PKCS#1 v1.5 with SHA-256 (also RS384,  as RFC 7518 §3.3; what the reference
           RS512)                                      signs with RSA keys
ES256      EC P-256, ECDSA with SHA-256 (ES384: P-384)  ``r || s``, fixed length (RFC 7518 §3.4)
DS256      DSA with SHA-256                            DER, as Java's ``SHA256withDSA`` (the
                                                       reference's DSA algorithm)
SM2SM3     SM2 (GB/T 32918) with SM3                   ``r || s``, 32 bytes each; registered
                                                       by :mod:`idnode.trust.sm2` when the
                                                       SM2 implementation is available
=========  ==========================================  ======================================

:func:`register` adds an algorithm; :func:`by_name` finds one for a JWS header;
:func:`for_private_key` picks the one a signer uses for its key (RSA → RS256, P-256 → ES256,
P-384 → ES384, DSA → DS256, SM2 → SM2SM3).
"""

from __future__ import annotations

import abc

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from idnode.trust.errors import TrustError

__all__ = ["Algorithm", "by_name", "for_private_key", "names", "register"]


class Algorithm(abc.ABC):
    """One ``alg``: which keys it takes, how it signs and verifies."""

    name: str

    @abc.abstractmethod
    def signs_with(self, key: object) -> bool:
        """Whether ``key`` is a private key of this algorithm."""

    @abc.abstractmethod
    def verifies_with(self, key: object) -> bool:
        """Whether ``key`` is a public key of this algorithm."""

    @abc.abstractmethod
    def sign(self, key: object, data: bytes) -> bytes: ...

    @abc.abstractmethod
    def verify(self, key: object, signature: bytes, data: bytes) -> bool:
        """True if ``signature`` is good; False otherwise (never raises)."""


_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}


class _RSA(Algorithm):
    def __init__(self, bits: str) -> None:
        self.name = f"RS{bits}"
        self.hash = _HASHES[bits]

    def signs_with(self, key: object) -> bool:
        return isinstance(key, rsa.RSAPrivateKey)

    def verifies_with(self, key: object) -> bool:
        return isinstance(key, rsa.RSAPublicKey)

    def sign(self, key: object, data: bytes) -> bytes:
        assert isinstance(key, rsa.RSAPrivateKey)
        return key.sign(data, padding.PKCS1v15(), self.hash())

    def verify(self, key: object, signature: bytes, data: bytes) -> bool:
        if not isinstance(key, rsa.RSAPublicKey):
            return False
        try:
            key.verify(signature, data, padding.PKCS1v15(), self.hash())
        except (InvalidSignature, ValueError):
            return False
        return True


class _EC(Algorithm):
    def __init__(self, bits: str, curve: type[ec.EllipticCurve], size: int) -> None:
        self.name = f"ES{bits}"
        self.hash = _HASHES[bits]
        self.curve = curve
        self.size = size

    def signs_with(self, key: object) -> bool:
        return isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, self.curve)

    def verifies_with(self, key: object) -> bool:
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, self.curve)

    def sign(self, key: object, data: bytes) -> bytes:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(self.hash())))
        return r.to_bytes(self.size, "big") + s.to_bytes(self.size, "big")

    def verify(self, key: object, signature: bytes, data: bytes) -> bool:
        if not self.verifies_with(key) or len(signature) != 2 * self.size:
            return False
        assert isinstance(key, ec.EllipticCurvePublicKey)
        r = int.from_bytes(signature[: self.size], "big")
        s = int.from_bytes(signature[self.size :], "big")
        try:
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(self.hash()))
        except (InvalidSignature, ValueError):
            return False
        return True


class _DSA(Algorithm):
    name = "DS256"

    def signs_with(self, key: object) -> bool:
        return isinstance(key, dsa.DSAPrivateKey)

    def verifies_with(self, key: object) -> bool:
        return isinstance(key, dsa.DSAPublicKey)

    def sign(self, key: object, data: bytes) -> bytes:
        assert isinstance(key, dsa.DSAPrivateKey)
        return key.sign(data, hashes.SHA256())

    def verify(self, key: object, signature: bytes, data: bytes) -> bool:
        if not isinstance(key, dsa.DSAPublicKey):
            return False
        try:
            key.verify(signature, data, hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True


_REGISTRY: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> None:
    """Add (or replace) ``algorithm`` under its name."""
    _REGISTRY[algorithm.name] = algorithm


def names() -> tuple[str, ...]:
    """The registered ``alg`` names."""
    return tuple(_REGISTRY)


def by_name(name: str) -> Algorithm:
    """The algorithm of a JWS header's ``alg``; TrustError if none is registered."""
    found = _REGISTRY.get(name) if isinstance(name, str) else None
    if found is None:
        raise TrustError(f"unsupported JWS algorithm {name!r}")
    return found


def for_private_key(key: object) -> Algorithm:
    """The algorithm a signer uses with ``key`` (the first registered that takes it)."""
    for algorithm in _REGISTRY.values():
        if algorithm.signs_with(key):
            return algorithm
    raise TrustError(f"no JWS algorithm for a {type(key).__name__}")


for _bits in ("256", "384", "512"):
    register(_RSA(_bits))
register(_EC("256", ec.SECP256R1, 32))
register(_EC("384", ec.SECP384R1, 48))
register(_DSA())
