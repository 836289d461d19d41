"""The few DER (X.690) pieces the SM2 key formats need: strict TLV reading and writing.

Only definite, minimal lengths are accepted; anything else raises DerError.
"""

from __future__ import annotations

from dataclasses import dataclass

SEQUENCE = 0x30
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
OID = 0x06


class DerError(ValueError):
    """Malformed or unexpected DER data."""


@dataclass(frozen=True)
class Tlv:
    tag: int
    value: bytes


def encode(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes((tag, n)) + value
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + value


def seq(*items: bytes) -> bytes:
    return encode(SEQUENCE, b"".join(items))


def integer(value: int) -> bytes:
    if value < 0:
        raise DerError("negative INTEGER not supported")
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return encode(INTEGER, body)


def read_one(data: bytes, offset: int = 0) -> tuple[Tlv, int]:
    """Read the TLV at offset; return it and the offset after it."""
    if offset + 2 > len(data):
        raise DerError("truncated DER")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte tags not supported")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise DerError("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise DerError("non-minimal DER length")
        pos += count
    end = pos + length
    if end > len(data):
        raise DerError("truncated DER")
    return Tlv(tag, data[pos:end]), end


def read_all(data: bytes) -> list[Tlv]:
    """Split data into consecutive TLVs (the contents of a constructed value)."""
    items: list[Tlv] = []
    pos = 0
    while pos < len(data):
        item, pos = read_one(data, pos)
        items.append(item)
    return items


def read_single(data: bytes, tag: int) -> Tlv:
    """data must be exactly one TLV with the given tag."""
    item, end = read_one(data)
    if end != len(data):
        raise DerError("trailing bytes after DER value")
    expect(item, tag)
    return item


def expect(item: Tlv, tag: int) -> bytes:
    if item.tag != tag:
        raise DerError(f"expected DER tag 0x{tag:02x}, got 0x{item.tag:02x}")
    return item.value


def read_integer(item: Tlv) -> int:
    body = expect(item, INTEGER)
    if not body or body[0] & 0x80:
        raise DerError("bad or negative INTEGER")
    if len(body) > 1 and body[0] == 0 and not body[1] & 0x80:
        raise DerError("non-minimal INTEGER")
    return int.from_bytes(body, "big")


def read_bit_string(item: Tlv) -> bytes:
    body = expect(item, BIT_STRING)
    if not body or body[0] != 0:
        raise DerError("BIT STRING with unused bits")
    return body[1:]
