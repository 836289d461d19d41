"""Portable dump and restore of a node's database (``idnode db dump`` / ``idnode db restore``).

A dump is JSON Lines, the same whichever backend wrote it, so it moves a node between SQLite
and PostgreSQL and back. The first line is the header::

    {"idnode_dump": 1, "schema": 1, "homed_prefixes": ["88.118.8"], "count": 2}

``idnode_dump`` is the format version (:data:`FORMAT`), ``schema`` the schema version of the
database dumped, ``homed_prefixes`` its homed prefixes (as first homed, in key order) and
``count`` the number of handle lines that follow, one per handle in key order::

    {"handle": "88.118.8/PV-1", "record": "AAAAAQAAAAE..."}

``handle`` is the handle as first created and ``record`` the base64 of its stored record,
:func:`~idnode.protocol.values.encode_record` of its values (the wire form of the value list).
JSON strings are ASCII (``\\u`` escapes), so a dump is plain ASCII, and dumping the same data
gives the same bytes on every backend.

:func:`dump_store` streams the handles with :meth:`~idnode.store.base.HandleStore.scan`
(memory bounded by one page) and fails if the number of handles changed meanwhile: a dump of
a database being written to is not a snapshot, so stop the writers (or dump again).
:func:`restore_store` homes the prefixes, then loads the handles with
:meth:`~idnode.store.base.HandleStore.create_records` in batches; handles that exist already
are left as they are, so restoring twice adds nothing. A dump of an older schema version
restores too (records are in the wire form, which migrations leave alone); one of a newer
version or another format is refused before anything is written. Every line of a batch is
checked before the batch is written (JSON, base64, a record that decodes and is in the stored
form, key order, the header's count), so a bad line stops the restore with a
:class:`DumpError` naming the line, with the batches before it written and nothing of its own
batch.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from idnode.errors import HandleError
from idnode.protocol.values import decode_record, encode_record
from idnode.store import HandleStore, handle_key, open_store
from idnode.store.migrations import load_migrations

__all__ = [
    "FORMAT",
    "DumpError",
    "DumpHeader",
    "RestoreSummary",
    "atomic_output",
    "dump_database",
    "dump_store",
    "read_header",
    "restore_database",
    "restore_store",
]

#: The dump format version this idnode writes and reads (the header's ``idnode_dump``).
FORMAT = 1
#: Handles per :meth:`~idnode.store.base.HandleStore.scan` call while dumping.
SCAN_PAGE = 1000
#: Handles per :meth:`~idnode.store.base.HandleStore.create_records` call while restoring.
RESTORE_BATCH = 5000


class DumpError(Exception):
    """A file that is not a valid dump (the message names the line), or a dump that could not
    be taken consistently."""


@dataclass(frozen=True, slots=True)
class DumpHeader:
    """The first line of a dump."""

    schema: int
    """The schema version of the database dumped."""
    homed_prefixes: tuple[str, ...]
    """Its homed prefixes, in key order."""
    count: int
    """The number of handle lines that follow."""

    def to_line(self) -> bytes:
        header = {
            "idnode_dump": FORMAT,
            "schema": self.schema,
            "homed_prefixes": list(self.homed_prefixes),
            "count": self.count,
        }
        return json.dumps(header).encode("ascii") + b"\n"

    @classmethod
    def parse(cls, line: bytes) -> DumpHeader:
        """The header in ``line`` (the first line of a file); DumpError if it is none, of an
        unknown format, or of a schema newer than this idnode's."""
        try:
            header = json.loads(line)
        except ValueError:  # also UnicodeDecodeError
            header = None
        if not isinstance(header, dict) or "idnode_dump" not in header:
            raise DumpError("line 1: not an idnode dump (no header)")
        if header["idnode_dump"] != FORMAT:
            raise DumpError(
                f"line 1: unknown dump format {header['idnode_dump']!r} "
                f"(this idnode reads format {FORMAT})"
            )
        schema, count = _whole(header.get("schema")), _whole(header.get("count"))
        if schema is None or count is None:
            raise DumpError("line 1: the header's schema and count must be whole numbers")
        prefixes = header.get("homed_prefixes")
        if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
            raise DumpError("line 1: the header's homed_prefixes must be a list of strings")
        latest = _latest_schema()
        if schema > latest:
            raise DumpError(
                f"line 1: the dump is of schema version {schema}, newer than this idnode "
                f"supports ({latest})"
            )
        return cls(schema, tuple(prefixes), count)


@dataclass(frozen=True, slots=True)
class RestoreSummary:
    """What a restore did."""

    handles: int
    """Handle lines read (the header's count)."""
    created: int
    """Handles created."""
    existing: int
    """Handles that existed already and were left as they are."""
    homed_prefixes: int
    """Prefixes homed (including those homed already)."""


def _whole(value: Any) -> int | None:
    """``value`` if it is a JSON whole number >= 0, else None."""
    return value if type(value) is int and value >= 0 else None


def _latest_schema() -> int:
    known = load_migrations()
    return known[-1].version if known else 0


# -- dump ------------------------------------------------------------------------------------


