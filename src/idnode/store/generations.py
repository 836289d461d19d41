"""Change counters shared by every process that writes or reads one database.

A :class:`Generations` is an array of 64-bit slots in a small memory-mapped file: slot 0 for
changes that touch everything (a prefix homed or unhomed, a replicated batch), the others
for handles, a handle's slot chosen by a hash of its key that every process computes the
same way (CRC-32, not Python's salted ``hash``). A store writes a fresh value into the slots
of the handles it changed right after each commit (:meth:`bump`); a reader notes the values
before it reads (:meth:`stamp`) and knows its copy is current as long as they are unchanged
(:meth:`current`).

Why a fresh value and not ``+= 1``: two processes may bump one slot at once, and an increment
done as read-add-write could then be lost, leaving a slot at a value a reader already noted.
A bump writes a number no process wrote before (a random 64-bit start per process, counting
up), so the slot differs from every value noted before the bump whatever the interleaving.
Slots are aligned 8-byte words: loads and stores of one slot are not torn on the platforms
CPython runs on.

Where the file lives: next to a SQLite database (``<file>-gen``, like its ``-wal`` and
``-shm``), so that every process opening the file shares it; for PostgreSQL, in shared memory
(``/dev/shm``, else the temporary directory) under a name derived from the server and
database, so that every process of this host using that database shares it. Writers on
another host are not seen (see :mod:`idnode.server.respcache`). When the file cannot be
created the counters are private to the process (an anonymous mapping).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["SLOTS", "Generations", "generations_for"]

#: Slots of the array (512 KiB); slot 0 stands for every handle.
SLOTS = 65536
_SIZE = SLOTS * 8


class Generations:
    def __init__(self, path: Path | None) -> None:
        """Map ``path`` (created, zero-filled, when absent); None or an unusable path: an
        array private to this process."""
        self.path: Path | None = None
        mapping: mmap.mmap | None = None
        if path is not None:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    if os.fstat(fd).st_size < _SIZE:
                        os.ftruncate(fd, _SIZE)
                    mapping = mmap.mmap(fd, _SIZE)
                finally:
                    os.close(fd)
                self.path = path
            except OSError:
                mapping = None
        if mapping is None:
            mapping = mmap.mmap(-1, _SIZE)
        self._map = mapping
        self._slots = memoryview(mapping).cast("Q")
        self._next = int.from_bytes(os.urandom(8), "big") | 1

    @staticmethod
    def slot(key: str) -> int:
        """The slot of a handle key (never 0)."""
        return 1 + zlib.crc32(key.encode("utf-8")) % (SLOTS - 1)

    def stamp(self, slot: int) -> tuple[int, int]:
        """The values of slot 0 and ``slot`` now: note them before reading the data."""
        slots = self._slots
        return slots[0], slots[slot]

    def current(self, slot: int, stamp: tuple[int, int]) -> bool:
        """Whether nothing in ``slot`` (or everything) changed since ``stamp`` was taken."""
        slots = self._slots
        return slots[0] == stamp[0] and slots[slot] == stamp[1]

    def bump(self, keys: Iterable[str] | None) -> None:
        """After a commit: mark the handles of ``keys`` changed (None: everything)."""
        slots = self._slots
        targets = [0] if keys is None else {self.slot(k) for k in keys}
        for slot in targets:
            self._next = (self._next + 1) & 0xFFFFFFFFFFFFFFFF or 1
            slots[slot] = self._next

    def close(self) -> None:
        self._slots.release()
        self._map.close()


def generations_for(database: str) -> Generations:
    """The shared counters of ``database``: a SQLite path or a ``postgresql://`` URL."""
    if database.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(database)
        # The hosts (several for a multi-host URL), without the credentials.
        hosts = parts.netloc.rpartition("@")[2]
        name = f"{hosts}/{parts.path.lstrip('/')}?{parts.query}"
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:24]
        base = Path("/dev/shm")
        if not base.is_dir() or not os.access(base, os.W_OK):
            base = Path(tempfile.gettempdir())
        return Generations(base / f"idnode-gen-{os.getuid()}-{digest}")
    if database in ("", ":memory:") or database.startswith("file:"):
        return Generations(None)
    return Generations(Path(database + "-gen"))
