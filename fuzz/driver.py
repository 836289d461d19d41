"""Shared plumbing of the fuzzing harnesses: corpus paths, a mutation driver, the entry point.

Every harness module (:mod:`fuzz.message`, :mod:`fuzz.values`, :mod:`fuzz.dispatch`) exposes
``test_one_input(data: bytes) -> None``, which returns normally for every input it accepts
and raises (AssertionError, or whatever escaped the code under test) on a bug.

Two drivers run them:

* :func:`main` — the long campaign (``make fuzz``). With `atheris`_ installed (it is in the
  ``test`` extra) it instruments the loaded Python code and hands the harness to libFuzzer:
  coverage-guided, new inputs go to the first corpus directory given, crashes to
  ``-artifact_prefix``. Without atheris it falls back to :func:`campaign`, a coverage-less
  random mutation driver that understands the same ``-max_total_time=``,
  ``-artifact_prefix=``, ``-runs=`` and corpus-directory arguments (and says so on stderr).
* :func:`campaign` — the bounded run of ``tests/test_fuzz.py``: every seed, then ``count``
  seeded random mutations of them. Deterministic for a given ``seed``.

Layout: ``fuzz/corpus/<harness>/`` holds the checked-in seeds (built by
:mod:`fuzz.build_corpus`); ``fuzz/regressions/<harness>/`` holds every crashing input ever
found, which ``tests/test_fuzz.py`` replays.

.. _atheris: https://github.com/google/atheris
"""

from __future__ import annotations

import hashlib
import importlib
import random
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "CORPUS_DIR",
    "HARNESSES",
    "REGRESSIONS_DIR",
    "Crash",
    "Harness",
    "campaign",
    "fix_lengths",
    "main",
    "mutate",
    "read_dir",
]

FUZZ_DIR = Path(__file__).resolve().parent
CORPUS_DIR = FUZZ_DIR / "corpus"
REGRESSIONS_DIR = FUZZ_DIR / "regressions"
#: The harness names: ``fuzz/<name>.py``, ``fuzz/corpus/<name>/``, ``fuzz/regressions/<name>/``.
HARNESSES = ("message", "values", "dispatch")

Harness = Callable[[bytes], None]

#: Inputs longer than this are cut by the mutation driver (libFuzzer has its own -max_len).
MAX_LEN = 8192

_INTERESTING = (
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\x00\x00\x00\x00",
    b"\xff\xff\xff\xff",
    b"\x7f\xff\xff\xff",
    b"\x80\x00\x00\x00",
    b"\x00\x00\x00\x01",
    b"\x00\x04\x00\x00",
    b"\x00\x04\x00\x01",
    b"\x00\x00\xff\xff",
    b"\x02\x0b",
)


class Crash(Exception):
    """A harness raised on ``data``; the original exception is the ``__cause__``."""

    def __init__(self, data: bytes, where: str) -> None:
        super().__init__(f"harness raised on {where}: {data.hex()}")
        self.data = data


def read_dir(directory: Path) -> list[tuple[Path, bytes]]:
    """Every regular file of ``directory`` (none if it does not exist), sorted by name,
    skipping dot files (``.gitkeep``) and ``README*``."""
    if not directory.is_dir():
        return []
    return [
        (p, p.read_bytes())
        for p in sorted(directory.iterdir())
        if p.is_file() and not p.name.startswith(".") and not p.name.startswith("README")
    ]


