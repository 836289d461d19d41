"""SNMS login tokens valid in every worker process of a node (``workers = N``).

A login token's content never changes: who it was issued to and until when. So rather than a
table of tokens that every worker would have to read, :class:`SignedTokens` makes the token
carry them, signed::

    <username, base64url>.<expiry, Unix seconds>.<HMAC-SHA256, base64url>

The HMAC key is a random secret of the node kept in the shared session database
(:mod:`idnode.server.sessiondb`, mode 0600 in a 0700 directory), made by whichever worker
needs it first; so any worker checks any token with one HMAC and no state of its own. A token
is accepted while its MAC is right and it has not expired (24 hours after the login, as in
memory). Its issue time is its expiry minus the lifetime, the login's time rounded down to
the second: every use checks that the account exists, is enabled and was not disabled at or
after that second (:meth:`~idnode.industry.accounts.AccountService.current`, the account's
``logins_after_ms``), so a disable made in any way, even by ``idnode account disable`` on the
database, ends every token issued before it in every worker, for good.

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

from idnode.industry.accounts import TOKEN_LIFETIME, Login, TokenStore
from idnode.server.sessiondb import SessionDatabase

__all__ = ["SignedTokens"]

_KEY_NAME = "snms token key"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SignedTokens(TokenStore):
    """Signed login tokens (module docstring), the key kept in ``db``."""

    def __init__(
        self,
        db: SessionDatabase,
        clock: Callable[[], float] = time.time,
        lifetime: float = TOKEN_LIFETIME,
    ) -> None:
        super().__init__(clock, lifetime)
        self._key = hmac.new(db.secret(_KEY_NAME), b"idnode snms token", hashlib.sha256).digest()

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, username: str) -> str:
        expires = int(self._clock() + self._lifetime)
        payload = f"{_b64(username.encode('utf-8'))}.{expires}"
        return f"{payload}.{self._mac(payload)}"

    def check(self, token: str) -> Login | None:
        parts = token.split(".")
        if len(parts) != 3 or not token.isascii() or not parts[1].isdigit():
            return None
        payload = ".".join(parts[:2])
        if not hmac.compare_digest(self._mac(payload), parts[2]):
            return None
        try:
            username = _unb64(parts[0]).decode("utf-8")
            expires = int(parts[1])
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return None
        if expires <= self._clock():
            return None
        return Login(username, expires - self._lifetime)
