"""Resolution benchmark (`make bench`): idnode against Knot DNS and nginx on the same machine.

For each size (``--sizes``, default 10^4 and 10^6 identifiers; ``1e4,1e6,1e7`` is the full
run) it builds the data sets (``bench/harness/datasets.py``), then, one server at a time on
127.0.0.1:

* idnode on SQLite and on PostgreSQL (a throwaway server, as for the tests), each an
  ``idnode serve`` child process: resolution over UDP and TCP (the load generator of
  ``bench/harness/loadgen.py``), the HTTP JSON API and the HTTP proxy (``wrk``);
* Knot DNS serving the same number of TXT records over UDP: ``dnsperf``, and the same load
  generator as idnode's UDP;
* nginx serving the same records as static JSON files: ``wrk``, as idnode's HTTP.

Every measurement is a warm-up (``--warmup`` s) and a fixed-duration run (``--seconds``) at
peak (``--inflight`` requests in flight in total), then a run paced at half of that peak for
the latency at half load. It prints one table with request rates, p50/p99 latency, the
server's CPU time per query (``/proc/<pid>/stat``), resident memory and bytes on disk per
identifier, the ratios idnode/reference and the targets; ``--write-docs`` also puts them in
``docs/performance.md``. It never fails on a figure.

    .venv/bin/python bench/resolution.py                          # 1e4,1e6, 10 s runs
    .venv/bin/python bench/resolution.py --sizes 1e4 --seconds 3 --warmup 1
    .venv/bin/python bench/resolution.py --sizes 1e4,1e6,1e7 --write-docs   # the full run
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from harness import datasets, external, loadgen, report  # noqa: E402
from harness.procs import cpu_seconds, descendants, find_tool, free_port, rss_bytes  # noqa: E402
from harness.servers import start_idnode, start_knot, start_nginx  # noqa: E402

API = "/api/handles/88.118.8/BENCH-"
PROXY = "/88.118.8/BENCH-"
#: Knot's memory per TXT record, bytes, with room to spare (measured: 456 MB RSS at 10^6).
KNOT_BYTES_PER_RECORD = 1000


@dataclass(frozen=True)
class Sample:
    qps: float
    ok: int
    errors: int
    p50: float
    p99: float


Runner = Callable[[float | None, float], Sample]
Pids = Callable[[], list[int]]


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.rows: list[report.Row] = []
        self.skipped: list[str] = []
        self.notes: list[str] = []
        self.window = max(1, args.inflight // args.processes)

    # -- measuring ---------------------------------------------------------------------------

    def measure(
        self,
        size: int,
        server: str,
        interface: str,
        tool: str,
        run: Runner,
        pids: Pids,
        bytes_per_id: float,
        db_pids: Pids | None = None,
        half: bool = True,
    ) -> None:
        """Warm up, a peak run (CPU and memory of ``pids`` around it), then a run at half of
        the peak; adds a row and prints it."""
        args = self.args
        try:
            run(None, args.warmup)
            procs, dbs = pids(), (db_pids() if db_pids else [])
            cpu0, db0 = cpu_seconds(procs), cpu_seconds(dbs)
            peak = run(None, args.seconds)
            cpu1, db1 = cpu_seconds(procs), cpu_seconds(dbs)
            rss = rss_bytes(procs)
            low = run(peak.qps / 2, args.seconds) if half and peak.qps > 0 else None
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            self.skipped.append(f"{server} {interface} ({tool}) at {size:,}: {exc}")
            print(f"  {server} {interface} ({tool}): failed: {exc}", flush=True)
            return
        answered = max(peak.ok, 1)
        row = report.Row(
            size=size,
            server=server,
            interface=interface,
            tool=tool,
            peak_qps=peak.qps,
            p50=peak.p50,
            p99=peak.p99,
            errors=peak.errors,
            cpu_us=(cpu1 - cpu0) / answered * 1e6,
            rss=rss,
            bytes_per_id=bytes_per_id,
            db_cpu_us=(db1 - db0) / answered * 1e6 if db_pids else math.nan,
        )
        if low is not None:
            row.half_qps, row.half_p50, row.half_p99 = low.qps, low.p50, low.p99
        self.rows.append(row)
        half_text = "" if low is None else f"; half {low.qps:,.0f} q/s p99 {low.p99 * 1e3:.2f} ms"
        print(
            f"  {server} {interface} ({tool}): {peak.qps:,.0f} q/s p50 {peak.p50 * 1e3:.2f} "
            f"p99 {peak.p99 * 1e3:.2f} ms, {peak.errors} errors, "
            f"CPU {row.cpu_us:,.0f} µs/q{half_text}",
            flush=True,
        )

    def loadgen_runner(self, kind: loadgen.Kind, port: int, count: int) -> Runner:
        def run(rate: float | None, seconds: float) -> Sample:
            load = loadgen.Load(kind, port, count, seconds, self.args.processes, self.window, rate)
            out = loadgen.run(load)
            hist = out.histogram
            return Sample(
                out.qps, out.ok, out.failed + out.lost, hist.percentile(0.5), hist.percentile(0.99)
            )

        return run

    def wrk_runner(self, port: int, path: str, count: int) -> Runner:
        script = self.work / "random-path.lua"

        def run(rate: float | None, seconds: float) -> Sample:
            got = external.run_wrk(
                port, path, count, seconds, self.args.processes, self.args.inflight, script, rate
            )
            return Sample(got.qps, got.ok, got.errors, got.p50, got.p99)

        return run

    # -- servers -----------------------------------------------------------------------------

    def idnode(
        self,
        size: int,
        backend: str,
        data: datasets.IdnodeData,
        db_pids: Pids | None,
        warm: list[Path],
    ) -> None:
        """Measure idnode on ``data``, after reading the files ``warm`` (its database) into
        the page cache."""
        server = f"idnode {backend}"
        print(f"  {server}: {datasets.prewarm([f for f in warm if f.exists()], _mem_available())}")
        port, http_port = free_port(), free_port()
        log = self.work / f"idnode-{backend}-{size}.log"
        if self.args.set:
            _configure(data.config, self.args.set)
        child = start_idnode(server, data.config, port, http_port, log)
        try:
            per_id = data.bytes_per_id
            kinds: tuple[tuple[str, loadgen.Kind], ...] = (
                ("UDP", "handle-udp"),
                ("UDP certified", "handle-udp-certified"),  # each answer signed (CT, RD)
                ("TCP", "handle-tcp"),
            )
            for interface, kind in kinds:
                run = self.loadgen_runner(kind, port, size)
                self.measure(size, server, interface, "loadgen", run, child.tree, per_id, db_pids)
            for interface, path in (("HTTP API", API), ("HTTP proxy", PROXY)):
                run = self.wrk_runner(http_port, path, size)
                self.measure(size, server, interface, "wrk", run, child.tree, per_id, db_pids)
        finally:
            child.stop()

    def knot(self, size: int) -> None:
        if find_tool("knotd") is None or find_tool("dnsperf") is None:
            self.skipped.append(
                "Knot DNS: knotd or dnsperf not installed (apt-get install knot dnsperf)"
            )
            return
        available = _mem_available()
        if size * KNOT_BYTES_PER_RECORD > available // 2:
            self.skipped.append(
                f"Knot DNS at {size:,}: about {size * KNOT_BYTES_PER_RECORD / 2**30:.0f} GiB "
                f"of memory needed, {available / 2**30:.0f} GiB available"
            )
            return
        directory = self.work / f"knot-{size}"
        directory.mkdir()
        started = time.monotonic()
        datasets.write_zone(directory / f"{loadgen.DNS_ZONE}.zone", size)
        zone_bytes = (directory / f"{loadgen.DNS_ZONE}.zone").stat().st_size
        print(f"  zone file: {zone_bytes / 2**20:,.0f} MB in {time.monotonic() - started:.0f} s")
        port = free_port()
        limit = 60 + size / 10_000
        try:
            child, load_seconds = start_knot(directory, port, limit)
        except RuntimeError as exc:
            self.skipped.append(f"Knot DNS at {size:,}: {exc}")
            return
        print(f"  knotd answered {load_seconds:.1f} s after start", flush=True)
        try:
            queries = directory / "queries.txt"
            external.write_dnsperf_queries(queries, size)
            per_id = zone_bytes / size

            def dnsperf(rate: float | None, seconds: float) -> Sample:
                got = external.run_dnsperf(
                    port, queries, seconds, self.args.processes, self.args.inflight
                )
                return Sample(got.qps, got.completed, got.lost, got.mean, math.nan)

            self.measure(size, "Knot", "UDP", "dnsperf", dnsperf, child.tree, per_id, half=False)
            run = self.loadgen_runner("dns-udp", port, size)
            self.measure(size, "Knot", "UDP", "loadgen", run, child.tree, per_id)
        finally:
            child.stop()
            shutil.rmtree(directory, ignore_errors=True)

    def nginx(self, size: int) -> None:
        if find_tool("nginx") is None or find_tool("wrk") is None:
            self.skipped.append("nginx: nginx or wrk not installed (apt-get install nginx wrk)")
            return
        place, what = datasets.json_files_place(self.work, size, _mem_available())
        if place is None:
            self.skipped.append(f"nginx at {size:,}: {what}")
            return
        directory = self.work / f"nginx-{size}"
        directory.mkdir()
        for path in (directory, place):
            path.chmod(0o755)  # nginx's workers run as nobody when nginx starts as root
        try:
            started = time.monotonic()
            per_id = datasets.write_json_files(place / "www", size)
            elapsed = time.monotonic() - started
            print(f"  {size:,} JSON files on {what} in {elapsed:.0f} s", flush=True)
            self.notes.append(f"nginx's {size:,} files were on {what}.")
            port = free_port()
            child = start_nginx(directory, place / "www", port)
            try:
                run = self.wrk_runner(port, API, size)
                self.measure(size, "nginx", "HTTP", "wrk", run, child.tree, per_id)
            finally:
                child.stop()
        except RuntimeError as exc:
            self.skipped.append(f"nginx at {size:,}: {exc}")
        finally:
            print("  removing the JSON files ...", flush=True)
            shutil.rmtree(place, ignore_errors=True)
            shutil.rmtree(directory, ignore_errors=True)

    # -- one size ----------------------------------------------------------------------------

    def build(
        self, size: int, backend: str, csv_path: Path, pg: PgServer | None
    ) -> datasets.IdnodeData:
        if backend == "SQLite" or pg is None:
            return datasets.build_idnode(self.work / f"sqlite-{size}", csv_path, size, None)
        pg.server.psql(f"DROP DATABASE IF EXISTS bench_{size}")
        pg.server.psql(f"CREATE DATABASE bench_{size}")
        url = pg.server.url(f"bench_{size}")
        return datasets.build_idnode(self.work / f"pg-{size}", csv_path, size, url)

    def size(self, size: int, pg: PgServer | None) -> None:
        print(f"\n== {size:,} identifiers", flush=True)
        csv_path = self.work / f"ids-{size}.csv"
        datasets.write_csv(csv_path, size)
        built: list[tuple[str, datasets.IdnodeData, Pids | None]] = []
        for backend in ("SQLite", "PostgreSQL"):
            if backend.lower() not in self.args.backends or (backend == "PostgreSQL" and not pg):
                continue
            try:
                data = self.build(size, backend, csv_path, pg)
            except Exception as exc:  # a broken backend is reported, the others still run
                self.skipped.append(f"idnode {backend} at {size:,}: import failed: {exc!r}")
                print(f"  {backend}: import failed: {exc!r}", flush=True)
                continue
            rate, per_id = data.import_rate, data.bytes_per_id
            print(f"  {backend}: {rate:,.0f} ids/s imported, {per_id:.0f} B/id", flush=True)
            built.append((backend, data, pg.pids if backend == "PostgreSQL" and pg else None))
        csv_path.unlink()
        for backend, data, db_pids in built:
            if backend == "PostgreSQL" and pg is not None:
                warm = [pg.server.data / "base"]
            else:
                warm = [Path(data.database), Path(data.database + "-wal")]
            try:
                self.idnode(size, backend, data, db_pids, warm)
            except Exception as exc:  # reported; the other servers still run
                self.skipped.append(f"idnode {backend} at {size:,}: {exc!r}")
                print(f"  idnode {backend}: {exc!r}", flush=True)
        if "knot" not in self.args.skip:
            self.knot(size)
        if "nginx" not in self.args.skip:
            self.nginx(size)
        for directory in self.work.glob(f"*-{size}"):
            shutil.rmtree(directory, ignore_errors=True)
        if pg is not None:
            pg.server.psql(f"DROP DATABASE IF EXISTS bench_{size}")


class PgServer:
    """The throwaway PostgreSQL server of tests/pgserver.py, with a server-sized buffer."""

    def __init__(self) -> None:
        from tests.pgserver import PostgresServer

        self.server = PostgresServer.start()
        self.server.psql("ALTER SYSTEM SET shared_buffers = '256MB'")
        self.server.restart()
        self.version = _pg_version()

    def pids(self) -> list[int]:
        pid_file = self.server.data / "postmaster.pid"
        return descendants(int(pid_file.read_text().split()[0]))

    def stop(self) -> None:
        self.server.stop()


def _pg_version() -> str | None:
    from tests.pgserver import PostgresNotInstalled, find_bindir

    try:
        postgres = find_bindir() / "postgres"
        out = subprocess.run([str(postgres), "--version"], capture_output=True, text=True)
    except (PostgresNotInstalled, OSError):
        return None
    found = re.search(r"\(PostgreSQL\) (\S+)", out.stdout)
    return found.group(1) if found else out.stdout.strip()


def _mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def _configure(path: Path, settings: list[str]) -> None:
    """Apply ``KEY=VALUE`` settings (``[node]`` keys, TOML values) to the node's file."""
    import dataclasses
    import tomllib

    from idnode.server.config import NodeConfig

    changes = {}
    for setting in settings:
        key, _, value = setting.partition("=")
        changes[key.strip()] = tomllib.loads(f"v = {value}")["v"]
    config = dataclasses.replace(NodeConfig.load(path), **changes)
    path.write_text(config.dump(), encoding="utf-8")


