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
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from idnode.crypto.sm2 import Sm2PublicKey
from idnode.errors import (
    AuthenticationFailed,
    AuthenticationRequired,
    AuthenticationTimeout,
    HandleAlreadyExists,
    HandleError,
    HandleNotFound,
    InsufficientPermissions,
    InvalidAdmin,
    InvalidHandle,
    InvalidValue,
    OperationNotSupported,
    ProtocolViolation,
    RecursionCountTooHigh,
    ServerNotResponsible,
    UniqueValueTaken,
    ValuesNotFound,
)
from idnode.industry.directory import Pending
from idnode.industry.enforce import TemplateGuard, WritePlan
from idnode.industry.grants import GrantPolicy, RecordGrants
from idnode.industry.layout import DATA_INDEX_START
from idnode.protocol import auth
from idnode.protocol import types as value_types
from idnode.protocol.bodies import (
    Body,
    ChallengeAnswer,
    CreateHandleResponse,
    EmptyBody,
    HandleListBody,
    HandleRequest,
    ReferralBody,
    RemoveValuesRequest,
    ResolutionRequest,
    ResolutionResponse,
    SiteInfoBody,
    ValuesRequest,
    VerifyChallengeRequest,
    VerifyChallengeResponse,
)
from idnode.protocol.codes import AdminPermission, OpCode, OpFlag, ResponseCode
from idnode.protocol.message import Message
from idnode.protocol.replication import (
    DumpHandlesRequest,
    NextTxnIdBody,
    RetrieveTxnRequest,
    RetrieveTxnResponseBody,
)
from idnode.protocol.types.hs_pubkey import PrivateKey, PublicKeyData
from idnode.protocol.types.hs_site import SiteInfo
from idnode.protocol.values import HandleValue
from idnode.resolver import Resolver
from idnode.server.authz import Authorizer, Identity
from idnode.server.challenges import Challenges
from idnode.server.metrics import Metrics
from idnode.server.negotiation import (
    challenge,
    digest_request,
    error_response,
    response_to,
    response_version,
)
from idnode.server.origin import PEER
from idnode.server.ratelimit import ClientLimiter
from idnode.server.replication import ReplicationSource, stream_sink
from idnode.server.respcache import NOTE, ResponseCache
from idnode.server.sessions import Sessions
from idnode.server.stats import ResolutionCounter
from idnode.server.writes import BatchResult, Writes, batch_error, edited
from idnode.store.base import HandleStore, handle_key, prefix_of
from idnode.store.records import add_values_edit, modify_values_edit, remove_values_edit
from idnode.trust.verify import TrustPolicy

__all__ = ["Dispatcher", "NodeIdentity"]

log = logging.getLogger(__name__)

#: Requests that already went through this many recursive nodes are refused (spec §1.5).
MAX_RECURSION = 8
#: Reference server limits (spec §1.1).
MAX_HANDLE_BYTES = 2048
MAX_VALUES = 2048
#: Suffixes drawn at most when minting (a handle that still hashes elsewhere gets 301).
_MINT_ATTEMPTS = 64

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
#: Administration on one handle: answered only by the server the handle hashes to.
_HANDLE_WRITES = {
    OpCode.CREATE_HANDLE,
    OpCode.DELETE_HANDLE,
    OpCode.ADD_VALUE,
    OpCode.REMOVE_VALUE,
    OpCode.MODIFY_VALUE,
}
#: Requests a read-only server (mirror) refuses (the reference server's admin requests).
_WRITES = _HANDLE_WRITES | {OpCode.HOME_NA, OpCode.UNHOME_NA}
#: 301 messages of the reference server.
NOT_PRIMARY = "Not a primary server"
WRONG_SERVER_HASH = "Request was hashed incorrectly"


#: Value writes an edit grant can stand in for (never the HS_ADMIN ones).
_GRANTABLE_WRITES = frozenset(
    {AdminPermission.ADD_VALUE, AdminPermission.MODIFY_VALUE, AdminPermission.REMOVE_VALUE}
)

_SITE_TYPES = frozenset({"HS_SITE", "HS_SITE.6", "HS_SERV"})
_DELEGATION_TYPES = frozenset({"HS_SITE.PREFIX", "HS_SERV.PREFIX", "HS_NA_DELEGATE"})


