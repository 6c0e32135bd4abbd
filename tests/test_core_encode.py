"""core/encode.py directly: elements -> Part 10 bytes under each transfer syntax.

Two kinds of oracle: element bytes written out by hand from PS3.5 (explicit VR header layout
7.1.2, implicit 7.1.3, big endian 7.3, items and delimiters 7.5, even lengths and their
padding 6.2 / 7.1.1, deflate A.5), and pydicom's own writer and reader for whole datasets.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset as PydicomDataset
from support_core import Dataset, build

from streamconv.core import bulkdata
from streamconv.core.encode import encode_items, encode_part10, gather, iter_bytes, output_ts
from streamconv.core.transform import apply_charset
from streamconv.core.uids import GENERIC_SOP_CLASS, IMPLEMENTATION_CLASS_UID
from streamconv.core.vr import Element
from streamconv.errors import OutputError, StreamconvError
from streamconv.options import ConvertOptions, TransferSyntax, WriteMode

LE, BE, IMPLICIT, DEFLATED = (
    TransferSyntax.LITTLE,
    TransferSyntax.BIG,
    TransferSyntax.IMPLICIT,
    TransferSyntax.DEFLATED,
)
SEQ = 0x00081115  # Referenced Series Sequence
REF = 0x00081150  # Referenced SOP Class UID


def body(ds: Dataset, ts: TransferSyntax = LE, **opts: Any) -> bytes:
    """The dataset's bytes alone (-F: no preamble, no meta header)."""
    options = ConvertOptions(write_mode=WriteMode.DATASET, transfer_syntax=ts, **opts)
    enc = encode_part10(ds, {}, options)
    assert enc.head == b""
    return b"".join(iter_bytes(enc))


def one(tag: int, vr: str, value: Any, ts: TransferSyntax = LE, **opts: Any) -> bytes:
    return body({tag: Element(tag, vr, value)}, ts, **opts)


# -- element headers and values, by hand ---------------------------------------------------------

