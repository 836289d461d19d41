"""HS_PUBKEY value data and private-key files (spec §2.4).

Wire form (Java ``Util.getBytesFromPublicKey``)::

    UTF8-String keyType     RSA_PUB_KEY | DSA_PUB_KEY | DH_PUB_KEY | SM2_PUB_KEY
    int2        flags       0
    byte-array  ...         RSA: e, n    DSA: q, p, g, y    DH: y, p, g
                            SM2: the 65-byte uncompressed point 04 || x || y

``SM2_PUB_KEY`` is an idnode extension (the reference knows no SM2), laid out like the others;
its signatures use hash name ``SM3`` (see :mod:`idnode.protocol.auth`).

Each parameter is a Java ``BigInteger.toByteArray()``: big-endian two's complement, so a
leading 0x00 appears when the high bit is set. Java reads them back as unsigned magnitudes
(``new BigInteger(1, bytes)``) and ignores bytes after the last parameter. Every RSA key Java
encodes ends with four zero bytes there: it sizes the buffer for one length field too many.
:class:`PublicKeyData` keeps each parameter's raw bytes and any trailing bytes, so every value
re-encodes byte for byte; a key type Java does not know keeps everything after the flags in
``trailing``.

SM2 private keys are PEM only (PKCS#8, encrypted with PBES2 when a passphrase is given; see
:mod:`idnode.crypto.pkcs8`), which OpenSSL reads and writes too.

Private keys never go on the wire. :func:`load_private_key` reads PEM (PKCS#8 or traditional,
optionally passphrase-encrypted) and the reference server's own key file: ``int4 encType``
then either the plain key (``1``, none) or ``byte-array salt, int4 iterations, int4 keyBits,
byte-array iv, byte-array ciphertext`` (``4``, PBKDF2-HMAC-SHA1 + AES-128-CBC/PKCS#5), where the
plain key is ``DSA_PRIV_KEY`` (x, p, q, g) or ``RSA_PRIVCRT_KEY`` (n, e, d, p, q, dP, dQ, qInv),
all byte-arrays (Java ``Util.getBytesFromPrivateKey``). ``RSA_PRIV_KEY`` (n, d only) and the
DES-based encryption types 0, 2 and 3 are refused.

Errors: malformed bytes raise :class:`~idnode.errors.ProtocolViolation`; a key file that cannot
be used (wrong or missing passphrase, unsupported key or encryption type) raises
:class:`~idnode.errors.InvalidValue`. Passphrases never appear in messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import padding as block_padding
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from idnode.crypto import sm2
from idnode.errors import InvalidValue, ProtocolViolation
from idnode.protocol.auth import PrivateKey, PublicKey, java_pbkdf2_hmac_sha1
from idnode.protocol.types import register
from idnode.protocol.wire import Reader, Writer

__all__ = [
    "DH_PUB_KEY",
    "DSA_PUB_KEY",
    "RSA_PUB_KEY",
    "SM2_PUB_KEY",
    "PrivateKey",
    "PublicKey",
    "PublicKeyData",
    "dump_private_key_file",
    "dump_private_key_pem",
    "java_bigint_bytes",
    "load_private_key",
    "private_key_from_bytes",
    "private_key_to_bytes",
]

RSA_PUB_KEY: Final = "RSA_PUB_KEY"
DSA_PUB_KEY: Final = "DSA_PUB_KEY"
DH_PUB_KEY: Final = "DH_PUB_KEY"
SM2_PUB_KEY: Final = "SM2_PUB_KEY"
#: Parameter names, in wire order, of each key type Java knows (spec §2.4).
_PARAMS: Final[dict[str, tuple[str, ...]]] = {
    RSA_PUB_KEY: ("e", "n"),
    DSA_PUB_KEY: ("q", "p", "g", "y"),
    DH_PUB_KEY: ("y", "p", "g"),
    SM2_PUB_KEY: ("point",),
}


def java_bigint_bytes(n: int) -> bytes:
    """``BigInteger.toByteArray()`` of a non-negative integer: minimal two's complement."""
    if n < 0:
        raise ValueError("negative key parameter")
    return n.to_bytes(n.bit_length() // 8 + 1, "big")


@register("HS_PUBKEY")
@dataclass(frozen=True, slots=True)
class PublicKeyData:
    """HS_PUBKEY value data (spec §2.4) with each parameter's bytes exactly as received."""

    key_type: str
    #: Raw parameter bytes in wire order (see ``_PARAMS``); empty for an unknown key type.
    params: tuple[bytes, ...] = ()
    flags: int = 0
    #: Bytes after the last parameter (Java ignores them); kept for a byte-exact re-encoding.
    trailing: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.params, tuple) or not all(isinstance(p, bytes) for p in self.params):
            raise TypeError("PublicKeyData.params must be a tuple of bytes")
        if not isinstance(self.trailing, bytes):
            raise TypeError("PublicKeyData.trailing must be bytes")
        if not 0 <= self.flags <= 0xFFFF:
            raise ProtocolViolation(f"HS_PUBKEY flags out of range: {self.flags}")
        expected = len(_PARAMS.get(self.key_type, ()))
        if len(self.params) != expected:
            raise ProtocolViolation(f"{self.key_type} needs {expected} parameters")

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicKeyData:
        """Decode HS_PUBKEY data. Raises :class:`ProtocolViolation` if truncated."""
        r = Reader(data)
        key_type = r.utf8("HS_PUBKEY key type")
        flags = r.u16()
        params = tuple(r.byte_array(f"{key_type} {n}") for n in _PARAMS.get(key_type, ()))
        return cls(key_type, params, flags, r.rest())

    def to_bytes(self) -> bytes:
        w = Writer().utf8(self.key_type).u16(self.flags)
        for p in self.params:
            w.byte_array(p)
        return w.raw(self.trailing).getvalue()

    @property
    def integers(self) -> dict[str, int]:
        """Parameters by name (``e``, ``n``, ``p``, ...) as Java reads them: unsigned."""
        names = _PARAMS.get(self.key_type, ())
        return {n: int.from_bytes(p, "big") for n, p in zip(names, self.params, strict=True)}

    def to_public_key(self) -> PublicKey:
        """The RSA or DSA key as a ``cryptography`` object, or the SM2 key. Raises
        :class:`ProtocolViolation` for parameters that do not form a valid key (an SM2 point
        off the curve, say) and for other key types (``cryptography`` deprecates finite-field
        DH, so a ``DH_PUB_KEY`` is available only as :attr:`integers`).
        """
        if self.key_type == SM2_PUB_KEY:
            try:
                return sm2.Sm2PublicKey.from_point(self.params[0])
            except sm2.Sm2Error as exc:
                raise ProtocolViolation(f"invalid SM2_PUB_KEY: {exc}") from exc
        v = self.integers
        try:
            if self.key_type == RSA_PUB_KEY:
                return rsa.RSAPublicNumbers(v["e"], v["n"]).public_key()
            if self.key_type == DSA_PUB_KEY:
                dsa_params = dsa.DSAParameterNumbers(v["p"], v["q"], v["g"])
                return dsa.DSAPublicNumbers(v["y"], dsa_params).public_key()
        except ValueError as exc:
            raise ProtocolViolation(f"invalid {self.key_type} parameters") from exc
        raise ProtocolViolation(f"unsupported public key type {self.key_type!r}")

    @classmethod
    def from_public_key(cls, key: PublicKey) -> PublicKeyData:
        """The encoding Java's ``Util.getBytesFromPublicKey`` produces for an RSA/DSA key;
        ``SM2_PUB_KEY`` with the uncompressed point for an SM2 key."""
        if isinstance(key, sm2.Sm2PublicKey):
            return cls(SM2_PUB_KEY, (key.to_point(),))
        if isinstance(key, rsa.RSAPublicKey):
            rn = key.public_numbers()
            return cls.from_integers(RSA_PUB_KEY, rn.e, rn.n)
        if isinstance(key, dsa.DSAPublicKey):
            dn = key.public_numbers()
            pn = dn.parameter_numbers
            return cls.from_integers(DSA_PUB_KEY, pn.q, pn.p, pn.g, dn.y)
        raise TypeError(f"unsupported public key {type(key).__name__}")

    @classmethod
    def from_integers(cls, key_type: str, *numbers: int) -> PublicKeyData:
        """Java's encoding of ``numbers`` in wire order (e.g. ``DH_PUB_KEY``: y, p, g).

        Java sizes an RSA encoding for four length fields but writes three, so every
        ``RSA_PUB_KEY`` it produces ends with four zero bytes; they are reproduced here.
        """
        trailing = bytes(4) if key_type == RSA_PUB_KEY else b""
        return cls(key_type, tuple(java_bigint_bytes(n) for n in numbers), trailing=trailing)


