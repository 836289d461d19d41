"""The keys of app identities as the console shows and takes them: a key pasted as PEM, or a
key pair made here whose private key goes to the browser once (it is not written anywhere
on the node); and the keys found on an app's identity handle."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from idnode.console.web import Form
from idnode.errors import InvalidValue, ProtocolViolation
from idnode.industry.accounts import DISABLED_KEY_TYPE, public_key_data
from idnode.protocol.types.hs_pubkey import PublicKeyData, dump_private_key_pem
from idnode.protocol.values import HandleValue

__all__ = ["RSA_BITS", "AppKey", "app_keys", "key_from_form"]

#: Size of the RSA keys made for apps (as ``idnode account add --role app``).
RSA_BITS = 2048
#: Longest PEM text accepted (an RSA 8192 public key is under 1.5 KB).
MAX_PEM = 16 * 1024


@dataclass(frozen=True)
class AppKey:
    index: int
    enabled: bool
    #: e.g. ``RSA 2048``
    kind: str
    #: The first 16 bytes of the SHA-256 of the HS_PUBKEY data, hex, in groups of 4.
    fingerprint: str


def app_keys(values: Iterable[HandleValue]) -> list[AppKey]:
    """The keys (HS_PUBKEY, and disabled ones) among an identity handle's values."""
    out = []
    for value in values:
        if value.type not in ("HS_PUBKEY", DISABLED_KEY_TYPE):
            continue
        try:
            data = PublicKeyData.from_bytes(value.data)
            numbers = data.integers
            bits = (numbers.get("n") or numbers.get("p") or 0).bit_length()
            name = data.key_type.removesuffix("_PUB_KEY")
            kind = f"{name} {bits}" if bits else name
        except (ProtocolViolation, ValueError):
            kind = "?"
        digest = hashlib.sha256(value.data).hexdigest()[:32]
        fingerprint = " ".join(digest[i : i + 4] for i in range(0, 32, 4))
        out.append(AppKey(value.index, value.type == "HS_PUBKEY", kind, fingerprint))
    return sorted(out, key=lambda k: k.index)


def key_from_form(form: Form) -> tuple[bytes, bytes]:
    """(HS_PUBKEY data, private key PEM or b"") from a form's ``key_source``: ``paste``
    takes the PEM public key in ``public_key``; anything else makes an RSA key pair.
    InvalidValue for a malformed or private key pasted."""
    if form.get("key_source") == "paste":
        text = form.get("public_key").strip()
        if not text:
            raise InvalidValue("paste a PEM public key (-----BEGIN PUBLIC KEY-----)")
        if len(text) > MAX_PEM:
            raise InvalidValue(f"the public key is longer than {MAX_PEM} characters")
        if "PRIVATE KEY" in text:
            raise InvalidValue("paste the public key only: a private key never leaves the app")
        try:
            return public_key_data(text.encode("utf-8")), b""
        except InvalidValue as exc:
            raise InvalidValue(f"malformed public key: {exc.message}") from None
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    public = PublicKeyData.from_public_key(key.public_key()).to_bytes()
    return public, dump_private_key_pem(key)
