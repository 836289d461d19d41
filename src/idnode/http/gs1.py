"""GS1 Digital Link resolution over handle records (spec industrial-identifier-system §6).

``GET /01/{gtin}[/22/{cpv}][/10/{lot}][/21/{serial}]`` (and ``/00/{sscc}``, ``/253/{gdti}``,
``/414/{gln}[/254/{ext}]``, ``/417/{gln}``, ``/8003/{grai}``, ``/8004/{giai}``; syntax and
validation in :mod:`idnode.http.gs1_syntax`) is answered like the GS1 resolver:

1. The path is validated (check digits, lengths, character set, qualifier order); invalid →
   **400** in the shared error shape (``responseCode 102``; HTML or JSON by ``Accept``).
2. A :class:`GS1Rule` maps the key to handle names, one per level of the qualifier path. The
   most specific level is tried first, then the resolver *walks up*: serial-level, lot-level,
   ..., key-level, until a handle exists (resolved anonymously with the PO flag through the
   dispatcher, aliases followed). None exists → **404**.
3. The record's public ``URL`` values become links: ``URL`` has the rule's
   ``default_link_type`` (``gs1:pip``), ``URL.<name>`` has ``gs1:<name>`` (``URL.gs1:epcis``
   works too). The default link is the proxy's redirect target (first ``URL``, then
   ``URL.*``). Only http(s)-style URLs count.
4. The answer:

   * ``?linkType=all`` / ``linkset``, or ``Accept: application/linkset+json`` or
     ``application/json`` (preferred over HTML) → **200** linkset JSON (RFC 9264):
     ``{"linkset":[{"anchor": <canonical DL URI>, "itemDescription": <DESC>,
     "https://gs1.org/voc/defaultLink":[{"href":...}], "https://gs1.org/voc/pip":[...],
     "describedby":[{"href": <proxy page of the handle>}]}]}``.
   * otherwise **307** to the default link, or to the link of ``?linkType=gs1:x`` (``x`` and
     ``https://gs1.org/voc/x`` are accepted too); the request's other query parameters are
     passed on. No link of that type → **404** (as the CE resolver).
   * every answer about an existing item carries a ``Link`` header listing its links, the
     linkset, the handle record (``describedby``) and the GS1 JSON-LD context.

Configuration — :class:`GS1Rule`::

    GS1Rule(ai="01", template="88.118.8/MD-UDI-{gtin14}")

maps ``/01/06912345678902/10/A1/21/7`` to ``88.118.8/MD-UDI-06912345678902/10/A1/21/7``, then
``.../10/A1``, then ``88.118.8/MD-UDI-06912345678902``. ``template`` placeholders: ``{value}``
(the key, GTIN-14 for AI 01), ``{ai}``, and the key's name (``{gtin14}``, ``{sscc}``,
``{gln}``, ``{giai}``, ...). ``qualifier_formats`` says what each qualifier appends (default
``/<ai>/{value}``, mirroring the Digital Link path; ``("10", "-{value}")`` gives
``MD-UDI-<gtin>-<lot>``). Inserted values have ``%`` and ``/`` percent-encoded, so a value cannot
imitate a qualifier; with the default formats every level maps to a distinct handle. A level
with a qualifier that has no format is skipped. ``walk_up=False`` tries the most specific
level only. ``key_prefix`` restricts a rule to keys starting with it (e.g. a GS1 company
prefix), so several enterprise prefixes can share one AI: the first matching rule is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from idnode.errors import HandleError, HandleNotFound
from idnode.http.asgi import HTTPError, Request, Response, json_response
from idnode.http.gs1_syntax import (
    PRIMARY_KEYS,
    QUALIFIERS,
    DigitalLink,
    InvalidDigitalLink,
    parse_digital_link,
)
from idnode.http.proxy_common import (
    Resolved,
    base_url,
    error_answer,
    error_html,
    first_url_value,
    handle_path,
    html_answer,
    http_error,
    is_safe_url,
    negotiated_json,
    resolve_public,
    to_uri,
)
from idnode.http.proxy_pages import redirect_page
from idnode.protocol.codes import ResponseCode
from idnode.protocol.values import HandleValue
from idnode.server.dispatch import Dispatcher

__all__ = [
    "DEFAULT_GS1_RULES",
    "GS1_VOC",
    "GS1Link",
    "GS1Resolver",
    "GS1Rule",
    "demo_gs1_rules",
    "gs1_openapi_paths",
    "link_type_for",
    "links_of",
]

#: Namespace of GS1 link types (``gs1:pip`` = ``https://gs1.org/voc/pip``).
GS1_VOC = "https://gs1.org/voc/"
#: JSON-LD context advertised in the ``Link`` header.
JSONLD_CONTEXT = "https://gs1.org/voc/"
_LINKSET = "application/linkset+json"


def _escape(value: str) -> str:
    return value.replace("%", "%25").replace("/", "%2F")


@dataclass(frozen=True)
class GS1Rule:
    """How keys of one GS1 primary key AI map to handles (see the module docstring)."""

    template: str
    """Handle of the key level, e.g. ``"88.118.8/MD-UDI-{gtin14}"``."""
    ai: str = "01"
    """Primary key AI this rule serves (a key of :data:`PRIMARY_KEYS`)."""
    qualifier_formats: tuple[tuple[str, str], ...] | None = None
    """``(qualifier AI, suffix format with {value})`` appended in hierarchy order; None →
    ``/<ai>/{value}`` for every qualifier of the key."""
    walk_up: bool = True
    """Fall back to less specific levels when a handle does not exist."""
    key_prefix: str = ""
    """Only keys (normalised, e.g. GTIN-14) starting with this."""
    default_link_type: str = "gs1:pip"
    """Link type of a plain ``URL`` value."""
    formats: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        spec = PRIMARY_KEYS.get(self.ai)
        if spec is None:
            raise ValueError(f"GS1Rule: ({self.ai}) is not a supported primary key")
        pairs = self.qualifier_formats
        if pairs is None:
            pairs = tuple((q, f"/{q}/{{value}}") for q in spec.qualifiers)
        formats = dict(pairs)
        unknown = set(formats) - set(spec.qualifiers)
        if unknown:
            raise ValueError(f"GS1Rule: {sorted(unknown)} are not qualifiers of ({self.ai})")
        try:
            self._key_handle("0")
            for fmt in formats.values():
                fmt.format(value="0")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"GS1Rule: bad placeholder in {self.template!r}: {exc}") from exc
        object.__setattr__(self, "formats", formats)

    def _key_handle(self, key: str) -> str:
        name = PRIMARY_KEYS[self.ai].name
        names = {name: key, "gtin14": key} if self.ai == "01" else {name: key}
        return self.template.format(
            value=_escape(key), ai=self.ai, **{k: _escape(v) for k, v in names.items()}
        )

    def matches(self, link: DigitalLink) -> bool:
        return link.ai == self.ai and link.key.startswith(self.key_prefix)

    def identifier(self, link: DigitalLink) -> str | None:
        """The handle of exactly this level of ``link``; None if a qualifier has no format."""
        out = self._key_handle(link.key)
        for ai, value in link.qualifiers:
            fmt = self.formats.get(ai)
            if fmt is None:
                return None
            out += fmt.format(value=_escape(value))
        return out

    def candidates(self, link: DigitalLink) -> list[tuple[DigitalLink, str]]:
        """``(level, handle)`` to try, most specific first."""
        levels = link.levels() if self.walk_up else [link]
        pairs = [(level, self.identifier(level)) for level in levels]
        return [(level, h) for level, h in pairs if h is not None]


def demo_gs1_rules(prefix: str = "88.118.8") -> tuple[GS1Rule, ...]:
    """The demo mapping: GTINs to the medical-device handles ``<prefix>/MD-UDI-<gtin14>``."""
    return (GS1Rule(template=f"{prefix}/MD-UDI-{{gtin14}}", ai="01"),)


#: Rules used when none are given: :func:`demo_gs1_rules` for the demo prefix.
DEFAULT_GS1_RULES: tuple[GS1Rule, ...] = demo_gs1_rules()


@dataclass(frozen=True)
class GS1Link:
    """One link of an item: CURIE link type (``gs1:pip``) and target."""

    link_type: str
    href: str

    @property
    def rel(self) -> str:
        return GS1_VOC + self.link_type.split(":", 1)[1]


def link_type_for(value_type: str, default_link_type: str = "gs1:pip") -> str | None:
    """The GS1 link type of a value type: ``URL`` → the default, ``URL.x``/``URL.gs1:x`` →
    ``gs1:x``; anything else (other types, other vocabularies) → None."""
    upper = value_type.upper()
    if upper == "URL":
        return default_link_type
    if not upper.startswith("URL.") or len(value_type) == 4:
        return None
    name = value_type[4:]
    if name.lower().startswith("gs1:"):
        name = name[4:]
    return None if not name or ":" in name or "/" in name else f"gs1:{name}"


def links_of(
    values: Iterable[HandleValue], default_link_type: str = "gs1:pip"
) -> tuple[GS1Link | None, list[GS1Link]]:
    """The default link and all links of a record's values (safe URLs only)."""
    values = list(values)
    links = []
    for v in values:
        link_type = link_type_for(v.type, default_link_type)
        href = v.data.decode("utf-8", "replace").strip()
        if link_type is not None and is_safe_url(href):
            links.append(GS1Link(link_type, href))
    first = first_url_value(values)
    default = None
    if first is not None:
        default = GS1Link("gs1:defaultLink", first.data.decode("utf-8", "replace").strip())
    return default, links


