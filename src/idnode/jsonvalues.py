"""Handle values as JSON, in the Handle.net REST API's shapes (spec §5.1, §2.1, §2.2, §2.6).

Output (:func:`value_to_json`, :func:`data_to_json`) is what the reference server writes
(Java ``GsonUtility``): ``data`` is ``{"format": ..., "value": ...}`` with format ``admin``
(HS_ADMIN), ``vlist`` (HS_VLIST), ``site`` (HS_SITE, HS_SITE.PREFIX, HS_NA_DELEGATE), ``key``
(an RSA or DSA HS_PUBKEY as ``{"kty", ...}`` with unsigned base64url parameters), else
``string`` when the bytes are text (valid UTF-8 without control characters other than
whitespace, Java ``Util.looksLikeBinary``) and ``base64`` when they are not.

Input (:func:`value_from_json`, :func:`data_from_json`) accepts what the reference server
accepts: ``index`` as a number or a numeric string (everywhere, so pyhandle's HS_ADMIN
``"index": "200"`` works); ``data`` as a bare JSON string (stored as UTF-8) or
``{"format", "value"}`` with format ``string``, ``base64`` (standard or URL-safe alphabet,
padding optional), ``hex``, ``admin`` (permissions as a string, number, boolean, array or
``"*"``, see :func:`~idnode.protocol.types.hs_admin.permissions_from_json`), ``vlist``, ``site``
or ``key`` (format names case-insensitive); ``ttl`` as seconds or an ISO-8601 time (absolute);
``permissions`` as up to four ``0``/``1`` characters read from the right (public write, public
read, admin write, admin read; missing ones keep the default ``1110``) or ``"*"``;
``references`` as ``[{"handle", "index"}]``. ``timestamp`` is checked but the server sets its
own. Anything else raises :class:`~idnode.errors.InvalidValue` naming the offending member.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
from typing import Any

from idnode.errors import InvalidValue, ProtocolViolation
from idnode.protocol import types as value_types
from idnode.protocol.codes import SUPPORTED_VERSION
from idnode.protocol.types.hs_admin import (
    AdminRecord,
    permissions_from_json,
    permissions_to_string,
)
from idnode.protocol.types.hs_pubkey import DSA_PUB_KEY, RSA_PUB_KEY, PublicKeyData
from idnode.protocol.types.hs_site import (
    Attribute,
    Interface,
    ServerInfo,
    SiteInfo,
    address_from_bytes,
    address_to_bytes,
)
from idnode.protocol.types.hs_vlist import ValueList
from idnode.protocol.values import (
    DEFAULT_PERMISSIONS,
    DEFAULT_TTL,
    HandleValue,
    Reference,
    TTLType,
)

__all__ = [
    "data_from_json",
    "data_to_json",
    "iso_timestamp",
    "key_to_json",
    "looks_like_binary",
    "value_from_json",
    "value_to_json",
]


def iso_timestamp(ts: int) -> str:
    """Epoch seconds as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC), the REST API's timestamp form."""
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _permissions(p: int) -> str:
    return "".join("1" if p & bit else "0" for bit in (0x08, 0x04, 0x02, 0x01))


