"""Administration round trips over TCP against a running node (RFC 3652 §3.3-§3.10).

Every operation is done as a server administrator with each kind of credential: the
bootstrap secret key (300:0.NA/88.118.8), the bootstrap RSA key (301:0.NA/88.118.8) and a
DSA key (300:88.118.8/USER-DSA, a member of the admin group). After each refused request
the stored record is checked to be unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from idnode.client import Credentials, HandleClient
from idnode.errors import (
    HandleAlreadyExists,
    HandleError,
    HandleNotFound,
    InvalidHandle,
    InvalidValue,
    ServerNotResponsible,
    ValueAlreadyExists,
    ValuesNotFound,
)
from idnode.protocol.values import HandleValue
from tests.server.nodeutil import (
    ALL_PERMISSIONS,
    PREFIX,
    PREFIX_HANDLE,
    RunningNode,
    Users,
    admin_value,
    text_value,
    vlist_value,
    without_timestamps,
)

T = TypeVar("T")

WHO = ["secret", "rsa", "dsa"]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def credentials(node: RunningNode, users: Users, who: str) -> Credentials:
    choices: dict[str, Credentials] = {
        "secret": node.secret_credentials,
        "rsa": node.key_credentials,
        "dsa": users.dsa,
    }
    return choices[who]


def admin_client(node: RunningNode, users: Users, who: str = "secret") -> HandleClient:
    return node.client(credentials(node, users, who), tcp=True)


def owner(creds: Credentials) -> HandleValue:
    return admin_value(100, ALL_PERMISSIONS, creds.handle, creds.index)


def resolve_all(node: RunningNode, handle: str) -> dict[int, tuple[str, bytes]]:
    values = run(node.client(node.secret_credentials, tcp=True).resolve(handle))
    return {v.index: (v.type, v.data) for v in values}


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("who", WHO)
def test_handle_round_trip(node: RunningNode, users: Users, who: str) -> None:
    creds = credentials(node, users, who)
    client = admin_client(node, users, who)
    handle = f"{PREFIX}/ADMIN-RT-{who}"
    values = [
        text_value(1, "URL", f"https://example.com/{who}"),
        text_value(2, "DESC", "first"),
        owner(creds),
    ]
    before = time.time()
    assert run(client.create_handle(handle, values)) == handle
    stored = node.get_handle(handle)
    assert without_timestamps(stored) == without_timestamps(tuple(values))
    assert stored is not None
    # The server sets the timestamps (the client sent 0).
    assert all(before - 5 <= v.timestamp <= time.time() + 5 for v in stored)

    run(client.add_values(handle, [text_value(3, "EMAIL", "a@example.com")]))
    assert resolve_all(node, handle)[3] == ("EMAIL", b"a@example.com")

    run(client.modify_values(handle, [text_value(2, "DESC", "second")]))
    assert resolve_all(node, handle)[2] == ("DESC", b"second")

    run(client.remove_values(handle, [3]))
    assert sorted(resolve_all(node, handle)) == [1, 2, 100]

    assert handle in run(client.list_handles(PREFIX))
    assert handle in run(client.list_handles(PREFIX_HANDLE))

    run(client.delete_handle(handle))
    assert node.get_handle(handle) is None
    with pytest.raises(HandleNotFound):
        run(node.client(tcp=True).resolve(handle))
    assert handle not in run(client.list_handles(PREFIX))


@pytest.mark.parametrize("who", WHO)
def test_derived_prefix_round_trip(node: RunningNode, users: Users, who: str) -> None:
    creds = credentials(node, users, who)
    client = admin_client(node, users, who)
    derived = f"{PREFIX_HANDLE}.{who.upper()}"
    assert run(client.create_handle(derived, [owner(creds)])) == derived
    assert derived in run(client.list_derived_prefixes(PREFIX))
    # A derived prefix handle is not a handle under the prefix.
    assert derived not in run(client.list_handles(PREFIX))
    run(client.delete_handle(derived))
    assert derived not in run(client.list_derived_prefixes(PREFIX))


@pytest.mark.parametrize("who", WHO)
def test_home_unhome_round_trip(node: RunningNode, users: Users, who: str) -> None:
    client = admin_client(node, users, who)
    prefix = f"77.{who}"
    anonymous = node.client(tcp=True)
    with pytest.raises(ServerNotResponsible):
        run(anonymous.resolve(f"{prefix}/X"))
    run(client.home_prefix(prefix))
    assert node.is_homed(prefix)
    with pytest.raises(HandleNotFound):
        run(anonymous.resolve(f"{prefix}/X"))
    # Handles can now be created under it.
    creds = credentials(node, users, who)
    run(client.create_handle(f"{prefix}/X", [text_value(1, "URL", "u"), owner(creds)]))
    assert resolve_all(node, f"{prefix}/X")[1] == ("URL", b"u")
    run(client.delete_handle(f"{prefix}/X"))
    run(client.unhome_prefix(f"0.NA/{prefix}"))
    assert not node.is_homed(prefix)
    with pytest.raises(ServerNotResponsible):
        run(anonymous.resolve(f"{prefix}/X"))


def test_list_handles_contains_demo_handles(node: RunningNode, users: Users) -> None:
    listed = run(admin_client(node, users).list_handles(PREFIX))
    for suffix in ("PV-2026-000123", "MD-UDI-06912345678902", "PCB-7731-A"):
        assert f"{PREFIX}/{suffix}" in listed
    assert listed == node.list_handles()


def test_list_handles_of_unhomed_prefix(node: RunningNode, users: Users) -> None:
    with pytest.raises(ServerNotResponsible):
        run(admin_client(node, users).list_handles("99.404"))


# -- overwrite semantics --------------------------------------------------------------------


def _fresh(node: RunningNode, name: str) -> str:
    handle = f"{PREFIX}/{name}"
    node.put_handle(
        handle,
        [
            text_value(1, "URL", "https://example.com/old"),
            text_value(2, "DESC", "old"),
            admin_value(100, ALL_PERMISSIONS, PREFIX_HANDLE, 200),
        ],
    )
    return handle


def test_create_existing_handle(node: RunningNode, users: Users) -> None:
    handle = _fresh(node, "OVRW-CREATE")
    before = node.get_handle(handle)
    client = admin_client(node, users)
    with pytest.raises(HandleAlreadyExists):
        run(client.create_handle(handle, [text_value(1, "URL", "https://example.com/new")]))
    assert node.get_handle(handle) == before
    # Handles match case-insensitively: the lower-case name exists too.
    with pytest.raises(HandleAlreadyExists):
        run(client.create_handle(handle.lower(), [text_value(1, "URL", "x")]))
    assert node.get_handle(handle) == before


def test_create_with_overwrite_replaces(node: RunningNode, users: Users) -> None:
    handle = _fresh(node, "OVRW-CREATE-2")
    client = admin_client(node, users)
    new = [text_value(3, "EMAIL", "new@example.com"), owner(node.secret_credentials)]
    assert run(client.create_handle(handle, new, overwrite=True)) == handle
    assert without_timestamps(node.get_handle(handle)) == without_timestamps(tuple(new))


def test_create_with_overwrite_of_absent_handle(node: RunningNode, users: Users) -> None:
    handle = f"{PREFIX}/OVRW-ABSENT"
    client = admin_client(node, users)
    run(client.create_handle(handle, [text_value(1, "URL", "u")], overwrite=True))
    assert sorted(resolve_all(node, handle)) == [1]


def test_add_existing_index(node: RunningNode, users: Users) -> None:
    handle = _fresh(node, "OVRW-ADD")
    before = node.get_handle(handle)
    client = admin_client(node, users)
    with pytest.raises(ValueAlreadyExists):
        run(client.add_values(handle, [text_value(2, "DESC", "new")]))
    # Atomic: a new index in the same request is not added either.
    with pytest.raises(ValueAlreadyExists):
        run(client.add_values(handle, [text_value(5, "EMAIL", "e"), text_value(2, "DESC", "n")]))
    assert node.get_handle(handle) == before


def test_add_with_overwrite_replaces(node: RunningNode, users: Users) -> None:
    handle = _fresh(node, "OVRW-ADD-2")
    client = admin_client(node, users)
    run(
        client.add_values(
            handle, [text_value(2, "DESC", "new"), text_value(5, "EMAIL", "e")], overwrite=True
        )
    )
    got = resolve_all(node, handle)
    assert got[2] == ("DESC", b"new")
    assert got[5] == ("EMAIL", b"e")
    assert got[1] == ("URL", b"https://example.com/old")


def test_modify_absent_index(node: RunningNode, users: Users) -> None:
    handle = _fresh(node, "MODIFY-ABSENT")
    before = node.get_handle(handle)
    client = admin_client(node, users)
    with pytest.raises(ValuesNotFound):
        run(client.modify_values(handle, [text_value(2, "DESC", "x"), text_value(9, "URL", "y")]))
    assert node.get_handle(handle) == before


def test_remove_absent_index(node: RunningNode, users: Users) -> None:
    handle = _fresh(node, "REMOVE-ABSENT")
    before = node.get_handle(handle)
    client = admin_client(node, users)
    with pytest.raises(ValuesNotFound):
        run(client.remove_values(handle, [2, 9]))
    assert node.get_handle(handle) == before


@pytest.mark.parametrize(
    "op",
    ["delete", "add", "modify", "remove"],
)
def test_operations_on_absent_handle(node: RunningNode, users: Users, op: str) -> None:
    client = admin_client(node, users)
    handle = f"{PREFIX}/NEVER-CREATED"
    calls = {
        "delete": lambda: client.delete_handle(handle),
        "add": lambda: client.add_values(handle, [text_value(1, "URL", "u")]),
        "modify": lambda: client.modify_values(handle, [text_value(1, "URL", "u")]),
        "remove": lambda: client.remove_values(handle, [1]),
    }
    with pytest.raises(HandleNotFound):
        run(calls[op]())
    assert node.get_handle(handle) is None


@pytest.mark.parametrize("op", ["create", "delete", "add", "modify", "remove"])
def test_operations_on_unhomed_prefix(node: RunningNode, users: Users, op: str) -> None:
    client = admin_client(node, users)
    handle = "99.405/X"
    calls = {
        "create": lambda: client.create_handle(handle, [text_value(1, "URL", "u")]),
        "delete": lambda: client.delete_handle(handle),
        "add": lambda: client.add_values(handle, [text_value(1, "URL", "u")]),
        "modify": lambda: client.modify_values(handle, [text_value(1, "URL", "u")]),
        "remove": lambda: client.remove_values(handle, [1]),
    }
    with pytest.raises(ServerNotResponsible):
        run(calls[op]())
    assert node.get_handle(handle) is None


# -- MINT ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "starts"),
    [
        pytest.param(PREFIX, f"{PREFIX}/", id="prefix"),
        pytest.param(f"{PREFIX}/", f"{PREFIX}/", id="prefix-slash"),
        pytest.param(f"{PREFIX}/ITEM", f"{PREFIX}/ITEM", id="stem"),
    ],
)
def test_mint_creates_new_handle(
    node: RunningNode, users: Users, requested: str, starts: str
) -> None:
    client = admin_client(node, users)
    values = [text_value(1, "URL", "https://example.com/minted"), owner(node.secret_credentials)]
    first = run(client.create_handle(requested, values, mint=True))
    second = run(client.create_handle(requested, values, mint=True))
    assert first != second
    for minted in (first, second):
        assert minted.startswith(starts)
        assert len(minted) > len(starts)
        assert minted.split("/", 1)[0] == PREFIX
        assert resolve_all(node, minted)[1] == ("URL", b"https://example.com/minted")
    assert node.get_handle(requested) is None


# -- invalid requests ------------------------------------------------------------------------

BAD_VALUE_SETS: list[Any] = [
    pytest.param([HandleValue(100, "HS_ADMIN", b"\x00")], id="malformed-hs-admin"),
    pytest.param(
        [HandleValue(100, "HS_ADMIN", b"\x0f\xff\x00\x00\x00\x03abc\x00\x00\x00\x01\xff")],
        id="hs-admin-trailing-bytes",
    ),
    pytest.param([HandleValue(200, "HS_VLIST", b"\x00\x00\x00\x05")], id="malformed-hs-vlist"),
    pytest.param([HandleValue(300, "HS_PUBKEY", b"\x00\x00")], id="malformed-hs-pubkey"),
    pytest.param([HandleValue(1, "HS_SITE", b"\x00\x01\x02")], id="malformed-hs-site"),
    pytest.param(
        [HandleValue(1, "URL", b"https://a"), HandleValue(1, "DESC", b"dup")],
        id="duplicate-index",
    ),
    pytest.param([HandleValue(0, "URL", b"https://zero")], id="index-0"),
    pytest.param(
        [HandleValue(1, "URL", b"https://ok"), HandleValue(0, "DESC", b"zero")],
        id="index-0-among-valid",
    ),
]


@pytest.mark.parametrize("values", BAD_VALUE_SETS)
def test_create_with_invalid_values(
    node: RunningNode, users: Users, values: list[HandleValue], request: pytest.FixtureRequest
) -> None:
    handle = f"{PREFIX}/INVALID-CREATE-{request.node.callspec.id}"
    client = admin_client(node, users)
    with pytest.raises(InvalidValue):
        run(client.create_handle(handle, values))
    assert node.get_handle(handle) is None


@pytest.mark.parametrize("values", BAD_VALUE_SETS)
def test_add_invalid_values(
    node: RunningNode, users: Users, values: list[HandleValue], request: pytest.FixtureRequest
) -> None:
    handle = f"{PREFIX}/INVALID-ADD-{request.node.callspec.id}"
    node.put_handle(handle, [text_value(2, "DESC", "only index 2 is taken")])
    before = node.get_handle(handle)
    client = admin_client(node, users)
    with pytest.raises(InvalidValue):
        run(client.add_values(handle, values))
    assert node.get_handle(handle) == before


def test_modify_to_malformed_admin(node: RunningNode, users: Users) -> None:
    handle = _fresh(node, "INVALID-MODIFY")
    before = node.get_handle(handle)
    client = admin_client(node, users)
    with pytest.raises(InvalidValue):
        run(client.modify_values(handle, [HandleValue(100, "HS_ADMIN", b"\x00\x01")]))
    with pytest.raises(InvalidValue):
        run(client.modify_values(handle, [text_value(2, "DESC", "a"), text_value(2, "DESC", "b")]))
    assert node.get_handle(handle) == before


def test_binary_data_of_unknown_type_is_kept(node: RunningNode, users: Users) -> None:
    handle = f"{PREFIX}/BINARY"
    blob = bytes(range(256))
    client = admin_client(node, users)
    run(client.create_handle(handle, [HandleValue(7, "APP.BLOB", blob)]))
    assert resolve_all(node, handle)[7] == ("APP.BLOB", blob)


@pytest.mark.parametrize(
    "handle",
    [
        pytest.param(f"{PREFIX}/", id="empty-suffix"),
        pytest.param(f"{PREFIX}/" + "A" * 2100, id="too-long"),
        pytest.param("/SUFFIX", id="empty-prefix"),
    ],
)
def test_create_invalid_handle(node: RunningNode, users: Users, handle: str) -> None:
    client = admin_client(node, users)
    with pytest.raises((InvalidHandle, ServerNotResponsible)) as info:
        run(client.create_handle(handle, [text_value(1, "URL", "u")]))
    if handle.startswith(PREFIX):
        assert isinstance(info.value, InvalidHandle)
    assert node.get_handle(handle) is None


def test_create_handle_without_prefix(node: RunningNode, users: Users) -> None:
    client = admin_client(node, users)
    with pytest.raises(HandleError) as info:
        run(client.create_handle("NOSLASH", [text_value(1, "URL", "u")]))
    assert isinstance(info.value, InvalidHandle | ServerNotResponsible)
    assert node.get_handle("NOSLASH") is None


def test_group_value_round_trip(node: RunningNode, users: Users) -> None:
    """HS_VLIST and HS_ADMIN values go through the server byte for byte."""
    handle = f"{PREFIX}/GROUPS"
    client = admin_client(node, users)
    values = [
        vlist_value(200, (PREFIX_HANDLE, 300), (f"{PREFIX}/USER-A", 300)),
        admin_value(100, 0x0ABC, f"{PREFIX}/USER-A", 300),
    ]
    run(client.create_handle(handle, values))
    got = resolve_all(node, handle)
    assert got[200] == ("HS_VLIST", values[0].data)
    assert got[100] == ("HS_ADMIN", values[1].data)
