"""Date formats of date attributes (IDHub ``dateFormat``, default ``YYYY-MM-DD``).

A format is a string of tokens and literals. Tokens: ``YYYY`` (four-digit year), ``YY`` (two
digits, read as 20YY, the GS1 convention for AI 17), ``MM`` month, ``DD`` day, ``HH`` hour
(00-23), ``mm`` minute, ``ss`` second, each exactly that many digits. Anything that is not an
ASCII letter or digit is a literal (``-``, ``/``, ``.``, ``:``, space, ``年``, ``月``, ``日``), and
so is ``T``. A format names a year and a month once each; every other token at most once. A
text matches a format when it has exactly that shape and names a real calendar date and time
(no 30 February, no hour 24); a missing day is the first of the month.
"""

from __future__ import annotations

import datetime
import functools
import re
from dataclasses import dataclass

__all__ = ["DEFAULT_DATE_FORMAT", "DateFormat", "InvalidDateFormat", "compile_date_format"]

#: IDHub's default date format.
DEFAULT_DATE_FORMAT = "YYYY-MM-DD"

_TOKENS = {
    "YYYY": ("year", 4),
    "YY": ("year2", 2),
    "MM": ("month", 2),
    "DD": ("day", 2),
    "HH": ("hour", 2),
    "mm": ("minute", 2),
    "ss": ("second", 2),
}
_ORDER = sorted(_TOKENS, key=len, reverse=True)


class InvalidDateFormat(ValueError):
    """The date format itself is malformed (the message says why)."""


@dataclass(frozen=True, slots=True)
class DateFormat:
    """A compiled date format: :meth:`parse` reads texts, :meth:`format` writes them."""

    text: str
    pattern: re.Pattern[str]
    fields: tuple[str, ...]

    def parse(self, value: str) -> datetime.datetime | None:
        """The date and time ``value`` names, or None when it does not match the format."""
        m = self.pattern.fullmatch(value)
        if m is None:
            return None
        parts = {name: int(digits) for name, digits in m.groupdict().items()}
        year = parts.get("year", 2000 + parts.get("year2", 0))
        try:
            return datetime.datetime(
                year,
                parts["month"],
                parts.get("day", 1),
                parts.get("hour", 0),
                parts.get("minute", 0),
                parts.get("second", 0),
            )
        except ValueError:
            return None

    def format(self, when: datetime.date | datetime.datetime) -> str:
        """``when`` written in this format (times of a plain date are 00:00:00)."""
        moment = (
            when
            if isinstance(when, datetime.datetime)
            else datetime.datetime(when.year, when.month, when.day)
        )
        values = {
            "YYYY": f"{moment.year:04d}",
            "YY": f"{moment.year % 100:02d}",
            "MM": f"{moment.month:02d}",
            "DD": f"{moment.day:02d}",
            "HH": f"{moment.hour:02d}",
            "mm": f"{moment.minute:02d}",
            "ss": f"{moment.second:02d}",
        }
        return "".join(values.get(piece, piece) for piece in _split(self.text))


def _split(text: str) -> list[str]:
    """The format as a list of tokens and single literal characters."""
    pieces: list[str] = []
    i = 0
    while i < len(text):
        token = next((t for t in _ORDER if text.startswith(t, i)), None)
        if token is not None:
            pieces.append(token)
            i += len(token)
            continue
        char = text[i]
        if (char.isascii() and char.isalnum()) and char != "T":
            raise InvalidDateFormat(f"unknown letter {char!r} in date format {text!r}")
        pieces.append(char)
        i += 1
    return pieces


@functools.lru_cache(maxsize=256)
def compile_date_format(text: str) -> DateFormat:
    """Compile ``text``; raises :class:`InvalidDateFormat` if it is not a valid format."""
    if not text or len(text) > 64:
        raise InvalidDateFormat("a date format has 1 to 64 characters")
    regex: list[str] = []
    fields: list[str] = []
    for piece in _split(text):
        if piece in _TOKENS:
            name, width = _TOKENS[piece]
            if name in fields:
                raise InvalidDateFormat(f"{piece} appears twice in date format {text!r}")
            fields.append(name)
            regex.append(f"(?P<{name}>[0-9]{{{width}}})")
        else:
            regex.append(re.escape(piece))
    if "year" in fields and "year2" in fields:
        raise InvalidDateFormat(f"date format {text!r} names the year twice")
    if not ({"year", "year2"} & set(fields)) or "month" not in fields:
        raise InvalidDateFormat(f"date format {text!r} must name a year and a month")
    return DateFormat(text, re.compile("".join(regex)), tuple(fields))
