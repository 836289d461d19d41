"""Byte-exact tests of the value-type codecs (spec §2) against the reference server's bytes."""

from __future__ import annotations

import hashlib
import ipaddress
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from idnode.errors import InvalidHandle, InvalidValue, ProtocolViolation
from idnode.protocol.codes import AdminPermission
from idnode.protocol.types import codec_for, parse
from idnode.protocol.types.hs_admin import (
    ALL_PERMISSIONS,
    AdminRecord,
    permissions_from_json,
    permissions_to_string,
)
from idnode.protocol.types.hs_seckey import SecretKey
from idnode.protocol.types.hs_site import (
    Attribute,
    HashOption,
    Interface,
    InterfaceType,
    ServerInfo,
    SiteInfo,
    TransportProtocol,
    address_from_bytes,
    address_to_bytes,
    handle_hash,
)
from idnode.protocol.types.hs_vlist import ValueList
from idnode.protocol.types.text import URL, Alias, Email, ServiceHandle, TextValue
from idnode.protocol.values import Reference
from idnode.protocol.wire import Reader
from tests.vectors_util import pem_blocks, readme_section, reference_site

# The reference server's HS_SITE record: body of the get-site-info response, 373 bytes
# (../shared/vectors/README.md, "Server HS_SITE record"; also in udp-get-site-info.hex).
SITE = reference_site()

# The server signing key that the HS_SITE record carries (../shared/vectors/README.md).
(SERVER_KEY_PEM,) = pem_blocks(readme_section("Server signing key"))

# HS_ADMIN value data from ../shared/vectors/tcp-create-seckey.hex (also every resolve of T1):
# perms 0x0fff, admin 300:20.500.999/ADMIN.
ADMIN = bytes.fromhex("0fff0000001032302e3530302e3939392f41444d494e0000012c")

# An HS_VLIST built by hand (spec §2.6): 300:20.500.999/ADMIN, 301:20.500.999/ADMIN.
VLIST = bytes.fromhex(
    "00000002"
    "00000010" + b"20.500.999/ADMIN".hex() + "0000012c"
    "00000010" + b"20.500.999/ADMIN".hex() + "0000012d"
)


# -- HS_SITE --------------------------------------------------------------------------------------
def test_site_vector_decodes_field_by_field() -> None:
    assert len(SITE) == 373
    site = SiteInfo.from_bytes(SITE)
    assert site.data_format_version == 1
    assert site.protocol_version == (2, 11)
    assert site.serial == 1
    assert site.primary_mask == 0x80
    assert site.is_primary
    assert not site.is_multi_primary
    assert site.hash_option == HashOption.BY_ALL
    assert site.hash_filter == b""
    assert site.attributes == (Attribute("desc", "hdlpeer test"),)
    assert site.attribute("desc") == "hdlpeer test"
    assert site.attribute("domain") is None
    (server,) = site.servers
    assert server.server_id == 1
    # The reference server right-aligns IPv4 into zeros, without ff ff.
    assert server.address == bytes(12) + bytes([127, 0, 0, 1])
    assert server.ip_address == ipaddress.IPv4Address("127.0.0.1")
    assert len(server.public_key) == 289
    assert server.interfaces == (
        Interface(InterfaceType.ADMIN_AND_QUERY, TransportProtocol.TCP, 22641),
        Interface(InterfaceType.QUERY, TransportProtocol.UDP, 22641),
    )


def test_site_vector_round_trips_byte_exactly() -> None:
    assert SiteInfo.from_bytes(SITE).to_bytes() == SITE


def test_site_public_key_is_the_server_signing_key() -> None:
    # Parse the raw HS_PUBKEY (spec §2.4) by hand: UTF8 type, int2 flags, byte-array e, n.
    r = Reader(SiteInfo.from_bytes(SITE).servers[0].public_key)
    assert r.utf8() == "RSA_PUB_KEY"
    assert r.u16() == 0
    e = int.from_bytes(r.byte_array(), "big")
    n = int.from_bytes(r.byte_array(), "big")
    assert r.u32() == 0  # trailing empty byte-array in the Java encoding
    r.expect_end("HS_PUBKEY")
    key = load_pem_public_key(SERVER_KEY_PEM)
    assert isinstance(key, rsa.RSAPublicKey)
    assert (e, n) == (key.public_numbers().e, key.public_numbers().n)


