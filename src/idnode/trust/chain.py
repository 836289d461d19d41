"""Building the chain of certificates from a signature up to a self-signed certificate (the
reference's ``ChainBuilder``).

From a signed object (an HS_SIGNATURE's or an HS_CERT's JWS) with issuer ``iss``, the next
certificate is found:

* at the first entry of the object's ``chain`` claim, when it has one (an entry ``index:handle``
  names the HS_CERT value itself; a bare handle means the handle's latest HS_CERT about ``iss``),
  the rest of that list serving the next steps;
* otherwise in the issuer's own handle (the handle of ``iss``): its HS_CERT whose ``sub`` is
  ``iss``, the latest by ``iat`` when there are several.

That certificate's ``publicKey`` and ``perms`` are what the object is checked against; then it is
the next signed object, until a self-signed one (``sub`` = ``iss``). Records are read with
``fetch``: the node's store, its recursive resolver or a client (:mod:`idnode.trust.fetch`).

Refused with :class:`ChainError`: a handle met twice (a loop), more than ``max_length``
certificates, an issuer whose records cannot be read or hold no certificate about it, a
certificate whose ``sub`` is not the issuer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from idnode.errors import HandleError
from idnode.protocol.values import HandleValue
from idnode.trust.claims import HandleClaims, Permission
from idnode.trust.errors import TrustError
from idnode.trust.jws import JsonWebSignature
from idnode.trust.names import ValueRef, handle_key, same_handle
from idnode.trust.signed_values import HS_CERT

__all__ = ["DEFAULT_MAX_CHAIN_LENGTH", "ChainError", "Fetch", "Link", "build_chain", "parse"]

#: Certificates a chain may have, the root's included, unless configured otherwise (as the
#: reference's limit).
DEFAULT_MAX_CHAIN_LENGTH = 50

#: Reads the public values of a handle (raises HandleError, OSError or TimeoutError).
Fetch = Callable[[str], Awaitable[Sequence[HandleValue]]]


class ChainError(TrustError):
    """The chain cannot be built; the message says why."""


@dataclass(frozen=True)
class Link:
    """One signed object of a chain and what it is checked against."""

    jws: JsonWebSignature
    claims: HandleClaims
    #: Where the object was found, e.g. ``400:0.NA/88.118.8``.
    where: str
    #: The issuer's key (JWK) and permissions, from the issuer's certificate (for a
    #: self-signed certificate, its own).
    issuer_key: dict[str, object] | None
    issuer_perms: tuple[Permission, ...] | None
    #: Where the issuer's certificate was found ("" for a self-signed one).
    issuer_cert: str = ""


def parse(text: str) -> tuple[JsonWebSignature, HandleClaims]:
    jws = JsonWebSignature.parse(text)
    return jws, HandleClaims.from_payload(jws.payload)


async def _values(fetch: Fetch, handle: str) -> Sequence[HandleValue]:
    try:
        return await fetch(handle)
    except (HandleError, OSError, TimeoutError) as exc:
        raise ChainError(f"cannot resolve {handle}: {exc}") from exc


async def _lookup(
    fetch: Fetch, link: str, subject: str
) -> tuple[JsonWebSignature, HandleClaims, str] | None:
    ref = ValueRef.parse(link)
    values = await _values(fetch, ref.handle)
    if ref.index > 0:
        for value in values:
            if value.index == ref.index:
                try:
                    return (*parse(value.data.decode("utf-8")), str(ref))
                except (TrustError, UnicodeDecodeError) as exc:
                    raise ChainError(f"{ref} is not a certificate: {exc}") from exc
        return None
    best: tuple[JsonWebSignature, HandleClaims, str] | None = None
    for value in values:
        if value.type.upper() != HS_CERT:
            continue
        try:
            jws, claims = parse(value.data.decode("utf-8"))
        except (TrustError, UnicodeDecodeError):
            continue  # another certificate may be the one
        if not same_handle(claims.sub, subject):
            continue
        if best is None or (claims.iat or 0) > (best[1].iat or 0):
            best = (jws, claims, f"{value.index}:{ref.handle}")
    return best


async def build_chain(
    jws: JsonWebSignature,
    claims: HandleClaims,
    where: str,
    fetch: Fetch,
    max_length: int = DEFAULT_MAX_CHAIN_LENGTH,
) -> list[Link]:
    """The links from the signed object ``jws`` (found at ``where``) to a self-signed
    certificate, that certificate last."""
    links: list[Link] = []
    seen: set[str] = set()
    pending: list[str] = []
    certificates = 0
    while True:
        if claims.self_issued:
            links.append(Link(jws, claims, where, claims.public_key, claims.perms))
            return links
        if not claims.iss:
            raise ChainError(f"{where} names no issuer")
        if not pending:
            pending = list(claims.chain or ()) or [ValueRef.parse(claims.iss).handle]
        step = pending.pop(0)
        key = handle_key(step)
        if key in seen:
            raise ChainError(f"the certificate chain loops: {step} comes back")
        seen.add(key)
        certificates += 1
        if certificates > max_length:
            raise ChainError(f"the certificate chain is longer than {max_length} certificates")
        found = await _lookup(fetch, step, claims.iss)
        if found is None:
            raise ChainError(f"no certificate about {claims.iss} at {step}")
        parent_jws, parent_claims, parent_where = found
        if not same_handle(parent_claims.sub, claims.iss):
            raise ChainError(
                f"the chain is broken: {parent_where} is about {parent_claims.sub}, "
                f"not {claims.iss}"
            )
        links.append(
            Link(
                jws,
                claims,
                where,
                parent_claims.public_key,
                parent_claims.perms,
                parent_where,
            )
        )
        jws, claims, where = parent_jws, parent_claims, parent_where
