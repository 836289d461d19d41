"""Ports for servers that tests start on 127.0.0.1 (no idnode imports: the benchmarks use it
through :mod:`tests.pgserver` too)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

__all__ = ["free_ports"]

HOST = "127.0.0.1"


def _below_ephemeral() -> tuple[int, int]:
    """Ports below the kernel's range for outgoing connections: a port chosen here cannot be
    taken meanwhile by a client's connection (which a port the kernel handed out as ``bind(0)``
    can, being in that range)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return 10000, max(low, 12000)


def free_ports(count: int, *, host: str = HOST) -> list[int]:
    """``count`` distinct ports on ``host`` that are free for both TCP and UDP right now, below
    the ephemeral range (for servers started later and for site tables, which need fixed
    ports; a later bind may still race with other programs, not with outgoing connections)."""
    start, end = _below_ephemeral()
    ports: list[int] = []
    for _attempt in range(10_000):
        if len(ports) == count:
            return ports
        port = random.randrange(start, end)
        if port in ports:
            continue
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
            ):
                tcp.bind((host, port))
                udp.bind((host, port))
        except OSError:
            continue
        ports.append(port)
    raise RuntimeError(f"no {count} free ports on {host}")
