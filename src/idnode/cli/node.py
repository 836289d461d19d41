"""Commands that create and run nodes: init, serve, demo topology, keygen."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from idnode.bootstrap import init_node
from idnode.cli._common import (
    DEFAULT_CONFIG,
    main,
)
from idnode.crypto.keys import KEY_TYPES, generate_key
from idnode.protocol.types.hs_pubkey import (
    PublicKeyData,
    dump_private_key_pem,
)
from idnode.server.config import NodeConfig
from idnode.store import is_database_url

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
@click.option(
    "--key-passphrase-file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Encrypt the server and admin keys with the passphrase in this file (the node reads "
    "it at start, or IDNODE_KEY_PASSPHRASE).",
)
@click.option(
    "--key-type",
    type=click.Choice(KEY_TYPES),
    default="rsa",
    show_default=True,
    help="Kind of the server and admin keys (rsa and dsa: 2048 bits; sm2: GB/T 32918).",
)
def init(
    directory: Path,
    prefix: str,
    listen: str,
    port: int,
    demo: bool,
    database: str,
    key_passphrase_file: Path | None,
    key_type: str,
) -> None:
    """Create a node in DIRECTORY: configuration, keys, database and prefix handle."""
    try:
        result = asyncio.run(
            init_node(
                directory,
                prefix,
                listen=listen,
                port=port,
                demo=demo,
                database=database,
                key_passphrase_file=key_passphrase_file,
                key_type=key_type,
            )
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
    """Serve the node over UDP, TCP and HTTP until interrupted (SIGINT or SIGTERM). SIGHUP
    loads the HTTPS certificate and key files again (they are also watched for changes).
    With ``workers = N`` (N > 1) in the configuration, N worker processes share the ports
    (SO_REUSEPORT) under this process, which restarts any that dies."""
    from dataclasses import replace

    from idnode.server import heap
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
    if config.workers > 1:  # `workers = N`: a supervising parent (idnode.server.workers)
        from idnode.server.workers import supervise

        base = NodeConfig.load(config_path)
        names = ("listen", "port", "database", "http_port", "tls_cert", "tls_key")
        changed = {n: getattr(config, n) for n in names if getattr(config, n) != getattr(base, n)}
        raise SystemExit(supervise(config_path, changed, config.workers))

    async def run() -> None:
        try:
            node = await Node.open(config)
        except (ValueError, OSError) as exc:
            raise click.ClickException(str(exc)) from exc
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
        loop.add_signal_handler(signal.SIGHUP, node.reload_tls)
        prefixes = ", ".join(await node.store.homed_prefixes())
        heap.settle()
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


# -- demo ----------------------------------------------------------------------------------


@main.group()
def demo() -> None:
    """Demonstrations on 127.0.0.1."""


@demo.command("topology")
@click.argument("directory", type=click.Path(path_type=Path), default=Path("var/topology"))
@click.option("--base-port", default=22641, show_default=True, help="UDP/TCP port of the root.")
@click.option("--http-base", default=28001, show_default=True, help="HTTP port of the root.")
def demo_topology(directory: Path, base_port: int, http_base: int) -> None:
    """Run a demo identifier hierarchy with every role until interrupted: a root, two
    secondary nodes (one hosting an enterprise prefix), an enterprise node with a mirror, a
    two-server enterprise site and a recursive node (in DIRECTORY, made on first use), with a
    trust root whose chain signs some identifiers (DIRECTORY/trust, docs/trust.md). Prints
    commands that resolve and verify through them."""
    from idnode.demo import (
        TRUST_ROOT,
        TRUST_ROOT_PUBLIC_KEY,
        pv_module,
        running_topology,
        setup_topology,
    )

    async def run() -> None:
        nodes = await setup_topology(directory, base_port=base_port, http_base=http_base)
        async with running_topology(nodes):
            for node in nodes:
                click.echo(
                    f"{node.name:<14} {node.prefix:<9} 127.0.0.1:{node.port} "
                    f"(UDP, TCP), http://127.0.0.1:{node.http_port}/",
                    err=True,
                )
            by_name = {node.name: node for node in nodes}
            root, recursive = by_name["root"], by_name["recursive"]
            enterprise = by_name["enterprise-a"]
            click.echo(
                "\nTry, in another terminal:\n"
                f"  idnode resolve 88.118.8/PV-2026-000123 --root 127.0.0.1:{root.port} --trace\n"
                f"  idnode resolve 88.119.1/VIN-LSVAU2180N2183294 --root 127.0.0.1:{root.port}"
                " --trace\n"
                f"  idnode resolve 88.118.8/PV-2026-000123 --root 127.0.0.1:{root.port} --verify"
                f" --trust-root {TRUST_ROOT} --trust-key {directory / TRUST_ROOT_PUBLIC_KEY}\n"
                f"  curl http://127.0.0.1:{enterprise.http_port}/api/verify/88.118.8/"
                "PV-2026-000123\n"
                "  idnode resolve 88.118.9/WAFER-LOT-2026-0311"
                f" --server 127.0.0.1:{recursive.port}\n"
                f"  curl http://127.0.0.1:{recursive.http_port}/api/handles/88.118.8/PCB-7731-A\n"
                f"  idnode trace {pv_module()} --direction up"
                f" --http http://127.0.0.1:{enterprise.http_port}\n"
                f"The web console: http://127.0.0.1:{enterprise.http_port}/ (log in as operator,"
                " module-maker or buyer; passwords in"
                f" {enterprise.config_path.parent}/<account>-password)\n"
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
@click.option("--type", "key_type", type=click.Choice(KEY_TYPES), default="rsa", show_default=True)
@click.option("--bits", default=2048, show_default=True, help="Key size (RSA and DSA).")
@click.option(
    "--passphrase",
    envvar="IDNODE_KEY_PASSPHRASE",
    help="Encrypt the key file with this passphrase.",
)
def keygen(out: Path, key_type: str, bits: int, passphrase: str | None) -> None:
    """Write a new private key to OUT (PEM) and print its HS_PUBKEY value data as hex."""
    if out.exists():
        raise click.ClickException(f"{out} exists")
    key = generate_key(key_type, bits)
    pem = dump_private_key_pem(key, passphrase.encode() if passphrase else None)
    out.touch(mode=0o600)
    out.write_bytes(pem)
    click.echo(PublicKeyData.from_public_key(key.public_key()).to_bytes().hex())
