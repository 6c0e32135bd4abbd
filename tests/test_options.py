"""json2dcm's options, one parametrized table per option family.

Expected values come from the documents, never from streamconv's output:
CONTRACT.md (it wins), the json2dcm 3.7.0 manual page, the observed DCMTK cases of
dcmtk-behavior.md §14 (row ids such as M17 or C21 are cited) and the encoding rules of
PS3.5 (7.1.2 element headers, 7.3 byte order, 7.5 sequences, A.5 deflate) and PS3.10 7.1.
Most cases run ``streamconv.cli.main`` in-process; stdin/stdout, ``--version`` and
``DCMDICTPATH`` run the console script.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pydicom.config
import pytest
from pydicom.filereader import dcmread

from streamconv.cli import main
from streamconv.logsetup import reset_logging

# -- helpers -------------------------------------------------------------------------------

JSON2DCM = shutil.which("json2dcm", path=os.path.dirname(sys.executable)) or "json2dcm"
DICM_OFFSET = 128
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
BIG = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"
DCMTK_GENERIC = "1.2.276.0.7230010.3.1.0.1"
UID_2_25 = re.compile(r"2\.25\.(0|[1-9][0-9]*)\Z")  # PS3.5 B.2

MIN = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "A"}]}}  # dcmtk-behavior §14 min.json
# C17: -F of min.json: (0010,0010) PN, length 2, "A" padded with a space (PS3.5 7.1.2, 6.2)
MIN_DATASET = bytes.fromhex("10001000504e02004120")


def lo(*values: Any) -> dict[str, Any]:
    return {"vr": "LO", "Value": list(values)}


def ui(*values: Any) -> dict[str, Any]:
    return {"vr": "UI", "Value": list(values)}


def cs(*values: Any) -> dict[str, Any]:
    return {"vr": "CS", "Value": list(values)}


def sq(*items: dict[str, Any]) -> dict[str, Any]:
    return {"vr": "SQ", "Value": list(items)}


# §14.11: DS and META
DS = {"00080016": ui(SC_IMAGE), "00080018": ui("1.2.3.4"), "00100020": lo("x")}
META = {
    "00020001": {"vr": "OB", "InlineBinary": "AAE="},
    "00020002": ui(CT_IMAGE),
    "00020003": ui("9.9.9"),
    "00020010": ui(IMPLICIT),
    "00020012": ui("1.2.3.999"),
    "00020013": {"vr": "SH", "Value": ["MYIMPL"]},
    "00020016": {"vr": "AE", "Value": ["SRCAET"]},
}


@pytest.fixture(autouse=True)
def _quiet_pydicom() -> Any:
    # outputs deliberately carry values pydicom's reader would warn about (filterwarnings=error)
    old = pydicom.config.settings.reading_validation_mode
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    yield
    pydicom.config.settings.reading_validation_mode = old
    reset_logging()


@dataclass
class Run:
    rc: int
    out: Path
    stdout: str
    stderr: str

    @property
    def data(self) -> bytes:
        return self.out.read_bytes()

    def ds(self) -> pydicom.Dataset:
        return dcmread(self.out, force=True)

    def meta(self) -> dict[int, tuple[str, bytes]]:
        return parse_elements(split_file(self.data)[0], EXPLICIT)

    def body(self) -> bytes:
        return split_file(self.data)[1]


def write_doc(path: Path, doc: Any) -> Path:
    if isinstance(doc, bytes):
        path.write_bytes(doc)
    elif isinstance(doc, str):
        path.write_text(doc, encoding="utf-8")
    else:
        path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def j2d(tmp_path: Path, doc: Any, *opts: str, out: str = "out.dcm", src: str = "in.json") -> Run:
    """Run json2dcm in-process: ``json2dcm [opts] in.json out.dcm``."""
    infile = write_doc(tmp_path / src, doc) if doc is not None else tmp_path / src
    outfile = tmp_path / out
    stdout, stderr = io.StringIO(), io.StringIO()
    rc = main([*opts, str(infile), str(outfile)], stdout=stdout, stderr=stderr)
    reset_logging()
    return Run(rc, outfile, stdout.getvalue(), stderr.getvalue())


def ok(run: Run) -> Run:
    assert run.rc == 0, run.stderr
    assert "Traceback" not in run.stderr
    return run


def split_file(data: bytes) -> tuple[bytes, bytes]:
    """(meta group bytes, dataset bytes) of a Part 10 file (PS3.10 7.1)."""
    assert data[:DICM_OFFSET] == b"\x00" * DICM_OFFSET
    assert data[DICM_OFFSET : DICM_OFFSET + 4] == b"DICM"
    # (0002,0000) UL, explicit VR little endian, always first (PS3.10 7.1)
    assert data[132:140] == b"\x02\x00\x00\x00UL\x04\x00"
    (length,) = struct.unpack("<I", data[140:144])
    return data[144 : 144 + length], data[144 + length :]


LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}


def parse_elements(data: bytes, ts: str) -> dict[int, tuple[str, bytes]]:
    """Top-level elements of a flat dataset: tag -> (VR or '' for implicit, value bytes).

    PS3.5 7.1.2 (explicit: 2-byte length, or 2 reserved bytes + 4-byte length for the long
    VRs), 7.1.3 (implicit: 4-byte length), 7.3 (big endian: tag and length swapped too).
    A sequence of undefined length is returned with the raw bytes up to its delimiter.
    """
    e = ">" if ts == BIG else "<"
    out: dict[int, tuple[str, bytes]] = {}
    pos = 0
    while pos < len(data):
        group, elem = struct.unpack_from(e + "HH", data, pos)
        tag = group << 16 | elem
        if ts == IMPLICIT:
            vr = ""
            (length,) = struct.unpack_from(e + "I", data, pos + 4)
            pos += 8
        else:
            vr = data[pos + 4 : pos + 6].decode("ascii")
            if vr in LONG_VRS:
                assert data[pos + 6 : pos + 8] == b"\x00\x00", "reserved bytes must be zero"
                (length,) = struct.unpack_from(e + "I", data, pos + 8)
                pos += 12
            else:
                (length,) = struct.unpack_from(e + "H", data, pos + 6)
                pos += 8
        if length == 0xFFFFFFFF:
            end = data.index(struct.pack(e + "HHI", 0xFFFE, 0xE0DD, 0), pos)
            out[tag] = (vr, data[pos:end])
            pos = end + 8
            continue
        out[tag] = (vr, data[pos : pos + length])
        pos += length
    return out


def text(elements: dict[int, tuple[str, bytes]], tag: int) -> str:
    return elements[tag][1].decode("latin-1").rstrip("\x00 ")


# -- +f / -f: meta information from the JSON (M1-M4, M9-M15, C21) ---------------------------


def test_meta_read_by_default(tmp_path: Path) -> None:
    # M1: JSON meta kept (SOP class/instance differ from the dataset: warnings), TS from
    # (0002,0010), implementation UID/version are streamconv's, other meta kept
    run = ok(j2d(tmp_path, {**META, **DS}))
    meta = run.meta()
    assert text(meta, 0x00020002) == CT_IMAGE
    assert text(meta, 0x00020003) == "9.9.9"
    assert text(meta, 0x00020010) == IMPLICIT
    assert text(meta, 0x00020016) == "SRCAET"
    assert meta[0x00020001][1] == b"\x00\x01"
    assert text(meta, 0x00020012) not in ("1.2.3.999", "")
    assert text(meta, 0x00020013) not in ("MYIMPL", "")
    assert "SOPClassUID" in run.stderr and "SOPInstanceUID" in run.stderr
    assert run.stderr.count("W: ") >= 2
    # the dataset is implicit VR little endian: (0008,0016) tag then a 4-byte length
    body = run.body()
    assert body[:8] == struct.pack("<HHI", 0x0008, 0x0016, len(SC_IMAGE) + 1)
    assert 0x00020002 not in parse_elements(body, IMPLICIT)


@pytest.mark.parametrize(
    ("opts", "ts"),
    [
        (("-f",), EXPLICIT),  # M3
        (("+f", "-f"), EXPLICIT),  # C21: rightmost wins
        (("-f", "+f"), IMPLICIT),  # C21
        (("+f",), IMPLICIT),
    ],
    ids=["-f", "+f-f", "-f+f", "+f"],
)
def test_meta_read_or_ignored(tmp_path: Path, opts: tuple[str, ...], ts: str) -> None:
    run = ok(j2d(tmp_path, {**META, **DS}, *opts))
    meta = run.meta()
    assert text(meta, 0x00020010) == ts
    if ts == EXPLICIT:  # -f: meta generated from the dataset, nothing from the JSON
        assert text(meta, 0x00020002) == SC_IMAGE
        assert text(meta, 0x00020003) == "1.2.3.4"
        assert 0x00020016 not in meta
        assert run.body()[:8] == struct.pack("<HH", 0x0008, 0x0016) + b"UI" + struct.pack(
            "<H", len(SC_IMAGE) + 1
        )
    else:
        assert text(meta, 0x00020003) == "9.9.9"
        assert 0x00020016 in meta


@pytest.mark.parametrize(
    ("doc", "opts", "checks"),
    [
        # M2, M16: +Fu takes SOP class/instance from the dataset
        (
            {**META, **DS},
            ("+Fu",),
            {0x00020002: SC_IMAGE, 0x00020003: "1.2.3.4", 0x00020010: IMPLICIT},
        ),
        # M5: (0002,0010) selects big endian / deflated
        ({"00020010": ui(BIG), **DS}, (), {0x00020010: BIG}),
        ({"00020010": ui(DEFLATED), **DS}, (), {0x00020010: DEFLATED}),
        # M6: an unknown UID gives Explicit VR Little Endian
        ({"00020010": ui("1.2.3"), **DS}, (), {0x00020010: EXPLICIT}),
        # CONTRACT §7: an empty (0002,0010) means "not given" (DCMTK's M7 0-byte file is not copied)
        ({"00020010": {"vr": "UI"}, **DS}, (), {0x00020010: EXPLICIT}),
        ({"00020010": {"vr": "UI", "Value": []}, **DS}, (), {0x00020010: EXPLICIT}),
        # M11: a given (0002,0002) is kept, (0002,0003) generated (dataset has neither)
        ({"00020002": ui(CT_IMAGE), "00100020": lo("x")}, (), {0x00020002: CT_IMAGE}),
        # M12: SOP UIDs found only inside a sequence item are used
        (
            {"00081115": sq({"00080016": ui(CT_IMAGE), "00080018": ui("5.6.7")})},
            (),
            {0x00020002: CT_IMAGE, 0x00020003: "5.6.7"},
        ),
        # M15: other meta elements kept
        ({"00020099": lo("kept"), **DS}, (), {0x00020099: "kept"}),
    ],
    ids=[
        "Fu",
        "ts-big",
        "ts-deflated",
        "ts-unknown",
        "ts-empty",
        "ts-empty-list",
        "M11",
        "M12",
        "M15",
    ],
)
def test_meta_values(
    tmp_path: Path, doc: dict[str, Any], opts: tuple[str, ...], checks: dict[int, str]
) -> None:
    meta = ok(j2d(tmp_path, doc, *opts)).meta()
    for tag, value in checks.items():
        assert text(meta, tag) == value, f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def test_meta_generated_uids(tmp_path: Path) -> None:
    # M10/X7: no SOP UIDs at all: streamconv's own generic SOP class, a generated instance UID
    meta = ok(j2d(tmp_path, {"00100020": lo("x")})).meta()
    generic = text(meta, 0x00020002)
    assert generic != DCMTK_GENERIC
    assert re.fullmatch(r"[0-9]+(\.[0-9]+)+", generic) and len(generic) <= 64
    assert UID_2_25.match(text(meta, 0x00020003))
    assert meta[0x00020001][1] == b"\x00\x01"


def test_meta_version_kept_and_group_length_recomputed(tmp_path: Path) -> None:
    # M9: a non-empty (0002,0001) is kept; M14: (0002,0000) recomputed
    doc = {
        "00020000": {"vr": "UL", "Value": [5]},
        "00020001": {"vr": "OB", "InlineBinary": "AgA="},
        **DS,
    }
    run = ok(j2d(tmp_path, doc))
    meta_bytes, _ = split_file(run.data)
    assert run.meta()[0x00020001][1] == b"\x02\x00"
    assert struct.unpack("<I", run.data[140:144])[0] == len(meta_bytes) != 5


# -- +Ug / -Uo / +Uo (M17-M22, C7) ----------------------------------------------------------

STUDY, SERIES, SOP = 0x0020000D, 0x0020000E, 0x00080018
M17 = {"00080016": ui(SC_IMAGE), "00080018": ui("1.2.3.4"), "0020000D": ui("1.2.3.5")}


def uid(ds: pydicom.Dataset, tag: int) -> str:
    return str(ds[tag].value) if tag in ds and ds[tag].value else ""


@pytest.mark.parametrize(
    ("opts", "kept", "new"),
    [
        ((), (SOP, STUDY), ()),  # no +Ug: nothing generated
        (("+Ug",), (SOP, STUDY), (SERIES,)),  # M17: -Uo default: only the missing one
        (("+Ug", "-Uo"), (SOP, STUDY), (SERIES,)),
        (("+Ug", "+Uo"), (), (SOP, STUDY, SERIES)),  # M18
        (("+Ug", "+Uo", "-Uo"), (SOP, STUDY), (SERIES,)),  # rightmost wins
        (("+Ug", "-Uo", "+Uo"), (), (SOP, STUDY, SERIES)),
    ],
    ids=["none", "Ug", "Ug-Uo", "Ug+Uo", "+Uo-Uo", "-Uo+Uo"],
)
def test_uids(
    tmp_path: Path, opts: tuple[str, ...], kept: tuple[int, ...], new: tuple[int, ...]
) -> None:
    run = ok(j2d(tmp_path, M17, *opts))
    ds = run.ds()
    old = {SOP: "1.2.3.4", STUDY: "1.2.3.5"}
    for tag in kept:
        assert uid(ds, tag) == old[tag]
    for tag in new:
        value = uid(ds, tag)
        assert UID_2_25.match(value), value  # CONTRACT §7: the 2.25. UUID form
        assert len(value) <= 64 and int(value[5:]) < 1 << 128
        assert value != old.get(tag)
    if not new:
        assert SERIES not in ds
    present = [uid(ds, t) for t in (SOP, STUDY, SERIES) if uid(ds, t)]
    assert len(set(present)) == len(present)
    # the meta header follows the dataset's SOP Instance UID (M18)
    assert ds.file_meta.MediaStorageSOPInstanceUID == uid(ds, SOP)


def test_uids_empty_ones_generated_verbose(tmp_path: Path) -> None:
    # M19: empty values count as missing; -v logs each generation
    doc = {"00080018": {"vr": "UI"}, "0020000E": {"vr": "UI", "Value": []}, "00100020": lo("x")}
    run = ok(j2d(tmp_path, doc, "+Ug", "-v"))
    ds = run.ds()
    for tag in (SOP, STUDY, SERIES):
        assert UID_2_25.match(uid(ds, tag))
    for what in ("Study Instance UID", "Series Instance UID", "SOP Instance UID"):
        assert f"I: generating new {what}" in run.stderr


@pytest.mark.parametrize(
    ("opts", "meta_sop"),
    [(("+Ug", "+Uo"), "new"), (("+Ug",), "9.9.9")],  # M20, M21
    ids=["M20", "M21"],
)
def test_uids_meta_follows(tmp_path: Path, opts: tuple[str, ...], meta_sop: str) -> None:
    run = ok(j2d(tmp_path, {"00020003": ui("9.9.9"), **M17}, *opts))
    ds = run.ds()
    if meta_sop == "new":
        assert ds.file_meta.MediaStorageSOPInstanceUID == uid(ds, SOP) != "1.2.3.4"
    else:
        assert ds.file_meta.MediaStorageSOPInstanceUID == "9.9.9"
        assert "SOPInstanceUID" in run.stderr


def test_uids_nested_untouched(tmp_path: Path) -> None:
    # M22: only top-level UIDs are considered
    doc = {"00081115": sq({"0020000E": ui("7.7.7")})}
    ds = ok(j2d(tmp_path, doc, "+Ug", "+Uo")).ds()
    assert ds[0x00081115][0][SERIES].value == "7.7.7"
    for tag in (SOP, STUDY, SERIES):
        assert UID_2_25.match(uid(ds, tag))


def test_uids_same_old_same_new_within_run(tmp_path: Path) -> None:
    # CONTRACT §7: within one run the same old UID maps to the same new UID; a second run
    # gives other new UIDs
    doc = [
        {**M17, "00080018": ui("1.2.3.4.1"), "0020000E": ui("1.2.3.6")},
        {**M17, "00080018": ui("1.2.3.4.2"), "0020000E": ui("1.2.3.6")},
    ]
    ok(j2d(tmp_path, doc, "+Ug", "+Uo", "+aS", out="split1"))
    ok(j2d(tmp_path, doc, "+Ug", "+Uo", "+aS", out="split2"))
    one = [dcmread(tmp_path / "split1" / f"{i:06d}.dcm") for i in (0, 1)]
    two = [dcmread(tmp_path / "split2" / f"{i:06d}.dcm") for i in (0, 1)]
    assert uid(one[0], STUDY) == uid(one[1], STUDY) != "1.2.3.5"
    assert uid(one[0], SERIES) == uid(one[1], SERIES) != "1.2.3.6"
    assert uid(one[0], SOP) != uid(one[1], SOP)
    assert uid(one[0], STUDY) != uid(two[0], STUDY)
    for ds in one + two:
        assert ds.file_meta.MediaStorageSOPInstanceUID == uid(ds, SOP)


def test_uids_with_array_sequence_apply_to_the_top_level(tmp_path: Path) -> None:
    # dcmtk-behavior §10: only the top-level dataset is considered; with +ar the datasets
    # are items of (0009,1000), so their UIDs stay and the top level gets new ones
    doc = [M17, {"00100020": lo("b")}]
    ds = ok(j2d(tmp_path, doc, "+ar", "+Ug")).ds()
    items = ds[0x00091000].value
    assert uid(items[0], SOP) == "1.2.3.4" and uid(items[0], STUDY) == "1.2.3.5"
    assert SERIES not in items[0] and SOP not in items[1]
    for tag in (SOP, STUDY, SERIES):
        assert UID_2_25.match(uid(ds, tag))
    assert ds.file_meta.MediaStorageSOPInstanceUID == uid(ds, SOP)


# -- +Bu / -Bu / +Bd (B table; CONTRACT §5) -------------------------------------------------

DATA = bytes(range(1, 9))  # bulk/data.bin = 01..08


@pytest.fixture
def bulk(tmp_path: Path) -> Path:
    """The §14.9 file layout."""
    (tmp_path / "bulk" / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "bulk" / "data.bin").write_bytes(DATA)
    (tmp_path / "outside" / "o.bin").write_bytes(b"ABCDEFGH")
    (tmp_path / "bulk" / "link.bin").symlink_to(tmp_path / "outside" / "o.bin")
    (tmp_path / "bulklink").symlink_to(tmp_path / "bulk")
    (tmp_path / "bulk" / "ds.txt").write_bytes(b"1.5\\2.5")
    (tmp_path / "bulk" / "empty.bin").write_bytes(b"")
    (tmp_path / "bulk" / "d%61ta.bin").write_bytes(b"\xaa\xbb")
    return tmp_path


def bulk_doc(uri: Any, tag: str = "00420011", vr: str = "OB") -> dict[str, Any]:
    return {tag: {"vr": vr, "BulkDataURI": uri}, "00100020": lo("kept")}


@pytest.mark.parametrize(
    ("uri", "opts", "rc", "value"),
    [
        ("F/bulk/data.bin", (), 20, None),  # B1: no permitted directory by default
        ("F/bulk/data.bin", ("+Bd", "B/bulk"), 0, DATA),  # B2
        ("file:B/bulk/data.bin", ("+Bd", "B/bulk"), 0, DATA),  # B3: file:/p
        ("file://localhost/B/bulk/data.bin", ("+Bd", "B/bulk"), 0, DATA),  # B4
        ("F/bulk/../outside/o.bin", ("+Bd", "B/bulk"), 20, None),  # B9
        ("F/bulk/sub/../data.bin", ("+Bd", "B/bulk"), 0, DATA),  # B10
        ("F/bulk/link.bin", ("+Bd", "B/bulk"), 20, None),  # B11: symlink pointing outside
        ("F/bulklink/data.bin", ("+Bd", "B/bulk"), 0, DATA),  # B12: symlinked dir, target inside
        ("F/bulk/data.bin", ("+Bd", "B/bulklink"), 0, DATA),  # B13: +Bd is a symlink
        ("F/bulk/data.bin", ("+Bd", "bulk"), 0, DATA),  # B14: relative +Bd (cwd)
        ("F/bulk/data.bin", ("+Bd", "B/bulk/"), 0, DATA),  # B15
        ("F/bulk/data.bin", ("+Bd", "B/bul"), 1, None),  # B16: +Bd must exist
        ("F/bulk/data.bin", ("+Bd", "B/bulk/data.bin"), 20, None),  # B17: a file permits nothing
        ("F/bulk/data.bin", ("+Bd", "/"), 0, DATA),  # B18
        ("F/outside/o.bin", ("+Bd", "B/bulk", "+Bd", "B/outside"), 0, b"ABCDEFGH"),  # B19
        ("F/bulk/nope.bin", ("+Bd", "B/bulk"), 20, None),  # B7: missing file
        ("F/bulk/data.bin?offset=2&length=3", ("+Bd", "B/bulk"), 0, b"\x03\x04\x05\x00"),  # B24
        # CONTRACT §5: offset without length = to the end of the file (DCMTK B25 fails)
        ("F/bulk/data.bin?offset=2", ("+Bd", "B/bulk"), 0, DATA[2:]),
        ("F/bulk/data.bin?offset=8", ("+Bd", "B/bulk"), 0, b""),
        ("F/bulk/data.bin?length=3", ("+Bd", "B/bulk"), 0, b"\x01\x02\x03\x00"),  # B26
        ("F/bulk/data.bin?", ("+Bd", "B/bulk"), 0, DATA),  # B26
        ("F/bulk/data.bin?offset=1&length=2&", ("+Bd", "B/bulk"), 0, b"\x02\x03"),  # B30
        ("F/bulk/data.bin?offset=1&offset=2&length=1", ("+Bd", "B/bulk"), 0, b"\x03\x00"),  # B33
        ("F/bulk/data.bin?offset=4&length=5", ("+Bd", "B/bulk"), 65, None),  # B27: too short
        ("F/bulk/empty.bin", ("+Bd", "B/bulk"), 0, b""),  # B34
        # CONTRACT §5: percent-decoding once: %2561 -> %61, the file named 'd%61ta.bin'
        ("F/bulk/d%2561ta.bin", ("+Bd", "B/bulk"), 0, b"\xaa\xbb"),
        ("F/bulk/d%61ta.bin", ("+Bd", "B/bulk"), 0, DATA),  # %61 = 'a'
        # CONTRACT §5: a relative reference resolves against the JSON file's directory
        ("bulk/data.bin", ("+Bd", "B/bulk"), 0, DATA),
        ("bulk/data.bin?offset=6", ("+Bd", "B/bulk"), 0, b"\x07\x08"),
        # -Bu: the element is left empty, the URI is not looked at (B41, B42)
        ("http://example.com/x", ("-Bu",), 0, b""),
        (123, ("-Bu",), 0, b""),
        ("F/bulk/nope.bin", ("-Bu",), 0, b""),
        ("F/bulk/data.bin", ("+Bd", "B/bulk", "-Bu"), 0, b""),
        ("F/bulk/data.bin", ("+Bd", "B/bulk", "-Bu", "+Bu"), 0, DATA),  # rightmost wins (C22)
    ],
    ids=lambda v: str(v) if not isinstance(v, tuple) else " ".join(v),
)
def test_bulkdata(
    bulk: Path,
    monkeypatch: pytest.MonkeyPatch,
    uri: Any,
    opts: tuple[str, ...],
    rc: int,
    value: bytes | None,
) -> None:
    monkeypatch.chdir(bulk)
    base = str(bulk)
    if isinstance(uri, str):
        uri = (
            uri.replace("F/", f"file://{base}/")
            .replace("file:B/", f"file:{base}/")
            .replace("localhost/B/", f"localhost{base}/")
        )
    opts = tuple(o.replace("B/", base + "/") for o in opts)
    run = j2d(bulk, bulk_doc(uri), *opts)
    assert run.rc == rc, run.stderr
    assert "Traceback" not in run.stderr
    if rc:
        assert not run.out.exists()
        assert re.search(r"^E: ", run.stderr, re.MULTILINE)
        return
    elements = parse_elements(run.body(), EXPLICIT)
    assert elements[0x00420011] == ("OB", value)
    assert text(elements, 0x00100020) == "kept"


@pytest.mark.parametrize(
    ("tag", "vr", "uri", "expected"),
    [
        ("00281201", "OW", "data.bin", DATA),  # B44: OW, little-endian words as in the file
        ("00280010", "US", "data.bin", DATA),  # B45: US 513\1027\1541\2055
        ("00181060", "DS", "ds.txt", b"1.5\\2.5 "),  # B47: text VR, backslash splits values
        ("7FE00010", "OW", "data.bin", DATA),  # B49
        ("00420011", "OB", "data.bin?offset=7", b"\x08\x00"),  # odd length padded (PS3.5 7.1.1)
    ],
)
def test_bulkdata_vrs(bulk: Path, tag: str, vr: str, uri: str, expected: bytes) -> None:
    run = ok(j2d(bulk, bulk_doc(f"file://{bulk}/bulk/{uri}", tag, vr), "+Bd", str(bulk / "bulk")))
    assert parse_elements(run.body(), EXPLICIT)[int(tag, 16)] == (vr, expected)


def test_bulkdata_big_endian_swapped(bulk: Path) -> None:
    # CONTRACT §5: bulk data of word VRs is little endian and byte-swapped for +tb (P4)
    run = ok(
        j2d(
            bulk,
            bulk_doc(f"file://{bulk}/bulk/data.bin", "7FE00010", "OW"),
            "+Bd",
            str(bulk / "bulk"),
            "+tb",
        )
    )
    assert parse_elements(run.body(), BIG)[0x7FE00010] == ("OW", bytes([2, 1, 4, 3, 6, 5, 8, 7]))


def test_bulkdata_large_streamed_and_swapped(bulk: Path) -> None:
    # CONTRACT §5: streamed from the file (here 2 MiB + 4 bytes) and byte-swapped for +tb
    words = struct.pack("<1048578H", *(i & 0xFFFF for i in range(1048578)))
    (bulk / "bulk" / "big.bin").write_bytes(words)
    uri = f"file://{bulk}/bulk/big.bin?offset=2"
    for opts, ts in ((("+tb",), BIG), (("+te",), EXPLICIT), (("+td",), DEFLATED)):
        run = ok(j2d(bulk, bulk_doc(uri, "7FE00010", "OW"), "+Bd", str(bulk / "bulk"), *opts))
        body = run.body()
        if ts == DEFLATED:
            body, ts = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body), EXPLICIT
        vr, value = parse_elements(body, ts)[0x7FE00010]
        assert vr == "OW" and len(value) == len(words) - 2
        assert value == (_swapped(words[2:], 2) if ts == BIG else words[2:])


def test_bulkdata_permitted_dir_via_dotdot_in_bd(bulk: Path) -> None:
    # +Bd is normalised: 'bulk/sub/..' is 'bulk'
    run = ok(
        j2d(
            bulk, bulk_doc(f"file://{bulk}/bulk/data.bin"), "+Bd", str(bulk / "bulk" / "sub" / "..")
        )
    )
    assert parse_elements(run.body(), EXPLICIT)[0x00420011] == ("OB", DATA)


# -- -ar / +as / +ar (A table; CONTRACT §1, §6) --------------------------------------------

ARR = [
    {"00100020": lo("one"), "00020010": ui(IMPLICIT)},
    {"00100020": lo("two"), "00081115": sq({"00081150": ui("1.2")})},
    {"00100020": lo("three")},
]
LIST_CREATOR = "JSON2DCM_LIST_OF_DATASETS"


@pytest.mark.parametrize(
    ("doc", "opts", "expected"),
    [
        (ARR, (), 65),  # A1
        (ARR, ("-ar",), 65),
        ([{"00100020": lo("only")}], (), "only"),  # A2: single-element array unwrapped
        (ARR, ("+as", "1"), ("one", IMPLICIT)),  # A6: its own (0002,0010)
        (ARR, ("+as", "2"), ("two", EXPLICIT)),  # A7
        (ARR, ("+as", "3"), ("three", EXPLICIT)),
        (ARR, ("+as", "4"), 65),  # A8
        (ARR, ("--array-select", "2"), ("two", EXPLICIT)),
        (ARR, ("+ar", "-ar"), 65),  # A13
        (ARR, ("+ar", "+as", "3"), ("three", EXPLICIT)),
        ([{"00100020": lo("only")}], ("+ar",), "only"),  # A15
        ([{"00100020": lo("only")}], ("+as", "3"), "only"),  # A16
        ({"00100020": lo("obj")}, ("+as", "5"), "obj"),  # A17
        # CONTRACT §3: several top-level values (NDJSON) get the array policy
        (
            '{"00100020":{"vr":"LO","Value":["a"]}}\n{"00100020":{"vr":"LO","Value":["b"]}}\n',
            (),
            65,
        ),
        (
            '{"00100020":{"vr":"LO","Value":["a"]}}\n{"00100020":{"vr":"LO","Value":["b"]}}\n',
            ("+as", "2"),
            ("b", EXPLICIT),
        ),
        (
            '{"00100020":{"vr":"LO","Value":["a"]}} {"00100020":{"vr":"LO","Value":["b"]}}',
            ("+as", "1"),
            ("a", EXPLICIT),
        ),
        # +as n: the others are skipped unbuilt, errors in them do not matter (§8)
        ([{"00100020": lo("one")}, {"0010002G": lo("bad")}], ("+as", "1"), ("one", EXPLICIT)),
    ],
    ids=[
        "A1",
        "-ar",
        "A2",
        "A6",
        "A7-2",
        "A7-3",
        "A8",
        "long",
        "A13",
        "+ar+as",
        "A15",
        "A16",
        "A17",
        "ndjson",
        "ndjson+as2",
        "concat+as1",
        "skip-bad",
    ],
)
def test_arrays(tmp_path: Path, doc: Any, opts: tuple[str, ...], expected: Any) -> None:
    run = j2d(tmp_path, doc, *opts)
    if expected == 65:
        assert run.rc == 65 and not run.out.exists()
        assert "E: " in run.stderr
        return
    ok(run)
    ds = run.ds()
    if isinstance(expected, tuple):
        value, ts = expected
        assert ds.file_meta.TransferSyntaxUID == ts
    else:
        value = expected
    assert ds[0x00100020].value == value
    assert 0x00091000 not in ds


@pytest.mark.parametrize(
    "opts", [("+ar",), ("--array-sequence",), ("+as", "2", "+ar")], ids=["+ar", "long", "A14"]
)
def test_array_sequence(tmp_path: Path, opts: tuple[str, ...]) -> None:
    # A12: (0009,0010) LO JSON2DCM_LIST_OF_DATASETS, (0009,1000) SQ, one item per dataset in
    # order; group 0002 dropped from items (A18) so the TS is the default; generic SOP class
    run = ok(j2d(tmp_path, ARR, *opts))
    body = parse_elements(run.body(), EXPLICIT)
    assert body[0x00090010] == ("LO", LIST_CREATOR.encode() + b" ")
    assert body[0x00091000][0] == "SQ"
    ds = run.ds()
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT
    items = ds[0x00091000].value
    assert [item[0x00100020].value for item in items] == ["one", "two", "three"]
    assert all(0x00020010 not in item for item in items)
    assert items[1][0x00081115][0][0x00081150].value == "1.2"
    assert ds.file_meta.MediaStorageSOPClassUID != DCMTK_GENERIC
    assert set(ds.keys()) == {0x00090010, 0x00091000}


def test_array_sequence_meta_from_first_nested(tmp_path: Path) -> None:
    # §8/§9.1: the meta header takes SOP UIDs from the first nested occurrence
    doc = [
        {"00100020": lo("a")},
        {**DS, "00100020": lo("b")},
        {"00080016": ui(CT_IMAGE), "00080018": ui("5.5")},
    ]
    ds = ok(j2d(tmp_path, doc, "+ar")).ds()
    assert ds.file_meta.MediaStorageSOPClassUID == SC_IMAGE
    assert ds.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4"


def test_array_sequence_charset_utf8(tmp_path: Path) -> None:
    # -c sets the top-level (0008,0005), and with +ar the top level is the wrapper (§11)
    ds = ok(j2d(tmp_path, [{"00100020": lo(CAFE)}, {"00100020": lo("b")}], "+ar", "-c")).ds()
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds[0x00091000][0][0x00100020].value == CAFE


@pytest.mark.parametrize("opts", [("-e",), ("+e",)])
def test_array_sequence_lengths(tmp_path: Path, opts: tuple[str, ...]) -> None:
    run = ok(j2d(tmp_path, [{"00100020": lo("a")}, {"00100020": lo("b")}], "+ar", "-F", *opts))
    data = run.data
    # (0009,0010) LO 26 bytes, then (0009,1000) SQ
    head = struct.pack("<HH", 0x0009, 0x1000) + b"SQ\x00\x00"
    pos = data.index(head) + len(head)
    item = struct.pack("<HH", 0x0010, 0x0020) + b"LO" + struct.pack("<H", 2) + b"a "
    if opts == ("-e",):
        undefined = b"\xff\xff\xff\xff"
        assert data[pos : pos + 4] == undefined
        assert data[pos + 4 : pos + 12] == b"\xfe\xff\x00\xe0" + undefined
        assert data.endswith(
            b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
        )
    else:
        assert struct.unpack("<I", data[pos : pos + 4])[0] == 2 * (8 + len(item))
        assert data[pos + 4 : pos + 12] == b"\xfe\xff\x00\xe0" + struct.pack("<I", len(item))
        assert data.endswith(item.replace(b"a ", b"b "))


@pytest.mark.parametrize(
    ("value", "message"),
    [("0", "array-select"), ("abc", "array-select"), ("-2", "array-select"), ("", "array-select")],
)
def test_array_select_invalid(tmp_path: Path, value: str, message: str) -> None:
    # CONTRACT §1: +as takes an integer n >= 1, anything else is a command-line error
    run = j2d(tmp_path, ARR, "+as", value)
    assert run.rc == 1
    assert "error:" in run.stderr and message in run.stderr
    assert not run.out.exists()


# -- +F / -F / +Fu (C8, C17, C20, W8, P11) -------------------------------------------------


@pytest.mark.parametrize(
    ("opts", "full"),
    [((), True), (("+F",), True), (("-F",), False), (("-F", "+F"), True), (("+F", "-F"), False),
     (("--write-dataset",), False), (("--write-file",), True)],
    ids=["default", "+F", "-F", "-F+F", "+F-F", "long-F", "long+F"],
)  # fmt: skip
def test_file_or_dataset(tmp_path: Path, opts: tuple[str, ...], full: bool) -> None:
    run = ok(j2d(tmp_path, MIN, *opts))
    data = run.data
    if full:
        # W8: 128 zero bytes, DICM, explicit VR little endian meta, then the dataset
        meta, body = split_file(data)
        assert body == MIN_DATASET
        assert text(parse_elements(meta, EXPLICIT), 0x00020010) == EXPLICIT
    else:
        assert data == MIN_DATASET  # C17


@pytest.mark.parametrize(
    ("opts", "dataset"),
    [
        (("-F", "+ti"), bytes.fromhex("10001000020000004120")),  # PS3.5 7.1.3
        (("-F", "+tb"), bytes.fromhex("00100010504e00024120")),  # PS3.5 7.3
        (("-F", "+te"), MIN_DATASET),
    ],
)
def test_dataset_only_transfer_syntax(
    tmp_path: Path, opts: tuple[str, ...], dataset: bytes
) -> None:
    assert ok(j2d(tmp_path, MIN, *opts)).data == dataset


def test_meta_header_stays_little_endian(tmp_path: Path) -> None:
    # W8: the meta header is explicit VR little endian whatever the dataset's TS
    run = ok(j2d(tmp_path, MIN, "+tb"))
    meta, body = split_file(run.data)
    assert text(parse_elements(meta, EXPLICIT), 0x00020010) == BIG
    assert body == bytes.fromhex("00100010504e00024120")


def test_dataset_only_with_encapsulated_ts_writes_file(tmp_path: Path) -> None:
    # P11: an encapsulated TS without pixel data: warning, full file, natively encoded dataset
    run = ok(j2d(tmp_path, {"00020010": ui("1.2.840.10008.1.2.4.50"), **MIN}, "-F"))
    assert "W: " in run.stderr and "--write-dataset" in run.stderr
    meta, body = split_file(run.data)
    assert text(parse_elements(meta, EXPLICIT), 0x00020010) == "1.2.840.10008.1.2.4.50"
    assert body == MIN_DATASET


@pytest.mark.parametrize("opts", [("+Fu", "-F"), ("-F", "+Fu")])
def test_update_meta_conflicts_with_dataset(tmp_path: Path, opts: tuple[str, ...]) -> None:
    run = j2d(tmp_path, MIN, *opts)  # C8
    assert run.rc == 1
    assert "error: --update-meta-info not allowed with --write-dataset" in run.stderr


def test_update_meta_with_file_rightmost(tmp_path: Path) -> None:
    # +Fu with an effective +F (rightmost of -F +F) is fine
    meta = ok(j2d(tmp_path, {**META, **DS}, "-F", "+F", "+Fu")).meta()
    assert text(meta, 0x00020003) == "1.2.3.4"


# -- +t= / +te / +tb / +ti / +td (M5, W1-W6, P4, PS3.5 7.1-7.3, A.5) -----------------------

# (tag, JSON element, little-endian value bytes, swap width for big endian)
TS_ELEMENTS: list[tuple[int, dict[str, Any], bytes, int]] = [
    (0x00080016, ui(SC_IMAGE), SC_IMAGE.encode() + b"\x00", 1),
    (0x00080018, ui("1.2.3.4"), b"1.2.3.4\x00", 1),
    (0x00100020, lo("x"), b"x ", 1),
    (0x00180050, {"vr": "DS", "Value": [2.5]}, b"2.5 ", 1),
    (0x00186020, {"vr": "SL", "Value": [-2, 70000]}, struct.pack("<ii", -2, 70000), 4),
    (0x00189089, {"vr": "FD", "Value": [1.5, -0.25, 3]}, struct.pack("<ddd", 1.5, -0.25, 3), 8),
    (0x00189219, {"vr": "SS", "Value": [-300]}, struct.pack("<h", -300), 2),
    (
        0x00209167,
        {"vr": "AT", "Value": ["00100020", "7FE00010"]},
        struct.pack("<HHHH", 0x10, 0x20, 0x7FE0, 0x10),
        2,
    ),
    (0x00280010, {"vr": "US", "Value": [258, 1]}, struct.pack("<HH", 258, 1), 2),
    (0x0040A132, {"vr": "UL", "Value": [0x01020304]}, struct.pack("<I", 0x01020304), 4),
    (0x00660040, {"vr": "OL", "InlineBinary": "AQIDBAUGBwg="}, DATA, 4),
    (0x00720081, {"vr": "OV", "InlineBinary": "AQIDBAUGBwg="}, DATA, 8),
    (0x00720082, {"vr": "SV", "Value": [-2]}, struct.pack("<q", -2), 8),
    (0x00720083, {"vr": "UV", "Value": [1 << 40]}, struct.pack("<Q", 1 << 40), 8),
    (0x00089459, {"vr": "FL", "Value": [0.5]}, struct.pack("<f", 0.5), 4),
    (0x7FE00008, {"vr": "OF", "InlineBinary": "AACAPwAAAEA="}, struct.pack("<ff", 1, 2), 4),  # Q11
    (0x7FE00009, {"vr": "OD", "InlineBinary": "AAAAAAAA8D8="}, struct.pack("<d", 1), 8),
    (0x00281201, {"vr": "OW", "InlineBinary": "AQIDBA=="}, b"\x01\x02\x03\x04", 2),  # Q10
    (0x00420011, {"vr": "OB", "InlineBinary": "AQIDBA=="}, b"\x01\x02\x03\x04", 1),  # not swapped
    (0x0008030E, {"vr": "UT", "Value": ["text"]}, b"text", 1),
]
TS_DOC = {f"{tag:08X}": elem for tag, elem, _, _ in TS_ELEMENTS}
TS_VRS = {tag: elem["vr"] for tag, elem, _, _ in TS_ELEMENTS}


def _swapped(value: bytes, width: int) -> bytes:
    return b"".join(value[i : i + width][::-1] for i in range(0, len(value), width))


@pytest.mark.parametrize(
    ("opts", "ts"),
    [((), EXPLICIT), (("+t=",), EXPLICIT), (("+te",), EXPLICIT), (("+tb",), BIG), (("+ti",), IMPLICIT),
     (("--write-xfer-big",), BIG), (("+te", "+ti"), IMPLICIT), (("+ti", "+te"), EXPLICIT),  # W6
     (("+tb", "+t="), EXPLICIT)],
    ids=["default", "+t=", "+te", "+tb", "+ti", "long-big", "+te+ti", "+ti+te", "+tb+t="],
)  # fmt: skip
def test_transfer_syntax_encoding(tmp_path: Path, opts: tuple[str, ...], ts: str) -> None:
    run = ok(j2d(tmp_path, TS_DOC, *opts))
    meta, body = split_file(run.data)
    assert text(parse_elements(meta, EXPLICIT), 0x00020010) == ts
    elements = parse_elements(body, ts)
    assert list(elements) == sorted(TS_VRS)  # PS3.5 7.1: ascending tag order
    for tag, _, value, width in TS_ELEMENTS:
        expected = _swapped(value, width) if ts == BIG else value
        vr = "" if ts == IMPLICIT else TS_VRS[tag]
        assert elements[tag] == (vr, expected), f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    # and pydicom reads the same numbers back
    ds = run.ds()
    assert ds[0x00280010].value == [258, 1]
    assert ds[0x00189089].value == [1.5, -0.25, 3.0]
    assert ds[0x00186020].value == [-2, 70000]
    assert ds[0x00720082].value == -2


def test_transfer_syntax_from_json_big_endian(tmp_path: Path) -> None:
    # M5 + +t=: the JSON's (0002,0010) selects big endian; values swapped
    run = ok(j2d(tmp_path, {"00020010": ui(BIG), "00280010": {"vr": "US", "Value": [258]}}))
    meta, body = split_file(run.data)
    assert text(parse_elements(meta, EXPLICIT), 0x00020010) == BIG
    assert body == bytes.fromhex("00280010") + b"US" + b"\x00\x02" + b"\x01\x02"


def test_large_inline_binary_swapped(tmp_path: Path) -> None:
    # an InlineBinary of 17 MiB (decoded chunk by chunk into a spill file) under +tb
    import base64

    words = struct.pack("<4456448H", *(i & 0xFFFF for i in range(4456448)))
    doc = '{"7FE00010":{"vr":"OW","InlineBinary":"' + base64.b64encode(words).decode() + '"}}'
    run = ok(j2d(tmp_path, doc, "+tb", "-F"))
    assert parse_elements(run.data, BIG)[0x7FE00010] == ("OW", _swapped(words, 2))


def test_deflated(tmp_path: Path) -> None:
    # PS3.5 A.5: meta plain, the dataset is a raw deflate (RFC 1951) of explicit VR LE
    little = ok(j2d(tmp_path, TS_DOC, "+te", out="le.dcm"))
    run = ok(j2d(tmp_path, TS_DOC, "+td", out="td.dcm"))
    meta, body = split_file(run.data)
    assert text(parse_elements(meta, EXPLICIT), 0x00020010) == DEFLATED
    inflated = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body)
    assert inflated == little.body()
    assert run.ds()[0x00280010].value == [258, 1]


def test_deflated_from_json(tmp_path: Path) -> None:
    run = ok(j2d(tmp_path, {"00020010": ui(DEFLATED), **MIN}))
    _meta, body = split_file(run.data)
    assert zlib.decompressobj(-zlib.MAX_WBITS).decompress(body) == MIN_DATASET


# -- +cl (C9, C10, W4) -----------------------------------------------------------------------

W_DOC = {
    "00100020": lo("x" * 2000),
    "00081115": sq({"00081150": ui("1.2.3")}),
    "00280010": {"vr": "US", "Value": [258]},
    "FFFCFFFC": {"vr": "OB", "InlineBinary": "AAAA"},
}


def test_compression_levels_ordered(tmp_path: Path) -> None:
    sizes = {}
    little = ok(j2d(tmp_path, W_DOC, "+te", out="le.dcm")).body()
    for level in ("0", "1", "6", "9"):
        run = ok(j2d(tmp_path, W_DOC, "+td", "+cl", level, out=f"cl{level}.dcm"))
        body = run.body()
        assert zlib.decompressobj(-zlib.MAX_WBITS).decompress(body) == little
        sizes[level] = len(body)
    default = ok(j2d(tmp_path, W_DOC, "+td", out="cl.dcm")).body()
    assert len(default) == sizes["6"]  # the default level is 6
    assert sizes["0"] >= len(little) > sizes["1"] >= sizes["9"]  # W4
    assert sizes["0"] > 4 * sizes["9"]


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (("+cl", "5"), "error: --compression-level only allowed with --write-xfer-deflated"),  # C9
        (
            ("+td", "+cl", "5", "+te"),
            "error: --compression-level only allowed with --write-xfer-deflated",
        ),
        (("+td", "+cl", "10"), "error: Invalid value for option --compression-level"),  # C10
        (("+td", "+cl", "-1"), "error: Invalid value for option --compression-level"),
        (("+td", "+cl", "x"), "error: Invalid value for option --compression-level"),
    ],
)
def test_compression_level_errors(tmp_path: Path, opts: tuple[str, ...], message: str) -> None:
    run = j2d(tmp_path, MIN, *opts)
    assert run.rc == 1 and message in run.stderr
    assert not run.out.exists()


@pytest.mark.parametrize(("last", "name"), [("+cl", "--compression-level"), ("-ll", "--log-level"),
                                            ("+as", "--array-select"), ("+Bd", "--add-bulkdata-dir"),
                                            ("-lc", "--log-config")])  # fmt: skip
def test_missing_option_value(tmp_path: Path, last: str, name: str) -> None:
    # C4: an option value is the next argument; none left -> exit 1
    write_doc(tmp_path / "in.json", MIN)
    stderr = io.StringIO()
    rc = main(
        ["+td", str(tmp_path / "in.json"), str(tmp_path / "out.dcm"), last],
        stdout=io.StringIO(),
        stderr=stderr,
    )
    reset_logging()
    assert rc == 1
    assert f"error: Missing value for option {name}" in stderr.getvalue()
    assert not (tmp_path / "out.dcm").exists()


def test_compression_level_after_deflated_ok(tmp_path: Path) -> None:
    # "+cl requires the effective TS to be +td" - checked after all TS options (§1.2)
    ok(j2d(tmp_path, MIN, "+te", "+cl", "9", "+td"))


# -- -E / +E (CONTRACT §4; dcmtk-behavior §12) ----------------------------------------------

KEPT = '"00100021":{"vr":"LO","Value":["kept"]}'  # a sentinel that must survive under +E
ABSENT, EMPTY = "absent", "empty"


def _check(ds: pydicom.Dataset, tag: int, expect: Any) -> None:
    if expect is None:
        return
    options = expect if isinstance(expect, set) else {expect}
    got: Any
    if tag not in ds:
        got = ABSENT
    elif ds[tag].VR == "SQ":
        got = len(ds[tag].value)
    elif ds[tag].value in (None, b"", ""):
        got = EMPTY
    else:
        got = ds[tag].value
        if not isinstance(got, (bytes, int, float, str)):
            got = str(list(got))  # a multi-valued element
        elif isinstance(got, str):
            got = str(got)
    assert got in options or str(got) in options, f"{got!r} not in {options!r}"


# (id, element JSON text, tag to look at under +E, acceptable results under +E)
# CONTRACT §4: under +E "written as DCMTK would, or dropped where DCMTK's result is garbage"
E_CASES: list[tuple[str, str, int, Any]] = [
    ("tag-7-chars", '"0010010":{"vr":"LO","Value":["x"]}', 0x00100010, ABSENT),
    ("tag-non-hex", '"0010002G":{"vr":"LO","Value":["x"]}', 0x0010002F, None),
    ("tag-prefix-0x", '"0x100020":{"vr":"LO","Value":["x"]}', 0x00100020, {ABSENT, "x"}),
    (
        "duplicate-tag",
        '"00100020":{"vr":"LO","Value":["a"]},"00100020":{"vr":"LO","Value":["b"]}',
        0x00100020,
        "a",
    ),
    (
        "duplicate-tag-case",
        '"0020000d":{"vr":"UI","Value":["1.2"]},"0020000D":{"vr":"UI","Value":["1.3"]}',
        0x0020000D,
        "1.2",
    ),
    (
        "duplicate-in-item",
        '"00081115":{"vr":"SQ","Value":[{"00081150":{"vr":"UI","Value":["1.2"]},"00081150":{"vr":"UI","Value":["1.3"]}}]}',
        0x00081115,
        1,
    ),
    (
        "unknown-attribute",
        '"00100020":{"vr":"LO","Value":["x"],"foo":1}',
        0x00100020,
        {ABSENT, "x"},
    ),
    (
        "value-and-inline",
        '"00100020":{"vr":"LO","Value":["x"],"InlineBinary":"AQID"}',
        0x00100020,
        "x",
    ),
    (
        "inline-and-bulk",
        '"00420011":{"vr":"OB","InlineBinary":"AQI=","BulkDataURI":"http://x"}',
        0x00420011,
        b"\x01\x02",
    ),
    ("vr-unknown", '"00100020":{"vr":"XX","Value":["x"]}', 0x00100020, "x"),
    ("vr-lowercase", '"00100020":{"vr":"lo","Value":["x"]}', 0x00100020, "x"),
    ("vr-number", '"00100020":{"vr":12,"Value":["x"]}', 0x00100020, "x"),
    ("vr-too-long", '"00100020":{"vr":"LOX","Value":["x"]}', 0x00100020, {"x", ABSENT}),
    ("vr-pseudo-ox", '"00100020":{"vr":"ox","Value":["ff"]}', 0x00100020, {ABSENT, b"\xff\x00"}),
    ("vr-missing-unknown-tag", '"00501234":{"Value":["abc"]}', 0x00501234, {ABSENT, b"\xbc\x00"}),
    ("us-out-of-range", '"00280010":{"vr":"US","Value":[70000]}', 0x00280010, {ABSENT, EMPTY}),
    ("us-negative", '"00280010":{"vr":"US","Value":[-1]}', 0x00280010, {ABSENT, EMPTY}),
    ("us-not-integral", '"00280010":{"vr":"US","Value":[1.5]}', 0x00280010, {ABSENT, EMPTY}),
    ("us-string", '"00280010":{"vr":"US","Value":["12"]}', 0x00280010, {12, ABSENT}),
    ("us-null-in-list", '"00280010":{"vr":"US","Value":[1,null,3]}', 0x00280010, {ABSENT, EMPTY}),
    ("us-boolean", '"00280010":{"vr":"US","Value":[true]}', 0x00280010, {ABSENT, EMPTY}),
    ("ss-out-of-range", '"00189219":{"vr":"SS","Value":[40000]}', 0x00189219, {ABSENT, EMPTY}),
    ("ul-negative", '"0040A132":{"vr":"UL","Value":[-1]}', 0x0040A132, {ABSENT, EMPTY}),
    ("sl-out-of-range", '"00186020":{"vr":"SL","Value":[3000000000]}', 0x00186020, {ABSENT, EMPTY}),
    ("uv-negative", '"00720083":{"vr":"UV","Value":[-1]}', 0x00720083, {ABSENT, EMPTY}),
    (
        "sv-out-of-range",
        '"00720082":{"vr":"SV","Value":[9223372036854775808]}',
        0x00720082,
        {ABSENT, EMPTY},
    ),
    ("fl-overflow", '"00089459":{"vr":"FL","Value":[1e39]}', 0x00089459, {ABSENT, EMPTY}),
    ("fd-overflow", '"00189089":{"vr":"FD","Value":[1e400]}', 0x00189089, {ABSENT, EMPTY}),
    ("fd-string", '"00189089":{"vr":"FD","Value":["1.5"]}', 0x00189089, {1.5, ABSENT}),
    ("is-fraction", '"00201208":{"vr":"IS","Value":[1.5]}', 0x00201208, {"1.5", ABSENT}),
    (
        "is-too-big",
        '"00201208":{"vr":"IS","Value":[2147483648]}',
        0x00201208,
        {"2147483648", ABSENT},
    ),
    ("is-text", '"00201208":{"vr":"IS","Value":["abc"]}', 0x00201208, {"abc", ABSENT}),
    ("ds-text", '"00180050":{"vr":"DS","Value":["abc"]}', 0x00180050, {"abc", ABSENT}),
    (
        "lo-backslash",
        '"00100020":{"vr":"LO","Value":["a\\\\b"]}',
        0x00100020,
        {ABSENT, "['a', 'b']"},
    ),
    ("pn-backslash", '"00100010":{"vr":"PN","Value":[{"Alphabetic":"a\\\\b"}]}', 0x00100010, None),
    (
        "base64-alphabet",
        '"00420011":{"vr":"OB","InlineBinary":"A-_QID"}',
        0x00420011,
        {ABSENT, EMPTY},
    ),
    (
        "base64-padding",
        '"00420011":{"vr":"OB","InlineBinary":"AQ==AQID"}',
        0x00420011,
        {ABSENT, EMPTY},
    ),
    ("base64-length", '"00420011":{"vr":"OB","InlineBinary":"AQIDB"}', 0x00420011, {ABSENT, EMPTY}),
    ("base64-garbage", '"00420011":{"vr":"OB","InlineBinary":"!!!"}', 0x00420011, {ABSENT, EMPTY}),
    (
        "ow-odd-length",
        '"00281201":{"vr":"OW","InlineBinary":"AQID"}',
        0x00281201,
        {ABSENT, b"\x01\x02"},
    ),
    (
        "of-length",
        '"7FE00008":{"vr":"OF","InlineBinary":"AQIDBA0="}',
        0x7FE00008,
        {ABSENT, b"\x01\x02\x03\x04"},
    ),
    ("inline-on-us", '"00280010":{"vr":"US","InlineBinary":"AQI="}', 0x00280010, {ABSENT, EMPTY}),
    ("inline-on-lo", '"00100020":{"vr":"LO","InlineBinary":"AQI="}', 0x00100020, {ABSENT, EMPTY}),
    ("inline-on-sq", '"00081115":{"vr":"SQ","InlineBinary":"AQI="}', 0x00081115, {ABSENT, 0}),
    (
        "bulk-on-lo",
        '"00100020":{"vr":"LO","BulkDataURI":"file:///etc/hostname"}',
        0x00100020,
        {ABSENT, EMPTY},
    ),
    (
        "bulk-on-at",
        '"00209167":{"vr":"AT","BulkDataURI":"file:///etc/hostname"}',
        0x00209167,
        {ABSENT, EMPTY},
    ),
    ("pn-string", '"00100010":{"vr":"PN","Value":["Doe^John"]}', 0x00100010, {ABSENT, EMPTY}),
    (
        "pn-group",
        '"00100010":{"vr":"PN","Value":[{"alphabetic":"Doe"}]}',
        0x00100010,
        {ABSENT, EMPTY},
    ),
    (
        "pn-null-group",
        '"00100010":{"vr":"PN","Value":[{"Alphabetic":null}]}',
        0x00100010,
        {ABSENT, EMPTY},
    ),
    ("at-text", '"00209167":{"vr":"AT","Value":["xyz"]}', 0x00209167, {ABSENT, EMPTY}),
    ("at-non-hex", '"00209167":{"vr":"AT","Value":["0010002G"]}', 0x00209167, {ABSENT, EMPTY}),
    ("at-number", '"00209167":{"vr":"AT","Value":[100010]}', 0x00209167, {ABSENT, EMPTY}),
    ("content-not-object", '"00100020":"x"', 0x00100020, ABSENT),
    ("value-not-array", '"00100020":{"vr":"LO","Value":"x"}', 0x00100020, {ABSENT, EMPTY}),
    ("value-null", '"00100020":{"vr":"LO","Value":null}', 0x00100020, {ABSENT, EMPTY}),
    ("value-object", '"00100020":{"vr":"LO","Value":[{"a":1}]}', 0x00100020, None),
    ("item-not-object", '"00081115":{"vr":"SQ","Value":[null]}', 0x00081115, {ABSENT, 0}),
    ("pixel-data-value", '"7FE00010":{"vr":"OW","Value":[1,2]}', 0x7FE00010, {ABSENT, EMPTY}),
]


@pytest.mark.parametrize(
    ("doc", "tag", "expect"), [c[1:] for c in E_CASES], ids=[c[0] for c in E_CASES]
)
def test_stop_on_error_vs_ignore(
    request: pytest.FixtureRequest, tmp_path: Path, doc: str, tag: int, expect: Any
) -> None:
    text_doc = "{" + doc + "," + KEPT + "}"
    strict = j2d(tmp_path, text_doc, out="strict.dcm")
    assert strict.rc == 65, strict.stderr
    assert "E: " in strict.stderr and str(tmp_path / "in.json") in strict.stderr
    if not request.node.callspec.id.startswith("tag-"):
        assert f"({tag >> 16:04X},{tag & 0xFFFF:04X})" in strict.stderr  # the element path
    assert not strict.out.exists()
    for opts in (("-E",), ("+E", "-E"), ("--stop-on-error",)):
        assert j2d(tmp_path, text_doc, *opts, out="strict.dcm").rc == 65
    lenient = j2d(tmp_path, text_doc, "+E", out="lenient.dcm")
    assert lenient.rc == 0, lenient.stderr
    assert "W: " in lenient.stderr
    assert "Traceback" not in lenient.stderr
    ds = dcmread(lenient.out, force=True)
    assert ds[0x00100021].value == "kept"
    _check(ds, tag, expect)
    assert 0xFFFFFFFF not in ds


# (id, element JSON text, tag, expected value) - warnings under -E, never errors
WARN_CASES: list[tuple[str, str, int, Any]] = [
    ("vr-missing", '"00100020":{"Value":["x"]}', 0x00100020, "x"),  # V1
    ("vr-missing-us", '"00280010":{"Value":[512]}', 0x00280010, 512),  # V1
    ("vr-disagrees", '"00100010":{"vr":"LO","Value":["Doe^John"]}', 0x00100010, "Doe^John"),  # V5
    ("is-integral-number", '"00201208":{"vr":"IS","Value":[4.0]}', 0x00201208, "4"),  # CONTRACT §4
    (
        "ds-long-number",
        '"00180050":{"vr":"DS","Value":[0.12345678901234567890]}',
        0x00180050,
        "0.12345678901235",
    ),
    ("ui-whitespace", '"00080018":{"vr":"UI","Value":[" 1.2. 3 "]}', 0x00080018, "1.2.3"),  # S12
    ("lo-too-long", '"00100020":{"vr":"LO","Value":["' + "y" * 70 + '"]}', 0x00100020, "y" * 70),
]


@pytest.mark.parametrize(
    ("doc", "tag", "expect"), [c[1:] for c in WARN_CASES], ids=[c[0] for c in WARN_CASES]
)
def test_warnings_not_errors(tmp_path: Path, doc: str, tag: int, expect: Any) -> None:
    for opts in ((), ("+E",)):
        run = ok(j2d(tmp_path, "{" + doc + "," + KEPT + "}", *opts))
        assert "W: " in run.stderr
        ds = run.ds()
        value = ds[tag].value
        assert (str(value) if isinstance(expect, str) else value) == expect


@pytest.mark.parametrize(
    ("doc", "tag", "raw"),
    [
        # in LT, ST, UT and UR a backslash is ordinary text (CONTRACT §4)
        ('"00104000":{"vr":"LT","Value":["a\\\\b"]}', 0x00104000, b"a\\b "),
        ('"0008030E":{"vr":"UT","Value":["a\\\\b"]}', 0x0008030E, b"a\\b "),
        # attribute names compared case-insensitively (V22)
        ('"00100020":{"VR":"LO","VALUE":["X"]}', 0x00100020, b"X "),
        ('"00100020":{"Vr":"LO","value":["Y"]}', 0x00100020, b"Y "),
        # trailing spaces and NULs stripped, leading kept (S1, S12)
        ('"00100020":{"vr":"LO","Value":["  lead","trail  "]}', 0x00100020, b"  lead\\trail"),
        # null entries in string lists are empty values (S4)
        ('"00080060":{"vr":"CS","Value":[null,"B",null]}', 0x00080060, b"\\B\\ "),
        # (FFFC,FFFC) kept, group lengths dropped (K14, W1)
        ('"FFFCFFFC":{"vr":"OB","InlineBinary":"AAAA"}', 0xFFFCFFFC, b"\x00" * 4),
    ],
)
def test_valid_values_no_warning(tmp_path: Path, doc: str, tag: int, raw: bytes) -> None:
    run = ok(j2d(tmp_path, "{" + doc + "," + KEPT + ',"00080000":{"vr":"UL","Value":[9]}}', "-F"))
    elements = parse_elements(run.data, EXPLICIT)
    assert elements[tag][1] == raw
    assert 0x00080000 not in elements
    assert "E: " not in run.stderr


def test_json_syntax_errors_stay_fatal_under_ignore_errors(tmp_path: Path) -> None:
    # §4's list is what +E relaxes; a truncated document is still invalid JSON (CONTRACT §3)
    run = j2d(tmp_path, '{"00100020":{"vr":"LO","Value":["X"]}', "+E")
    assert run.rc == 65 and not run.out.exists()
    run = j2d(tmp_path, "[]", "+E")  # E4
    assert run.rc == 65


# -- +u / -u (W7, C26) -----------------------------------------------------------------------

U_CASES = [
    # (tag, JSON element, VR under +u, content bytes)
    (0x00091002, {"vr": "UN", "InlineBinary": "AQI="}, "UN", b"\x01\x02"),
    (0x0008030E, {"vr": "UT", "Value": ["text"]}, "UT", b"text"),
    (0x00081190, {"vr": "UR", "Value": ["http://x"]}, "UR", b"http://x"),
    (0x00080119, {"vr": "UC", "Value": ["u1"]}, "UC", b"u1"),
    (0x7FE00008, {"vr": "OF", "InlineBinary": "AACAPw=="}, "OF", struct.pack("<f", 1)),
    (0x7FE00009, {"vr": "OD", "InlineBinary": "AAAAAAAA8D8="}, "OD", struct.pack("<d", 1)),
    (0x00660040, {"vr": "OL", "InlineBinary": "AQAAAA=="}, "OL", struct.pack("<I", 1)),
    (0x00720081, {"vr": "OV", "InlineBinary": "AQAAAAAAAAA="}, "OV", struct.pack("<Q", 1)),
    (0x00720082, {"vr": "SV", "Value": [-1]}, "SV", b"\xff" * 8),
    (0x00720083, {"vr": "UV", "Value": [1]}, "UV", struct.pack("<Q", 1)),
    # unaffected VRs
    (0x00100020, lo("ab"), "LO", b"ab"),
    (0x00420011, {"vr": "OB", "InlineBinary": "AQI="}, "OB", b"\x01\x02"),
    (0x00281201, {"vr": "OW", "InlineBinary": "AQI="}, "OW", b"\x01\x02"),
]
U_DOC = {"00090010": lo("TEST"), **{f"{tag:08X}": elem for tag, elem, _, _ in U_CASES}}


@pytest.mark.parametrize(
    ("opts", "new_vr"),
    [((), True), (("+u",), True), (("-u",), False), (("-u", "+u"), True), (("+u", "-u"), False),
     (("--disable-new-vr",), False)],
    ids=["default", "+u", "-u", "-u+u", "+u-u", "long"],
)  # fmt: skip
def test_new_vrs(tmp_path: Path, opts: tuple[str, ...], new_vr: bool) -> None:
    run = ok(j2d(tmp_path, U_DOC, "-F", *opts))
    elements = parse_elements(run.data, EXPLICIT)
    for tag, _, vr, content in U_CASES:
        expected_vr = vr if new_vr or vr in ("LO", "OB", "OW") else "OB"
        assert elements[tag] == (expected_vr, content), f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def test_new_vrs_implicit_no_effect(tmp_path: Path) -> None:
    # W7: in implicit VR there is no visible effect
    a = ok(j2d(tmp_path, U_DOC, "-F", "+ti", "-u", out="a.dcm")).data
    b = ok(j2d(tmp_path, U_DOC, "-F", "+ti", out="b.dcm")).data
    assert a == b


# -- +e / -e (Q7, W5, C25; PS3.5 7.5) ---------------------------------------------------------

ITEM = struct.pack("<HH", 0x0008, 0x1150) + b"UI" + struct.pack("<H", 4) + b"1.2\x00"
NESTED = {"00081115": sq({"00081150": ui("1.2")}, {}), "00100020": lo("x")}
UNDEF = b"\xff\xff\xff\xff"
ITEM_TAG = b"\xfe\xff\x00\xe0"
ITEM_END = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
SEQ_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
LO_X = struct.pack("<HH", 0x0010, 0x0020) + b"LO" + struct.pack("<H", 2) + b"x "
SQ_HEAD = struct.pack("<HH", 0x0008, 0x1115) + b"SQ\x00\x00"


@pytest.mark.parametrize(
    ("opts", "expected"),
    [
        ((), SQ_HEAD + struct.pack("<I", 8 + len(ITEM) + 8) + ITEM_TAG + struct.pack("<I", len(ITEM)) + ITEM
         + ITEM_TAG + struct.pack("<I", 0) + LO_X),
        (("-e",), SQ_HEAD + UNDEF + ITEM_TAG + UNDEF + ITEM + ITEM_END + ITEM_TAG + UNDEF + ITEM_END + SEQ_END + LO_X),
        (("-e", "+e"), SQ_HEAD + struct.pack("<I", 8 + len(ITEM) + 8) + ITEM_TAG + struct.pack("<I", len(ITEM))
         + ITEM + ITEM_TAG + struct.pack("<I", 0) + LO_X),  # C25
        (("+e", "-e"), SQ_HEAD + UNDEF + ITEM_TAG + UNDEF + ITEM + ITEM_END + ITEM_TAG + UNDEF + ITEM_END + SEQ_END + LO_X),
        (("--length-undefined", "+ti"), struct.pack("<HH", 0x0008, 0x1115) + UNDEF + ITEM_TAG + UNDEF
         + struct.pack("<HHI", 0x0008, 0x1150, 4) + b"1.2\x00" + ITEM_END + ITEM_TAG + UNDEF + ITEM_END + SEQ_END
         + struct.pack("<HHI", 0x0010, 0x0020, 2) + b"x "),  # W5
    ],
    ids=["default", "-e", "-e+e", "+e-e", "-e+ti"],
)  # fmt: skip
def test_sequence_lengths(tmp_path: Path, opts: tuple[str, ...], expected: bytes) -> None:
    assert ok(j2d(tmp_path, NESTED, "-F", *opts)).data == expected


@pytest.mark.parametrize("opts", [("-e",), ("+e",)])
def test_sequence_lengths_nested_and_empty(tmp_path: Path, opts: tuple[str, ...]) -> None:
    doc = {"00081115": sq({"00081199": sq({"00081150": ui("1.2")})}), "00082112": sq()}
    run = ok(j2d(tmp_path, doc, *opts))
    ds = run.ds()
    assert ds[0x00081115][0][0x00081199][0][0x00081150].value == "1.2"
    assert len(ds[0x00082112].value) == 0
    empty = struct.pack("<HH", 0x0008, 0x2112) + b"SQ\x00\x00"
    body = run.body()
    assert body.endswith(empty + (UNDEF + SEQ_END if opts == ("-e",) else b"\x00" * 4))
    if opts == ("-e",):
        assert body.count(SEQ_END) == 3 and body.count(ITEM_END) == 2


# -- +c / -c (CONTRACT §7; H table; PS3.5 6.1, Annex H) ------------------------------------

SCS = 0x00080005
CAFE = "café"


def _chars(run: Run) -> dict[int, tuple[str, bytes]]:
    return parse_elements(run.body(), EXPLICIT)


@pytest.mark.parametrize(
    ("doc", "opts", "scs", "lo_bytes"),
    [
        ({"00080005": cs("ISO_IR 100"), "00100020": lo(CAFE)}, (), b"ISO_IR 100", b"caf\xe9"),  # H4
        ({"00080005": cs("ISO_IR 100"), "00100020": lo(CAFE)}, ("+c",), b"ISO_IR 100", b"caf\xe9"),
        (
            {"00080005": cs("ISO_IR 100"), "00100020": lo(CAFE)},
            ("-c", "+c"),
            b"ISO_IR 100",
            b"caf\xe9",
        ),  # C23
        (
            {"00080005": cs("ISO_IR 100"), "00100020": lo(CAFE)},
            ("+c", "-c"),
            b"ISO_IR 192",
            b"caf\xc3\xa9 ",
        ),  # C23
        (
            {"00080005": cs("ISO_IR 100"), "00100020": lo(CAFE)},
            ("--charset-utf8",),
            b"ISO_IR 192",
            b"caf\xc3\xa9 ",
        ),
        (
            {"00080005": cs("ISO_IR 100"), "00100020": lo(CAFE)},
            ("--charset-replace",),
            b"ISO_IR 192",
            b"caf\xc3\xa9 ",
        ),
        (
            {"00080005": cs("ISO_IR 192"), "00100020": lo(CAFE)},
            ("-c", "--charset-convert"),
            b"ISO_IR 192",
            b"caf\xc3\xa9 ",
        ),
        ({"00080005": cs("ISO_IR 100"), "00100020": lo("cafe")}, (), b"ISO_IR 100", b"cafe"),  # H5
        (
            {"00080005": cs("ISO_IR 192"), "00100020": lo("中")},
            (),
            b"ISO_IR 192",
            "中".encode() + b" ",
        ),  # H8
        (
            {"00080005": cs("ISO_IR 192 "), "00100020": lo("中")},
            (),
            b"ISO_IR 192",
            "中".encode() + b" ",
        ),  # H15
        ({"00080005": cs("GB18030"), "00100020": lo("中")}, (), b"GB18030 ", b"\xd6\xd0"),  # H16
        (
            {"00080005": cs("ISO_IR 144"), "00100020": lo("Ж")},
            (),
            b"ISO_IR 144",
            b"\xb6 ",
        ),  # ISO 8859-5
        ({"00100020": lo("abc")}, ("-c",), b"ISO_IR 192", b"abc "),  # H12
        (
            {"00080005": cs("FOOBAR"), "00100020": lo(CAFE)},
            ("-c",),
            b"ISO_IR 192",
            b"caf\xc3\xa9 ",
        ),  # H11
        (
            {"00080005": cs("ISO 2022 IR 6", "ISO 2022 IR 87"), "00100020": lo("abc")},
            ("-c",),
            b"ISO_IR 192",
            b"abc ",
        ),  # H10
        ({"00100020": lo("abc")}, (), None, b"abc "),  # H1
    ],
)
def test_charset(
    tmp_path: Path, doc: dict[str, Any], opts: tuple[str, ...], scs: bytes | None, lo_bytes: bytes
) -> None:
    run = ok(j2d(tmp_path, doc, *opts))
    elements = _chars(run)
    if scs is None:
        assert SCS not in elements
    else:
        assert elements[SCS] == ("CS", scs)
    assert elements[0x00100020] == ("LO", lo_bytes)


def test_charset_undeclared_non_ascii(tmp_path: Path) -> None:
    # H2: the manual page's warning; text written as UTF-8; no (0008,0005) added
    run = ok(j2d(tmp_path, {"00100020": lo(CAFE)}))
    assert "does not specify a character set" in run.stderr and run.stderr.startswith("W: ")
    elements = _chars(run)
    assert SCS not in elements
    assert elements[0x00100020] == ("LO", b"caf\xc3\xa9 ")


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"00080005": cs("ISO_IR 100"), "00100020": lo("中")}, "(0010,0020)"),  # H6: never a '?'
        (
            {
                "00080005": cs("ISO_IR 100"),
                "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Ωmega"}]},
            },
            "(0010,0010)",
        ),
        (
            {
                "00080005": cs("ISO_IR 100"),
                "00101002": sq({"00100020": lo("ok")}, {"00100020": lo("€")}),
            },
            "(0010,1002)[2].(0010,0020)",
        ),
        ({"00080005": cs("ISO_IR 6"), "00100020": lo(CAFE)}, "(0010,0020)"),  # H7
        ({"00080005": cs("FOOBAR"), "00100020": lo(CAFE)}, "FOOBAR"),  # H11: unknown term
    ],
    ids=["han-in-latin1", "pn", "nested", "ir6", "unknown-term"],
)
def test_charset_unrepresentable(tmp_path: Path, doc: dict[str, Any], path: str) -> None:
    run = j2d(tmp_path, doc)
    assert run.rc == 65, run.stderr
    assert path in run.stderr and "E: " in run.stderr
    assert not run.out.exists()
    # +E does not make it a '?'
    assert j2d(tmp_path, doc, "+E").rc == 65


def test_charset_iso2022_japanese(tmp_path: Path) -> None:
    # PS3.5 H.3.1 example 1: "\ISO 2022 IR 87"; each component group and value delimiter
    # returns to ASCII (ESC ( B) before '^' and '=' (PS3.5 6.1.2.5.3)
    esc_jis, esc_ascii = b"\x1b$B", b"\x1b(B"
    expected = (
        b"Yamada^Tarou="
        + esc_jis + b";3ED" + esc_ascii + b"^" + esc_jis + b"B@O:" + esc_ascii
        + b"=" + esc_jis + b"$d$^$@" + esc_ascii + b"^" + esc_jis + b"$?$m$&" + esc_ascii
    )  # fmt: skip
    # the JIS X 0208 codes of the standard's example, checked against Python's own codec
    assert "山田".encode("iso2022_jp") == esc_jis + b";3ED" + esc_ascii
    doc = {
        "00080005": cs("", "ISO 2022 IR 87"),
        "00100010": {
            "vr": "PN",
            "Value": [
                {
                    "Alphabetic": "Yamada^Tarou",
                    "Ideographic": "山田^太郎",
                    "Phonetic": "やまだ^たろう",
                }
            ],
        },
    }
    elements = _chars(ok(j2d(tmp_path, doc)))
    assert elements[SCS] == ("CS", b"\\ISO 2022 IR 87 ")
    value = elements[0x00100010][1]
    assert value.rstrip(b" ") == expected
    assert len(value) % 2 == 0


def test_charset_iso2022_latin1(tmp_path: Path) -> None:
    # PS3.5 6.1.2.5: with code extensions, G1 is designated by ESC - A before the Latin-1 byte
    doc = {"00080005": cs("ISO 2022 IR 6", "ISO 2022 IR 100"), "00100020": lo(CAFE)}
    elements = _chars(ok(j2d(tmp_path, doc)))
    assert elements[0x00100020][1].rstrip(b" ") in (b"caf\x1b-A\xe9", b"\x1b-Acaf\xe9")


@pytest.mark.parametrize(
    "terms",
    [["", "ISO 2022 IR 87"], ["ISO 2022 IR 6", "ISO 2022 IR 87"]],
    ids=["empty-first", "ir6-first"],
)
def test_charset_iso2022_default_is_ascii(tmp_path: Path, terms: list[str]) -> None:
    # PS3.3 C.12.1.1.2: an empty first value is ISO 2022 IR 6, i.e. ASCII (ISO 646); 'é' is
    # in neither repertoire and must not come out as a Latin-1 byte
    doc = {"00080005": cs(*terms), "00100020": lo(CAFE)}
    run = j2d(tmp_path, doc)
    assert run.rc == 65, run.stderr
    assert "(0010,0020)" in run.stderr


@pytest.mark.parametrize(
    ("top", "item", "top_bytes", "item_bytes"),
    [
        # CONTRACT §7 / PS3.5 6.1.2.5.3: an item's own (0008,0005) governs that item
        ("ISO_IR 100", "ISO_IR 192", b"caf\xe9", "中".encode() + b" "),
        ("ISO_IR 192", "ISO_IR 100", b"caf\xc3\xa9 ", b"caf\xe9"),
        ("ISO_IR 100", None, b"caf\xe9", b"caf\xe9"),  # no own declaration: the enclosing one
    ],
)
def test_charset_item_declaration(
    tmp_path: Path, top: str, item: str | None, top_bytes: bytes, item_bytes: bytes
) -> None:
    item_doc: dict[str, Any] = {"00100020": lo("中" if item == "ISO_IR 192" else CAFE)}
    if item is not None:
        item_doc["00080005"] = cs(item)
    doc = {"00080005": cs(top), "00100020": lo(CAFE), "00101002": sq(item_doc)}
    run = ok(j2d(tmp_path, doc, "-F"))
    data = run.data
    assert (
        struct.pack("<HH", 0x0010, 0x0020) + b"LO" + struct.pack("<H", len(top_bytes)) + top_bytes
        in data
    )
    assert (
        struct.pack("<HH", 0x0010, 0x0020) + b"LO" + struct.pack("<H", len(item_bytes)) + item_bytes
        in data
    )


def test_charset_only_in_item_governs_only_the_item(tmp_path: Path) -> None:
    # CONTRACT §7 over DCMTK's H14: the top level has no declaration, so its text stays UTF-8
    doc = {
        "00100020": lo(CAFE),
        "00101002": sq({"00080005": cs("ISO_IR 100"), "00100020": lo(CAFE)}),
    }
    run = ok(j2d(tmp_path, doc, "-F"))
    assert run.data.startswith(struct.pack("<HH", 0x0010, 0x0020) + b"LO\x06\x00caf\xc3\xa9 ")
    assert b"LO\x04\x00caf\xe9" in run.data


# -- logging: -q / -v / -d / -ll / -lc (C13, C19, C24, §1.2) -------------------------------

WARNING_DOC = {"00100020": {"Value": ["x"]}}  # a missing vr: one W: line
ERROR_DOC = '{"00100020":{"vr":"LO","Value":["X"],"foo":1}}'  # C24: exit 65 with an E: line
UID_DOC = {**M17, "00100020": {"Value": ["x"]}}  # +Ug: I: lines, and one W: line
LATIN1_DOC = {"00080005": cs("ISO_IR 100"), "00100020": lo("x")}  # -c -d: a D: line (H10)


@pytest.mark.parametrize(
    ("opts", "doc", "rc", "present", "absent"),
    [
        ((), WARNING_DOC, 0, ["W: "], ["I: ", "D: "]),
        (("-q",), WARNING_DOC, 0, [], ["W: ", "E: "]),
        (("-q",), ERROR_DOC, 65, [], ["E: ", "W: "]),  # C24
        (("--quiet",), ERROR_DOC, 65, [], ["E: "]),
        (("-v", "-q"), WARNING_DOC, 0, [], ["W: ", "I: "]),  # C19
        (
            ("-q", "-v", "+Ug"),
            UID_DOC,
            0,
            ["I: generating new Series Instance UID", "W: "],
            ["D: "],
        ),
        (("-v", "+Ug"), UID_DOC, 0, ["I: generating new Series Instance UID"], ["D: "]),
        (("--verbose", "+Ug"), UID_DOC, 0, ["I: generating new Series Instance UID"], ["D: "]),
        (("+Ug",), UID_DOC, 0, ["W: "], ["I: "]),
        (("-d", "-c"), LATIN1_DOC, 0, ["D: ", "other than UTF-8"], []),  # H10
        (("-v", "-c"), LATIN1_DOC, 0, [], ["D: "]),
        (("--debug", "+Ug"), UID_DOC, 0, ["I: generating new Series Instance UID", "W: "], []),
        (("-ll", "error"), WARNING_DOC, 0, [], ["W: "]),
        (("-ll", "error"), ERROR_DOC, 65, ["E: "], []),
        (("-ll", "fatal"), ERROR_DOC, 65, [], ["E: "]),
        (
            ("-ll", "info", "+Ug"),
            UID_DOC,
            0,
            ["I: generating new Series Instance UID", "W: "],
            ["D: "],
        ),
        (("--log-level", "warn"), WARNING_DOC, 0, ["W: "], ["I: "]),
        (("-ll", "debug", "-c"), LATIN1_DOC, 0, ["D: "], []),
        (("-ll", "trace", "-c"), LATIN1_DOC, 0, ["D: "], []),
    ],
)
def test_logging_levels(
    tmp_path: Path, opts: tuple[str, ...], doc: Any, rc: int, present: list[str], absent: list[str]
) -> None:
    run = j2d(tmp_path, doc, *opts)
    assert run.rc == rc, run.stderr
    for p in present:
        assert p in run.stderr, run.stderr
    for a in absent:
        assert a not in run.stderr, run.stderr
    assert run.stdout == ""


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (
            ("-ll", "warn", "-v"),
            "error: --log-level not allowed with --verbose, --debug or --quiet",
        ),  # C13
        (("-ll", "bogus"), "error: Invalid log level for --log-level option"),  # C13
        (("-lc", "nonexistent.cfg"), "nonexistent.cfg"),
    ],
)
def test_logging_option_errors(tmp_path: Path, opts: tuple[str, ...], message: str) -> None:
    run = j2d(tmp_path, MIN, *opts)
    assert run.rc == 1, run.stderr
    assert message in run.stderr
    assert not run.out.exists()


def test_log_config_file(tmp_path: Path) -> None:
    # -lc: a log4cplus configuration sending everything from INFO up to a file
    log = tmp_path / "json2dcm.log"
    cfg = tmp_path / "logger.cfg"
    cfg.write_text(
        "log4cplus.rootLogger = INFO, file\n"
        "log4cplus.appender.file = log4cplus::FileAppender\n"
        f"log4cplus.appender.file.File = {log}\n"
        "log4cplus.appender.file.layout = log4cplus::PatternLayout\n"
        "log4cplus.appender.file.layout.ConversionPattern = %P: %m%n\n"
    )
    doc = {**M17, "00100020": {"Value": ["x"]}}
    run = ok(j2d(tmp_path, doc, "-lc", str(cfg), "+Ug"))
    reset_logging()
    logged = log.read_text()
    assert "I: generating new Series Instance UID" in logged
    assert "W: " in logged
    assert "W: " not in run.stderr
    # a file without log4cplus.rootLogger, and -lc with -v, are command-line errors
    bad = tmp_path / "bad.cfg"
    bad.write_text("nothing = here\n")
    assert j2d(tmp_path, MIN, "-lc", str(bad)).rc == 1
    assert j2d(tmp_path, MIN, "-lc", str(cfg), "-v").rc == 1


def test_log_config_python_ini(tmp_path: Path) -> None:
    log = tmp_path / "py.log"
    ini = tmp_path / "logging.ini"
    ini.write_text(
        "[loggers]\nkeys=root\n[handlers]\nkeys=f\n[formatters]\nkeys=p\n"
        "[logger_root]\nlevel=WARNING\nhandlers=f\n"
        f"[handler_f]\nclass=FileHandler\nformatter=p\nargs=({str(log)!r},)\n"
        "[formatter_p]\nformat=%(levelname)s %(message)s\n"
    )
    ok(j2d(tmp_path, WARNING_DOC, "-lc", str(ini)))
    reset_logging()
    assert "WARNING" in log.read_text()


# -- --arguments, @file, '-', --version, -h, no arguments (C1-C18) ---------------------------


def test_arguments_option(tmp_path: Path) -> None:
    # C16: options expanded to their long names, in command-line order, forced INFO
    write_doc(tmp_path / "min.json", MIN)
    (tmp_path / "cmd.txt").write_text('-F "min.json"  out_cmdfile.dcm\n')
    stderr = io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        rc = main(["@cmd.txt", "--arguments"], stdout=io.StringIO(), stderr=stderr)
    finally:
        os.chdir(cwd)
        reset_logging()
    assert rc == 0
    assert (
        "with 4 arguments: '--write-dataset' 'min.json' 'out_cmdfile.dcm' '--arguments'"
        in stderr.getvalue()
    )
    assert stderr.getvalue().startswith("I: calling '")
    assert (tmp_path / "out_cmdfile.dcm").read_bytes() == MIN_DATASET


@pytest.mark.parametrize(
    ("content", "extra"),
    [
        ('-F "{d}/in put.json"  "{d}/out.dcm"', ()),  # quotes group, runs of whitespace
        ("-F '{d}/in put.json'\n\n\t{d}/out.dcm", ()),  # single quotes, newlines
        ('"{d}/in put.json"', ("-F", "{d}/out.dcm")),  # mixed with real arguments
        ("-F\n+tb\n+te", ("{d}/in put.json", "{d}/out.dcm")),  # options only; rightmost wins
    ],
)
def test_command_file(tmp_path: Path, content: str, extra: tuple[str, ...]) -> None:
    write_doc(tmp_path / "in put.json", MIN)
    cmd = tmp_path / "cmd.txt"
    cmd.write_text(content.format(d=tmp_path))
    args = [f"@{cmd}", *(e.format(d=tmp_path) for e in extra)]
    rc = main(args, stdout=io.StringIO(), stderr=io.StringIO())
    reset_logging()
    assert rc == 0
    assert (tmp_path / "out.dcm").read_bytes() == MIN_DATASET


def test_command_file_no_escapes_no_nesting(tmp_path: Path) -> None:
    # §1.3: no escapes (a backslash is an ordinary character), no nested command files
    write_doc(tmp_path / "in.json", MIN)
    (tmp_path / "inner.txt").write_text("-F")
    cmd = tmp_path / "cmd.txt"
    cmd.write_text(f"-F {tmp_path}/in.json {tmp_path}/o\\ut.dcm")
    assert main([f"@{cmd}"], stdout=io.StringIO(), stderr=io.StringIO()) == 0
    reset_logging()
    assert (tmp_path / "o\\ut.dcm").read_bytes() == MIN_DATASET
    cmd.write_text(f"@{tmp_path}/inner.txt {tmp_path}/in.json {tmp_path}/out.dcm")
    stderr = io.StringIO()
    rc = main([f"@{cmd}"], stdout=io.StringIO(), stderr=stderr)
    reset_logging()
    assert rc == 1  # '@inner.txt' stays a parameter: three parameters
    assert "error: Too many parameters" in stderr.getvalue()


def test_command_file_missing(tmp_path: Path) -> None:
    stderr = io.StringIO()
    assert main([f"@{tmp_path}/nofile.txt"], stdout=io.StringIO(), stderr=stderr) == 1  # C14
    assert f"error: Cannot open command file '{tmp_path}/nofile.txt'" in stderr.getvalue()


def _console(
    args: list[str], stdin: bytes = b"", env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [JSON2DCM, *args], input=stdin, capture_output=True, env=env, cwd=cwd, timeout=60
    )


def test_stdin_stdout(tmp_path: Path) -> None:
    data = json.dumps(MIN).encode()
    res = _console(["-F", "-", "-"], data)  # C17
    assert res.returncode == 0 and res.stdout == MIN_DATASET
    res = _console(["-", "-"], data)
    assert res.returncode == 0
    assert res.stdout[:132] == b"\x00" * 128 + b"DICM"
    assert split_file(res.stdout)[1] == MIN_DATASET
    res = _console(["-F", "-", str(tmp_path / "o.dcm")], data)
    assert res.returncode == 0 and (tmp_path / "o.dcm").read_bytes() == MIN_DATASET
    write_doc(tmp_path / "in.json", MIN)
    res = _console(["+tb", "-F", str(tmp_path / "in.json"), "-"])
    assert res.returncode == 0 and res.stdout == bytes.fromhex("00100010504e00024120")
    assert res.stderr == b""


def test_stdout_large_deflated(tmp_path: Path) -> None:
    res = _console(["+td", "-", "-"], json.dumps(W_DOC).encode())
    assert res.returncode == 0, res.stderr
    body = split_file(res.stdout)[1]
    assert b"x" * 2000 in zlib.decompressobj(-zlib.MAX_WBITS).decompress(body)


@pytest.mark.parametrize("args", [["--version"], ["min.json", "a.dcm", "--version"]])  # C18
def test_version(tmp_path: Path, args: list[str]) -> None:
    res = _console(args, cwd=tmp_path)
    assert res.returncode == 0
    out = res.stdout.decode()
    assert "json2dcm" in out and "External libraries used:" in out
    assert not (tmp_path / "a.dcm").exists()


ALL_OPTIONS = [
    ("-h", "--help"), ("", "--version"), ("", "--arguments"), ("-q", "--quiet"), ("-v", "--verbose"),
    ("-d", "--debug"), ("-ll", "--log-level"), ("-lc", "--log-config"), ("+f", "--read-meta-info"),
    ("-f", "--ignore-meta-info"), ("+Ug", "--generate-new-uids"), ("-Uo", "--dont-overwrite-uids"),
    ("+Uo", "--overwrite-uids"), ("+Bu", "--parse-bulkdata-uri"), ("-Bu", "--ignore-bulkdata-uri"),
    ("+Bd", "--add-bulkdata-dir"), ("-ar", "--array-reject"), ("+as", "--array-select"),
    ("+ar", "--array-sequence"), ("+F", "--write-file"), ("-F", "--write-dataset"),
    ("+Fu", "--update-meta-info"), ("+t=", "--write-xfer-same"), ("+te", "--write-xfer-little"),
    ("+tb", "--write-xfer-big"), ("+ti", "--write-xfer-implicit"), ("+td", "--write-xfer-deflated"),
    ("-E", "--stop-on-error"), ("+E", "--ignore-errors"), ("+u", "--enable-new-vr"),
    ("-u", "--disable-new-vr"), ("+e", "--length-explicit"), ("-e", "--length-undefined"),
    ("+c", "--charset-accept"), ("-c", "--charset-replace"), ("+cl", "--compression-level"),
]  # fmt: skip


@pytest.mark.parametrize(
    "args", [["-h"], ["--help"], ["--help", "min.json"], ["min.json", "-h", "x"], []]
)
def test_help_and_no_arguments(args: list[str]) -> None:
    # C5, C6: usage on stdout, exit 0, nothing on stderr; every option of the manual page
    stdout, stderr = io.StringIO(), io.StringIO()
    assert main(args, stdout=stdout, stderr=stderr) == 0
    usage = stdout.getvalue()
    assert stderr.getvalue() == ""
    assert "jsonfile-in" in usage and "dcmfile-out" in usage
    for short, long in ALL_OPTIONS:
        assert re.search(rf"(^|\s){re.escape(long)}(\s|$)", usage, re.MULTILINE), long
        if short:
            assert re.search(rf"(^|\s){re.escape(short)}\s", usage, re.MULTILINE), short


def test_option_aliases_and_long_names(tmp_path: Path) -> None:
    # every long spelling is accepted where it is the same as the short one
    run = ok(j2d(tmp_path, MIN, "--write-dataset", "--write-xfer-implicit", "--length-undefined", "--disable-new-vr",
                 "--ignore-errors", "--ignore-meta-info", "--parse-bulkdata-uri", "--array-reject", "--charset-accept"))  # fmt: skip
    assert run.data == bytes.fromhex("10001000020000004120")


# -- rightmost wins, one row per family (C19-C26, A13, A14, W6) -------------------------------


@pytest.mark.parametrize(
    ("doc", "first", "second"),
    [
        ({**META, **DS}, "+f", "-f"),
        ({**META, **DS}, "-f", "+f"),
        (M17, "-Uo", "+Uo"),
        (ARR, "+ar", "-ar"),
        (ARR, "-ar", "+ar"),
        ({"00100020": lo("x")}, "+F", "-F"),
        ({"00100020": lo("x")}, "+te", "+tb"),
        ({"00100020": lo("x")}, "+tb", "+ti"),
        ({"00081115": sq({})}, "+e", "-e"),
        ({"00091002": {"vr": "UN", "InlineBinary": "AQI="}}, "+u", "-u"),
        ({"00080005": cs("ISO_IR 100"), "00100020": lo(CAFE)}, "+c", "-c"),
        ('{"00100020":{"vr":"LO","Value":["x"]},"00100020":{"vr":"LO","Value":["y"]}}', "-E", "+E"),
        ({"00420011": {"vr": "OB", "BulkDataURI": "http://x"}}, "+Bu", "-Bu"),
    ],
)
def test_rightmost_wins(tmp_path: Path, doc: Any, first: str, second: str) -> None:
    # the run with "first second" equals the run with "second" alone, and differs from "first"
    extra = ("+Ug",) if "Uo" in first else ()
    fixed = ("-F",) if first not in ("+F", "-F", "+f", "-f") and "Uo" not in first else ()
    both = j2d(tmp_path, doc, *extra, *fixed, first, second, out="both.dcm")
    alone = j2d(tmp_path, doc, *extra, *fixed, second, out="alone.dcm")
    other = j2d(tmp_path, doc, *extra, *fixed, first, out="other.dcm")
    assert both.rc == alone.rc
    if both.rc == 0:
        assert _comparable(both) == _comparable(alone)
    assert (other.rc, _comparable(other) if other.rc == 0 else b"") != (
        both.rc,
        _comparable(both) if both.rc == 0 else b"",
    )


def _comparable(run: Run) -> bytes:
    """The output; for a file, its elements with generated UIDs masked (lengths vary)."""
    data = run.data
    if data[128:132] != b"DICM":
        return data
    ds = run.ds()
    shown = repr(ds.file_meta) + "\n" + repr(ds)
    shown = re.sub(r"2\.25\.[0-9]+", "2.25.X", shown)
    # a generated UID has 37-39 digits: the meta group length follows it
    return re.sub(r"(File Meta Information Group Length\s+UL: )\d+", r"\1N", shown).encode()


# -- DCMDICTPATH (CONTRACT §1) ----------------------------------------------------------------


def test_dcmdictpath_private_entry(tmp_path: Path) -> None:
    dic = tmp_path / "private.dic"
    dic.write_text(
        "# DCMTK format: tag, VR, keyword, VM, version\n"
        '(0009,"ACME 1.0",02)\tUS\tAcmeCount\t1\tprivate\n'
        '(0009,"ACME 1.0",03)\tFD\tAcmeFactor\t1\tprivate\n'
        "(0051,1001)\tSL\tCreatorlessPrivate\t1\tprivate\n"
    )
    doc = {
        "00091002": {"Value": [5]},  # the creator comes later in the JSON
        "00091103": {"Value": [2.5]},  # block 11: creator (0009,0011)
        "00090010": lo("ACME 1.0"),
        "00090011": lo("ACME 1.0"),
        "00511001": {"Value": [-7]},
    }
    write_doc(tmp_path / "in.json", doc)
    env = {**os.environ, "DCMDICTPATH": f"{tmp_path}/missing.dic:{dic}"}
    res = _console(["-F", str(tmp_path / "in.json"), str(tmp_path / "out.dcm")], env=env)
    assert res.returncode == 0, res.stderr
    assert b"missing.dic" in res.stderr  # a path that cannot be loaded is a warning
    elements = parse_elements((tmp_path / "out.dcm").read_bytes(), EXPLICIT)
    assert elements[0x00091002] == ("US", struct.pack("<H", 5))
    assert elements[0x00091103] == ("FD", struct.pack("<d", 2.5))
    assert elements[0x00511001] == ("SL", struct.pack("<i", -7))
    # without the dictionary the tags are unknown: an error under -E (CONTRACT §4)
    env.pop("DCMDICTPATH")
    res = _console([str(tmp_path / "in.json"), str(tmp_path / "out2.dcm")], env=env)
    assert res.returncode == 65 and b"(0009,1002)" in res.stderr


def test_dcmdictpath_wrong_creator_not_used(tmp_path: Path) -> None:
    dic = tmp_path / "private.dic"
    dic.write_text('(0009,"ACME 1.0",02)\tUS\tAcmeCount\t1\tprivate\n')
    write_doc(tmp_path / "in.json", {"00090010": lo("OTHER"), "00091002": {"Value": [5]}})
    res = _console(
        [str(tmp_path / "in.json"), str(tmp_path / "out.dcm")],
        env={**os.environ, "DCMDICTPATH": str(dic)},
    )
    assert res.returncode == 65
    assert not (tmp_path / "out.dcm").exists()
