"""HS_SITE value data: the servers of one site and how handles are spread over them (spec §2.2).

Registered for ``HS_SITE`` (so also ``HS_SITE.6`` and ``HS_SITE.PREFIX`` through the registry's
dot fallback) and for the legacy ``HS_NA_DELEGATE``. Wire layout, in order::

    int2  DataFormatVersion      u8 major, u8 minor protocol version     int2 SerialNumber
    u8    PrimaryMask (0x80 primary, 0x40 multi-primary)               u8   HashOption
    byte-array HashFilter
    int4  n attributes, each UTF8 name + UTF8 value
    int4  n servers, each:
          int4 serverId, 16-byte address, byte-array publicKey (HS_PUBKEY encoding, kept raw),
          int4 n interfaces, each u8 type + u8 protocol + int4 port

Raw fields (mask, hash option, interface type/protocol) keep unknown values, so any record
decodes and re-encodes byte for byte. Server selection follows spec §2.2: see
:func:`handle_hash` and :meth:`SiteInfo.server_index_for`.
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple, Self

from idnode.errors import InvalidHandle, InvalidValue, ProtocolViolation
from idnode.protocol.codes import SUPPORTED_VERSION
from idnode.protocol.types import register
from idnode.protocol.values import HandleValue
from idnode.protocol.wire import Reader, Writer

__all__ = [
    "MULTI_PRIMARY",
    "PRIMARY_SITE",
    "Attribute",
    "HashOption",
    "Interface",
    "InterfaceType",
    "ServerInfo",
    "SiteInfo",
    "TransportProtocol",
    "address_from_bytes",
    "address_to_bytes",
    "handle_hash",
    "sites_in",
]

#: PrimaryMask bit: this is a primary site (admin operations go here).
PRIMARY_SITE = 0x80
#: PrimaryMask bit: the service has several primary sites.
MULTI_PRIMARY = 0x40

_ADDRESS_LEN = 16
_V4_MAPPED_PREFIX = bytes(10) + b"\xff\xff"
_V4_ZERO_PREFIX = bytes(12)
_NA_PREFIX_NOSLASH = b"0.NA"
_U8_MAX = 0xFF
_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFFFFFF
# serverId + address + publicKey length + interface count.
_MIN_SERVER_SIZE = 4 + _ADDRESS_LEN + 4 + 4
_INTERFACE_SIZE = 6

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class HashOption(enum.IntEnum):
    """Which part of a handle picks the server within a site (spec §2.2)."""

    BY_PREFIX = 0  #: the prefix (naming authority); ``0.NA`` for a handle without a slash
    BY_SUFFIX = 1  #: the suffix (local name); the whole handle if there is no slash
    BY_ALL = 2  #: the whole handle (Java's default)


class InterfaceType(enum.IntEnum):
    """What an interface accepts (spec §2.2)."""

    OUT_OF_SERVICE = 0  #: nothing
    ADMIN = 1  #: administration only
    QUERY = 2  #: resolution only
    ADMIN_AND_QUERY = 3  #: both


class TransportProtocol(enum.IntEnum):
    """The transport of an interface (spec §2.2)."""

    UDP = 0  #: datagrams; cannot carry requests that need a connection
    TCP = 1  #: native messages over TCP
    HTTP = 2  #: native messages POSTed over HTTP
    HTTPS = 3  #: the same over TLS


class Attribute(NamedTuple):
    """A site attribute, e.g. ``desc``, ``domain``, ``alt_addr.1`` (spec §2.2)."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Interface:
    """One (type, protocol, port) a server listens on (spec §2.2)."""

    type: int
    protocol: int
    port: int

    def __post_init__(self) -> None:
        _check_range(self.type, _U8_MAX, "interface type")
        _check_range(self.protocol, _U8_MAX, "interface protocol")
        _check_range(self.port, _U32_MAX, "interface port")

    @property
    def serves_admin(self) -> bool:
        """Accepts administration requests (type ADMIN or ADMIN_AND_QUERY)."""
        return self.type in (InterfaceType.ADMIN, InterfaceType.ADMIN_AND_QUERY)

    @property
    def serves_query(self) -> bool:
        """Accepts resolution requests (type QUERY or ADMIN_AND_QUERY)."""
        return self.type in (InterfaceType.QUERY, InterfaceType.ADMIN_AND_QUERY)

    def can_handle(self, *, admin: bool, needs_connection: bool = False) -> bool:
        """Whether a request of this kind may be sent here.

        ``needs_connection`` marks requests that need a stream (sessions, streamed answers such as
        list-handles); those are never sent over UDP or an unknown protocol.
        """
        if needs_connection and self.protocol not in (
            TransportProtocol.TCP,
            TransportProtocol.HTTP,
            TransportProtocol.HTTPS,
        ):
            return False
        return self.serves_admin if admin else self.serves_query


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """One server of a site (spec §2.2). ``public_key`` is the raw HS_PUBKEY encoding (§2.4)."""

    server_id: int
    address: bytes
    public_key: bytes = b""
    interfaces: tuple[Interface, ...] = ()

    def __post_init__(self) -> None:
        _check_range(self.server_id, _U32_MAX, "server id")
        if not isinstance(self.address, bytes) or not isinstance(self.public_key, bytes):
            raise TypeError("ServerInfo.address and public_key must be bytes")
        if len(self.address) != _ADDRESS_LEN:
            raise ProtocolViolation(f"server address must be 16 bytes, not {len(self.address)}")
        object.__setattr__(self, "interfaces", tuple(self.interfaces))
        if not all(isinstance(i, Interface) for i in self.interfaces):
            raise TypeError("ServerInfo.interfaces must hold Interface objects")

    @property
    def ip_address(self) -> IPAddress:
        """The address as an :mod:`ipaddress` object (IPv4 in either 16-byte form, spec §1.2)."""
        return address_from_bytes(self.address)

    def interface_for(
        self, protocol: int, *, admin: bool, needs_connection: bool = False
    ) -> Interface | None:
        """The first interface on ``protocol`` that accepts the request kind, if any."""
        for interface in self.interfaces:
            if interface.protocol == protocol and interface.can_handle(
                admin=admin, needs_connection=needs_connection
            ):
                return interface
        return None

    def write(self, w: Writer) -> None:
        w.u32(self.server_id).raw(self.address).byte_array(self.public_key)
        w.u32(len(self.interfaces))
        for i in self.interfaces:
            w.u8(i.type).u8(i.protocol).u32(i.port)

    @classmethod
    def read(cls, r: Reader) -> Self:
        server_id = r.u32()
        address = r.raw(_ADDRESS_LEN, "server address")
        public_key = r.byte_array("server public key")
        n = r.count(_INTERFACE_SIZE, "interface list")
        interfaces = tuple(Interface(r.u8(), r.u8(), r.u32()) for _ in range(n))
        return cls(server_id, address, public_key, interfaces)


