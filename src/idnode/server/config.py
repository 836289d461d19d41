"""Node configuration: frozen, documented dataclasses, read from and written to TOML.

Relative paths in the file are relative to the file's directory. Example::

    [node]
    listen = "127.0.0.1"
    port = 2641
    database = "idnode.db"
    server_key = "server-key.pem"
    server_admins = ["200:0.NA/88.118.8"]
    http_port = 8000                  # absent: no HTTP; 0: an ephemeral port
    tls_cert = "tls-cert.pem"         # with tls_key: HTTPS instead of HTTP
    tls_key = "tls-key.pem"
    replication_admins = ["300:0.NA/88.118.8"]
    roots = ["10.0.0.9:2641"]         # a recursive node: resolves the rest from these roots

    [site]                            # optional: this node is one server of a larger site
    serial = 3
    hash = "by_handle"                # by_prefix | by_suffix | by_handle (spec §2.2)
    primary = true                    # false: a mirror site (read-only)
    this_server = 1
    servers = [
      {id = 1, address = "10.0.0.1", port = 2641, http_port = 8000},
      {id = 2, address = "10.0.0.2", port = 2641, key = "server2.pub.pem"},
    ]

    [replication]                     # optional: this node mirrors a primary site
    primary = "10.0.0.1:2641"
    identity = "300:0.NA/88.118.8"
    interval = 1.0

    [report]                          # optional: report prefixes and counts to the parent
    parent = "http://10.0.0.9:8000"
    identity = "320:0.NA/88.118.8"    # HS_PUBKEY there: the server key; or with secret_file
    interval = 300.0

    [trust]                           # optional: verifying signed values (docs/trust.md)
    root = "0.NA/TRUST"
    root_keys = ["trust-root.pub.pem"]
    max_chain_length = 50

    [resolver]                        # optional, with roots: certified resolution
    certified = true                  # refuse answers whose signature does not verify
    root_keys = {"10.0.0.9:2641" = "root-server.pub.pem"}   # each root's server key

Without ``[site]`` the node is a site of one primary server built from ``[node]``. Unknown
keys, in any table, are errors.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from idnode.protocol.types.hs_site import HashOption
from idnode.server.authz import Identity
from idnode.store import is_database_url
from idnode.trust.config import TrustConfig

__all__ = [
    "DEFAULT_HTTP_PORT",
    "HASH_OPTIONS",
    "PASSPHRASE_VARIABLE",
    "NodeConfig",
    "ReplicationConfig",
    "ReportConfig",
    "ResolverConfig",
    "ServerEntry",
    "SiteConfig",
    "parse_identity",
]

#: The HTTP port of a node unless configured otherwise (spec §1.1).
DEFAULT_HTTP_PORT = 8000
#: The environment variable holding the passphrase of an encrypted server key.
PASSPHRASE_VARIABLE = "IDNODE_KEY_PASSPHRASE"
#: ``[site] hash`` names and the HS_SITE HashOption each stands for (spec §2.2).
HASH_OPTIONS: dict[str, HashOption] = {
    "by_prefix": HashOption.BY_PREFIX,
    "by_suffix": HashOption.BY_SUFFIX,
    "by_handle": HashOption.BY_ALL,
}
_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFFFFFF


def parse_identity(text: str) -> Identity:
    """``index:handle`` (e.g. ``300:0.NA/88.118.8``) as an :class:`Identity`."""
    index, sep, handle = text.partition(":")
    if not sep or not index.isdigit() or not handle:
        raise ValueError(f"expected index:handle, got {text!r}")
    return Identity(handle, int(index))


def _check_int(value: object, what: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} must be an integer in {low}..{high}, not {value!r}")


def _check_host_port(text: object, what: str) -> None:
    host, sep, port = str(text).rpartition(":")
    if not isinstance(text, str) or not sep or not host or not port.isdigit():
        raise ValueError(f"{what}: expected HOST:PORT, got {text!r}")
    _check_int(int(port), f"{what} port", 1, 65535)


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise ValueError(f"unknown settings in {where}: {sorted(unknown)}")


@dataclass(frozen=True)
class ServerEntry:
    """One server of a multi-server site: an element of ``[site] servers``."""

    id: int
    """The server's serverId in HS_SITE; unique within the site."""
    address: str
    """The IP address (v4 or v6) the site advertises for it."""
    port: int = 2641
    """Its UDP and TCP port (query over UDP, query and admin over TCP)."""
    http_port: int | None = None
    """Its HTTP port (HTTPS when this node serves HTTPS: a site's servers are assumed alike);
    None: the site advertises no HTTP interface for it."""
    key: str | None = None
    """PEM file of its public server key, RSA, DSA or SM2 (relative to the configuration's
    directory). May be omitted only in this node's own entry, whose key is the public half of
    ``server_key``."""

    def __post_init__(self) -> None:
        _check_int(self.id, "site server id", 0, _U32_MAX)
        _check_int(self.port, f"port of site server {self.id}", 1, 65535)
        if self.http_port is not None:
            _check_int(self.http_port, f"http_port of site server {self.id}", 1, 65535)
        try:
            ipaddress.ip_address(self.address)
        except ValueError as exc:
            raise ValueError(f"address of site server {self.id}: {exc}") from exc
        if self.key is not None and not isinstance(self.key, str):
            raise ValueError(f"key of site server {self.id} must be a file name")

    def dump(self) -> str:
        """This entry as a TOML inline table."""
        parts = [f"id = {self.id}", f"address = {json.dumps(self.address)}", f"port = {self.port}"]
        if self.http_port is not None:
            parts.append(f"http_port = {self.http_port}")
        if self.key is not None:
            parts.append(f"key = {json.dumps(self.key)}")
        return "{" + ", ".join(parts) + "}"


