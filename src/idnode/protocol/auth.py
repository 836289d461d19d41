"""Handle-protocol cryptography: request digests, challenge answers, message signatures.

Pure functions: bytes and key objects in, bytes/bools/:class:`Credential` out. No sockets, no
clock. Randomness only in :func:`generate_nonce` and when a PBKDF2 salt is not passed in.

* Request digest (spec §1.6, §0.2): a hash of the request's 24-byte header + body.
* Secret-key answers (spec §3.2): ``u8 alg`` + MAC over ``nonce || digest`` (no alg byte
  before 2.1). The digest is the raw hash, without its hash-type byte.
* Public-key answers (spec §3.2, §0.3): ``UTF8 hashName`` + ``byte-array signature`` over
  ``nonce || digest``; RSA PKCS#1 v1.5 or DSA (DER ``r, s``), or, an idnode extension, SM2
  with hash name ``SM3`` (the 64-byte ``r || s`` of GB/T 32918.2, default identifier).
* Message signatures (spec §0.1, §1.7, §3.3): ``HS_SIGNED`` credentials over
  :func:`signed_bytes`. (Session ``HS_MAC`` credentials: :mod:`idnode.protocol.session`.)

Verifiers never raise on malformed input from the peer: a signed response or credential that
cannot be parsed, names an unknown algorithm, or asks for excessive work verifies as ``False``,
exactly like a wrong MAC. Callers answer both the same way (403 / "invalid"). Secrets are never
logged and never part of an exception message.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from enum import IntEnum
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from idnode.crypto import sm2
from idnode.errors import ProtocolViolation
from idnode.protocol.credential import HS_DSAPUBKEY, HS_SIGNED, Credential
from idnode.protocol.wire import Reader, Writer

__all__ = [
    "MAX_PBKDF2_ITERATIONS",
    "MAX_PBKDF2_KEY_BITS",
    "SM3_HASH_NAME",
    "DigestType",
    "PrivateKey",
    "PublicKey",
    "SecretKeyAlgorithm",
    "VerifyingKey",
    "default_signature_hash",
    "digest_type_for_version",
    "generate_nonce",
    "hashed_secret_key",
    "java_pbkdf2_hmac_sha1",
    "make_public_key_answer",
    "make_secret_key_answer",
    "request_digest",
    "secret_key_algorithm_for_version",
    "sign_data",
    "sign_message",
    "signed_bytes",
    "verify_data",
    "verify_message_signature",
    "verify_public_key_answer",
    "verify_secret_key_answer",
]

Version = tuple[int, int]
PrivateKey = rsa.RSAPrivateKey | dsa.DSAPrivateKey | sm2.Sm2PrivateKey
PublicKey = rsa.RSAPublicKey | dsa.DSAPublicKey | sm2.Sm2PublicKey
#: What the verifiers accept: any ``cryptography`` public key (only RSA/DSA verify) or SM2.
VerifyingKey = PublicKeyTypes | sm2.Sm2PublicKey
#: The hash name of SM2 signatures (SM2 with SM3, GB/T 32918.2; signature = 64-byte r || s).
SM3_HASH_NAME: Final = "SM3"

#: Upper bound on a peer-chosen PBKDF2 iteration count (CPU-abuse guard; Java clients use 10000).
MAX_PBKDF2_ITERATIONS: Final = 1_000_000
#: Upper bound on a peer-chosen PBKDF2 key length in bits (Java clients use 160).
MAX_PBKDF2_KEY_BITS: Final = 512


def _at_least(version: Version, major: int, minor: int) -> bool:
    """Java ``hasEqualOrGreaterVersion`` for a 2.x target: major 5 is a very old 2.0 client."""
    if version[0] == 5:
        return False
    return version >= (major, minor)


# -- request digest (spec §1.6) ------------------------------------------------------------------
class DigestType(IntEnum):
    """Hash type byte of a request digest (spec §1.6)."""

    OLD_FORMAT = 0  #: MD5, written as a length-prefixed byte-array (peers before 2.1)
    MD5 = 1  #: MD5, 16 bytes
    SHA1 = 2  #: SHA-1, 20 bytes
    SHA256 = 3  #: SHA-256, 32 bytes (2.7 and later; what 2.11 peers use, spec §0.2)

    @property
    def size(self) -> int:
        """The digest length in bytes."""
        return 20 if self is DigestType.SHA1 else 32 if self is DigestType.SHA256 else 16


_DIGEST_HASH: Final = {0: "md5", 1: "md5", 2: "sha1", 3: "sha256"}


def request_digest(header_and_body: bytes, hash_type: int) -> bytes:
    """Digest of a request's 24-byte header + body, without envelope or credential (spec §1.6).

    Raises :class:`ProtocolViolation` for an unknown hash type.
    """
    name = _DIGEST_HASH.get(hash_type)
    if name is None:
        raise ProtocolViolation(f"unknown request digest hash type {hash_type}")
    return hashlib.new(name, header_and_body).digest()


def digest_type_for_version(version: Version) -> DigestType:
    """The hash type a responder uses for a request digest at ``version`` (Java reference)."""
    if not _at_least(version, 2, 1):
        return DigestType.OLD_FORMAT
    return DigestType.SHA256 if _at_least(version, 2, 7) else DigestType.SHA1


def generate_nonce() -> bytes:
    """16 random bytes for a 402 challenge (spec §3.1), from ``os.urandom``."""
    return os.urandom(16)


# -- secret-key answers (spec §3.2) ------------------------------------------------------------
class SecretKeyAlgorithm(IntEnum):
    """Algorithm byte of a secret-key challenge answer (spec §3.2)."""

    OLD_FORMAT = 0  #: raw MD5(key || data || key), no algorithm byte (peers before 2.1)
    MD5 = 1  #: MD5(key || data || key)
    SHA1 = 2  #: SHA-1(key || data || key); Java clients 2.1 to 2.6
    SHA256 = 3  #: SHA-256(key || data || key)
    HMAC_SHA1 = 0x12  #: HMAC-SHA1(key, data)
    HMAC_SHA256 = 0x13  #: HMAC-SHA256(key, data)
    PBKDF2_HMAC_SHA1 = 0x22  #: HMAC-SHA1(PBKDF2-HMAC-SHA1(key, salt, n, bits), data); 2.7+


_SANDWICH: Final = {0: "md5", 1: "md5", 2: "sha1", 3: "sha256", 0x12: "sha1", 0x13: "sha256"}


def secret_key_algorithm_for_version(version: Version) -> SecretKeyAlgorithm:
    """What a Java client answers with at ``version`` (pass the lower of the challenge's version
    and its suggested version, as Java does)."""
    if not _at_least(version, 2, 1):
        return SecretKeyAlgorithm.OLD_FORMAT
    if _at_least(version, 2, 7):
        return SecretKeyAlgorithm.PBKDF2_HMAC_SHA1
    return SecretKeyAlgorithm.SHA1


def hashed_secret_key(password: bytes) -> bytes:
    """The "hashed" HS_SECKEY form (spec §2.5): lower-case hex SHA-1 of the password, as ASCII.

    A client whose HS_SECKEY is stored hashed uses this, not the password, as the key.
    """
    return hashlib.sha1(password).hexdigest().encode("ascii")


def java_pbkdf2_hmac_sha1(password: bytes, salt: bytes, iterations: int, key_bits: int) -> bytes:
    """PBKDF2-HMAC-SHA1 exactly as the Java reference derives it (``Util.doPBKDF2``).

    Java widens each password byte to a char (ISO-8859-1) and the JDK's PBKDF2 then encodes the
    chars as UTF-8, so bytes >= 0x80 become two bytes; the key is ``key_bits // 8`` bytes.
    """
    java_password = password.decode("latin-1").encode("utf-8")
    return hashlib.pbkdf2_hmac("sha1", java_password, salt, iterations, key_bits // 8)


def _sandwich_or_hmac(alg: int, secret: bytes, data: bytes) -> bytes:
    name = _SANDWICH[alg]
    if alg in (SecretKeyAlgorithm.HMAC_SHA1, SecretKeyAlgorithm.HMAC_SHA256):
        return hmac.new(secret, data, name).digest()
    return hashlib.new(name, secret + data + secret).digest()


def make_secret_key_answer(
    secret: bytes,
    nonce: bytes,
    digest: bytes,
    alg: SecretKeyAlgorithm | int,
    *,
    salt: bytes | None = None,
    iterations: int = 10000,
    key_bits: int = 160,
) -> bytes:
    """The ``signedResponse`` of an HS_SECKEY challenge answer (spec §3.2).

    ``digest`` is the raw request digest from the challenge (no hash-type byte). For
    ``PBKDF2_HMAC_SHA1`` the result is ``0x22, byte-array salt, int4 iterations, int4 key_bits,
    byte-array hmac``; ``salt`` defaults to 16 bytes from ``os.urandom``. ``OLD_FORMAT`` gives
    the bare 16-byte MD5 with no algorithm byte. Raises ``ValueError`` for an empty secret, an
    unknown algorithm or PBKDF2 parameters outside the limits :func:`verify_secret_key_answer`
    accepts.
    """
    if not secret:
        raise ValueError("empty secret key")
    data = nonce + digest
    if alg == SecretKeyAlgorithm.PBKDF2_HMAC_SHA1:
        if salt is None:
            salt = os.urandom(16)
        if not _pbkdf2_params_ok(salt, iterations, key_bits):
            raise ValueError("PBKDF2 parameters out of range")
        key = java_pbkdf2_hmac_sha1(secret, salt, iterations, key_bits)
        mac = hmac.new(key, data, "sha1").digest()
        w = Writer().u8(alg).byte_array(salt).u32(iterations).u32(key_bits).byte_array(mac)
        return w.getvalue()
    if alg not in _SANDWICH:
        raise ValueError(f"unknown secret key algorithm {alg}")
    mac = _sandwich_or_hmac(alg, secret, data)
    return mac if alg == SecretKeyAlgorithm.OLD_FORMAT else bytes([alg]) + mac


def _pbkdf2_params_ok(salt: bytes, iterations: int, key_bits: int) -> bool:
    # Java rejects an empty salt, iterations <= 0 and a key shorter than one byte. It would take
    # any bit count (rounding down); whole bytes only here, so each answer has one encoding.
    iterations_ok = 1 <= iterations <= MAX_PBKDF2_ITERATIONS
    bits_ok = 8 <= key_bits <= MAX_PBKDF2_KEY_BITS and key_bits % 8 == 0
    return bool(salt) and iterations_ok and bits_ok


def verify_secret_key_answer(
    secret: bytes, nonce: bytes, digest: bytes, signed_response: bytes, *, old_format: bool = False
) -> bool:
    """Check an HS_SECKEY ``signedResponse`` against the stored secret (spec §3.2, §3.1 step 4).

    ``secret`` is the HS_SECKEY value data as stored (plain or hashed, spec §2.5). Set
    ``old_format`` when the answering message's version is below 2.1 (bare MD5, no alg byte).
    Returns ``False`` for a wrong MAC and also for anything malformed: unknown algorithm byte
    (including 0 after the 2.1 format), bad PBKDF2 encoding, trailing bytes, PBKDF2 iterations
    above :data:`MAX_PBKDF2_ITERATIONS`, key bits above :data:`MAX_PBKDF2_KEY_BITS` or not
    whole bytes, or an empty stored secret. Compares in constant time.
    """
    if not secret:
        return False
    data = nonce + digest
    if old_format:
        expected = _sandwich_or_hmac(SecretKeyAlgorithm.OLD_FORMAT, secret, data)
        return hmac.compare_digest(expected, signed_response)
    if not signed_response:
        return False
    alg, given = signed_response[0], signed_response[1:]
    if alg == SecretKeyAlgorithm.PBKDF2_HMAC_SHA1:
        try:
            r = Reader(given)
            salt, iterations, key_bits, given = r.byte_array(), r.u32(), r.u32(), r.byte_array()
            r.expect_end("PBKDF2 answer")
        except ProtocolViolation:
            return False
        if not _pbkdf2_params_ok(salt, iterations, key_bits):
            return False
        key = java_pbkdf2_hmac_sha1(secret, salt, iterations, key_bits)
        return hmac.compare_digest(hmac.new(key, data, "sha1").digest(), given)
    if alg == SecretKeyAlgorithm.OLD_FORMAT or alg not in _SANDWICH:
        return False
    return hmac.compare_digest(_sandwich_or_hmac(alg, secret, data), given)


# -- public-key answers and signature names (spec §3.2, §0.3) ------------------------------
# Hash names exactly as Java's Util.getSigIdFromHashAlgId accepts them (byte-exact, case too).
_SIG_HASHES: Final[dict[bytes, type[hashes.HashAlgorithm]]] = {
    b"SHA1": hashes.SHA1,
    b"SHA-1": hashes.SHA1,
    b"\x02": hashes.SHA1,
    b"SHA-256": hashes.SHA256,
    b"SHA256": hashes.SHA256,
    b"\x03": hashes.SHA256,
    b"MD5": hashes.MD5,
    b"\x01": hashes.MD5,
}


def default_signature_hash(version: Version, key: PrivateKey | PublicKey) -> str:
    """The hash name the Java reference signs with at ``version`` (challenge answers and
    certified responses): ``SHA-256`` from 2.7, except ``SHA1`` for DSA keys before 2.11.
    SM2 keys always sign with ``SM3``."""
    if isinstance(key, sm2.Sm2PrivateKey | sm2.Sm2PublicKey):
        return SM3_HASH_NAME
    is_dsa = isinstance(key, dsa.DSAPrivateKey | dsa.DSAPublicKey)
    if _at_least(version, 2, 11) or (_at_least(version, 2, 7) and not is_dsa):
        return "SHA-256"
    return "SHA1"


def sign_data(key: PrivateKey, hash_name: str, data: bytes) -> bytes:
    """``data`` signed as Java's ``<hash>with<RSA|DSA>`` does (``hash_name`` as on the wire:
    ``SHA1``, ``SHA-256``, ``MD5``); ValueError for a pair Java has no algorithm for."""
    return _sign(key, hash_name, data)


def verify_data(key: VerifyingKey, hash_name: bytes, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is ``key``'s :func:`sign_data` of ``data``; False for any unknown
    hash name or key type."""
    return _verify(key, hash_name, signature, data)


