"""Console logins as signed cookies, valid in every worker process and after a restart.

A session cookie is ``<username, base64url>.<generation>.<expiry>.<MAC>``: the MAC is an
HMAC-SHA256, under the node's console key, of the username, the account's *generation* and
the expiry (Unix seconds, :data:`LIFETIME` after the login). Nothing about a session is kept
in memory, so any process of the node that can read the key accepts it. A cookie is accepted
while its MAC is right, it has not expired, and its generation is the account's current one:
logging out moves the account's generation on, which ends every console session of that
account, in every process. The page still checks, on every request, that the account exists,
is enabled and was not disabled at or after the cookie was issued (its expiry minus
:data:`LIFETIME`, in whole seconds; :meth:`idnode.industry.accounts.AccountService.current`):
however the account was disabled (the console, the SNMS admin API, ``idnode account
disable``), its sessions from before stay ended once it is enabled again.

Files, in ``<node dir>/.console`` (mode 0700), made on first use:

* ``session.key``: 32 random bytes (hex), mode 0600, written to a temporary file and linked
  into place, so concurrent first uses by several workers agree on one key. Deleting it ends
  every console session (and form token) at the next start.
* ``generations/<username, hex>``: the account's generation, a decimal number (absent: 0),
  replaced atomically.

The forms' CSRF tokens are HMACs of the session cookie (or of the pre-login nonce) under a
key derived from the same file, so they too are valid in every worker.

Without a directory (a console built without a node configuration) the key and the
generations are kept in memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from idnode.industry.accounts import Login

__all__ = ["LIFETIME", "Sessions"]

#: Seconds a console login lasts (as an SNMS login token: 24 h).
LIFETIME = 24 * 3600
KEY_FILE = "session.key"
GENERATIONS = "generations"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Issue and check console session cookies (module docstring)."""

    def __init__(
        self,
        directory: Path | None,
        *,
        lifetime: int = LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.lifetime = lifetime
        self._clock = clock
        self._memory: dict[str, int] = {}
        key = secrets.token_bytes(32) if directory is None else self._load_key(directory)
        self._key = hmac.new(key, b"idnode console session", hashlib.sha256).digest()
        #: The key of the forms' CSRF tokens.
        self.csrf_key = hmac.new(key, b"idnode console csrf", hashlib.sha256).digest()

    @staticmethod
    def _load_key(directory: Path) -> bytes:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = directory / KEY_FILE
        if not path.exists():
            temporary = directory / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, secrets.token_hex(32).encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(temporary, path)  # fails if another process made it first
            except FileExistsError:
                pass
            finally:
                temporary.unlink()
        try:
            key = bytes.fromhex(path.read_text(encoding="ascii").strip())
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} does not hold a console key (hex); delete it") from exc
        if len(key) < 16:
            raise ValueError(f"{path} holds a key too short; delete it")
        return key

    # -- generations -------------------------------------------------------------------------
    def _generation_path(self, username: str) -> Path:
        assert self.directory is not None
        return self.directory / GENERATIONS / username.encode("utf-8").hex()

    def generation(self, username: str) -> int:
        """The account's current generation (0 until its first logout)."""
        if self.directory is None:
            return self._memory.get(username, 0)
        try:
            return int(self._generation_path(username).read_text(encoding="ascii"))
        except (FileNotFoundError, ValueError):
            return 0

    def revoke(self, username: str) -> None:
        """End every session of ``username`` (its generation moves on)."""
        following = self.generation(username) + 1
        if self.directory is None:
            self._memory[username] = following
            return
        path = self._generation_path(username)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        temporary.write_text(str(following), encoding="ascii")
        os.replace(temporary, path)

    # -- cookies -----------------------------------------------------------------------------
    def _mac(self, username: str, generation: int, expires: int) -> str:
        message = f"{username}\0{generation}\0{expires}".encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def issue(self, username: str) -> str:
        """A session cookie value for ``username``, valid :attr:`lifetime` seconds."""
        generation = self.generation(username)
        expires = int(self._clock()) + self.lifetime
        name = _b64(username.encode("utf-8"))
        return f"{name}.{generation}.{expires}.{self._mac(username, generation, expires)}"

    def check(self, cookie: str) -> Login | None:
        """Who a valid session cookie was issued to, and when; None when it is malformed,
        forged, expired or revoked."""
        parts = cookie.split(".")
        if len(parts) != 4 or not all(p.isascii() and p.isdigit() for p in parts[1:3]):
            return None
        try:
            username = _unb64(parts[0]).decode("utf-8")
            generation, expires = int(parts[1]), int(parts[2])
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(parts[3], self._mac(username, generation, expires)):
            return None
        if expires <= self._clock() or generation != self.generation(username):
            return None
        return Login(username, expires - self.lifetime)
