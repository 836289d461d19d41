"""What every industry pack shares: :class:`Identifier` (one generated record), :class:`Pack`
(templates plus a generator), and the helpers packs build templates and records with.

A pack's generator is an endless, lazy, deterministic stream: the same prefixes and seed give
the same identifiers in the same order, and an identifier only references identifiers
yielded before it, so every prefix of the stream (``itertools.islice``) is closed under
references and can be registered in stream order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

from idnode.industry.layout import DATA_INDEX_START
from idnode.industry.model import Attribute, AttributeType, Industry, Template, TemplateStatus
from idnode.industry.records import link_values
from idnode.protocol.values import HandleValue

__all__ = [
    "Counters",
    "Identifier",
    "Pack",
    "RecordMaker",
    "field",
    "published_template",
    "references",
]

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Identifier:
    """A generated identifier: its handle, the template version it conforms to, and its
    values (link at 1001/1002, data from 2000, maybe Handle-system values such as a URL)."""

    handle: str
    template: Template
    values: tuple[HandleValue, ...]

    def fields(self) -> dict[str, str]:
        """The data values as ``{attribute key: text}``."""
        return {v.type: v.data.decode("utf-8") for v in self.values if v.index >= DATA_INDEX_START}

    def references(self) -> list[str]:
        """Every handle its reference attributes name (the items of multi-valued ones)."""
        out: list[str] = []
        for key, text in self.fields().items():
            attr = self.template.attribute(key)
            if attr is None or attr.type is not AttributeType.REFERENCE or not text:
                continue
            out.extend(json.loads(text) if attr.multiple else [text])
        return out


@dataclass(frozen=True, slots=True)
class Pack(Generic[P]):
    """An industry pack: its templates and its synthetic data, both for given prefixes."""

    name: str
    name_zh: str
    name_en: str
    default_prefixes: P
    templates: Callable[[P], tuple[Template, ...]]
    """The pack's templates (published, version 1) for these prefixes."""
    generate: Callable[[P, int], Iterator[Identifier]]
    """``generate(prefixes, seed)``: the endless identifier stream."""


def field(key: str, zh: str, en: str, kind: str = "string", **options: Any) -> dict[str, Any]:
    """The constructor arguments of one attribute (its index comes from its position);
    ``minimum`` and ``maximum`` may be given as ints."""
    for bound in ("minimum", "maximum"):
        if bound in options:
            options[bound] = Decimal(str(options[bound]))
    return {"key": key, "name_zh": zh, "name_en": en, "type": AttributeType(kind), **options}


def published_template(
    handle: str,
    zh: str,
    en: str,
    industry: Industry,
    *fields: Mapping[str, Any],
    description: str = "",
    object_type: int = 2,
) -> Template:
    """Version 1 of a pack template, published, attributes numbered from 2000."""
    attributes = tuple(
        Attribute(index=DATA_INDEX_START + n, **spec) for n, spec in enumerate(fields)
    )
    return Template(
        id=handle,
        version=1,
        name_zh=zh,
        name_en=en,
        attributes=attributes,
        status=TemplateStatus.PUBLISHED,
        description=description,
        industry=industry,
        object_type=object_type,
    )


class RecordMaker:
    """Builds the values of instances of one template quickly (for millions of records)."""

    def __init__(self, template: Template) -> None:
        self.template = template
        self._link = link_values(template)
        self._indexes = {a.key: a.index for a in template.attributes}

    def __call__(
        self,
        handle: str,
        fields: Mapping[str, str],
        extra: Sequence[HandleValue] = (),
    ) -> Identifier:
        """An identifier with ``fields`` (exact attribute keys) and ``extra`` values."""
        data = [HandleValue(self._indexes[k], k, v.encode("utf-8")) for k, v in fields.items()]
        values = sorted((*self._link, *extra, *data), key=lambda v: v.index)
        return Identifier(handle, self.template, tuple(values))


def references(handles: Sequence[str]) -> str:
    """The text of a multi-valued reference attribute."""
    return json.dumps(list(handles), ensure_ascii=False, separators=(",", ":"))


class Counters:
    """Running numbers per kind of identifier, each starting at 1."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def next(self, kind: str) -> int:
        number = self._last.get(kind, 0) + 1
        self._last[kind] = number
        return number
