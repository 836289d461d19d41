"""The ``idnode`` command line: thin wrappers over the library."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from idnode.bootstrap import HANDLE_ADMIN_PERMISSIONS, init_node
from idnode.client import (
    Credentials,
    HandleClient,
    PublicKeyCredentials,
    SecretKeyCredentials,
)
from idnode.errors import HandleError
from idnode.jsonvalues import data_to_json, value_to_json
from idnode.protocol.codes import ResponseCode
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.types.hs_pubkey import (
    PublicKeyData,
    dump_private_key_pem,
    load_private_key,
)
from idnode.protocol.values import HandleValue
from idnode.server.authz import Identity
from idnode.server.config import NodeConfig, parse_identity
from idnode.store import handle_key, is_database_url

T = TypeVar("T")

DEFAULT_CONFIG = Path("var/idnode.toml")


def _run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except HandleError as exc:
        code = int(getattr(exc, "code", type(exc).response_code))
        if code in (ResponseCode.SERVICE_REFERRAL, ResponseCode.PREFIX_REFERRAL):
            raise click.ClickException(
                f"the server refers to another node (response code {code}); "
                "resolve with --root HOST:PORT to follow the hierarchy"
            ) from exc
        raise click.ClickException(f"{exc.message} (response code {code})") from exc
    except (TimeoutError, ConnectionError, OSError, EOFError) as exc:
        raise click.ClickException(f"cannot reach the server: {exc}") from exc


def _server(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


server_option = click.option(
    "--server",
    default="127.0.0.1:2641",
    show_default=True,
    help="The node to talk to, HOST:PORT.",
)


@click.group()
@click.version_option(package_name="idnode")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """idnode: an identifier resolution node speaking the Handle protocol."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


# -- init / serve ----------------------------------------------------------------------------


