"""Handle values as JSON, in the Handle.net REST API's shapes (spec §5.1).

``data`` is ``{"format": ..., "value": ...}`` with format ``string`` (UTF-8 text), ``admin``
(HS_ADMIN), ``vlist`` (HS_VLIST), ``site`` (HS_SITE and its sub-types), ``key`` (HS_PUBKEY),
or ``base64`` for anything binary.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

from idnode.errors import ProtocolViolation
from idnode.protocol import types as value_types
from idnode.protocol.types.hs_admin import AdminRecord, permissions_to_string
from idnode.protocol.types.hs_site import SiteInfo, address_from_bytes
from idnode.protocol.types.hs_vlist import ValueList
from idnode.protocol.values import DEFAULT_PERMISSIONS, HandleValue, TTLType

__all__ = ["data_to_json", "value_to_json"]


def _iso(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _permissions(p: int) -> str:
    return "".join("1" if p & bit else "0" for bit in (0x08, 0x04, 0x02, 0x01))


def _site(site: SiteInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "version": site.data_format_version,
        "protocolVersion": f"{site.protocol_major}.{site.protocol_minor}",
        "serialNumber": site.serial,
        "primarySite": site.is_primary,
        "multiPrimary": site.is_multi_primary,
    }
    if site.hash_option != 2:
        out["hashOption"] = site.hash_option
    out["attributes"] = [{"name": a.name, "value": a.value} for a in site.attributes]
    out["servers"] = [
        {
            "serverId": s.server_id,
            "address": str(address_from_bytes(s.address)),
            "publicKey": {"format": "base64", "value": base64.b64encode(s.public_key).decode()},
            "interfaces": [
                {
                    "query": bool(i.type & 2),
                    "admin": bool(i.type & 1),
                    "protocol": ("UDP", "TCP", "HTTP", "HTTPS")[i.protocol]
                    if i.protocol < 4
                    else str(i.protocol),
                    "port": i.port,
                }
                for i in s.interfaces
            ],
        }
        for s in site.servers
    ]
    return out


def data_to_json(value_type: str, data: bytes) -> dict[str, Any]:
    """The ``data`` member of a value's JSON form."""
    try:
        parsed = value_types.parse(value_type, data)
    except ProtocolViolation:
        parsed = None
    if isinstance(parsed, AdminRecord):
        return {
            "format": "admin",
            "value": {
                "handle": parsed.handle,
                "index": parsed.index,
                "permissions": permissions_to_string(parsed.permissions),
            },
        }
    if isinstance(parsed, ValueList):
        entries = [{"handle": r.handle, "index": r.index} for r in parsed.entries]
        return {"format": "vlist", "value": entries}
    if isinstance(parsed, SiteInfo):
        return {"format": "site", "value": _site(parsed)}
    if value_type.upper() not in ("HS_SECKEY", "HS_PUBKEY"):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text):
            return {"format": "string", "value": text}
    return {"format": "base64", "value": base64.b64encode(data).decode("ascii")}


def value_to_json(value: HandleValue) -> dict[str, Any]:
    """One value as the REST API writes it."""
    out: dict[str, Any] = {
        "index": value.index,
        "type": value.type,
        "data": data_to_json(value.type, value.data),
    }
    if value.permissions != DEFAULT_PERMISSIONS:
        out["permissions"] = _permissions(value.permissions)
    out["ttl"] = value.ttl if value.ttl_type == TTLType.RELATIVE else _iso(value.ttl)
    if value.timestamp:
        out["timestamp"] = _iso(value.timestamp)
    if value.references:
        out["references"] = [{"handle": r.handle, "index": r.index} for r in value.references]
    return out
