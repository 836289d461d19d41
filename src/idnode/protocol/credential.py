"""The credential section of a message (RFC 3652 §2.2.4, spec §1.7).

A message ends with ``int4 credLen`` and ``credLen`` bytes of credential; ``credLen = 0`` means
the message is unsigned. :class:`Credential` is the part *after* ``credLen``::

    u8           version         0
    u8           reserved        0
    int2         options         0
    UTF8-String  signer handle   Java writes an empty string
    int4         signer index    Java: the session counter (0 outside a session)
    UTF8-String  type            HS_SIGNED, HS_MAC, legacy HS_DSAPUBKEY
    int4         signedInfo length (of the two fields below)
    UTF8-String  digest algorithm  e.g. SHA-256, SHA1, HMAC-SHA256
    byte-array   signature

Decoding is strict: the signedInfo length must match the two fields it covers and nothing may
follow them. The reference Java decoder ignores both, but the Java encoder never writes anything
else, so a strict decoder re-encodes every credential byte for byte. Computing and checking
signatures is :mod:`idnode.protocol.auth`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

from idnode.errors import ProtocolViolation
from idnode.protocol.wire import Reader, Writer

__all__ = ["HS_DSAPUBKEY", "HS_MAC", "HS_SIGNED", "Credential"]

#: Public-key signature by the signer (spec §3.3): certified responses.
HS_SIGNED = "HS_SIGNED"
#: MAC with a session key (spec §3.3).
HS_MAC = "HS_MAC"
#: Legacy name for a public-key signature; verified like ``HS_SIGNED``.
HS_DSAPUBKEY = "HS_DSAPUBKEY"


@dataclass(frozen=True, slots=True, kw_only=True)
class Credential:
    """One decoded credential section (spec §1.7). Fields are keyword-only."""

    version: int = 0
    reserved: int = 0
    options: int = 0
    signer_handle: str = ""
    #: The signer's index (RFC); the Java reference puts its session counter here.
    signer_index: int = 0
    type: str
    digest_alg: str
    signature: bytes

    def __post_init__(self) -> None:
        for name, value, limit in (
            ("version", self.version, 0xFF),
            ("reserved", self.reserved, 0xFF),
            ("options", self.options, 0xFFFF),
            ("signer_index", self.signer_index, 0xFFFFFFFF),
        ):
            if not 0 <= value <= limit:
                raise ProtocolViolation(f"credential {name} out of range: {value}")
        if not isinstance(self.signature, bytes):
            raise TypeError("Credential.signature must be bytes")

    @classmethod
    def from_bytes(cls, data: bytes) -> Credential:
        """Decode the bytes that follow ``int4 credLen`` (which must not be 0).

        Raises :class:`~idnode.errors.ProtocolViolation` if the bytes are malformed, the
        signedInfo length disagrees with its contents, or bytes are left over.
        """
        r = Reader(data)
        version = r.u8()
        reserved = r.u8()
        options = r.u16()
        signer_handle = r.utf8("credential signer handle")
        signer_index = r.u32()
        cred_type = r.utf8("credential type")
        with r.restrict_to(r.u32(), "credential signedInfo") as s:
            digest_alg = s.utf8("credential digest algorithm")
            signature = s.byte_array("credential signature")
        r.expect_end("credential")
        return cls(
            version=version,
            reserved=reserved,
            options=options,
            signer_handle=signer_handle,
            signer_index=signer_index,
            type=cred_type,
            digest_alg=digest_alg,
            signature=signature,
        )

    def to_bytes(self) -> bytes:
        """Encode the credential, without the leading ``int4 credLen``."""
        signed_info = Writer().utf8(self.digest_alg).byte_array(self.signature).getvalue()
        w = Writer().u8(self.version).u8(self.reserved).u16(self.options)
        w.utf8(self.signer_handle).u32(self.signer_index).utf8(self.type)
        return w.byte_array(signed_info).getvalue()
