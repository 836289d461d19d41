"""pyhandle (PyPI, unmodified) against a live idnode over HTTPS, as against Handle.Net.

The node (``https_node``) serves its JSON API over TLS with a self-signed certificate for
127.0.0.1; pyhandle trusts it through ``HTTPS_verify=<certificate file>``. The client logs in as
the bootstrap admin ``300:0.NA/88.118.8`` (Basic auth, the username percent-encoded by
pyhandle). Every public method of ``RESTHandleClient`` is driven (the inventory test fails when
pyhandle gains one that no test drives), every write is read back over the **native** protocol
(:meth:`HttpsNode.native`), and ``traffic`` pins what pyhandle actually sent (spec
``handle-protocol.md`` §6). Tests named ``test_quirk_*`` pin a pyhandle quirk (spec §6.4,
§6.5) for which the node must answer as the reference server does, or a pyhandle 1.5.0 bug
that fails the same way against any server.

Handle names are ``88.118.8/PYH-...``: a numeric prefix, since pyhandle's
``lstrip('hdl:').lstrip('doi:')`` eats any leading h, d, l, o, i or ':' (spec §6.5).
"""

from __future__ import annotations

import base64
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from pyhandle.client.resthandleclient import RESTHandleClient
from pyhandle.clientcredentials import PIDClientCredentials
from pyhandle.handleclient import PyHandleClient
from pyhandle.handleexceptions import (
    BrokenHandleRecordException,
    GenericHandleError,
    HandleAlreadyExistsException,
    HandleAuthenticationError,
    HandleNotFoundException,
    HandleSyntaxError,
    IllegalOperationException,
    ReverseLookupException,
)
from pyhandle.pyhandleclient import HandleClient as AbstractHandleClient

from idnode.bootstrap import HANDLE_ADMIN_PERMISSIONS
from idnode.protocol.codes import ResponseCode
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.values import DEFAULT_TTL, HandleValue
from tests.interop.conftest import PREFIX, PREFIX_HANDLE, HttpsNode, Traffic
from tests.server.nodeutil import admin_value, seckey_value

PV = f"{PREFIX}/PV-2026-000123"  # a demo handle: URL, DESC, EMAIL, BATCH, private INTERNAL.COST
#: The HS_ADMIN pyhandle writes without a ``handleowner``: 200:0.NA/<prefix>, 011111110011.
PYHANDLE_ADMIN = AdminRecord(0b011111110011, PREFIX_HANDLE, 200)
#: Value permissions the server applies when a PUT gives none (admin r/w, public read).
DEFAULT_PERMISSIONS = 0b1110

#: RESTHandleClient methods inherited from pyhandle's abstract ``HandleClient`` that the REST
#: client does not implement (they raise NotImplementedError without any traffic).
NOT_IMPLEMENTED = frozenset(
    {
        "add_admin_entry",
        "authenticate_pubkey",
        "authenticate_seckey",
        "convert_hs_admin_values_to_hex",
        "create_batch_file",
        "get_query_from_user",
        "list_all_handles",
        "search_handle_multiple_keys",
    }
)


def handle(name: str) -> str:
    return f"{PREFIX}/PYH-{name}"


def by_index(values: tuple[HandleValue, ...] | None) -> dict[int, HandleValue]:
    assert values is not None, "the handle does not exist"
    return {v.index: v for v in values}


def texts(values: tuple[HandleValue, ...] | None) -> dict[int, tuple[str, str]]:
    """``{index: (type, data as text)}`` of every value but HS_ADMIN."""
    return {
        i: (v.type, v.data.decode()) for i, v in by_index(values).items() if v.type != "HS_ADMIN"
    }


def admin_of(values: tuple[HandleValue, ...] | None) -> dict[int, AdminRecord]:
    return {
        i: AdminRecord.from_bytes(v.data)
        for i, v in by_index(values).items()
        if v.type == "HS_ADMIN"
    }


def put_values(traffic: Traffic) -> list[dict[str, Any]]:
    """The ``values`` of the last PUT body pyhandle sent."""
    body = traffic.last("PUT").body
    assert isinstance(body, str)
    values: list[dict[str, Any]] = json.loads(body)["values"]
    return values


def make_client(node: HttpsNode, **config: Any) -> Any:
    """A RESTHandleClient as the bootstrap admin, trusting the node's certificate."""
    config.setdefault("HTTPS_verify", str(node.cert))
    return RESTHandleClient.instantiate_with_username_and_password(
        node.url, node.username, node.password, **config
    )


@pytest.fixture
def client(https_node: HttpsNode, traffic: Traffic) -> Any:
    made = make_client(https_node)
    traffic.clear()
    return made


@pytest.fixture
def reader(https_node: HttpsNode, traffic: Traffic) -> Any:
    return RESTHandleClient.instantiate_for_read_access(
        handle_server_url=https_node.url, HTTPS_verify=str(https_node.cert)
    )


# -- inventory ------------------------------------------------------------------------------


def test_every_public_method_is_driven() -> None:
    """The public methods of RESTHandleClient, enumerated: each one is either driven by the
    tests named in COVERED or one of the NOT_IMPLEMENTED stubs. A method a later pyhandle adds
    fails here until a test drives it."""
    public = {
        name
        for name, member in inspect.getmembers(RESTHandleClient)
        if not name.startswith("_") and callable(member)
    }
    assert public == set(COVERED) | NOT_IMPLEMENTED
    assert not set(COVERED) & NOT_IMPLEMENTED
    for name, tests in COVERED.items():
        assert tests, name
        for test in tests:
            assert name in inspect.getsource(test), f"{test.__name__} does not call {name}"


