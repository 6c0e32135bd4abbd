"""Any split of the input bytes into chunks gives the same output bytes (STYLE.md habit 9).

The core is fed with :class:`streamconv.core.pipeline.Converter` directly, one chunk per
``feed``; the output of the undivided input is the reference.  Every document carries SOP
Class/Instance UIDs, so no UID is generated and outputs of two runs can be compared.

The reference output itself is checked against an oracle that does not share code with
streamconv: Python's ``json`` module for what the JSON says, ``pydicom.dcmread`` for what the
DICOM file says.
"""

from __future__ import annotations

import base64
import io
import json
import os
import random
from decimal import Decimal
from typing import Any

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamconv.core.documents import DocumentParser, Pairs
from streamconv.core.encode import iter_bytes
from streamconv.core.pipeline import Converter, Output, RunContext, release
from streamconv.errors import StreamconvError
from streamconv.options import ArrayPolicy, ConvertOptions, TransferSyntax

SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
# STREAMCONV_FUZZ=N: N random examples per property instead of the fixed, quick default
_FUZZ = int(os.environ.get("STREAMCONV_FUZZ", "0"))
SETTINGS = settings(
    max_examples=_FUZZ or 60,
    deadline=None,
    derandomize=not _FUZZ,  # by default the same examples on every run: CI is reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- driving the core ----------------------------------------------------------------------


def convert_chunks(chunks: list[bytes], options: ConvertOptions) -> list[bytes]:
    """Feed the chunks one by one; return each output file's bytes."""
    conv = Converter(RunContext(options, "chunks.json", None))
    outs: list[Any] = []
    try:
        for chunk in chunks:
            outs += conv.feed(chunk)
        outs += conv.finish()
    finally:
        conv.close()
    result = []
    for out in outs:
        assert isinstance(out, Output), out
        try:
            result.append(b"".join(iter_bytes(out.encoded)))
        finally:
            release(out)
    return result


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def error_of(chunks: list[bytes], options: ConvertOptions) -> tuple[type, int]:
    with pytest.raises(StreamconvError) as info:
        convert_chunks(chunks, options)
    return type(info.value), info.value.exit_code


def read(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


cut_lists = st.lists(st.integers(min_value=0, max_value=1 << 30), max_size=12)


def _cuts_for(data: bytes, raw: list[int]) -> list[int]:
    return [c % (len(data) + 1) for c in raw]


# -- the documents -------------------------------------------------------------------------


def _ids(n: int) -> str:
    return (
        f'"00080016": {{"vr": "UI", "Value": ["{SOP_CLASS}"]}},'
        f'"00080018": {{"vr": "UI", "Value": ["1.2.3.4.{n}"]}}'
    )


TRICKY_TEXT = r"a,]b,}c\",]\\,}\\\"d ,  ] \\"  # JSON text: commas, brackets, escapes
TRAILING_COMMAS = (
    "{\n" + _ids(1) + ',\n "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John",},],},\n'
    ' "00200013": {"vr": "IS", "Value": [7,],},\n'
    ' "00280030": {"vr": "DS", "Value": [0.5, 1.25e1 ,\t],},\n'
    ' "00181310": {"vr": "US", "Value": [1, 2, 65535,],},\n'
    ' "0040A730": {"vr": "SQ", "Value": [{"0040A160": {"vr": "UT", "Value": ["x,]"],},},'
    ' {"0040A160": {"vr": "UT", "Value": ["y,}"],},},],},\n'
    f' "00204000": {{"vr": "LT", "Value": ["{TRICKY_TEXT}"]}},\n'
    "}\n"
)
ESCAPES = (
    '{"00080005": {"vr": "CS", "Value": ["ISO_IR 192"]},'
    + _ids(2)
    + ',"00100010": {"vr": "PN", "Value": [{"Alphabetic": "M\\u00fcller^J\\u00e9r\\u00f4me"}]},'
    '"00204000": {"vr": "LT", "Value": ["\\ud83d\\ude00 smile \\u20ac \\\\u00e9 \\"q\\" \\/ \\b\\f\\n\\r\\t'
    ' \\ud834\\udd1e"]},'
    '"00081030": {"vr": "LO", "Value": ["\\u65e5\\u672c\\u8a9e\\ud840\\udc0b"]}}'
)
BOM = b"\xef\xbb\xbf" + ("{" + _ids(3) + ',"00100020": {"vr": "LO", "Value": ["ID,]"]}}').encode()
NDJSON = (
    "\n".join(
        "{" + _ids(i) + f',"00100020": {{"vr": "LO", "Value": ["patient {i},]"]}}' + "}"
        for i in range(4)
    )
    + "\n"
)
ARRAY = "[\n" + ",\n".join("{" + _ids(10 + i) + "}" for i in range(3)) + ",\n]"
NUMBERS = (
    "{" + _ids(4) + ',"00190010": {"vr": "LO", "Value": ["STREAMCONV TEST"]},'
    '"00191041": {"vr": "FD", "Value": [-1.5e-300, 2.2250738585072014e-308, 1e308, 0.1]},'
    '"00191042": {"vr": "FL", "Value": [3.4028234663852886e38, -0.0, 1.17549435e-38]},'
    '"00191043": {"vr": "SV", "Value": [-9223372036854775808, 9223372036854775807]},'
    '"00191044": {"vr": "UV", "Value": [18446744073709551615]},'
    '"00191045": {"vr": "DS", "Value": [1234567890.12345, -0.000001, 1e-10]},'
    '"00191046": {"vr": "AT", "Value": ["7FE00010", "0010abcd"]}}'
)

SMALL_DOCS: dict[str, tuple[bytes, ConvertOptions]] = {
    "trailing-commas": (TRAILING_COMMAS.encode(), ConvertOptions()),
    "escapes": (ESCAPES.encode(), ConvertOptions()),
    "bom": (BOM, ConvertOptions()),
    "ndjson": (NDJSON.encode(), ConvertOptions(array_policy=ArrayPolicy.SPLIT)),
    "array": (ARRAY.encode(), ConvertOptions(array_policy=ArrayPolicy.SPLIT)),
    "numbers": (NUMBERS.encode(), ConvertOptions()),
    "big-endian": (TRAILING_COMMAS.encode(), ConvertOptions(transfer_syntax=TransferSyntax.BIG)),
    "sequence+ar": (NDJSON.encode(), ConvertOptions(array_policy=ArrayPolicy.SEQUENCE)),
    "select+as": (
        NDJSON.encode(),
        ConvertOptions(array_policy=ArrayPolicy.SELECT, array_select=3),
    ),
}

# a large InlineBinary (> 1 MiB of base64 text: the pre-filter splices it out of the stream)
PIXELS = random.Random(7).randbytes(3 * 400_000 + 6)  # 1.2 MB; base64 1.6 MB
PIXEL_B64 = base64.b64encode(PIXELS).decode()
LARGE_HEAD = (
    "{" + _ids(5) + ',"00280010": {"vr": "US", "Value": [1]}, "7FE00010": {"vr": "OW", '
    '"InlineBinary"  :\n "'
)
LARGE_TAIL = '"},\n "7FE00020": {"vr": "OB", "InlineBinary": "AAECAw=="}}'
LARGE = (LARGE_HEAD + PIXEL_B64 + LARGE_TAIL).encode()


# -- the oracles: the undivided input, checked without streamconv's code ---------------------


def _strip_trailing_commas(text: str) -> str:
    # only for the oracle: the documents above have no ',' + ']' inside strings except
    # where a string ends in them, which this small scanner respects
    out = []
    i = 0
    in_str = False
    while i < len(text):
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
            out.append(c)
        elif c == ",":
            j = i + 1
            while text[j] in " \t\r\n":
                j += 1
            if text[j] not in "]}":
                out.append(c)
        else:
            out.append(c)
        i += 1
    return "".join(out)


def test_reference_outputs_are_right() -> None:
    """The undivided documents convert to what the JSON says (pydicom reads it back)."""
    (out,) = convert_chunks([TRAILING_COMMAS.encode()], ConvertOptions())
    doc = json.loads(_strip_trailing_commas(TRAILING_COMMAS))
    ds = read(out)
    assert ds.PatientName == "Doe^John"
    assert ds.InstanceNumber == 7
    assert [float(v) for v in ds.PixelSpacing] == [0.5, 12.5]
    assert ds[0x00181310].value == [1, 2, 65535]
    assert [item[0x0040A160].value for item in ds[0x0040A730].value] == ["x,]", "y,}"]
    assert ds[0x00204000].value == doc["00204000"]["Value"][0]

    (out,) = convert_chunks([ESCAPES.encode()], ConvertOptions())
    doc = json.loads(ESCAPES)
    ds = read(out)
    assert ds.PatientName == doc["00100010"]["Value"][0]["Alphabetic"]
    assert ds[0x00204000].value == doc["00204000"]["Value"][0]
    assert ds[0x00081030].value == doc["00081030"]["Value"][0]
    assert out.count("😀".encode()) == 1  # surrogate pair -> one 4-byte UTF-8 character

    (out,) = convert_chunks([BOM], ConvertOptions())
    assert read(out).PatientID == "ID,]"

    outs = convert_chunks([NDJSON.encode()], ConvertOptions(array_policy=ArrayPolicy.SPLIT))
    assert [read(o).PatientID for o in outs] == [f"patient {i},]" for i in range(4)]
    (out,) = convert_chunks([NDJSON.encode()], ConvertOptions(array_policy=ArrayPolicy.SEQUENCE))
    items = read(out)[0x00091000].value  # +ar: (0009,1000) JSON2DCM_LIST_OF_DATASETS
    assert [item.PatientID for item in items] == [f"patient {i},]" for i in range(4)]
    (out,) = convert_chunks([NDJSON.encode()], SMALL_DOCS["select+as"][1])
    assert read(out).PatientID == "patient 2,]"
    outs = convert_chunks([ARRAY.encode()], ConvertOptions(array_policy=ArrayPolicy.SPLIT))
    assert [read(o).SOPInstanceUID for o in outs] == [f"1.2.3.4.{10 + i}" for i in range(3)]

    (out,) = convert_chunks([NUMBERS.encode()], ConvertOptions())
    doc = json.loads(NUMBERS)
    ds = read(out)
    for key in ("00191041", "00191043", "00191044"):
        value = ds[int(key, 16)].value
        assert (value if isinstance(value, list) else [value]) == doc[key]["Value"]
    assert ds[0x00191042].value[1] == 0.0
    assert [float(v) for v in ds[0x00191045].value] == doc["00191045"]["Value"]
    assert ds[0x00191046].value == [0x7FE00010, 0x0010ABCD]

    (out,) = convert_chunks([LARGE], ConvertOptions())
    ds = read(out)
    assert ds.PixelData == PIXELS
    assert ds[0x7FE00020].value == b"\x00\x01\x02\x03"
    (out,) = convert_chunks([LARGE], ConvertOptions(transfer_syntax=TransferSyntax.BIG))
    ds = read(out)
    # PS3.18 F.2.7: InlineBinary OW is little endian; big endian output swaps each word
    swapped = b"".join(PIXELS[i : i + 2][::-1] for i in range(0, len(PIXELS), 2))
    assert ds.PixelData == swapped


# -- the properties --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SMALL_DOCS))
def test_every_single_split_point(name: str) -> None:
    data, options = SMALL_DOCS[name]
    reference = convert_chunks([data], options)
    assert reference
    for cut in range(1, len(data)):
        assert convert_chunks([data[:cut], data[cut:]], options) == reference, f"cut at {cut}"


@pytest.mark.parametrize("name", list(SMALL_DOCS))
def test_byte_by_byte(name: str) -> None:
    data, options = SMALL_DOCS[name]
    reference = convert_chunks([data], options)
    assert convert_chunks([data[i : i + 1] for i in range(len(data))], options) == reference


@SETTINGS
@given(name=st.sampled_from(sorted(SMALL_DOCS)), cuts=cut_lists)
def test_any_split_small(name: str, cuts: list[int]) -> None:
    data, options = SMALL_DOCS[name]
    reference = convert_chunks([data], options)
    assert convert_chunks(split(data, _cuts_for(data, cuts)), options) == reference


_LARGE_REFERENCE: dict[TransferSyntax, list[bytes]] = {}


def _large_reference(ts: TransferSyntax) -> list[bytes]:
    if ts not in _LARGE_REFERENCE:
        _LARGE_REFERENCE[ts] = convert_chunks([LARGE], ConvertOptions(transfer_syntax=ts))
    return _LARGE_REFERENCE[ts]


def _large_boundaries() -> dict[str, int]:
    start = len(LARGE_HEAD)  # first base64 character
    end = start + len(PIXEL_B64)  # the closing quote
    key = LARGE_HEAD.index('"InlineBinary"')
    return {
        "inside the key": key + 5,
        "after the key": key + len('"InlineBinary"'),
        "before the colon": key + len('"InlineBinary"  '),
        "after the colon": key + len('"InlineBinary"  :'),
        "before the opening quote": start - 1,
        "after the opening quote": start,
        "base64 quad +1": start + 401,
        "base64 quad +2": start + 402,
        "base64 quad +3": start + 403,
        "just below the splice threshold": start + (1 << 20) - 1,
        "at the splice threshold": start + (1 << 20),
        "just above the splice threshold": start + (1 << 20) + 1,
        "one before the closing quote": end - 1,
        "before the closing quote": end,
        "after the closing quote": end + 1,
        "after the closing brace": end + 2,
        "inside the next InlineBinary": len(LARGE) - 8,
    }


@pytest.mark.parametrize("ts", [TransferSyntax.SAME, TransferSyntax.BIG])
@pytest.mark.parametrize("where", list(_large_boundaries()))
def test_large_inline_binary_boundaries(where: str, ts: TransferSyntax) -> None:
    cut = _large_boundaries()[where]
    options = ConvertOptions(transfer_syntax=ts)
    assert convert_chunks([LARGE[:cut], LARGE[cut:]], options) == _large_reference(ts)


def test_large_inline_binary_all_boundaries_at_once() -> None:
    cuts = sorted(set(_large_boundaries().values()))
    assert convert_chunks(split(LARGE, cuts), ConvertOptions()) == _large_reference(
        TransferSyntax.SAME
    )


@settings(SETTINGS, max_examples=_FUZZ or 25)
@given(cuts=cut_lists, small=st.lists(st.integers(1, 7), max_size=6))
def test_any_split_large(cuts: list[int], small: list[int]) -> None:
    # random cuts anywhere, plus cuts a few bytes from the interesting places
    marks = list(_large_boundaries().values())
    extra = [marks[i % len(marks)] + d for i, d in enumerate(small)]
    chunks = split(LARGE, _cuts_for(LARGE, cuts) + extra)
    assert convert_chunks(chunks, ConvertOptions()) == _large_reference(TransferSyntax.SAME)


# beyond 16 MiB the decoded InlineBinary moves from memory to a temporary file
HUGE_PIXELS = random.Random(8).randbytes((17 << 20) + 2)
HUGE_HEAD = "{" + _ids(6) + ',"7FE00010": {"vr": "OW", "InlineBinary": "'
HUGE = (HUGE_HEAD + base64.b64encode(HUGE_PIXELS).decode() + '"}}').encode()


@pytest.mark.parametrize("ts", [TransferSyntax.SAME, TransferSyntax.BIG])
def test_huge_inline_binary(ts: TransferSyntax) -> None:
    options = ConvertOptions(transfer_syntax=ts)
    (reference,) = convert_chunks([HUGE], options)
    pixels = read(reference).PixelData
    if ts is TransferSyntax.BIG:
        assert pixels[0::2] == HUGE_PIXELS[1::2] and pixels[1::2] == HUGE_PIXELS[0::2]
    else:
        assert pixels == HUGE_PIXELS
    start = len(HUGE_HEAD)
    in_memory = start + (16 << 20) * 4 // 3  # base64 text of 16 MiB
    for cuts in (
        [in_memory - 1, in_memory + 2],
        [start + 1, in_memory, len(HUGE) - 3],
        list(range(start + 7, len(HUGE), 999_999)),
    ):
        assert convert_chunks(split(HUGE, cuts), options) == [reference], cuts


# generated text: whatever characters, escaped or not, split anywhere
_text = st.text(
    # any character, and often the ones the pre-filter looks at
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"))
    | st.sampled_from([*',]}[{":\\/ u', "\U0001f600", "\u00e9"]),
    max_size=40,
)


@SETTINGS
@given(values=st.lists(_text, min_size=1, max_size=4), ascii_only=st.booleans(), cuts=cut_lists)
def test_any_split_generated_text(values: list[str], ascii_only: bool, cuts: list[int]) -> None:
    doc: dict[str, Any] = {
        "00080005": {"vr": "CS", "Value": ["ISO_IR 192"]},
        "00080016": {"vr": "UI", "Value": [SOP_CLASS]},
        "00080018": {"vr": "UI", "Value": ["1.2.3.4.99"]},
        "0040A730": {
            "vr": "SQ",
            "Value": [{"0040A160": {"vr": "UT", "Value": [v]}} for v in values],
        },
    }
    data = json.dumps(doc, ensure_ascii=ascii_only).encode()
    reference = convert_chunks([data], ConvertOptions())
    items = read(reference[0])[0x0040A730].value
    # trailing spaces are not significant (PS3.5 6.2) and are stripped, as DCMTK does
    assert [item[0x0040A160].value for item in items] == [v.rstrip(" ") for v in values]
    assert convert_chunks(split(data, _cuts_for(data, cuts)), ConvertOptions()) == reference


# -- the parser alone, against Python's json module ------------------------------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_text.filter(lambda k: k != "InlineBinary"), inner, max_size=4)
    ),
    max_leaves=12,
)
_WHITESPACE = ["", " ", "\n", "\t", "\r\n", "  "]


