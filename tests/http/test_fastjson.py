"""Anonymous ``GET /api/handles/<handle>`` answered from the stored bytes (idnode.http.fastjson).

Equality: for generated records (public, admin-only and unreadable values, references,
template links, every value type the JSON renderer treats specially, valid and damaged, text
with escapes and non-ASCII, binary data, both TTL types) and generated requests (GET and
HEAD; ``index``, ``type``, ``publicOnly``, ``pretty``, ``callback``, ``auth``, ``doNotRefer``
and unknown parameters, valid or not; CORS and Authorization headers), the whole application
answers with the same status, headers and body whether the fast path is on or off; the fast
path answers exactly the requests whose answer is a plain public record (so these tests fail
if it stops being taken) and declines every other. Its answers go into the HTTP response
cache like the ordinary ones. Through the real HTTP listener: a write is seen at once, and an
authenticated request never takes the fast path (the store-read metrics tell which path
answered).
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, rsa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from idnode.http import fastjson
from idnode.http.asgi import ASGIApp, Request, Response
from idnode.http.common import Params
from idnode.industry.layout import TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE
from idnode.jsonvalues import data_from_json, iso_timestamp, looks_like_binary
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.types.hs_pubkey import PublicKeyData
from idnode.protocol.types.hs_vlist import ValueList
from idnode.protocol.values import HandleValue, Reference
from tests.http.conftest import PREFIX, PREFIX_HANDLE, asgi_scope, basic, live_client
from tests.server.nodeutil import RunningNode, text_value

_counter = itertools.count()

# -- generated records -------------------------------------------------------------------------

_ADMINS = [
    AdminRecord(0x0FF2, PREFIX_HANDLE, 200).to_bytes(),
    AdminRecord(0x0001, 'ü/"q"\\', 300, b"\x00\x00").to_bytes(),  # legacy length
]
_VLISTS = [
    ValueList((Reference(f"{PREFIX}/A", 1), Reference("ü/\n", 7))).to_bytes(),
    ValueList(()).to_bytes(),
]
_SITES = [
    data_from_json(
        {
            "format": "site",
            "value": {
                "version": 1,
                "protocolVersion": "2.10",
                "serialNumber": 3,
                "primarySite": True,
                "hashOption": 0,
                "hashFilter": "x",
                "attributes": [{"name": "desc", "value": 'Ünï "site"\t'}],
                "servers": [
                    {
                        "serverId": 1,
                        "address": "127.0.0.1",
                        "publicKey": {"format": "base64", "value": "AAEC"},
                        "interfaces": [
                            {"query": True, "admin": False, "protocol": "TCP", "port": 2641},
                            {"query": True, "admin": True, "protocol": 9, "port": 80},
                        ],
                    },
                    {"serverId": 2, "address": "::1", "interfaces": []},
                ],
            },
        }
    )
]
_KEYS = [
    PublicKeyData.from_public_key(rsa.generate_private_key(65537, 1024).public_key()).to_bytes(),
    PublicKeyData.from_public_key(dsa.generate_private_key(1024).public_key()).to_bytes(),
]
#: Valid data of the types rendered specially, by type.
_SPECIAL = {
    "HS_ADMIN": _ADMINS,
    "hs_admin": _ADMINS,
    "HS_VLIST": _VLISTS,
    "HS_SITE": _SITES,
    "HS_SITE.PREFIX": _SITES,
    "HS_NA_DELEGATE": _SITES,
    "HS_PUBKEY": _KEYS,
    "HS_PUBKEY.X": _KEYS,
}
TYPES = [*_SPECIAL, "URL", "URL.ALT", "DESC", "EMAIL", "HS_SECKEY", "HS_ALIAS", "Ünï", 'q"t']
_TEXTS = ["", "plain", 'quote " back \\ slash', "tab\tnew\nline\r", "ctl\x01\x7f", "\u2028é😀"]
PUBLIC = 0x0E
PERMISSIONS = [PUBLIC, 0x0F, 0x04, 0x0C, 0x08, 0x02, 0x00, 0x06, 0x1E, 0xF4]

references = st.lists(
    st.builds(Reference, st.sampled_from([f"{PREFIX}/R", "0.NA/X", 'ü/"1"']), st.integers(0, 9)),
    max_size=2,
).map(tuple)


@st.composite
def data_for(draw: st.DrawFn, vtype: str) -> bytes:
    special = _SPECIAL.get(vtype, [])
    kind = draw(st.integers(0, 3 if special else 2))
    if kind == 0:
        return draw(st.binary(max_size=24))
    if kind == 1:
        return draw(st.sampled_from(_TEXTS)).encode("utf-8")
    if kind == 2:
        return draw(st.text(max_size=16)).encode("utf-8", "surrogatepass")
    return draw(st.sampled_from(special))


@st.composite
def records(draw: st.DrawFn) -> list[HandleValue]:
    indexes = draw(st.lists(st.sampled_from([1, 2, 3, 4, 7, 100, 2001]), unique=True))
    out = []
    for index in indexes:
        vtype = draw(st.sampled_from(TYPES))
        out.append(
            HandleValue(
                index,
                vtype,
                draw(data_for(vtype)),
                ttl=draw(st.sampled_from([86400, 0, 0xFFFFFFFF, 1_700_000_000])),
                ttl_type=draw(st.sampled_from([0, 0, 1, 7])),
                timestamp=draw(st.sampled_from([0, 1, 1_700_000_000, 0xFFFFFFFF])),
                permissions=draw(st.sampled_from(PERMISSIONS)),
                references=draw(references),
            )
        )
    if draw(st.integers(0, 5)) == 0:
        out.append(HandleValue(TEMPLATE_LINK_INDEX, TEMPLATE_LINK_TYPE, b"88.118.8/NO-SUCH-T"))
    return out


# -- generated requests ------------------------------------------------------------------------

_PARAMETERS = {
    "index": ["1", "2", "100", "1001", "2001", "9", "x", "-1", "", "+3", "99999999999"],
    "type": ["URL", "url", "URL.", "HS_SITE.", "HS_ADMIN", "desc", "ünï", "NONE", ""],
    "publicOnly": ["", "true", "false", "yes", "no"],
    "pretty": ["", "true", "no"],
    "callback": ["cb", "my.cb$", "1x", ""],
    "auth": ["", "true"],
    "doNotRefer": [""],
    "other": ["x"],
}
queries = st.lists(
    st.sampled_from(sorted(_PARAMETERS)).flatmap(
        lambda name: st.tuples(st.just(name), st.sampled_from(_PARAMETERS[name]))
    ),
    max_size=4,
)


# -- running one request -----------------------------------------------------------------------

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
#: The HTTP application of each node (one response cache each), made once.
_apps: dict[int, ASGIApp] = {}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def _run(node: RunningNode, scope: dict[str, Any]) -> Answer:
    """The whole HTTP application's answer (the node's, with its response cache)."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app = _apps.get(id(node.node))
    if app is None:
        app = _apps[id(node.node)] = node.node.http_app()

    async def run() -> None:
        await app(scope, _receive, send)

    node.call(run())
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], list(sent[0]["headers"]), body


