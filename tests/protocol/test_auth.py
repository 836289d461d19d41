"""Challenge digests, challenge answers and message signatures (spec §1.6, §1.7, §3) against
the exchanges recorded from the reference server (``../shared/vectors``)."""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from hypothesis import given, settings
from hypothesis import strategies as st

from idnode.errors import ProtocolViolation
from idnode.protocol import auth
from idnode.protocol.auth import DigestType, SecretKeyAlgorithm
from idnode.protocol.credential import HS_MAC, HS_SIGNED, Credential
from idnode.protocol.wire import Reader
from tests.vectors_util import Block, all_exchanges, load_messages, pem_blocks, readme_section

SECRET = b"hdlpeer-secret"
RSA_PUBLIC_PEM, RSA_PRIVATE_PEM = pem_blocks(readme_section("RSA identity key"))
DSA_PUBLIC_PEM, DSA_PRIVATE_PEM = pem_blocks(readme_section("DSA identity key"))
(SERVER_PUBLIC_PEM,) = pem_blocks(readme_section("Server signing key"))


def _rsa_private() -> rsa.RSAPrivateKey:
    key = load_pem_private_key(RSA_PRIVATE_PEM, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _dsa_private() -> dsa.DSAPrivateKey:
    key = load_pem_private_key(DSA_PRIVATE_PEM, None)
    assert isinstance(key, dsa.DSAPrivateKey)
    return key


def _public(pem: bytes) -> rsa.RSAPublicKey | dsa.DSAPublicKey:
    key = load_pem_public_key(pem)
    assert isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey)
    return key


@dataclass(frozen=True)
class Msg:
    """The parts of a recorded message that the cryptography needs (spec §1.3-§1.5)."""

    block: Block
    version: tuple[int, int]
    suggested: tuple[int, int]
    session_id: int
    request_id: int
    op: int
    response_code: int
    header_and_body: bytes
    credential: bytes

    @property
    def body(self) -> bytes:
        return self.header_and_body[24:]

    @classmethod
    def of(cls, block: Block) -> Msg:
        d = block.data
        (body_len,) = struct.unpack_from(">I", d, 40)
        hb = d[20 : 44 + body_len]
        (cred_len,) = struct.unpack_from(">I", d, 44 + body_len)
        credential = d[48 + body_len : 48 + body_len + cred_len]
        assert len(d) == 48 + body_len + cred_len
        op, rc = struct.unpack_from(">II", hb, 0)
        return cls(
            block, (d[0], d[1]), (d[2] & 3, d[3]), block.session_id, block.request_id, op, rc, hb,
            credential,
        )  # fmt: skip


def _messages(name: str) -> list[Msg]:
    return [Msg.of(b) for b in load_messages(name)]


@dataclass(frozen=True)
class Challenge:
    request: Msg
    hash_type: int
    digest: bytes
    nonce: bytes
    answer: Msg | None


def _challenges(name: str) -> list[Challenge]:
    """Every 402 in an exchange, with the request it challenges and the op 200 answering it."""
    msgs = _messages(name)
    out = []
    for m in msgs:
        if m.block.is_request or m.response_code != 402:
            continue
        request = next(r for r in msgs if r.block.is_request and r.request_id == m.request_id)
        r = Reader(m.body)
        hash_type = r.u8()
        digest = r.raw(DigestType(hash_type).size)
        nonce = r.byte_array()
        r.expect_end("402 body")
        answers = [a for a in msgs if a.op == 200 and a.session_id == m.session_id]
        out.append(Challenge(request, hash_type, digest, nonce, answers[0] if answers else None))
    return out


def _answer(c: Challenge) -> tuple[str, str, int, bytes]:
    """(authType, identity handle, identity index, signedResponse) of an op 200 body."""
    assert c.answer is not None
    r = Reader(c.answer.body)
    result = (r.utf8(), r.utf8(), r.u32(), r.byte_array())
    r.expect_end("op 200 body")
    return result


CHALLENGED = [n for n in all_exchanges() if _challenges(n)]
SECKEY_EXCHANGES = [n for n in CHALLENGED if "pubkey-rsa" not in n and "pubkey-dsa" not in n]


