"""Bar charts of the node's statistics, laid out for SVG (pure)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from idnode.store.stats import DayCount

__all__ = ["Bar", "Chart", "bar_chart", "days_back", "top_prefixes"]

_W, _H, _LEFT, _BOTTOM, _TOP = 560, 200, 44, 34, 12


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    label: str
    value: int
    tick: bool
    """Whether the label is drawn under the bar (every few days)."""


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    maximum: int
    total: int
    axis_y: int
    left: int


def days_back(today: datetime.date, count: int) -> list[str]:
    """The ``count`` days up to ``today`` (oldest first), ``YYYY-MM-DD``."""
    return [(today - datetime.timedelta(days=n)).isoformat() for n in range(count - 1, -1, -1)]


def bar_chart(days: Sequence[str], counts: Sequence[DayCount], field: str) -> Chart:
    """One bar per day of ``days``: the sum over prefixes of ``field`` (``resolutions`` or
    ``registrations``) that day."""
    per_day = dict.fromkeys(days, 0)
    for c in counts:
        if c.day in per_day:
            per_day[c.day] += int(getattr(c, field))
    maximum = max(per_day.values(), default=0)
    scale = max(maximum, 1)
    plot_h = _H - _BOTTOM - _TOP
    slot = (_W - _LEFT) / max(len(days), 1)
    step = max(1, len(days) // 7)
    bars = []
    for n, day in enumerate(days):
        value = per_day[day]
        height = round(plot_h * value / scale)
        bars.append(
            Bar(
                x=round(_LEFT + n * slot + slot * 0.15),
                y=_TOP + plot_h - height,
                width=max(1, round(slot * 0.7)),
                height=height,
                label=day[5:],
                value=value,
                tick=(len(days) - 1 - n) % step == 0,
            )
        )
    return Chart(_W, _H, tuple(bars), maximum, sum(per_day.values()), _TOP + plot_h, _LEFT)


def top_prefixes(counts: Sequence[DayCount], limit: int = 10) -> list[tuple[str, int, int]]:
    """(prefix, resolutions, registrations) of the busiest prefixes, busiest first."""
    sums: dict[str, list[int]] = {}
    for c in counts:
        pair = sums.setdefault(c.prefix, [0, 0])
        pair[0] += c.resolutions
        pair[1] += c.registrations
    ranked = sorted(sums.items(), key=lambda item: (-(item[1][0] + item[1][1]), item[0]))
    return [(prefix, r, g) for prefix, (r, g) in ranked[:limit]]