def _sign(key: PrivateKey, hash_name: str, data: bytes) -> bytes:
    if isinstance(key, sm2.Sm2PrivateKey):
        if hash_name != SM3_HASH_NAME:
            raise ValueError(f"SM2 keys sign with SM3, not {hash_name!r}")
        return sm2.sign(key, data)
    algorithm = _SIG_HASHES.get(hash_name.encode("utf-8"))
    if algorithm is None:
        raise ValueError(f"unknown signature hash name {hash_name!r}")
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), algorithm())
    if isinstance(key, dsa.DSAPrivateKey) and algorithm is not hashes.MD5:
        return key.sign(data, algorithm())
    raise ValueError(f"cannot sign with {hash_name!r} and {type(key).__name__}")


def _verify(key: VerifyingKey, hash_name: bytes, signature: bytes, data: bytes) -> bool:
    if isinstance(key, sm2.Sm2PublicKey):
        return hash_name == SM3_HASH_NAME.encode() and sm2.verify(key, data, signature)
    algorithm = _SIG_HASHES.get(hash_name)
    if algorithm is None:
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm())
        elif isinstance(key, dsa.DSAPublicKey) and algorithm is not hashes.MD5:
            key.verify(signature, data, algorithm())  # Java has no MD5withDSA
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def make_public_key_answer(
    private_key: PrivateKey, nonce: bytes, digest: bytes, hash_name: str = "SHA-256"
) -> bytes:
    """The ``signedResponse`` of an HS_PUBKEY challenge answer (spec §3.2): ``UTF8 hash_name`` +
    ``byte-array signature`` over ``nonce || digest``. Raises ``ValueError`` for a hash name
    Java does not know or MD5 with DSA."""
    signature = _sign(private_key, hash_name, nonce + digest)
    return Writer().utf8(hash_name).byte_array(signature).getvalue()


