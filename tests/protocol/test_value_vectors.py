"""Byte-exact vectors of the value types no recorded message carries (tests/vectors/values/).

Each file is one encoded handle value, one field per line; the test pins both directions:
decoding gives the value and typed data written out below, and encoding gives the bytes.
HS_ADMIN, HS_SITE (and HS_SITE.PREFIX), HS_PUBKEY (RSA, DSA), URL and EMAIL are pinned by the
message vectors in tests/vectors/ (create-request, get-site-info-response, referral-response,
add-value-request-pubkeys).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from idnode.protocol import types as value_types
from idnode.protocol.types.hs_seckey import SecretKey
from idnode.protocol.types.hs_vlist import ValueList
from idnode.protocol.types.text import Alias, ServiceHandle, TextValue
from idnode.protocol.values import HandleValue, Reference
from tests.protocol.vectors import parse

VALUES = Path(__file__).resolve().parents[1] / "vectors" / "values"
TS = 1795973556

CASES: dict[str, tuple[HandleValue, object]] = {
    "hs-vlist": (
        HandleValue(
            200,
            "HS_VLIST",
            bytes.fromhex(
                "00000002"
                "0000000d302e4e412f38382e3131382e38"
                "0000012c"
                "0000000f38382e3131382e382f555345522d41"
                "0000012d"
            ),
            timestamp=TS,
        ),
        ValueList((Reference("0.NA/88.118.8", 300), Reference("88.118.8/USER-A", 301))),
    ),
    "hs-seckey": (
        HandleValue(300, "HS_SECKEY", b"hdlpeer-secret", timestamp=TS, permissions=0x0C),
        SecretKey(b"hdlpeer-secret"),
    ),
    "hs-alias": (
        HandleValue(1, "HS_ALIAS", b"88.118.8/PV-2026-000123", timestamp=TS),
        Alias("88.118.8/PV-2026-000123"),
    ),
    "hs-serv": (
        HandleValue(2, "HS_SERV", b"0.NA/88.118", timestamp=TS),
        ServiceHandle("0.NA/88.118"),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_value_vector(name: str) -> None:
    (data,) = parse((VALUES / f"{name}.hex").read_text(encoding="utf-8"), name)
    expected, typed = CASES[name]
    assert HandleValue.decode(data) == expected
    assert expected.encode() == data
    parsed = value_types.parse(expected.type, expected.data)
    assert parsed == typed
    assert parsed is not None and parsed.to_bytes() == expected.data


def test_every_vector_file_is_pinned() -> None:
    assert sorted(p.stem for p in VALUES.glob("*.hex")) == sorted(CASES)
    assert isinstance(CASES["hs-alias"][1], TextValue)
