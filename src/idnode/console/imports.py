"""Bulk imports started from the console: the uploaded file is saved under the node's
directory and imported in the background with :func:`idnode.importer.run_import`, whose
progress callback updates the job the progress page shows.

An import writes to the store directly (as ``idnode import`` does), so the permission check
happens before it starts: rows are accepted only under ``prefixes``, the prefixes the
account may register under (:meth:`~idnode.console.accounts.Viewer.writable_prefixes`);
records without HS_ADMIN get the account's identity as administrator.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from idnode.importer import ImportOptions, ImportSummary, run_import
from idnode.server.authz import Identity
from idnode.store.base import HandleStore, handle_key

__all__ = ["ImportJob", "ImportJobs", "started_by"]

log = logging.getLogger(__name__)

#: Rows per transaction of a console import (small, so the progress bar moves).
BATCH = 200
#: Jobs remembered (the oldest finished ones are forgotten first).
MAX_JOBS = 50


@dataclass
class ImportJob:
    id: str
    owner: str
    filename: str
    total_bytes: int
    summary: ImportSummary = field(default_factory=ImportSummary)
    done: bool = False
    error: str | None = None
    started: float = field(default_factory=time.time)
    errors_path: Path | None = None

    @property
    def percent(self) -> int:
        if self.done:
            return 100
        if self.total_bytes <= 0:
            return 0
        return min(99, self.summary.offset * 100 // self.total_bytes)

    def refused(self, limit: int = 20) -> list[str]:
        """The first lines of the error report."""
        if self.errors_path is None or not self.errors_path.exists():
            return []
        with self.errors_path.open(encoding="utf-8") as f:
            return [line.rstrip("\n") for line in itertools.islice(f, limit)]

    def to_json(self) -> dict[str, object]:
        s = self.summary
        return {
            "id": self.id,
            "filename": self.filename,
            "percent": self.percent,
            "done": self.done,
            "error": self.error,
            "rows": s.rows,
            "created": s.created,
            "existing": s.existing,
            "failed": s.failed,
        }


def started_by(job_id: str) -> int | None:
    """The id of the process that started job ``job_id`` (None when it does not say)."""
    parts = job_id.split("-")
    if len(parts) == 3 and parts[1].isascii() and parts[1].isdigit() and len(parts[1]) < 10:
        return int(parts[1])
    return None


class ImportJobs:
    """The imports of one node process, kept in its memory (a progress page served by
    another worker process, or after a restart, does not find them: the console says so),
    their files in ``directory``."""

    def __init__(self, store: HandleStore, directory: Path) -> None:
        self.store = store
        self.directory = directory
        self.jobs: dict[str, ImportJob] = {}
        self._numbers = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, job_id: str, owner: str) -> ImportJob | None:
        job = self.jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    def start(
        self, owner: str, filename: str, data: bytes, admin: Identity, prefixes: frozenset[str]
    ) -> ImportJob:
        """Save ``data`` and start importing it as ``owner``; rows only under ``prefixes``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name)[-80:] or "upload"
        suffix = ".jsonl" if safe.lower().endswith((".jsonl", ".ndjson", ".json")) else ".csv"
        while True:
            # the process id keeps the jobs of several worker processes apart (one directory)
            job_id = f"{int(time.time())}-{os.getpid()}-{next(self._numbers)}"
            path = self.directory / f"{job_id}{suffix}"
            try:
                with path.open("xb") as f:  # never another job's file
                    f.write(data)
                break
            except FileExistsError:
                continue
        job = ImportJob(job_id, owner, filename, len(data))
        job.errors_path = path.with_name(path.name + ".errors.jsonl")
        self._forget_old()
        self.jobs[job_id] = job
        options = ImportOptions(
            admin=admin,
            batch_size=BATCH,
            homed=frozenset(handle_key(p) for p in prefixes) or frozenset({"\x00none"}),
        )
        task = asyncio.get_running_loop().create_task(self._run(job, path, options))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: ImportJob, path: Path, options: ImportOptions) -> None:
        def progress(summary: ImportSummary, total: int) -> None:
            job.summary = summary
            job.total_bytes = total

        try:
            fmt = "jsonl" if path.suffix == ".jsonl" else "csv"
            job.summary = await run_import(
                self.store, path, options, fmt=fmt, errors_path=job.errors_path,
                progress=progress,
            )  # fmt: skip
        except (ValueError, UnicodeDecodeError) as exc:
            job.error = str(exc)
        except Exception as exc:
            log.exception("console import %s failed", job.id)
            job.error = f"internal error: {type(exc).__name__}"
        finally:
            job.done = True

    def _forget_old(self) -> None:
        while len(self.jobs) >= MAX_JOBS:
            finished = [j for j in self.jobs.values() if j.done]
            if not finished:
                return
            del self.jobs[min(finished, key=lambda j: j.started).id]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