def test_unimplemented_methods_raise_without_traffic(reader: Any, traffic: Traffic) -> None:
    for name in sorted(NOT_IMPLEMENTED):
        assert name not in vars(RESTHandleClient), f"{name} is implemented now: drive it"
        assert getattr(RESTHandleClient, name) is getattr(AbstractHandleClient, name)
        method = getattr(reader, name)
        required = [
            p
            for p in inspect.signature(method).parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        with pytest.raises(NotImplementedError):
            method(*["x"] * len(required))
    assert traffic.exchanges == []


# -- construction, credentials, TLS ---------------------------------------------------------


def test_instantiate_with_username_and_password(https_node: HttpsNode, traffic: Traffic) -> None:
    """Construction GETs the admin handle 0.NA/<prefix> anonymously (spec §6.1) and needs 200,
    responseCode 1 and the handle echoed exactly; writes then carry Basic credentials with the
    username percent-encoded except its '/' (spec §6.2)."""
    client = RESTHandleClient.instantiate_with_username_and_password(
        https_node.url, https_node.username, https_node.password, HTTPS_verify=str(https_node.cert)
    )
    assert traffic.requests == [("GET", f"/api/handles/{PREFIX_HANDLE}")]
    first = traffic.exchanges[0]
    assert first.status == 200 and first.headers == {"Accept": "application/json"}
    name = handle("LOGIN")
    assert client.register_handle(name, "https://example.com/login") == name
    expected = base64.b64encode(f"300%3A{PREFIX_HANDLE}:{https_node.password}".encode()).decode()
    put = traffic.last("PUT")
    assert put.headers == {"Authorization": f"Basic {expected}", "Content-Type": "application/json"}
    assert texts(https_node.native(name)) == {1: ("URL", "https://example.com/login")}


# PIDClientCredentials.load_from_JSON reads the file with open(...).read() and never closes it.
@pytest.mark.filterwarnings(
    r"ignore:unclosed file <_io.TextIOWrapper name='[^']*credentials\.json'.*:ResourceWarning"
)
def test_instantiate_with_credentials_from_a_json_file(
    https_node: HttpsNode, traffic: Traffic, tmp_path: Path
) -> None:
    """PIDClientCredentials.load_from_JSON (``client: rest`` is required by pyhandle) and
    ``handleowner``: the HS_ADMIN then names 300:0.NA/<prefix> with an integer index."""
    path = tmp_path / "credentials.json"
    path.write_text(
        json.dumps(
            {
                "client": "rest",
                "handle_server_url": https_node.url,
                "username": https_node.username,
                "password": https_node.password,
                "HTTPS_verify": str(https_node.cert),
                "handleowner": f"300:{PREFIX_HANDLE}",
                "prefix": PREFIX,
            }
        ),
        encoding="utf-8",
    )
    credentials = PIDClientCredentials.load_from_JSON(str(path))
    client = RESTHandleClient.instantiate_with_credentials(credentials)
    name = client.generate_and_register_handle(credentials.get_prefix(), "https://example.com/own")
    admin = next(v for v in put_values(traffic) if v["type"] == "HS_ADMIN")
    assert admin["data"]["value"] == {
        "index": 300,
        "handle": PREFIX_HANDLE,
        "permissions": "011111110011",
    }
    values = https_node.native(name)
    assert admin_of(values) == {100: AdminRecord(0b011111110011, PREFIX_HANDLE, 300)}
    assert texts(values) == {1: ("URL", "https://example.com/own")}


def test_instantiate_for_read_access(https_node: HttpsNode, traffic: Traffic) -> None:
    """Read-only clients (directly and through the PyHandleClient facade): reads work, writes
    and searches fail in the client without sending anything."""
    facade = PyHandleClient("rest").instantiate_for_read_access(
        handle_server_url=https_node.url, HTTPS_verify=str(https_node.cert)
    )
    reader = RESTHandleClient.instantiate_for_read_access(
        handle_server_url=https_node.url, HTTPS_verify=str(https_node.cert)
    )
    assert isinstance(facade, RESTHandleClient)
    assert traffic.exchanges == []  # no login check without credentials
    for client in (facade, reader):
        assert client.get_value_from_handle(PV, "EMAIL") == "quality@pv.example.com"
    traffic.clear()
    with pytest.raises(HandleAuthenticationError):
        reader.register_handle(handle("READER"), "https://example.com/r", overwrite=True)
    with pytest.raises(HandleAuthenticationError):
        reader.delete_handle(PV)
    assert reader.search_handle(URL="https://pv.example.com/*") is None
    assert traffic.exchanges == []
    assert RESTHandleClient.check_client("rest") and not RESTHandleClient.check_client("db")


def test_https_verification_is_enforced(https_node: HttpsNode, traffic: Traffic) -> None:
    """With HTTPS_verify left at its default (the system CAs) the self-signed node is refused."""
    reader = RESTHandleClient.instantiate_for_read_access(handle_server_url=https_node.url)
    with pytest.raises(requests.exceptions.SSLError):
        reader.retrieve_handle_record_json(PV)
    with pytest.raises(requests.exceptions.SSLError):
        make_client(https_node, HTTPS_verify=True)


# urllib3 warns about every request sent with certificate verification off; this test turns
# verification off on purpose.
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_https_verification_off(https_node: HttpsNode, traffic: Traffic) -> None:
    client = make_client(https_node, HTTPS_verify="False")  # as a credentials file spells it
    name = handle("NOVERIFY")
    assert client.register_handle(name, "https://example.com/noverify") == name
    assert client.get_value_from_handle(name, "URL") == "https://example.com/noverify"
    assert texts(https_node.native(name)) == {1: ("URL", "https://example.com/noverify")}


def test_unknown_username_handle(https_node: HttpsNode, traffic: Traffic) -> None:
    with pytest.raises(HandleNotFoundException):
        RESTHandleClient.instantiate_with_username_and_password(
            https_node.url, f"300:{PREFIX}/NOBODY", "x", HTTPS_verify=str(https_node.cert)
        )
    assert traffic.requests == [("GET", f"/api/handles/{PREFIX}/NOBODY")]
    assert traffic.exchanges[0].status == 404
    traffic.clear()
    with pytest.raises(HandleSyntaxError):  # not index:handle: refused before any request
        RESTHandleClient.instantiate_with_username_and_password(
            https_node.url, PREFIX_HANDLE, "x", HTTPS_verify=str(https_node.cert)
        )
    assert traffic.exchanges == []


def test_wrong_password(https_node: HttpsNode, traffic: Traffic) -> None:
    """The password is not checked at construction; the first write gets 401 →
    HandleAuthenticationError, and nothing changes."""
    client = RESTHandleClient.instantiate_with_username_and_password(
        https_node.url, https_node.username, "wrong", HTTPS_verify=str(https_node.cert)
    )
    name = handle("WRONGPW")
    with pytest.raises(HandleAuthenticationError):
        client.register_handle(name, "https://example.com/wrong")
    with pytest.raises(HandleAuthenticationError):
        client.modify_handle_value(PV, DESC="changed")
    with pytest.raises(HandleAuthenticationError):
        client.delete_handle_value(PV, "DESC")
    with pytest.raises(HandleAuthenticationError):
        client.delete_handle(PV)
    assert [e.status for e in traffic.exchanges if e.method in ("PUT", "DELETE")] == [401] * 4
    assert https_node.native(name) is None
    assert texts(https_node.native(PV))[2][1].startswith("Monocrystalline")


def test_quirk_permission_refusal_is_a_generic_error(
    https_node: HttpsNode, traffic: Traffic
) -> None:
    """An identity that verifies but may not write gets 403 (responseCode 400/401). pyhandle
    only maps 401/402 to HandleAuthenticationError, so this is a GenericHandleError, as
    against the reference server."""
    user = f"{PREFIX}/PYH-NOBODY-SPECIAL"
    owner = admin_value(100, HANDLE_ADMIN_PERMISSIONS, PREFIX_HANDLE, 200)
    https_node.running.put_handle(user, [owner, seckey_value(300, b"user-secret")])
    client = RESTHandleClient.instantiate_with_username_and_password(
        https_node.url, f"300:{user}", "user-secret", HTTPS_verify=str(https_node.cert)
    )
    with pytest.raises(GenericHandleError) as caught:
        client.register_handle(handle("NOT-MINE"), "https://example.com/not-mine")
    assert caught.value.response.status_code == 403
    assert caught.value.response.json()["responseCode"] in (
        ResponseCode.INVALID_ADMIN,
        ResponseCode.INSUFFICIENT_PERMISSIONS,
    )
    assert https_node.native(handle("NOT-MINE")) is None


# -- reading --------------------------------------------------------------------------------


def test_retrieve_handle_record_json(https_node: HttpsNode, client: Any, traffic: Traffic) -> None:
    record = client.retrieve_handle_record_json(PV)
    assert record["responseCode"] == 1 and record["handle"] == PV
    public = {i: v for i, v in by_index(https_node.native(PV)).items() if v.public_read}
    assert {v["index"]: (v["type"], v["ttl"]) for v in record["values"]} == {
        i: (v.type, v.ttl) for i, v in public.items()
    }
    assert "INTERNAL.COST" not in {v["type"] for v in record["values"]}  # not public
    assert traffic.last("GET").headers == {"Accept": "application/json"}  # never credentials

    some = client.retrieve_handle_record_json(PV, indices=[1, "3"])
    assert [v["index"] for v in some["values"]] == [1, 3]
    typed = client.retrieve_handle_record_json(PV, auth=True, type=["URL", "EMAIL"])
    assert [v["type"] for v in typed["values"]] == ["URL", "EMAIL"]
    assert traffic.requests[-1] == ("GET", f"/api/handles/{PV}?type=URL&type=EMAIL&auth=true")
    one = client.retrieve_handle_record_json(PV, type="DESC")
    assert [v["type"] for v in one["values"]] == ["DESC"]
    assert client.retrieve_handle_record_json(PV, indices=[77]) == {
        "responseCode": 200,
        "handle": PV,
        "values": [],
    }
    assert client.retrieve_handle_record_json(handle("NO-SUCH")) is None
    assert traffic.exchanges[-1].status == 404


def test_retrieve_handle_record(client: Any) -> None:
    record = client.retrieve_handle_record(PV)
    assert record["URL"] == "https://pv.example.com/modules/PV-2026-000123"
    assert record["EMAIL"] == "quality@pv.example.com"
    assert "INTERNAL.COST" not in record
    assert client.retrieve_handle_record(PV, indices=[3]) == {"EMAIL": "quality@pv.example.com"}
    assert client.retrieve_handle_record(handle("NO-SUCH")) is None


def test_get_value_from_handle(client: Any) -> None:
    assert client.get_value_from_handle(PV, "BATCH") == "CELL-LOT-2026-0419"
    assert client.get_value_from_handle(PV, "NOT-THERE") is None
    assert client.get_value_from_handle(PV, "HS_ADMIN") == {
        "handle": PREFIX_HANDLE,
        "index": 200,
        "permissions": "111111110011",
    }
    with pytest.raises(HandleNotFoundException):
        client.get_value_from_handle(handle("NO-SUCH"), "URL")


def test_quirk_handle_is_echoed_verbatim(client: Any, traffic: Traffic) -> None:
    """pyhandle compares the answer's ``handle`` with the string it asked for (spec §6.5):
    handles match case-insensitively, so the node must echo the request, not the stored name."""
    asked = PV.lower()
    record = client.retrieve_handle_record_json(asked)
    assert record["handle"] == asked
    assert client.get_value_from_handle(asked, "EMAIL") == "quality@pv.example.com"


def test_quirk_hdl_prefix_is_stripped_by_the_client(client: Any, traffic: Traffic) -> None:
    """pyhandle lstrips the characters of 'hdl:'/'doi:' before building the URL (spec §6.5), so
    'hdl:88.118.8/...' reaches the node as '88.118.8/...' and the echo matches the stripped
    name. (The node itself answers 400/301 for a literal 'hdl:' prefix, as the reference.)"""
    record = client.retrieve_handle_record_json(f"hdl:{PV}")
    assert record["handle"] == PV
    assert traffic.requests == [("GET", f"/api/handles/{PV}")]


# -- registering ----------------------------------------------------------------------------


def test_register_handle(https_node: HttpsNode, client: Any, traffic: Traffic) -> None:
    """GET (must be 404) then PUT ?overwrite=false with bare-string data and pyhandle's HS_ADMIN
    (its admin index the *string* "200", spec §6.3) → 201; the record as written."""
    name = handle("REG")
    returned = client.register_handle(name, "https://example.com/reg", checksum="c0", DESC="d")
    assert returned == name
    assert traffic.requests == [
        ("GET", f"/api/handles/{name}"),
        ("PUT", f"/api/handles/{name}?overwrite=false"),
    ]
    assert [e.status for e in traffic.exchanges] == [404, 201]
    assert put_values(traffic) == [
        {
            "index": 100,
            "type": "HS_ADMIN",
            "data": {
                "value": {"index": "200", "handle": PREFIX_HANDLE, "permissions": "011111110011"},
                "format": "admin",
            },
        },
        {"index": 2, "type": "DESC", "data": "d"},
        {"index": 1, "type": "URL", "data": "https://example.com/reg"},
        {"index": 3, "type": "CHECKSUM", "data": "c0"},
    ]
    values = https_node.native(name)
    assert texts(values) == {
        1: ("URL", "https://example.com/reg"),
        2: ("DESC", "d"),
        3: ("CHECKSUM", "c0"),
    }
    assert admin_of(values) == {100: PYHANDLE_ADMIN}
    assert all(
        v.ttl == DEFAULT_TTL and v.permissions == DEFAULT_PERMISSIONS and v.timestamp > 0
        for v in by_index(values).values()
    )

    traffic.clear()
    with pytest.raises(HandleAlreadyExistsException):
        client.register_handle(name, "https://example.com/again")
    assert traffic.methods == ["GET"]  # refused by the client after the existence check

    with pytest.raises(NotImplementedError):
        client.register_handle(name, "https://example.com/x", additional_URLs=["https://x"])

    traffic.clear()
    client.register_handle(name, "https://example.com/replaced", overwrite=True)
    assert traffic.requests == [("PUT", f"/api/handles/{name}?overwrite=true")]
    assert traffic.exchanges[0].status == 200
    assert texts(https_node.native(name)) == {1: ("URL", "https://example.com/replaced")}


def test_register_handle_kv(https_node: HttpsNode, client: Any, traffic: Traffic) -> None:
    name = handle("KV")
    assert (
        client.register_handle_kv(name, URL="https://example.com/kv", DESC="光伏组件 550 W") == name
    )
    assert texts(https_node.native(name)) == {
        1: ("URL", "https://example.com/kv"),
        2: ("DESC", "光伏组件 550 W"),
    }
    assert client.get_value_from_handle(name, "DESC") == "光伏组件 550 W"
    with pytest.raises(HandleAlreadyExistsException):
        client.register_handle_kv(name, overwrite=False, URL="https://example.com/kv2")
    assert client.register_handle_kv(name, True, NOTE="only this") == name
    assert texts(https_node.native(name)) == {2: ("NOTE", "only this")}
    assert admin_of(https_node.native(name)) == {100: PYHANDLE_ADMIN}


def test_register_handle_json(https_node: HttpsNode, client: Any, traffic: Traffic) -> None:
    """Caller-given entries (indexes, ttl, ``{format, value}`` data, permissions); HS_ADMIN is
    appended at 100 unless one is given."""
    name = handle("JSON")
    entries = [
        {"index": 1, "type": "URL", "data": "https://example.com/json", "ttl": 600},
        {"index": 7, "type": "DESC", "data": {"format": "string", "value": "seven"}},
        {"index": 8, "type": "BLOB", "data": {"format": "base64", "value": "AAEC/w=="}},
        {"index": 9, "type": "HIDDEN", "data": "h", "permissions": "1100"},
    ]
    assert client.register_handle_json(name, entries) == name
    values = by_index(https_node.native(name))
    assert set(values) == {1, 7, 8, 9, 100}
    assert values[1].ttl == 600 and values[1].data == b"https://example.com/json"
    assert values[7].data == b"seven" and values[8].data == b"\x00\x01\x02\xff"
    assert values[9].permissions == 0b1100 and not values[9].public_read
    assert AdminRecord.from_bytes(values[100].data) == PYHANDLE_ADMIN
    assert len(entries) == 4  # pyhandle copies the caller's list

    with pytest.raises(HandleAlreadyExistsException):
        client.register_handle_json(name, entries)
    own_admin = {
        "index": 101,
        "type": "HS_ADMIN",
        "data": {
            "format": "admin",
            "value": {"index": 300, "handle": PREFIX_HANDLE, "permissions": "011111111111"},
        },
    }
    client.register_handle_json(name, [entries[0], own_admin], overwrite=True)
    assert admin_of(https_node.native(name)) == {
        101: AdminRecord(0b011111111111, PREFIX_HANDLE, 300)
    }


def test_generate_and_register_handle(https_node: HttpsNode, client: Any, traffic: Traffic) -> None:
    """The suffix is a client-side uuid4 (no mintNewSuffix); then as register_handle_kv."""
    name = client.generate_and_register_handle(PREFIX, "https://example.com/gen", checksum="99")
    prefix, suffix = name.split("/")
    assert prefix == PREFIX and len(suffix) == 36 and suffix.count("-") == 4
    assert traffic.requests[-1] == ("PUT", f"/api/handles/{name}?overwrite=false")
    assert texts(https_node.native(name)) == {
        1: ("URL", "https://example.com/gen"),
        2: ("CHECKSUM", "99"),
    }


def test_generate_pid_name_and_indices_for_key(client: Any, traffic: Traffic) -> None:
    """Methods without traffic."""
    assert client.generate_PID_name(PREFIX).startswith(f"{PREFIX}/")
    assert "/" not in client.generate_PID_name()
    record = client.retrieve_handle_record_json(PV)
    assert client.get_handlerecord_indices_for_key("URL", record["values"]) == [1]
    assert client.get_handlerecord_indices_for_key("NONE", record["values"]) == []
    assert traffic.methods == ["GET"]


# -- modifying ------------------------------------------------------------------------------


def test_modify_handle_value(https_node: HttpsNode, client: Any, traffic: Traffic) -> None:
    """GET ?auth=true, then PUT ?index=..&overwrite=true with the original entries (ttl kept,
    timestamp dropped, bare-string data) and new keys at fresh indexes with the given ttl."""
    name = handle("MOD")
    client.register_handle(name, "https://example.com/mod/1", checksum="c1")
    traffic.clear()
    assert (
        client.modify_handle_value(name, ttl=3600, URL="https://example.com/mod/2", NEW="n") == name
    )
    assert traffic.requests == [
        ("GET", f"/api/handles/{name}?auth=true"),
        ("PUT", f"/api/handles/{name}?index=1&index=3&overwrite=true"),
    ]
    assert traffic.exchanges[-1].status == 200
    assert put_values(traffic) == [
        {"index": 1, "type": "URL", "data": "https://example.com/mod/2", "ttl": DEFAULT_TTL},
        {"index": 3, "type": "NEW", "data": "n", "ttl": 3600},
    ]
    values = by_index(https_node.native(name))
    assert texts(tuple(values.values())) == {
        1: ("URL", "https://example.com/mod/2"),
        2: ("CHECKSUM", "c1"),
        3: ("NEW", "n"),
    }
    assert values[1].ttl == DEFAULT_TTL and values[3].ttl == 3600
    assert admin_of(tuple(values.values())) == {100: PYHANDLE_ADMIN}

    client.modify_handle_value(name, add_if_not_exist=False, NEW="n2", ABSENT="x")
    assert texts(https_node.native(name))[3] == ("NEW", "n2")
    assert "ABSENT" not in {t for t, _ in texts(https_node.native(name)).values()}
    with pytest.raises(HandleNotFoundException):
        client.modify_handle_value(handle("NO-SUCH"), URL="https://example.com/x")


def test_modify_or_add_handle_value(https_node: HttpsNode, client: Any, traffic: Traffic) -> None:
    name = handle("MODADD")
    client.register_handle(name, "https://example.com/ma")
    traffic.clear()
    assert client.modify_or_add_handle_value(name, URL="https://example.com/ma2", EXTRA="e") == name
    assert traffic.requests[-1] == ("PUT", f"/api/handles/{name}?index=1&index=2&overwrite=true")
    assert texts(https_node.native(name)) == {
        1: ("URL", "https://example.com/ma2"),
        2: ("EXTRA", "e"),
    }


def test_modify_handle_value_not_add(https_node: HttpsNode, client: Any, traffic: Traffic) -> None:
    name = handle("NOTADD")
    client.register_handle(name, "https://example.com/na", checksum="c")
    traffic.clear()
    assert client.modify_handle_value_not_add(name, CHECKSUM="c2", ABSENT="x") == name
    assert traffic.requests[-1] == ("PUT", f"/api/handles/{name}?index=2&overwrite=true")
    assert texts(https_node.native(name)) == {
        1: ("URL", "https://example.com/na"),
        2: ("CHECKSUM", "c2"),
    }


def test_add_handle_value(https_node: HttpsNode, client: Any, traffic: Traffic) -> None:
    """add_handle_value is PUT ?index=N&overwrite=false, answered 201 (spec §5.1)."""
    name = handle("ADD")
    client.register_handle(name, "https://example.com/add")
    traffic.clear()
    assert client.add_handle_value(name, ttl=120, ADDED="a") == name
    assert traffic.requests[-1] == ("PUT", f"/api/handles/{name}?index=2&overwrite=false")
    assert traffic.exchanges[-1].status == 201
    values = by_index(https_node.native(name))
    assert values[2].type == "ADDED" and values[2].data == b"a" and values[2].ttl == 120


def test_quirk_add_handle_value_on_an_existing_key_conflicts(
    https_node: HttpsNode, client: Any, traffic: Traffic
) -> None:
    """add_handle_value with a key the record has re-sends that value with overwrite=false:
    the reference answers 409 (responseCode 201, value already exists) and pyhandle raises a
    GenericHandleError; the value is unchanged."""
    name = handle("ADDTWICE")
    client.register_handle(name, "https://example.com/twice")
    with pytest.raises(GenericHandleError) as caught:
        client.add_handle_value(name, URL="https://example.com/other")
    assert caught.value.response.status_code == 409
    assert caught.value.response.json()["responseCode"] == ResponseCode.VALUE_ALREADY_EXISTS
    assert texts(https_node.native(name)) == {1: ("URL", "https://example.com/twice")}


def test_quirk_pyhandle_cannot_see_non_public_values(
    https_node: HttpsNode, client: Any, traffic: Traffic
) -> None:
    """pyhandle's GETs carry no credentials, so (with ``auth=true`` or not) the node shows it
    only public values, as the reference does. Adding a key then picks the lowest index free
    *among the visible values*: with overwrite=true (modify_or_add) that replaces the hidden
    value there; with overwrite=false (add_handle_value) it is a 409."""
    name = handle("HIDDEN")
    client.register_handle_json(
        name,
        [
            {"index": 1, "type": "URL", "data": "https://example.com/hidden"},
            {"index": 2, "type": "HIDDEN", "data": "h", "permissions": "1100"},
        ],
    )
    visible = client.retrieve_handle_record_json(name, auth=True)
    assert [v["index"] for v in visible["values"]] == [1, 100]
    with pytest.raises(GenericHandleError) as caught:
        client.add_handle_value(name, NOTE="n")
    assert caught.value.response.status_code == 409
    traffic.clear()
    client.modify_or_add_handle_value(name, NOTE="n")
    assert traffic.requests[-1] == ("PUT", f"/api/handles/{name}?index=2&overwrite=true")
    assert texts(https_node.native(name)) == {
        1: ("URL", "https://example.com/hidden"),
        2: ("NOTE", "n"),
    }


def test_modify_refusals_in_the_client(
    https_node: HttpsNode, client: Any, traffic: Traffic
) -> None:
    """HS_ADMIN is not modifiable without modify_HS_ADMIN; a key present twice is a broken
    record. Both are refused after the GET, before any PUT."""
    name = handle("REFUSE")
    client.register_handle_json(
        name,
        [
            {"index": 1, "type": "URL", "data": "https://example.com/refuse"},
            {"index": 2, "type": "TWICE", "data": "a"},
            {"index": 3, "type": "TWICE", "data": "b"},
        ],
    )
    traffic.clear()
    with pytest.raises(IllegalOperationException):
        client.modify_handle_value(name, HS_ADMIN={"handle": PREFIX_HANDLE, "index": 300})
    with pytest.raises(BrokenHandleRecordException):
        client.modify_handle_value(name, TWICE="c")
    assert "PUT" not in traffic.methods
    assert texts(https_node.native(name))[3] == ("TWICE", "b")


def test_quirk_client_bugs_of_pyhandle_1_5(https_node: HttpsNode, traffic: Traffic) -> None:
    """Two pyhandle 1.5.0 bugs that fail the same way against any server, before any write:
    modifying HS_ADMIN (with modify_HS_ADMIN=True) pops the entry's timestamp twice (KeyError),
    and modify_handle_value_not_add with only absent keys returns an unassigned response."""
    client = make_client(https_node, modify_HS_ADMIN=True)
    name = handle("BUGS")
    client.register_handle(name, "https://example.com/bugs")
    traffic.clear()
    with pytest.raises(KeyError):
        client.modify_handle_value(name, HS_ADMIN={"handle": PREFIX_HANDLE, "index": 300})
    with pytest.raises(UnboundLocalError):
        client.modify_handle_value_not_add(name, ABSENT="x")
    assert traffic.methods == ["GET", "GET"]
    assert admin_of(https_node.native(name)) == {100: PYHANDLE_ADMIN}


# -- deleting -------------------------------------------------------------------------------


def test_delete_handle_value(https_node: HttpsNode, client: Any, traffic: Traffic) -> None:
    """One key or a list of keys (every value of each key): GET ?auth=true then
    DELETE ?index=..; a key the record lacks sends no DELETE and returns None."""
    name = handle("DELVAL")
    client.register_handle_json(
        name,
        [
            {"index": 1, "type": "URL", "data": "https://example.com/delval"},
            {"index": 2, "type": "A", "data": "a"},
            {"index": 3, "type": "B", "data": "b1"},
            {"index": 4, "type": "B", "data": "b2"},
            {"index": 5, "type": "C", "data": "c"},
        ],
    )
    traffic.clear()
    assert client.delete_handle_value(name, "A") == name
    assert traffic.requests == [
        ("GET", f"/api/handles/{name}?auth=true"),
        ("DELETE", f"/api/handles/{name}?index=2"),
    ]
    assert traffic.exchanges[-1].status == 200
    assert set(texts(https_node.native(name))) == {1, 3, 4, 5}

    assert client.delete_handle_value(name, ["B", "C", "B"]) == name
    assert traffic.requests[-1] == ("DELETE", f"/api/handles/{name}?index=3&index=4&index=5")
    assert texts(https_node.native(name)) == {1: ("URL", "https://example.com/delval")}

    traffic.clear()
    assert client.delete_handle_value(name, "MISSING") is None
    assert client.delete_handle_value(name, ["MISSING", "ALSO-MISSING"]) is None
    assert traffic.methods == ["GET", "GET"]  # no DELETE: it would delete the whole handle
    with pytest.raises(IllegalOperationException):
        client.delete_handle_value(name, ["URL", "HS_ADMIN"])
    with pytest.raises(HandleNotFoundException):
        client.delete_handle_value(handle("NO-SUCH"), "URL")
    assert set(by_index(https_node.native(name))) == {1, 100}


def test_quirk_values_not_found_returns_none(
    https_node: HttpsNode, client: Any, traffic: Traffic
) -> None:
    """A value that vanishes between pyhandle's GET and its DELETE: the node answers 400 with
    responseCode 200 (values not found is 400 outside resolution, spec §5.1), which pyhandle
    treats as "nothing to do" and returns None."""
    name = handle("VANISH")
    client.register_handle_json(
        name,
        [
            {"index": 1, "type": "URL", "data": "https://example.com/vanish"},
            {"index": 2, "type": "GONE", "data": "g"},
        ],
    )
    store = https_node.running.node.store
    traffic.before["DELETE"] = lambda: https_node.running.call(store.remove_values(name, [2]))
    assert client.delete_handle_value(name, "GONE") is None
    delete = traffic.last("DELETE")
    assert delete.status == 400
    assert set(by_index(https_node.native(name))) == {1, 100}


def test_delete_handle(https_node: HttpsNode, client: Any, traffic: Traffic) -> None:
    name = handle("DEL")
    client.register_handle(name, "https://example.com/del")
    traffic.clear()
    assert client.delete_handle(name) == name
    assert traffic.requests == [("DELETE", f"/api/handles/{name}")]
    assert traffic.exchanges[0].status == 200
    assert https_node.native(name) is None
    with pytest.raises(TypeError):
        client.delete_handle(PV, "URL")  # values are deleted with delete_handle_value
    assert https_node.native(PV) is not None


def test_quirk_deleting_a_missing_handle(client: Any, traffic: Traffic) -> None:
    """pyhandle reads ``json['handle']`` from the DELETE answer before looking at the status
    (spec §6.3), so the 404 must be JSON naming the handle; then HandleNotFoundException."""
    name = handle("NEVER")
    with pytest.raises(HandleNotFoundException):
        client.delete_handle(name)
    assert traffic.exchanges[-1].status == 404
    assert json.loads(traffic.exchanges[-1].answer) == {
        "responseCode": ResponseCode.HANDLE_NOT_FOUND,
        "handle": name,
        "message": "Handle not found.",
    }


# -- reverse lookup -------------------------------------------------------------------------


def test_search_handle(https_node: HttpsNode, client: Any, traffic: Traffic) -> None:
    """``GET /hrls/handles?URL=..`` with the same Basic credentials; ``*`` is a wildcard, keys
    combine with AND, the prefix filter is applied by pyhandle."""
    first, second, other = handle("SEARCH-1"), handle("SEARCH-2"), handle("SEARCH-3")
    client.register_handle(first, "https://search.example.com/one", checksum="s1")
    client.register_handle(second, "https://search.example.com/two", checksum="s1")
    client.register_handle(other, "https://elsewhere.example.com/one", checksum="s2")
    traffic.clear()
    assert client.search_handle("https://search.example.com/one") == [first]
    get = traffic.last("GET")
    assert get.path_and_query == "/hrls/handles?URL=https://search.example.com/one"
    assert get.status == 200 and get.headers["Authorization"].startswith("Basic ")
    assert sorted(client.search_handle(URL="https://search.example.com/*")) == [first, second]
    assert client.search_handle(URL="https://*.example.com/one", CHECKSUM="s2") == [other]
    assert sorted(client.search_handle(CHECKSUM="s1", prefix=PREFIX)) == [first, second]
    assert client.search_handle(CHECKSUM="s1", prefix="99.999") == []
    assert client.search_handle(URL="https://search.example.com/none") == []
    with pytest.raises(ReverseLookupException):
        client.search_handle(URL="https://search.example.com/one", DESC="x")  # key not allowed
    with pytest.raises(ReverseLookupException):
        client.search_handle()  # no search terms


def test_search_handle_other_keys_and_privacy(https_node: HttpsNode, traffic: Traffic) -> None:
    """With ``allowed_search_keys=[]`` any key is passed on; only public values match."""
    client = make_client(https_node, allowed_search_keys=[])
    name = handle("SEARCH-KEYS")
    client.register_handle_json(
        name,
        [
            {"index": 1, "type": "URL", "data": "https://keys.example.com/"},
            {"index": 2, "type": "SERIAL", "data": "SN-0001"},
            {"index": 3, "type": "SECRET", "data": "s3cret", "permissions": "1100"},
            {"index": 4, "type": "DESC", "data": "光伏组件, 144 cells"},
        ],
    )
    assert client.search_handle(SERIAL="SN-0001") == [name]
    assert client.search_handle(DESC="光伏组件, 144*") == [name]
    assert client.search_handle(SECRET="s3cret") == []
    assert client.search_handle(URL="https://keys.example.com/", SECRET="*") == []


def test_instantiate_for_read_and_search(https_node: HttpsNode, traffic: Traffic) -> None:
    """Search credentials of their own (here a handle identity too, as the node checks every
    Basic login against HS_SECKEY); wrong ones get 401 → ReverseLookupException."""
    searcher = RESTHandleClient.instantiate_for_read_and_search(
        https_node.url, https_node.username, https_node.password, HTTPS_verify=str(https_node.cert)
    )
    assert searcher.search_handle(URL="https://pv.example.com/modules/PV-2026-000123") == [PV]
    assert traffic.requests == [
        ("GET", "/hrls/handles?URL=https://pv.example.com/modules/PV-2026-000123")
    ]
    wrong = RESTHandleClient.instantiate_for_read_and_search(
        https_node.url, https_node.username, "wrong", HTTPS_verify=str(https_node.cert)
    )
    with pytest.raises(ReverseLookupException) as caught:
        wrong.search_handle(URL="https://pv.example.com/*")
    assert caught.value.response.status_code == 401
    with pytest.raises(HandleAuthenticationError):
        searcher.delete_handle(PV)  # search credentials do not make a writer


def test_reverse_lookup_endpoint(https_node: HttpsNode, client: Any, traffic: Traffic) -> None:
    """What pyhandle does not exercise of ``/hrls/handles``: ``limit``/``page``, the answer to
    no credentials, other methods and paths (the JSON error shape of ``/api/``)."""
    names = [handle(f"PAGE-{i}") for i in range(3)]
    for name in names:
        client.register_handle(name, "https://paging.example.com/x")
    session = requests.Session()
    get = session.get  # through the traffic recorder, which closes the session
    base = f"{https_node.url}/hrls/handles/"
    query = "?URL=https://paging.example.com/x"
    auth = (f"300%3A{PREFIX_HANDLE}", https_node.password)
    verify = str(https_node.cert)
    assert get(base + query, auth=auth, verify=verify).json() == names
    assert get(base + query + "&limit=2", auth=auth, verify=verify).json() == names[:2]
    assert get(base + query + "&page=1&limit=1", auth=auth, verify=verify).json() == names[1:2]
    assert get(base + "?limit=5", auth=auth, verify=verify).json() == []
    bad = get(base + query + "&limit=-1", auth=auth, verify=verify)
    assert bad.status_code == 400 and bad.json()["responseCode"] == ResponseCode.PROTOCOL_ERROR
    anonymous = get(base + query, verify=verify)
    assert anonymous.status_code == 401
    assert anonymous.json()["responseCode"] == ResponseCode.AUTHENTICATION_NEEDED
    assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="handle"'
    put = session.put(base + query, auth=auth, verify=verify, json=[])
    assert put.status_code == 405 and "GET" in put.headers["Allow"]
    assert get(f"{https_node.url}/hrls/other", auth=auth, verify=verify).status_code == 404


#: RESTHandleClient method → the tests that drive it against the node.
COVERED: dict[str, tuple[Callable[..., None], ...]] = {
    "instantiate_with_username_and_password": (
        test_instantiate_with_username_and_password,
        test_unknown_username_handle,
        test_wrong_password,
    ),
    "instantiate_with_credentials": (test_instantiate_with_credentials_from_a_json_file,),
    "instantiate_for_read_access": (test_instantiate_for_read_access,),
    "instantiate_for_read_and_search": (test_instantiate_for_read_and_search,),
    "check_client": (test_instantiate_for_read_access,),
    "retrieve_handle_record_json": (
        test_retrieve_handle_record_json,
        test_quirk_handle_is_echoed_verbatim,
        test_quirk_hdl_prefix_is_stripped_by_the_client,
    ),
    "retrieve_handle_record": (test_retrieve_handle_record,),
    "get_value_from_handle": (test_get_value_from_handle, test_instantiate_for_read_access),
    "register_handle": (test_register_handle, test_instantiate_with_username_and_password),
    "register_handle_kv": (test_register_handle_kv,),
    "register_handle_json": (test_register_handle_json,),
    "generate_and_register_handle": (
        test_generate_and_register_handle,
        test_instantiate_with_credentials_from_a_json_file,
    ),
    "generate_PID_name": (test_generate_pid_name_and_indices_for_key,),
    "get_handlerecord_indices_for_key": (test_generate_pid_name_and_indices_for_key,),
    "modify_handle_value": (test_modify_handle_value, test_modify_refusals_in_the_client),
    "modify_or_add_handle_value": (
        test_modify_or_add_handle_value,
        test_quirk_pyhandle_cannot_see_non_public_values,
    ),
    "modify_handle_value_not_add": (test_modify_handle_value_not_add,),
    "add_handle_value": (
        test_add_handle_value,
        test_quirk_add_handle_value_on_an_existing_key_conflicts,
    ),
    "delete_handle_value": (test_delete_handle_value, test_quirk_values_not_found_returns_none),
    "delete_handle": (test_delete_handle, test_quirk_deleting_a_missing_handle),
    "search_handle": (
        test_search_handle,
        test_search_handle_other_keys_and_privacy,
        test_instantiate_for_read_and_search,
    ),
}
