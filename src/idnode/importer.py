"""Bulk registration from CSV or JSON Lines files (``idnode import``).

Input, one record per line:

* **CSV** with a header row. One column names the identifier: ``handle`` (the whole handle)
  or ``suffix`` (then a prefix is given as an option). Every other column is a value,
  named ``INDEX:TYPE`` or ``INDEX:TYPE:PERMS`` (``PERMS`` as in the REST API: four binary
  digits, admin read, admin write, public read, public write; default ``1110``); the cell is
  the value's data as UTF-8 text, and an empty cell means no value.
* **JSONL**: ``{"handle": "...", "values": [...]}`` (or ``"suffix"``), each value as the REST
  API writes it (``index``, ``type``, ``data`` as a bare string or ``{"format", "value"}``,
  optional ``ttl`` and ``permissions``).

A record without an HS_ADMIN value gets one at index 100 naming the ``admin`` identity.

**Templates.** A row with a value at index 1001 (a template link, or the marker of a template's
own record) is checked as the node's write paths check it
(:class:`~idnode.industry.enforce.TemplateGuard`): against its metadata template, which is
read once per import, with references to earlier rows of the same batch allowed; a row that
breaks it goes to the error report with ``errors``, its per-field errors. The template version
link (1002) is added, and the rows' index entries (references, unique values) are written
with them. Rows without a value at 1001 take the fast path: they are never decoded.

Rows are registered in batches, one transaction each (:meth:`HandleStore.create_records`).
Existing handles are left unchanged and counted as such, so an import is idempotent. A bad
row does not stop the others: it goes to the error report (JSON Lines: ``line``, ``handle``,
``error``, and ``errors`` for a row its template refuses). After every committed batch a
checkpoint (the byte offset reached, the counts and the error report's length) is written
atomically; an import started again on the same file
resumes from it, and re-running the batch that was in flight adds nothing.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from idnode.errors import HandleError, ProtocolViolation, UniqueValueTaken
from idnode.industry.codes import FieldError, TemplateViolation
from idnode.industry.directory import Pending
from idnode.industry.enforce import TemplateGuard, WritePlan
from idnode.industry.layout import TEMPLATE_LINK_INDEX
from idnode.jsonvalues import value_from_json
from idnode.protocol import types as value_types
from idnode.protocol.codes import Permission
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.values import (
    DEFAULT_PERMISSIONS,
    DEFAULT_TTL,
    HandleValue,
    decode_record,
    encode_record,
)
from idnode.server.authz import Identity
from idnode.store.base import HandleStore, handle_key, prefix_of
from idnode.store.writectx import IndexEntry, WriteContext, write_context

__all__ = ["ImportOptions", "ImportSummary", "RecordEncoder", "homed_check", "run_import"]

#: Handle length limit (spec §1.1).
MAX_HANDLE_BYTES = 2048
#: All HS_ADMIN bits except ADD_NA/DELETE_NA.
_HANDLE_ADMIN_PERMISSIONS = 0x0FF3
_HEAD = struct.Struct(">IIBIBI")
_NO_REFERENCES = b"\x00\x00\x00\x00"
_LENGTH = struct.Struct(">I").pack


class RowError(Exception):
    """A row that cannot be registered; the message goes to the error report."""


@dataclass(frozen=True)
class _Column:
    """A value column: the fixed bytes before the data are computed once."""

    index: int
    type: str
    head: bytes
    typed: bool  # whether the type has a codec that must accept the data

    def check(self, data: bytes) -> None:
        """RowError unless ``data`` decodes as the column's type (for typed columns)."""
        if self.typed:
            try:
                value_types.parse(self.type, data)
            except ProtocolViolation as exc:
                raise RowError(f"{self.index}:{self.type}: {exc}") from exc

    def encode(self, data: bytes) -> bytes:
        self.check(data)
        return b"".join((self.head, _LENGTH(len(data)), data, _NO_REFERENCES))


