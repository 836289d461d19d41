"""JSON ⇄ handle values (spec §5.1, §2.1, §2.2, §2.6): the reference server's forms."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, rsa
from hypothesis import given
from hypothesis import strategies as st

from idnode.errors import InvalidValue
from idnode.jsonvalues import (
    data_from_json,
    data_to_json,
    looks_like_binary,
    value_from_json,
    value_to_json,
)
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.types.hs_pubkey import PublicKeyData
from idnode.protocol.types.hs_site import (
    Attribute,
    Interface,
    ServerInfo,
    SiteInfo,
    address_to_bytes,
)
from idnode.protocol.values import HandleValue, Reference, TTLType


def test_pyhandle_admin_value() -> None:
    """pyhandle's HS_ADMIN: index as a string, bare-string data elsewhere."""
    admin = value_from_json(
        {
            "index": 100,
            "type": "HS_ADMIN",
            "data": {
                "format": "admin",
                "value": {"index": "200", "handle": "0.NA/88.118.8", "permissions": "011111110011"},
            },
        }
    )
    assert AdminRecord.from_bytes(admin.data) == AdminRecord(0x07F3, "0.NA/88.118.8", 200)
    url = value_from_json({"index": "1", "type": "URL", "data": "https://example.com"})
    assert url == HandleValue(1, "URL", b"https://example.com")


@pytest.mark.parametrize(
    ("permissions", "bits"),
    [
        ("*", 0x0FFF),
        (True, 0x0FFF),
        (False, 0),
        ("11", 3),
        (0b101, 5),
        ([1, 0, "x", None], 5),
        (None, 0),
    ],
)
def test_admin_permission_forms(permissions: Any, bits: int) -> None:
    value = {"handle": "0.NA/1", "index": 300, "permissions": permissions}
    assert (
        AdminRecord.from_bytes(data_from_json({"format": "ADMIN", "value": value})).permissions
        == bits
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("1110", 0x0E),
        ("1100", 0x0C),
        ("0", 0x0E),
        ("1", 0x0F),
        ("*", 0x0F),
        ("0010", 0x02),
        (1111, 0x0F),
    ],
)
def test_value_permissions(given: Any, expected: int) -> None:
    value = value_from_json({"index": 1, "type": "X", "data": "d", "permissions": given})
    assert value.permissions == expected


def test_ttl_and_references() -> None:
    value = value_from_json(
        {
            "index": 1,
            "type": "X",
            "data": "d",
            "ttl": "2030-01-01T00:00:00Z",
            "references": [{"handle": "1/a", "index": "2"}],
        }
    )
    assert value.ttl_type == TTLType.ABSOLUTE and value.ttl == 1893456000
    assert value.references == (Reference("1/a", 2),)
    assert value_to_json(value)["ttl"] == "2030-01-01T00:00:00Z"
    assert value_from_json({"index": 1, "type": "X", "data": "d", "ttl": 60}).ttl == 60


def test_primitive_data_as_gson_strings() -> None:
    assert value_from_json({"index": 1, "type": "X", "data": 5}).data == b"5"
    assert value_from_json({"index": 1, "type": "X", "data": True}).data == b"true"


@pytest.mark.parametrize(
    "obj",
    [
        None,
        [],
        {"type": "X", "data": "d"},
        {"index": 1, "data": "d"},
        {"index": 1, "type": "X"},
        {"index": -1, "type": "X", "data": "d"},
        {"index": 2**32, "type": "X", "data": "d"},
        {"index": 1.5, "type": "X", "data": "d"},
        {"index": True, "type": "X", "data": "d"},
        {"index": 1, "type": "X", "data": 1.5},
        {"index": 1, "type": "X", "data": {"value": "x"}},
        {"index": 1, "type": "X", "data": {"format": "base64", "value": "***"}},
        {"index": 1, "type": "X", "data": {"format": "hex", "value": "0"}},
        {"index": 1, "type": "X", "data": {"format": "key", "value": {"kty": "EC"}}},
        {"index": 1, "type": "X", "data": {"format": "vlist", "value": [{"handle": "h"}]}},
        {
            "index": 1,
            "type": "X",
            "data": {
                "format": "site",
                "value": {"servers": [{"serverId": 1, "address": "example.com"}]},
            },
        },
        {"index": 1, "type": "X", "data": "d", "ttl": [1]},
        {"index": 1, "type": "X", "data": "d", "timestamp": "yesterday"},
        {"index": 1, "type": "X", "data": "d", "permissions": {}},
        {"index": 1, "type": "X", "data": "d", "references": {}},
    ],
)
def test_invalid_values(obj: Any) -> None:
    with pytest.raises(InvalidValue):
        value_from_json(obj)


