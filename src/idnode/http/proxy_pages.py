"""The HTML pages of the browser proxy (spec handle-protocol §5.6): the query form, the
redirect stub and the value listing (``?noredirect``).

Every piece of stored data goes through :func:`~idnode.http.proxy_common.esc` (element content
and quoted attributes); only URLs with a scheme from
:data:`~idnode.http.proxy_common.SAFE_SCHEMES` become links, and their ``href`` is the
percent-encoded form from :func:`~idnode.http.proxy_common.to_uri`. Pages carry no script and
load nothing from elsewhere (see :data:`~idnode.http.proxy_common.HTML_HEADERS`).
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Sequence

from idnode.errors import ProtocolViolation
from idnode.http.proxy_common import Resolved, esc, handle_path, html_page, is_safe_url, to_uri
from idnode.jsonvalues import data_to_json
from idnode.protocol.codes import AdminPermission
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.types.hs_pubkey import PublicKeyData
from idnode.protocol.types.hs_site import SiteInfo, TransportProtocol, address_from_bytes
from idnode.protocol.types.hs_vlist import ValueList
from idnode.protocol.values import HandleValue, TTLType

__all__ = ["query_form_page", "redirect_page", "render_data", "values_page"]

#: Longest base64 text shown for binary data.
_MAX_BINARY_SHOWN = 96


def _iso(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _handle_link(root: str, handle: str, index: int | None = None) -> str:
    label = f"{index}:{handle}" if index is not None else handle
    href = f"{root}/{handle_path(handle)}?noredirect"
    return f'<a href="{esc(href)}">{esc(label)}</a>'


def url_link(url: str, uri: str | None = None) -> str:
    """``url`` as a link when its scheme is safe, else as plain (escaped) text; ``uri``:
    :func:`~idnode.http.proxy_common.to_uri` of ``url`` when the caller has it."""
    if is_safe_url(url):
        return f'<a href="{esc(to_uri(url) if uri is None else uri)}">{esc(url)}</a>'
    return esc(url)


def _admin(root: str, record: AdminRecord) -> str:
    names = [
        p.name.lower().replace("_", " ")
        for p in AdminPermission
        if p.name is not None and record.has(p)
    ]
    perms = ", ".join(names) or "none"
    return (
        f"administrator {_handle_link(root, record.handle, record.index)}<br>"
        f"permissions: {esc(perms)} (<code>{esc(record.permissions_string)}</code>)"
    )


def _site(site: SiteInfo) -> str:
    kind = "primary" if site.is_primary else "mirror"
    if site.is_multi_primary:
        kind += ", multi-primary"
    version = f"{site.protocol_major}.{site.protocol_minor}"
    lines = [f"site serial {site.serial} ({kind}), protocol {version}"]
    lines += [f"{a.name} = {a.value}" for a in site.attributes]
    for server in site.servers:
        try:
            address = str(address_from_bytes(server.address))
        except (ProtocolViolation, ValueError):
            address = "?"
        interfaces = []
        for i in server.interfaces:
            try:
                proto = TransportProtocol(i.protocol).name
            except ValueError:
                proto = str(i.protocol)
            roles = "/".join(r for r, ok in (("query", i.serves_query), ("admin", i.serves_admin)))
            interfaces.append(f"{proto} {i.port} ({roles or 'none'})")
        lines.append(f"server {server.server_id}: {address} — " + ", ".join(interfaces))
    return "<br>".join(esc(line) for line in lines)


def _pubkey(data: bytes) -> str:
    try:
        key = PublicKeyData.from_bytes(data)
        ints = key.integers
    except (ProtocolViolation, ValueError):
        return esc(f"public key ({len(data)} bytes, unreadable)")
    size = ints.get("n") or ints.get("p") or 0
    bits = f", {size.bit_length()} bits" if size else ""
    return esc(f"{key.key_type}{bits}")


def render_data(value: HandleValue, root: str = "") -> str:
    """HTML for the data of ``value``, by format (as :func:`data_to_json` sees it); handle
    references link to their proxy page under ``root``."""
    vtype = value.type.upper()
    if vtype == "HS_SECKEY":
        return esc(f"secret key ({len(value.data)} bytes, not shown)")
    if vtype == "HS_PUBKEY" or vtype.startswith("HS_PUBKEY."):
        return _pubkey(value.data)
    data = data_to_json(value.type, value.data)
    fmt = data["format"]
    if fmt == "admin":
        return _admin(root, AdminRecord.from_bytes(value.data))
    if fmt == "vlist":
        refs = ValueList.from_bytes(value.data).entries
        return "<br>".join(_handle_link(root, r.handle, r.index) for r in refs) or "(empty)"
    if fmt == "site":
        return _site(SiteInfo.from_bytes(value.data))
    if fmt == "string":
        text = str(data["value"])
        if vtype == "HS_ALIAS":
            return "alias of " + _handle_link(root, text.strip())
        if vtype == "URL" or vtype.startswith("URL.") or is_safe_url(text):
            return url_link(text)
        return esc(text)
    encoded = base64.b64encode(value.data).decode("ascii")
    shown = encoded if len(encoded) <= _MAX_BINARY_SHOWN else encoded[:_MAX_BINARY_SHOWN] + "…"
    return f"binary, {len(value.data)} bytes: <code>{esc(shown)}</code>"


def _ttl(value: HandleValue) -> str:
    if value.ttl_type == TTLType.ABSOLUTE:
        return f"until {_iso(value.ttl)}"
    return f"{value.ttl} s"


def values_page(resolved: Resolved, root: str = "", *, filtered: bool = False) -> str:
    """The ``?noredirect`` page: a table of index, type, data, TTL and timestamp."""
    handle = resolved.handle
    parts = [f"<h1>Handle Values for: {esc(handle)}</h1>"]
    if len(resolved.chain) > 1:
        trail = " → ".join(esc(h) for h in resolved.chain)
        parts.append(f'<p class="note">Followed aliases: {trail}</p>')
    if resolved.values:
        rows = "\n".join(
            f"<tr><td>{v.index}</td><td>{esc(v.type)}</td>"
            f'<td class="data">{render_data(v, root)}</td><td>{esc(_ttl(v))}</td>'
            f"<td>{esc(_iso(v.timestamp)) if v.timestamp else ''}</td></tr>"
            for v in resolved.values
        )
        parts.append(
            "<table>\n<tr><th>Index</th><th>Type</th><th>Data</th><th>TTL</th>"
            f"<th>Timestamp</th></tr>\n{rows}\n</table>"
        )
    else:
        what = "matching the request" if filtered else "that may be shown publicly"
        parts.append(f"<p>No values found {what}.</p>")
    return html_page(f"Handle {handle}", "\n".join(parts))


def redirect_page(url: str, uri: str | None = None) -> str:
    """The small body of a redirect: a link to the target (``uri``: as in :func:`url_link`)."""
    return html_page("Handle Redirect", f"<p>Redirecting to {url_link(url, uri)}</p>")


def query_form_page(root: str = "", examples: Sequence[str] = ()) -> str:
    """``GET /``: a form that submits ``hdl`` (and the noredirect/auth options) to ``GET /``,
    which redirects to ``/<handle>``."""
    sample = "".join(f"<li>{_handle_link(root, h)}</li>" for h in examples)
    sample_html = f"<p>Examples:</p><ul>{sample}</ul>" if sample else ""
    return html_page(
        "Handle Resolution",
        "<h1>Resolve a handle</h1>\n"
        f'<form method="get" action="{esc(root)}/">\n'
        '<p><label>Handle: <input type="text" name="hdl" size="50" required '
        'placeholder="88.118.8/PV-2026-000123"></label> '
        '<button type="submit">Resolve</button></p>\n'
        '<p><label><input type="checkbox" name="noredirect"> Don\'t redirect to URLs: '
        "show the values</label><br>\n"
        '<label><input type="checkbox" name="auth"> Authoritative query</label></p>\n'
        "</form>\n"
        '<p class="note">Accepted forms: <code>88.118.8/X</code>, <code>hdl:88.118.8/X</code>, '
        "<code>doi:10.1000/1</code>, or a proxy URL.</p>\n" + sample_html,
    )
