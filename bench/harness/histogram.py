"""Latencies in logarithmic buckets: fixed memory whatever the number of samples.

Bucket ``i`` (``i >= 1``) holds latencies in ``[exp((i - 1) / SCALE), exp(i / SCALE))``
microseconds, so a percentile read back is within about 1% of the true value; bucket 0 holds
everything under 1 µs and the last bucket everything over :data:`MAX_US`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["MAX_US", "SCALE", "Histogram"]

#: Buckets per factor e of latency (about 1% wide).
SCALE = 100
#: Latencies above this many microseconds (100 s) share the last bucket.
MAX_US = 1e8
_BUCKETS = int(math.log(MAX_US) * SCALE) + 2


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * _BUCKETS)

    def add(self, seconds: float) -> None:
        us = seconds * 1e6
        i = 0 if us < 1.0 else min(int(math.log(us) * SCALE) + 1, _BUCKETS - 1)
        self.counts[i] += 1

    def merge(self, other: Histogram | list[int]) -> None:
        counts = other.counts if isinstance(other, Histogram) else other
        for i, n in enumerate(counts):
            if n:
                self.counts[i] += n

    @property
    def total(self) -> int:
        return sum(self.counts)

    def percentile(self, q: float) -> float:
        """The ``q`` quantile (0 < q <= 1) in seconds, the middle of its bucket; NaN if
        empty."""
        total = self.total
        if total == 0:
            return math.nan
        rank = max(1, math.ceil(q * total))
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                return _middle(i) / 1e6
        return MAX_US / 1e6

    def mean(self) -> float:
        """The mean in seconds (from bucket middles); NaN if empty."""
        total = self.total
        if total == 0:
            return math.nan
        return sum(n * _middle(i) for i, n in enumerate(self.counts) if n) / total / 1e6


def _middle(i: int) -> float:
    if i == 0:
        return 0.5
    return math.exp((i - 0.5) / SCALE)