def parse_sizes(text: str) -> list[int]:
    return [int(float(part)) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("1e4,1e6"))
    parser.add_argument("--seconds", type=float, default=10.0, help="each measured run")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up before each peak")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="load processes")
    parser.add_argument("--inflight", type=int, default=64, help="requests in flight at peak")
    parser.add_argument("--backends", type=lambda s: s.split(","), default=["sqlite", "postgresql"])
    parser.add_argument(
        "--skip",
        type=lambda s: s.split(","),
        default=[],
        help="references to leave out: knot,nginx",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a [node] setting for idnode, e.g. workers=2, metrics='off', response_cache=0",
    )
    parser.add_argument("--write-docs", action="store_true", help="update docs/performance.md")
    parser.add_argument("--docs", type=Path, default=BENCH.parent / "docs" / "performance.md")
    args = parser.parse_args()
    command = shlex.join([_relative(sys.executable), _relative(sys.argv[0]), *sys.argv[1:]])

    work = Path(tempfile.mkdtemp(prefix="idnode-resbench-"))
    work.chmod(0o755)  # nginx's workers (nobody) read files below it
    bench = Bench(args, work)
    pg: PgServer | None = None
    started = time.monotonic()
    try:
        if "postgresql" in args.backends:
            try:
                pg = PgServer()
            except RuntimeError as exc:  # includes PostgresNotInstalled
                bench.skipped.append(f"idnode PostgreSQL: {exc}")
        for size in args.sizes:
            bench.size(size, pg)
    finally:
        pg_version = pg.version if pg else _pg_version()
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    minutes = (time.monotonic() - started) / 60
    header = [
        f"Command: `{command}` ({time.strftime('%Y-%m-%d')}, {minutes:.0f} minutes).",
        f"Each figure: {args.warmup:g} s warm-up, then {args.seconds:g} s at peak "
        f"({args.inflight} requests in flight, {args.processes} load processes) and "
        f"{args.seconds:g} s paced at half of that peak.",
        "",
        *report.machine(pg_version),
    ]
    lines = report.render(bench.rows, header, bench.notes, bench.skipped)
    print("\n" + "\n".join(lines))
    if args.write_docs:
        report.write_docs(args.docs, lines)
        print(f"\nwritten to {args.docs}")


def _relative(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


if __name__ == "__main__":
    main()
