"""The framer counts brackets without looking for strings again where the pre-pass's scan
found no string holding one (JsonFilter.strings_plain, issue 11 §3): frames are the same
for every way the input is cut into reads, whatever brackets the strings hold.

Expected frames are the datasets' own JSON text, written here.
"""

from __future__ import annotations

import json

import pytest

from streamconv.core.documents import JsonFilter
from streamconv.core.framing import Framer
from streamconv.core.spills import SpillStore

PLAIN = {"00080060": {"vr": "CS", "Value": ["CT"]}, "00280010": {"vr": "US", "Value": [512]}}
TRICKY = [
    "a}],{b",  # a string that looks like the end of a dataset and the start of the next
    "}",
    "{[",
    '\\"}]',  # an escaped quote before brackets
    "]]]]}}}}",
    "]}}x",  # balances the dataset's own "{{[" with a separator after: only a string scan
]


def datasets() -> list[dict[str, object]]:
    out: list[dict[str, object]] = [PLAIN]
    for i, text in enumerate(TRICKY):
        out.append(
            {"00081030": {"vr": "LO", "Value": [text]}, "00200013": {"vr": "IS", "Value": [i]}}
        )
        out.append(PLAIN)
    return out


def frames_of(chunks: list[bytes]) -> list[bytes]:
    framer = Framer(source="test", check=False)
    frames = []
    for chunk in chunks:
        frames += framer.feed(chunk)
    frames += framer.finish()
    return [f.data for f in frames]


@pytest.mark.parametrize("sep", [b",", b", ", b",\n"])
def test_every_cut_gives_the_same_frames(sep: bytes) -> None:
    texts = [json.dumps(d, separators=(",", ":")).encode() for d in datasets()]
    data = b"[" + sep.join(texts) + b"]"
    assert frames_of([data]) == texts
    for cut in range(1, len(data)):
        assert frames_of([data[:cut], data[cut:]]) == texts, cut


def test_three_reads_through_a_string_with_brackets() -> None:
    texts = [json.dumps(d, separators=(",", ":")).encode() for d in datasets()]
    data = b"[" + b",".join(texts) + b"]"
    at = data.index(b"a}],{b")
    for a in range(at - 3, at + 7):
        for b in range(a + 1, at + 9):
            assert frames_of([data[:a], data[a:b], data[b:]]) == texts, (a, b)


def feed_flags(chunks: list[bytes]) -> list[bool]:
    f = JsonFilter(SpillStore(), max_depth=100)
    flags = []
    for chunk in chunks:
        f.feed(chunk)
        flags.append(f.strings_plain)
    return flags


def test_the_pre_pass_says_which_reads_have_a_string_with_a_bracket() -> None:
    assert feed_flags([b'[{"a": ["b", "c"]}, ', b'{"d": "e"}]']) == [True, True]
    assert feed_flags([b'[{"a": ["b[", "c"]}, ', b'{"d": "e"}]']) == [False, True]
    # a string open across reads: its part in each read counts for that read
    assert feed_flags([b'[{"a": "b', b"c}d", b'e"}]']) == [True, False, True]
    assert feed_flags([b'[{"a": "b{', b'cd"}]']) == [False, True]
    # without depth tracking there is no scan to share: never plain
    f = JsonFilter(SpillStore(), max_depth=0)
    f.feed(b'[{"a": "b"}]')
    assert f.strings_plain is False


class _PassThrough:
    """A duck-typed pre-pass without strings_plain (as streamconv batch's verbatim scan)."""

    def __init__(self) -> None:
        self.consumed = 0
        self._carry = b""

    def feed(self, data: bytes) -> bytes:
        self.consumed += len(data)
        return data

    def finish(self) -> bytes:
        return b""


def test_a_filter_that_does_not_say_gets_the_full_check() -> None:
    texts = [json.dumps(d, separators=(",", ":")).encode() for d in datasets()]
    data = b"[" + b",".join(texts) + b"]"
    framer = Framer(source="test", check=False)
    framer.filter = _PassThrough()  # type: ignore[assignment]
    frames = framer.feed(data) + framer.finish()
    assert [f.data for f in frames] == texts
