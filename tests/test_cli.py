"""The ``idnode`` command line, with click's CliRunner, against a running node where needed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from idnode.bootstrap import DEMO_HANDLES, HANDLE_ADMIN_PERMISSIONS
from idnode.cli import main
from idnode.crypto.sm2 import Sm2PrivateKey
from idnode.errors import HandleNotFound, InvalidValue
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.types.hs_pubkey import (
    DSA_PUB_KEY,
    RSA_PUB_KEY,
    PublicKeyData,
    load_private_key,
)
from idnode.protocol.values import HandleValue
from idnode.server.config import NodeConfig
from tests.server.nodeutil import (
    HOST,
    PREFIX,
    PREFIX_HANDLE,
    RunningNode,
    create_node_dir,
    no_internal_errors,
    running_node,
)

__all__ = ["no_internal_errors"]  # the autouse fixture applies to this module

PV = f"{PREFIX}/PV-2026-000123"


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    directory = tmp_path_factory.mktemp("cli-node")
    create_node_dir(directory)
    with running_node(directory) as running:
        yield running


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def secret_args(node: RunningNode) -> list[str]:
    return [
        "--server", node.server,
        "--as", f"300:{PREFIX_HANDLE}",
        "--secret-file", str(node.directory / "admin-secret"),
    ]  # fmt: skip


def key_args(node: RunningNode) -> list[str]:
    return [
        "--server", node.server,
        "--as", f"301:{PREFIX_HANDLE}",
        "--key-file", str(node.directory / "admin-key.pem"),
    ]  # fmt: skip


AUTH = {"secret": secret_args, "key": key_args}


def values_of(node: RunningNode, handle: str) -> dict[int, tuple[str, bytes]]:
    record = node.get_handle(handle)
    if record is None:
        raise HandleNotFound(handle)
    return {v.index: (v.type, v.data) for v in record}


# -- init ------------------------------------------------------------------------------------


def test_init_creates_a_node(tmp_path: Path) -> None:
    directory = tmp_path / "var"
    result = invoke("init", str(directory), "--prefix", PREFIX, "--port", "0", "--demo")
    assert result.exit_code == 0, result.output
    assert "node created" in result.output
    assert f"0.NA/{PREFIX}" in result.output
    assert f"300:0.NA/{PREFIX}" in result.output and f"301:0.NA/{PREFIX}" in result.output
    for suffix in DEMO_HANDLES:
        assert f"{PREFIX}/{suffix}" in result.output
    for name in ("idnode.toml", "idnode.db", "server-key.pem", "admin-key.pem", "admin-secret"):
        assert (directory / name).is_file(), name
    for secret in ("server-key.pem", "admin-key.pem", "admin-secret"):
        assert mode(directory / secret) == 0o600, secret
    config = NodeConfig.load(directory / "idnode.toml")
    assert config.port == 0
    assert [str(a) for a in config.server_admins] == [f"200:0.NA/{PREFIX}"]
    # The directory serves: the demo handles resolve.
    with running_node(directory) as running:
        values = asyncio.run(running.client().resolve(PV))
        assert values[0].data == b"https://pv.example.com/modules/PV-2026-000123"


def test_init_without_demo(tmp_path: Path) -> None:
    result = invoke("init", str(tmp_path / "n"), "--prefix", "20.500.1", "--no-demo")
    assert result.exit_code == 0, result.output
    assert not [line for line in result.output.splitlines() if line.strip().startswith("demo")]
    assert NodeConfig.load(tmp_path / "n" / "idnode.toml").port == 2641


def test_init_refuses_existing_node(tmp_path: Path) -> None:
    assert invoke("init", str(tmp_path), "--port", "0").exit_code == 0
    before = (tmp_path / "admin-secret").read_bytes()
    result = invoke("init", str(tmp_path), "--port", "0")
    assert result.exit_code != 0
    assert "already exists" in result.output
    assert (tmp_path / "admin-secret").read_bytes() == before


# -- help ------------------------------------------------------------------------------------

HELP = [
    ((), ["init", "serve", "resolve", "handle", "keygen", "--verbose"]),
    (("init",), ["DIRECTORY", "--prefix", "--listen", "--port", "--demo"]),
    (("serve",), ["--config", "--listen", "--port"]),
    (("resolve",), ["HANDLE", "--server", "--tcp", "--type", "--index", "--json", "--timeout"]),
    (("keygen",), ["OUT", "--type", "rsa", "dsa", "--bits", "--passphrase"]),
    (("handle",), ["create", "add", "modify", "remove", "delete", "list", "home"]),
    (
        ("handle", "create"),
        [
            "NAME",
            "--value",
            "--admin",
            "--overwrite",
            "--mint",
            "--as",
            "--secret-file",
            "--key-file",
            "--passphrase",
            "--server",
        ],
    ),
    (("handle", "add"), ["NAME", "--value", "--overwrite", "--as", "--secret-file", "--key-file"]),
    (("handle", "modify"), ["NAME", "--value", "--as", "--secret-file", "--key-file"]),
    (("handle", "remove"), ["NAME", "INDEXES", "--as", "--secret-file", "--key-file"]),
    (("handle", "delete"), ["NAME", "--as", "--secret-file", "--key-file"]),
    (("handle", "list"), ["PREFIX", "--derived", "--as", "--secret-file", "--key-file"]),
    (("handle", "home"), ["PREFIX", "--unhome", "--as", "--secret-file", "--key-file"]),
]


@pytest.mark.parametrize(
    ("command", "mentions"), [pytest.param(c, m, id=" ".join(c) or "main") for c, m in HELP]
)
def test_help(command: tuple[str, ...], mentions: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage:")
    for word in mentions:
        assert word in result.output, f"{word!r} missing from `{' '.join(command)} --help`"


def _all_commands() -> list[tuple[str, ...]]:
    """Every command path of the CLI: (), ("init",), ("handle", "create"), ..."""
    out: list[tuple[str, ...]] = []

    def walk(path: tuple[str, ...], command: click.Command) -> None:
        out.append(path)
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk((*path, name), sub)

    walk((), main)
    return out


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


@pytest.mark.parametrize(
    "path", [pytest.param(p, id=" ".join(p) or "main") for p in _all_commands()]
)
def test_help_of_every_command(path: tuple[str, ...]) -> None:
    """Every command and subcommand (including ones not in HELP) has a working --help that
    lists all of its options and arguments."""
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage:")
    for param in _command(path).params:
        if isinstance(param, click.Option):
            if param.hidden:
                continue
            assert max(param.opts, key=len) in result.output, param.name
        elif isinstance(param, click.Argument):
            assert param.make_metavar(click.Context(_command(path))) in result.output


def test_help_table_covers_the_documented_commands() -> None:
    assert {c for c, _ in HELP} <= set(_all_commands())


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert "version" in result.output


# -- keygen ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "key_type"),
    [
        pytest.param((), RSA_PUB_KEY, id="rsa-default"),
        pytest.param(("--type", "rsa", "--bits", "3072"), RSA_PUB_KEY, id="rsa-3072"),
        pytest.param(("--type", "dsa"), DSA_PUB_KEY, id="dsa"),
    ],
)
def test_keygen(tmp_path: Path, args: tuple[str, ...], key_type: str) -> None:
    out = tmp_path / "key.pem"
    result = invoke("keygen", str(out), *args)
    assert result.exit_code == 0, result.output
    assert mode(out) == 0o600
    pem = out.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    data = PublicKeyData.from_bytes(bytes.fromhex(result.stdout.strip()))
    assert data.key_type == key_type
    assert data.to_public_key() == load_private_key(pem).public_key()
    if "--bits" in args:
        key = load_private_key(pem)
        assert not isinstance(key, Sm2PrivateKey) and key.key_size == 3072


def test_keygen_with_passphrase(tmp_path: Path) -> None:
    out = tmp_path / "enc.pem"
    result = invoke("keygen", str(out), "--passphrase", "s3cret")
    assert result.exit_code == 0, result.output
    assert mode(out) == 0o600
    assert b"ENCRYPTED" in out.read_bytes()
    key = load_private_key(out.read_bytes(), b"s3cret")
    assert PublicKeyData.from_public_key(key.public_key()).to_bytes().hex() == (
        result.stdout.strip()
    )
    with pytest.raises(InvalidValue):
        load_private_key(out.read_bytes())


def test_keygen_refuses_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "key.pem"
    out.write_bytes(b"keep me")
    result = invoke("keygen", str(out))
    assert result.exit_code != 0
    assert "exists" in result.output
    assert out.read_bytes() == b"keep me"


# -- resolve ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", [[], ["--tcp"]], ids=["udp", "tcp"])
def test_resolve_text(node: RunningNode, transport: list[str]) -> None:
    result = invoke("resolve", PV, "--server", node.server, *transport)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == PV
    assert any("URL" in line and "https://pv.example.com/modules" in line for line in lines)
    assert any("HS_ADMIN" in line and f"200:0.NA/{PREFIX}" in line for line in lines)
    assert "INTERNAL.COST" not in result.stdout  # not public


@pytest.mark.parametrize("transport", [[], ["--tcp"]], ids=["udp", "tcp"])
def test_resolve_json(node: RunningNode, transport: list[str]) -> None:
    result = invoke("resolve", PV, "--server", node.server, "--json", *transport)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["handle"] == PV
    by_index = {v["index"]: v for v in doc["values"]}
    assert sorted(by_index) == [1, 2, 3, 4, 100]
    assert by_index[1]["type"] == "URL"
    assert by_index[1]["data"] == {
        "format": "string",
        "value": "https://pv.example.com/modules/PV-2026-000123",
    }
    assert by_index[100]["data"]["format"] == "admin"
    assert by_index[100]["data"]["value"]["handle"] == f"0.NA/{PREFIX}"


@pytest.mark.parametrize("transport", [[], ["--tcp"]], ids=["udp", "tcp"])
@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param(["--type", "URL"], [1], id="type"),
        pytest.param(["--type", "EMAIL", "--type", "DESC"], [2, 3], id="two-types"),
        pytest.param(["--index", "2"], [2], id="index"),
        pytest.param(["--index", "4", "--type", "URL"], [1, 4], id="both"),
    ],
)
def test_resolve_filters(
    node: RunningNode, transport: list[str], filters: list[str], expected: list[int]
) -> None:
    result = invoke("resolve", PV, "--server", node.server, "--json", *transport, *filters)
    assert result.exit_code == 0, result.output
    assert [v["index"] for v in json.loads(result.stdout)["values"]] == expected


@pytest.mark.parametrize("transport", [[], ["--tcp"]], ids=["udp", "tcp"])
def test_resolve_not_found(node: RunningNode, transport: list[str]) -> None:
    result = invoke("resolve", f"{PREFIX}/NOPE", "--server", node.server, *transport)
    assert result.exit_code == 1
    assert "Error:" in result.output
    assert "not found" in result.output.lower()
    assert "100" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_resolve_not_homed(node: RunningNode) -> None:
    result = invoke("resolve", "99.1/X", "--server", node.server)
    assert result.exit_code == 1
    assert "301" in result.output


def test_resolve_unreachable_server(closed_port: int) -> None:
    result = invoke("resolve", PV, "--server", f"{HOST}:{closed_port}", "--tcp", "--timeout", "1")
    assert result.exit_code == 1
    assert "cannot reach the server" in result.output
    assert isinstance(result.exception, SystemExit)


def test_resolve_udp_timeout(closed_port: int) -> None:
    result = invoke("resolve", PV, "--server", f"{HOST}:{closed_port}", "--timeout", "0.2")
    assert result.exit_code == 1
    assert "cannot reach the server" in result.output
    assert isinstance(result.exception, SystemExit)


@pytest.fixture
def hang_up_server() -> Iterator[int]:
    """A TCP server that accepts connections and closes them without answering."""
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(1.0)
            with contextlib.suppress(OSError):
                conn.recv(65536)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_resolve_server_hangs_up(hang_up_server: int) -> None:
    """A server closing the connection without an answer gives a clean error, no traceback."""
    result = invoke("resolve", PV, "--server", f"{HOST}:{hang_up_server}", "--tcp")
    assert result.exit_code == 1
    assert "Error:" in result.output, f"unclear message: {result.output!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)


@pytest.mark.parametrize("server", ["nohost", "host:port", ":2641", "host:"])
def test_resolve_bad_server_option(server: str) -> None:
    result = invoke("resolve", PV, "--server", server)
    assert result.exit_code == 2
    assert "HOST:PORT" in result.output


# -- handle administration -------------------------------------------------------------------


@pytest.mark.parametrize("auth", list(AUTH))
def test_handle_commands_round_trip(node: RunningNode, auth: str) -> None:
    creds = AUTH[auth](node)
    handle = f"{PREFIX}/CLI-{auth.upper()}"
    identity = creds[creds.index("--as") + 1]

    result = invoke(
        "handle", "create", handle, "--value", "1:URL:https://example.com/cli",
        "--value", "2:DESC:made: by the CLI", *creds,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == handle
    values = values_of(node, handle)
    assert values[1] == ("URL", b"https://example.com/cli")
    assert values[2] == ("DESC", b"made: by the CLI")  # data may contain ':'
    admin = AdminRecord.from_bytes(values[100][1])
    assert f"{admin.index}:{admin.handle}" == identity
    assert admin.permissions == HANDLE_ADMIN_PERMISSIONS

    result = invoke("handle", "add", handle, "--value", "3:EMAIL:cli@example.com", *creds)
    assert result.exit_code == 0, result.output
    assert values_of(node, handle)[3] == ("EMAIL", b"cli@example.com")

    result = invoke("handle", "add", handle, "--value", "3:EMAIL:new@example.com", *creds)
    assert result.exit_code == 1
    assert "201" in result.output
    result = invoke(
        "handle", "add", handle, "--overwrite", "--value", "3:EMAIL:new@example.com", *creds
    )
    assert result.exit_code == 0, result.output
    assert values_of(node, handle)[3] == ("EMAIL", b"new@example.com")

    result = invoke("handle", "modify", handle, "--value", "2:DESC:changed", *creds)
    assert result.exit_code == 0, result.output
    assert values_of(node, handle)[2] == ("DESC", b"changed")

    result = invoke("handle", "remove", handle, "3", "2", *creds)
    assert result.exit_code == 0, result.output
    assert sorted(values_of(node, handle)) == [1, 100]

    result = invoke("handle", "list", PREFIX, *creds)
    assert result.exit_code == 0, result.output
    listed = result.stdout.splitlines()
    assert handle in listed and PV in listed

    result = invoke("handle", "delete", handle, *creds)
    assert result.exit_code == 0, result.output
    assert node.get_handle(handle) is None
    result = invoke("resolve", handle, "--server", node.server)
    assert result.exit_code == 1


@pytest.mark.parametrize("auth", list(AUTH))
def test_handle_create_options(node: RunningNode, auth: str) -> None:
    creds = AUTH[auth](node)
    handle = f"{PREFIX}/CLI-OPTS-{auth.upper()}"
    result = invoke(
        "handle", "create", handle, "--value", "1:URL:u1", "--admin", f"300:{PREFIX}/OTHER",
        *creds,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    admin = AdminRecord.from_bytes(values_of(node, handle)[100][1])
    assert (admin.handle, admin.index) == (f"{PREFIX}/OTHER", 300)

    result = invoke("handle", "create", handle, "--value", "1:URL:u2", *creds)
    assert result.exit_code == 1
    assert "101" in result.output
    assert values_of(node, handle)[1] == ("URL", b"u1")

    result = invoke("handle", "create", handle, "--overwrite", "--value", "5:URL:u3", *creds)
    assert result.exit_code == 0, result.output
    assert sorted(values_of(node, handle)) == [5, 100]

    result = invoke("handle", "create", f"{PREFIX}/MINTED", "--mint", "--value", "1:URL:m", *creds)
    assert result.exit_code == 0, result.output
    minted = result.stdout.strip()
    assert minted.startswith(f"{PREFIX}/MINTED") and minted != f"{PREFIX}/MINTED"
    assert values_of(node, minted)[1] == ("URL", b"m")


def test_handle_list_derived_and_home(node: RunningNode) -> None:
    creds = key_args(node)
    derived = f"{PREFIX_HANDLE}.CLI"
    assert invoke("handle", "create", derived, *creds).exit_code == 0
    result = invoke("handle", "list", PREFIX, "--derived", *creds)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [derived]

    result = invoke("handle", "home", "55.CLI", *secret_args(node))
    assert result.exit_code == 0, result.output
    assert node.is_homed("55.CLI")
    result = invoke("handle", "home", "55.CLI", "--unhome", *secret_args(node))
    assert result.exit_code == 0, result.output
    assert not node.is_homed("55.CLI")


def test_wrong_secret(node: RunningNode, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("not the secret\n")
    handle = f"{PREFIX}/CLI-WRONG"
    result = invoke(
        "handle", "create", handle, "--value", "1:URL:u", "--server", node.server,
        "--as", f"300:{PREFIX_HANDLE}", "--secret-file", str(wrong),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "403" in result.output
    assert node.get_handle(handle) is None


def test_wrong_key(node: RunningNode, tmp_path: Path) -> None:
    key = tmp_path / "other.pem"
    assert invoke("keygen", str(key)).exit_code == 0
    result = invoke(
        "handle", "delete", PV, "--server", node.server,
        "--as", f"301:{PREFIX_HANDLE}", "--key-file", str(key),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "403" in result.output
    assert node.get_handle(PV) is not None


def test_encrypted_key_file_with_passphrase(node: RunningNode, tmp_path: Path) -> None:
    """An encrypted key file and --passphrase (or IDNODE_KEY_PASSPHRASE) authenticate."""
    key = tmp_path / "user.pem"
    result = invoke("keygen", str(key), "--passphrase", "pw")
    assert result.exit_code == 0
    pubkey = bytes.fromhex(result.stdout.strip())
    handle = f"{PREFIX}/CLI-KEYUSER"
    node.put_handle(
        handle,
        [
            HandleValue(300, "HS_PUBKEY", pubkey),
            HandleValue(100, "HS_ADMIN", AdminRecord(0x0FFF, handle, 300).to_bytes()),
        ],
    )
    common = ["--server", node.server, "--as", f"300:{handle}", "--key-file", str(key)]
    result = invoke("handle", "add", handle, "--value", "1:URL:u", *common, "--passphrase", "pw")
    assert result.exit_code == 0, result.output
    result = invoke(
        "handle", "add", handle, "--value", "2:URL:v", *common, env={"IDNODE_KEY_PASSPHRASE": "pw"}
    )
    assert result.exit_code == 0, result.output
    result = invoke("handle", "add", handle, "--value", "3:URL:w", *common)
    assert result.exit_code != 0
    assert sorted(values_of(node, handle)) == [1, 2, 100, 300]


def test_not_found_errors(node: RunningNode) -> None:
    creds = secret_args(node)
    for args in (
        ["delete", f"{PREFIX}/CLI-NOPE"],
        ["add", f"{PREFIX}/CLI-NOPE", "--value", "1:URL:u"],
        ["remove", f"{PREFIX}/CLI-NOPE", "1"],
    ):
        result = invoke("handle", *args, *creds)
        assert result.exit_code == 1, args
        assert "100" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--value", "URL:u"], "INDEX:TYPE:DATA", id="value-without-index"),
        pytest.param(["--value", "1:URL"], "INDEX:TYPE:DATA", id="value-without-data"),
        pytest.param(["--value", "x:URL:u"], "INDEX:TYPE:DATA", id="value-bad-index"),
        pytest.param(["--as", "0.NA/88.118.8"], "index:handle", id="identity-without-index"),
    ],
)
def test_usage_errors(node: RunningNode, args: list[str], message: str) -> None:
    base = ["--server", node.server, "--secret-file", str(node.directory / "admin-secret")]
    if "--as" not in args:
        base += ["--as", f"300:{PREFIX_HANDLE}"]
    result = invoke("handle", "create", f"{PREFIX}/CLI-USAGE", *args, *base)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert node.get_handle(f"{PREFIX}/CLI-USAGE") is None


def test_credentials_required_exactly_once(node: RunningNode) -> None:
    neither = ["--server", node.server, "--as", f"300:{PREFIX_HANDLE}"]
    both = [
        *neither,
        "--secret-file", str(node.directory / "admin-secret"),
        "--key-file", str(node.directory / "admin-key.pem"),
    ]  # fmt: skip
    for args in (neither, both):
        result = invoke("handle", "delete", PV, *args)
        assert result.exit_code == 2
        assert "exactly one of --secret-file and --key-file" in result.output
    result = invoke("handle", "delete", PV, "--server", node.server, "--secret-file", "x")
    assert result.exit_code == 2
    assert node.get_handle(PV) is not None


def test_serve_missing_config(tmp_path: Path) -> None:
    result = invoke("serve", "--config", str(tmp_path / "nope.toml"))
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_serve_port_in_use(tmp_path: Path) -> None:
    """`idnode serve` on a port that is taken exits non-zero with a one-line error, not a
    traceback (run as a subprocess: a serve that did start would block)."""
    assert invoke("init", str(tmp_path), "--port", "0").exit_code == 0
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "idnode.cli", "serve", "--config",
             str(tmp_path / "idnode.toml"), "--port", str(port)],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "Error" in proc.stderr
    assert str(port) in proc.stderr


# -- idnode db (SQLite; PostgreSQL in tests/store/test_postgres.py and test_dump.py) ------------
def db_status_lines(output: str) -> dict[str, str]:
    return {line[:20].strip(): line[20:] for line in output.splitlines()}


def test_db_commands_on_sqlite_via_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "idnode.toml"
    config.write_text(NodeConfig(directory=tmp_path, database="node.db").dump())
    result = invoke("db", "status", "--config", str(config))
    assert result.exit_code == 1
    assert "no SQLite database" in result.output
    migrated = invoke("db", "migrate", "--config", str(config))
    assert migrated.exit_code == 0, migrated.output
    assert migrated.output.startswith("applied 0001_init")
    result = invoke("db", "status", "--config", str(config))
    assert result.exit_code == 0, result.output
    status = db_status_lines(result.output)
    assert status["backend"] == "sqlite"
    assert status["location"] == str(tmp_path / "node.db")
    assert (status["pending migrations"], status["handles"]) == ("none", "0")
    missing = invoke("db", "status", "--config", str(tmp_path / "no.toml"))
    assert missing.exit_code == 1
    assert "give --config or --db" in missing.output


def test_db_dump_to_stdout_and_restore_from_stdin(tmp_path: Path) -> None:
    from idnode.store import open_store
    from idnode.store.migrations import load_migrations

    source, target = tmp_path / "a.db", tmp_path / "b.db"

    async def fill() -> None:
        store = await open_store(source)
        try:
            await store.create_handle("88.1/A", [HandleValue(1, "URL", b"https://a.example/")])
            await store.create_handle("88.1/b", [])
            await store.home_prefix("88.1")
        finally:
            await store.close()

    asyncio.run(fill())
    dumped = CliRunner().invoke(main, ["db", "dump", "--db", str(source)])
    assert dumped.exit_code == 0, dumped.output
    latest = load_migrations()[-1].version
    assert dumped.stderr == f"dumped 2 handles and 1 homed prefixes (schema version {latest})\n"
    assert dumped.stdout_bytes.count(b"\n") == 3
    restored = CliRunner().invoke(
        main, ["db", "restore", "-", "--db", str(target)], input=dumped.stdout_bytes
    )
    assert restored.exit_code == 0, restored.output
    assert restored.output == "restored 2 handles: 2 created, 0 already present; 1 homed prefixes\n"
    again = CliRunner().invoke(main, ["db", "dump", "--db", str(target)])
    assert again.stdout_bytes == dumped.stdout_bytes

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(dumped.stdout_bytes.replace(b'"record": "', b'"record": "!', 1))
    result = invoke("db", "restore", str(bad), "--db", str(tmp_path / "c.db"))
    assert result.exit_code == 1
    assert f"Error: {bad}: line 2: 88.1/A: record is not base64" in result.output
    result = invoke("db", "restore", str(tmp_path / "d.db"), "--db", str(tmp_path / "e.db"))
    assert result.exit_code == 2  # no such file
    assert not (tmp_path / "e.db").exists()
    not_a_dump = invoke("db", "restore", str(source), "--db", str(tmp_path / "f.db"))
    assert not_a_dump.exit_code == 1
    assert "line 1: not an idnode dump (no header)" in not_a_dump.output
    assert not (tmp_path / "f.db").exists()


def test_keys_encrypted_at_rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`idnode init --key-passphrase-file`: both keys are encrypted PEM; the node starts with
    the passphrase from the file (or IDNODE_KEY_PASSPHRASE) and refuses to without it."""
    from idnode.server.config import NodeConfig
    from idnode.server.node import Node

    secret = tmp_path / "passphrase"
    secret.write_text("correct horse battery staple\n")
    directory = tmp_path / "node"
    result = CliRunner().invoke(
        main, ["init", str(directory), "--port", "0", "--key-passphrase-file", str(secret)]
    )
    assert result.exit_code == 0, result.output
    for name in ("server-key.pem", "admin-key.pem"):
        assert (directory / name).read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY")
    config = NodeConfig.load(directory / "idnode.toml")
    assert config.server_key_passphrase_file == str(secret.resolve())

    async def opens(config: NodeConfig) -> None:
        node = await Node.open(config)
        await node.store.close()

    asyncio.run(opens(config))  # the passphrase file
    monkeypatch.setenv("IDNODE_KEY_PASSPHRASE", "wrong")
    with pytest.raises(ValueError, match="passphrase"):
        asyncio.run(opens(config))
    monkeypatch.setenv("IDNODE_KEY_PASSPHRASE", "correct horse battery staple")
    asyncio.run(opens(config))
    monkeypatch.delenv("IDNODE_KEY_PASSPHRASE")
    unconfigured = dataclasses.replace(config, server_key_passphrase_file=None)
    (directory / "idnode.toml").write_text(unconfigured.dump())
    served = CliRunner().invoke(main, ["serve", "--config", str(directory / "idnode.toml")])
    assert served.exit_code == 1
    assert "cannot load the server key" in served.output and "passphrase" in served.output
