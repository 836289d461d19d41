"""The web console: an ASGI handler for ``/console/...`` and the node's home page ``/``.

Pages (``/console`` omitted; every page in English or Chinese by the ``lang`` cookie, which
``?lang=en|zh`` sets)::

    /                      search box (also at the node's ``/``)
    /resolve?q=            what the box names → the identifier page (or 400/404 page)
    /id/<handle>           values with the template's labels, template, history, grants
    /trace/<handle>        the trace graph as SVG (?depth, ?direction, ?expand=<handle>...)
    /login  /logout        session login with an account (POST, CSRF-checked)
    /admin                 the account, its prefixes
    /admin/templates       list and create templates
    /admin/register        register an identifier against a template
    /admin/registrations   identifiers of the account's prefixes (?prefix, ?template, ?q,
                           ?page)
    /admin/grants          per-attribute view grants of a template (?template)
    /admin/apps            app identities of the enterprise; create one (its key pasted or
                           made here, the private key shown once and not kept)
    /admin/app?name=       one app: add or revoke a key (rotation), disable or enable it
    /admin/import          upload a CSV/JSON Lines file; /admin/import/<id> shows progress
                           (/admin/import/<id>/status: JSON for the progress bar)
    /dashboard             statistics, cache hit rate, peers (node admins and auditors)
    /static/<file>         the console's CSS and JavaScript

Sessions: logging in (``AccountService.login``, the SNMS password check, with the
dispatcher's limiter) sets the ``idnode_session`` cookie (HttpOnly, SameSite=Strict, Secure
over HTTPS), a signed cookie valid in every worker process and after a restart
(:mod:`idnode.console.sessions`); logging out ends all of the account's sessions. Every form
carries a CSRF token (an HMAC of the session cookie under a key derived from the node's
console key), and a POST without the right one is refused with 403. The login form's token
is bound to a pre-login cookie (``idnode_pre``).
"""

from __future__ import annotations

import base64
import importlib.resources
import logging
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

import jinja2

from idnode.console import admin as ops
from idnode.console.appkeys import app_keys, key_from_form
from idnode.console.dashboard import gather
from idnode.console.graph import layout, merge
from idnode.console.i18n import LANGUAGES, pick_language, translator
from idnode.console.imports import ImportJobs, started_by
from idnode.console.lookup import gs1_candidates, parse_input
from idnode.console.records import Reader, iso, label_of, template_name
from idnode.console.sessions import Sessions
from idnode.console.viewer import Viewer
from idnode.console.web import (
    Form,
    cookie_header,
    cookies,
    csrf_token,
    environment,
    new_nonce,
    page,
    read_form,
    redirect,
)
from idnode.errors import AuthenticationFailed, HandleError, InvalidValue
from idnode.http.asgi import STATUS_FOR_CODE, Handler, HTTPError, Request, Response, json_response
from idnode.http.gs1 import GS1Rule
from idnode.http.gs1_syntax import InvalidDigitalLink
from idnode.industry.accounts import ACTIONS, APP_KEY_INDEX, Role, service_for
from idnode.industry.codes import TemplateViolation
from idnode.industry.model import AttributeType
from idnode.industry.records import template_link
from idnode.industry.trace import MAX_DEPTH, Direction
from idnode.protocol.codes import ResponseCode
from idnode.server.config import NodeConfig
from idnode.server.dispatch import Dispatcher
from idnode.store.accounts_sql import Account
from idnode.store.base import handle_key, prefix_of

__all__ = ["BASE", "Console", "RootPage", "mount"]

log = logging.getLogger(__name__)

BASE = "/console"
SESSION_COOKIE = "idnode_session"
PRE_COOKIE = "idnode_pre"
LANG_COOKIE = "idnode_lang"
PAGE_SIZE = 20
#: Records read at a time when filtering the registrations by template.
SCAN_BATCH = 500
#: Records read to find the home page's examples.
EXAMPLE_SCAN = 300
#: Depth of the trace page unless ``?depth`` says otherwise.
TRACE_DEPTH = 4
ATTRIBUTE_TYPES = [str(t) for t in AttributeType]
WRITERS = (Role.NODE_ADMIN, Role.ENTERPRISE_ADMIN, Role.APP)
#: Who creates apps, adds and revokes their keys, disables and enables them.
APP_MANAGERS = (Role.NODE_ADMIN, Role.ENTERPRISE_ADMIN)
_STATIC_TYPES = {".css": "text/css; charset=UTF-8", ".js": "text/javascript; charset=UTF-8",
                 ".svg": "image/svg+xml"}  # fmt: skip

Page = Callable[[Request, "Context"], Awaitable[Response]]


class Forbidden(Exception):
    """The page needs a login, or a role the account lacks."""


