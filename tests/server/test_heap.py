"""The garbage-collector policy of a serving process (:mod:`idnode.server.heap`)."""

from __future__ import annotations

import gc

from idnode.server.heap import Churn


def test_churn_collects_the_young_generation_every_so_many_replacements() -> None:
    assert gc.isenabled()
    churn = Churn(every=3)
    gc.collect(0)
    kept: list[list[int]] = [[] for _ in range(300)]  # live, tracked, young objects
    churn.replaced()
    churn.replaced()
    assert gc.get_count()[0] >= 200
    churn.replaced()  # the third: the young generation is collected
    assert gc.get_count()[0] < 50
    assert len(kept) == 300


def test_churn_leaves_a_disabled_collector_alone() -> None:
    churn = Churn(every=1)
    gc.collect(0)
    gc.disable()
    try:
        kept: list[list[int]] = [[] for _ in range(300)]
        churn.replaced()
        assert gc.get_count()[0] >= 200
        assert len(kept) == 300
    finally:
        gc.enable()
