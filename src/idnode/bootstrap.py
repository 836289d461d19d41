"""Creating a node directory: configuration, keys, database, prefix records, demo data.

``init_node`` lays out::

    <dir>/idnode.toml       configuration (NodeConfig)
    <dir>/idnode.db         SQLite database
    <dir>/server-key.pem    the server's signing key (public half in HS_SITE)
    <dir>/admin-key.pem     private key of the admin identity 301:0.NA/<prefix>
    <dir>/admin-secret      secret of the admin identity 300:0.NA/<prefix>

and creates the prefix handle ``0.NA/<prefix>``: HS_SITE at 1, HS_ADMIN at 100 naming the
admin group 200:0.NA/<prefix>, the HS_VLIST group at 200 (members 300 and 301), HS_SECKEY at
300 (not public) and HS_PUBKEY at 301. The group is the node's server administrator.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from idnode.crypto.keys import generate_key
from idnode.protocol.codes import AdminPermission, Permission
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.types.hs_pubkey import PublicKeyData, dump_private_key_pem
from idnode.protocol.types.hs_vlist import ValueList
from idnode.protocol.values import HandleValue, Reference
from idnode.server.authz import Identity
from idnode.server.config import NodeConfig
from idnode.server.node import build_site
from idnode.store import open_store

__all__ = ["DEMO_HANDLES", "InitResult", "init_node"]

ALL_PERMISSIONS = 0x0FFF
#: Everything but ADD_NA/DELETE_NA: the usual admin of an ordinary handle.
HANDLE_ADMIN_PERMISSIONS = ALL_PERMISSIONS & ~(AdminPermission.ADD_NA | AdminPermission.DELETE_NA)
_PRIVATE = int(Permission.ADMIN_READ | Permission.ADMIN_WRITE)

#: Demo identifiers (suffix → values) from the four industries of the demo prefix.
DEMO_HANDLES: dict[str, list[tuple[int, str, str, int | None]]] = {
    "PV-2026-000123": [
        (1, "URL", "https://pv.example.com/modules/PV-2026-000123", None),
        (2, "DESC", "Monocrystalline PV module, 550 W, 144 half-cut cells", None),
        (3, "EMAIL", "quality@pv.example.com", None),
        (4, "BATCH", "CELL-LOT-2026-0419", None),
        (5, "INTERNAL.COST", "CNY 612.40", _PRIVATE),
    ],
    "MD-UDI-06912345678902": [
        (1, "URL", "https://med.example.com/udi/06912345678902", None),
        (2, "DESC", "Infusion pump, GTIN 06912345678902, lot 2026A17", None),
        (3, "EXPIRY", "2029-03-31", None),
    ],
    "PCB-7731-A": [
        (1, "URL", "https://ems.example.com/boards/PCB-7731-A", None),
        (2, "DESC", "Controller board rev A, 6 layers", None),
        (3, "BOM", "88.118.8/BOM-7731-A", None),
    ],
    "VIN-LJ1EEASP0N0000001": [
        (1, "URL", "https://auto.example.com/vehicles/LJ1EEASP0N0000001", None),
        (2, "DESC", "Electric SUV, battery pack 88.118.8/PACK-0001", None),
    ],
}


@dataclass(frozen=True)
class InitResult:
    config_path: Path
    prefix: str
    secret_identity: Identity
    key_identity: Identity
    demo_handles: tuple[str, ...]


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _value(index: int, vtype: str, data: bytes, permissions: int | None = None) -> HandleValue:
    now = int(time.time())
    if permissions is None:
        return HandleValue(index, vtype, data, timestamp=now)
    return HandleValue(index, vtype, data, timestamp=now, permissions=permissions)


async def init_node(
    directory: Path,
    prefix: str,
    *,
    listen: str = "127.0.0.1",
    port: int = 2641,
    demo: bool = False,
    description: str = "idnode",
    database: str = "idnode.db",
    key_passphrase_file: Path | None = None,
    key_type: str = "rsa",
) -> InitResult:
    """Create a node in ``directory`` (which must not hold one already). ``database`` is a
    SQLite file (relative to ``directory``) or a ``postgresql://`` URL of an existing, empty
    database. With ``key_passphrase_file`` the server and admin keys are written encrypted
    with the passphrase in that file, and the configuration names the file. ``key_type`` is
    the kind of both keys: ``rsa`` (2048 bits), ``dsa`` (2048 bits) or ``sm2``."""
    directory.mkdir(parents=True, exist_ok=True)
    config_path = directory / "idnode.toml"
    if config_path.exists():
        raise FileExistsError(f"{config_path} already exists")
    prefix_handle = f"0.NA/{prefix}"
    group = Identity(prefix_handle, 200)
    secret_id, key_id = Identity(prefix_handle, 300), Identity(prefix_handle, 301)
    config = NodeConfig(
        directory=directory.resolve(),
        listen=listen,
        port=port,
        database=database,
        description=description,
        server_admins=(group,),
        gs1_rules=(f"01:{prefix}/MD-UDI-{{gtin14}}",) if demo else (),
        server_key_passphrase_file=(
            None if key_passphrase_file is None else str(key_passphrase_file.resolve())
        ),
    )
    passphrase = config.server_key_passphrase() if key_passphrase_file is not None else None

    server_key = generate_key(key_type)
    admin_key = generate_key(key_type)
    secret = secrets.token_urlsafe(24).encode("ascii")
    _write_private(config.server_key_path, dump_private_key_pem(server_key, passphrase))
    _write_private(directory / "admin-key.pem", dump_private_key_pem(admin_key, passphrase))
    _write_private(directory / "admin-secret", secret + b"\n")

    site = build_site(config, server_key, port)
    admin = AdminRecord(ALL_PERMISSIONS, group.handle, group.index).to_bytes()
    members = ValueList((Reference(prefix_handle, 300), Reference(prefix_handle, 301)))
    pubkey = PublicKeyData.from_public_key(admin_key.public_key()).to_bytes()
    store = await open_store(config.database_location)
    try:
        await store.home_prefix(prefix)
        await store.create_handle(
            prefix_handle,
            [
                _value(1, "HS_SITE", site.to_bytes()),
                _value(100, "HS_ADMIN", admin),
                _value(200, "HS_VLIST", members.to_bytes()),
                _value(300, "HS_SECKEY", secret, _PRIVATE),
                _value(301, "HS_PUBKEY", pubkey),
            ],
        )
        created: list[str] = []
        if demo:
            handle_admin = AdminRecord(HANDLE_ADMIN_PERMISSIONS, group.handle, group.index)
            for suffix, values in DEMO_HANDLES.items():
                handle = f"{prefix}/{suffix}"
                record = [_value(100, "HS_ADMIN", handle_admin.to_bytes())]
                record += [_value(i, t, d.encode(), p) for i, t, d, p in values]
                await store.create_handle(handle, record)
                created.append(handle)
    finally:
        await store.close()
    config_path.write_text(config.dump(), encoding="utf-8")
    return InitResult(config_path, prefix, secret_id, key_id, tuple(created))
