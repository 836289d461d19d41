"""Multi-server sites: a site of two servers on 127.0.0.1 spreads handles by its hash option.

Two nodes (own directories, own SQLite files, pre-chosen ports) share one ``[site]`` table
and differ only in ``this_server``. Both home 88.118.8 and a second prefix chosen to hash to
the other server by prefix, and both hold the prefix handle ``0.NA/88.118.8`` with the admin
identities (copied from server 1, as a replicated or provisioned site would have it), so
either can authenticate the admin; each *serves* only the handles that hash to it (spec
§2.2), for every hash option. Also: the ``[site]`` and ``[replication]`` configuration and
the HS_SITE record built from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from idnode.bootstrap import init_node
from idnode.client import HandleClient, SiteClient
from idnode.errors import AuthenticationRequired, ServerNotResponsible
from idnode.protocol.bodies import Body, HandleRequest, RemoveValuesRequest, ValuesRequest
from idnode.protocol.codes import OpCode, ResponseCode
from idnode.protocol.types.hs_pubkey import PublicKeyData, load_private_key
from idnode.protocol.types.hs_site import (
    PRIMARY_SITE,
    HashOption,
    InterfaceType,
    SiteInfo,
    TransportProtocol,
    address_from_bytes,
)
from idnode.server.authz import Identity
from idnode.server.config import (
    NodeConfig,
    ReplicationConfig,
    ServerEntry,
    SiteConfig,
)
from idnode.server.dispatch import NOT_PRIMARY, WRONG_SERVER_HASH
from idnode.server.node import build_site
from tests.ports import free_ports
from tests.server.nodeutil import (
    HOST,
    PREFIX,
    PREFIX_HANDLE,
    TIMEOUT,
    RunningNode,
    reconfigure,
    running_node,
    text_value,
    write_public_key,
)

#: How many handles the tests create per prefix.
COUNT = 12

T = TypeVar("T")


# -- configuration ---------------------------------------------------------------------------


def two_server_table(ports: tuple[int, int], this_server: int, **kwargs: object) -> SiteConfig:
    servers = (
        ServerEntry(1, HOST, ports[0], http_port=None, key="server1.pub.pem"),
        ServerEntry(2, HOST, ports[1], http_port=None, key="server2.pub.pem"),
    )
    return SiteConfig(servers=servers, this_server=this_server, **kwargs)  # type: ignore[arg-type]


def test_config_round_trips_site_and_replication(tmp_path: Path) -> None:
    config = NodeConfig(
        directory=tmp_path,
        replication_admins=(Identity(PREFIX_HANDLE, 300), Identity(f"{PREFIX}/REPL", 1)),
        site=SiteConfig(
            servers=(
                ServerEntry(1, "10.0.0.1", 2641, http_port=8000),
                ServerEntry(7, "2001:db8::7", 2642, key="keys/seven.pem"),
            ),
            this_server=1,
            serial=9,
            hash="by_suffix",
            primary=False,
        ),
        replication=ReplicationConfig("10.0.0.9:2641", Identity(PREFIX_HANDLE, 301), 0.25),
    )
    path = tmp_path / "idnode.toml"
    path.write_text(config.dump())
    loaded = NodeConfig.load(path)
    assert loaded == config
    assert loaded.site is not None
    assert (loaded.site.hash_option, loaded.site.this_index) == (HashOption.BY_SUFFIX, 0)
    assert loaded.read_only
    # Absent tables: None, and a node that is not read-only.
    plain = NodeConfig(directory=tmp_path)
    path.write_text(plain.dump())
    loaded = NodeConfig.load(path)
    assert (loaded, loaded.site, loaded.replication, loaded.read_only) == (plain, None, None, False)


def test_config_mirror_by_replication_alone(tmp_path: Path) -> None:
    path = tmp_path / "idnode.toml"
    path.write_text('[node]\n[replication]\nprimary = "127.0.0.1:2641"\n')
    config = NodeConfig.load(path)
    assert config.replication == ReplicationConfig("127.0.0.1:2641", None, 1.0)
    assert config.read_only
    path.write_text("[node]\n[replication]\ninterval = 3\n")
    assert not NodeConfig.load(path).read_only  # no primary to follow: not a mirror


SITE = '[site]\nthis_server = 1\nservers = [{id = 1, address = "127.0.0.1"}]\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[node]\n[sites]\n", r"unknown settings.*\[sites\]"),
        ("[node]\nreplication_admin = []\n", "unknown settings.*replication_admin"),
        (SITE + "colour = 1\n", r"unknown settings in .*\[site\].*colour"),
        (
            '[site]\nthis_server = 1\nservers = [{id = 1, address = "127.0.0.1", tls = 1}]\n',
            r"unknown settings in .*\[site\] servers.*tls",
        ),
        ('[replication]\nprimary = "h:1"\nevery = 2\n', "unknown settings.*every"),
        ('[site]\nservers = [{id = 1, address = "127.0.0.1"}]\n', "this_server is missing"),
        (SITE.replace("this_server = 1", "this_server = 2"), "this_server 2 is not among"),
        (SITE + 'hash = "by_md5"\n', "hash must be one of"),
        (SITE + "serial = 70000\n", "serial"),
        ("[site]\nthis_server = 1\nservers = []\n", "at least one server"),
        (
            '[site]\nthis_server = 1\nservers = [{id = 1, address = "127.0.0.1"}, '
            '{id = 1, address = "127.0.0.2", key = "k"}]\n',
            "unique",
        ),
        (
            '[site]\nthis_server = 1\nservers = [{id = 1, address = "127.0.0.1"}, '
            '{id = 2, address = "127.0.0.2"}]\n',
            "server 2 needs the file of its public key",
        ),
        ('[site]\nthis_server = 1\nservers = [{id = 1, address = "srv1"}]\n', "address"),
        ('[site]\nthis_server = 1\nservers = [{id = 1, address = "::1", port = 0}]\n', "port"),
        ('[replication]\nprimary = "no-port"\n', "HOST:PORT"),
        ("[replication]\ninterval = 0\n", "interval must be positive"),
        ('[replication]\nidentity = "nobody"\n', "index:handle"),
    ],
)
def test_config_rejects_bad_tables(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "idnode.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        NodeConfig.load(path)


def test_site_record_from_the_site_table(tmp_path: Path) -> None:
    own, other = (load_private_key(k) for k in _two_keys(tmp_path))
    write_public_key(tmp_path / "server2.pub.pem", other)
    table = SiteConfig(
        servers=(
            ServerEntry(1, "127.0.0.1", 2641, http_port=8000),
            ServerEntry(2, "127.0.0.2", 2651, key="server2.pub.pem"),
        ),
        this_server=1,
        serial=4,
        hash="by_prefix",
    )
    config = NodeConfig(directory=tmp_path, site=table, tls_cert="c.pem", tls_key="k.pem")
    site = build_site(config, own, 0, http_port=1234)  # ports come from the table
    assert (site.serial, site.primary_mask, site.hash_option) == (4, PRIMARY_SITE, 0)
    assert [s.server_id for s in site.servers] == [1, 2]
    assert [str(address_from_bytes(s.address)) for s in site.servers] == [
        s.address for s in table.servers
    ]
    keys = [PublicKeyData.from_bytes(s.public_key).to_public_key() for s in site.servers]
    assert isinstance(own, rsa.RSAPrivateKey) and isinstance(other, rsa.RSAPrivateKey)
    assert [k.public_numbers() for k in keys if isinstance(k, rsa.RSAPublicKey)] == [
        own.public_key().public_numbers(),
        other.public_key().public_numbers(),
    ]
    layouts = [[(i.type, i.protocol, i.port) for i in s.interfaces] for s in site.servers]
    assert layouts == [
        [
            (InterfaceType.ADMIN_AND_QUERY, TransportProtocol.TCP, 2641),
            (InterfaceType.QUERY, TransportProtocol.UDP, 2641),
            (InterfaceType.ADMIN_AND_QUERY, TransportProtocol.HTTPS, 8000),
        ],
        [
            (InterfaceType.ADMIN_AND_QUERY, TransportProtocol.TCP, 2651),
            (InterfaceType.QUERY, TransportProtocol.UDP, 2651),
        ],
    ]
    # A mirror site has no primary bit; server 2's view of the same site is the same record.
    mirror = dataclasses.replace(config, site=dataclasses.replace(table, primary=False))
    assert build_site(mirror, own, 0).primary_mask == 0
    write_public_key(tmp_path / "server1.pub.pem", own)
    entries = (dataclasses.replace(table.servers[0], key="server1.pub.pem"), table.servers[1])
    as_two = dataclasses.replace(table, servers=entries, this_server=2)
    assert build_site(dataclasses.replace(config, site=as_two), other, 0) == site
    # This node's own entry naming another key, or a missing key file: refused.
    with pytest.raises(ValueError, match="not server_key's"):
        build_site(dataclasses.replace(config, site=as_two), own, 0)
    (tmp_path / "server2.pub.pem").unlink()
    with pytest.raises(ValueError, match="cannot read the public key"):
        build_site(config, own, 0)


def _two_keys(directory: Path) -> list[bytes]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from idnode.protocol.types.hs_pubkey import dump_private_key_pem

    return [
        dump_private_key_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        for _ in range(2)
    ]


# -- a two-server site -------------------------------------------------------------------------


@dataclass
class Pair:
    """Two running servers of one site, and a site client with the admin's credentials."""

    servers: tuple[RunningNode, RunningNode]
    site: SiteInfo
    other_prefix: str

    def client(self) -> SiteClient:
        credentials = self.servers[0].secret_credentials
        return HandleClient.for_sites([self.site], credentials=credentials, timeout=TIMEOUT)

    def holder(self, handle: str) -> RunningNode:
        """The server ``handle`` hashes to."""
        return self.servers[self.site.server_index_for(handle)]

    def other(self, handle: str) -> RunningNode:
        """The server ``handle`` does not hash to."""
        return self.servers[1 - self.site.server_index_for(handle)]

    @staticmethod
    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run(coro)


