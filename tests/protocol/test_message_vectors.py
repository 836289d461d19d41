"""Byte-exact wire vectors for the message codec (spec §1.3-§1.11).

Every file in ``tests/vectors/`` has an expected :class:`Message` written out below, field by
field. ``Message.decode(bytes) == expected`` pins the decoder and ``expected.encode() == bytes``
pins the encoder (h11 ``test_io.py`` / dnspython ``test_message.py`` style). Multi-datagram
files also pin UDP fragmentation and reassembly (spec §0.8). Finally every message recorded
from the reference server in ``../shared/vectors`` must decode and re-encode byte for byte.

Opaque field contents (HS_ADMIN data, keys, credentials, signed responses) are assembled with
``struct`` here, not with :mod:`idnode.protocol.wire`, so the expectations do not depend on the
code under test.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import struct

import pytest

from idnode.protocol.bodies import (
    ChallengeAnswer,
    ChallengeBody,
    CreateHandleResponse,
    EmptyBody,
    ErrorBody,
    HandleListBody,
    HandleRequest,
    ReferralBody,
    RemoveValuesRequest,
    RequestDigest,
    ResolutionRequest,
    ResolutionResponse,
    SessionSetupRequest,
    SessionSetupResponse,
    SiteInfoBody,
    ValuesRequest,
    VerifyChallengeRequest,
    VerifyChallengeResponse,
)
from idnode.protocol.framing import Reassembler, StreamDecoder, fragment
from idnode.protocol.message import Message
from idnode.protocol.values import HandleValue
from tests.vectors_util import Block, all_exchanges, load_exchange, reference_site

from .vectors import load_datagrams, names

# -- independent encoders for opaque contents (spec §1.2) --------------------------------------


def _u32(n: int) -> bytes:
    return struct.pack(">I", n)


def _barr(data: bytes) -> bytes:
    """byte-array: int4 length, then the bytes."""
    return _u32(len(data)) + data


def _utf8(s: str) -> bytes:
    return _barr(s.encode("utf-8"))


def _hs_admin(permissions: int, handle: str, index: int) -> bytes:
    """HS_ADMIN data (spec §2.1)."""
    return struct.pack(">H", permissions) + _utf8(handle) + _u32(index)


def _pubkey(key_type: str, *params: bytes, trailer: bytes = b"") -> bytes:
    """HS_PUBKEY data (spec §2.4): key type, int2 flags 0, big-endian integer parameters."""
    return _utf8(key_type) + b"\x00\x00" + b"".join(_barr(p) for p in params) + trailer


def _credential(signer_index: int, kind: str, algorithm: str, signature: bytes) -> bytes:
    """The credential section after its int4 length (spec §1.7)."""
    signed_info = _utf8(algorithm) + _barr(signature)
    return (
        b"\x00"  # version
        + b"\x00"  # reserved
        + b"\x00\x00"  # options
        + _utf8("")  # signer handle (the reference server writes an empty one)
        + _u32(signer_index)
        + _utf8(kind)
        + _barr(signed_info)
    )


def _seckey_answer(salt: bytes, hmac: bytes) -> bytes:
    """PBKDF2-HMAC-SHA1 signedResponse (spec §3.2, §0): 0x22, salt, iterations, bits, hmac."""
    return b"\x22" + _barr(salt) + _u32(10000) + _u32(160) + _barr(hmac)


def _pubkey_answer(signature: bytes) -> bytes:
    """HS_PUBKEY signedResponse (spec §3.2, §0.3)."""
    return _utf8("SHA-256") + _barr(signature)


def _value(index: int, vtype: str, data: bytes, timestamp: int = 0) -> HandleValue:
    """A value as the reference client sends them: relative TTL 86400, permissions 0x0E."""
    return HandleValue(
        index=index,
        type=vtype,
        data=data,
        ttl=86400,
        ttl_type=0,
        timestamp=timestamp,
        permissions=0x0E,
        references=(),
    )


# -- recorded constants (../shared/vectors) ----------------------------------------------------

ADMIN = "20.500.999/ADMIN"
T1 = "20.500.999/T1"
PREFIX_HANDLE = "0.NA/20.500.999"

REQUEST_FLAGS = 0x19000000  # REC | CA | PO (spec §0, observation 4)
RESPONSE_FLAGS = 0x99000000  # AT | REC | CA | PO
CHALLENGE_FLAGS = 0x99800000  # AT | REC | CA | PO | RD
V211 = (2, 11)

#: RFC 2409 Oakley group 2 prime, as a Java BigInteger byte array (leading 0x00).
DH_P = bytes.fromhex(
    "00ffffffffffffffffc90fdaa22168c234c4c6628b80dc1cd129024e088a67cc"
    "74020bbea63b139b22514a08798e3404ddef9519b3cd3a431b302b0a6df25f14"
    "374fe1356d6d51c245e485b576625e7ec6f44c42e9a637ed6b0bff5cb6f406b7"
    "edee386bfb5a899fa5ae9f24117c4b1fe649286651ece65381ffffffffffffff"
    "ff"
)
DH_CLIENT_Y = bytes.fromhex(
    "008e935132bdd6df7f3256ff85878df1e51d0cd4cb446e8dd83a57d84fb77038"
    "05850bd4eef071ede7eb8de655e80d9b6a65b2cebd25bd3864cb8ddde1f555cc"
    "0e3f56dff7d91e02255527ae258716e758c3b9782b649ff9999a3a9a3b690c47"
    "4a7cf0ae16ba039ccc2bc9ee74ad8cddef129440fc7f7e8fde8353f1c5167b72"
    "80"
)
DH_SERVER_Y = bytes.fromhex(
    "4d0de64a374f47bd7d51538a0b63507400fef0c7db6479d0969fd2cd3f8c998d"
    "7f6eac9b48a1f5a3d017adf7fa680f3cc6993a4e8cadaa40348ef085598aebef"
    "96ba71597270656a618973e9643260c57fb0846ae8df896af6aa62537dd78add"
    "3523e70797ea575752a9891b8a1b4bfbb4dbcd5a723d7e4fd523b3022b3598d4"
)
RSA_N = bytes.fromhex(
    "0091502975f6e01e71c89cc6e3b42a390746a840aebbe3698804b44e26438641"
    "aadb78c915713812345ea4f6f0acf4a8506cce2559d54209e1602984db2dfd83"
    "8f84fa6811833a376a06e2febc40ceaa5e87328b252b6cbc8903cbc24c79ddc5"
    "5734b5b6496c0642bf8f00dba4892c6bc0b22b7ce4291992bad142995176d10a"
    "b45648a0b71433e8f12b4bb5c26a044e6efda5d15a857236f782e9d51f632e5e"
    "df736aeca058a92417d8123c71794301e02637dd44ee7782dca56c39023b3ef9"
    "312320dd0225b1d3d6a98b0cbbbf4e34dff944b844194b3b74e160ff813a8fd4"
    "36d1514ce0cc7d489911524219aa5bbd321a8cd894506b8eb00f9b53281bbdff"
    "c1"
)
DSA_Q = bytes.fromhex("009760508f15230bccb292b982a2eb840bf0581cf5")
DSA_P = bytes.fromhex(
    "00fd7f53811d75122952df4a9c2eece4e7f611b7523cef4400c31e3f80b65126"
    "69455d402251fb593d8d58fabfc5f5ba30f6cb9b556cd7813b801d346ff26660"
    "b76b9950a5a49f9fe8047b1022c24fbba9d7feb7c61bf83b57e7c6a8a6150f04"
    "fb83f6d3c51ec3023554135a169132f675f3ae2b61d72aeff22203199dd14801"
    "c7"
)
DSA_G = bytes.fromhex(
    "00f7e1a085d69b3ddecbbcab5c36b857b97994afbbfa3aea82f9574c0b3d0782"
    "675159578ebad4594fe67107108180b449167123e84c281613b7cf09328cc8a6"
    "e13c167a8b547c8d28e0a3ae1e2bb3a675916ea37f0bfa213562f1fb627a0124"
    "3bcca4f1bea8519089a883dfe15ae59f06928b665e807b552564014c3bfecf49"
    "2a"
)
DSA_Y = bytes.fromhex(
    "29b75c1d8e036e8d3db4bf1856123c2b3d7967c80aa4960febcf0eb4e0fd0645"
    "81b4c9d8d301d38be3965b708ca5b597981b60a2ba3cf6618608f79fe722f15d"
    "afdf3cb001cd56712c8999162d82760eea0713a0e79fa9be32a9814844e4013e"
    "651ce2525c7c953de5c5a7d2fc74a0e53e151825865016594b41650cb04bd84b"
)
RSA_PUBKEY = _pubkey("RSA_PUB_KEY", b"\x01\x00\x01", RSA_N, trailer=_u32(0))
DSA_PUBKEY = _pubkey("DSA_PUB_KEY", DSA_Q, DSA_P, DSA_G, DSA_Y)

#: The server's HS_SITE record (../shared/vectors/README.md, 373 bytes; spec §2.2).
SITE = reference_site()

CERTIFIED_SIGNATURE = bytes.fromhex(
    "1076f43c1612243f20ec3f1693e6f7d88ea0b7bd8f70794430af5f944402728a"
    "61ca1e2a4078544e2f4a4550687dd2354be7e33bbf5179d08d317fc9e889fc80"
    "6f15348f4a9b2ce4daae1152e9eef8f98f3f08e046b579e5d3222a2d58ccf0d4"
    "be6cf3d6e21b3dd8b5ce8ec229056c559434b37b5194b38b9dde19bcef5a978c"
    "7e566cd9a56dbdf4bd806e1de24aad78d09ccf01dc3c078b09f018433b0e9cff"
    "e70897e41a5739038176457752e8f958e1054ee99be7060227e372a0ea365362"
    "06fa4ee24db55797400830d15c3cf7e085fc52b725140e2c6936d013fa67aeda"
    "914f6ac486aa44027ffe20bd2218f9236ae1b5b3c0ad19e1c82afc6d025bd565"
)
SESSION_SIGNATURE = bytes.fromhex(
    "2225779c4cdf2b6b2a461076901e9f0cc60d78685c2c7a22e68b098e98bb481a"
    "4b5e0fad5ee72948418b5578dd42d5d0fb4fb7824b508d1aefb385248bf9837d"
    "af90a774f032b0e4f5a6b57dbf134e678d39b60bc0ac1cb280e1ff3598731e74"
    "bf1c8723256db2678e4a636d59f17a5ef58929c42182dcd6f0776388d0a7d996"
    "f77eb4d8fbb39879253247099aee454d232429a63a1f1b0410e9635638af9daa"
    "13a56d66a11567a84911fb2a460a34239fef34d18e327d884270cc91ae746161"
    "462566599af203efe6e34e59c74806ec0194d9fa13a5577f6f0e8a90965c34c0"
    "ba274a22c7a7fe4fbe0b9bf31b4323066fd77afcfe08b183c3db956a01913e4d"
)
SESSION_MAC = bytes.fromhex("0f64c9255387515581325a4860c8eb1bb1dcbbcad6ef008cbdd42f3b3b20e88b")
RSA_ANSWER_SIGNATURE = bytes.fromhex(
    "5b0917fb78ae23e3663c351d0ed453db7c521dbfc2935815c0fbb8dc78d7df6b"
    "9380e2a7495040d8465bb120457c711a3afc0cfe325185ad7aab5c187a13b1ec"
    "cae2e4d5f43780004b16ec0293b51e4d6d8e434256bb2ab4a7403cd293cc7984"
    "5be0390b260c6194c2323d39aef6f20af76ecc3f9b3fefc745885244065310ac"
    "c21f2b00520748f56fb4422503b8aca6bd8b3d08ba14bc1905f5f841827092ce"
    "b0e72c1f9474e652901abb56e24781b653539bd92301d58678a0ff34e97e3a59"
    "150e10a98d04f886644c3145e1e3276570aa0c6393ca45ad6a8fd4c44113b8e8"
    "035c9a8138e28153ddcd39ddc0e4e8677bfb4b8a297c253f50d04a8831fefe07"
)
DSA_ANSWER_SIGNATURE = bytes.fromhex(
    "302c02142fd724c72431d4bc47522a341b666d4e10f53049021409df40c22fb07d592d0eca32907bc988442e1ac0"
)

#: tcp-create-seckey: the 402 nonce, the SHA-256 request digest and the HS_SECKEY answer.
CREATE_NONCE = bytes.fromhex("82e9761e28a6d23c1a9f4b3029d62f39")
CREATE_DIGEST = bytes.fromhex("4db4df1b4a00889bc6072fde0760a63f7a867a08c78822abb2fbb1c3271f775f")
CREATE_ANSWER = _seckey_answer(
    salt=bytes.fromhex("e2ce8b7301b19800f7ffef8f6b1b4a99"),
    hmac=bytes.fromhex("def1f582533df6577d59f342af7d826a3abb4b4a"),
)
#: Hand-built vectors: MD5 of create-request.hex's header and body, and a made-up nonce.
CREATE_MD5 = bytes.fromhex("4b5d859512932689cdbef5976ed4e7bc")
HAND_NONCE = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")

T1_VALUES_RESOLVED = (
    _value(100, "HS_ADMIN", _hs_admin(0x0FFF, ADMIN, 300), timestamp=1795930356),
    _value(1, "URL", b"https://example.org/item/1", timestamp=1795930356),
    _value(2, "EMAIL", b"user1@example.org", timestamp=1795930356),
)

# -- the expected messages, one per tests/vectors file -----------------------------------------

EXPECTED: dict[str, Message] = {
    "resolution-request": Message(
        op=1,
        body=ResolutionRequest(handle=T1, indexes=(), types=()),
        response_code=0,
        flags=REQUEST_FLAGS,
        site_info_serial=1,
        recursion_count=0,
        expiration=1795973560,
        request_id=1702153076,
        session_id=0,
        sequence=0,
        version=V211,
        suggested_version=V211,
        envelope_flags=0,
        reserved=0,
        request_digest=None,
        credential=b"",
    ),
    "resolution-request-type": Message(
        op=1,
        body=ResolutionRequest(handle=T1, indexes=(), types=("URL",)),
        flags=REQUEST_FLAGS,
        site_info_serial=1,
        expiration=1795973561,
        request_id=1001749372,
        version=V211,
        suggested_version=V211,
    ),
    "resolution-request-index": Message(
        op=1,
        body=ResolutionRequest(handle=T1, indexes=(2,), types=()),
        flags=REQUEST_FLAGS,
        site_info_serial=1,
        expiration=1795973561,
        request_id=1815751760,
        version=V211,
        suggested_version=V211,
    ),
    "resolution-response": Message(
        op=1,
        body=ResolutionResponse(handle=T1, values=T1_VALUES_RESOLVED),
        response_code=1,
        flags=RESPONSE_FLAGS,
        site_info_serial=1,
        recursion_count=0,
        expiration=1795973560,
        request_id=1702153076,
        session_id=0,
        sequence=0,
        version=V211,
        suggested_version=V211,
        envelope_flags=0,
        reserved=0,
        request_digest=None,
        credential=b"",
    ),
    "resolution-response-multidatagram": Message(
        op=1,
        body=ResolutionResponse(
            handle="20.500.999/BIG",
            values=(
                _value(100, "HS_ADMIN", _hs_admin(0x0FFF, ADMIN, 300), timestamp=1795930367),
                _value(1, "URL", b"https://example.org/big", timestamp=1795930367),
                _value(2, "DESC", b"0123456789" * 120, timestamp=1795930367),
            ),
        ),
        response_code=1,
        flags=RESPONSE_FLAGS,
        site_info_serial=1,
        expiration=1795973568,
        request_id=583217421,
        version=V211,
        suggested_version=V211,
    ),
    "error-not-found": Message(
        op=1,
        body=ErrorBody(message=b""),
        response_code=100,
        flags=RESPONSE_FLAGS,
        site_info_serial=1,
        expiration=1795973562,
        request_id=1590170755,
        version=V211,
        suggested_version=V211,
    ),
    "error-not-responsible": Message(
        op=1,
        body=ErrorBody(message=b"That prefix doesn't live here"),
        response_code=301,
        flags=RESPONSE_FLAGS,
        site_info_serial=1,
        expiration=1795973562,
        request_id=652580002,
        version=V211,
        suggested_version=V211,
    ),
    "challenge-402": Message(
        op=100,
        body=ChallengeBody(nonce=CREATE_NONCE, old_digest=None),
        response_code=402,
        flags=CHALLENGE_FLAGS,
        site_info_serial=1,
        expiration=1795973556,
        request_id=202346487,
        session_id=1,
        version=V211,
        suggested_version=V211,
        request_digest=RequestDigest(hash_type=3, digest=CREATE_DIGEST),
    ),
    "challenge-answer-seckey": Message(
        op=200,
        body=ChallengeAnswer(
            auth_type="HS_SECKEY",
            identity_handle=ADMIN,
            identity_index=300,
            signed_response=CREATE_ANSWER,
        ),
        flags=REQUEST_FLAGS,
        site_info_serial=0xFFFF,
        expiration=1795973556,
        request_id=721147990,
        session_id=1,
        version=V211,
        suggested_version=V211,
    ),
    "challenge-answer-pubkey": Message(
        op=200,
        body=ChallengeAnswer(
            auth_type="HS_PUBKEY",
            identity_handle=ADMIN,
            identity_index=301,
            signed_response=_pubkey_answer(RSA_ANSWER_SIGNATURE),
        ),
        flags=REQUEST_FLAGS,
        site_info_serial=0xFFFF,
        expiration=1795973602,
        request_id=1333850974,
        session_id=3,
        version=V211,
        suggested_version=V211,
    ),
    "challenge-answer-pubkey-dsa": Message(
        op=200,
        body=ChallengeAnswer(
            auth_type="HS_PUBKEY",
            identity_handle=ADMIN,
            identity_index=302,
            signed_response=_pubkey_answer(DSA_ANSWER_SIGNATURE),
        ),
        flags=REQUEST_FLAGS,
        site_info_serial=0xFFFF,
        expiration=1795973602,
        request_id=1414915504,
        session_id=4,
        version=V211,
        suggested_version=V211,
    ),
    "create-request": Message(
        op=100,
        body=ValuesRequest(
            handle=T1,
            values=(
                _value(100, "HS_ADMIN", _hs_admin(0x0FFF, ADMIN, 300)),
                _value(1, "URL", b"https://example.org/item/1"),
                _value(2, "EMAIL", b"user1@example.org"),
            ),
        ),
        response_code=0,
        flags=REQUEST_FLAGS,
        site_info_serial=1,
        recursion_count=0,
        expiration=1795973556,
        request_id=202346487,
        session_id=0,
        sequence=0,
        version=V211,
        suggested_version=V211,
        envelope_flags=0,
        reserved=0,
        request_digest=None,
        credential=b"",
    ),
    "create-response": Message(
        op=100,
        body=CreateHandleResponse(handle=T1),
        response_code=1,
        flags=RESPONSE_FLAGS,
        site_info_serial=1,
        expiration=1795973556,
        request_id=721147990,
        version=V211,
        suggested_version=V211,
    ),
    "create-request-hs-mac": Message(
        op=100,
        body=ValuesRequest(
            handle="20.500.999/T6",
            values=(
                _value(100, "HS_ADMIN", _hs_admin(0x0FFF, ADMIN, 300)),
                _value(1, "URL", b"https://example.org/item/6"),
                _value(2, "EMAIL", b"user6@example.org"),
            ),
        ),
        flags=REQUEST_FLAGS,
        site_info_serial=1,
        expiration=1795973571,
        request_id=476393027,
        session_id=11,
        version=V211,
        suggested_version=V211,
        credential=_credential(1, "HS_MAC", "HMAC-SHA256", SESSION_MAC),
    ),
    "add-value-request": Message(
        op=102,
        body=ValuesRequest(handle=T1, values=(_value(3, "DESC", b"added value"),)),
        flags=REQUEST_FLAGS,
        site_info_serial=1,
        expiration=1795973564,
        request_id=479406050,
        version=V211,
        suggested_version=V211,
    ),
    "add-value-request-pubkeys": Message(
        op=102,
        body=ValuesRequest(
            handle=ADMIN,
            values=(
                _value(301, "HS_PUBKEY", RSA_PUBKEY),
                _value(302, "HS_PUBKEY", DSA_PUBKEY),
            ),
        ),
        flags=REQUEST_FLAGS,
        site_info_serial=1,
        expiration=1795973568,
        request_id=868505169,
        version=V211,
        suggested_version=V211,
    ),
    "modify-value-request": Message(
        op=104,
        body=ValuesRequest(
            handle=T1, values=(_value(1, "URL", b"https://example.org/item/1-modified"),)
        ),
        flags=REQUEST_FLAGS,
        site_info_serial=1,
        expiration=1795973564,
        request_id=1849613186,
        version=V211,
        suggested_version=V211,
    ),
    "remove-value-request": Message(
        op=103,
        body=RemoveValuesRequest(handle=T1, indexes=(3,)),
        flags=REQUEST_FLAGS,
        site_info_serial=1,
        expiration=1795973565,
        request_id=1612862164,
        version=V211,
        suggested_version=V211,
    ),
    "delete-handle-request": Message(
        op=101,
        body=HandleRequest(handle="20.500.999/T3"),
        flags=REQUEST_FLAGS,
        site_info_serial=1,
        expiration=1795973601,
        request_id=168605643,
        version=V211,
        suggested_version=V211,
    ),
    "generic-success": Message(
        op=102,
        body=EmptyBody(),
        response_code=1,
        flags=RESPONSE_FLAGS,
        site_info_serial=1,
        expiration=1795973564,
        request_id=1821591419,
        version=V211,
        suggested_version=V211,
    ),
    "list-handles-request": Message(
        op=105,
        body=HandleRequest(handle=PREFIX_HANDLE),
        flags=REQUEST_FLAGS,
        site_info_serial=1,
        expiration=1795973565,
        request_id=894242997,
        version=V211,
        suggested_version=V211,
    ),
    "list-handles-response": Message(
        op=105,
        body=HandleListBody(handles=(T1, ADMIN)),
        response_code=1,
        flags=RESPONSE_FLAGS,
        site_info_serial=1,
        expiration=1795973565,
        request_id=2003206452,
        version=V211,
        suggested_version=V211,
    ),
    "get-site-info-request": Message(
        op=2,
        body=HandleRequest(handle="/"),
        flags=REQUEST_FLAGS,
        site_info_serial=0xFFFF,
        expiration=1795973555,
        request_id=1757660246,
        version=(2, 3),
        suggested_version=V211,
    ),
    "get-site-info-response": Message(
        op=2,
        body=SiteInfoBody(data=SITE),
        response_code=1,
        flags=RESPONSE_FLAGS,
        site_info_serial=1,
        expiration=1795973555,
        request_id=1757660246,
        version=V211,
        suggested_version=V211,
    ),
    "certified-response": Message(
        op=1,
        body=ResolutionResponse(handle=T1, values=T1_VALUES_RESOLVED),
        response_code=1,
        flags=0xD9000000,  # AT | CT | REC | CA | PO
        site_info_serial=1,
        expiration=1795973563,
        request_id=1347064281,
        version=V211,
        suggested_version=V211,
        credential=_credential(0, "HS_SIGNED", "SHA-256", CERTIFIED_SIGNATURE),
    ),
    "session-setup-request": Message(
        op=400,
        body=SessionSetupRequest(
            mode=4,
            timeout=86400,
            identity_handle=ADMIN,
            identity_index=300,
            public_key=_pubkey("DH_PUB_KEY", DH_CLIENT_Y, DH_P, b"\x02"),
            key_handle="",
            key_index=0,
            padding=b"\x00\x00",
        ),
        flags=0x59800000,  # CT | REC | CA | PO | RD (RD on a request: no digest)
        site_info_serial=0xFFFF,
        expiration=1795973571,
        request_id=472438408,
        version=V211,
        suggested_version=V211,
    ),
    "session-setup-response": Message(
        op=400,
        body=SessionSetupResponse(
            mode=4,
            data=_u32(3) + _pubkey("DH_PUB_KEY", DH_SERVER_Y, DH_P, b"\x02"),
            padding=b"\x00\x00",
        ),
        response_code=1,
        flags=0xD9800000,  # AT | CT | REC | CA | PO | RD
        site_info_serial=1,
        expiration=1795973571,
        request_id=472438408,
        session_id=11,
        version=V211,
        suggested_version=V211,
        request_digest=RequestDigest(
            hash_type=3,
            digest=bytes.fromhex(
                "c28b908521a7df88c9045c580ec6910060278564ef1c84fa8bea34a12f0bcfb3"
            ),
        ),
        credential=_credential(0, "HS_SIGNED", "SHA-256", SESSION_SIGNATURE),
    ),
    # -- built by hand from the spec --
    "verify-challenge-request": Message(
        op=201,
        body=VerifyChallengeRequest(
            handle=ADMIN,
            index=300,
            nonce=CREATE_NONCE,
            digest=RequestDigest(hash_type=3, digest=CREATE_DIGEST),
            signed_response=CREATE_ANSWER,
        ),
        flags=REQUEST_FLAGS,
        site_info_serial=1,
        recursion_count=1,
        expiration=1795973556,
        request_id=0x5EC00201,
        version=V211,
        suggested_version=V211,
    ),
    "verify-challenge-response": Message(
        op=201,
        body=VerifyChallengeResponse(valid=True),
        response_code=1,
        flags=RESPONSE_FLAGS,
        site_info_serial=1,
        recursion_count=1,
        expiration=1795973556,
        request_id=0x5EC00201,
        version=V211,
        suggested_version=V211,
    ),
    "referral-response": Message(
        op=1,
        body=ReferralBody(
            handle=PREFIX_HANDLE,
            values=(_value(1, "HS_SITE.PREFIX", SITE, timestamp=1795930356),),
        ),
        response_code=303,
        flags=RESPONSE_FLAGS,
        site_info_serial=1,
        expiration=1795973556,
        request_id=0x303,
        version=V211,
        suggested_version=V211,
    ),
    "list-derived-prefixes-request": Message(
        op=302,
        body=HandleRequest(handle=PREFIX_HANDLE),
        flags=REQUEST_FLAGS,
        site_info_serial=1,
        expiration=1795973556,
        request_id=0x302,
        version=V211,
        suggested_version=V211,
    ),
    "list-derived-prefixes-response": Message(
        op=302,
        body=HandleListBody(handles=("0.NA/20.500.999.1", "0.NA/20.500.999.2")),
        response_code=1,
        flags=RESPONSE_FLAGS,
        site_info_serial=1,
        expiration=1795973556,
        request_id=0x302,
        version=V211,
        suggested_version=V211,
    ),
    "home-na-request": Message(
        op=300,
        body=HandleRequest(handle=PREFIX_HANDLE),
        flags=REQUEST_FLAGS,
        site_info_serial=1,
        expiration=1795973556,
        request_id=0x300,
        version=V211,
        suggested_version=V211,
    ),
    "old-format-challenge": Message(
        op=100,
        body=ChallengeBody(nonce=HAND_NONCE, old_digest=CREATE_MD5),
        response_code=402,
        flags=RESPONSE_FLAGS,  # no RD below 2.1
        site_info_serial=1,
        expiration=1795973556,
        request_id=0x200,
        session_id=1,
        version=(2, 0),
        suggested_version=V211,
    ),
    "challenge-402-old-rd-digest": Message(
        op=100,
        body=ChallengeBody(nonce=HAND_NONCE, old_digest=None),
        response_code=402,
        flags=CHALLENGE_FLAGS,
        site_info_serial=1,
        expiration=1795973556,
        request_id=0x201,
        session_id=1,
        version=(2, 1),
        suggested_version=V211,
        request_digest=RequestDigest(hash_type=0, digest=CREATE_MD5),
    ),
}

MULTI_DATAGRAM = ["resolution-response-multidatagram", "session-setup-response"]
SINGLE = sorted(set(EXPECTED) - set(MULTI_DATAGRAM))


def _message_bytes(name: str) -> bytes:
    """The whole message of a vector file; datagram payloads are joined without the codec."""
    first, *rest = load_datagrams(name)
    return first + b"".join(d[20:] for d in rest)


def _header_and_body(data: bytes) -> bytes:
    body_length = struct.unpack_from(">I", data, 20 + 20)[0]
    return data[20 : 20 + 24 + body_length]


# -- tests/vectors -----------------------------------------------------------------------------


def test_every_vector_file_has_an_expected_message() -> None:
    assert names() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_decode_vector(name: str) -> None:
    assert Message.decode(_message_bytes(name)) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_encode_vector(name: str) -> None:
    assert EXPECTED[name].encode() == _message_bytes(name)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_header_and_body_are_the_received_bytes(name: str) -> None:
    data = _message_bytes(name)
    decoded = Message.decode(data)
    assert decoded.header_and_body() == _header_and_body(data)
    assert EXPECTED[name].header_and_body() == _header_and_body(data)


@pytest.mark.parametrize("name", SINGLE)
def test_single_messages_are_one_datagram(name: str) -> None:
    data = _message_bytes(name)
    assert len(load_datagrams(name)) == 1
    if len(data) <= 512:
        assert fragment(data) == [data]
        assert Reassembler().feed(data, 0.0) == data


@pytest.mark.parametrize("name", MULTI_DATAGRAM)
def test_fragment_matches_recorded_datagrams(name: str) -> None:
    datagrams = load_datagrams(name)
    assert len(datagrams) > 1
    assert fragment(EXPECTED[name].encode()) == datagrams


@pytest.mark.parametrize("name", MULTI_DATAGRAM)
def test_reassemble_recorded_datagrams_in_any_order(name: str) -> None:
    datagrams = load_datagrams(name)
    whole = _message_bytes(name)
    for order in itertools.permutations(datagrams):
        r = Reassembler()
        results = [r.feed(d, 1.0) for d in order]
        assert results[:-1] == [None] * (len(order) - 1)
        assert results[-1] == whole
        assert Message.decode(whole) == EXPECTED[name]


def test_stream_decoder_splits_concatenated_vectors() -> None:
    messages = [_message_bytes(name) for name in sorted(EXPECTED)]
    stream = b"".join(messages)
    for chunk_size in (1, 7, 20, 513, len(stream)):
        decoder = StreamDecoder()
        out: list[bytes] = []
        for i in range(0, len(stream), chunk_size):
            decoder.feed(stream[i : i + chunk_size])
            while (msg := decoder.next_message()) is not None:
                out.append(msg)
        assert out == messages
        assert decoder.buffered == 0


# -- cross-checks between vectors (spec §0: "Verified") ----------------------------------------


def test_challenge_digest_is_sha256_of_the_request_header_and_body() -> None:
    request = _header_and_body(_message_bytes("create-request"))
    assert hashlib.sha256(request).digest() == CREATE_DIGEST
    digest = Message.decode(_message_bytes("challenge-402")).request_digest
    assert digest == RequestDigest(3, CREATE_DIGEST)


def test_session_setup_digest_is_sha256_of_the_request() -> None:
    request = _header_and_body(_message_bytes("session-setup-request"))
    response = Message.decode(_message_bytes("session-setup-response"))
    assert response.request_digest == RequestDigest(3, hashlib.sha256(request).digest())


def test_old_format_digests_are_md5_of_the_request() -> None:
    md5 = hashlib.md5(_header_and_body(_message_bytes("create-request"))).digest()
    assert md5 == CREATE_MD5
    old = Message.decode(_message_bytes("old-format-challenge"))
    assert isinstance(old.body, ChallengeBody)
    assert old.body.old_digest == md5
    assert old.request_digest is None
    rd = Message.decode(_message_bytes("challenge-402-old-rd-digest"))
    assert rd.request_digest == RequestDigest(0, md5)


def test_verify_request_carries_the_recorded_challenge_and_answer() -> None:
    challenge = Message.decode(_message_bytes("challenge-402"))
    answer = Message.decode(_message_bytes("challenge-answer-seckey"))
    verify = Message.decode(_message_bytes("verify-challenge-request"))
    assert isinstance(challenge.body, ChallengeBody)
    assert isinstance(answer.body, ChallengeAnswer)
    assert isinstance(verify.body, VerifyChallengeRequest)
    assert verify.body.nonce == challenge.body.nonce
    assert verify.body.digest == challenge.request_digest
    assert verify.body.signed_response == answer.body.signed_response
    assert (verify.body.handle, verify.body.index) == (
        answer.body.identity_handle,
        answer.body.identity_index,
    )


def test_challenge_answer_links_to_the_challenge_session() -> None:
    # spec §0.6: the answer reuses the 402's session id with a new request id
    challenge = EXPECTED["challenge-402"]
    answer = EXPECTED["challenge-answer-seckey"]
    result = EXPECTED["create-response"]
    assert answer.session_id == challenge.session_id != 0
    assert answer.request_id != challenge.request_id
    assert (result.op, result.request_id, result.session_id) == (100, answer.request_id, 0)


# -- every recorded message in ../shared/vectors -----------------------------------------------

_DATAGRAM = re.compile(r"datagram (\d+)/(\d+)")


def _recorded_messages() -> list[tuple[str, list[Block]]]:
    """(id, datagrams) for every message of every exchange; one datagram unless split."""
    out: list[tuple[str, list[Block]]] = []
    for exchange in all_exchanges():
        pending: list[Block] = []
        for i, block in enumerate(load_exchange(exchange), 1):
            m = _DATAGRAM.search(block.title)
            if m is None:
                out.append((f"{exchange}#{i}", [block]))
                continue
            pending.append(block)
            if len(pending) == int(m.group(2)):
                out.append((f"{exchange}#{i - len(pending) + 1}", pending))
                pending = []
        assert not pending, exchange
    return out


RECORDED = _recorded_messages()


def test_recordings_are_present() -> None:
    assert len(RECORDED) >= 90


@pytest.mark.parametrize(
    "datagrams", [blocks for _, blocks in RECORDED], ids=[name for name, _ in RECORDED]
)
def test_recorded_message_round_trips(datagrams: list[Block]) -> None:
    parts = [b.data for b in datagrams]
    if len(parts) == 1:
        whole = parts[0]
    else:
        reassembler = Reassembler()
        results = [reassembler.feed(p, 0.0) for p in parts]
        assert results[:-1] == [None] * (len(parts) - 1)
        assert results[-1] is not None
        whole = results[-1]
        assert fragment(whole) == parts
    decoded = Message.decode(whole)
    assert decoded.encode() == whole
    assert decoded.header_and_body() == _header_and_body(whole)
    assert Message.decode(decoded.encode()) == decoded
