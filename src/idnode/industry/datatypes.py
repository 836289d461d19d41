"""Checks of one value's text against its attribute, with no outside world involved.

:func:`split_items` turns a value's text into the items to check: the text itself, or for a
multi-valued attribute the strings of a JSON array (at most ``max_items``). :func:`check_item`
checks one item and returns the first failure as ``(code, message)``, in this order: length
(characters, ``too_short``/``too_long``), then by type:

* string: ``pattern`` (a full match), then ``check_digit``;
* number: ``[+-]digits[.digits]`` (no exponent, no NaN; else ``type``), then ``precision``
  (digits after the point), then ``range`` (``minimum``/``maximum``, inclusive);
* date: ``date_format`` (the attribute's format, a real calendar date);
* reference: a handle (``prefix/suffix``, see :func:`~idnode.industry.model.is_handle`);
* url: an absolute ``http``/``https`` URL with a host and no spaces; file: the same, or ``s3``.

Whether a referenced identifier exists and whether a value is unique need the store:
:mod:`idnode.industry.validate` asks those through its ``Lookups``.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from urllib.parse import urlsplit

from idnode.industry.checkdigits import has_valid_check_digit
from idnode.industry.codes import Code
from idnode.industry.dates import compile_date_format
from idnode.industry.model import Attribute, AttributeType, is_handle

__all__ = ["check_item", "format_number", "split_items"]

_NUMBER = re.compile(r"[+-]?([0-9]+)(?:\.([0-9]+))?")
_URL_SCHEMES = {AttributeType.URL: ("http", "https"), AttributeType.FILE: ("http", "https", "s3")}

Failure = tuple[Code, str]


def split_items(attr: Attribute, text: str) -> list[str] | Failure:
    """The items of ``text``: ``[text]``, or the elements of a multi-valued attribute's JSON
    array of strings; a failure (``type``, ``too_many``) if that array is malformed."""
    if not attr.multiple:
        return [text]
    try:
        items = json.loads(text)
    except ValueError:
        return Code.TYPE, "expected a JSON array of strings"
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        return Code.TYPE, "expected a JSON array of strings"
    assert attr.max_items is not None
    if len(items) > attr.max_items:
        return Code.TOO_MANY, f"{len(items)} items, at most {attr.max_items} allowed"
    return items


def check_item(attr: Attribute, text: str) -> Failure | None:
    """The first way ``text`` breaks ``attr`` (see the module docstring), or None."""
    assert attr.max_length is not None
    if len(text) < attr.min_length:
        return Code.TOO_SHORT, f"{len(text)} characters, at least {attr.min_length} required"
    if len(text) > attr.max_length:
        return Code.TOO_LONG, f"{len(text)} characters, at most {attr.max_length} allowed"
    kind = attr.type
    if kind is AttributeType.STRING:
        return _check_string(attr, text)
    if kind is AttributeType.NUMBER:
        return _check_number(attr, text)
    if kind is AttributeType.DATE:
        assert attr.date_format is not None
        if compile_date_format(attr.date_format).parse(text) is None:
            return Code.DATE_FORMAT, f"{text!r} is not a date in the format {attr.date_format}"
        return None
    if kind is AttributeType.REFERENCE:
        if not is_handle(text):
            return Code.TYPE, f"{text!r} is not an identifier (prefix/suffix)"
        return None
    return _check_url(_URL_SCHEMES[kind], text)


def _check_string(attr: Attribute, text: str) -> Failure | None:
    if attr.pattern is not None and re.fullmatch(attr.pattern, text) is None:
        return Code.PATTERN, f"{text!r} does not match {attr.pattern}"
    if attr.check_digit is not None and not has_valid_check_digit(attr.check_digit, text):
        return Code.CHECK_DIGIT, f"{text!r} is not a {attr.check_digit.upper()} code"
    return None


def _check_number(attr: Attribute, text: str) -> Failure | None:
    m = _NUMBER.fullmatch(text)
    if m is None:
        return Code.TYPE, f"{text!r} is not a decimal number"
    decimals = len(m.group(2) or "")
    if attr.precision is not None and decimals > attr.precision:
        return Code.PRECISION, f"{decimals} decimals, at most {attr.precision} allowed"
    number = Decimal(text)
    if attr.minimum is not None and number < attr.minimum:
        return Code.RANGE, f"{text} is below the minimum {format_number(attr.minimum)}"
    if attr.maximum is not None and number > attr.maximum:
        return Code.RANGE, f"{text} is above the maximum {format_number(attr.maximum)}"
    return None


def _check_url(schemes: tuple[str, ...], text: str) -> Failure | None:
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme.lower() not in schemes
        or not parts.netloc
        or any(c.isspace() for c in text)
        or not text.isprintable()
    ):
        return Code.TYPE, f"{text!r} is not an absolute {'/'.join(schemes)} URL"
    return None


def format_number(number: Decimal) -> str:
    """``number`` as plain decimal text (never an exponent): ``Decimal("1E+2")`` → ``100``."""
    return f"{number:f}"
