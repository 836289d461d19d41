"""PostgreSQL high availability on one machine, for a demo or a test: one etcd member and two
or more PostgreSQL 15 instances managed by Patroni, replicating synchronously, on 127.0.0.1.

``deploy/pg-ha/pg-ha`` runs this module (``python3 -m idnode.deploy.pgha``); it needs only the
standard library, the Debian packages ``patroni`` and ``etcd-server``, and PostgreSQL's server
binaries (``postgresql``)::

    pg-ha up     [--dir DIR] [--base-port PORT] [--members N] [--async] [--strict]
    pg-ha status [--dir DIR]            # members, roles, lag; the URL for idnode
    pg-ha url    [--dir DIR]            # only the URL
    pg-ha kill   [--dir DIR] [MEMBER]   # SIGKILL its Patroni and postmaster (default: primary)
    pg-ha pause|resume [--dir DIR]      # Patroni's maintenance mode (no automatic failover)
    pg-ha down   [--dir DIR] [--purge]

Layout of ``DIR`` (default ``var/pg-ha``), for ``--base-port B``:

* ``cluster.json``: the settings and the generated passwords (mode 0600);
* ``etcd/``: etcd's data and ``etcd.log``; etcd serves clients on ``B``, peers on ``B+1``;
* ``pgI/`` for member ``I`` (0, 1, ...): ``patroni.yml``, ``patroni.log`` (with PostgreSQL's
  log), ``data/`` (PGDATA) and the unix socket; PostgreSQL listens on ``B+2+2I`` and Patroni's
  REST API on ``B+3+2I``.

``up`` creates what is missing and starts what is not running, so it also brings a killed
member back (Patroni rejoins it as a replica, rewinding it with pg_rewind if needed). It waits
(bounded by ``--timeout``) until there is a primary and every other member is a running
replica, one of them the synchronous standby.

Security: PostgreSQL accepts only 127.0.0.1 and its unix socket, with SCRAM passwords
(generated, kept in ``cluster.json`` and Patroni's files, all readable only by the owner);
Patroni's REST API and etcd are unauthenticated but listen on 127.0.0.1 only. Run as root,
every process runs as the ``postgres`` user (PostgreSQL refuses to run as root), which must be
able to reach ``DIR``; otherwise everything runs as the calling user.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DATABASE",
    "USER",
    "Cluster",
    "ClusterError",
    "Member",
    "Settings",
    "main",
]

#: The database and the login role created for idnode.
DATABASE = "idnode"
USER = "idnode"
#: The Patroni cluster name (``scope``).
SCOPE = "idnode"
#: The system user that runs everything when this runs as root.
SERVER_USER = "postgres"
#: Poll interval of every wait, seconds.
POLL_S = 0.25
#: Unix socket paths are limited to 107 bytes; ``.s.PGSQL.NNNNN`` takes 16.
_SOCKET_DIR_MAX = 90
_DEBIAN_BINDIRS = Path("/usr/lib/postgresql")


class ClusterError(RuntimeError):
    """A command failed; the message says why (with log tails when a start timed out)."""


@dataclass(frozen=True)
class Settings:
    """What ``up`` creates; saved in ``cluster.json`` on first ``up`` and reused after."""

    base_port: int = 5440
    members: int = 2
    #: Patroni: the leader key's time to live, the HA loop period, the DCS/PostgreSQL retry
    #: budget (loop_wait + 2 * retry_timeout <= ttl). A primary that vanishes is replaced
    #: after at most ``ttl`` + ``loop_wait`` seconds and a promotion.
    ttl: int = 10
    loop_wait: int = 1
    retry_timeout: int = 4
    #: Patroni's synchronous_mode: commits wait for a standby, and only that standby may be
    #: promoted, so an acknowledged write survives the loss of the primary.
    synchronous: bool = True
    #: synchronous_mode_strict: refuse writes while no standby is attached (instead of
    #: acknowledging them on the primary alone).
    strict: bool = False
    bindir: str = ""
    passwords: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.members < 1:
            raise ClusterError("--members must be at least 1")
        if not 1024 <= self.base_port <= 65535 - self.port_span:
            raise ClusterError(f"--base-port must leave room for {self.port_span} ports")
        if self.loop_wait + 2 * self.retry_timeout > self.ttl:
            raise ClusterError("need loop_wait + 2 * retry_timeout <= ttl")

    @property
    def port_span(self) -> int:
        """How many consecutive ports from ``base_port`` the cluster uses."""
        return 2 + 2 * self.members

    @property
    def etcd_port(self) -> int:
        return self.base_port

    @property
    def etcd_peer_port(self) -> int:
        return self.base_port + 1

    def pg_port(self, index: int) -> int:
        return self.base_port + 2 + 2 * index

    def rest_port(self, index: int) -> int:
        return self.base_port + 3 + 2 * index


@dataclass(frozen=True)
class Member:
    """One member as Patroni's REST API reports it (``GET /cluster``)."""

    name: str
    #: ``leader`` (the primary), ``sync_standby``, ``replica``; ``down`` if not reported.
    role: str
    #: ``running``, ``starting``, ``stopped``, ``creating replica``...; ``down`` if absent.
    state: str
    port: int
    timeline: int | None = None
    #: Replication lag in bytes; None for the leader or when unknown.
    lag: int | None = None


