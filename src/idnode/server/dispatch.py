"""The dispatcher: request :class:`Message` in, response messages out.

It knows the store, the authorizer and the pending challenges, not sockets: the UDP, TCP
(and later HTTP) adapters all call :meth:`Dispatcher.dispatch`.

Theory of operation
-------------------
1. A request for a handle whose prefix is not homed here gets 301 (spec §4). In a site of
   several servers, so does one for a handle that hashes to another server of the site
   (spec §2.2), and a read-only server (a mirror) answers every administrative request 301;
   both are checked first, before any challenge, as the reference server does.
2. Resolution and get-site-info need no identity, unless a resolution without the PO flag
   would return values lacking PUBLIC_READ (spec §1.11): then, as for every administrative
   operation, the first answer is a 402 challenge. The challenge is remembered under a fresh
   session id (:mod:`idnode.server.challenges`).
3. The client answers with op 200 echoing that session id. The answer is checked against the
   identity's HS_SECKEY or HS_PUBKEY value held here; then the original request runs with that
   identity, and its response goes back with the original opcode, the answer's request id
   and session id 0 (spec §0.6).
4. Permissions come from HS_ADMIN values and HS_VLIST groups (:mod:`idnode.server.authz`).
5. Data permissions (:mod:`idnode.industry.grants`): resolution shows an instance's attribute
   values to whom its grants admit (filtered out for others, as PUBLIC_READ filters); an
   identity that is not an administrator of the record may still add, modify or remove
   attribute values (index ≥ 2000) it has an edit grant for, and nothing else.
6. Every write of an identifier computes the record it will have and passes it to the
   :class:`~idnode.industry.enforce.TemplateGuard` (metadata templates, template records),
   which refuses it with per-field errors or plans the write; the store call then runs in a
   :func:`~idnode.store.writectx.write_context` carrying the identity, the client address
   (:data:`~idnode.server.origin.PEER`) and the identifier's index entries.

Every :class:`~idnode.errors.HandleError` becomes an error response with its code; any other
exception is a bug: it is logged and answered with RC_ERROR.

Layout
------
The dispatcher keeps the entry points, the handler table, challenges and the error plumbing;
the work is in collaborators with one job each, built here and handed only what they use:
:class:`~idnode.server.placement.Placement` (which server answers for a handle: 301/303),
:class:`~idnode.server.authentication.Authenticator` (challenge answers, Basic secrets),
:class:`~idnode.server.handlers_read.ReadHandlers` (resolution, site info, op 201, listings),
:class:`~idnode.server.handlers_admin.AdminHandlers` (writes, batch registration, homing) and
:class:`~idnode.server.handlers_replication.ReplicationHandlers` (ops 1000-1002). They are
plain classes with explicit collaborators rather than mixins of one class, so each module shows
what it depends on and can be read alone. What the node sets or replaces after construction
(``node``, ``metrics``, ``respcache``) stays a plain attribute of the dispatcher and reaches the
handlers through small getters, read per request as before.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence

from idnode.errors import (
    AuthenticationRequired,
    AuthenticationTimeout,
    HandleError,
    OperationNotSupported,
    ProtocolViolation,
)
from idnode.industry.enforce import TemplateGuard
from idnode.industry.grants import GrantPolicy
from idnode.protocol import auth
from idnode.protocol.bodies import Body, ChallengeAnswer, ReferralBody, ResolutionResponse
from idnode.protocol.codes import OpCode, OpFlag, ResponseCode
from idnode.protocol.message import Message
from idnode.protocol.types.hs_pubkey import PrivateKey
from idnode.protocol.values import HandleValue
from idnode.resolver import Resolver
from idnode.server.authentication import Authenticator
from idnode.server.authz import Authorizer, Identity
from idnode.server.challenges import Challenges
from idnode.server.handlers_admin import MAX_HANDLE_BYTES, MAX_VALUES, AdminHandlers
from idnode.server.handlers_read import MAX_RECURSION, ReadHandlers
from idnode.server.handlers_replication import ReplicationHandlers
from idnode.server.metrics import Metrics
from idnode.server.negotiation import (
    challenge,
    digest_request,
    error_response,
    response_to,
    response_version,
)
from idnode.server.origin import PEER
from idnode.server.placement import (
    NOT_PRIMARY,
    WRITES,
    WRONG_SERVER_HASH,
    NodeIdentity,
    Placement,
    Referral,
)
from idnode.server.ratelimit import ClientLimiter
from idnode.server.replication import ReplicationSource
from idnode.server.respcache import ResponseCache
from idnode.server.sessions import Sessions
from idnode.server.stats import ResolutionCounter
from idnode.server.writes import BatchResult, Writes
from idnode.store.base import HandleStore
from idnode.trust.verify import TrustPolicy

__all__ = [
    "MAX_HANDLE_BYTES",
    "MAX_RECURSION",
    "MAX_VALUES",
    "NOT_PRIMARY",
    "WRONG_SERVER_HASH",
    "Dispatcher",
    "NodeIdentity",
]

log = logging.getLogger(__name__)

_NEEDS_AUTH = {
    OpCode.CREATE_HANDLE,
    OpCode.DELETE_HANDLE,
    OpCode.ADD_VALUE,
    OpCode.REMOVE_VALUE,
    OpCode.MODIFY_VALUE,
    OpCode.LIST_HANDLES,
    OpCode.LIST_DERIVED_PREFIXES,
    OpCode.HOME_NA,
    OpCode.UNHOME_NA,
    OpCode.GET_NEXT_TXN_ID,
    OpCode.RETRIEVE_TXN_LOG,
    OpCode.DUMP_HANDLES,
}
_SESSIONS = {OpCode.SESSION_SETUP, OpCode.SESSION_TERMINATE, OpCode.SESSION_EXCHANGEKEY}


Handler = Callable[[Message, Identity | None], Awaitable[Body]]


class Dispatcher:
    def __init__(
        self,
        store: HandleStore,
        node: NodeIdentity,
        *,
        server_admins: Sequence[Identity] = (),
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
        challenge_timeout: float = 60.0,
        server_key: PrivateKey | None = None,
        resolver: Resolver | None = None,
        read_only: bool = False,
        replication_admins: Sequence[Identity] = (),
        limiter: ClientLimiter | None = None,
    ) -> None:
        self.store = store
        self.node = node
        #: A mirror (server of a non-primary site): administration gets 301, reads work.
        self.read_only = read_only
        self.authorizer = Authorizer(store, server_admins)
        #: Besides server admins, who may pull the transaction log and dumps (ops 1000-1002).
        self.replication_admins = tuple(replication_admins)
        #: Answers replication requests from the store's log; streams need the server key.
        self.replication = None if server_key is None else ReplicationSource(store, server_key)
        self.challenges = Challenges(timeout=challenge_timeout)
        #: Native sessions (op 400): key agreement, HS_MAC checks, session challenges.
        self.sessions = Sessions(
            store.get_handle,
            server_key=server_key,
            clock=clock,
            site_info_serial=lambda: self.node.site_serial,
            challenge_timeout=challenge_timeout,
        )
        #: Per-address limits on failed authentications and on writes.
        self.limiter = limiter or ClientLimiter()
        self._clock = clock
        self._server_key = server_key
        #: Resolves handles this node does not serve, for requests with REC (None: 301).
        self.resolver = resolver
        #: Which server answers for a handle (301/303 checks), against the current ``node``.
        self.placement = Placement(store, lambda: self.node, read_only=read_only)
        #: Checks every write of an identifier against its metadata template; templates and
        #: references on other nodes are read through ``resolver``.
        self.templates = TemplateGuard(
            store,
            is_local=self.placement.holds,
            resolver=resolver,
            clock=clock,
            authorizer=self.authorizer,
        )
        self.writes = Writes(store, self.templates, clock)
        #: Successful resolutions per prefix per day (idnode.server.stats), flushed by the node.
        self.counter = ResolutionCounter(clock)
        #: Per-attribute data permissions; templates on other nodes come through ``resolver``.
        self.grants = GrantPolicy(self.authorizer, self._template_record)
        #: Encoded responses to anonymous resolutions (idnode.server.respcache); the
        #: transports consult it, the node sets it.
        self.respcache: ResponseCache | None = None
        #: Counters and timings (idnode.server.metrics); None: not recorded.
        self.metrics: Metrics | None = None
        #: The trust root ``/api/verify`` checks signed values against (idnode.trust); the
        #: node sets it from ``[trust]``; None: verification not offered.
        self.trust: TrustPolicy | None = None
        self._random = random_bytes
        self._authenticator = Authenticator(store, self.limiter)
        reads = ReadHandlers(
            store,
            self.placement,
            self.authorizer,
            self.grants,
            resolver,
            node=lambda: self.node,
            respcache=lambda: self.respcache,
            metrics=lambda: self.metrics,
        )
        self._admin = AdminHandlers(
            store,
            self.placement,
            self.authorizer,
            self.grants,
            self.writes,
            read_only=read_only,
            clock=clock,
            random_bytes=random_bytes,
            metrics=lambda: self.metrics,
        )
        replication = ReplicationHandlers(self.replication, self.authorizer, replication_admins)
        self._handlers: dict[int, Handler] = {
            OpCode.RESOLUTION: reads.resolve,
            OpCode.GET_SITE_INFO: reads.site_info,
            OpCode.CREATE_HANDLE: self._admin.create,
            OpCode.DELETE_HANDLE: self._admin.delete,
            OpCode.ADD_VALUE: self._admin.add,
            OpCode.MODIFY_VALUE: self._admin.modify,
            OpCode.REMOVE_VALUE: self._admin.remove,
            OpCode.LIST_HANDLES: reads.list_handles,
            OpCode.LIST_DERIVED_PREFIXES: reads.list_derived,
            OpCode.HOME_NA: self._admin.home,
            OpCode.UNHOME_NA: self._admin.unhome,
            OpCode.VERIFY_CHALLENGE: reads.verify_challenge,
            OpCode.GET_NEXT_TXN_ID: replication.next_txn_id,
            OpCode.RETRIEVE_TXN_LOG: replication.retrieve_txn_log,
            OpCode.DUMP_HANDLES: replication.dump_handles,
        }

    # -- entry points --------------------------------------------------------------------------

    async def dispatch(self, request: Message) -> Message:
        """Answer one request. Never raises."""
        response = await self._dispatch(request)
        return self.sessions.seal(response) or self._certify(response)

    def _certify(self, response: Message) -> Message:
        """Sign the response with the server key when its request set CT (spec §3.3). The
        response echoes the CT flag of the request it answers, which after a challenge is the
        original request, not the answer."""
        if self._server_key is None or not response.has(OpFlag.CT):
            return response
        credential = auth.sign_message(
            self._server_key,
            response.version,
            response.suggested_version,
            response.session_id,
            response.request_id,
            0,
            response.encode_header_and_body(),
        )
        return response.replace(credential=credential.to_bytes())

    async def _dispatch(self, request: Message) -> Message:
        try:
            if not request.is_request:
                raise ProtocolViolation("expected a request, got a response")
            if request.op == OpCode.CHALLENGE_RESPONSE:
                return await self._answer_challenge(request)
            if self.sessions.applies_to(request):
                return await self.sessions.handle(request, self._run)
            return await self._run(request, None)
        except HandleError as exc:
            return self._error(request, exc.response_code, exc.message)
        except Exception:
            log.exception("internal error answering op %s", request.op)
            return self._error(request, ResponseCode.ERROR, "internal server error")

    def protocol_error(self, request: Message, message: str) -> Message:
        return self._error(request, ResponseCode.PROTOCOL_ERROR, message)

    # -- plumbing ------------------------------------------------------------------------------

    def _error(self, request: Message, code: int, message: str) -> Message:
        return error_response(request, code, message, site_info_serial=self.node.site_serial)

    async def _run(self, request: Message, identity: Identity | None) -> Message:
        try:
            return await self.execute(request, identity)
        except AuthenticationRequired:
            return self._challenge(request)
        except Referral as referral:
            version = response_version(request)
            if version < (2, 5) or version[0] == 5:  # no referral body before 2.5 (spec §1.4)
                return self._error(request, referral.response_code, referral.message)
            body = ReferralBody(referral.handle, referral.sites)
            return response_to(
                request,
                ResponseCode.PREFIX_REFERRAL,
                body,
                site_info_serial=self.node.site_serial,
            )

    async def execute(self, request: Message, identity: Identity | None) -> Message:
        """Run ``request`` as ``identity`` (None: anonymous) and return the success response.

        For transports that authenticate by other means (HTTP): raises the
        :class:`HandleError` of a failure, AuthenticationRequired when an identity is needed.
        """
        if request.op in _SESSIONS:
            raise OperationNotSupported("sessions are not supported; use challenge-response")
        handler = self._handlers.get(request.op)
        if handler is None:
            raise OperationNotSupported(f"operation {request.op} is not supported")
        self.placement.check_placement(request)
        if identity is None and request.op in _NEEDS_AUTH:
            raise AuthenticationRequired()
        if identity is not None and request.op in WRITES:
            self.limiter.check_write(PEER.get())
        body = await handler(request, identity)
        if isinstance(body, ResolutionResponse):  # statistics: one dict increment
            self.counter.resolved(body.handle)
        return response_to(
            request, ResponseCode.SUCCESS, body, site_info_serial=self.node.site_serial
        )

    def _challenge(self, request: Message) -> Message:
        nonce = self._random(16)
        digest = digest_request(request, response_version(request))
        if self.sessions.hold_challenge(request, nonce, digest.digest):
            session_id = request.session_id  # a request in a session: challenged in it
        else:
            session_id = self.challenges.add(request, nonce, digest.digest, self._clock())
        return challenge(request, nonce, digest, session_id, site_info_serial=self.node.site_serial)

    async def _answer_challenge(self, answer: Message) -> Message:
        body = answer.body
        assert isinstance(body, ChallengeAnswer)
        held = self.sessions.take_challenge(answer.session_id)
        pending = held[1] if held else self.challenges.take(answer.session_id, self._clock())
        if pending is None:
            raise AuthenticationTimeout()
        # The outcome answers the original request, addressed to the answer (spec §0.6), in
        # the original request's session if it had one.
        session_id = held[0].session_id if held else 0
        original = pending.request.replace(request_id=answer.request_id, session_id=session_id)
        identity = Identity(body.identity_handle, body.identity_index)
        try:
            old_format = response_version(pending.request) < (2, 1)
            await self.verify_identity(
                identity,
                body.auth_type,
                body.signed_response,
                pending.nonce,
                pending.digest,
                old_format=old_format,
            )
            if held is not None:
                self.sessions.authenticated(held[0], identity, pending.request)
            return await self._run(original, identity)
        except HandleError as exc:
            return self._error(original, exc.response_code, exc.message)

    async def verify_identity(
        self,
        identity: Identity,
        auth_type: str,
        signed_response: bytes,
        nonce: bytes,
        digest: bytes,
        *,
        old_format: bool = False,
    ) -> None:
        """Check a challenge answer against the identity's key held here (spec §3.2);
        raises AuthenticationFailed (ServerBusy while the client is blocked for failures)."""
        await self._authenticator.verify_identity(
            identity, auth_type, signed_response, nonce, digest, old_format=old_format
        )

    async def check_secret(self, identity: Identity, secret: bytes) -> None:
        """HTTP Basic authentication (spec §5.5): ``secret`` must equal the identity's
        HS_SECKEY held here, compared in constant time; raises AuthenticationFailed (ServerBusy
        while the client is blocked for failures)."""
        await self._authenticator.check_secret(identity, secret)

    # -- batch registration (the HTTP batch endpoint; see AdminHandlers) -----------------------

    async def create_handles(
        self, items: Sequence[tuple[str, Sequence[HandleValue]]], identity: Identity
    ) -> list[tuple[int, str]]:
        """:meth:`register_handles` without the per-field errors: (code, message) per item."""
        return await self._admin.create_handles(items, identity)

    async def register_handles(
        self, items: Sequence[tuple[str, Sequence[HandleValue]]], identity: Identity
    ) -> list[BatchResult]:
        """Batch registration: :meth:`AdminHandlers.register_handles
        <idnode.server.handlers_admin.AdminHandlers.register_handles>`. Returns one
        :class:`BatchResult` per item; a read-only server refuses the whole batch (301)."""
        return await self._admin.register_handles(items, identity)

    # -- responsibility ------------------------------------------------------------------------

    async def _serves(self, handle: str) -> bool:
        """Whether this node serves ``handle`` (:meth:`Placement.serves
        <idnode.server.placement.Placement.serves>`)."""
        return await self.placement.serves(handle)

    async def _template_record(self, handle: str) -> tuple[HandleValue, ...] | None:
        """The record of template ``handle`` for its class grants: from the store when held
        here, else through the resolver (public values); None when it cannot be read."""
        if await self.placement.holds(handle):
            return await self.store.get_handle(handle)
        if self.resolver is None:
            return None
        try:
            return await self.resolver.resolve(handle)
        except HandleError:
            return None
