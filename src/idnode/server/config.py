"""Node configuration: one frozen, documented dataclass, read from and written to TOML.

Relative paths in the file are relative to the file's directory. Example::

    [node]
    listen = "127.0.0.1"
    port = 2641
    database = "idnode.db"
    server_key = "server-key.pem"
    server_admins = ["200:0.NA/88.118.8"]
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from idnode.server.authz import Identity
from idnode.store import is_database_url

__all__ = ["NodeConfig", "parse_identity"]


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

    @property
    def database_location(self) -> str:
        """The database URL, or the SQLite file's absolute path."""
        if is_database_url(self.database):
            return self.database
        return str(self.directory / self.database)

    @property
    def server_key_path(self) -> Path:
        return self.directory / self.server_key

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
        return cls(directory=path.parent.resolve(), server_admins=admins, **node)

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
        )
