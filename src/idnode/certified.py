"""Certified responses (spec §3.3): the keys that may sign a server's answers, and the check.

A request with the CT flag asks the server to sign its response (``HS_SIGNED`` credential over
:func:`idnode.protocol.auth.signed_bytes`); with RD as well the response carries the digest of
the request it answers, inside what is signed, so an answer cannot be replayed for another
request. :func:`check_response` refuses (:class:`UnverifiedAnswer`) a response that is
unsigned, malformed, for another request, or whose signature does not verify with the keys of
the server as its HS_SITE publishes them.

The keys of a server are its HS_SITE public key and, after a key rotation
(``idnode key rotate-server``), the keys it retired, each listed until an expiry time as a site
attribute ``idnode.retired-key`` = ``<serverId> <expires, epoch seconds> <hex HS_PUBKEY>`` so
that what the old key signed still verifies for a while. Clients that do not know the
attribute ignore it (HS_SITE attributes are free-form).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from idnode.crypto import sm2
from idnode.errors import HandleError, ProtocolViolation
from idnode.protocol import auth
from idnode.protocol.codes import OpFlag
from idnode.protocol.credential import Credential
from idnode.protocol.message import Message
from idnode.protocol.types.hs_pubkey import PublicKeyData
from idnode.protocol.types.hs_site import Attribute, ServerInfo, SiteInfo

__all__ = [
    "CERTIFIED_FLAGS",
    "RETIRED_KEY_ATTRIBUTE",
    "RetiredKey",
    "ServerKeys",
    "UnverifiedAnswer",
    "check_response",
    "load_retired",
    "public_key_pem",
    "public_keys_from_pem",
    "retired_attributes",
    "retired_keys",
    "save_retired",
]

#: What a client sets to get answers it can check: CT (sign) and RD (bind to the request).
CERTIFIED_FLAGS = int(OpFlag.CT | OpFlag.RD)
RETIRED_KEY_ATTRIBUTE = "idnode.retired-key"
_DIGESTS = {0: hashlib.md5, 1: hashlib.md5, 2: hashlib.sha1, 3: hashlib.sha256}


class UnverifiedAnswer(ProtocolViolation):
    """A response to a certified request that is unsigned, or whose signature does not verify
    with the server's published keys: forged, altered on the way, or from another server."""


@dataclass(frozen=True, slots=True)
class RetiredKey:
    """A server key retired by a rotation, still accepted until ``expires`` (epoch seconds)."""

    server_id: int
    expires: int
    key: bytes  # HS_PUBKEY encoding

    def attribute(self) -> Attribute:
        return Attribute(RETIRED_KEY_ATTRIBUTE, f"{self.server_id} {self.expires} {self.key.hex()}")

    @classmethod
    def from_attribute(cls, attribute: Attribute) -> RetiredKey | None:
        """None when ``attribute`` is not a well-formed retired-key attribute."""
        if attribute.name != RETIRED_KEY_ATTRIBUTE:
            return None
        parts = attribute.value.split()
        try:
            server_id, expires, key = int(parts[0]), int(parts[1]), bytes.fromhex(parts[2])
        except (IndexError, ValueError):
            return None
        if len(parts) != 3:
            return None
        return cls(server_id, expires, key)


def retired_keys(site: SiteInfo) -> list[RetiredKey]:
    """The well-formed retired-key attributes of ``site`` (expired ones included)."""
    found = (RetiredKey.from_attribute(a) for a in site.attributes)
    return [r for r in found if r is not None]


@dataclass(frozen=True)
class ServerKeys:
    """The public keys whose signatures are accepted for one server's answers."""

    keys: tuple[auth.VerifyingKey, ...]
    name: str = "the server"

    @classmethod
    def of(
        cls, server: ServerInfo, site: SiteInfo | None = None, *, now: float | None = None
    ) -> ServerKeys:
        """``server``'s HS_SITE key, plus the keys ``site`` lists as retired for it and not
        yet expired at ``now`` (default: the current time). Unusable keys are left out."""
        now = time.time() if now is None else now
        encoded = [server.public_key]
        if site is not None:
            retired = retired_keys(site)
            encoded += [
                r.key for r in retired if r.server_id == server.server_id and r.expires > now
            ]
        keys: list[auth.VerifyingKey] = []
        for data in encoded:
            try:
                keys.append(PublicKeyData.from_bytes(data).to_public_key())
            except (HandleError, ValueError):
                continue
        return cls(tuple(keys), f"server {server.server_id}")

    @classmethod
    def for_site(cls, site: SiteInfo, *, now: float | None = None) -> ServerKeys:
        """The keys of every server of ``site`` (a one-server site, typically), retired ones
        included: for a client configured with the site rather than one of its servers."""
        keys: list[auth.VerifyingKey] = []
        for server in site.servers:
            keys.extend(cls.of(server, site, now=now).keys)
        return cls(tuple(keys), "the site")


