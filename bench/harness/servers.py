"""The servers under test, each a child process on 127.0.0.1 with its files in a temp dir.

* idnode: ``idnode serve --config <node>/idnode.toml --port P --http-port H`` (one process:
  UDP, TCP and HTTP in one event loop).
* Knot DNS: ``knotd -c <dir>/knot.conf`` in the foreground, zone loaded whole from the zone
  file, no journal, no zone file sync, semantic checks off; UDP workers as Knot's default
  (one per core).
* nginx: ``nginx -c <conf> -p <prefix> -e <log>`` with ``daemon off``, one worker per core,
  no access log, ``sendfile``, keep-alive connections without a request limit.

Each ``start_*`` returns once the server answers a real request for identifier 0 (bounded
wait), or raises RuntimeError with the end of the server's log.
"""

from __future__ import annotations

import os
import socket
import time
import urllib.request
from pathlib import Path

from harness.loadgen import DNS_ZONE, DnsRequests, HandleRequests
from harness.procs import Child, find_tool, wait_for

__all__ = ["start_idnode", "start_knot", "start_nginx", "udp_probe"]


def udp_probe(port: int, dns: bool, timeout: float = 0.5) -> bool:
    """Whether one request for identifier 0 gets a successful answer."""
    requests = DnsRequests() if dns else HandleRequests()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(requests.request(4242, 0), ("127.0.0.1", port))
            data = sock.recv(4096)
        except OSError:
            return False
    got = requests.reply(data)
    return got is not None and got[1]


def _ready(child: Child, check: bool) -> bool:
    if not child.alive():
        raise RuntimeError(f"{child.name} exited:\n{child.log_tail()}")
    return check


def start_idnode(
    name: str, config: Path, port: int, http_port: int, log: Path, seconds: float = 120
) -> Child:
    from harness.datasets import IDNODE

    argv = [IDNODE, "serve", "--config", str(config)]
    argv += ["--port", str(port), "--http-port", str(http_port)]
    child = Child.start(name, argv, log)
    probe = f"http://127.0.0.1:{http_port}/api/handles/88.118.8/BENCH-0"
    if not wait_for(lambda: _ready(child, udp_probe(port, dns=False) and _http_ok(probe)), seconds):
        child.stop()
        raise RuntimeError(f"{name} did not answer within {seconds:.0f} s:\n{child.log_tail()}")
    return child


def _http_ok(address: str) -> bool:
    try:
        with urllib.request.urlopen(address, timeout=1.0) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


KNOT_CONF = """\
server:
    listen: 127.0.0.1@{port}
    rundir: "{dir}"
    tcp-workers: 1
    background-workers: 1

database:
    storage: "{dir}/db"

log:
  - target: stderr
    any: warning

template:
  - id: default
    storage: "{dir}"
    semantic-checks: off
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none

zone:
  - domain: {zone}.
    file: "{zone}.zone"
"""


def start_knot(directory: Path, port: int, seconds: float) -> tuple[Child, float]:
    """Knot serving ``directory/bench.test.zone``; also the seconds it took to answer."""
    knotd = find_tool("knotd")
    if knotd is None:
        raise RuntimeError("knotd not found (Debian: apt-get install knot)")
    conf = directory / "knot.conf"
    conf.write_text(KNOT_CONF.format(port=port, dir=directory, zone=DNS_ZONE))
    started = time.monotonic()
    child = Child.start("knotd", [knotd, "-c", str(conf)], directory / "knotd.log")
    if not wait_for(lambda: _ready(child, udp_probe(port, dns=True)), seconds, 0.5):
        child.stop()
        raise RuntimeError(f"Knot did not answer within {seconds:.0f} s:\n{child.log_tail()}")
    return child, time.monotonic() - started


NGINX_CONF = """\
worker_processes {workers};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    default_type application/json;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        charset utf-8;
        charset_types application/json;
    }}
}}
"""


def start_nginx(directory: Path, root: Path, port: int, seconds: float = 30) -> Child:
    """nginx serving the files under ``root``."""
    nginx = find_tool("nginx")
    if nginx is None:
        raise RuntimeError("nginx not found (Debian: apt-get install nginx)")
    (directory / "tmp").mkdir(parents=True, exist_ok=True)
    # Workers run as nobody when nginx starts as root: the caller makes the directories
    # readable by others (the temporary directory is 0700).
    conf = directory / "nginx.conf"
    workers = os.cpu_count() or 1
    conf.write_text(NGINX_CONF.format(workers=workers, dir=directory, root=root, port=port))
    argv = [nginx, "-c", str(conf), "-p", str(directory), "-e", str(directory / "error.log")]
    child = Child.start("nginx", argv, directory / "nginx.log")
    probe = f"http://127.0.0.1:{port}/api/handles/88.118.8/BENCH-0"
    if not wait_for(lambda: _ready(child, _http_ok(probe)), seconds):
        child.stop()
        raise RuntimeError(
            f"nginx did not answer within {seconds:.0f} s:\n{child.log_tail()}"
            + (directory / "error.log").read_text(errors="replace")[-2000:]
        )
    return child
