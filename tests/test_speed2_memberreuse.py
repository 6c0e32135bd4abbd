"""Frames parsed with the members the previous frame had (core/memberreuse.py, issue 11 §3):
the same objects as the json module's decode gives, for every sequence of frames, and the
same errors for invalid ones.

Expected values come from the json module's decode of each frame alone (numbers with their
token text, types compared too: 1 and 1.0 and true are different JSON).
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from streamconv.core.documents import PairList, _decoder, _no_constant, parse_frame
from streamconv.core.memberreuse import MemberMemo, decode_object, member_decoder
from streamconv.core.numbers import JsonNumber, json_number
from streamconv.errors import JSONSyntaxError


def shape(value: Any) -> Any:
    """The value with its types and number texts spelled out (== would call 1 and 1.0 equal)."""
    if type(value) is PairList:
        return ("object", [(k, shape(v)) for k, v in value])
    if type(value) is list:
        return ("array", [shape(v) for v in value])
    if type(value) is JsonNumber:
        return ("number", value.text)
    return (type(value).__name__, value)


def decoder() -> Any:
    """decode_object that always looks member by member (never rests)."""
    from _json import make_scanner, scanstring

    from streamconv.core.jsonscan import _Settings

    settings: Any = _Settings(PairList, json_number, _no_constant)  # duck-typed
    scan = make_scanner(settings)
    memo = MemberMemo()

    def decode(text: str) -> Any:
        memo.rest = 0
        return decode_object(text, memo, scan, scanstring, PairList)

    return decode


BASE: dict[str, dict[str, Any]] = {
    "00080005": {"vr": "CS", "Value": ["ISO_IR 100"]},
    "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
    "00080018": {"vr": "UI", "Value": ["1.2.3.1"]},
    "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]},
    "00180050": {"vr": "DS", "Value": [1.25]},
    "00200013": {"vr": "IS", "Value": [1]},
    "00280010": {"vr": "US", "Value": [512]},
    "00081140": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1.2"]}}]},
    "00090010": {"vr": "LO", "Value": ["a \\" + '"},"00090011":{"vr"' + " b"]},
}
NEW_VALUES: list[Any] = [1, 1.0, 1.00, True, None, "1", [1, 2], {"Alphabetic": "X"}, -0.0, 12]


def variant(rng: random.Random) -> str:
    members = list(BASE.items())
    for _ in range(rng.randrange(4)):
        what = rng.randrange(4)
        if what == 0 and members:  # a value changed
            n = rng.randrange(len(members))
            key, elem = members[n]
            members[n] = (key, {**elem, "Value": [rng.choice(NEW_VALUES)]})
        elif what == 1 and members:  # one left out
            members.pop(rng.randrange(len(members)))
        elif what == 2:  # one added (or a duplicate key)
            key = rng.choice([*BASE, "00204000"])
            members.insert(rng.randrange(len(members) + 1), (key, {"vr": "LT", "Value": ["t"]}))
        else:  # two swapped
            if len(members) > 1:
                a, b = rng.sample(range(len(members)), 2)
                members[a], members[b] = members[b], members[a]
    sep = rng.choice([(",", ":"), (", ", ": "), (",\n ", ":")])
    parts = [json.dumps(k) + sep[1] + json.dumps(v, separators=sep) for k, v in members]
    text = "{" + sep[0].join(parts) + "}"
    return rng.choice(["", " ", "\n"]) + text + rng.choice(["", " ", "\n"])


def test_any_sequence_of_frames_parses_as_each_alone() -> None:
    rng = random.Random(11)
    reuse, plain = decoder(), _decoder()
    reused = 0
    for _ in range(400):
        text = variant(rng)
        expected = plain(text)
        try:
            got = reuse(text)
        except (ValueError, LookupError, StopIteration):
            continue  # parse_frame then parses it whole (an empty object, ...)
        assert shape(got) == shape(expected), text
        reused += 1
    assert reused > 300


def test_unchanged_members_are_the_objects_parsed_before() -> None:
    reuse = decoder()
    text = json.dumps(BASE, separators=(",", ":"))
    first = reuse(text)
    changed = reuse(text.replace('"1.2.3.1"', '"1.2.3.2"'))
    assert changed[0][1] is first[0][1] and changed[4][1] is first[4][1]
    assert changed[2][1] is not first[2][1] and changed[2][1][1][1] == ["1.2.3.2"]


@pytest.mark.parametrize(
    ("before", "after", "value"),
    [
        ('{"a": 1, "b": 2}', '{"a": 12, "b": 2}', ("int", 12)),  # a number runs on
        ('{"a": 1}', '{"a": 1.0}', ("number", "1.0")),
        ('{"a": 1.0}', '{"a": 1.00}', ("number", "1.00")),
        ('{"a": true}', '{"a": trueish}', None),  # not JSON: the whole parse says so
    ],
)
def test_a_member_that_only_starts_like_the_old_one(before: str, after: str, value: Any) -> None:
    parse_frame(before.encode(), 0, 0)
    if value is None:
        with pytest.raises(JSONSyntaxError):
            parse_frame(after.encode(), 1, 0)
        return
    assert shape(parse_frame(after.encode(), 1, 0).value[0][1]) == value


def test_invalid_frames_after_valid_ones_are_refused() -> None:
    good = json.dumps(BASE, separators=(",", ":")).encode()
    parse_frame(good, 0, 0)
    for bad in (good[:-1], good + b"}", good.replace(b',"00080016"', b'"00080016"'), b"{}x"):
        with pytest.raises(JSONSyntaxError):
            parse_frame(bad, 1, 0)
    assert shape(parse_frame(good, 2, 0).value) == shape(_decoder()(good.decode()))
    # a member that starts like the old one, at the very end of a text without its brace
    parse_frame(b'{"a": 1}', 3, 0)
    with pytest.raises(JSONSyntaxError):
        parse_frame(b'{"a": 12', 4, 0)


def test_after_a_mostly_new_frame_frames_are_parsed_whole_for_a_while() -> None:
    reuse = member_decoder(PairList, json_number, _no_constant)
    assert reuse is not None
    plain = _decoder()
    reuse('{"a": 1, "b": 2}')
    reuse('{"c": 3, "d": 4}')  # nothing reused: rest
    for i in range(32):
        with pytest.raises(ValueError, match="resting"):
            reuse(f'{{"c": 3, "d": {i}}}')
        # parse_frame's answer is the whole parse's all the same
        assert shape(parse_frame(f'{{"c": 3, "d": {i}}}'.encode(), i, 0).value) == shape(
            plain(f'{{"c": 3, "d": {i}}}')
        )
    got = reuse('{"c": 3, "d": 4}')  # looked at member by member again
    assert shape(got) == shape(plain('{"c": 3, "d": 4}'))
