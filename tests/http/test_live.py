"""The HTTP interface on real sockets: HTTP and HTTPS (a self-signed certificate made here),
``idnode serve`` with its HTTP options, and the HTTP settings of the node configuration."""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import re
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from idnode.protocol.types.hs_pubkey import load_private_key
from idnode.protocol.types.hs_site import TransportProtocol
from idnode.server.config import NodeConfig
from idnode.server.node import build_site
from tests.http.conftest import PREFIX, PREFIX_HANDLE, basic, live_client
from tests.server.nodeutil import RunningNode, create_node_dir, running_node
from tests.tlsutil import make_certificate

PV = f"{PREFIX}/PV-2026-000123"


def test_http_listener(node: RunningNode) -> None:
    with live_client(node) as client:
        r = client.get(f"/api/handles/{PV}?index=1")
        assert r.status_code == 200 and r.json()["handle"] == PV
        assert r.headers["content-type"] == "application/json; charset=UTF-8"
        assert "server" not in r.headers
        r = client.get(f"/api/handles/{PREFIX}/NOPE")  # same connection, kept alive
        assert r.status_code == 404 and r.json()["responseCode"] == 100
        handle = f"{PREFIX}/LIVE-HTTP"
        body = [{"index": 1, "type": "URL", "data": "https://live.example"}]
        headers = {
            **basic(f"300:{PREFIX_HANDLE}", node.admin_secret),
            "Content-Type": "application/json",
        }
        r = client.put(
            f"/api/handles/{handle}?overwrite=false", content=json.dumps(body), headers=headers
        )
        assert r.status_code == 201 and r.json() == {"responseCode": 1, "handle": handle}
        r = client.put(
            f"/api/handles/{handle}",
            content=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 401 and r.json()["responseCode"] == 402
    assert node.get_handle(handle) is not None


def test_raw_request_paths_on_the_wire(node: RunningNode) -> None:
    """http.client sends the path as given: nothing is normalised on the way in."""
    assert node.node.http_port is not None
    conn = http.client.HTTPConnection(node.host, node.node.http_port, timeout=10)
    try:
        for path, status, handle in [
            ("/api/handles/88.118.8/../0.NA/88.118.8", 404, "88.118.8/../0.NA/88.118.8"),
            ("/api/handles/88.118.8%2fPV-2026-000123?index=1", 200, PV),
            ("/api/handles/hdl:88.118.8/PV-2026-000123", 400, "hdl:88.118.8/PV-2026-000123"),
        ]:
            conn.request("GET", path)
            response = conn.getresponse()
            body = json.loads(response.read())
            assert response.status == status, path
            assert body["handle"] == handle
    finally:
        conn.close()


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningNode, Path]]:
    directory = tmp_path_factory.mktemp("tlsnode")
    create_node_dir(directory)
    cert, _ = make_certificate(directory)
    config_path = directory / "idnode.toml"
    config = NodeConfig.load(config_path)
    config = dataclasses.replace(config, tls_cert="tls-cert.pem", tls_key="tls-key.pem")
    config_path.write_text(config.dump(), encoding="utf-8")
    with running_node(directory) as running:
        yield running, cert


def test_https_listener(tls_node: tuple[RunningNode, Path]) -> None:
    running, cert = tls_node
    port = running.node.http_port
    context = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context, timeout=10) as client:
        r = client.get(f"/api/handles/{PV}?index=1")
        assert r.status_code == 200 and r.json()["handle"] == PV
        r = client.post(
            "/api/sessions", headers=basic(f"300:{PREFIX_HANDLE}", running.admin_secret)
        )
        assert r.status_code == 201 and r.json()["authenticated"] is True
    with (
        pytest.raises(httpx.ConnectError),
        httpx.Client(base_url=f"https://127.0.0.1:{port}", timeout=5) as client,
    ):
        client.get("/api/openapi.json")  # not trusted without the certificate
    plain = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    with plain, pytest.raises(httpx.HTTPError):
        plain.get("/api/openapi.json").raise_for_status()
    interfaces = [i for s in running.node.site.servers for i in s.interfaces]
    assert any(i.protocol == TransportProtocol.HTTPS and i.port == port for i in interfaces)


