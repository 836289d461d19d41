"""``idnode demo topology``: an identifier hierarchy with every role, on 127.0.0.1.

Eight nodes, each in a directory of its own under the topology's directory:

=================  ==========  ==============================================================
node               homes       role
=================  ==========  ==============================================================
``root``           ``0.NA``    top level: ``0.NA/88.118`` → secondary-a, ``0.NA/88.119`` →
                               secondary-b
``secondary-a``    ``88.118``  secondary node of the solar and electronics industry:
                   ``88.118.9`` ``0.NA/88.118.8`` → enterprise-a's site and its mirror; hosts
                               the enterprise prefix 88.118.9 itself
``secondary-b``    ``88.119``  secondary node of the vehicle industry: ``0.NA/88.119.1`` → the
                               two-server site of enterprise-b
``enterprise-a``   88.118.8    an enterprise node with the demo identifiers of four industries
``mirror-a``       (88.118.8)  a read-only mirror following enterprise-a (replication ops)
``enterprise-b1``  88.119.1    server 1 of a two-server site (identifiers hashed over both)
``enterprise-b2``  88.119.1    server 2 of that site
``recursive``      99.9        configured with the root: resolves anything for its clients
=================  ==========  ==============================================================

Node ``i`` (in that order) listens on UDP/TCP ``base_port + i`` and HTTP ``http_base + i``
unless ``ports`` says otherwise. Creating the topology writes each node's directory once;
running it again reuses them.

A photovoltaic supply chain runs across two enterprises (the PV pack, :mod:`idnode.industry.
packs.pv`): the industry's templates live on the secondary node (``88.118/META_PV_*``), the
polysilicon lots, ingots and wafer lots of a wafer maker under the hosted prefix ``88.118.9``
on secondary-a, the cell lots and modules of the module maker under ``88.118.8`` on
enterprise-a. enterprise-a knows the root, so a trace of one of its modules
(``idnode trace <module> --http ...``) walks up into the wafer maker's identifiers on the other
node. The records are written with their index entries (:mod:`idnode.store.writectx`), as a
registration through the node would write them.

enterprise-a also keeps REST API accounts (:mod:`idnode.industry.accounts`, the SNMS login),
each password in a file of its directory: ``operator`` (node_admin), the module maker
``module-maker`` (enterprise_admin of the enterprise ``module-maker``, prefix 88.118.8, acting
as ``300:0.NA/88.118.8``), and a second enterprise, the buyer: ``buyer`` (enterprise_admin of
``buyer``, whose prefix 88.118.8.20 is allocated and homed by enterprise-a, acting as
``300:0.NA/88.118.8.20``) and its app ``buyer-app`` with an identity of its own,
``300:88.118.8.20/APP.buyer-app``, whose private key is ``buyer-app-key.pem``. The README's
walkthrough uses them.

Trusted resolution (docs/trust.md) works out of the box: a demo trust root ``0.NA/TRUST`` on the
root node (its key pair in ``trust/`` of the topology's directory) certifies secondary-a's
administrator ``301:0.NA/88.118`` (``derivedPrefixes 0.NA/88.118``), which certifies two
signing identities of enterprise-a (``handlesUnderThisPrefix 0.NA/88.118.8``): its
administrator ``301:0.NA/88.118.8`` (its RSA ``admin-key.pem``) and ``302:0.NA/88.118.8``, an
SM2 key (``signing-sm2-key.pem`` in enterprise-a's directory). Each certificate is in both
copies of the prefix handle it is about. The identifiers of :func:`signed_handles` carry an
HS_SIGNATURE. enterprise-a and the recursive node have a ``[trust]`` table
(``/api/verify/<handle>``), and the recursive node resolves certified, trusting the root
node's server key (``root-server.pub.pem`` in its directory).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import secrets
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from cryptography.hazmat.primitives import serialization

from idnode.bootstrap import HANDLE_ADMIN_PERMISSIONS, init_node
from idnode.industry.enforce import index_entries
from idnode.industry.history import TemplateHistory
from idnode.industry.packs.base import Identifier
from idnode.industry.packs.pv import PVPrefixes, generate, templates
from idnode.industry.records import history_to_values
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.types.hs_pubkey import PublicKeyData, load_private_key
from idnode.protocol.types.hs_site import SiteInfo
from idnode.protocol.values import HandleValue, encode_record
from idnode.server.authz import Identity
from idnode.server.config import (
    NodeConfig,
    ReplicationConfig,
    ResolverConfig,
    ServerEntry,
    SiteConfig,
)
from idnode.server.node import Node, build_site
from idnode.store import HandleStore, open_store, prefix_of
from idnode.store.writectx import IndexEntry, WriteContext, write_context

__all__ = [
    "BUYER_PREFIX",
    "DEMO_ACCOUNTS",
    "HOSTED_HANDLES",
    "NODES",
    "PV_LOTS",
    "PV_PREFIXES",
    "SITE_B_HANDLES",
    "SM2_SIGNER",
    "TRUST_ROOT",
    "TRUST_ROOT_PUBLIC_KEY",
    "DemoNode",
    "pv_chain",
    "pv_module",
    "running_topology",
    "setup_topology",
    "signed_handles",
]

#: (name, homed prefix) of the nodes, in port order.
NODES = (
    ("root", "0.NA"),
    ("secondary-a", "88.118"),
    ("secondary-b", "88.119"),
    ("enterprise-a", "88.118.8"),
    ("mirror-a", "88.118.8"),
    ("enterprise-b1", "88.119.1"),
    ("enterprise-b2", "88.119.1"),
    ("recursive", "99.9"),
)
#: The identity the mirror authenticates as on enterprise-a (its server key is stored there).
MIRROR_IDENTITY = Identity("0.NA/88.118.8", 310)
#: Identifiers of the enterprise prefix hosted on secondary-a.
HOSTED_HANDLES = {
    "88.118.9/WAFER-LOT-2026-0311": "https://wafer.example.com/lots/2026-0311",
    "88.118.9/INGOT-2026-0087": "https://wafer.example.com/ingots/2026-0087",
}
#: Identifiers of enterprise-b's two-server site (spread over its servers by hash).
SITE_B_HANDLES = {
    f"88.119.1/{suffix}": f"https://auto.example.com/{suffix.lower()}"
    for suffix in (
        "VIN-LSVAU2180N2183294",
        "VIN-LSVAU2180N2183295",
        "PART-BRAKE-PAD-0042",
        "PART-BMS-2026-117",
        "PART-SEAT-FRAME-88",
        "PART-WIPER-MOTOR-7",
    )
}


#: Where the PV chain lives (see the module docstring), and how many polysilicon lots of it.
PV_PREFIXES = PVPrefixes(
    templates="88.118", polysilicon="88.118.9", wafer="88.118.9", cell="88.118.8", module="88.118.8"
)
PV_LOTS = 2
#: Identifiers of one polysilicon lot in the PV stream (lot, ingots, wafers, cells, modules).
_PV_LOT_SIZE = 107


#: The second enterprise's prefix, homed on enterprise-a.
BUYER_PREFIX = "88.118.8.20"
#: REST API accounts of enterprise-a: username → (role, enterprise, identity); the password
#: is in ``<username>-password`` in the node's directory.
DEMO_ACCOUNTS = {
    "operator": ("node_admin", None, "300:0.NA/88.118.8"),
    "module-maker": ("enterprise_admin", "module-maker", "300:0.NA/88.118.8"),
    "buyer": ("enterprise_admin", "buyer", f"300:0.NA/{BUYER_PREFIX}"),
    "buyer-app": ("app", "buyer", f"300:{BUYER_PREFIX}/APP.buyer-app"),
}


def pv_chain() -> list[Identifier]:
    """The demo's PV identifiers, upstream first (deterministic)."""
    return list(itertools.islice(generate(PV_PREFIXES, 0), _PV_LOT_SIZE * PV_LOTS))