# -- private keys ----------------------------------------------------------------------
_DSA_PRIV_KEY: Final = "DSA_PRIV_KEY"
_RSA_PRIV_KEY: Final = "RSA_PRIV_KEY"
_RSA_PRIVCRT_KEY: Final = "RSA_PRIVCRT_KEY"
_ENCRYPT_NONE: Final = 1
_ENCRYPT_PBKDF2_AES: Final = 4


def private_key_to_bytes(key: PrivateKey) -> bytes:
    """Java ``Util.getBytesFromPrivateKey``: ``DSA_PRIV_KEY`` or ``RSA_PRIVCRT_KEY``."""
    ints: tuple[int, ...]
    if isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()
        name, ints = _RSA_PRIVCRT_KEY, (n.public_numbers.n, n.public_numbers.e, n.d, n.p, n.q)
        ints += (n.dmp1, n.dmq1, n.iqmp)
    elif isinstance(key, dsa.DSAPrivateKey):
        d = key.private_numbers()
        pn = d.public_numbers.parameter_numbers
        name, ints = _DSA_PRIV_KEY, (d.x, pn.p, pn.q, pn.g)
    else:
        raise TypeError(f"unsupported private key {type(key).__name__}")
    w = Writer().utf8(name)
    for i in ints:
        w.byte_array(java_bigint_bytes(i))
    return w.getvalue()