@register("HS_SITE", "HS_NA_DELEGATE")
@dataclass(frozen=True, slots=True)
class SiteInfo:
    """An HS_SITE record (spec §2.2). Fields are in wire order; all have usable defaults."""

    data_format_version: int = 1
    protocol_major: int = SUPPORTED_VERSION[0]
    protocol_minor: int = SUPPORTED_VERSION[1]
    serial: int = 1
    primary_mask: int = 0
    hash_option: int = int(HashOption.BY_ALL)
    hash_filter: bytes = b""
    attributes: tuple[Attribute, ...] = ()
    servers: tuple[ServerInfo, ...] = ()

    def __post_init__(self) -> None:
        _check_range(self.data_format_version, _U16_MAX, "site data format version")
        _check_range(self.protocol_major, _U8_MAX, "site protocol major version")
        _check_range(self.protocol_minor, _U8_MAX, "site protocol minor version")
        _check_range(self.serial, _U16_MAX, "site serial number")
        _check_range(self.primary_mask, _U8_MAX, "site primary mask")
        _check_range(self.hash_option, _U8_MAX, "site hash option")
        if not isinstance(self.hash_filter, bytes):
            raise TypeError("SiteInfo.hash_filter must be bytes")
        attributes = tuple(Attribute(*a) for a in self.attributes)
        if not all(isinstance(a.name, str) and isinstance(a.value, str) for a in attributes):
            raise TypeError("site attribute names and values must be str")
        object.__setattr__(self, "attributes", attributes)
        object.__setattr__(self, "servers", tuple(self.servers))
        if not all(isinstance(s, ServerInfo) for s in self.servers):
            raise TypeError("SiteInfo.servers must hold ServerInfo objects")

    @property
    def protocol_version(self) -> tuple[int, int]:
        return (self.protocol_major, self.protocol_minor)

    @property
    def is_primary(self) -> bool:
        """PrimaryMask bit 0x80: administration goes to this site."""
        return bool(self.primary_mask & PRIMARY_SITE)

    @property
    def is_multi_primary(self) -> bool:
        """PrimaryMask bit 0x40: the service has more than one primary site."""
        return bool(self.primary_mask & MULTI_PRIMARY)

    def attribute(self, name: str) -> str | None:
        """The value of the first attribute called ``name`` (exact match), if any."""
        for a in self.attributes:
            if a.name == name:
                return a.value
        return None

    # -- server selection (spec §2.2) ----------------------------------------------------------
    def server_index_for(self, handle: str) -> int:
        """0-based index into :attr:`servers` of the server responsible for ``handle``.

        Raises :class:`~idnode.errors.InvalidValue` for a site without servers or with an
        unknown hash option.
        """
        if not self.servers:
            raise InvalidValue("site has no servers")
        return handle_hash(handle, self.hash_option) % len(self.servers)

    def choose_server(self, handle: str) -> ServerInfo:
        """The server responsible for ``handle`` (:meth:`server_index_for`)."""
        return self.servers[self.server_index_for(handle)]

    # -- wire ----------------------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        r = Reader(data)
        version = r.u16()
        major = r.u8()
        minor = r.u8()
        serial = r.u16()
        mask = r.u8()
        hash_option = r.u8()
        hash_filter = r.byte_array("site hash filter")
        n = r.count(8, "site attribute list")
        attributes = tuple(
            Attribute(r.utf8("site attribute name"), r.utf8("site attribute value"))
            for _ in range(n)
        )
        n = r.count(_MIN_SERVER_SIZE, "site server list")
        servers = tuple(ServerInfo.read(r) for _ in range(n))
        r.expect_end("HS_SITE")
        return cls(
            version, major, minor, serial, mask, hash_option, hash_filter, attributes, servers
        )

    def to_bytes(self) -> bytes:
        w = Writer().u16(self.data_format_version).u8(self.protocol_major).u8(self.protocol_minor)
        w.u16(self.serial).u8(self.primary_mask).u8(self.hash_option).byte_array(self.hash_filter)
        w.u32(len(self.attributes))
        for a in self.attributes:
            w.utf8(a.name).utf8(a.value)
        w.u32(len(self.servers))
        for s in self.servers:
            s.write(w)
        return w.getvalue()