def pv_module() -> str:
    """A module of the chain, to trace."""
    return next(i.handle for i in pv_chain() if "MODULE" in i.template.id)


#: The demo's trust root handle (homed on the root node) and its key pair, relative to the
#: topology's directory (the private key mode 0600).
TRUST_ROOT = "0.NA/TRUST"
TRUST_ROOT_KEY = "trust/trust-root-key.pem"
TRUST_ROOT_PUBLIC_KEY = "trust/trust-root.pub.pem"
#: enterprise-a's signing identities: its administrator (RSA admin key) and an SM2 key.
ENTERPRISE_SIGNER = "301:0.NA/88.118.8"
SM2_SIGNER = "302:0.NA/88.118.8"
SM2_SIGNING_KEY = "signing-sm2-key.pem"
#: Certificates and signatures of the demo are valid for ten years from setup.
_TRUST_VALIDITY = 10 * 365 * 86400


class _Validity(TypedDict):
    """When a certificate or signature is issued and valid (epoch seconds)."""

    now: int
    not_before: int
    expires: int


def signed_handles() -> dict[str, str]:
    """The identifiers of enterprise-a signed in the demo → the identity that signed them."""
    return {
        "88.118.8/PV-2026-000123": SM2_SIGNER,
        "88.118.8/MD-UDI-06912345678902": ENTERPRISE_SIGNER,
        "88.118.8/PCB-7731-A": ENTERPRISE_SIGNER,
        "88.118.8/VIN-LJ1EEASP0N0000001": ENTERPRISE_SIGNER,
        pv_module(): ENTERPRISE_SIGNER,
    }


