"""A bounded multi-process load generator: Handle protocol over UDP and TCP, DNS over UDP.

``run(load)`` starts ``load.processes`` processes (fork). Each draws random identifiers
``0 <= n < load.count`` and keeps at most ``load.window`` requests in flight:

* **UDP** (Handle and DNS, the same code path): one connected, non-blocking socket per
  process; requests are sent while fewer than ``window`` are outstanding, replies are read
  with ``epoll`` and matched to their request by id (Handle: the envelope's request id; DNS:
  the header id). A request unanswered after ``load.timeout`` is counted as lost and its slot
  freed. Multi-datagram Handle replies count when their last byte has arrived.
* **TCP** (Handle): ``window`` persistent connections per process, one request in flight on
  each; requests carry the KA flag, which idnode honours (``server/transports.py`` keeps a
  connection open after a response only then). A connection the server closes is reopened
  and counted in ``reconnects``.

With ``load.rate`` set, each process paces itself to its share of that rate (sending every
request that is due, at most ``window`` outstanding); otherwise it sends as fast as replies
free slots (peak). Latency runs from the ``send`` call to the reply's arrival and goes into a
:class:`~harness.histogram.Histogram`; every loop ends at ``load.seconds``.

Requests are made from templates: :class:`HandleRequests` encodes one resolution message per
length of the number with :class:`idnode.protocol.message.Message` and then patches the
request id and the digits in place (checked against a full encoding at start);
:class:`DnsRequests` builds a minimal TXT query by hand.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import random
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from harness.histogram import Histogram

__all__ = [
    "DNS_ZONE",
    "PREFIX",
    "DnsRequests",
    "HandleRequests",
    "Load",
    "Outcome",
    "dns_name",
    "handle_of",
    "run",
]

PREFIX = "88.118.8"
#: The DNS zone of the reference data set: identifier n is ``bench-<n>.bench.test.`` TXT.
DNS_ZONE = "bench.test"

Kind = Literal["handle-udp", "handle-udp-certified", "handle-tcp", "dns-udp"]


def handle_of(n: int) -> str:
    return f"{PREFIX}/BENCH-{n}"


def dns_name(n: int) -> str:
    return f"bench-{n}.{DNS_ZONE}"


class Requests(Protocol):
    id_space: int

    def request(self, rid: int, n: int) -> bytes: ...

    def reply(self, data: bytes) -> tuple[int, bool] | None:
        """(request id, success) of a complete reply; None for a partial or garbled one."""
        ...


class HandleRequests:
    """Resolution requests (flags REC and PO, as idnode's client sends them) for
    ``88.118.8/BENCH-<n>``; with ``keep_alive`` the KA flag too; with ``certified`` CT and
    RD (signed answers, as a verifying client asks for them)."""

    id_space = 1 << 32

    def __init__(self, keep_alive: bool = False, certified: bool = False) -> None:
        from idnode.protocol.codes import OpFlag

        self._flags = OpFlag.REC | OpFlag.PO | (OpFlag.KA if keep_alive else 0)
        if certified:
            self._flags |= OpFlag.CT | OpFlag.RD
        self._parts: dict[int, tuple[bytes, bytes, bytes]] = {}
        self._partial: dict[int, list[Any]] = {}  # id -> [bytes in, success]
        for digits in range(1, 11):
            template = self._encode(0, "9" * digits)
            at = template.index(b"BENCH-") + len(b"BENCH-")
            self._parts[digits] = (template[:8], template[12:at], template[at + digits :])
        for rid, n in ((1, 0), (77, 12345), (2**32 - 1, 9_999_999)):
            if self.request(rid, n) != self._encode(rid, str(n)):
                raise AssertionError("patched Handle request differs from Message.encode()")

    def _encode(self, rid: int, number: str) -> bytes:
        from idnode.protocol.bodies import ResolutionRequest
        from idnode.protocol.codes import OpCode
        from idnode.protocol.message import Message

        body = ResolutionRequest(f"{PREFIX}/BENCH-{number}")
        return Message(op=OpCode.RESOLUTION, body=body, flags=self._flags, request_id=rid).encode()

    def request(self, rid: int, n: int) -> bytes:
        digits = str(n).encode()
        head, middle, tail = self._parts[len(digits)]
        return b"".join((head, rid.to_bytes(4, "big"), middle, digits, tail))

    def reply(self, data: bytes) -> tuple[int, bool] | None:
        if len(data) < 20:
            return None
        rid = int.from_bytes(data[8:12], "big")
        sequence = int.from_bytes(data[12:16], "big")
        length = int.from_bytes(data[16:20], "big")
        if sequence == 0 and len(data) == 20 + length:
            return rid, len(data) >= 28 and int.from_bytes(data[24:28], "big") == 1
        # A multi-datagram reply (spec §1.1): it counts when every payload byte is in.
        part = self._partial.setdefault(rid, [0, False])
        part[0] += len(data) - 20
        if sequence == 0:
            part[1] = len(data) >= 28 and int.from_bytes(data[24:28], "big") == 1
        if part[0] < length:
            return None
        del self._partial[rid]
        return rid, part[1]

    def forget(self, rid: int) -> None:
        self._partial.pop(rid, None)


class DnsRequests:
    """Minimal DNS queries (RFC 1035 §4.1, no EDNS): ``bench-<n>.bench.test. IN TXT``."""

    id_space = 1 << 16

    def __init__(self) -> None:
        self._tail = b"".join(
            bytes([len(label)]) + label.encode() for label in DNS_ZONE.split(".")
        ) + bytes([0, 0, 16, 0, 1])  # root label, QTYPE TXT (16), QCLASS IN (1)

    def request(self, rid: int, n: int) -> bytes:
        label = b"bench-%d" % n
        # id, flags 0 (a plain query, RD clear: the server is authoritative), one question
        header = rid.to_bytes(2, "big") + b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        return b"".join((header, bytes([len(label)]), label, self._tail))

    def reply(self, data: bytes) -> tuple[int, bool] | None:
        if len(data) < 12:
            return None
        rcode = data[3] & 0x0F
        answers = int.from_bytes(data[6:8], "big")
        return int.from_bytes(data[0:2], "big"), rcode == 0 and answers > 0

    def forget(self, rid: int) -> None:
        pass


@dataclass(frozen=True)
class Load:
    kind: Kind
    port: int
    count: int
    """Identifiers in the data set: requests name n in [0, count)."""
    seconds: float
    processes: int
    window: int
    """Requests in flight per process (TCP: connections per process)."""
    rate: float | None = None
    """Requests per second in total; None: as fast as the window allows."""
    timeout: float = 1.0
    host: str = "127.0.0.1"


@dataclass
class Outcome:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    """Error replies (a response code other than success, or a DNS answer without data)."""
    lost: int = 0
    """Requests without a reply within the timeout."""
    reconnects: int = 0
    seconds: float = 0.0
    histogram: Histogram = field(default_factory=Histogram)

    @property
    def qps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def merge(self, other: Outcome) -> None:
        self.sent += other.sent
        self.ok += other.ok
        self.failed += other.failed
        self.lost += other.lost
        self.reconnects += other.reconnects
        self.seconds = max(self.seconds, other.seconds)
        self.histogram.merge(other.histogram)


def run(load: Load) -> Outcome:
    """Run ``load`` in ``load.processes`` processes and merge what they measured."""
    ctx = mp.get_context("fork")
    results: mp.Queue[Outcome | str] = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(load, i, results), daemon=True)
        for i in range(load.processes)
    ]
    for p in procs:
        p.start()
    total = Outcome()
    deadline = time.monotonic() + load.seconds + load.timeout + 30
    received = 0
    while received < len(procs) and time.monotonic() < deadline:
        try:
            got = results.get(timeout=1.0)
        except queue.Empty:
            if not any(p.is_alive() for p in procs) and results.empty():
                break
            continue
        received += 1
        if isinstance(got, str):
            print(f"  load process failed: {got}")
        else:
            total.merge(got)
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join(5)
    return total


def _worker(load: Load, index: int, results: mp.Queue[Outcome | str]) -> None:
    try:
        rng = random.Random(os.getpid() * 7919 + time.time_ns())
        if load.kind == "handle-tcp":
            out = _tcp(load, HandleRequests(keep_alive=True), rng)
        else:
            requests = (
                DnsRequests()
                if load.kind == "dns-udp"
                else HandleRequests(certified=load.kind == "handle-udp-certified")
            )
            out = _udp(load, requests, rng)
        results.put(out)
    except Exception as exc:  # reported by the parent, never raised there
        results.put(f"{type(exc).__name__}: {exc}")


def _allowed(load: Load, out: Outcome, in_flight: int, start: float, now: float) -> int:
    room = load.window - in_flight
    if load.rate is None:
        return room
    due = int((now - start) * load.rate / load.processes) + 1 - out.sent
    return min(room, due)


def _wait(load: Load, out: Outcome, start: float, now: float, room: bool) -> float:
    if load.rate is None or not room:
        return 0.01
    next_due = start + out.sent / (load.rate / load.processes)
    return min(0.01, max(0.0, next_due - now))


def _udp(load: Load, requests: HandleRequests | DnsRequests, rng: random.Random) -> Outcome:
    out = Outcome()
    pending: dict[int, float] = {}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.connect((load.host, load.port))
    sock.setblocking(False)
    poller = select.epoll()
    poller.register(sock.fileno(), select.EPOLLIN)
    rid = rng.randrange(requests.id_space)
    clock = time.perf_counter
    start = clock()
    end = start + load.seconds
    next_sweep = start + 0.1
    try:
        while (now := clock()) < end:
            for _ in range(_allowed(load, out, len(pending), start, now)):
                rid = (rid + 1) % requests.id_space
                if rid in pending:
                    continue
                try:
                    sock.send(requests.request(rid, rng.randrange(load.count)))
                except (BlockingIOError, ConnectionRefusedError):
                    break
                pending[rid] = clock()
                out.sent += 1
            poller.poll(_wait(load, out, start, now, len(pending) < load.window))
            while True:
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    break
                except ConnectionRefusedError:
                    continue
                got = requests.reply(data)
                if got is None:
                    continue
                sent_at = pending.pop(got[0], None)
                if sent_at is None:
                    continue  # late: already counted as lost
                if got[1]:
                    out.ok += 1
                    out.histogram.add(clock() - sent_at)
                else:
                    out.failed += 1
            if now >= next_sweep:
                next_sweep = now + 0.1
                for r in [r for r, t in pending.items() if now - t > load.timeout]:
                    del pending[r]
                    requests.forget(r)
                    out.lost += 1
        out.seconds = clock() - start
    finally:
        poller.close()
        sock.close()
    return out


@dataclass
class _Conn:
    sock: socket.socket
    buf: bytearray = field(default_factory=bytearray)
    sent_at: float | None = None


def _tcp(load: Load, requests: HandleRequests, rng: random.Random) -> Outcome:
    out = Outcome()
    poller = select.epoll()
    conns: dict[int, _Conn] = {}

    def connect() -> None:
        sock = socket.create_connection((load.host, load.port), timeout=load.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        conns[sock.fileno()] = _Conn(sock)
        poller.register(sock.fileno(), select.EPOLLIN)

    def drop(fd: int) -> None:
        conn = conns.pop(fd)
        poller.unregister(fd)
        conn.sock.close()
        out.reconnects += 1
        connect()

    clock = time.perf_counter
    for _ in range(load.window):
        connect()
    rid = rng.randrange(requests.id_space)
    start = clock()
    end = start + load.seconds
    next_sweep = start + 0.1
    try:
        while (now := clock()) < end:
            idle = [c for c in conns.values() if c.sent_at is None]
            busy = len(conns) - len(idle)
            for conn in idle[: max(0, _allowed(load, out, busy, start, now))]:
                rid = (rid + 1) % requests.id_space
                conn.sock.send(requests.request(rid, rng.randrange(load.count)))
                conn.sent_at = clock()
                out.sent += 1
            wait = _wait(load, out, start, now, busy < load.window)
            for fd, _event in poller.poll(wait):
                conn = conns[fd]
                try:
                    data = conn.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    if conn.sent_at is not None:
                        out.lost += 1
                    drop(fd)
                    continue
                conn.buf += data
                while len(conn.buf) >= 20:
                    size = 20 + int.from_bytes(conn.buf[16:20], "big")
                    if len(conn.buf) < size:
                        break
                    message = bytes(conn.buf[:size])
                    del conn.buf[:size]
                    if conn.sent_at is None:
                        continue
                    if len(message) >= 28 and int.from_bytes(message[24:28], "big") == 1:
                        out.ok += 1
                        out.histogram.add(clock() - conn.sent_at)
                    else:
                        out.failed += 1
                    conn.sent_at = None
            if now >= next_sweep:
                next_sweep = now + 0.1
                for fd in [
                    fd for fd, c in conns.items() if c.sent_at and now - c.sent_at > load.timeout
                ]:
                    out.lost += 1
                    drop(fd)
        out.seconds = clock() - start
    finally:
        for conn in conns.values():
            conn.sock.close()
        poller.close()
    return out