@main.command()
@click.argument("directory", type=click.Path(path_type=Path), default=Path("var"))
@click.option("--prefix", default="88.118.8", show_default=True, help="The prefix to home.")
@click.option("--listen", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", default=2641, show_default=True, help="UDP and TCP port.")
@click.option("--demo/--no-demo", default=False, help="Also create demo identifiers.")
@click.option(
    "--db",
    "database",
    default="idnode.db",
    show_default=True,
    help="SQLite file (in DIRECTORY) or postgresql:// URL of an empty database.",
)
def init(directory: Path, prefix: str, listen: str, port: int, demo: bool, database: str) -> None:
    """Create a node in DIRECTORY: configuration, keys, database and prefix handle."""
    try:
        result = asyncio.run(
            init_node(directory, prefix, listen=listen, port=port, demo=demo, database=database)
        )
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"node created: {result.config_path}")
    click.echo(f"  prefix        {prefix} (handle 0.NA/{prefix})")
    click.echo(f"  admin secret  {result.secret_identity}  ({directory}/admin-secret)")
    click.echo(f"  admin key     {result.key_identity}  ({directory}/admin-key.pem)")
    for handle in result.demo_handles:
        click.echo(f"  demo          {handle}")


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="Node configuration file (made by `idnode init`).",
)
@click.option("--listen", default=None, help="Override the configured address.")
@click.option("--port", type=int, default=None, help="Override the configured port.")
@click.option(
    "--db",
    "database",
    default=None,
    help="Override the database: a SQLite file or postgresql:// URL.",
)
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Override the HTTP port (JSON API, native messages over HTTP); 0 = ephemeral.",
)
@click.option("--no-http", is_flag=True, help="Serve no HTTP.")
@click.option(
    "--tls-cert",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="PEM certificate: serve HTTPS (with --tls-key).",
)
@click.option(
    "--tls-key",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="PEM private key of --tls-cert.",
)
def serve(
    config_path: Path,
    listen: str | None,
    port: int | None,
    database: str | None,
    http_port: int | None,
    no_http: bool,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> None:
    """Serve the node over UDP, TCP and HTTP until interrupted (SIGINT or SIGTERM)."""
    from dataclasses import replace

    from idnode.server.node import Node

    config = NodeConfig.load(config_path)
    if listen is not None:
        config = replace(config, listen=listen)
    if port is not None:
        config = replace(config, port=port)
    if database is not None:
        if not is_database_url(database):
            database = str(Path(database).resolve())
        config = replace(config, database=database)
    if http_port is not None or no_http:
        config = replace(config, http_port=None if no_http else http_port)
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if tls_cert is not None and tls_key is not None:
        config = replace(config, tls_cert=str(tls_cert.resolve()), tls_key=str(tls_key.resolve()))

    async def run() -> None:
        node = await Node.open(config)
        try:
            await node.start()
        except OSError as exc:
            await node.close()
            http = "" if config.http_port is None else f" and HTTP port {config.http_port}"
            raise click.ClickException(
                f"cannot serve on {config.listen}:{config.port}{http}: {exc.strerror or exc}"
            ) from exc
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        prefixes = ", ".join(await node.store.homed_prefixes())
        http = ""
        if node.http_port is not None:
            scheme = "https" if config.tls_cert else "http"
            http = f", {scheme}://{config.listen}:{node.http_port}/ ({scheme.upper()})"
        click.echo(
            f"idnode serving {prefixes} on {config.listen}:{node.port} (UDP, TCP){http}; "
            "Ctrl-C stops",
            err=True,
        )
        await stop.wait()
        await node.close()

    try:
        import uvloop

        uvloop.run(run())
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(run())


# -- resolve -------------------------------------------------------------------------------


def _text(v: HandleValue) -> str:
    data = data_to_json(v.type, v.data)
    if data["format"] == "string":
        return str(data["value"])
    if data["format"] == "admin":
        a = data["value"]
        return f"{a['index']}:{a['handle']} perms={a['permissions']}"
    if data["format"] == "vlist":
        return ", ".join(f"{e['index']}:{e['handle']}" for e in data["value"])
    if data["format"] == "site":
        s = data["value"]
        return f"site serial={s['serialNumber']} servers={len(s['servers'])}"
    return f"({len(v.data)} bytes) {v.data[:24].hex()}{'…' if len(v.data) > 24 else ''}"


def _print_values(handle: str, values: tuple[HandleValue, ...], as_json: bool) -> None:
    if as_json:
        doc = {"handle": handle, "values": [value_to_json(v) for v in values]}
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    click.echo(handle)
    for v in values:
        click.echo(f"  {v.index:>5}  {v.type:<14} {_text(v)}")


@main.command()
@click.argument("handle")
@server_option
@click.option("--tcp", is_flag=True, help="Use TCP instead of UDP.")
@click.option("--type", "types", multiple=True, help="Only values of this type (repeatable).")
@click.option("--index", "indexes", type=int, multiple=True, help="Only this index (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the REST API's JSON form.")
@click.option("--timeout", default=5.0, show_default=True, help="Seconds per attempt.")
@click.option(
    "--root",
    "roots",
    multiple=True,
    metavar="HOST:PORT",
    help="Resolve recursively from this root node (repeatable) instead of asking --server: "
    "prefix handle by prefix handle, down to the node serving HANDLE.",
)
@click.option("--trace", is_flag=True, help="With --root: print every hop to stderr.")
def resolve(
    handle: str,
    server: str,
    tcp: bool,
    types: tuple[str, ...],
    indexes: tuple[int, ...],
    as_json: bool,
    timeout: float,
    roots: tuple[str, ...],
    trace: bool,
) -> None:
    """Resolve HANDLE and print its public values."""
    if roots:
        values = _resolve_recursively(handle, roots, types, indexes, timeout, trace)
    else:
        if trace:
            raise click.UsageError("--trace needs --root (a direct query has one hop)")
        host, port = _server(server)
        client = HandleClient(host, port, tcp=tcp, timeout=timeout)
        values = _run(client.resolve(handle, types=types, indexes=indexes))
    _print_values(handle, values, as_json)


def _resolve_recursively(
    handle: str,
    roots: tuple[str, ...],
    types: tuple[str, ...],
    indexes: tuple[int, ...],
    timeout: float,
    trace: bool,
) -> tuple[HandleValue, ...]:
    from idnode.resolver import Hop, Resolver

    root_sites = [_server(root) for root in roots]
    resolver = Resolver(root_sites, timeout=timeout)

    def show(hop: Hop) -> None:
        outcome = hop.error or (
            "no answer" if hop.response_code is None else _code_name(hop.response_code)
        )
        shared = " (shared)" if hop.shared else ""
        click.echo(f"  {hop.handle:<32} @ {hop.address}  {outcome}{shared}", err=True)

    if trace:
        click.echo(f"resolving {handle} from {', '.join(roots)}", err=True)
    return _run(resolver.resolve(handle, types, indexes, trace=show if trace else None))


def _code_name(code: int) -> str:
    try:
        return f"{code} {ResponseCode(code).name}"
    except ValueError:
        return str(code)


# -- administration ------------------------------------------------------------------------


def _credentials(
    identity: str, secret_file: Path | None, key_file: Path | None, passphrase: str | None
) -> Credentials:
    try:
        who = parse_identity(identity)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--as") from exc
    if (secret_file is None) == (key_file is None):
        raise click.UsageError("give exactly one of --secret-file and --key-file")
    if secret_file is not None:
        secret = secret_file.read_bytes().rstrip(b"\r\n")
        return SecretKeyCredentials(who.handle, who.index, secret)
    assert key_file is not None
    key = load_private_key(key_file.read_bytes(), passphrase.encode() if passphrase else None)
    return PublicKeyCredentials(who.handle, who.index, key)


def authenticated(f: Callable[..., None]) -> Callable[..., None]:
    """Give a command the options naming the server and the identity to authenticate as, and
    call it with ``client``: a :class:`HandleClient` holding those credentials."""

    @functools.wraps(f)
    def command(
        *,
        server: str,
        identity: str,
        secret_file: Path | None,
        key_file: Path | None,
        passphrase: str | None,
        **kwargs: Any,
    ) -> None:
        host, port = _server(server)
        credentials = _credentials(identity, secret_file, key_file, passphrase)
        f(client=HandleClient(host, port, credentials=credentials), **kwargs)

    wrapped: Callable[..., None] = command
    for option in (
        click.option(
            "--passphrase",
            envvar="IDNODE_KEY_PASSPHRASE",
            help="Passphrase of an encrypted key file.",
        ),
        click.option(
            "--key-file",
            type=click.Path(path_type=Path, exists=True, dir_okay=False),
            help="Private key of the identity (its HS_PUBKEY).",
        ),
        click.option(
            "--secret-file",
            type=click.Path(path_type=Path, exists=True, dir_okay=False),
            help="File holding the identity's secret (HS_SECKEY).",
        ),
        click.option(
            "--as",
            "identity",
            required=True,
            metavar="INDEX:HANDLE",
            help="Identity to authenticate as, e.g. 300:0.NA/88.118.8.",
        ),
        server_option,
    ):
        wrapped = option(wrapped)
    return wrapped


def _parse_values(specs: tuple[str, ...]) -> list[HandleValue]:
    """``INDEX:TYPE:DATA`` (UTF-8 text) → values."""
    out = []
    for spec in specs:
        index, _, rest = spec.partition(":")
        vtype, sep, data = rest.partition(":")
        if not index.isdigit() or not vtype or not sep:
            raise click.BadParameter(
                f"expected INDEX:TYPE:DATA, got {spec!r}", param_hint="--value"
            )
        out.append(HandleValue(int(index), vtype, data.encode("utf-8")))
    return out


value_option = click.option(
    "--value",
    "values",
    multiple=True,
    metavar="INDEX:TYPE:DATA",
    help="A value with UTF-8 text data, e.g. 1:URL:https://example.com (repeatable).",
)


@main.group()
def handle() -> None:
    """Create, change, delete and list handles (authenticated)."""


@handle.command("create")
@click.argument("name")
@value_option
@click.option(
    "--admin",
    "admin_identity",
    metavar="INDEX:HANDLE",
    help="HS_ADMIN at index 100 (default: the --as identity).",
)
@click.option("--overwrite", is_flag=True, help="Replace the handle if it exists.")
@click.option("--mint", is_flag=True, help="Let the server mint the suffix under NAME.")
@authenticated
def create(
    name: str,
    values: tuple[str, ...],
    admin_identity: str | None,
    overwrite: bool,
    mint: bool,
    client: HandleClient,
) -> None:
    """Create handle NAME with the given values and an HS_ADMIN."""
    record = _parse_values(values)
    if not any(v.type.upper() == "HS_ADMIN" for v in record):
        assert client.credentials is not None
        admin = (
            parse_identity(admin_identity)
            if admin_identity
            else Identity(client.credentials.handle, client.credentials.index)
        )
        data = AdminRecord(HANDLE_ADMIN_PERMISSIONS, admin.handle, admin.index).to_bytes()
        record.append(HandleValue(100, "HS_ADMIN", data))
    created = _run(client.create_handle(name, record, overwrite=overwrite, mint=mint))
    click.echo(created)


@handle.command("add")
@click.argument("name")
@value_option
@click.option("--overwrite", is_flag=True, help="Replace values whose index exists.")
@authenticated
def add(
    name: str,
    values: tuple[str, ...],
    overwrite: bool,
    client: HandleClient,
) -> None:
    """Add values to handle NAME."""
    _run(client.add_values(name, _parse_values(values), overwrite=overwrite))
    click.echo(f"added {len(values)} value(s) to {name}")


@handle.command("modify")
@click.argument("name")
@value_option
@authenticated
def modify(
    name: str,
    values: tuple[str, ...],
    client: HandleClient,
) -> None:
    """Replace values of handle NAME, by index."""
    _run(client.modify_values(name, _parse_values(values)))
    click.echo(f"modified {len(values)} value(s) of {name}")


@handle.command("remove")
@click.argument("name")
@click.argument("indexes", type=int, nargs=-1, required=True)
@authenticated
def remove(
    name: str,
    indexes: tuple[int, ...],
    client: HandleClient,
) -> None:
    """Remove the values at INDEXES from handle NAME."""
    _run(client.remove_values(name, indexes))
    click.echo(f"removed {len(indexes)} value(s) from {name}")


@handle.command("delete")
@click.argument("name")
@authenticated
def delete(
    name: str,
    client: HandleClient,
) -> None:
    """Delete handle NAME."""
    _run(client.delete_handle(name))
    click.echo(f"deleted {name}")


@handle.command("list")
@click.argument("prefix")
@click.option("--derived", is_flag=True, help="List derived prefixes instead of handles.")
@authenticated
def list_(
    prefix: str,
    derived: bool,
    client: HandleClient,
) -> None:
    """List the handles (or derived prefixes) under PREFIX."""
    op = client.list_derived_prefixes if derived else client.list_handles
    for name in _run(op(prefix)):
        click.echo(name)


@handle.command("home")
@click.argument("prefix")
@click.option("--unhome", is_flag=True, help="Stop serving PREFIX instead.")
@authenticated
def home(
    prefix: str,
    unhome: bool,
    client: HandleClient,
) -> None:
    """Start (or with --unhome stop) serving PREFIX on the node (server admins only)."""
    _run(client.unhome_prefix(prefix) if unhome else client.home_prefix(prefix))
    click.echo(f"{'unhomed' if unhome else 'homed'} {prefix}")


# -- bulk import ---------------------------------------------------------------------------


@main.command("import")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=DEFAULT_CONFIG,
    show_default=True,
    help="Node configuration (its database and administrators).",
)
@click.option("--db", "database", default=None, help="Override the database (path or URL).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default=None,
    help="Input format (default: from the file name; .jsonl is JSON Lines).",
)
@click.option("--prefix", default=None, help="Prefix for rows that give a 'suffix'.")
@click.option(
    "--admin",
    "admin_identity",
    metavar="INDEX:HANDLE",
    default=None,
    help="HS_ADMIN for records without one (default: the first server admin).",
)
@click.option("--batch-size", default=5000, show_default=True, help="Rows per transaction.")
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Error report (default: FILE.errors.jsonl).",
)
@click.option(
    "--checkpoint",
    "checkpoint_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Checkpoint file (default: FILE.checkpoint.json).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    help="Processes parsing rows while the database writes (0: parse in this process).",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def import_(
    file: Path,
    config_path: Path,
    database: str | None,
    fmt: str | None,
    prefix: str | None,
    admin_identity: str | None,
    batch_size: int,
    errors_path: Path | None,
    checkpoint_path: Path | None,
    workers: int,
    progress: bool,
) -> None:
    """Register the identifiers in FILE (CSV or JSON Lines) directly in the node's database.

    Bad rows go to the error report and do not stop the others; existing identifiers are
    left unchanged (running an import twice adds nothing); an interrupted import resumes
    from its checkpoint. The format is described in docs/import.md.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from idnode.importer import ImportOptions, ImportSummary, run_import
    from idnode.store import open_store

    config = NodeConfig.load(config_path)
    location = database if database is not None else config.database_location
    admin: Identity | None
    if admin_identity is not None:
        admin = parse_identity(admin_identity)
    else:
        admin = config.server_admins[0] if config.server_admins else None

    async def run() -> ImportSummary:
        store = await open_store(location)
        try:
            homed = frozenset(handle_key(p) for p in await store.homed_prefixes())
            options = ImportOptions(
                prefix=prefix, admin=admin, batch_size=batch_size, homed=homed, workers=workers
            )
            with Progress(
                TextColumn("[bold]import[/bold]"),
                BarColumn(),
                TextColumn("{task.fields[rows]:>10,} rows  {task.fields[rate]:>9,.0f}/s"),
                TimeRemainingColumn(),
                disable=not progress,
                transient=False,
            ) as bar:
                task = bar.add_task("import", total=file.stat().st_size, rows=0, rate=0.0)
                began = time.monotonic()

                def report(summary: ImportSummary, total: int) -> None:
                    elapsed = max(time.monotonic() - began, 1e-9)
                    bar.update(
                        task,
                        completed=summary.offset,
                        rows=summary.rows,
                        rate=summary.rows / elapsed,
                    )

                return await run_import(
                    store,
                    file,
                    options,
                    fmt=fmt,
                    errors_path=errors_path,
                    checkpoint_path=checkpoint_path,
                    progress=report,
                )
        finally:
            await store.close()

    try:
        summary = asyncio.run(run())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    rate = summary.rows / summary.seconds if summary.seconds else 0.0
    click.echo(
        f"{summary.rows} rows: {summary.created} created, {summary.existing} already present, "
        f"{summary.failed} failed ({summary.seconds:.1f} s, {rate:,.0f} rows/s"
        f"{', resumed' if summary.resumed else ''})"
    )
    if summary.failed:
        report_path = errors_path or file.with_name(file.name + ".errors.jsonl")
        click.echo(f"errors: {report_path}")


# -- demo ----------------------------------------------------------------------------------


@main.group()
def demo() -> None:
    """Demonstrations on 127.0.0.1."""


@demo.command("topology")
@click.argument("directory", type=click.Path(path_type=Path), default=Path("var/topology"))
@click.option("--base-port", default=22641, show_default=True, help="UDP/TCP port of the root.")
@click.option("--http-base", default=28001, show_default=True, help="HTTP port of the root.")
def demo_topology(directory: Path, base_port: int, http_base: int) -> None:
    """Run a root, a secondary, an enterprise and a recursive node (nodes in DIRECTORY, made
    on first use) until interrupted, and print commands that resolve through them."""
    from idnode.demo import running_topology, setup_topology

    async def run() -> None:
        nodes = await setup_topology(directory, base_port=base_port, http_base=http_base)
        async with running_topology(nodes):
            for node in nodes:
                click.echo(
                    f"{node.name:<10} homes {node.prefix:<9} 127.0.0.1:{node.port} "
                    f"(UDP, TCP), http://127.0.0.1:{node.http_port}/",
                    err=True,
                )
            root, recursive = nodes[0], nodes[-1]
            click.echo(
                "\nTry, in another terminal:\n"
                f"  idnode resolve 88.118.8/PV-2026-000123 --root 127.0.0.1:{root.port} --trace\n"
                f"  idnode resolve 88.118.8/PV-2026-000123 --server 127.0.0.1:{recursive.port}\n"
                f"  curl http://127.0.0.1:{recursive.http_port}/api/handles/88.118.8/PCB-7731-A\n"
                "Ctrl-C stops.",
                err=True,
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()

    try:
        asyncio.run(run())
    except OSError as exc:
        raise click.ClickException(f"cannot start the topology: {exc}") from exc


# -- keys ------------------------------------------------------------------------------------


@main.command()
@click.argument("out", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--type", "key_type", type=click.Choice(["rsa", "dsa"]), default="rsa", show_default=True
)
@click.option("--bits", default=2048, show_default=True, help="Key size.")
@click.option(
    "--passphrase",
    envvar="IDNODE_KEY_PASSPHRASE",
    help="Encrypt the key file with this passphrase.",
)
def keygen(out: Path, key_type: str, bits: int, passphrase: str | None) -> None:
    """Write a new private key to OUT (PEM) and print its HS_PUBKEY value data as hex."""
    from cryptography.hazmat.primitives.asymmetric import dsa, rsa

    if out.exists():
        raise click.ClickException(f"{out} exists")
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=bits)
        if key_type == "rsa"
        else dsa.generate_private_key(key_size=bits)
    )
    pem = dump_private_key_pem(key, passphrase.encode() if passphrase else None)
    out.touch(mode=0o600)
    out.write_bytes(pem)
    click.echo(PublicKeyData.from_public_key(key.public_key()).to_bytes().hex())


# -- database --------------------------------------------------------------------------------


def _db_location(config_path: Path, database: str | None) -> str:
    """The database named by ``--db``, else the one in the configuration file."""
    if database is not None:
        return database if is_database_url(database) else str(Path(database).resolve())
    if not config_path.is_file():
        raise click.ClickException(f"no configuration file {config_path}: give --config or --db")
    try:
        return NodeConfig.load(config_path).database_location
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read {config_path}: {exc}") from exc


def _db_run(work: Awaitable[T]) -> T:
    async def run() -> T:
        return await work

    try:
        return asyncio.run(run())
    except HandleError as exc:
        raise click.ClickException(exc.message) from exc


def db_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--config`` and ``--db``, shared by the ``db`` commands."""
    f = click.option(
        "--db",
        "database",
        default=None,
        help="The database: a SQLite file or postgresql:// URL (default: the configured one).",
    )(f)
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=DEFAULT_CONFIG,
        show_default=True,
        help="Node configuration file naming the database (not read with --db).",
    )(f)