def handle_hash(handle: str, hash_option: int) -> int:
    """The non-negative hash that picks a server for ``handle`` (spec §2.2).

    Take the part named by ``hash_option`` (prefix: up to the first ``/``, or ``0.NA`` if there is
    none; suffix: after the first ``/``, or the whole handle; all: the whole handle), upper-case
    its UTF-8 bytes in ASCII only, compute MD5, read the last four digest bytes as a signed
    big-endian int4 and take the absolute value.
    """
    try:
        raw = handle.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidHandle("handle is not encodable as UTF-8") from exc
    slash = raw.find(b"/")
    if hash_option == HashOption.BY_PREFIX:
        part = _NA_PREFIX_NOSLASH if slash < 0 else raw[:slash]
    elif hash_option == HashOption.BY_SUFFIX:
        part = raw if slash < 0 else raw[slash + 1 :]
    elif hash_option == HashOption.BY_ALL:
        part = raw
    else:
        raise InvalidValue(f"unknown site hash option: {hash_option}")
    digest = hashlib.md5(part.upper(), usedforsecurity=False).digest()  # bytes.upper(): ASCII only
    # Java's Math.abs leaves -2**31 negative (and then fails to index); Python yields 2**31.
    return abs(int.from_bytes(digest[-4:], "big", signed=True))


def address_to_bytes(address: IPAddress | str, *, mapped: bool = True) -> bytes:
    """The 16-byte wire form of an IP address (spec §1.2).

    IPv4 goes in as the mapped address ``::ffff:a.b.c.d``; with ``mapped=False`` it is
    right-aligned into zeros without ``ff ff``, as the Java encoder (and the reference server's
    own HS_SITE) writes it.
    """
    if isinstance(address, str):
        address = ipaddress.ip_address(address)
    if isinstance(address, ipaddress.IPv4Address):
        return (_V4_MAPPED_PREFIX if mapped else _V4_ZERO_PREFIX) + address.packed
    return address.packed


def address_from_bytes(data: bytes) -> IPAddress:
    """Read a 16-byte wire address (spec §1.2): both IPv4 forms give an IPv4Address.

    As in Java, twelve leading zero bytes mean IPv4, so the all-zero address reads as
    ``0.0.0.0`` and the deprecated IPv4-compatible IPv6 range (including ``::1``) reads as IPv4.
    """
    if len(data) != _ADDRESS_LEN:
        raise ProtocolViolation(f"IP address must be 16 bytes, not {len(data)}")
    prefix = data[:12]
    if prefix in (_V4_ZERO_PREFIX, _V4_MAPPED_PREFIX):
        return ipaddress.IPv4Address(data[12:])
    return ipaddress.IPv6Address(data)


def _check_range(value: int, maximum: int, what: str) -> None:
    if not 0 <= value <= maximum:
        raise ProtocolViolation(f"{what} out of range: {value}")


def sites_in(values: Iterable[HandleValue]) -> Iterator[tuple[HandleValue, SiteInfo]]:
    """The HS_SITE values among ``values``, each with its decoded record; values whose data
    is not a valid HS_SITE record are skipped."""
    for value in values:
        if value.type.upper() != "HS_SITE":
            continue
        try:
            yield value, SiteInfo.from_bytes(value.data)
        except ProtocolViolation:
            continue
