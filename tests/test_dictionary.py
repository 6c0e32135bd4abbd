"""The data dictionary: VR choices, repeating groups, private tags, DCMDICTPATH files."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamconv.core.dictionary import DictEntry, Dictionary, get_dictionary, load_dictionary

PUBLIC = load_dictionary(None)


@pytest.mark.parametrize(
    ("tag", "vr"),
    [
        # plain entries
        (0x00100010, "PN"),
        (0x00080018, "UI"),
        (0x00281050, "DS"),
        # 'US or SS' -> US (DCMTK's xs)
        (0x00280106, "US"),  # Smallest Image Pixel Value
        (0x00281101, "US"),  # Red Palette Color LUT Descriptor
        # 'US or OW' and 'US or SS or OW' -> OW (DCMTK's lt)
        (0x00283006, "OW"),  # LUT Data
        (0x00281200, "OW"),  # Gray Lookup Table Data (retired)
        # 'OB or OW' -> OW for Pixel Data (DCMTK's px), OB otherwise (DCMTK's ox)
        (0x7FE00010, "OW"),
        (0x54001010, "OB"),  # Waveform Data
        (0x00143050, "OB"),  # Dark Current Counts
        (0x7F000010, "OB"),  # Variable Pixel Data (repeating, retired)
        # group length, PS3.5 7.2
        (0x00080000, "UL"),
        (0x00100000, "UL"),
        # items and delimiters have no VR
        (0xFFFEE000, None),
        (0xFFFEE0DD, None),
        # unknown public tag
        (0x00501234, None),
    ],
)
def test_public_vr(tag: int, vr: str | None) -> None:
    assert PUBLIC.vr(tag) == vr


@pytest.mark.parametrize(
    ("tag", "vr", "keyword"),
    [
        (0x60003000, "OB", "OverlayData"),
        (0x60023000, "OB", "OverlayData"),
        (0x601E0010, "US", "OverlayRows"),
        (0x50000005, "US", "CurveDimensions"),
        (0x50023000, "OB", "CurveData"),
        (0x5000200C, "OB", "AudioSampleData"),
        (0x002031A2, "CS", "SourceImageIDs"),
        # odd groups are private, never repeating groups (PS3.5 7.6)
        (0x60033000, None, None),
    ],
)
def test_repeating_groups(tag: int, vr: str | None, keyword: str | None) -> None:
    assert PUBLIC.vr(tag) == vr
    assert PUBLIC.keyword(tag) == keyword


@pytest.mark.parametrize(
    ("tag", "creator", "vr"),
    [
        # private creator data elements, PS3.5 7.8.1
        (0x00090010, None, "LO"),
        (0x002900FF, None, "LO"),
        (0x00290010, "SIEMENS CSA HEADER", "LO"),
        # private group length
        (0x00290000, None, "UL"),
        # private data elements need their creator
        (0x00291010, None, None),
        (0x00291010, "SIEMENS CSA HEADER", "OB"),
        (0x00291110, "SIEMENS CSA HEADER", "OB"),  # another block, same element
        (0x00291108, "SIEMENS CSA HEADER", "CS"),
        (0x00291010, "SIEMENS CSA HEADER  ", "OB"),  # LO padding is not significant
        (0x00291010, "NO SUCH CREATOR", None),
        (0x00291099, "SIEMENS CSA HEADER", None),
        # elements 0001-000F and 0100-0FFF are not private data elements
        (0x00290005, None, None),
        (0x00290500, "SIEMENS CSA HEADER", None),
        # the creator is ignored for public tags
        (0x00100010, "SIEMENS CSA HEADER", "PN"),
    ],
)
def test_private_vr(tag: int, creator: str | None, vr: str | None) -> None:
    assert PUBLIC.vr(tag, creator) == vr


def test_keywords_both_ways() -> None:
    assert PUBLIC.keyword(0x00080018) == "SOPInstanceUID"
    assert PUBLIC.tag_for_keyword("SOPInstanceUID") == 0x00080018
    assert PUBLIC.tag_for_keyword("StudyInstanceUID") == 0x0020000D
    assert PUBLIC.tag_for_keyword("Modality") == 0x00080060
    assert PUBLIC.name(0x00100010) == "Patient's Name"
    assert PUBLIC.keyword(0x00501234) is None
    assert PUBLIC.name(0x00501234) is None
    assert PUBLIC.tag_for_keyword("NoSuchKeyword") is None
    assert PUBLIC.keyword(0x00290010) is None


def write_dic(path: Path, *lines: str) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_dcmdictpath_private_entry(tmp_path: Path) -> None:
    dic = write_dic(
        tmp_path / "private.dic",
        "# a private dictionary",
        '(0029,"ACME 1.0",10)\tDS\tAcmeFactor\t1\tPrivateTag',
        '(0029,"ACME 1.0",1020)\tUS\tAcmeFixedElement\t1\tPrivateTag',
        '(7001-o-70ff,"ACME 1.0",04)\tST\tAcmeAnnotation\t1\tPrivateTag',
    )
    d = load_dictionary(dic)
    assert d.sources == (dic,)
    # (gggg,"CREATOR",ee) matches in every block
    assert d.vr(0x00291010, "ACME 1.0") == "DS"
    assert d.vr(0x00294210, "ACME 1.0") == "DS"
    # (gggg,"CREATOR",eeee) only at that element
    assert d.vr(0x00291020, "ACME 1.0") == "US"
    assert d.vr(0x00291120, "ACME 1.0") is None
    # odd-group ranges
    assert d.vr(0x70031004, "ACME 1.0") == "ST"
    assert d.vr(0x70021004, "ACME 1.0") is None
    # without (or with another) creator the entry does not apply
    assert d.vr(0x00291010) is None
    assert d.vr(0x00291010, "OTHER") is None
    # pydicom's private dictionary still serves
    assert d.vr(0x00291010, "SIEMENS CSA HEADER") == "OB"


def test_dcmdictpath_overrides_and_extends(tmp_path: Path) -> None:
    first = write_dic(
        tmp_path / "a.dic",
        "(0010,0010)\tLO\tPatientNameAsLO\t1\tDICOM",
        "(0051,1001)\tSH\tCreatorlessPrivate",  # 3 fields are enough
        "(0077,0010-u-00ff)\tSH\tOwnCreators\t1",
        "(6000-60FF,3000)\tOW\tOverlayDataOW\t1\tDICOM",
        "(6000-e-601e,0050)\tSL\tOverlayOriginSL\t2\tDICOM",
        "(0009,1000-10FF)\tUL\tPrivateRange\t1",
    )
    second = write_dic(tmp_path / "b.dic", "(0010,0010)\tSH\tPatientNameAsSH\t1\tDICOM")
    d = load_dictionary(f"{first}{os.pathsep}{os.pathsep}{second}")
    assert d.sources == (first, second)
    assert d.vr(0x00100010) == "SH"  # the later file wins
    assert d.keyword(0x00100010) == "PatientNameAsSH"
    assert d.tag_for_keyword("PatientNameAsSH") == 0x00100010
    assert d.vr(0x00511001) == "SH"  # creator-less entries serve private tags too
    assert d.vr(0x00511001, "ANY CREATOR") == "SH"
    assert d.vr(0x00770011) == "SH"
    assert d.vr(0x60043000) == "OW"
    assert d.keyword(0x60043000) == "OverlayDataOW"
    assert d.vr(0x60040050) == "SL"  # "-e-": even groups 6000-601E
    assert d.vr(0x60200050) == "SS"  # outside the range: pydicom's OverlayOrigin
    # "lo-hi" without restrictor means even values only (dcdict.cc parseTagPart)
    assert d.vr(0x00091002) == "UL"
    assert d.vr(0x00091003) is None
    assert d.vr(0x00080018) == "UI"  # untouched entries
    assert "user_entries=6" in repr(d)  # one (0010,0010) replaced the other


@pytest.mark.parametrize(
    ("dic_vr", "tag", "vr"),
    [
        ("ox", 0x7FE00010, "OW"),
        ("ox", 0x00091010, "OB"),
        ("px", 0x00091010, "OW"),
        ("xs", 0x00091010, "US"),
        ("lt", 0x00091010, "OW"),
        ("up", 0x00091010, "UL"),
        ("na", 0x00091010, None),
    ],
)
def test_dcmtk_pseudo_vrs(tmp_path: Path, dic_vr: str, tag: int, vr: str | None) -> None:
    group, element = tag >> 16, tag & 0xFFFF
    dic = write_dic(tmp_path / "p.dic", f"({group:04X},{element:04X})\t{dic_vr}\tX\t1\tDICOM")
    assert load_dictionary(dic).vr(tag) == vr


def test_missing_file_warns_and_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = write_dic(tmp_path / "good.dic", '(0029,"ACME",10)\tDS\tAcme\t1\tPrivateTag')
    missing = str(tmp_path / "missing.dic")
    with caplog.at_level(logging.WARNING, logger="streamconv.core.dictionary"):
        d = load_dictionary(f"{missing}{os.pathsep}{tmp_path}{os.pathsep}{good}")
    assert d.sources == (good,)
    assert d.vr(0x00291010, "ACME") == "DS"
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(missing in m for m in messages)
    assert any(str(tmp_path) in m and "good" not in m for m in messages)  # a directory


def test_malformed_lines_warn_with_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dic = write_dic(
        tmp_path / "bad.dic",
        "# comment",
        "",
        "   # indented comment",
        "(0029,1010) DS NoTabs 1 DICOM",  # 2: too few fields
        "(0029,1011)\tXX\tBadVR\t1\tDICOM",
        "(0029,1012)\tDS\tBadVM\tone\tDICOM",
        "(0029,10GG)\tDS\tBadTag\t1\tDICOM",
        '(0029,"UNTERMINATED,10)\tDS\tBadCreator\t1\tDICOM',
        "(0029,1013)\tDS\tTooMany\t1\tDICOM\textra",
        "(6000-5000,3000)\tOW\tEmptyRange\t1\tDICOM",
        "(6000-x-60FF,3000)\tOW\tBadRestrictor\t1\tDICOM",
        "(0029,1014)\tDS\tGood\t1-n\tDICOM",
    )
    with caplog.at_level(logging.WARNING, logger="streamconv.core.dictionary"):
        d = load_dictionary(dic)
    lines = sorted(
        int(r.getMessage().split(":")[1]) for r in caplog.records if r.getMessage().startswith(dic)
    )
    assert lines == [4, 5, 6, 7, 8, 9, 10, 11]
    assert d.vr(0x00291014) == "DS"
    assert d.vr(0x00291010) is None


@pytest.mark.parametrize("vm", ["1", "1-n", "2-2n", "3-3n", "1-32", "n", "2n", "1-N"])
def test_vm_forms(tmp_path: Path, vm: str) -> None:
    dic = write_dic(tmp_path / "vm.dic", f"(0029,1010)\tDS\tX\t{vm}\tDICOM")
    assert load_dictionary(dic).vr(0x00291010) == "DS"


def test_empty_dcmdictpath_is_the_builtin_dictionary() -> None:
    d = load_dictionary("")
    assert d.sources == ()
    assert d.vr(0x00100010) == "PN"


def test_dict_entry_repr() -> None:
    entry = DictEntry(0x6000, 0x60FF, "even", 0x3000, 0x3000, "any", "ox", "OverlayData")
    assert repr(entry) == "DictEntry((6000-e-60FF,3000) ox OverlayData)"
    assert "Dictionary(user_entries=1" in repr(Dictionary([entry]))


def test_get_dictionary_is_cached() -> None:
    assert get_dictionary() is get_dictionary()


def run_python(code: str, env: dict[str, str]) -> str:
    root = Path(__file__).resolve().parents[1]
    full_env = {**os.environ, **env, "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=full_env,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def test_startup_does_not_import_pydicom() -> None:
    code = (
        "import sys\n"
        "from streamconv.core.dictionary import get_dictionary\n"
        "d = get_dictionary()\n"
        "assert d.vr(0x00100010) == 'PN'\n"
        "assert d.vr(0x00291010, 'SIEMENS CSA HEADER') == 'OB'\n"
        "print(sorted(m for m in sys.modules if m == 'pydicom' or m.startswith('pydicom.')))\n"
    )
    assert run_python(code, {"DCMDICTPATH": ""}) == "[]"


def test_get_dictionary_reads_dcmdictpath(tmp_path: Path) -> None:
    dic = write_dic(tmp_path / "env.dic", '(0029,"ENV CREATOR",10)\tFD\tEnvTag\t1\tPrivateTag')
    code = (
        "from streamconv.core.dictionary import get_dictionary\n"
        "print(get_dictionary().vr(0x00291010, 'ENV CREATOR'))\n"
    )
    assert run_python(code, {"DCMDICTPATH": dic}) == "FD"
