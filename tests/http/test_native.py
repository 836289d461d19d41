"""Native messages over HTTP, and HTTP and the native protocol seeing the same data."""

from __future__ import annotations

import asyncio
import json

import pytest

from idnode.errors import HandleNotFound
from idnode.http.native import NATIVE_TYPE
from idnode.protocol.bodies import (
    ChallengeAnswer,
    ChallengeBody,
    CreateHandleResponse,
    HandleRequest,
    ResolutionRequest,
    ResolutionResponse,
    ValuesRequest,
)
from idnode.protocol.codes import OpCode, ResponseCode
from idnode.protocol.message import Message
from idnode.protocol.types.hs_site import TransportProtocol
from idnode.protocol.values import HandleValue
from tests.http.conftest import PREFIX, PREFIX_HANDLE, InProcess, live_client
from tests.server.nodeutil import RunningNode, admin_value

PV = f"{PREFIX}/PV-2026-000123"
NATIVE = {"Content-Type": NATIVE_TYPE, "Accept": NATIVE_TYPE}


def exchange(api: InProcess, message: Message, path: str = "/", prefix: bytes = b"") -> Message:
    r = api.post(path, content=prefix + message.encode(), headers=NATIVE)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == NATIVE_TYPE
    return Message.decode(r.content)


@pytest.mark.parametrize("path", ["/", "/api/handles/x", "/any/where"])
def test_resolution_over_http(api: InProcess, node: RunningNode, path: str) -> None:
    request = node.client().build(OpCode.RESOLUTION, ResolutionRequest(PV, (1,), ()))
    response = exchange(api, request, path)
    assert response.response_code == ResponseCode.SUCCESS
    assert response.request_id == request.request_id
    assert isinstance(response.body, ResolutionResponse)
    assert [v.index for v in response.body.values] == [1]


def test_leading_newline_is_skipped(api: InProcess, node: RunningNode) -> None:
    request = node.client().build(OpCode.RESOLUTION, ResolutionRequest(PV, (1,)))
    assert exchange(api, request, prefix=b"\r").response_code == ResponseCode.SUCCESS


def test_errors_come_back_native(api: InProcess, node: RunningNode) -> None:
    request = node.client().build(OpCode.RESOLUTION, ResolutionRequest(f"{PREFIX}/NOPE"))
    assert exchange(api, request).response_code == ResponseCode.HANDLE_NOT_FOUND
    # a request that decodes badly but can be addressed gets a native protocol error
    broken = bytearray(request.encode())
    broken[-5] ^= 0xFF
    r = api.post("/", content=bytes(broken[:-3]), headers=NATIVE)
    assert r.status_code == 200
    assert Message.decode(r.content).response_code == ResponseCode.PROTOCOL_ERROR


def test_challenge_response_over_http(api: InProcess, node: RunningNode) -> None:
    """Administration over HTTP: the 402 challenge, the answer in a second POST."""
    client = node.client(node.secret_credentials)
    handle = f"{PREFIX}/NATIVE-OVER-HTTP"
    values = (
        HandleValue(1, "URL", b"https://native.example"),
        admin_value(100, 0x0FFF, PREFIX_HANDLE, 200),
    )
    request = client.build(OpCode.CREATE_HANDLE, ValuesRequest(handle, values))
    challenge = exchange(api, request)
    assert challenge.response_code == ResponseCode.AUTHENTICATION_NEEDED
    assert isinstance(challenge.body, ChallengeBody) and challenge.request_digest is not None
    version = min(challenge.version, challenge.suggested_version or challenge.version)
    credentials = node.secret_credentials
    signed = credentials.answer(challenge.body.nonce, challenge.request_digest.digest, version)
    answer_body = ChallengeAnswer(
        credentials.auth_type, credentials.handle, credentials.index, signed
    )
    answer = client.build(OpCode.CHALLENGE_RESPONSE, answer_body).replace(
        session_id=challenge.session_id
    )
    response = exchange(api, answer)
    assert response.response_code == ResponseCode.SUCCESS and response.op == OpCode.CREATE_HANDLE
    assert isinstance(response.body, CreateHandleResponse)
    assert (
        api.get(f"/api/handles/{handle}").json()["values"][0]["data"]["value"]
        == "https://native.example"
    )


def test_http_write_seen_natively(api: InProcess, node: RunningNode, admin: dict[str, str]) -> None:
    handle = f"{PREFIX}/CROSS-HTTP"
    body = [
        {"index": 1, "type": "URL", "data": "https://cross.example"},
        {
            "index": 100,
            "type": "HS_ADMIN",
            "data": {
                "format": "admin",
                "value": {"handle": PREFIX_HANDLE, "index": 200, "permissions": "011111110011"},
            },
        },
    ]
    r = api.put(
        f"/api/handles/{handle}",
        content=json.dumps(body),
        headers={**admin, "Content-Type": "application/json"},
    )
    assert r.status_code == 200
    values = asyncio.run(node.client().resolve(handle))
    assert {v.index: v.data for v in values}[1] == b"https://cross.example"
    assert api.delete(f"/api/handles/{handle}?index=1", headers=admin).status_code == 200
    assert [v.index for v in asyncio.run(node.client().resolve(handle))] == [100]
    assert api.delete(f"/api/handles/{handle}", headers=admin).status_code == 200
    with pytest.raises(HandleNotFound):
        asyncio.run(node.client().resolve(handle))


def test_native_write_seen_over_http(api: InProcess, node: RunningNode) -> None:
    handle = f"{PREFIX}/CROSS-NATIVE"
    client = node.client(node.key_credentials)
    values = [
        HandleValue(1, "URL", b"https://n.example"),
        admin_value(100, 0x0FFF, PREFIX_HANDLE, 200),
    ]
    asyncio.run(client.create_handle(handle, values))
    r = api.get(f"/api/handles/{handle}?index=1")
    assert r.json()["values"][0]["data"] == {"format": "string", "value": "https://n.example"}
    asyncio.run(client.add_values(handle, [HandleValue(2, "EMAIL", b"n@example.com")]))
    assert {v["index"] for v in api.get(f"/api/handles/{handle}").json()["values"]} == {1, 2, 100}
    asyncio.run(client.delete_handle(handle))
    assert api.get(f"/api/handles/{handle}").status_code == 404


def test_site_advertises_http(node: RunningNode) -> None:
    site = asyncio.run(node.client().get_site_info())
    http = [i for s in site.servers for i in s.interfaces if i.protocol == TransportProtocol.HTTP]
    assert len(http) == 1 and http[0].port == node.node.http_port and http[0].serves_admin


def test_native_over_the_real_listener(node: RunningNode) -> None:
    request = node.client().build(OpCode.GET_SITE_INFO, HandleRequest("/"))
    with live_client(node) as http:
        r = http.post("/", content=request.encode(), headers=NATIVE)
    assert r.status_code == 200 and r.headers["content-type"] == NATIVE_TYPE
    assert Message.decode(r.content).response_code == ResponseCode.SUCCESS
