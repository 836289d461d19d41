"""``idnode template ...`` against a running node: create, show, edit, publish, withdraw and
packs, each written through the authenticated native client (so the node's checks apply)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from idnode.bootstrap import HANDLE_ADMIN_PERMISSIONS
from idnode.cli import main
from idnode.errors import InvalidValue
from idnode.industry.codes import Code, parse_summary
from idnode.industry.history import TemplateHistory
from idnode.industry.packs import PACKS
from idnode.industry.records import history_from_values
from idnode.protocol.values import HandleValue
from tests.server.nodeutil import (
    PREFIX,
    PREFIX_HANDLE,
    RunningNode,
    admin_value,
    create_node_dir,
    no_internal_errors,
    running_node,
)

__all__ = ["no_internal_errors"]  # the autouse fixture applies to this module

TEMPLATE = f"{PREFIX}/META_CLI_BATTERY"
OWNER = admin_value(100, HANDLE_ADMIN_PERMISSIONS, PREFIX_HANDLE, 200)
DEFINITION = {
    "handle": TEMPLATE,
    "name": "电池包",
    "englishName": "Battery pack",
    "items": [
        {"idType": "packId", "name": "电池包编号", "required": True, "uniqueField": True},
        {"idType": "capacityKWh", "name": "容量", "metadata": {"type": "number", "accuracy": 1}},
    ],
}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    directory = tmp_path_factory.mktemp("cli-template")
    create_node_dir(directory)
    with running_node(directory) as running:
        yield running


def invoke(node: RunningNode, *args: str, auth: bool = True) -> Result:
    """``idnode template ARGS`` as the bootstrap admin (its secret)."""
    extra = ["--server", node.server]
    if auth:
        secret = str(node.directory / "admin-secret")
        extra += ["--as", f"300:{PREFIX_HANDLE}", "--secret-file", secret]
    return CliRunner().invoke(main, ["template", *args, *extra])


def history(node: RunningNode, handle: str = TEMPLATE) -> TemplateHistory:
    values = node.get_handle(handle)
    assert values is not None
    return history_from_values(handle, values)


def register(node: RunningNode, suffix: str, **fields: str) -> None:
    """Register an instance of the template over the native protocol."""
    values = [OWNER, HandleValue(1001, "TEMPLATE", TEMPLATE.encode())]
    indexes = {"packId": 2000, "capacityKWh": 2001, "chemistry": 2002}
    values += [HandleValue(indexes[key], key, data.encode()) for key, data in fields.items()]
    client = node.client(node.secret_credentials)
    asyncio.run(client.create_handle(f"{PREFIX}/{suffix}", values))


def refusal(node: RunningNode, suffix: str, **fields: str) -> list[tuple[str, Code]]:
    with pytest.raises(InvalidValue) as exc:
        register(node, suffix, **fields)
    return [(e.field, e.code) for e in parse_summary(exc.value.message)]


def test_the_lifecycle_of_a_template(node: RunningNode, tmp_path: Path) -> None:
    source = tmp_path / "battery.json"
    source.write_text(json.dumps(DEFINITION, ensure_ascii=False), encoding="utf-8")
    result = invoke(node, "create", str(source))
    assert result.exit_code == 0, result.output
    assert f"{TEMPLATE} version 1: draft" in result.output
    # A draft takes no registrations.
    assert refusal(node, "B-0", packId="P0") == [("TEMPLATE", Code.TEMPLATE_STATE)]

    item = json.dumps(
        {"idType": "chemistry", "name": "化学体系", "metadata": {"pattern": "LFP|NCM"}}
    )
    assert invoke(node, "add-attribute", TEMPLATE, item).exit_code == 0
    result = invoke(node, "publish", TEMPLATE)
    assert result.exit_code == 0, result.output
    assert "version 1: published" in result.output
    shown = invoke(node, "show", TEMPLATE, auth=False)
    assert shown.exit_code == 0, shown.output
    definition = json.loads(shown.output)
    assert definition["metaState"] == 1
    assert [i["idType"] for i in definition["items"]] == ["packId", "capacityKWh", "chemistry"]
    assert [i["idIndex"] for i in definition["items"]] == [2000, 2001, 2002]

    register(node, "B-1", packId="P1", capacityKWh="75.5", chemistry="LFP")
    assert refusal(node, "B-2", packId="P1") == [("packId", Code.UNIQUE)]
    assert refusal(node, "B-2", packId="P2", chemistry="lead") == [("chemistry", Code.PATTERN)]

    # Disabling opens version 2 as a draft; publishing it makes it current.
    result = invoke(node, "disable-attribute", TEMPLATE, "chemistry")
    assert result.exit_code == 0, result.output
    assert "opened version 2 as a draft" in result.output
    assert invoke(node, "publish", TEMPLATE).exit_code == 0
    assert [t.status for t in history(node).versions] == ["published", "published"]
    assert refusal(node, "B-2", packId="P2", chemistry="LFP") == [("chemistry", Code.DISABLED)]
    register(node, "B-2", packId="P2")
    stored = {v.index: v.data for v in node.get_handle(f"{PREFIX}/B-2") or ()}
    assert stored[1002] == b"2"
    assert invoke(node, "enable-attribute", TEMPLATE, "chemistry").exit_code == 0
    assert invoke(node, "publish", TEMPLATE).exit_code == 0
    register(node, "B-3", packId="P3", chemistry="NCM")

    every = json.loads(invoke(node, "show", TEMPLATE, "--all", auth=False).output)
    assert [v["version"] for v in every] == [1, 2, 3]
    second = json.loads(invoke(node, "show", TEMPLATE, "--version", "2", auth=False).output)
    assert second["items"][2]["state"] == 0

    # Withdrawn: no new registrations; publishing again lifts that.
    result = invoke(node, "withdraw", TEMPLATE)
    assert result.exit_code == 0, result.output
    assert "version 3: withdrawn" in result.output
    assert refusal(node, "B-4", packId="P4") == [("TEMPLATE", Code.TEMPLATE_STATE)]
    assert invoke(node, "publish", TEMPLATE).exit_code == 0
    register(node, "B-4", packId="P4")


def test_errors_are_reported(node: RunningNode, tmp_path: Path) -> None:
    missing = invoke(node, "show", f"{PREFIX}/META_NONE", auth=False)
    assert missing.exit_code == 1 and "response code 100" in missing.output
    not_template = invoke(node, "show", f"{PREFIX}/PV-2026-000123", auth=False)
    assert not_template.exit_code == 1 and "is not a template" in not_template.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**DEFINITION, "handle": f"{PREFIX}/META_BAD", "items": [{}]}))
    result = invoke(node, "create", str(bad))
    assert result.exit_code == 1 and "items[0].idType" in result.output
    later = tmp_path / "later.json"
    later.write_text(json.dumps({**DEFINITION, "handle": f"{PREFIX}/META_V2", "version": 2}))
    assert "starts at version 1" in invoke(node, "create", str(later)).output
    # Nothing to publish twice; an unknown attribute cannot be disabled.
    source = tmp_path / "twice.json"
    source.write_text(json.dumps({**DEFINITION, "handle": f"{PREFIX}/META_TWICE"}))
    assert invoke(node, "create", str(source)).exit_code == 0
    assert invoke(node, "publish", f"{PREFIX}/META_TWICE").exit_code == 0
    assert "nothing to publish" in invoke(node, "publish", f"{PREFIX}/META_TWICE").output
    result = invoke(node, "disable-attribute", f"{PREFIX}/META_TWICE", "nope")
    assert result.exit_code == 1 and "no attribute 'nope'" in result.output
    assert len(history(node, f"{PREFIX}/META_TWICE").versions) == 1  # nothing written
    # The node refuses a template identifier taken by something else.
    result = invoke(node, "create", str(source))
    assert result.exit_code == 1 and "response code 101" in result.output


def test_pack_templates(node: RunningNode) -> None:
    result = invoke(node, "pack", "vehicle", "--prefix", PREFIX)
    assert result.exit_code == 0, result.output
    templates = PACKS["vehicle"].templates(PACKS["vehicle"].default_prefixes)
    for template in templates:
        assert f"{template.id} version 1: published" in result.output
        assert history(node, template.id).latest == template
    again = invoke(node, "pack", "vehicle", "--prefix", PREFIX)
    assert again.exit_code == 0 and "exists, left unchanged" in again.output
    other = invoke(node, "pack", "medical", "--prefix", "88.118.9")
    assert other.exit_code == 1 and "response code 301" in other.output