class RecordEncoder:
    """Encodes records in the stored form (:func:`~idnode.protocol.values.encode_record`)
    without building HandleValue objects: the bytes of each column up to its data are made
    once. ``timestamp`` is the time written into every value."""

    def __init__(self, timestamp: int, admin: Identity | None) -> None:
        self.timestamp = timestamp
        self.admin_value: HandleValue | None = None
        """The default HS_ADMIN value, if there is an admin identity."""
        self.admin: bytes | None = None
        """The same, encoded."""
        if admin is not None:
            data = AdminRecord(_HANDLE_ADMIN_PERMISSIONS, admin.handle, admin.index).to_bytes()
            self.admin_value = HandleValue(100, "HS_ADMIN", data, timestamp=timestamp)
            self.admin = self.admin_value.encode()

    def column(
        self, index: int, vtype: str, permissions: int = DEFAULT_PERMISSIONS, ttl: int = DEFAULT_TTL
    ) -> _Column:
        type_bytes = vtype.encode("utf-8")
        head = _HEAD.pack(index, self.timestamp, 0, ttl, permissions, len(type_bytes))
        codec = value_types.codec_for(vtype)
        typed = codec is not None and vtype.split(".")[0].upper() not in _TEXT_TYPES
        return _Column(index, vtype, head + type_bytes, typed)

    def record(self, values: list[HandleValue]) -> bytes:
        """The record of ``values`` (timestamps set), with the admin value if none is given."""
        stamped = [v.with_changes(timestamp=self.timestamp) for v in values]
        if self.admin_value is not None and not any(v.type.upper() == "HS_ADMIN" for v in values):
            if any(v.index == 100 for v in values):
                raise RowError("index 100 is taken and no HS_ADMIN is given")
            stamped.append(self.admin_value)
        try:
            return encode_record(stamped)
        except ProtocolViolation as exc:
            raise RowError(str(exc)) from exc


_TEXT_TYPES = {"URL", "EMAIL", "HS_ALIAS", "HS_SERV"}


@dataclass(frozen=True)
class ImportOptions:
    prefix: str | None = None
    """Prefix for rows that give a ``suffix`` instead of a ``handle``."""
    admin: Identity | None = None
    """HS_ADMIN (index 100) for records that have none; None: records must bring their own."""
    batch_size: int = 5000
    """Rows per transaction."""
    homed: frozenset[str] = frozenset()
    """Keys of the prefixes homed on the node; rows under other prefixes are refused."""
    workers: int = 0
    """Processes that parse rows while the store writes (0: a thread of this process)."""


@dataclass
class ImportSummary:
    rows: int = 0
    created: int = 0
    existing: int = 0
    failed: int = 0
    offset: int = 0
    """Bytes of the input file done (committed)."""
    errors_size: int = 0
    """Bytes of the error report written for the rows done."""
    seconds: float = 0.0
    resumed: bool = False


# -- parsing ---------------------------------------------------------------------------------


class _HandleCheck:
    """Validates handles: syntax, length, and a prefix homed on the node (cached per prefix)."""

    def __init__(self, homed: frozenset[str]) -> None:
        self._homed = homed
        self._ok: set[str] = set()

    def __call__(self, handle: str) -> None:
        prefix, slash, suffix = handle.partition("/")
        if not slash or not prefix or not suffix:
            raise RowError(f"invalid handle {handle!r}: expected <prefix>/<suffix>")
        if len(handle) > MAX_HANDLE_BYTES // 4 and len(handle.encode()) > MAX_HANDLE_BYTES:
            raise RowError(f"handle longer than {MAX_HANDLE_BYTES} bytes")
        if prefix in self._ok:
            return
        if self._homed and handle_key(prefix) not in self._homed:
            raise RowError(f"prefix {prefix} is not homed on this node")
        self._ok.add(prefix)


def _perms(text: str) -> int:
    if len(text) != 4 or set(text) - {"0", "1"}:
        raise ValueError(f"permissions must be four binary digits, got {text!r}")
    bits = (
        Permission.ADMIN_READ,
        Permission.ADMIN_WRITE,
        Permission.PUBLIC_READ,
        Permission.PUBLIC_WRITE,
    )
    return sum(int(b) for c, b in zip(text, bits, strict=True) if c == "1")


