"""Templates are enforced on every write path of a real node: the same bad registrations sent
over the native protocol (create and modify), ``PUT /api/handles``, ``POST /api/batch`` and
``idnode import`` come back with the same field error and change nothing; valid ones pass
on each; pack data registers over the native protocol; a template on another node, found
through the resolver, is used to validate."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from idnode.bootstrap import HANDLE_ADMIN_PERMISSIONS, init_node
from idnode.cli import main as cli_main
from idnode.client import HandleClient, SecretKeyCredentials
from idnode.errors import InvalidValue
from idnode.industry.codes import Code, parse_summary
from idnode.industry.history import TemplateHistory
from idnode.industry.model import Attribute, AttributeType, Template, TemplateStatus
from idnode.industry.packs import PACKS
from idnode.industry.records import history_to_values
from idnode.jsonvalues import value_to_json
from idnode.protocol.codes import ResponseCode
from idnode.protocol.values import HandleValue
from tests.http.conftest import InProcess, basic
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

PART = f"{PREFIX}/META_W_PART"
LOT = f"{PREFIX}/META_W_LOT"
OLD = f"{PREFIX}/META_W_OLD"
LOT_1 = f"{PREFIX}/W-LOT-1"
TAKEN = "S-TAKEN"
OWNER = admin_value(100, HANDLE_ADMIN_PERMISSIONS, PREFIX_HANDLE, 200)


def lot_template(handle: str = LOT) -> Template:
    return Template(
        handle, 1, "批次", (Attribute("lotNo", 2000, "批次号", required=True),),
        TemplateStatus.PUBLISHED,
    )  # fmt: skip


def part_template() -> Template:
    return Template(
        PART,
        1,
        "零件",
        (
            Attribute("serial", 2000, "序列号", required=True, unique=True, max_length=16),
            Attribute("power", 2001, "功率", AttributeType.NUMBER, precision=1,
                      minimum=Decimal(0), maximum=Decimal(1000)),
            Attribute("made", 2002, "生产日期", AttributeType.DATE),
            Attribute("lot", 2003, "批次", AttributeType.REFERENCE, reference_template=LOT),
            Attribute("legacy", 2004, "旧字段", enabled=False),
            Attribute("note", 2005, "备注", max_length=10),
        ),
        TemplateStatus.PUBLISHED,
    )  # fmt: skip


def old_template() -> Template:
    return Template(OLD, 1, "旧模板", (Attribute("name", 2000, "名称"),), TemplateStatus.PUBLISHED)


def record(template: Template, fields: dict[str, str]) -> list[HandleValue]:
    """An instance of ``template``: HS_ADMIN, the 1001 link (no 1002: the node adds it) and
    one value per field (an unknown key at 2010)."""
    values = [OWNER, HandleValue(1001, "TEMPLATE", template.id.encode())]
    for key, data in fields.items():
        attr = template.attribute(key)
        values.append(HandleValue(attr.index if attr else 2010, key, data.encode()))
    return values


def good(serial: str) -> dict[str, str]:
    return {"serial": serial, "power": "500.5", "made": "2026-01-05", "lot": LOT_1, "note": "ok"}


@dataclasses.dataclass(frozen=True)
class Bad:
    fields: dict[str, str]
    field: str
    code: Code
    template: str = "part"  # or "old" (withdrawn)

    def values(self) -> list[HandleValue]:
        return record(old_template() if self.template == "old" else part_template(), self.fields)


def _with(**changes: str) -> dict[str, str]:
    return {**good("S-BAD"), **changes}


BAD: dict[str, Bad] = {
    "type": Bad(_with(power="watts"), "power", Code.TYPE),
    "precision": Bad(_with(power="1.25"), "power", Code.PRECISION),
    "date_format": Bad(_with(made="2026/01/05"), "made", Code.DATE_FORMAT),
    "disabled": Bad(_with(legacy="x"), "legacy", Code.DISABLED),
    "unknown_attribute": Bad(_with(colour="red"), "colour", Code.UNKNOWN_ATTRIBUTE),
    "required": Bad({k: v for k, v in _with().items() if k != "serial"}, "serial", Code.REQUIRED),
    "reference_missing": Bad(_with(lot=f"{PREFIX}/NO-SUCH-LOT"), "lot", Code.REFERENCE_MISSING),
    "reference_template": Bad(_with(lot=f"{PREFIX}/PV-2026-000123"), "lot",
                              Code.REFERENCE_TEMPLATE),
    "too_long": Bad(_with(note="x" * 11), "note", Code.TOO_LONG),
    "unique": Bad(_with(serial=TAKEN), "serial", Code.UNIQUE),
    "withdrawn": Bad({"name": "x"}, "TEMPLATE", Code.TEMPLATE_STATE, "old"),
}  # fmt: skip


def create_template(client: HandleClient, template: Template) -> None:
    history = TemplateHistory.start(template)
    asyncio.run(client.create_handle(template.id, [*history_to_values(history), OWNER]))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """A node with the lot, part and (withdrawn) old templates, lot W-LOT-1 and a part whose
    serial is S-TAKEN, all written over the native protocol."""
    directory = tmp_path_factory.mktemp("write-paths")
    create_node_dir(directory)
    with running_node(directory) as running:
        admin = running.client(running.secret_credentials)
        for template in (lot_template(), part_template(), old_template()):
            create_template(admin, template)
        withdrawn = TemplateHistory.start(old_template()).withdraw()
        asyncio.run(admin.add_values(OLD, history_to_values(withdrawn)[1:], overwrite=True))
        asyncio.run(admin.create_handle(LOT_1, record(lot_template(), {"lotNo": "L1"})))
        asyncio.run(admin.create_handle(f"{PREFIX}/W-TAKEN", record(part_template(), good(TAKEN))))
        yield running


@pytest.fixture(scope="module")
def admin(node: RunningNode) -> HandleClient:
    return node.client(node.secret_credentials)


@pytest.fixture(scope="module")
def api(node: RunningNode) -> InProcess:
    return InProcess(node)


@pytest.fixture(scope="module")
def http_auth(node: RunningNode) -> dict[str, str]:
    return basic(f"300:{PREFIX_HANDLE}", node.admin_secret)


def codes_of(errors: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in errors]


def assert_refused(expected: Bad, found: list[tuple[str, str]]) -> None:
    assert found == [(expected.field, str(expected.code))], found


# -- the matrix ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BAD))
def test_native_create(name: str, node: RunningNode, admin: HandleClient) -> None:
    handle = f"{PREFIX}/W-NC-{name}"
    with pytest.raises(InvalidValue) as exc:
        asyncio.run(admin.create_handle(handle, BAD[name].values()))
    assert_refused(BAD[name], [(e.field, str(e.code)) for e in parse_summary(exc.value.message)])
    assert node.get_handle(handle) is None


@pytest.mark.parametrize("name", [n for n in BAD if BAD[n].template == "part"])
def test_native_modify(name: str, node: RunningNode, admin: HandleClient) -> None:
    """A valid part, then the change turning it into the bad registration: modified values,
    added ones (attributes it lacked) or removed ones (a required attribute)."""
    handle = f"{PREFIX}/W-NM-{name}"
    serial = f"S-NM-{list(BAD).index(name)}"
    asyncio.run(admin.create_handle(handle, record(part_template(), good(serial))))
    before = node.get_handle(handle)
    assert before is not None
    own = BAD[name].fields | ({} if BAD[name].field == "serial" else {"serial": serial})
    bad = {v.index: v for v in record(part_template(), own)}
    have = {v.index: v for v in before}
    modified = [v for i, v in bad.items() if i in have and have[i].data != v.data and i >= 2000]
    added = [v for i, v in bad.items() if i not in have]
    removed = [i for i in have if i >= 2000 and i not in bad]
    assert len(modified) + len(added) + len(removed) == 1
    with pytest.raises(InvalidValue) as exc:
        if modified:
            asyncio.run(admin.modify_values(handle, modified))
        elif added:
            asyncio.run(admin.add_values(handle, added))
        else:
            asyncio.run(admin.remove_values(handle, removed))
    assert_refused(BAD[name], [(e.field, str(e.code)) for e in parse_summary(exc.value.message)])
    assert node.get_handle(handle) == before


@pytest.mark.parametrize("name", list(BAD))
def test_http_put(name: str, node: RunningNode, api: InProcess, http_auth: dict[str, str]) -> None:
    handle = f"{PREFIX}/W-PUT-{name}"
    body = {"values": [value_to_json(v) for v in BAD[name].values()]}
    r = api.put(f"/api/handles/{handle}", json=body, headers=http_auth)
    assert r.status_code == 400, r.text
    answer = r.json()
    assert set(answer) == {"responseCode", "handle", "message", "errors"}
    assert (answer["responseCode"], answer["handle"]) == (ResponseCode.INVALID_VALUE, handle)
    assert_refused(BAD[name], codes_of(answer["errors"]))
    assert [(e.field, str(e.code)) for e in parse_summary(answer["message"])] == codes_of(
        answer["errors"]
    )
    assert node.get_handle(handle) is None


def test_http_batch_reports_per_item(
    node: RunningNode, api: InProcess, http_auth: dict[str, str]
) -> None:
    items = [
        {"handle": f"{PREFIX}/W-B-{name}", "values": [value_to_json(v) for v in bad.values()]}
        for name, bad in BAD.items()
    ]
    good_handle = f"{PREFIX}/W-B-GOOD"
    items.append(
        {
            "handle": good_handle,
            "values": [value_to_json(v) for v in record(part_template(), good("S-B-GOOD"))],
        }
    )
    r = api.post("/api/batch", json={"handles": items}, headers=http_auth)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    for name, result in zip(BAD, results, strict=False):
        assert result["responseCode"] == ResponseCode.INVALID_VALUE, result
        assert_refused(BAD[name], codes_of(result["errors"]))
        assert node.get_handle(result["handle"]) is None
    assert results[-1] == {"handle": good_handle, "responseCode": 1}
    assert _version_of(node, good_handle) == b"1"


def test_idnode_import_reports_per_row(node: RunningNode, tmp_path: Path) -> None:
    rows = [
        {"handle": f"{PREFIX}/W-I-{name}", "values": [value_to_json(v) for v in bad.values()]}
        for name, bad in BAD.items()
    ]
    good_handle = f"{PREFIX}/W-I-GOOD"
    good_values = record(part_template(), good("S-I-GOOD"))[1:]  # the import adds HS_ADMIN
    rows.append({"handle": good_handle, "values": [value_to_json(v) for v in good_values]})
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    result = CliRunner().invoke(
        cli_main, ["import", str(source), "--config", str(node.config_path), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert f"{len(rows)} rows: 1 created, 0 already present, {len(BAD)} failed" in result.output
    report = [
        json.loads(line)
        for line in (tmp_path / "rows.jsonl.errors.jsonl").read_text("utf-8").splitlines()
    ]
    assert [entry["line"] for entry in report] == list(range(1, len(BAD) + 1))
    for name, entry in zip(BAD, report, strict=True):
        assert entry["handle"] == f"{PREFIX}/W-I-{name}"
        assert_refused(BAD[name], codes_of(entry["errors"]))
        assert node.get_handle(entry["handle"]) is None
    assert _version_of(node, good_handle) == b"1"
    (entry,) = node.call(node.node.store.audit(good_handle))
    assert (entry.actor, entry.origin) == (f"200:{PREFIX_HANDLE}", "import:rows.jsonl")
    assert node.call(node.node.store.references(good_handle)) == [(LOT_1, "lot")]


def test_idnode_import_csv_checks_rows_with_a_template_link(
    node: RunningNode, tmp_path: Path
) -> None:
    """In CSV the template link is a column; rows leaving it empty take the fast path."""
    source = tmp_path / "parts.csv"
    source.write_text(
        "handle,1:URL,1001:TEMPLATE,2000:serial,2001:power,2003:lot\n"
        f"{PREFIX}/W-CSV-1,https://e.example/1,{PART},S-CSV-1,12.5,{LOT_1}\n"
        f"{PREFIX}/W-CSV-2,https://e.example/2,{PART},S-CSV-2,12.55,{LOT_1}\n"
        f"{PREFIX}/W-CSV-3,https://e.example/3,,,,\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        cli_main, ["import", str(source), "--config", str(node.config_path), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "3 rows: 2 created, 0 already present, 1 failed" in result.output
    report = (tmp_path / "parts.csv.errors.jsonl").read_text("utf-8").splitlines()
    (entry,) = [json.loads(line) for line in report]
    assert (entry["line"], codes_of(entry["errors"])) == (3, [("power", "precision")])
    assert _version_of(node, f"{PREFIX}/W-CSV-1") == b"1"
    assert _version_of(node, f"{PREFIX}/W-CSV-3") is None
    assert node.get_handle(f"{PREFIX}/W-CSV-2") is None


def _version_of(node: RunningNode, handle: str) -> bytes | None:
    values = node.get_handle(handle)
    assert values is not None, handle
    return next((v.data for v in values if v.index == 1002), None)


# -- valid writes ----------------------------------------------------------------------------


def test_valid_writes_pass_on_each_path(
    node: RunningNode, admin: HandleClient, api: InProcess, http_auth: dict[str, str]
) -> None:
    native = f"{PREFIX}/W-OK-NATIVE"
    asyncio.run(admin.create_handle(native, record(part_template(), good("S-OK-1"))))
    assert _version_of(node, native) == b"1"
    asyncio.run(admin.modify_values(native, [HandleValue(2001, "power", b"42.5")]))
    asyncio.run(admin.add_values(native, [HandleValue(2, "DESC", b"not governed")]))
    asyncio.run(admin.remove_values(native, [2005]))  # note is optional
    assert {v.index: v.data for v in node.get_handle(native) or ()}[2001] == b"42.5"
    put = f"{PREFIX}/W-OK-PUT"
    body = {"values": [value_to_json(v) for v in record(part_template(), good("S-OK-2"))]}
    r = api.put(f"/api/handles/{put}", json=body, headers=http_auth)
    assert r.status_code == 200, r.text
    assert _version_of(node, put) == b"1"
    # The audit trail has who wrote and from where (the native client's UDP/TCP address,
    # the HTTP client of the ASGI scope).
    native_trail = node.call(node.node.store.audit(native))
    assert {e.actor for e in native_trail} == {f"300:{PREFIX_HANDLE}"}
    assert all((e.origin or "").startswith("127.0.0.1:") for e in native_trail)
    (put_entry,) = node.call(node.node.store.audit(put))
    assert (put_entry.actor, put_entry.origin) == (f"300:{PREFIX_HANDLE}", "127.0.0.1:40000")
    # The unique value is held by the identifier now: a second one cannot take it...
    with pytest.raises(InvalidValue, match="unique: serial at 2000"):
        asyncio.run(
            admin.create_handle(f"{PREFIX}/W-OK-3", record(part_template(), good("S-OK-2")))
        )
    # ...but the holder may be written again, keeping it (create with OVRW replaces it whole).
    r = api.put(f"/api/handles/{put}", json=body, headers=http_auth)
    assert r.status_code == 200, r.text
    # Deleting frees it.
    asyncio.run(admin.delete_handle(put))
    asyncio.run(admin.create_handle(f"{PREFIX}/W-OK-3", record(part_template(), good("S-OK-2"))))


def test_a_withdrawn_templates_identifiers_can_still_be_modified(
    node: RunningNode, admin: HandleClient
) -> None:
    handle = f"{PREFIX}/W-OLD-1"
    node.put_handle(  # registered while the template was published (straight into the store)
        handle,
        [*record(old_template(), {"name": "a"}), HandleValue(1002, "TEMPLATE.VERSION", b"1")],
    )
    asyncio.run(admin.modify_values(handle, [HandleValue(2000, "name", b"b")]))
    assert {v.index: v.data for v in node.get_handle(handle) or ()}[2000] == b"b"


def test_template_records_written_over_the_protocol_are_checked(
    node: RunningNode, admin: HandleClient
) -> None:
    """A published version is immutable whichever way it is written."""
    before = node.get_handle(PART)
    changed = part_template().replace(name_zh="改名")
    stored = history_to_values(TemplateHistory((changed,)))
    with pytest.raises(InvalidValue) as exc:
        asyncio.run(admin.modify_values(PART, stored[1:]))
    assert [e.code for e in parse_summary(exc.value.message)] == [Code.TEMPLATE_DEFINITION]
    with pytest.raises(InvalidValue, match="template_definition"):
        asyncio.run(admin.remove_values(PART, [1001]))
    assert node.get_handle(PART) == before


def test_a_template_on_another_node_without_a_resolver_is_refused(admin: HandleClient) -> None:
    values = [OWNER, HandleValue(1001, "TEMPLATE", b"99.9/META_ELSEWHERE")]
    with pytest.raises(InvalidValue) as exc:
        asyncio.run(admin.create_handle(f"{PREFIX}/W-ELSEWHERE", values))
    (error,) = parse_summary(exc.value.message)
    assert (error.field, error.code) == ("TEMPLATE", Code.TEMPLATE_UNAVAILABLE)
    assert "no resolver" in error.message


# -- pack data -------------------------------------------------------------------------------


def test_pack_data_registers_over_the_native_protocol(
    node: RunningNode, admin: HandleClient
) -> None:
    pack = PACKS["pv"]
    names = ("templates", "polysilicon", "wafer", "cell", "module")
    prefixes = dataclasses.replace(pack.default_prefixes, **dict.fromkeys(names, PREFIX))
    for template in pack.templates(prefixes):
        create_template(admin, template)
    identifiers = list(itertools.islice(pack.generate(prefixes, 7), 40))

    async def register() -> None:
        for identifier in identifiers:
            await admin.create_handle(identifier.handle, [*identifier.values, OWNER])

    asyncio.run(register())
    for identifier in identifiers:
        stored = node.get_handle(identifier.handle)
        assert stored is not None
        assert {v.index: v.data for v in stored} == {
            **{v.index: v.data for v in identifier.values},
            100: OWNER.data,
        }
    referenced = identifiers[-1].references()
    assert referenced
    users = node.call(node.node.store.referrers(referenced[0]))
    assert identifiers[-1].handle in [handle for handle, _detail in users]
    # A module breaking its template is refused like any other write.
    module = next(i for i in reversed(identifiers) if i.template.id.endswith("PV_MODULE"))
    broken = [v.with_changes(data=b"-5") if v.type == "powerRatingW" else v for v in module.values]
    with pytest.raises(InvalidValue) as exc:
        asyncio.run(admin.create_handle(f"{module.handle}-X", [*broken, OWNER]))
    found = {(e.field, e.code) for e in parse_summary(exc.value.message)}
    assert found == {("powerRatingW", Code.RANGE), ("serialNumber", Code.UNIQUE)}


# -- a template on another node ------------------------------------------------------------------


def test_a_template_on_another_node_is_read_through_the_resolver(tmp_path: Path) -> None:
    """Node A homes 88.118.8 and acts as the root; node B (99.1) has A as its root. An
    identifier on B linking A's template is validated against it, references to
    identifiers on A included."""
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    create_node_dir(a_dir)
    asyncio.run(init_node(b_dir, "99.1", port=0))
    remote = f"{PREFIX}/META_W_REMOTE"
    with running_node(a_dir) as a:
        a.call(a.node.store.home_prefix("0.NA"))  # A answers for every prefix handle: a root
        a_admin = a.client(a.secret_credentials)
        create_template(a_admin, lot_template())
        asyncio.run(a_admin.create_handle(LOT_1, record(lot_template(), {"lotNo": "L1"})))
        template = part_template().replace(id=remote)
        create_template(a_admin, template)
        config = b_dir / "idnode.toml"
        config.write_text(config.read_text() + f'roots = ["127.0.0.1:{a.port}"]\n')
        with running_node(b_dir) as b:
            secret = (b_dir / "admin-secret").read_bytes().strip()
            b_admin = b.client(SecretKeyCredentials("0.NA/99.1", 300, secret))
            owner = admin_value(100, HANDLE_ADMIN_PERMISSIONS, "0.NA/99.1", 200)

            def on_b(handle: str, fields: dict[str, str]) -> None:
                values = [owner, *record(template, fields)[1:]]
                asyncio.run(b_admin.create_handle(handle, values))

            on_b("99.1/PART-1", good("S-REMOTE-1"))
            assert _version_of(b, "99.1/PART-1") == b"1"
            refusals = {
                "power": ({**good("S-REMOTE-2"), "power": "1.25"}, Code.PRECISION),
                "lot": ({**good("S-REMOTE-3"), "lot": f"{PREFIX}/NO-SUCH-LOT"},
                        Code.REFERENCE_MISSING),
            }  # fmt: skip
            for field, (fields, code) in refusals.items():
                with pytest.raises(InvalidValue) as exc:
                    on_b("99.1/PART-BAD", fields)
                found = [(e.field, e.code) for e in parse_summary(exc.value.message)]
                assert found == [(field, code)]
            assert b.get_handle("99.1/PART-BAD") is None


# -- the use of a template (its template grant) ---------------------------------------------------

SHARED = f"{PREFIX}/META_W_SHARED"
OPEN = f"{PREFIX}/META_W_OPEN"
USER_B, USER_C = f"{PREFIX}/W-USER-B", f"{PREFIX}/W-USER-C"
USE_SECRET = b"use-secret"


@pytest.fixture(scope="module")
def users(node: RunningNode, admin: HandleClient) -> dict[str, HandleClient]:
    """Two identities that may create identifiers under the prefix but administer no template;
    the template SHARED grants its use to USER_C only, OPEN to everyone."""
    from idnode.industry.grants import Access, Scope, template_grant_value
    from idnode.protocol.codes import AdminPermission
    from idnode.server.authz import Identity
    from tests.server.nodeutil import seckey_value

    prefix_record = list(node.get_handle(PREFIX_HANDLE) or ())
    may_create = int(AdminPermission.ADD_HANDLE)
    for number, user in enumerate((USER_B, USER_C)):
        node.put_handle(user, [seckey_value(300, USE_SECRET)])
        prefix_record.append(admin_value(150 + number, may_create, user, 300))
    node.put_handle(PREFIX_HANDLE, prefix_record)
    for handle, access in (
        (SHARED, Access(Scope.SPECIFIED, (Identity(USER_C, 300),))),
        (OPEN, Access(Scope.PUBLIC)),
    ):
        history = TemplateHistory.start(lot_template(handle))
        values = [*history_to_values(history), OWNER, template_grant_value(access)]
        asyncio.run(admin.create_handle(handle, values))
    return {
        name: node.client(SecretKeyCredentials(user, 300, USE_SECRET))
        for name, user in (("b", USER_B), ("c", USER_C))
    }


def lot_of(template: str, lot_no: str) -> list[HandleValue]:
    return record(lot_template(template), {"lotNo": lot_no})


USE_REFUSED = [("TEMPLATE", "template_use")]


def test_template_use_native(node: RunningNode, users: dict[str, HandleClient]) -> None:
    with pytest.raises(InvalidValue) as exc:
        asyncio.run(users["b"].create_handle(f"{PREFIX}/W-USE-N1", lot_of(SHARED, "N1")))
    (error,) = parse_summary(exc.value.message)
    assert (error.field, error.code) == ("TEMPLATE", Code.TEMPLATE_USE)
    assert f"300:{USER_B}" in error.message
    assert node.get_handle(f"{PREFIX}/W-USE-N1") is None
    # the grantee, and anyone for a public template, may register
    asyncio.run(users["c"].create_handle(f"{PREFIX}/W-USE-N2", lot_of(SHARED, "N2")))
    asyncio.run(users["b"].create_handle(f"{PREFIX}/W-USE-N3", lot_of(OPEN, "N3")))
    assert _version_of(node, f"{PREFIX}/W-USE-N2") == b"1"
    assert _version_of(node, f"{PREFIX}/W-USE-N3") == b"1"


def test_template_use_http_put_and_batch(
    node: RunningNode, api: InProcess, users: dict[str, HandleClient]
) -> None:
    as_b = basic(f"300:{USER_B}", USE_SECRET)
    body = {"values": [value_to_json(v) for v in lot_of(SHARED, "P1")]}
    r = api.put(f"/api/handles/{PREFIX}/W-USE-P1", json=body, headers=as_b)
    assert r.status_code == 400, r.text
    assert codes_of(r.json()["errors"]) == USE_REFUSED
    assert node.get_handle(f"{PREFIX}/W-USE-P1") is None
    items = [
        {"handle": f"{PREFIX}/W-USE-B1", "values": [value_to_json(v) for v in lot_of(SHARED, "1")]},
        {"handle": f"{PREFIX}/W-USE-B2", "values": [value_to_json(v) for v in lot_of(OPEN, "2")]},
    ]
    r = api.post("/api/batch", json={"handles": items}, headers=as_b)
    assert r.status_code == 200, r.text
    first, second = r.json()["results"]
    assert first["responseCode"] == ResponseCode.INVALID_VALUE
    assert codes_of(first["errors"]) == USE_REFUSED
    assert second == {"handle": f"{PREFIX}/W-USE-B2", "responseCode": 1}
    assert node.get_handle(f"{PREFIX}/W-USE-B1") is None
    as_c = basic(f"300:{USER_C}", USE_SECRET)
    r = api.put(f"/api/handles/{PREFIX}/W-USE-P2", json=body, headers=as_c)
    assert r.status_code == 200, r.text


def test_template_use_import(
    node: RunningNode, users: dict[str, HandleClient], tmp_path: Path
) -> None:
    rows = [
        {"handle": f"{PREFIX}/W-USE-I{n}", "values": [value_to_json(v) for v in lot_of(t, str(n))]}
        for n, t in enumerate((SHARED, OPEN))
    ]
    source = tmp_path / "use.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    args = ["import", str(source), "--config", str(node.config_path), "--no-progress"]
    result = CliRunner().invoke(cli_main, [*args, "--admin", f"300:{USER_B}"])
    assert result.exit_code == 0, result.output
    assert "2 rows: 1 created, 0 already present, 1 failed" in result.output
    (entry,) = [json.loads(line) for line in (tmp_path / "use.jsonl.errors.jsonl").read_text(
        "utf-8").splitlines()]  # fmt: skip
    assert (entry["handle"], codes_of(entry["errors"])) == (f"{PREFIX}/W-USE-I0", USE_REFUSED)
    assert node.get_handle(f"{PREFIX}/W-USE-I0") is None


def test_template_use_snms(
    node: RunningNode, api: InProcess, users: dict[str, HandleClient]
) -> None:
    from idnode.industry.accounts import new_account

    account = new_account("w-user-b", "pw-b", "node_admin", f"300:{USER_B}")
    node.call(node.node.store.accounts().add_account(account))  # type: ignore[attr-defined]
    r = api.post("/identity/token", json={"username": "w-user-b", "password": "pw-b"})
    token = r.json()["data"]["token"]
    bearer = {"Authorization": f"Bearer {token}"}

    def register(handle: str, version: str) -> dict[str, Any]:
        body = {"handle": handle, "templateVersion": version,
                "value": [{"index": 2000, "type": "lotNo",
                           "data": {"format": "string", "value": "S1"}}]}  # fmt: skip
        answer: dict[str, Any] = api.post("/identityv2/data", json=body, headers=bearer).json()
        return answer

    refused = register(f"{PREFIX}/W-USE-S1", "W_SHARED")
    assert refused["status"] == -2, refused
    assert codes_of(refused["data"]) == USE_REFUSED
    assert node.get_handle(f"{PREFIX}/W-USE-S1") is None
    assert register(f"{PREFIX}/W-USE-S2", "W_OPEN")["status"] == 1
    batch = api.post("/identityv2/data/batchCreate", headers=bearer, json=[
        {"handle": f"{PREFIX}/W-USE-S3", "templateVersion": "W_SHARED",
         "value": [{"index": 2000, "type": "lotNo", "data": {"format": "string", "value": "3"}}]},
    ]).json()  # fmt: skip
    (item,) = batch["data"]
    assert codes_of(item["errors"]) == USE_REFUSED
