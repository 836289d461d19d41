"""The one exception of :mod:`idnode.trust`."""

from __future__ import annotations

__all__ = ["TrustError"]


class TrustError(ValueError):
    """A signature, certificate, key or chain that cannot be used; the message says why."""
