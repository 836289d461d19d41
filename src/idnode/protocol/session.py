"""Handle-protocol sessions: key exchange data, session keys, ``HS_MAC`` credentials and
session encryption (spec §1.7, §1.11, §3.3; the reference's ``SessionSetupRequest``,
``HdlSecurityProvider`` and ``AbstractMessage.signMessage(byte[])``).

Pure functions: integers, bytes and key objects in, bytes/bools/:class:`Credential` out.
No sockets, no clock; randomness only where a fresh key or IV is made.

Key exchange (the ``int2 keyExchangeMode`` of op 400):

* 4, Diffie-Hellman (what the reference resolver and ``GenericBatch`` use): the request's
  public key is a ``DH_PUB_KEY`` (``y, p, g``, Java ``BigInteger`` bytes). The response data
  is ``int4 cipherAlgorithm`` + the server's ``DH_PUB_KEY`` over the same ``p, g``. Both sides
  compute the shared secret, left-padded to the byte length of ``p`` (Java
  ``KeyAgreement.generateSecret``), and derive the session key from it: for AES the first 32
  bytes after skipping leading zero bytes (as long as 32 bytes remain); for DES/DESede the
  first 8/24 bytes with DES parity bits set.
* 1, client cipher (and 3, key held in a handle): the client sends (or names) an RSA
  ``HS_PUBKEY``; the server makes a key and answers ``RSA-PKCS#1-v1.5(int4 alg || key)``.
* 2, server cipher: the server answers its own RSA public key; the client sends the key,
  RSA-encrypted, in op 402. The reference client sends the bare key there while the reference
  server reads a 4-byte algorithm first; :func:`parse_exchanged_key` accepts both.

The session key is the key without its 4-byte algorithm code. It keys the ``HS_MAC``
credential of every message in the session (:func:`mac_credential`) and, when the ENC flag
asks for it, the encryption of whole messages (:func:`encrypt_payload`): AES-128-CBC with the
first 16 key bytes and a random IV sent before the ciphertext (2.4 and later).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from idnode.errors import ProtocolViolation
from idnode.protocol.auth import signed_bytes
from idnode.protocol.credential import HS_MAC, Credential
from idnode.protocol.types.hs_pubkey import DH_PUB_KEY, PublicKeyData

__all__ = [
    "DEFAULT_SESSION_TIMEOUT",
    "ENV_ENCRYPTED",
    "MAX_DH_BITS",
    "MIN_DH_BITS",
    "OAKLEY_GROUP_2",
    "CipherAlgorithm",
    "DHKeyPair",
    "DHPublicKey",
    "KeyExchangeMode",
    "decrypt_payload",
    "decrypt_session_key",
    "derive_session_key",
    "dh_response_data",
    "encrypt_payload",
    "encrypt_session_key",
    "mac_bytes",
    "mac_credential",
    "new_session_key",
    "parse_dh_response_data",
    "parse_exchanged_key",
    "verify_mac",
]

Version = tuple[int, int]

#: Envelope flag (byte 2): the payload is encrypted with the session key (Java
#: ``ENV_FLAG_ENCRYPTED``).
ENV_ENCRYPTED: Final = 0x40
#: The reference's default session lifetime (seconds of inactivity), ``Common``.
DEFAULT_SESSION_TIMEOUT: Final = 24 * 3600
#: Diffie-Hellman moduli accepted from a peer (the reference clients use 1024 bits; the
#: upper bound keeps the modular exponentiations of one setup within a few milliseconds).
MIN_DH_BITS: Final = 1024
MAX_DH_BITS: Final = 2048

#: RFC 2409 §6.2 second Oakley group (1024 bits, generator 2): the group Java's default
#: 1024-bit DH key pair generator uses, as seen in every recorded session setup.
OAKLEY_GROUP_2: Final = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
    16,
)


class KeyExchangeMode(IntEnum):
    """``keyExchangeMode`` of a session setup (spec §1.11, Java ``Common.KEY_EXCHANGE_*``)."""

    CIPHER_CLIENT = 1  #: the server encrypts a key with the client's RSA public key
    CIPHER_SERVER = 2  #: the client encrypts a key with the server's RSA public key (op 402)
    CIPHER_HDL = 3  #: like 1, with the RSA key held in a handle
    DH = 4  #: Diffie-Hellman


class CipherAlgorithm(IntEnum):
    """Session cipher codes (Java ``HdlSecurityProvider.ENCRYPT_ALG_*``)."""

    DES = 1
    DESEDE = 2
    AES = 3


#: Raw key lengths each cipher takes from a DH secret or a key generator.
_KEY_LENGTH: Final = {CipherAlgorithm.DES: 8, CipherAlgorithm.DESEDE: 24, CipherAlgorithm.AES: 32}


# -- Diffie-Hellman (mode 4) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DHPublicKey:
    """A ``DH_PUB_KEY`` (spec §2.4): ``UTF8 "DH_PUB_KEY"``, ``int2 flags``, ``byte-array y,
    p, g``. ``encoding`` keeps the bytes as received, for a byte-exact re-encoding."""

    y: int
    p: int
    g: int
    encoding: bytes = b""

    @classmethod
    def from_bytes(cls, data: bytes) -> DHPublicKey:
        """Decode and check a peer's key: the modulus has :data:`MIN_DH_BITS` to
        :data:`MAX_DH_BITS` bits, ``1 < g < p - 1`` and ``1 < y < p - 1`` (no small-subgroup
        values 0, 1, p-1). Raises :class:`ProtocolViolation`."""
        key = PublicKeyData.from_bytes(data)
        if key.key_type != DH_PUB_KEY:
            raise ProtocolViolation(f"expected a DH_PUB_KEY, got {key.key_type!r}")
        v = key.integers
        y, p, g = v["y"], v["p"], v["g"]
        if not MIN_DH_BITS <= p.bit_length() <= MAX_DH_BITS or p % 2 == 0:
            raise ProtocolViolation(f"unusable Diffie-Hellman modulus of {p.bit_length()} bits")
        if not 1 < g < p - 1 or not 1 < y < p - 1:
            raise ProtocolViolation("Diffie-Hellman parameters out of range")
        return cls(y, p, g, data)

    def to_bytes(self) -> bytes:
        """Java's ``Util.getBytesFromPublicKey`` encoding (or the bytes as received)."""
        if self.encoding:
            return self.encoding
        return PublicKeyData.from_integers(DH_PUB_KEY, self.y, self.p, self.g).to_bytes()


