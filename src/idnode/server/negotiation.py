"""Building responses to requests: version negotiation, flags, request digests.

Pure functions over :class:`~idnode.protocol.message.Message` (spec §0.7, §0.9, §1.4, §1.6).
"""

from __future__ import annotations

import hashlib

from idnode.protocol.bodies import Body, ChallengeBody, ErrorBody, RequestDigest
from idnode.protocol.codes import SUPPORTED_VERSION, OpFlag, ResponseCode
from idnode.protocol.message import Message

__all__ = ["challenge", "digest_request", "error_response", "response_to", "response_version"]

# Flags a response copies from its request; everything else is the server's to set.
_ECHOED = OpFlag.CT | OpFlag.ENC | OpFlag.REC | OpFlag.CA | OpFlag.KA | OpFlag.PO | OpFlag.RD


def response_version(request: Message) -> tuple[int, int]:
    """The version to answer in: the request's suggested (highest) version, capped at ours.

    A suggested version of 0.0 (RFC-era clients, where those bytes are reserved) means the
    request's own version.
    """
    suggested = request.suggested_version
    if suggested == (0, 0):
        suggested = request.version
    return min(suggested, SUPPORTED_VERSION)


def digest_request(request: Message, version: tuple[int, int]) -> RequestDigest:
    """Digest of the request's header and body, by the responder's version (spec §1.6):
    MD5 old format below 2.1, SHA-1 from 2.1, SHA-256 from 2.7."""
    data = request.header_and_body()
    if version < (2, 1):
        return RequestDigest(0, hashlib.md5(data).digest())
    if version >= (2, 7):
        return RequestDigest(3, hashlib.sha256(data).digest())
    return RequestDigest(2, hashlib.sha1(data).digest())


def response_to(
    request: Message,
    code: int,
    body: Body,
    *,
    site_info_serial: int,
    digest: bool | None = None,
    session_id: int | None = None,
) -> Message:
    """A response to ``request``: same opcode and request id, echoed flags plus AT.

    The request digest is attached when the request asked for it (RD) or ``digest`` is True.
    """
    version = response_version(request)
    with_digest = request.has(OpFlag.RD) if digest is None else digest
    flags = (request.flags & _ECHOED) | OpFlag.AT
    flags = flags | OpFlag.RD if with_digest else flags & ~OpFlag.RD
    return Message(
        op=request.op,
        body=body,
        response_code=code,
        flags=int(flags),
        site_info_serial=site_info_serial,
        recursion_count=request.recursion_count,
        expiration=request.expiration,
        request_id=request.request_id,
        session_id=request.session_id if session_id is None else session_id,
        version=version,
        suggested_version=SUPPORTED_VERSION,
        request_digest=digest_request(request, version) if with_digest else None,
    )


def error_response(
    request: Message, code: int, message: str = "", *, site_info_serial: int
) -> Message:
    """An error response: one byte-array with the UTF-8 message (spec §1.11)."""
    return response_to(
        request, code, ErrorBody(message.encode("utf-8")), site_info_serial=site_info_serial
    )


def challenge(
    request: Message,
    nonce: bytes,
    digest: RequestDigest,
    session_id: int,
    *,
    site_info_serial: int,
) -> Message:
    """A 402 challenge carrying ``nonce`` and the request ``digest`` (spec §3.1, §0.9): in
    the RD prefix from 2.1 on, after the nonce in the old format before."""
    old = response_version(request) < (2, 1)
    return response_to(
        request,
        ResponseCode.AUTHENTICATION_NEEDED,
        ChallengeBody(nonce, old_digest=digest.digest if old else None),
        site_info_serial=site_info_serial,
        digest=not old,
        session_id=session_id,
    )
