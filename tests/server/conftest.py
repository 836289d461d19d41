"""Fixtures of the integration tests: a real node on 127.0.0.1 and its users.

``node`` is module-scoped (one node per test module, made by
``init_node(<tmp dir>, "88.118.8", port=0, demo=True)`` and served from a background thread,
see :mod:`tests.server.nodeutil`); tests use handle names of their own so they do not
interfere. ``users`` adds the identities of :class:`~tests.server.nodeutil.Users`.

Every test also checks that no node logged an internal error (an ERROR record of the
``idnode`` logger: an exception the dispatcher or a transport did not expect) while it ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.nodeutil import (
    RunningNode,
    Users,
    add_identities,
    create_node_dir,
    no_internal_errors,
    running_node,
)

__all__ = ["no_internal_errors", "node", "node_dir", "users"]


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("node")
    create_node_dir(directory)
    return directory


@pytest.fixture(scope="module")
def node(node_dir: Path) -> Iterator[RunningNode]:
    """A started node serving 88.118.8 (with the demo handles) on an ephemeral port."""
    with running_node(node_dir) as running:
        yield running


@pytest.fixture(scope="module")
def users(node: RunningNode) -> Users:
    """USER-A (non-admin, RSA + secret), USER-DSA (admin group, DSA), and the handle admin,
    partial admin and prefix-group member of the authorization matrix."""
    return add_identities(node)
