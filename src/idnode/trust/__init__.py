"""Trusted resolution: signed values (HS_SIGNATURE) and certificates (HS_CERT) with trust
chains, compatible with the reference implementation's ``net.handle.hdllib.trust``.

* :mod:`.jws`, :mod:`.algorithms`, :mod:`.jwk`, :mod:`.sm2`: JSON Web Signatures (RS256,
  ES256, DS256, SM2SM3) and keys as JWKs;
* :mod:`.claims`, :mod:`.digests`, :mod:`.perms`, :mod:`.names`: what certificates and
  signatures say, value digests, what permissions cover;
* :mod:`.signing`: making signatures and certificates;
* :mod:`.signed_values`, :mod:`.chain`, :mod:`.verify`: checking values, building and checking
  chains up to a trust root;
* :mod:`.fetch`: verifying through a recursive resolver or a client; :mod:`.config`: the
  ``[trust]`` table; :mod:`.keys`: key files.

See docs/trust.md.
"""

from __future__ import annotations

from idnode.trust import sm2 as _sm2  # noqa: F401  (registers SM2SM3)
from idnode.trust.chain import DEFAULT_MAX_CHAIN_LENGTH, ChainError, Fetch
from idnode.trust.claims import PERMISSIONS, HandleClaims, Permission
from idnode.trust.config import TrustConfig
from idnode.trust.errors import TrustError
from idnode.trust.fetch import (
    client_fetch,
    resolver_fetch,
    verify_with_client,
    verify_with_resolver,
)
from idnode.trust.jws import JsonWebSignature
from idnode.trust.signing import issue_certificate, sign_values
from idnode.trust.verify import RecordReport, TrustPolicy, verify_handle, verify_record

__all__ = [
    "DEFAULT_MAX_CHAIN_LENGTH",
    "PERMISSIONS",
    "ChainError",
    "Fetch",
    "HandleClaims",
    "JsonWebSignature",
    "Permission",
    "RecordReport",
    "TrustConfig",
    "TrustError",
    "TrustPolicy",
    "client_fetch",
    "issue_certificate",
    "resolver_fetch",
    "sign_values",
    "verify_handle",
    "verify_record",
    "verify_with_client",
    "verify_with_resolver",
]