def verify_public_key_answer(
    public_key: VerifyingKey, nonce: bytes, digest: bytes, signed_response: bytes
) -> bool:
    """Check an HS_PUBKEY ``signedResponse`` (spec §3.2). Hash names: ``SHA1``, ``SHA-1``,
    ``SHA-256``, ``SHA256``, ``MD5`` (RSA only). ``False`` for a bad signature, a malformed
    answer, trailing bytes, or a key that is not RSA/DSA."""
    try:
        r = Reader(signed_response)
        hash_name, signature = r.byte_array(), r.byte_array()
        r.expect_end("public key answer")
    except ProtocolViolation:
        return False
    return _verify(public_key, hash_name, signature, nonce + digest)


# -- message signatures (spec §0.1, §1.7, §3.3) ----------------------------------------------------
_IDS: Final = struct.Struct(">III")


def signed_bytes(
    version: Version,
    suggested: Version,
    session_id: int,
    request_id: int,
    session_counter: int,
    header_and_body: bytes,
) -> bytes:
    """What an ``HS_SIGNED`` signature covers (spec §0.1; Java ``AbstractMessage.signMessage``).

    * 2.8 and later: ``major, minor, suggestedMajor, suggestedMinor`` + ``int4 sessionId,
      requestId, sessionCounter`` + header and body (verified against the recordings).
    * 2.7: the same without the suggested version.
    * 2.6: Java's offset bug: ``major, minor``, the top two bytes of ``sessionId``, the
      ``sessionCounter``, then six zero bytes, then header and body.
    * before 2.6: the header and body alone.

    ``version`` and ``suggested`` are the envelope's; a suggested major of 0 means "same as
    ``version``" (as Java decodes it). ``session_counter`` is the credential's signer index.
    """
    if not _at_least(version, 2, 6):
        return header_and_body
    if suggested[0] == 0:
        suggested = version
    prefix = bytearray(version)
    if _at_least(version, 2, 8):
        prefix += bytes(suggested)
    ids = _IDS.pack(session_id, request_id, session_counter)
    if _at_least(version, 2, 7):
        prefix += ids
    else:
        # Encoder.writeInt returns 4 and Java assigned it to the offset: requestId and then
        # sessionCounter both land at offset 4, over sessionId's low bytes.
        prefix += ids[0:2] + ids[8:12] + bytes(6)
    return bytes(prefix) + header_and_body


