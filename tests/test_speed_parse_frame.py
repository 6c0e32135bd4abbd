"""parse_frame's fast path (the standard library's C scanner, objects as PairList) gives the
values yajl gives, and leaves every refusal to yajl, so the error, its message and its
offset are what they always were (issue 11 §3).

The expected side is the same frame through yajl alone (the fast path switched off), and
for a few values the Python objects written out here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from streamconv.core import documents
from streamconv.core.documents import PairList, Pairs, parse_frame
from streamconv.core.numbers import JsonNumber
from streamconv.errors import StreamconvError

VALID = [
    b'{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]}}',
    b'{"a": 1, "a": 2}',  # duplicate keys are kept, in order (the model reports them)
    b'{"x": [1.50, 1e-06, 2.5E+3, -0.0, 12345678901234567890, -7]}',
    b'{"x": [true, false, null, "", "\\u00e9\\ud83d\\ude00", "\\"\\\\\\/\\b\\f\\n\\r\\t"]}',
    b'{"x": "\\u0000streamconv-spill:3"}',
    b' \r\n\t{"x": {}}\n ',
    b'{"x": [[], {}, [{}], {"y": [{"z": []}]}]}',
    '{"x": "Müller 中文"}'.encode(),
    b"[1, 2]",  # not an object: the model refuses it, the parse does not
    b'"text"',
    b"12",
]

INVALID = [
    b'{"x": NaN}',
    b'{"x": Infinity}',
    b'{"x": -Infinity}',
    b'{"x": 1} {"y": 2}',  # two values in one frame
    b'{"x": 1}x',
    b'{"x": 01}',
    b'{"x": 1.}',
    b'{"x": .5}',
    b'{"x": "a\tb"}',  # a raw control character inside a string
    b'{"x": "\\x"}',  # an unknown escape
    b'{"x": "\xff"}',  # not UTF-8
    b'{"x": [1, 2,]}',
    b'{"x" 1}',
    b'{"x": 1',
    b"",
    b"   ",
]


def _plain(value: Any) -> Any:
    """The parsed value with every object as a list of pairs and numbers with their text."""
    if isinstance(value, Pairs):
        return ("object", [(k, _plain(v)) for k, v in value.pairs])
    if type(value) is list:
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return (type(value).__name__, getattr(value, "text", None), str(value))
    return (type(value).__name__, value)


def _yajl_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> Any:
        raise ValueError("fast path off")

    monkeypatch.setattr(documents, "_decode", refuse)


def _outcome(data: bytes) -> Any:
    try:
        raw = parse_frame(data, 3, 1000, start=500, source="in.json")
    except StreamconvError as exc:
        return (type(exc).__name__, str(exc), exc.as_dict())
    return (raw.index, raw.offset, _plain(raw.value))


@pytest.mark.parametrize("data", VALID + INVALID, ids=lambda d: repr(d[:40]))
def test_fast_path_equals_yajl(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _outcome(data)
    _yajl_only(monkeypatch)
    assert fast == _outcome(data)


@pytest.mark.parametrize("data", VALID, ids=lambda d: repr(d[:40]))
def test_fast_path_builds_pairlists(data: bytes) -> None:
    parse_frame(b"{}", 0, 0)  # the decoder exists
    value = parse_frame(data, 0, 0).value
    if data.lstrip().startswith(b"{"):
        assert type(value) is PairList and isinstance(value, Pairs)


def test_values_as_written() -> None:
    value = parse_frame(b'{"a": 1, "a": [1.50, -0.0, 7, "s", null]}', 0, 0).value
    assert value.pairs[0] == ("a", 1)
    key, numbers = value.pairs[1]
    assert key == "a" and type(numbers) is list
    assert type(numbers[0]) is JsonNumber and numbers[0].text == "1.50"
    assert numbers[1].text == "-0.0" and numbers[2:] == [7, "s", None]


@pytest.mark.parametrize("data", INVALID, ids=lambda d: repr(d[:40]))
def test_refused_frames_are_errors(data: bytes) -> None:
    with pytest.raises(StreamconvError):
        parse_frame(data, 0, 0)


def test_nesting_deeper_than_the_c_scanner_goes_to_yajl() -> None:
    # the C scanner recurses (RecursionError); yajl does not: the frame still parses (the
    # pre-pass enforces the depth limit before any frame exists)
    value = parse_frame(b"[" * 5000 + b"]" * 5000, 0, 0).value
    depth = 0
    while value:
        assert type(value) is list and len(value) == 1
        value, depth = value[0], depth + 1
    assert depth == 4999
