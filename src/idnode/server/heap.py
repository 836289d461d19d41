"""The serving process's heap after start-up.

A node allocates most of its long-lived objects while it starts (modules, configuration,
the dispatcher, the HTTP application): tens of thousands of objects the garbage collector
would walk again at every full collection, about 15 ms each on this project's benchmark
machine, a pause every request waiting meanwhile sees. :func:`settle` collects start-up's
garbage once and moves what is left out of the collector's sight (``gc.freeze``); objects
made later are collected as before.

A full cache (:class:`Churn`) is the other source of long pauses. CPython collects the
youngest generation when the objects it allocated outnumber those it freed by 700. A full
cache frees an entry for every one it keeps, so that count stands still while its new
entries, each tracked until a collection looks at it and finds only bytes, strings and
numbers inside, pile up unexamined: at 10^6 identifiers asked at random, 100,000 of them
made one young collection take 90 ms. Each cache counts the entries it drops when full and
collects the youngest generation every :data:`CHURN_EVERY` of them, a fraction of a
millisecond each time.
"""

from __future__ import annotations

import gc

__all__ = ["CHURN_EVERY", "Churn", "settle"]

#: Entries a full cache replaces between two collections of the youngest generation.
CHURN_EVERY = 512


def settle() -> None:
    """Free start-up's garbage, then exempt the surviving objects from later collections.
    Call once, when the node has started, in a process that serves (not in tests that
    start and stop many nodes)."""
    gc.collect()
    gc.freeze()


class Churn:
    """The entries a full cache replaced (module docstring): call :meth:`replaced` for each
    entry dropped to make room for another."""

    __slots__ = ("_left", "every")

    def __init__(self, every: int = CHURN_EVERY) -> None:
        self.every = every
        self._left = every

    def replaced(self) -> None:
        self._left -= 1
        if self._left <= 0:
            self._left = self.every
            if gc.isenabled():
                gc.collect(0)
