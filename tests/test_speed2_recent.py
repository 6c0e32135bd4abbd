"""Elements reused from the dataset before (fused.Recent, issue 11 §3): a tag given the same VR
and the same value token gets the element built for it last time; anything else is built
again, so the bytes, warnings, errors and limits are those of a fresh build.

Expected bytes come from PS3.5 7.1.2 (tag, VR, 2-byte length, value) and 6.2 (padding), or
from the same dataset converted with nothing remembered.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamconv.core import fused
from streamconv.core.build import BuildContext, build_dataset
from streamconv.core.documents import DocumentParser
from streamconv.core.encode import encode_part10, iter_bytes
from streamconv.core.transform import apply_charset
from streamconv.errors import LimitError, Problems
from streamconv.options import ConvertOptions, Limits


@pytest.fixture(autouse=True)
def fresh_recent(monkeypatch: pytest.MonkeyPatch) -> dict[int, Any]:
    """Nothing remembered from other tests; the dictionary the tests here share."""
    recent: dict[int, Any] = {}
    monkeypatch.setattr(fused, "_RECENT", recent)
    monkeypatch.setattr(
        fused, "_STATE", fused._Memory(rest=0)
    )  # remembering from the first dataset on
    return recent


def built(doc: bytes, options: ConvertOptions | None = None) -> dict[int, Any]:
    parser = DocumentParser()  # with the pre-pass, as every front end
    raw = (parser.feed(doc) + parser.finish())[0]
    ctx = BuildContext(options or ConvertOptions(), Problems(strict=True))
    return build_dataset(raw.value, ctx).dataset


def convert(doc: bytes, options: ConvertOptions | None = None) -> bytes:
    options = options or ConvertOptions()
    ds = built(doc, options)
    apply_charset(ds, options)
    return b"".join(iter_bytes(encode_part10(ds, {}, options)))


def doc(**values: str) -> bytes:
    """A dataset of a few elements, the JSON value text of each given by keyword."""
    tags = {
        "cs": ("00080060", "CS"),
        "lo": ("00081030", "LO"),
        "ds": ("00180050", "DS"),
        "is_": ("00200013", "IS"),
        "us": ("00280010", "US"),
        "fd": ("00189089", "FD"),
    }
    parts = [
        '"00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]}',
        '"00080018": {"vr": "UI", "Value": ["1.2.3.4"]}',  # the meta header's, not generated
    ]
    parts += [
        f'"{tags[k][0]}": {{"vr": "{tags[k][1]}", "Value": [{v}]}}' for k, v in values.items()
    ]
    return ("{" + ", ".join(parts) + "}").encode()


def test_the_same_value_gets_the_same_element() -> None:
    built(doc(cs='"CT"', ds="1.25", us="512"))  # the dictionary's VRs now known to agree
    first = built(doc(cs='"CT"', ds="1.25", us="512"))
    second = built(doc(cs='"CT"', ds="1.25", us="512"))
    for tag in (0x00080060, 0x00180050, 0x00280010):
        assert second[tag] is first[tag]


@pytest.mark.parametrize(
    ("before", "after", "piece"),
    [
        # equal Decimals, different tokens: DS keeps the spelling (CONTRACT §7, PS3.5 6.2)
        ({"ds": "1.0"}, {"ds": "1.00"}, b"\x18\x00\x50\x00DS\x04\x001.00"),
        ({"ds": "1.00"}, {"ds": "1.0"}, b"\x18\x00\x50\x00DS\x04\x001.0 "),
        ({"ds": "0.0"}, {"ds": "-0"}, b"\x18\x00\x50\x00DS\x02\x00-0"),
        ({"ds": "1e-06"}, {"ds": "1E-06"}, b"\x18\x00\x50\x00DS\x06\x001E-06 "),
        # an integer and a number with a fraction: equal values, different tokens
        ({"ds": "7"}, {"ds": "7.0"}, b"\x18\x00\x50\x00DS\x04\x007.0 "),
        ({"ds": "7.0"}, {"ds": "7"}, b"\x18\x00\x50\x00DS\x02\x007 "),
        # FD: -0 and 0 are equal numbers, not the same double (IEEE 754 sign bit)
        ({"fd": "0.0"}, {"fd": "-0.0"}, b"\x18\x00\x89\x90FD\x08\x00" + b"\x00" * 7 + b"\x80"),
        # text: trailing spaces are not significant (PS3.5 6.2), but a new value is new
        ({"lo": '"abc"'}, {"lo": '"abd"'}, b"\x08\x00\x30\x10LO\x04\x00abd "),
        ({"cs": '"CT"'}, {"cs": '"MR"'}, b"\x08\x00\x60\x00CS\x02\x00MR"),
        ({"us": "512"}, {"us": "513"}, b"\x28\x00\x10\x00US\x02\x00\x01\x02"),
    ],
)
def test_a_different_token_is_built_again(
    before: dict[str, str], after: dict[str, str], piece: bytes, fresh_recent: dict[int, Any]
) -> None:
    convert(doc(**before))
    convert(doc(**before))  # the dictionary's VR agrees now: remembered
    assert fresh_recent, "the first dataset's element was remembered"
    data = convert(doc(**after))
    assert piece in data
    fresh_recent.clear()
    assert convert(doc(**after)) == data


def test_a_string_or_a_boolean_is_not_the_number_remembered() -> None:
    convert(doc(ds="1.5", us="1"))
    convert(doc(ds="1.5", us="1"))
    # DS given the string "1.5" and US given true go through the general path: the string
    # is checked as DS text, the boolean is an error (CONTRACT §4) as without the number before
    assert b"DS\x04\x001.5 " in convert(doc(ds='"1.5"'))
    with pytest.raises(Exception, match="boolean"):
        convert(doc(us="true"))


def test_reused_elements_count_against_the_dataset_limit() -> None:
    # decoded bytes: LO 40, CS 2, DS 4, US 2, IS 1, FD 8, the two UIDs 25 + 7: 89
    one = doc(lo='"' + "x" * 40 + '"', cs='"CT"', ds="1.25", us="512", is_="7", fd="0.5")
    for _ in range(3):
        convert(one)  # every element remembered
    convert(one, ConvertOptions(limits=Limits(max_dataset_bytes=89)))
    with pytest.raises(LimitError, match="max-dataset-bytes"):
        convert(one, ConvertOptions(limits=Limits(max_dataset_bytes=88)))
    # the same element twice in one dataset (items): counted twice
    item = {"00081030": {"vr": "LO", "Value": ["x" * 40]}}
    seq = json.dumps({"00081115": {"vr": "SQ", "Value": [item, item]}}).encode()
    for _ in range(3):
        convert(seq)
    convert(seq, ConvertOptions(limits=Limits(max_dataset_bytes=80)))
    with pytest.raises(LimitError, match="max-dataset-bytes"):
        convert(seq, ConvertOptions(limits=Limits(max_dataset_bytes=79)))


def test_reused_elements_count_against_the_value_limit() -> None:
    for _ in range(3):
        convert(doc(lo='"' + "y" * 30 + '"'))
    with pytest.raises(LimitError, match="max-value-bytes"):
        convert(doc(lo='"' + "y" * 30 + '"'), ConvertOptions(limits=Limits(max_value_bytes=20)))


def test_the_character_set_step_leaves_shared_elements_alone() -> None:
    options = ConvertOptions()  # no character set declared: UTF-8
    built(doc(cs='"CT"', lo='"M\\u00fcller"'))
    a = built(doc(cs='"CT"', lo='"M\\u00fcller"'))
    apply_charset(a, options)
    b = built(doc(cs='"CT"', lo='"M\\u00fcller"'))
    assert b[0x00080060] is a[0x00080060] and a[0x00080060].value == "CT"
    assert a[0x00081030].value == "Müller".encode()  # not ASCII: built anew, encoded (UTF-8)
    assert b[0x00081030].value == "Müller"


def test_memory_is_bounded_by_the_tags_not_the_datasets(
    monkeypatch: pytest.MonkeyPatch, fresh_recent: dict[int, Any]
) -> None:
    monkeypatch.setattr(fused, "_RECENT_MAX", 8)
    for i in range(50):
        private = {f"0009{0x1000 + i:04X}": {"vr": "LO", "Value": [f"v{i}"]}}
        convert(json.dumps(private).encode())
        assert sum(len(r) for r in fresh_recent.values()) <= 8
    for i in range(50):  # one tag, ever new values: one entry
        convert(doc(us=str(i)))
    assert sum(len(r) for r in fresh_recent.values()) <= 8


def element_doc(elements: dict[str, Any]) -> bytes:
    return json.dumps(elements).encode()


@pytest.mark.parametrize(
    ("values", "piece"),
    [
        # PS3.5 6.2: values joined with a backslash; trailing spaces of the last one go
        (["ORIGINAL", "PRIMARY"], b"\x08\x00\x08\x00CS\x10\x00ORIGINAL\\PRIMARY"),
        (["ORIGINAL", "SECONDARY"], b"\x08\x00\x08\x00CS\x12\x00ORIGINAL\\SECONDARY"),
        (["A ", "B  "], b"\x08\x00\x08\x00CS\x04\x00A \\B"),
        (["A", "B", "C"], b"\x08\x00\x08\x00CS\x06\x00A\\B\\C "),
    ],
)
def test_several_text_values_are_reused_only_when_all_are_the_same(
    values: list[str], piece: bytes
) -> None:
    before = element_doc({"00080008": {"vr": "CS", "Value": ["ORIGINAL", "PRIMARY"]}})
    for _ in range(3):
        convert(before)
    data = convert(element_doc({"00080008": {"vr": "CS", "Value": values}}))
    assert piece in data


def test_a_value_too_long_warns_every_time(caplog: pytest.LogCaptureFixture) -> None:
    # PS3.5 6.2: CS values hold at most 16 characters; a warning, not an error (CONTRACT §4)
    doc_ = element_doc({"00080008": {"vr": "CS", "Value": ["ORIGINAL", "X" * 17]}})
    for _ in range(3):
        caplog.clear()
        with caplog.at_level("WARNING"):
            convert(doc_)
        assert any("longer than the 16 allowed" in r.getMessage() for r in caplog.records)


def test_empty_elements_are_reused_and_sequences_are_not() -> None:
    doc_ = element_doc(
        {
            "00080050": {"vr": "SH"},
            "00081140": {"vr": "SQ"},
            "00100010": {"vr": "PN"},
        }
    )
    for _ in range(2):
        built(doc_)
    a, b = built(doc_), built(doc_)
    assert b[0x00080050] is a[0x00080050] and a[0x00080050].value is None
    assert b[0x00100010] is a[0x00100010]
    # an empty sequence is a list of items: never shared
    assert a[0x00081140].value == [] and b[0x00081140].value is not a[0x00081140].value
    # PS3.5 7.1.2: an empty element is its header with length 0
    assert b"\x08\x00\x50\x00SH\x00\x00" in convert(doc_)


def test_an_empty_element_with_another_vr_is_built_again(caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(3):
        convert(element_doc({"00080050": {"vr": "SH"}}))
    with caplog.at_level("WARNING"):
        data = convert(element_doc({"00080050": {"vr": "LO"}}))
    # the JSON VR wins over the dictionary's, with a warning (CONTRACT §4)
    assert b"\x08\x00\x50\x00LO\x00\x00" in data
    assert any("the data dictionary says SH" in r.getMessage() for r in caplog.records)


def test_elements_of_frames_parsed_by_the_json_module_are_reused_too() -> None:
    # the stream's workers parse frames with the json module (PairList objects, not Pairs)
    from streamconv.core.documents import parse_frame

    def frame_built() -> dict[int, Any]:
        raw = parse_frame(doc(cs='"CT"', ds="1.25", us="512"), 0, 0)
        return build_dataset(
            raw.value, BuildContext(ConvertOptions(), Problems(strict=True))
        ).dataset

    frame_built()
    first, second = frame_built(), frame_built()
    assert second[0x00080060] is first[0x00080060] and second[0x00180050] is first[0x00180050]
    raw = parse_frame(doc(ds="1.250"), 0, 0)
    ds = build_dataset(raw.value, BuildContext(ConvertOptions(), Problems(strict=True))).dataset
    assert ds[0x00180050].value == "1.250"


def test_a_duplicate_tag_is_an_error_even_when_remembered() -> None:
    for _ in range(3):
        convert(doc(cs='"CT"'))
    twice = (
        b'{"00080060": {"vr": "CS", "Value": ["CT"]}, "00080060": {"vr": "CS", "Value": ["CT"]}}'
    )
    with pytest.raises(Exception, match="duplicate tag"):
        convert(twice)


def test_reused_elements_count_against_the_element_limit() -> None:
    one = doc(cs='"CT"', ds="1.25", us="512")  # and the two UIDs: 5 elements
    for _ in range(3):
        convert(one)
    convert(one, ConvertOptions(limits=Limits(max_elements=5)))
    with pytest.raises(LimitError, match="max-elements"):
        convert(one, ConvertOptions(limits=Limits(max_elements=4)))


def sq(items: list[dict[str, Any]], tag: str = "00081140") -> dict[str, Any]:
    return {tag: {"vr": "SQ", "Value": items}}


UID_ITEM = {
    "00081150": {"vr": "UI", "Value": ["1.2.3"]},
    "00081155": {"vr": "UI", "Value": ["1.2.4"]},
}


def test_a_sequence_of_text_items_is_reused() -> None:
    doc_ = element_doc(sq([UID_ITEM, UID_ITEM]))
    for _ in range(2):
        built(doc_)
    a, b = built(doc_), built(doc_)
    assert b[0x00081140] is a[0x00081140]
    # PS3.5 7.5: two items (FFFE,E000) of 2 x (8 + 6) bytes each
    data = convert(doc_)
    assert data.count(b"\xfe\xff\x00\xe0\x1c\x00\x00\x00") == 2
    assert b"\x08\x00\x50\x11UI\x06\x001.2.3\x00" in data


def test_a_changed_sequence_is_built_again_every_time() -> None:
    for i in range(70):  # past the 64 changes after which keeping it is tried again
        item = {"00081155": {"vr": "UI", "Value": [f"1.2.{i}"]}}
        data = convert(element_doc(sq([item])))
        uid = f"1.2.{i}".encode()
        uid += b"\x00" * (len(uid) & 1)  # PS3.5 6.2: UI pads with a NUL
        assert b"\x08\x00\x55\x11UI" + bytes([len(uid), 0]) + uid in data


@pytest.mark.parametrize(
    "item",
    [
        {"00280010": {"vr": "US", "Value": [512]}},  # a number: equal is not the same
        {"00081030": {"vr": "LO", "Value": ["M\u00fcller"]}},  # not ASCII: not PreEncoded
        {"00081030": {"vr": "UT", "Value": ["x"]}},  # the JSON VR is not the dictionary's
    ],
)
def test_a_sequence_that_cannot_serve_again_is_not_kept(item: dict[str, Any]) -> None:
    doc_ = element_doc(sq([item]))
    for _ in range(3):
        built(doc_)
    assert built(doc_)[0x00081140] is not built(doc_)[0x00081140]


def test_a_warning_in_a_sequence_is_given_every_time(caplog: pytest.LogCaptureFixture) -> None:
    doc_ = element_doc(sq([{"00081030": {"vr": "LO", "Value": ["x" * 65]}}]))
    for _ in range(3):
        caplog.clear()
        with caplog.at_level("WARNING"):
            convert(doc_)
        assert any("longer than the 64 allowed" in r.getMessage() for r in caplog.records)


def test_a_reused_sequence_counts_against_the_limits() -> None:
    # 1 + 4 elements, 4 x 5 decoded bytes; then one more of 2 bytes, counted after them
    doc_ = element_doc({**sq([UID_ITEM, UID_ITEM]), "00100020": {"vr": "LO", "Value": ["ab"]}})
    for _ in range(3):
        convert(doc_)
    convert(doc_, ConvertOptions(limits=Limits(max_elements=6, max_dataset_bytes=22)))
    with pytest.raises(LimitError, match="max-elements"):
        convert(doc_, ConvertOptions(limits=Limits(max_elements=5)))
    with pytest.raises(LimitError, match="max-dataset-bytes"):
        convert(doc_, ConvertOptions(limits=Limits(max_dataset_bytes=21)))
    with pytest.raises(LimitError, match="max-value-bytes"):
        convert(doc_, ConvertOptions(limits=Limits(max_value_bytes=4)))
    with pytest.raises(LimitError, match="max-depth"):
        convert(doc_, ConvertOptions(limits=Limits(max_depth=1)))


def test_the_character_set_step_leaves_a_shared_sequence_alone() -> None:
    doc_ = element_doc({"00080005": {"vr": "CS", "Value": ["ISO_IR 100"]}, **sq([UID_ITEM])})
    for _ in range(2):
        built(doc_)
    a = built(doc_)
    apply_charset(a, ConvertOptions())
    b = built(doc_)
    assert b[0x00081140] is a[0x00081140]
    assert b[0x00081140].value[0][0x00081150].value == "1.2.3"


@pytest.mark.parametrize(
    ("name", "piece"),
    [
        # PS3.5 7.1.2 and 6.2: PN pads an odd length with a space
        ("Doe^John", b"\x10\x00\x10\x00PN\x08\x00Doe^John"),
        ("Doe^Jo", b"\x10\x00\x10\x00PN\x06\x00Doe^Jo"),
        ("Doe^Jan", b"\x10\x00\x10\x00PN\x08\x00Doe^Jan "),
        ("Doe^Jan  ", b"\x10\x00\x10\x00PN\x08\x00Doe^Jan "),
    ],
)
def test_a_person_name_is_fused_and_reused(name: str, piece: bytes) -> None:
    doc_ = element_doc({"00100010": {"vr": "PN", "Value": [{"Alphabetic": name}]}})
    for _ in range(3):
        assert piece in convert(doc_)
    a, b = built(doc_), built(doc_)
    assert b[0x00100010] is a[0x00100010]


def test_a_person_name_with_other_groups_or_not_ascii_is_built_as_before() -> None:
    options = ConvertOptions()
    latin = {"00080005": {"vr": "CS", "Value": ["ISO_IR 100"]}}
    for _ in range(3):
        data = convert(
            element_doc(
                {**latin, "00100010": {"vr": "PN", "Value": [{"Alphabetic": "M\u00fcller"}]}}
            ),
            options,
        )
        assert b"PN\x06\x00M\xfcller" in data  # ISO 8859-1 (PS3.3 C.12.1.1.2)
        data = convert(
            element_doc({"00100010": {"vr": "PN", "Value": [{"Alphabetic": "A", "Phonetic": "B"}]}})
        )
        assert b"PN\x04\x00A==B" in data  # PS3.5 6.2.1: component groups


def test_a_process_s_first_dataset_remembers_nothing(
    monkeypatch: pytest.MonkeyPatch, fresh_recent: dict[int, Any]
) -> None:
    # json2dcm converts one dataset per process: remembering it would only cost time
    monkeypatch.setattr(fused, "_STATE", fused._Memory())  # as in a new process
    first = BuildContext(ConvertOptions(), Problems(strict=True))
    assert first.recent is None
    convert(doc(cs='"CT"'))
    assert fresh_recent == {}
    convert(doc(cs='"CT"'))
    assert fresh_recent and sum(len(r) for r in fresh_recent.values()) > 0


def test_after_a_mostly_new_dataset_nothing_is_remembered_for_a_while() -> None:
    # a stream of unrelated datasets: looking up and keeping every element would only cost
    for _ in range(2):
        convert(doc(cs='"CT"', ds="1.25", us="512"))
    convert(doc(cs='"MR"', ds="2.5", us="256", is_="9"))  # most of it new
    assert fused._STATE.rest == fused._REST
    for _ in range(fused._REST):
        assert BuildContext(ConvertOptions(), Problems(strict=True)).recent is None
        assert b"US\x02\x00\x00\x01" in convert(doc(us="256"))  # PS3.5 7.1.2: 256 LE
    assert BuildContext(ConvertOptions(), Problems(strict=True)).recent is not None


def test_memory_is_bounded_by_bytes_too(
    monkeypatch: pytest.MonkeyPatch, fresh_recent: dict[int, Any]
) -> None:
    monkeypatch.setattr(fused, "_BYTES_MAX", 200)
    biggest = 0
    for i in range(40):
        # a dataset of known elements and one new private LT of 61 bytes, converted twice:
        # the second time its VR is known to agree and it is remembered
        one = json.loads(doc(cs='"CT"', us="512"))
        one[f"0009{0x1000 + i:04X}"] = {"vr": "LT", "Value": ["x" * 60 + str(i % 10)]}
        for _ in range(2):
            convert(json.dumps(one).encode())
        kept = [e for r in fresh_recent.values() for e in r.values()]
        biggest = max(biggest, sum(e[3] for e in kept))
    assert 61 * 2 <= biggest <= 200 + 61  # several kept, never past the bound (+ one)