@pytest.mark.parametrize(
    "vtype", ["HS_SITE", "hs_site", "HS_SITE.6", "HS_SITE.PREFIX", "HS_NA_DELEGATE"]
)
def test_site_registered_types(vtype: str) -> None:
    assert parse(vtype, SITE) == SiteInfo.from_bytes(SITE)


def test_site_interface_selection() -> None:
    server = SiteInfo.from_bytes(SITE).servers[0]
    tcp, udp = server.interfaces
    assert server.interface_for(TransportProtocol.TCP, admin=True) == tcp
    assert server.interface_for(TransportProtocol.TCP, admin=False) == tcp
    # The UDP interface is query-only: no admin requests over UDP.
    assert server.interface_for(TransportProtocol.UDP, admin=True) is None
    assert server.interface_for(TransportProtocol.UDP, admin=False) == udp
    assert server.interface_for(TransportProtocol.UDP, admin=False, needs_connection=True) is None
    assert server.interface_for(TransportProtocol.HTTP, admin=False) is None
    assert tcp.serves_admin and tcp.serves_query
    assert udp.serves_query and not udp.serves_admin
    assert not Interface(InterfaceType.OUT_OF_SERVICE, 1, 2641).can_handle(admin=False)
    assert Interface(InterfaceType.ADMIN, 2, 8000).can_handle(admin=True, needs_connection=True)


def test_site_flags() -> None:
    assert SiteInfo(primary_mask=0x40).is_multi_primary
    assert not SiteInfo(primary_mask=0x40).is_primary
    assert SiteInfo(primary_mask=0xC0).is_primary


def test_site_unknown_raw_values_round_trip() -> None:
    site = SiteInfo(
        data_format_version=7,
        primary_mask=0x3F,
        hash_option=9,
        hash_filter=b"\x00\xff",
        attributes=(Attribute("alt_addr.1", "::1"), Attribute("desc", "é")),
        servers=(ServerInfo(0xFFFFFFFF, bytes(range(16)), b"k", (Interface(9, 8, 0xFFFFFFFF),)),),
    )
    assert SiteInfo.from_bytes(site.to_bytes()) == site
    assert site.attributes[0].name == "alt_addr.1"


def test_site_constructor_validates() -> None:
    with pytest.raises(ProtocolViolation):
        ServerInfo(1, bytes(4))
    with pytest.raises(ProtocolViolation):
        SiteInfo(serial=0x10000)
    with pytest.raises(ProtocolViolation):
        Interface(256, 0, 1)
    with pytest.raises(TypeError):
        SiteInfo(servers=("x",))  # type: ignore[arg-type]
    # Plain (name, value) pairs and lists are accepted and normalised.
    site = SiteInfo(attributes=[("a", "b")], servers=[])  # type: ignore[arg-type]
    assert site.attributes == (Attribute("a", "b"),)
    assert site.servers == ()


# -- addresses (spec §1.2) ------------------------------------------------------------------------
def test_address_ipv4_both_forms() -> None:
    v4 = ipaddress.IPv4Address("192.0.2.7")
    mapped = bytes(10) + b"\xff\xff" + v4.packed
    right_aligned = bytes(12) + v4.packed
    assert address_to_bytes(v4) == mapped
    assert address_to_bytes("192.0.2.7", mapped=False) == right_aligned
    assert address_from_bytes(mapped) == v4
    assert address_from_bytes(right_aligned) == v4


def test_address_ipv6() -> None:
    v6 = ipaddress.IPv6Address("2001:db8::1")
    assert address_to_bytes(v6) == v6.packed
    assert address_from_bytes(v6.packed) == v6
    with pytest.raises(ProtocolViolation):
        address_from_bytes(b"\x00" * 4)


# -- server selection (spec §2.2) -----------------------------------------------------------------
def _md5_hash_by_hand(part: bytes) -> int:
    """MD5, last four bytes as a signed big-endian int, absolute value."""
    (value,) = struct.unpack(">i", hashlib.md5(part).digest()[12:16])
    return abs(int(value))


