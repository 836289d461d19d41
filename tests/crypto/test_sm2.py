"""SM2/SM3 against the standards' worked examples, OpenSSL, and malformed key data."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from gmalg.ellipticcurve import ECDLP
from gmalg.sm2 import SM2Core
from gmalg.sm3 import SM3

from idnode.crypto import der, sm2
from idnode.crypto.sm2 import Sm2Error, Sm2PrivateKey, Sm2PublicKey

MSG = b"message digest"


# --- SM3: GB/T 32905-2016 Appendix A -------------------------------------------------------


def test_sm3_abc() -> None:
    assert sm2.sm3(b"abc").hex() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )


def test_sm3_512_bit_message() -> None:
    assert sm2.sm3(b"abcd" * 16).hex() == (
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    )


# --- SM2 on the recommended curve: GB/T 32918.5 / GM/T 0003.5 signature example ------------

REC_D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
REC_X = 0x09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020
REC_Y = 0xCCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13
REC_K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
REC_R = "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3"
REC_S = "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa"


def test_recommended_curve_example_public_key() -> None:
    pub = Sm2PrivateKey(REC_D).public_key()
    assert (pub.x, pub.y) == (REC_X, REC_Y)


def test_recommended_curve_example_signature_is_exact() -> None:
    key = Sm2PrivateKey(REC_D)
    signature = sm2._sign(key, MSG, sm2.DEFAULT_UID, lambda bits: REC_K)
    assert signature.hex() == REC_R + REC_S
    assert sm2.verify(key.public_key(), MSG, signature)


def test_recommended_curve_example_signature_verifies() -> None:
    pub = Sm2PublicKey(REC_X, REC_Y)
    assert sm2.verify(pub, MSG, bytes.fromhex(REC_R + REC_S))


# --- SM2 on the example curve of GB/T 32918.2-2016 Appendix A (the algorithm, any curve) ----

EX_P = 0x8542D69E4C044F18E8B92435BF6FF7DE457283915C45517D722EDB8B08F1DFC3
EX_A = 0x787968B4FA32C3FD2417842E73BBFEFF2F3C848B6831D7E0EC65228B3937E498
EX_B = 0x63E4C6D3B23B0C849CF84241484BFE48F61D59A5B16BA06E6E12D1DA27C5249A
EX_G = (
    0x421DEBD61B62EAB6746434EBC3CC315E32220B3BADD50BDC4C4E6C147FEDD43D,
    0x0680512BCBB42C07D47349D2153B70C4E5D7FDFCBFA36EA1A85841B9E46E09A2,
)
EX_N = 0x8542D69E4C044F18E8B92435BF6FF7DD297720630485628D5AE74EE7C32E79B7
EX_D = 0x128B2FA8BD433C6C068C8D803DFF79792A519A55171B1B650C23661D15897263
EX_PUB = (
    0x0AE4C7798AA0F119471BEE11825BE46202BB79E2A5844495E97C04FF4DF2548A,
    0x7C0240F88F1CD4E16352A73C17B7F16F07353E53A176D684A9FE0C6BB798E857,
)
EX_ID = b"ALICE123@YAHOO.COM"
EX_Z = "f4a38489e32b45b6f876e3ac2168ca392362dc8f23459c1d1146fc3dbfb7bc9a"
EX_E = "b524f552cd82b8b028476e005c377fb19a87e6fc682d48bb5d42e3d9b9effe76"
EX_R = 0x40F1EC59F793D9F49E09DCEF49130D4194F79FB1EED2CAA55BACDB49C4E755D1
EX_S = 0x6FC6DAC32C5D5CF10C77DFB20F7C2EB667A457872FB09EC56327A67EC7DEEBE7


def example_core() -> SM2Core:
    return SM2Core(ECDLP(EX_P, EX_A, EX_B, EX_G, EX_N), SM3())


def test_example_curve_public_key_z_and_e() -> None:
    core = example_core()
    assert core.generate_pk(EX_D) == EX_PUB
    z = bytes(core.entity_info(EX_ID, EX_PUB))
    assert z.hex() == EX_Z
    assert sm2.sm3(z + MSG).hex() == EX_E


def test_example_curve_signature_verifies_and_alterations_do_not() -> None:
    core = example_core()
    assert core.verify(MSG, EX_R, EX_S, EX_ID, EX_PUB)
    assert not core.verify(MSG + b".", EX_R, EX_S, EX_ID, EX_PUB)
    assert not core.verify(MSG, EX_R, EX_S ^ 1, EX_ID, EX_PUB)
    assert not core.verify(MSG, EX_R, EX_S, b"BOB", EX_PUB)


# --- sign / verify behaviour ---------------------------------------------------------------


def test_round_trip_and_every_alteration_fails() -> None:
    key = sm2.generate_private_key()
    pub = key.public_key()
    signature = sm2.sign(key, b"payload")
    assert len(signature) == 64
    assert sm2.verify(pub, b"payload", signature)
    assert not sm2.verify(pub, b"payloaD", signature)
    assert not sm2.verify(pub, b"payload", signature, uid=b"someone else")
    assert not sm2.verify(sm2.generate_private_key().public_key(), b"payload", signature)
    for i in (0, 31, 32, 63):
        forged = bytearray(signature)
        forged[i] ^= 0x01
        assert not sm2.verify(pub, b"payload", bytes(forged))


def test_custom_uid() -> None:
    key = sm2.generate_private_key()
    signature = sm2.sign(key, b"x", uid=b"88.118.8/admin")
    assert sm2.verify(key.public_key(), b"x", signature, uid=b"88.118.8/admin")
    assert not sm2.verify(key.public_key(), b"x", signature)


@pytest.mark.parametrize(
    "signature",
    [
        b"",
        b"\x00" * 63,
        b"\x00" * 65,
        b"\x00" * 64,  # r = s = 0
        sm2.N.to_bytes(32, "big") + b"\x00" * 31 + b"\x01",  # r = n
        b"\x00" * 31 + b"\x01" + sm2.N.to_bytes(32, "big"),  # s = n
        b"\xff" * 64,
    ],
)
def test_malformed_signatures_are_rejected(signature: bytes) -> None:
    assert not sm2.verify(Sm2PublicKey(REC_X, REC_Y), MSG, signature)


def test_overlong_uid() -> None:
    key = Sm2PrivateKey(REC_D)
    with pytest.raises(Sm2Error):
        sm2.sign(key, MSG, uid=b"u" * 8192)
    assert not sm2.verify(key.public_key(), MSG, b"\x01" * 64, uid=b"u" * 8192)


def test_private_key_repr_hides_the_secret() -> None:
    assert hex(REC_D)[2:10] not in repr(Sm2PrivateKey(REC_D)).lower()


# --- key encodings -------------------------------------------------------------------------


def test_raw_point_round_trip() -> None:
    pub = Sm2PublicKey(REC_X, REC_Y)
    point = pub.to_point()
    assert len(point) == 65 and point[0] == 4
    assert Sm2PublicKey.from_point(point) == pub


def test_raw_private_round_trip() -> None:
    key = sm2.generate_private_key()
    assert Sm2PrivateKey.from_raw(key.to_raw()).d == key.d


def test_der_and_pem_round_trip() -> None:
    key = sm2.generate_private_key()
    assert Sm2PrivateKey.from_der(key.to_der()).d == key.d
    assert Sm2PrivateKey.from_pem(key.to_pem()).d == key.d
    pub = key.public_key()
    assert Sm2PublicKey.from_der(pub.to_der()) == pub
    assert Sm2PublicKey.from_pem(pub.to_pem()) == pub
    assert key.to_pem().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert pub.to_pem().startswith(b"-----BEGIN PUBLIC KEY-----\n")


def test_der_names_id_ec_public_key_and_the_sm2_curve() -> None:
    spki = der.read_all(der.read_single(Sm2PublicKey(REC_X, REC_Y).to_der(), der.SEQUENCE).value)
    oids = [item.value.hex() for item in der.read_all(spki[0].value)]
    assert oids == ["2a8648ce3d0201", "2a811ccf5501822d"]


BAD_POINTS = [
    b"",
    b"\x04" + b"\x00" * 63,
    b"\x02" + REC_X.to_bytes(32, "big"),  # compressed: not accepted
    b"\x04" + REC_X.to_bytes(32, "big") + (REC_Y ^ 1).to_bytes(32, "big"),  # off the curve
    b"\x04" + sm2.P.to_bytes(32, "big") + REC_Y.to_bytes(32, "big"),  # x = p
    b"\x04" + b"\x00" * 64,
]


@pytest.mark.parametrize("point", BAD_POINTS)
def test_bad_points_raise_sm2_error(point: bytes) -> None:
    with pytest.raises(Sm2Error):
        Sm2PublicKey.from_point(point)


@pytest.mark.parametrize("raw", [b"", b"\x00" * 32, sm2.N.to_bytes(32, "big"), b"\x01" * 33])
def test_bad_private_scalars_raise_sm2_error(raw: bytes) -> None:
    with pytest.raises(Sm2Error):
        Sm2PrivateKey.from_raw(raw)


def test_p256_keys_are_not_sm2_keys() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = p256.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    spki = p256.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(Sm2Error):
        Sm2PrivateKey.from_der(pkcs8)
    with pytest.raises(Sm2Error):
        Sm2PublicKey.from_der(spki)


def test_malformed_der_and_pem_raise_sm2_error() -> None:
    good = sm2.generate_private_key()
    cases_private = [
        b"",
        b"\x30",
        b"\x30\x81\x05\x00\x00\x00\x00\x00",  # non-minimal length
        good.to_der()[:-1],
        good.to_der() + b"\x00",
        b"\x02\x01\x00",
    ]
    for data in cases_private:
        with pytest.raises(Sm2Error):
            Sm2PrivateKey.from_der(data)
    for data in (b"", b"\x30\x00", good.public_key().to_der()[:-3]):
        with pytest.raises(Sm2Error):
            Sm2PublicKey.from_der(data)
    with pytest.raises(Sm2Error):
        Sm2PrivateKey.from_pem(b"-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n")
    with pytest.raises(Sm2Error):
        Sm2PrivateKey.from_pem(good.public_key().to_pem())
    with pytest.raises(Sm2Error):
        Sm2PublicKey.from_pem(b"not pem at all")


def test_pkcs8_whose_public_point_does_not_match_is_rejected() -> None:
    key, other = sm2.generate_private_key(), sm2.generate_private_key()
    body = key.to_der().replace(key.public_key().to_point(), other.public_key().to_point())
    with pytest.raises(Sm2Error, match="does not match"):
        Sm2PrivateKey.from_der(body)


# --- interoperability with OpenSSL ----------------------------------------------------------


@pytest.fixture
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.fail("the openssl command is not installed (.ci/run installs it)", pytrace=False)
    return path


def run(*args: str) -> bytes:
    return subprocess.run(args, check=True, capture_output=True, timeout=60).stdout


def test_openssl_reads_our_keys_and_verifies_our_signature(openssl: str, tmp_path: Path) -> None:
    key = sm2.generate_private_key()
    (tmp_path / "key.pem").write_bytes(key.to_pem())
    (tmp_path / "pub.pem").write_bytes(key.public_key().to_pem())
    (tmp_path / "msg").write_bytes(b"signed by idnode")
    # openssl derives the same public key from our private key file
    derived = run(openssl, "pkey", "-in", str(tmp_path / "key.pem"), "-pubout")
    assert Sm2PublicKey.from_pem(derived) == key.public_key()
    r_s = sm2.sign(key, b"signed by idnode")
    r, s = int.from_bytes(r_s[:32], "big"), int.from_bytes(r_s[32:], "big")
    (tmp_path / "sig").write_bytes(encode_dss_signature(r, s))
    out = run(
        openssl, "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"),
        "-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
        "-in", str(tmp_path / "msg"), "-sigfile", str(tmp_path / "sig"),
    )  # fmt: skip
    assert b"Signature Verified Successfully" in out


def test_we_read_openssl_keys_and_verify_its_signature(openssl: str, tmp_path: Path) -> None:
    run(openssl, "genpkey", "-algorithm", "SM2", "-out", str(tmp_path / "key.pem"))
    run(
        openssl,
        "pkey",
        "-in",
        str(tmp_path / "key.pem"),
        "-pubout",
        "-out",
        str(tmp_path / "pub.pem"),
    )
    run(openssl, "ec", "-in", str(tmp_path / "key.pem"), "-out", str(tmp_path / "sec1.pem"))
    key = Sm2PrivateKey.from_pem((tmp_path / "key.pem").read_bytes())
    pub = Sm2PublicKey.from_pem((tmp_path / "pub.pem").read_bytes())
    assert key.public_key() == pub
    assert Sm2PrivateKey.from_pem((tmp_path / "sec1.pem").read_bytes()).d == key.d
    (tmp_path / "msg").write_bytes(b"signed by openssl")
    run(
        openssl, "pkeyutl", "-sign", "-inkey", str(tmp_path / "key.pem"), "-rawin",
        "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
        "-in", str(tmp_path / "msg"), "-out", str(tmp_path / "sig"),
    )  # fmt: skip
    r, s = decode_dss_signature((tmp_path / "sig").read_bytes())
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert sm2.verify(pub, b"signed by openssl", signature)
    assert not sm2.verify(pub, b"signed by OpenSSL", signature)
