"""The industrial layer's pure core: metadata templates, their storage as handle values,
validation of identifiers against them, and industry packs (spec industrial-identifier-system
§2.2, §3.1, §3.3, §5). Nothing here touches sockets or storage; what validation needs to
know about other identifiers comes through :class:`Lookups`. The write paths' side, which
reads templates and other identifiers from the store or the hierarchy, is in
:mod:`idnode.industry.enforce` and :mod:`idnode.industry.directory` (not imported here).

Modules: :mod:`~idnode.industry.layout` (indexes and value types),
:mod:`~idnode.industry.model` (Template, Attribute), :mod:`~idnode.industry.template_json`
(SNMS-shaped JSON), :mod:`~idnode.industry.history` (versions and their rules),
:mod:`~idnode.industry.records` (templates and instances as handle values),
:mod:`~idnode.industry.validate` with :mod:`~idnode.industry.datatypes`,
:mod:`~idnode.industry.dates` and :mod:`~idnode.industry.checkdigits`, and
:mod:`idnode.industry.packs`.
"""

from __future__ import annotations

from idnode.industry.codes import Code, FieldError, TemplateViolation, parse_summary, summary
from idnode.industry.history import (
    TemplateHistory,
    check_successor,
    check_transition,
    merge_attributes,
)
from idnode.industry.layout import (
    DATA_INDEX_START,
    DEFINITION_TYPE,
    TEMPLATE_LINK_INDEX,
    TEMPLATE_LINK_TYPE,
    TEMPLATE_RECORD_TYPE,
    TEMPLATE_VERSION_INDEX,
    TEMPLATE_VERSION_TYPE,
)
from idnode.industry.model import (
    Attribute,
    AttributeType,
    Industry,
    InvalidTemplate,
    Template,
    TemplateStatus,
)
from idnode.industry.records import (
    history_from_values,
    history_to_values,
    is_template_record,
    link_values,
    template_link,
    values_from_fields,
    with_template_link,
)
from idnode.industry.template_json import (
    attribute_from_json,
    attribute_to_json,
    template_from_json,
    template_to_json,
)
from idnode.industry.validate import Lookups, Mode, check_values, validate

__all__ = [
    "DATA_INDEX_START",
    "DEFINITION_TYPE",
    "TEMPLATE_LINK_INDEX",
    "TEMPLATE_LINK_TYPE",
    "TEMPLATE_RECORD_TYPE",
    "TEMPLATE_VERSION_INDEX",
    "TEMPLATE_VERSION_TYPE",
    "Attribute",
    "AttributeType",
    "Code",
    "FieldError",
    "Industry",
    "InvalidTemplate",
    "Lookups",
    "Mode",
    "Template",
    "TemplateHistory",
    "TemplateStatus",
    "TemplateViolation",
    "attribute_from_json",
    "attribute_to_json",
    "check_successor",
    "check_transition",
    "check_values",
    "history_from_values",
    "history_to_values",
    "is_template_record",
    "link_values",
    "merge_attributes",
    "parse_summary",
    "summary",
    "template_from_json",
    "template_link",
    "template_to_json",
    "validate",
    "values_from_fields",
    "with_template_link",
]
