"""HS_PUBKEY encodings (spec §2.4) and private-key files, against the reference server's bytes
(``../shared/vectors/README.md``: identity keys 301/302 and the server key in HS_SITE)."""

from __future__ import annotations

import re
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, rsa
from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_pem_public_key,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from idnode.errors import InvalidValue, ProtocolViolation
from idnode.protocol.types import codec_for, parse
from idnode.protocol.types.hs_pubkey import (
    DH_PUB_KEY,
    DSA_PUB_KEY,
    RSA_PUB_KEY,
    PublicKeyData,
    dump_private_key_file,
    dump_private_key_pem,
    java_bigint_bytes,
    load_private_key,
    private_key_from_bytes,
    private_key_to_bytes,
)
from idnode.protocol.wire import Reader
from tests.vectors_util import load_exchange, pem_blocks, readme_section


def _encoding(heading: str) -> bytes:
    m = re.search(
        r"HS_PUBKEY encoding \(value data of index \d+\): `([0-9a-f]+)`", readme_section(heading)
    )
    assert m is not None
    return bytes.fromhex(m.group(1))


def _site_server_key() -> bytes:
    """The server's HS_PUBKEY from the HS_SITE record in the README (spec §2.2)."""
    block = re.search(r"```\n([0-9a-f\n]+)```", readme_section("Server HS_SITE record"))
    assert block is not None
    r = Reader(bytes.fromhex(block.group(1).replace("\n", "")))
    r.raw(2 + 2 + 2 + 1 + 1)  # format version, protocol version, serial, primary mask, hash option
    r.byte_array()  # hash filter
    for _ in range(r.u32()):
        r.utf8(), r.utf8()
    assert r.u32() == 1
    r.u32()  # server id
    r.raw(16)  # address
    return r.byte_array()


RSA_301 = _encoding("RSA identity key")
DSA_302 = _encoding("DSA identity key")
SERVER = _site_server_key()
RSA_PUBLIC_PEM, RSA_PRIVATE_PEM = pem_blocks(readme_section("RSA identity key"))
DSA_PUBLIC_PEM, DSA_PRIVATE_PEM = pem_blocks(readme_section("DSA identity key"))
(SERVER_PUBLIC_PEM,) = pem_blocks(readme_section("Server signing key"))

VECTORS = [(RSA_301, RSA_PUBLIC_PEM), (DSA_302, DSA_PUBLIC_PEM), (SERVER, SERVER_PUBLIC_PEM)]
IDS = ["rsa-301", "dsa-302", "server"]


@pytest.mark.parametrize(("data", "pem"), VECTORS, ids=IDS)
def test_recorded_keys_decode_match_and_reencode(data: bytes, pem: bytes) -> None:
    decoded = PublicKeyData.from_bytes(data)
    assert decoded.to_bytes() == data
    key = load_pem_public_key(pem)
    assert isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey)
    public = decoded.to_public_key()
    assert isinstance(public, rsa.RSAPublicKey | dsa.DSAPublicKey)
    assert public.public_numbers() == key.public_numbers()
    assert PublicKeyData.from_public_key(key) == decoded
    assert PublicKeyData.from_public_key(key).to_bytes() == data
    assert parse("HS_PUBKEY", data) == decoded
    assert codec_for("hs_pubkey") is PublicKeyData


def test_readme_encodings_are_the_recorded_values() -> None:
    request = load_exchange("tcp-add-pubkeys-seckey")[0]
    assert request.is_request and RSA_301 in request.data and DSA_302 in request.data


def test_rsa_layout_and_java_quirks() -> None:
    d = PublicKeyData.from_bytes(RSA_301)
    assert d.key_type == RSA_PUB_KEY and d.flags == 0
    e, n = d.params
    assert e == b"\x01\x00\x01"
    assert len(n) == 257 and n[0] == 0  # BigInteger sign byte before a 2048-bit modulus
    assert d.trailing == bytes(4)  # Java's RSA encoder leaves one unused int4 at the end
    assert d.integers == {"e": 65537, "n": int.from_bytes(n, "big")}


def test_dsa_layout() -> None:
    d = PublicKeyData.from_bytes(DSA_302)
    assert d.key_type == DSA_PUB_KEY and d.trailing == b""
    q, p, g, y = d.params
    assert (len(q), len(p), len(g), len(y)) == (21, 129, 129, 128)  # y's high bit is clear
    assert q[0] == p[0] == g[0] == 0 and y[0] != 0


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, b"\x00"), (1, b"\x01"), (0x7F, b"\x7f"), (0x80, b"\x00\x80"), (0x100, b"\x01\x00"),
     (65537, b"\x01\x00\x01"), (0xFFFF, b"\x00\xff\xff")],
)  # fmt: skip
def test_java_bigint_bytes(n: int, expected: bytes) -> None:
    assert java_bigint_bytes(n) == expected


