"""Checking who a client is: challenge answers and HTTP Basic secrets against the keys held here.

:class:`Authenticator` verifies an answer to a challenge (spec §3.2) against the identity's
HS_SECKEY or HS_PUBKEY value in the store, and a Basic secret (spec §5.5) against its HS_SECKEY;
every attempt goes through the per-address limiter, which blocks clients that fail too often.
Issuing challenges and running the challenged request stay with the dispatcher, which holds
the pending challenges and the sessions.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Iterator

from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from idnode.crypto.sm2 import Sm2PublicKey
from idnode.errors import AuthenticationFailed, ProtocolViolation
from idnode.protocol import auth
from idnode.protocol.types.hs_pubkey import PublicKeyData
from idnode.server.authz import Identity
from idnode.server.origin import PEER
from idnode.server.ratelimit import ClientLimiter
from idnode.store.base import HandleStore

__all__ = ["Authenticator"]


class Authenticator:
    def __init__(self, store: HandleStore, limiter: ClientLimiter) -> None:
        self._store = store
        self._limiter = limiter

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
        values = await self._store.get_handle(identity.handle)
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
            values = await self._store.get_handle(identity.handle)
            value = next((v for v in values or () if v.index == identity.index), None)
            if value is None or value.type.upper() != "HS_SECKEY" or not value.data:
                raise AuthenticationFailed(f"no HS_SECKEY at {identity} on this server")
            if not hmac.compare_digest(value.data, secret):
                raise AuthenticationFailed(f"wrong secret for {identity}")

    @contextlib.contextmanager
    def _auth_attempt(self) -> Iterator[None]:
        """Refuse an authentication from a blocked client; count the ones that fail."""
        peer = PEER.get()
        self._limiter.check_auth(peer)
        try:
            yield
        except AuthenticationFailed:
            self._limiter.auth_failed(peer)
            raise