class _Referral(ServerNotResponsible):
    """Not served here, but this node knows where (spec §4): answered with 303 and the
    sites over the native protocol; other transports see the 301 it derives from."""

    def __init__(self, handle: str, sites: tuple[HandleValue, ...]) -> None:
        super().__init__()
        self.handle = handle
        self.sites = sites


@dataclass(frozen=True)
class NodeIdentity:
    """What the node says about itself: its HS_SITE record (raw bytes) and serial, and which
    server of that site it is."""

    site_data: bytes
    site_serial: int
    server_index: int = 0
    """0-based position of this node in the site's server list (spec §2.2)."""

    @functools.cached_property
    def site(self) -> SiteInfo:
        return SiteInfo.from_bytes(self.site_data)

    def owns(self, handle: str) -> bool:
        """Whether ``handle`` hashes to this server, by the site's hash option (spec §2.2);
        always true in a site of one server."""
        site = self.site
        return len(site.servers) < 2 or site.server_index_for(handle) == self.server_index


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
        #: Checks every write of an identifier against its metadata template; templates and
        #: references on other nodes are read through ``resolver``.
        self.templates = TemplateGuard(
            store, is_local=self._holds, resolver=resolver, clock=clock, authorizer=self.authorizer
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
        self._handlers: dict[int, Handler] = {
            OpCode.RESOLUTION: self._resolve,
            OpCode.GET_SITE_INFO: self._site_info,
            OpCode.CREATE_HANDLE: self._create,
            OpCode.DELETE_HANDLE: self._delete,
            OpCode.ADD_VALUE: self._add,
            OpCode.MODIFY_VALUE: self._modify,
            OpCode.REMOVE_VALUE: self._remove,
            OpCode.LIST_HANDLES: self._list_handles,
            OpCode.LIST_DERIVED_PREFIXES: self._list_derived,
            OpCode.HOME_NA: self._home,
            OpCode.UNHOME_NA: self._unhome,
            OpCode.VERIFY_CHALLENGE: self._verify_challenge,
            OpCode.GET_NEXT_TXN_ID: self._next_txn_id,
            OpCode.RETRIEVE_TXN_LOG: self._retrieve_txn_log,
            OpCode.DUMP_HANDLES: self._dump_handles,
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
        except _Referral as referral:
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
        self._check_placement(request)
        if identity is None and request.op in _NEEDS_AUTH:
            raise AuthenticationRequired()
        if identity is not None and request.op in _WRITES:
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
        with self._auth_attempt():
            await self._verify_identity(
                identity, auth_type, signed_response, nonce, digest, old_format=old_format
            )

    async def _verify_identity(
        self,
        identity: Identity,
        auth_type: str,
        signed_response: bytes,
        nonce: bytes,
        digest: bytes,
        *,
        old_format: bool,
    ) -> None:
        values = await self.store.get_handle(identity.handle)
        value = next((v for v in values or () if v.index == identity.index), None)
        kind = auth_type.upper()
        if value is None or value.type.upper() != kind:
            raise AuthenticationFailed(f"no {kind} at {identity} on this server")
        if kind == "HS_SECKEY":
            ok = auth.verify_secret_key_answer(
                value.data, nonce, digest, signed_response, old_format=old_format
            )
        elif kind == "HS_PUBKEY":
            try:
                key = PublicKeyData.from_bytes(value.data).to_public_key()
            except ProtocolViolation as exc:
                raise AuthenticationFailed(f"the HS_PUBKEY of {identity} is unusable") from exc
            if not isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey | Sm2PublicKey):
                raise AuthenticationFailed(f"the HS_PUBKEY of {identity} cannot sign")
            ok = auth.verify_public_key_answer(key, nonce, digest, signed_response)
        else:
            raise AuthenticationFailed(f"unknown authentication type {auth_type}")
        if not ok:
            raise AuthenticationFailed(f"the answer does not verify for {identity}")

    async def check_secret(self, identity: Identity, secret: bytes) -> None:
        """HTTP Basic authentication (spec §5.5): ``secret`` must equal the identity's
        HS_SECKEY held here, compared in constant time; raises AuthenticationFailed (ServerBusy
        while the client is blocked for failures)."""
        with self._auth_attempt():
            values = await self.store.get_handle(identity.handle)
            value = next((v for v in values or () if v.index == identity.index), None)
            if value is None or value.type.upper() != "HS_SECKEY" or not value.data:
                raise AuthenticationFailed(f"no HS_SECKEY at {identity} on this server")
            if not hmac.compare_digest(value.data, secret):
                raise AuthenticationFailed(f"wrong secret for {identity}")

    @contextlib.contextmanager
    def _auth_attempt(self) -> Iterator[None]:
        """Refuse an authentication from a blocked client; count the ones that fail."""
        peer = PEER.get()
        self.limiter.check_auth(peer)
        try:
            yield
        except AuthenticationFailed:
            self.limiter.auth_failed(peer)
            raise

    # -- responsibility and validation -----------------------------------------------------

    def _check_placement(self, request: Message) -> None:
        """The reference server's first checks, before any challenge: 301 for administration
        on a read-only server, and for administration on a handle that hashes to another
        server of this site (a minted handle is checked once minted)."""
        if self.read_only and request.op in _WRITES:
            raise ServerNotResponsible(NOT_PRIMARY)
        if request.op not in _HANDLE_WRITES or request.has(OpFlag.MINT):
            return
        handle = getattr(request.body, "handle", None)
        if isinstance(handle, str):
            self._require_share(handle)

    def _require_share(self, handle: str) -> None:
        """301 unless ``handle`` hashes to this server of the site (:meth:`NodeIdentity.owns`)."""
        if not self.node.owns(handle):
            raise ServerNotResponsible(WRONG_SERVER_HASH)

    async def _require_responsible(self, handle: str) -> None:
        """301 unless ``handle`` hashes to this server and this node serves it (:meth:`_serves`;
        spec §2.2, §4)."""
        self._require_share(handle)
        if not await self._serves(handle):
            raise ServerNotResponsible()

    async def _serves(self, handle: str) -> bool:
        """Whether this node serves ``handle``.

        A handle ``P/S`` is served here when P is homed. A prefix handle ``0.NA/P`` is served
        when ``0.NA`` is homed (a root), or P or one of its ancestor prefixes is homed: the node
        answers for its own prefix handles and for the prefixes it delegated.
        """
        prefix = prefix_of(handle)
        if handle_key(prefix) != "0.NA":
            return await self.store.is_homed(prefix)
        if await self.store.is_homed("0.NA"):
            return True
        segments = handle.split("/", 1)[1].split(".")
        for i in range(len(segments), 0, -1):
            if await self.store.is_homed(".".join(segments[:i])):
                return True
        return False

    async def _delegation(self, handle: str) -> tuple[HandleValue, ...]:
        """The values saying where ``handle`` is served, when this node delegated its prefix:
        the HS_SITE/HS_SERV values of the prefix handle it holds (for ``0.NA/P.C``, the
        HS_SITE.PREFIX/HS_SERV.PREFIX/HS_NA_DELEGATE values of the parent ``0.NA/P``)."""
        prefix = prefix_of(handle)
        if handle_key(prefix) == "0.NA":
            child = handle.split("/", 1)[1]
            if "." not in child:
                return ()
            holder, wanted = f"0.NA/{child.rsplit('.', 1)[0]}", _DELEGATION_TYPES
        else:
            holder, wanted = f"0.NA/{prefix}", _SITE_TYPES
        if not await self._serves(holder):
            return ()
        values = await self.store.get_handle(holder) or ()
        return tuple(v for v in values if v.type.upper() in wanted)

    @staticmethod
    def _check_handle(handle: str) -> None:
        if "/" not in handle or handle.startswith("/") or handle.endswith("/"):
            raise InvalidHandle(f"invalid handle {handle!r}: expected <prefix>/<suffix>")
        if len(handle.encode("utf-8")) > MAX_HANDLE_BYTES:
            raise InvalidHandle(f"handle longer than {MAX_HANDLE_BYTES} bytes")

    def _stamp(self, values: Sequence[HandleValue]) -> list[HandleValue]:
        """Validate new values and set their timestamps (the server sets them, spec §5.1)."""
        if len(values) > MAX_VALUES:
            raise InvalidValue(f"more than {MAX_VALUES} values")
        seen: set[int] = set()
        now = int(self._clock())
        out = []
        for v in values:
            if v.index in seen:
                raise InvalidValue(f"index {v.index} given twice")
            if v.index == 0:
                raise InvalidValue("index 0 is not a valid value index")
            seen.add(v.index)
            try:
                value_types.parse(v.type, v.data)
            except ProtocolViolation as exc:
                raise InvalidValue(f"value {v.index} is not a valid {v.type}: {exc}") from exc
            out.append(v.with_changes(timestamp=now))
        return out

    async def _record(self, handle: str) -> tuple[HandleValue, ...]:
        if self.metrics is None:
            values = await self.store.get_handle(handle)
        else:
            started = time.perf_counter()
            values = await self.store.get_handle(handle)
            self.metrics.store_call("get_handle", time.perf_counter() - started)
        if values is None:
            raise HandleNotFound("")
        return values

    async def _prefix_admins(self, handle: str) -> tuple[HandleValue, ...]:
        """HS_ADMIN-bearing record governing creation under ``handle``'s prefix: the parent
        prefix handle for ``0.NA/P.C``, else ``0.NA/<prefix>``. Empty when absent."""
        prefix = prefix_of(handle)
        if handle_key(prefix) == "0.NA":
            child = handle.split("/", 1)[1]
            parent = child.rsplit(".", 1)[0] if "." in child else "0.NA"
            record = await self.store.get_handle(f"0.NA/{parent}")
        else:
            record = await self.store.get_handle(f"0.NA/{prefix}")
        return record or ()

    @staticmethod
    def _is_admin_value(v: HandleValue | None) -> bool:
        return v is not None and v.type.upper() == "HS_ADMIN"

    # -- query operations ----------------------------------------------------------------------

    async def _resolve(self, request: Message, identity: Identity | None) -> Body:
        body = request.body
        assert isinstance(body, ResolutionRequest)
        if not body.handle:
            raise InvalidHandle("empty handle")
        if not self.node.owns(body.handle) or not await self._serves(body.handle):
            if self.resolver is None or not request.has(OpFlag.REC):
                self._require_share(body.handle)
                sites = () if request.has(OpFlag.DNRF) else await self._delegation(body.handle)
                if sites:
                    raise _Referral(body.handle, sites)
                raise ServerNotResponsible()
            # A recursive node answers for the rest of the hierarchy (spec §4); the resolver
            # asks with PO and never with REC, so nodes cannot loop through each other.
            if request.recursion_count >= MAX_RECURSION:
                raise RecursionCountTooHigh()
            values = await self.resolver.resolve(body.handle, body.types, body.indexes)
            return ResolutionResponse(body.handle, values)
        note = NOTE.get()
        if note is not None and self.respcache is not None:
            self.respcache.begin(note, body.handle)  # before the read (see respcache)
        record = await self._record(body.handle)
        values = record
        if body.indexes or body.types:
            values = tuple(
                v
                for v in values
                if v.index in body.indexes or any(v.type_matches(t) for t in body.types)
            )
        grants = await self.grants.for_record(record)
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
            await self.authorizer.require(identity, record, AdminPermission.READ_VALUE)
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

    async def _site_info(self, request: Message, identity: Identity | None) -> Body:
        return SiteInfoBody(self.node.site_data)

    async def _verify_challenge(self, request: Message, identity: Identity | None) -> Body:
        """Op 201: check a secret-key answer for an identity held here (spec §3.1 step 4)."""
        body = request.body
        assert isinstance(body, VerifyChallengeRequest)
        await self._require_responsible(body.handle)
        values = await self._record(body.handle)
        value = next((v for v in values if v.index == body.index), None)
        if value is None or value.type.upper() != "HS_SECKEY":
            raise ValuesNotFound(f"no HS_SECKEY at {body.index}:{body.handle}")
        ok = auth.verify_secret_key_answer(
            value.data, body.nonce, body.digest.digest, body.signed_response
        )
        return VerifyChallengeResponse(ok)

    # -- administration ------------------------------------------------------------------------

    async def _create(self, request: Message, identity: Identity | None) -> Body:
        assert identity is not None
        body = request.body
        assert isinstance(body, ValuesRequest)
        handle = body.handle
        if request.has(OpFlag.MINT):
            handle = self._mint(handle)
        await self._may_create(handle, identity)
        overwrite = request.has(OpFlag.OVRW)
        existing = None
        if overwrite:
            existing = await self.store.get_handle(handle)
            if existing is not None:
                await self.authorizer.require(identity, existing, AdminPermission.DELETE_HANDLE)
        values = self._stamp(body.values)
        plan = await self.writes.check(handle, existing, values, values, writer=identity)
        record = plan.values or ()
        await self.writes.run(
            identity,
            {handle: plan},
            lambda: self.store.create_handle(handle, record, overwrite=overwrite),
        )
        return CreateHandleResponse(handle)

    async def _may_create(self, handle: str, identity: Identity) -> None:
        """Raise unless ``handle`` is well formed, served here, and ``identity`` may create it:
        ADD_HANDLE on ``0.NA/<prefix>``, or ADD_NA on the parent for a prefix handle."""
        self._check_handle(handle)
        await self._require_responsible(handle)
        is_prefix = handle_key(prefix_of(handle)) == "0.NA"
        perm = AdminPermission.ADD_NA if is_prefix else AdminPermission.ADD_HANDLE
        await self.authorizer.require(identity, await self._prefix_admins(handle), perm)

    async def create_handles(
        self, items: Sequence[tuple[str, Sequence[HandleValue]]], identity: Identity
    ) -> list[tuple[int, str]]:
        """:meth:`register_handles` without the per-field errors: (code, message) per item."""
        return [(r.code, r.message) for r in await self.register_handles(items, identity)]

    async def register_handles(
        self, items: Sequence[tuple[str, Sequence[HandleValue]]], identity: Identity
    ) -> list[BatchResult]:
        """Batch registration (the HTTP batch endpoint): every item is checked as a create
        would be (handle, responsibility, permission, values, template), then the valid ones
        are written in one transaction with :meth:`HandleStore.create_records`. Existing
        handles are left unchanged. An item may reference, but not share a unique value
        with, an earlier item of the batch. Returns one :class:`BatchResult` per item. A
        read-only server refuses the whole batch (301); in a site of several servers, items
        that hash to another server get 301 each."""
        if self.read_only:
            raise ServerNotResponsible(NOT_PRIMARY)
        results = [BatchResult(ResponseCode.SUCCESS)] * len(items)
        allowed: dict[str, HandleError | None] = {}  # per prefix: the permission outcome
        plans: dict[int, tuple[str, WritePlan]] = {}  # the items that passed, to write
        pending = Pending()
        seen: set[str] = set()
        for position, (handle, values) in enumerate(items):
            try:
                self._check_handle(handle)
                self._require_share(handle)  # per item: the permission is cached per prefix
                scope = handle_key(prefix_of(handle))
                if scope == "0.NA":  # prefix handles: each has its own parent
                    await self._may_create(handle, identity)
                else:
                    if scope not in allowed:
                        try:
                            await self._may_create(handle, identity)
                            allowed[scope] = None
                        except HandleError as exc:
                            allowed[scope] = exc
                    if (denied := allowed[scope]) is not None:
                        raise denied
                key = handle_key(handle)
                if key in seen:
                    raise HandleAlreadyExists("given twice in this batch")
                seen.add(key)
                stamped = self._stamp(values)
                plan = await self.writes.check(
                    handle, None, stamped, stamped, pending, writer=identity
                )
                plans[position] = handle, plan
            except HandleError as exc:
                results[position] = batch_error(exc)
        try:
            created = await self.writes.create_records(identity, plans)
        except UniqueValueTaken:
            # Another write took a unique value since the check: register one by one.
            created = await self.writes.create_one_by_one(identity, plans, results)
        for position, was_created in created.items():
            if not was_created:
                message = "Handle already exists."
                results[position] = BatchResult(ResponseCode.HANDLE_ALREADY_EXISTS, message)
        return results

    def _mint(self, handle: str) -> str:
        """A new handle under ``handle``'s prefix: ``<handle>`` + a random suffix, drawn
        again until the handle hashes to this server (spec §2.2; expected tries: the number
        of servers of the site)."""
        for _attempt in range(_MINT_ATTEMPTS):
            suffix = self._random(10).hex().upper()
            if "/" not in handle:
                minted = f"{handle}/{suffix}"
            else:
                minted = f"{handle}{suffix}" if handle.endswith("/") else f"{handle}-{suffix}"
            if self.node.owns(minted):
                break
        return minted

    async def _delete(self, request: Message, identity: Identity | None) -> Body:
        assert identity is not None
        body = request.body
        assert isinstance(body, HandleRequest)
        await self._require_responsible(body.handle)
        record = await self._record(body.handle)
        if handle_key(prefix_of(body.handle)) == "0.NA":
            # A prefix handle: DELETE_NA, granted on it or on its parent (as ADD_NA is).
            admins = record + await self._prefix_admins(body.handle)
            await self.authorizer.require(identity, admins, AdminPermission.DELETE_NA)
        else:
            await self.authorizer.require(identity, record, AdminPermission.DELETE_HANDLE)
        plan = WritePlan(None)  # a deleted identifier loses its index entries with it
        await self.writes.run(
            identity, {body.handle: plan}, lambda: self.store.delete_handle(body.handle)
        )
        return EmptyBody()

    async def _add(self, request: Message, identity: Identity | None) -> Body:
        assert identity is not None
        body = request.body
        assert isinstance(body, ValuesRequest)
        await self._require_responsible(body.handle)
        record = await self._record(body.handle)
        by_index = {v.index: v for v in record}
        overwrite = request.has(OpFlag.OVRW)
        for v in body.values:
            old = by_index.get(v.index)
            if old is not None and overwrite:
                admin = self._is_admin_value(old) or self._is_admin_value(v)
                perm = AdminPermission.MODIFY_ADMIN if admin else AdminPermission.MODIFY_VALUE
            else:
                admin = self._is_admin_value(v)
                perm = AdminPermission.ADD_ADMIN if admin else AdminPermission.ADD_VALUE
            await self._may_write(identity, record, perm, old if overwrite else None, v)
        values = self._stamp(body.values)
        after = edited(record, add_values_edit(body.handle, values, overwrite=overwrite))
        await self.writes.change(
            identity,
            body.handle,
            record,
            after,
            values,
            lambda: self.store.add_values(body.handle, values, overwrite=overwrite),
        )
        return EmptyBody()

    async def _modify(self, request: Message, identity: Identity | None) -> Body:
        assert identity is not None
        body = request.body
        assert isinstance(body, ValuesRequest)
        await self._require_responsible(body.handle)
        record = await self._record(body.handle)
        by_index = {v.index: v for v in record}
        for v in body.values:
            old = by_index.get(v.index)
            if old is None:
                raise ValuesNotFound(f"no value at index {v.index}")
            admin = self._is_admin_value(old) or self._is_admin_value(v)
            perm = AdminPermission.MODIFY_ADMIN if admin else AdminPermission.MODIFY_VALUE
            await self._may_write(identity, record, perm, old, v)
        values = self._stamp(body.values)
        after = edited(record, modify_values_edit(body.handle, values))
        await self.writes.change(
            identity,
            body.handle,
            record,
            after,
            values,
            lambda: self.store.modify_values(body.handle, values),
        )
        return EmptyBody()

    async def _remove(self, request: Message, identity: Identity | None) -> Body:
        assert identity is not None
        body = request.body
        assert isinstance(body, RemoveValuesRequest)
        await self._require_responsible(body.handle)
        record = await self._record(body.handle)
        by_index = {v.index: v for v in record}
        for index in body.indexes:
            old = by_index.get(index)
            if old is None:
                raise ValuesNotFound(f"no value at index {index}")
            admin = self._is_admin_value(old)
            perm = AdminPermission.REMOVE_ADMIN if admin else AdminPermission.REMOVE_VALUE
            await self._may_write(identity, record, perm, old, None)
        after = edited(record, remove_values_edit(body.handle, body.indexes))
        await self.writes.change(
            identity,
            body.handle,
            record,
            after,
            (),
            lambda: self.store.remove_values(body.handle, body.indexes),
        )
        return EmptyBody()

    async def _may_write(
        self,
        identity: Identity,
        record: tuple[HandleValue, ...],
        perm: AdminPermission,
        old: HandleValue | None,
        new: HandleValue | None,
    ) -> None:
        """Raise unless ``identity`` may change ``old`` into ``new`` (either None for an add or
        a remove): ``perm`` through the record's HS_ADMIN, or else, for an attribute value
        (index ≥ 2000, the same attribute before and after) of an instance, an edit grant
        for that attribute (:meth:`RecordGrants.can_edit`). The HS_ADMIN error stands
        otherwise."""
        try:
            await self.authorizer.require(identity, record, perm)
        except (InvalidAdmin, InsufficientPermissions):
            if perm not in _GRANTABLE_WRITES:
                raise
            changed = [v for v in (old, new) if v is not None]
            if any(v.index < DATA_INDEX_START for v in changed):
                raise
            if len({v.type.casefold() for v in changed}) != 1:
                raise
            grants = await self.grants.for_record(record)
            if not await grants.can_edit(identity, changed[0].type):
                raise

    async def _template_record(self, handle: str) -> tuple[HandleValue, ...] | None:
        """The record of template ``handle`` for its class grants: from the store when held
        here, else through the resolver (public values); None when it cannot be read."""
        if await self._holds(handle):
            return await self.store.get_handle(handle)
        if self.resolver is None:
            return None
        try:
            return await self.resolver.resolve(handle)
        except HandleError:
            return None

    async def _holds(self, handle: str) -> bool:
        """Whether this server holds ``handle`` in its store (the guard reads it there)."""
        return self.node.owns(handle) and await self._serves(handle)

    async def _prefix_request(self, request: Message, identity: Identity) -> str:
        """For ops on ``0.NA/<prefix>``: check responsibility and LIST_HANDLES; the prefix."""
        body = request.body
        assert isinstance(body, HandleRequest)
        handle = body.handle
        if handle_key(prefix_of(handle)) != "0.NA" or "/" not in handle:
            raise InvalidHandle(f"expected a prefix handle 0.NA/<prefix>, got {handle!r}")
        prefix = handle.split("/", 1)[1]
        if not await self.store.is_homed(prefix):
            raise ServerNotResponsible()
        record = await self.store.get_handle(handle) or ()
        await self.authorizer.require(identity, record, AdminPermission.LIST_HANDLES)
        return prefix

    async def _list_handles(self, request: Message, identity: Identity | None) -> Body:
        assert identity is not None
        prefix = await self._prefix_request(request, identity)
        return HandleListBody(tuple(await self.store.list_handles(prefix)))

    async def _list_derived(self, request: Message, identity: Identity | None) -> Body:
        assert identity is not None
        body = request.body
        assert isinstance(body, HandleRequest)
        if body.handle in ("", "/"):
            # Blank handle: the reference's OC_LIST_HOMED_NAS proper, every prefix homed
            # here as 0.NA/<prefix>, for server administrators (REST GET /api/prefixes).
            if not await self.authorizer.is_server_admin(identity):
                raise InvalidAdmin(f"{identity} is not a server administrator")
            homed = await self.store.homed_prefixes()
            return HandleListBody(tuple(f"0.NA/{p}" for p in homed))
        prefix = await self._prefix_request(request, identity)
        return HandleListBody(tuple(await self.store.list_derived_prefixes(prefix)))

    async def _home_prefix(self, request: Message, identity: Identity | None) -> str:
        assert identity is not None
        body = request.body
        assert isinstance(body, HandleRequest)
        if not await self.authorizer.is_server_admin(identity):
            raise InvalidAdmin(f"{identity} is not a server administrator")
        handle = body.handle
        if handle_key(prefix_of(handle)) != "0.NA" or "/" not in handle:
            raise InvalidHandle(f"expected a prefix handle 0.NA/<prefix>, got {handle!r}")
        return handle.split("/", 1)[1]

    async def _home(self, request: Message, identity: Identity | None) -> Body:
        await self.store.home_prefix(await self._home_prefix(request, identity))
        return EmptyBody()

    async def _unhome(self, request: Message, identity: Identity | None) -> Body:
        await self.store.unhome_prefix(await self._home_prefix(request, identity))
        return EmptyBody()

    # -- replication (the primary's side; see idnode.server.replication) -------------------------

    async def _replication_source(self, identity: Identity | None) -> ReplicationSource:
        assert identity is not None
        if self.replication is None:
            raise OperationNotSupported("replication needs the server key")
        admins = self.replication_admins
        if not (
            await self.authorizer.is_server_admin(identity)
            or await self.authorizer.is_any_of(identity, admins)
        ):
            raise InvalidAdmin(f"{identity} is not a replication administrator")
        return self.replication

    async def _next_txn_id(self, request: Message, identity: Identity | None) -> Body:
        source = await self._replication_source(identity)
        return NextTxnIdBody(await source.next_txn_id())

    async def _retrieve_txn_log(self, request: Message, identity: Identity | None) -> Body:
        body = request.body
        assert isinstance(body, RetrieveTxnRequest)
        source = await self._replication_source(identity)
        if body.state_json is not None:
            raise OperationNotSupported("multi-primary replication is not supported")
        stream_sink().append(source.txn_stream(body))
        return RetrieveTxnResponseBody()

    async def _dump_handles(self, request: Message, identity: Identity | None) -> Body:
        body = request.body
        assert isinstance(body, DumpHandlesRequest)
        source = await self._replication_source(identity)
        stream_sink().append(source.dump_stream(body))
        return EmptyBody()