@dataclass(frozen=True)
class DemoNode:
    name: str
    prefix: str
    config_path: Path
    port: int
    http_port: int


async def setup_topology(
    directory: Path,
    *,
    base_port: int = 22641,
    http_base: int = 28001,
    ports: Sequence[tuple[int, int]] | None = None,
) -> list[DemoNode]:
    """Create the nodes under ``directory`` (kept if they exist) and link them. ``ports``
    gives each node's (UDP/TCP, HTTP) ports instead of the consecutive ones."""
    if ports is None:
        ports = [(base_port + i, http_base + i) for i in range(len(NODES))]
    if len(ports) != len(NODES):
        raise ValueError(f"the topology has {len(NODES)} nodes, {len(ports)} ports given")
    paths = {name: directory / name for name, _prefix in NODES}
    if not all((path / "idnode.toml").exists() for path in paths.values()):
        await _create(paths, ports)
        await _make_trust(directory, paths)
    return [
        DemoNode(name, prefix, paths[name] / "idnode.toml", *_ports(paths[name]))
        for name, prefix in NODES
    ]


def _ports(path: Path) -> tuple[int, int]:
    config = NodeConfig.load(path / "idnode.toml")
    return config.port, config.http_port or 0


async def _create(paths: dict[str, Path], ports: Sequence[tuple[int, int]]) -> None:
    by_name = dict(zip((name for name, _ in NODES), ports, strict=True))
    for name, prefix in NODES:
        path, (port, http_port) = paths[name], by_name[name]
        if not (path / "idnode.toml").exists():
            await init_node(
                path,
                prefix,
                port=port,
                demo=name == "enterprise-a",
                description=f"idnode demo {name}",
            )
        _configure(path, http_port=http_port)
    root = f"127.0.0.1:{by_name['root'][0]}"
    _configure(paths["recursive"], roots=(root,))
    _configure(paths["enterprise-a"], roots=(root,))  # traces and templates on other nodes
    await _link_mirror(paths["enterprise-a"], paths["mirror-a"])
    await _make_site_b(paths["enterprise-b1"], paths["enterprise-b2"])
    await _host_prefix(paths["secondary-a"], "88.118", "88.118.9", HOSTED_HANDLES)
    await _delegate(paths["root"], "88.118", [paths["secondary-a"]])
    await _delegate(paths["root"], "88.119", [paths["secondary-b"]])
    await _delegate(paths["secondary-a"], "88.118.8", [paths["enterprise-a"], paths["mirror-a"]])
    await _delegate(paths["secondary-b"], "88.119.1", [paths["enterprise-b1"]])
    await _load_pv_chain({"88.118": paths["secondary-a"], "88.118.9": paths["secondary-a"],
                          "88.118.8": paths["enterprise-a"]})  # fmt: skip
    await _add_accounts(paths["enterprise-a"])


def _configure(path: Path, **changes: Any) -> NodeConfig:
    """Rewrite the configuration in ``path`` with ``changes`` (NodeConfig fields)."""
    config = dataclasses.replace(NodeConfig.load(path / "idnode.toml"), **changes)
    (path / "idnode.toml").write_text(config.dump(), encoding="utf-8")
    return NodeConfig.load(path / "idnode.toml")


@contextlib.asynccontextmanager
async def _store(path: Path) -> AsyncIterator[HandleStore]:
    store = await open_store(NodeConfig.load(path / "idnode.toml").database_location)
    try:
        yield store
    finally:
        await store.close()


def _site(path: Path) -> SiteInfo:
    config = NodeConfig.load(path / "idnode.toml")
    key = load_private_key(config.server_key_path.read_bytes())
    return build_site(config, key, config.port, http_port=config.http_port)


def _now() -> int:
    return int(time.time())


