"""Counters and latency histograms of a node process, rendered in the Prometheus text format.

:class:`Metrics` is filled by the transports (one call per answered message: transport,
opcode and response code read from the encoded response, seconds from receipt to the
response being handed to the socket), by the HTTP layer (route kind, status, seconds), by
the dispatcher (seconds of each store read of a record) and read from the response cache
(hits, misses, entries, bytes). :meth:`Metrics.render` writes the text exposition format
0.0.4 (``# HELP``/``# TYPE`` lines, cumulative ``_bucket{le=...}``, ``_sum``, ``_count``);
:mod:`idnode.http.metrics` serves it at ``/metrics``.

Everything is plain dictionary and list arithmetic in the event loop's thread: no locks, no
dependency. Each process has its own (with ``workers`` > 1 see :mod:`idnode.server.workers`:
every series carries the ``worker`` label of the process that answered the scrape).
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Iterable

from idnode.protocol.codes import OpCode, ResponseCode
from idnode.server.respcache import CacheStats

__all__ = ["LATENCY_BUCKETS", "Histogram", "Metrics"]

#: Upper bounds (seconds) of the latency buckets.
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


def _op_name(op: int) -> str:
    try:
        return OpCode(op).name.lower()
    except ValueError:
        return str(op)


def _code_name(code: int) -> str:
    try:
        return ResponseCode(code).name.lower()
    except ValueError:
        return str(code)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


class Histogram:
    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: tuple[tuple[str, str], ...]) -> list[str]:
        out = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            le = _labels((*labels, ("le", _number(bound))))
            out.append(f"{name}_bucket{le} {running}")
        le = _labels((*labels, ("le", "+Inf")))
        out.append(f"{name}_bucket{le} {self.count}")
        out.append(f"{name}_sum{_labels(labels)} {_number(self.sum)}")
        out.append(f"{name}_count{_labels(labels)} {self.count}")
        return out


class Metrics:
    def __init__(self, worker: str = "0") -> None:
        self.worker = worker
        self.pid = os.getpid()
        #: (transport, op, code) → messages answered.
        self.requests: dict[tuple[str, int, int], int] = {}
        #: transport → latency.
        self.latency: dict[str, Histogram] = {}
        #: (route, status) → HTTP requests answered.
        self.http_requests: dict[tuple[str, int], int] = {}
        #: store operation → latency.
        self.store: dict[str, Histogram] = {}
        #: Read at render time: the response cache's figures (None: no cache).
        self.cache: Callable[[], CacheStats] | None = None

    # -- recording ---------------------------------------------------------------------------

    def native(self, transport: str, response: bytes, seconds: float) -> None:
        """One Handle-protocol message answered with the encoded ``response``."""
        if len(response) >= 28:
            op = int.from_bytes(response[20:24], "big")
            code = int.from_bytes(response[24:28], "big")
        else:
            op = code = 0
        key = (transport, op, code)
        self.requests[key] = self.requests.get(key, 0) + 1
        histogram = self.latency.get(transport)
        if histogram is None:
            histogram = self.latency[transport] = Histogram()
        histogram.observe(seconds)

    def http(self, route: str, status: int, seconds: float) -> None:
        key = (route, status)
        self.http_requests[key] = self.http_requests.get(key, 0) + 1
        histogram = self.latency.get("http")
        if histogram is None:
            histogram = self.latency["http"] = Histogram()
        histogram.observe(seconds)

    def store_call(self, operation: str, seconds: float) -> None:
        histogram = self.store.get(operation)
        if histogram is None:
            histogram = self.store[operation] = Histogram()
        histogram.observe(seconds)

    # -- exposition --------------------------------------------------------------------------

    def render(self) -> str:
        """The text exposition format (``text/plain; version=0.0.4``)."""
        w = (("worker", self.worker),)
        out: list[str] = []

        def family(name: str, kind: str, text: str) -> None:
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")

        family(
            "idnode_requests_total",
            "counter",
            "Handle-protocol messages answered, by transport, operation and response code.",
        )
        for (transport, op, code), count in sorted(self.requests.items()):
            labels = (
                *w,
                ("transport", transport),
                ("op", _op_name(op)),
                ("code", _code_name(code)),
            )
            out.append(f"idnode_requests_total{_labels(labels)} {count}")
        family(
            "idnode_http_requests_total", "counter", "HTTP requests answered, by route and status."
        )
        for (route, status), count in sorted(self.http_requests.items()):
            pairs = (*w, ("route", route), ("status", str(status)))
            out.append(f"idnode_http_requests_total{_labels(pairs)} {count}")
        family(
            "idnode_request_duration_seconds",
            "histogram",
            "Seconds from receiving a request to handing its response to the socket.",
        )
        for transport, histogram in sorted(self.latency.items()):
            out += histogram.lines(
                "idnode_request_duration_seconds", (*w, ("transport", transport))
            )
        family(
            "idnode_store_duration_seconds", "histogram", "Seconds of store calls, by operation."
        )
        for operation, histogram in sorted(self.store.items()):
            out += histogram.lines("idnode_store_duration_seconds", (*w, ("operation", operation)))
        if self.cache is not None:
            stats = self.cache()
            for name, kind, text, value in (
                ("hits_total", "counter", "Resolutions answered from the cache.", stats.hits),
                (
                    "misses_total",
                    "counter",
                    "Cacheable requests not found (or stale).",
                    stats.misses,
                ),
                ("stale_total", "counter", "Entries found changed by a write.", stats.stale),
                ("entries", "gauge", "Responses held.", stats.entries),
                ("bytes", "gauge", "Bytes of responses and keys held.", stats.bytes),
            ):
                full = f"idnode_response_cache_{name}"
                family(full, kind, text)
                out.append(f"{full}{_labels(w)} {value}")
        family("idnode_process_id", "gauge", "Process id of the worker that answered.")
        out.append(f"idnode_process_id{_labels(w)} {self.pid}")
        return "\n".join(out) + "\n"