def test_java_bigint_bytes_rejects_negative() -> None:
    with pytest.raises(ValueError):
        java_bigint_bytes(-1)


def test_non_minimal_parameters_are_kept() -> None:
    """Java reads parameters as unsigned magnitudes, so extra zero bytes are harmless and kept."""
    d = PublicKeyData.from_bytes(RSA_301)
    padded = PublicKeyData(RSA_PUB_KEY, (b"\x00\x00" + d.params[0], d.params[1][1:]))
    again = PublicKeyData.from_bytes(padded.to_bytes())
    assert again == padded and again.to_bytes() == padded.to_bytes()
    public, original = again.to_public_key(), d.to_public_key()
    assert isinstance(public, rsa.RSAPublicKey) and isinstance(original, rsa.RSAPublicKey)
    assert public.public_numbers() == original.public_numbers()


def test_unknown_key_type_round_trips() -> None:
    data = b"\x00\x00\x00\x0aEC_PUB_KEY\x00\x07" + b"\x00\x00\x00\x02\xab\xcd"
    d = PublicKeyData.from_bytes(data)
    assert (d.key_type, d.flags, d.params, d.trailing) == ("EC_PUB_KEY", 7, (), data[16:])
    assert d.to_bytes() == data and d.integers == {}
    with pytest.raises(ProtocolViolation):
        d.to_public_key()


def test_dh_keys_encode_but_have_no_cryptography_object() -> None:
    d = PublicKeyData.from_integers(DH_PUB_KEY, 5, 0x80, 2)
    data = d.to_bytes()
    assert data == (
        b"\x00\x00\x00\x0aDH_PUB_KEY\x00\x00"
        + b"\x00\x00\x00\x01\x05\x00\x00\x00\x02\x00\x80\x00\x00\x00\x01\x02"
    )
    assert PublicKeyData.from_bytes(data).integers == {"y": 5, "p": 0x80, "g": 2}
    with pytest.raises(ProtocolViolation):
        d.to_public_key()


@pytest.mark.parametrize("cut", [0, 3, 15, 17, 20, 100, len(RSA_301) - 5])
def test_truncated_encodings(cut: int) -> None:
    with pytest.raises(ProtocolViolation):
        PublicKeyData.from_bytes(RSA_301[:cut])


def test_invalid_parameters() -> None:
    bad = PublicKeyData(RSA_PUB_KEY, (b"\x01\x00\x01", b"\x00"))  # modulus 0
    with pytest.raises(ProtocolViolation):
        bad.to_public_key()
    with pytest.raises(ProtocolViolation):
        PublicKeyData(RSA_PUB_KEY, (b"\x03",))
    with pytest.raises(ProtocolViolation):
        PublicKeyData(DSA_PUB_KEY, (), flags=0x10000)
    with pytest.raises(TypeError):
        PublicKeyData(RSA_PUB_KEY, [b"\x03", b"\x05"])  # type: ignore[arg-type]


def test_from_public_key_rejects_other_keys() -> None:
    with pytest.raises(TypeError):
        PublicKeyData.from_public_key("not a key")  # type: ignore[arg-type]


@settings(max_examples=100)
@given(
    key_type=st.sampled_from([RSA_PUB_KEY, DSA_PUB_KEY, DH_PUB_KEY, "X"]),
    flags=st.integers(0, 0xFFFF),
    params=st.lists(st.binary(max_size=9), min_size=4, max_size=4),
    trailing=st.binary(max_size=8),
)
def test_round_trip_property(
    key_type: str, flags: int, params: list[bytes], trailing: bytes
) -> None:
    count = {RSA_PUB_KEY: 2, DSA_PUB_KEY: 4, DH_PUB_KEY: 3}.get(key_type, 0)
    d = PublicKeyData(key_type, tuple(params[:count]), flags, trailing)
    data = d.to_bytes()
    assert PublicKeyData.from_bytes(data).to_bytes() == data


# -- private keys ------------------------------------------------------------------------------
def _private(pem: bytes) -> rsa.RSAPrivateKey | dsa.DSAPrivateKey:
    key = load_pem_private_key(pem, None)
    assert isinstance(key, rsa.RSAPrivateKey | dsa.DSAPrivateKey)
    return key


def _rsa(pem: bytes) -> rsa.RSAPrivateKey:
    key = _private(pem)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _dsa(pem: bytes) -> dsa.DSAPrivateKey:
    key = _private(pem)
    assert isinstance(key, dsa.DSAPrivateKey)
    return key


def _numbers(key: object) -> object:
    assert isinstance(key, rsa.RSAPrivateKey | dsa.DSAPrivateKey)
    return key.private_numbers()