async def _delegate(holder: Path, prefix: str, to: list[Path]) -> None:
    """Store on ``holder`` the prefix handle ``0.NA/<prefix>`` naming the sites of ``to``
    (the first is the primary; mirrors follow)."""
    values = [
        HandleValue(i, "HS_SITE", _site(path).to_bytes(), timestamp=_now())
        for i, path in enumerate(to, start=1)
    ]
    async with _store(holder) as store:
        await store.create_handle(f"0.NA/{prefix}", values, overwrite=True)


async def _link_mirror(primary: Path, mirror: Path) -> None:
    """Make ``mirror`` follow ``primary``: its server key becomes the replication identity
    on the primary, and its configuration names the primary."""
    key = load_private_key((mirror / "server-key.pem").read_bytes())
    pubkey = PublicKeyData.from_public_key(key.public_key()).to_bytes()
    handle = MIRROR_IDENTITY.handle
    async with _store(primary) as store:
        value = HandleValue(MIRROR_IDENTITY.index, "HS_PUBKEY", pubkey, timestamp=_now())
        await store.add_values(handle, [value], overwrite=True)
    config = _configure(primary, replication_admins=(MIRROR_IDENTITY,))
    _configure(
        mirror,
        replication=ReplicationConfig(
            primary=f"127.0.0.1:{config.port}", identity=MIRROR_IDENTITY, interval=0.5
        ),
    )


async def _make_site_b(first: Path, second: Path) -> None:
    """Join ``first`` and ``second`` into one two-server site (hash by handle): both get the
    same ``[site]`` table and the same prefix record (identities are checked locally), and
    each store gets the identifiers that hash to it."""
    entries = []
    for number, path in enumerate((first, second), start=1):
        config = NodeConfig.load(path / "idnode.toml")
        key = load_private_key(config.server_key_path.read_bytes())
        pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for other in (first, second):
            (other / f"server-{number}.pub.pem").write_bytes(pem)
        entries.append(
            ServerEntry(
                number, "127.0.0.1", config.port, config.http_port, f"server-{number}.pub.pem"
            )
        )
    for number, path in enumerate((first, second), start=1):
        _configure(path, site=SiteConfig(servers=tuple(entries), this_server=number))
    site = _site(first)
    async with _store(first) as store:
        record = await store.get_handle("0.NA/88.119.1") or ()
    prefix_record = [
        v.with_changes(data=site.to_bytes()) if v.type == "HS_SITE" else v for v in record
    ]
    for name in ("admin-key.pem", "admin-secret"):  # one set of admin credentials
        (second / name).write_bytes((first / name).read_bytes())
    shares: list[dict[str, str]] = [{}, {}]
    for handle, url in SITE_B_HANDLES.items():
        shares[site.server_index_for(handle)][handle] = url
    for path, share in zip((first, second), shares, strict=True):
        async with _store(path) as store:
            await store.create_handle("0.NA/88.119.1", prefix_record, overwrite=True)
            for handle, url in share.items():
                await store.create_handle(handle, [_url(url)], overwrite=True)


async def _host_prefix(
    holder: Path, holder_prefix: str, prefix: str, handles: dict[str, str]
) -> None:
    """Home ``prefix`` on ``holder`` (a secondary node hosting an enterprise) with its prefix
    handle pointing at ``holder``'s own site, administered by the holder's admin group."""
    async with _store(holder) as store:
        own = await store.get_handle(f"0.NA/{holder_prefix}") or ()
        admins = [v for v in own if v.type == "HS_ADMIN"]
        site = HandleValue(1, "HS_SITE", _site(holder).to_bytes(), timestamp=_now())
        await store.create_handle(f"0.NA/{prefix}", [site, *admins], overwrite=True)
        await store.home_prefix(prefix)
        for handle, url in handles.items():
            await store.create_handle(handle, [_url(url)], overwrite=True)


