"""``GET /metrics`` on a real node: the Prometheus text format (read back with
prometheus_client's parser), counters that move with traffic over UDP, TCP and HTTP, and the
``metrics`` setting (admin-only by default, public, off)."""

from __future__ import annotations

import dataclasses
import itertools
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from idnode.protocol.bodies import ResolutionRequest
from idnode.protocol.codes import OpCode
from idnode.protocol.message import Message
from idnode.server.config import NodeConfig
from tests.http.conftest import basic
from tests.server.nodeutil import (
    PREFIX,
    RunningNode,
    create_node_dir,
    no_internal_errors,
    running_node,
    tcp_exchange,
    text_value,
    udp_exchange,
)

__all__ = ["no_internal_errors"]

HANDLE = f"{PREFIX}/METRICS-1"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _node_with(directory: Path, metrics: str) -> None:
    create_node_dir(directory)
    path = directory / "idnode.toml"
    config = dataclasses.replace(NodeConfig.load(path), metrics=metrics)
    path.write_text(config.dump(), encoding="utf-8")


@pytest.fixture(scope="module")
def admin_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    directory = tmp_path_factory.mktemp("metrics")
    create_node_dir(directory)
    with running_node(directory) as running:
        running.put_handle(HANDLE, [text_value(1, "URL", "https://example.com/m")])
        yield running


def _get(node: RunningNode, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    url = f"http://127.0.0.1:{node.node.http_port}{path}"
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _admin(node: RunningNode) -> dict[str, str]:
    return basic(f"300:0.NA/{PREFIX}", node.admin_secret)


def _samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name, frozenset(sample.labels.items())] = sample.value
    return out


def _value(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def _resolve(node: RunningNode, request_id: int) -> Message:
    data = Message(
        op=OpCode.RESOLUTION, body=ResolutionRequest(HANDLE), request_id=request_id
    ).encode()
    reply = udp_exchange(node.port, data)
    assert reply is not None
    return Message.decode(reply)


def test_admin_only_by_default(admin_node: RunningNode) -> None:
    status, _ = _get(admin_node, "/metrics")
    assert status == 401
    status, _ = _get(admin_node, "/metrics", basic(f"300:0.NA/{PREFIX}", b"wrong secret"))
    assert status in (401, 403)
    status, text = _get(admin_node, "/metrics", _admin(admin_node))
    assert status == 200
    assert "# TYPE idnode_requests_total counter" in text


def test_format_parses_and_counters_move(admin_node: RunningNode) -> None:
    _, text = _get(admin_node, "/metrics", _admin(admin_node))
    before = _samples(text)
    for n in range(5):
        assert _resolve(admin_node, 10 + n).response_code == 1
    tcp = Message(
        op=OpCode.RESOLUTION, body=ResolutionRequest(HANDLE), request_id=99, flags=0
    ).encode()
    assert Message.decode(tcp_exchange(admin_node.port, tcp)).response_code == 1
    status, _ = _get(admin_node, f"/api/handles/{HANDLE}")
    assert status == 200
    _, text = _get(admin_node, "/metrics", _admin(admin_node))
    after = _samples(text)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    udp = {"transport": "udp", "op": "resolution", "code": "success"}
    assert moved("idnode_requests_total", **udp) == 5
    assert moved("idnode_requests_total", transport="tcp", op="resolution") == 1
    assert moved("idnode_request_duration_seconds_count", transport="udp") == 5
    assert moved("idnode_request_duration_seconds_bucket", transport="udp", le="+Inf") == 5
    assert moved("idnode_http_requests_total", route="api_handles", status="200") == 1
    # four of the six resolutions were answered from the cache (the first UDP one filled it;
    # the TCP one and the JSON API's are other keys or paths)
    assert moved("idnode_response_cache_hits_total") >= 4
    assert _value(after, "idnode_response_cache_entries") >= 1
    # the record reads of the fast paths (UDP, TCP and the JSON API) are timed
    assert _value(after, "idnode_store_duration_seconds_count", operation="get_record") >= 1
    # cumulative buckets never decrease
    buckets = sorted(
        (float(dict(ls)["le"]), v)
        for (n, ls), v in after.items()
        if n == "idnode_request_duration_seconds_bucket" and ("transport", "udp") in ls
    )
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(buckets))


def test_public_and_off(tmp_path: Path) -> None:
    public = tmp_path / "public"
    public.mkdir()
    _node_with(public, "public")
    with running_node(public) as running:
        status, text = _get(running, "/metrics")
        assert status == 200
        assert _samples(text)
    off = tmp_path / "off"
    off.mkdir()
    _node_with(off, "off")
    with running_node(off) as running:
        assert running.node.dispatcher.metrics is None
        status, text = _get(running, "/metrics", _admin(running))
        assert "idnode_requests_total" not in text
        assert _resolve(running, 1).response_code in (1, 100)  # serving goes on as before