PRIVATE = [RSA_PRIVATE_PEM, DSA_PRIVATE_PEM]
KINDS = ["rsa", "dsa"]


@pytest.mark.parametrize("pem", PRIVATE, ids=KINDS)
def test_private_key_bytes_round_trip(pem: bytes) -> None:
    key = _private(pem)
    data = private_key_to_bytes(key)
    assert _numbers(private_key_from_bytes(data)) == key.private_numbers()
    assert private_key_to_bytes(private_key_from_bytes(data)) == data


def test_private_key_bytes_layout() -> None:
    key = _rsa(RSA_PRIVATE_PEM)
    r = Reader(private_key_to_bytes(key))
    assert r.utf8() == "RSA_PRIVCRT_KEY"
    n = key.private_numbers()
    fields = [n.public_numbers.n, n.public_numbers.e, n.d, n.p, n.q, n.dmp1, n.dmq1, n.iqmp]
    assert [r.byte_array() for _ in fields] == [java_bigint_bytes(i) for i in fields]
    r.expect_end("RSA_PRIVCRT_KEY")
    dkey = _dsa(DSA_PRIVATE_PEM)
    r = Reader(private_key_to_bytes(dkey))
    assert r.utf8() == "DSA_PRIV_KEY"
    d = dkey.private_numbers()
    pn = d.public_numbers.parameter_numbers
    assert [r.byte_array() for _ in range(4)] == [
        java_bigint_bytes(i) for i in (d.x, pn.p, pn.q, pn.g)
    ]
    r.expect_end("DSA_PRIV_KEY")


@pytest.mark.parametrize("pem", PRIVATE, ids=KINDS)
def test_unencrypted_key_file(pem: bytes) -> None:
    key = _private(pem)
    data = dump_private_key_file(key)
    assert data == struct.pack(">I", 1) + private_key_to_bytes(key)
    assert _numbers(load_private_key(data)) == key.private_numbers()
    assert _numbers(load_private_key(data, b"ignored")) == key.private_numbers()


@pytest.mark.parametrize("pem", PRIVATE, ids=KINDS)
def test_encrypted_key_file(pem: bytes) -> None:
    key = _private(pem)
    data = dump_private_key_file(key, "pässphrase".encode(), salt=b"S" * 16, iv=b"I" * 16)
    r = Reader(data)
    assert (r.u32(), r.byte_array(), r.u32(), r.u32(), r.byte_array()) == (
        4, b"S" * 16, 10000, 128, b"I" * 16
    )  # fmt: skip
    assert len(r.byte_array()) % 16 == 0
    r.expect_end("key file")
    assert data == dump_private_key_file(key, "pässphrase".encode(), salt=b"S" * 16, iv=b"I" * 16)
    assert _numbers(load_private_key(data, "pässphrase".encode())) == key.private_numbers()
    with pytest.raises(InvalidValue):
        load_private_key(data, b"wrong")
    with pytest.raises(InvalidValue):
        load_private_key(data)
    with pytest.raises(ValueError):
        dump_private_key_file(key, b"")
    random_salt = dump_private_key_file(key, b"pw")
    assert random_salt != dump_private_key_file(key, b"pw")
    assert _numbers(load_private_key(random_salt, b"pw")) == key.private_numbers()


@pytest.mark.parametrize("pem", PRIVATE, ids=KINDS)
def test_pem_files(pem: bytes) -> None:
    key = _private(pem)
    assert _numbers(load_private_key(pem)) == key.private_numbers()
    assert _numbers(load_private_key(b"\n" + dump_private_key_pem(key))) == key.private_numbers()
    encrypted = dump_private_key_pem(key, b"secret")
    assert b"ENCRYPTED" in encrypted
    assert _numbers(load_private_key(encrypted, b"secret")) == key.private_numbers()
    for wrong in (None, b"other"):
        with pytest.raises(InvalidValue):
            load_private_key(encrypted, wrong)


@pytest.mark.parametrize(
    "data",
    [
        struct.pack(">I", 2) + bytes(20),  # DES-CBC: refused
        struct.pack(">I", 1) + b"\x00\x00\x00\x0cRSA_PRIV_KEY" + bytes(8),  # no CRT parameters
        struct.pack(">I", 1) + b"\x00\x00\x00\x0cDSA_PRIV_KEY" + bytes(16),  # all zero
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ],
)
def test_unusable_key_files(data: bytes) -> None:
    with pytest.raises(InvalidValue):
        load_private_key(data, b"pw")


def test_truncated_key_file() -> None:
    data = dump_private_key_file(_private(DSA_PRIVATE_PEM))
    with pytest.raises(ProtocolViolation):
        load_private_key(data[:40])
    with pytest.raises(ProtocolViolation):
        load_private_key(b"\x00\x00")
