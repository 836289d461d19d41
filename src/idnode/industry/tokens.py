"""SNMS login tokens valid in every worker process of a node (``workers = N``).

A login token's content never changes: who it was issued to and until when. So rather than a
table of tokens that every worker would have to read, :class:`SignedTokens` makes the token
carry them, signed::

    <username, base64url>.<generation>.<expiry, Unix seconds>.<HMAC-SHA256, base64url>

The HMAC key is a random secret of the node kept in the shared session database
(:mod:`idnode.server.sessiondb`, mode 0600 in a 0700 directory), made by whichever worker
needs it first; so any worker checks any token with one HMAC and no state of its own. A token
is accepted while its MAC is right, it has not expired (24 hours after the login, as in
memory) and its *generation* is the account's current one: disabling the account through
the SNMS admin API (:meth:`~idnode.industry.accounts.AccountService.set_enabled`) moves the
generation on (one row of the same database), which ends every token issued before in every
worker, and they stay ended once it is enabled again. Every use still checks that the account
exists and is enabled (:meth:`~idnode.industry.accounts.AccountService.authenticate`).

The token shows the username (base64url is no encryption) but nothing else; it is a bearer
credential like the random tokens of a single-process node, which keeps those in memory
(:class:`~idnode.industry.accounts.TokenStore`: no secret on disk, no file access per request).
Tokens outlive a restart of the node (the key stays); deleting the database ends them all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable

from idnode.industry.accounts import TOKEN_LIFETIME, TokenStore
from idnode.server.sessiondb import SessionDatabase

__all__ = ["SignedTokens"]

_KEY_NAME = "snms token key"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SignedTokens(TokenStore):
    """Signed login tokens (module docstring), the generations kept in ``db``."""

    def __init__(
        self,
        db: SessionDatabase,
        clock: Callable[[], float] = time.time,
        lifetime: float = TOKEN_LIFETIME,
    ) -> None:
        super().__init__(clock, lifetime)
        self.db = db
        self._key = hmac.new(db.secret(_KEY_NAME), b"idnode snms token", hashlib.sha256).digest()

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def generation(self, username: str) -> int:
        """The generation of ``username``'s tokens (0 until the account is first disabled)."""
        row = self.db.connection.execute(
            "SELECT generation FROM token_generation WHERE username = ?", (username,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def issue(self, username: str) -> str:
        expires = int(self._clock() + self._lifetime)
        payload = f"{_b64(username.encode('utf-8'))}.{self.generation(username)}.{expires}"
        return f"{payload}.{self._mac(payload)}"

    def username(self, token: str) -> str | None:
        parts = token.split(".")
        if len(parts) != 4 or not token.isascii():
            return None
        payload = ".".join(parts[:3])
        if not hmac.compare_digest(self._mac(payload), parts[3]):
            return None
        name, generation, expires = parts[:3]
        try:
            username = _unb64(name).decode("utf-8")
            if int(expires) <= self._clock():
                return None
            if int(generation) != self.generation(username):
                return None
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        return username

    def revoke(self, username: str) -> None:
        self.db.connection.execute(
            "INSERT INTO token_generation VALUES (?, 1) "
            "ON CONFLICT (username) DO UPDATE SET generation = generation + 1",
            (username,),
        )
