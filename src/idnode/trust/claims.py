"""The claims of HS_CERT and HS_SIGNATURE payloads (the reference's ``HandleClaimsSet``).

A payload is one JSON object::

    {"perms": [{"handle": "0.NA/88.118", "perm": "derivedPrefixes"}],   HS_CERT
     "digests": {"alg": "SHA-256",                                      HS_SIGNATURE
                 "digests": [{"index": 1, "digest": "<base64>"}, ...]},
     "chain": ["301:0.NA/88.118", ...],          optional: where the issuer's certificates are
     "publicKey": {"kty": "RSA", ...},           HS_CERT: the subject's key (JWK)
     "content": "...",                           optional signed text
     "iss": "301:0.NA/88.118",                   issuer identity, index:handle
     "sub": "301:0.NA/88.118.8",                 HS_CERT: subject identity; HS_SIGNATURE: the
                                                 signed handle
     "exp": 1767225600, "nbf": 1735689600, "iat": 1735689600}     seconds since the epoch

Absent members are left out when writing (as the reference's Gson does), and members this
module does not know (e.g. ``org``, ``sn``, ``exts``, ``ca``) are kept in :attr:`extra` and
written back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from idnode.trust.errors import TrustError

__all__ = [
    "DERIVED_PREFIXES",
    "EVERYTHING",
    "HANDLES_UNDER_THIS_PREFIX",
    "PERMISSIONS",
    "THIS_HANDLE",
    "DigestedValues",
    "HandleClaims",
    "Permission",
    "ValueDigest",
]

EVERYTHING = "everything"
THIS_HANDLE = "thisHandle"
DERIVED_PREFIXES = "derivedPrefixes"
HANDLES_UNDER_THIS_PREFIX = "handlesUnderThisPrefix"
#: The permissions a certificate can grant (see :mod:`idnode.trust.perms`).
PERMISSIONS = (EVERYTHING, THIS_HANDLE, DERIVED_PREFIXES, HANDLES_UNDER_THIS_PREFIX)

_KNOWN = ("perms", "digests", "chain", "publicKey", "content", "iss", "sub", "exp", "nbf", "iat")


@dataclass(frozen=True)
class Permission:
    """``perm`` over ``handle`` (generally a prefix handle, ``0.NA/...``)."""

    perm: str
    handle: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {} if self.handle is None else {"handle": self.handle}
        out["perm"] = self.perm
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Permission:
        if not isinstance(obj, dict) or not isinstance(obj.get("perm"), str):
            raise TrustError('a permission is {"handle": ..., "perm": ...}')
        handle = obj.get("handle")
        if handle is not None and not isinstance(handle, str):
            raise TrustError("a permission's handle is a string")
        return cls(obj["perm"], handle)

    def __str__(self) -> str:
        return self.perm if self.handle is None else f"{self.perm}:{self.handle}"


@dataclass(frozen=True)
class ValueDigest:
    index: int
    digest: str


@dataclass(frozen=True)
class DigestedValues:
    """The digests of the signed values, by index, made with ``alg`` (a Java digest name,
    e.g. ``SHA-256``)."""

    alg: str
    digests: tuple[ValueDigest, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "alg": self.alg,
            "digests": [{"index": d.index, "digest": d.digest} for d in self.digests],
        }

    @classmethod
    def from_json(cls, obj: Any) -> DigestedValues:
        if not isinstance(obj, dict) or not isinstance(obj.get("alg"), str):
            raise TrustError('digests: {"alg": ..., "digests": [...]} expected')
        items = obj.get("digests") or []
        if not isinstance(items, list):
            raise TrustError("digests.digests is a list")
        out = []
        for item in items:
            if (
                not isinstance(item, dict)
                or not _is_int(item.get("index"))
                or not isinstance(item.get("digest"), str)
            ):
                raise TrustError('a digest is {"index": N, "digest": "..."}')
            out.append(ValueDigest(item["index"], item["digest"]))
        return cls(obj["alg"], tuple(out))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _opt_int(obj: dict[str, Any], name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not _is_int(value):
        raise TrustError(f"claim {name} must be a number of seconds")
    return int(value)


def _opt_str(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise TrustError(f"claim {name} must be a string")
    return value


@dataclass(frozen=True)
class HandleClaims:
    iss: str | None = None
    sub: str | None = None
    iat: int | None = None
    nbf: int | None = None
    exp: int | None = None
    perms: tuple[Permission, ...] | None = None
    digests: DigestedValues | None = None
    chain: tuple[str, ...] | None = None
    public_key: dict[str, Any] | None = None
    content: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def self_issued(self) -> bool:
        return self.sub is not None and self.sub == self.iss

    def date_in_range(self, now: float) -> bool:
        """Not expired and not before ``nbf`` (the reference's ``isDateInRange``)."""
        if self.exp is not None and now > self.exp:
            return False
        return not (self.nbf is not None and now < self.nbf)

    def to_json(self) -> dict[str, Any]:
        """Members in the reference's order, absent ones left out."""
        out: dict[str, Any] = {}
        if self.perms is not None:
            out["perms"] = [p.to_json() for p in self.perms]
        if self.digests is not None:
            out["digests"] = self.digests.to_json()
        if self.chain is not None:
            out["chain"] = list(self.chain)
        if self.public_key is not None:
            out["publicKey"] = self.public_key
        if self.content is not None:
            out["content"] = self.content
        for name in ("iss", "sub", "exp", "nbf", "iat"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update({k: v for k, v in self.extra.items() if k not in out})
        return out

    def payload(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, obj: Any) -> HandleClaims:
        if not isinstance(obj, dict):
            raise TrustError("claims are a JSON object")
        perms = obj.get("perms")
        if perms is not None and not isinstance(perms, list):
            raise TrustError("claim perms is a list")
        chain = obj.get("chain")
        if chain is not None and (
            not isinstance(chain, list) or not all(isinstance(c, str) for c in chain)
        ):
            raise TrustError("claim chain is a list of strings")
        public_key = obj.get("publicKey")
        if public_key is not None and not isinstance(public_key, dict):
            raise TrustError("claim publicKey is a JWK object")
        digests = obj.get("digests")
        return cls(
            iss=_opt_str(obj, "iss"),
            sub=_opt_str(obj, "sub"),
            iat=_opt_int(obj, "iat"),
            nbf=_opt_int(obj, "nbf"),
            exp=_opt_int(obj, "exp"),
            perms=None if perms is None else tuple(Permission.from_json(p) for p in perms),
            digests=None if digests is None else DigestedValues.from_json(digests),
            chain=None if chain is None else tuple(chain),
            public_key=public_key,
            content=_opt_str(obj, "content"),
            extra={k: v for k, v in obj.items() if k not in _KNOWN},
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> HandleClaims:
        try:
            obj = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise TrustError("the JWS payload is not JSON") from exc
        return cls.from_json(obj)
