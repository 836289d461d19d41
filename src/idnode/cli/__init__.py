"""The ``idnode`` command line: thin wrappers over the library.

``main`` is the click group; each module below adds its commands to it when imported.
"""

from __future__ import annotations

from idnode.cli import (  # noqa: F401  (they register commands)
    accounts,
    admin,
    bulk,
    grants,
    keys,
    node,
    resolve,
    stats,
    template,
    trace,
    trust,
)
from idnode.cli._common import main

__all__ = ["main"]
