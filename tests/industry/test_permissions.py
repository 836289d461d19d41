"""Data permissions (spec §2.3) are enforced identically on every interface of a real node.

One table says which attributes each viewer sees on each identifier; the same question is
asked over native UDP (anonymous), native TCP (authenticated by challenge-response),
``GET /api/handles`` (anonymous and Basic), the proxy (JSON and the value page; anonymous by
design) and ``GET /api/trace`` (anonymous and Basic), and every answer must be the table's.
Edit grants are tried over native and ``PUT /api/handles``; granting an attribute to another
enterprise's identity with ``idnode grant`` changes its view on every interface.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from idnode.bootstrap import HANDLE_ADMIN_PERMISSIONS
from idnode.cli import main as cli_main
from idnode.client import SecretKeyCredentials
from idnode.errors import HandleError, InsufficientPermissions, InvalidAdmin
from idnode.industry.grants import (
    Access,
    ClassGrants,
    InstanceGrant,
    Scope,
    class_grants_value,
    instance_grant_value,
    template_grant_value,
)
from idnode.industry.history import TemplateHistory
from idnode.industry.model import Attribute, Template, TemplateStatus
from idnode.industry.records import history_to_values, link_values
from idnode.protocol.codes import Permission
from idnode.protocol.values import HandleValue
from idnode.server.authz import Identity
from tests.server.nodeutil import (
    PREFIX,
    RunningNode,
    admin_value,
    create_node_dir,
    no_internal_errors,
    running_node,
    seckey_value,
    vlist_value,
)

__all__ = ["no_internal_errors"]  # the autouse fixture applies to this module

OTHER_PREFIX = "88.118.9"
TEMPLATE = f"{PREFIX}/META_PERM"
INST_1 = f"{PREFIX}/PERM-1"  # has an individual grant for APP-I
INST_2 = f"{PREFIX}/PERM-2"
GROUP = Identity(f"{PREFIX}/GROUP-X", 200)
PRIVATE = int(Permission.ADMIN_READ | Permission.ADMIN_WRITE)

#: The attributes, by the kind of grant they have.
PUBLIC, SPECIFIED, UNGRANTED, EDITABLE = "serialNo", "unitCost", "secretRecipe", "remark"
ALL = frozenset({PUBLIC, SPECIFIED, UNGRANTED, EDITABLE})
ATTRIBUTE_INDEX = {PUBLIC: 2001, SPECIFIED: 2002, UNGRANTED: 2003, EDITABLE: 2004}

#: Viewers: name → identity handle (secret key at 300); None is anonymous.
VIEWERS: dict[str, str | None] = {
    "anonymous": None,
    "owner": f"{PREFIX}/OWNER",
    "granted": f"{PREFIX}/APP-V",
    "member": f"{PREFIX}/APP-M",
    "other": f"{OTHER_PREFIX}/APP-B",
    "template-only": f"{PREFIX}/APP-T",
    "individual": f"{PREFIX}/APP-I",
}


def secret_of(name: str) -> bytes:
    return f"secret-{name}".encode()


#: The table: (viewer, identifier) → the attributes it sees.
EXPECTED: dict[tuple[str, str], frozenset[str]] = {}
for _inst in (INST_1, INST_2):
    EXPECTED[("anonymous", _inst)] = frozenset({PUBLIC})
    EXPECTED[("owner", _inst)] = ALL
    EXPECTED[("granted", _inst)] = frozenset({PUBLIC, SPECIFIED, EDITABLE})  # edit ⇒ view
    EXPECTED[("member", _inst)] = frozenset({PUBLIC, SPECIFIED})
    EXPECTED[("other", _inst)] = frozenset({PUBLIC})
    EXPECTED[("template-only", _inst)] = frozenset({PUBLIC})
    EXPECTED[("individual", _inst)] = frozenset({PUBLIC})
EXPECTED[("individual", INST_1)] = ALL


def identity(name: str) -> Identity:
    handle = VIEWERS[name]
    assert handle is not None
    return Identity(handle, 300)


def template() -> Template:
    attrs = tuple(Attribute(key, index, key) for key, index in ATTRIBUTE_INDEX.items())
    return Template(TEMPLATE, 1, "权限", attrs, TemplateStatus.PUBLISHED)


def instance(handle: str, extra: list[HandleValue]) -> list[HandleValue]:
    owner = admin_value(100, HANDLE_ADMIN_PERMISSIONS, VIEWERS["owner"] or "", 300)
    data = [
        HandleValue(index, key, f"{key} of {handle}".encode(), permissions=PRIVATE)
        for key, index in ATTRIBUTE_INDEX.items()
    ]
    url = HandleValue(1, "URL", f"https://example.com/{handle}".encode())
    return [url, owner, *link_values(template()), *extra, *data]


def setup_world(node: RunningNode) -> None:
    node.call(node.node.store.home_prefix(OTHER_PREFIX))
    for name, handle in VIEWERS.items():
        if handle is not None:
            node.put_handle(handle, [seckey_value(300, secret_of(name))])
    node.put_handle(GROUP.handle, [vlist_value(200, (identity("member").handle, 300))])
    owner = admin_value(100, HANDLE_ADMIN_PERMISSIONS, identity("owner").handle, 300)
    classes = ClassGrants(
        view={
            PUBLIC: Access(Scope.PUBLIC),
            SPECIFIED: Access(Scope.SPECIFIED, (identity("granted"), GROUP)),
        },
        edit={EDITABLE: (identity("granted"),)},
    )
    history = TemplateHistory.start(template())
    node.put_handle(
        TEMPLATE,
        [
            *history_to_values(history),
            owner,
            template_grant_value(Access(Scope.SPECIFIED, (identity("template-only"),))),
            class_grants_value(classes),
        ],
    )
    individual = instance_grant_value(InstanceGrant(2, Scope.SPECIFIED, (identity("individual"),)))
    node.put_handle(INST_1, instance(INST_1, [individual]))
    node.put_handle(INST_2, instance(INST_2, []))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    directory: Path = tmp_path_factory.mktemp("perm-node")
    create_node_dir(directory)
    with running_node(directory) as running:
        setup_world(running)
        yield running


# -- asking ------------------------------------------------------------------------------------
def attributes(values: Any) -> frozenset[str]:
    """The attribute keys among values (HandleValues or /api/handles JSON values)."""
    out = set()
    for v in values:
        index, vtype = (v.index, v.type) if isinstance(v, HandleValue) else (v["index"], v["type"])
        if index >= 2000:
            out.add(vtype)
    return frozenset(out)


def credentials(name: str) -> SecretKeyCredentials | None:
    handle = VIEWERS[name]
    return None if handle is None else SecretKeyCredentials(handle, 300, secret_of(name))


def http_get(node: RunningNode, path: str, viewer: str, accept: str = "") -> tuple[int, bytes]:
    headers = {"Accept": accept} if accept else {}
    handle = VIEWERS[viewer]
    if handle is not None:
        user = quote(f"300:{handle}", safe="").encode() + b":" + secret_of(viewer)
        headers["Authorization"] = "Basic " + base64.b64encode(user).decode()
    url = f"http://{node.host}:{node.node.http_port}{path}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def http_put(node: RunningNode, path: str, viewer: str, body: Any) -> tuple[int, Any]:
    user = quote(str(identity(viewer)), safe="").encode() + b":" + secret_of(viewer)
    headers = {
        "Authorization": "Basic " + base64.b64encode(user).decode(),
        "Content-Type": "application/json",
    }
    url = f"http://{node.host}:{node.node.http_port}{path}"
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def native(node: RunningNode, viewer: str, handle: str) -> frozenset[str]:
    """Anonymous over UDP, everyone else over TCP answering the challenge."""
    creds = credentials(viewer)
    client = node.client(creds, tcp=creds is not None)
    return attributes(asyncio.run(client.resolve(handle)))


def api(node: RunningNode, viewer: str, handle: str) -> frozenset[str]:
    status, body = http_get(node, f"/api/handles/{handle}", viewer)
    assert status == 200, body
    return attributes(json.loads(body)["values"])


def proxy_json(node: RunningNode, viewer: str, handle: str) -> frozenset[str]:
    status, body = http_get(node, f"/{handle}", viewer, accept="application/json")
    assert status == 200, body
    return attributes(json.loads(body).get("values", []))


def proxy_page(node: RunningNode, viewer: str, handle: str) -> frozenset[str]:
    status, body = http_get(node, f"/{handle}?noredirect", viewer)
    assert status == 200, body
    page = body.decode("utf-8")
    return frozenset(key for key in ALL if f"{key} of {handle}" in page)


def trace(node: RunningNode, viewer: str, handle: str) -> frozenset[str]:
    status, body = http_get(node, f"/api/trace/{handle}?depth=0&direction=up", viewer)
    assert status == 200, body
    (root,) = json.loads(body)["nodes"]
    return attributes(root["values"])


#: Every interface, and whether it can carry an identity (the proxy is anonymous by design).
INTERFACES = {
    "native": (native, True),
    "api": (api, True),
    "proxy-json": (proxy_json, False),
    "proxy-page": (proxy_page, False),
    "trace": (trace, True),
}


def ask(node: RunningNode, interface: str, viewer: str, handle: str) -> frozenset[str]:
    """What ``viewer`` sees of ``handle`` through ``interface`` (an identity asking the proxy
    is anonymous there: the proxy never authenticates)."""
    function, authenticates = INTERFACES[interface]
    return function(node, viewer if authenticates else "anonymous", handle)


def expected(viewer: str, interface: str, handle: str) -> frozenset[str]:
    return EXPECTED[(viewer if INTERFACES[interface][1] else "anonymous", handle)]


# -- the matrix ----------------------------------------------------------------------------------
@pytest.mark.parametrize("interface", list(INTERFACES))
def test_every_interface_answers_the_table(node: RunningNode, interface: str) -> None:
    answers = {
        (viewer, handle): ask(node, interface, viewer, handle)
        for viewer in VIEWERS
        for handle in (INST_1, INST_2)
    }
    wanted = {key: expected(key[0], interface, key[1]) for key in answers}
    assert answers == wanted


def test_hidden_values_asked_for_alone_are_an_empty_answer(node: RunningNode) -> None:
    status, body = http_get(node, f"/api/handles/{INST_2}?index=2003", "granted")
    assert status == 200
    assert json.loads(body) == {"responseCode": 200, "handle": INST_2, "values": []}
    status, body = http_get(node, f"/api/handles/{INST_2}?type={SPECIFIED}", "anonymous")
    assert (status, json.loads(body)["responseCode"]) == (200, 200)
    status, body = http_get(node, f"/api/handles/{INST_2}?type={SPECIFIED}", "member")
    assert attributes(json.loads(body)["values"]) == {SPECIFIED}


def test_the_template_grant_shows_the_template_to_its_users_only(node: RunningNode) -> None:
    for viewer, sees in (("anonymous", False), ("template-only", True), ("owner", True)):
        status, body = http_get(node, f"/api/handles/{TEMPLATE}", viewer)
        assert status == 200, body
        types = {v["type"] for v in json.loads(body).get("values", [])}
        assert ("TEMPLATE.DEFINITION" in types) is sees, viewer


# -- edit grants -------------------------------------------------------------------------------
def stored(node: RunningNode, handle: str, index: int) -> bytes:
    record = node.get_handle(handle)
    assert record is not None
    return next(v.data for v in record if v.index == index)


def test_edit_grants_over_native(node: RunningNode) -> None:
    client = node.client(credentials("granted"), tcp=True)
    editable = HandleValue(2004, EDITABLE, b"edited natively", permissions=PRIVATE)
    asyncio.run(client.modify_values(INST_2, [editable]))
    assert stored(node, INST_2, 2004) == b"edited natively"
    before = stored(node, INST_2, 2002)
    for value in (
        HandleValue(2002, SPECIFIED, b"view-only attribute", permissions=PRIVATE),
        HandleValue(1, "URL", b"https://evil.example/"),
        HandleValue(2004, SPECIFIED, b"type swapped", permissions=PRIVATE),
    ):
        with pytest.raises((InvalidAdmin, InsufficientPermissions)):
            asyncio.run(client.modify_values(INST_2, [value]))
    assert stored(node, INST_2, 2002) == before
    assert stored(node, INST_2, 1) == f"https://example.com/{INST_2}".encode()
    # a reader is not a writer, and a member of a view group cannot edit
    reader = node.client(credentials("member"), tcp=True)
    with pytest.raises(HandleError):
        asyncio.run(reader.modify_values(INST_2, [editable.with_changes(data=b"no")]))
    assert stored(node, INST_2, 2004) == b"edited natively"


def test_edit_grants_over_http_put(node: RunningNode) -> None:
    value = {"index": 2004, "type": EDITABLE, "data": "edited over http"}
    status, body = http_put(
        node, f"/api/handles/{INST_1}?index=2004", "granted", {"values": [value]}
    )
    assert status == 200, body
    assert stored(node, INST_1, 2004) == b"edited over http"
    before = stored(node, INST_1, 2003)
    value = {"index": 2003, "type": UNGRANTED, "data": "not yours"}
    status, body = http_put(
        node, f"/api/handles/{INST_1}?index=2003", "granted", {"values": [value]}
    )
    assert status in (401, 403), body
    assert stored(node, INST_1, 2003) == before


# -- granting ------------------------------------------------------------------------------------
def test_granting_the_other_enterprise_changes_its_view_everywhere(node: RunningNode) -> None:
    for interface in INTERFACES:
        assert ask(node, interface, "other", INST_2) == {PUBLIC}
    owner = credentials("owner")
    assert owner is not None
    result = CliRunner().invoke(
        cli_main,
        [
            "grant", "class", TEMPLATE, SPECIFIED, "--add", str(identity("other")),
            "--server", node.server, "--as", f"300:{owner.handle}",
            "--secret-file", str(write_secret(node, "owner")),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for interface, (_function, authenticates) in INTERFACES.items():
        wanted = {PUBLIC, SPECIFIED} if authenticates else {PUBLIC}
        assert ask(node, interface, "other", INST_2) == wanted, interface
    # an identity that is not the template's admin cannot grant
    result = CliRunner().invoke(
        cli_main,
        [
            "grant", "class", TEMPLATE, UNGRANTED, "--add", str(identity("other")),
            "--server", node.server, "--as", str(identity("granted")),
            "--secret-file", str(write_secret(node, "granted")),
        ],
    )  # fmt: skip
    assert result.exit_code != 0
    assert ask(node, "api", "other", INST_2) == {PUBLIC, SPECIFIED}


def write_secret(node: RunningNode, name: str) -> Path:
    path = node.directory / f"{name}.secret"
    path.write_bytes(secret_of(name))
    return path


def test_grant_show_prints_the_grants(node: RunningNode) -> None:
    result = CliRunner().invoke(cli_main, ["grant", "show", INST_1, "--server", node.server])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["1900:GRANT"]["readers"] == [str(identity("individual"))]
