"""Whether a certificate's permissions cover a handle (the reference's
``verifyPermissionsAreAuthorizedOverHandle``).

==========================  ==================================================================
perm                        covers handle H when
==========================  ==================================================================
``everything``              always
``thisHandle`` P            H is P, or H is an identifier under P's prefix
``derivedPrefixes`` P       H, or H's prefix handle, is a prefix derived from P: with P
                            ``0.NA/88.118``, ``0.NA/88.118.8`` and ``88.118.8/x`` (not
                            ``88.118/x``)
``handlesUnderThisPrefix``  H is an identifier under P's prefix: with P ``0.NA/88.118.8``,
P                           ``88.118.8/x``
==========================  ==================================================================

Any other permission name covers nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from idnode.trust.claims import (
    DERIVED_PREFIXES,
    EVERYTHING,
    HANDLES_UNDER_THIS_PREFIX,
    THIS_HANDLE,
    Permission,
)
from idnode.trust.names import is_derived_from, is_under_prefix, same_handle, zero_na_handle

__all__ = ["covers"]


def _covers_one(p: Permission, handle: str) -> bool:
    if p.perm == EVERYTHING:
        return True
    if p.handle is None:
        return False
    if p.perm == THIS_HANDLE:
        return same_handle(handle, p.handle) or is_under_prefix(handle, p.handle)
    if p.perm == DERIVED_PREFIXES:
        return is_derived_from(handle, p.handle) or is_derived_from(
            zero_na_handle(handle), p.handle
        )
    if p.perm == HANDLES_UNDER_THIS_PREFIX:
        return is_under_prefix(handle, p.handle)
    return False


def covers(perms: Iterable[Permission] | None, handle: str) -> bool:
    """Whether any of ``perms`` covers ``handle``."""
    return any(_covers_one(p, handle) for p in perms or ())
