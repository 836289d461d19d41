"""Query operations: resolution, site information, the secret-key check of op 201, listings.

Resolution (spec §1.11) answers from the store for handles served here, with a referral
(:class:`~idnode.server.placement.Referral`) or a 301 otherwise, or through the resolver for
requests with REC. Values lacking PUBLIC_READ, and attribute values governed by data
permissions (:mod:`idnode.industry.grants`), are filtered or challenged for. Listing handles
and derived prefixes needs LIST_HANDLES on the prefix handle (or server administration).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from idnode.errors import (
    AuthenticationRequired,
    HandleNotFound,
    InsufficientPermissions,
    InvalidAdmin,
    InvalidHandle,
    RecursionCountTooHigh,
    ServerNotResponsible,
    ValuesNotFound,
)
from idnode.industry.grants import GrantPolicy, RecordGrants
from idnode.protocol import auth
from idnode.protocol.bodies import (
    Body,
    HandleListBody,
    HandleRequest,
    ResolutionRequest,
    ResolutionResponse,
    SiteInfoBody,
    VerifyChallengeRequest,
    VerifyChallengeResponse,
)
from idnode.protocol.codes import AdminPermission, OpFlag
from idnode.protocol.message import Message
from idnode.protocol.values import HandleValue
from idnode.resolver import Resolver
from idnode.server.authz import Authorizer, Identity
from idnode.server.metrics import Metrics
from idnode.server.placement import NodeIdentity, Placement, Referral
from idnode.server.respcache import NOTE, ResponseCache
from idnode.store.base import HandleStore, handle_key, prefix_of

__all__ = ["MAX_RECURSION", "ReadHandlers", "read_record"]

#: Requests that already went through this many recursive nodes are refused (spec §1.5).
MAX_RECURSION = 8


async def read_record(
    store: HandleStore, metrics: Metrics | None, handle: str
) -> tuple[HandleValue, ...]:
    """The values of ``handle`` (HandleNotFound when absent), the store call timed in
    ``metrics`` when given."""
    if metrics is None:
        values = await store.get_handle(handle)
    else:
        started = time.perf_counter()
        values = await store.get_handle(handle)
        metrics.store_call("get_handle", time.perf_counter() - started)
    if values is None:
        raise HandleNotFound("")
    return values


class ReadHandlers:
    """Handlers of the query ops. ``node``, ``respcache`` and ``metrics`` are called per
    request: the node sets or replaces them after the dispatcher is built."""

    def __init__(
        self,
        store: HandleStore,
        placement: Placement,
        authorizer: Authorizer,
        grants: GrantPolicy,
        resolver: Resolver | None,
        *,
        node: Callable[[], NodeIdentity],
        respcache: Callable[[], ResponseCache | None],
        metrics: Callable[[], Metrics | None],
    ) -> None:
        self._store = store
        self._placement = placement
        self._authorizer = authorizer
        self._grants = grants
        self._resolver = resolver
        self._node = node
        self._respcache = respcache
        self._metrics = metrics

    async def _record(self, handle: str) -> tuple[HandleValue, ...]:
        return await read_record(self._store, self._metrics(), handle)

    async def resolve(self, request: Message, identity: Identity | None) -> Body:
        body = request.body
        assert isinstance(body, ResolutionRequest)
        if not body.handle:
            raise InvalidHandle("empty handle")
        placement = self._placement
        if not placement.owns(body.handle) or not await placement.serves(body.handle):
            if self._resolver is None or not request.has(OpFlag.REC):
                placement.require_share(body.handle)
                sites = () if request.has(OpFlag.DNRF) else await placement.delegation(body.handle)
                if sites:
                    raise Referral(body.handle, sites)
                raise ServerNotResponsible()
            # A recursive node answers for the rest of the hierarchy (spec §4); the resolver
            # asks with PO and never with REC, so nodes cannot loop through each other.
            if request.recursion_count >= MAX_RECURSION:
                raise RecursionCountTooHigh()
            values = await self._resolver.resolve(body.handle, body.types, body.indexes)
            return ResolutionResponse(body.handle, values)
        note = NOTE.get()
        respcache = self._respcache()
        if note is not None and respcache is not None:
            respcache.begin(note, body.handle)  # before the read (see respcache)
        record = await self._record(body.handle)
        values = record
        if body.indexes or body.types:
            values = tuple(
                v
                for v in values
                if v.index in body.indexes or any(v.type_matches(t) for t in body.types)
            )
        grants = await self._grants.for_record(record)
        governed = [v for v in values if grants.governs(v)]
        if governed:
            values = await self._granted(request, identity, grants, values)
        if request.has(OpFlag.PO):
            values = tuple(v for v in values if v.public_read or grants.governs(v))
        if not values:
            raise ValuesNotFound("")
        restricted = [v for v in values if not v.public_read and not grants.governs(v)]
        if restricted:
            if any(not v.admin_read for v in restricted):
                raise InsufficientPermissions("a requested value is not readable")
            if identity is None:
                raise AuthenticationRequired()
            await self._authorizer.require(identity, record, AdminPermission.READ_VALUE)
        if note is not None and identity is None and not grants.instance:
            note.cacheable = True  # what any anonymous requester sees, from this record alone
        return ResolutionResponse(body.handle, values)

    @staticmethod
    async def _granted(
        request: Message,
        identity: Identity | None,
        grants: RecordGrants,
        values: tuple[HandleValue, ...],
    ) -> tuple[HandleValue, ...]:
        """``values`` without the governed ones the caller may not view (data permissions).

        With PO, or for an identity, the hidden values are filtered out. An anonymous request
        without PO for governed values an identity might see is challenged first (spec §1.11),
        as for values with ADMIN_READ only."""
        viewer = None if request.has(OpFlag.PO) else identity
        shown = []
        for v in values:
            if not grants.governs(v) or await grants.can_view(viewer, v):
                shown.append(v)
            elif viewer is None and not request.has(OpFlag.PO):
                raise AuthenticationRequired()
        return tuple(shown)

    async def site_info(self, request: Message, identity: Identity | None) -> Body:
        return SiteInfoBody(self._node().site_data)

    async def verify_challenge(self, request: Message, identity: Identity | None) -> Body:
        """Op 201: check a secret-key answer for an identity held here (spec §3.1 step 4)."""
        body = request.body
        assert isinstance(body, VerifyChallengeRequest)
        await self._placement.require_responsible(body.handle)
        values = await self._record(body.handle)
        value = next((v for v in values if v.index == body.index), None)
        if value is None or value.type.upper() != "HS_SECKEY":
            raise ValuesNotFound(f"no HS_SECKEY at {body.index}:{body.handle}")
        ok = auth.verify_secret_key_answer(
            value.data, body.nonce, body.digest.digest, body.signed_response
        )
        return VerifyChallengeResponse(ok)

    async def _prefix_request(self, request: Message, identity: Identity) -> str:
        """For ops on ``0.NA/<prefix>``: check responsibility and LIST_HANDLES; the prefix."""
        body = request.body
        assert isinstance(body, HandleRequest)
        handle = body.handle
        if handle_key(prefix_of(handle)) != "0.NA" or "/" not in handle:
            raise InvalidHandle(f"expected a prefix handle 0.NA/<prefix>, got {handle!r}")
        prefix = handle.split("/", 1)[1]
        if not await self._store.is_homed(prefix):
            raise ServerNotResponsible()
        record = await self._store.get_handle(handle) or ()
        await self._authorizer.require(identity, record, AdminPermission.LIST_HANDLES)
        return prefix

    async def list_handles(self, request: Message, identity: Identity | None) -> Body:
        assert identity is not None
        prefix = await self._prefix_request(request, identity)
        return HandleListBody(tuple(await self._store.list_handles(prefix)))

    async def list_derived(self, request: Message, identity: Identity | None) -> Body:
        assert identity is not None
        body = request.body
        assert isinstance(body, HandleRequest)
        if body.handle in ("", "/"):
            # Blank handle: the reference's OC_LIST_HOMED_NAS proper, every prefix homed
            # here as 0.NA/<prefix>, for server administrators (REST GET /api/prefixes).
            if not await self._authorizer.is_server_admin(identity):
                raise InvalidAdmin(f"{identity} is not a server administrator")
            homed = await self._store.homed_prefixes()
            return HandleListBody(tuple(f"0.NA/{p}" for p in homed))
        prefix = await self._prefix_request(request, identity)
        return HandleListBody(tuple(await self._store.list_derived_prefixes(prefix)))