def test_the_recordings_hold_challenges() -> None:
    assert "tcp-create-seckey" in SECKEY_EXCHANGES
    assert {"tcp-create-pubkey-rsa", "tcp-create-pubkey-dsa"} <= set(CHALLENGED)
    assert len(SECKEY_EXCHANGES) >= 10


# -- request digest (spec §1.6, §0.2) --------------------------------------------------------------
@pytest.mark.parametrize("name", CHALLENGED)
def test_challenge_digest_is_sha256_of_request_header_and_body(name: str) -> None:
    for c in _challenges(name):
        assert c.hash_type == DigestType.SHA256
        assert auth.request_digest(c.request.header_and_body, c.hash_type) == c.digest
        assert len(c.nonce) == 16


def test_request_digest_types() -> None:
    data = b"header and body"
    assert auth.request_digest(data, DigestType.MD5) == hashlib.md5(data).digest()
    assert auth.request_digest(data, DigestType.OLD_FORMAT) == hashlib.md5(data).digest()
    assert auth.request_digest(data, DigestType.SHA1) == hashlib.sha1(data).digest()
    assert auth.request_digest(data, 3) == hashlib.sha256(data).digest()
    assert [t.size for t in DigestType] == [16, 16, 20, 32]
    with pytest.raises(ProtocolViolation):
        auth.request_digest(data, 4)


@pytest.mark.parametrize(
    ("version", "expected"),
    [((2, 0), 0), ((5, 3), 0), ((2, 1), 2), ((2, 6), 2), ((2, 7), 3), ((2, 11), 3), ((3, 0), 3)],
)
def test_digest_type_for_version(version: tuple[int, int], expected: int) -> None:
    assert auth.digest_type_for_version(version) == expected


def test_generate_nonce() -> None:
    assert len(auth.generate_nonce()) == 16
    assert auth.generate_nonce() != auth.generate_nonce()


# -- secret-key answers (spec §3.2) ----------------------------------------------------------------
@pytest.mark.parametrize("name", SECKEY_EXCHANGES)
def test_recorded_pbkdf2_answers_verify(name: str) -> None:
    for c in _challenges(name):
        auth_type, handle, index, signed = _answer(c)
        assert (auth_type, handle, index) == ("HS_SECKEY", "20.500.999/ADMIN", 300)
        assert signed[0] == SecretKeyAlgorithm.PBKDF2_HMAC_SHA1
        assert auth.verify_secret_key_answer(SECRET, c.nonce, c.digest, signed)
        assert not auth.verify_secret_key_answer(b"hdlpeer-secreT", c.nonce, c.digest, signed)
        assert not auth.verify_secret_key_answer(SECRET, c.digest[:16], c.digest, signed)


def test_recorded_pbkdf2_answer_regenerates_byte_exact() -> None:
    (c,) = _challenges("tcp-create-seckey")
    signed = _answer(c)[3]
    r = Reader(signed[1:])
    salt, iterations, key_bits = r.byte_array(), r.u32(), r.u32()
    assert (len(salt), iterations, key_bits) == (16, 10000, 160)
    alg = SecretKeyAlgorithm.PBKDF2_HMAC_SHA1
    made = auth.make_secret_key_answer(
        SECRET, c.nonce, c.digest, alg, salt=salt, iterations=iterations, key_bits=key_bits
    )
    assert made == signed


def test_recorded_pbkdf2_answer_tampered() -> None:
    (c,) = _challenges("tcp-create-seckey")
    signed = _answer(c)[3]
    for i in range(len(signed)):
        flipped = signed[:i] + bytes([signed[i] ^ 0x01]) + signed[i + 1 :]
        assert not auth.verify_secret_key_answer(SECRET, c.nonce, c.digest, flipped), i
    assert not auth.verify_secret_key_answer(SECRET, c.nonce, c.digest, signed + b"\x00")
    assert not auth.verify_secret_key_answer(SECRET, c.nonce, c.digest, signed[:-1])


NONCE = bytes(range(16))
DIGEST = hashlib.sha256(b"request").digest()