def _write(value: Any, rng: random.Random, ascii_only: bool) -> str:
    """JSON text with random whitespace and trailing commas (accepted, CONTRACT §3)."""

    def ws() -> str:
        return rng.choice(_WHITESPACE)

    def comma() -> str:
        return ws() + "," + ws() if rng.random() < 0.4 else ""

    if isinstance(value, list):
        body = ("," + ws()).join(_write(v, rng, ascii_only) for v in value)
        return "[" + ws() + body + (comma() if value else "") + ws() + "]"
    if isinstance(value, dict):
        parts = [
            json.dumps(k, ensure_ascii=ascii_only) + ws() + ":" + ws() + _write(v, rng, ascii_only)
            for k, v in value.items()
        ]
        return "{" + ws() + ("," + ws()).join(parts) + (comma() if parts else "") + ws() + "}"
    return json.dumps(value, ensure_ascii=ascii_only)


def _plain(value: Any) -> Any:
    if isinstance(value, Pairs):
        return {k: _plain(v) for k, v in value.pairs}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@SETTINGS
@given(
    docs=st.lists(st.dictionaries(_text, _json_values, max_size=5), min_size=1, max_size=3),
    rng=st.randoms(use_true_random=False),
    ascii_only=st.booleans(),
    bom=st.booleans(),
    cuts=cut_lists,
)
def test_parser_any_split_matches_json_module(
    docs: list[dict[str, Any]], rng: random.Random, ascii_only: bool, bom: bool, cuts: list[int]
) -> None:
    text = "\n".join(_write(d, rng, ascii_only) for d in docs)  # one value per line (NDJSON)
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    parser = DocumentParser()
    got: list[Any] = []
    try:
        for chunk in split(data, _cuts_for(data, cuts)):
            got += parser.feed(chunk)
        got += parser.finish()
    finally:
        parser.close()
    expected = [json.loads(json.dumps(d), parse_float=Decimal) for d in docs]
    assert [_plain(raw.value) for raw in got] == expected


