"""core/numbers.py directly: IS and DS values (PS3.5 6.2) from JSON numbers and strings.

PS3.5 6.2: IS is an integer in [-2^31, 2^31-1] of at most 12 bytes; DS a fixed or floating
point decimal of at most 16 bytes ("0"-"9", "+", "-", "E", "e", "."), leading and trailing
spaces allowed.  CONTRACT §4: an integral JSON number for IS is written as that integer,
a DS JSON number longer than 16 characters becomes the closest 16-character form.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamconv.core.numbers import decimal_int, decimal_text, ds_value, is_value, json_type
from streamconv.errors import ContentError, Problems

# PS3.5 6.2 DS: the characters and shape of a decimal string
DS_GRAMMAR = re.compile(r" *[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)? *\Z")
PATH = "(0028,0030)"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (True, "a boolean"),
        (3, "a number"),
        (Decimal("1.5"), "a number"),
        ("x", "a string"),
        ([], "an array"),
        ({}, "an object"),
    ],
)
def test_json_type_names(value: Any, expected: str) -> None:
    assert json_type(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.50", "1.50"), ("1E+2", "1e2"), ("1.5E-7", "1.5e-7"), ("-0", "-0"), ("12", "12")],
)
def test_decimal_text_keeps_the_json_spelling(text: str, expected: str) -> None:
    assert decimal_text(Decimal(text)) == expected
    assert Decimal(decimal_text(Decimal(text))) == Decimal(text)


def test_decimal_int() -> None:
    assert decimal_int(Decimal("1E+3")) == 1000
    assert decimal_int(Decimal("-42")) == -42
    # far beyond every integer VR (UV, SV: 64 bits) without building a billion digits
    assert decimal_int(Decimal("1E+999999999")) >= 2**64
    assert decimal_int(Decimal("-1E+999999999")) < -(2**63)


# -- IS ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, "42"),
        (-(2**31), "-2147483648"),
        (2**31 - 1, "2147483647"),
        (Decimal("4.0"), "4"),  # integral JSON number: that integer (with a warning)
        (Decimal("1E+3"), "1000"),
        (" 42 ", " 42 "),  # PS3.5 6.2: spaces allowed, kept as given
        ("+7", "+7"),
        ("", ""),
        (None, None),
    ],
)
def test_is_values(value: Any, expected: str | None) -> None:
    assert is_value(value, Problems(strict=True), PATH) == expected


@pytest.mark.parametrize(
    "value",
    [2**31, -(2**31) - 1, Decimal("4.5"), "4.5", "1e3", "0x10", "2147483648", True, [1]],
)
def test_is_errors(value: Any) -> None:
    with pytest.raises(ContentError) as info:
        is_value(value, Problems(strict=True), PATH)
    assert info.value.path == PATH
    problems = Problems(strict=False)
    is_value(value, problems, PATH)  # +E: a warning, no exception
    assert len(problems.warnings) == 1 and problems.warnings[0].startswith(PATH)


# -- DS ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1.5"), "1.5"),
        (72, "72"),
        (Decimal("-1E+2"), "-1e2"),
        ("0.5", "0.5"),
        (" 1.5e-3 ", " 1.5e-3 "),
        (".5", ".5"),
        (None, None),
    ],
)
def test_ds_values(value: Any, expected: str | None) -> None:
    assert ds_value(value, Problems(strict=True), PATH) == expected


@pytest.mark.parametrize("value", ["1,5", "NaN", "Infinity", "1.5.2", "e5", True, {}])
def test_ds_errors(value: Any) -> None:
    with pytest.raises(ContentError) as info:
        ds_value(value, Problems(strict=True), PATH)
    assert info.value.path == PATH


@pytest.mark.parametrize(
    "text",
    [
        "3.14159265358979323846",
        "-0.000012345678901234567",
        "123456789012345678901",
        "1.2345678901234567e-300",
        "-9.87654321012345678e+250",
        "1.2345678901234567e+400",  # beyond a double's range
        "-1.2345678901234567e-400",
    ],
)
def test_long_ds_number_becomes_the_closest_16_characters(
    text: str, caplog: pytest.LogCaptureFixture
) -> None:
    d = Decimal(text)
    with caplog.at_level(logging.WARNING):
        got = ds_value(d, Problems(strict=True), PATH)
    assert got is not None and len(got) <= 16 and DS_GRAMMAR.match(got), got
    # a 16-character form has at least 9 significant digits at any 3-digit exponent
    assert abs(Decimal(got) - d) <= abs(d) * Decimal("5e-9"), got
    assert any(PATH in r.getMessage() for r in caplog.records)


def test_long_ds_number_in_the_subnormal_range() -> None:
    d = Decimal("1.2345678901234567e-320")
    got = ds_value(d, Problems(strict=True), PATH)
    assert got is not None and len(got) <= 16
    assert abs(Decimal(got) - d) <= abs(d) * Decimal("5e-9"), got


@settings(max_examples=300, deadline=None)
@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
        lambda d: d == 0 or -300 <= d.adjusted() <= 400
    )
)
def test_every_ds_number_fits_16_characters(d: Decimal) -> None:
    got = ds_value(d, Problems(strict=True), PATH)
    assert got is not None and len(got) <= 16 and DS_GRAMMAR.match(got), got
    assert abs(Decimal(got) - d) <= abs(d) * Decimal("5e-9"), (d, got)


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**70), 2**70), st.sampled_from(["int", "decimal", "text"]))
def test_is_range_is_that_of_a_signed_32_bit_integer(n: int, form: str) -> None:
    value: Any = n if form == "int" else Decimal(n) if form == "decimal" else str(n)
    if -(2**31) <= n < 2**31:
        assert is_value(value, Problems(strict=True), PATH) == str(n)
    else:
        with pytest.raises(ContentError):
            is_value(value, Problems(strict=True), PATH)
