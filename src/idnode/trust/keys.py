"""Reading the keys that sign and the keys that verify.

* Signing keys: PEM private keys (PKCS#8 or traditional, optionally encrypted) of RSA, EC
  (P-256, P-384), DSA and SM2, and the reference server's own private-key file format.
* Public keys: a JWK (JSON), a PEM public key, the public half of a PEM private key, or
  HS_PUBKEY value bytes.
"""

from __future__ import annotations

import json

from cryptography.exceptions import UnsupportedAlgorithm as UnsupportedAlgorithmError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from idnode.crypto import sm2
from idnode.errors import InvalidValue, ProtocolViolation
from idnode.protocol.types.hs_pubkey import PublicKeyData, load_private_key
from idnode.trust.errors import TrustError
from idnode.trust.jwk import from_jwk

__all__ = ["load_public_key", "load_signing_key", "public_key_of"]

_PRIVATE = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, dsa.DSAPrivateKey)


def load_signing_key(data: bytes, passphrase: bytes | None = None) -> object:
    """A private key to sign with; TrustError if ``data`` holds none this node can use."""
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(data, passphrase)
        except (ValueError, TypeError, UnsupportedAlgorithmError):
            key = None
        if isinstance(key, _PRIVATE):
            return key
        try:
            return sm2.Sm2PrivateKey.from_pem(data, passphrase)
        except (ValueError, TypeError) as exc:
            raise TrustError(f"cannot load the private key (wrong passphrase?): {exc}") from exc
    try:
        return load_private_key(data, passphrase)
    except (InvalidValue, ProtocolViolation) as exc:
        raise TrustError(f"cannot load the private key: {exc}") from exc


def public_key_of(private_key: object) -> object:
    """The public half of a signing key."""
    if isinstance(private_key, (*_PRIVATE, sm2.Sm2PrivateKey)):
        return private_key.public_key()
    raise TrustError(f"not a private key: {type(private_key).__name__}")


def load_public_key(data: bytes) -> object:
    """A public key from a JWK, PEM (public, or private: its public half) or HS_PUBKEY
    bytes; TrustError otherwise."""
    text = data.lstrip()
    if text.startswith(b"{"):
        try:
            return from_jwk(json.loads(text))
        except ValueError as exc:
            raise TrustError(f"not a JWK: {exc}") from exc
    if text.startswith(b"-----BEGIN") and b"PRIVATE KEY" in text.split(b"\n", 1)[0]:
        return public_key_of(load_signing_key(data))
    if text.startswith(b"-----BEGIN"):
        try:
            return serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithmError):
            pass
        try:
            return sm2.Sm2PublicKey.from_pem(data)
        except ValueError as exc:
            raise TrustError(f"cannot load the public key: {exc}") from exc
    try:
        return PublicKeyData.from_bytes(data).to_public_key()
    except (ProtocolViolation, InvalidValue, ValueError) as exc:
        raise TrustError(f"cannot load the public key: {exc}") from exc