@pytest.mark.parametrize("alg", list(SecretKeyAlgorithm))
def test_every_secret_key_algorithm_round_trips(alg: SecretKeyAlgorithm) -> None:
    old = alg == SecretKeyAlgorithm.OLD_FORMAT
    signed = auth.make_secret_key_answer(SECRET, NONCE, DIGEST, alg, salt=b"s" * 16)
    assert (signed[0] == alg) is not old or len(signed) == 16
    assert auth.verify_secret_key_answer(SECRET, NONCE, DIGEST, signed, old_format=old)
    assert not auth.verify_secret_key_answer(b"other", NONCE, DIGEST, signed, old_format=old)
    assert not auth.verify_secret_key_answer(SECRET, NONCE, DIGEST[::-1], signed, old_format=old)
    assert not auth.verify_secret_key_answer(SECRET, NONCE, DIGEST, signed, old_format=not old)


def test_secret_key_constructions() -> None:
    data = NONCE + DIGEST
    key = SECRET

    def make(alg: int) -> bytes:
        return auth.make_secret_key_answer(key, NONCE, DIGEST, alg)

    assert make(0) == hashlib.md5(key + data + key).digest()
    assert make(1) == b"\x01" + hashlib.md5(key + data + key).digest()
    assert make(2) == b"\x02" + hashlib.sha1(key + data + key).digest()
    assert make(3) == b"\x03" + hashlib.sha256(key + data + key).digest()
    assert make(0x12) == b"\x12" + hmac.new(key, data, "sha1").digest()
    assert make(0x13) == b"\x13" + hmac.new(key, data, "sha256").digest()
    pbkdf2 = auth.make_secret_key_answer(key, NONCE, DIGEST, 0x22, salt=b"salt", iterations=7)
    derived = hashlib.pbkdf2_hmac("sha1", key, b"salt", 7, 20)
    mac = hmac.new(derived, data, "sha1").digest()
    expected = b"\x22" + struct.pack(">I4sIII", 4, b"salt", 7, 160, 20) + mac
    assert pbkdf2 == expected


def test_pbkdf2_salt_defaults_to_random() -> None:
    a = auth.make_secret_key_answer(SECRET, NONCE, DIGEST, 0x22, iterations=1)
    b = auth.make_secret_key_answer(SECRET, NONCE, DIGEST, 0x22, iterations=1)
    assert a[1:5] == b"\x00\x00\x00\x10" and a != b
    assert auth.verify_secret_key_answer(SECRET, NONCE, DIGEST, a)


@pytest.mark.parametrize(
    ("salt", "iterations", "key_bits"),
    [
        (b"s", auth.MAX_PBKDF2_ITERATIONS + 1, 160),
        (b"s", 0, 160),
        (b"s", 10, 4),
        (b"s", 10, 161),
        (b"s", 10, auth.MAX_PBKDF2_KEY_BITS + 8),
        (b"", 10, 160),
    ],
)
def test_pbkdf2_parameter_limits(salt: bytes, iterations: int, key_bits: int) -> None:
    alg = SecretKeyAlgorithm.PBKDF2_HMAC_SHA1
    with pytest.raises(ValueError):
        auth.make_secret_key_answer(
            SECRET, NONCE, DIGEST, alg, salt=salt, iterations=iterations, key_bits=key_bits
        )
    answer = (
        b"\x22" + struct.pack(">I", len(salt)) + salt + struct.pack(">II", iterations, key_bits)
    )
    answer += struct.pack(">I", 20) + bytes(20)
    assert not auth.verify_secret_key_answer(SECRET, NONCE, DIGEST, answer)


def test_pbkdf2_hostile_answers() -> None:
    # A hostile answer asking for too much work is refused without computing it.
    hostile = b"\x22" + struct.pack(">I1sII", 1, b"s", 0xFFFFFFFF, 160) + struct.pack(">I", 0)
    assert not auth.verify_secret_key_answer(SECRET, NONCE, DIGEST, hostile)
    huge_key = b"\x22" + struct.pack(">I1sII", 1, b"s", 1, 1 << 20) + struct.pack(">I", 0)
    assert not auth.verify_secret_key_answer(SECRET, NONCE, DIGEST, huge_key)


