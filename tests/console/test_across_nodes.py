"""The console across nodes: on the demo topology (:mod:`idnode.demo`), the enterprise node's
pages show the wafer maker's identifiers held by the secondary node, read through its
resolver, in the identifier page and in the trace graph."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from idnode.demo import pv_module
from tests.console.demo import running_demo

WAFER_LOT = "88.118.9/WF20260108-0001"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with (
        running_demo(tmp_path_factory.mktemp("demo")) as base,
        httpx.Client(base_url=base, timeout=15.0) as client,
    ):
        yield client


def test_trace_reaches_the_other_node(demo: httpx.Client) -> None:
    r = demo.get(f"/console/trace/{pv_module()}", params={"direction": "up", "lang": "en"})
    assert r.status_code == 200
    svg = r.text[r.text.index("<svg") : r.text.index("</svg>")]
    assert f'class="node remote" data-handle="{WAFER_LOT}"' in svg
    assert "Wafer lot" in svg  # its template's name, read from the secondary node too
    assert "88.118.9/PS20260105-0001" in svg


def test_identifier_page_of_the_other_node(demo: httpx.Client) -> None:
    r = demo.get(f"/console/id/{WAFER_LOT}", params={"lang": "zh"})
    assert r.status_code == 200
    assert "来自其他节点" in r.text  # read from another node
    assert 'data-type="ingot"' in r.text and "88.118.9/IG20260105-0001" in r.text
    r = demo.get("/console/resolve", params={"q": f"doi:{WAFER_LOT}"})
    assert r.status_code == 303
    r = demo.get("/console/id/88.118.9/NO-SUCH-LOT")
    assert r.status_code == 404


def test_home_examples(demo: httpx.Client) -> None:
    r = demo.get("/", headers={"Accept": "text/html"})
    assert r.status_code == 200 and "(01)06912345678902" in r.text  # the examples
