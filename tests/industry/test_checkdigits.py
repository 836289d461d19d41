"""GS1 and VIN check digits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idnode.industry.checkdigits import (
    VIN_ALPHABET,
    gs1_valid,
    has_valid_check_digit,
    vin_check_digit,
    vin_valid,
)


@pytest.mark.parametrize(
    "vin",
    [
        "1M8GDM9AXKP042788",  # the ISO 3779 / NHTSA worked example (check digit X)
        "11111111111111111",  # every position 1: the sum is 1 × 89 ≡ 1 (mod 11)
    ],
)
def test_known_vins(vin: str) -> None:
    assert vin_valid(vin)
    assert has_valid_check_digit("vin", vin)


@pytest.mark.parametrize(
    "vin",
    [
        "1M8GDM9A1KP042788",  # wrong check digit
        "1M8GDM9AXKP04278",  # 16 characters
        "1M8GDM9AXKP04278O",  # O is not a VIN character
        "1m8gdm9axkp042788",  # lowercase
    ],
)
def test_bad_vins(vin: str) -> None:
    assert not vin_valid(vin)


def test_vin_check_digit_rejects_malformed() -> None:
    with pytest.raises(ValueError, match="17 characters"):
        vin_check_digit("LJ1")


_VIN_BODY = st.text(st.sampled_from(VIN_ALPHABET), min_size=17, max_size=17)


@given(_VIN_BODY)
def test_any_vin_closed_by_its_check_digit_is_valid(body: str) -> None:
    vin = body[:8] + vin_check_digit(body) + body[9:]
    assert vin_valid(vin)
    other = next(c for c in "0123456789X" if c != vin[8])
    assert not vin_valid(vin[:8] + other + vin[9:])


@pytest.mark.parametrize(
    ("code", "valid"),
    [("06912345678902", True), ("06912345678903", False), ("4006381333931", True)],
)
def test_gs1(code: str, valid: bool) -> None:
    assert gs1_valid(code) is valid
    assert has_valid_check_digit("gs1", code) is valid