def test_java_pbkdf2_password_encoding() -> None:
    """Java widens password bytes to chars and the JDK's PBKDF2 re-encodes them as UTF-8."""
    utf8 = "é".encode()  # c3 a9
    java_bytes = b"\xc3\x83\xc2\xa9"
    expected = hashlib.pbkdf2_hmac("sha1", java_bytes, b"salt", 3, 20)
    assert auth.java_pbkdf2_hmac_sha1(utf8, b"salt", 3, 160) == expected
    assert auth.java_pbkdf2_hmac_sha1(b"abc", b"salt", 3, 161) == hashlib.pbkdf2_hmac(
        "sha1", b"abc", b"salt", 3, 20
    )


@pytest.mark.parametrize(
    "signed", [b"", b"\x04" + bytes(20), b"\x00" + bytes(16), b"\x22", b"\x22\x00\x00\x00\x10"]
)
def test_malformed_secret_key_answers_are_false(signed: bytes) -> None:
    assert not auth.verify_secret_key_answer(SECRET, NONCE, DIGEST, signed)


def test_empty_secret_never_authenticates() -> None:
    with pytest.raises(ValueError):
        auth.make_secret_key_answer(b"", NONCE, DIGEST, SecretKeyAlgorithm.HMAC_SHA1)
    signed = b"\x12" + hmac.new(b"", NONCE + DIGEST, "sha1").digest()
    assert not auth.verify_secret_key_answer(b"", NONCE, DIGEST, signed)
    with pytest.raises(ValueError):
        auth.make_secret_key_answer(SECRET, NONCE, DIGEST, 0x14)


@pytest.mark.parametrize(
    ("version", "expected"), [((2, 0), 0), ((5, 9), 0), ((2, 1), 2), ((2, 6), 2), ((2, 7), 0x22)]
)
def test_secret_key_algorithm_for_version(version: tuple[int, int], expected: int) -> None:
    assert auth.secret_key_algorithm_for_version(version) == expected


def test_hashed_secret_key() -> None:
    hashed = auth.hashed_secret_key(SECRET)
    assert hashed == hashlib.sha1(SECRET).hexdigest().encode() and hashed.islower()
    signed = auth.make_secret_key_answer(hashed, NONCE, DIGEST, SecretKeyAlgorithm.SHA1)
    assert auth.verify_secret_key_answer(hashed, NONCE, DIGEST, signed)
    assert not auth.verify_secret_key_answer(SECRET, NONCE, DIGEST, signed)


@settings(max_examples=60, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=40),
    nonce=st.binary(max_size=20),
    alg=st.sampled_from(list(SecretKeyAlgorithm)),
)
def test_secret_key_answers_property(secret: bytes, nonce: bytes, alg: SecretKeyAlgorithm) -> None:
    old = alg == SecretKeyAlgorithm.OLD_FORMAT
    signed = auth.make_secret_key_answer(secret, nonce, DIGEST, alg, iterations=2)
    assert auth.verify_secret_key_answer(secret, nonce, DIGEST, signed, old_format=old)
    assert not auth.verify_secret_key_answer(secret + b"x", nonce, DIGEST, signed, old_format=old)


# -- public-key answers (spec §3.2, §0.3) ---------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "index", "pem"),
    [
        ("tcp-create-pubkey-rsa", 301, RSA_PUBLIC_PEM),
        ("tcp-create-pubkey-dsa", 302, DSA_PUBLIC_PEM),
    ],
)
def test_recorded_public_key_answers_verify(name: str, index: int, pem: bytes) -> None:
    (c,) = _challenges(name)
    auth_type, handle, got_index, signed = _answer(c)
    assert (auth_type, handle, got_index) == ("HS_PUBKEY", "20.500.999/ADMIN", index)
    assert signed.startswith(b"\x00\x00\x00\x07SHA-256")
    key = _public(pem)
    assert auth.verify_public_key_answer(key, c.nonce, c.digest, signed)
    assert not auth.verify_public_key_answer(key, c.nonce[::-1], c.digest, signed)
    assert not auth.verify_public_key_answer(_public(SERVER_PUBLIC_PEM), c.nonce, c.digest, signed)
    for i in (3, 12, len(signed) - 1):  # name length, name, signature
        flipped = signed[:i] + bytes([signed[i] ^ 0x01]) + signed[i + 1 :]
        assert not auth.verify_public_key_answer(key, c.nonce, c.digest, flipped)