# Expected hashes computed with Java int semantics (Math.abs of a big-endian readInt of the last
# four MD5 bytes) by a separate Java program: (handle, by prefix, by suffix, by all).
JAVA_HASHES = [
    ("20.500.999/ADMIN", 310782418, 1784546589, 1733102610),
    ("20.500.999/T1", 310782418, 1608352125, 1585300643),
    ("0.NA/20.500.999", 36223079, 310782418, 1222152508),
    ("10.1000/182", 2091615925, 121077769, 852241299),
    ("nosuffix", 36223079, 658636546, 658636546),
    ("20.500.999/\u00e9", 310782418, 1689532561, 862533971),
    ("20.500.999/abc", 310782418, 891676978, 762197423),
]


@pytest.mark.parametrize(("handle", "by_prefix", "by_suffix", "by_all"), JAVA_HASHES)
def test_handle_hash_matches_java(handle: str, by_prefix: int, by_suffix: int, by_all: int) -> None:
    assert handle_hash(handle, HashOption.BY_PREFIX) == by_prefix
    assert handle_hash(handle, HashOption.BY_SUFFIX) == by_suffix
    assert handle_hash(handle, HashOption.BY_ALL) == by_all


def test_handle_hash_by_hand() -> None:
    assert handle_hash("20.500.999/t1", 2) == _md5_hash_by_hand(b"20.500.999/T1")
    assert handle_hash("20.500.999/t1", 0) == _md5_hash_by_hand(b"20.500.999")
    assert handle_hash("20.500.999/t1", 1) == _md5_hash_by_hand(b"T1")
    # Only the first slash splits; no slash: prefix 0.NA, suffix = whole handle.
    assert handle_hash("a/b/c", 1) == _md5_hash_by_hand(b"B/C")
    assert handle_hash("Lonely", 0) == _md5_hash_by_hand(b"0.NA")
    assert handle_hash("Lonely", 1) == _md5_hash_by_hand(b"LONELY")
    # Upper-casing is ASCII only: the UTF-8 bytes of é are hashed unchanged.
    assert handle_hash("x/\u00e9a", 1) == _md5_hash_by_hand("\u00e9A".encode())
    # The prefix is upper-cased too (case-insensitive prefixes).
    assert handle_hash("20.500.ABC/x", 0) == handle_hash("20.500.abc/y", 0)


def _site_with(n: int, hash_option: int) -> SiteInfo:
    servers = tuple(ServerInfo(i + 1, bytes(16)) for i in range(n))
    return SiteInfo(hash_option=hash_option, servers=servers)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("option", [0, 1, 2])
def test_server_index(n: int, option: int) -> None:
    site = _site_with(n, option)
    for handle, *hashes in JAVA_HASHES:
        index = site.server_index_for(handle)
        assert index == hashes[option] % n
        assert site.choose_server(handle) is site.servers[index]


def test_server_index_known_values() -> None:
    # Java: 1585300643 % 3 == 2, 852241299 % 5 == 4 (hash by all).
    assert _site_with(3, 2).server_index_for("20.500.999/T1") == 2
    assert _site_with(5, 2).server_index_for("10.1000/182") == 4
    assert _site_with(4, 1).choose_server("0.NA/20.500.999").server_id == 3


def test_server_index_errors() -> None:
    with pytest.raises(InvalidValue):
        SiteInfo().server_index_for("20.500.999/T1")
    with pytest.raises(InvalidValue):
        _site_with(2, 3).server_index_for("20.500.999/T1")
    with pytest.raises(InvalidHandle):
        handle_hash("a/\udc80", 2)


# -- HS_ADMIN (spec §2.1) -------------------------------------------------------------------------
def test_admin_vector() -> None:
    rec = AdminRecord.from_bytes(ADMIN)
    assert rec == AdminRecord(0x0FFF, "20.500.999/ADMIN", 300)
    assert not rec.legacy_byte_length
    assert rec.to_bytes() == ADMIN
    assert parse("HS_ADMIN", ADMIN) == rec
    assert rec.permissions_string == "111111111111"
    assert rec.admin_permissions == AdminPermission(ALL_PERMISSIONS)