def private_key_from_bytes(data: bytes) -> PrivateKey:
    """Java ``Util.getPrivateKeyFromBytes`` (unencrypted key bytes). Raises
    :class:`ProtocolViolation` if malformed, :class:`InvalidValue` if unsupported or invalid."""
    r = Reader(data)
    name = r.utf8("private key type")
    if name == _RSA_PRIV_KEY:
        raise InvalidValue("RSA_PRIV_KEY keys (no CRT parameters) are not supported")
    count = {_DSA_PRIV_KEY: 4, _RSA_PRIVCRT_KEY: 8}.get(name)
    if count is None:
        raise InvalidValue(f"unsupported private key type {name!r}")
    v = [int.from_bytes(r.byte_array("private key parameter"), "big") for _ in range(count)]
    try:
        if name == _DSA_PRIV_KEY:
            x, p, q, g = v
            params = dsa.DSAParameterNumbers(p, q, g)
            public = dsa.DSAPublicNumbers(pow(g, x, p), params)
            return dsa.DSAPrivateNumbers(x, public).private_key()
        n, e, d, p, q, dp, dq, qinv = v
        public_rsa = rsa.RSAPublicNumbers(e, n)
        return rsa.RSAPrivateNumbers(p, q, d, dp, dq, qinv, public_rsa).private_key()
    except ValueError as exc:
        raise InvalidValue(f"invalid {name} parameters") from exc


def _aes_cipher(
    passphrase: bytes, salt: bytes, iterations: int, key_bits: int, iv: bytes
) -> Cipher[modes.CBC]:
    # GenericProvider: AES with a key longer than 16 bytes uses its first 16.
    key = java_pbkdf2_hmac_sha1(passphrase, salt, iterations, key_bits)[:16]
    if len(key) != 16 or len(iv) != 16:
        raise InvalidValue("unsupported key-file encryption parameters")
    return Cipher(algorithms.AES(key), modes.CBC(iv))


