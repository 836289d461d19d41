"""Operation codes, response codes and flag bits of the Handle protocol.

Numbers are from RFC 3652 §2.2.2 as extended by the reference server (spec §1.9, §1.10);
names drop their ``OC_``/``RC_``/``MSG_FLAG_`` prefixes.
"""

from __future__ import annotations

import enum

__all__ = [
    "SUPPORTED_VERSION",
    "AdminPermission",
    "EnvelopeFlag",
    "OpCode",
    "OpFlag",
    "Permission",
    "ResponseCode",
]

#: The protocol version idnode speaks natively (spec §0.7: the reference server is 2.11).
SUPPORTED_VERSION: tuple[int, int] = (2, 11)


class OpCode(enum.IntEnum):
    """Operation code, header offset 0 (RFC 3652 §2.2.2.1, spec §1.9)."""

    RESERVED = 0  #: RFC 3652 §2.2.2.1
    RESOLUTION = 1  #: RFC 3652 §3.1
    GET_SITE_INFO = 2  #: RFC 3652 §2.2.2.1
    CREATE_HANDLE = 100  #: RFC 3652 §3.3
    DELETE_HANDLE = 101  #: RFC 3652 §3.4
    ADD_VALUE = 102  #: RFC 3652 §3.5
    REMOVE_VALUE = 103  #: RFC 3652 §3.6
    MODIFY_VALUE = 104  #: RFC 3652 §3.7
    LIST_HANDLES = 105  #: RFC 3652 §3.8
    LIST_NA = 106  #: RFC 3652 §2.2.2.1 (not answered by the reference server)
    CHALLENGE_RESPONSE = 200  #: RFC 3652 §3.5.2 (Java OC_RESPONSE_TO_CHALLENGE)
    VERIFY_CHALLENGE = 201  #: RFC 3652 §3.5.3 (Java OC_VERIFY_CHALLENGE)
    HOME_NA = 300  #: RFC 3652 §3.10
    UNHOME_NA = 301  #: RFC 3652 §3.10
    LIST_DERIVED_PREFIXES = 302  #: reference server OC_LIST_HOMED_NAS: derived prefixes of a prefix
    SESSION_SETUP = 400  #: RFC 3652 §3.11
    SESSION_TERMINATE = 401  #: RFC 3652 §3.11
    SESSION_EXCHANGEKEY = 402  #: reference server extension
    GET_NEXT_TXN_ID = 1000  #: reference server replication
    RETRIEVE_TXN_LOG = 1001  #: reference server replication
    DUMP_HANDLES = 1002  #: reference server replication
    BACKUP_SERVER = 1003  #: reference server backup


