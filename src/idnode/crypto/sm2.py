"""SM2 signatures (GB/T 32918.2 / GM/T 0003.2) and SM3 hashing (GB/T 32905 / GM/T 0004).

The curve arithmetic and the signature algorithm come from the ``gmalg`` package; SM3 comes
from ``cryptography`` (OpenSSL).  This module is the one place idnode touches either, and
adds what they lack: key objects that are validated when built, raw point import/export,
and PKCS#8 / SubjectPublicKeyInfo DER and PEM with the standard SM2 object identifiers
(id-ecPublicKey with the SM2 curve 1.2.156.10197.1.301, as OpenSSL writes them).

Signatures are the 64-byte concatenation r || s, each a 32-byte big-endian integer.
"""

from __future__ import annotations

import base64
import functools
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from gmalg.sm2 import SM2Core, _ecdlp
from gmalg.sm3 import SM3

from idnode.crypto import der, pkcs8

DEFAULT_UID = b"1234567812345678"
"""The distinguishing identifier used when none is agreed (GM/T 0009)."""

SIGNATURE_SIZE = 64
POINT_SIZE = 65
PRIVATE_SIZE = 32

P = _ecdlp.fp.p
N = _ecdlp.fpn.p
A = _ecdlp.ec.a
B = _ecdlp.ec.b

# id-ecPublicKey (1.2.840.10045.2.1) and the SM2 curve (1.2.156.10197.1.301), DER-encoded.
_OID_EC_PUBLIC_KEY = der.encode(der.OID, bytes.fromhex("2a8648ce3d0201"))
_OID_SM2 = der.encode(der.OID, bytes.fromhex("2a811ccf5501822d"))
_ALGORITHM = der.seq(_OID_EC_PUBLIC_KEY, _OID_SM2)
_MAX_UID = 8191  # ENTL is the bit length of the identifier in two bytes


class Sm2Error(ValueError):
    """Malformed SM2 key data, or a value out of range."""


def sm3(data: bytes) -> bytes:
    """SM3 digest (32 bytes) of data."""
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


@dataclass(frozen=True)
class Sm2PublicKey:
    """A point of the SM2 curve, checked to lie on it when built."""

    x: int
    y: int

    def __post_init__(self) -> None:
        if not (0 <= self.x < P and 0 <= self.y < P):
            raise Sm2Error("SM2 point coordinate out of range")
        if (self.y * self.y - (self.x * self.x * self.x + A * self.x + B)) % P != 0:
            raise Sm2Error("point is not on the SM2 curve")

    @classmethod
    def from_point(cls, data: bytes) -> Sm2PublicKey:
        """From the 65-byte uncompressed point 04 || x || y."""
        if len(data) != POINT_SIZE or data[0] != 0x04:
            raise Sm2Error("SM2 public key must be a 65-byte uncompressed point (04 || x || y)")
        return cls(int.from_bytes(data[1:33], "big"), int.from_bytes(data[33:], "big"))

    def to_point(self) -> bytes:
        """The 65-byte uncompressed point 04 || x || y."""
        return b"\x04" + self.x.to_bytes(32, "big") + self.y.to_bytes(32, "big")

    def to_der(self) -> bytes:
        """SubjectPublicKeyInfo DER."""
        return der.seq(_ALGORITHM, der.encode(der.BIT_STRING, b"\x00" + self.to_point()))

    def to_pem(self) -> bytes:
        return _pem("PUBLIC KEY", self.to_der())

    def public_bytes(
        self, encoding: serialization.Encoding, format: serialization.PublicFormat
    ) -> bytes:
        """As ``cryptography``'s keys: SubjectPublicKeyInfo in PEM or DER, or the X9.62
        uncompressed point in raw form. ValueError for anything else."""
        if format is serialization.PublicFormat.SubjectPublicKeyInfo:
            if encoding is serialization.Encoding.PEM:
                return self.to_pem()
            if encoding is serialization.Encoding.DER:
                return self.to_der()
        if (
            format is serialization.PublicFormat.UncompressedPoint
            and encoding is serialization.Encoding.X962
        ):
            return self.to_point()
        raise ValueError(f"SM2 public keys have no {encoding!r} {format!r} form")

    @classmethod
    def from_der(cls, data: bytes) -> Sm2PublicKey:
        try:
            items = der.read_all(der.read_single(data, der.SEQUENCE).value)
            if len(items) != 2:
                raise Sm2Error("SubjectPublicKeyInfo must have two parts")
            _check_algorithm(items[0])
            return cls.from_point(der.read_bit_string(items[1]))
        except der.DerError as exc:
            raise Sm2Error(f"bad SM2 public key DER: {exc}") from exc

    @classmethod
    def from_pem(cls, data: bytes) -> Sm2PublicKey:
        return cls.from_der(_unpem(data, ("PUBLIC KEY",))[1])