def _wanted_link_type(text: str) -> str:
    for ns in (GS1_VOC, "https://ref.gs1.org/voc/", "http://gs1.org/voc/"):
        if text.startswith(ns):
            return "gs1:" + text[len(ns) :]
    return text if text.lower().startswith("gs1:") else f"gs1:{text}"


def _description(values: Sequence[HandleValue]) -> str | None:
    desc = next((v for v in values if v.type.upper() == "DESC"), None)
    return None if desc is None else desc.data.decode("utf-8", "replace")


class GS1Resolver:
    """ASGI handler for the GS1 Digital Link paths of ``rules`` (see the module docstring)."""

    def __init__(
        self, dispatcher: Dispatcher, rules: Sequence[GS1Rule], *, base_url: str | None = None
    ) -> None:
        self.dispatcher = dispatcher
        self.rules = tuple(rules)
        self.base_url = base_url

    @property
    def primary_ais(self) -> list[str]:
        """The primary key AIs of the rules, each once, in rule order."""
        return list(dict.fromkeys(rule.ai for rule in self.rules))

    async def __call__(self, request: Request) -> Response:
        as_json = negotiated_json(request, ("application/json", _LINKSET))
        try:
            if request.method not in ("GET", "HEAD"):
                raise HTTPError(
                    ResponseCode.OPERATION_NOT_SUPPORTED, "only GET and HEAD", status=405
                )
            response = await self._answer(request, as_json)
        except (HandleError, HTTPError) as exc:
            response = error_answer(http_error(exc, None), as_json=as_json)
        return response.header("vary", "Accept")

    async def _find(self, link: DigitalLink) -> tuple[DigitalLink, Resolved]:
        rule = next((r for r in self.rules if r.matches(link)), None)
        tried = []
        for level, handle in rule.candidates(link) if rule is not None else ():
            try:
                return level, await resolve_public(self.dispatcher, handle)
            except HandleNotFound:
                tried.append(handle)
        if rule is None:
            message = f"no rule maps {link.path()} to an identifier"
        else:
            message = f"no identifier for {link.path()} (tried {', '.join(tried) or 'none'})"
        first = tried[0] if tried else None
        err = HTTPError(ResponseCode.HANDLE_NOT_FOUND, message, handle=first)
        err.html = error_html(404, f"The GS1 Digital Link you requested cannot be found: {message}")
        raise err

    async def _answer(self, request: Request, as_json: bool) -> Response:
        raw = request.scope.get("raw_path")
        path = raw.decode("latin-1").split("?", 1)[0] if raw else quote(request.path, safe="/")
        try:
            link = parse_digital_link(path)
        except InvalidDigitalLink as exc:
            raise HTTPError(
                ResponseCode.INVALID_HANDLE, f"invalid GS1 Digital Link: {exc}"
            ) from exc
        level, resolved = await self._find(link)
        rule = next(r for r in self.rules if r.matches(link))
        default, links = links_of(resolved.values, rule.default_link_type)
        base = base_url(request, self.base_url)
        anchor = base + level.path()
        record = f"{base}/{handle_path(resolved.handle)}?noredirect"
        header = _link_header(default, links, anchor, record)
        wanted = request.param("linkType") or request.param("linktype")
        if as_json or (wanted is not None and wanted.lower() in ("all", "linkset")):
            body = _linkset(anchor, default, links, record, _description(resolved.values))
            response = json_response(body)
            accept = request.headers.get("accept", "")
            asked_linkset = _LINKSET in accept or wanted is not None
            response.content_type = _LINKSET if asked_linkset else "application/json"
            return response.header("link", header)
        if wanted is None or _wanted_link_type(wanted).lower() == "gs1:defaultlink":
            target = default
        else:
            want = _wanted_link_type(wanted).lower()
            target = next((lk for lk in links if lk.link_type.lower() == want), None)
        if target is None:
            what = "default" if wanted is None else _wanted_link_type(wanted)
            message = f"no {what} link for {level.path()} ({resolved.handle})"
            err = HTTPError(
                ResponseCode.VALUES_NOT_FOUND, message, status=404, handle=resolved.handle
            )
            err.html = error_html(404, message, resolved.handle)
            return error_answer(err, as_json=False).header("link", header)
        location = _with_query(target.href, request, drop=("linkType", "linktype"))
        response = html_answer(redirect_page(location), 307)
        return response.header("location", to_uri(location)).header("link", header)


