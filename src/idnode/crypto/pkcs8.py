"""Passphrase-encrypted PKCS#8 (RFC 5958 EncryptedPrivateKeyInfo with PBES2, RFC 8018).

``cryptography`` encrypts and decrypts PKCS#8 only for the key types it supports, and SM2 is
not one of them, so SM2 keys are wrapped here: PBKDF2-HMAC-SHA256 and AES-CBC, the scheme
OpenSSL 3 writes by default (``openssl pkey -aes256``), so either side reads the other's files.
Reading also accepts HMAC-SHA1 (the PBKDF2 default) and AES-128/192.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from idnode.crypto import der

ITERATIONS = 100_000
MAX_ITERATIONS = 10_000_000  # a local file: a generous bound on work

_OID_PBES2 = bytes.fromhex("2a864886f70d01050d")
_OID_PBKDF2 = bytes.fromhex("2a864886f70d01050c")
_OID_HMAC_SHA1 = bytes.fromhex("2a864886f70d0207")
_OID_HMAC_SHA256 = bytes.fromhex("2a864886f70d0209")
_AES_CBC = {  # OID -> key length in bytes
    bytes.fromhex("608648016503040102"): 16,
    bytes.fromhex("608648016503040116"): 24,
    bytes.fromhex("60864801650304012a"): 32,
}
_NULL = b"\x05\x00"


class Pkcs8Error(ValueError):
    """Malformed or unsupported encrypted key, or a wrong passphrase."""


def encrypt(private_key_info: bytes, passphrase: bytes, *, iterations: int = ITERATIONS) -> bytes:
    """EncryptedPrivateKeyInfo DER of a PrivateKeyInfo DER (PBES2, HMAC-SHA256, AES-256-CBC)."""
    if not passphrase:
        raise ValueError("empty passphrase")
    salt, iv = os.urandom(16), os.urandom(16)
    key = hashlib.pbkdf2_hmac("sha256", passphrase, salt, iterations, 32)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(private_key_info) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = enc.update(padded) + enc.finalize()
    kdf = der.seq(
        der.encode(der.OID, _OID_PBKDF2),
        der.seq(
            der.encode(der.OCTET_STRING, salt),
            der.integer(iterations),
            der.seq(der.encode(der.OID, _OID_HMAC_SHA256), _NULL),
        ),
    )
    scheme = der.seq(
        der.encode(der.OID, bytes.fromhex("60864801650304012a")),
        der.encode(der.OCTET_STRING, iv),
    )
    algorithm = der.seq(der.encode(der.OID, _OID_PBES2), der.seq(kdf, scheme))
    return der.seq(algorithm, der.encode(der.OCTET_STRING, ciphertext))


def decrypt(encrypted: bytes, passphrase: bytes) -> bytes:
    """The PrivateKeyInfo DER inside an EncryptedPrivateKeyInfo DER."""
    try:
        outer = der.read_all(der.read_single(encrypted, der.SEQUENCE).value)
        if len(outer) != 2:
            raise Pkcs8Error("EncryptedPrivateKeyInfo must have two parts")
        algorithm = der.read_all(der.expect(outer[0], der.SEQUENCE))
        if len(algorithm) != 2 or der.expect(algorithm[0], der.OID) != _OID_PBES2:
            raise Pkcs8Error("only PBES2-encrypted keys are supported")
        kdf, scheme = der.read_all(der.expect(algorithm[1], der.SEQUENCE))
        kdf_parts = der.read_all(der.expect(kdf, der.SEQUENCE))
        if len(kdf_parts) != 2 or der.expect(kdf_parts[0], der.OID) != _OID_PBKDF2:
            raise Pkcs8Error("only PBKDF2 key derivation is supported")
        salt, iterations, key_length, prf = _pbkdf2_params(kdf_parts[1])
        cipher_parts = der.read_all(der.expect(scheme, der.SEQUENCE))
        if len(cipher_parts) != 2:
            raise Pkcs8Error("bad PBES2 encryption scheme")
        size = _AES_CBC.get(der.expect(cipher_parts[0], der.OID))
        iv = der.expect(cipher_parts[1], der.OCTET_STRING)
        if size is None or len(iv) != 16 or key_length not in (None, size):
            raise Pkcs8Error("only AES-CBC encrypted keys are supported")
        ciphertext = der.expect(outer[1], der.OCTET_STRING)
    except (der.DerError, ValueError) as exc:
        if isinstance(exc, Pkcs8Error):
            raise
        raise Pkcs8Error(f"bad encrypted private key: {exc}") from exc
    key = hashlib.pbkdf2_hmac(prf, passphrase, salt, iterations, size)
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    try:
        padded = dec.update(ciphertext) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as exc:
        raise Pkcs8Error("cannot decrypt private key (wrong passphrase?)") from exc


def _pbkdf2_params(item: der.Tlv) -> tuple[bytes, int, int | None, str]:
    parts = der.read_all(der.expect(item, der.SEQUENCE))
    if len(parts) < 2:
        raise Pkcs8Error("bad PBKDF2 parameters")
    salt = der.expect(parts[0], der.OCTET_STRING)
    iterations = der.read_integer(parts[1])
    if not salt or not 1 <= iterations <= MAX_ITERATIONS:
        raise Pkcs8Error("unsupported PBKDF2 parameters")
    key_length: int | None = None
    prf = "sha1"
    for part in parts[2:]:
        if part.tag == der.INTEGER and key_length is None and prf == "sha1":
            key_length = der.read_integer(part)
        elif part.tag == der.SEQUENCE:
            prf_parts = der.read_all(part.value)
            oid = der.expect(prf_parts[0], der.OID) if prf_parts else b""
            if oid == _OID_HMAC_SHA256:
                prf = "sha256"
            elif oid != _OID_HMAC_SHA1:
                raise Pkcs8Error("unsupported PBKDF2 pseudo-random function")
        else:
            raise Pkcs8Error("bad PBKDF2 parameters")
    return salt, iterations, key_length, prf