async def _load_pv_chain(holders: dict[str, Path]) -> None:
    """Write the PV templates and chain into the stores of the nodes serving their prefixes,
    each identifier administered by its prefix's admin group and carrying its index entries."""
    records: dict[Path, list[tuple[str, tuple[HandleValue, ...]]]] = {}
    entries: dict[str, frozenset[IndexEntry]] = {}
    for template in templates(PV_PREFIXES):
        history = TemplateHistory.start(template)
        records.setdefault(holders[prefix_of(template.id)], []).append(
            (template.id, history_to_values(history))
        )
    for identifier in pv_chain():
        prefix = prefix_of(identifier.handle)
        admin = AdminRecord(HANDLE_ADMIN_PERMISSIONS, f"0.NA/{prefix}", 200).to_bytes()
        values = (*identifier.values, HandleValue(100, "HS_ADMIN", admin, timestamp=_now()))
        records.setdefault(holders[prefix], []).append((identifier.handle, values))
        entries[identifier.handle] = index_entries(identifier.template, identifier.values)[0]
    context = WriteContext(actor="idnode demo", origin="setup", index=entries)
    for path, items in records.items():
        async with _store(path) as store:
            with write_context(context):
                await store.create_records([(h, encode_record(v)) for h, v in items])


async def _add_accounts(path: Path) -> None:
    """The REST API accounts of :data:`DEMO_ACCOUNTS` on the node in ``path``, written
    through its dispatcher (not serving) as the account service writes them: the buyer's
    prefix applied for, approved and homed, its app's identity with a new key pair."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from idnode.industry.accounts import AccountService, PrefixState, new_account
    from idnode.protocol.types.hs_pubkey import dump_private_key_pem
    from idnode.store.accounts_sql import HasAccounts, PrefixApplication

    passwords = {}
    for username in DEMO_ACCOUNTS:
        passwords[username] = secrets.token_urlsafe(12)
        password_file = path / f"{username}-password"
        password_file.touch(mode=0o600)
        password_file.write_text(passwords[username] + "\n", encoding="utf-8")
    node = await Node.open(NodeConfig.load(path / "idnode.toml"))
    try:
        store = node.dispatcher.store
        assert isinstance(store, HasAccounts)
        repository = store.accounts()
        service = AccountService(repository, node.dispatcher)
        role, _, identity = DEMO_ACCOUNTS["operator"]
        operator = new_account("operator", passwords["operator"], role, identity)
        await repository.add_account(operator)
        await service.create_enterprise(
            operator, "module-maker", "PV module maker", "ops@module.example.com",
            DEMO_ACCOUNTS["module-maker"][2],
        )  # fmt: skip
        # 88.118.8 is this node's own prefix, active from the start.
        await repository.add_application(
            PrefixApplication("88.118.8", "module-maker", PrefixState.ACTIVE, True, "operator",
                              int(time.time() * 1000))
        )  # fmt: skip
        await service.create_enterprise(
            operator, "buyer", "Buyer", "ops@buyer.example.com", DEMO_ACCOUNTS["buyer"][2]
        )
        await service.apply(operator, BUYER_PREFIX, "buyer")
        await service.transition(operator, BUYER_PREFIX, "approve")
        for username in ("module-maker", "buyer"):
            role, enterprise, identity = DEMO_ACCOUNTS[username]
            await service.create_account(
                operator, username, passwords[username], role, identity, enterprise
            )
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pubkey = PublicKeyData.from_public_key(key.public_key()).to_bytes()
        await service.create_app(operator, "buyer-app", passwords["buyer-app"], "buyer", pubkey)
        key_path = path / "buyer-app-key.pem"
        key_path.touch(mode=0o600)
        key_path.write_bytes(dump_private_key_pem(key))
    finally:
        await node.close()


async def _make_trust(directory: Path, paths: dict[str, Path]) -> None:
    """The demo's trust hierarchy (see the module docstring), written into the stores, and
    the ``[trust]`` and ``[resolver]`` tables of the nodes that verify."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from idnode.certified import public_key_pem
    from idnode.crypto import sm2
    from idnode.protocol.types.hs_pubkey import dump_private_key_pem
    from idnode.trust import Permission, TrustConfig, issue_certificate
    from idnode.trust.claims import DERIVED_PREFIXES, EVERYTHING, HANDLES_UNDER_THIS_PREFIX
    from idnode.trust.signing import certificate_value

    (directory / "trust").mkdir(exist_ok=True)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(directory / TRUST_ROOT_KEY, dump_private_key_pem(root_key))
    root_public = public_key_pem(root_key.public_key())
    (directory / TRUST_ROOT_PUBLIC_KEY).write_bytes(root_public)
    sm2_key = sm2.generate_private_key()
    _write_private(paths["enterprise-a"] / SM2_SIGNING_KEY, sm2_key.to_pem())
    secondary_key = load_private_key((paths["secondary-a"] / "admin-key.pem").read_bytes())
    enterprise_key = load_private_key((paths["enterprise-a"] / "admin-key.pem").read_bytes())

    now = _now()
    # validity from ten minutes ago, as ``idnode cert issue``, for clocks that are behind
    times = _Validity(now=now, not_before=now - 600, expires=now + _TRUST_VALIDITY)
    root_id, secondary_id = f"301:{TRUST_ROOT}", "301:0.NA/88.118"
    everything = [Permission(EVERYTHING)]
    root_cert = issue_certificate(
        root_id, root_key.public_key(), everything, root_id, root_key, **times
    )
    secondary = [Permission(DERIVED_PREFIXES, "0.NA/88.118")]
    secondary_cert = issue_certificate(
        secondary_id, secondary_key.public_key(), secondary, root_id, root_key, **times
    )
    enterprise = [Permission(HANDLES_UNDER_THIS_PREFIX, "0.NA/88.118.8")]
    enterprise_certs = [
        certificate_value(
            index,
            issue_certificate(subject, key, enterprise, secondary_id, secondary_key, **times),
            now,
        )
        for index, subject, key in (
            (400, ENTERPRISE_SIGNER, enterprise_key.public_key()),
            (401, SM2_SIGNER, sm2_key.public_key()),
        )
    ]
    admin = AdminRecord(HANDLE_ADMIN_PERMISSIONS, "0.NA/0.NA", 200).to_bytes()
    async with _store(paths["root"]) as store:
        await store.create_handle(
            TRUST_ROOT,
            [
                HandleValue(100, "HS_ADMIN", admin, timestamp=now),
                certificate_value(400, root_cert, now),
            ],
            overwrite=True,
        )
    # Each certificate goes into both copies of the prefix handle it is about: the delegation
    # on the parent node (what resolvers reach) and the node's own (docs/trust.md).
    placements = [
        ("root", "0.NA/88.118", [certificate_value(400, secondary_cert, now)]),
        ("secondary-a", "0.NA/88.118", [certificate_value(400, secondary_cert, now)]),
        ("secondary-a", "0.NA/88.118.8", enterprise_certs),
        ("enterprise-a", "0.NA/88.118.8", enterprise_certs),
    ]
    for name, handle, values in placements:
        async with _store(paths[name]) as store:
            await store.add_values(handle, values, overwrite=True)
    signers = {ENTERPRISE_SIGNER: enterprise_key, SM2_SIGNER: sm2_key}
    await _sign_identifiers(paths["enterprise-a"], signers, times)

    trust = TrustConfig(TRUST_ROOT, ("trust-root.pub.pem",))
    for name in ("enterprise-a", "recursive"):
        (paths[name] / "trust-root.pub.pem").write_bytes(root_public)
        _configure(paths[name], trust=trust)
    (root,) = NodeConfig.load(paths["recursive"] / "idnode.toml").roots
    server_key = load_private_key((paths["root"] / "server-key.pem").read_bytes())
    (paths["recursive"] / "root-server.pub.pem").write_bytes(
        public_key_pem(server_key.public_key())
    )
    resolver = ResolverConfig(certified=True, root_keys=((root, "root-server.pub.pem"),))
    _configure(paths["recursive"], resolver=resolver)