def sign_message(
    private_key: PrivateKey,
    version: Version,
    suggested: Version,
    session_id: int,
    request_id: int,
    session_counter: int,
    header_and_body: bytes,
    *,
    hash_name: str | None = None,
) -> Credential:
    """An ``HS_SIGNED`` credential for a message (spec §3.3), as the Java server writes it:
    empty signer handle, signer index = ``session_counter``. ``hash_name`` defaults to
    :func:`default_signature_hash`. Raises ``ValueError`` for an unusable hash name."""
    if hash_name is None:
        hash_name = default_signature_hash(version, private_key)
    data = signed_bytes(
        version, suggested, session_id, request_id, session_counter, header_and_body
    )
    signature = _sign(private_key, hash_name, data)
    return Credential(
        signer_index=session_counter, type=HS_SIGNED, digest_alg=hash_name, signature=signature
    )


def verify_message_signature(
    public_key: VerifyingKey,
    credential: Credential,
    version: Version,
    suggested: Version,
    session_id: int,
    request_id: int,
    header_and_body: bytes,
) -> bool:
    """Check an ``HS_SIGNED`` (or legacy ``HS_DSAPUBKEY``) credential (spec §0.1, §3.3).

    The session counter is taken from the credential's signer index, as Java does. ``False``
    for another credential type, an unknown hash name or a bad signature.
    """
    if credential.type not in (HS_SIGNED, HS_DSAPUBKEY):
        return False
    data = signed_bytes(
        version, suggested, session_id, request_id, credential.signer_index, header_and_body
    )
    return _verify(public_key, credential.digest_alg.encode("utf-8"), credential.signature, data)