@main.group()
def db() -> None:
    """Inspect, migrate, dump and restore the database (SQLite or PostgreSQL)."""


@db.command("migrate")
@db_options
def db_migrate(config_path: Path, database: str | None) -> None:
    """Apply the pending schema migrations. Safe to run while nodes use the database, and
    from several places at once (each migration is applied once)."""
    from idnode.store.migrations import load_migrations
    from idnode.store.status import migrate_database

    applied = _db_run(migrate_database(_db_location(config_path, database)))
    for migration in applied:
        click.echo(f"applied {migration.name}")
    latest = load_migrations()[-1].version
    click.echo(f"schema version {latest}{'' if applied else ' (nothing to do)'}")


@db.command("status")
@db_options
def db_status(config_path: Path, database: str | None) -> None:
    """Print the backend, location, schema version, pending migrations, and the number of
    handles and homed prefixes. Changes nothing."""
    from idnode.store.status import database_status

    status = _db_run(database_status(_db_location(config_path, database)))
    if status.version > status.latest:
        version = f"{status.version} (newer than this idnode, which knows up to {status.latest})"
    else:
        version = f"{status.version} (latest {status.latest})"
    pending = ", ".join(m.name for m in status.pending) or "none"
    rows = [
        ("backend", status.backend),
        ("location", status.location),
        ("schema version", version),
        ("pending migrations", pending),
        ("handles", "-" if status.handles is None else str(status.handles)),
        ("homed prefixes", "-" if status.homed_prefixes is None else str(status.homed_prefixes)),
    ]
    for name, value in rows:
        click.echo(f"{name:<20}{value}")