def _with_query(href: str, request: Request, drop: Sequence[str]) -> str:
    """``href`` with the request's query parameters (except ``drop``) appended."""
    raw = request.scope.get("query_string", b"").decode("latin-1")
    keep = [p for p in raw.split("&") if p and p.split("=", 1)[0] not in drop]
    if not keep:
        return href
    base, hash_, fragment = href.partition("#")
    joined = base + ("&" if "?" in base else "?") + "&".join(keep)
    return joined + hash_ + fragment


def _linkset(
    anchor: str, default: GS1Link | None, links: list[GS1Link], record: str, desc: str | None
) -> dict[str, Any]:
    item: dict[str, Any] = {"anchor": anchor}
    if desc:
        item["itemDescription"] = desc
    for link in ([default] if default else []) + links:
        item.setdefault(link.rel, []).append({"href": to_uri(link.href)})
    item["describedby"] = [{"href": record, "type": "text/html"}]
    return {"linkset": [item]}


def _link_header(default: GS1Link | None, links: list[GS1Link], anchor: str, record: str) -> str:
    entries = [f'<{to_uri(lk.href)}>; rel="{lk.rel}"' for lk in ([default] if default else [])]
    entries += [f'<{to_uri(lk.href)}>; rel="{lk.rel}"' for lk in links]
    entries.append(f'<{to_uri(anchor)}?linkType=linkset>; rel="linkset"; type="{_LINKSET}"')
    entries.append(f'<{to_uri(record)}>; rel="describedby"; type="text/html"')
    entries.append(
        f'<{JSONLD_CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"; '
        'type="application/ld+json"'
    )
    return ", ".join(entries)


