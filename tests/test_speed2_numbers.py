"""json_number, the json module's parse_float in a worker (issue 11 §3): the same JsonNumber
as the class makes, the token's text kept (CONTRACT §7), -0 given back its spelling."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

from streamconv.core.documents import parse_frame
from streamconv.core.numbers import NEGATIVE_ZERO, JsonNumber, json_number


@pytest.mark.parametrize("text", ["1.25", "1e-06", "1.000000e01", "-0.0", "2.5E+3", "7.0"])
def test_json_number_is_the_class_s_number(text: str) -> None:
    made = json_number(text)
    assert type(made) is JsonNumber and made.text == text
    assert made == Decimal(text) and made.text == JsonNumber(text).text
    again = pickle.loads(pickle.dumps(made))
    assert type(again) is JsonNumber and again.text == text


def test_negative_zero_keeps_its_sign_and_spelling() -> None:
    made = json_number(NEGATIVE_ZERO)
    assert made.text == "-0" and made.is_signed() and made == 0


def test_a_frame_s_numbers_are_json_numbers_with_their_text() -> None:
    raw = parse_frame(b'{"00180050": {"vr": "DS", "Value": [1.50, 2E3, 7]}}', 0, 0)
    values = raw.value[0][1][1][1]
    assert [type(v) for v in values] == [JsonNumber, JsonNumber, int]
    assert [getattr(v, "text", v) for v in values] == ["1.50", "2E3", 7]