# (tag, vr, value) -> (explicit LE, implicit LE, explicit BE)
_ELEMENTS: list[tuple[int, str, Any, bytes, bytes, bytes]] = [
    # PS3.5 7.1.2: tag (group, element), VR, 2-byte length; odd text padded with a space (6.2)
    (
        0x00100020,
        "LO",
        b"ID1",
        b"\x10\x00\x20\x00LO\x04\x00ID1 ",
        b"\x10\x00\x20\x00\x04\x00\x00\x00ID1 ",
        b"\x00\x10\x00\x20LO\x00\x04ID1 ",
    ),
    # UI is padded with NUL (PS3.5 6.2, UI)
    (
        0x00080018,
        "UI",
        b"1.2.3",
        b"\x08\x00\x18\x00UI\x06\x001.2.3\x00",
        b"\x08\x00\x18\x00\x06\x00\x00\x001.2.3\x00",
        b"\x00\x08\x00\x18UI\x00\x061.2.3\x00",
    ),
    # US 512: the value's two bytes swap for big endian (PS3.5 7.3)
    (
        0x00280010,
        "US",
        b"\x00\x02",
        b"\x28\x00\x10\x00US\x02\x00\x00\x02",
        b"\x28\x00\x10\x00\x02\x00\x00\x00\x00\x02",
        b"\x00\x28\x00\x10US\x00\x02\x02\x00",
    ),
    # FD 1.0: eight bytes swapped as one unit
    (
        0x00181063,
        "FD",
        b"\x00" * 6 + b"\xf0\x3f",
        b"\x18\x00\x63\x10FD\x08\x00" + b"\x00" * 6 + b"\xf0\x3f",
        b"\x18\x00\x63\x10\x08\x00\x00\x00" + b"\x00" * 6 + b"\xf0\x3f",
        b"\x00\x18\x10\x63FD\x00\x08\x3f\xf0" + b"\x00" * 6,
    ),
    # AT (0010,0020): two 16-bit numbers, each swapped, order kept
    (
        0x00209165,
        "AT",
        b"\x10\x00\x20\x00",
        b"\x20\x00\x65\x91AT\x04\x00\x10\x00\x20\x00",
        b"\x20\x00\x65\x91\x04\x00\x00\x00\x10\x00\x20\x00",
        b"\x00\x20\x91\x65AT\x00\x04\x00\x10\x00\x20",
    ),
    # OB: 2 reserved bytes and a 4-byte length (PS3.5 7.1.2); padded with NUL; never swapped
    (
        0x7FE00010,
        "OB",
        b"\x01\x02\x03",
        b"\xe0\x7f\x10\x00OB\x00\x00\x04\x00\x00\x00\x01\x02\x03\x00",
        b"\xe0\x7f\x10\x00\x04\x00\x00\x00\x01\x02\x03\x00",
        b"\x7f\xe0\x00\x10OB\x00\x00\x00\x00\x00\x04\x01\x02\x03\x00",
    ),
    # OW: words swapped for big endian
    (
        0x7FE00010,
        "OW",
        b"\x01\x02\x03\x04",
        b"\xe0\x7f\x10\x00OW\x00\x00\x04\x00\x00\x00\x01\x02\x03\x04",
        b"\xe0\x7f\x10\x00\x04\x00\x00\x00\x01\x02\x03\x04",
        b"\x7f\xe0\x00\x10OW\x00\x00\x00\x00\x00\x04\x02\x01\x04\x03",
    ),
    # OF / OL: 32-bit words swapped
    (
        0x00091001,
        "OF",
        b"\x00\x00\xc0\x3f",
        b"\x09\x00\x01\x10OF\x00\x00\x04\x00\x00\x00\x00\x00\xc0\x3f",
        b"\x09\x00\x01\x10\x04\x00\x00\x00\x00\x00\xc0\x3f",
        b"\x00\x09\x10\x01OF\x00\x00\x00\x00\x00\x04\x3f\xc0\x00\x00",
    ),
    # UT, UN, UC, UR, SV and UV have the long header too (PS3.5 7.1.2, Table 7.1-1)
    (
        0x00091002,
        "UT",
        b"abc",
        b"\x09\x00\x02\x10UT\x00\x00\x04\x00\x00\x00abc ",
        b"\x09\x00\x02\x10\x04\x00\x00\x00abc ",
        b"\x00\x09\x10\x02UT\x00\x00\x00\x00\x00\x04abc ",
    ),
    (
        0x00091003,
        "UN",
        b"\xff",
        b"\x09\x00\x03\x10UN\x00\x00\x02\x00\x00\x00\xff\x00",
        b"\x09\x00\x03\x10\x02\x00\x00\x00\xff\x00",
        b"\x00\x09\x10\x03UN\x00\x00\x00\x00\x00\x02\xff\x00",
    ),
    (
        0x00091004,
        "SV",
        b"\xff" * 8,
        b"\x09\x00\x04\x10SV\x00\x00\x08\x00\x00\x00" + b"\xff" * 8,
        b"\x09\x00\x04\x10\x08\x00\x00\x00" + b"\xff" * 8,
        b"\x00\x09\x10\x04SV\x00\x00\x00\x00\x00\x08" + b"\xff" * 8,
    ),
    # an empty value: zero length, nothing after the header
    (
        0x00100010,
        "PN",
        None,
        b"\x10\x00\x10\x00PN\x00\x00",
        b"\x10\x00\x10\x00\x00\x00\x00\x00",
        b"\x00\x10\x00\x10PN\x00\x00",
    ),
]


@pytest.mark.parametrize(("tag", "vr", "value", "explicit", "implicit", "big"), _ELEMENTS)
def test_element_bytes(
    tag: int, vr: str, value: Any, explicit: bytes, implicit: bytes, big: bytes
) -> None:
    assert one(tag, vr, value, LE) == explicit
    assert one(tag, vr, value, IMPLICIT) == implicit
    assert one(tag, vr, value, BE) == big


def test_text_not_yet_charset_encoded_is_written_as_utf8() -> None:
    assert one(0x00100020, "LO", "é") == b"\x10\x00\x20\x00LO\x02\x00\xc3\xa9"


def test_elements_are_written_in_ascending_tag_order() -> None:
    # PS3.5 7.1: data elements ordered by increasing tag
    ds = {
        0x00200013: Element(0x00200013, "IS", b"1 "),
        0x00080060: Element(0x00080060, "CS", b"CT"),
        0x00100020: Element(0x00100020, "LO", b"ID"),
    }
    data = body(ds)
    tags = []
    pos = 0
    while pos < len(data):
        group, element, length = struct.unpack_from("<HH2xH", data, pos)
        tags.append(group << 16 | element)
        pos += 8 + length
    assert tags == [0x00080060, 0x00100020, 0x00200013]