def gs1_openapi_paths(rules: Sequence[GS1Rule] = DEFAULT_GS1_RULES) -> dict[str, Any]:
    """OpenAPI 3 path items of the Digital Link paths served for ``rules``: the key alone and
    every ordered combination of its qualifiers."""
    paths: dict[str, Any] = {}
    for ai in dict.fromkeys(rule.ai for rule in rules):
        spec = PRIMARY_KEYS[ai]
        combos: list[list[str]] = [[]]
        for q in spec.qualifiers:
            combos += [[*c, q] for c in combos]
        for combo in sorted(combos, key=lambda c: [spec.qualifiers.index(q) for q in c]):
            path = f"/{ai}/{{{spec.name}}}" + "".join(
                f"/{q}/{{{QUALIFIERS[q].name}}}" for q in combo
            )
            params = [spec.name] + [QUALIFIERS[q].name for q in combo]
            paths[path] = {"get": _gs1_operation(ai, spec.name, params)}
    return paths


def _gs1_operation(ai: str, name: str, params: list[str]) -> dict[str, Any]:
    return {
        "tags": ["gs1"],
        "summary": f"GS1 Digital Link resolution of ({ai}) {name.upper()}",
        "parameters": [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in params
        ]
        + [
            {
                "name": "linkType",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "gs1:pip, gs1:epcis, ...; all or linkset for the linkset JSON",
            },
        ],
        "responses": {
            "307": {"description": "Redirect to the link; Link header lists all links"},
            "200": {
                "description": "Linkset (RFC 9264)",
                "content": {_LINKSET: {"schema": {"type": "object"}}},
            },
            "400": {"description": "Invalid Digital Link (check digit, syntax)"},
            "404": {"description": "No identifier, or no link of the requested type"},
        },
    }
