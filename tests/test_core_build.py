"""core/build.py directly: one dataset's DICOM JSON (PS3.18 F.2) -> elements.

Expected values come from the standards, not from the code: text values joined with
backslashes (PS3.5 6.2), PN component groups joined with '=' (PS3.5 6.2.1), binary numbers
little endian (PS3.18 F.2.3, PS3.5 7.3) written out by hand, AT as group then element
(PS3.5 6.2), InlineBinary as base64 (PS3.18 F.2.7), and the -E/+E behaviour of CONTRACT §4.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
from support_core import Dataset, build

from streamconv.core.vr import Element
from streamconv.errors import ContentError, LimitError, StreamconvError
from streamconv.options import ConvertOptions, Limits

SERIES_SEQ = 0x00081115  # Referenced Series Sequence
REF_SOP_CLASS = 0x00081150  # Referenced SOP Class UID


def elem(ds: Dataset, tag: int) -> Element:
    assert tag in ds, f"({tag >> 16:04X},{tag & 0xFFFF:04X}) missing from {ds}"
    return ds[tag]


def value(json_element: dict[str, Any], tag: str = "00100020") -> Any:
    built, _ = build({tag: json_element})
    return elem(built.dataset, int(tag, 16)).value


# -- text VRs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        ({"vr": "LO", "Value": ["ID-1"]}, "ID-1"),
        # PS3.5 6.2: multiple values are separated by a backslash
        ({"vr": "CS", "Value": ["ORIGINAL", "PRIMARY", "AXIAL"]}, "ORIGINAL\\PRIMARY\\AXIAL"),
        # PS3.18 F.2.5 / CONTRACT §4: a null entry is an empty value, its place kept
        ({"vr": "CS", "Value": ["A", None, "B"]}, "A\\\\B"),
        # PS3.5 6.2: trailing spaces are not significant (CONTRACT §4: stripped)
        ({"vr": "LO", "Value": ["ABC  "]}, "ABC"),
        # LT holds one value: a backslash in it is ordinary text (PS3.5 6.2)
        ({"vr": "LT", "Value": ["a\\b"]}, "a\\b"),
        ({"vr": "UT", "Value": ["line 1\r\nline 2"]}, "line 1\r\nline 2"),
        # IS and DS from JSON numbers (PS3.18 F.2.3.1)
        ({"vr": "IS", "Value": [42, -7]}, "42\\-7"),
        ({"vr": "DS", "Value": [1.5, "2.25"]}, "1.5\\2.25"),
        # an integral JSON number for IS is written as that integer (CONTRACT §4)
        ({"vr": "IS", "Value": [4.0]}, "4"),
        ({"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]}, "1.2.840.10008.5.1.4.1.1.2"),
        # CONTRACT §4: UI whitespace removed (with a warning)
        ({"vr": "UI", "Value": [" 1.2.3 "]}, "1.2.3"),
        # UI keywords as DCMTK resolves them: pydicom's UID table names CT Image Storage so
        ({"vr": "UI", "Value": ["=CTImageStorage"]}, "1.2.840.10008.5.1.4.1.1.2"),
    ],
)
def test_text_values(element: dict[str, Any], expected: str) -> None:
    assert value(element) == expected


@pytest.mark.parametrize(
    "element",
    [
        {"vr": "LO"},  # PS3.18 F.2.5: no Value, an empty element
        {"vr": "LO", "Value": []},
        {"vr": "LO", "Value": [None]},
        {"vr": "US", "Value": [None]},
        {"vr": "OB"},
        {"vr": "PN", "Value": [None]},
    ],
)
def test_empty_values(element: dict[str, Any]) -> None:
    assert value(element) is None


def test_sequence_without_value_is_an_empty_sequence() -> None:
    built, _ = build({"00081115": {"vr": "SQ"}})
    assert elem(built.dataset, SERIES_SEQ).value == []


def test_long_ds_number_is_shortened_to_16_characters() -> None:
    # PS3.5 6.2: DS is at most 16 bytes; CONTRACT §4: the closest 16-character form
    text = value({"vr": "DS", "Value": [3.14159265358979323846]})
    assert isinstance(text, str) and len(text) <= 16
    assert abs(float(text) - 3.14159265358979323846) < 1e-12


# -- PN (PS3.18 F.2.2, PS3.5 6.2.1) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ([{"Alphabetic": "Doe^John"}], "Doe^John"),
        # PS3.5 6.2.1.2: the three component groups, '=' between them (example of PS3.5 H)
        (
            [
                {
                    "Alphabetic": "Yamada^Tarou",
                    "Ideographic": "山田^太郎",
                    "Phonetic": "やまだ^たろう",
                }
            ],
            "Yamada^Tarou=山田^太郎=やまだ^たろう",
        ),
        # an empty middle group keeps its delimiter; trailing empty groups do not
        (
            [{"Alphabetic": "Wang^XiaoDong", "Phonetic": "wang^xiaodong"}],
            "Wang^XiaoDong==wang^xiaodong",
        ),
        ([{"Alphabetic": "A^B", "Ideographic": "C^D"}], "A^B=C^D"),
        # two values of a multi-valued PN
        ([{"Alphabetic": "A"}, None, {"Alphabetic": "B"}], "A\\\\B"),
    ],
)
def test_person_names(names: list[Any], expected: str) -> None:
    assert value({"vr": "PN", "Value": names}, "00100010") == expected


@pytest.mark.parametrize(
    "names",
    [
        ["Doe^John"],  # PS3.18 F.2.2: a PN value is an object
        [{"Alphabetic": "Doe", "Nickname": "J"}],  # unknown component group
        [{"Alphabetic": 5}],
        [{"Alphabetic": "A\\B"}],  # would change the value multiplicity
    ],
)
def test_person_name_errors(names: list[Any]) -> None:
    with pytest.raises(ContentError) as info:
        build({"00100010": {"vr": "PN", "Value": names}})
    assert info.value.path == "(0010,0010)"
    assert info.value.exit_code == 65


# -- binary numbers, AT, bytes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vr", "numbers", "expected"),
    [
        # little endian, written out by hand (PS3.5 7.3, PS3.18 F.2.3)
        ("US", [1, 512, 65535], b"\x01\x00\x00\x02\xff\xff"),
        ("SS", [-32768, -1], b"\x00\x80\xff\xff"),
        ("UL", [4294967295, 16909060], b"\xff\xff\xff\xff\x04\x03\x02\x01"),
        ("SL", [-2], b"\xfe\xff\xff\xff"),
        ("UV", [2**64 - 1], b"\xff" * 8),
        ("SV", [-(2**63)], b"\x00" * 7 + b"\x80"),
        # IEEE 754: 1.5 = 0x3FC00000 (binary32), -2.0 = 0xC000000000000000 (binary64)
        ("FL", [1.5], b"\x00\x00\xc0\x3f"),
        ("FD", [-2.0], b"\x00" * 7 + b"\xc0"),
        ("FD", [1], b"\x00" * 6 + b"\xf0\x3f"),
        # an integral JSON number like 3.0 is an integer for US
        ("US", [3.0], b"\x03\x00"),
        # OF/OD/OL/OV with a Value are numbers too (PS3.18 F.2.3)
        ("OF", [1.5], b"\x00\x00\xc0\x3f"),
        ("OL", [1], b"\x01\x00\x00\x00"),
    ],
)
def test_binary_numbers(vr: str, numbers: list[Any], expected: bytes) -> None:
    assert value({"vr": vr, "Value": numbers}, "00091001") == expected


@pytest.mark.parametrize(
    ("vr", "numbers"),
    [
        ("US", [65536]),
        ("US", [-1]),
        ("SS", [32768]),
        ("UL", [-1]),
        ("SV", [2**63]),
        ("US", [1.5]),  # not integral
        ("US", ["5"]),  # a JSON string for a binary numeric VR
        ("US", [True]),
        ("US", [1, None]),  # null inside a value list
        ("FL", [1e39]),  # not a finite binary32
        ("FD", [1e400]),  # not a finite binary64
    ],
)
def test_binary_number_errors(vr: str, numbers: list[Any]) -> None:
    with pytest.raises(ContentError) as info:
        build({"00091001": {"vr": vr, "Value": numbers}})
    assert info.value.path == "(0009,1001)"


def test_fl_accepts_every_decimal_that_rounds_to_a_finite_binary32() -> None:
    # IEEE 754 round to nearest: anything below (2 - 2^-24) * 2^127 = 3.40282357e38 becomes
    # FLT_MAX (0x7F7FFFFF), which is what DCMTK (strtod, then a cast to float) writes
    built, _ = build('{"00091001": {"vr": "FL", "Value": [3.4028235e38, -3.4028235e38]}}')
    assert elem(built.dataset, 0x00091001).value == b"\xff\xff\x7f\x7f\xff\xff\x7f\xff"


def test_attribute_tags_are_group_then_element() -> None:
    # PS3.5 6.2 AT: an ordered pair of 16-bit unsigned integers, group number first
    got = value({"vr": "AT", "Value": ["00100020", "7fe00010"]}, "00209165")
    assert got == b"\x10\x00\x20\x00\xe0\x7f\x10\x00"


@pytest.mark.parametrize("at", ["0010002", "0010002G", 100020])
def test_attribute_tag_errors(at: Any) -> None:
    with pytest.raises(ContentError) as info:
        build({"00209165": {"vr": "AT", "Value": [at]}})
    assert info.value.path == "(0020,9165)"


@pytest.mark.parametrize(
    ("vr", "b64", "expected"),
    [
        ("OB", "AQID", b"\x01\x02\x03"),
        ("OW", "AQIDBA==", b"\x01\x02\x03\x04"),
        ("UN", "/w==", b"\xff"),
        ("OD", "AAAAAAAA8D8=", b"\x00" * 6 + b"\xf0\x3f"),
    ],
)
def test_inline_binary(vr: str, b64: str, expected: bytes) -> None:
    assert value({"vr": vr, "InlineBinary": b64}, "00091010") == expected


@pytest.mark.parametrize(
    "element",
    [
        {"vr": "OB", "InlineBinary": "A*=="},  # not the base64 alphabet
        {"vr": "OB", "InlineBinary": "AQI"},  # bad length
        {"vr": "OW", "InlineBinary": "AQID"},  # 3 bytes: not a multiple of the word size
        {"vr": "LO", "InlineBinary": "AQID"},  # LO cannot hold bytes
        {"vr": "OB", "InlineBinary": 5},
    ],
)
def test_inline_binary_errors(element: dict[str, Any]) -> None:
    with pytest.raises(ContentError) as info:
        build({"00091010": element})
    assert info.value.path == "(0009,1010)"


def test_odd_word_value_is_trimmed_under_plus_e() -> None:
    built, problems = build({"00091010": {"vr": "OW", "InlineBinary": "AQID"}}, strict=False)
    assert elem(built.dataset, 0x00091010).value == b"\x01\x02"
    assert any("(0009,1010)" in w for w in problems.warnings)


# -- sequences and element paths -------------------------------------------------------------


def _series(*items: Any) -> dict[str, Any]:
    return {"00081115": {"vr": "SQ", "Value": list(items)}}


def test_sequence_items_are_datasets() -> None:
    built, _ = build(
        _series(
            {"00081150": {"vr": "UI", "Value": ["1.2.3"]}},
            {},
            {"00081150": {"vr": "UI", "Value": ["1.2.4"]}, "00200013": {"vr": "IS", "Value": [7]}},
        )
    )
    items = elem(built.dataset, SERIES_SEQ).value
    assert isinstance(items, list) and len(items) == 3
    assert elem(items[0], REF_SOP_CLASS).value == "1.2.3"
    assert items[1] == {}
    assert elem(items[2], REF_SOP_CLASS).value == "1.2.4"
    assert elem(items[2], 0x00200013).value == "7"


# a bad element in the n-th item of a sequence: its path, items counted from 1
_BAD_UI = {"00081150": {"vr": "UI", "Value": [True]}}
_GOOD_UI = {"00081150": {"vr": "UI", "Value": ["1.2.3"]}}


@pytest.mark.parametrize(
    ("dataset", "path"),
    [
        (_series(_BAD_UI), "(0008,1115)[1].(0008,1150)"),
        (_series(_GOOD_UI, _BAD_UI), "(0008,1115)[2].(0008,1150)"),
        (
            {"00400275": {"vr": "SQ", "Value": [_series(_GOOD_UI, _GOOD_UI, _BAD_UI)]}},
            "(0040,0275)[1].(0008,1115)[3].(0008,1150)",
        ),
        (_series(_GOOD_UI, "not an item"), "(0008,1115)[2]"),
        ({"00100010": {"vr": "XX", "Value": ["A"]}}, "(0010,0010)"),
        ({"00100020": {"vr": "LO", "Values": ["A"]}}, "(0010,0020)"),
        ({"00100020": {"vr": "LO", "Value": ["A"], "InlineBinary": "AQID"}}, "(0010,0020)"),
        ({"00100020": ["A"]}, "(0010,0020)"),
        ({"00100020": {"vr": "LO", "Value": "A"}}, "(0010,0020)"),
        ({"00100020": {"vr": "LO", "Value": ["A\\B"]}}, "(0010,0020)"),
        ({"00100020": {"vr": "LT", "Value": ["A", "B"]}}, "(0010,0020)"),
        ({"00200013": {"vr": "IS", "Value": ["4.5"]}}, "(0020,0013)"),
        # PS3.5 6.2 IS range: -2^31 .. 2^31-1
        ({"00200013": {"vr": "IS", "Value": [2**31]}}, "(0020,0013)"),
        ({"00280030": {"vr": "DS", "Value": ["1,5"]}}, "(0028,0030)"),
        ({"00080016": {"vr": "UI", "Value": ["=NoSuchStorage"]}}, "(0008,0016)"),
        # Specific Character Set must be CS (PS3.6)
        ({"00080005": {"vr": "LO", "Value": ["ISO_IR 100"]}}, "(0008,0005)"),
        # PS3.18 F.2.7: Pixel Data has no Value
        ({"7FE00010": {"vr": "OW", "Value": [1]}}, "(7FE0,0010)"),
        ({"7FE00010": {"vr": "US", "InlineBinary": "AQI="}}, "(7FE0,0010)"),
        # a private tag the dictionary does not know, without vr
        ({"00991001": {"Value": ["x"]}}, "(0099,1001)"),
        ({"00100020": {"vr": "AE", "BulkDataURI": "file:///etc/hostname"}}, "(0010,0020)"),
    ],
)
def test_errors_name_the_element_path(dataset: dict[str, Any], path: str) -> None:
    with pytest.raises(ContentError) as info:
        build(dataset)
    assert info.value.path == path
    assert info.value.exit_code == 65
    assert str(info.value).startswith(path + ": ")


@pytest.mark.parametrize(
    ("dataset", "path"),
    [
        (_series(_BAD_UI), "(0008,1115)[1].(0008,1150)"),
        (_series(_GOOD_UI, _BAD_UI), "(0008,1115)[2].(0008,1150)"),
        (_series(_GOOD_UI, "not an item"), "(0008,1115)[2]"),
        ({"00100010": {"vr": "XX", "Value": ["A"]}}, "(0010,0010)"),
        ({"00100020": {"vr": "LO", "Values": ["A"]}}, "(0010,0020)"),
        ({"00100020": {"vr": "LO", "Value": ["A\\B"]}}, "(0010,0020)"),
        ({"00091001": {"vr": "US", "Value": [70000]}}, "(0009,1001)"),
        ({"00091001": {"vr": "US", "Value": ["x"]}}, "(0009,1001)"),
        ({"00991001": {"Value": ["x"]}}, "(0099,1001)"),
    ],
)
def test_plus_e_warns_with_the_path_and_goes_on(dataset: dict[str, Any], path: str) -> None:
    with_other = {**dataset, "00100021": {"vr": "LO", "Value": ["kept"]}}
    built, problems = build(with_other, strict=False)
    assert any(w.startswith(path + ": ") for w in problems.warnings), problems.warnings
    # the rest of the dataset is built as if nothing happened
    assert elem(built.dataset, 0x00100021).value == "kept"


def test_plus_e_keeps_the_items_before_a_bad_one() -> None:
    built, problems = build(_series(_GOOD_UI, "not an item", _GOOD_UI), strict=False)
    assert len(elem(built.dataset, SERIES_SEQ).value) == 1
    assert len(problems.warnings) == 1


def test_plus_e_takes_the_first_two_characters_of_a_malformed_vr() -> None:
    # DCMTK reads only the first two characters of "vr" (CONTRACT §4: +E as DCMTK would)
    built, _ = build({"00100020": {"vr": "LOX", "Value": ["A"]}}, strict=False)
    got = elem(built.dataset, 0x00100020)
    assert (got.vr, got.value) == ("LO", "A")


def test_unknown_private_tag_without_vr_is_un_under_plus_e() -> None:
    built, _ = build({"00991001": {"InlineBinary": "AQI="}}, strict=False)
    assert elem(built.dataset, 0x00991001).vr == "UN"


@pytest.mark.parametrize("key", ["0010002", "001000200", "0010002G", "(0010,0020)"])
def test_tag_keys_must_be_8_hex_digits(key: str) -> None:
    with pytest.raises(ContentError):
        build({key: {"vr": "LO", "Value": ["A"]}})
    built, problems = build({key: {"vr": "LO", "Value": ["A"]}}, strict=False)
    assert built.dataset == {} and len(problems.warnings) == 1


def test_lowercase_hex_keys_are_tags() -> None:
    built, _ = build({"7fe00010": {"vr": "OB", "InlineBinary": "AQI="}})
    assert elem(built.dataset, 0x7FE00010).value == b"\x01\x02"


def test_duplicate_tag_is_an_error() -> None:
    text = '{"00100020": {"vr": "LO", "Value": ["A"]}, "00100020": {"vr": "LO", "Value": ["B"]}}'
    with pytest.raises(ContentError) as info:
        build(text)
    assert info.value.path == "(0010,0020)"
    built, problems = build(text, strict=False)
    assert elem(built.dataset, 0x00100020).value == "A"
    assert len(problems.warnings) == 1


def test_missing_vr_takes_the_dictionary_vr(caplog: pytest.LogCaptureFixture) -> None:
    # CONTRACT §4: the dictionary VR (PS3.6: Patient's Name is PN), with a warning
    with caplog.at_level(logging.WARNING):
        built, _ = build({"00100010": {"Value": [{"Alphabetic": "Doe^J"}]}})
    got = elem(built.dataset, 0x00100010)
    assert (got.vr, got.value) == ("PN", "Doe^J")
    assert any("(0010,0010)" in r.getMessage() for r in caplog.records)


def test_json_vr_wins_over_the_dictionary(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        built, _ = build({"00100020": {"vr": "SH", "Value": ["A"]}})
    assert elem(built.dataset, 0x00100020).vr == "SH"
    assert any("(0010,0020)" in r.getMessage() for r in caplog.records)


def test_attribute_names_are_case_insensitive() -> None:
    built, _ = build({"00100020": {"VR": "LO", "value": ["A"]}})
    assert elem(built.dataset, 0x00100020).value == "A"


def test_top_level_must_be_an_object() -> None:
    with pytest.raises(ContentError):
        build([{"00100020": {"vr": "LO", "Value": ["A"]}}])


# -- meta, group lengths -------------------------------------------------------------------------


def test_group_length_elements_are_dropped() -> None:
    # PS3.5 7.2: group lengths are optional (retired); the encoder recomputes (0002,0000)
    built, _ = build(
        {"00100000": {"vr": "UL", "Value": [99]}, "00100020": {"vr": "LO", "Value": ["A"]}}
    )
    assert sorted(built.dataset) == [0x00100020]


def test_file_meta_goes_to_meta_and_never_into_items() -> None:
    ts = {"00020010": {"vr": "UI", "Value": ["1.2.840.10008.1.2.2"]}}
    built, _ = build({**ts, **_series({**ts, **_GOOD_UI})})
    assert elem(built.meta, 0x00020010).value == "1.2.840.10008.1.2.2"
    assert 0x00020010 not in built.dataset
    # PS3.10 7.1: group 0002 belongs to the meta header only
    assert list(elem(built.dataset, SERIES_SEQ).value[0]) == [REF_SOP_CLASS]
    # -f: the input's meta header is not read
    built, _ = build(ts, ConvertOptions(read_meta=False))
    assert built.meta == {} and built.dataset == {}


# -- limits (CONTRACT §3; LimitError even under +E) -----------------------------------------


def _nested(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"00100020": {"vr": "LO", "Value": ["leaf"]}}
    for _ in range(levels):
        node = {"00081115": {"vr": "SQ", "Value": [node]}}
    return node


def test_63_sequence_levels_convert_64_do_not() -> None:
    built, _ = build(_nested(63))
    depth, ds = 0, built.dataset
    while SERIES_SEQ in ds:
        ds, depth = ds[SERIES_SEQ].value[0], depth + 1
    assert depth == 63 and elem(ds, 0x00100020).value == "leaf"
    for strict in (True, False):
        with pytest.raises(LimitError):
            build(_nested(64), strict=strict)


def test_max_elements_counts_every_level() -> None:
    options = ConvertOptions(limits=Limits(max_elements=3))
    build(_series(_GOOD_UI, _GOOD_UI), options)  # three elements: allowed
    with pytest.raises(LimitError) as info:
        build(_series(_GOOD_UI, _GOOD_UI, _GOOD_UI), options, strict=False)
    assert info.value.path == "(0008,1115)[3].(0008,1150)"


def test_max_value_bytes() -> None:
    options = ConvertOptions(limits=Limits(max_value_bytes=3))
    build({"00091010": {"vr": "OB", "InlineBinary": "AQID"}}, options)
    with pytest.raises(LimitError) as info:
        build({"00091010": {"vr": "OB", "InlineBinary": "AQIDBA=="}}, options, strict=False)
    assert info.value.path == "(0009,1010)"


def test_max_dataset_bytes() -> None:
    options = ConvertOptions(limits=Limits(max_dataset_bytes=5))
    two = {"00091010": {"vr": "OB", "InlineBinary": "AQID"}}
    build(two, options)
    with pytest.raises(LimitError):
        build({**two, "00091011": {"vr": "OB", "InlineBinary": "AQID"}}, options)


# -- BulkDataURI (the model side; resolution itself: test_core_bulkdata.py) ------------------


def test_bulk_data_uri_is_read_inside_a_permitted_directory(tmp_path: Path) -> None:
    data = bytes(range(16))
    (tmp_path / "px.raw").write_bytes(data)
    options = ConvertOptions(bulkdata_dirs=(os.path.realpath(tmp_path) + "/",))
    built, _ = build(
        {
            "00091010": {"vr": "OB", "BulkDataURI": "px.raw?offset=4&length=6"},
            "00091011": {"vr": "OW", "BulkDataURI": (tmp_path / "px.raw").as_uri()},
        },
        options,
        base_dir=str(tmp_path),
    )
    assert elem(built.dataset, 0x00091010).value == data[4:10]
    assert elem(built.dataset, 0x00091011).value == data


def test_bulk_data_uri_ignored_with_minus_bu(tmp_path: Path) -> None:
    # -Bu: the element is left empty without looking at the URI (CONTRACT §5)
    built, _ = build(
        {"00091010": {"vr": "OB", "BulkDataURI": "file:///nonexistent/x"}},
        ConvertOptions(parse_bulkdata=False),
    )
    assert elem(built.dataset, 0x00091010).value is None


def test_bulk_data_errors_carry_the_path(tmp_path: Path) -> None:
    (tmp_path / "px.raw").write_bytes(b"abc")
    with pytest.raises(StreamconvError) as info:
        # no +Bd: every file is outside the permitted directories
        build({"00091010": {"vr": "OB", "BulkDataURI": "px.raw"}}, base_dir=str(tmp_path))
    assert info.value.exit_code == 20
    assert info.value.path == "(0009,1010)"


def test_bulk_data_error_drops_the_element_under_plus_e(tmp_path: Path) -> None:
    # dcmtk-behavior §12: with +E any bulk data error, even one that would give 20, drops
    # the element; the rest of the dataset is converted
    (tmp_path / "px.raw").write_bytes(b"abcd")
    built, problems = build(
        {
            "00091010": {"vr": "OB", "BulkDataURI": "px.raw"},
            "00100020": {"vr": "LO", "Value": ["kept"]},
        },
        base_dir=str(tmp_path),
        strict=False,
    )
    assert sorted(built.dataset) == [0x00100020]
    assert len(problems.warnings) == 1 and problems.warnings[0].startswith("(0009,1010): ")
