"""Readers for the recorded Handle exchanges in ``../shared/vectors`` (see its README.md).

Each ``.hex`` file holds one exchange: every message is a block headed by a title line
(``# request TCP OC_CREATE_HANDLE (232 bytes) [client port 35292]``), then its raw bytes
(envelope included) in hex, then ``#`` lines decoding it. A UDP response spanning several
datagrams is one block per datagram (``... datagram 1/2 (sequence 0, 512 bytes)``).

* :func:`load_exchange` returns the blocks as recorded, datagram by datagram.
* :func:`load_messages` joins multi-datagram UDP responses into whole messages (spec §0.8:
  each datagram has a 20-byte envelope; the payloads are concatenated in sequence order after
  the first envelope).
* :func:`readme_section` and :func:`pem_blocks` read the test keys out of the README.

The directory is resolved from this file: ``<repo>/tests/vectors_util.py`` → ``<repo>/../shared``.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "VECTORS_DIR",
    "Block",
    "all_exchanges",
    "load_exchange",
    "load_messages",
    "pem_blocks",
    "readme_section",
    "reference_site",
]

VECTORS_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "vectors"

_TITLE = re.compile(r"^# (request|response) ")
_DATAGRAM = re.compile(r"datagram (\d+)/(\d+)")


@dataclass(frozen=True)
class Block:
    """One recorded message (or one datagram of one)."""

    #: The heading line, e.g. ``# request TCP OC_CREATE_HANDLE (232 bytes) [client port 1]``.
    title: str
    #: The raw bytes, envelope included.
    data: bytes
    #: The ``#`` decode lines that followed the bytes.
    notes: tuple[str, ...] = field(default=(), repr=False)

    @property
    def is_request(self) -> bool:
        return self.title.startswith("# request ")

    @property
    def is_udp(self) -> bool:
        return self.title.split()[2] == "UDP"

    # Envelope fields (spec §1.4).
    @property
    def session_id(self) -> int:
        return int(struct.unpack_from(">I", self.data, 4)[0])

    @property
    def request_id(self) -> int:
        return int(struct.unpack_from(">I", self.data, 8)[0])

    @property
    def sequence(self) -> int:
        return int(struct.unpack_from(">I", self.data, 12)[0])


def all_exchanges() -> list[str]:
    """Names (without ``.hex``) of every recorded exchange, sorted."""
    return sorted(p.stem for p in VECTORS_DIR.glob("*.hex"))


def load_exchange(name: str) -> list[Block]:
    """The blocks of ``<name>.hex`` (``.hex`` optional) in capture order."""
    path = VECTORS_DIR / (name if name.endswith(".hex") else name + ".hex")
    blocks: list[Block] = []
    title: str | None = None
    hex_lines: list[str] = []
    notes: list[str] = []

    def flush() -> None:
        if title is not None:
            blocks.append(Block(title, bytes.fromhex("".join(hex_lines)), tuple(notes)))

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if _TITLE.match(line):
            flush()
            title, hex_lines, notes = line, [], []
        elif title is None or not line:
            continue
        elif line.startswith("#"):
            notes.append(line)
        elif not notes:
            hex_lines.append(line)
    flush()
    return blocks


def load_messages(name: str) -> list[Block]:
    """Like :func:`load_exchange`, with the datagrams of one UDP message joined into one block
    (titled by its first datagram)."""
    out: list[Block] = []
    pending: list[Block] = []
    for block in load_exchange(name):
        m = _DATAGRAM.search(block.title)
        if m is None:
            out.append(block)
            continue
        pending.append(block)
        if len(pending) == int(m.group(2)):
            parts = sorted(pending, key=lambda b: b.sequence)
            data = parts[0].data + b"".join(p.data[20:] for p in parts[1:])
            if len(data) != 20 + int(struct.unpack_from(">I", data, 16)[0]):
                raise ValueError(f"{name}: datagrams do not add up to the message length")
            out.append(Block(parts[0].title, data, parts[-1].notes))
            pending = []
    if pending:
        raise ValueError(f"{name}: incomplete multi-datagram message")
    return out


def readme_section(heading: str) -> str:
    """The README text under the first heading containing ``heading``, up to the next heading."""
    text = (VECTORS_DIR / "README.md").read_text(encoding="utf-8")
    m = re.search(rf"^#+ [^\n]*{re.escape(heading)}[^\n]*\n(.*?)(?=^#+ |\Z)", text, re.M | re.S)
    if m is None:
        raise KeyError(heading)
    return m.group(1)


def pem_blocks(text: str) -> list[bytes]:
    """Every ``-----BEGIN ...-----`` to ``-----END ...-----`` block in ``text``, as bytes."""
    pems = re.findall(r"-----BEGIN [A-Z ]+-----\n.*?-----END [A-Z ]+-----\n", text, re.S)
    return [p.encode("ascii") for p in pems]


def reference_site() -> bytes:
    """The reference server's HS_SITE record (373 bytes), from the README's "Server HS_SITE
    record" section: the body of its get-site-info response."""
    section = readme_section("Server HS_SITE record")
    block = re.search(r"```\n(.*?)```", section, re.S)
    if block is None:
        raise KeyError("Server HS_SITE record")
    return bytes.fromhex("".join(block.group(1).split()))
