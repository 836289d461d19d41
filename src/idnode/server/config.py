"""Node configuration: one frozen, documented dataclass, read from and written to TOML.

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
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from idnode.server.authz import Identity
from idnode.store import is_database_url

__all__ = ["DEFAULT_HTTP_PORT", "NodeConfig", "parse_identity"]

#: The HTTP port of a node unless configured otherwise (spec §1.1).
DEFAULT_HTTP_PORT = 8000


def parse_identity(text: str) -> Identity:
    """``index:handle`` (e.g. ``300:0.NA/88.118.8``) as an :class:`Identity`."""
    index, sep, handle = text.partition(":")
    if not sep or not index.isdigit() or not handle:
        raise ValueError(f"expected index:handle, got {text!r}")
    return Identity(handle, int(index))


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
    site_serial: int = 1
    """Serial number of this node's HS_SITE record; bump it when the site changes."""
    description: str = "idnode"
    """The ``desc`` attribute of the HS_SITE record."""
    server_admins: tuple[Identity, ...] = field(default=())
    """Identities allowed every operation, including home/unhome (HS_VLIST groups allowed)."""
    challenge_timeout: float = 60.0
    """Seconds a client has to answer an authentication challenge."""
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

    def __post_init__(self) -> None:
        if self.http_port == -1:
            object.__setattr__(self, "http_port", 0 if self.port == 0 else DEFAULT_HTTP_PORT)
        if self.http_port is not None and not 0 <= self.http_port <= 65535:
            raise ValueError(f"http_port out of range: {self.http_port}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")

    @property
    def database_location(self) -> str:
        """The database URL, or the SQLite file's absolute path."""
        if is_database_url(self.database):
            return self.database
        return str(self.directory / self.database)

    @property
    def server_key_path(self) -> Path:
        return self.directory / self.server_key

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
        unknown = set(node) - {f for f in cls.__dataclass_fields__ if f != "directory"}
        if unknown or set(data) - {"node"}:
            raise ValueError(f"unknown settings in {path}: {sorted(unknown or set(data))}")
        admins = tuple(parse_identity(s) for s in node.pop("server_admins", []))
        gs1 = tuple(str(rule) for rule in node.pop("gs1_rules", []))
        roots = tuple(str(root) for root in node.pop("roots", []))
        node.setdefault("http_port", None)
        return cls(
            directory=path.parent.resolve(),
            server_admins=admins,
            gs1_rules=gs1,
            roots=roots,
            **node,
        )

    def dump(self) -> str:
        admins = ", ".join(json.dumps(str(a)) for a in self.server_admins)
        return (
            "# idnode node configuration (see `idnode serve --help`)\n"
            "[node]\n"
            f"listen = {json.dumps(self.listen)}\n"
            f"port = {self.port}\n"
            f"database = {json.dumps(self.database)}\n"
            f"server_key = {json.dumps(self.server_key)}\n"
            f"site_serial = {self.site_serial}\n"
            f"description = {json.dumps(self.description, ensure_ascii=False)}\n"
            f"server_admins = [{admins}]\n"
            f"challenge_timeout = {self.challenge_timeout}\n"
            + ("" if self.http_port is None else f"http_port = {self.http_port}\n")
            + ("" if self.tls_cert is None else f"tls_cert = {json.dumps(self.tls_cert)}\n")
            + ("" if self.tls_key is None else f"tls_key = {json.dumps(self.tls_key)}\n")
            + (f"gs1_rules = {json.dumps(list(self.gs1_rules))}\n" if self.gs1_rules else "")
            + (f"roots = {json.dumps(list(self.roots))}\n" if self.roots else "")
        )