@db.command("dump")
@db_options
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the dump to this file (default: standard output).",
)
def db_dump(config_path: Path, database: str | None, output: Path | None) -> None:
    """Write every handle and the homed prefixes as a portable dump (JSON Lines), which
    `idnode db restore` loads into a SQLite or PostgreSQL database. Changes nothing; stop
    the writers first, as a dump is not a snapshot. The output file appears only complete."""
    from idnode.dump import DumpError, atomic_output, dump_database

    location = _db_location(config_path, database)
    try:
        if output is None:
            with click.open_file("-", "wb") as stdout:
                header = _db_run(dump_database(location, stdout))
        else:
            with atomic_output(output) as out:
                header = _db_run(dump_database(location, out))
    except (DumpError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"dumped {header.count} handles and {len(header.homed_prefixes)} homed prefixes "
        f"(schema version {header.schema})" + ("" if output is None else f" to {output}"),
        err=True,
    )


@db.command("restore")
@click.argument(
    "file", type=click.Path(path_type=Path, exists=True, dir_okay=False, allow_dash=True)
)
@db_options
@click.option("--batch-size", default=5000, show_default=True, help="Handles per transaction.")
def db_restore(config_path: Path, database: str | None, file: Path, batch_size: int) -> None:
    """Load the dump FILE (`-`: standard input) made by `idnode db dump`: home its prefixes
    and create its handles. Handles that exist already are left as they are, so restoring
    again adds nothing. A bad line stops the restore, with the batches before it written."""
    from idnode.dump import DumpError, restore_database

    if batch_size < 1:
        raise click.BadParameter("must be at least 1", param_hint="--batch-size")
    location = _db_location(config_path, database)
    try:
        with click.open_file(file, "rb") as source:
            summary = _db_run(restore_database(location, source, batch_size=batch_size))
    except (DumpError, OSError) as exc:
        raise click.ClickException(f"{file}: {exc}") from exc
    click.echo(
        f"restored {summary.handles} handles: {summary.created} created, "
        f"{summary.existing} already present; {summary.homed_prefixes} homed prefixes"
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
