"""A Handle protocol client over UDP and TCP, with challenge-response authentication.

:class:`HandleClient` is async; :class:`SyncHandleClient` wraps it for scripts and the CLI.
A 402 challenge is answered with the client's :class:`Credentials` (secret key or private
key) after checking that the challenge's request digest matches the request sent (spec §3.1).
Error responses raise the matching :mod:`idnode.errors` class.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from idnode.errors import (
    AuthenticationFailed,
    AuthenticationRequired,
    ProtocolViolation,
    error_for_code,
)
from idnode.protocol import auth
from idnode.protocol.bodies import (
    Body,
    ChallengeAnswer,
    ChallengeBody,
    CreateHandleResponse,
    ErrorBody,
    HandleListBody,
    HandleRequest,
    RemoveValuesRequest,
    ResolutionRequest,
    ResolutionResponse,
    SiteInfoBody,
    ValuesRequest,
)
from idnode.protocol.codes import OpCode, OpFlag, ResponseCode
from idnode.protocol.framing import Reassembler, StreamDecoder
from idnode.protocol.message import ENVELOPE_SIZE, Envelope, Message
from idnode.protocol.types.hs_pubkey import PrivateKey
from idnode.protocol.types.hs_site import SiteInfo
from idnode.protocol.values import HandleValue

__all__ = [
    "Credentials",
    "HandleClient",
    "PublicKeyCredentials",
    "SecretKeyCredentials",
    "SyncHandleClient",
]

_DIGESTS = {0: hashlib.md5, 1: hashlib.md5, 2: hashlib.sha1, 3: hashlib.sha256}
_EXPIRY = 12 * 3600  # the reference client's default request lifetime


@dataclass(frozen=True)
class SecretKeyCredentials:
    """Authenticate as ``index:handle`` with the secret held in its HS_SECKEY value."""

    handle: str
    index: int
    secret: bytes

    auth_type = "HS_SECKEY"

    def answer(self, nonce: bytes, digest: bytes, version: tuple[int, int]) -> bytes:
        alg = auth.secret_key_algorithm_for_version(version)
        return auth.make_secret_key_answer(self.secret, nonce, digest, alg)

    def __repr__(self) -> str:
        return f"SecretKeyCredentials({self.index}:{self.handle})"


@dataclass(frozen=True)
class PublicKeyCredentials:
    """Authenticate as ``index:handle`` with the private half of its HS_PUBKEY value."""

    handle: str
    index: int
    private_key: PrivateKey

    auth_type = "HS_PUBKEY"

    def answer(self, nonce: bytes, digest: bytes, version: tuple[int, int]) -> bytes:
        hash_name = auth.default_signature_hash(version, self.private_key)
        return auth.make_public_key_answer(self.private_key, nonce, digest, hash_name)

    def __repr__(self) -> str:
        return f"PublicKeyCredentials({self.index}:{self.handle})"


Credentials = SecretKeyCredentials | PublicKeyCredentials


class HandleClient:
    """Talks to one server at ``host:port``.

    ``tcp`` chooses TCP for every request; otherwise queries go over UDP (retried
    ``retries`` times) and administration over TCP, as the reference client does.
    """

    def __init__(
        self,
        host: str,
        port: int = 2641,
        *,
        tcp: bool = False,
        timeout: float = 5.0,
        retries: int = 2,
        credentials: Credentials | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tcp = tcp
        self.timeout = timeout
        self.retries = retries
        self.credentials = credentials

    # -- operations ---------------------------------------------------------------------------

    async def resolve(
        self,
        handle: str,
        *,
        types: Sequence[str] = (),
        indexes: Sequence[int] = (),
        authoritative: bool = False,
        public_only: bool | None = None,
    ) -> tuple[HandleValue, ...]:
        """The values of ``handle`` matching the filters (all if none are given).

        ``public_only`` defaults to True without credentials, False with them (then values
        without PUBLIC_READ are returned to an authorised admin after a challenge).
        """
        if public_only is None:
            public_only = self.credentials is None
        # REC, as the reference client sends it: a recursive node may resolve for us.
        flags = OpFlag.REC | (OpFlag.PO if public_only else 0) | (OpFlag.AT if authoritative else 0)
        body = ResolutionRequest(handle, tuple(indexes), tuple(types))
        reply = await self.request(OpCode.RESOLUTION, body, flags=flags)
        assert isinstance(reply, ResolutionResponse)
        return reply.values

    async def get_site_info(self) -> SiteInfo:
        reply = await self.request(OpCode.GET_SITE_INFO, HandleRequest("/"))
        assert isinstance(reply, SiteInfoBody)
        return SiteInfo.from_bytes(reply.data)

    async def create_handle(
        self,
        handle: str,
        values: Sequence[HandleValue],
        *,
        overwrite: bool = False,
        mint: bool = False,
    ) -> str:
        """Create ``handle``; returns its name (the minted one when ``mint`` is set)."""
        flags = (OpFlag.OVRW if overwrite else 0) | (OpFlag.MINT if mint else 0)
        body = ValuesRequest(handle, tuple(values))
        reply = await self.request(OpCode.CREATE_HANDLE, body, flags=flags, admin=True)
        assert isinstance(reply, CreateHandleResponse)
        return reply.handle or handle

    async def delete_handle(self, handle: str) -> None:
        await self.request(OpCode.DELETE_HANDLE, HandleRequest(handle), admin=True)

    async def add_values(
        self, handle: str, values: Sequence[HandleValue], *, overwrite: bool = False
    ) -> None:
        flags = OpFlag.OVRW if overwrite else 0
        body = ValuesRequest(handle, tuple(values))
        await self.request(OpCode.ADD_VALUE, body, flags=flags, admin=True)

    async def modify_values(self, handle: str, values: Sequence[HandleValue]) -> None:
        body = ValuesRequest(handle, tuple(values))
        await self.request(OpCode.MODIFY_VALUE, body, admin=True)

    async def remove_values(self, handle: str, indexes: Sequence[int]) -> None:
        body = RemoveValuesRequest(handle, tuple(indexes))
        await self.request(OpCode.REMOVE_VALUE, body, admin=True)

    async def list_handles(self, prefix: str) -> list[str]:
        """Handles under ``prefix`` (given with or without ``0.NA/``)."""
        return await self._list(OpCode.LIST_HANDLES, prefix)

    async def list_derived_prefixes(self, prefix: str) -> list[str]:
        return await self._list(OpCode.LIST_DERIVED_PREFIXES, prefix)

    async def home_prefix(self, prefix: str) -> None:
        await self.request(OpCode.HOME_NA, HandleRequest(_prefix_handle(prefix)), admin=True)

    async def unhome_prefix(self, prefix: str) -> None:
        await self.request(OpCode.UNHOME_NA, HandleRequest(_prefix_handle(prefix)), admin=True)

    async def _list(self, op: OpCode, prefix: str) -> list[str]:
        reply = await self.request(op, HandleRequest(_prefix_handle(prefix)), admin=True)
        assert isinstance(reply, HandleListBody)
        return list(reply.handles)

    # -- messages -----------------------------------------------------------------------------

    def build(self, op: int, body: Body, flags: int = 0) -> Message:
        return Message(
            op=op,
            body=body,
            flags=int(flags),
            request_id=int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF,
            expiration=int(time.time()) + _EXPIRY,
        )

    async def request(self, op: int, body: Body, *, flags: int = 0, admin: bool = False) -> Body:
        """Send a request, answer a challenge if one comes, and return the success body.

        Raises the :mod:`idnode.errors` class of an error response.
        """
        use_tcp = self.tcp or admin
        message = self.build(op, body, flags)
        reply = await self.exchange(message, use_tcp)
        if reply.response_code == ResponseCode.AUTHENTICATION_NEEDED:
            reply = await self._authenticate(message, reply, use_tcp)
        return _success_body(reply)

    async def _authenticate(self, request: Message, challenge: Message, tcp: bool) -> Message:
        if self.credentials is None:
            raise AuthenticationRequired("the server asks for authentication; give credentials")
        body = challenge.body
        if not isinstance(body, ChallengeBody):
            raise ProtocolViolation("malformed challenge")
        if challenge.request_digest is not None:
            hash_type, digest = challenge.request_digest.hash_type, challenge.request_digest.digest
        elif body.old_digest is not None:
            hash_type, digest = 0, body.old_digest
        else:
            raise ProtocolViolation("challenge without a request digest")
        ours = _DIGESTS[hash_type](request.encode_header_and_body()).digest()
        if not hmac.compare_digest(ours, digest):
            raise AuthenticationFailed("the challenge is not for the request we sent")
        version = min(challenge.version, challenge.suggested_version or challenge.version)
        answer_body = ChallengeAnswer(
            self.credentials.auth_type,
            self.credentials.handle,
            self.credentials.index,
            self.credentials.answer(body.nonce, digest, version),
        )
        answer = self.build(OpCode.CHALLENGE_RESPONSE, answer_body, request.flags).replace(
            session_id=challenge.session_id
        )
        return await self.exchange(answer, tcp)

    async def exchange(self, message: Message, tcp: bool) -> Message:
        """Send one message and return the (first) response to it."""
        if tcp:
            return await self._exchange_tcp(message)
        return await self._exchange_udp(message)

    async def _exchange_tcp(self, message: Message) -> Message:
        async with asyncio.timeout(self.timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                writer.write(message.encode())
                await writer.drain()
                return await _read_reply(reader, message.request_id)
            except asyncio.IncompleteReadError as exc:
                raise ConnectionError("the server closed the connection without answering") from exc
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

    async def _exchange_udp(self, message: Message) -> Message:
        loop = asyncio.get_running_loop()
        data = message.encode()
        if len(data) > 512:
            return await self._exchange_tcp(message)
        done: asyncio.Future[Message] = loop.create_future()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UDPReply(done, message.request_id),
            remote_addr=(self.host, self.port),
        )
        try:
            for _attempt in range(self.retries + 1):
                transport.sendto(data)
                try:
                    return await asyncio.wait_for(asyncio.shield(done), self.timeout)
                except TimeoutError:
                    continue
            raise TimeoutError(f"no answer from {self.host}:{self.port} over UDP")
        finally:
            transport.close()


class _UDPReply(asyncio.DatagramProtocol):
    def __init__(self, done: asyncio.Future[Message], request_id: int) -> None:
        self._done = done
        self._request_id = request_id
        self._reassembler = Reassembler(max_pending=4)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self._done.done():
            return
        try:
            whole = self._reassembler.feed(data, time.monotonic())
            if whole is None:
                return
            reply = Message.decode(whole)
        except ProtocolViolation as exc:
            self._done.set_exception(exc)
            return
        if reply.request_id == self._request_id and not reply.is_request:
            self._done.set_result(reply)


async def _read_reply(reader: asyncio.StreamReader, request_id: int) -> Message:
    """Read responses until one answers ``request_id``; continuation parts (CN) of a list
    are merged into one message."""
    decoder = StreamDecoder()
    merged: list[str] = []
    while True:
        head = await reader.readexactly(ENVELOPE_SIZE)
        env = Envelope.decode(head)
        decoder.feed(head + await reader.readexactly(env.length))
        data = decoder.next_message()
        assert data is not None
        reply = Message.decode(data)
        if reply.request_id != request_id:
            continue
        if isinstance(reply.body, HandleListBody) and reply.has(OpFlag.CN):
            merged.extend(reply.body.handles)
            continue
        if merged and isinstance(reply.body, HandleListBody):
            return reply.replace(body=HandleListBody((*merged, *reply.body.handles)))
        return reply


def _success_body(reply: Message) -> Body:
    if reply.response_code == ResponseCode.SUCCESS:
        return reply.body
    text = reply.body.text if isinstance(reply.body, ErrorBody) else ""
    raise error_for_code(reply.response_code, text)


def _prefix_handle(prefix: str) -> str:
    return prefix if prefix.upper().startswith("0.NA/") else f"0.NA/{prefix}"


class SyncHandleClient:
    """Blocking wrapper: each call runs the async client on a private event loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._client = HandleClient(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not asyncio.iscoroutinefunction(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run(method(*args, **kwargs))

        return call