def mutate(rng: random.Random, data: bytes, pool: Sequence[bytes]) -> bytes:
    """``data`` after one to four random edits (bit flips, byte writes, interesting integers,
    inserts, deletes, duplication, truncation, splices with another ``pool`` entry)."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(9)
        pos = rng.randrange(len(buf) + 1)
        if kind == 0 and buf:
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif kind == 1 and buf:
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif kind == 2:
            word = rng.choice(_INTERESTING)
            buf[pos : pos + len(word)] = word
        elif kind == 3:
            buf[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif kind == 4 and buf:
            del buf[pos : pos + rng.randint(1, 16)]
        elif kind == 5 and buf:
            start = rng.randrange(len(buf))
            buf[pos:pos] = buf[start : start + rng.randint(1, 32)]
        elif kind == 6:
            del buf[pos:]
        elif kind == 7 and pool:
            other = rng.choice(pool)
            cut = rng.randrange(len(other) + 1)
            buf[pos:] = other[cut:]
        else:
            buf[pos:pos] = rng.randbytes(1)
    return bytes(buf[:MAX_LEN])


def fix_lengths(rng: random.Random, data: bytes) -> bytes:
    """``data`` with its Handle length fields made consistent, most of the time: the envelope's
    message length (bytes 16-19) always, the header's body length (bytes 40-43, assuming an
    empty credential after the body) half of the time. Without it nearly every mutation of a
    message dies at the envelope length check, and a coverage-less driver never learns that."""
    if len(data) < 20 or rng.random() < 0.1:
        return data
    buf = bytearray(data)
    buf[16:20] = (len(buf) - 20).to_bytes(4, "big")
    if len(buf) >= 48 and rng.random() < 0.5:
        buf[40:44] = (len(buf) - 48).to_bytes(4, "big")
    return bytes(buf)


Fixup = Callable[[random.Random, bytes], bytes]


def campaign(
    harness: Harness,
    seeds: Iterable[bytes],
    *,
    count: int,
    seed: int = 0,
    deadline: float | None = None,
    fixup: Fixup | None = None,
) -> int:
    """Run ``harness`` on every seed, then on ``count`` mutations of them (fewer if the
    ``time.monotonic()`` ``deadline`` passes first), each passed through ``fixup`` if given
    (e.g. :func:`fix_lengths`). Returns the number of inputs run. Raises :class:`Crash`
    (chained to the harness's exception) on the first failure."""
    pool = list(seeds) or [b""]
    rng = random.Random(seed)
    runs = 0
    for i, data in enumerate(pool):
        _run_one(harness, data, f"seed {i}")
        runs += 1
    for _ in range(count):
        if deadline is not None and time.monotonic() > deadline:
            break
        data = mutate(rng, rng.choice(pool), pool)
        if fixup is not None:
            data = fixup(rng, data)
        _run_one(harness, data, f"mutation {runs}")
        runs += 1
        if rng.random() < 0.01:
            pool.append(data)  # a little memory, so edits can stack up
    return runs


def _run_one(harness: Harness, data: bytes, where: str) -> None:
    try:
        harness(data)
    except Exception as exc:
        raise Crash(data, where) from exc


def main(
    harness: Harness, argv: Sequence[str] | None = None, *, fixup: Fixup | None = None
) -> None:
    """Fuzz ``harness`` with libFuzzer arguments ``argv`` (default ``sys.argv``); ``fixup``
    is used by the fallback driver only (libFuzzer finds length fields by itself)."""
    args = list(sys.argv if argv is None else argv)
    try:
        atheris: Any = importlib.import_module("atheris")
    except ImportError:
        print("atheris is not installed: coverage-less random mutation fallback", file=sys.stderr)
        _fallback(harness, args, fixup)
        return
    atheris.instrument_all()
    atheris.Setup(args, harness)
    atheris.Fuzz()


def _fallback(harness: Harness, args: list[str], fixup: Fixup | None) -> None:
    seconds = 600.0
    runs = 10**9
    prefix = ""
    seeds: list[bytes] = []
    for arg in args[1:]:
        if arg.startswith("-max_total_time="):
            seconds = float(arg.split("=", 1)[1])
        elif arg.startswith("-runs="):
            runs = int(arg.split("=", 1)[1])
        elif arg.startswith("-artifact_prefix="):
            prefix = arg.split("=", 1)[1]
        elif not arg.startswith("-"):
            seeds += [data for _, data in read_dir(Path(arg))]
    try:
        done = campaign(
            harness,
            seeds,
            count=runs,
            seed=int(time.time()),
            deadline=time.monotonic() + seconds,
            fixup=fixup,
        )
    except Crash as crash:
        path = Path(f"{prefix}crash-{hashlib.sha1(crash.data).hexdigest()}")
        path.write_bytes(crash.data)
        print(f"crash input written to {path}", file=sys.stderr)
        raise
    print(f"done: {done} inputs, no crash", file=sys.stderr)
