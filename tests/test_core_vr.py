"""core/vr.py directly: the VR tables against PS3.5 (written out here) and pydicom's own."""

from __future__ import annotations

import struct

import pydicom.valuerep as pv
import pytest

from streamconv.core import vr

# PS3.5 Table 6.2-1: the 34 value representations
PS3_5_VRS = set(
    "AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL "
    "UN UR US UT UV".split()
)


def test_all_vrs() -> None:
    assert vr.ALL_VRS == PS3_5_VRS
    assert {m.value for m in pv.VR if len(m.value) == 2} == vr.ALL_VRS


def test_long_header_vrs() -> None:
    # PS3.5 7.1.2, Table 7.1-1: a 2-byte reserved field and a 32-bit length
    expected = set("OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
    assert expected == vr.LONG_HEADER_VRS
    assert {m.value for m in pv.EXPLICIT_VR_LENGTH_32} == vr.LONG_HEADER_VRS


def test_charset_vrs() -> None:
    # PS3.5 6.1.2.3: the VRs whose values the Specific Character Set may extend
    assert {"SH", "LO", "ST", "LT", "UC", "UT", "PN"} == vr.CHARSET_VRS
    assert {m.value for m in pv.CUSTOMIZABLE_CHARSET_VR} == vr.CHARSET_VRS


def test_single_and_multi_valued_text() -> None:
    # PS3.5 6.4: LT, ST, UT and UR always have a value multiplicity of one
    assert {"LT", "ST", "UT", "UR"} == vr.SINGLE_TEXT_VRS
    assert vr.MULTI_TEXT_VRS.isdisjoint(vr.SINGLE_TEXT_VRS)
    assert vr.TEXT_VRS == vr.MULTI_TEXT_VRS | vr.SINGLE_TEXT_VRS
    assert {"PN", "LO", "CS", "UI", "DS", "IS", "UC"} <= vr.MULTI_TEXT_VRS


@pytest.mark.parametrize(
    ("name", "size", "signed"),
    [
        # PS3.5 6.2: sizes and signedness of the binary numeric VRs
        ("US", 2, False),
        ("SS", 2, True),
        ("UL", 4, False),
        ("SL", 4, True),
        ("UV", 8, False),
        ("SV", 8, True),
        ("FL", 4, True),
        ("FD", 8, True),
    ],
)
def test_binary_numeric_codes(name: str, size: int, signed: bool) -> None:
    code = vr.BINARY_NUMERIC[name]
    assert struct.calcsize("<" + code) == size
    if name not in ("FL", "FD"):
        assert (code.islower()) is signed
    assert vr.WORD_SIZE[name] == size  # big endian swaps each value (PS3.5 7.3)


def test_word_sizes_of_the_other_vrs() -> None:
    # PS3.5 6.2: OW 16-bit words, OF/OL 32-bit, OD/OV 64-bit; AT two 16-bit numbers
    assert {k: vr.WORD_SIZE[k] for k in ("OW", "OF", "OL", "OD", "OV", "AT")} == {
        "OW": 2,
        "OF": 4,
        "OL": 4,
        "OD": 8,
        "OV": 8,
        "AT": 2,
    }
    for text_or_byte in ("OB", "UN", "LO", "UT", "SQ"):
        assert text_or_byte not in vr.WORD_SIZE


def test_byte_vrs() -> None:
    # PS3.18 F.2.7: InlineBinary for OB, OD, OF, OL, OV, OW and UN
    assert {"OB", "OD", "OF", "OL", "OV", "OW", "UN"} == vr.BYTE_VRS


@pytest.mark.parametrize(
    ("tag", "text"),
    [(0x00100020, "(0010,0020)"), (0x7FE00010, "(7FE0,0010)"), (0xFFFEE000, "(FFFE,E000)")],
)
def test_tag_path(tag: int, text: str) -> None:
    assert vr.tag_path(tag) == text
    assert text in repr(vr.Element(tag, "OB", b"\x00"))
