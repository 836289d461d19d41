"""A native Handle-protocol session on top of :class:`~idnode.client.HandleClient`.

:class:`SessionClient` offers the same operations as HandleClient, sent inside one session
with one server (spec §1.11, §3.3), as the reference resolver does:

1. :meth:`SessionClient.open` sends op 400 (Diffie-Hellman, mode 4, by default; mode 1 with
   an RSA key pair of the client's) naming the client's identity, and derives the session
   key (:mod:`idnode.protocol.session`). The response must carry the digest of our request.
2. Every request then carries the session id and an ``HS_MAC`` credential under the session
   key with the next session counter (1, 2, ...). The first administrative request is
   challenged once; the answer (with the session id) authenticates the whole session, and
   later requests run without a challenge.
3. A response signed with an ``HS_MAC`` (a request with CT) is checked with the session key,
   its counter must not repeat; a bad one raises :class:`AuthenticationFailed`. A client
   that checks certified answers (``verify_with``) asks for them (CT, RD) in the session
   too: the setup answer must be signed by the server, later answers MACed (or signed).
4. With ``encrypt=True`` every request is sent encrypted under the session key with the ENC
   flag (over TCP), and the encrypted responses are decrypted.
5. :meth:`SessionClient.close` (or leaving ``async with``) terminates the session (op 401).

Get one with :meth:`HandleClient.session`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import hmac
import itertools
from types import TracebackType

from cryptography.hazmat.primitives.asymmetric import rsa

from idnode.certified import CERTIFIED_FLAGS, check_response
from idnode.client import HandleClient, HandleOperations
from idnode.errors import AuthenticationFailed, HandleError, ProtocolViolation, error_for_code
from idnode.protocol.auth import request_digest
from idnode.protocol.bodies import (
    Body,
    ErrorBody,
    HandleRequest,
    SessionSetupRequest,
    SessionSetupResponse,
)
from idnode.protocol.codes import OpCode, OpFlag, ResponseCode
from idnode.protocol.credential import HS_MAC, Credential
from idnode.protocol.message import ENVELOPE_SIZE, Envelope, Message
from idnode.protocol.session import (
    DEFAULT_SESSION_TIMEOUT,
    ENV_ENCRYPTED,
    CipherAlgorithm,
    DHKeyPair,
    KeyExchangeMode,
    decrypt_payload,
    decrypt_session_key,
    derive_session_key,
    encrypt_payload,
    mac_credential,
    parse_dh_response_data,
    verify_mac,
)
from idnode.protocol.types.hs_pubkey import PublicKeyData

__all__ = ["SessionClient"]

#: Op flags of a session setup, as the reference resolver sends it: CT, REC, CA, PO, RD.
_SETUP_FLAGS = OpFlag.CT | OpFlag.REC | OpFlag.CA | OpFlag.PO | OpFlag.RD
#: Server counters remembered to refuse a replayed response.
_SEEN_LIMIT = 200


class SessionClient(HandleOperations):
    """Requests to one server inside one session (see the module docstring); the
    operations of :class:`~idnode.client.HandleOperations`.

    ``mode`` is :attr:`KeyExchangeMode.DH` or, with ``exchange_key`` (an RSA private key),
    :attr:`KeyExchangeMode.CIPHER_CLIENT`. ``timeout`` is the session lifetime asked for
    (seconds without use). The session setup goes over UDP unless the client uses TCP.
    """

    def __init__(
        self,
        client: HandleClient,
        *,
        mode: KeyExchangeMode = KeyExchangeMode.DH,
        exchange_key: rsa.RSAPrivateKey | None = None,
        timeout: int = DEFAULT_SESSION_TIMEOUT,
        encrypt: bool = False,
    ) -> None:
        if mode == KeyExchangeMode.CIPHER_CLIENT and exchange_key is None:
            raise ValueError("the client cipher mode needs an RSA exchange key")
        if mode not in (KeyExchangeMode.DH, KeyExchangeMode.CIPHER_CLIENT):
            raise ValueError(f"unsupported key exchange mode {mode}")
        self.client = client
        self.credentials = client.credentials
        self.mode = mode
        self.timeout = timeout
        #: Send every request encrypted with the session key, with the ENC flag (so the
        #: response comes back encrypted too); always over TCP.
        self.encrypt = encrypt
        self._algorithm = int(CipherAlgorithm.AES)
        self._exchange_key = exchange_key
        self.session_id = 0
        self._key: bytes | None = None
        self._counter = itertools.count(1)
        self._seen: dict[int, None] = {}

    @property
    def is_open(self) -> bool:
        return self._key is not None

    def __repr__(self) -> str:
        return f"SessionClient({self.client.host}:{self.client.port}, session={self.session_id})"

    async def __aenter__(self) -> SessionClient:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- setup and teardown ------------------------------------------------------------------

    async def open(self) -> None:
        """Set the session up. Raises the :mod:`idnode.errors` class of an error answer,
        ProtocolViolation for a malformed or mismatched answer."""
        creds = self.client.credentials
        handle, index = (creds.handle, creds.index) if creds is not None else ("", 0)
        dh: DHKeyPair | None = None
        if self.mode == KeyExchangeMode.DH:
            dh = DHKeyPair.generate()
            public = dh.public.to_bytes()
        else:
            assert self._exchange_key is not None
            public = PublicKeyData.from_public_key(self._exchange_key.public_key()).to_bytes()
        body = SessionSetupRequest(int(self.mode), self.timeout, handle, index, public)
        request = self.client.build(OpCode.SESSION_SETUP, body, _SETUP_FLAGS)
        reply = await self.client.exchange(request, self.client.tcp)
        _raise_for_error(reply)
        answer = reply.body
        if not isinstance(answer, SessionSetupResponse) or reply.session_id == 0:
            raise ProtocolViolation("malformed session setup response")
        digest = reply.request_digest
        if digest is None or not hmac.compare_digest(
            request_digest(request.encode_header_and_body(), digest.hash_type), digest.digest
        ):
            raise ProtocolViolation("the session setup response is not for our request")
        if dh is not None:
            algorithm, server_key = parse_dh_response_data(answer.data)
            key = derive_session_key(dh.shared_secret(server_key), algorithm)
        else:
            assert self._exchange_key is not None
            algorithm, key = decrypt_session_key(self._exchange_key, answer.data)
        if self.encrypt and algorithm != CipherAlgorithm.AES:
            raise ProtocolViolation(f"session cipher {algorithm} cannot encrypt here")
        self.session_id = reply.session_id
        self._algorithm = algorithm
        self._key = key

    async def close(self) -> None:
        """Terminate the session (op 401); a session the server no longer knows counts as
        closed. Does nothing if the session is not open."""
        if self._key is None:
            return
        try:
            await self.request(OpCode.SESSION_TERMINATE, HandleRequest("/"))
        except HandleError as exc:
            if getattr(exc, "code", exc.response_code) != ResponseCode.SESSION_TIMEOUT:
                raise
        finally:
            self._key = None

    # -- requests ----------------------------------------------------------------------------

    def sign(self, message: Message) -> Message:
        """``message`` in this session: its session id and the ``HS_MAC`` with the next
        session counter."""
        if self._key is None:
            raise ProtocolViolation("the session is not open")
        message = message.replace(session_id=self.session_id)
        credential = mac_credential(
            self._key,
            message.version,
            message.suggested_version,
            message.session_id,
            message.request_id,
            next(self._counter),
            message.encode_header_and_body(),
        )
        return message.replace(credential=credential.to_bytes())

    async def request(self, op: int, body: Body, *, flags: int = 0, admin: bool = False) -> Body:
        """Send a request in the session, answer a challenge if one comes, and return the
        success body. Raises the :mod:`idnode.errors` class of an error response."""
        use_tcp = self.client.tcp or admin or self.encrypt
        if self.encrypt:
            flags |= OpFlag.ENC
        if self.client.verify_with is not None:
            flags |= CERTIFIED_FLAGS
        unsigned = self.client.build(op, body, flags)
        message = self.sign(unsigned)
        reply = await self._exchange(message, use_tcp)
        if not use_tcp and reply.response_code == ResponseCode.SESSION_MESSAGE_REJECTED:
            # A UDP resend of a query whose first copy arrived (and whose answer was lost)
            # repeats its counter; ask once more with a fresh one.
            message = self.sign(unsigned)
            reply = await self._exchange(message, use_tcp)
        sent, original = message, None
        if reply.response_code == ResponseCode.AUTHENTICATION_NEEDED:
            self._check_reply(reply, sent, None)
            sent, original = self.client.challenge_answer(message, reply), message
            reply = await self._exchange(sent, use_tcp)
        self._check_reply(reply, sent, original)
        _raise_for_error(reply)
        return reply.body

    async def _exchange(self, message: Message, tcp: bool) -> Message:
        """One exchange. The client's own check of certified answers (server signatures) is
        left to :meth:`_check_reply`: in a session the answers are MACed instead."""
        if self.encrypt:
            return await self._exchange_encrypted(message)
        client = self.client
        if client.verify_with is not None:
            client = copy.copy(client)
            client.verify_with = None
        return await client.exchange(message, tcp)

    def _check_reply(self, reply: Message, sent: Message, original: Message | None) -> None:
        """A session-MACed answer must verify (:meth:`_check_mac`). When the client checks
        certified answers (``verify_with``), an answer without a MAC must be signed by the
        server (:func:`~idnode.certified.check_response`)."""
        if reply.credential and Credential.from_bytes(reply.credential).type == HS_MAC:
            self._check_mac(reply)
            digest = reply.request_digest
            if digest is not None and sent.has(OpFlag.RD):
                answered = sent if original is None else original
                ours = request_digest(answered.encode_header_and_body(), digest.hash_type)
                if not hmac.compare_digest(ours, digest.digest):
                    raise AuthenticationFailed("the answer is for another request")
        elif self.client.verify_with is not None and sent.has(OpFlag.CT):
            check_response(reply, sent, self.client.verify_with, original=original)

    async def _exchange_encrypted(self, message: Message) -> Message:
        """One exchange over TCP with the message encrypted under the session key (envelope
        flag 0x40); encrypted responses are decrypted."""
        assert self._key is not None
        data = message.encode()
        sealed = encrypt_payload(self._key, self._algorithm, data[ENVELOPE_SIZE:])
        env = Envelope.decode(data)
        env = dataclasses.replace(env, flags=env.flags | ENV_ENCRYPTED, length=len(sealed))
        async with asyncio.timeout(self.client.timeout):
            reader, writer = await asyncio.open_connection(self.client.host, self.client.port)
            try:
                writer.write(env.encode() + sealed)
                await writer.drain()
                while True:
                    head = Envelope.decode(await reader.readexactly(ENVELOPE_SIZE))
                    payload = await reader.readexactly(head.length)
                    if head.flags & ENV_ENCRYPTED:
                        payload = decrypt_payload(self._key, self._algorithm, payload)
                        flags = head.flags & ~ENV_ENCRYPTED
                        head = dataclasses.replace(head, flags=flags, length=len(payload))
                    reply = Message.decode(head.encode() + payload)
                    if reply.request_id == message.request_id or reply.op == OpCode.RESERVED:
                        return reply
            except asyncio.IncompleteReadError as exc:
                raise ConnectionError("the server closed the connection without answering") from exc
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

    def _check_mac(self, reply: Message) -> None:
        if not reply.credential or self._key is None:
            return
        credential = Credential.from_bytes(reply.credential)
        if credential.type != HS_MAC:
            return
        ok = verify_mac(
            self._key,
            credential,
            reply.version,
            reply.suggested_version,
            reply.session_id,
            reply.request_id,
            reply.header_and_body(),
        )
        counter = credential.signer_index
        if not ok or counter in self._seen:
            raise AuthenticationFailed("the response's session MAC does not verify")
        self._seen[counter] = None
        if len(self._seen) > _SEEN_LIMIT:
            del self._seen[next(iter(self._seen))]


def _raise_for_error(reply: Message) -> None:
    if reply.response_code == ResponseCode.SUCCESS:
        return
    text = reply.body.text if isinstance(reply.body, ErrorBody) else ""
    raise error_for_code(reply.response_code, text)