def test_recorded_rsa_answer_regenerates_byte_exact() -> None:
    (c,) = _challenges("tcp-create-pubkey-rsa")
    signed = _answer(c)[3]
    assert auth.make_public_key_answer(_rsa_private(), c.nonce, c.digest) == signed


@pytest.mark.parametrize("hash_name", ["SHA-256", "SHA256", "SHA1", "SHA-1", "MD5"])
@pytest.mark.parametrize("kind", ["rsa", "dsa"])
def test_public_key_answers_round_trip(kind: str, hash_name: str) -> None:
    private = _rsa_private() if kind == "rsa" else _dsa_private()
    if kind == "dsa" and hash_name == "MD5":  # Java has no MD5withDSA
        with pytest.raises(ValueError):
            auth.make_public_key_answer(private, NONCE, DIGEST, hash_name)
        return
    signed = auth.make_public_key_answer(private, NONCE, DIGEST, hash_name)
    assert auth.verify_public_key_answer(private.public_key(), NONCE, DIGEST, signed)
    assert not auth.verify_public_key_answer(private.public_key(), NONCE, DIGEST[1:], signed)


def test_public_key_answer_rejections() -> None:
    key = _rsa_private()
    signed = auth.make_public_key_answer(key, NONCE, DIGEST)
    public = key.public_key()
    lower = b"\x00\x00\x00\x07sha-256" + signed[11:]  # Java matches hash names byte for byte
    assert not auth.verify_public_key_answer(public, NONCE, DIGEST, lower)
    assert not auth.verify_public_key_answer(public, NONCE, DIGEST, signed + b"\x00")
    assert not auth.verify_public_key_answer(public, NONCE, DIGEST, signed[:-1])
    assert not auth.verify_public_key_answer(public, NONCE, DIGEST, b"")
    with pytest.raises(ValueError):
        auth.make_public_key_answer(key, NONCE, DIGEST, "SHA-512")


@pytest.mark.parametrize(
    ("version", "kind", "expected"),
    [
        ((2, 6), "rsa", "SHA1"),
        ((2, 7), "rsa", "SHA-256"),
        ((2, 7), "dsa", "SHA1"),
        ((2, 10), "dsa", "SHA1"),
        ((2, 11), "dsa", "SHA-256"),
        ((5, 11), "rsa", "SHA1"),
    ],
)
def test_default_signature_hash(version: tuple[int, int], kind: str, expected: str) -> None:
    key = _rsa_private() if kind == "rsa" else _dsa_private()
    assert auth.default_signature_hash(version, key) == expected
    assert auth.default_signature_hash(version, key.public_key()) == expected


# -- message signatures (spec §0.1, §1.7, §3.3) --------------------------------------------------
SIGNED_RESPONSES = [
    (name, i) for name in all_exchanges() for i, m in enumerate(_messages(name)) if m.credential
]


def test_the_recordings_hold_signed_responses() -> None:
    names = {name for name, _ in SIGNED_RESPONSES}
    assert {"tcp-resolve-certified", "udp-resolve-certified"} <= names


@pytest.mark.parametrize(("name", "i"), SIGNED_RESPONSES)
def test_recorded_credentials_round_trip(name: str, i: int) -> None:
    m = _messages(name)[i]
    cred = Credential.from_bytes(m.credential)
    assert cred.to_bytes() == m.credential
    assert (cred.version, cred.reserved, cred.options, cred.signer_handle) == (0, 0, 0, "")
    assert cred.type in (HS_SIGNED, HS_MAC)


def _credential_type(name: str, i: int) -> str:
    return Credential.from_bytes(_messages(name)[i].credential).type