class _CsvLayout:
    """The meaning of each CSV column, from the header row."""

    def __init__(self, header: list[str], encoder: RecordEncoder, prefix: str | None) -> None:
        names = [h.strip() for h in header]
        lowered = [n.lower() for n in names]
        if "handle" in lowered:
            self.name_column, self.use_suffix = lowered.index("handle"), False
        elif "suffix" in lowered:
            if not prefix:
                raise ValueError("the file has a 'suffix' column: give the prefix")
            self.name_column, self.use_suffix = lowered.index("suffix"), True
        else:
            raise ValueError("the header needs a 'handle' or a 'suffix' column")
        self.prefix = prefix
        self.columns: list[tuple[int, _Column]] = []
        for position, name in enumerate(names):
            if position == self.name_column:
                continue
            parts = name.split(":")
            if len(parts) not in (2, 3) or not parts[0].isdigit() or not parts[1]:
                raise ValueError(f"column {name!r}: expected INDEX:TYPE or INDEX:TYPE:PERMS")
            perms = _perms(parts[2]) if len(parts) == 3 else DEFAULT_PERMISSIONS
            index = int(parts[0])
            if not 0 < index < 2**32:
                raise ValueError(f"column {name!r}: index out of range")
            self.columns.append((position, encoder.column(index, parts[1], perms)))
        self.width = len(names)
        self.plan(encoder)

    def name_of(self, cells: list[str]) -> str:
        """The handle or suffix cell of a row ("" if the row is too short)."""
        return cells[self.name_column] if self.name_column < len(cells) else ""

    def plan(self, encoder: RecordEncoder) -> None:
        """Fix the encoding order once: columns by index, and where a row without an HS_ADMIN
        value gets the default one (index 100)."""
        ordered = sorted(self.columns, key=lambda pc: pc[1].index)
        indexes = [c.index for _, c in ordered]
        if len(set(indexes)) != len(indexes):
            raise ValueError("two columns share an index")
        self.admin_positions = [p for p, c in ordered if c.type.upper() == "HS_ADMIN"]
        if not self.admin_positions and encoder.admin is None:
            raise ValueError("no HS_ADMIN column and no admin identity to add one")
        self.default_admin = encoder.admin
        self.position_100 = next((p for p, c in ordered if c.index == 100), None)
        self.position_link = next((p for p, c in ordered if c.index == TEMPLATE_LINK_INDEX), None)
        self.typed = [pc for pc in ordered if pc[1].typed]
        self.low = [pc for pc in ordered if pc[1].index < 100]
        self.high = [pc for pc in ordered if pc[1].index >= 100]

    def links(self, cells: list[str]) -> bool:
        """Whether a parsed row has a value at 1001 (a template link or template marker)."""
        return self.position_link is not None and bool(cells[self.position_link])

    def parse(self, cells: list[str], check: Callable[[str], None]) -> tuple[str, bytes]:
        if len(cells) != self.width:
            raise RowError(f"expected {self.width} cells, got {len(cells)}")
        name = cells[self.name_column].strip()
        handle = f"{self.prefix}/{name}" if self.use_suffix else name
        check(handle)
        for pos, col in self.typed:
            if cells[pos]:
                col.check(cells[pos].encode("utf-8"))
        # The hot loop of an import: head, length, data and an empty reference list per value.
        parts: list[bytes] = []
        count = 0
        for pos, col in self.low:
            if cell := cells[pos]:
                data = cell.encode("utf-8")
                parts += (col.head, _LENGTH(len(data)), data, _NO_REFERENCES)
                count += 1
        if not any(cells[p] for p in self.admin_positions):
            if self.default_admin is None:
                raise RowError("no HS_ADMIN value")
            if self.position_100 is not None and cells[self.position_100]:
                raise RowError("index 100 is taken and the row has no HS_ADMIN value")
            parts.append(self.default_admin)
            count += 1
        for pos, col in self.high:
            if cell := cells[pos]:
                data = cell.encode("utf-8")
                parts += (col.head, _LENGTH(len(data)), data, _NO_REFERENCES)
                count += 1
        return handle, _LENGTH(count) + b"".join(parts)


