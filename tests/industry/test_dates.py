"""Date formats of date attributes."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idnode.industry.dates import InvalidDateFormat, compile_date_format

FORMATS = ("YYYY-MM-DD", "YYYYMMDD", "YYMMDD", "YYYY年MM月DD日", "YYYY-MM-DDTHH:mm:ss", "YYYY-MM")


@pytest.mark.parametrize(
    ("fmt", "text", "expected"),
    [
        ("YYYY-MM-DD", "2026-03-31", datetime.datetime(2026, 3, 31)),
        ("YYMMDD", "290331", datetime.datetime(2029, 3, 31)),
        ("YYYY年MM月DD日", "2026年01月05日", datetime.datetime(2026, 1, 5)),
        ("YYYY-MM-DD HH:mm:ss", "2026-01-05 23:59:07", datetime.datetime(2026, 1, 5, 23, 59, 7)),
        ("YYYY-MM", "2026-02", datetime.datetime(2026, 2, 1)),
    ],
)
def test_parse(fmt: str, text: str, expected: datetime.datetime) -> None:
    assert compile_date_format(fmt).parse(text) == expected


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("YYYY-MM-DD", "2026-02-30"),  # no such day
        ("YYYY-MM-DD", "2026-2-03"),  # digits are fixed-width
        ("YYYY-MM-DD", "2026/02/03"),  # literals must match
        ("YYYY-MM-DD", "2026-02-03 "),
        ("YYYY-MM-DD", "２０２６-02-03"),  # fullwidth digits are not digits here
        ("YYYY-MM-DDTHH:mm:ss", "2026-01-05T24:00:00"),
        ("YYMMDD", "260100"),  # GS1's "day 00" is not a calendar date
    ],
)
def test_parse_refuses(fmt: str, text: str) -> None:
    assert compile_date_format(fmt).parse(text) is None


@pytest.mark.parametrize("fmt", ["", "DD-MM", "YYYY-YY-MM", "YYYY-MM-DD-DD", "YYYY-MM-QQ"])
def test_bad_formats(fmt: str) -> None:
    with pytest.raises(InvalidDateFormat):
        compile_date_format(fmt)


@given(st.sampled_from(FORMATS), st.datetimes(datetime.datetime(2000, 1, 1)))
def test_format_then_parse(fmt: str, when: datetime.datetime) -> None:
    compiled = compile_date_format(fmt)
    parsed = compiled.parse(compiled.format(when))
    assert parsed is not None
    day = when.day if "day" in compiled.fields else 1
    year = 2000 + when.year % 100 if "year2" in compiled.fields else when.year
    hour = when.hour if "hour" in compiled.fields else 0
    minute = when.minute if "minute" in compiled.fields else 0
    second = when.second if "second" in compiled.fields else 0
    assert parsed == datetime.datetime(year, when.month, day, hour, minute, second)
