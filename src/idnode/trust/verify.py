"""Verifying a handle record: its HS_SIGNATURE values, their certificate chains, the trust root
(the reference's ``HandleRecordTrustVerifier`` and ``ChainVerifier``).

For each HS_SIGNATURE value of the record:

1. its JWS is parsed; its ``sub`` must be the record's handle;
2. the chain is built (:mod:`idnode.trust.chain`); the last certificate must be self-signed,
   about an identity of the configured trust root handle, with one of the configured root keys;
3. every link (the signature, then each certificate up to the root's) must verify with its
   issuer's key, be within its validity (``nbf`` ≤ now ≤ ``exp``), and its issuer's permissions
   must cover the record's handle (:mod:`idnode.trust.perms`);
4. the signed digests are compared with the values (:mod:`idnode.trust.signed_values`).

The record is **verified** when it has a signature, every signature passes 1-3, no value is
tampered with and every value that needs a signature is vouched for by a passing signature.
Values signed but not visible (``missing``) are listed and do not fail the record (unlike the
reference, which refuses them): a partly visible record still verifies.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from idnode.protocol.values import HandleValue
from idnode.trust.chain import DEFAULT_MAX_CHAIN_LENGTH, ChainError, Fetch, Link, build_chain, parse
from idnode.trust.errors import TrustError
from idnode.trust.jwk import from_jwk, same_key
from idnode.trust.names import ValueRef, same_handle
from idnode.trust.perms import covers
from idnode.trust.signed_values import check_values, needs_signature, signature_values

__all__ = [
    "LinkReport",
    "RecordReport",
    "SignatureReport",
    "TrustPolicy",
    "verify_handle",
    "verify_record",
]


@dataclass(frozen=True)
class TrustPolicy:
    """What a verifier trusts: the root handle, its keys, and how long a chain may be."""

    root_handle: str
    root_keys: tuple[object, ...]
    max_chain_length: int = DEFAULT_MAX_CHAIN_LENGTH

    def __post_init__(self) -> None:
        if not self.root_handle:
            raise ValueError("a trust root handle is needed")
        if not self.root_keys:
            raise ValueError("at least one trust root key is needed")
        if self.max_chain_length < 1:
            raise ValueError("max_chain_length must be at least 1")


def _when(seconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class LinkReport:
    """One signed object of a chain (the signature first, the root certificate last)."""

    where: str
    iss: str | None
    sub: str | None
    signature_verifies: bool
    date_in_range: bool
    authorized: bool
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "iss": self.iss,
            "sub": self.sub,
            "signatureVerifies": self.signature_verifies,
            "dateInRange": self.date_in_range,
            "authorized": self.authorized,
            "problems": self.problems,
        }


@dataclass
class SignatureReport:
    """One HS_SIGNATURE value of the record."""

    index: int
    iss: str | None = None
    sub: str | None = None
    verified: list[int] = field(default_factory=list)
    tampered: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    unsigned: list[int] = field(default_factory=list)
    chain: list[LinkReport] = field(default_factory=list)
    root_trusted: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def trusted(self) -> bool:
        """The signature, its chain and its root are good (its values are judged apart)."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "iss": self.iss,
            "sub": self.sub,
            "trusted": self.trusted,
            "rootTrusted": self.root_trusted,
            "verifiedValues": self.verified,
            "tamperedValues": self.tampered,
            "missingValues": self.missing,
            "unsignedValues": self.unsigned,
            "chain": [link.to_json() for link in self.chain],
            "problems": self.problems,
        }


@dataclass
class RecordReport:
    handle: str
    signatures: list[SignatureReport] = field(default_factory=list)
    #: Values vouched for by a trusted signature.
    signed: list[int] = field(default_factory=list)
    #: Values that differ from what a signature signed.
    tampered: list[int] = field(default_factory=list)
    #: Values that need a signature and have no trusted one (e.g. added later).
    unsigned: list[int] = field(default_factory=list)
    #: Values a trusted signature signed that are not in the record as read.
    missing: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def status(self) -> str:
        if not self.signatures:
            return "unsigned"
        return "verified" if self.ok else "failed"

    def to_json(self) -> dict[str, Any]:
        return {
            "handle": self.handle,
            "status": self.status,
            "ok": self.ok,
            "signedValues": self.signed,
            "tamperedValues": self.tampered,
            "unsignedValues": self.unsigned,
            "missingValues": self.missing,
            "problems": self.problems,
            "signatures": [s.to_json() for s in self.signatures],
        }


def _check_link(link: Link, handle: str, now: float, report: LinkReport, first: bool) -> None:
    claims = link.claims
    what = f"the {'signature' if first else 'certificate'} at {link.where}"
    if link.issuer_key is None:
        report.problems.append(f"no public key for {claims.iss} to check {what} with")
    else:
        try:
            key = from_jwk(link.issuer_key)
        except TrustError as exc:
            report.problems.append(f"the key of {claims.iss} is unusable: {exc}")
        else:
            report.signature_verifies = link.jws.verifies(key)
            if not report.signature_verifies:
                report.problems.append(
                    f"{what} does not verify with the key certified for {claims.iss}"
                )
    report.date_in_range = claims.date_in_range(now)
    if not report.date_in_range:
        if claims.exp is not None and now > claims.exp:
            report.problems.append(f"{what} expired at {_when(claims.exp)}")
        else:
            assert claims.nbf is not None
            report.problems.append(f"{what} is not valid before {_when(claims.nbf)}")
    report.authorized = covers(link.issuer_perms, handle)
    if not report.authorized:
        perms = ", ".join(str(p) for p in link.issuer_perms or ()) or "none"
        report.problems.append(
            f"{claims.iss} is not permitted to sign for {handle} (permissions: {perms})"
        )


