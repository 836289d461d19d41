"""Native Handle-protocol sessions on the server (spec §1.7, §1.11, §3.3).

Theory of operation (the reference server's behaviour, which its clients rely on)
--------------------------------------------------------------------------------
1. Op 400 sets a session up without a challenge: the server agrees a session key with the
   client (:mod:`idnode.protocol.session`: Diffie-Hellman, or an RSA-encrypted key) and
   answers with a new, random, non-zero session id in the envelope. The identity named in
   the request is remembered; the session is not yet *authenticated*.
2. Requests carry the session id in their envelope and an ``HS_MAC`` credential whose signer
   index is the client's session counter. An id that names no live session (unknown, expired
   or terminated) gets RC_SESSION_TIMEOUT (500).
3. In a session not yet authenticated, requests run anonymously: an administrative request is
   challenged (402) with the session's own id in the envelope, as the recorded exchanges show.
   A correct answer (op 200) whose identity is the session's marks the session authenticated;
   the original request's MAC must verify then (RC_INVALID_SESSION_KEY, 502, otherwise).
4. In an authenticated session, requests run as the session's identity without a challenge.
   Each must carry a MAC (RC_INVALID_CREDENTIAL, 404, when missing) that verifies (502) and a
   session counter not seen before in the session (RC_SESSION_MESSAGE_REJECTED, 505): the
   last :data:`COUNTER_WINDOW` counters are remembered and a counter at or below the oldest
   of them is refused too, so a replayed or old message never runs (counter 0 is refused;
   the reference clients count from 1). Out-of-order delivery within the window is accepted,
   as the reference does for UDP retries and concurrent requests.
5. Op 401 (MAC required and checked) ends the session; op 402 completes a mode-2 setup.
6. A response to a request with CT, in a live session, is signed with an ``HS_MAC`` under
   the session key and the server's own counter (not for ops 400 and 402, whose responses
   are signed with the server key so the client can authenticate the server).
7. The table is bounded (:class:`SessionTable`): a session expires after its timeout without
   use (capped at ``max_timeout``), and the least recently used one is dropped when full.
8. Encryption: the transports pass every request through :meth:`Sessions.unwrap` (an
   envelope with the encrypted flag is decrypted with its session's key) and every response
   through :meth:`Sessions.wrap` (encrypted when its request set the ENC flag).
9. Where the state lives: :class:`SessionTable` keeps sessions in the process's memory, the
   fast path of a single-process node. Every change to a session after its setup goes through
   a method of the table (:meth:`~SessionTable.record_counter`, :meth:`~SessionTable.set_key`,
   ...), so that a node of several worker processes can use
   :class:`~idnode.server.shared_sessions.SharedSessionTable` instead, which writes them to
   the database all its workers share: a session set up by one worker is used, authenticated,
   replay-checked and ended in any of them.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar, Final

from cryptography.hazmat.primitives.asymmetric import padding, rsa

from idnode.errors import HandleError, ProtocolViolation
from idnode.protocol.bodies import (
    EmptyBody,
    RawBody,
    SessionSetupRequest,
    SessionSetupResponse,
)
from idnode.protocol.codes import OpCode, OpFlag, ResponseCode
from idnode.protocol.credential import Credential
from idnode.protocol.message import ENVELOPE_SIZE, Envelope, Message
from idnode.protocol.session import (
    DEFAULT_SESSION_TIMEOUT,
    ENV_ENCRYPTED,
    CipherAlgorithm,
    DHKeyPair,
    DHPublicKey,
    KeyExchangeMode,
    decrypt_payload,
    derive_session_key,
    dh_response_data,
    encrypt_payload,
    encrypt_session_key,
    mac_credential,
    new_session_key,
    parse_exchanged_key,
    verify_mac,
)
from idnode.protocol.types.hs_pubkey import PrivateKey, PublicKeyData
from idnode.protocol.values import HandleValue
from idnode.protocol.wire import Reader
from idnode.server.authz import Identity
from idnode.server.challenges import PendingChallenge
from idnode.server.negotiation import (
    challenge,
    digest_request,
    error_response,
    response_to,
    response_version,
)

__all__ = [
    "COUNTER_WINDOW",
    "ENV_ENCRYPTED",
    "InvalidCredential",
    "InvalidSessionKey",
    "ServerSession",
    "SessionFailed",
    "SessionMessageRejected",
    "SessionTable",
    "SessionTimeout",
    "Sessions",
]

#: Session counters remembered per session for replay defence (the reference keeps 200).
COUNTER_WINDOW: Final = 200
#: Shortest session lifetime the server grants (the reference's floor for its maximum).
MIN_TIMEOUT: Final = 60
#: Requests that are about sessions themselves.
SESSION_OPS: Final = frozenset(
    {OpCode.SESSION_SETUP, OpCode.SESSION_TERMINATE, OpCode.SESSION_EXCHANGEKEY}
)


class SessionTimeout(HandleError):
    """Invalid session id or session time out. Please try again."""

    response_code: ClassVar[ResponseCode] = ResponseCode.SESSION_TIMEOUT


class SessionFailed(HandleError):
    """Session setup failed."""

    response_code: ClassVar[ResponseCode] = ResponseCode.SESSION_FAILED


class InvalidSessionKey(HandleError):
    """Session authentication failed."""

    response_code: ClassVar[ResponseCode] = ResponseCode.INVALID_SESSION_KEY


class SessionMessageRejected(HandleError):
    """Duplicate session counter."""

    response_code: ClassVar[ResponseCode] = ResponseCode.SESSION_MESSAGE_REJECTED


class InvalidCredential(HandleError):
    """Session request missing MAC code."""

    response_code: ClassVar[ResponseCode] = ResponseCode.INVALID_CREDENTIAL


class _ReplayWindow:
    """Counters seen in one session: the last :data:`COUNTER_WINDOW`, and a floor at or below
    which every counter counts as seen (the oldest one remembered, once the window is full;
    as the reference's ``SessionInfo.addSessionCounter``)."""

    def __init__(self) -> None:
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._floor = 0

    def add(self, counter: int, *, unique: bool) -> bool:
        """Record ``counter``; False when ``unique`` and it was seen (or is at or below the
        floor, or 0)."""
        if unique and (counter <= self._floor or counter in self._seen):
            return False
        if counter == 0:
            return not unique
        self._seen[counter] = None
        while len(self._seen) > COUNTER_WINDOW:
            self._seen.popitem(last=False)
            self._floor = max(self._floor, next(iter(self._seen)))
        return True


@dataclass(eq=False)
class ServerSession:
    """One session. ``key`` is None while a mode-2 setup waits for op 402."""

    session_id: int
    key: bytes | None
    algorithm: int
    mode: int
    identity: Identity | None
    timeout: float
    last_used: float
    authenticated: bool = False
    #: A challenge issued to a request of this session, waiting for its answer.
    pending: PendingChallenge | None = None
    _counters: _ReplayWindow = field(default_factory=_ReplayWindow, repr=False)
    _next_counter: int = 1

    def __repr__(self) -> str:  # never the key
        return f"ServerSession({self.session_id}, identity={self.identity})"

    def next_counter(self) -> int:
        counter = self._next_counter
        self._next_counter = counter % 0xFFFFFFFF + 1
        return counter

    def expired(self, now: float) -> bool:
        return now > self.last_used + self.timeout


class SessionTable:
    """Live sessions by id, least recently used first; bounded by ``capacity``."""

    def __init__(self, *, capacity: int = 10000, max_timeout: float = DEFAULT_SESSION_TIMEOUT):
        self._sessions: OrderedDict[int, ServerSession] = OrderedDict()
        self.capacity = capacity
        self.max_timeout = max(MIN_TIMEOUT, max_timeout)

    def __len__(self) -> int:
        return len(self._sessions)

    def close(self) -> None:
        """Release what the table holds open (nothing, in memory)."""

    def new_id(self) -> int:
        session_id = secrets.randbelow(0x7FFFFFFF) + 1
        while session_id in self._sessions:
            session_id = secrets.randbelow(0x7FFFFFFF) + 1
        return session_id

    def add(self, session: ServerSession, now: float) -> None:
        self._expire(now)
        self._sessions[session.session_id] = session
        while len(self._sessions) > self.capacity:
            self._sessions.popitem(last=False)

    def get(self, session_id: int, now: float) -> ServerSession | None:
        """The live session ``session_id``, marked as used now; None if unknown or expired."""
        self._expire(now)
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expired(now):
            del self._sessions[session_id]
            return None
        session.last_used = now
        self._sessions.move_to_end(session_id)
        return session

    def peek(self, session_id: int, now: float) -> ServerSession | None:
        """Like :meth:`get`, without marking the session as used."""
        session = self._sessions.get(session_id)
        return None if session is None or session.expired(now) else session

    def remove(self, session_id: int) -> None:
        self._sessions.pop(session_id, None)

    # -- changes to a session (a shared table writes them through, see shared_sessions) ----

    def record_counter(self, session: ServerSession, counter: int, *, unique: bool) -> bool:
        """Record the client's ``counter`` in ``session``'s replay window; False when
        ``unique`` and it counts as seen (:class:`_ReplayWindow`)."""
        return session._counters.add(counter, unique=unique)

    def next_counter(self, session: ServerSession) -> int:
        """The server's next counter in ``session`` (1, 2, ..., never repeated)."""
        return session.next_counter()

    def set_key(self, session: ServerSession, algorithm: int, key: bytes) -> None:
        session.algorithm, session.key = algorithm, key

    def set_authenticated(self, session: ServerSession) -> None:
        session.authenticated = True

    def hold(self, session: ServerSession, pending: PendingChallenge) -> None:
        """Keep ``pending`` as the challenge of ``session`` (replacing an older one)."""
        session.pending = pending

    def take_pending(self, session: ServerSession) -> PendingChallenge | None:
        """The challenge held in ``session``, removed (single use), or None."""
        pending, session.pending = session.pending, None
        return pending

    def _expire(self, now: float) -> None:
        while self._sessions:
            key, session = next(iter(self._sessions.items()))
            if not session.expired(now):
                break
            del self._sessions[key]


Run = Callable[[Message, Identity | None], Awaitable[Message]]
Lookup = Callable[[str], Awaitable[tuple[HandleValue, ...] | None]]


class Sessions:
    """The server side of sessions, for the dispatcher (see the module docstring).

    ``lookup`` reads a handle held here (for mode 3, a key held in a handle); ``server_key``
    is the server's signing key (mode 2 needs it to be RSA)."""

    def __init__(
        self,
        lookup: Lookup,
        *,
        server_key: PrivateKey | None,
        clock: Callable[[], float],
        site_info_serial: Callable[[], int],
        challenge_timeout: float = 60.0,
        table: SessionTable | None = None,
    ) -> None:
        self.table = table or SessionTable()
        self._challenge_timeout = challenge_timeout
        self._lookup = lookup
        self._server_key = server_key
        self._clock = clock
        self._serial = site_info_serial

    # -- requests ------------------------------------------------------------------------------

    def applies_to(self, request: Message) -> bool:
        """Whether :meth:`handle` takes ``request`` (a session op, or a request in a session;
        challenge answers are the dispatcher's)."""
        if request.op == OpCode.CHALLENGE_RESPONSE:
            return False
        return request.op in SESSION_OPS or request.session_id != 0

    async def handle(self, request: Message, run: Run) -> Message:
        """Answer a session op, or check a request in a session and ``run`` it (as the
        session's identity once authenticated). Raises :class:`HandleError`."""
        if request.op == OpCode.SESSION_SETUP:
            return await self._setup(request)
        now = self._clock()
        session = self.table.get(request.session_id, now) if request.session_id else None
        if session is None:
            raise SessionTimeout()
        if request.op == OpCode.SESSION_TERMINATE:
            self._check_mac(session, request, unique=False)
            self.table.remove(session.session_id)
            return self._success(request, EmptyBody())
        if request.op == OpCode.SESSION_EXCHANGEKEY:
            return self._exchange_key(session, request)
        if session.authenticated:
            self._check_mac(session, request, unique=True)
            return await run(request, session.identity)
        if request.credential:
            self._check_mac(session, request, unique=False)
        pending = session.pending
        if (
            pending is not None
            and pending.expires > now
            and pending.request.request_id == request.request_id
            and pending.request.header_and_body() == request.header_and_body()
        ):
            # The same request again (a UDP resend): the same challenge, as the reference.
            digest = digest_request(request, response_version(request))
            return challenge(
                request, pending.nonce, digest, session.session_id, site_info_serial=self._serial()
            )
        return await run(request, None)

    def _check_mac(self, session: ServerSession, request: Message, *, unique: bool) -> None:
        if not request.credential:
            raise InvalidCredential()
        try:
            credential = Credential.from_bytes(request.credential)
        except ProtocolViolation:
            raise InvalidCredential("malformed credential") from None
        if session.key is None or not verify_mac(
            session.key,
            credential,
            request.version,
            request.suggested_version,
            request.session_id,
            request.request_id,
            request.header_and_body(),
        ):
            raise InvalidSessionKey()
        counter = credential.signer_index
        if unique and counter == 0:
            raise SessionMessageRejected(f"session counter 0 in session {session.session_id}")
        if not self.table.record_counter(session, counter, unique=unique):
            raise SessionMessageRejected(
                f"Duplicate session counter {counter} in session {session.session_id}"
            )

    def _success(self, request: Message, body: SessionSetupResponse | EmptyBody) -> Message:
        return response_to(request, ResponseCode.SUCCESS, body, site_info_serial=self._serial())

    # -- setup -----------------------------------------------------------------------------------

    async def _setup(self, request: Message) -> Message:
        body = request.body
        if not isinstance(body, SessionSetupRequest):
            raise ProtocolViolation("malformed session setup request")
        version = response_version(request)
        algorithm = int(CipherAlgorithm.AES)
        key: bytes | None
        try:
            if body.mode == KeyExchangeMode.DH:
                peer = DHPublicKey.from_bytes(body.public_key)
                ours = DHKeyPair.generate(peer.p, peer.g)
                secret = ours.shared_secret(peer)
                if version < (2, 4):  # old peers: DES from the secret, bare key in the answer
                    algorithm = int(CipherAlgorithm.DES)
                    data = ours.public.to_bytes()
                else:
                    data = dh_response_data(algorithm, ours.public)
                key = derive_session_key(secret, algorithm)
            elif body.mode in (KeyExchangeMode.CIPHER_CLIENT, KeyExchangeMode.CIPHER_HDL):
                if body.mode == KeyExchangeMode.CIPHER_CLIENT:
                    public = body.public_key
                else:
                    public = await self._held_key(body.key_handle, body.key_index)
                rsa_key = PublicKeyData.from_bytes(public).to_public_key()
                if not isinstance(rsa_key, rsa.RSAPublicKey):
                    raise SessionFailed("the key exchange key must be an RSA key")
                key = new_session_key(algorithm)
                data = encrypt_session_key(rsa_key, algorithm, key)
            elif body.mode == KeyExchangeMode.CIPHER_SERVER:
                if not isinstance(self._server_key, rsa.RSAPrivateKey):
                    raise SessionFailed("KEY_EXCHANGE_CIPHER_SERVER not supported")
                server_public = self._server_key.public_key()
                data = PublicKeyData.from_public_key(server_public).to_bytes()
                key = None
            else:
                raise SessionFailed("Unrecognized key exchange mode")
        except ProtocolViolation as exc:
            raise SessionFailed(f"session key exchange failed: {exc}") from None
        now = self._clock()
        identity = None
        if body.identity_handle not in ("", "/"):
            identity = Identity(body.identity_handle, body.identity_index)
        timeout = body.timeout if body.timeout > 0 else DEFAULT_SESSION_TIMEOUT
        session = ServerSession(
            session_id=self.table.new_id(),
            key=key,
            algorithm=algorithm,
            mode=body.mode,
            identity=identity,
            timeout=float(min(max(timeout, MIN_TIMEOUT), self.table.max_timeout)),
            last_used=now,
        )
        self.table.add(session, now)
        response = self._success(request, SessionSetupResponse(body.mode, data))
        return response.replace(session_id=session.session_id)

    async def _held_key(self, handle: str, index: int) -> bytes:
        values = await self._lookup(handle) if handle else None
        for v in values or ():
            if v.index == index and v.type.upper() == "HS_PUBKEY":
                return v.data
        raise SessionFailed("No key found in key exchange handle.")

    def _exchange_key(self, session: ServerSession, request: Message) -> Message:
        """Op 402: the client's key for a mode-2 session, encrypted with the server's key."""
        if session.mode != KeyExchangeMode.CIPHER_SERVER or not isinstance(
            self._server_key, rsa.RSAPrivateKey
        ):
            raise SessionFailed("Invalid session id. Session failed.")
        body = request.body
        try:
            if not isinstance(body, RawBody):
                raise ProtocolViolation("malformed key exchange request")
            reader = Reader(body.data)
            data = reader.byte_array("encrypted session key")
            plain = self._server_key.decrypt(data, padding.PKCS1v15())
            algorithm, key = parse_exchanged_key(plain)
        except (ValueError, ProtocolViolation):
            raise SessionFailed("Can't decrypt client session key.") from None
        self.table.set_key(session, algorithm, key)
        return self._success(request, EmptyBody())

    # -- challenges in a session (dispatcher hooks) -----------------------------------------

    def hold_challenge(self, request: Message, nonce: bytes, digest: bytes) -> bool:
        """Remember a challenge (``nonce``, the raw request ``digest``) to ``request`` under
        its session id; False when the request is in no live session (the dispatcher then
        uses its own table)."""
        now = self._clock()
        session = self.table.peek(request.session_id, now) if request.session_id else None
        if session is None:
            return False
        pending = PendingChallenge(request, nonce, digest, now + self._challenge_timeout)
        self.table.hold(session, pending)
        return True

    def take_challenge(self, session_id: int) -> tuple[ServerSession, PendingChallenge] | None:
        """The live challenge held in session ``session_id`` (single use), with its session."""
        now = self._clock()
        session = self.table.get(session_id, now) if session_id else None
        if session is None or session.pending is None:
            return None
        pending = self.table.take_pending(session)
        if pending is None or pending.expires <= now:
            return None
        return session, pending

    def authenticated(self, session: ServerSession, identity: Identity, original: Message) -> None:
        """After a correct challenge answer in ``session``: the original request's MAC must
        verify (its counter is recorded); the session becomes authenticated when ``identity``
        is the one it was set up for."""
        self._check_mac(session, original, unique=False)
        if session.identity is not None and session.identity == identity:
            self.table.set_authenticated(session)

    # -- responses ------------------------------------------------------------------------------

    def seal(self, response: Message) -> Message | None:
        """``response`` with an ``HS_MAC`` under its session's key, when its request set CT
        and it belongs to a live session with a key (not for ops 400 and 402); else None."""
        if not response.session_id or not response.has(OpFlag.CT):
            return None
        if response.op in (OpCode.SESSION_SETUP, OpCode.SESSION_EXCHANGEKEY):
            return None
        session = self.table.peek(response.session_id, self._clock())
        if session is None or session.key is None:
            return None
        credential = mac_credential(
            session.key,
            response.version,
            response.suggested_version,
            response.session_id,
            response.request_id,
            self.table.next_counter(session),
            response.encode_header_and_body(),
        )
        return response.replace(credential=credential.to_bytes())

    # -- encryption (the ENC flag; transports) ----------------------------------------------

    def unwrap(self, data: bytes) -> bytes | Message:
        """Request ``data`` (envelope first) with its payload decrypted when the envelope's
        encrypted flag is set; else ``data`` itself. When it cannot be decrypted: the error
        response to send instead (500 without a live session, 501 when it does not decrypt;
        opcode 0, as the reference answers)."""
        if len(data) < ENVELOPE_SIZE or not data[2] & ENV_ENCRYPTED:
            return data
        env = Envelope.decode(data)
        try:
            payload = self.decrypt(env.session_id, data[ENVELOPE_SIZE:])
        except HandleError as exc:
            stub = Message(
                op=OpCode.RESERVED,
                body=RawBody(),
                request_id=env.request_id,
                session_id=env.session_id,
                version=(env.major, env.minor),
                suggested_version=(env.suggested_major, env.suggested_minor),
            )
            return error_response(
                stub, exc.response_code, exc.message, site_info_serial=self._serial()
            )
        clear = dataclasses.replace(env, flags=env.flags & ~ENV_ENCRYPTED, length=len(payload))
        return clear.encode() + payload

    def wrap(self, request: Message | None, response: bytes) -> bytes:
        """Encoded ``response`` with its payload encrypted (and the envelope flag set) when
        its ``request`` is in a session and set the ENC flag; else unchanged."""
        if request is None or not request.session_id or not request.has(OpFlag.ENC):
            return response
        if len(response) < ENVELOPE_SIZE:
            return response
        sealed = self.encrypt(request.session_id, response[ENVELOPE_SIZE:])
        if sealed is None:
            return response
        env = Envelope.decode(response)
        env = dataclasses.replace(env, flags=env.flags | ENV_ENCRYPTED, length=len(sealed))
        return env.encode() + sealed

    def decrypt(self, session_id: int, payload: bytes) -> bytes:
        """The payload of an encrypted message of session ``session_id``. Raises
        :class:`SessionTimeout` without a live session, :class:`SessionFailed` when it does
        not decrypt."""
        session = self.table.peek(session_id, self._clock()) if session_id else None
        if session is None:
            raise SessionTimeout()
        if session.key is None:
            raise SessionFailed("no session key yet")
        try:
            return decrypt_payload(session.key, session.algorithm, payload)
        except ProtocolViolation as exc:
            raise SessionFailed(f"Exception decrypting request with session key: {exc}") from None

    def encrypt(self, session_id: int, payload: bytes) -> bytes | None:
        """``payload`` encrypted for session ``session_id``; None when that cannot be done
        (no live session or key, or a cipher other than AES: then it goes out in clear, as
        the reference does when encryption fails)."""
        session = self.table.peek(session_id, self._clock()) if session_id else None
        if session is None or session.key is None:
            return None
        try:
            return encrypt_payload(session.key, session.algorithm, payload)
        except ProtocolViolation:
            return None