@pytest.mark.parametrize(
    ("name", "i"), [(n, i) for n, i in SIGNED_RESPONSES if _credential_type(n, i) == HS_SIGNED]
)
def test_recorded_signatures_verify(name: str, i: int) -> None:
    m = _messages(name)[i]
    cred = Credential.from_bytes(m.credential)
    assert (cred.digest_alg, cred.signer_index) == ("SHA-256", 0)
    key = _public(SERVER_PUBLIC_PEM)
    args = (m.version, m.suggested, m.session_id, m.request_id)
    assert auth.verify_message_signature(key, cred, *args, m.header_and_body)
    # Tampering: any header/body byte, an envelope field, or the signature.
    hb = m.header_and_body
    for pos in (0, 9, 23, len(hb) - 1):
        bad = hb[:pos] + bytes([hb[pos] ^ 0x40]) + hb[pos + 1 :]
        assert not auth.verify_message_signature(key, cred, *args, bad)
    assert not auth.verify_message_signature(key, cred, (2, 10), m.suggested, *args[2:], hb)
    assert not auth.verify_message_signature(key, cred, m.version, (2, 10), *args[2:], hb)
    assert not auth.verify_message_signature(key, cred, *args[:3], m.request_id + 1, hb)
    sig = cred.signature
    bad_sig = Credential(
        type=cred.type, digest_alg=cred.digest_alg, signature=sig[:5] + b"\x00" + sig[6:]
    )
    assert not auth.verify_message_signature(key, bad_sig, *args, hb)
    other_counter = Credential(
        signer_index=1, type=cred.type, digest_alg=cred.digest_alg, signature=sig
    )
    assert not auth.verify_message_signature(key, other_counter, *args, hb)
    as_sha1 = Credential(type=cred.type, digest_alg="SHA1", signature=sig)
    assert not auth.verify_message_signature(key, as_sha1, *args, hb)


def test_session_mac_credentials_are_not_signatures() -> None:
    creds = [Credential.from_bytes(_messages(n)[i].credential) for n, i in SIGNED_RESPONSES]
    macs = [c for c in creds if c.type == HS_MAC]
    assert macs and all(c.digest_alg == "HMAC-SHA256" and c.signer_index == 1 for c in macs)
    key = _public(SERVER_PUBLIC_PEM)
    assert not auth.verify_message_signature(key, macs[0], (2, 11), (2, 11), 0, 0, b"")


HB = bytes(range(24)) + b"body"
IDS = (0x01020304, 0x11121314, 0x21222324)


def test_signed_bytes_recorded_layout() -> None:
    """2.8 and later (verified against the recordings): version, suggested, three int4s."""
    expected = bytes([2, 11, 2, 10]) + struct.pack(">III", *IDS) + HB
    assert auth.signed_bytes((2, 11), (2, 10), *IDS, HB) == expected
    # A suggested major of 0 means "same as the message version" (Java envelope decoding).
    assert auth.signed_bytes((2, 11), (0, 0), *IDS, HB)[:4] == bytes([2, 11, 2, 11])


def test_signed_bytes_older_versions() -> None:
    assert auth.signed_bytes((2, 7), (2, 11), *IDS, HB) == (
        bytes([2, 7]) + struct.pack(">III", *IDS) + HB
    )
    # 2.6: Java wrote requestId and sessionCounter at offset 4, over sessionId's low bytes.
    assert auth.signed_bytes((2, 6), (2, 11), *IDS, HB) == (
        bytes([2, 6, 0x01, 0x02, 0x21, 0x22, 0x23, 0x24]) + bytes(6) + HB
    )
    for old in ((2, 5), (2, 0), (5, 11)):
        assert auth.signed_bytes(old, (2, 11), *IDS, HB) == HB


