"""The framer on the inputs of issue 10 rows 1 and 11: values open across many reads, and
stray bytes after a complete dataset (streamconv.core.framing, directly).

Each case is checked for every way of cutting the input into pieces (or byte by byte), the
oracle being Python's json module; the work done for a long open string is counted through
the framer's own state, not timed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamconv.core.documents import DocumentParser
from streamconv.core.framing import Frame, Framer


def frames_of(data: bytes, step: int) -> list[Frame]:
    framer = Framer(check=False)
    out: list[Frame] = []
    try:
        for i in range(0, len(data), step):
            out += framer.feed(data[i : i + step])
        out += framer.finish()
    finally:
        framer.close()
    return out


A = b'{"00100010":{"vr":"PN","Value":[{"Alphabetic":"A"}]}}'
B = b'{"00100020":{"vr":"LO","Value":["}{\\"]"]}}'  # brackets and a quote inside a string

CASES = {
    "NUL after a dataset": (A + b"\x00" + B, [A, b"\x00", B]),
    "NUL and newline": (A + b"\n\x00\x00\n" + B + b"\n", [A, b"\x00\x00", B]),
    "a word after a dataset": (A + b"junk" + B, [A, b"junk", B]),
    "a string as a value": (A + b' "a}b\\"c" ' + B, [A, b'"a}b\\"c"', B]),
    "a number as a value": (A + b" 12345 " + B, [A, b"12345", B]),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_stray_values_are_frames_of_their_own(name: str, step: int) -> None:
    data, expected = CASES[name]
    frames = frames_of(data, step)
    assert [f.data for f in frames] == expected
    assert [f.index for f in frames] == list(range(len(expected)))
    # the offset of each frame is where its bytes are in the input
    for frame in frames:
        assert data[frame.start : frame.start + len(frame.data)] == frame.data


@pytest.mark.parametrize("escape", [b"\\\\", b'\\"', b"\\u00e9"])
def test_an_open_string_is_taken_up_where_it_stopped(escape: bytes) -> None:
    # a 16 MiB text value with brackets in it (beyond 8 MiB: token by token), in 64 KiB
    # pieces; escapes fall on every kind of piece boundary
    text = (b"x{]" + escape) * ((16 << 20) // (3 + len(escape)))
    doc = b'[{"0040A160":{"vr":"UT","Value":["' + text + b'"]}},{"a":1}]'
    framer = Framer(check=False)
    frames: list[Frame] = []
    resumed = 0
    for i in range(0, len(doc), 1 << 16):
        frames += framer.feed(doc[i : i + (1 << 16)])
        if framer._in_str:
            # looked at up to the end of the data (less an escape the pre-pass holds back),
            # where the next piece takes up: never again from the string's opening quote
            assert framer._scan + framer._base >= framer._emitted - 8
            resumed += 1
    frames += framer.finish()
    assert resumed > 100
    assert [json.loads(f.data) for f in frames] == json.loads(doc)


def test_a_long_run_of_blanks_inside_a_value() -> None:
    doc = b'{"a":' + b" " * (4 << 20) + b'{"b":"}"}}' + b"\n" + A
    frames = frames_of(doc, 1 << 16)
    assert [json.loads(f.data) for f in frames] == [{"a": {"b": "}"}}, json.loads(A)]


# -- the one-shot parser (json2dcm, +ar, the daemon): the same string, to yajl whole ---------


class _CountingCoro:
    """Stands between DocumentParser and ijson's C coroutine, counting the sends."""

    def __init__(self, coro: Any) -> None:
        self.coro = coro
        self.sends = 0

    def send(self, data: bytes) -> None:
        self.sends += 1
        self.coro.send(data)

    def close(self) -> None:
        self.coro.close()


def test_the_one_shot_parser_hands_an_open_string_to_yajl_once() -> None:
    # yajl lexes a token split over several sends from its start each time: 128 MB in 1 MiB
    # reads took 2.7 s instead of 0.13 s (json2dcm: 37 s for a 300 MB value)
    text = "é}x" * ((8 << 20) // 4)
    doc = json.dumps([{"0040A160": {"vr": "UT", "Value": [text]}}, {"a": 1}]).encode()
    parser = DocumentParser()
    out = parser.feed(doc[:10])
    counting = _CountingCoro(parser._coro)
    parser._coro = counting
    for i in range(10, len(doc), 1 << 16):
        out += parser.feed(doc[i : i + (1 << 16)])
    out += parser.finish()
    parser.close()
    # the read where the string begins, the read where it ends (with all held between),
    # and what follows it: not one send per read (~130 reads)
    assert counting.sends <= 4, counting.sends
    assert [raw.index for raw in out] == [0, 1]
    ((tag, element),) = out[0].value.pairs
    assert tag == "0040A160" and element.pairs[1] == ("Value", [text])
    assert out[1].value.pairs == [("a", 1)]


def test_the_one_shot_parser_holds_nothing_back_between_strings() -> None:
    # reads that end inside a string, one after another, but inside different strings:
    # every dataset complete in what was read comes out at once (nothing held, memory flat)
    lines = [json.dumps({"00100020": {"vr": "LO", "Value": ["x" * (i % 97)]}}) for i in range(3000)]
    doc = "\n".join(lines).encode() + b"\n"
    parser = DocumentParser()
    got = 0
    step = 4099  # a prime: the reads end at every kind of place
    for i in range(0, len(doc), step):
        got += len(parser.feed(doc[i : i + step]))
        complete = doc[: i + step].count(b"\n")
        assert got >= complete - 1, (i, got, complete)
        assert len(parser._held) == 0
    got += len(parser.finish())
    parser.close()
    assert got == 3000
