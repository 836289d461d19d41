"""Loader for the commented-hex wire vectors in ``tests/vectors/*.hex``.

Each file is one message, one field per line (dnspython's ``svcb_test_vectors.generic`` style)::

    00000064  # header.opCode = 100 CREATE_HANDLE (spec §1.5, §1.9)

Everything from ``#`` to the end of a line is a comment and whitespace is ignored, so the
bytes are the concatenation of the hex on every line. A UDP response sent as several datagrams
is written as consecutive sections, each starting with a marker line ``# --- datagram i/n``;
:func:`load_datagrams` returns them separately.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["DATAGRAM_MARKER", "VECTORS_DIR", "load", "load_datagrams", "names", "parse"]

VECTORS_DIR = Path(__file__).resolve().parent.parent / "vectors"
DATAGRAM_MARKER = "# --- datagram"

_HEX = re.compile(r"[0-9a-fA-F]*")


def names() -> list[str]:
    """Every vector file name without ``.hex``, sorted."""
    return sorted(p.stem for p in VECTORS_DIR.glob("*.hex"))


def parse(text: str, source: str = "<text>") -> list[bytes]:
    """The datagrams of a commented-hex text (one element when there is no datagram marker).

    Raises ValueError on a line holding anything but hex digits and whitespace before its
    comment, or on an odd number of hex digits in a section.
    """
    sections: list[list[str]] = [[]]
    seen_marker = False
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.startswith(DATAGRAM_MARKER):
            if seen_marker or any(sections[0]):
                sections.append([])
            seen_marker = True
            continue
        digits = "".join(line.split("#", 1)[0].split())
        if not _HEX.fullmatch(digits):
            raise ValueError(f"{source}:{lineno}: not hex: {line!r}")
        sections[-1].append(digits)
    out = []
    for i, section in enumerate(sections):
        joined = "".join(section)
        if len(joined) % 2:
            raise ValueError(f"{source}: section {i} has an odd number of hex digits")
        out.append(bytes.fromhex(joined))
    return out


def load_datagrams(name: str) -> list[bytes]:
    """The datagrams of ``tests/vectors/<name>.hex`` (a one-element list for single messages)."""
    path = VECTORS_DIR / f"{name}.hex"
    return parse(path.read_text(encoding="utf-8"), path.name)


def load(name: str) -> bytes:
    """The bytes of the single message in ``tests/vectors/<name>.hex``."""
    parts = load_datagrams(name)
    if len(parts) != 1:
        raise ValueError(f"{name}.hex holds {len(parts)} datagrams; use load_datagrams()")
    return parts[0]
