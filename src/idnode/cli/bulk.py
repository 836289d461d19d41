"""``idnode import`` and ``idnode db ...``: the database, in bulk."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from idnode.cli._common import (
    DEFAULT_CONFIG,
    T,
    main,
)
from idnode.errors import HandleError
from idnode.server.authz import Identity
from idnode.server.config import NodeConfig, parse_identity
from idnode.store import handle_key, is_database_url

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

    from idnode.importer import ImportOptions, ImportSummary, homed_check, run_import
    from idnode.industry.enforce import TemplateGuard
    from idnode.resolver import Resolver
    from idnode.server.authz import Authorizer
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

                # Templates and references on other nodes are read through the node's
                # roots (a recursive resolver), as the serving node would.
                guard = TemplateGuard(
                    store,
                    is_local=homed_check(homed),
                    resolver=Resolver(config.roots) if config.roots else None,
                    max_age=math.inf,
                    authorizer=Authorizer(store, config.server_admins),
                )
                return await run_import(
                    store,
                    file,
                    options,
                    fmt=fmt,
                    errors_path=errors_path,
                    checkpoint_path=checkpoint_path,
                    progress=report,
                    guard=guard,
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


@db.command("reindex")
@db_options
def db_reindex(config_path: Path, database: str | None) -> None:
    """Rebuild the write index (references for traces, unique attribute values) from the
    stored records: after `idnode db restore`, or on a mirror about to become a primary.
    Templates on other nodes are read through the configured roots."""
    from idnode.importer import homed_check
    from idnode.industry.enforce import TemplateGuard
    from idnode.industry.reindex import ReindexReport, reindex
    from idnode.resolver import Resolver
    from idnode.store import open_store

    config = NodeConfig.load(config_path) if database is None else None
    location = _db_location(config_path, database)

    async def run() -> ReindexReport:
        store = await open_store(location)
        try:
            homed = frozenset(handle_key(p) for p in await store.homed_prefixes())
            roots = config.roots if config is not None else ()
            guard = TemplateGuard(
                store,
                is_local=homed_check(homed),
                resolver=Resolver(roots) if roots else None,
                max_age=math.inf,
            )
            return await reindex(store, guard)
        finally:
            await store.close()

    report = _db_run(run())
    click.echo(
        f"{report.records} records read, {report.indexed} identifiers indexed"
        + (f", {report.skipped} skipped (template not readable)" if report.skipped else "")
    )
