"""What every console page shares: the Jinja2 environment, cookies, forms (URL-encoded and
multipart uploads), the CSRF check and the page's security headers."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, quote

import jinja2

from idnode.http.asgi import HTTPError, Request, Response
from idnode.protocol.codes import ResponseCode

__all__ = [
    "CSP",
    "Form",
    "Upload",
    "cookie_header",
    "cookies",
    "csrf_token",
    "environment",
    "handle_url",
    "page",
    "read_form",
    "redirect",
]

#: Content-Security-Policy of every page: the console's own files only, no inline script.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("idnode.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["handle_url"] = handle_url
    return env


def handle_url(handle: str) -> str:
    """``handle`` as a path segment sequence: ``/`` kept, the rest percent-encoded."""
    return quote(handle, safe="/")


def page(html: str, status: int = 200) -> Response:
    response = Response(status, html.encode("utf-8"), content_type="text/html; charset=UTF-8")
    response.header("content-security-policy", CSP)
    response.header("x-content-type-options", "nosniff")
    response.header("referrer-policy", "same-origin")
    response.header("cache-control", "no-store")
    return response


def redirect(location: str, status: int = 303) -> Response:
    return Response(status, b"", content_type=None).header("location", location)


def cookies(request: Request) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(request.headers.get("cookie", ""))
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def cookie_header(
    name: str, value: str, request: Request, *, max_age: int | None = None, http_only: bool = True
) -> str:
    """A ``Set-Cookie`` value: path ``/``, SameSite=Strict, HttpOnly (unless told), Secure
    when the request came over HTTPS; ``max_age`` 0 deletes it."""
    parts = [f"{name}={value}", "Path=/", "SameSite=Strict"]
    if http_only:
        parts.append("HttpOnly")
    if request.scope.get("scheme") == "https":
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def csrf_token(secret: bytes, session: str) -> str:
    """The CSRF token of the forms of ``session`` (a login token or a pre-login nonce)."""
    return hmac.new(secret, session.encode(), hashlib.sha256).hexdigest()[:40]


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


@dataclass
class Form:
    fields: list[tuple[str, str]] = field(default_factory=list)
    files: dict[str, Upload] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        return next((v for k, v in self.fields if k == name), default)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.fields if k == name]

    def lists(self) -> dict[str, list[str]]:
        """Every field's values in order, by name."""
        out: dict[str, list[str]] = {}
        for key, value in self.fields:
            out.setdefault(key, []).append(value)
        return out


def _bad(message: str) -> HTTPError:
    return HTTPError(ResponseCode.PROTOCOL_ERROR, message, status=400)


async def read_form(request: Request) -> Form:
    """The POSTed form: ``application/x-www-form-urlencoded`` or ``multipart/form-data``
    (files kept in memory; the body is limited by the HTTP layer)."""
    content_type = request.headers.get("content-type", "")
    body = await request.body()
    if content_type.startswith("application/x-www-form-urlencoded"):
        text = body.decode("utf-8", "replace")
        return Form(parse_qsl(text, keep_blank_values=True))
    if content_type.startswith("multipart/form-data"):
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        if not message.is_multipart():
            raise _bad("malformed multipart form")
        form = Form()
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            if filename is not None:
                form.files[name] = Upload(filename, data)
            else:
                form.fields.append((name, data.decode("utf-8", "replace")))
        return form
    raise _bad("expected a form (application/x-www-form-urlencoded or multipart/form-data)")


def render(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    return env.get_template(name).render(**context)
