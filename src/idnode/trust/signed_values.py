"""Which values of a record an HS_SIGNATURE's digests vouch for (the reference's
``HandleVerifier.verifyValues``), value by value, so that a partly visible record still
verifies:

* ``verified``: present and equal to what was signed;
* ``tampered``: present with the index of a signed value but different (changed);
* ``missing``: signed but not present (e.g. not public, or not asked for): not an error;
* ``unsigned``: present but not signed (e.g. added after signing).

Which values need a signature at all: every public value but HS_SIGNATURE values (and, on
``0.NA/0.NA``, the legacy ``10320/sig.*`` values), as the reference decides.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from idnode.protocol.values import HandleValue
from idnode.trust.claims import DigestedValues
from idnode.trust.digests import value_digest
from idnode.trust.names import same_handle

__all__ = [
    "HS_CERT",
    "HS_SIGNATURE",
    "ValuesCheck",
    "check_values",
    "needs_signature",
    "signature_values",
]

HS_SIGNATURE = "HS_SIGNATURE"
HS_CERT = "HS_CERT"
_LEGACY_ROOT_TYPES = ("10320/SIG.SIG", "10320/SIG.DIGEST")


def needs_signature(handle: str, value: HandleValue) -> bool:
    vtype = value.type.upper()
    if vtype == HS_SIGNATURE or not value.public_read:
        return False
    return not (same_handle(handle, "0.NA/0.NA") and vtype in _LEGACY_ROOT_TYPES)


@dataclass
class ValuesCheck:
    verified: list[int] = field(default_factory=list)
    tampered: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    unsigned: list[int] = field(default_factory=list)


def check_values(
    handle: str, values: Sequence[HandleValue], digests: DigestedValues
) -> ValuesCheck:
    """Compare the record's values with ``digests`` (TrustError for an unknown digest
    algorithm)."""
    claimed = {d.index: d.digest for d in digests.digests}
    check = ValuesCheck()
    present: set[int] = set()
    for value in values:
        present.add(value.index)
        if value.index not in claimed:
            if needs_signature(handle, value):
                check.unsigned.append(value.index)
        elif value_digest(value, digests.alg) == claimed[value.index]:
            check.verified.append(value.index)
        else:
            check.tampered.append(value.index)
    check.missing = sorted(i for i in claimed if i not in present)
    return check


def signature_values(values: Iterable[HandleValue]) -> list[HandleValue]:
    return [v for v in values if v.type.upper() == HS_SIGNATURE]
