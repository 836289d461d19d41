"""What a search box input names (pure; no store, no network).

:func:`parse_input` accepts:

* a handle, or a name the browser proxy's form accepts (``hdl:``, ``doi:``, ``info:hdl/``,
  ``urn:hdl:``, a pasted proxy URL): :func:`~idnode.http.proxy.normalize_handle_input`;
* a GS1 Digital Link URI (``https://id.example.com/01/06912345678902/21/7``) or its bare path;
* the text of a scanned GS1 code: the human-readable element string
  ``(01)06912345678902(21)7``, or the raw one with or without the symbology identifier
  (``]d2``, ``]C1``, ``]Q3``, ``]e0``) and with ``GS`` (0x1D) or ``|`` ending variable-length
  fields: ``010691234567890221ABC``.

A GS1 input becomes a :class:`~idnode.http.gs1_syntax.DigitalLink`, mapped to identifiers by
the node's GS1 rules (:func:`gs1_candidates`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from idnode.http.gs1 import GS1Rule
from idnode.http.gs1_syntax import (
    PRIMARY_KEYS,
    DigitalLink,
    InvalidDigitalLink,
    parse_digital_link,
)
from idnode.http.proxy import normalize_handle_input

__all__ = ["Lookup", "gs1_candidates", "parse_element_string", "parse_input"]

#: Fixed lengths of the element-string AIs the console reads (GS1 General Specifications 3.2).
_FIXED = {"00": 18, "01": 14, "02": 14, "11": 6, "13": 6, "15": 6, "17": 6, "20": 2, "414": 13,
          "417": 13}  # fmt: skip
#: Variable-length AIs and their longest value.
_VARIABLE = {"10": 20, "21": 20, "22": 20, "235": 28, "253": 30, "254": 20, "8003": 30,
             "8004": 30, "240": 30, "241": 30, "250": 30, "30": 8, "37": 8}  # fmt: skip
_SYMBOLOGY = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
_PAREN = re.compile(r"\((\d{2,4})\)([^()]*)")
_GS = "\x1d"


@dataclass(frozen=True)
class Lookup:
    """A parsed input: a ``handle``, or a GS1 ``link``."""

    handle: str | None = None
    link: DigitalLink | None = None


def _digital_link(elements: Sequence[tuple[str, str]]) -> DigitalLink:
    """The Digital Link of element-string pairs: the first primary key and its qualifiers
    (other AIs, e.g. dates, are data attributes and are left out)."""
    primary = next(((ai, v) for ai, v in elements if ai in PRIMARY_KEYS), None)
    if primary is None:
        raise InvalidDigitalLink("no GS1 primary key (such as (01) GTIN) in the code")
    spec = PRIMARY_KEYS[primary[0]]
    path = [primary[0], quote(primary[1], safe="")]
    for ai in spec.qualifiers:
        value = next((v for a, v in elements if a == ai), None)
        if value is not None:
            path += [ai, quote(value, safe="")]
    return parse_digital_link("/" + "/".join(path))


def parse_element_string(text: str) -> DigitalLink:
    """A scanned GS1 element string as a Digital Link; InvalidDigitalLink otherwise."""
    text = _SYMBOLOGY.sub("", text.strip())
    if text.startswith("("):
        pairs = _PAREN.findall(text)
        if not pairs or "".join(f"({a}){v}" for a, v in pairs) != text:
            raise InvalidDigitalLink("not a GS1 element string")
        return _digital_link([(a, v.strip()) for a, v in pairs])
    text = text.replace("|", _GS)
    elements: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos] == _GS:
            pos += 1
            continue
        ai = next((text[pos : pos + n] for n in (2, 3, 4) if text[pos : pos + n] in
                   _FIXED | _VARIABLE), None)  # fmt: skip
        if ai is None:
            raise InvalidDigitalLink(f"unknown application identifier at {text[pos : pos + 4]!r}")
        pos += len(ai)
        if ai in _FIXED:
            value = text[pos : pos + _FIXED[ai]]
            if len(value) != _FIXED[ai]:
                raise InvalidDigitalLink(f"({ai}) needs {_FIXED[ai]} characters")
        else:
            end = text.find(_GS, pos)
            value = text[pos : end if end >= 0 else len(text)][: _VARIABLE[ai]]
        elements.append((ai, value))
        pos += len(value)
    return _digital_link(elements)


def parse_input(text: str) -> Lookup:
    """What ``text`` names (see the module docstring); InvalidDigitalLink for GS1-looking
    input that is not valid, ValueError for empty input."""
    text = text.strip()
    if not text:
        raise ValueError("empty input")
    if re.match(r"(?i)https?://", text):
        path = urlsplit(text).path
        try:
            return Lookup(link=parse_digital_link(path))
        except InvalidDigitalLink:
            pass  # a proxy URL: the path is the handle
    elif re.fullmatch(r"/\d{2,4}/\S+", text):
        return Lookup(link=parse_digital_link(text))
    if text.startswith(("(", "]")) or _GS in text or re.fullmatch(r"(00|01)\d{12,}\S*", text):
        return Lookup(link=parse_element_string(text))
    handle = normalize_handle_input(text)
    if not handle:
        raise ValueError("empty input")
    return Lookup(handle=handle)


def gs1_candidates(link: DigitalLink, rules: Sequence[GS1Rule]) -> list[str]:
    """The identifiers ``link`` may be, most specific first (the first matching rule's
    levels), as the GS1 resolver tries them."""
    rule = next((r for r in rules if r.matches(link)), None)
    return [] if rule is None else [handle for _level, handle in rule.candidates(link)]
