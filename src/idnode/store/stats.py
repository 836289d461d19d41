"""Statistics as the stores keep them (schema ``0004_stats.sql``; no SQL here).

A :class:`DayCount` is one row: a prefix, a UTC day (``YYYY-MM-DD``) and the resolutions and
registrations counted for it. A node's own counts only grow (``HandleStore.add_stats`` adds);
what a child node reports to its parent is kept per child as a :class:`ChildReport`, whose
counts are the child's totals for the days it covered (``HandleStore.put_child_report``
replaces those days).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from idnode.store.base import handle_key

__all__ = ["ChildReport", "DayCount", "Registrations", "day_of", "merge_counts", "valid_day"]

_EPOCH = datetime.date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class DayCount:
    """Resolutions and registrations of one prefix on one UTC day."""

    prefix: str
    """The prefix (without ``0.NA/``), as first seen; matched case-insensitively."""
    day: str
    """The UTC day, ``YYYY-MM-DD``."""
    resolutions: int = 0
    registrations: int = 0

    def to_json(self) -> dict[str, str | int]:
        return {
            "prefix": self.prefix,
            "day": self.day,
            "resolutions": self.resolutions,
            "registrations": self.registrations,
        }


class Registrations(NamedTuple):
    """The registrations in a page of the transaction log, as the database counted them
    (``HandleStore.registrations``)."""

    counts: list[DayCount]
    """CREATE_HANDLE entries per (prefix as written, UTC day), registrations only."""
    entries: int
    """Log entries in the page, of any action."""
    last: int
    """The id of the page's last entry; the id the page started after when it is empty."""


@dataclass(frozen=True, slots=True)
class ChildReport:
    """The last report of a child node, as its parent keeps it."""

    child: str
    """The identity the child authenticated as (``index:handle``)."""
    received_ms: int
    """When the last report came (epoch milliseconds)."""
    report: str
    """The prefixes it listed in its last report, as the JSON text it sent (without counts)."""
    counts: tuple[DayCount, ...]
    """Everything it reported per prefix per day (within the days asked for), by day."""


def day_of(epoch_days: int) -> str:
    """``YYYY-MM-DD`` of the UTC day ``epoch_days`` days after 1970-01-01."""
    return (_EPOCH + datetime.timedelta(days=epoch_days)).isoformat()


def valid_day(text: str) -> bool:
    """Whether ``text`` is a real day written ``YYYY-MM-DD``."""
    if len(text) != 10:
        return False
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def merge_counts(counts: Iterable[DayCount]) -> list[DayCount]:
    """``counts`` summed per (prefix, day), the prefix matched case-insensitively (the first
    spelling kept), ordered by day then prefix key."""
    merged: dict[tuple[str, str], DayCount] = {}
    for count in counts:
        key = (count.day, handle_key(count.prefix))
        held = merged.get(key)
        if held is None:
            merged[key] = count
        else:
            merged[key] = DayCount(
                held.prefix,
                held.day,
                held.resolutions + count.resolutions,
                held.registrations + count.registrations,
            )
    return [merged[key] for key in sorted(merged)]