def test_admin_has() -> None:
    rec = AdminRecord(0x07F3, "0.NA/20.500.999", 200)
    assert rec.has(AdminPermission.ADD_HANDLE)
    assert rec.has(AdminPermission.ADD_HANDLE | AdminPermission.READ_VALUE)
    assert not rec.has(AdminPermission.LIST_HANDLES)
    assert not rec.has(AdminPermission.ADD_NA | AdminPermission.ADD_HANDLE)


def test_admin_legacy_form_round_trips() -> None:
    legacy = ADMIN + b"\x00\x00"
    rec = AdminRecord.from_bytes(legacy)
    assert rec.legacy_byte_length
    assert (rec.permissions, rec.handle, rec.index) == (0x0FFF, "20.500.999/ADMIN", 300)
    assert rec.to_bytes() == legacy
    assert rec != AdminRecord.from_bytes(ADMIN)
    # Java ignores the padding's value; keep it verbatim anyway.
    odd = ADMIN + b"\x12\x34"
    assert AdminRecord.from_bytes(odd).to_bytes() == odd


@pytest.mark.parametrize("extra", [1, 3, 4])
def test_admin_trailing_bytes(extra: int) -> None:
    with pytest.raises(ProtocolViolation):
        AdminRecord.from_bytes(ADMIN + bytes(extra))


def test_admin_unknown_high_bits_kept() -> None:
    rec = AdminRecord(0xF001, "x/y", 1)
    assert AdminRecord.from_bytes(rec.to_bytes()) == rec
    assert rec.permissions_string == "000000000001"
    assert rec.admin_permissions == AdminPermission.ADD_HANDLE


def test_admin_constructor_validates() -> None:
    with pytest.raises(ProtocolViolation):
        AdminRecord(0x10000, "x/y", 1)
    with pytest.raises(ProtocolViolation):
        AdminRecord(1, "x/y", -1)
    with pytest.raises(ProtocolViolation):
        AdminRecord(1, "x/y", 1, b"\x00")


def test_permissions_to_string() -> None:
    assert permissions_to_string(0x07F3) == "011111110011"
    assert permissions_to_string(0x07FF) == "011111111111"
    assert permissions_to_string(0) == "000000000000"
    assert permissions_to_string(AdminPermission.LIST_HANDLES) == "100000000000"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("011111110011", 0x07F3),
        ("011111111111", 0x07FF),
        ("*", 0x0FFF),
        ("11", 0x0003),
        ("", 0),
        ("1" * 20, 0x0FFF),
        ("1" + "0" * 12, 0),  # only the last twelve characters count
        ("x1y1", 0x0005),
        (True, 0x0FFF),
        (False, 0),
        (None, 0),
        (0x07F3, 0x07F3),
        (0x1FFF, 0x0FFF),
        (-1, 0x0FFF),
        (3.9, 3),
        ([1, True, "y", 0, False, "", None, 0.0, [], {}, 2.5, 1], 0b111100000111),
        ([1] * 13, 0x0FFF),
        ([0, 1], 0x0002),
    ],
)
def test_permissions_from_json(value: object, expected: int) -> None:
    assert permissions_from_json(value) == expected


@pytest.mark.parametrize("value", [{"a": 1}, float("nan"), object()])
def test_permissions_from_json_rejects(value: object) -> None:
    with pytest.raises(InvalidValue):
        permissions_from_json(value)


# -- HS_VLIST (spec §2.6) -------------------------------------------------------------------------
def test_vlist_vector() -> None:
    vlist = ValueList.from_bytes(VLIST)
    assert vlist.entries == (
        Reference("20.500.999/ADMIN", 300),
        Reference("20.500.999/ADMIN", 301),
    )
    assert list(vlist) == list(vlist.entries)
    assert vlist.to_bytes() == VLIST
    assert parse("HS_VLIST", VLIST) == vlist
    assert ValueList().to_bytes() == bytes(4)
    assert ValueList([Reference("a/b", 1)]) == ValueList((Reference("a/b", 1),))  # type: ignore[arg-type]