# -- small helpers -----------------------------------------------------------------------------


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb, pg_ctl and psql."""

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    for bindir in sorted(_DEBIAN_BINDIRS.glob("*/bin"), key=version, reverse=True):
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "psql", "postgres")):
            return bindir
    raise ClusterError(
        f"PostgreSQL server binaries not found in {_DEBIAN_BINDIRS}/*/bin "
        "(Debian: apt-get install postgresql)"
    )


def _which(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise ClusterError(f"{program} not found (Debian: apt-get install {package})")
    return path


def to_yaml(value: Any, indent: int = 0) -> str:
    """``value`` (mappings of str, lists, str, int, bool, None) as YAML: mappings in block
    style, lists and scalars as JSON (which is YAML's flow style)."""
    if not isinstance(value, Mapping):
        return json.dumps(value) + "\n"
    if not value:
        return "{}\n"
    lines = []
    pad = " " * indent
    for key, item in value.items():
        if isinstance(item, Mapping) and item:
            lines.append(f"{pad}{json.dumps(str(key))}:\n{to_yaml(item, indent + 2)}")
        else:
            lines.append(f"{pad}{json.dumps(str(key))}: {to_yaml(item, indent + 2)}")
    return "".join(lines)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int | None, marker: str) -> bool:
    """Whether ``pid`` runs and its command line contains ``marker`` (guards against a
    recycled pid; a zombie has an empty command line)."""
    return pid is not None and pid > 0 and marker.encode() in _cmdline(pid)


def _read_pid(path: Path) -> int | None:
    """The pid on the first line of ``path`` (a pid file, or PostgreSQL's postmaster.pid)."""
    try:
        first = path.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() else None


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"--- {path}: (none)\n"
    return f"--- {path} (last {lines} lines):\n" + "\n".join(text.splitlines()[-lines:]) + "\n"


def _get_json(url: str, timeout: float = 2.0, *, patch: Any = None) -> Any:
    """GET ``url`` (or PATCH it with the JSON ``patch``) and decode the JSON answer (also of
    an error status); None if unreachable."""
    request = urllib.request.Request(url)
    if patch is not None:
        request = urllib.request.Request(
            url,
            data=json.dumps(patch).encode(),
            method="PATCH",
            headers={"Content-Type": "application/json"},
        )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(ValueError, OSError):
            return json.loads(exc.read())
        return None
    except (OSError, ValueError):
        return None


def _wait(what: str, ready: Any, deadline: float, logs: Sequence[Path]) -> None:
    """Poll ``ready()`` (a reason not to be ready, or None) until None or ``deadline``."""
    while True:
        reason = ready()
        if reason is None:
            return
        if time.monotonic() >= deadline:
            tails = "".join(_tail(log) for log in logs)
            raise ClusterError(f"timed out waiting for {what}: {reason}\n{tails}")
        time.sleep(POLL_S)


# -- the cluster -----------------------------------------------------------------------------


