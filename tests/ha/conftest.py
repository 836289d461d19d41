"""Fixtures of the high-availability tests: one Patroni cluster and one node directory per module.

``ha_cluster`` needs ``patroni`` and ``etcd`` (Debian: ``patroni``, ``etcd-server``; .ci/run
installs them). When one is missing and the tests run as root with apt-get, the fixture
installs them as .ci/run would; only if that is impossible or fails are the tests skipped,
with the reason. PostgreSQL's server binaries are required as for every PostgreSQL test:
without them the fixture fails (tests/pgserver.py explains how to install them).

The cluster (:class:`idnode.deploy.pgha.Cluster`, what ``deploy/pg-ha/pg-ha`` runs) lives in a
new directory under /tmp (reachable by the ``postgres`` user that runs it when the tests run
as root) on a block of free 127.0.0.1 ports below the ephemeral range, and is stopped (every
process, bounded, killed if need be) and deleted at the end of the module.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from idnode.bootstrap import init_node
from idnode.deploy.pgha import Cluster, ClusterError, Settings
from tests.server.nodeutil import PREFIX

#: Programs the cluster needs, and the Debian package of each.
PACKAGES = {"patroni": "patroni", "etcd": "etcd-server"}
#: Bound of ``up`` (bootstrap, cloning the replica) and of ``down``, in seconds.
UP_TIMEOUT = 180.0
DOWN_TIMEOUT = 60.0
#: Bound of each apt-get run, in seconds.
APT_TIMEOUT = 600


def _missing() -> list[str]:
    return [package for program, package in PACKAGES.items() if shutil.which(program) is None]


def ensure_installed() -> None:
    """Install patroni and etcd-server with apt-get if missing; skip if that cannot be done."""
    missing = _missing()
    if not missing:
        return
    how = f"apt-get install {' '.join(missing)} (.ci/run does this)"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{', '.join(missing)} not installed and not root with apt-get: {how}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    output = ""
    for argv in (install, ["apt-get", "update", "-qq"], install):
        try:
            proc = subprocess.run(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=APT_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            output = str(exc)
            break
        output = proc.stdout + proc.stderr
        if argv is install and not _missing():
            return
    pytest.skip(f"could not install {', '.join(missing)} ({how}):\n{output[-2000:]}")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_base_port(span: int, attempts: int = 200) -> int:
    """The first of ``span`` consecutive free ports on 127.0.0.1, below the ephemeral range
    (so that no outgoing connection takes one of them between this check and the bind)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(attempts):
        base = rng.randrange(15000, max(15001, low - span))
        if all(_port_free(port) for port in range(base, base + span)):
            return base
    raise RuntimeError(f"no {span} consecutive free ports found on 127.0.0.1")


@pytest.fixture(scope="module")
def ha_cluster() -> Iterator[Cluster]:
    """A running two-member Patroni cluster (synchronous replication), torn down at the end."""
    ensure_installed()
    directory = Path(tempfile.mkdtemp(prefix="idnode-ha-", dir="/tmp"))
    try:
        members = 2
        base = free_base_port(Settings(members=members).port_span)
        cluster = Cluster.create(directory, Settings(base_port=base, members=members))
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    try:
        try:
            cluster.up(timeout=UP_TIMEOUT)
        except ClusterError as exc:
            pytest.fail(f"the Patroni cluster did not start: {exc}", pytrace=False)
        yield cluster
    finally:
        cluster.down(timeout=DOWN_TIMEOUT, purge=True)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def ha_node_dir(ha_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node directory (demo data) whose database is the cluster's multi-host URL."""
    directory = tmp_path_factory.mktemp("ha-node")
    asyncio.run(init_node(directory, PREFIX, port=0, demo=True, database=ha_cluster.url()))
    return directory