def test_minus_u_writes_new_vrs_as_ob() -> None:
    # -u (DCMTK --disable-new-vr): UN, UT, UR, UC, OF, OD, OL, OV, SV, UV written as OB
    for vr in ("UT", "UN", "UC", "UR", "OF", "OL", "SV"):
        data = one(0x00091002, vr, b"abcd", enable_new_vr=False)
        assert data == b"\x09\x00\x02\x10OB\x00\x00\x04\x00\x00\x00abcd", vr
    assert one(0x00100020, "LO", b"AB", enable_new_vr=False) == b"\x10\x00\x20\x00LO\x02\x00AB"


def test_short_header_value_over_64k_is_an_output_error() -> None:
    # PS3.5 7.1.2: a 16-bit length; the longest even value is 65534 bytes
    assert len(one(0x00091005, "LT", b"x" * 65534)) == 8 + 65534
    with pytest.raises(OutputError) as info:
        one(0x00091005, "LT", b"x" * 65536)
    assert info.value.exit_code == 40
    assert "(0009,1005)" in str(info.value)


# -- sequences: +e explicit lengths, -e undefined lengths with delimiters (PS3.5 7.5) ---------

_ITEM_CONTENT = b"\x08\x00\x50\x11UI\x06\x001.2.3\x00"  # (0008,1150) UI "1.2.3", 14 bytes


def _sequence() -> Dataset:
    return {SEQ: Element(SEQ, "SQ", [{REF: Element(REF, "UI", b"1.2.3")}, {}])}


def test_sequence_with_explicit_lengths() -> None:
    item1 = b"\xfe\xff\x00\xe0\x0e\x00\x00\x00" + _ITEM_CONTENT  # (FFFE,E000), length 14
    item2 = b"\xfe\xff\x00\xe0\x00\x00\x00\x00"  # an empty item
    seq = b"\x08\x00\x15\x11SQ\x00\x00" + struct.pack("<I", len(item1 + item2))
    assert body(_sequence()) == seq + item1 + item2


def test_sequence_with_undefined_lengths() -> None:
    undefined = b"\xff\xff\xff\xff"
    item_start = b"\xfe\xff\x00\xe0" + undefined
    item_end = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"  # (FFFE,E00D), length 0
    seq_end = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # (FFFE,E0DD), length 0
    expected = (
        b"\x08\x00\x15\x11SQ\x00\x00"
        + undefined
        + item_start
        + _ITEM_CONTENT
        + item_end
        + item_start
        + item_end
        + seq_end
    )
    assert body(_sequence(), explicit_length=False) == expected


def test_sequence_big_endian_and_implicit() -> None:
    # item tags and lengths follow the transfer syntax's byte order (PS3.5 7.5)
    content_be = b"\x00\x08\x11\x50UI\x00\x061.2.3\x00"
    item1 = b"\xff\xfe\xe0\x00\x00\x00\x00\x0e" + content_be
    item2 = b"\xff\xfe\xe0\x00\x00\x00\x00\x00"
    assert body(_sequence(), BE) == b"\x00\x08\x11\x15SQ\x00\x00\x00\x00\x00\x1e" + item1 + item2
    content_im = b"\x08\x00\x50\x11\x06\x00\x00\x001.2.3\x00"
    item1 = b"\xfe\xff\x00\xe0\x0e\x00\x00\x00" + content_im
    item2 = b"\xfe\xff\x00\xe0\x00\x00\x00\x00"
    assert body(_sequence(), IMPLICIT) == b"\x08\x00\x15\x11\x1e\x00\x00\x00" + item1 + item2


def test_empty_sequence() -> None:
    assert body({SEQ: Element(SEQ, "SQ", [])}) == b"\x08\x00\x15\x11SQ\x00\x00\x00\x00\x00\x00"
    assert (
        body({SEQ: Element(SEQ, "SQ", None)}, explicit_length=False)
        == b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    )