@dataclass(frozen=True, repr=False)
class Sm2PrivateKey:
    """An SM2 private scalar d, 1 <= d <= n - 2."""

    d: int

    def __post_init__(self) -> None:
        if not 1 <= self.d <= N - 2:
            raise Sm2Error("SM2 private key out of range")

    def __repr__(self) -> str:
        return "Sm2PrivateKey(<secret>)"

    def public_key(self) -> Sm2PublicKey:
        return self._public

    @functools.cached_property
    def _public(self) -> Sm2PublicKey:  # a scalar multiplication: computed once per key
        x, y = _ecdlp.kG(self.d)
        return Sm2PublicKey(x, y)

    @classmethod
    def from_raw(cls, data: bytes) -> Sm2PrivateKey:
        """From the 32-byte big-endian scalar."""
        if len(data) != PRIVATE_SIZE:
            raise Sm2Error("SM2 private key must be 32 bytes")
        return cls(int.from_bytes(data, "big"))

    def to_raw(self) -> bytes:
        return self.d.to_bytes(PRIVATE_SIZE, "big")

    def to_der(self) -> bytes:
        """PKCS#8 PrivateKeyInfo DER (the ECPrivateKey inside carries the public point)."""
        ec_private = der.seq(
            der.integer(1),
            der.encode(der.OCTET_STRING, self.to_raw()),
            der.encode(0xA1, der.encode(der.BIT_STRING, b"\x00" + self.public_key().to_point())),
        )
        return der.seq(der.integer(0), _ALGORITHM, der.encode(der.OCTET_STRING, ec_private))

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        """PKCS#8 PEM; with a passphrase, ``ENCRYPTED PRIVATE KEY`` (see pkcs8.py)."""
        if passphrase is None:
            return _pem("PRIVATE KEY", self.to_der())
        return _pem("ENCRYPTED PRIVATE KEY", pkcs8.encrypt(self.to_der(), passphrase))

    @classmethod
    def from_der(cls, data: bytes) -> Sm2PrivateKey:
        """From PKCS#8 PrivateKeyInfo or SEC1 ECPrivateKey DER naming the SM2 curve."""
        try:
            items = der.read_all(der.read_single(data, der.SEQUENCE).value)
            if len(items) >= 3 and items[1].tag == der.SEQUENCE:  # PKCS#8
                if der.read_integer(items[0]) not in (0, 1):
                    raise Sm2Error("unsupported PKCS#8 version")
                _check_algorithm(items[1])
                inner = der.expect(items[2], der.OCTET_STRING)
                return cls._from_ec_private(der.read_all(der.read_single(inner, 0x30).value))
            return cls._from_ec_private(items, need_curve=True)
        except der.DerError as exc:
            raise Sm2Error(f"bad SM2 private key DER: {exc}") from exc

    @classmethod
    def _from_ec_private(cls, items: list[der.Tlv], need_curve: bool = False) -> Sm2PrivateKey:
        if len(items) < 2 or der.read_integer(items[0]) != 1:
            raise Sm2Error("bad ECPrivateKey")
        raw = der.expect(items[1], der.OCTET_STRING)
        key = cls.from_raw(raw.rjust(PRIVATE_SIZE, b"\x00"))
        curve_seen = False
        for item in items[2:]:
            if item.tag == 0xA0:  # parameters: must name the SM2 curve
                if item.value != _OID_SM2:
                    raise Sm2Error("EC key is not on the SM2 curve")
                curve_seen = True
            elif item.tag == 0xA1:  # public point: must match the scalar
                point = der.read_bit_string(der.read_single(item.value, der.BIT_STRING))
                if Sm2PublicKey.from_point(point) != key.public_key():
                    raise Sm2Error("ECPrivateKey public point does not match its private key")
        if need_curve and not curve_seen:
            raise Sm2Error("EC private key does not name the SM2 curve")
        return key

    @classmethod
    def from_pem(cls, data: bytes, passphrase: bytes | None = None) -> Sm2PrivateKey:
        """From PEM: PKCS#8 (plain or, with ``passphrase``, encrypted) or SEC1."""
        labels = ("PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "EC PRIVATE KEY", "SM2 PRIVATE KEY")
        label, body = _unpem(data, labels)
        if label == "ENCRYPTED PRIVATE KEY":
            if not passphrase:
                raise Sm2Error("the private key is encrypted: a passphrase is needed")
            try:
                body = pkcs8.decrypt(body, passphrase)
            except pkcs8.Pkcs8Error as exc:
                raise Sm2Error(str(exc)) from exc
        return cls.from_der(body)


def generate_private_key() -> Sm2PrivateKey:
    return Sm2PrivateKey(secrets.randbelow(N - 2) + 1)


def sign(private_key: Sm2PrivateKey, data: bytes, uid: bytes = DEFAULT_UID) -> bytes:
    """SM2 signature r || s (64 bytes) of data, with e = SM3(Z_A || data)."""
    return _sign(private_key, data, uid, secrets.randbits)


def verify(
    public_key: Sm2PublicKey, data: bytes, signature: bytes, uid: bytes = DEFAULT_UID
) -> bool:
    """True only if signature is a valid r || s of data under public_key and uid."""
    if len(signature) != SIGNATURE_SIZE or len(uid) > _MAX_UID:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    return bool(_core().verify(data, r, s, uid, (public_key.x, public_key.y)))


def z_value(public_key: Sm2PublicKey, uid: bytes = DEFAULT_UID) -> bytes:
    """Z_A = SM3(ENTL || ID || a || b || xG || yG || xA || yA)."""
    if len(uid) > _MAX_UID:
        raise Sm2Error("SM2 identifier longer than 8191 bytes")
    return bytes(_core().entity_info(uid, (public_key.x, public_key.y)))


def _sign(private_key: Sm2PrivateKey, data: bytes, uid: bytes, rnd: Callable[[int], int]) -> bytes:
    if len(uid) > _MAX_UID:
        raise Sm2Error("SM2 identifier longer than 8191 bytes")
    pub = private_key.public_key()
    r, s = _core(rnd).sign(data, private_key.d, uid, (pub.x, pub.y))
    return int(r).to_bytes(32, "big") + int(s).to_bytes(32, "big")


def _core(rnd: Callable[[int], int] | None = None) -> SM2Core:
    # A fresh core per call: the library's hash object is stateful and not thread-safe.
    return SM2Core(_ecdlp, SM3(), rnd)


def _check_algorithm(item: der.Tlv) -> None:
    if item.tag != der.SEQUENCE or der.encode(der.SEQUENCE, item.value) != _ALGORITHM:
        raise Sm2Error("key algorithm is not SM2 (id-ecPublicKey with curve 1.2.156.10197.1.301)")


def _pem(label: str, body: bytes) -> bytes:
    b64 = base64.b64encode(body).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return (
        "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n"
    ).encode()


_PEM_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.S)


def _unpem(data: bytes, labels: tuple[str, ...]) -> tuple[str, bytes]:
    match = _PEM_RE.search(data)
    if match is None or match.group(1).decode() not in labels:
        raise Sm2Error(f"expected a PEM block labelled {' or '.join(labels)}")
    try:
        body = base64.b64decode(b"".join(match.group(2).split()), validate=True)
        return match.group(1).decode(), body
    except ValueError as exc:
        raise Sm2Error("bad base64 in PEM") from exc