def looks_like_binary(data: bytes) -> bool:
    """Java ``Util.looksLikeBinary``: not UTF-8, or a control byte other than 0x09-0x13."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return any((b < 0x20 and not 0x09 <= b <= 0x13) or b == 0x7F for b in data)


def _b64url(n: int) -> str:
    raw = n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def key_to_json(data: bytes) -> dict[str, Any] | None:
    """An RSA or DSA HS_PUBKEY as the reference writes it (``{"kty": "RSA", "n", "e"}`` or
    ``{"kty": "DSA", "y", "p", "q", "g"}``); None for anything else."""
    try:
        key = PublicKeyData.from_bytes(data)
    except ProtocolViolation:
        return None
    ints = key.integers
    if key.key_type == RSA_PUB_KEY:
        return {"kty": "RSA", "n": _b64url(ints["n"]), "e": _b64url(ints["e"])}
    if key.key_type == DSA_PUB_KEY:
        return {"kty": "DSA", **{k: _b64url(ints[k]) for k in ("y", "p", "q", "g")}}
    return None


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
    if site.hash_filter:
        out["hashFilter"] = site.hash_filter.decode("utf-8", "replace")
    out["attributes"] = [{"name": a.name, "value": a.value} for a in site.attributes]
    servers = []
    for s in site.servers:
        key = key_to_json(s.public_key)
        public_key = (
            {"format": "key", "value": key}
            if key is not None
            else {"format": "base64", "value": base64.b64encode(s.public_key).decode()}
        )
        interfaces = [
            {
                "query": bool(i.type & 2),
                "admin": bool(i.type & 1),
                "protocol": ("UDP", "TCP", "HTTP", "HTTPS")[i.protocol]
                if i.protocol < 4
                else i.protocol,
                "port": i.port,
            }
            for i in s.interfaces
        ]
        servers.append(
            {
                "serverId": s.server_id,
                "address": str(address_from_bytes(s.address)),
                "publicKey": public_key,
                "interfaces": interfaces,
            }
        )
    out["servers"] = servers
    return out


def data_to_json(value_type: str, data: bytes) -> dict[str, Any]:
    """The ``data`` member of a value's JSON form."""
    try:
        parsed = value_types.parse(value_type, data)
    except ProtocolViolation:
        parsed = None
    if isinstance(parsed, AdminRecord):
        admin: dict[str, Any] = {
            "handle": parsed.handle,
            "index": parsed.index,
            "permissions": permissions_to_string(parsed.permissions),
        }
        if parsed.legacy_byte_length:
            admin["legacyByteLength"] = True
        return {"format": "admin", "value": admin}
    if isinstance(parsed, ValueList):
        entries = [{"handle": r.handle, "index": r.index} for r in parsed.entries]
        return {"format": "vlist", "value": entries}
    if isinstance(parsed, SiteInfo):
        return {"format": "site", "value": _site(parsed)}
    if isinstance(parsed, PublicKeyData):
        key = key_to_json(data)
        if key is not None:
            return {"format": "key", "value": key}
    if not looks_like_binary(data):
        return {"format": "string", "value": data.decode("utf-8")}
    return {"format": "base64", "value": base64.b64encode(data).decode("ascii")}


def value_to_json(value: HandleValue) -> dict[str, Any]:
    """One value as the REST API writes it (spec §5.1)."""
    out: dict[str, Any] = {
        "index": value.index,
        "type": value.type,
        "data": data_to_json(value.type, value.data),
    }
    if value.permissions != DEFAULT_PERMISSIONS:
        out["permissions"] = _permissions(value.permissions)
    out["ttl"] = value.ttl if value.ttl_type == TTLType.RELATIVE else iso_timestamp(value.ttl)
    if value.timestamp:
        out["timestamp"] = iso_timestamp(value.timestamp)
    if value.references:
        out["references"] = [{"handle": r.handle, "index": r.index} for r in value.references]
    return out


# -- input ---------------------------------------------------------------------------------------

_U32_MAX = 0xFFFFFFFF
_PROTOCOLS = {"UDP": 0, "TCP": 1, "HTTP": 2, "HTTPS": 3}


def _fail(message: str) -> InvalidValue:
    return InvalidValue(message)


def _member(obj: Any, name: str, what: str) -> Any:
    if not isinstance(obj, dict):
        raise _fail(f"{what} must be a JSON object")
    if name not in obj or obj[name] is None:
        raise _fail(f"{what} needs {name!r}")
    return obj[name]


