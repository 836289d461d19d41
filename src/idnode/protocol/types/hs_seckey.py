"""HS_SECKEY value data: a secret key for challenge-response authentication (spec §2.5).

The data is the key itself (usually a UTF-8 password). It may be stored "hashed": the
lower-case hex of SHA-1(password), which clients then use as the key
(:func:`idnode.protocol.auth.hashed_secret_key`). The value should not be publicly readable
(permissions 0x0C). ``repr`` never shows the key.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Self

from idnode.protocol.types import register

__all__ = ["SecretKey"]


@register("HS_SECKEY")
@dataclass(frozen=True, slots=True, repr=False)
class SecretKey:
    """An HS_SECKEY value: the raw key bytes (spec §2.5)."""

    key: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.key, bytes):
            raise TypeError("SecretKey.key must be bytes")

    def __repr__(self) -> str:
        return "SecretKey(<redacted>)"

    def matches(self, candidate: bytes) -> bool:
        """Constant-time comparison with ``candidate``."""
        return hmac.compare_digest(self.key, candidate)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        return cls(bytes(data))

    def to_bytes(self) -> bytes:
        return self.key
