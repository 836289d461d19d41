"""Several worker processes serving one node (``workers = N`` in the configuration).

The parent (:func:`supervise`, run by ``idnode serve``) chooses the ports (an ephemeral
port asked as 0 is picked once, so that every worker binds the same one), starts N worker
processes (``python -m idnode.server.workers``) and restarts any that exits while the node
is not stopping (at most once a second per worker). SIGINT/SIGTERM stop the workers
(SIGTERM, then SIGKILL after 15 s); SIGHUP is passed on (HTTPS certificate reload).

Each worker is a whole :class:`~idnode.server.node.Node` with its own store connections and
event loop, binding UDP, TCP and HTTP with SO_REUSEPORT: the kernel spreads connections and
datagrams over the workers by a hash of the addresses. What they share, and how:

* **Data**: the database. SQLite in WAL mode lets the workers read at once and serialises
  their writes (each write waits for the lock up to the busy timeout, 5 s); PostgreSQL
  serialises them itself. A write is acknowledged after its commit, so it survives the
  worker (or the machine) dying right after.
* **Response caches**: per worker, invalidated through the store's shared change counters
  (:mod:`idnode.store.generations`, :mod:`idnode.server.respcache`).
* **Pending challenges**: a 402 sent by one worker may be answered to another (a client's
  TCP answer on a new connection, a UDP answer from another source port, a worker restarted
  in between: each may hash elsewhere). A stateless nonce cannot work here: the answer
  unlocks the *original request*, which the answer does not carry. :class:`SharedChallenges`
  therefore keeps each pending challenge in a file of a private directory of the node
  (``<node dir>/.challenges``, mode 0700): written by the worker that challenged, claimed by
  an atomic rename by the worker that gets the answer (so each answer is used once, whichever
  worker sees it), expired after ``challenge_timeout``.
* **Statistics**: each worker counts its resolutions and adds them to the database; the log
  position of the registration counts moves by compare-and-set, so no registration is
  counted twice. Only worker 0 follows a primary (``[replication]``), reports to a parent
  (``[report]``) and refreshes the node's HS_SITE values.
* **Console logins**: signed cookies whose key is a file of the node directory
  (``<node dir>/.console``), so any worker accepts them (:mod:`idnode.console.sessions`).
* **Sessions and login tokens**: native sessions (op 400; set up over UDP, used next over a
  TCP connection hashed to another worker), ``/api/sessions`` and the SNMS login tokens are
  kept in a SQLite database of their own, ``<node dir>/.sessions/sessions.db`` (WAL; mode
  0600 in a 0700 directory), which every worker reads and updates in short transactions:
  a session's replay window is checked and updated atomically, so a counter is accepted
  once whichever worker gets it, and ending a session (op 401, ``DELETE
  /api/sessions/this``) or disabling an account ends it in all (:mod:`idnode.server.sessiondb`,
  :mod:`idnode.server.shared_sessions`, :mod:`idnode.industry.tokens`). A single worker keeps
  them in memory, with no file access per request.
* **Not shared**: per-address limits (failed authentications, writes per second) are kept
  per worker, so a client spread over N workers gets up to N times the configured rates;
  ``/metrics`` shows the worker that answered the scrape (its ``worker`` label).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from idnode.protocol.message import Message
from idnode.server.challenges import Challenges, PendingChallenge

__all__ = ["SharedChallenges", "challenge_directory", "supervise"]

log = logging.getLogger(__name__)

#: Seconds the parent gives workers to stop after SIGTERM before SIGKILL.
STOP_GRACE = 15.0
#: Least seconds between two starts of one worker.
RESTART_INTERVAL = 1.0


# -- pending challenges shared by the workers ---------------------------------------------------


def challenge_directory(config: Any) -> Path:
    """Where the workers of the node configured by ``config`` keep pending challenges."""
    return Path(config.directory) / ".challenges"


#: The head of a stored challenge (its expiry first), read alone by the sweep.
_HEAD = PendingChallenge.HEAD


class SharedChallenges(Challenges):
    """:class:`Challenges` kept as files, one per pending challenge, in ``directory``."""

    def __init__(self, directory: Path, *, timeout: float = 60.0, capacity: int = 10000) -> None:
        super().__init__(timeout=timeout, capacity=capacity)
        self.directory = directory
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._sweep_at = 0.0

    def __len__(self) -> int:
        return sum(1 for p in self.directory.iterdir() if p.name.isdigit())

    def add(self, request: Message, nonce: bytes, digest: bytes, now: float) -> int:
        self._sweep(now)
        data = PendingChallenge(request, nonce, digest, now + self._timeout).to_bytes()
        # Written under a private name, then published whole by a hard link (which, unlike a
        # rename, never replaces an existing challenge): another worker never sees a partial
        # file, neither when it takes the challenge nor when it sweeps.
        staging = self.directory / f"new-{os.getpid()}-{secrets.token_hex(8)}"
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            while True:
                session_id = secrets.randbelow(0x7FFFFFFF) + 1
                try:
                    os.link(staging, self.directory / str(session_id))
                except FileExistsError:
                    continue
                return session_id
        finally:
            staging.unlink()

    def take(self, session_id: int, now: float) -> PendingChallenge | None:
        path = self.directory / str(session_id)
        claimed = self.directory / f"taken-{session_id}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            os.rename(path, claimed)  # atomic: one taker wins
        except FileNotFoundError:
            return None
        try:
            data = claimed.read_bytes()
        finally:
            with contextlib.suppress(FileNotFoundError):
                claimed.unlink()
        pending = PendingChallenge.from_bytes(data)
        return pending if pending is not None and pending.expires > now else None

    def _sweep(self, now: float) -> None:
        """Drop expired challenges (at most once a second), and the oldest beyond capacity."""
        if now < self._sweep_at:
            return
        self._sweep_at = now + 1.0
        entries = []
        for path in self.directory.iterdir():
            if not path.name.isdigit():  # being written or taken: left to its worker,
                with contextlib.suppress(FileNotFoundError):  # unless that worker died
                    if path.stat().st_mtime < time.time() - self._timeout - 60:
                        path.unlink()
                continue
            try:
                with path.open("rb") as f:
                    head = f.read(_HEAD.size)
            except (FileNotFoundError, IsADirectoryError):
                continue
            expires = _HEAD.unpack(head)[0] if len(head) == _HEAD.size else 0.0
            entries.append((expires, path))
        entries.sort()
        excess = max(0, len(entries) - self._capacity)
        for position, (expires, path) in enumerate(entries):
            if expires <= now or position < excess:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


# -- the parent ----------------------------------------------------------------------------------


def _free_port(host: str, kind: int) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _pick_ports(config: Any) -> dict[str, Any]:
    """Overrides fixing ports asked as 0 to one free port each (TCP and UDP free alike)."""
    changes: dict[str, Any] = {}
    if config.port == 0:
        for _attempt in range(50):
            port = _free_port(config.listen, socket.SOCK_STREAM)
            try:
                _free_port_check(config.listen, port)
            except OSError:
                continue
            changes["port"] = port
            break
    if config.http_port == 0:
        changes["http_port"] = _free_port(config.listen, socket.SOCK_STREAM)
    return changes


def _free_port_check(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((host, port))


class _Worker:
    def __init__(self, index: int, command: list[str]) -> None:
        self.index = index
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.restarts = 0

    def start(self) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(self.command)

    def stopped(self) -> bool:
        return self.process is None or self.process.poll() is not None


def supervise(config_path: Path, overrides: dict[str, Any], workers: int) -> int:
    """Run ``workers`` worker processes for the node of ``config_path`` (with ``overrides``
    of its settings, as ``idnode serve`` options give them) until SIGINT or SIGTERM; restart
    any that exits meanwhile. Returns the exit status."""
    from idnode.server.config import NodeConfig

    config = dataclasses.replace(NodeConfig.load(config_path), **overrides)
    overrides = {**overrides, **_pick_ports(config)}
    config = dataclasses.replace(config, **overrides)
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    pool = [
        _Worker(
            i,
            [
                sys.executable,
                "-m",
                "idnode.server.workers",
                str(config_path),
                str(i),
                json.dumps(overrides),
            ],
        )
        for i in range(workers)
    ]

    def forward_hup(_signum: int, _frame: object) -> None:
        for worker in pool:
            if not worker.stopped():
                assert worker.process is not None
                worker.process.send_signal(signal.SIGHUP)

    previous = {
        sig: signal.signal(sig, handler)
        for sig, handler in (
            (signal.SIGINT, stop),
            (signal.SIGTERM, stop),
            (signal.SIGHUP, forward_hup),
        )
    }
    http = "" if config.http_port is None else f", HTTP port {config.http_port}"
    print(
        f"idnode: {workers} workers on {config.listen}:{config.port} (UDP, TCP){http}; "
        "Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    try:
        for worker in pool:
            worker.start()
        while not stopping:
            time.sleep(0.1)
            for worker in pool:
                if stopping or not worker.stopped():
                    continue
                assert worker.process is not None
                if time.monotonic() - worker.started < RESTART_INTERVAL:
                    continue  # exits at once: retried at most once a second
                code = worker.process.returncode
                worker.restarts += 1
                print(
                    f"idnode: worker {worker.index} (pid {worker.process.pid}) exited with "
                    f"{code}; restarting",
                    file=sys.stderr,
                    flush=True,
                )
                worker.start()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_all(pool)
    return 0


def _stop_all(pool: list[_Worker]) -> None:
    running = [w.process for w in pool if w.process is not None and w.process.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE
    for process in running:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- a worker ------------------------------------------------------------------------------------


def _worker_main(config_path: str, index: int, overrides: dict[str, Any]) -> None:
    import asyncio

    from idnode.server import heap
    from idnode.server.config import NodeConfig
    from idnode.server.node import Node

    config = dataclasses.replace(NodeConfig.load(Path(config_path)), **overrides)

    async def run() -> None:
        node = await Node.open(config, worker=index)
        try:
            await node.start()
        except BaseException:
            await node.close()
            raise
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, node.reload_tls)
        heap.settle()
        parent = os.getppid()
        while not stop.is_set():  # also stop when the parent is gone
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            if os.getppid() != parent:
                break
        await node.close()

    try:
        import uvloop

        uvloop.run(run())
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(run())


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    _worker_main(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]))
