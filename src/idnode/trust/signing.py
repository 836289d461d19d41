"""Making HS_SIGNATURE and HS_CERT values (the reference's ``HandleSigner``).

* :func:`sign_values`: a JWS whose ``sub`` is the handle, ``iss`` the signer identity
  (``index:handle``) and ``digests`` the SHA-256 digests of the values, by index;
* :func:`issue_certificate`: a JWS whose ``sub`` is the subject identity, ``publicKey`` its key
  (JWK) and ``perms`` what it may sign for; self-signed when subject and issuer are the same
  (a trust root's certificate).

Both carry ``iat`` (now), ``nbf`` and ``exp`` (seconds since the epoch) and, when given,
``chain``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from idnode.protocol.values import HandleValue
from idnode.trust.claims import HandleClaims, Permission
from idnode.trust.digests import DEFAULT_DIGEST, digest_values
from idnode.trust.jwk import to_jwk
from idnode.trust.jws import JsonWebSignature
from idnode.trust.signed_values import HS_CERT, HS_SIGNATURE

__all__ = [
    "DEFAULT_VALIDITY",
    "FIRST_TRUST_INDEX",
    "certificate_value",
    "free_index",
    "issue_certificate",
    "sign_values",
    "signature_value",
    "values_to_sign",
]

#: Seconds a signature or certificate is valid unless told otherwise (one year).
DEFAULT_VALIDITY = 365 * 86400
#: HS_CERT and HS_SIGNATURE values go at this index or above (spec §2.4).
FIRST_TRUST_INDEX = 400


def values_to_sign(values: Iterable[HandleValue]) -> list[HandleValue]:
    """Every value but HS_SIGNATURE values."""
    return [v for v in values if v.type.upper() != HS_SIGNATURE]


def _times(now: float | None, not_before: int | None, expires: int | None) -> tuple[int, int, int]:
    issued = int(time.time() if now is None else now)
    start = issued if not_before is None else not_before
    return issued, start, start + DEFAULT_VALIDITY if expires is None else expires


def sign_values(
    handle: str,
    values: Sequence[HandleValue],
    signer: str,
    key: object,
    *,
    now: float | None = None,
    not_before: int | None = None,
    expires: int | None = None,
    chain: Sequence[str] | None = None,
    alg: str | None = None,
    digest_alg: str = DEFAULT_DIGEST,
) -> JsonWebSignature:
    """Sign ``values`` of ``handle`` (HS_SIGNATURE values among them are left out) as
    ``signer`` with its private ``key``. The digests are public once the signature is: pass
    only public values unless the others may be guessed from a digest without harm."""
    iat, nbf, exp = _times(now, not_before, expires)
    claims = HandleClaims(
        iss=signer,
        sub=handle,
        iat=iat,
        nbf=nbf,
        exp=exp,
        digests=digest_values(values_to_sign(values), digest_alg),
        chain=None if not chain else tuple(chain),
    )
    return JsonWebSignature.sign(claims.payload(), key, alg)


def issue_certificate(
    subject: str,
    subject_key: object,
    perms: Sequence[Permission],
    issuer: str,
    key: object,
    *,
    now: float | None = None,
    not_before: int | None = None,
    expires: int | None = None,
    chain: Sequence[str] | None = None,
    alg: str | None = None,
) -> JsonWebSignature:
    """Certify that ``subject`` (``index:handle``) holds the public ``subject_key`` and may
    sign for ``perms``, as ``issuer`` with its private ``key``."""
    iat, nbf, exp = _times(now, not_before, expires)
    claims = HandleClaims(
        iss=issuer,
        sub=subject,
        iat=iat,
        nbf=nbf,
        exp=exp,
        perms=tuple(perms),
        chain=None if not chain else tuple(chain),
        public_key=dict(to_jwk(subject_key)),
    )
    return JsonWebSignature.sign(claims.payload(), key, alg)


def signature_value(index: int, jws: JsonWebSignature, timestamp: int = 0) -> HandleValue:
    return HandleValue(index, HS_SIGNATURE, jws.compact().encode("ascii"), timestamp=timestamp)


def certificate_value(index: int, jws: JsonWebSignature, timestamp: int = 0) -> HandleValue:
    return HandleValue(index, HS_CERT, jws.compact().encode("ascii"), timestamp=timestamp)


def free_index(values: Iterable[HandleValue], first: int = FIRST_TRUST_INDEX) -> int:
    """The lowest index from ``first`` up that no value uses."""
    used = {v.index for v in values}
    index = first
    while index in used:
        index += 1
    return index
