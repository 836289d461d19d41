"""The serving process's heap after start-up.

A node allocates most of its long-lived objects while it starts (modules, configuration,
the dispatcher, the HTTP application): tens of thousands of objects the garbage collector
would walk again at every full collection, about 15 ms each on this project's benchmark
machine, a pause every request waiting meanwhile sees. :func:`settle` collects start-up's
garbage once and moves what is left out of the collector's sight (``gc.freeze``); objects
made later are collected as before.
"""

from __future__ import annotations

import gc

__all__ = ["settle"]


def settle() -> None:
    """Free start-up's garbage, then exempt the surviving objects from later collections.
    Call once, when the node has started, in a process that serves (not in tests that
    start and stop many nodes)."""
    gc.collect()
    gc.freeze()