def _unique(scope: dict[str, Any]) -> dict[str, Any]:
    """``scope`` with a header of its own: never answered from the response cache."""
    return {**scope, "headers": [*scope["headers"], (b"x-test", str(next(_counter)).encode())]}


async def _declined(*args: object) -> None:
    return None


def _ordinary(node: RunningNode, scope: dict[str, Any]) -> Answer:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fastjson, "answer", _declined)
        return _run(node, _unique(scope))


def _fast(node: RunningNode, scope: dict[str, Any]) -> Response | None:
    """What the fast path itself answers (None: declined)."""

    async def run() -> Response | None:
        request = Request(scope, _receive)
        rest = request.raw_path[len("/api/handles/") :]
        return await fastjson.answer(node.node.dispatcher, request, rest, Params(request.query))

    return node.call(run())


def _json_of(body: bytes) -> Any:
    if body[:1] != b"{":  # JSONP: name(...);
        body = body[body.index(b"(") + 1 : -2]
    return json.loads(body)


def _plain(answer: Answer, record: list[HandleValue], authorized: bool) -> bool:
    """Whether the ordinary GET answer is a plain public record, which the fast path must
    make: 200 with responseCode 1, anonymous, no template link, every value shown public."""
    status, _, body = answer
    if authorized or status != 200:
        return False
    data = _json_of(body)
    if data["responseCode"] != 1:
        return False
    if any(v.index == TEMPLATE_LINK_INDEX and v.type == TEMPLATE_LINK_TYPE for v in record):
        return False
    return all(v.get("permissions", "1110")[2] == "1" for v in data["values"])  # public read


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    records(),
    st.lists(
        st.tuples(
            queries,
            st.sampled_from(["GET", "GET", "HEAD"]),
            st.sampled_from(["", "origin", "accept", "authorization"]),
            st.sampled_from(["as stored", "lower", "encoded"]),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_fast_answer_equals_ordinary(
    node: RunningNode,
    record: list[HandleValue],
    requests: list[tuple[list[tuple[str, str]], str, str, str]],
) -> None:
    handle = f"{PREFIX}/FJ-ü-{next(_counter)}"
    node.put_handle(handle, record)
    secret = node.admin_secret
    for query, method, header, spelling in requests:
        name = handle.lower() if spelling == "lower" else handle
        safe = "/" if spelling != "encoded" else ""  # encoded: %2F for the slash too
        raw_path = ("/api/handles/" + quote(name, safe=safe)).encode("ascii")
        headers: list[tuple[bytes, bytes]] = [(b"host", b"idnode.test")]
        if header == "origin":
            headers.append((b"origin", b"https://app.example"))
        elif header == "accept":
            headers.append((b"accept", b"application/json"))
        elif header == "authorization":
            value = basic(f"300:{PREFIX_HANDLE}", secret)["Authorization"]
            headers.append((b"authorization", value.encode()))
        scope = asgi_scope(method, raw_path, urlencode(query).encode(), headers)
        ordinary = _ordinary(node, scope)
        got = _run(node, _unique(scope))
        assert got == ordinary
        ordinary_get = ordinary if method == "GET" else _ordinary(node, {**scope, "method": "GET"})
        fast = _fast(node, scope)
        event("fast" if fast is not None else "declined")
        if _plain(ordinary_get, record, header == "authorization"):
            assert fast is not None, (query, method)
            assert fast.status == 200
            assert fast.body == ordinary_get[2]
        else:
            assert fast is None


def test_involved_types_render_as_the_codec(node: RunningNode) -> None:
    """One record with every specially rendered type, valid: what the ordinary path gives."""
    record = [
        HandleValue(n, vtype, datas[0], timestamp=1_700_000_000)
        for n, (vtype, datas) in enumerate(_SPECIAL.items(), start=1)
    ]
    handle = f"{PREFIX}/FJ-TYPES"
    node.put_handle(handle, record)
    scope = asgi_scope("GET", f"/api/handles/{handle}".encode(), b"", [])
    ordinary = _ordinary(node, scope)
    fast = _fast(node, scope)
    assert fast is not None and fast.body == ordinary[2]
    formats = [v["data"]["format"] for v in json.loads(fast.body)["values"]]
    assert formats == ["admin", "admin", "vlist", "site", "site", "site", "key", "key"]


@given(st.binary(max_size=40) | st.text(max_size=20).map(lambda t: t.encode("utf-8", "replace")))
def test_string_or_base64_as_looks_like_binary(data: bytes) -> None:
    text = fastjson._data_json("DESC", data)
    if looks_like_binary(data):
        assert json.loads(text) == {"format": "base64", "value": base64.b64encode(data).decode()}
    else:
        assert json.loads(text) == {"format": "string", "value": data.decode("utf-8")}
        assert text == json.dumps(
            {"format": "string", "value": data.decode()}, ensure_ascii=False, separators=(",", ":")
        )


@given(st.integers(0, 0xFFFFFFFF))
def test_timestamps_as_iso_timestamp(ts: int) -> None:
    assert fastjson._iso(ts) == f'"{iso_timestamp(ts)}"'


# -- the response cache ----------------------------------------------------------------------


def test_fast_answers_are_cached_and_invalidated(node: RunningNode) -> None:
    handle = f"{PREFIX}/FJ-CACHED"
    node.put_handle(handle, [text_value(1, "URL", "https://one.example")])
    scope = asgi_scope("GET", f"/api/handles/{handle}".encode(), b"index=1", [(b"x-c", b"1")])
    assert _fast(node, scope) is not None
    respcache = node.node.dispatcher.respcache
    assert respcache is not None
    first = _run(node, scope)
    hits = respcache.hits
    assert _run(node, scope) == first
    assert respcache.hits == hits + 1  # kept, as the ordinary path's answers are
    node.put_handle(handle, [text_value(1, "URL", "https://two.example")])
    third = _run(node, scope)
    assert b"two.example" in third[2]
    assert third == _ordinary(node, scope)


def test_declines_what_it_does_not_make(node: RunningNode) -> None:
    handle = f"{PREFIX}/FJ-DECLINED"
    node.put_handle(handle, [text_value(1, "URL", "https://x.example")])
    path = f"/api/handles/{handle}".encode()
    cases = [
        asgi_scope("POST", path, b"", []),
        asgi_scope("GET", path, b"", [(b"authorization", b'Handle clientCert="true"')]),
        asgi_scope("GET", f"/api/handles/{PREFIX}/FJ-ABSENT".encode(), b"", []),
        asgi_scope("GET", b"/api/handles/99.999/X", b"", []),
        asgi_scope("GET", f"/api/handles/0.NA/{PREFIX}".encode(), b"", []),
        asgi_scope("GET", b"/api/handles/%FF", b"", []),
        asgi_scope("GET", path, b"index=x", []),
        asgi_scope("GET", path, b"type=NONE", []),
        asgi_scope("GET", b"/api/handles/", b"prefix=" + PREFIX.encode(), []),
    ]
    for scope in cases:
        assert _fast(node, scope) is None, scope["raw_path"]
    assert _fast(node, asgi_scope("GET", path, b"", [])) is not None


# -- through the real HTTP listener ------------------------------------------------------------


def _store_reads(node: RunningNode, admin: dict[str, str]) -> dict[str, float]:
    """Store calls counted in ``/metrics``, by operation."""
    with live_client(node) as client:
        reply = client.get("/metrics", headers=admin)
    assert reply.status_code == 200
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            if sample.name == "idnode_store_duration_seconds_count":
                operation = sample.labels["operation"]
                out[operation] = out.get(operation, 0) + sample.value
    return out


def test_live_write_seen_at_once(node: RunningNode, admin: dict[str, str]) -> None:
    handle = f"{PREFIX}/FJ-LIVE-{time.time_ns()}"
    path = f"/api/handles/{handle}"
    with live_client(node) as client:
        for n in range(4):
            body = {"values": [{"index": 1, "type": "URL", "data": f"https://v{n}.example"}]}
            put = client.put(
                path,
                content=json.dumps(body),
                headers={**admin, "Content-Type": "application/json"},
            )
            assert put.status_code in (200, 201), put.text
            before = _store_reads(node, admin).get("get_record", 0)
            for _ in range(2):  # the second from the response cache
                reply = client.get(path)
                assert reply.status_code == 200
                assert reply.json()["values"][0]["data"]["value"] == f"https://v{n}.example"
            assert _store_reads(node, admin).get("get_record", 0) == before + 1  # the fast path


def test_live_authenticated_request_never_fast(node: RunningNode, admin: dict[str, str]) -> None:
    handle = f"{PREFIX}/FJ-AUTH-{time.time_ns()}"
    node.put_handle(handle, [text_value(1, "URL", "https://auth.example")])
    path = f"/api/handles/{handle}"
    with live_client(node) as client:
        anonymous = client.get(path)
        before = _store_reads(node, admin)
        for query in ("", "?index=1", "?publicOnly=true"):
            reply = client.get(path + query, headers=admin)
            assert reply.status_code == 200
            assert reply.json()["values"] == anonymous.json()["values"]
        after = _store_reads(node, admin)
    assert after.get("get_record", 0) == before.get("get_record", 0)
    assert after.get("get_handle", 0) >= before.get("get_handle", 0) + 3