def _root_problem(link: Link, policy: TrustPolicy) -> str | None:
    sub = link.claims.sub or ""
    if not same_handle(ValueRef.parse(sub).handle, policy.root_handle):
        return f"the chain ends at {sub}, not at the trust root {policy.root_handle}"
    try:
        key = from_jwk(link.claims.public_key)
    except TrustError as exc:
        return f"the root certificate's key is unusable: {exc}"
    if not any(same_key(key, root) for root in policy.root_keys):
        return f"the root certificate of {sub} has a key that is not a trusted root key"
    return None


async def _verify_signature(
    handle: str,
    value: HandleValue,
    values: Sequence[HandleValue],
    fetch: Fetch,
    policy: TrustPolicy,
    now: float,
) -> SignatureReport:
    report = SignatureReport(value.index)
    where = f"{value.index}:{handle}"
    try:
        jws, claims = parse(value.data.decode("utf-8"))
    except (TrustError, UnicodeDecodeError) as exc:
        report.problems.append(f"HS_SIGNATURE {value.index} cannot be read: {exc}")
        return report
    report.iss, report.sub = claims.iss, claims.sub
    if not same_handle(claims.sub, handle):
        report.problems.append(f"HS_SIGNATURE {value.index} is about {claims.sub}, not {handle}")
    if claims.digests is None:
        report.problems.append(f"HS_SIGNATURE {value.index} has no value digests")
    else:
        try:
            check = check_values(handle, values, claims.digests)
        except TrustError as exc:
            report.problems.append(f"HS_SIGNATURE {value.index}: {exc}")
        else:
            report.verified, report.tampered = check.verified, check.tampered
            report.missing, report.unsigned = check.missing, check.unsigned
    try:
        links = await build_chain(jws, claims, where, fetch, policy.max_chain_length)
    except ChainError as exc:
        report.problems.append(str(exc))
        return report
    for position, link in enumerate(links):
        link_report = LinkReport(link.where, link.claims.iss, link.claims.sub, False, False, False)
        _check_link(link, handle, now, link_report, position == 0)
        report.chain.append(link_report)
        report.problems.extend(link_report.problems)
    root_problem = _root_problem(links[-1], policy)
    report.root_trusted = root_problem is None
    if root_problem is not None:
        report.problems.append(root_problem)
    return report


#: HS_SIGNATURE values of one record that are checked (each may cost a chain of lookups).
MAX_SIGNATURES = 16


def _memoized(fetch: Fetch) -> Fetch:
    """``fetch`` reading each handle once (signatures of a record share their chains)."""
    seen: dict[str, Sequence[HandleValue]] = {}

    async def once(handle: str) -> Sequence[HandleValue]:
        if handle not in seen:
            seen[handle] = await fetch(handle)
        return seen[handle]

    return once


async def verify_record(
    handle: str,
    values: Sequence[HandleValue],
    fetch: Fetch,
    policy: TrustPolicy,
    now: float | None = None,
) -> RecordReport:
    """Verify ``values``, the record of ``handle`` as read (all or part of it)."""
    now = time.time() if now is None else now
    report = RecordReport(handle)
    by_index = {v.index: v for v in values}
    fetch = _memoized(fetch)
    signatures = signature_values(values)
    if len(signatures) > MAX_SIGNATURES:
        report.problems.append(
            f"{handle} has {len(signatures)} HS_SIGNATURE values; the first {MAX_SIGNATURES} "
            "are checked"
        )
    for value in signatures[:MAX_SIGNATURES]:
        report.signatures.append(await _verify_signature(handle, value, values, fetch, policy, now))
    if not report.signatures:
        report.problems.append(f"{handle} has no HS_SIGNATURE value")
    signed: set[int] = set()
    missing: set[int] = set()
    tampered: set[int] = set()
    for sig in report.signatures:
        tampered.update(sig.tampered)
        if sig.trusted:
            signed.update(sig.verified)
            missing.update(sig.missing)
        else:
            report.problems.extend(f"signature {sig.index}: {p}" for p in sig.problems)
    for index in sorted(tampered):
        report.problems.append(
            f"value {index} ({by_index[index].type}) differs from what was signed (tampered)"
        )
    needing = sorted(v.index for v in values if needs_signature(handle, v))
    report.unsigned = [i for i in needing if i not in signed and i not in tampered]
    if any(sig.trusted for sig in report.signatures):
        for index in report.unsigned:
            report.problems.append(
                f"value {index} ({by_index[index].type}) is not covered by a trusted signature"
            )
    report.signed = sorted(signed - tampered)
    report.tampered = sorted(tampered)
    report.missing = sorted(missing)
    return report


async def verify_handle(
    handle: str, fetch: Fetch, policy: TrustPolicy, now: float | None = None
) -> RecordReport:
    """Read ``handle`` with ``fetch`` and verify it."""
    return await verify_record(handle, await fetch(handle), fetch, policy, now)
