"""Abuse limits on a live node (native protocol and HTTP on 127.0.0.1): failed
authentications block the address, writes are rate limited, and no secret reaches the logs."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from idnode.client import SecretKeyCredentials
from idnode.errors import AuthenticationFailed, ServerBusy
from idnode.protocol.values import HandleValue
from idnode.server.config import NodeConfig

from ..http.conftest import basic
from .nodeutil import PREFIX, PREFIX_HANDLE, TIMEOUT, RunningNode, create_node_dir, running_node


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[RunningNode]:
    directory = tmp_path / "node"
    create_node_dir(directory, limits=True)
    path = directory / "idnode.toml"
    config = dataclasses.replace(
        NodeConfig.load(path), auth_failures_limit=3, auth_block=300, writes_per_second=2
    )
    path.write_text(config.dump(), encoding="utf-8")
    with running_node(directory) as node:
        yield node


def url(text: str) -> list[HandleValue]:
    return [HandleValue(1, "URL", text.encode())]


def test_failed_authentications_block_the_address(limited: RunningNode) -> None:
    wrong = limited.client(SecretKeyCredentials(PREFIX_HANDLE, 300, b"guess"), tcp=True)
    right = limited.client(limited.secret_credentials, tcp=True)
    for i in range(3):
        with pytest.raises(AuthenticationFailed):
            asyncio.run(wrong.create_handle(f"{PREFIX}/GUESS-{i}", url("https://x/")))
    with pytest.raises(ServerBusy):  # now even the right secret is refused, before any check
        asyncio.run(right.create_handle(f"{PREFIX}/RIGHT", url("https://x/")))
    http = f"http://127.0.0.1:{limited.node.http_port}/api/handles/{PREFIX}/RIGHT-HTTP"
    reply = httpx.put(
        http,
        json={"values": [{"index": 1, "type": "URL", "data": "https://x/"}]},
        headers=basic(f"300:{PREFIX_HANDLE}", limited.admin_secret),
        timeout=TIMEOUT,
    )
    assert reply.status_code == 503 and reply.json()["responseCode"] == 3
    assert limited.get_handle(f"{PREFIX}/RIGHT") is None
    assert limited.node.dispatcher.limiter.refused["auth"] >= 2


def test_http_password_guessing_counts_too(limited: RunningNode) -> None:
    base = f"http://127.0.0.1:{limited.node.http_port}/api/handles/{PREFIX}/H"
    body = {"values": [{"index": 1, "type": "URL", "data": "https://x/"}]}
    codes = []
    for i in range(5):
        reply = httpx.put(
            f"{base}{i}", json=body, headers=basic(f"300:{PREFIX_HANDLE}", f"guess{i}"),
            timeout=TIMEOUT,
        )  # fmt: skip
        codes.append(reply.status_code)
    assert codes == [401, 401, 401, 503, 503]


def test_writes_are_rate_limited_per_address(limited: RunningNode) -> None:
    client = limited.client(limited.secret_credentials, tcp=True)

    async def burst() -> list[str]:
        outcomes = []
        for i in range(15):  # the bucket holds 10 (5 s at 2/s)
            try:
                await client.create_handle(f"{PREFIX}/BURST-{i}", url("https://x/"))
                outcomes.append("ok")
            except ServerBusy:
                outcomes.append("busy")
        return outcomes

    outcomes = asyncio.run(burst())
    assert outcomes.count("ok") >= 10 and "busy" in outcomes
    assert outcomes[:10] == ["ok"] * 10
    created = [h for h in limited.list_handles() if "/BURST-" in h]
    assert len(created) == outcomes.count("ok")  # a refused write changed nothing
    # Reads are not limited.
    reader = limited.client()
    for _ in range(20):
        asyncio.run(reader.resolve(f"{PREFIX}/BURST-0"))


def test_secrets_never_reach_the_logs(
    limited: RunningNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = b"never-log-this-secret-7d41"
    wrong = limited.client(SecretKeyCredentials(PREFIX_HANDLE, 300, secret), tcp=True)
    with pytest.raises(AuthenticationFailed):
        asyncio.run(wrong.create_handle(f"{PREFIX}/X", url("https://x/")))
    httpx.put(
        f"http://127.0.0.1:{limited.node.http_port}/api/handles/{PREFIX}/Y",
        json={"values": [{"index": 1, "type": "URL", "data": "https://x/"}]},
        headers=basic(f"300:{PREFIX_HANDLE}", secret),
        timeout=TIMEOUT,
    )
    right = limited.client(limited.secret_credentials, tcp=True)
    asyncio.run(right.create_handle(f"{PREFIX}/Z", url("https://x/")))
    texts = [record.getMessage() for record in caplog.records]
    for needle in (secret.decode(), limited.admin_secret.decode()):
        assert not any(needle in text for text in texts)