class ResponseCode(enum.IntEnum):
    """Response code, header offset 4 (RFC 3652 §2.2.2.2, spec §1.10)."""

    RESERVED = 0  #: used by requests
    SUCCESS = 1  #: RFC 3652 §2.2.2.2
    ERROR = 2  #: RFC 3652 §2.2.2.2
    SERVER_TOO_BUSY = 3  #: RFC 3652 §2.2.2.2
    PROTOCOL_ERROR = 4  #: RFC 3652 §2.2.2.2
    OPERATION_NOT_SUPPORTED = 5  #: RFC 3652 §2.2.2.2
    RECURSION_COUNT_TOO_HIGH = 6  #: RFC 3652 §2.2.2.2
    SERVER_BACKUP = 7  #: reference server: read-only
    HANDLE_NOT_FOUND = 100  #: RFC 3652 §2.2.2.2
    HANDLE_ALREADY_EXISTS = 101  #: RFC 3652 §2.2.2.2
    INVALID_HANDLE = 102  #: RFC 3652 §2.2.2.2
    VALUES_NOT_FOUND = 200  #: RFC 3652 §2.2.2.2
    VALUE_ALREADY_EXISTS = 201  #: RFC 3652 §2.2.2.2
    INVALID_VALUE = 202  #: RFC 3652 §2.2.2.2
    OUT_OF_DATE_SITE_INFO = 300  #: RFC 3652 §2.2.2.2
    SERVER_NOT_RESP = 301  #: RFC 3652 §2.2.2.2
    SERVICE_REFERRAL = 302  #: RFC 3652 §2.2.2.2
    PREFIX_REFERRAL = 303  #: RFC 3652 §2.2.2.2 (RC_NA_DELEGATE)
    INVALID_ADMIN = 400  #: RFC 3652 §2.2.2.2 (RC_NOT_AUTHORIZED)
    INSUFFICIENT_PERMISSIONS = 401  #: RFC 3652 §2.2.2.2 (RC_ACCESS_DENIED)
    AUTHENTICATION_NEEDED = 402  #: RFC 3652 §2.2.2.2
    AUTHENTICATION_FAILED = 403  #: RFC 3652 §2.2.2.2
    INVALID_CREDENTIAL = 404  #: RFC 3652 §2.2.2.2
    AUTHEN_TIMEOUT = 405  #: RFC 3652 §2.2.2.2
    AUTHEN_ERROR = 406  #: RFC 3652 §2.2.2.2
    SESSION_TIMEOUT = 500  #: RFC 3652 §2.2.2.2
    SESSION_FAILED = 501  #: RFC 3652 §2.2.2.2
    INVALID_SESSION_KEY = 502  #: RFC 3652 §2.2.2.2
    NEED_RSAKEY_FOR_SESSIONEXCHANGE = 503  #: reference server
    INVALID_SESSIONSETUP_REQUEST = 504  #: reference server
    SESSION_MESSAGE_REJECTED = 505  #: reference server: replay defence
    TRYING = 900  #: RFC 3652 §2.2.2.2
    FORWARDED = 901  #: RFC 3652 §2.2.2.2
    QUEUED = 902  #: RFC 3652 §2.2.2.2


class OpFlag(enum.IntFlag):
    """Header OpFlag bits, header offset 8 (RFC 3652 §2.2.2.3, spec §1.5)."""

    AT = 0x80000000  #: authoritative: bypass caches
    CT = 0x40000000  #: certified: sign the response
    ENC = 0x20000000  #: encrypt the response with the session key
    REC = 0x10000000  #: recursive resolution allowed
    CA = 0x08000000  #: cache-certify
    CN = 0x04000000  #: continuous: more parts follow
    KA = 0x02000000  #: keep the TCP connection alive
    PO = 0x01000000  #: public values only
    RD = 0x00800000  #: response carries a digest of the request
    OVRW = 0x00400000  #: overwrite existing handle or value (>= 2.3)
    MINT = 0x00200000  #: the server mints the suffix
    DNRF = 0x00100000  #: do not refer


class EnvelopeFlag(enum.IntFlag):
    """High bits of envelope byte 2 (RFC 3652 §2.2.1)."""

    CP = 0x80  #: compressed
    EC = 0x40  #: encrypted
    TC = 0x20  #: truncated


class Permission(enum.IntFlag):
    """Per-value permission byte (RFC 3651 §3.1, spec §1.8)."""

    PUBLIC_WRITE = 0x01
    PUBLIC_READ = 0x02
    ADMIN_WRITE = 0x04
    ADMIN_READ = 0x08


class AdminPermission(enum.IntFlag):
    """HS_ADMIN permission bits (RFC 3651 §3.2.1, spec §2.1)."""

    ADD_HANDLE = 0x0001
    DELETE_HANDLE = 0x0002
    ADD_NA = 0x0004
    DELETE_NA = 0x0008
    MODIFY_VALUE = 0x0010
    REMOVE_VALUE = 0x0020
    ADD_VALUE = 0x0040
    MODIFY_ADMIN = 0x0080
    REMOVE_ADMIN = 0x0100
    ADD_ADMIN = 0x0200
    READ_VALUE = 0x0400
    LIST_HANDLES = 0x0800