def test_base64_is_lenient_like_commons_codec() -> None:
    raw = bytes(range(250, 256))
    for text in (
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ):
        assert data_from_json({"format": "base64", "value": text}) == raw


def test_output_formats() -> None:
    assert data_to_json("URL", b"https://x") == {"format": "string", "value": "https://x"}
    assert data_to_json("X", b"line\r\n\ttab") == {"format": "string", "value": "line\r\n\ttab"}
    assert data_to_json("X", b"\x00\x01") == {"format": "base64", "value": "AAE="}
    assert data_to_json("X", b"\xff") == {"format": "base64", "value": "/w=="}
    assert data_to_json("HS_SECKEY", b"secret") == {"format": "string", "value": "secret"}
    legacy = AdminRecord(0x0FFF, "0.NA/1", 300, b"\x00\x00").to_bytes()
    assert data_to_json("HS_ADMIN", legacy)["value"]["legacyByteLength"] is True
    assert looks_like_binary(b"\x7f") and not looks_like_binary("é".encode())


def test_key_round_trip() -> None:
    for key in (rsa.generate_private_key(65537, 1024), dsa.generate_private_key(1024)):
        data = PublicKeyData.from_public_key(key.public_key()).to_bytes()
        as_json = data_to_json("HS_PUBKEY", data)
        assert as_json["format"] == "key"
        assert data_from_json(as_json) == data


def test_site_round_trip() -> None:
    key = rsa.generate_private_key(65537, 1024)
    site = SiteInfo(
        serial=7,
        primary_mask=0xC0,
        hash_option=1,
        hash_filter=b"f",
        attributes=(Attribute("desc", "a site"), Attribute("alt_addr.1", "10.0.0.1")),
        servers=(
            ServerInfo(
                3,
                address_to_bytes("192.0.2.1", mapped=False),
                PublicKeyData.from_public_key(key.public_key()).to_bytes(),
                (Interface(3, 1, 2641), Interface(2, 0, 2641), Interface(3, 2, 8000)),
            ),
            ServerInfo(4, address_to_bytes("2001:db8::1"), b"\x01\x02", (Interface(1, 3, 443),)),
        ),
    )
    as_json = data_to_json("HS_SITE", site.to_bytes())
    assert as_json["value"]["servers"][1]["publicKey"] == {"format": "base64", "value": "AQI="}
    assert as_json["value"]["hashOption"] == 1
    assert SiteInfo.from_bytes(data_from_json(as_json)) == site
    # attributes may also be an object, servers may be "serverList"
    alt = dict(as_json["value"], attributes={"desc": "a site", "alt_addr.1": ["10.0.0.1"]})
    alt["serverList"] = alt.pop("servers")
    assert SiteInfo.from_bytes(data_from_json({"format": "site", "value": alt})) == site


text_values = st.builds(
    HandleValue,
    index=st.integers(1, 2**32 - 1),
    type=st.text(min_size=1, max_size=20),
    data=st.binary(max_size=64),
    ttl=st.integers(0, 2**31),
    permissions=st.integers(0, 15),
    references=st.lists(
        st.builds(Reference, st.text(max_size=10), st.integers(0, 2**32 - 1)), max_size=2
    ).map(tuple),
)


@given(text_values)
def test_every_value_round_trips(value: HandleValue) -> None:
    """What the server writes, it reads back to the same value (but the timestamp)."""
    assert value_from_json(value_to_json(value)) == value
