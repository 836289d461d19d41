"""A throwaway PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` in a temporary directory.

:meth:`PostgresServer.start` creates a cluster in a new directory under the system temp dir,
listening on ``127.0.0.1`` on a free port and on a unix socket in that directory, with
``fsync`` and ``synchronous_commit`` on (the settings a production server has), and trust
authentication for the superuser :data:`SUPERUSER`. :meth:`~PostgresServer.stop` shuts it down
and deletes the directory. The cluster's default collation is ICU ``en-US`` (a linguistic
order, as production databases usually have), so a query that relies on byte order without
``COLLATE "C"`` shows up in the tests.

PostgreSQL refuses to run as root: when the tests run as root, every server command runs as
the unprivileged :data:`SERVER_USER` (Debian's ``postgresql`` package creates it), which owns
the directory. Binaries are found with ``pg_config --bindir``, else in
``/usr/lib/postgresql/<version>/bin``; if there are none, :class:`PostgresNotInstalled` says
how to install them. Every wait is bounded (:data:`TIMEOUT_S`).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.ports import free_ports

__all__ = ["SERVER_USER", "SUPERUSER", "TIMEOUT_S", "PostgresNotInstalled", "PostgresServer"]

#: The system user that runs the server when the tests run as root.
SERVER_USER = "postgres"
#: The cluster's superuser (trust authentication, no password).
SUPERUSER = "idnode"
#: Upper bound, in seconds, of every wait on a server command.
TIMEOUT_S = 60

_DEBIAN_BINDIRS = "/usr/lib/postgresql"


class PostgresNotInstalled(RuntimeError):
    """No PostgreSQL server binaries (initdb, pg_ctl) were found."""


def find_bindir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``psql``.

    Raises :class:`PostgresNotInstalled` if there is none.
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=TIMEOUT_S
            )
            if out.returncode == 0:
                candidates.append(Path(out.stdout.strip()))

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    debian = sorted(Path(_DEBIAN_BINDIRS).glob("*/bin"), key=version, reverse=True)
    candidates.extend(debian)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "psql")):
            return bindir
    raise PostgresNotInstalled(
        "PostgreSQL is not installed: no initdb/pg_ctl/psql found via `pg_config --bindir` or "
        f"in {_DEBIAN_BINDIRS}/*/bin. Install the server (Debian: `apt-get install postgresql`; "
        ".ci/run does this) to run the PostgreSQL store tests."
    )


class PostgresServer:
    """One running throwaway cluster; create it with :meth:`start`."""

    def __init__(self, bindir: Path, base: Path, port: int, run_as: pwd.struct_passwd | None):
        self.bindir = bindir
        self.base = base
        """The temporary directory: ``data/`` (the cluster), the unix socket, ``server.log``."""
        self.port = port
        self._run_as = run_as

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    def url(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL of ``database`` on this server over TCP."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls) -> PostgresServer:
        """Create and start a cluster. Raises PostgresNotInstalled, or RuntimeError (with the
        server log) if it does not start."""
        bindir = find_bindir()
        run_as = pwd.getpwnam(SERVER_USER) if os.geteuid() == 0 else None
        # /tmp: short enough for the unix socket path (about 100 bytes at most), and
        # reachable by the server user, which a TMPDIR under /root would not be.
        parent = "/tmp" if os.path.isdir("/tmp") else None
        base = Path(tempfile.mkdtemp(prefix="idnode-pg-", dir=parent))
        if run_as is not None:
            os.chown(base, run_as.pw_uid, run_as.pw_gid)
        server = cls(bindir, base, free_ports(1)[0], run_as)
        try:
            server._initdb()
            server._start_with_retries()
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, argv: Sequence[str], what: str) -> None:
        """Run a server command as the server user; RuntimeError with its output if it fails."""
        kwargs: dict[str, Any] = {}
        if self._run_as is not None:
            kwargs = {
                "user": self._run_as.pw_uid,
                "group": self._run_as.pw_gid,
                "extra_groups": [],
            }
        with tempfile.TemporaryFile() as output:
            # Output goes to a file, not a pipe: a pipe inherited by the postmaster that
            # pg_ctl leaves running would never reach EOF.
            proc = subprocess.run(
                argv,
                cwd=self.base,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=TIMEOUT_S,
                check=False,
                **kwargs,
            )
            if proc.returncode != 0:
                output.seek(0)
                text = output.read().decode(errors="replace")
                raise RuntimeError(f"{what} failed ({proc.returncode}):\n{text}{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return "\nserver log:\n" + self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def _initdb(self) -> None:
        self._run(
            [
                str(self.bindir / "initdb"),
                "--pgdata",
                str(self.data),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C.UTF-8",
                "--locale-provider",
                "icu",
                "--icu-locale",
                "en-US",
                "--no-sync",  # the cluster is thrown away; the server itself runs with fsync on
                "--no-instructions",
            ],
            "initdb",
        )

    def _write_settings(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base}'",
            "fsync": "on",
            "synchronous_commit": "on",
            "max_connections": "60",
            "shared_buffers": "32MB",
        }
        lines = "".join(f"{name} = {value}\n" for name, value in settings.items())
        # postgresql.auto.conf is read last, so these win; rewriting it keeps one copy.
        (self.data / "postgresql.auto.conf").write_text(lines)

    def _start_with_retries(self, attempts: int = 3) -> None:
        """Start the server; another free port is tried if the chosen one was taken."""
        for attempt in range(attempts):
            self._write_settings()
            try:
                self.pg_ctl("start")
                return
            except RuntimeError as exc:
                if "Address already in use" not in str(exc) or attempt == attempts - 1:
                    raise
                self.port = free_ports(1)[0]

    def pg_ctl(self, action: str, *, mode: str = "fast") -> None:
        """``pg_ctl start|stop|restart`` and wait for it (``mode`` for stop and restart:
        ``smart``, ``fast`` or ``immediate``, the last a crash without checkpoint)."""
        argv = [str(self.bindir / "pg_ctl"), "--pgdata", str(self.data), "--wait"]
        argv += ["--timeout", str(TIMEOUT_S - 5), "--log", str(self.log)]
        if action != "start":
            argv += ["--mode", mode]
        self._run([*argv, action], f"pg_ctl {action}")

    def restart(self, *, mode: str = "fast") -> None:
        """Stop (terminating every session) and start again on the same port."""
        self.pg_ctl("restart", mode=mode)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with psql over the unix socket; its output (unaligned, tuples only).

        Raises RuntimeError with psql's message if a statement fails.
        """
        proc = subprocess.run(
            [
                str(self.bindir / "psql"),
                "--no-psqlrc",
                "--quiet",
                "--tuples-only",
                "--no-align",
                "--set",
                "ON_ERROR_STOP=1",
                "--host",
                str(self.base),
                "--port",
                str(self.port),
                "--username",
                SUPERUSER,
                "--dbname",
                database,
                "--command",
                sql,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed ({proc.returncode}) running {sql!r}:\n{proc.stderr}")
        return proc.stdout

    def stop(self) -> None:
        """Stop the server (if running) and delete its directory."""
        try:
            if (self.data / "postmaster.pid").exists():
                try:
                    self.pg_ctl("stop", mode="fast")
                except (RuntimeError, subprocess.TimeoutExpired):
                    self.pg_ctl("stop", mode="immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
