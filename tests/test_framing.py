"""The framer: top-level values as byte frames, whatever the chunking (streamconv.core.framing).

The oracle is Python's ``json`` module (no code shared with the framer): the frames, parsed
with ``json.loads``, must be the values of the array or stream, in order, for any split of
the input into chunks.  Strings holding brackets, quotes and backslashes take the framer's
slow path; everything else its fast one.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamconv.core.documents import parse_frame
from streamconv.core.framing import Frame, Framer, check_json
from streamconv.errors import ContentError, JSONSyntaxError, LimitError
from streamconv.options import Limits

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def frames_of(data: bytes, cuts: list[int] | None = None, **kw: Any) -> list[Frame]:
    framer = Framer(**kw)
    points = sorted({c for c in (cuts or []) if 0 < c < len(data)})
    out: list[Frame] = []
    last = 0
    try:
        for p in [*points, len(data)]:
            out += framer.feed(data[last:p])
            last = p
        out += framer.finish()
    finally:
        framer.close()
    return out


def values_of(data: bytes, cuts: list[int] | None = None) -> list[Any]:
    return [json.loads(f.data) for f in frames_of(data, cuts)]


TRICKY = [
    {"00080005": {"vr": "CS", "Value": ["ISO_IR 192"]}},
    {"00081115": {"vr": "SQ", "Value": [{"00081150": {"vr": "UI", "Value": ["1.2"]}}, {}]}},
    {"00100010": {"vr": "PN", "Value": [{"Alphabetic": '}],{[\\"}'}]}},  # brackets in a string
    {"00104000": {"vr": "LT", "Value": ['a \\\\"}] b']}},  # escaped backslash, escaped quote
    {"00081030": {"vr": "LO", "Value": ["{"]}, "00081032": {"vr": "SQ", "Value": [{}]}},
    {},
    {"00280010": {"vr": "US", "Value": [512]}, "00281050": {"vr": "DS", "Value": [1.5, -2e3]}},
]

SHAPES = {
    "array": lambda docs: json.dumps(docs),
    "array, indented": lambda docs: json.dumps(docs, indent=2),
    "ndjson": lambda docs: "\n".join(json.dumps(d) for d in docs) + "\n",
    "concatenated": lambda docs: "".join(json.dumps(d) for d in docs),
    "concatenated, spaced": lambda docs: "  ".join(json.dumps(d, indent=1) for d in docs),
    "two arrays (pages)": lambda docs: json.dumps(docs[:3]) + "\n" + json.dumps(docs[3:]),
    "trailing commas": lambda docs: "[" + ",".join(json.dumps(d) for d in docs) + ",]",
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_shape_every_split_point(shape: str) -> None:
    data = SHAPES[shape](TRICKY).encode()
    assert values_of(data) == TRICKY
    for cut in range(1, len(data)):
        assert values_of(data, [cut]) == TRICKY, cut


@pytest.mark.parametrize("shape", list(SHAPES))
def test_byte_by_byte(shape: str) -> None:
    data = SHAPES[shape](TRICKY).encode()
    assert values_of(data, list(range(len(data)))) == TRICKY


_text = st.text(alphabet=st.sampled_from(list('ab{}[],":\\ \n\t\u00e9\u4e2d')), max_size=12)
_leaf = st.one_of(_text, st.integers(-5, 5), st.none(), st.booleans())
_json = st.recursive(
    _leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_text, inner, max_size=3)),
    max_leaves=12,
)


@SETTINGS
@given(
    docs=st.lists(st.dictionaries(_text, _json, max_size=4), min_size=1, max_size=5),
    shape=st.sampled_from(sorted(SHAPES)),
    cuts=st.lists(st.integers(0, 4000), max_size=12),
)
def test_any_split_matches_json_module(
    docs: list[dict[str, Any]], shape: str, cuts: list[int]
) -> None:
    data = SHAPES[shape](docs).encode()
    if shape == "two arrays (pages)" and len(docs) <= 3:
        data = json.dumps(docs).encode()
    assert values_of(data, cuts) == docs


def test_frames_parse_to_the_same_values_as_ijson() -> None:
    # the worker's parse of a frame (ijson) agrees with the json module
    data = SHAPES["array"](TRICKY).encode()
    for frame in frames_of(data):
        raw = parse_frame(frame.data, frame.index, frame.offset)
        assert raw.index == frame.index
        assert _plain(raw.value) == json.loads(frame.data)


def _plain(v: Any) -> Any:
    from decimal import Decimal

    from streamconv.core.documents import Pairs

    if isinstance(v, Pairs):
        return {k: _plain(x) for k, x in v.pairs}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, Decimal):
        return float(v)
    return v


def test_a_frame_is_emitted_as_soon_as_it_closes() -> None:
    # a producer that writes one dataset and keeps the pipe open sees it converted
    framer = Framer()
    assert [f.data for f in framer.feed(b'[{"a": {"b": 1}}')] == [b'{"a": {"b": 1}}']
    assert [f.data for f in framer.feed(b'\n,{"c": 2}')] == [b'{"c": 2}']
    with pytest.raises(JSONSyntaxError, match="expected ',' or ']' after dataset 2"):
        framer.feed(b' {"d": 3}')  # an array item needs its comma
    framer.close()
    framer = Framer()
    assert [f.data for f in framer.feed(b'{"a": 1}\n')] == [b'{"a": 1}']
    assert [f.data for f in framer.feed(b'{"b": [')] == []
    assert [f.data for f in framer.feed(b"]}")] == [b'{"b": []}']
    framer.close()


def test_indexes_offsets_and_shape() -> None:
    data = b'[{"a":1},\n {"b":2}]'
    frames = frames_of(data)
    assert [f.index for f in frames] == [0, 1]
    assert [f.start for f in frames] == [1, 11]
    assert data[frames[1].start : frames[1].start + len(frames[1].data)] == frames[1].data
    assert frames[-1].offset == len(data)


def test_a_large_value_is_not_rescanned_per_chunk() -> None:
    # 4 MB of a single object fed in 1 KiB pieces: linear, not quadratic (would take minutes)
    big = {"v": [{"x": "y" * 10} for _ in range(100_000)]}
    data = json.dumps([big, {"z": 1}]).encode()
    framer = Framer()
    frames: list[Frame] = []
    for i in range(0, len(data), 1024):
        frames += framer.feed(data[i : i + 1024])
    frames += framer.finish()
    assert len(frames) == 2 and json.loads(frames[0].data) == big


BAD = {
    "garbage between values": (b'{"a":1} x {"b":2}', JSONSyntaxError, "invalid JSON"),
    "missing comma in array": (b'[{"a":1} {"b":2}]', JSONSyntaxError, "expected ',' or ']'"),
    "comma between top-level values": (b'{"a":1},{"b":2}', JSONSyntaxError, "invalid JSON"),
    "leading comma": (b"[,{}]", JSONSyntaxError, "expected a value"),
    "truncated object": (b'[{"a":1},{"b":', JSONSyntaxError, "truncated JSON input"),
    "truncated array": (b'[{"a":1}', JSONSyntaxError, "truncated JSON input"),
    "truncated string": (b'{"a":"b', JSONSyntaxError, "truncated JSON input"),
    "bad token inside": (b'[{"a":1},{"b":oops}]', JSONSyntaxError, "invalid JSON"),
    "NaN": (b'{"a":NaN}', JSONSyntaxError, "'NaN' is not a JSON value"),
    "invalid UTF-8": (b'{"a":"\xff"}', JSONSyntaxError, "not valid UTF-8"),
    "unbalanced close": (b'{"a":1}}', JSONSyntaxError, "invalid JSON"),
    "empty array": (b"[ ]", ContentError, "empty JSON array"),
    "empty document": (b"  \n", ContentError, "empty document"),
    "a closing bracket first": (b"]", JSONSyntaxError, "unexpected ']'"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_errors(name: str) -> None:
    data, kind, text = BAD[name]
    for cuts in ([], list(range(len(data)))):
        with pytest.raises(kind) as info:
            frames_of(data, cuts)
        assert text in str(info.value), (cuts, str(info.value))


def test_frames_before_an_error_are_kept() -> None:
    framer = Framer()
    with pytest.raises(JSONSyntaxError) as info:
        framer.feed(b'{"a":1}\n{"b":2}\n{"c":oops}\n{"d":4}\n')
    assert [f.data for f in framer.completed()] == [b'{"a":1}', b'{"b":2}']
    assert info.value.offset is not None and 16 <= info.value.offset <= 22


def test_scalars_are_framed_for_the_converter_to_reject() -> None:
    assert [f.data for f in frames_of(b'[1, "two", null, {"a": 3}]')] == [
        b"1",
        b'"two"',
        b"null",
        b'{"a": 3}',
    ]
    assert [f.data for f in frames_of(b'1\n"x"\n', [1, 3])] == [b"1", b'"x"']


def test_limits_of_the_pre_pass_apply() -> None:
    deep = b'{"a":' * 300 + b"1" + b"}" * 300
    with pytest.raises(LimitError, match="nested more than"):
        frames_of(deep, limits=Limits(max_depth=4))
    with pytest.raises(LimitError, match="max-input-bytes"):
        frames_of(b'[{"a":1},{"b":2}]', limits=Limits(max_input_bytes=10))


def test_check_json_agrees_with_the_json_module_on_random_mutations() -> None:
    rng = random.Random(7)
    base = json.dumps(TRICKY[2:5]).encode()
    for _ in range(400):
        data = bytearray(base)
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] = rng.choice(b'{}[]",:\\ax1')
        try:
            json.loads(bytes(data))
            valid = True
        except ValueError:
            valid = False
        try:
            check_json(bytes(data))
            ok = True
        except JSONSyntaxError:
            ok = False
        assert ok == valid, bytes(data)


# -- +as n through the framer (pipeline.Converter) ------------------------------------------


def _select(data: bytes, n: int) -> list[Any]:
    from streamconv.core.pipeline import Converter, RunContext, release
    from streamconv.options import ArrayPolicy, ConvertOptions

    conv = Converter(
        RunContext(ConvertOptions(array_policy=ArrayPolicy.SELECT, array_select=n), "in.json")
    )
    try:
        outs = conv.feed(data) + conv.finish()
    finally:
        conv.close()
    for out in outs:
        release(out)  # type: ignore[arg-type]
    return [out.dataset for out in outs]  # type: ignore[union-attr]


def test_select_skips_datasets_without_building_them() -> None:
    # the skipped ones are checked as JSON but never built: invalid DICOM JSON content in
    # them does not matter (DCMTK only looks at the n-th), invalid JSON does
    good = {"00100020": {"vr": "LO", "Value": ["two"]}}
    bad_content = {"0010002": {"vr": "LO", "Value": ["x"]}}
    data = json.dumps([bad_content, good, bad_content]).encode()
    (ds,) = _select(data, 2)
    assert ds[0x00100020].value == "two"  # ASCII of a PreEncoded element stays text (vr.py)
    with pytest.raises(JSONSyntaxError, match="invalid JSON"):
        _select(b'[{"00100020": {"vr": "LO", "Value": ["one"]}}, {"a": oops}]', 1)
    with pytest.raises(ContentError, match=r"cannot store dataset no\. 5"):
        _select(data, 5)