def other_prefix(site: SiteInfo) -> str:
    """A prefix whose handles hash, by prefix, to the server 88.118.8's do not: so that a
    by-prefix site spreads this test's handles over both servers too."""
    by_prefix = dataclasses.replace(site, hash_option=HashOption.BY_PREFIX)
    taken = by_prefix.server_index_for(f"{PREFIX}/X")
    for n in range(9, 200):
        candidate = f"88.118.{n}"
        if by_prefix.server_index_for(f"{candidate}/X") != taken:
            return candidate
    raise AssertionError("no prefix hashes to the other server")


@pytest.fixture(scope="module", params=["by_prefix", "by_suffix", "by_handle"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp(f"site-{request.param}")
    ports = free_ports(2)
    directories = (base / "server1", base / "server2")

    async def init_both() -> None:
        for directory, port in zip(directories, ports, strict=True):
            await init_node(directory, PREFIX, port=port)

    asyncio.run(init_both())
    keys = [load_private_key((d / "server-key.pem").read_bytes()) for d in directories]
    for directory in directories:
        for number, key in enumerate(keys, 1):
            write_public_key(directory / f"server{number}.pub.pem", key)
    for number, directory in enumerate(directories, 1):
        table = two_server_table((ports[0], ports[1]), number, hash=request.param, serial=2)
        reconfigure(directory, http_port=None, site=table)
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(running_node(directories[0]))
        second = stack.enter_context(running_node(directories[1]))
        assert first.node.site == second.node.site  # the same record, seen from both servers
        site = first.node.site
        # Server 2 holds the prefix handle as server 1 has it: the same admin identities.
        record = first.get_handle(PREFIX_HANDLE)
        assert record is not None
        second.put_handle(PREFIX_HANDLE, list(record))
        pair = Pair((first, second), site, other_prefix(site))
        pair.run(pair.client().home_prefix(pair.other_prefix))
        yield pair


def handles_of(pair: Pair) -> list[str]:
    """The handles the tests create: COUNT under each of the two prefixes."""
    return [f"{p}/MS-{n:03d}" for p in (PREFIX, pair.other_prefix) for n in range(COUNT)]


@pytest.fixture(scope="module")
def created(pair: Pair) -> list[str]:
    """The handles of :func:`handles_of`, created through the site client."""
    client = pair.client()

    async def create_all() -> None:
        for handle in handles_of(pair):
            await client.create_handle(
                handle, [text_value(1, "URL", f"https://e.example/{handle}")]
            )

    pair.run(create_all())
    return handles_of(pair)


def test_the_site_has_two_servers_and_the_hash_option(pair: Pair) -> None:
    assert len(pair.site.servers) == 2
    assert pair.site.is_primary
    assert [n.port for n in pair.servers] == [s.interfaces[0].port for s in pair.site.servers]
    # Both prefixes are homed on both servers (the site client homed the second on each).
    assert all(n.is_homed(PREFIX) and n.is_homed(pair.other_prefix) for n in pair.servers)


def test_handles_land_on_the_server_their_hash_picks(pair: Pair, created: list[str]) -> None:
    for handle in created:
        assert pair.holder(handle).get_handle(handle) is not None, handle
        assert pair.other(handle).get_handle(handle) is None, handle
    # ... and the site client resolves each of them there.
    client = pair.client()
    for handle in created:
        values = pair.run(client.resolve(handle))
        assert values[0].data == f"https://e.example/{handle}".encode()


def test_shares_are_disjoint_and_cover_every_handle(pair: Pair, created: list[str]) -> None:
    shares = [
        {h for p in (PREFIX, pair.other_prefix) for h in node.list_handles(p)}
        for node in pair.servers
    ]
    assert not shares[0] & shares[1]
    assert shares[0] | shares[1] == set(created)
    assert all(shares), "both servers hold some of the handles"
    # The site client lists a prefix by asking every server of the site.
    client = pair.client()
    for prefix in (PREFIX, pair.other_prefix):
        listed = pair.run(client.list_handles(prefix))
        assert sorted(listed) == sorted(h for h in created if h.startswith(f"{prefix}/"))


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_each_server_refuses_resolving_the_other_share(
    pair: Pair, created: list[str], tcp: bool
) -> None:
    for handle in (created[0], created[-1], PREFIX_HANDLE):
        wrong = pair.other(handle)
        client = HandleClient(HOST, wrong.port, tcp=tcp, timeout=TIMEOUT, retries=1)
        with pytest.raises(ServerNotResponsible, match=WRONG_SERVER_HASH):
            pair.run(client.resolve(handle))
        right = pair.holder(handle)
        client = HandleClient(HOST, right.port, tcp=tcp, timeout=TIMEOUT, retries=1)
        assert pair.run(client.resolve(handle))


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_each_server_refuses_administering_the_other_share_before_any_challenge(
    pair: Pair, created: list[str], tcp: bool
) -> None:
    handle = created[1]
    fresh = f"{handle}-NEW"
    url = text_value(1, "URL", "https://e.example/changed")
    requests: list[tuple[OpCode, Body, str]] = [
        (OpCode.CREATE_HANDLE, ValuesRequest(fresh, (url,)), fresh),
        (OpCode.DELETE_HANDLE, HandleRequest(handle), handle),
        (OpCode.ADD_VALUE, ValuesRequest(handle, (text_value(2, "EMAIL", "a@b.c"),)), handle),
        (OpCode.MODIFY_VALUE, ValuesRequest(handle, (url,)), handle),
        (OpCode.REMOVE_VALUE, RemoveValuesRequest(handle, (1,)), handle),
    ]
    for op, body, target in requests:
        # Anonymous: the wrong server says 301 at once, the right one asks for a challenge.
        wrong = HandleClient(HOST, pair.other(target).port, timeout=TIMEOUT, retries=1)
        reply = pair.run(wrong.exchange(wrong.build(op, body), tcp))
        assert reply.response_code == ResponseCode.SERVER_NOT_RESP, op
        right = HandleClient(HOST, pair.holder(target).port, timeout=TIMEOUT, retries=1)
        with pytest.raises(AuthenticationRequired):
            pair.run(right.request(op, body, admin=True))
        # Authenticated as a server admin: still 301 from the wrong server.
        admin = HandleClient(
            HOST,
            pair.other(target).port,
            tcp=tcp,
            timeout=TIMEOUT,
            retries=1,
            credentials=pair.servers[0].secret_credentials,
        )
        with pytest.raises(ServerNotResponsible, match=WRONG_SERVER_HASH):
            pair.run(admin.request(op, body, admin=True))
    assert pair.holder(handle).get_handle(handle) is not None  # nothing happened to it
    assert pair.holder(fresh).get_handle(fresh) is None


def test_minted_handles_hash_to_the_server_that_minted_them(pair: Pair) -> None:
    client = pair.client()
    for _ in range(6):
        minting = client.create_handle(f"{PREFIX}/", [text_value(1, "URL", "x:y")], mint=True)
        handle = pair.run(minting)
        assert handle.startswith(f"{PREFIX}/")
        assert pair.holder(handle).get_handle(handle) is not None, handle


def test_batch_creation_takes_only_this_servers_share(pair: Pair) -> None:
    """The HTTP batch endpoint's path (Dispatcher.create_handles), called on server 1's own
    loop: each item is checked against the share, though permissions are cached per prefix."""
    first = pair.servers[0]
    items = [
        (f"{prefix}/BATCH-{n}", [text_value(1, "URL", "https://e.example/b")])
        for prefix in (PREFIX, pair.other_prefix)
        for n in range(6)
    ]
    admin = Identity(PREFIX_HANDLE, 300)
    results = first.call(first.node.dispatcher.create_handles(items, admin))
    for (handle, _values), (code, message) in zip(items, results, strict=True):
        if pair.holder(handle) is first:
            assert (code, first.get_handle(handle) is not None) == (ResponseCode.SUCCESS, True)
        else:
            assert (code, message) == (ResponseCode.SERVER_NOT_RESP, WRONG_SERVER_HASH)
            assert first.get_handle(handle) is None


def test_writes_and_reads_through_the_site_client(pair: Pair) -> None:
    client = pair.client()
    handle = f"{PREFIX}/MS-EDIT"
    pair.run(client.create_handle(handle, [text_value(1, "URL", "https://e.example/1")]))
    pair.run(client.add_values(handle, [text_value(2, "EMAIL", "ops@e.example")]))
    pair.run(client.modify_values(handle, [text_value(1, "URL", "https://e.example/2")]))
    pair.run(client.remove_values(handle, [2]))
    values = pair.run(client.resolve(handle))
    assert [(v.index, v.data) for v in values] == [(1, b"https://e.example/2")]
    pair.run(client.delete_handle(handle))
    assert all(node.get_handle(handle) is None for node in pair.servers)


def test_a_mirror_site_refuses_every_write_with_not_a_primary(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    asyncio.run(init_node(tmp_path, PREFIX, port=port))
    key = load_private_key((tmp_path / "server-key.pem").read_bytes())
    table = SiteConfig(servers=(ServerEntry(1, HOST, port),), this_server=1, primary=False)
    reconfigure(tmp_path, http_port=None, site=table)
    with running_node(tmp_path) as mirror:
        site = mirror.node.site
        assert not site.is_primary
        assert (
            site.servers[0].public_key == PublicKeyData.from_public_key(key.public_key()).to_bytes()
        )
        # Read-only: it did not rewrite its HS_SITE value to the (mirror) site it serves.
        record = mirror.get_handle(PREFIX_HANDLE)
        assert record is not None
        published = next(v for v in record if v.index == 1)
        assert SiteInfo.from_bytes(published.data).is_primary
        anonymous = mirror.client()
        admin = mirror.client(mirror.secret_credentials)
        handle = f"{PREFIX}/MIRRORED"
        mirror.put_handle(handle, [text_value(1, "URL", "https://e.example/m")])
        assert asyncio.run(anonymous.resolve(handle))[0].data == b"https://e.example/m"
        writes = [
            admin.create_handle(f"{PREFIX}/NEW", [text_value(1, "URL", "x:y")]),
            admin.delete_handle(handle),
            admin.add_values(handle, [text_value(2, "EMAIL", "a@b.c")]),
            admin.modify_values(handle, [text_value(1, "URL", "x:z")]),
            admin.remove_values(handle, [1]),
            admin.home_prefix("88.118.77"),
            admin.unhome_prefix(PREFIX),
            anonymous.delete_handle(handle),  # 301 comes before any challenge
        ]
        for write in writes:
            with pytest.raises(ServerNotResponsible, match=NOT_PRIMARY):
                asyncio.run(write)
        batch = [(f"{PREFIX}/BATCH", [text_value(1, "URL", "x:y")])]
        identity = Identity(PREFIX_HANDLE, 300)
        with pytest.raises(ServerNotResponsible, match=NOT_PRIMARY):
            mirror.call(mirror.node.dispatcher.create_handles(batch, identity))
        assert mirror.get_handle(handle) is not None
        assert mirror.get_handle(f"{PREFIX}/BATCH") is None
        assert mirror.is_homed(PREFIX) and not mirror.is_homed("88.118.77")
        # Listing (a read that needs authentication) still works.
        assert handle in asyncio.run(admin.list_handles(PREFIX))
