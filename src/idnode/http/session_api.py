"""``/api/sessions`` (spec §5.4; the reference server's ``SessionsServlet``).

* ``POST /api/sessions`` → **201**, ``Location: /api/sessions/this``,
  ``{"sessionId", "nonce"}`` (base64 of the 16-byte server nonce); with valid Basic credentials
  the session is authenticated at once (``"authenticated": true, "id"``). Credentials that do
  not verify leave it unauthenticated with an ``"error"`` member. A ``sessionId`` in the request
  → 400.
* ``GET /api/sessions/this`` (session named by ``Authorization: Handle sessionId="..."`` or a
  ``sessionId`` parameter) → 200 with the session, or ``{"authenticated": false}`` without one.
* ``PUT`` (or ``POST``) ``/api/sessions/this`` with an ``Authorization: Handle`` answer (or the
  same fields as parameters / JSON body members) → 200 ``{"sessionId", "nonce",
  "authenticated": true, "id"}``, or 401 if it does not verify.
* ``DELETE /api/sessions/this`` → 204. An unknown or expired session → 403; any path other
  than ``this`` → 403.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from idnode.http.asgi import HTTPError, Request, Response
from idnode.http.auth import (
    Authenticator,
    AuthFailed,
    HandleAuthorization,
    parse_handle_authorization,
)
from idnode.http.common import JSON_TYPE, Params, protocol_error
from idnode.http.sessions import Session
from idnode.protocol.codes import ResponseCode
from idnode.server.authz import Identity

__all__ = ["SessionsApi"]

_ALLOW_COLLECTION = ("POST", "OPTIONS")
_ALLOW_THIS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS")


def _json(data: dict[str, Any], status: int = 200) -> Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(status, body, content_type=JSON_TYPE)


def _forbidden(message: str) -> HTTPError:
    return HTTPError(ResponseCode.AUTHENTICATION_FAILED, message, status=403)


def representation(
    session: Session | None, identity: Identity | None, error: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if session is not None:
        out["sessionId"] = session.id
        out["nonce"] = base64.b64encode(session.nonce).decode("ascii")
    if identity is not None:
        out["authenticated"] = True
        out["id"] = str(identity)
    if error is not None:
        out["error"] = error
    return out or {"authenticated": False}


class SessionsApi:
    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth

    def allow(self, rest: str) -> tuple[str, ...]:
        return _ALLOW_COLLECTION if rest.rstrip("/") == "" else _ALLOW_THIS

    async def __call__(self, request: Request, rest: str) -> Response:
        """``rest``: the raw path after ``/api/sessions/``; the method is one of :meth:`allow`."""
        rest = rest.rstrip("/")
        if rest == "":
            return await self._create(request)
        if rest != "this":
            raise _forbidden("no such session resource; use /api/sessions/this")
        if request.method != "DELETE":
            return await self._this(request)
        auth = await self._credentials(request)
        session = self.auth.sessions.get(auth.session_id or "")
        if session is None:
            raise _forbidden("unknown or expired session")
        self.auth.sessions.delete(session.id)
        return Response(204, content_type=None)

    async def _credentials(self, request: Request) -> HandleAuthorization:
        """The Handle-scheme fields of the header, completed by request parameters (Java
        ``fromHeaderAndParameters``; an empty parameter counts as ``true``)."""
        header = request.headers.get("authorization")
        auth = (parse_handle_authorization(header) if header else None) or HandleAuthorization()
        params = await Params.read(request, from_body=True)
        for name, value in params.pairs:
            auth.put_if_absent(name, value or "true")
        return auth

    async def _create(self, request: Request) -> Response:
        auth = await self._credentials(request)
        if auth.session_id is not None:
            raise protocol_error("a new session cannot name a sessionId")
        session = self.auth.sessions.create()
        identity, error = await self._authenticate(request, session, auth)
        response = _json(representation(session, identity, error), 201)
        return response.header("location", "/api/sessions/this")

    async def _this(self, request: Request) -> Response:
        auth = await self._credentials(request)
        session = self.auth.sessions.get(auth.session_id) if auth.session_id else None
        if session is None and auth.requires_session:
            raise _forbidden("unknown or expired session")
        identity, error = await self._authenticate(request, session, auth)
        if error is not None:
            raise AuthFailed(error, session=session)
        return _json(representation(session, identity))

    async def _authenticate(
        self, request: Request, session: Session | None, auth: HandleAuthorization
    ) -> tuple[Identity | None, str | None]:
        """(identity, None) or (None, why not); stores a new identity in ``session``."""
        header = request.headers.get("authorization", "")
        try:
            if header.strip()[:5].lower() == "basic":
                identity = await self.auth.basic(header)
                if session is not None:
                    self.auth.sessions.authenticated(session, identity, header)
                return identity, None
            if auth.is_authenticating and session is not None:
                key = header or json.dumps(sorted(auth.fields.items()))
                return await self.auth.answer(session, auth, key), None
        except AuthFailed as exc:
            return None, exc.message
        return (session.identity if session is not None else None), None
