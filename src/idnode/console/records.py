"""Reading identifiers for the console as the viewer may see them: the record (through the
same :class:`~idnode.industry.trace.NodeSource` as ``/api/trace``: the store with the data
permissions, else the node's resolver for other nodes' identifiers, public values only), its
template's labels, and its history from the audit log."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field

from idnode.errors import HandleError, HandleNotFound, InvalidAdmin
from idnode.industry.grants import GrantVisibility
from idnode.industry.history import TemplateHistory
from idnode.industry.layout import DATA_INDEX_START
from idnode.industry.model import AttributeType, Template, is_handle
from idnode.industry.records import history_from_values, is_template_record, template_link
from idnode.industry.trace import NodeSource, Tracer
from idnode.protocol.codes import AdminPermission
from idnode.protocol.values import HandleValue
from idnode.server.authz import Identity
from idnode.server.dispatch import Dispatcher
from idnode.store.txnlog import AuditEntry

__all__ = ["Reader", "RecordView", "Row", "label_of"]

#: Most nodes of a trace drawn by the console.
MAX_TRACE_NODES = 80


@dataclass(frozen=True)
class Row:
    index: int
    type: str
    label: str
    text: str
    handle_link: str | None = None
    url_link: str | None = None


@dataclass
class RecordView:
    handle: str
    local: bool
    attributes: list[Row] = field(default_factory=list)
    others: list[Row] = field(default_factory=list)
    template: Template | None = None
    template_handle: str | None = None
    history: list[AuditEntry] | None = None
    """None: not shown to this viewer."""
    is_admin: bool = False
    is_template: bool = False
    values: tuple[HandleValue, ...] = ()
    """The values shown (as read for this viewer)."""


def label_of(template: Template | None, key: str, lang: str) -> str:
    attr = None if template is None else template.attribute(key)
    if attr is None:
        return key
    if lang == "en" and attr.name_en:
        return attr.name_en
    return attr.name_zh


def template_name(template: Template, lang: str) -> str:
    return template.name_en if lang == "en" and template.name_en else template.name_zh


def _text(value: HandleValue) -> str:
    try:
        return value.data.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(value.data).decode()


def _row(value: HandleValue, template: Template | None, lang: str) -> Row:
    text = _text(value)
    attr = None if template is None else template.at_index(value.index)
    handle_link = url_link = None
    if attr is not None and attr.type is AttributeType.REFERENCE and is_handle(text):
        handle_link = text
    elif (value.type == "URL" or (attr is not None and attr.type in (AttributeType.URL,
          AttributeType.FILE))) and text.startswith(("https://", "http://")):  # fmt: skip
        url_link = text
    if value.type.upper() in ("HS_SECKEY", "HS_PUBKEY"):
        text = f"({len(value.data)} bytes)"
    return Row(value.index, value.type, label_of(template, value.type, lang), text,
               handle_link, url_link)  # fmt: skip


def iso(ms: int) -> str:
    date = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return date.strftime("%Y-%m-%d %H:%M:%S UTC")


class Reader:
    """Records, templates and traces of one node for one request (templates read once)."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.source = NodeSource(
            dispatcher.store,
            resolver=dispatcher.resolver,
            visibility=GrantVisibility(dispatcher.grants),
            owns=lambda handle: dispatcher.node.owns(handle),
        )
        self._templates: dict[tuple[str, int | None], Template | None] = {}

    async def fetch(self, handle: str, viewer: Identity | None) -> tuple[tuple[HandleValue, ...],
                                                                        bool]:  # fmt: skip
        """The values of ``handle`` ``viewer`` may see, and whether they are held here.
        Raises HandleError (not found, not served and no resolver, ...)."""
        fetched = await self.source.fetch(handle, viewer)
        return fetched.values, fetched.local

    async def template(self, handle: str, version: int | None = None) -> Template | None:
        """Version ``version`` (the newest when None or absent) of template ``handle`` as
        anyone may read it; None when it cannot be read."""
        key = (handle, version)
        if key not in self._templates:
            found: Template | None = None
            try:
                values, _local = await self.fetch(handle, None)
                history = history_from_values(handle, values)
                found = next((t for t in history.versions if t.version == version),
                             history.latest if history.versions else None)  # fmt: skip
            except (HandleError, ValueError):
                found = None
            self._templates[key] = found
        return self._templates[key]

    async def history(self, handle: str) -> TemplateHistory | None:
        try:
            values = await self.dispatcher.store.get_handle(handle)
            return None if values is None else history_from_values(handle, values)
        except (HandleError, ValueError):
            return None

    async def view(self, handle: str, viewer: Identity | None, lang: str) -> RecordView:
        values, local = await self.fetch(handle, viewer)
        self.dispatcher.counter.resolved(handle)  # an identifier page is a resolution
        view = RecordView(handle, local, is_template=is_template_record(values), values=values)
        link = template_link(values)
        if link is not None:
            view.template_handle = link[0]
            view.template = await self.template(*link)
        for value in sorted(values, key=lambda v: v.index):
            row = _row(value, view.template, lang)
            if value.index >= DATA_INDEX_START and link is not None:
                view.attributes.append(row)
            else:
                view.others.append(row)
        if local and viewer is not None:
            view.is_admin = await self.is_admin(handle, viewer)
            if view.is_admin:
                view.history = await self.dispatcher.store.audit(handle, 0, 200)
        return view

    async def is_admin(self, handle: str, viewer: Identity) -> bool:
        """Whether ``viewer`` administers ``handle`` (READ_VALUE through its HS_ADMIN, or a
        server administrator): it then sees the history, as ``/api/audit`` shows it to
        server administrators."""
        record = await self.dispatcher.store.get_handle(handle)
        if record is None:
            return False
        try:
            await self.dispatcher.authorizer.require(viewer, record, AdminPermission.READ_VALUE)
        except (InvalidAdmin, HandleError):
            return False
        return True

    def tracer(self) -> Tracer:
        return Tracer(self.source, max_nodes=MAX_TRACE_NODES)

    async def exists(self, handles: Sequence[str], viewer: Identity | None) -> str | None:
        """The first of ``handles`` that can be read (GS1 levels, most specific first)."""
        for handle in handles:
            try:
                await self.fetch(handle, viewer)
            except HandleNotFound:
                continue
            except HandleError:
                continue
            return handle
        return None
