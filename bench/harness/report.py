"""The results: one :class:`Row` per (size, server, interface), printed as Markdown tables with
the ratios idnode/reference, the targets of issue #8, how latency changes with the number of
identifiers, and the machine; :func:`write_docs` puts the same text between the
``<!-- bench:start -->`` and ``<!-- bench:end -->`` markers of ``docs/performance.md``.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import re
import sqlite3
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Row", "machine", "render", "write_docs"]

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"
IDNODE_HANDLE = ("UDP", "TCP")
IDNODE_HTTP = ("HTTP API", "HTTP proxy")


@dataclass
class Row:
    size: int
    server: str
    """``idnode SQLite``, ``idnode PostgreSQL``, ``Knot`` or ``nginx``."""
    interface: str
    """UDP, TCP, HTTP API, HTTP proxy (idnode); UDP (Knot); HTTP (nginx)."""
    tool: str
    """``loadgen`` (bench/harness/loadgen.py), ``dnsperf`` or ``wrk``."""
    peak_qps: float
    p50: float
    """Seconds; for dnsperf the mean (it gives no percentiles)."""
    p99: float
    errors: int
    """Error replies and lost requests at peak."""
    cpu_us: float
    """Server CPU (user + system) per answered query at peak, microseconds."""
    rss: int
    """Server resident memory after the peak run, bytes."""
    bytes_per_id: float
    half_qps: float = math.nan
    half_p50: float = math.nan
    half_p99: float = math.nan
    db_cpu_us: float = math.nan
    """PostgreSQL's own CPU per query (idnode PostgreSQL rows)."""


def _num(x: float, digits: int = 0) -> str:
    return "–" if math.isnan(x) else f"{x:,.{digits}f}"


def _ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "–"
    ms = seconds * 1000
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def _size(n: int) -> str:
    exp = round(math.log10(n)) if n > 0 else 0
    return f"10^{exp}" if 10**exp == n else f"{n:,}"