class Cluster:
    """The cluster in ``directory``. Every method that waits is bounded by its ``timeout``."""

    def __init__(self, directory: Path, settings: Settings) -> None:
        self.directory = directory.absolute()
        self.settings = settings
        self._run_as = pwd.getpwnam(SERVER_USER) if os.geteuid() == 0 else None
        self._children: list[subprocess.Popen[bytes]] = []

    # -- creation ---------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: Path) -> Cluster:
        """The cluster saved in ``directory``; ClusterError if there is none."""
        path = directory / "cluster.json"
        try:
            saved = json.loads(path.read_text())
            return cls(directory, Settings(**saved))
        except FileNotFoundError:
            raise ClusterError(f"no cluster in {directory} (run `up` first)") from None
        except (OSError, ValueError, TypeError) as exc:
            raise ClusterError(f"cannot read {path}: {exc}") from exc

    @classmethod
    def create(cls, directory: Path, settings: Settings) -> Cluster:
        """The cluster in ``directory``: the saved one if there is one (``settings`` are then
        ignored), else a new one with ``settings`` and fresh passwords, saved."""
        if (directory / "cluster.json").exists():
            return cls.load(directory)
        bindir = settings.bindir or str(find_bindir())
        passwords = {role: secrets.token_urlsafe(18) for role in ("superuser", "replication", USER)}
        settings = dataclasses.replace(settings, bindir=bindir, passwords=passwords)
        cluster = cls(directory, settings)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "cluster.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(dataclasses.asdict(settings), f, indent=2)
        return cluster

    # -- names and paths ----------------------------------------------------------------------
    @property
    def member_names(self) -> list[str]:
        return [f"pg{i}" for i in range(self.settings.members)]

    def member_dir(self, name: str) -> Path:
        return self.directory / name

    def data_dir(self, name: str) -> Path:
        return self.member_dir(name) / "data"

    def _index(self, name: str) -> int:
        if name not in self.member_names:
            raise ClusterError(f"no member {name!r} (members: {', '.join(self.member_names)})")
        return self.member_names.index(name)

    def pg_port(self, name: str) -> int:
        return self.settings.pg_port(self._index(name))

    def rest_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.settings.rest_port(self._index(name))}"

    @property
    def etcd_dir(self) -> Path:
        return self.directory / "etcd"

    def url(self, *, target_session_attrs: str = "read-write") -> str:
        """The URL idnode connects with: every member, and ``target_session_attrs`` so that
        connections go to whichever member is the primary."""
        hosts = ",".join(f"127.0.0.1:{self.pg_port(name)}" for name in self.member_names)
        password = self.settings.passwords[USER]
        query = f"?target_session_attrs={target_session_attrs}" if target_session_attrs else ""
        return f"postgresql://{USER}:{password}@{hosts}/{DATABASE}{query}"

    # -- files --------------------------------------------------------------------------------
    def _chown(self, path: Path) -> None:
        if self._run_as is not None:
            os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def _check_reachable(self) -> None:
        """As root: every parent of the directory (which it will own) must be searchable by
        the server user."""
        if self._run_as is None:
            return
        uid, gid = self._run_as.pw_uid, self._run_as.pw_gid
        groups = {gid, *os.getgrouplist(self._run_as.pw_name, gid)}
        for parent in self.directory.parents:
            st = parent.stat()
            if st.st_uid == uid:
                ok = bool(st.st_mode & 0o100)
            elif st.st_gid in groups:
                ok = bool(st.st_mode & 0o010)
            else:
                ok = bool(st.st_mode & 0o001)
            if not ok:
                raise ClusterError(
                    f"{parent} is not searchable by the {SERVER_USER} user, which runs the "
                    "cluster: choose a directory it can reach (e.g. under /tmp or /srv)"
                )

    def _write_files(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._check_reachable()
        os.chmod(self.directory, 0o700)
        self._chown(self.directory)
        self._chown(self.directory / "cluster.json")
        for path in (self.etcd_dir, *map(self.member_dir, self.member_names)):
            path.mkdir(mode=0o700, exist_ok=True)
            self._chown(path)
        script = self.directory / "post-bootstrap.sh"
        self._write(script, self._post_bootstrap_script(), 0o700)
        for name in self.member_names:
            sockets = str(self.member_dir(name))
            if len(sockets) > _SOCKET_DIR_MAX:
                raise ClusterError(f"{sockets} is too long for a unix socket directory")
            self._write(self.member_dir(name) / "patroni.yml", self._patroni_yaml(name), 0o600)

    def _write(self, path: Path, text: str, mode: int) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        self._chown(path)

    def _post_bootstrap_script(self) -> str:
        """Run by Patroni once, on the first primary, with a connection string: creates the
        idnode role and database (idnode creates its schema itself)."""
        psql = Path(self.settings.bindir) / "psql"
        password = self.settings.passwords[USER]
        return (
            "#!/bin/sh\n"
            "# Written by idnode's pg-ha: run once by Patroni after initdb.\n"
            "set -eu\n"
            f"exec {psql} --no-psqlrc --quiet --set ON_ERROR_STOP=1 --dbname \"$1\" <<'SQL'\n"
            f"CREATE ROLE {USER} LOGIN PASSWORD '{password}';\n"
            f"CREATE DATABASE {DATABASE} OWNER {USER} ENCODING 'UTF8' TEMPLATE template0;\n"
            "SQL\n"
        )

    def _patroni_config(self, name: str) -> dict[str, Any]:
        s = self.settings
        index = self._index(name)
        rest = f"127.0.0.1:{s.rest_port(index)}"
        pg = f"127.0.0.1:{s.pg_port(index)}"
        return {
            "scope": SCOPE,
            "namespace": "/service/",
            "name": name,
            "log": {"level": "INFO", "format": "%(asctime)s %(levelname)s: %(message)s"},
            "restapi": {"listen": rest, "connect_address": rest},
            "etcd3": {"hosts": [f"127.0.0.1:{s.etcd_port}"]},
            "bootstrap": {
                "dcs": {
                    "ttl": s.ttl,
                    "loop_wait": s.loop_wait,
                    "retry_timeout": s.retry_timeout,
                    "maximum_lag_on_failover": 1048576,
                    "synchronous_mode": s.synchronous,
                    "synchronous_mode_strict": s.strict,
                    "synchronous_node_count": 1,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "use_slots": True,
                        "remove_data_directory_on_diverged_timelines": True,
                        "parameters": {
                            "max_connections": 100,
                            "shared_buffers": "32MB",
                            "wal_level": "replica",
                            "hot_standby": "on",
                            "wal_log_hints": "on",
                            "max_wal_senders": 10,
                            "max_replication_slots": 10,
                            "synchronous_commit": "on",
                            "fsync": "on",
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
                "post_bootstrap": str(self.directory / "post-bootstrap.sh"),
            },
            "postgresql": {
                "listen": pg,
                "connect_address": pg,
                "data_dir": str(self.data_dir(name)),
                "bin_dir": s.bindir,
                "pgpass": str(self.member_dir(name) / "pgpass"),
                # A replica clones the primary at once rather than after a spread checkpoint.
                "basebackup": [{"checkpoint": "fast"}],
                "authentication": {
                    "superuser": {"username": "postgres", "password": s.passwords["superuser"]},
                    "replication": {
                        "username": "replicator",
                        "password": s.passwords["replication"],
                    },
                },
                "parameters": {"unix_socket_directories": str(self.member_dir(name))},
                "pg_hba": [
                    "local all all scram-sha-256",
                    "host all all 127.0.0.1/32 scram-sha-256",
                    "host replication replicator 127.0.0.1/32 scram-sha-256",
                ],
            },
            "watchdog": {"mode": "off"},
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False},
        }

    def _patroni_yaml(self, name: str) -> str:
        return "# Written by idnode's pg-ha (deploy/pg-ha).\n" + to_yaml(self._patroni_config(name))

    # -- processes ----------------------------------------------------------------------------
    def _spawn(self, argv: Sequence[str], log: Path, pidfile: Path) -> None:
        """Start ``argv`` detached (a session of its own), output appended to ``log``."""
        kwargs: dict[str, Any] = {}
        home = str(self.directory)
        if self._run_as is not None:
            kwargs = {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
        }
        if "ETCD_UNSUPPORTED_ARCH" in os.environ:
            env["ETCD_UNSUPPORTED_ARCH"] = os.environ["ETCD_UNSUPPORTED_ARCH"]
        with open(log, "ab") as out:
            self._chown(log)
            proc = subprocess.Popen(
                argv,
                cwd=home,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                **kwargs,
            )
        self._children.append(proc)
        pidfile.write_text(f"{proc.pid}\n")

    def _reap(self) -> None:
        """Collect the exit status of children started by this object (no zombies)."""
        for proc in self._children:
            proc.poll()
        self._children = [proc for proc in self._children if proc.returncode is None]

    def etcd_pid(self) -> int | None:
        """etcd's pid if it runs."""
        pid = _read_pid(self.etcd_dir / "etcd.pid")
        return pid if _alive(pid, str(self.etcd_dir)) else None

    def patroni_pid(self, name: str) -> int | None:
        """The pid of ``name``'s Patroni if it runs."""
        pid = _read_pid(self.member_dir(name) / "patroni.pid")
        return pid if _alive(pid, str(self.member_dir(name) / "patroni.yml")) else None

    def postmaster_pid(self, name: str) -> int | None:
        """The pid of ``name``'s PostgreSQL postmaster if it runs."""
        pid = _read_pid(self.data_dir(name) / "postmaster.pid")
        return pid if _alive(pid, str(self.data_dir(name))) else None

    def _start_etcd(self) -> None:
        s = self.settings
        client, peer = f"http://127.0.0.1:{s.etcd_port}", f"http://127.0.0.1:{s.etcd_peer_port}"
        argv = [
            _which("etcd", "etcd-server"),
            "--name=etcd0",
            f"--data-dir={self.etcd_dir / 'data'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=etcd0={peer}",
            "--initial-cluster-state=new",
            "--initial-cluster-token=idnode-pg-ha",
            "--logger=zap",
            "--log-level=warn",
        ]
        self._spawn(argv, self.etcd_dir / "etcd.log", self.etcd_dir / "etcd.pid")

    def _etcd_healthy(self) -> str | None:
        if self.etcd_pid() is None:
            return "etcd is not running"
        health = _get_json(f"http://127.0.0.1:{self.settings.etcd_port}/health")
        if not isinstance(health, dict) or health.get("health") != "true":
            return f"etcd health: {health}"
        return None

    def _start_patroni(self, name: str) -> None:
        config = self.member_dir(name) / "patroni.yml"
        argv = [_which("patroni", "patroni"), str(config)]
        member = self.member_dir(name)
        self._spawn(argv, member / "patroni.log", member / "patroni.pid")

    def _check_ports(self, ports: Sequence[int]) -> None:
        busy = [port for port in ports if not _port_free(port)]
        if busy:
            raise ClusterError(
                f"port(s) {', '.join(map(str, busy))} on 127.0.0.1 are in use: choose another "
                "--base-port (for a new cluster) or stop what uses them"
            )

    # -- state --------------------------------------------------------------------------------
    def _cluster_json(self) -> dict[str, Any] | None:
        """Patroni's view of the cluster (``GET /cluster`` of the first member that answers)."""
        for name in self.member_names:
            if self.patroni_pid(name) is None:
                continue
            info = _get_json(f"{self.rest_url(name)}/cluster")
            if isinstance(info, dict) and isinstance(info.get("members"), list):
                return info
        return None

    def members(self) -> list[Member]:
        """Every member, in order, as Patroni reports it (``down`` if it reports nothing)."""
        info = self._cluster_json() or {"members": []}
        reported = {m.get("name"): m for m in info["members"] if isinstance(m, dict)}
        out = []
        for name in self.member_names:
            m = reported.get(name)
            if m is None:
                out.append(Member(name, "down", "down", self.pg_port(name)))
                continue
            lag = m.get("lag")
            timeline = m.get("timeline")
            out.append(
                Member(
                    name,
                    str(m.get("role", "")),
                    str(m.get("state", "")),
                    self.pg_port(name),
                    timeline if isinstance(timeline, int) else None,
                    lag if isinstance(lag, int) and m.get("role") != "leader" else None,
                )
            )
        return out

    def primary(self) -> str | None:
        """The name of the running primary, None if there is none just now."""
        for m in self.members():
            if m.role == "leader" and m.state == "running":
                return m.name
        return None

    def _not_ready(self) -> str | None:
        """Why the cluster is not yet complete and healthy (None if it is)."""
        members = self.members()
        leaders = [m for m in members if m.role == "leader" and m.state == "running"]
        if len(leaders) != 1:
            return f"no running primary yet ({self._describe(members)})"
        others = [m for m in members if m is not leaders[0]]
        waiting = [m for m in others if m.state != "running" or m.role == "down"]
        if waiting:
            return f"replicas not running yet ({self._describe(members)})"
        synchronous = any(m.role == "sync_standby" for m in others)
        if self.settings.synchronous and others and not synchronous:
            return f"no synchronous standby yet ({self._describe(members)})"
        return None

    @staticmethod
    def _describe(members: Sequence[Member]) -> str:
        return ", ".join(f"{m.name}: {m.role}/{m.state}" for m in members)

    def _logs(self) -> list[Path]:
        names = self.member_names
        return [self.etcd_dir / "etcd.log", *(self.member_dir(n) / "patroni.log" for n in names)]

    # -- commands -----------------------------------------------------------------------------
    def up(self, timeout: float = 120.0) -> None:
        """Start whatever is not running and wait until the cluster is healthy: a primary,
        every other member a running replica, one of them synchronous (if so configured)."""
        deadline = time.monotonic() + timeout
        _which("patroni", "patroni")
        _which("etcd", "etcd-server")
        self._write_files()
        s = self.settings
        if self.etcd_pid() is None:
            self._check_ports([s.etcd_port, s.etcd_peer_port])
            self._start_etcd()
        _wait("etcd", self._etcd_healthy, deadline, self._logs())
        stopped = [name for name in self.member_names if self.patroni_pid(name) is None]
        for name in stopped:
            index = self._index(name)
            self._check_ports([s.pg_port(index), s.rest_port(index)])
        fresh = not any((self.data_dir(n) / "PG_VERSION").exists() for n in self.member_names)
        if fresh and stopped:
            # A new cluster: the first member bootstraps it alone, the others then clone it.
            first, stopped = stopped[0], stopped[1:]
            self._start_patroni(first)
            _wait("the first primary", lambda: self._bootstrapped(first), deadline, self._logs())
        for name in stopped:
            self._start_patroni(name)
        _wait("the cluster", self._not_ready, deadline, self._logs())

    def _bootstrapped(self, name: str) -> str | None:
        if self.patroni_pid(name) is None:
            return f"Patroni of {name} exited"
        return None if self.primary() == name else "bootstrapping"

    def set_paused(self, paused: bool, timeout: float = 30.0) -> None:
        """Pause (maintenance mode: no automatic failover, Patroni leaves PostgreSQL alone)
        or resume the cluster, and wait until every running member has seen it."""
        deadline = time.monotonic() + timeout
        running = [n for n in self.member_names if self.patroni_pid(n) is not None]
        body = {"pause": True if paused else None}
        if not any(_get_json(f"{self.rest_url(n)}/config", patch=body) for n in running):
            raise ClusterError("no member accepted the change (is the cluster up?)")

        def pending() -> str | None:
            late = [
                n
                for n in running
                if self.patroni_pid(n) is not None
                and bool((_get_json(f"{self.rest_url(n)}/patroni") or {}).get("pause")) != paused
            ]
            return f"not yet seen by {', '.join(late)}" if late else None

        _wait("pause" if paused else "resume", pending, deadline, self._logs())

    def kill(self, name: str) -> list[int]:
        """Kill member ``name`` as a crash of its machine would: SIGKILL its Patroni (first, so
        that it does not restart PostgreSQL) and its postmaster. Returns the pids killed."""
        self._index(name)
        killed = []
        patroni = self.patroni_pid(name)
        if patroni is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(patroni, signal.SIGKILL)
            killed.append(patroni)
        postmaster = self.postmaster_pid(name)
        if postmaster is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(postmaster, signal.SIGKILL)
            killed.append(postmaster)
        self._reap()
        return killed

    def down(self, timeout: float = 60.0, *, purge: bool = False) -> None:
        """Stop every member (Patroni stops its PostgreSQL, fast shutdown), then etcd; what
        is still running after ``timeout`` is killed. ``purge`` then deletes the directory."""
        deadline = time.monotonic() + timeout
        for name in self.member_names:
            pid = self.patroni_pid(name)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        self._settle(
            lambda: [n for n in self.member_names if self.patroni_pid(n) is not None], deadline
        )
        for name in self.member_names:
            pid = self.patroni_pid(name)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            postmaster = self.postmaster_pid(name)
            if postmaster is not None:  # Patroni was killed: an immediate shutdown
                with contextlib.suppress(ProcessLookupError):
                    os.kill(postmaster, signal.SIGQUIT)
        quit_deadline = min(deadline, time.monotonic() + 10)
        self._settle(
            lambda: [n for n in self.member_names if self.postmaster_pid(n) is not None],
            quit_deadline,
        )
        for name in self.member_names:
            postmaster = self.postmaster_pid(name)
            if postmaster is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(postmaster, signal.SIGKILL)
        etcd = self.etcd_pid()
        if etcd is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(etcd, signal.SIGTERM)
            self._settle(lambda: [] if self.etcd_pid() is None else ["etcd"], time.monotonic() + 10)
            etcd = self.etcd_pid()
            if etcd is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(etcd, signal.SIGKILL)
        self._reap()
        if purge:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _settle(self, running: Any, deadline: float) -> None:
        """Wait until ``running()`` is empty or ``deadline`` passes."""
        while running() and time.monotonic() < deadline:
            self._reap()
            time.sleep(POLL_S)

    def status_text(self) -> str:
        """A table of the members, etcd's health and the URL."""
        lines = [
            f"{'member':<8}{'role':<14}{'state':<18}{'postgresql':<18}{'timeline':>9}{'lag':>12}"
        ]
        for m in self.members():
            timeline = "" if m.timeline is None else str(m.timeline)
            lag = "" if m.lag is None else str(m.lag)
            address = f"127.0.0.1:{m.port}"
            lines.append(f"{m.name:<8}{m.role:<14}{m.state:<18}{address:<18}{timeline:>9}{lag:>12}")
        etcd = self._etcd_healthy()
        lines.append(f"etcd     127.0.0.1:{self.settings.etcd_port}  {etcd or 'healthy'}")
        lines.append(f"url      {self.url()}")
        return "\n".join(lines)


# -- command line ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pg-ha",
        description="PostgreSQL high availability (Patroni + etcd) on 127.0.0.1 for idnode.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dir", type=Path, default=Path("var/pg-ha"), help="cluster directory (var/pg-ha)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser(
        "up", parents=[common], help="create and start the cluster, wait until it is healthy"
    )
    up.add_argument("--base-port", type=int, default=Settings.base_port, help="first port (5440)")
    up.add_argument("--members", type=int, default=Settings.members, help="PostgreSQL members (2)")
    up.add_argument("--async", dest="synchronous", action="store_false", help="asynchronous")
    up.add_argument("--strict", action="store_true", help="no writes without a sync standby")
    up.add_argument("--ttl", type=int, default=Settings.ttl, help="leader key TTL, s (10)")
    up.add_argument("--timeout", type=float, default=120.0, help="wait at most this long, s")
    commands.add_parser("status", parents=[common], help="members, roles, lag, the URL")
    commands.add_parser("url", parents=[common], help="print the URL for idnode")
    kill = commands.add_parser(
        "kill", parents=[common], help="SIGKILL a member's Patroni and PostgreSQL"
    )
    kill.add_argument("member", nargs="?", help="pg0, pg1, ... (default: the primary)")
    commands.add_parser("pause", parents=[common], help="maintenance mode: no failover")
    commands.add_parser("resume", parents=[common], help="leave maintenance mode")
    down = commands.add_parser("down", parents=[common], help="stop everything")
    down.add_argument("--purge", action="store_true", help="then delete the directory")
    down.add_argument("--timeout", type=float, default=60.0, help="kill what still runs after")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            settings = Settings(
                base_port=args.base_port,
                members=args.members,
                synchronous=args.synchronous,
                strict=args.strict,
                ttl=args.ttl,
            )
            cluster = Cluster.create(args.dir, settings)
            cluster.up(args.timeout)
            print(cluster.status_text())
        elif args.command == "status":
            print(Cluster.load(args.dir).status_text())
        elif args.command == "url":
            print(Cluster.load(args.dir).url())
        elif args.command == "kill":
            cluster = Cluster.load(args.dir)
            name = args.member or cluster.primary()
            if name is None:
                raise ClusterError("there is no primary to kill")
            pids = cluster.kill(name)
            if not pids:
                raise ClusterError(f"{name} is not running")
            print(f"killed {name} (pids {', '.join(map(str, pids))})")
        elif args.command in ("pause", "resume"):
            Cluster.load(args.dir).set_paused(args.command == "pause")
        elif args.command == "down":
            if (args.dir / "cluster.json").exists():
                Cluster.load(args.dir).down(args.timeout, purge=args.purge)
            elif args.purge:
                shutil.rmtree(args.dir, ignore_errors=True)
    except ClusterError as exc:
        print(f"pg-ha: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
