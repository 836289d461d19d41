"""GS1 Digital Link URI paths: parsing and validation, pure (no I/O) — spec
industrial-identifier-system §6 (GS1 Digital Link Resolver CE: ``/01/{GTIN}/10/{lot}/21/{serial}``).

A path is ``/<primary AI>/<key>`` followed by up to three ``/<qualifier AI>/<value>`` pairs in
the fixed order of that key's qualifier hierarchy (for a GTIN: CPV ``22``, lot ``10``, serial
``21``). Values are percent-decoded once. Checked here:

* the primary key is one of :data:`PRIMARY_KEYS` and its value has the right length and
  characters; a GTIN of 8, 12, 13 or 14 digits is padded to GTIN-14;
* the GS1 check digit (mod 10, weights 3/1 from the right) of GTIN, SSCC, GLN, GDTI, GRAI;
* qualifiers: known for that key, in hierarchy order, each at most once, values of 1..20
  characters from GS1 AI encodable character set 82 (:data:`CSET82`).

Anything else raises :class:`InvalidDigitalLink` (a ``ValueError``) with a message for people.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

__all__ = [
    "CSET82",
    "PRIMARY_KEYS",
    "QUALIFIERS",
    "AISpec",
    "DigitalLink",
    "InvalidDigitalLink",
    "check_digit",
    "has_valid_check_digit",
    "normalize_gtin",
    "parse_digital_link",
    "validate_value",
]

#: GS1 AI encodable character set 82 (GS1 General Specifications figure 7.11-1).
CSET82 = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
_X = "[" + re.escape(CSET82) + "]"


@dataclass(frozen=True)
class AISpec:
    """One application identifier: its code, short name (used as the URL template placeholder
    and OpenAPI parameter name), the value syntax, and how many leading digits a check digit
    closes (0: no check digit)."""

    code: str
    name: str
    pattern: str
    check_length: int = 0
    qualifiers: tuple[str, ...] = ()
    """Qualifier AIs allowed after this primary key, in hierarchy order."""


#: Primary keys resolved (GS1 Digital Link standard, primary key table).
PRIMARY_KEYS: dict[str, AISpec] = {
    spec.code: spec
    for spec in (
        AISpec("01", "gtin", r"\d{8}|\d{12,14}", 14, ("22", "10", "21")),
        AISpec("00", "sscc", r"\d{18}", 18),
        AISpec("253", "gdti", rf"\d{{13}}{_X}{{0,17}}", 13),
        AISpec("414", "gln", r"\d{13}", 13, ("254",)),
        AISpec("417", "party", r"\d{13}", 13),
        AISpec("8003", "grai", rf"0\d{{13}}{_X}{{0,16}}", 14),
        AISpec("8004", "giai", rf"{_X}{{1,30}}"),
    )
}

#: Key qualifiers (lot, serial, consumer product variant, GLN extension).
QUALIFIERS: dict[str, AISpec] = {
    spec.code: spec
    for spec in (
        AISpec("22", "cpv", rf"{_X}{{1,20}}"),
        AISpec("10", "lot", rf"{_X}{{1,20}}"),
        AISpec("21", "serial", rf"{_X}{{1,20}}"),
        AISpec("254", "glnx", rf"{_X}{{1,20}}"),
    )
}

#: Characters left unescaped in a value of a canonical Digital Link path.
_PATH_SAFE = "!'()*+,-.:;=_"


class InvalidDigitalLink(ValueError):
    """The path is not a valid GS1 Digital Link (the message says why)."""


def check_digit(digits: str) -> int:
    """The GS1 check digit of ``digits`` (the digits before the check digit): weights 3, 1,
    3, ... from the right, then the distance to the next multiple of ten."""
    if not digits.isdigit() or not digits.isascii():
        raise ValueError(f"not digits: {digits!r}")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def has_valid_check_digit(digits: str) -> bool:
    """Whether the last digit of ``digits`` is the check digit of the others."""
    return (
        len(digits) >= 2
        and digits.isascii()
        and digits.isdigit()
        and check_digit(digits[:-1]) == int(digits[-1])
    )


def normalize_gtin(gtin: str) -> str:
    """A GTIN-8, -12, -13 or -14 as GTIN-14 (left-padded with zeros), check digit verified."""
    if not (gtin.isascii() and gtin.isdigit()) or len(gtin) not in (8, 12, 13, 14):
        raise InvalidDigitalLink(f"a GTIN has 8, 12, 13 or 14 digits, not {gtin!r}")
    gtin14 = gtin.zfill(14)
    if not has_valid_check_digit(gtin14):
        expected = check_digit(gtin14[:-1])
        raise InvalidDigitalLink(f"GTIN {gtin} has a wrong check digit (expected {expected})")
    return gtin14


def validate_value(ai: str, value: str) -> str:
    """``value`` checked against AI ``ai`` (primary key or qualifier); the normalised value
    (GTIN-14 for AI 01, otherwise unchanged). Raises :class:`InvalidDigitalLink`."""
    if ai == "01":
        return normalize_gtin(value)
    spec = PRIMARY_KEYS.get(ai) or QUALIFIERS.get(ai)
    if spec is None:
        raise InvalidDigitalLink(f"unknown application identifier ({ai})")
    if not re.fullmatch(spec.pattern, value):
        raise InvalidDigitalLink(f"invalid value for AI ({ai}) {spec.name}: {value!r}")
    if spec.check_length and not has_valid_check_digit(value[: spec.check_length]):
        expected = check_digit(value[: spec.check_length - 1])
        raise InvalidDigitalLink(
            f"{spec.name.upper()} {value} has a wrong check digit (expected {expected})"
        )
    return value


@dataclass(frozen=True)
class DigitalLink:
    """A validated GS1 Digital Link path: primary key AI, normalised key value, and the
    qualifiers ``(ai, value)`` in hierarchy order."""

    ai: str
    key: str
    qualifiers: tuple[tuple[str, str], ...] = ()

    @property
    def spec(self) -> AISpec:
        return PRIMARY_KEYS[self.ai]

    def path(self) -> str:
        """The canonical path (GTIN-14; values percent-encoded), e.g. ``/01/0950.../10/A1``."""
        parts = [self.ai, quote(self.key, safe=_PATH_SAFE)]
        for ai, value in self.qualifiers:
            parts += [ai, quote(value, safe=_PATH_SAFE)]
        return "/" + "/".join(parts)

    def up(self) -> DigitalLink | None:
        """One level up the qualifier path (the last qualifier dropped); None at the key."""
        if not self.qualifiers:
            return None
        return DigitalLink(self.ai, self.key, self.qualifiers[:-1])

    def levels(self) -> list[DigitalLink]:
        """This link, then each level up to the bare primary key (most specific first)."""
        out: list[DigitalLink] = []
        link: DigitalLink | None = self
        while link is not None:
            out.append(link)
            link = link.up()
        return out


def _decode(segment: str) -> str:
    try:
        return unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidDigitalLink("a path segment is not valid UTF-8") from exc


def parse_digital_link(path: str) -> DigitalLink:
    """Parse and validate a raw (still percent-encoded) Digital Link path such as
    ``/01/09506000134352/10/ABC%2F1/21/7``; one trailing ``/`` is tolerated."""
    text = path[1:] if path.startswith("/") else path
    if text.endswith("/"):
        text = text[:-1]
    segments = text.split("/")
    if len(segments) % 2:
        raise InvalidDigitalLink("a Digital Link path is /<AI>/<value> pairs")
    pairs = [(segments[i], _decode(segments[i + 1])) for i in range(0, len(segments), 2)]
    for ai, value in pairs:
        if not ai or not value:
            raise InvalidDigitalLink("empty application identifier or value in the path")
    primary_ai, raw_key = pairs[0]
    spec = PRIMARY_KEYS.get(primary_ai)
    if spec is None:
        raise InvalidDigitalLink(f"({primary_ai}) is not a supported GS1 primary key")
    key = validate_value(primary_ai, raw_key)
    qualifiers: list[tuple[str, str]] = []
    position = -1
    for ai, value in pairs[1:]:
        if ai not in spec.qualifiers:
            raise InvalidDigitalLink(f"({ai}) is not a qualifier of {spec.name.upper()}")
        order = spec.qualifiers.index(ai)
        if order <= position:
            expected = ", ".join(f"({q})" for q in spec.qualifiers)
            raise InvalidDigitalLink(f"qualifiers must appear once each, in order {expected}")
        position = order
        qualifiers.append((ai, validate_value(ai, value)))
    return DigitalLink(primary_ai, key, tuple(qualifiers))