class Context:
    """What one request's page knows: language, viewer, CSRF token."""

    def __init__(self, console: Console, request: Request, viewer: Viewer, lang: str) -> None:
        self.console = console
        self.request = request
        self.viewer = viewer
        self.lang = lang
        self.t = translator(lang)
        session = viewer.token or cookies(request).get(PRE_COOKIE) or ""
        self.csrf = csrf_token(console.sessions.csrf_key, session) if session else ""
        self.set_cookies: list[str] = []

    def render(self, name: str, status: int = 200, **values: Any) -> Response:
        path = self.request.path
        query = [(k, v) for k, v in self.request.query if k != "lang"]
        other = "zh" if self.lang == "en" else "en"
        switch = path + "?" + urlencode([*query, ("lang", other)])
        html = self.console.env.get_template(name).render(
            t=self.t, lang=self.lang, viewer=self.viewer, csrf=self.csrf, base=BASE,
            switch=switch, path=path, accounts=self.console.service is not None, **values,
        )  # fmt: skip
        response = page(html, status)
        for cookie in self.set_cookies:
            response.header("set-cookie", cookie)
        return response

    def error(self, status: int, message: str) -> Response:
        return self.render("error.html", status, message=message)


class Console:
    """The console of one node (module docstring)."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        rules: Sequence[GS1Rule] = (),
        config: NodeConfig | None = None,
        examples: Sequence[str] = (),
        work_dir: Path | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.rules = tuple(rules)
        self.config = config
        self.examples = tuple(examples)
        self.env: jinja2.Environment = environment()
        #: Signed session cookies, valid in every worker and after a restart (sessions.py).
        self.sessions = Sessions(config.directory / ".console" if config else None)
        store = dispatcher.store
        #: The node's one account service, so a disable here revokes tokens everywhere.
        self.service = service_for(dispatcher)
        directory = work_dir or (config.directory / "imports" if config else Path("imports"))
        self.imports = ImportJobs(store, directory)
        self.static = importlib.resources.files("idnode.console") / "static"
        self.pages: dict[tuple[str, str], Page] = {
            ("GET", ""): self.home,
            ("GET", "resolve"): self.resolve,
            ("GET", "login"): self.login_form,
            ("POST", "login"): self.login,
            ("POST", "logout"): self.logout,
            ("GET", "admin"): self.admin_home,
            ("POST", "admin/prefixes"): self.prefix_action,
            ("GET", "admin/templates"): self.templates,
            ("POST", "admin/templates"): self.create_template,
            ("GET", "admin/template"): self.edit_template,
            ("POST", "admin/template"): self.add_attributes,
            ("GET", "admin/register"): self.register_form,
            ("POST", "admin/register"): self.register,
            ("GET", "admin/registrations"): self.registrations,
            ("GET", "admin/grants"): self.grants,
            ("POST", "admin/grants"): self.save_grants,
            ("POST", "admin/identifier-grant"): self.save_identifier_grant,
            ("GET", "admin/apps"): self.apps,
            ("POST", "admin/apps"): self.create_app,
            ("GET", "admin/app"): self.app_page,
            ("POST", "admin/app"): self.app_action,
            ("GET", "admin/import"): self.import_form,
            ("POST", "admin/import"): self.start_import,
            ("GET", "dashboard"): self.dashboard,
        }

    # -- plumbing ----------------------------------------------------------------------------
    async def _viewer(self, request: Request) -> Viewer:
        token = cookies(request).get(SESSION_COOKIE)
        if not token or self.service is None:
            return Viewer()
        account = await self.service.current(self.sessions.check(token))
        if account is None:
            return Viewer()
        return Viewer(account, token)

    async def context(self, request: Request) -> Context:
        jar = cookies(request)
        lang = request.param("lang")
        ctx_lang = lang if lang in LANGUAGES else pick_language(
            jar.get(LANG_COOKIE), request.headers.get("accept-language", ""))  # fmt: skip
        ctx = Context(self, request, await self._viewer(request), ctx_lang)
        if lang in LANGUAGES:
            ctx.set_cookies.append(
                cookie_header(LANG_COOKIE, ctx_lang, request, max_age=365 * 86400)
            )
        return ctx

    async def __call__(self, request: Request) -> Response:
        rest = request.path[len(BASE) :].strip("/") if request.path.startswith(BASE) else ""
        method = "GET" if request.method == "HEAD" else request.method
        if rest.startswith("static/") and method == "GET":
            return self._static(rest[len("static/") :])
        ctx = await self.context(request)
        try:
            handler = self.pages.get((method, rest))
            if handler is not None:
                if method == "POST":
                    await self._check_csrf(request, ctx)
                return await handler(request, ctx)
            if method == "GET":
                raw = request.raw_path[len(BASE) :].lstrip("/")
                for name, view in (("id/", self.identifier), ("trace/", self.trace)):
                    if raw.startswith(name) and len(raw) > len(name):
                        return await view(request, ctx, _decode(raw[len(name) :]))
                if rest.startswith("admin/import/"):
                    return await self.import_progress(request, ctx, rest.split("/", 3)[2:])
            if any(key[1] == rest for key in self.pages):
                return ctx.error(405, f"{request.method} is not allowed here")
            return ctx.error(404, f"no page {request.path}")
        except Forbidden as exc:
            if ctx.viewer.account is None:
                return redirect(f"{BASE}/login?" + urlencode({"next": request.path}))
            return ctx.error(403, str(exc) or ctx.t("admin.forbidden"))
        except HTTPError as exc:
            return ctx.error(exc.status, exc.message)

    async def _check_csrf(self, request: Request, ctx: Context) -> None:
        form = await read_form(request)
        request.scope["idnode.form"] = form
        if not ctx.csrf or form.get("csrf") != ctx.csrf:
            raise HTTPError(ResponseCode.PROTOCOL_ERROR, ctx.t("csrf"), status=403)

    @staticmethod
    def _form(request: Request) -> Form:
        form = request.scope.get("idnode.form")
        assert isinstance(form, Form)
        return form

    def _static(self, name: str) -> Response:
        suffix = os.path.splitext(name)[1]
        if "/" in name or suffix not in _STATIC_TYPES:
            return Response(404, b"not found", content_type="text/plain; charset=UTF-8")
        resource = self.static / name
        if not resource.is_file():
            return Response(404, b"not found", content_type="text/plain; charset=UTF-8")
        response = Response(200, resource.read_bytes(), content_type=_STATIC_TYPES[suffix])
        return response.header("cache-control", "max-age=3600").header(
            "x-content-type-options", "nosniff"
        )

    def _require(self, ctx: Context, *roles: Role) -> None:
        account = ctx.viewer.account
        if account is None:
            raise Forbidden()
        if roles and account.role not in roles:
            raise Forbidden(ctx.t("admin.forbidden"))

    def _error_of(self, ctx: Context, exc: HandleError) -> Response:
        status = STATUS_FOR_CODE.get(int(exc.response_code), 500)
        message = exc.message or (type(exc).__doc__ or "error").strip().splitlines()[0]
        return ctx.error(status if status >= 400 else 400, message)

    # -- resolve -----------------------------------------------------------------------------
    async def home(self, request: Request, ctx: Context) -> Response:
        return ctx.render("home.html", examples=await self._examples(), query="")

    async def _examples(self) -> tuple[str, ...]:
        """The examples under the search box: those given, else (found once) a few
        identifiers of this node registered against templates, and a scanned-code form of
        one the GS1 rules map."""
        if self.examples:
            return self.examples
        found: list[str] = []
        templates: set[str] = set()
        gs1: list[str] = []
        patterns = [(re.compile(re.escape(r.template).replace(r"\{gtin14\}", r"(\d{14})")), r)
                    for r in self.rules if r.ai == "01" and "{gtin14}" in r.template]  # fmt: skip
        for handle, values in await self.dispatcher.store.scan(None, EXAMPLE_SCAN):
            link = template_link(values)
            if len(found) < 3 and link is not None and link[0] not in templates:
                templates.add(link[0])  # one identifier per template
                found.append(handle)
            for pattern, _rule in patterns:
                match = pattern.fullmatch(handle)
                if match and not gs1:
                    gs1.append(f"(01){match.group(1)}")
        self.examples = (*found, *gs1)
        return self.examples

    async def resolve(self, request: Request, ctx: Context) -> Response:
        text = request.param("q") or ""
        try:
            lookup = parse_input(text)
        except (ValueError, InvalidDigitalLink) as exc:
            return ctx.render("home.html", 400, examples=await self._examples(), query=text,
                              problem=f"{ctx.t('resolve.bad')}: {exc}")  # fmt: skip
        reader = Reader(self.dispatcher)
        if lookup.link is not None:
            candidates = gs1_candidates(lookup.link, self.rules)
            found = await reader.exists(candidates, ctx.viewer.identity)
            if found is None:
                tried = ", ".join(candidates) or lookup.link.path()
                return ctx.render("home.html", 404, examples=await self._examples(), query=text,
                                  problem=f"{ctx.t('resolve.unknown')}: {tried}")  # fmt: skip
            handle = found
        else:
            assert lookup.handle is not None
            handle = lookup.handle
        return redirect(f"{BASE}/id/{quote(handle, safe='/')}")

    async def identifier(self, request: Request, ctx: Context, handle: str, status: int = 200,
                         problem: str = "", done: bool = False) -> Response:  # fmt: skip
        reader = Reader(self.dispatcher)
        try:
            view = await reader.view(handle, ctx.viewer.identity, ctx.lang)
        except HandleError as exc:
            return self._error_of(ctx, exc)
        name = None if view.template is None else template_name(view.template, ctx.lang)
        history = None
        if view.history is not None:
            history = [(iso(e.date_ms), e.action.name.lower(), e.actor or "", e.origin or "")
                       for e in view.history]  # fmt: skip
        grant = ops.instance_grant_of(view.values) if view.is_admin else None
        return ctx.render(
            "identifier.html", status, view=view, template_label=name, history=history,
            grant=grant, problem=problem, done=done,
        )  # fmt: skip

    async def save_identifier_grant(self, request: Request, ctx: Context) -> Response:
        """An administrator of an identifier sets who may view all its attributes."""
        self._require(ctx, *WRITERS)
        form = self._form(request)
        handle = form.get("handle")
        identity = ctx.viewer.identity
        assert identity is not None
        try:
            await ops.set_instance_grant(
                self.dispatcher, identity, handle, form.get("scope"), form.get("readers")
            )
        except HandleError as exc:
            return await self.identifier(request, ctx, handle, 400, problem=exc.message)
        return await self.identifier(request, ctx, handle, done=True)

    # -- trace -------------------------------------------------------------------------------
    async def trace(self, request: Request, ctx: Context, handle: str) -> Response:
        try:
            depth = int(request.param("depth") or TRACE_DEPTH)
            direction = Direction(request.param("direction") or Direction.BOTH)
        except ValueError:
            return ctx.error(400, "depth must be a number, direction up, down or both")
        depth = max(0, min(depth, MAX_DEPTH))
        expand = list(dict.fromkeys(e for e in request.params("expand") if e))[:20]
        reader = Reader(self.dispatcher)
        tracer = reader.tracer()
        viewer = ctx.viewer.identity
        try:
            graph = await tracer.trace(handle, depth, direction, viewer)
        except HandleError as exc:
            return self._error_of(ctx, exc)
        parts = [(graph.nodes, graph.edges)]
        for extra in expand:
            try:
                more = await tracer.trace(extra, 1, Direction.BOTH, viewer)
            except HandleError:
                continue
            parts.append((more.nodes, more.edges))
        nodes, edges = merge(parts)
        names: dict[str, str] = {}
        for node in nodes:
            if node.template and node.template not in names:
                found = await reader.template(node.template, node.template_version)
                names[node.template] = template_name(found, ctx.lang) if found else node.template
        drawing = layout(graph.root, nodes, edges, names)
        base_query = [("depth", str(depth)), ("direction", str(direction))]
        base_query += [("expand", e) for e in expand]

        def expand_url(target: str) -> str:
            query = base_query + ([("expand", target)] if target not in expand else [])
            return f"{BASE}/trace/{quote(graph.root, safe='/')}?" + urlencode(query)

        return ctx.render(
            "trace.html", graph=graph, drawing=drawing, depth=depth, direction=str(direction),
            expand_url=expand_url, truncated=graph.truncated, edges=edges,
            max_depth=MAX_DEPTH, label_of=label_of, expanded=expand,
        )  # fmt: skip

    # -- login -------------------------------------------------------------------------------
    async def login_form(self, request: Request, ctx: Context, status: int = 200,
                         problem: str = "") -> Response:  # fmt: skip
        if not ctx.csrf:
            nonce = new_nonce()
            ctx.csrf = csrf_token(self.sessions.csrf_key, nonce)
            ctx.set_cookies.append(cookie_header(PRE_COOKIE, nonce, request))
        return ctx.render("login.html", status, problem=problem,
                          next=_safe_next(request.param("next")))  # fmt: skip

    async def login(self, request: Request, ctx: Context) -> Response:
        if self.service is None:
            return ctx.error(404, ctx.t("login.unavailable"))
        form = self._form(request)
        username = form.get("username")
        try:
            # the password check and the limiter of the SNMS login; its token is not used
            await self.service.login(username, form.get("password"))
        except AuthenticationFailed:
            return await self.login_form(request, ctx, 403, ctx.t("login.failed"))
        except HandleError as exc:
            return self._error_of(ctx, exc)
        token = self.sessions.issue(username)
        response = redirect(_safe_next(form.get("next")) or f"{BASE}/admin")
        response.header("set-cookie", cookie_header(SESSION_COOKIE, token, request))
        return response.header("set-cookie", cookie_header(PRE_COOKIE, "", request, max_age=0))

    async def logout(self, request: Request, ctx: Context) -> Response:
        """End the account's sessions (in every browser and process: sessions.py)."""
        if ctx.viewer.account is not None:
            self.sessions.revoke(ctx.viewer.account.username)
        response = redirect(f"{BASE}/")
        return response.header("set-cookie", cookie_header(SESSION_COOKIE, "", request, max_age=0))

    # -- administration ----------------------------------------------------------------------
    async def _prefixes(self, ctx: Context) -> list[str]:
        assert self.service is not None
        return await ctx.viewer.prefixes(self.service.repository, self.dispatcher)

    async def admin_home(self, request: Request, ctx: Context, status: int = 200,
                         problem: str = "") -> Response:  # fmt: skip
        self._require(ctx)
        assert self.service is not None and ctx.viewer.account is not None
        repo = self.service.repository
        enterprise = ctx.viewer.account.enterprise_id
        own = None if ctx.viewer.reads_node else enterprise
        applications = [] if own is None and not ctx.viewer.reads_node else \
            await repo.list_applications(own)  # fmt: skip
        actions = {
            a.prefix: [name for name, (sources, _to) in ACTIONS.items() if a.state in sources]
            for a in applications
        }
        enterprises = await repo.list_enterprises() if ctx.viewer.role == Role.NODE_ADMIN else []
        return ctx.render(
            "admin.html", status, applications=applications, prefixes=await self._prefixes(ctx),
            actions=actions, enterprises=enterprises, problem=problem,
        )  # fmt: skip

    async def prefix_action(self, request: Request, ctx: Context) -> Response:
        """Apply for a prefix (node and enterprise admins), or move an application on
        (``approve``, ``suspend``, ... : node admins), through the account service."""
        self._require(ctx, Role.NODE_ADMIN, Role.ENTERPRISE_ADMIN)
        assert self.service is not None and ctx.viewer.account is not None
        account = ctx.viewer.account
        form = self._form(request)
        prefix, action = form.get("prefix").strip(), form.get("action")
        try:
            if action == "apply":
                enterprise = form.get("enterprise") or account.enterprise_id or ""
                await self.service.apply(account, prefix, enterprise)
            else:
                await self.service.transition(account, prefix, action)
        except HandleError as exc:
            return await self.admin_home(request, ctx, 400, problem=exc.message)
        return redirect(f"{BASE}/admin")

    async def _templates(self, ctx: Context) -> list[tuple[str, str, str]]:
        """(handle, name, status) of the templates under the account's prefixes."""
        out = []
        reader = Reader(self.dispatcher)
        for prefix in await self._prefixes(ctx):
            for handle in await self.dispatcher.store.list_handles(prefix):
                if not handle.split("/", 1)[1].upper().startswith(ops.TEMPLATE_MARK):
                    continue
                history = await reader.history(handle)
                if history is None or not history.versions:
                    continue
                latest = history.latest
                out.append((handle, template_name(latest, ctx.lang), str(latest.status)))
        return out

    async def templates(self, request: Request, ctx: Context, status: int = 200,
                        problem: str = "", done: str = "") -> Response:  # fmt: skip
        self._require(ctx)
        return ctx.render(
            "templates.html", status, templates=await self._templates(ctx),
            prefixes=await self._prefixes(ctx), problem=problem, done=done,
            types=ATTRIBUTE_TYPES, rows=range(5),
        )  # fmt: skip

    async def create_template(self, request: Request, ctx: Context) -> Response:
        self._require(ctx, *WRITERS)
        form = self._form(request)
        lists = form.lists()
        prefix, name = form.get("prefix").strip(), form.get("version").strip()
        handle = f"{prefix}/{ops.TEMPLATE_MARK}{name}"
        try:
            if prefix not in await self._prefixes(ctx):
                raise InvalidValue(f"{prefix!r} is not one of your prefixes")
            template = ops.template_definition(lists, handle)
            identity = ctx.viewer.identity
            assert identity is not None
            await ops.create_template(self.dispatcher, identity, template)
        except HandleError as exc:
            return await self.templates(request, ctx, 400, problem=exc.message)
        return await self.templates(request, ctx, done=handle)

    async def edit_template(self, request: Request, ctx: Context, status: int = 200,
                            problem: str = "", done: bool = False) -> Response:  # fmt: skip
        self._require(ctx)
        form = request.scope.get("idnode.form")
        handle = form.get("handle") if isinstance(form, Form) else request.param("handle") or ""
        if prefix_of(handle) not in await self._prefixes(ctx):
            raise Forbidden(ctx.t("admin.forbidden"))
        history = await Reader(self.dispatcher).history(handle)
        if history is None:
            return ctx.error(404, f"no template {handle}")
        return ctx.render(
            "template_edit.html", status, handle=handle, template=history.latest,
            problem=problem, done=done, types=ATTRIBUTE_TYPES, rows=range(3),
        )  # fmt: skip

    async def add_attributes(self, request: Request, ctx: Context) -> Response:
        self._require(ctx, *WRITERS)
        form = self._form(request)
        handle = form.get("handle")
        if prefix_of(handle) not in await self._prefixes(ctx):
            raise Forbidden(ctx.t("admin.forbidden"))
        identity = ctx.viewer.identity
        assert identity is not None
        try:
            await ops.add_attributes(self.dispatcher, identity, handle, form.lists())
        except HandleError as exc:
            return await self.edit_template(request, ctx, 400, problem=exc.message)
        return await self.edit_template(request, ctx, done=True)

    async def register_form(self, request: Request, ctx: Context, status: int = 200,
                            problem: str = "", errors: list[str] | None = None,
                            done: str = "") -> Response:  # fmt: skip
        self._require(ctx)
        chosen = request.param("template") or ""
        form = request.scope.get("idnode.form")
        if isinstance(form, Form):
            chosen = form.get("template") or chosen
        template = None
        if chosen:
            history = await Reader(self.dispatcher).history(chosen)
            template = history.current if history is not None else None
        return ctx.render(
            "register.html", status, templates=await self._templates(ctx), chosen=chosen,
            template=template, problem=problem, errors=errors or [], done=done,
            form=form if isinstance(form, Form) else Form(),
        )  # fmt: skip

    async def register(self, request: Request, ctx: Context) -> Response:
        self._require(ctx, *WRITERS)
        form = self._form(request)
        handle = form.get("handle").strip()
        history = await Reader(self.dispatcher).history(form.get("template"))
        template = history.current if history is not None else None
        if template is None:
            return await self.register_form(request, ctx, 400, problem="no published template")
        fields = {a.key: form.get(f"f_{a.key}").strip() for a in template.enabled_attributes()}
        identity = ctx.viewer.identity
        assert identity is not None
        try:
            await ops.register(self.dispatcher, identity, handle, template, fields,
                               form.get("url").strip())  # fmt: skip
        except TemplateViolation as exc:
            errors = [f"{label_of(template, e.field, ctx.lang)}: {e.message}" for e in exc.errors]
            return await self.register_form(request, ctx, 400, problem=exc.message, errors=errors)
        except HandleError as exc:
            return await self.register_form(request, ctx, 400, problem=exc.message)
        return await self.register_form(request, ctx, done=handle)

    async def registrations(self, request: Request, ctx: Context) -> Response:
        self._require(ctx)
        prefixes = await self._prefixes(ctx)
        prefix = request.param("prefix") or (prefixes[0] if prefixes else "")
        if prefix and prefix not in prefixes:
            raise Forbidden(ctx.t("admin.forbidden"))
        text = (request.param("q") or "").strip().casefold()
        template = (request.param("template") or "").strip()
        try:
            number = max(1, int(request.param("page") or 1))
        except ValueError:
            number = 1
        if not prefix:
            handles = []
        elif template:
            handles = await self._instances(prefix, template)
        else:
            handles = await self.dispatcher.store.list_handles(prefix)
        if text:
            handles = [h for h in handles if text in h.casefold()]
        pages = max(1, -(-len(handles) // PAGE_SIZE))
        number = min(number, pages)
        shown = handles[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]

        def page_url(n: int) -> str:
            query = {"prefix": prefix, "template": template, "q": request.param("q") or "",
                     "page": str(n)}  # fmt: skip
            return f"{BASE}/admin/registrations?" + urlencode(query)

        templates = [(h, name) for h, name, _status in await self._templates(ctx)]
        if template and template not in [h for h, _name in templates]:
            templates.append((template, template))
        return ctx.render(
            "registrations.html", prefixes=prefixes, prefix=prefix, q=request.param("q") or "",
            handles=shown, total=len(handles), number=number, pages=pages, page_url=page_url,
            templates=templates, template=template,
        )  # fmt: skip

    async def _instances(self, prefix: str, template: str) -> list[str]:
        """The identifiers under ``prefix`` registered against ``template`` (any version):
        every record of the prefix is read, in key order, a batch at a time."""
        store = self.dispatcher.store
        start, wanted = handle_key(prefix) + "/", handle_key(template)
        found: list[str] = []
        after: str | None = f"{prefix}/"
        while after is not None:
            batch = await store.scan(after, SCAN_BATCH)
            after = batch[-1][0] if len(batch) == SCAN_BATCH else None
            for handle, values in batch:
                if not handle_key(handle).startswith(start):
                    return found
                link = template_link(values)
                if link is not None and handle_key(link[0]) == wanted:
                    found.append(handle)
        return found

    async def grants(self, request: Request, ctx: Context, status: int = 200,
                     problem: str = "", done: bool = False) -> Response:  # fmt: skip
        self._require(ctx)
        chosen = request.param("template") or ""
        form = request.scope.get("idnode.form")
        if isinstance(form, Form):
            chosen = form.get("template") or chosen
        template, current = None, None
        if chosen:
            history = await Reader(self.dispatcher).history(chosen)
            template = history.latest if history is not None and history.versions else None
            if template is not None:
                current = await ops.class_grants_of(self.dispatcher, chosen)
        rows = []
        if template is not None and current is not None:
            for attr in template.attributes:
                access = current.view_of(attr.key)
                rows.append(
                    (
                        attr,
                        "" if access is None else str(access.scope),
                        "" if access is None else "\n".join(str(u) for u in access.users),
                    )
                )
        return ctx.render("grants.html", status, templates=await self._templates(ctx),
                          chosen=chosen, template=template, rows=rows, problem=problem,
                          done=done)  # fmt: skip

    async def save_grants(self, request: Request, ctx: Context) -> Response:
        self._require(ctx, *WRITERS)
        form = self._form(request)
        chosen = form.get("template")
        history = await Reader(self.dispatcher).history(chosen)
        if history is None or not history.versions:
            return await self.grants(request, ctx, 404, problem=f"no template {chosen}")
        views = {
            a.key: (form.get(f"scope_{a.key}"), form.get(f"users_{a.key}"))
            for a in history.latest.attributes
        }
        identity = ctx.viewer.identity
        assert identity is not None
        try:
            await ops.set_view_grants(self.dispatcher, identity, chosen, views)
        except HandleError as exc:
            return await self.grants(request, ctx, 400, problem=exc.message)
        return await self.grants(request, ctx, done=True)

    async def _apps_of(self, ctx: Context) -> list[Account]:
        """The app accounts the viewer may see: every enterprise's for node administrators
        and auditors, its own enterprise's for the others."""
        assert self.service is not None and ctx.viewer.account is not None
        enterprise = None if ctx.viewer.reads_node else ctx.viewer.account.enterprise_id
        if enterprise is None and not ctx.viewer.reads_node:
            raise Forbidden(ctx.t("admin.forbidden"))
        accounts = await self.service.repository.list_accounts(enterprise)
        return [a for a in accounts if a.role == Role.APP]

    async def apps(self, request: Request, ctx: Context, status: int = 200,
                   problem: str = "", form: Form | None = None) -> Response:  # fmt: skip
        self._require(ctx)
        assert self.service is not None and ctx.viewer.account is not None
        rows = []
        for account in await self._apps_of(ctx):
            handle = account.identity.partition(":")[2]
            values = await self.dispatcher.store.get_handle(handle) or ()
            rows.append((account, app_keys(values)))
        enterprises = await self.service.repository.list_enterprises()
        if ctx.viewer.role != Role.NODE_ADMIN:
            enterprises = [e for e in enterprises if e.id == ctx.viewer.account.enterprise_id]
        return ctx.render("apps.html", status, rows=rows, problem=problem,
                          enterprises=enterprises, form=form or Form(),
                          manages=ctx.viewer.role in APP_MANAGERS)  # fmt: skip

    async def create_app(self, request: Request, ctx: Context) -> Response:
        """Create an app account with an identity handle of its own
        (:meth:`AccountService.create_app`): its public key pasted, or a key pair made here
        whose private key is shown once and not kept."""
        self._require(ctx, *APP_MANAGERS)
        assert self.service is not None and ctx.viewer.account is not None
        form = self._form(request)
        username = form.get("username").strip()
        enterprise = form.get("enterprise").strip() or ctx.viewer.account.enterprise_id or ""
        try:
            public, private = key_from_form(form)
            account = await self.service.create_app(
                ctx.viewer.account, username, form.get("password"), enterprise, public
            )
        except HandleError as exc:
            return await self.apps(request, ctx, 400, problem=exc.message, form=form)
        return await self.app_page(request, ctx, account.username, done=ctx.t("apps.created"),
                                   private_key=private, key_index=APP_KEY_INDEX)  # fmt: skip

    async def app_page(self, request: Request, ctx: Context, name: str | None = None,
                       status: int = 200, problem: str = "", done: str = "",
                       private_key: bytes = b"", key_index: int = 0) -> Response:  # fmt: skip
        """One app: its identity, keys (add, revoke) and whether it is enabled."""
        self._require(ctx)
        assert self.service is not None
        name = name if name is not None else request.param("name") or ""
        account = next((a for a in await self._apps_of(ctx) if a.username == name), None)
        if account is None:
            return ctx.error(404, f"no app account {name!r}")
        handle = account.identity.partition(":")[2]
        keys = app_keys(await self.dispatcher.store.get_handle(handle) or ())
        download = ""
        if private_key:
            download = "data:application/x-pem-file;base64," + base64.b64encode(
                private_key).decode("ascii")  # fmt: skip
        return ctx.render(
            "app.html", status, app=account, handle=handle, keys=keys, problem=problem,
            done=done, private_key=private_key.decode("ascii"), download=download,
            key_index=key_index, own="/APP." in handle,
            manages=ctx.viewer.role in APP_MANAGERS,
        )  # fmt: skip

    async def app_action(self, request: Request, ctx: Context) -> Response:
        """``add-key``, ``revoke-key`` (``index``), ``disable`` or ``enable`` an app."""
        self._require(ctx, *APP_MANAGERS)
        assert self.service is not None and ctx.viewer.account is not None
        actor = ctx.viewer.account
        form = self._form(request)
        name, action = form.get("name"), form.get("action")
        if not any(a.username == name for a in await self._apps_of(ctx)):
            return ctx.error(404, f"no app account {name!r}")
        private, index = b"", 0
        try:
            if action == "add-key":
                public, private = key_from_form(form)
                index = await self.service.add_app_key(actor, name, public)
                done = f"{ctx.t('apps.key_added')}: {index}"
            elif action == "revoke-key":
                number = form.get("index")
                if not (number.isascii() and number.isdigit()):
                    raise InvalidValue("choose the key to revoke")
                await self.service.revoke_app_key(actor, name, int(number))
                done = f"{ctx.t('apps.key_revoked')}: {number}"
            elif action in ("disable", "enable"):
                # disabling ends its tokens and console sessions (AccountService.current)
                await self.service.set_enabled(actor, name, action == "enable")
                done = ctx.t(f"apps.{action}d")
            else:
                raise InvalidValue(f"unknown action {action!r}")
        except HandleError as exc:
            return await self.app_page(request, ctx, name, 400, problem=exc.message)
        return await self.app_page(request, ctx, name, done=done, private_key=private,
                                   key_index=index)  # fmt: skip

    # -- import ------------------------------------------------------------------------------
    async def import_form(self, request: Request, ctx: Context, status: int = 200,
                          problem: str = "") -> Response:  # fmt: skip
        self._require(ctx, *WRITERS)
        return ctx.render("import.html", status, problem=problem,
                          prefixes=await self._prefixes(ctx))  # fmt: skip

    async def start_import(self, request: Request, ctx: Context) -> Response:
        self._require(ctx, *WRITERS)
        upload = self._form(request).files.get("file")
        if upload is None or not upload.data:
            return await self.import_form(request, ctx, 400, problem="choose a file to upload")
        identity = ctx.viewer.identity
        assert identity is not None
        prefixes = frozenset(await self._prefixes(ctx))
        job = self.imports.start(ctx.viewer.name, upload.filename, upload.data, identity, prefixes)
        return redirect(f"{BASE}/admin/import/{job.id}")

    async def import_progress(self, request: Request, ctx: Context, parts: list[str]) -> Response:
        self._require(ctx)
        job = self.imports.get(parts[0], ctx.viewer.name) if parts else None
        if job is None:
            # kept in the memory of the process running it (imports.py): say so plainly
            message = ctx.t("import.unknown")
            pid = started_by(parts[0]) if parts else None
            if pid is not None and pid != os.getpid():
                message += f" ({ctx.t('import.pids')}: {pid}, {os.getpid()})"
            if parts[1:] == ["status"]:
                body = {"known": False, "message": message}
                return json_response(body, 404).header("cache-control", "no-store")
            return ctx.error(404, message)
        if parts[1:] == ["status"]:
            return json_response(job.to_json()).header("cache-control", "no-store")
        if parts[1:]:
            return ctx.error(404, f"no page {request.path}")
        return ctx.render("import_progress.html", job=job, refused=job.refused())

    # -- dashboard ---------------------------------------------------------------------------
    async def dashboard(self, request: Request, ctx: Context) -> Response:
        self._require(ctx)
        identity = ctx.viewer.identity
        assert identity is not None
        if not ctx.viewer.reads_node and not await self.dispatcher.authorizer.is_server_admin(
            identity
        ):
            raise Forbidden(ctx.t("admin.forbidden"))
        prefix = request.param("prefix") or None
        data = await gather(self.dispatcher, self.config, prefix)
        return ctx.render("dashboard.html", data=data, prefix=prefix or "")


def _decode(raw: str) -> str:
    """A handle from the raw path (percent-decoded once, as the proxy reads it)."""
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError as exc:
        raise HTTPError(ResponseCode.INVALID_HANDLE, "the handle is not UTF-8") from exc


def _safe_next(target: str | None) -> str:
    """A same-site path to go to after logging in ('' when absent or not one)."""
    if target and target.startswith(f"{BASE}/") and not target.startswith("//"):
        return target
    return ""


class RootPage:
    """The node's ``/``: the console's home page for a browser's plain ``GET /``; everything
    else (``/?hdl=``, ``POST /``, ``/<handle>``) goes to the browser proxy as before."""

    def __init__(self, console: Console, proxy: Handler) -> None:
        self.console = console
        self.proxy = proxy

    async def __call__(self, request: Request) -> Response:
        if (
            request.path == "/"
            and request.method in ("GET", "HEAD")
            and request.param("hdl") is None
            and "json" not in request.headers.get("accept", "")
        ):
            return await self.console(request)
        return await self.proxy(request)


def mount(console: Console, routes: Sequence[tuple[str, Handler]]) -> list[tuple[str, Handler]]:
    """``routes`` (the proxy routes, catch-all last) with the console at ``/console`` first
    and its home page answering the catch-all's plain ``GET /``."""
    if not routes or routes[-1][0] != "":
        return [(BASE, console), *routes]
    return [(BASE, console), *routes[:-1], ("", RootPage(console, routes[-1][1]))]