def check_response(
    response: Message, request: Message, keys: ServerKeys, *, original: Message | None = None
) -> None:
    """Raise :class:`UnverifiedAnswer` unless ``response`` to the certified ``request`` is
    signed by one of ``keys`` over the bytes as received and, when the request set RD,
    carries the digest of ``request``; of ``original`` instead when ``request`` is the answer
    to a challenge to ``original`` (the server answers the original request then)."""
    if response.request_id != request.request_id:
        raise UnverifiedAnswer("the signed answer is for another request")
    if not response.credential:
        raise UnverifiedAnswer(f"the answer is not signed (asked {keys.name} for a certified one)")
    try:
        credential = Credential.from_bytes(response.credential)
    except ProtocolViolation as exc:
        raise UnverifiedAnswer(f"the answer's signature is malformed: {exc}") from exc
    if request.has(OpFlag.RD):
        digest = response.request_digest
        hasher = None if digest is None else _DIGESTS.get(digest.hash_type)
        if digest is None or hasher is None:
            raise UnverifiedAnswer("the signed answer does not say which request it answers")
        answered = request if original is None else original
        ours = hasher(answered.encode_header_and_body()).digest()
        if not hmac.compare_digest(ours, digest.digest):
            raise UnverifiedAnswer("the signed answer is for another request")
    if not keys.keys:
        raise UnverifiedAnswer(f"{keys.name} publishes no usable key to check its answers with")
    data = response.header_and_body()
    for key in keys.keys:
        if auth.verify_message_signature(
            key,
            credential,
            response.version,
            response.suggested_version,
            response.session_id,
            response.request_id,
            data,
        ):
            return
    raise UnverifiedAnswer(
        f"the answer's signature does not verify with the key of {keys.name} "
        "(forged or altered on the way)"
    )


def certify_request(request: Message) -> Message:
    """``request`` with CT and RD set."""
    return request.replace(flags=request.flags | CERTIFIED_FLAGS)


def drop_expired(site: SiteInfo, now: float) -> Sequence[Attribute]:
    """The attributes of ``site`` without retired keys that expired before ``now``."""
    out = []
    for attribute in site.attributes:
        retired = RetiredKey.from_attribute(attribute)
        if retired is None or retired.expires > now:
            out.append(attribute)
    return out


# -- the retired keys of a node (kept in its directory; idnode key rotate-server) -----------
RETIRED_KEYS_FILE = "retired-server-keys"


def load_retired(directory: Path) -> list[RetiredKey]:
    """The retired keys listed in ``directory``/retired-server-keys (one
    ``<serverId> <expires> <hex HS_PUBKEY>`` a line); none when the file does not exist.
    Malformed lines are skipped."""
    path = directory / RETIRED_KEYS_FILE
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return []
    found = (
        RetiredKey.from_attribute(Attribute(RETIRED_KEY_ATTRIBUTE, line))
        for line in text.splitlines()
    )
    return [r for r in found if r is not None]


def save_retired(directory: Path, keys: Sequence[RetiredKey]) -> None:
    text = "".join(f"{r.attribute().value}\n" for r in keys)
    (directory / RETIRED_KEYS_FILE).write_text(text, encoding="ascii")


def retired_attributes(directory: Path, now: float | None = None) -> tuple[Attribute, ...]:
    """The site attributes listing the node's retired keys that have not expired."""
    now = time.time() if now is None else now
    return tuple(r.attribute() for r in load_retired(directory) if r.expires > now)


# -- server keys as PEM (key files a verifier is configured with) ----------------------------
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]*PUBLIC KEY)-----.*?-----END \1-----", re.DOTALL)


def public_keys_from_pem(data: bytes) -> tuple[auth.PublicKey, ...]:
    """Every public-key PEM block of ``data`` (``PUBLIC KEY``, SubjectPublicKeyInfo, or
    ``RSA PUBLIC KEY``) as an RSA, DSA or SM2 key; ValueError when there is none, or for a
    block that is not one of those (an EC key on another curve, say: HS_SITE has no key type
    for it)."""
    keys: list[auth.PublicKey] = []
    for match in _PEM_BLOCK.finditer(data):
        block = match.group(0) + b"\n"
        try:
            key: object = serialization.load_pem_public_key(block)
        except (ValueError, UnsupportedAlgorithm) as exc:
            try:  # the SM2 curve, which cryptography does not know
                key = sm2.Sm2PublicKey.from_pem(block)
            except sm2.Sm2Error:
                raise ValueError(f"unreadable public key: {exc}") from exc
        if not isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey | sm2.Sm2PublicKey):
            raise ValueError(f"not an RSA, DSA or SM2 public key: {type(key).__name__}")
        keys.append(key)
    if not keys:
        raise ValueError("no PEM public key")
    return tuple(keys)


def public_key_pem(key: auth.PublicKey) -> bytes:
    """``key`` as SubjectPublicKeyInfo PEM (what :func:`public_keys_from_pem` reads)."""
    if isinstance(key, sm2.Sm2PublicKey):
        return key.to_pem()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