@pytest.mark.parametrize("explicit_length", [True, False])
def test_encode_items(explicit_length: bool) -> None:
    items = [{REF: Element(REF, "UI", b"1.2.3")}, {}]
    options = ConvertOptions(explicit_length=explicit_length)
    pieces, total = encode_items(items, options, TransferSyntax.LITTLE.value)
    data = b"".join(p for p in pieces if isinstance(p, bytes))
    assert len(pieces) == sum(isinstance(p, bytes) for p in pieces)
    if explicit_length:
        expected = (
            b"\xfe\xff\x00\xe0\x0e\x00\x00\x00"
            + _ITEM_CONTENT
            + b"\xfe\xff\x00\xe0\x00\x00\x00\x00"
        )
    else:
        end = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
        start = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
        expected = start + _ITEM_CONTENT + end + start + end
    assert data == expected
    assert total == len(expected)


# -- whole datasets against pydicom's writer -------------------------------------------------

# every VR family; private tags in group 0009 where the dictionary has no fitting element
DATASET: dict[str, Any] = {
    "00080005": {"vr": "CS", "Value": ["ISO_IR 100"]},
    "00080008": {"vr": "CS", "Value": ["ORIGINAL", "PRIMARY"]},
    "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
    "00080018": {"vr": "UI", "Value": ["1.2.3.4.5"]},
    "00081115": {
        "vr": "SQ",
        "Value": [
            {"00081150": {"vr": "UI", "Value": ["1.2.3"]}},
            {},
            {
                "00081155": {"vr": "UI", "Value": ["1.2.3.4"]},
                "00200013": {"vr": "IS", "Value": [3]},
                "00400275": {"vr": "SQ", "Value": [{"00100020": {"vr": "LO", "Value": ["X"]}}]},
            },
        ],
    },
    "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Buc^Jérôme"}]},
    "00100020": {"vr": "LO", "Value": ["ID1"]},
    "00101030": {"vr": "DS", "Value": [72.5]},
    "00181310": {"vr": "US", "Value": [0, 256, 256, 0]},
    "00209165": {"vr": "AT", "Value": ["00100020", "7FE00010"]},
    "00204000": {"vr": "LT", "Value": ["a\\b"]},
    "00280030": {"vr": "DS", "Value": ["0.5", "0.25"]},
    "00281052": {"vr": "DS", "Value": ["-12.5"]},
    "00189219": {"vr": "SS", "Value": [-5]},
    "00090010": {"vr": "LO", "Value": ["TEST CREATOR"]},
    "00091010": {"vr": "OB", "InlineBinary": "AQIDBA=="},
    "00091012": {"vr": "UN", "InlineBinary": "AQIDBA=="},
    "00091013": {"vr": "UT", "Value": ["text"]},
    "00091014": {"vr": "FL", "Value": [0.5, 2]},
    "00091015": {"vr": "UL", "Value": [70000]},
    "00091016": {"vr": "SL", "Value": [-70000]},
    "00091017": {"vr": "LO"},
    "00091018": {"vr": "SQ", "Value": []},
    "00091020": {"vr": "FD", "Value": [1.25, -2.5]},
    "0009101B": {"vr": "UV", "Value": [5]},
    "0009101C": {"vr": "SV", "Value": [-5]},
    "0009101E": {"vr": "UR", "Value": ["http://x/y"]},
    "0009101F": {"vr": "UC", "Value": ["abc"]},
}


def _ours(ts: TransferSyntax, **opts: Any) -> tuple[bytes, bytes]:
    options = ConvertOptions(transfer_syntax=ts, **opts)
    built, _ = build(DATASET, options)
    apply_charset(built.dataset, options)
    enc = encode_part10(built.dataset, built.meta, options)
    return enc.head, b"".join(iter_bytes(enc))


@pytest.mark.parametrize(
    ("ts", "implicit_vr", "little_endian"),
    [(LE, False, True), (IMPLICIT, True, True), (BE, False, False)],
)
def test_dataset_bytes_equal_pydicoms_writer(
    ts: TransferSyntax, implicit_vr: bool, little_endian: bool
) -> None:
    head, data = _ours(ts)
    theirs = io.BytesIO()
    pydicom.dcmwrite(
        theirs,
        PydicomDataset.from_json(DATASET),
        implicit_vr=implicit_vr,
        little_endian=little_endian,
    )
    assert data[len(head) :] == theirs.getvalue()


