"""SM2 with SM3 in JWS (``alg`` ``SM2SM3``) and SM2 keys as JWKs (``{"kty": "EC", "crv":
"SM2", "x": ..., "y": ...}``), on :mod:`idnode.crypto.sm2`.

The signature is SM2 (GB/T 32918.2) over the JWS signing input, hashed with SM3 after the
signer's Z value for the default user id ``1234567812345678``; it is written ``r || s``, 32 bytes
each, as ES256 is. Importing :mod:`idnode.trust` registers it.
"""

from __future__ import annotations

from typing import Any

from idnode.crypto import sm2
from idnode.trust import algorithms, jwk
from idnode.trust.b64 import b64_decode, b64url_encode
from idnode.trust.errors import TrustError

__all__ = ["ALG", "CRV"]

ALG = "SM2SM3"
CRV = "SM2"


class _SM2SM3(algorithms.Algorithm):
    name = ALG

    def signs_with(self, key: object) -> bool:
        return isinstance(key, sm2.Sm2PrivateKey)

    def verifies_with(self, key: object) -> bool:
        return isinstance(key, sm2.Sm2PublicKey)

    def sign(self, key: object, data: bytes) -> bytes:
        assert isinstance(key, sm2.Sm2PrivateKey)
        return sm2.sign(key, data)

    def verify(self, key: object, signature: bytes, data: bytes) -> bool:
        if not isinstance(key, sm2.Sm2PublicKey):
            return False
        return sm2.verify(key, data, signature)


def _encode(key: object) -> dict[str, str] | None:
    if not isinstance(key, sm2.Sm2PublicKey):
        return None
    point = key.to_point()
    x, y = b64url_encode(point[1:33]), b64url_encode(point[33:])
    return {"kty": "EC", "crv": CRV, "x": x, "y": y}


def _coordinate(obj: dict[str, Any], name: str) -> bytes:
    raw = b64_decode(str(obj.get(name, "")), f"JWK {name}").rjust(32, b"\0")
    if len(raw) != 32:
        raise TrustError(f"JWK: SM2 {name} is not 32 bytes")
    return raw


def _decode(obj: dict[str, Any]) -> object | None:
    if str(obj.get("kty", "")).upper() != "EC" or obj.get("crv") != CRV:
        return None
    try:
        return sm2.Sm2PublicKey.from_point(b"\x04" + _coordinate(obj, "x") + _coordinate(obj, "y"))
    except sm2.Sm2Error as exc:
        raise TrustError(f"JWK: not an SM2 key: {exc}") from exc


algorithms.register(_SM2SM3())
jwk.register_codec(_encode, _decode)
