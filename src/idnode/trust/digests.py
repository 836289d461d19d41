"""Digests of handle values (the reference's ``HandleValueDigester``).

A value's digest covers its wire encoding (:meth:`~idnode.protocol.values.HandleValue.encode`)
without the first eight bytes, index and timestamp: TTL type, TTL, permissions, type, data and
references. It is written standard base64 with padding. ``alg`` is a Java digest name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from idnode.protocol.values import HandleValue
from idnode.trust.b64 import b64_encode
from idnode.trust.claims import DigestedValues, ValueDigest
from idnode.trust.errors import TrustError

__all__ = ["DEFAULT_DIGEST", "DIGESTS", "digest_values", "value_digest"]

#: What signatures are made with (as the reference's signer).
DEFAULT_DIGEST = "SHA-256"


def _hashlib(name: str) -> Callable[[bytes], bytes]:
    return lambda data: hashlib.new(name, data).digest()


#: Digest names accepted in ``digests.alg`` (Java spellings) and their functions.
DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "SHA-256": _hashlib("sha256"),
    "SHA256": _hashlib("sha256"),
    "SHA-384": _hashlib("sha384"),
    "SHA-512": _hashlib("sha512"),
    "SHA-1": _hashlib("sha1"),
    "SHA1": _hashlib("sha1"),
}
if "sm3" in hashlib.algorithms_available:
    DIGESTS["SM3"] = _hashlib("sm3")

_SKIPPED = 8  # int4 index, int4 timestamp


def value_digest(value: HandleValue, alg: str = DEFAULT_DIGEST) -> str:
    function = DIGESTS.get(alg)
    if function is None:
        raise TrustError(f"unsupported digest algorithm {alg!r}")
    return b64_encode(function(value.encode()[_SKIPPED:]))


def digest_values(values: Iterable[HandleValue], alg: str = DEFAULT_DIGEST) -> DigestedValues:
    return DigestedValues(alg, tuple(ValueDigest(v.index, value_digest(v, alg)) for v in values))