@dataclass(frozen=True, slots=True)
class DHKeyPair:
    """One side's Diffie-Hellman key pair over ``p, g``. ``repr`` hides the private value."""

    x: int
    public: DHPublicKey

    @classmethod
    def generate(cls, p: int = OAKLEY_GROUP_2, g: int = 2) -> DHKeyPair:
        """A fresh key pair; the private value has at least 256 bits of entropy and is below
        ``p - 1``."""
        bits = max(256, min(p.bit_length() - 2, 512))
        x = secrets.randbits(bits) % (p - 3) + 2
        return cls(x, DHPublicKey(pow(g, x, p), p, g))

    def __repr__(self) -> str:
        return f"DHKeyPair(p={self.public.p.bit_length()} bits)"

    def shared_secret(self, peer: DHPublicKey) -> bytes:
        """``peer.y ** x mod p``, left-padded to the byte length of ``p`` (Java's
        ``KeyAgreement.generateSecret``). Raises :class:`ProtocolViolation` if the peer uses
        other parameters or the secret is degenerate."""
        p = self.public.p
        if (peer.p, peer.g) != (p, self.public.g):
            raise ProtocolViolation("the peer's Diffie-Hellman parameters differ from ours")
        secret = pow(peer.y, self.x, p)
        if secret in (0, 1, p - 1):
            raise ProtocolViolation("degenerate Diffie-Hellman secret")
        return secret.to_bytes((p.bit_length() + 7) // 8, "big")


def _set_des_parity(key: bytes) -> bytes:
    """Odd parity in each byte's low bit, as Java's DH key derivation leaves DES keys."""
    out = bytearray()
    for byte in key:
        b = byte & 0xFE
        out.append(b | ((bin(b).count("1") & 1) ^ 1))
    return bytes(out)


def derive_session_key(secret: bytes, algorithm: int) -> bytes:
    """The session key (without its algorithm code) Java derives from a DH ``secret``
    (``GenericProvider.getKeyFromDH``). Raises :class:`ProtocolViolation` for an unknown
    cipher code or a secret too short."""
    try:
        alg = CipherAlgorithm(algorithm)
    except ValueError:
        raise ProtocolViolation(f"unknown session cipher {algorithm}") from None
    length = _KEY_LENGTH[alg]
    if len(secret) < length:
        raise ProtocolViolation("Diffie-Hellman secret too short")
    if alg is CipherAlgorithm.AES:
        start = 0
        while start + length < len(secret) and secret[start] == 0:
            start += 1
        return secret[start : start + length]
    return _set_des_parity(secret[:length])


def dh_response_data(algorithm: int, server_key: DHPublicKey) -> bytes:
    """The data of a mode-4 session setup response for peers at 2.4 and later:
    ``int4 algorithm`` + the server's ``DH_PUB_KEY``."""
    return algorithm.to_bytes(4, "big") + server_key.to_bytes()


def parse_dh_response_data(data: bytes) -> tuple[int, DHPublicKey]:
    """(cipher code, server DH key) of a mode-4 session setup response."""
    if len(data) < 4:
        raise ProtocolViolation("session setup data too short")
    return int.from_bytes(data[:4], "big"), DHPublicKey.from_bytes(data[4:])


# -- RSA key transport (modes 1, 2, 3) -----------------------------------------------------------


def new_session_key(algorithm: int = CipherAlgorithm.AES) -> bytes:
    """A fresh random session key for ``algorithm`` (32 bytes for AES, its first 16 key the
    cipher; DES keys with parity set)."""
    alg = CipherAlgorithm(algorithm)
    key = os.urandom(_KEY_LENGTH[alg])
    return key if alg is CipherAlgorithm.AES else _set_des_parity(key)


def encrypt_session_key(public_key: rsa.RSAPublicKey, algorithm: int, key: bytes) -> bytes:
    """``RSA-PKCS#1-v1.5(int4 algorithm || key)``: the data of a mode 1/3 response."""
    return public_key.encrypt(algorithm.to_bytes(4, "big") + key, padding.PKCS1v15())


def decrypt_session_key(private_key: rsa.RSAPrivateKey, data: bytes) -> tuple[int, bytes]:
    """(cipher code, key) from a mode 1/3 response. Raises :class:`ProtocolViolation`."""
    try:
        plain = private_key.decrypt(data, padding.PKCS1v15())
    except ValueError:
        raise ProtocolViolation("the session key does not decrypt") from None
    # OpenSSL answers a bad padding with a random message (implicit rejection), so what
    # comes out is checked: a known cipher code and a key of a length it takes.
    code = int.from_bytes(plain[:4], "big")
    if code not in _KEY_LENGTH or len(plain) - 4 not in (8, 16, 24, 32):
        raise ProtocolViolation("the session key does not decrypt")
    return code, plain[4:]


def parse_exchanged_key(plain: bytes) -> tuple[int, bytes]:
    """(cipher code, key) of a decrypted op-402 key: ``int4 alg || key`` when the first four
    bytes are a known cipher code and a key of that cipher follows, else the bare key (what
    the reference client sends), taken as AES."""
    if len(plain) >= 4:
        code = int.from_bytes(plain[:4], "big")
        if code in _KEY_LENGTH and len(plain) - 4 in (8, 16, 24, 32):
            return code, plain[4:]
    if len(plain) not in (16, 24, 32):
        raise ProtocolViolation(f"exchanged session key of {len(plain)} bytes")
    return CipherAlgorithm.AES, plain


# -- HS_MAC (spec §1.7, §3.3) ----------------------------------------------------------------


def _at_least(version: Version, major: int, minor: int) -> bool:
    return version[0] != 5 and version >= (major, minor)


def _broken_2_5_bytes(
    key: bytes, version: Version, ids: tuple[int, int, int], header_and_body: bytes
) -> bytes:
    """What the reference MACs at 2.5 and 2.6 (``brokenTwoFiveTwoSixSignature``): its
    offsets go wrong, so the header and body land at offset 4, over the key and the ids."""
    buf = bytearray(2 * len(key) + len(header_and_body) + 14)
    buf[: len(key)] = key
    buf[len(key)] = version[0]
    buf[len(key) + 1] = version[1]
    # Encoder.writeInt returns 4 and Java assigned it to the offset: sessionId goes after the
    # version bytes, requestId and the counter to offset 4, and the header and body over them.
    buf[len(key) + 2 : len(key) + 6] = ids[0].to_bytes(4, "big")
    buf[4:8] = ids[2].to_bytes(4, "big")
    buf[4 : 4 + len(header_and_body)] = header_and_body
    buf[4 + len(header_and_body) : 4 + len(header_and_body) + len(key)] = key
    return bytes(buf)


_NAMED: Final = {
    "MD5": ("md5", False),
    "SHA1": ("sha1", False),
    "SHA-1": ("sha1", False),
    "SHA-256": ("sha256", False),
    "SHA256": ("sha256", False),
}
_CODED: Final = {1: ("md5", False), 2: ("sha1", False), 3: ("sha256", False)}
_CODED_HMAC: Final = {0x12: "sha1", 0x13: "sha256"}


def _mac(alg: str, key: bytes, data: bytes, *, digest_only: bool = False) -> bytes | None:
    """Java ``Util.doMac`` (``doDigest`` with ``digest_only``) for a credential's digest
    algorithm name; None for a name it does not know."""
    squashed = "".join(c for c in alg.upper() if c.isalnum())
    if not digest_only and squashed in ("HMACSHA1", "HMACSHA256"):
        return hmac.new(key, data, "sha1" if squashed == "HMACSHA1" else "sha256").digest()
    raw = alg.encode("utf-8", "replace")
    if len(raw) == 1:
        if raw[0] in _CODED_HMAC and not digest_only:
            return hmac.new(key, data, _CODED_HMAC[raw[0]]).digest()
        found = _CODED.get(raw[0])
    else:
        found = _NAMED.get(alg)
    if found is None:
        return None
    name = found[0]
    if digest_only:
        return hashlib.new(name, data).digest()
    return hashlib.new(name, key + data + key).digest()


def _mac_algorithm(version: Version) -> str:
    """What the reference MACs with at ``version``: HMAC-SHA256 from 2.7, SHA1 before."""
    if _at_least(version, 2, 7):
        return "HMAC-SHA256"
    if _at_least(version, 2, 6):
        return "SHA1"
    return "\x02"  # Common.HASH_CODE_SHA1 as a one-byte name


def mac_bytes(
    version: Version,
    suggested: Version,
    session_id: int,
    request_id: int,
    session_counter: int,
    header_and_body: bytes,
) -> bytes:
    """What an ``HS_MAC`` covers from 2.7 on, and the header and body alone before 2.5: the
    same bytes as an ``HS_SIGNED`` signature (:func:`~idnode.protocol.auth.signed_bytes`)."""
    if not _at_least(version, 2, 5):
        return header_and_body
    return signed_bytes(
        version, suggested, session_id, request_id, session_counter, header_and_body
    )


def _compute(
    key: bytes,
    alg: str,
    version: Version,
    suggested: Version,
    ids: tuple[int, int, int],
    header_and_body: bytes,
) -> bytes | None:
    if _at_least(version, 2, 5) and not _at_least(version, 2, 7):
        return _mac(
            alg, key, _broken_2_5_bytes(key, version, ids, header_and_body), digest_only=True
        )
    data = mac_bytes(version, suggested, *ids, header_and_body)
    return _mac(alg, key, data)


def mac_credential(
    key: bytes,
    version: Version,
    suggested: Version,
    session_id: int,
    request_id: int,
    session_counter: int,
    header_and_body: bytes,
) -> Credential:
    """The ``HS_MAC`` credential of a message in a session, as the reference writes it: empty
    signer handle, signer index = ``session_counter``, digest algorithm ``HMAC-SHA256`` from
    2.7 (``SHA1`` before), MAC = HMAC-SHA256(session key, :func:`mac_bytes`)."""
    alg = _mac_algorithm(version)
    ids = (session_id, request_id, session_counter)
    mac = _compute(key, alg, version, suggested, ids, header_and_body)
    assert mac is not None
    return Credential(signer_index=session_counter, type=HS_MAC, digest_alg=alg, signature=mac)


def verify_mac(
    key: bytes,
    credential: Credential,
    version: Version,
    suggested: Version,
    session_id: int,
    request_id: int,
    header_and_body: bytes,
) -> bool:
    """Check an ``HS_MAC`` credential; the session counter is its signer index. ``False`` for
    another credential type, an unknown algorithm or a wrong MAC (compared in constant time)."""
    if credential.type != HS_MAC:
        return False
    ids = (session_id, request_id, credential.signer_index)
    expected = _compute(key, credential.digest_alg, version, suggested, ids, header_and_body)
    return expected is not None and hmac.compare_digest(expected, credential.signature)


# -- message encryption (the ENC flag) --------------------------------------------------------


def encrypt_payload(key: bytes, algorithm: int, payload: bytes) -> bytes:
    """A message's header, body and credential encrypted with the session key (2.4 and
    later): the IV, then AES-CBC/PKCS#5 ciphertext under the first 16 key bytes. Only AES is
    supported; raises :class:`ProtocolViolation` for another cipher."""
    if algorithm != CipherAlgorithm.AES:
        raise ProtocolViolation(f"session cipher {algorithm} is not supported for encryption")
    iv = os.urandom(16)
    padder = sym_padding.PKCS7(128).padder()
    padded = padder.update(payload) + padder.finalize()
    enc = Cipher(algorithms.AES(key[:16]), modes.CBC(iv)).encryptor()
    return iv + enc.update(padded) + enc.finalize()


def decrypt_payload(key: bytes, algorithm: int, data: bytes) -> bytes:
    """Inverse of :func:`encrypt_payload`. Raises :class:`ProtocolViolation` when the data
    does not decrypt (wrong key, truncated, bad padding)."""
    if algorithm != CipherAlgorithm.AES:
        raise ProtocolViolation(f"session cipher {algorithm} is not supported for encryption")
    if len(data) < 32 or len(data) % 16:
        raise ProtocolViolation("encrypted message of a wrong length")
    dec = Cipher(algorithms.AES(key[:16]), modes.CBC(data[:16])).decryptor()
    padded = dec.update(data[16:]) + dec.finalize()
    unpadder = sym_padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise ProtocolViolation("encrypted message does not decrypt") from None