def _int(value: Any, what: str, maximum: int = _U32_MAX) -> int:
    """A JSON number or numeric string (Gson ``getAsInt``) in 0..maximum."""
    if isinstance(value, bool):
        raise _fail(f"{what} must be a number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit() and value.isascii():
        value = int(value)
    if not isinstance(value, int):
        raise _fail(f"{what} must be an integer, not {value!r:.40}")
    if not 0 <= value <= maximum:
        raise _fail(f"{what} out of range: {value}")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _fail(f"{what} must be a string")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(f"{what} must be true or false")
    return value


def _b64decode(text: Any, what: str) -> bytes:
    """Base64, standard or URL-safe alphabet, padding optional (commons-codec is lenient)."""
    s = "".join(_text(text, what).split()).rstrip("=").translate(str.maketrans("-_", "+/"))
    try:
        return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise _fail(f"{what} is not base64") from exc


def _iso_seconds(text: Any, what: str) -> int:
    s = _text(text, what).strip()
    try:
        when = datetime.datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)
    except ValueError as exc:
        raise _fail(f"{what} is not an ISO-8601 time: {s!r:.40}") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    seconds = int(when.timestamp())
    if not 0 <= seconds <= _U32_MAX:
        raise _fail(f"{what} out of range: {s!r:.40}")
    return seconds


def _reference(obj: Any, what: str) -> Reference:
    handle = _text(_member(obj, "handle", what), f"{what} handle")
    return Reference(handle, _int(_member(obj, "index", what), f"{what} index"))


def _references(items: Any, what: str) -> tuple[Reference, ...]:
    if not isinstance(items, list):
        raise _fail(f"{what} must be an array")
    return tuple(_reference(item, f"{what}[{i}]") for i, item in enumerate(items))


def _admin(obj: Any) -> bytes:
    handle = _text(_member(obj, "handle", "admin value"), "admin handle")
    index = _int(_member(obj, "index", "admin value"), "admin index")
    perms = permissions_from_json(obj.get("permissions"))
    legacy = obj.get("legacyByteLength")
    padding = b"\x00\x00" if legacy is not None and _bool(legacy, "legacyByteLength") else b""
    return AdminRecord(perms, handle, index, padding).to_bytes()


def _key(obj: Any) -> bytes:
    kty = _text(_member(obj, "kty", "key"), "key kty").upper()
    if kty not in ("RSA", "DSA"):
        raise _fail(f"unsupported key type {kty!r:.20}")
    names = ("e", "n") if kty == "RSA" else ("q", "p", "g", "y")
    ints = [int.from_bytes(_b64decode(_member(obj, n, "key"), f"key {n}"), "big") for n in names]
    return PublicKeyData.from_integers(
        RSA_PUB_KEY if kty == "RSA" else DSA_PUB_KEY, *ints
    ).to_bytes()


def _attributes(value: Any) -> list[Attribute]:
    if isinstance(value, list):
        return [
            Attribute(
                _text(_member(a, "name", "attribute"), "attribute name"),
                _text(_member(a, "value", "attribute"), "attribute value"),
            )
            for a in value
        ]
    if isinstance(value, dict):
        out = []
        for name, v in value.items():
            for item in v if isinstance(v, list) else [v]:
                out.append(Attribute(name, _text(item, f"attribute {name!r:.20}")))
        return out
    raise _fail("site attributes must be an array or an object")


def _server(obj: Any) -> ServerInfo:
    try:
        address = ipaddress.ip_address(_text(_member(obj, "address", "server"), "address"))
    except ValueError as exc:
        raise _fail("server address must be an IP address") from exc
    interfaces = []
    for i in obj.get("interfaces") or []:
        query = _bool(_member(i, "query", "interface"), "interface query")
        admin = _bool(_member(i, "admin", "interface"), "interface admin")
        protocol = _member(i, "protocol", "interface")
        number = _PROTOCOLS.get(protocol) if isinstance(protocol, str) else None
        port = _int(_member(i, "port", "interface"), "interface port")
        kind = (2 if query else 0) | (1 if admin else 0)
        interfaces.append(
            Interface(kind, number if number is not None else _int(protocol, "protocol", 255), port)
        )
    public_key = obj.get("publicKey")
    return ServerInfo(
        _int(_member(obj, "serverId", "server"), "serverId"),
        address_to_bytes(address, mapped=False),
        b"" if public_key is None else data_from_json(public_key),
        tuple(interfaces),
    )