@pytest.mark.parametrize("ts", [LE, IMPLICIT, BE, DEFLATED])
@pytest.mark.parametrize("explicit_length", [True, False])
def test_pydicom_reads_what_was_written(ts: TransferSyntax, explicit_length: bool) -> None:
    _, data = _ours(ts, explicit_length=explicit_length)
    got = pydicom.dcmread(io.BytesIO(data))
    assert got.file_meta.TransferSyntaxUID == ts.value
    want = PydicomDataset.from_json(DATASET)
    for elem in want:
        mine = got[elem.tag]
        assert mine.VR == elem.VR or (ts is IMPLICIT and elem.tag.is_private), elem.tag
        if ts is IMPLICIT and elem.tag.is_private:
            continue  # implicit VR: pydicom cannot know a private element's VR
        if elem.VR == "SQ":
            assert len(mine.value) == len(elem.value), elem.tag
        else:
            assert mine.value == elem.value, elem.tag
    assert got.PatientName == "Buc^Jérôme"
    third = got.ReferencedSeriesSequence[2]
    assert third.ReferencedSOPInstanceUID == "1.2.3.4"
    assert third.RequestAttributesSequence[0].PatientID == "X"


def test_deflate_is_raw_deflate_of_the_explicit_le_dataset() -> None:
    # PS3.5 A.5: Deflated Explicit VR Little Endian is the explicit VR LE dataset, deflated
    # (RFC 1951, no zlib header) after the meta header, which is not compressed
    head_le, data_le = _ours(LE)
    head, data = _ours(DEFLATED)
    assert len(data) % 2 == 0  # PS3.10 7.1: even file length
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    assert inflater.decompress(data[len(head) :]) == data_le[len(head_le) :]
    assert inflater.eof and inflater.unused_data in (b"", b"\x00")


def test_compression_level_changes_the_deflate_stream() -> None:
    big = {0x00091001: Element(0x00091001, "OB", bytes(range(256)) * 200)}
    fast = encode_part10(big, {}, ConvertOptions(transfer_syntax=DEFLATED, compression_level=1))
    best = encode_part10(big, {}, ConvertOptions(transfer_syntax=DEFLATED, compression_level=9))
    fast_bytes = b"".join(iter_bytes(fast))[len(fast.head) :]
    best_bytes = b"".join(iter_bytes(best))[len(best.head) :]
    plain = b"\x09\x00\x01\x10OB\x00\x00" + struct.pack("<I", 51200) + bytes(range(256)) * 200
    for stream in (fast_bytes, best_bytes):
        assert zlib.decompressobj(-zlib.MAX_WBITS).decompress(stream) == plain
    assert len(best_bytes) <= len(fast_bytes)


# -- the meta header (PS3.10 7.1) ------------------------------------------------------------


def _meta_of(head: bytes) -> PydicomDataset:
    return pydicom.dcmread(io.BytesIO(head), stop_before_pixels=True).file_meta


def test_meta_header_layout() -> None:
    head, _ = _ours(LE)
    assert head[:128] == b"\x00" * 128 and head[128:132] == b"DICM"
    # (0002,0000) UL, length 4, then the group's length: everything after it
    assert head[132:140] == b"\x02\x00\x00\x00UL\x04\x00"
    assert struct.unpack_from("<I", head, 140)[0] == len(head) - 144
    meta = _meta_of(head)
    assert meta.FileMetaInformationVersion == b"\x00\x01"
    assert meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert meta.MediaStorageSOPInstanceUID == "1.2.3.4.5"
    assert meta.TransferSyntaxUID == TransferSyntax.LITTLE.value
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID


@pytest.mark.parametrize("ts", [BE, IMPLICIT, DEFLATED])
def test_meta_header_is_explicit_le_whatever_the_transfer_syntax(ts: TransferSyntax) -> None:
    # PS3.10 7.1: the meta information is always Explicit VR Little Endian
    head, _ = _ours(ts)
    assert head[132:140] == b"\x02\x00\x00\x00UL\x04\x00"
    assert _meta_of(head).TransferSyntaxUID == ts.value


def test_meta_without_sop_uids_gets_generic_class_and_new_instance() -> None:
    enc = encode_part10({}, {}, ConvertOptions())
    meta = _meta_of(enc.head)
    assert meta.MediaStorageSOPClassUID == GENERIC_SOP_CLASS
    assert meta.MediaStorageSOPInstanceUID.startswith("2.25.")