@pytest.mark.parametrize("version", [(2, 11), (2, 8), (2, 7), (2, 6), (2, 5)])
@pytest.mark.parametrize("kind", ["rsa", "dsa"])
def test_sign_and_verify_message(version: tuple[int, int], kind: str) -> None:
    key = _rsa_private() if kind == "rsa" else _dsa_private()
    cred = auth.sign_message(key, version, (2, 11), IDS[0], IDS[1], 7, HB)
    assert cred.type == HS_SIGNED and cred.signer_index == 7 and cred.signer_handle == ""
    assert cred.digest_alg == auth.default_signature_hash(version, key)
    assert Credential.from_bytes(cred.to_bytes()) == cred
    public = key.public_key()
    assert auth.verify_message_signature(public, cred, version, (2, 11), *IDS[:2], HB)
    assert not auth.verify_message_signature(public, cred, version, (2, 11), *IDS[:2], HB + b"x")
    assert not auth.verify_message_signature(_public(SERVER_PUBLIC_PEM), cred, version, (2, 11),
                                             *IDS[:2], HB)  # fmt: skip


def test_rsa_message_signature_is_deterministic_with_explicit_hash() -> None:
    key = _rsa_private()
    a = auth.sign_message(key, (2, 11), (2, 11), 0, 5, 0, HB, hash_name="SHA1")
    b = auth.sign_message(key, (2, 11), (2, 11), 0, 5, 0, HB, hash_name="SHA1")
    assert a == b and a.digest_alg == "SHA1"
    assert auth.verify_message_signature(key.public_key(), a, (2, 11), (2, 11), 0, 5, HB)


# -- credential section (spec §1.7) ----------------------------------------------------------------
def test_credential_layout() -> None:
    cred = Credential(
        signer_handle="0.NA/X", signer_index=300, type="HS_SIGNED", digest_alg="SHA1",
        signature=b"\xaa\xbb",
    )  # fmt: skip
    expected = (
        b"\x00\x00\x00\x00" + b"\x00\x00\x00\x060.NA/X" + b"\x00\x00\x01\x2c"
        + b"\x00\x00\x00\x09HS_SIGNED" + b"\x00\x00\x00\x0e"
        + b"\x00\x00\x00\x04SHA1" + b"\x00\x00\x00\x02\xaa\xbb"
    )  # fmt: skip
    assert cred.to_bytes() == expected
    assert Credential.from_bytes(expected) == cred


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b[:-1],  # truncated signature
        lambda b: b + b"\x00",  # trailing byte
        lambda b: b[:31] + b"\x00\x00\x00\x0f" + b[35:] + b"\x00",  # signedInfo too long
        lambda b: b[:31] + b"\x00\x00\x00\x0d" + b[35:],  # signedInfo too short
        lambda b: b"",
    ],
)
def test_malformed_credentials(mutate: Callable[[bytes], bytes]) -> None:
    good = Credential(
        signer_handle="0.NA/X", signer_index=300, type="HS_SIGNED", digest_alg="SHA1",
        signature=b"\xaa\xbb",
    ).to_bytes()  # fmt: skip
    assert good[31:35] == b"\x00\x00\x00\x0e"  # signedInfo length
    with pytest.raises(ProtocolViolation):
        Credential.from_bytes(mutate(good))


def test_credential_validation() -> None:
    with pytest.raises(ProtocolViolation):
        Credential(version=256, type="HS_SIGNED", digest_alg="SHA1", signature=b"")
    with pytest.raises(ProtocolViolation):
        Credential(signer_index=-1, type="HS_SIGNED", digest_alg="SHA1", signature=b"")
    with pytest.raises(TypeError):
        Credential(type="HS_SIGNED", digest_alg="SHA1", signature="x")  # type: ignore[arg-type]


@settings(max_examples=100)
@given(
    version=st.integers(0, 255),
    options=st.integers(0, 0xFFFF),
    handle=st.text(max_size=20),
    index=st.integers(0, 0xFFFFFFFF),
    kind=st.text(max_size=12),
    alg=st.text(max_size=12),
    signature=st.binary(max_size=64),
)
def test_credential_round_trip_property(
    version: int, options: int, handle: str, index: int, kind: str, alg: str, signature: bytes
) -> None:
    cred = Credential(
        version=version, options=options, signer_handle=handle, signer_index=index, type=kind,
        digest_alg=alg, signature=signature,
    )  # fmt: skip
    data = cred.to_bytes()
    assert Credential.from_bytes(data) == cred
    assert Credential.from_bytes(data).to_bytes() == data
