"""Reading records for verification: through a recursive resolver, a client, or a node's
store (then its resolver for what it does not hold). Each gives a
:data:`~idnode.trust.chain.Fetch`; a handle that exists with no public value reads as empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from idnode.errors import ValuesNotFound
from idnode.protocol.values import HandleValue
from idnode.trust.chain import Fetch
from idnode.trust.verify import RecordReport, TrustPolicy, verify_handle

__all__ = ["client_fetch", "resolver_fetch", "verify_with_client", "verify_with_resolver"]


class _Resolver(Protocol):
    async def resolve(self, handle: str) -> tuple[HandleValue, ...]: ...


class _Client(Protocol):
    async def resolve(
        self,
        handle: str,
        *,
        types: Sequence[str] = (),
        indexes: Sequence[int] = (),
        authoritative: bool = False,
        public_only: bool | None = None,
    ) -> tuple[HandleValue, ...]: ...


def resolver_fetch(resolver: _Resolver) -> Fetch:
    """Public values through a recursive resolver (:class:`idnode.resolver.Resolver`)."""

    async def fetch(handle: str) -> Sequence[HandleValue]:
        try:
            return await resolver.resolve(handle)
        except ValuesNotFound:
            return ()

    return fetch


def client_fetch(client: _Client) -> Fetch:
    """Public values from one server (:class:`idnode.client.HandleClient`); a recursive node
    resolves the handles it does not serve."""

    async def fetch(handle: str) -> Sequence[HandleValue]:
        try:
            return await client.resolve(handle, public_only=True)
        except ValuesNotFound:
            return ()

    return fetch


async def verify_with_resolver(
    handle: str, resolver: _Resolver, policy: TrustPolicy, now: float | None = None
) -> RecordReport:
    """Resolve ``handle`` through ``resolver`` and verify it, its chain read the same way."""
    return await verify_handle(handle, resolver_fetch(resolver), policy, now)


async def verify_with_client(
    handle: str, client: _Client, policy: TrustPolicy, now: float | None = None
) -> RecordReport:
    """Resolve ``handle`` from ``client``'s server and verify it, its chain read the same
    way."""
    return await verify_handle(handle, client_fetch(client), policy, now)