def test_given_meta_uids_kept_or_updated_with_plus_fu() -> None:
    ds = {
        0x00080016: Element(0x00080016, "UI", b"1.2.840.10008.5.1.4.1.1.7"),
        0x00080018: Element(0x00080018, "UI", b"1.2.3.9"),
    }
    meta = {0x00020003: Element(0x00020003, "UI", b"1.2.3.8")}
    kept = _meta_of(encode_part10(ds, meta, ConvertOptions()).head)
    assert kept.MediaStorageSOPInstanceUID == "1.2.3.8"
    updated = _meta_of(encode_part10(ds, meta, ConvertOptions(update_meta=True)).head)
    assert updated.MediaStorageSOPInstanceUID == "1.2.3.9"


# -- which transfer syntax (+t=, CONTRACT §7) ---------------------------------------------------


def _ts_meta(uid: str) -> Dataset:
    return {0x00020010: Element(0x00020010, "UI", uid.encode())}


@pytest.mark.parametrize(
    ("uid", "pixels", "expected"),
    [
        ("1.2.840.10008.1.2.2", False, ("1.2.840.10008.1.2.2", "1.2.840.10008.1.2.2")),
        ("1.2.840.10008.1.2", True, ("1.2.840.10008.1.2", "1.2.840.10008.1.2")),
        ("", False, ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1")),
        ("1.2.3.4.5.6", False, ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1")),
        # JPEG Baseline without pixel data: the meta names it, the dataset is native
        ("1.2.840.10008.1.2.4.50", False, ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.1")),
    ],
)
def test_same_transfer_syntax(uid: str, pixels: bool, expected: tuple[str, str]) -> None:
    assert output_ts(ConvertOptions(), _ts_meta(uid), pixels) == expected


def test_encapsulated_transfer_syntax_with_pixel_data_is_an_output_error() -> None:
    with pytest.raises(OutputError) as info:
        output_ts(ConvertOptions(), _ts_meta("1.2.840.10008.1.2.4.50"), True)
    assert info.value.exit_code == 40


def test_chosen_transfer_syntax_wins_over_the_meta() -> None:
    options = ConvertOptions(transfer_syntax=IMPLICIT)
    assert output_ts(options, _ts_meta("1.2.840.10008.1.2.2"), False) == (
        IMPLICIT.value,
        IMPLICIT.value,
    )


# -- bulk values streamed from their files ------------------------------------------------------


def _bulk_ref(tmp_path: Path, data: bytes, query: str = "") -> bulkdata.BulkRef:
    path = tmp_path / "bulk.raw"
    path.write_bytes(data)
    dirs = (os.path.realpath(tmp_path) + "/",)
    return bulkdata.resolve_uri(path.as_uri() + query, base_dir=None, dirs=dirs)


def _swapped16(data: bytes) -> bytes:
    out = bytearray(len(data))
    out[0::2] = data[1::2]
    out[1::2] = data[0::2]
    return bytes(out)


@pytest.mark.parametrize("ts", [LE, BE])
def test_bulk_word_value_over_a_chunk_boundary(tmp_path: Path, ts: TransferSyntax) -> None:
    data = os.urandom((1 << 20) + 6)  # the file is read in 1 MiB chunks
    ref = _bulk_ref(tmp_path, data)
    options = ConvertOptions(
        write_mode=WriteMode.DATASET,
        transfer_syntax=ts,
        bulkdata_dirs=(os.path.realpath(tmp_path) + "/",),
    )
    enc = encode_part10({0x7FE00010: Element(0x7FE00010, "OW", ref)}, {}, options)
    out = b"".join(iter_bytes(enc))
    if ts is LE:
        assert out == b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", len(data)) + data
    else:
        assert out == b"\x7f\xe0\x00\x10OW\x00\x00" + struct.pack(">I", len(data)) + _swapped16(
            data
        )


def test_bulk_byte_range_with_odd_length_is_padded(tmp_path: Path) -> None:
    ref = _bulk_ref(tmp_path, b"0123456789", "?offset=2&length=5")
    options = ConvertOptions(
        write_mode=WriteMode.DATASET, bulkdata_dirs=(os.path.realpath(tmp_path) + "/",)
    )
    enc = encode_part10({0x00091010: Element(0x00091010, "OB", ref)}, {}, options)
    assert b"".join(iter_bytes(enc)) == b"\x09\x00\x10\x10OB\x00\x00\x06\x00\x00\x0023456\x00"
    assert enc.size_hint == 12 + 6


# -- any dataset: pydicom reads back what was encoded (hypothesis) ---------------------------

_WORD = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz0123456789^-_", min_size=1, max_size=40)
_UID = st.lists(st.integers(1, 99999), min_size=2, max_size=8).map(
    lambda parts: ".".join(map(str, parts))
)


def _leaf(vr: str) -> st.SearchStrategy[tuple[str, Any]]:
    if vr == "SH":  # at most 16 characters (PS3.5 6.2): pydicom warns on longer ones
        return st.tuples(st.just(vr), _WORD.map(lambda w: w[:16]))
    if vr in ("LO", "LT", "UT", "UC"):
        return st.tuples(st.just(vr), _WORD)
    if vr == "UI":
        return st.tuples(st.just(vr), _UID)
    if vr in ("OB", "UN"):
        return st.tuples(st.just(vr), st.binary(min_size=1, max_size=300))
    if vr == "OW":
        return st.tuples(st.just(vr), st.binary(min_size=1, max_size=150).map(lambda b: b + b))
    return st.tuples(st.just(vr), st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=5))


_LEAF = st.sampled_from(["LO", "SH", "LT", "UT", "UC", "UI", "OB", "UN", "OW", "US"]).flatmap(_leaf)
_TREES: st.SearchStrategy[dict[int, tuple[str, Any]]] = st.recursive(
    st.dictionaries(st.integers(0x1000, 0x10FF), _LEAF, max_size=6),
    lambda children: st.dictionaries(
        st.integers(0x1000, 0x10FF),
        st.one_of(_LEAF, st.tuples(st.just("SQ"), st.lists(children, max_size=3))),
        max_size=6,
    ),
    max_leaves=12,
)


def _ours_from(tree: dict[int, tuple[str, Any]]) -> Dataset:
    ds: Dataset = {}
    for element, (vr, value) in tree.items():
        tag = 0x00090000 | element
        if vr == "SQ":
            ds[tag] = Element(tag, "SQ", [_ours_from(item) for item in value])
        elif vr == "US":
            ds[tag] = Element(tag, vr, struct.pack(f"<{len(value)}H", *value))
        else:
            ds[tag] = Element(tag, vr, value.encode() if isinstance(value, str) else value)
    return ds


def _check_read(got: PydicomDataset, tree: dict[int, tuple[str, Any]], big: bool) -> None:
    assert len(got) == len(tree)
    for element, (vr, value) in tree.items():
        read = got[0x00090000 | element]
        assert vr == read.VR
        if vr == "SQ":
            assert len(read.value) == len(value)
            for item, want in zip(read.value, value, strict=True):
                _check_read(item, want, big)
        elif vr == "US":
            assert (list(read.value) if len(value) > 1 else [read.value]) == value
        elif vr == "OW" and big:
            # OW is words: swapped in the file, and pydicom hands back the file's bytes
            assert read.value == _swapped16(value)
        elif isinstance(value, bytes):
            assert read.value == value + b"\x00" * (len(value) & 1)  # PS3.5 7.1.1: even
        else:
            assert read.value == value


@settings(max_examples=60, deadline=None)
@given(
    tree=_TREES,
    ts=st.sampled_from([LE, BE, DEFLATED]),
    explicit_length=st.booleans(),
)
def test_any_dataset_reads_back(
    tree: dict[int, tuple[str, Any]], ts: TransferSyntax, explicit_length: bool
) -> None:
    enc = encode_part10(
        _ours_from(tree), {}, ConvertOptions(transfer_syntax=ts, explicit_length=explicit_length)
    )
    got = pydicom.dcmread(io.BytesIO(b"".join(iter_bytes(enc))))
    assert got.file_meta.TransferSyntaxUID == ts.value
    _check_read(got, tree, ts is BE)


def test_large_bulk_value_in_the_meta_header(tmp_path: Path) -> None:
    big = bytes(range(256)) * 4097  # over the 1 MiB read inline: a BulkRef
    ref = _bulk_ref(tmp_path, big)
    meta = {
        0x00020100: Element(0x00020100, "UI", b"1.2.3"),  # Private Information Creator UID
        0x00020102: Element(0x00020102, "OB", ref),  # Private Information
    }
    ds = {0x00100020: Element(0x00100020, "LO", b"ID")}
    options = ConvertOptions(bulkdata_dirs=(os.path.realpath(tmp_path) + "/",))
    enc = encode_part10(ds, meta, options)
    data = b"".join(iter_bytes(enc))
    # PS3.10 7.1: (0002,0000) is the number of bytes of the meta elements that follow it
    group_length = struct.unpack_from("<I", data, 140)[0]
    assert data[144 + group_length : 144 + group_length + 4] == b"\x10\x00\x20\x00"
    got = pydicom.dcmread(io.BytesIO(data))
    assert got.file_meta.PrivateInformation == big and got.PatientID == "ID"


def _sparse_ref(tmp_path: Path, size: int) -> tuple[bulkdata.BulkRef, ConvertOptions]:
    path = tmp_path / "sparse.bin"
    try:
        with open(path, "wb") as f:
            f.truncate(size)  # a hole: no disk space used, and the encoder reads nothing
    except OSError as exc:  # a filesystem without sparse files this large
        pytest.skip(f"cannot make a sparse file of {size} bytes: {exc}")
    dirs = (os.path.realpath(tmp_path) + "/",)
    ref = bulkdata.resolve_uri(path.as_uri(), base_dir=None, dirs=dirs)
    return ref, ConvertOptions(write_mode=WriteMode.DATASET, bulkdata_dirs=dirs)


def test_largest_encodable_value_length(tmp_path: Path) -> None:
    # PS3.5 7.1.1: a 32-bit length; 0xFFFFFFFF means "undefined", so 0xFFFFFFFE is the last
    ref, options = _sparse_ref(tmp_path, 0xFFFFFFFE)
    enc = encode_part10({0x7FE00010: Element(0x7FE00010, "OB", ref)}, {}, options)
    assert enc.body[0] == b"\xe0\x7f\x10\x00OB\x00\x00\xfe\xff\xff\xff"
    assert enc.size_hint == 12 + 0xFFFFFFFE


@pytest.mark.parametrize("size", [0xFFFFFFFF, 1 << 32])
def test_value_too_long_for_a_32_bit_length_is_a_streamconv_error(
    tmp_path: Path, size: int
) -> None:
    ref, options = _sparse_ref(tmp_path, size)
    with pytest.raises(StreamconvError):
        encode_part10({0x7FE00010: Element(0x7FE00010, "OB", ref)}, {}, options)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=50), max_size=30), st.integers(1, 120))
