"""JSON Web Signatures (RFC 7515) as the reference implementation writes and reads them.

Signing makes the protected header ``{"alg":"<alg>"}`` and nothing else, and signs
``base64url(header) "." base64url(payload)``. Two serializations:

* compact: ``header.payload.signature`` (what HS_CERT and HS_SIGNATURE values hold);
* JSON: ``{"payload": ..., "signatures": [{"protected": ..., "signature": ...}]}`` (only the
  first signature is used, as the reference does).

Parsing keeps the parts as they were written, so a signature is checked over the exact bytes
that were signed whatever their JSON formatting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from idnode.trust import algorithms
from idnode.trust.b64 import b64_decode, b64url_encode
from idnode.trust.errors import TrustError

__all__ = ["JsonWebSignature"]

#: A JWS larger than this (in characters) is refused before parsing.
MAX_JWS_SIZE = 1 << 20


@dataclass(frozen=True)
class JsonWebSignature:
    """One parsed (or made) JWS; the ``*_b64`` fields are the parts as serialized."""

    header_b64: str
    payload_b64: str
    signature_b64: str
    header: dict[str, Any]
    payload: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header.get("alg", ""))

    @property
    def signing_input(self) -> bytes:
        return f"{self.header_b64}.{self.payload_b64}".encode("ascii")

    @classmethod
    def sign(cls, payload: bytes, key: object, alg: str | None = None) -> JsonWebSignature:
        """Sign ``payload`` with the private ``key``, by ``alg`` (default: the key's own,
        :func:`~idnode.trust.algorithms.for_private_key`)."""
        algorithm = algorithms.for_private_key(key) if alg is None else algorithms.by_name(alg)
        if not algorithm.signs_with(key):
            raise TrustError(f"{algorithm.name} cannot sign with a {type(key).__name__}")
        header = {"alg": algorithm.name}
        header_b64 = b64url_encode(json.dumps(header, separators=(",", ":")).encode())
        payload_b64 = b64url_encode(payload)
        signature = algorithm.sign(key, f"{header_b64}.{payload_b64}".encode("ascii"))
        return cls(header_b64, payload_b64, b64url_encode(signature), header, payload, signature)

    @classmethod
    def parse(cls, text: str) -> JsonWebSignature:
        """Either serialization; TrustError if it is neither."""
        if not isinstance(text, str) or len(text) > MAX_JWS_SIZE:
            raise TrustError("not a JWS")
        text = text.strip()
        parts: tuple[object, ...]
        if text.startswith("{"):
            try:
                doc = json.loads(text)
                first = doc["signatures"][0]
                parts = (first["protected"], doc["payload"], first["signature"])
            except (ValueError, KeyError, IndexError, TypeError, RecursionError) as exc:
                raise TrustError("not a JWS in the JSON serialization") from exc
        else:
            parts = tuple(text.split("."))
        if len(parts) != 3 or not all(isinstance(p, str) for p in parts):
            raise TrustError("not a compact JWS (three dot-separated parts)")
        header_b64, payload_b64, signature_b64 = (str(p) for p in parts)
        try:
            header = json.loads(b64_decode(header_b64, "JWS header"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise TrustError("JWS header is not JSON") from exc
        if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
            raise TrustError("JWS header has no alg")
        payload = b64_decode(payload_b64, "JWS payload")
        signature = b64_decode(signature_b64, "JWS signature")
        return cls(header_b64, payload_b64, signature_b64, header, payload, signature)

    def verifies(self, public_key: object) -> bool:
        """Whether the signature is good for ``public_key``; False for an algorithm this
        node does not know or a key of another kind."""
        try:
            algorithm = algorithms.by_name(self.alg)
        except TrustError:
            return False
        if not algorithm.verifies_with(public_key):
            return False
        return algorithm.verify(public_key, self.signature, self.signing_input)

    def compact(self) -> str:
        return f"{self.header_b64}.{self.payload_b64}.{self.signature_b64}"

    def to_json(self) -> str:
        """The JSON serialization, written as the reference writes it."""
        return json.dumps(
            {
                "payload": self.payload_b64,
                "signatures": [{"protected": self.header_b64, "signature": self.signature_b64}],
            },
            separators=(",", ":"),
        )