@dataclass(frozen=True)
class SiteConfig:
    """The ``[site]`` table: the multi-server site (one HS_SITE record) this node is a server of.

    Every server of the site has the same table except ``this_server``. Handles are spread
    over the servers by ``hash`` (spec §2.2): each server answers only its share and 301 for
    the others. A site with ``primary = false`` is a mirror: it answers resolutions and
    refuses administration.
    """

    servers: tuple[ServerEntry, ...]
    """The servers in HS_SITE record order; the order decides which server a handle hashes
    to, so it must be the same on every server of the site."""
    this_server: int
    """The ``id`` of this node's entry in ``servers``."""
    serial: int = 1
    """The HS_SITE serial number; bump it whenever the site changes."""
    hash: str = "by_handle"
    """Which part of a handle picks its server: ``by_prefix``, ``by_suffix`` or
    ``by_handle`` (the whole handle)."""
    primary: bool = True
    """Whether this is a primary site (administration goes here); mirrors have false."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "servers", tuple(self.servers))
        if not self.servers:
            raise ValueError("[site] servers must list at least one server")
        ids = [s.id for s in self.servers]
        if len(set(ids)) != len(ids):
            raise ValueError(f"[site] server ids must be unique: {ids}")
        if self.this_server not in ids:
            raise ValueError(f"[site] this_server {self.this_server!r} is not among ids {ids}")
        if self.hash not in HASH_OPTIONS:
            raise ValueError(f"[site] hash must be one of {sorted(HASH_OPTIONS)}: {self.hash!r}")
        _check_int(self.serial, "[site] serial", 0, _U16_MAX)
        if not isinstance(self.primary, bool):
            raise ValueError(f"[site] primary must be true or false, not {self.primary!r}")
        for s in self.servers:
            if s.key is None and s.id != self.this_server:
                raise ValueError(f"[site] server {s.id} needs the file of its public key (key)")

    @property
    def hash_option(self) -> HashOption:
        """``hash`` as the HS_SITE HashOption."""
        return HASH_OPTIONS[self.hash]

    @property
    def this_index(self) -> int:
        """0-based position of this node's entry in ``servers`` (the hash's result)."""
        return next(i for i, s in enumerate(self.servers) if s.id == self.this_server)

    @classmethod
    def from_table(cls, table: dict[str, Any], where: str) -> SiteConfig:
        """The ``[site]`` table as read from TOML; ValueError for unknown keys or bad values."""
        if not isinstance(table, dict):
            raise ValueError(f"{where} must be a table")
        table = dict(table)
        _check_keys(table, {f.name for f in fields(cls)}, where)
        entries = table.pop("servers", [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError(f"{where}: servers must be a list of tables")
        allowed = {f.name for f in fields(ServerEntry)}
        for entry in entries:
            _check_keys(entry, allowed, f"{where} servers")
        if "this_server" not in table:
            raise ValueError(f"{where}: this_server is missing")
        return cls(servers=tuple(ServerEntry(**e) for e in entries), **table)

    def dump(self) -> str:
        """The ``[site]`` table as TOML."""
        servers = "".join(f"  {s.dump()},\n" for s in self.servers)
        return (
            "[site]\n"
            f"serial = {self.serial}\n"
            f"hash = {json.dumps(self.hash)}\n"
            f"primary = {json.dumps(self.primary)}\n"
            f"this_server = {self.this_server}\n"
            f"servers = [\n{servers}]\n"
        )


@dataclass(frozen=True)
class ReplicationConfig:
    """The ``[replication]`` table: this node mirrors a primary site."""

    primary: str | None = None
    """``HOST:PORT`` of a server of the primary site this node mirrors; set: this node is a
    read-only mirror."""
    identity: Identity | None = None
    """The identity (``index:handle``) the mirror authenticates as, with its ``server_key``,
    when it pulls the primary's transaction log; it must be a replication or server admin
    there."""
    interval: float = 1.0
    """Seconds between two polls of the primary."""

    def __post_init__(self) -> None:
        if self.primary is not None:
            _check_host_port(self.primary, "[replication] primary")
        if isinstance(self.interval, bool) or not isinstance(self.interval, int | float):
            raise ValueError(f"[replication] interval must be a number, not {self.interval!r}")
        if not self.interval > 0:
            raise ValueError(f"[replication] interval must be positive, not {self.interval}")

    @classmethod
    def from_table(cls, table: dict[str, Any], where: str) -> ReplicationConfig:
        """The ``[replication]`` table as read from TOML."""
        if not isinstance(table, dict):
            raise ValueError(f"{where} must be a table")
        table = dict(table)
        _check_keys(table, {f.name for f in fields(cls)}, where)
        identity = table.pop("identity", None)
        parsed = None if identity is None else parse_identity(str(identity))
        return cls(identity=parsed, **table)

    def dump(self) -> str:
        """The ``[replication]`` table as TOML."""
        return (
            "[replication]\n"
            + ("" if self.primary is None else f"primary = {json.dumps(self.primary)}\n")
            + ("" if self.identity is None else f"identity = {json.dumps(str(self.identity))}\n")
            + f"interval = {self.interval}\n"
        )


@dataclass(frozen=True)
class ReportConfig:
    """The ``[report]`` table: this node reports its prefixes and statistics to its parent
    node (:mod:`idnode.server.stats`)."""

    parent: str
    """``http://HOST:PORT`` (or ``https://``) of the parent node's HTTP interface; the only
    address reports go to."""
    identity: Identity
    """The identity (``index:handle``) to authenticate as at the parent, on the prefix handle
    the parent holds for this node's prefix: an HS_PUBKEY holding this node's server key
    (``Authorization: Handle``), or an HS_SECKEY with ``secret_file``."""
    interval: float = 300.0
    """Seconds between two reports (the first is sent at start)."""
    secret_file: str | None = None
    """A file holding the secret of ``identity`` (relative to the configuration's directory):
    HTTP Basic instead of the server key."""

    def __post_init__(self) -> None:
        scheme, _sep, rest = str(self.parent).partition("://")
        if not isinstance(self.parent, str) or scheme not in ("http", "https") or not rest:
            raise ValueError(f"[report] parent must be http://HOST:PORT, not {self.parent!r}")
        if isinstance(self.interval, bool) or not isinstance(self.interval, int | float):
            raise ValueError(f"[report] interval must be a number, not {self.interval!r}")
        if not self.interval > 0:
            raise ValueError(f"[report] interval must be positive, not {self.interval}")
        if self.secret_file is not None and not isinstance(self.secret_file, str):
            raise ValueError("[report] secret_file must be a file name")

    @classmethod
    def from_table(cls, table: dict[str, Any], where: str) -> ReportConfig:
        """The ``[report]`` table as read from TOML."""
        if not isinstance(table, dict):
            raise ValueError(f"{where} must be a table")
        table = dict(table)
        _check_keys(table, {f.name for f in fields(cls)}, where)
        for required in ("parent", "identity"):
            if required not in table:
                raise ValueError(f"{where}: {required} is missing")
        identity = parse_identity(str(table.pop("identity")))
        return cls(identity=identity, **table)

    def dump(self) -> str:
        """The ``[report]`` table as TOML."""
        return (
            "[report]\n"
            f"parent = {json.dumps(self.parent)}\n"
            f"identity = {json.dumps(str(self.identity))}\n"
            f"interval = {self.interval}\n"
            + (
                ""
                if self.secret_file is None
                else f"secret_file = {json.dumps(self.secret_file)}\n"
            )
        )


@dataclass(frozen=True)
class ResolverConfig:
    """The ``[resolver]`` table: how a recursive node (one with ``roots``) resolves."""

    certified: bool = False
    """Ask every server on the way for certified (signed) answers and refuse an answer whose
    signature does not verify with the key that server's HS_SITE publishes; the roots' keys
    are ``root_keys``, so every root needs one (docs/trust.md, "Certified responses")."""
    root_keys: tuple[tuple[str, str], ...] = ()
    """(root as written in ``roots``, PEM file of that server's public key: RSA, DSA or SM2,
    relative to the configuration's directory); in TOML an inline table
    ``{"HOST:PORT" = "FILE"}``."""

    def __post_init__(self) -> None:
        if not isinstance(self.certified, bool):
            raise ValueError(f"[resolver] certified must be true or false, not {self.certified!r}")
        if not all(
            isinstance(root, str) and isinstance(path, str) and path
            for root, path in self.root_keys
        ):
            raise ValueError("[resolver] root_keys maps HOST:PORT to a file name")

    def key_file(self, root: str) -> str | None:
        """The key file configured for ``root`` (as written in ``roots``)."""
        return dict(self.root_keys).get(root)

    def check(self, roots: tuple[str, ...]) -> None:
        """ValueError unless every ``root_keys`` entry is one of ``roots`` and, when
        certified, every root has a key."""
        unknown = sorted(root for root, _path in self.root_keys if root not in roots)
        if unknown:
            raise ValueError(f"[resolver] root_keys names roots not in roots: {unknown}")
        if self.certified:
            if not roots:
                raise ValueError("[resolver] certified needs roots")
            missing = [root for root in roots if self.key_file(root) is None]
            if missing:
                raise ValueError(f"[resolver] certified: no key for the roots {missing}")

    @classmethod
    def from_table(cls, table: dict[str, Any], where: str) -> ResolverConfig:
        """The ``[resolver]`` table as read from TOML."""
        if not isinstance(table, dict):
            raise ValueError(f"{where} must be a table")
        table = dict(table)
        _check_keys(table, {f.name for f in fields(cls)}, where)
        keys = table.pop("root_keys", {})
        if not isinstance(keys, dict):
            raise ValueError(f'{where}: root_keys must be a table {{"HOST:PORT" = "FILE"}}')
        return cls(root_keys=tuple(keys.items()), **table)

    def dump(self) -> str:
        """The ``[resolver]`` table as TOML."""
        keys = ", ".join(f"{json.dumps(r)} = {json.dumps(p)}" for r, p in self.root_keys)
        certified = "true" if self.certified else "false"
        root_keys = f"root_keys = {{{keys}}}\n" if self.root_keys else ""
        return f"[resolver]\ncertified = {certified}\n{root_keys}"


@dataclass(frozen=True)
class NodeConfig:
    directory: Path
    """The node's directory; relative paths are resolved against it."""
    listen: str = "127.0.0.1"
    """Address the UDP and TCP servers bind to, and that the node's HS_SITE advertises."""
    port: int = 2641
    """UDP and TCP port of the Handle protocol."""
    database: str = "idnode.db"
    """SQLite database file, or a ``postgresql://`` URL."""
    server_key: str = "server-key.pem"
    """PEM private key of the server; its public half is published in HS_SITE."""
    server_key_passphrase_file: str | None = None
    """A file holding the passphrase of an encrypted ``server_key`` (e.g. a systemd
    credential); the environment variable ``IDNODE_KEY_PASSPHRASE``, when set, is used
    instead. None and no variable: the key file must not be encrypted."""
    site_serial: int = 1
    """Serial number of this node's HS_SITE record; bump it when the site changes. With a
    ``[site]`` table, that table's ``serial`` is used instead."""
    description: str = "idnode"
    """The ``desc`` attribute of the HS_SITE record."""
    server_admins: tuple[Identity, ...] = field(default=())
    """Identities allowed every operation, including home/unhome (HS_VLIST groups allowed)."""
    challenge_timeout: float = 60.0
    """Seconds a client has to answer an authentication challenge."""
    auth_failures_limit: int = 20
    """Failed authentications from one address within a minute after which that address is
    refused authentication for ``auth_block`` seconds (RC 3); 0: no limit."""
    auth_block: float = 300.0
    """Seconds an address stays refused after too many failed authentications."""
    writes_per_second: float = 200.0
    """Administrative requests per second one address may make on average (bursts of five
    seconds' worth); beyond, RC 3 until it slows down; 0: no limit."""
    http_port: int | None = -1
    """Port of the HTTP interface (JSON API, native messages over HTTP, proxy); 0 picks an
    ephemeral port, None serves no HTTP. Default: 8000, or 0 when ``port`` is 0 (a node on
    ephemeral ports, e.g. in tests, must not claim a fixed one). In a configuration file an
    absent ``http_port`` means None."""
    tls_cert: str | None = None
    """PEM certificate (chain) for HTTPS; with ``tls_key`` the HTTP interface speaks TLS."""
    tls_key: str | None = None
    """PEM private key of ``tls_cert``."""
    roots: tuple[str, ...] = ()
    """``HOST:PORT`` of root nodes. When given, the node is also a recursive node: a
    resolution with the REC flag for a handle it does not serve is resolved from these roots
    (and cached) instead of answered with 301. Never a built-in list: empty means none."""
    gs1_rules: tuple[str, ...] = ()
    """GS1 Digital Link mappings, ``AI:TEMPLATE`` each, e.g.
    ``01:88.118.8/MD-UDI-{gtin14}``: ``/01/<gtin>`` resolves to that identifier (see
    :mod:`idnode.http.gs1`). Empty: no Digital Link paths."""
    replication_admins: tuple[Identity, ...] = ()
    """Identities allowed to pull the transaction log and dumps (ops 1000-1003), besides
    server admins (HS_VLIST groups allowed)."""
    site: SiteConfig | None = None
    """The ``[site]`` table: the multi-server site this node is one server of. None: a site
    of one primary server built from the settings above."""
    replication: ReplicationConfig | None = None
    """The ``[replication]`` table: what this node mirrors. None: it mirrors nothing."""
    stats_interval: float = 10.0
    """Seconds between two flushes of the statistics (resolutions counted in memory, and
    registrations from the transaction log) to the database."""
    report: ReportConfig | None = None
    """The ``[report]`` table: where this node reports its prefixes and statistics. None: it
    reports nowhere."""
    trust: TrustConfig | None = None
    """The ``[trust]`` table: the trust root that ``/api/verify`` checks signed values
    against (:mod:`idnode.trust.config`). None: no verification offered."""
    resolver: ResolverConfig | None = None
    """The ``[resolver]`` table: certified resolution from ``roots`` and the roots' keys.
    None: answers are not checked."""
    response_cache: int = 100_000
    """Encoded responses to anonymous resolutions kept in memory per process (at most 64 MiB;
    see :mod:`idnode.server.respcache`); 0: no cache. Set 0 when another host writes to the
    same PostgreSQL database (its writes are not seen by the cache)."""
    workers: int = 1
    """Processes serving UDP, TCP and HTTP on the same ports (SO_REUSEPORT), each with its
    own store connections; the parent restarts any that dies (see
    :mod:`idnode.server.workers`). 1: the node is one process."""
    metrics: str = "admin"
    """``/metrics`` on the HTTP port (Prometheus text format): ``"public"`` for anyone,
    ``"admin"`` for server administrators (HTTP Basic authentication, as for the API),
    ``"off"`` for no such path."""

    def __post_init__(self) -> None:
        if self.http_port == -1:
            object.__setattr__(self, "http_port", 0 if self.port == 0 else DEFAULT_HTTP_PORT)
        if self.http_port is not None and not 0 <= self.http_port <= 65535:
            raise ValueError(f"http_port out of range: {self.http_port}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if isinstance(self.stats_interval, bool) or not isinstance(
            self.stats_interval, int | float
        ):
            raise ValueError(f"stats_interval must be a number, not {self.stats_interval!r}")
        if not self.stats_interval > 0:
            raise ValueError(f"stats_interval must be positive, not {self.stats_interval}")
        for name in ("response_cache", "workers"):
            number = getattr(self, name)
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                raise ValueError(f"{name} must be a whole number >= 0, not {number!r}")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.metrics not in ("public", "admin", "off"):
            raise ValueError(f'metrics must be "public", "admin" or "off", not {self.metrics!r}')

    @property
    def read_only(self) -> bool:
        """Whether this node refuses administration: a server of a mirror (non-primary) site,
        or a mirror following a primary (``[replication] primary``)."""
        if self.site is not None and not self.site.primary:
            return True
        return self.replication is not None and self.replication.primary is not None

    @property
    def database_location(self) -> str:
        """The database URL, or the SQLite file's absolute path."""
        if is_database_url(self.database):
            return self.database
        return str(self.directory / self.database)

    @property
    def server_key_path(self) -> Path:
        return self.directory / self.server_key

    def server_key_passphrase(self) -> bytes | None:
        """The passphrase of ``server_key`` (see :attr:`server_key_passphrase_file`)."""
        from_env = os.environ.get(PASSPHRASE_VARIABLE)
        if from_env is not None:
            return from_env.encode("utf-8")
        if self.server_key_passphrase_file is None:
            return None
        text = (self.directory / self.server_key_passphrase_file).read_bytes()
        return text.rstrip(b"\r\n")

    @property
    def tls_cert_path(self) -> Path | None:
        return None if self.tls_cert is None else self.directory / self.tls_cert

    @property
    def tls_key_path(self) -> Path | None:
        return None if self.tls_key is None else self.directory / self.tls_key

    @classmethod
    def load(cls, path: Path) -> NodeConfig:
        """Read ``path``. Raises ValueError for unknown keys or bad values."""
        with path.open("rb") as f:
            data = tomllib.load(f)
        node = dict(data.get("node", {}))
        tables = {"node", *_TABLES}
        unknown = (set(node) - _node_keys()) | {f"[{t}]" for t in set(data) - tables}
        if unknown:
            raise ValueError(f"unknown settings in {path}: {sorted(unknown)}")
        admins = tuple(parse_identity(s) for s in node.pop("server_admins", []))
        replicators = tuple(parse_identity(s) for s in node.pop("replication_admins", []))
        gs1 = tuple(str(rule) for rule in node.pop("gs1_rules", []))
        roots = tuple(str(root) for root in node.pop("roots", []))
        node.setdefault("http_port", None)
        site = data.get("site")
        replication = data.get("replication")
        report = data.get("report")
        trust = data.get("trust")
        resolver = data.get("resolver")
        resolver_config = (
            None if resolver is None else ResolverConfig.from_table(resolver, f"{path} [resolver]")
        )
        if resolver_config is not None:
            resolver_config.check(roots)
        return cls(
            directory=path.parent.resolve(),
            server_admins=admins,
            replication_admins=replicators,
            gs1_rules=gs1,
            roots=roots,
            site=None if site is None else SiteConfig.from_table(site, f"{path} [site]"),
            replication=(
                None
                if replication is None
                else ReplicationConfig.from_table(replication, f"{path} [replication]")
            ),
            report=None if report is None else ReportConfig.from_table(report, f"{path} [report]"),
            trust=None if trust is None else TrustConfig.from_table(trust, f"{path} [trust]"),
            resolver=resolver_config,
            **node,
        )

    def dump(self) -> str:
        """This configuration as TOML that :meth:`load` reads back to an equal one."""
        admins = ", ".join(json.dumps(str(a)) for a in self.server_admins)
        replicators = ", ".join(json.dumps(str(a)) for a in self.replication_admins)
        return (
            "# idnode node configuration (see `idnode serve --help`)\n"
            "[node]\n"
            f"listen = {json.dumps(self.listen)}\n"
            f"port = {self.port}\n"
            f"database = {json.dumps(self.database)}\n"
            f"server_key = {json.dumps(self.server_key)}\n"
            + (
                ""
                if self.server_key_passphrase_file is None
                else f"server_key_passphrase_file = {json.dumps(self.server_key_passphrase_file)}\n"
            )
            + f"site_serial = {self.site_serial}\n"
            f"description = {json.dumps(self.description, ensure_ascii=False)}\n"
            f"server_admins = [{admins}]\n"
            f"challenge_timeout = {self.challenge_timeout}\n"
            f"auth_failures_limit = {self.auth_failures_limit}\n"
            f"auth_block = {self.auth_block}\n"
            f"writes_per_second = {self.writes_per_second}\n"
            + ("" if self.http_port is None else f"http_port = {self.http_port}\n")
            + ("" if self.tls_cert is None else f"tls_cert = {json.dumps(self.tls_cert)}\n")
            + ("" if self.tls_key is None else f"tls_key = {json.dumps(self.tls_key)}\n")
            + (f"gs1_rules = {json.dumps(list(self.gs1_rules))}\n" if self.gs1_rules else "")
            + (f"roots = {json.dumps(list(self.roots))}\n" if self.roots else "")
            + (f"replication_admins = [{replicators}]\n" if self.replication_admins else "")
            + (f"stats_interval = {self.stats_interval}\n" if self.stats_interval != 10.0 else "")
            + (
                f"response_cache = {self.response_cache}\n"
                if self.response_cache != 100_000
                else ""
            )
            + (f"workers = {self.workers}\n" if self.workers != 1 else "")
            + (f"metrics = {json.dumps(self.metrics)}\n" if self.metrics != "admin" else "")
            + ("" if self.site is None else "\n" + self.site.dump())
            + ("" if self.replication is None else "\n" + self.replication.dump())
            + ("" if self.report is None else "\n" + self.report.dump())
            + ("" if self.trust is None else "\n" + self.trust.dump())
            + ("" if self.resolver is None else "\n" + self.resolver.dump())
        )


#: Tables besides ``[node]``, each a field of :class:`NodeConfig`.
_TABLES = ("site", "replication", "report", "trust", "resolver")


def _node_keys() -> set[str]:
    """The keys allowed in ``[node]``: NodeConfig's fields but the directory and the tables."""
    return {f.name for f in fields(NodeConfig)} - {"directory", *_TABLES}
