"""SM2 keys in the Handle protocol: HS_PUBKEY ``SM2_PUB_KEY``, challenge answers and message
signatures with hash ``SM3``, key files (plain and passphrase-encrypted PKCS#8, also with
OpenSSL), and malformed input."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from idnode.crypto import der, pkcs8, sm2
from idnode.crypto.keys import generate_key
from idnode.errors import InvalidValue, ProtocolViolation
from idnode.protocol import auth
from idnode.protocol.credential import Credential
from idnode.protocol.types.hs_pubkey import (
    SM2_PUB_KEY,
    PublicKeyData,
    dump_private_key_file,
    dump_private_key_pem,
    load_private_key,
)
from idnode.protocol.wire import Writer

NONCE = bytes(range(16))
DIGEST = bytes(range(32))


def test_hs_pubkey_round_trip() -> None:
    key = sm2.generate_private_key()
    data = PublicKeyData.from_public_key(key.public_key())
    assert data.key_type == SM2_PUB_KEY
    assert data.params == (key.public_key().to_point(),)
    encoded = data.to_bytes()
    assert PublicKeyData.from_bytes(encoded) == data
    assert PublicKeyData.from_bytes(encoded).to_public_key() == key.public_key()


@pytest.mark.parametrize(
    "point",
    [b"", b"\x04", b"\x04" + b"\x01" * 64, b"\x02" + b"\x01" * 32, b"\x04" + b"\xff" * 64],
)
def test_unusable_sm2_points_are_protocol_violations(point: bytes) -> None:
    data = PublicKeyData(SM2_PUB_KEY, (point,))
    assert PublicKeyData.from_bytes(data.to_bytes()) == data  # the codec keeps the bytes
    with pytest.raises(ProtocolViolation, match="SM2_PUB_KEY"):
        data.to_public_key()


def test_truncated_sm2_hs_pubkey() -> None:
    good = PublicKeyData.from_public_key(sm2.generate_private_key().public_key()).to_bytes()
    for cut in (1, 10, 64, len(good) - 17):
        with pytest.raises(ProtocolViolation):
            PublicKeyData.from_bytes(good[:-cut])


def test_challenge_answer_with_sm3() -> None:
    key = sm2.generate_private_key()
    assert auth.default_signature_hash((2, 11), key) == "SM3"
    assert auth.default_signature_hash((2, 5), key.public_key()) == "SM3"
    answer = auth.make_public_key_answer(key, NONCE, DIGEST, "SM3")
    assert auth.verify_public_key_answer(key.public_key(), NONCE, DIGEST, answer)
    assert not auth.verify_public_key_answer(key.public_key(), NONCE, DIGEST[::-1], answer)
    other = sm2.generate_private_key().public_key()
    assert not auth.verify_public_key_answer(other, NONCE, DIGEST, answer)


def test_sm2_signs_only_with_sm3() -> None:
    key = sm2.generate_private_key()
    with pytest.raises(ValueError, match="SM3"):
        auth.make_public_key_answer(key, NONCE, DIGEST, "SHA-256")
    signature = sm2.sign(key, NONCE + DIGEST)
    for name in (b"SHA-256", b"SHA1", b"MD5", b"sm3", b""):
        answer = Writer().byte_array(name).byte_array(signature).getvalue()
        assert not auth.verify_public_key_answer(key.public_key(), NONCE, DIGEST, answer)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(ValueError):
        auth.make_public_key_answer(rsa_key, NONCE, DIGEST, "SM3")
    answer = Writer().byte_array(b"SM3").byte_array(signature).getvalue()
    assert not auth.verify_public_key_answer(rsa_key.public_key(), NONCE, DIGEST, answer)


@pytest.mark.parametrize(
    "answer",
    [b"", b"\x00\x00\x00\x03SM3", b"\x00\x00\x00\x03SM3\x00\x00\x00\x40" + b"\x01" * 10],
)
def test_malformed_sm2_answers_are_false(answer: bytes) -> None:
    key = sm2.generate_private_key()
    assert not auth.verify_public_key_answer(key.public_key(), NONCE, DIGEST, answer)


def test_message_signature_with_sm2() -> None:
    key = sm2.generate_private_key()
    body = b"header and body"
    credential = auth.sign_message(key, (2, 11), (2, 11), 0, 7, 0, body)
    assert credential.digest_alg == "SM3"
    decoded = Credential.from_bytes(credential.to_bytes())
    assert auth.verify_message_signature(key.public_key(), decoded, (2, 11), (2, 11), 0, 7, body)
    assert not auth.verify_message_signature(
        key.public_key(), decoded, (2, 11), (2, 11), 0, 8, body
    )


# -- key files -------------------------------------------------------------------------------


def test_pem_key_files_round_trip() -> None:
    key = generate_key("sm2")
    assert isinstance(key, sm2.Sm2PrivateKey)
    plain = dump_private_key_pem(key)
    assert plain.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_private_key(plain)
    assert isinstance(loaded, sm2.Sm2PrivateKey) and loaded.d == key.d
    encrypted = dump_private_key_pem(key, b"correct horse")
    assert encrypted.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert str(key.d).encode() not in encrypted
    loaded = load_private_key(encrypted, b"correct horse")
    assert isinstance(loaded, sm2.Sm2PrivateKey) and loaded.d == key.d
    with pytest.raises(InvalidValue):
        load_private_key(encrypted, b"wrong horse")
    with pytest.raises(InvalidValue):
        load_private_key(encrypted)


def test_rsa_keys_still_load_and_the_reference_key_file_refuses_sm2() -> None:
    rsa_key = generate_key("rsa")
    assert isinstance(
        load_private_key(dump_private_key_pem(rsa_key, b"pw"), b"pw"), rsa.RSAPrivateKey
    )
    with pytest.raises(TypeError):
        dump_private_key_file(sm2.generate_private_key())
    with pytest.raises(ValueError, match="unknown key type"):
        generate_key("ed25519")


@pytest.mark.parametrize(
    "pem",
    [
        b"-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN SM2 PRIVATE KEY-----\nMAMCAQE=\n-----END SM2 PRIVATE KEY-----\n",
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
    ],
)
def test_malformed_pem_is_invalid_value(pem: bytes) -> None:
    with pytest.raises(InvalidValue):
        load_private_key(pem, b"pw")


def test_pkcs8_decrypt_refuses_malformed_and_excessive() -> None:
    key = sm2.generate_private_key()
    blob = pkcs8.encrypt(key.to_der(), b"pw", iterations=1000)
    assert pkcs8.decrypt(blob, b"pw") == key.to_der()
    for bad in (b"", blob[:-1], blob + b"\x00", blob[:20]):
        with pytest.raises(pkcs8.Pkcs8Error):
            pkcs8.decrypt(bad, b"pw")
    # refused before any key derivation: too many iterations, unknown cipher or function
    for iterations, cipher, prf in (
        (pkcs8.MAX_ITERATIONS + 1, "60864801650304012a", "2a864886f70d0209"),
        (0, "60864801650304012a", "2a864886f70d0209"),
        (1000, "2a864886f70d0307", "2a864886f70d0209"),  # DES-EDE3-CBC
        (1000, "60864801650304012a", "2a864886f70d020b"),  # HMAC-SHA512
    ):
        with pytest.raises(pkcs8.Pkcs8Error):
            pkcs8.decrypt(encrypted_key_info(iterations, cipher, prf), b"pw")


def encrypted_key_info(iterations: int, cipher: str, prf: str) -> bytes:
    kdf = der.seq(
        der.encode(der.OID, bytes.fromhex("2a864886f70d01050c")),
        der.seq(
            der.encode(der.OCTET_STRING, b"s" * 16),
            der.integer(iterations),
            der.seq(der.encode(der.OID, bytes.fromhex(prf)), b"\x05\x00"),
        ),
    )
    scheme = der.seq(
        der.encode(der.OID, bytes.fromhex(cipher)), der.encode(der.OCTET_STRING, b"i" * 16)
    )
    algorithm = der.seq(
        der.encode(der.OID, bytes.fromhex("2a864886f70d01050d")), der.seq(kdf, scheme)
    )
    return der.seq(algorithm, der.encode(der.OCTET_STRING, b"c" * 32))


def test_pkcs8_encrypt_refuses_an_empty_passphrase() -> None:
    key = sm2.generate_private_key()
    with pytest.raises(ValueError):
        pkcs8.encrypt(key.to_der(), b"")


@pytest.fixture
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.fail("the openssl command is not installed (.ci/run installs it)", pytrace=False)
    return path


def test_openssl_reads_our_encrypted_key(openssl: str, tmp_path: Path) -> None:
    key = sm2.generate_private_key()
    (tmp_path / "key.pem").write_bytes(dump_private_key_pem(key, b"s3cret"))
    out = subprocess.run(
        [openssl, "pkey", "-in", str(tmp_path / "key.pem"), "-passin", "pass:s3cret", "-pubout"],
        check=True, capture_output=True, timeout=60,
    ).stdout  # fmt: skip
    assert sm2.Sm2PublicKey.from_pem(out) == key.public_key()


def test_we_read_openssl_encrypted_keys(openssl: str, tmp_path: Path) -> None:
    plain, encrypted = tmp_path / "plain.pem", tmp_path / "enc.pem"
    subprocess.run(
        [openssl, "genpkey", "-algorithm", "SM2", "-out", str(plain)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    subprocess.run(
        [openssl, "pkey", "-in", str(plain), "-aes256", "-passout", "pass:s3cret",
         "-out", str(encrypted)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    key = load_private_key(encrypted.read_bytes(), b"s3cret")
    assert isinstance(key, sm2.Sm2PrivateKey)
    assert key.d == sm2.Sm2PrivateKey.from_pem(plain.read_bytes()).d
