"""Templates and instances as handle values, in the layout of :mod:`idnode.industry.layout`.

* :func:`history_to_values` / :func:`history_from_values`: a template's own record (the
  ``TEMPLATE`` marker at 1001 and one ``TEMPLATE.DEFINITION`` JSON value per version).
* :func:`link_values`, :func:`with_template_link`, :func:`template_link`: the 1001/1002
  values tying an instance to the template version it was validated against.
* :func:`values_from_fields`: an instance's values from ``{attribute key: text}`` (the IDHub
  ``attributes.content`` shape), with a per-field error for keys the template lacks.

Values are built with the default TTL and permissions and timestamp 0: the write path sets
timestamps (and may set permissions) as for any other value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from idnode.industry.codes import Code, FieldError
from idnode.industry.history import TemplateHistory
from idnode.industry.layout import (
    DEFINITION_INDEX_BASE,
    DEFINITION_TYPE,
    MAX_VERSION,
    TEMPLATE_LINK_INDEX,
    TEMPLATE_LINK_TYPE,
    TEMPLATE_RECORD_TYPE,
    TEMPLATE_VERSION_INDEX,
    TEMPLATE_VERSION_TYPE,
)
from idnode.industry.model import InvalidTemplate, Template
from idnode.industry.template_json import template_from_bytes, template_to_bytes
from idnode.protocol.values import HandleValue

__all__ = [
    "definition_index",
    "history_from_values",
    "history_to_values",
    "is_template_record",
    "link_values",
    "template_link",
    "values_from_fields",
    "with_template_link",
]


def definition_index(version: int) -> int:
    """Index of the value holding ``version`` in a template's record."""
    return DEFINITION_INDEX_BASE + version


# -- a template's own record ---------------------------------------------------------------------
def history_to_values(history: TemplateHistory) -> tuple[HandleValue, ...]:
    """The values of the template's record: the marker, then one definition per version."""
    marker = HandleValue(TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE, TEMPLATE_RECORD_TYPE.encode())
    definitions = (
        HandleValue(definition_index(t.version), DEFINITION_TYPE, template_to_bytes(t))
        for t in history.versions
    )
    return (marker, *definitions)


def is_template_record(values: Iterable[HandleValue]) -> bool:
    """Whether ``values`` are a template's record (1001 ``TEMPLATE`` = ``0.TYPE/DO.DOIPMETA``)."""
    return any(
        v.index == TEMPLATE_LINK_INDEX
        and v.type == TEMPLATE_LINK_TYPE
        and v.data == TEMPLATE_RECORD_TYPE.encode()
        for v in values
    )


def history_from_values(handle: str, values: Iterable[HandleValue]) -> TemplateHistory:
    """The history stored in the record of template ``handle``. Values other than the
    definitions are ignored; each definition must sit at its version's index and name
    ``handle``. Raises :class:`InvalidTemplate`."""
    values = tuple(values)
    if not is_template_record(values):
        raise InvalidTemplate(f"{handle!r} is not a template (no 1001 {TEMPLATE_RECORD_TYPE})")
    versions: list[Template] = []
    for value in sorted(values, key=lambda v: v.index):
        if value.type != DEFINITION_TYPE:
            continue
        template = template_from_bytes(value.data, handle=handle)
        if not 1 <= template.version <= MAX_VERSION or value.index != definition_index(
            template.version
        ):
            raise InvalidTemplate(
                f"version {template.version} of {handle!r} stored at index {value.index}"
            )
        versions.append(template)
    return TemplateHistory(tuple(versions))


# -- an instance's link to its template ----------------------------------------------------------
def link_values(template: Template) -> tuple[HandleValue, HandleValue]:
    """The 1001 ``TEMPLATE`` (template handle) and 1002 ``TEMPLATE.VERSION`` values."""
    return (
        HandleValue(TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE, template.id.encode()),
        HandleValue(TEMPLATE_VERSION_INDEX, TEMPLATE_VERSION_TYPE, str(template.version).encode()),
    )


def with_template_link(values: Iterable[HandleValue], template: Template) -> list[HandleValue]:
    """``values`` with their 1001/1002 values replaced by :func:`link_values` of ``template``
    (the write path calls this once it knows which version it validates against)."""
    kept = [v for v in values if v.index not in (TEMPLATE_LINK_INDEX, TEMPLATE_VERSION_INDEX)]
    return sorted((*kept, *link_values(template)), key=lambda v: v.index)


def template_link(values: Iterable[HandleValue]) -> tuple[str, int | None] | None:
    """``(template handle, version or None)`` named by an instance's values, or None when
    they have no 1001 ``TEMPLATE`` value (or its data is not UTF-8, or is the marker of a
    template's own record). A 1002 value that is not a decimal number reads as None."""
    handle: str | None = None
    version: int | None = None
    for v in values:
        if v.index == TEMPLATE_LINK_INDEX and v.type == TEMPLATE_LINK_TYPE:
            handle = _text(v.data)
        elif v.index == TEMPLATE_VERSION_INDEX and v.type == TEMPLATE_VERSION_TYPE:
            text = _text(v.data)
            version = int(text) if text and text.isascii() and text.isdigit() else None
    if handle is None or handle == TEMPLATE_RECORD_TYPE:
        return None
    return handle, version


def _text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


# -- an instance's values from a field map --------------------------------------------------------
def values_from_fields(
    template: Template,
    fields: Mapping[str, str],
    *,
    extra: Sequence[HandleValue] = (),
) -> tuple[list[HandleValue], list[FieldError]]:
    """The values of an instance of ``template`` with ``fields`` (attribute key, ignoring
    case → text): the link values, ``extra`` (e.g. a ``URL`` at index 1) and one value per
    field at its attribute's index and with its attribute's exact key as type. Keys the
    template lacks become ``unknown_attribute`` errors; nothing else is checked here (that is
    :func:`~idnode.industry.validate.validate`'s job)."""
    values = [*link_values(template), *extra]
    errors: list[FieldError] = []
    for key, text in fields.items():
        attr = template.attribute(key)
        if attr is None:
            errors.append(
                FieldError(key, Code.UNKNOWN_ATTRIBUTE, f"{template.id} has no attribute {key!r}")
            )
            continue
        values.append(HandleValue(attr.index, attr.key, text.encode("utf-8")))
    values.sort(key=lambda v: v.index)
    return values, errors
