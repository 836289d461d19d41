"""Property tests of the value-type codecs (spec §2).

Invariants: ``from_bytes(to_bytes(x)) == x`` for every type, and for any bytes ``parse(type, data)``
either returns a value that re-encodes to exactly those bytes or raises ProtocolViolation.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnode.errors import ProtocolViolation
from idnode.protocol.types import ValueData, parse
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.types.hs_seckey import SecretKey
from idnode.protocol.types.hs_site import Attribute, Interface, ServerInfo, SiteInfo
from idnode.protocol.types.hs_vlist import ValueList
from idnode.protocol.types.text import URL, Alias, Email, ServiceHandle
from idnode.protocol.values import Reference

from .test_types import ADMIN, SITE, VLIST

_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
text = st.text(max_size=40)  # hypothesis text never contains lone surrogates

interfaces = st.builds(Interface, u8, u8, u32)
servers = st.builds(
    ServerInfo,
    u32,
    st.binary(min_size=16, max_size=16),
    st.binary(max_size=64),
    st.lists(interfaces, max_size=4).map(tuple),
)
sites = st.builds(
    SiteInfo,
    u16,
    u8,
    u8,
    u16,
    u8,
    u8,
    st.binary(max_size=16),
    st.lists(st.builds(Attribute, text, text), max_size=4).map(tuple),
    st.lists(servers, max_size=3).map(tuple),
)
admins = st.builds(AdminRecord, u16, text, u32, st.sampled_from([b"", b"\x00\x00", b"\xab\xcd"]))
vlists = st.builds(ValueList, st.lists(st.builds(Reference, text, u32), max_size=6).map(tuple))
text_values = st.one_of([st.builds(cls, text) for cls in (URL, Email, Alias, ServiceHandle)])
seckeys = st.builds(SecretKey, st.binary(max_size=64))

values: st.SearchStrategy[ValueData] = st.one_of(sites, admins, vlists, text_values, seckeys)


@_SETTINGS
@given(values)
def test_round_trip(value: ValueData) -> None:
    data = value.to_bytes()
    decoded = type(value).from_bytes(data)  # type: ignore[attr-defined]
    assert decoded == value
    assert type(decoded) is type(value)
    assert decoded.to_bytes() == data


@_SETTINGS
@given(st.one_of(sites, admins, vlists))
def test_truncation_fails_cleanly(value: SiteInfo | AdminRecord | ValueList) -> None:
    data = value.to_bytes()
    for n in range(len(data)):
        if isinstance(value, AdminRecord) and value.legacy_byte_length and n == len(data) - 2:
            # Dropping the legacy padding leaves the ordinary form of the same record.
            assert AdminRecord.from_bytes(data[:n]) == dataclasses.replace(
                value, legacy_padding=b""
            )
            continue
        with pytest.raises(ProtocolViolation):
            type(value).from_bytes(data[:n])


TYPE_NAMES = [
    "HS_SITE",
    "HS_SITE.PREFIX",
    "HS_NA_DELEGATE",
    "HS_ADMIN",
    "HS_VLIST",
    "URL",
    "EMAIL",
    "HS_ALIAS",
    "HS_SERV",
    "HS_SECKEY",
]


def _parse_or_violation(vtype: str, data: bytes) -> None:
    try:
        value = parse(vtype, data)
    except ProtocolViolation:
        return
    assert value is not None
    # Whatever decodes re-encodes to the very same bytes.
    assert value.to_bytes() == data


@pytest.mark.parametrize("vtype", TYPE_NAMES)
@_SETTINGS
@given(data=st.binary(max_size=128))
def test_random_bytes(vtype: str, data: bytes) -> None:
    _parse_or_violation(vtype, data)


def _mutations(seed: bytes) -> st.SearchStrategy[bytes]:
    """Valid bytes with a few bytes overwritten, inserted or deleted (reaches deep fields)."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        buf = bytearray(seed)
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(["set", "insert", "delete"]))
            pos = draw(st.integers(0, len(buf)))
            if op == "set" and pos < len(buf):
                buf[pos] = draw(u8)
            elif op == "insert":
                buf[pos:pos] = draw(st.binary(min_size=1, max_size=4))
            elif pos < len(buf):
                del buf[pos]
        return bytes(buf)

    return mutate()


@pytest.mark.parametrize(
    ("vtype", "seed"), [("HS_SITE", SITE), ("HS_ADMIN", ADMIN), ("HS_VLIST", VLIST)]
)
@_SETTINGS
@given(data=st.data())
def test_mutated_vectors(vtype: str, seed: bytes, data: st.DataObject) -> None:
    _parse_or_violation(vtype, data.draw(_mutations(seed)))
