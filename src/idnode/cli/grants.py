"""``idnode grant ...``: data permissions (docs/industry.md, "Data permissions").

Each command reads the grant value it changes, changes it, and writes it back through the
authenticated native client with ADD_VALUE and OVRW, so the node lets only the record's
administrators (the template's creator, the identifier's owner) grant. Template and class
grants are refused here unless the template's current version is published (spec §2.3).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from idnode.cli._common import host_port, main, run_async, server_option
from idnode.cli.admin import authenticated
from idnode.client import HandleClient
from idnode.errors import HandleError, InvalidValue, ValuesNotFound
from idnode.industry.grants import (
    Access,
    ClassGrants,
    InstanceGrant,
    Scope,
    class_grants_from_value,
    class_grants_value,
    instance_grant_from_value,
    instance_grant_value,
    parse_identity,
    template_grant_from_value,
    template_grant_value,
)
from idnode.industry.layout import (
    CLASS_GRANT_INDEX,
    CLASS_GRANT_TYPE,
    DEFINITION_TYPE,
    INSTANCE_GRANT_INDEXES,
    INSTANCE_GRANT_TYPE,
    TEMPLATE_GRANT_INDEX,
    TEMPLATE_GRANT_TYPE,
    TEMPLATE_LINK_TYPE,
)
from idnode.industry.model import InvalidTemplate, TemplateStatus
from idnode.industry.records import history_from_values
from idnode.protocol.values import HandleValue
from idnode.server.authz import Identity

__all__ = ["grant"]

_GRANT_TYPES = (TEMPLATE_GRANT_TYPE, CLASS_GRANT_TYPE, INSTANCE_GRANT_TYPE)
_SCOPE = click.Choice([s.value for s in Scope])


def _identities(texts: tuple[str, ...]) -> list[Identity]:
    try:
        return [parse_identity(t) for t in texts]
    except InvalidValue as exc:
        raise click.BadParameter(exc.message) from exc


async def _values(client: HandleClient, handle: str, types: tuple[str, ...]) -> list[HandleValue]:
    try:
        return list(await client.resolve(handle, types=types))
    except ValuesNotFound:
        return []


def _write(
    client: HandleClient,
    handle: str,
    index: int,
    vtype: str,
    change: Callable[[HandleValue | None], HandleValue],
    *,
    published: bool,
) -> HandleValue:
    """Read ``handle``'s value at ``index`` (type ``vtype``), check the template is published
    when ``published``, and write back ``change(old)``; returns what was written."""

    async def go() -> HandleValue:
        if published:
            record = await _values(client, handle, (TEMPLATE_LINK_TYPE, DEFINITION_TYPE))
            try:
                current = history_from_values(handle, record).current
            except InvalidTemplate as exc:
                raise click.ClickException(exc.message) from exc
            if current is None or current.status is not TemplateStatus.PUBLISHED:
                raise click.ClickException(f"{handle} has no published version to grant on")
        stored = await _values(client, handle, (vtype,))
        old = next((v for v in stored if v.index == index), None)
        try:
            new = change(old)
        except InvalidValue as exc:
            raise click.ClickException(f"{handle}: {exc.message}") from exc
        await client.add_values(handle, [new], overwrite=True)
        return new

    try:
        written = run_async(go())
    except HandleError as exc:
        raise click.ClickException(f"{handle}: {exc.message or type(exc).__name__}") from exc
    click.echo(f"{handle} {written.index} {written.type} {written.data.decode('utf-8')}")
    return written


@main.group()
def grant() -> None:
    """Show and change data permissions: template, class and single-identifier grants."""


@grant.command("show")
@click.argument("handle")
@server_option
def show(handle: str, server: str) -> None:
    """Print the grant values of HANDLE (a template or an identifier) as JSON."""
    host, port = host_port(server)
    values = run_async(_values(HandleClient(host, port), handle, _GRANT_TYPES))
    shown: dict[str, Any] = {}
    for v in values:
        try:
            shown[f"{v.index}:{v.type}"] = json.loads(v.data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            shown[f"{v.index}:{v.type}"] = None
    click.echo(json.dumps(shown, ensure_ascii=False, indent=2))


_ADD = click.option("--add", "add", multiple=True, help="Grant to this index:handle.")
_REMOVE = click.option("--remove", "remove", multiple=True, help="Revoke from index:handle.")


@grant.command("template")
@click.argument("handle")
@click.option("--scope", type=_SCOPE, default=None, help="public, or specified (listed).")
@_ADD
@_REMOVE
@authenticated
def template_grant(
    handle: str,
    scope: str | None,
    add: tuple[str, ...],
    remove: tuple[str, ...],
    client: HandleClient,
) -> None:
    """Who may see and use template HANDLE (its TEMPLATE.GRANT at 1010)."""
    added, removed = _identities(add), _identities(remove)

    def change(old: HandleValue | None) -> HandleValue:
        access = template_grant_from_value(old) if old is not None else Access()
        access = access.with_users(added, removed)
        if scope is not None:
            access = Access(Scope(scope), access.users)
        return template_grant_value(access)

    _write(client, handle, TEMPLATE_GRANT_INDEX, TEMPLATE_GRANT_TYPE, change, published=True)


@grant.command("class")
@click.argument("handle")
@click.argument("attribute")
@click.option("--edit", is_flag=True, help="Change the edit grant (default: the view grant).")
@click.option("--scope", type=_SCOPE, default=None, help="View grants: public or specified.")
@click.option("--revoke", is_flag=True, help="Drop the attribute's view or edit entry.")
@_ADD
@_REMOVE
@authenticated
def class_grant(
    handle: str,
    attribute: str,
    edit: bool,
    scope: str | None,
    revoke: bool,
    add: tuple[str, ...],
    remove: tuple[str, ...],
    client: HandleClient,
) -> None:
    """Grant view or edit of ATTRIBUTE on every instance of template HANDLE (its
    TEMPLATE.CLASSGRANT at 1011)."""
    added, removed = _identities(add), _identities(remove)
    if edit and scope == Scope.PUBLIC.value:
        raise click.BadParameter("edit grants are always specified", param_hint="--scope")

    def change(old: HandleValue | None) -> HandleValue:
        grants = class_grants_from_value(old) if old is not None else ClassGrants()
        view, editors = dict(grants.view), dict(grants.edit)
        key = next((k for k in (*view, *editors) if k.casefold() == attribute.casefold()), None)
        key = key or attribute
        if edit:
            users = Access(Scope.SPECIFIED, editors.pop(key, ())).with_users(added, removed)
            if not revoke:
                editors[key] = users.users
        else:
            access = view.pop(key, Access()).with_users(added, removed)
            if scope is not None:
                access = Access(Scope(scope), access.users)
            if not revoke:
                view[key] = access
        return class_grants_value(ClassGrants(view, editors))

    _write(client, handle, CLASS_GRANT_INDEX, CLASS_GRANT_TYPE, change, published=True)


@grant.command("instance")
@click.argument("handle")
@click.option("--follow-class", is_flag=True, help="grantType 1: only the class grants apply.")
@click.option("--reader-scope", type=_SCOPE, default=None, help="public or specified readers.")
@click.option("--add-reader", multiple=True, help="May view every attribute.")
@click.option("--remove-reader", multiple=True)
@click.option("--add-writer", multiple=True, help="May edit every attribute.")
@click.option("--remove-writer", multiple=True)
@authenticated
def instance_grant(
    handle: str,
    follow_class: bool,
    reader_scope: str | None,
    add_reader: tuple[str, ...],
    remove_reader: tuple[str, ...],
    add_writer: tuple[str, ...],
    remove_writer: tuple[str, ...],
    client: HandleClient,
) -> None:
    """The single-identifier grant of HANDLE (its GRANT at 1900): grantType 2 (individual)
    unless ``--follow-class``."""
    readers = (_identities(add_reader), _identities(remove_reader))
    writers = (_identities(add_writer), _identities(remove_writer))

    def change(old: HandleValue | None) -> HandleValue:
        current = instance_grant_from_value(old) if old is not None else InstanceGrant()
        read = Access(current.reader_scope, current.readers).with_users(*readers)
        write = Access(Scope.SPECIFIED, current.writers).with_users(*writers)
        grant = InstanceGrant(
            1 if follow_class else 2,
            Scope(reader_scope) if reader_scope is not None else current.reader_scope,
            read.users,
            write.users,
        )
        return instance_grant_value(grant)

    index = INSTANCE_GRANT_INDEXES[0]
    _write(client, handle, index, INSTANCE_GRANT_TYPE, change, published=False)


@grant.command("view")
@click.argument("handle")
@authenticated
def view(handle: str, client: HandleClient) -> None:
    """Print the values of HANDLE that the --as identity may see (its grants applied), one
    ``index type data`` line each: what another enterprise's identity sees of a record."""
    try:
        values = run_async(client.resolve(handle))
    except ValuesNotFound:
        values = ()
    except HandleError as exc:
        raise click.ClickException(f"{handle}: {exc.message or type(exc).__name__}") from exc
    for v in values:
        if v.type.upper().startswith("HS_"):
            continue
        try:
            text = v.data.decode("utf-8")
        except UnicodeDecodeError:
            text = v.data.hex()
        click.echo(f"{v.index} {v.type} {text}")