async def _sign_identifiers(path: Path, signers: Mapping[str, object], times: _Validity) -> None:
    """Add an HS_SIGNATURE over the public values of each of :func:`signed_handles` on the
    node in ``path``, as ``idnode sign`` does."""
    from idnode.trust import sign_values
    from idnode.trust.signing import free_index, signature_value

    async with _store(path) as store:
        for handle, signer in signed_handles().items():
            values = await store.get_handle(handle)
            if values is None:
                raise LookupError(f"the demo identifier {handle} is missing")
            public = [v for v in values if v.public_read]
            jws = sign_values(handle, public, signer, signers[signer], **times)
            value = signature_value(free_index(values), jws, times["now"])
            await store.add_values(handle, [value])


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``, readable by its owner only."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_bytes(data)


def _url(url: str) -> HandleValue:
    return HandleValue(1, "URL", url.encode(), timestamp=_now())


@contextlib.asynccontextmanager
async def running_topology(nodes: list[DemoNode]) -> AsyncIterator[list[Node]]:
    """Start every node of the topology in this event loop; close them on exit."""
    running: list[Node] = []
    try:
        for node in nodes:
            started = await Node.open(NodeConfig.load(node.config_path))
            running.append(started)
            await started.start()
        yield running
    finally:
        await asyncio.gather(*(node.close() for node in running), return_exceptions=True)
