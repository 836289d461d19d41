"""Rebuild the checked-in seed corpus ``fuzz/corpus/<harness>/`` (run from the repository
root: ``python -m fuzz.build_corpus``).

Sources: the byte-exact vectors of ``tests/vectors/*.hex`` (every datagram) and the recorded
exchanges of ``../shared/vectors/*.hex`` (whole messages), plus the hand-made edge cases
below. ``message`` gets every message; ``dispatch`` the requests (and one response, which
must be dropped); ``values`` every handle value found in them — as a HandleValue and, for
registered types, its data alone — and every HS_SITE record of a get-site-info response.
Identical inputs are stored once. File names say where each came from.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

from tests.protocol import vectors
from tests.vectors_util import all_exchanges, load_messages

from fuzz.driver import CORPUS_DIR
from fuzz.values import TYPE_NAMES, selector
from idnode.errors import ProtocolViolation
from idnode.protocol import types as value_types
from idnode.protocol.bodies import SiteInfoBody
from idnode.protocol.message import Message
from idnode.protocol.values import HandleValue

__all__ = ["build", "edge_cases", "sources"]

_VERSION = bytes.fromhex("020b020b")  # envelope major/minor 2.11, suggested 2.11 (flags 0)


def _envelope(payload: bytes, *, request_id: int = 1, length: int | None = None) -> bytes:
    n = len(payload) if length is None else length
    return _VERSION + struct.pack(">IIII", 0, request_id, 0, n) + payload


def _header(op: int, code: int, flags: int, body_length: int) -> bytes:
    return struct.pack(">IIIHBBII", op, code, flags, 0xFFFF, 0, 0, 0, body_length)


def edge_cases() -> dict[str, bytes]:
    """Hand-made messages at the edges of the framing (all must decode or be refused)."""
    resolve_body = struct.pack(">I", 8) + b"0.NA/0.1" + struct.pack(">II", 0, 0)
    return {
        "edge-empty": b"",
        "edge-envelope-only": _envelope(b""),
        "edge-envelope-max-length": _envelope(b"", length=262144),
        "edge-envelope-huge-length": _envelope(b"", length=0xFFFFFFFF),
        "edge-header-only": _envelope(_header(1, 0, 0, 0)),
        "edge-body-length-overflow": _envelope(_header(1, 0, 0, 0xFFFFFFFF)),
        "edge-resolve-no-credential": _envelope(_header(1, 0, 0, len(resolve_body)) + resolve_body),
        "edge-resolve-credential-3-bytes": _envelope(
            _header(1, 0, 0, len(resolve_body)) + resolve_body + b"\x00\x00\x00"
        ),
        "edge-resolve-huge-credential": _envelope(
            _header(1, 0, 0, len(resolve_body)) + resolve_body + b"\xff\xff\xff\xff"
        ),
        "edge-response-rd-no-digest": _envelope(_header(1, 1, 0x00010000 << 4, 0)),
        "edge-unknown-op": _envelope(_header(0x7FFFFFFF, 0, 0, 0) + bytes(4)),
        "edge-session-setup-empty": _envelope(_header(400, 0, 0, 0) + bytes(4)),
        "edge-version-1": bytes.fromhex("01000100")
        + bytes(12)
        + struct.pack(">I", 28)
        + _header(1, 0, 0, 0)
        + bytes(4),
    }


def sources() -> list[tuple[str, bytes]]:
    """(name, message bytes) of every vector datagram and recorded message."""
    out: list[tuple[str, bytes]] = []
    for name in vectors.names():
        parts = vectors.load_datagrams(name)
        for i, data in enumerate(parts):
            out.append((f"vec-{name}" + (f"-{i}" if len(parts) > 1 else ""), data))
    for name in all_exchanges():
        for i, block in enumerate(load_messages(name)):
            kind = "req" if block.is_request else "resp"
            out.append((f"shared-{name}-{i}-{kind}", block.data))
    return out


def _values_inputs(message: Message) -> list[bytes]:
    found: list[bytes] = []
    values = getattr(message.body, "values", None)
    for value in values if isinstance(values, tuple) else ():
        if not isinstance(value, HandleValue):
            continue
        found.append(selector(None) + value.encode())
        codec_type = value.type.upper().split(".", 1)[0]
        if value_types.codec_for(value.type) is not None and codec_type in TYPE_NAMES:
            found.append(selector(codec_type) + value.data)
    if isinstance(message.body, SiteInfoBody):
        found.append(selector("HS_SITE") + message.body.data)
    return found


def build(root: Path = CORPUS_DIR) -> dict[str, int]:
    """Write the corpus under ``root`` (replacing it); the number of files per harness."""
    corpora: dict[str, dict[bytes, str]] = {"message": {}, "values": {}, "dispatch": {}}

    def put(harness: str, name: str, data: bytes) -> None:
        corpora[harness].setdefault(data, name)

    for name, data in edge_cases().items():
        put("message", name, data)
        put("dispatch", name, data)
    for type_name in TYPE_NAMES:
        put("values", f"edge-{type_name}-empty", selector(type_name))
    put("values", "edge-value-empty", selector(None))
    for name, data in sources():
        put("message", name, data)
        try:
            message = Message.decode(data)
        except ProtocolViolation:
            continue  # a datagram of a multi-datagram message
        if message.is_request:
            put("dispatch", name, data)
        for i, entry in enumerate(_values_inputs(message)):
            put("values", f"{name}-{i}", entry)
    put("dispatch", "edge-a-response", vectors.load("resolution-response"))
    counts: dict[str, int] = {}
    for harness, entries in corpora.items():
        directory = root / harness
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        for data, name in entries.items():
            (directory / name).write_bytes(data)
        counts[harness] = len(entries)
    return counts


if __name__ == "__main__":
    for harness, n in build().items():
        print(f"{harness}: {n} seeds")
