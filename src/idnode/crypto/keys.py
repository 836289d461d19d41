"""New signing keys of the kinds idnode uses for identities and servers."""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from idnode.crypto import sm2
from idnode.protocol.auth import PrivateKey

#: Key kinds by name, as the command line offers them.
KEY_TYPES: Final = ("rsa", "dsa", "sm2")


def generate_key(kind: str, bits: int = 2048) -> PrivateKey:
    """A new private key: RSA (public exponent 65537) or DSA of ``bits``, or SM2 (its curve
    fixes the size; ``bits`` is ignored). ValueError for another kind."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if kind == "dsa":
        return dsa.generate_private_key(key_size=bits)
    if kind == "sm2":
        return sm2.generate_private_key()
    raise ValueError(f"unknown key type {kind!r} (expected one of {', '.join(KEY_TYPES)})")