# -- text types (spec §2.3, §2.7) -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("vtype", "cls", "text"),
    [
        ("URL", URL, "https://example.org/item/1"),
        ("URL.ALT", URL, "https://example.org/\u00fcber"),
        ("EMAIL", Email, "user1@example.org"),
        ("HS_ALIAS", Alias, "20.500.999/T1"),
        ("HS_SERV", ServiceHandle, "0.NA/10"),
        ("HS_SERV.PREFIX", ServiceHandle, "10.SERV/CROSSREF"),
    ],
)
def test_text_types(vtype: str, cls: type[TextValue], text: str) -> None:
    data = text.encode("utf-8")
    value = parse(vtype, data)
    assert isinstance(value, cls)
    assert type(value) is cls
    assert value == cls(text)
    assert value.to_bytes() == data
    assert str(value) == text


def test_text_types_are_distinct() -> None:
    same_text: list[object] = [URL("x"), Email("x")]
    assert same_text[0] != same_text[1]
    assert URL.from_bytes(b"") == URL("")


def test_text_rejects_invalid_utf8() -> None:
    for bad in (b"\xff", b"ab\xc3", b"\xed\xa0\x80", b"\xc0\xaf"):
        with pytest.raises(ProtocolViolation):
            parse("URL", bad)
    with pytest.raises(ProtocolViolation):
        Email("\ud800")


# -- HS_SECKEY (spec §2.5) ------------------------------------------------------------------------
def test_seckey() -> None:
    key = SecretKey.from_bytes(b"hdlpeer-secret")
    assert parse("HS_SECKEY", b"hdlpeer-secret") == key
    assert key.to_bytes() == b"hdlpeer-secret"
    assert "hdlpeer" not in repr(key)
    assert "hdlpeer" not in str(key)
    assert key.matches(b"hdlpeer-secret")
    assert not key.matches(b"hdlpeer-secreT")


# -- malformed input: ProtocolViolation and nothing else ------------------------------------------
@pytest.mark.parametrize(
    ("vtype", "data"), [("HS_SITE", SITE), ("HS_ADMIN", ADMIN), ("HS_VLIST", VLIST)]
)
def test_every_truncation_is_a_protocol_violation(vtype: str, data: bytes) -> None:
    for n in range(len(data)):
        with pytest.raises(ProtocolViolation):
            parse(vtype, data[:n])


@pytest.mark.parametrize(("vtype", "data"), [("HS_SITE", SITE), ("HS_VLIST", VLIST)])
def test_trailing_bytes_are_a_protocol_violation(vtype: str, data: bytes) -> None:
    for extra in (b"\x00", b"\x00\x00", b"\xff" * 5):
        with pytest.raises(ProtocolViolation):
            parse(vtype, data + extra)


def test_hostile_counts_fail_fast() -> None:
    # 0xffffffff attributes / servers / interfaces / vlist entries with nothing behind them.
    site_head = SITE[:12]  # fixed part + empty hash filter
    with pytest.raises(ProtocolViolation):
        SiteInfo.from_bytes(site_head + b"\xff\xff\xff\xff")
    with pytest.raises(ProtocolViolation):
        SiteInfo.from_bytes(site_head + bytes(4) + b"\xff\xff\xff\xff")
    with pytest.raises(ProtocolViolation):
        ValueList.from_bytes(b"\xff\xff\xff\xff")
    with pytest.raises(ProtocolViolation):
        AdminRecord.from_bytes(b"\x0f\xff\xff\xff\xff\xff")


def test_invalid_utf8_in_structures() -> None:
    bad_admin = bytes.fromhex("0fff00000002ffff0000012c")
    with pytest.raises(ProtocolViolation):
        AdminRecord.from_bytes(bad_admin)
    bad_vlist = bytes.fromhex("0000000100000001ff00000001")
    with pytest.raises(ProtocolViolation):
        ValueList.from_bytes(bad_vlist)
    bad_site = SITE[:20] + b"\xff" + SITE[21:]  # first byte of "desc"
    with pytest.raises(ProtocolViolation):
        SiteInfo.from_bytes(bad_site)


def test_registry_covers_the_types() -> None:
    for name in ("HS_ADMIN", "HS_SITE", "HS_NA_DELEGATE", "HS_VLIST", "URL", "EMAIL"):
        assert codec_for(name) is not None
    for name in ("HS_ALIAS", "HS_SERV", "HS_SECKEY", "hs_site.prefix"):
        assert codec_for(name) is not None
    assert parse("10320/LOC", b"<locations/>") is None
