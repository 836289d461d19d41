"""National cryptography: SM2 signatures and the SM3 hash (see sm2.py)."""

from idnode.crypto.sm2 import (
    DEFAULT_UID,
    Sm2Error,
    Sm2PrivateKey,
    Sm2PublicKey,
    generate_private_key,
    sign,
    sm3,
    verify,
)

__all__ = [
    "DEFAULT_UID",
    "Sm2Error",
    "Sm2PrivateKey",
    "Sm2PublicKey",
    "generate_private_key",
    "sign",
    "sm3",
    "verify",
]
