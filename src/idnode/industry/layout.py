"""Where template machinery lives in handle records (spec industrial-identifier-system §2.2,
§3.1, §3.3).

An **instance** (an identifier registered against a template)::

    index   type               data (UTF-8)
    < 1000  anything           not governed by the template (HS_ADMIN at 100, URL, DESC, ...)
    1001    TEMPLATE           handle of the template, e.g. ``88.118.8/META_PV_MODULE``
    1002    TEMPLATE.VERSION   the template version the record was validated against, e.g. ``2``
    2000+   <attribute key>    one value per attribute: ``index = idIndex``, ``type = idType``,
                               data = the value's text (SNMS ``{"format": "string", ...}``)

The spec reserves 1001 for the template link and starts data at 2000; the other indexes from
1000 to 1999 are kept free (a value there is refused). The SNMS docs show the link's data as
the SNMS template *version* string; here templates are identifiers (§1.2), so the link names
the template's handle and 1002 carries the version number.

A **template** is an identifier too; its record holds every version::

    1001         TEMPLATE             ``0.TYPE/DO.DOIPMETA`` (the DOIP type of templates)
    1010         TEMPLATE.GRANT       template-level grant (JSON, :mod:`idnode.industry.grants`)
    1011         TEMPLATE.CLASSGRANT  class grants of its instances' attributes (JSON)
    1100 + n     TEMPLATE.DEFINITION  version n (1 <= n <= 899) as SNMS-shaped JSON

Instances keep single-identifier ``GRANT`` values at 1900-1999 (data permissions, spec §2.3).
"""

from __future__ import annotations

__all__ = [
    "CLASS_GRANT_INDEX",
    "CLASS_GRANT_TYPE",
    "DATA_INDEX_START",
    "DEFINITION_INDEX_BASE",
    "DEFINITION_TYPE",
    "INSTANCE_GRANT_INDEXES",
    "INSTANCE_GRANT_TYPE",
    "MAX_VERSION",
    "RESERVED_INDEXES",
    "TEMPLATE_GRANT_INDEX",
    "TEMPLATE_GRANT_TYPE",
    "TEMPLATE_LINK_INDEX",
    "TEMPLATE_LINK_TYPE",
    "TEMPLATE_RECORD_TYPE",
    "TEMPLATE_VERSION_INDEX",
    "TEMPLATE_VERSION_TYPE",
    "is_reserved_type",
]

#: Index of the link from an instance to its template (SNMS: "1001 is a reserved index").
TEMPLATE_LINK_INDEX = 1001
#: Type of the template link value (SNMS ``TEMPLATE``).
TEMPLATE_LINK_TYPE = "TEMPLATE"
#: Index of the template version an instance was validated against.
TEMPLATE_VERSION_INDEX = 1002
#: Type of the template version value.
TEMPLATE_VERSION_TYPE = "TEMPLATE.VERSION"
#: First index of template attributes (SNMS ``idIndex`` / IDHub ``itemIndex`` start at 2000).
DATA_INDEX_START = 2000
#: Indexes between the Handle system's own values and the data: template machinery only.
RESERVED_INDEXES = range(1000, DATA_INDEX_START)
#: Data of the link value in a template's own record: the DOIP type of metadata templates.
TEMPLATE_RECORD_TYPE = "0.TYPE/DO.DOIPMETA"
#: Type of the values holding a template version's definition.
DEFINITION_TYPE = "TEMPLATE.DEFINITION"
#: Version n of a template is stored at ``DEFINITION_INDEX_BASE + n``.
DEFINITION_INDEX_BASE = 1100
#: Highest version number, so definitions stay below the data indexes.
MAX_VERSION = DATA_INDEX_START - 1 - DEFINITION_INDEX_BASE

#: Template record: who may see and use the template (data permissions, spec §2.3).
TEMPLATE_GRANT_INDEX = 1010
#: Type of the template-level grant value (JSON, :mod:`idnode.industry.grants`).
TEMPLATE_GRANT_TYPE = "TEMPLATE.GRANT"
#: Template record: the class grants, per attribute view/edit, of its instances.
CLASS_GRANT_INDEX = 1011
#: Type of the class grants value (JSON, :mod:`idnode.industry.grants`).
CLASS_GRANT_TYPE = "TEMPLATE.CLASSGRANT"
#: Instance record: single-identifier grants (reserved for them: not template violations).
INSTANCE_GRANT_INDEXES = range(1900, DATA_INDEX_START)
#: Type of a single-identifier grant value (JSON, :mod:`idnode.industry.grants`).
INSTANCE_GRANT_TYPE = "GRANT"


def is_reserved_type(value_type: str) -> bool:
    """Whether ``value_type`` belongs to the template machinery (``TEMPLATE``,
    ``TEMPLATE.*``, the SNMS ``TEMPLATE_ID``), so no attribute may use it."""
    upper = value_type.upper()
    return upper in (TEMPLATE_LINK_TYPE, "TEMPLATE_ID") or upper.startswith("TEMPLATE.")