def _jsonl_record(
    obj: Any, encoder: RecordEncoder, options: ImportOptions, check: Callable[[str], None]
) -> tuple[str, bytes, bool]:
    """(handle, record, whether it has a value at 1001) of one JSON Lines row."""
    if not isinstance(obj, dict):
        raise RowError("each line must be a JSON object")
    if "handle" in obj:
        handle = obj["handle"]
    elif "suffix" in obj and options.prefix:
        handle = f"{options.prefix}/{obj['suffix']}"
    else:
        raise RowError("needs 'handle' (or 'suffix' with a prefix option)")
    if not isinstance(handle, str):
        raise RowError("'handle' must be a string")
    check(handle)
    raw_values = obj.get("values", [])
    if not isinstance(raw_values, list):
        raise RowError("'values' must be a list")
    values = []
    for item in raw_values:
        try:
            values.append(value_from_json(item))
        except (HandleError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise RowError(f"bad value {str(item)[:80]}: {exc}") from exc
    links = any(v.index == TEMPLATE_LINK_INDEX for v in values)
    return handle, encoder.record(values), links


# -- files and checkpoints -------------------------------------------------------------------


def _fingerprint(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(65536)
    return f"{path.stat().st_size}:{hashlib.sha256(head).hexdigest()}"


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _lines(f: BinaryIO, offset: int) -> Iterator[tuple[int, bytes]]:
    """(offset after the line, line) from ``offset`` on."""
    f.seek(offset)
    for line in f:
        offset += len(line)
        yield offset, line


@dataclass
class _Batch:
    records: list[tuple[str, bytes]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    linked: set[int] = field(default_factory=set)
    """Positions in ``records`` of rows with a value at 1001 (checked against templates)."""
    errors: list[str] = field(default_factory=list)
    end_offset: int = 0
    last_line: int = 0


class _Parser:
    """Turns chunks of input lines into batches; picklable, so it can run in a worker
    process (:attr:`ImportOptions.workers`)."""

    def __init__(
        self,
        layout: _CsvLayout | None,
        encoder: RecordEncoder,
        options: ImportOptions,
        check: _HandleCheck,
    ) -> None:
        self.layout = layout
        self.encoder = encoder
        self.options = options
        self.check = check

    def parse(self, line_no: int, chunk: list[tuple[int, bytes]]) -> _Batch:
        """``chunk``: (offset after the line, line) pairs; ``line_no``: the line before."""
        batch = _Batch(end_offset=chunk[-1][0])
        texts = [raw.decode("utf-8", "replace").rstrip("\r\n") for _, raw in chunk]
        layout = self.layout
        rows = _csv_rows(texts) if layout is not None else iter(texts)
        for text, row in zip(texts, rows, strict=True):
            line_no += 1
            if not text.strip():
                continue
            name = ""
            try:
                if isinstance(row, csv.Error):
                    raise RowError(f"CSV: {row}")
                if layout is not None:
                    assert isinstance(row, list)
                    name = layout.name_of(row)
                    record = layout.parse(row, self.check)
                    links = layout.links(row)
                else:
                    obj = json.loads(text)
                    handle, data, links = _jsonl_record(obj, self.encoder, self.options, self.check)
                    record = handle, data
                if links:
                    batch.linked.add(len(batch.records))
                batch.records.append(record)
                batch.lines.append(line_no)
            except (RowError, ValueError) as exc:
                batch.errors.append(_error_line(line_no, name, str(exc)))
        batch.last_line = line_no
        return batch


def _exit_with_parent(parent: int) -> None:
    """In a parsing process: exit as soon as the importing process is gone (``kill -9``
    leaves no orphan behind)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="idnode-parent-watch").start()


def _parse_executor(workers: int) -> Executor:
    """A process for parsing when ``workers`` is 1 or more (the GIL-free way to use a second
    core), else a thread (parsing still overlaps the store's writes, which release the GIL)."""
    if workers > 0:
        return ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )
    return ThreadPoolExecutor(1, thread_name_prefix="idnode-import-parse")


async def run_import(
    store: HandleStore,
    path: Path,
    options: ImportOptions,
    *,
    fmt: str | None = None,
    errors_path: Path | None = None,
    checkpoint_path: Path | None = None,
    progress: Callable[[ImportSummary, int], None] | None = None,
    clock: Callable[[], float] = time.time,
    guard: TemplateGuard | None = None,
) -> ImportSummary:
    """Import ``path`` into ``store``; returns the counts. ``progress(summary, total_bytes)``
    is called after every batch. Raises ValueError for an unusable file (bad header).

    ``guard`` checks rows with a value at 1001 against their templates; by default one that
    reads templates and references from ``store`` (identifiers under prefixes not homed on
    the node cannot be read: give a guard with a resolver for them)."""
    fmt = fmt or ("jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "csv")
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown format {fmt!r}")
    errors_path = errors_path or path.with_name(path.name + ".errors.jsonl")
    checkpoint_path = checkpoint_path or path.with_name(path.name + ".checkpoint.json")
    fingerprint = _fingerprint(path)
    total_bytes = path.stat().st_size
    started = clock()
    encoder = RecordEncoder(int(started), options.admin)
    check = _HandleCheck(options.homed)
    writer = _Writer(
        store,
        guard or TemplateGuard(store, is_local=homed_check(options.homed), max_age=math.inf),
        WriteContext(
            actor=None if options.admin is None else str(options.admin),
            origin=f"import:{path.name}",
        ),
        encoder.timestamp,
        options.admin,
    )
    summary = ImportSummary()
    line_no = 0
    if checkpoint_path.exists():
        saved = json.loads(checkpoint_path.read_text(encoding="utf-8"))
        if saved.get("fingerprint") == fingerprint:
            line_no = saved["line"]
            for key in ("rows", "created", "existing", "failed", "offset", "errors_size"):
                setattr(summary, key, saved[key])
            summary.resumed = True

    with path.open("rb") as f, errors_path.open("ab") as errors:
        errors.truncate(summary.errors_size)
        errors.seek(summary.errors_size)
        layout: _CsvLayout | None = None
        start = summary.offset
        if fmt == "csv":
            f.seek(0)
            header_line = f.readline()
            header = next(csv.reader([header_line.decode("utf-8-sig")]), [])
            layout = _CsvLayout(header, encoder, options.prefix)
            if start == 0:
                start, line_no = len(header_line), 1
        parser = _Parser(layout, encoder, options, check)
        lines = _lines(f, start)
        loop = asyncio.get_running_loop()
        # Parse the next chunk (in a worker) while the store writes this one; batches still
        # commit, and checkpoint, strictly in order.
        with _parse_executor(options.workers) as executor:

            def submit(first_line: int) -> asyncio.Future[_Batch] | None:
                chunk = list(itertools.islice(lines, options.batch_size))
                if not chunk:
                    return None
                return loop.run_in_executor(executor, parser.parse, first_line, chunk)

            parsing = submit(line_no)
            while parsing is not None:
                batch = await parsing
                line_no = batch.last_line
                parsing = submit(line_no)
                await _commit(writer, batch, summary, errors, checkpoint_path, fingerprint, line_no)
                if progress is not None:
                    progress(summary, total_bytes)
    checkpoint_path.unlink(missing_ok=True)
    summary.seconds = clock() - started
    if progress is not None:
        progress(summary, total_bytes)
    return summary


def _csv_rows(texts: list[str]) -> Iterator[list[str] | csv.Error]:
    """One parsed row (or the CSV error) per line, with one reader for all the lines."""
    start = 0
    while start < len(texts):
        reader = csv.reader(texts[start:])
        try:
            for row in reader:
                start += 1
                yield row
        except csv.Error as exc:
            start += 1
            yield exc


def _error_line(line: int, handle: str, error: str, errors: tuple[FieldError, ...] = ()) -> str:
    entry: dict[str, object] = {"line": line, "handle": handle, "error": error}
    if errors:
        entry["errors"] = [e.to_json() for e in errors]
    return json.dumps(entry, ensure_ascii=False)


def homed_check(homed: frozenset[str]) -> Callable[[str], Awaitable[bool]]:
    """``is_local`` of the default guard: the handle's prefix is homed (any, if none given)."""

    async def is_local(handle: str) -> bool:
        return not homed or handle_key(prefix_of(handle)) in homed

    return is_local


@dataclass
class _Row:
    handle: str
    record: bytes
    line: int
    plan: WritePlan | None = None
    """For a row checked against a template: what the guard planned."""


class _Writer:
    """Commits batches: checks linked rows with the guard, then writes the batch in one
    transaction carrying the rows' index entries (:mod:`idnode.store.writectx`)."""

    def __init__(
        self,
        store: HandleStore,
        guard: TemplateGuard,
        context: WriteContext,
        timestamp: int,
        writer: Identity | None = None,
    ) -> None:
        self.store = store
        self.guard = guard
        self.context = context
        self.timestamp = timestamp
        #: Who the import writes as: the use of templates is checked for it (none: not).
        self.writer = writer

    async def check(self, rows: list[_Row], linked: set[int], errors: list[str]) -> list[_Row]:
        """The rows that pass their templates (records rewritten with the version link);
        the others go to ``errors``. ``linked``: positions of the rows to check."""
        pending = Pending()
        passed: list[_Row] = []
        for position, row in enumerate(rows):
            if position in linked:
                try:
                    values = decode_record(row.record)
                    row.plan = await self.guard.check(
                        row.handle,
                        None,
                        values,
                        given=values,
                        timestamp=self.timestamp,
                        pending=pending,
                        writer=self.writer,
                    )
                except TemplateViolation as exc:
                    errors.append(_error_line(row.line, row.handle, exc.message, exc.errors))
                    continue
                if row.plan.rewritten:
                    row.record = encode_record(row.plan.values or ())
            passed.append(row)
        return passed

    async def write(self, rows: list[_Row], errors: list[str]) -> list[bool]:
        """Create the rows in one transaction; whether each was created. If a unique value
        was taken meanwhile (by a node writing the same database), each row is checked
        again and written on its own."""
        try:
            return await self._create(rows)
        except UniqueValueTaken:
            created: list[bool] = []
            for row in rows:
                again = await self.check([row], {0} if row.plan else set(), errors)
                try:
                    created += await self._create(again)
                except UniqueValueTaken as exc:
                    assert row.plan is not None  # only rows with a template have unique keys
                    violation = row.plan.unique_violation(exc)
                    line = _error_line(row.line, row.handle, violation.message, violation.errors)
                    errors.append(line)
            return created

    async def _create(self, rows: list[_Row]) -> list[bool]:
        if not rows:
            return []
        index: dict[str, frozenset[IndexEntry]] = {
            r.handle: r.plan.entries
            for r in rows
            if r.plan is not None and r.plan.template is not None
        }
        context = WriteContext(self.context.actor, self.context.origin, index)
        with write_context(context):
            return await self.store.create_records([(r.handle, r.record) for r in rows])


async def _commit(
    writer: _Writer,
    batch: _Batch,
    summary: ImportSummary,
    errors: BinaryIO,
    checkpoint_path: Path,
    fingerprint: str,
    line_no: int,
) -> None:
    parsed_errors = len(batch.errors)
    seen: dict[str, int] = {}
    rows: list[_Row] = []
    linked: set[int] = set()
    for position, ((handle, record), line) in enumerate(
        zip(batch.records, batch.lines, strict=True)
    ):
        key = handle_key(handle)
        if key in seen:
            batch.errors.append(_error_line(line, handle, f"duplicate of line {seen[key]}"))
            continue
        seen[key] = line
        if position in batch.linked:
            linked.add(len(rows))
        rows.append(_Row(handle, record, line))
    if linked:
        rows = await writer.check(rows, linked, batch.errors)
    created = await writer.write(rows, batch.errors)
    summary.rows += len(batch.records) + parsed_errors
    summary.created += sum(created)
    summary.existing += len(created) - sum(created)
    summary.failed += len(batch.errors)
    for entry in batch.errors:
        errors.write(entry.encode("utf-8") + b"\n")
    errors.flush()
    os.fsync(errors.fileno())
    summary.offset = batch.end_offset
    summary.errors_size = errors.tell()
    state = asdict(summary) | {"fingerprint": fingerprint, "line": line_no}
    _write_atomically(checkpoint_path, json.dumps(state))