def dump_private_key_file(
    key: PrivateKey,
    passphrase: bytes | None = None,
    *,
    salt: bytes | None = None,
    iv: bytes | None = None,
) -> bytes:
    """The reference server's private-key file (Java ``Util.encrypt`` of the key bytes).

    Without a passphrase: type 1 (unencrypted). With one: type 4, 10000 iterations, 128-bit
    key, as Java's ``KeyGenerator`` writes it; ``salt`` and ``iv`` default to 16 bytes each
    from ``os.urandom``. Raises ``ValueError`` for an empty passphrase.
    """
    plain = private_key_to_bytes(key)
    if passphrase is None:
        return Writer().u32(_ENCRYPT_NONE).raw(plain).getvalue()
    if not passphrase:
        raise ValueError("empty passphrase")
    salt = os.urandom(16) if salt is None else salt
    iv = os.urandom(16) if iv is None else iv
    padder = block_padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    enc = _aes_cipher(passphrase, salt, 10000, 128, iv).encryptor()
    ciphertext = enc.update(padded) + enc.finalize()
    w = Writer().u32(_ENCRYPT_PBKDF2_AES).byte_array(salt).u32(10000).u32(128)
    return w.byte_array(iv).byte_array(ciphertext).getvalue()


def _load_key_file(data: bytes, passphrase: bytes | None) -> PrivateKey:
    r = Reader(data)
    enc_type = r.u32()
    if enc_type == _ENCRYPT_NONE:
        return private_key_from_bytes(r.rest())
    if enc_type != _ENCRYPT_PBKDF2_AES:
        raise InvalidValue(f"unsupported private key encryption type {enc_type}")
    if not passphrase:
        raise InvalidValue("private key file needs a passphrase")
    salt, iterations, key_bits = r.byte_array("salt"), r.u32(), r.u32()
    iv, ciphertext = r.byte_array("iv"), r.byte_array("ciphertext")
    if not salt or not 1 <= iterations <= 10_000_000:  # a local file: a generous bound
        raise InvalidValue("unsupported key-file encryption parameters")
    dec = _aes_cipher(passphrase, salt, iterations, key_bits, iv).decryptor()
    try:
        padded = dec.update(ciphertext) + dec.finalize()
        unpadder = block_padding.PKCS7(128).unpadder()
        plain = unpadder.update(padded) + unpadder.finalize()
        return private_key_from_bytes(plain)
    except (ValueError, ProtocolViolation) as exc:
        raise InvalidValue("cannot decrypt private key (wrong passphrase?)") from exc


def load_private_key(data: bytes, passphrase: bytes | None = None) -> PrivateKey:
    """Load an RSA, DSA or SM2 private key from PEM, or an RSA or DSA key from the reference
    server's key file.

    ``passphrase`` is the UTF-8 passphrase, needed only for an encrypted file.
    """
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(data, passphrase)
        except (UnsupportedAlgorithm, ValueError, TypeError) as exc:
            # SM2 keys (a curve cryptography does not support) and SEC1 "SM2 PRIVATE KEY"
            try:
                return sm2.Sm2PrivateKey.from_pem(data, passphrase)
            except sm2.Sm2Error as sm2_exc:
                if isinstance(exc, UnsupportedAlgorithm):
                    raise InvalidValue(f"cannot load PEM private key: {sm2_exc}") from exc
            raise InvalidValue("cannot load PEM private key (wrong passphrase?)") from exc
        if not isinstance(key, rsa.RSAPrivateKey | dsa.DSAPrivateKey):
            raise InvalidValue(f"unsupported private key {type(key).__name__}")
        return key
    return _load_key_file(data, passphrase)


def dump_private_key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with ``passphrase`` (best available scheme; PBES2 for SM2) if one
    is given."""
    if isinstance(key, sm2.Sm2PrivateKey):
        return key.to_pem(passphrase)
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if passphrase is None
        else serialization.BestAvailableEncryption(passphrase)
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