def results_table(rows: list[Row]) -> list[str]:
    out = [
        "| ids | server | interface | tool | peak q/s | p50 ms | p99 ms | errors "
        "| half-load q/s | p50 ms | p99 ms | CPU µs/q | RSS MB | bytes/id |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        p50 = ("avg " if r.tool == "dnsperf" else "") + _ms(r.p50)
        cpu = _num(r.cpu_us)
        if not math.isnan(r.db_cpu_us):
            cpu += f" + {_num(r.db_cpu_us)} db"
        out.append(
            f"| {_size(r.size)} | {r.server} | {r.interface} | {r.tool} | {_num(r.peak_qps)} "
            f"| {p50} | {_ms(r.p99)} | {r.errors:,} | {_num(r.half_qps)} | {_ms(r.half_p50)} "
            f"| {_ms(r.half_p99)} | {cpu} | {_num(r.rss / 2**20)} | {_num(r.bytes_per_id)} |"
        )
    return out


def _find(rows: Iterable[Row], size: int, server: str, interface: str, tool: str) -> Row | None:
    return next(
        (
            r
            for r in rows
            if (r.size, r.server, r.interface, r.tool) == (size, server, interface, tool)
        ),
        None,
    )


def _pct(a: float, b: float) -> str:
    return "–" if not b or math.isnan(a) or math.isnan(b) else f"{a / b:.0%}"


def _times(a: float, b: float) -> str:
    return "–" if not b or math.isnan(a) or math.isnan(b) else f"{a / b:.1f}×"


def ratio_table(rows: list[Row]) -> list[str]:
    out = [
        "| ids | backend | UDP q/s ÷ Knot (dnsperf) | UDP q/s ÷ Knot (loadgen) "
        "| UDP CPU/q ÷ Knot's | HTTP API q/s ÷ nginx | proxy q/s ÷ nginx | HTTP CPU/q ÷ nginx's |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sorted({r.size for r in rows}):
        knot = _find(rows, size, "Knot", "UDP", "dnsperf")
        knot_lg = _find(rows, size, "Knot", "UDP", "loadgen")
        nginx = _find(rows, size, "nginx", "HTTP", "wrk")
        for backend in ("SQLite", "PostgreSQL"):
            server = f"idnode {backend}"
            udp = _find(rows, size, server, "UDP", "loadgen")
            api = _find(rows, size, server, "HTTP API", "wrk")
            proxy = _find(rows, size, server, "HTTP proxy", "wrk")
            if udp is None and api is None:
                continue
            nan = math.nan
            out.append(
                f"| {_size(size)} | {backend} "
                f"| {_pct(udp.peak_qps if udp else nan, knot.peak_qps if knot else nan)} "
                f"| {_pct(udp.peak_qps if udp else nan, knot_lg.peak_qps if knot_lg else nan)} "
                f"| {_times(udp.cpu_us if udp else nan, knot.cpu_us if knot else nan)} "
                f"| {_pct(api.peak_qps if api else nan, nginx.peak_qps if nginx else nan)} "
                f"| {_pct(proxy.peak_qps if proxy else nan, nginx.peak_qps if nginx else nan)} "
                f"| {_times(api.cpu_us if api else nan, nginx.cpu_us if nginx else nan)} |"
            )
    return out


def scaling_table(rows: list[Row]) -> list[str]:
    """p50/p99 at half load by size, per (server, interface, tool) measured at several sizes."""
    sizes = sorted({r.size for r in rows})
    if len(sizes) < 2:
        return []
    head = " | ".join(f"{_size(s)} p50 / p99 ms" for s in sizes)
    out = [
        f"| server | interface | {head} | p50 {_size(sizes[-1])} ÷ {_size(sizes[0])} |",
        "|---|---|" + "---:|" * (len(sizes) + 1),
    ]
    keys = dict.fromkeys((r.server, r.interface, r.tool) for r in rows if r.tool != "dnsperf")
    for server, interface, tool in keys:
        found = [_find(rows, s, server, interface, tool) for s in sizes]
        cells = [f"{_ms(r.half_p50)} / {_ms(r.half_p99)}" if r else "–" for r in found]
        first, last = found[0], found[-1]
        change = _times(last.half_p50, first.half_p50) if first and last else "–"
        out.append(f"| {server} | {interface} | {' | '.join(cells)} | {change} |")
    return out


def targets(rows: list[Row]) -> list[str]:
    """One line per target and measurement: the figure and met / not met."""
    out: list[str] = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    for size in sorted({r.size for r in rows}):
        # Knot measured by dnsperf and by idnode's own load generator: a target is met only
        # against both (the same tool for both servers is the fairer of the two).
        knots = [
            (tool, k)
            for tool in ("dnsperf", "loadgen")
            if (k := _find(rows, size, "Knot", "UDP", tool)) is not None
        ]
        nginx = _find(rows, size, "nginx", "HTTP", "wrk")
        for backend in ("SQLite", "PostgreSQL"):
            server = f"idnode {backend}"
            where = f"{_size(size)}, {backend}"
            udp = _find(rows, size, server, "UDP", "loadgen")
            if udp and knots:
                shares = [(tool, udp.peak_qps / k.peak_qps, k) for tool, k in knots]
                said = ", ".join(
                    f"{share:.0%} of Knot under {tool} ({udp.peak_qps:,.0f} vs {k.peak_qps:,.0f})"
                    for tool, share, k in shares
                )
                ok = min(share for _, share, _ in shares) >= 0.6
                out.append(f"- UDP ≥ 60% of Knot's q/s ({where}): {said}: {verdict(ok)}")
                cpus = [
                    (tool, udp.cpu_us / k.cpu_us if k.cpu_us else math.nan, k) for tool, k in knots
                ]
                said = ", ".join(
                    f"{cpu:.1f}× under {tool} ({udp.cpu_us:,.0f} vs {k.cpu_us:,.1f} µs)"
                    for tool, cpu, k in cpus
                )
                ok = max(cpu for _, cpu, _ in cpus) <= 2
                out.append(f"- UDP CPU/query ≤ 2× Knot's ({where}): {said}: {verdict(ok)}")
            for interface in IDNODE_HTTP:
                http = _find(rows, size, server, interface, "wrk")
                if http and nginx:
                    share = http.peak_qps / nginx.peak_qps
                    out.append(
                        f"- {interface} ≥ 50% of nginx's q/s ({where}): {share:.0%} "
                        f"({http.peak_qps:,.0f} vs {nginx.peak_qps:,.0f}): "
                        f"{verdict(share >= 0.5)}"
                    )
            half = [
                r
                for r in rows
                if r.size == size and r.server == server and not math.isnan(r.half_p99)
            ]
            if half:
                worst = max(half, key=lambda r: r.half_p99)
                ok = worst.half_p99 <= 0.002
                detail = ", ".join(f"{r.interface} {_ms(r.half_p99)}" for r in half)
                out.append(f"- p99 ≤ 2 ms at half of peak ({where}): {detail} ms: {verdict(ok)}")
    sizes = sorted({r.size for r in rows})
    if len(sizes) > 1:
        for backend in ("SQLite", "PostgreSQL"):
            server = f"idnode {backend}"
            changes = []
            for interface in (*IDNODE_HANDLE, *IDNODE_HTTP):
                tool = "loadgen" if interface in IDNODE_HANDLE else "wrk"
                a = _find(rows, sizes[0], server, interface, tool)
                b = _find(rows, sizes[-1], server, interface, tool)
                if a and b and a.half_p50 > 0:
                    changes.append((interface, b.half_p50 / a.half_p50))
            if changes:
                flat = all(c <= 1.25 for _, c in changes)
                detail = ", ".join(f"{i} {c:.2f}×" for i, c in changes)
                out.append(
                    f"- latency flat {_size(sizes[0])} → {_size(sizes[-1])} ({backend}; p50 at "
                    f"half load, flat = at most 1.25×): {detail}: {verdict(flat)}"
                )
    return out


def _run(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return (out.stdout + out.stderr).strip()


def _deb(package: str) -> str:
    return _run(["dpkg-query", "-W", "-f=${Version}", package]) or "not installed"


def machine(postgres_version: str | None) -> list[str]:
    cpu = re.search(r"Model name:\s*(.+)", _run(["lscpu"]))
    mem = re.search(r"MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text())
    gib = int(mem.group(1)) / 2**20 if mem else math.nan
    os_name = "Linux"
    os_release = Path("/etc/os-release")
    if os_release.exists():
        m = re.search(r'PRETTY_NAME="([^"]+)"', os_release.read_text())
        os_name = m.group(1) if m else os_name
    versions = {name: importlib.metadata.version(name) for name in ("uvloop", "uvicorn", "asyncpg")}
    return [
        f"- CPU: {cpu.group(1) if cpu else platform.processor()}, {os.cpu_count()} cores "
        f"(shared with other work while measured), memory {gib:.0f} GiB",
        f"- {os_name}, kernel {platform.release()}; CPython {platform.python_version()}, "
        f"uvloop {versions['uvloop']}, uvicorn {versions['uvicorn']}, "
        f"asyncpg {versions['asyncpg']}, SQLite {sqlite3.sqlite_version}",
        f"- PostgreSQL {postgres_version or 'not installed'}; Knot DNS {_deb('knot')}, "
        f"nginx {_deb('nginx-common')}, dnsperf {_deb('dnsperf')}, wrk {_deb('wrk')} "
        "(Debian packages)",
    ]


def render(rows: list[Row], header: list[str], notes: list[str], skipped: list[str]) -> list[str]:
    out = [*header, "", *results_table(rows), "", "Ratios idnode ÷ reference (peak):", ""]
    out += ratio_table(rows)
    scaling = scaling_table(rows)
    if scaling:
        out += ["", "Latency at half load by number of identifiers:", "", *scaling]
    out += ["", "Targets of issue #8:", "", *(targets(rows) or ["- (no reference rows)"])]
    if skipped:
        out += ["", "Not measured:", "", *(f"- {s}" for s in skipped)]
    if notes:
        out += ["", *notes]
    return out


def write_docs(path: Path, lines: list[str]) -> None:
    """Replace the text between the markers in ``path`` (appended as a new section if absent)."""
    text = path.read_text(encoding="utf-8")
    block = "\n".join([START, *lines, END])
    if START in text and END in text:
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(END)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n## Resolution benchmark\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