async def dump_store(store: HandleStore, out: IO[bytes], *, page: int = SCAN_PAGE) -> DumpHeader:
    """Write the dump of ``store`` (opened, hence at this idnode's schema version) to ``out``;
    return its header. DumpError if the number of handles changed during the dump."""
    header = DumpHeader(
        schema=_latest_schema(),
        homed_prefixes=tuple(await store.homed_prefixes()),
        count=await store.count_handles(),
    )
    out.write(header.to_line())
    written = 0
    after: str | None = None
    while batch := await store.scan(after, page):
        lines = []
        for handle, values in batch:
            record = base64.b64encode(encode_record(values)).decode("ascii")
            lines.append(json.dumps({"handle": handle, "record": record}).encode("ascii"))
        out.write(b"\n".join(lines) + b"\n")
        written += len(batch)
        after = batch[-1][0]
    if written != header.count:
        raise DumpError(
            f"the number of handles changed during the dump ({header.count} at the start, "
            f"{written} written): dump again while nothing writes to the database"
        )
    return header


async def dump_database(database: str, out: IO[bytes]) -> DumpHeader:
    """Dump ``database`` (a SQLite file path or ``postgresql://`` URL) to ``out``.

    The database is not changed: DumpError if it does not exist or its schema is not at this
    idnode's version (older: run ``idnode db migrate`` first; newer: use a newer idnode).
    """
    from idnode.store.status import database_status

    status = await database_status(database)
    if status.version == 0:
        raise DumpError(f"{status.location} has no idnode schema: nothing to dump")
    if status.version != status.latest:
        raise DumpError(
            f"{status.location} is at schema version {status.version}, this idnode at "
            f"{status.latest}: "
            + ("run `idnode db migrate` first" if status.pending else "use a newer idnode")
        )
    store = await open_store(database)
    try:
        return await dump_store(store, out)
    finally:
        await store.close()


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A file to write ``path`` through: it becomes ``path`` (fsynced) only when the block
    ends without an error, and is removed otherwise, so ``path`` is never a partial dump."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# -- restore ---------------------------------------------------------------------------------


def read_header(source: IO[bytes]) -> DumpHeader:
    """Read and check the first line of ``source`` (see :meth:`DumpHeader.parse`)."""
    return DumpHeader.parse(source.readline())


def _parse_line(number: int, line: bytes) -> tuple[str, bytes]:
    """The handle and record bytes of handle line ``number``; DumpError if it is not one."""
    try:
        entry = json.loads(line)
    except ValueError as exc:  # also UnicodeDecodeError
        raise DumpError(f"line {number}: not JSON ({exc})") from exc
    if not isinstance(entry, dict) or entry.keys() != {"handle", "record"}:
        raise DumpError(f'line {number}: expected {{"handle": ..., "record": ...}}')
    handle, text = entry["handle"], entry["record"]
    if not isinstance(handle, str) or not handle or not isinstance(text, str):
        raise DumpError(f"line {number}: handle and record must be non-empty strings")
    try:
        record = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DumpError(f"line {number}: {handle}: record is not base64 ({exc})") from exc
    try:
        canonical = encode_record(decode_record(record))
    except HandleError as exc:
        raise DumpError(f"line {number}: {handle}: record does not decode ({exc})") from exc
    if canonical != record:
        raise DumpError(f"line {number}: {handle}: record is not in the stored form")
    return handle, record


async def restore_store(
    store: HandleStore, source: IO[bytes], header: DumpHeader, *, batch_size: int = RESTORE_BATCH
) -> RestoreSummary:
    """Load the handle lines of ``source`` (positioned after the ``header`` line, see
    :func:`read_header`) into ``store`` and home the header's prefixes. Existing handles are
    left as they are. DumpError for a bad line (earlier batches stay written, none of its
    own) or a count that differs from the header's."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    for prefix in header.homed_prefixes:
        await store.home_prefix(prefix)
    created = existing = read = 0
    batch: list[tuple[str, bytes]] = []
    previous = b""  # the key of the previous handle, as UTF-8: keys sort by bytes
    number = 1
    for number, line in enumerate(source, start=2):
        handle, record = _parse_line(number, line)
        key = handle_key(handle).encode("utf-8")
        if key <= previous:
            raise DumpError(f"line {number}: {handle}: not after the previous handle in key order")
        previous = key
        read += 1
        if read > header.count:
            raise DumpError(f"line {number}: more handles than the header's count {header.count}")
        batch.append((handle, record))
        if len(batch) == batch_size:
            flags = await store.create_records(batch)
            created += sum(flags)
            existing += len(flags) - sum(flags)
            batch = []
    if read != header.count:
        raise DumpError(
            f"line {number}: the file ends there, after {read} of the header's "
            f"{header.count} handles (truncated?)"
        )
    if batch:
        flags = await store.create_records(batch)
        created += sum(flags)
        existing += len(flags) - sum(flags)
    return RestoreSummary(read, created, existing, len(header.homed_prefixes))


async def restore_database(
    database: str, source: IO[bytes], *, batch_size: int = RESTORE_BATCH
) -> RestoreSummary:
    """Restore the dump in ``source`` into ``database`` (a SQLite file path or
    ``postgresql://`` URL; created and migrated as needed). The header is checked before the
    database is opened, so a file that is not a dump changes nothing."""
    header = read_header(source)
    store = await open_store(database)
    try:
        return await restore_store(store, source, header, batch_size=batch_size)
    finally:
        await store.close()
