"""A small trust hierarchy in memory, made with :mod:`idnode.trust.signing`: a root (RSA)
certifies a secondary node (EC P-256) for the prefixes derived from 88.118, which certifies an
enterprise (SM2) for the identifiers under 88.118.8."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from idnode.crypto import sm2
from idnode.protocol.values import HandleValue
from idnode.trust import Permission, TrustPolicy, issue_certificate, sign_values
from idnode.trust.chain import Fetch
from idnode.trust.keys import public_key_of
from idnode.trust.signing import certificate_value, signature_value

ROOT = "0.NA/TRUST"
ROOT_ID = f"301:{ROOT}"
SECONDARY_ID = "301:0.NA/88.118"
ENTERPRISE_ID = "301:0.NA/88.118.8"
PRODUCT = "88.118.8/PV-2026-000123"


def new_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


ROOT_KEY = new_rsa()
SECONDARY_KEY = ec.generate_private_key(ec.SECP256R1())
ENTERPRISE_KEY = sm2.generate_private_key()


def handle_of(identity: str) -> str:
    return identity.partition(":")[2]


@dataclass
class Hierarchy:
    now: int = field(default_factory=lambda: int(time.time()))
    records: dict[str, list[HandleValue]] = field(default_factory=dict)

    def put(self, handle: str, value: HandleValue) -> None:
        values = [v for v in self.records.get(handle, []) if v.index != value.index]
        self.records[handle] = sorted([*values, value], key=lambda v: v.index)

    def certify(
        self,
        subject: str,
        subject_key: object,
        perms: Sequence[Permission],
        issuer: str,
        issuer_key: object,
        *,
        index: int = 400,
        **kwargs: Any,
    ) -> None:
        jws = issue_certificate(
            subject, public_key_of(subject_key), perms, issuer, issuer_key, now=self.now, **kwargs
        )
        self.put(handle_of(subject), certificate_value(index, jws))

    def sign(self, handle: str, signer: str, key: object, index: int = 400, **kwargs: Any) -> None:
        values = self.records.get(handle, [])
        jws = sign_values(handle, values, signer, key, now=self.now, **kwargs)
        self.put(handle, signature_value(index, jws))

    def fetch(self) -> Fetch:
        async def fetch(handle: str) -> Sequence[HandleValue]:
            from idnode.errors import HandleNotFound

            if handle not in self.records:
                raise HandleNotFound(f"handle not found: {handle}")
            return self.records[handle]

        return fetch


def policy(max_chain_length: int = 50) -> TrustPolicy:
    return TrustPolicy(ROOT, (ROOT_KEY.public_key(),), max_chain_length)


def standard() -> Hierarchy:
    h = Hierarchy()
    h.certify(ROOT_ID, ROOT_KEY, [Permission("everything")], ROOT_ID, ROOT_KEY)
    h.certify(
        SECONDARY_ID,
        SECONDARY_KEY,
        [Permission("derivedPrefixes", "0.NA/88.118")],
        ROOT_ID,
        ROOT_KEY,
    )
    h.certify(
        ENTERPRISE_ID,
        ENTERPRISE_KEY,
        [Permission("handlesUnderThisPrefix", "0.NA/88.118.8")],
        SECONDARY_ID,
        SECONDARY_KEY,
    )
    for value in (
        HandleValue(1, "URL", b"https://pv.example.com/modules/000123"),
        HandleValue(2, "EMAIL", b"quality@pv.example.com"),
        HandleValue(2001, "power", b"410W"),
        HandleValue(2002, "batch", b"B-7", permissions=0x0C),  # not public
    ):
        h.put(PRODUCT, value)
    h.sign(PRODUCT, ENTERPRISE_ID, ENTERPRISE_KEY)
    return h