def test_gather_joins_chunks_into_writes_of_at_least_size(chunks: list[bytes], size: int) -> None:
    pieces = list(gather(iter(chunks), size))
    assert b"".join(pieces) == b"".join(chunks)
    assert all(len(p) >= size for p in pieces[:-1])
    # no write is larger than it has to be: it ends with the chunk that reached the size
    assert all(len(p) < size + 50 for p in pieces)


@pytest.mark.parametrize("key", ["FFFEE00D", "FFFEE0DD", "FFFEE000"])
def test_item_tags_are_not_data_elements(key: str) -> None:
    item = {
        key: {"vr": "OB", "InlineBinary": "AAAAAA=="},
        "00081150": {"vr": "UI", "Value": ["1.2.3"]},
    }
    text = {
        "00081115": {"vr": "SQ", "Value": [item, {"00081150": {"vr": "UI", "Value": ["1.2.4"]}}]},
        "00100020": {"vr": "LO", "Value": ["ID"]},
    }
    options = ConvertOptions(explicit_length=False)
    try:
        built, _ = build(text, options)
        apply_charset(built.dataset, options)
        data = b"".join(iter_bytes(encode_part10(built.dataset, built.meta, options)))
    except StreamconvError as exc:
        assert exc.exit_code == 65  # refused as content: fine
        return
    got = pydicom.dcmread(io.BytesIO(data))
    assert len(got.ReferencedSeriesSequence) == 2 and got.PatientID == "ID"
    # PS3.5 7.5: (FFFE,E000), (FFFE,E00D) and (FFFE,E0DD) only frame items and sequences
    assert [e.tag for e in got.ReferencedSeriesSequence[0]] == [0x00081150]