def test_serve_command_http_options(tmp_path: Path) -> None:
    """`idnode serve --http-port 0 --tls-cert --tls-key` in a subprocess, stopped by SIGTERM."""
    create_node_dir(tmp_path)
    cert, key = make_certificate(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "idnode.cli", "serve", "--config", str(tmp_path / "idnode.toml"),
         "--http-port", "0", "--tls-cert", str(cert), "--tls-key", str(key)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        deadline, line = time.monotonic() + 30, ""
        while "idnode serving" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "serve exited"
        match = re.search(
            r"on [^ ]+:(\d+) \(UDP, TCP\), https://127\.0\.0\.1:(\d+)/ \(HTTPS\)", line
        )
        assert match, line
        # the start-up line's first "on HOST:PORT" stays the native port (other tests parse it)
        native = re.search(r"idnode serving .* on [^ ]+:(\d+)", line)
        assert native is not None and native.group(1) == match.group(1)
        context = ssl.create_default_context(cafile=str(cert))
        r = httpx.get(
            f"https://127.0.0.1:{match.group(2)}/api/handles/{PV}?index=1", verify=context
        )
        assert r.status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
        if proc.stderr is not None:
            proc.stderr.close()


def test_serve_command_rejects_half_tls(tmp_path: Path) -> None:
    create_node_dir(tmp_path)
    cert, _ = make_certificate(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "idnode.cli", "serve", "--config", str(tmp_path / "idnode.toml"),
         "--tls-cert", str(cert)],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 2 and "--tls-key" in result.stderr


def test_config_http_settings(tmp_path: Path) -> None:
    assert NodeConfig(tmp_path).http_port == 8000
    assert NodeConfig(tmp_path, port=0).http_port == 0  # ephemeral native port: ephemeral HTTP
    assert NodeConfig(tmp_path, port=0, http_port=8080).http_port == 8080
    config = NodeConfig(tmp_path, http_port=8443, tls_cert="c.pem", tls_key="k.pem")
    (tmp_path / "idnode.toml").write_text(config.dump(), encoding="utf-8")
    loaded = NodeConfig.load(tmp_path / "idnode.toml")
    assert loaded == dataclasses.replace(config, directory=tmp_path.resolve())
    assert loaded.tls_cert_path == tmp_path.resolve() / "c.pem"
    # no http_port in the file: no HTTP
    text = "[node]\nport = 2641\n"
    (tmp_path / "old.toml").write_text(text, encoding="utf-8")
    assert NodeConfig.load(tmp_path / "old.toml").http_port is None
    no_http = NodeConfig(tmp_path, http_port=None)
    assert "http_port" not in no_http.dump()
    with pytest.raises(ValueError, match="go together"):
        NodeConfig(tmp_path, tls_cert="c.pem")
    with pytest.raises(ValueError, match="out of range"):
        NodeConfig(tmp_path, http_port=70000)


def test_site_interfaces(tmp_path: Path) -> None:
    create_node_dir(tmp_path)
    key = load_private_key((tmp_path / "server-key.pem").read_bytes())
    base = NodeConfig.load(tmp_path / "idnode.toml")

    def protocols(config: NodeConfig, **kw: int) -> list[tuple[int, int, int]]:
        interfaces = build_site(config, key, 2641, **kw).servers[0].interfaces
        return [(i.type, i.protocol, i.port) for i in interfaces]

    assert protocols(dataclasses.replace(base, http_port=None)) == [(3, 1, 2641), (2, 0, 2641)]
    assert protocols(dataclasses.replace(base, http_port=8000)) == [
        (3, 1, 2641),
        (2, 0, 2641),
        (3, 2, 8000),
    ]
    tls = dataclasses.replace(base, http_port=8443, tls_cert="c", tls_key="k")
    assert protocols(tls, http_port=9443)[-1] == (3, 3, 9443)
