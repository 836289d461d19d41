"""The ``[trust]`` table of a node's configuration: what ``/api/verify`` and
``idnode resolve --verify --config`` trust::

    [trust]
    root = "0.NA/TRUST"                 # the trust root handle (no built-in root)
    root_keys = ["trust-root.pub.pem"]  # its public key(s): PEM or JWK files, relative to the
                                        # configuration's directory
    max_chain_length = 50               # certificates in a chain, the root's included

Unknown keys are errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idnode.trust.chain import DEFAULT_MAX_CHAIN_LENGTH

__all__ = ["TrustConfig"]


@dataclass(frozen=True)
class TrustConfig:
    """The ``[trust]`` table."""

    root: str
    """The trust root handle: chains must end at a self-signed certificate of an identity
    of this handle."""
    root_keys: tuple[str, ...]
    """Files (PEM public or private key, or JWK) of the root's accepted public keys."""
    max_chain_length: int = DEFAULT_MAX_CHAIN_LENGTH
    """The most certificates a chain may have, the root's included."""

    def __post_init__(self) -> None:
        if not isinstance(self.root, str) or "/" not in self.root:
            raise ValueError(f"[trust] root must be a handle, not {self.root!r}")
        if not self.root_keys or not all(isinstance(k, str) for k in self.root_keys):
            raise ValueError("[trust] root_keys must list at least one key file")
        length = self.max_chain_length
        if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= 1000:
            raise ValueError(f"[trust] max_chain_length must be 1..1000, not {length!r}")

    @classmethod
    def from_table(cls, table: Any, where: str) -> TrustConfig:
        if not isinstance(table, dict):
            raise ValueError(f"{where} must be a table")
        unknown = set(table) - {"root", "root_keys", "max_chain_length"}
        if unknown:
            raise ValueError(f"unknown settings in {where}: {sorted(unknown)}")
        if "root" not in table or "root_keys" not in table:
            raise ValueError(f"{where}: root and root_keys are needed")
        keys = table["root_keys"]
        if isinstance(keys, str):
            keys = [keys]
        if not isinstance(keys, list):
            raise ValueError(f"{where}: root_keys is a list of file names")
        return cls(
            root=table["root"],
            root_keys=tuple(keys),
            max_chain_length=table.get("max_chain_length", DEFAULT_MAX_CHAIN_LENGTH),
        )

    def dump(self) -> str:
        return (
            "[trust]\n"
            f"root = {json.dumps(self.root)}\n"
            f"root_keys = {json.dumps(list(self.root_keys))}\n"
            f"max_chain_length = {self.max_chain_length}\n"
        )

    def policy(self, directory: Path) -> TrustPolicy:
        """The policy to verify with, the key files read relative to ``directory``;
        TrustError if a key file cannot be used, OSError if it cannot be read."""
        from idnode.trust.keys import load_public_key
        from idnode.trust.verify import TrustPolicy

        keys = tuple(load_public_key((directory / name).read_bytes()) for name in self.root_keys)
        return TrustPolicy(self.root, keys, self.max_chain_length)


if TYPE_CHECKING:
    from idnode.trust.verify import TrustPolicy
