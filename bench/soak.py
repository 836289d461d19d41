"""Soak test: mixed reads and writes at half of peak load for a long time; memory, p99 latency
and errors per minute must stay flat. Prints figures; never fails (not part of `make test`).

    .venv/bin/python bench/soak.py                      # 10 minutes, SQLite
    .venv/bin/python bench/soak.py --minutes 1 --identifiers 2000

What it does, all on 127.0.0.1:

1. ``idnode init`` a node in a temporary directory and load ``--identifiers`` identifiers
   (``idnode import``), then ``idnode serve`` it as a child process (so its memory is its own).
2. Peak: ``--workers`` load processes resolve random identifiers over UDP as fast as they can
   for ``--peak-seconds``; the sum of their rates is the peak.
3. Soak: the same processes, each paced to its share of half the peak, for ``--minutes``;
   one request in ``--write-every`` is a write over TCP (create a new identifier, or modify
   one made earlier, authenticated with the admin secret). Every minute it prints the
   server's resident memory, requests, errors (timeouts and error responses) and p50/p99
   latency of reads and of writes.

Every loop is bounded in time; the server and the load processes are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from idnode.client import HandleClient, SecretKeyCredentials
from idnode.protocol.values import HandleValue

PREFIX = "88.118.8"
IDNODE = str(Path(sys.executable).with_name("idnode"))


@dataclass
class Minute:
    reads: list[float] = field(default_factory=list)
    writes: list[float] = field(default_factory=list)
    read_errors: int = 0
    write_errors: int = 0


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(directory: Path, count: int, port: int) -> None:
    subprocess.run(
        [IDNODE, "init", str(directory), "--prefix", PREFIX, "--port", str(port)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    rows = directory / "rows.csv"
    with rows.open("w") as f:
        f.write("handle,1:URL,2:DESC\n")
        for i in range(count):
            f.write(f"{PREFIX}/SOAK-{i:08d},https://pv.example.com/m/{i},module {i}\n")
    subprocess.run(
        [IDNODE, "import", str(rows), "--config", str(directory / "idnode.toml")],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def worker(
    index: str,
    port: int,
    secret: bytes,
    count: int,
    rate: float | None,
    seconds: float,
    write_every: int,
    results: Any,
) -> None:
    """One load process: ``rate`` requests per second (None: as fast as possible) for
    ``seconds``; sends (second, kind, latency or None for an error) samples in batches."""

    async def run() -> None:
        reader = HandleClient("127.0.0.1", port, timeout=2.0, retries=0)
        writer = HandleClient(
            "127.0.0.1",
            port,
            timeout=5.0,
            credentials=SecretKeyCredentials(f"0.NA/{PREFIX}", 300, secret),
        )
        rng = random.Random(index)  # the worker's name: "<minute>-<process>"
        start = time.monotonic()
        sent, made = 0, list[str]()
        batch: list[tuple[int, str, float | None]] = []
        while (now := time.monotonic()) - start < seconds:
            if rate is not None:
                due = start + sent / rate
                if due > now:
                    await asyncio.sleep(due - now)
            sent += 1
            write = write_every > 0 and sent % write_every == 0
            t0 = time.perf_counter()
            try:
                if write and made and rng.random() < 0.5:
                    value = HandleValue(1, "URL", f"https://w/{sent}".encode())
                    await writer.modify_values(rng.choice(made), [value])
                elif write:
                    handle = f"{PREFIX}/SOAK-W{index}-{sent}"
                    await writer.create_handle(handle, [HandleValue(1, "URL", b"https://w/")])
                    made.append(handle)
                else:
                    await reader.resolve(f"{PREFIX}/SOAK-{rng.randrange(count):08d}")
                latency: float | None = time.perf_counter() - t0
            except Exception:
                latency = None
            batch.append((int(time.monotonic() - start), "write" if write else "read", latency))
            if len(batch) >= 200:
                results.put(batch)
                batch = []
        results.put(batch)

    asyncio.run(run())


def run_load(
    args: argparse.Namespace,
    port: int,
    secret: bytes,
    rate: float | None,
    seconds: float,
    label: str,
) -> tuple[list[tuple[int, str, float | None]], mp.Queue[Any]]:
    """``args.workers`` load processes; ``label`` makes the handles they create unique."""
    results: mp.Queue[Any] = mp.Queue()
    share = None if rate is None else rate / args.workers
    procs = [
        mp.Process(
            target=worker,
            args=(
                f"{label}-{i}",
                port,
                secret,
                args.identifiers,
                share,
                seconds,
                0 if rate is None else args.write_every,
                results,
            ),
        )
        for i in range(args.workers)
    ]
    for p in procs:
        p.start()
    samples: list[tuple[int, str, float | None]] = []
    deadline = time.monotonic() + seconds + 30
    while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
        while not results.empty():
            samples.extend(results.get())
        time.sleep(0.2)
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()
    while not results.empty():
        samples.extend(results.get())
    return samples, results


def wait_until_serving(port: int, seconds: float = 30.0) -> None:
    client = HandleClient("127.0.0.1", port, timeout=0.5, retries=0)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            asyncio.run(client.resolve(f"{PREFIX}/SOAK-00000000"))
            return
        except Exception:
            time.sleep(0.2)
    sys.exit(f"the node did not answer within {seconds} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--identifiers", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--peak-seconds", type=float, default=10.0)
    parser.add_argument("--write-every", type=int, default=20, help="one write per N requests")
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="idnode-soak-"))
    port = free_port()
    server: subprocess.Popen[bytes] | None = None
    try:
        prepare(directory / "node", args.identifiers, port)
        secret = (directory / "node" / "admin-secret").read_bytes().strip()
        server = subprocess.Popen(
            [IDNODE, "serve", "--config", str(directory / "node" / "idnode.toml"), "--no-http"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_serving(port)
        print(f"machine: {os.cpu_count()} CPUs; {args.identifiers} identifiers; SQLite")
        samples, _ = run_load(args, port, secret, None, args.peak_seconds, "peak")
        ok = [s for s in samples if s[2] is not None]
        peak = len(ok) / args.peak_seconds
        if peak == 0:
            sys.exit("no resolution succeeded at peak load")
        target = peak / 2
        print(f"peak: {peak:,.0f} resolutions/s over UDP; soak at {target:,.0f} requests/s")
        print(f"baseline server RSS {rss_mb(server.pid):.1f} MB")
        print(
            f"{'minute':>6} {'RSS MB':>8} {'requests':>9} {'errors r/w':>11} "
            f"{'read p50 ms':>12} {'read p99 ms':>12} {'write p50 ms':>13} {'write p99 ms':>13}"
        )
        minutes = max(1, round(args.minutes))
        for minute in range(minutes):
            seconds = 60.0 * args.minutes / minutes
            samples, _ = run_load(args, port, secret, target, seconds, f"m{minute}")
            m = Minute()
            for _second, kind, latency in samples:
                if latency is None and kind == "read":
                    m.read_errors += 1
                elif latency is None:
                    m.write_errors += 1
                elif kind == "read":
                    m.reads.append(latency * 1000)
                else:
                    m.writes.append(latency * 1000)
            print(
                f"{minute + 1:>6} {rss_mb(server.pid):>8.1f} {len(samples):>9} "
                f"{f'{m.read_errors}/{m.write_errors}':>11} "
                f"{percentile(m.reads, 0.5):>12.2f} {percentile(m.reads, 0.99):>12.2f} "
                f"{percentile(m.writes, 0.5):>13.2f} {percentile(m.writes, 0.99):>13.2f}"
            )
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
