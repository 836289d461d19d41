"""Who is asking: HTTP Basic and the ``Authorization: Handle`` scheme (spec §5.4, §5.5).

Both establish an :class:`~idnode.server.authz.Identity` that the handlers pass to
:meth:`~idnode.server.dispatch.Dispatcher.execute`, so permissions are exactly the native
protocol's. Keys are checked by the dispatcher too: :meth:`Dispatcher.check_secret` (Basic) and
:meth:`Dispatcher.verify_identity` (Handle scheme, verified as a native challenge answer whose
nonce is the session's and whose request digest is the client's ``cnonce``).

* No ``Authorization`` header: anonymous.
* ``Basic base64(<percent-encoded index:handle>:<secret>)``: the decoded bytes are split at
  their first ``:``; the username is percent-decoded (``+`` stays a plus) and split at its
  first ``:`` into index and handle (no digits before it: the whole name is the handle, index 0);
  the secret is compared as raw bytes, **not** percent-decoded (the reference server's rule).
* ``Handle sessionId=..., id=..., type=..., cnonce=..., alg=..., signature=...``: see
  :mod:`idnode.http.sessions` for the session store. ``type="HS_PUBKEY"`` takes ``alg``
  SHA256, SHA1 or MD5 with RSA/DSA, and ``SM3`` with an SM2 key (signature: SM2 with SM3 over
  ``nonce || cnonce``, default identifier, 64-byte ``r || s``). ``sessionId`` alone reuses an
  authenticated session; with ``id`` etc. the answer is verified against that session's nonce.
* Any other header, or credentials that do not verify: 401 (the reference server refuses the
  request before it runs), with ``responseCode`` 403 (authentication failed).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from idnode.errors import HandleError, ServerBusy
from idnode.http.asgi import HTTPError, Request
from idnode.http.sessions import Session, SessionStore
from idnode.protocol.codes import ResponseCode
from idnode.protocol.wire import Writer
from idnode.server.authz import Identity
from idnode.server.dispatch import Dispatcher

__all__ = [
    "AuthFailed",
    "Authenticator",
    "HandleAuthorization",
    "parse_basic",
    "parse_handle_authorization",
    "parse_identity",
    "signed_response",
]

_TOKEN = r"[-A-Za-z0-9!#$%&'*+.`^_|~]+"
_QUOTED = r'"[^\\"]*(?:\\.[^\\"]*)*"'
_HEADER = re.compile(r"\s*Handle\s+(.*)", re.IGNORECASE | re.DOTALL)
_PARAM = re.compile(rf"\s*({_TOKEN})\s*=\s*({_TOKEN}|{_QUOTED})\s*((?:,\s*)*)", re.DOTALL)
_FIELDS = (
    "version", "sessionId", "id", "cnonce", "type", "alg", "signature",
    "salt", "iterations", "length", "clientCert",
)  # fmt: skip


class AuthFailed(HTTPError):
    """Credentials were given and did not establish an identity: 401, responseCode 403."""

    def __init__(self, message: str, *, session: Session | None = None) -> None:
        super().__init__(ResponseCode.AUTHENTICATION_FAILED, message, status=401)
        self.session = session


@dataclass
class HandleAuthorization:
    """The fields of an ``Authorization: Handle`` header (names case-insensitive)."""

    fields: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.fields.get(name.lower())

    def put_if_absent(self, name: str, value: str) -> None:
        if name.lower() in {f.lower() for f in _FIELDS}:
            self.fields.setdefault(name.lower(), value)

    @property
    def session_id(self) -> str | None:
        return self.get("sessionId")

    @property
    def is_authenticating(self) -> bool:
        return any(self.get(n) is not None for n in ("id", "type", "alg", "signature"))

    @property
    def requires_session(self) -> bool:
        return self.session_id is not None or self.is_authenticating


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1], flags=re.DOTALL)
    return value


def percent_decode(text: str) -> str:
    """Percent-decode once; ``+`` stays a plus (Java ``decodeURLIgnorePlus``)."""
    return unquote_to_bytes(text).decode("utf-8", "replace")


def parse_handle_authorization(header: str) -> HandleAuthorization | None:
    """Parse ``Handle k=v, k="v"...`` (Java ``HandleAuthorizationHeader.fromHeader``); None if
    it is not that scheme or not well formed. ``id`` is percent-decoded."""
    m = _HEADER.fullmatch(header)
    if m is None or not m.group(1):
        return None
    text, pos, comma = m.group(1), 0, True
    parsed = HandleAuthorization()
    while pos < len(text):
        p = _PARAM.match(text, pos)
        if p is None or not comma:
            return None
        name, value = p.group(1), _unquote(p.group(2))
        if name.lower() == "id":
            value = percent_decode(value)
        parsed.fields[name.lower()] = value
        comma, pos = bool(p.group(3)), p.end()
    return parsed


def parse_identity(text: str) -> Identity:
    """``index:handle`` (split at the first ``:``); without digits before it, index 0."""
    index, sep, handle = text.partition(":")
    if sep and index.isascii() and index.isdigit() and int(index) <= 0xFFFFFFFF:
        return Identity(handle, int(index))
    return Identity(text, 0)


def _b64(text: str) -> bytes:
    s = "".join(text.split()).rstrip("=").translate(str.maketrans("-_", "+/"))
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)


def parse_basic(header: str) -> tuple[Identity, bytes] | None:
    """``Basic <base64>`` → (identity, raw secret); None if malformed (spec §5.5)."""
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != "basic":
        return None
    try:
        decoded = _b64(parts[1])
    except (ValueError, binascii.Error):
        return None
    username, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return parse_identity(percent_decode(username.decode("utf-8", "replace"))), password


_SECKEY_ALGS = {
    "MD5": 1, "SHA": 2, "SHA1": 2, "SHA-1": 2, "SHA-256": 3, "SHA256": 3, "SHA-2": 3, "SHA2": 3,
    "HMACSHA1": 0x12, "HMACSHA256": 0x13, "PBKDF2HMACSHA1": 0x22, "PBKDF2WITHHMACSHA1": 0x22,
}  # fmt: skip
_PUBKEY_HASH = {1: b"MD5", 2: b"SHA1", 3: b"SHA-256"}
#: ``alg`` of an SM2 signature (SM2 with SM3, 64-byte ``r || s``): HS_PUBKEY only, checked as
#: a native answer with hash name ``SM3`` (an idnode extension, as on the native protocol).
_SM3_ALG = "SM3"


def signed_response(
    auth_type: str, alg: str, signature: bytes, pbkdf2: tuple[bytes, int, int] | None = None
) -> bytes | None:
    """The native ``signedResponse`` for a Handle-scheme answer (Java
    ``constructSignedResponse``): HS_SECKEY → algorithm byte + MAC (PBKDF2: salt, iterations,
    key bits, MAC); HS_PUBKEY → hash name + signature (``alg="SM3"``: an SM2 signature, hash
    name ``SM3``). None for an unknown algorithm or type."""
    key = alg.upper() if alg.upper() in _SECKEY_ALGS else re.sub(r"[^A-Z0-9]", "", alg.upper())
    if key == _SM3_ALG:
        if auth_type.upper() != "HS_PUBKEY":
            return None
        return Writer().utf8(_SM3_ALG).byte_array(signature).getvalue()
    code = _SECKEY_ALGS.get(key)
    if code is None:
        return None
    if auth_type.upper() == "HS_SECKEY":
        if code == 0x22 and pbkdf2 is not None:
            salt, iterations, bits = pbkdf2
            signature = (
                Writer().byte_array(salt).u32(iterations).u32(bits).byte_array(signature).getvalue()
            )
        return bytes([code]) + signature
    if auth_type.upper() == "HS_PUBKEY" and code in _PUBKEY_HASH:
        return Writer().byte_array(_PUBKEY_HASH[code]).byte_array(signature).getvalue()
    return None


class Authenticator:
    """Turns a request's credentials into an identity, with the dispatcher checking the keys."""

    def __init__(self, dispatcher: Dispatcher, sessions: SessionStore) -> None:
        self.dispatcher = dispatcher
        self.sessions = sessions

    async def identify(self, request: Request) -> Identity | None:
        """The identity of ``request`` (None: anonymous); AuthFailed (401) for credentials
        that do not verify."""
        header = request.headers.get("authorization")
        if header is None:
            return None
        if header.strip()[:5].lower() == "basic":
            return await self.basic(header)
        handle_auth = parse_handle_authorization(header)
        if handle_auth is None:
            raise AuthFailed("unsupported or malformed Authorization header")
        if not handle_auth.requires_session:
            return None  # e.g. clientCert="true": TLS client certificates are not supported
        session = self.sessions.get(handle_auth.session_id) if handle_auth.session_id else None
        if session is None:
            raise AuthFailed("unknown or expired session", session=self.sessions.create())
        if handle_auth.is_authenticating:
            return await self.answer(session, handle_auth, header)
        return session.identity

    async def basic(self, header: str) -> Identity:
        parsed = parse_basic(header)
        if parsed is None:
            raise AuthFailed("malformed Basic credentials")
        identity, secret = parsed
        try:
            await self.dispatcher.check_secret(identity, secret)
        except ServerBusy:
            raise  # the client is blocked for failed authentications: 503, RC 3
        except HandleError as exc:
            raise AuthFailed(f"Identity not verified: {exc.message}") from exc
        return identity

    async def answer(self, session: Session, auth: HandleAuthorization, header: str) -> Identity:
        """Verify a Handle-scheme answer against ``session``'s nonce and remember the identity
        in the session (a request repeating the same header is not verified again)."""
        if session.identity is not None and session.auth_header == header:
            return session.identity
        if auth.get("version") not in (None, "0"):
            raise AuthFailed("Unknown version in Authorization: Handle", session=session)
        needed = ("id", "cnonce", "type", "alg", "signature")
        values = {n: auth.get(n) for n in needed}
        if any(v is None for v in values.values()):
            raise AuthFailed("Missing fields in authentication data", session=session)
        try:
            cnonce, signature = _b64(values["cnonce"] or ""), _b64(values["signature"] or "")
            pbkdf2 = None
            if auth.get("salt") is not None:
                pbkdf2 = (
                    _b64(auth.get("salt") or ""),
                    int(auth.get("iterations") or ""),
                    int(auth.get("length") or ""),
                )
        except (ValueError, binascii.Error) as exc:
            raise AuthFailed("Error parsing Authorization: Handle", session=session) from exc
        auth_type, identity = values["type"] or "", parse_identity(values["id"] or "")
        signed = signed_response(auth_type, values["alg"] or "", signature, pbkdf2)
        if signed is None or (
            pbkdf2 is not None and not all(0 <= n <= 0xFFFFFFFF for n in pbkdf2[1:])
        ):
            raise AuthFailed("Error parsing Authorization: Handle", session=session)
        try:
            await self.dispatcher.verify_identity(
                identity, auth_type, signed, session.nonce, cnonce
            )
        except ServerBusy:
            raise
        except HandleError as exc:
            raise AuthFailed(f"Identity not verified: {exc.message}", session=session) from exc
        self.sessions.authenticated(session, identity, header)
        return identity
