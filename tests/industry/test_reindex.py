"""`idnode db reindex`: the write index rebuilt from records that arrived without it (a
restored dump, a mirror), on a real SQLite database, through the CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner

from idnode.bootstrap import init_node
from idnode.cli import main
from idnode.industry.packs.base import Identifier
from idnode.industry.trace import references_in
from idnode.protocol.values import encode_record
from idnode.server.config import NodeConfig
from idnode.store import open_store
from tests.industry import pvchain


def test_reindex_rebuilds_references_from_records(tmp_path: Path) -> None:
    asyncio.run(init_node(tmp_path, "88.118.8", port=0))
    config = NodeConfig.load(tmp_path / "idnode.toml")
    chain = pvchain.chain(1)
    lot = chain[0]  # the polysilicon lot: everything downstream references it, indirectly

    async def load_without_index() -> list[str]:
        store = await open_store(config.database_location)
        try:
            await pvchain.load(store, [], with_templates=True)
            await store.create_records([(i.handle, encode_record(i.values)) for i in chain])
            return [h for h, _detail in await store.referrers(lot.handle, 100)]
        finally:
            await store.close()

    assert asyncio.run(load_without_index()) == []  # records only: no index entries yet

    result = CliRunner().invoke(main, ["db", "reindex", "--config", str(tmp_path / "idnode.toml")])
    assert result.exit_code == 0, result.output
    assert f"{len(chain)} identifiers indexed" in result.output

    async def referrers() -> tuple[list[str], list[str]]:
        store = await open_store(config.database_location)
        try:
            expected = sorted(i.handle for i in chain if lot.handle in {t for t, _ in _refs(i)})
            found = sorted(h for h, _detail in await store.referrers(lot.handle, 100))
            return found, expected
        finally:
            await store.close()

    found, expected = asyncio.run(referrers())
    assert found == expected and found  # the ingots made from the lot


def _refs(identifier: Identifier) -> list[tuple[str, str]]:
    return list(references_in(identifier.template, identifier.values))
