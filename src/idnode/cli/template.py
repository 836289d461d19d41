"""``idnode template ...``: metadata templates, managed over the native protocol.

A template is an identifier whose record holds every version (docs/industry.md). Each
command reads that record, changes it with :class:`~idnode.industry.history.TemplateHistory`
and writes it back through the authenticated client, so the node checks the change as it
checks every write (:mod:`idnode.industry.enforce`): a change the version rules forbid is
refused there too. Commands that edit attributes open a new draft version when the newest
version is published or withdrawn; ``publish`` makes it current.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from idnode.bootstrap import HANDLE_ADMIN_PERMISSIONS
from idnode.cli._common import host_port, main, run_async, server_option
from idnode.cli.admin import authenticated
from idnode.client import HandleClient
from idnode.errors import HandleAlreadyExists, ValuesNotFound
from idnode.industry.history import TemplateHistory
from idnode.industry.layout import DEFINITION_TYPE, TEMPLATE_LINK_TYPE
from idnode.industry.model import InvalidTemplate, TemplateStatus
from idnode.industry.packs import PACKS
from idnode.industry.records import history_from_values, history_to_values
from idnode.industry.template_json import attribute_from_json, template_from_json, template_to_json
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.values import HandleValue

__all__ = ["template"]

_TYPES = (TEMPLATE_LINK_TYPE, DEFINITION_TYPE)


def _admin_value(client: HandleClient) -> HandleValue:
    """HS_ADMIN at 100 naming the identity the client authenticates as."""
    assert client.credentials is not None
    credentials = client.credentials
    data = AdminRecord(HANDLE_ADMIN_PERMISSIONS, credentials.handle, credentials.index).to_bytes()
    return HandleValue(100, "HS_ADMIN", data)


def _checked(make: Callable[[], TemplateHistory]) -> TemplateHistory:
    try:
        return make()
    except InvalidTemplate as exc:
        raise click.ClickException(exc.message) from exc


async def _read(client: HandleClient, handle: str) -> tuple[HandleValue, ...]:
    """The template values of ``handle``'s record."""
    try:
        return await client.resolve(handle, types=_TYPES)
    except ValuesNotFound as exc:
        raise click.ClickException(f"{handle} is not a template (no TEMPLATE values)") from exc


def _history(handle: str, values: tuple[HandleValue, ...]) -> TemplateHistory:
    return _checked(lambda: history_from_values(handle, values))


def _draft(history: TemplateHistory) -> TemplateHistory:
    """``history`` with a draft to edit: the newest version, or a new one opened."""
    if history.draft is not None:
        return history
    opened = _checked(history.new_version)
    click.echo(f"opened version {opened.latest.version} as a draft", err=True)
    return opened


def _update(
    client: HandleClient, handle: str, change: Callable[[TemplateHistory], TemplateHistory]
) -> None:
    """Read template ``handle``, apply ``change`` and write back the definitions it changed
    or added (one ADD_VALUE request with OVRW: the node checks the whole transition)."""

    async def go() -> TemplateHistory:
        stored = await _read(client, handle)
        new = _checked(lambda: change(_history(handle, stored)))
        by_index = {v.index: v for v in stored}
        changed = []
        for value in history_to_values(new):
            old = by_index.get(value.index)
            if old is None:
                changed.append(value)
            elif old.data != value.data:
                changed.append(old.with_changes(data=value.data))
        if changed:
            await client.add_values(handle, changed, overwrite=True)
        return new

    latest = run_async(go()).latest
    click.echo(f"{handle} version {latest.version}: {latest.status}")


@main.group()
def template() -> None:
    """Create, show, publish and edit metadata templates (docs/industry.md)."""


@template.command("create")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--handle", default=None, help="The template's handle, if FILE names none.")
@authenticated
def create(file: Path, handle: str | None, client: HandleClient) -> None:
    """Create a template from FILE, one version in the SNMS JSON shape, as draft version 1."""
    try:
        obj = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{file}: {exc}") from exc
    if isinstance(obj, dict):
        obj = {**obj, "version": obj.get("version", 1), "metaState": 0}
    try:
        draft = template_from_json(obj, handle=handle)
    except InvalidTemplate as exc:
        raise click.ClickException(f"{file}: {exc.message}") from exc
    if draft.version != 1:
        raise click.ClickException(f"{file}: a new template starts at version 1")
    history = _checked(lambda: TemplateHistory.start(draft))
    record = [*history_to_values(history), _admin_value(client)]
    created = run_async(client.create_handle(draft.id, record))
    click.echo(f"{created} version 1: draft")