# -- errors do not depend on the split either ----------------------------------------------

SPLIT = ConvertOptions(array_policy=ArrayPolicy.SPLIT)
BAD_DOCS: dict[str, tuple[str, ConvertOptions]] = {
    "lone high surrogate": ('{"00204000": {"vr": "LT", "Value": ["a\\ud83d b"]}}', SPLIT),
    "lone high surrogate at the end": ('{"00204000": {"vr": "LT", "Value": ["a\\ud83d"]}}', SPLIT),
    "lone low surrogate": ('{"00204000": {"vr": "LT", "Value": ["a\\ude00"]}}', SPLIT),
    "high surrogate + non-surrogate": (
        '{"00204000": {"vr": "LT", "Value": ["\\ud83d\\u0041"]}}',
        SPLIT,
    ),
    "invalid escape": ('{"00204000": {"vr": "LT", "Value": ["a\\x"]}}', SPLIT),
    "truncated": ('{"00204000": {"vr": "LT", "Value": ["abc"', SPLIT),
    "unquoted word": ('{"00204000": {"vr": "LT", "Value": [NaN]}}', SPLIT),
    "ndjson with a bad second line": ("{" + _ids(1) + "}\n{" + _ids(2) + ",}}\n", SPLIT),
    "two datasets with -ar": (NDJSON, ConvertOptions()),
    "+as 9 of 4 datasets": (
        NDJSON,
        ConvertOptions(array_policy=ArrayPolicy.SELECT, array_select=9),
    ),
}


@pytest.mark.parametrize("name", list(BAD_DOCS))
def test_errors_do_not_depend_on_the_split(name: str) -> None:
    text, options = BAD_DOCS[name]
    data = text.encode()
    reference = error_of([data], options)
    assert reference[1] == 65
    for cut in range(1, len(data)):
        assert error_of([data[:cut], data[cut:]], options) == reference, f"cut at {cut}"
    assert error_of([data[i : i + 1] for i in range(len(data))], options) == reference
