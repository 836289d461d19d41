"""Base64 as JWS and the reference implementation use it.

JWS parts and JWK numbers are written base64url without padding (RFC 7515 §2); value digests
are written standard base64 with padding (as the reference's ``HandleValueDigester``). Reading
accepts either alphabet, with or without padding, as the reference's decoder does.
"""

from __future__ import annotations

import base64
import binascii

from idnode.trust.errors import TrustError

__all__ = ["b64_decode", "b64_encode", "b64url_encode"]


def b64url_encode(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64_encode(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def b64_decode(text: str, what: str = "base64") -> bytes:
    """Either alphabet, padding optional; TrustError for anything else."""
    if not isinstance(text, str):
        raise TrustError(f"{what}: expected a base64 string")
    cleaned = text.strip().rstrip("=").replace("-", "+").replace("_", "/")
    if len(cleaned) % 4 == 1:
        raise TrustError(f"{what}: bad base64 length")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TrustError(f"{what}: not base64") from exc
