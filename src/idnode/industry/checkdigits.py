"""Check digits of the identifiers the industry templates carry.

* GS1 (GTIN, GLN, SSCC, ...): mod 10 with weights 3, 1, 3, ... from the right, the rule
  :mod:`idnode.http.gs1_syntax` already implements for Digital Link paths; reused here.
* VIN (ISO 3779, and GB 16735 which makes the check digit mandatory in China): 17 characters
  from ``0-9`` and ``A-Z`` without ``I``, ``O``, ``Q``; letters are transliterated to numbers,
  multiplied by position weights ``8 7 6 5 4 3 2 10 0 9 8 7 6 5 4 3 2``, and the sum modulo 11
  is the ninth character (``X`` for 10).
"""

from __future__ import annotations

from typing import Literal

from idnode.http.gs1_syntax import check_digit as gs1_check_digit
from idnode.http.gs1_syntax import has_valid_check_digit as gs1_valid

__all__ = [
    "CHECK_DIGIT_SCHEMES",
    "VIN_ALPHABET",
    "CheckDigitScheme",
    "gs1_check_digit",
    "gs1_valid",
    "has_valid_check_digit",
    "vin_check_digit",
    "vin_valid",
]

CheckDigitScheme = Literal["gs1", "vin"]
#: The check-digit schemes a string attribute may demand (``metadata.checkDigit``).
CHECK_DIGIT_SCHEMES: tuple[CheckDigitScheme, ...] = ("gs1", "vin")

#: Characters allowed in a VIN.
VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
_VIN_VALUES = {
    **{d: int(d) for d in "0123456789"},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def vin_check_digit(vin: str) -> str:
    """The check character of a 17-character VIN (its own ninth character is ignored).
    Raises ValueError if ``vin`` is not 17 characters of :data:`VIN_ALPHABET`."""
    if len(vin) != 17 or any(c not in _VIN_VALUES for c in vin):
        raise ValueError(f"a VIN is 17 characters of {VIN_ALPHABET}, not {vin!r}")
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    rest = total % 11
    return "X" if rest == 10 else str(rest)


def vin_valid(vin: str) -> bool:
    """Whether ``vin`` is a well-formed VIN whose ninth character is its check digit."""
    try:
        return vin[8] == vin_check_digit(vin)
    except ValueError:
        return False


def has_valid_check_digit(scheme: CheckDigitScheme, value: str) -> bool:
    """Whether ``value`` is well formed and closed by a correct check digit of ``scheme``."""
    if scheme == "vin":
        return vin_valid(value)
    return gs1_valid(value)
