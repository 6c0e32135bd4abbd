"""The planner's NDJSON fast path (issue 13): lines cut without a parse, and only where the
Framer would cut; whatever it cannot vouch for goes to the Framer, with the same cuts.

The Framer (``_scan``, the exact path of tests/test_batch_plan.py) is the reference: the
fast path must either give exactly its cuts or refuse (``_NotLines``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator

import pytest
from batchlib import dataset
from hypothesis import given, settings
from hypothesis import strategies as st

from streamconv.batch import plan
from streamconv.batch.plan import Scan, scan_input
from streamconv.errors import StreamconvError
from streamconv.options import Limits

Item = tuple[int, int, str] | Scan


def _line(i: int, text: str = "ok") -> bytes:
    ds = {
        "00080018": {"vr": "UI", "Value": [f"1.2.{i}"]},
        "00081030": {"vr": "LO", "Value": [text]},
    }
    return json.dumps(ds, separators=(",", ":")).encode()


def _chunks(data: bytes, size: int) -> Callable[[], Iterator[bytes]]:
    return lambda: (data[i : i + size] for i in range(0, len(data), size))


def _framer(data: bytes, batch: int) -> list[Item]:
    """The Framer's answer, as the planner had it before: without the pre-pass (whose
    removals shift offsets: a BOM) where that scan succeeds, else with it."""
    whole = _chunks(data, 1 << 20)
    try:
        return list(plan._scan(whole(), batch, Limits(), "x", verbatim=True))
    except StreamconvError:
        return list(plan._scan(whole(), batch, Limits(), "x", verbatim=False))


def _lines(data: bytes, batch: int, size: int = 1 << 20) -> list[Item]:
    return list(plan._scan_lines(_chunks(data, size)(), batch))


def _refused(data: bytes, batch: int = 2) -> bool:
    try:
        _lines(data, batch)
    except plan._NotLines:
        return True
    return False


ACCEPTED = {
    "plain": b"\n".join(_line(i) for i in range(9)) + b"\n",
    "no final newline": b"\n".join(_line(i) for i in range(9)),
    "crlf and blank lines": b"\r\n".join(
        _line(i) + (b"\r\n \t" if i % 3 == 0 else b"") for i in range(9)
    ),
    "bom": b"\xef\xbb\xbf" + b"\n".join(_line(i) for i in range(9)),
    "escapes": b"\n".join(_line(i, 'a \\ "b" \\"') for i in range(9)),
    "a real header": b"\n".join(json.dumps(dataset(i)).encode() for i in range(9)),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
@pytest.mark.parametrize("size", [1, 7, 1 << 20])
def test_lines_cut_where_the_framer_cuts(name: str, size: int) -> None:
    data = ACCEPTED[name]
    got = _lines(data, 2, size)
    assert got[-1] == Scan("values", 9)
    assert got == _framer(data, 2)
    for cut in got[:-1]:
        assert not isinstance(cut, Scan)
        assert data[cut[1] - 1 : cut[1] + 1] == b"\n{"  # a line start


REFUSED = {
    "two objects on a line": _line(0) + b" " + _line(1) + b"\n" + _line(2),
    "two objects, no blank": _line(0) + _line(1) + b"\n" + _line(2),
    "an object over two lines": _line(0) + b"\n" + _line(1)[:30] + b"\n" + _line(1)[30:],
    "a bracket in a string": _line(0, "x}{y") + b"\n" + _line(1),
    "a nested object on the next line": _line(0) + b"\n" + b'{"a":\n{"b":1}}',
    "an array": b"[" + _line(0) + b",\n" + _line(1) + b"]",
    "a trailing comma": _line(0) + b",\n" + _line(1),
    "a number on a line": _line(0) + b"\n1\n" + _line(1),
    "a stray bracket": _line(0) + b"\n]" + _line(1),
    "an unclosed object": _line(0)[:-1] + b"\n" + _line(1),
    "indented": b"  " + _line(0) + b"\n" + _line(1),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_is_not_one_object_per_line_goes_to_the_framer(name: str) -> None:
    data = REFUSED[name]
    assert _refused(data)
    # scan_input still answers, as the Framer does (errors included)
    try:
        expected: list[Item] | str = _framer(data, 1)
    except Exception as exc:
        expected = type(exc).__name__
    try:
        got: list[Item] | str = list(scan_input(_chunks(data, 1 << 20), 1, Limits(), "x"))
    except Exception as exc:
        got = type(exc).__name__
    assert got == expected


@st.composite
def _ndjson(draw: st.DrawFn) -> bytes:
    texts = st.sampled_from(["ok", "a\\b", 'q"x', "x{y", "[", "", "\u00e9"])
    seps = st.sampled_from([b"\n", b"\r\n", b"\n\n", b" \n", b"\n\t\n", b" ", b""])
    n = draw(st.integers(1, 12))
    parts: list[bytes] = []
    for i in range(n):
        parts.append(_line(i, draw(texts)))
        parts.append(draw(seps))
    return b"".join(parts)


def _all(items: Iterable[Item]) -> list[Item]:
    return list(items)


@settings(max_examples=150, deadline=None)
@given(_ndjson(), st.integers(1, 4), st.sampled_from([1, 3, 64, 1 << 20]))
def test_any_ndjson_any_split_same_cuts_as_the_framer(data: bytes, batch: int, size: int) -> None:
    """The fast path gives the Framer's cuts or refuses; scan_input gives them either way."""
    try:
        expected = _framer(data, batch)
    except Exception:
        return  # a broken stream: tests/test_batch_plan.py covers what follows a break
    assert _all(scan_input(_chunks(data, size), batch, Limits(), "x")) == expected
    try:
        got = _lines(data, batch, size)
    except plan._NotLines:
        return
    assert got == expected


def test_cuts_every_batch_size_lines_across_many_blocks() -> None:
    data = b"\n".join(_line(i) for i in range(2000))
    got = _lines(data, 250, 1 << 16)
    assert [c[0] for c in got[:-1] if not isinstance(c, Scan)] == list(range(250, 2000, 250))
    assert got[-1] == Scan("values", 2000)