@template.command("show")
@click.argument("handle")
@click.option("--version", "number", type=int, default=None, help="Show this version.")
@click.option("--all", "every", is_flag=True, help="Show every version (a JSON array).")
@server_option
def show(handle: str, number: int | None, every: bool, server: str) -> None:
    """Print template HANDLE as SNMS JSON: its newest version, unless told otherwise."""
    host, port = host_port(server)
    history = _history(handle, run_async(_read(HandleClient(host, port), handle)))
    shown: Any
    if every:
        shown = [template_to_json(t) for t in history.versions]
    elif number is not None:
        try:
            shown = template_to_json(history.version(number))
        except InvalidTemplate as exc:
            raise click.ClickException(exc.message) from exc
    else:
        shown = template_to_json(history.latest)
    click.echo(json.dumps(shown, ensure_ascii=False, indent=2))


@template.command("publish")
@click.argument("handle")
@authenticated
def publish(handle: str, client: HandleClient) -> None:
    """Publish the draft of HANDLE (or publish its withdrawn current version again)."""
    _update(client, handle, TemplateHistory.publish)


@template.command("withdraw")
@click.argument("handle")
@authenticated
def withdraw(handle: str, client: HandleClient) -> None:
    """Withdraw the current version of HANDLE: no new registrations against it."""
    _update(client, handle, TemplateHistory.withdraw)


@template.command("add-attribute")
@click.argument("handle")
@click.argument("attribute")
@authenticated
def add_attribute(handle: str, attribute: str, client: HandleClient) -> None:
    """Add ATTRIBUTE (an SNMS item as JSON text, or @FILE) to the draft of HANDLE; without
    ``idIndex`` it gets the next free index."""
    try:
        text = Path(attribute[1:]).read_text("utf-8") if attribute[:1] == "@" else attribute
        obj = json.loads(text)
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="ATTRIBUTE") from exc

    def change(history: TemplateHistory) -> TemplateHistory:
        history = _draft(history)
        return history.add_attribute(attribute_from_json(obj, index=history.latest.next_index()))

    _update(client, handle, change)


@template.command("disable-attribute")
@click.argument("handle")
@click.argument("key")
@authenticated
def disable_attribute(handle: str, key: str, client: HandleClient) -> None:
    """Disable attribute KEY of HANDLE in its draft: kept, but takes no new values."""
    _update(client, handle, lambda h: _draft(h).disable_attribute(key))


@template.command("enable-attribute")
@click.argument("handle")
@click.argument("key")
@authenticated
def enable_attribute(handle: str, key: str, client: HandleClient) -> None:
    """Enable attribute KEY of HANDLE again in its draft."""
    _update(client, handle, lambda h: _draft(h).enable_attribute(key))


@template.command("pack")
@click.argument("name", type=click.Choice(sorted(PACKS)))
@click.option("--prefix", required=True, help="The prefix the templates are created under.")
@authenticated
def pack(name: str, prefix: str, client: HandleClient) -> None:
    """Create the templates of industry pack NAME under PREFIX, published (existing ones are
    left as they are)."""
    chosen = PACKS[name]
    prefixes = dataclasses.replace(chosen.default_prefixes, templates=prefix)
    admin = _admin_value(client)

    async def go() -> list[tuple[str, bool]]:
        out = []
        # One native session: the identity is challenged once for all the templates.
        async with client.session() as session:
            for version in chosen.templates(prefixes):
                history = TemplateHistory.start(version)
                values = [*history_to_values(history), admin]
                try:
                    await session.create_handle(version.id, values)
                    out.append((version.id, True))
                except HandleAlreadyExists:
                    out.append((version.id, False))
        return out

    for handle, created in run_async(go()):
        state = TemplateStatus.PUBLISHED if created else "exists, left unchanged"
        click.echo(f"{handle} version 1: {state}")
