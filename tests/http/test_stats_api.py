"""``GET /api/stats`` and ``POST /api/report``: a child node (enterprise prefix 88.118.8)
reports its prefixes and counts to its parent (secondary prefix 88.118), authenticated with its
server key as the HS_PUBKEY the parent holds on ``0.NA/88.118.8``."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from idnode.bootstrap import init_node
from idnode.protocol.types.hs_pubkey import PublicKeyData, load_private_key
from idnode.protocol.values import HandleValue
from idnode.server.authz import Identity
from idnode.server.config import NodeConfig, ReportConfig
from idnode.store.stats import day_of
from tests.http.conftest import basic
from tests.server.nodeutil import RunningNode, running_node

CHILD = "88.118.8"
PARENT = "88.118"
REPORTER = Identity(f"0.NA/{CHILD}", 320)
TODAY = day_of(int(time.time()) // 86_400)


@dataclasses.dataclass
class Pair:
    parent: RunningNode
    child: RunningNode

    def parent_get(self, path: str, **kwargs: Any) -> httpx.Response:
        url = f"http://127.0.0.1:{self.parent.node.http_port}{path}"
        return httpx.get(url, timeout=10, **kwargs)

    @property
    def parent_admin(self) -> dict[str, str]:
        return basic(f"300:0.NA/{PARENT}", self.parent.admin_secret)


def _wait(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    base = tmp_path_factory.mktemp("report")
    asyncio.run(init_node(base / "parent", PARENT, port=0))
    asyncio.run(init_node(base / "child", CHILD, port=0, demo=True))
    child_key = load_private_key((base / "child" / "server-key.pem").read_bytes())
    pubkey = PublicKeyData.from_public_key(child_key.public_key()).to_bytes()
    with running_node(base / "parent") as parent:
        # The parent delegates 88.118.8 and holds the child's key to check its reports.
        delegation = [HandleValue(REPORTER.index, "HS_PUBKEY", pubkey)]
        parent.put_handle(f"0.NA/{CHILD}", delegation)
        path = base / "child" / "idnode.toml"
        report = ReportConfig(f"http://127.0.0.1:{parent.node.http_port}", REPORTER, 3600.0)
        path.write_text(dataclasses.replace(NodeConfig.load(path), report=report).dump())
        with running_node(base / "child") as child:
            yield Pair(parent, child)


def _children(pair: Pair) -> list[dict[str, Any]]:
    reply = pair.parent_get("/api/stats?children=1", headers=pair.parent_admin)
    assert reply.status_code == 200, reply.text
    children: list[dict[str, Any]] = reply.json()["children"]
    return children


def test_the_child_reports_at_start_and_the_parent_shows_it(pair: Pair) -> None:
    _wait(lambda: _children(pair), "the first report")
    (child,) = _children(pair)
    assert child["child"] == str(REPORTER)
    assert child["homed"] == [CHILD]
    (registered,) = child["stats"]
    assert registered["prefix"] == CHILD and registered["day"] == TODAY
    assert registered["registrations"] == 4  # the demo identifiers


def test_counts_reach_the_parent_with_the_next_report(pair: Pair) -> None:
    handle = f"{CHILD}/PV-2026-000123"
    for tcp in (False, True, False):
        asyncio.run(pair.child.client(tcp=tcp).resolve(handle))
    reporter = pair.child.node.reporter
    assert reporter is not None
    pair.child.call(reporter.report())
    pair.child.call(reporter.report())  # totals: a repeated report changes nothing
    (child,) = _children(pair)
    (row,) = child["stats"]
    assert row["resolutions"] >= 3 and row["registrations"] == 4
    assert child["totals"]["resolutions"] == row["resolutions"]
    # the child's own view agrees
    url = f"http://127.0.0.1:{pair.child.node.http_port}/api/stats?prefix={CHILD}"
    own = httpx.get(url, headers=basic(f"300:0.NA/{CHILD}", pair.child.admin_secret)).json()
    assert own["stats"] == child["stats"]


def test_stats_need_a_server_administrator(pair: Pair) -> None:
    reply = pair.parent_get("/api/stats")
    assert (reply.status_code, reply.json()["responseCode"]) == (401, 402)
    wrong = basic(f"300:0.NA/{PARENT}", b"not the secret")
    assert pair.parent_get("/api/stats", headers=wrong).status_code == 401
    reply = pair.parent_get("/api/stats?from=2026-13-01", headers=pair.parent_admin)
    assert (reply.status_code, reply.json()["responseCode"]) == (400, 4)
    reply = pair.parent_get(f"/api/stats?prefix=0.NA&from={TODAY}", headers=pair.parent_admin)
    assert reply.status_code == 200
    assert reply.json()["stats"][0]["registrations"] >= 1  # its own prefix handle


def test_a_report_from_an_identity_the_parent_did_not_delegate_is_refused(pair: Pair) -> None:
    url = f"http://127.0.0.1:{pair.parent.node.http_port}/api/report"
    document = {"homed": [PARENT], "delegated": [], "counts": []}
    reply = httpx.post(url, json=document, headers=pair.parent_admin)  # its own prefix
    assert (reply.status_code, reply.json()["responseCode"]) == (403, 401)
    reply = httpx.post(url, json=document)
    assert reply.status_code == 401


def test_a_report_naming_another_prefix_is_refused(pair: Pair) -> None:
    from idnode.errors import InvalidValue
    from idnode.server.stats import accept_report

    store = pair.parent.node.store
    bad = {"homed": ["88.119.1"], "delegated": [], "counts": []}
    with pytest.raises(InvalidValue, match="outside"):
        pair.parent.call(accept_report(store, REPORTER, bad))
    day = {"homed": [CHILD], "counts": [{"prefix": CHILD, "day": "yesterday"}]}
    with pytest.raises(InvalidValue, match="day"):
        pair.parent.call(accept_report(store, REPORTER, day))