def _site_from_json(obj: Any) -> bytes:
    if not isinstance(obj, dict):
        raise _fail("site value must be a JSON object")
    major, minor = SUPPORTED_VERSION
    if "protocolVersion" in obj:
        version = _text(obj["protocolVersion"], "protocolVersion").split(".")
        if len(version) != 2:
            raise _fail("protocolVersion must look like 2.10")
        major, minor = (
            _int(version[0], "protocolVersion", 255),
            _int(version[1], "protocolVersion", 255),
        )
    servers = obj.get("servers", obj.get("serverList")) or []
    if not isinstance(servers, list):
        raise _fail("site servers must be an array")
    site = SiteInfo(
        data_format_version=_int(obj.get("version", 1), "site version", 0xFFFF),
        protocol_major=major,
        protocol_minor=minor,
        serial=_int(obj.get("serialNumber", 1), "serialNumber", 0xFFFF),
        primary_mask=(0x80 if _bool(obj.get("primarySite", False), "primarySite") else 0)
        | (0x40 if _bool(obj.get("multiPrimary", False), "multiPrimary") else 0),
        hash_option=_int(obj.get("hashOption", 2), "hashOption", 255),
        hash_filter=_text(obj.get("hashFilter", ""), "hashFilter").encode("utf-8"),
        attributes=tuple(_attributes(obj.get("attributes", []))),
        servers=tuple(_server(s) for s in servers),
    )
    return site.to_bytes()


def data_from_json(data: Any) -> bytes:
    """The bytes of a value's ``data`` member: a bare string or ``{"format", "value"}``."""
    if isinstance(data, str):
        return data.encode("utf-8")
    fmt = _text(_member(data, "format", "data"), "data format").lower()
    value = _member(data, "value", "data")
    try:
        if fmt == "string":
            return _text(value, "string data").encode("utf-8")
        if fmt == "base64":
            return _b64decode(value, "base64 data")
        if fmt == "hex":
            return bytes.fromhex(_text(value, "hex data"))
        if fmt == "admin":
            return _admin(value)
        if fmt == "vlist":
            return ValueList(_references(value, "vlist")).to_bytes()
        if fmt == "site":
            return _site_from_json(value)
        if fmt == "key":
            return _key(value)
    except ProtocolViolation as exc:  # a codec range check
        raise _fail(f"invalid {fmt} data: {exc.message}") from exc
    except ValueError as exc:  # bytes.fromhex
        raise _fail(f"invalid {fmt} data") from exc
    raise _fail(f"unknown data format {fmt!r:.20}")


def _value_permissions(value: Any) -> int:
    """Up to four characters read from the right; missing ones keep the default (``1110``)."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    text = _text(text, "permissions")
    if text == "*":
        return 0x0F
    perms = int(DEFAULT_PERMISSIONS)
    for bit, ch in zip((0x01, 0x02, 0x04, 0x08), reversed(text), strict=False):
        perms = perms | bit if ch == "1" else perms & ~bit
    return perms


def value_from_json(obj: Any) -> HandleValue:
    """One value from its REST JSON form (spec §5.1); InvalidValue if it does not fit."""
    index = _int(_member(obj, "index", "value"), "value index")
    vtype = _text(_member(obj, "type", "value"), "value type")
    what = f"value {index}"
    raw = _member(obj, "data", what)
    if isinstance(raw, int):  # bool too
        raw = str(raw).lower()  # Gson getAsString of a primitive
    data = data_from_json(raw)
    ttl, ttl_type = DEFAULT_TTL, TTLType.RELATIVE
    if obj.get("ttl") is not None:
        if isinstance(obj["ttl"], str):
            ttl, ttl_type = _iso_seconds(obj["ttl"], f"{what} ttl"), TTLType.ABSOLUTE
        else:
            ttl = _int(obj["ttl"], f"{what} ttl")
    permissions = int(DEFAULT_PERMISSIONS)
    if obj.get("permissions") is not None:
        permissions = _value_permissions(obj["permissions"])
    timestamp = 0
    if obj.get("timestamp") is not None:
        timestamp = _iso_seconds(obj["timestamp"], f"{what} timestamp")
    refs: tuple[Reference, ...] = ()
    if obj.get("references") is not None:
        refs = _references(obj["references"], f"{what} references")
    return HandleValue(index, vtype, data, ttl, ttl_type, timestamp, permissions, refs)
