"""Per-client abuse limits: failed authentications and writes, keyed by the client's address.

* **Failed authentications.** A client address with ``max_failures`` failed authentications
  (wrong secret, wrong key, a challenge answer that does not verify, a bad HTTP password)
  within ``window`` seconds is refused every authentication for ``block`` seconds: its
  challenge answers and authenticated HTTP requests get RC_SERVER_TOO_BUSY (3) before any
  key is looked up. Guessing a secret therefore costs ``block / max_failures`` seconds per
  guess from one address, and the node spends nothing verifying during the block.
* **Writes.** Each address may make ``writes_per_second`` administrative requests per second
  on average, in bursts of up to ``write_burst`` (a token bucket); beyond that, RC 3 until
  the bucket refills. Reads are not limited here (the transports bound the work in flight).

Memory is bounded: at most ``max_clients`` addresses are tracked (least recently seen
dropped first), so a flood of addresses cannot grow the tables. The clock is injected.
Requests without a known address (a library call) are not limited.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from idnode.errors import ServerBusy

__all__ = ["ClientLimiter", "LimitSettings", "client_key"]


@dataclass(frozen=True)
class LimitSettings:
    """The limits; ``max_failures`` or ``writes_per_second`` 0 switches that limit off."""

    max_failures: int = 20
    window: float = 60.0
    block: float = 300.0
    writes_per_second: float = 200.0
    write_burst: int = 1000
    max_clients: int = 100_000


def client_key(peer: str | None) -> str | None:
    """The address part of ``host:port`` (``[v6]:port`` too): limits apply per host."""
    if peer is None:
        return None
    host, sep, _port = peer.rpartition(":")
    return host if sep else peer


@dataclass
class _Client:
    failures: list[float] = field(default_factory=list)
    blocked_until: float = 0.0
    tokens: float = 0.0
    refilled: float = 0.0


class ClientLimiter:
    def __init__(
        self, settings: LimitSettings | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings or LimitSettings()
        self._clock = clock
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        #: Requests refused so far, by reason (for the logs and metrics).
        self.refused = {"auth": 0, "write": 0}

    def _client(self, key: str) -> _Client:
        client = self._clients.get(key)
        if client is None:
            client = _Client(tokens=float(self.settings.write_burst), refilled=self._clock())
            self._clients[key] = client
            while len(self._clients) > self.settings.max_clients:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(key)
        return client

    def check_auth(self, peer: str | None) -> None:
        """ServerBusy while ``peer``'s address is blocked for failed authentications."""
        key = client_key(peer)
        if key is None or key not in self._clients:
            return
        if self._clients[key].blocked_until > self._clock():
            self.refused["auth"] += 1
            raise ServerBusy("too many failed authentications from this address; retry later")

    def auth_failed(self, peer: str | None) -> None:
        """Count a failed authentication; block the address when it reaches the limit."""
        key = client_key(peer)
        if key is None or self.settings.max_failures <= 0:
            return
        now, s = self._clock(), self.settings
        client = self._client(key)
        client.failures = [t for t in client.failures if t > now - s.window]
        client.failures.append(now)
        if len(client.failures) >= s.max_failures:
            client.blocked_until = now + s.block
            client.failures.clear()

    def check_write(self, peer: str | None) -> None:
        """Take one write token for ``peer``'s address; ServerBusy when there is none."""
        key = client_key(peer)
        if key is None or self.settings.writes_per_second <= 0:
            return
        now, s = self._clock(), self.settings
        client = self._client(key)
        client.tokens = min(
            float(s.write_burst), client.tokens + (now - client.refilled) * s.writes_per_second
        )
        client.refilled = now
        if client.tokens < 1.0:
            self.refused["write"] += 1
            raise ServerBusy("too many writes from this address; slow down")
        client.tokens -= 1.0

    def tracked(self) -> int:
        return len(self._clients)
