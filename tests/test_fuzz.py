"""Bounded runs of the fuzzing harnesses in ``fuzz/`` (the long campaigns are ``make fuzz``).

Each harness runs over its checked-in seed corpus plus a few thousand seeded random mutations
(:func:`fuzz.driver.campaign`: deterministic, no coverage feedback), and replays every crash
file of ``fuzz/regressions/<harness>/`` — the directory is replayed even when it is empty.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import fuzz.dispatch as dispatch_harness
import fuzz.message as message_harness
import fuzz.values as values_harness
import pytest
from fuzz.driver import (
    CORPUS_DIR,
    HARNESSES,
    REGRESSIONS_DIR,
    Harness,
    campaign,
    fix_lengths,
    read_dir,
)

from idnode.protocol.bodies import Body
from idnode.protocol.codes import OpCode
from idnode.protocol.message import Message
from idnode.server.authz import Identity

#: Mutations per harness (the dispatch harness does a SQLite round trip per input).
MUTATIONS = {"message": 20000, "values": 20000, "dispatch": 8000}
#: Wall-clock cap per campaign, so a slow machine cuts the run short instead of timing out.
SECONDS = 6.0


@pytest.fixture(scope="module")
def dispatch_target() -> Iterator[dispatch_harness.DispatchTarget]:
    with dispatch_harness.DispatchTarget() as target:
        yield target


@pytest.fixture(params=HARNESSES)
def harness(request: pytest.FixtureRequest) -> tuple[str, Harness]:
    name: str = request.param
    if name == "message":
        return name, message_harness.test_one_input
    if name == "values":
        return name, values_harness.test_one_input
    return name, request.getfixturevalue("dispatch_target")


def test_corpus_is_checked_in_and_small() -> None:
    total = 0
    for name in HARNESSES:
        files = read_dir(CORPUS_DIR / name)
        assert len(files) >= 10, f"fuzz/corpus/{name} has {len(files)} seeds"
        total += sum(len(data) for _, data in files)
    assert total < 1_000_000


def test_regressions(harness: tuple[str, Harness]) -> None:
    name, run = harness
    for path, data in read_dir(REGRESSIONS_DIR / name):
        try:
            run(data)
        except Exception as exc:
            raise AssertionError(f"fuzz/regressions/{name}/{path.name} fails again") from exc


def test_bounded_campaign(harness: tuple[str, Harness]) -> None:
    name, run = harness
    seeds = [data for _, data in read_dir(CORPUS_DIR / name)]
    runs = campaign(
        run,
        seeds,
        count=MUTATIONS[name],
        seed=20260,
        deadline=time.monotonic() + SECONDS,
        fixup=None if name == "values" else fix_lengths,
    )
    assert runs >= len(seeds)


def test_dispatch_harness_catches_internal_errors(
    dispatch_target: dispatch_harness.DispatchTarget,
) -> None:
    """An exception the dispatcher swallows (answering RC_ERROR) still fails the harness."""
    seed = (CORPUS_DIR / "dispatch" / "vec-resolution-request").read_bytes()
    dispatch_target(seed)
    handlers = dispatch_target.dispatcher._handlers
    original = handlers[OpCode.RESOLUTION]

    async def broken(request: Message, identity: Identity | None) -> Body:
        raise RuntimeError("planted bug")

    handlers[OpCode.RESOLUTION] = broken
    try:
        with pytest.raises(AssertionError, match="internal error") as info:
            dispatch_target(seed)
        assert isinstance(info.value.__cause__, RuntimeError)
    finally:
        handlers[OpCode.RESOLUTION] = original
    dispatch_target(seed)
