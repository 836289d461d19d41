"""Industry packs: templates and deterministic synthetic data for four industries.

=============== ============================================================================
pack            chain (each arrow a reference attribute, the upstream identifier first)
=============== ============================================================================
``pv``          polysilicon lot → ingot → wafer lot → cell lot → module
``medical``     UDI-DI product → production lot → serialised unit (GS1 Digital Link handles)
``electronics`` component lots → PCB design (BOM) → board assemblies (factory orders)
``vehicle``     parts → vehicle (VIN)
=============== ============================================================================

``PACKS[name].templates(prefixes)`` gives a pack's templates and
``PACKS[name].generate(prefixes, seed)`` its endless identifier stream; each pack's
``default_prefixes`` spreads the chain over several enterprise prefixes under ``88.118``.
"""

from __future__ import annotations

from typing import Any

from idnode.industry.packs import electronics, medical, pv, vehicle
from idnode.industry.packs.base import Identifier, Pack

__all__ = ["PACKS", "Identifier", "Pack"]

#: The packs by name.
PACKS: dict[str, Pack[Any]] = {
    pack.name: pack for pack in (pv.PACK, medical.PACK, electronics.PACK, vehicle.PACK)
}
