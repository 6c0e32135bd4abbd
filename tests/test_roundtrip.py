"""Round trip of pydicom's bundled test files: DICOM -> DICOM JSON -> json2dcm -> compare.

Every file under ``pydicom/data/test_files`` and ``pydicom/data/charset_files`` that is on
disk in the installed package (nothing is downloaded) goes through:

1. ``pydicom.dcmread`` (the original);
2. pydicom's ``Dataset.to_json_dict()`` for the dataset, plus the file meta information as
   top-level group 0002 elements (as dcm2json writes them when asked to include the meta
   header), so that ``+t=`` reproduces the transfer syntax; then ``json.dumps``;
3. ``json2dcm`` (in-process ``streamconv.cli.main``; the ``SUBPROCESS_FILES`` as real
   subprocesses of the installed command);
4. ``pydicom.dcmread`` of the output, compared element by element with the original: tag,
   VR and value, sequences recursively, Pixel Data bytes, the file meta information and the
   transfer syntax (and how the dataset is really encoded).

Modes: ``inline`` (every binary value as InlineBinary), ``bulk`` (values of 256 bytes or
more as ``file:`` BulkDataURIs with ``?offset=N&length=M`` into one bulk file per test
file, converted with ``+Bd``) and ``big`` (inline, written with ``+tb``).

pydicom's JSON quirks and what the comparison does about them:

- binary values of big endian files are handed over as stored; PS3.18 F.2.7 wants little
  endian, so the builder swaps OW/OF/OL/OD/OV words (pydicom's own writer does not);
- DS and IS become JSON numbers (floats and ints), so they are compared as numbers, not text;
- PN component groups become objects; a trailing empty group ('=') is not kept (DCMTK);
- group length elements (gggg,0000) are dropped by json2dcm (as by DCMTK) and not compared;
- odd-length values of non-conformant originals are padded to even length on output;
- ambiguous VRs ('US or SS', 'OB or OW') are resolved by pydicom while reading.

Files skipped, with the reason: ``SKIPPED`` below (``test_skip_table`` checks each reason);
single elements left out: ``ELEMENT_SKIPS``.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pydicom
import pydicom.data
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import UID

from streamconv.cli import main

DATA = Path(pydicom.data.__file__).parent
ROOTS = ("test_files", "charset_files")

NOT_DICOM = "not a DICOM file (documentation, ICC profile, JSON, dump or gzip)"
ENCAPSULATED = (
    "encapsulated (compressed) Pixel Data: the DICOM JSON model has no fragments (PS3.18 F.2.7)"
)

# file (relative to pydicom/data) -> why it is not round-tripped
SKIPPED: dict[str, str] = {
    "test_files/README.txt": NOT_DICOM,
    "test_files/crayons.icc": NOT_DICOM,
    "test_files/test1.json": NOT_DICOM,
    "test_files/test_PN.json": NOT_DICOM,
    "test_files/rtplan.dump": NOT_DICOM,
    "test_files/rtstruct.dump": NOT_DICOM,
    "test_files/zipMR.gz": NOT_DICOM,
    "test_files/dicomdirtests/README.txt": NOT_DICOM,
    "test_files/dicomdirtests/TINY_ALPHA/README": NOT_DICOM,
    "charset_files/FileInfo.txt": NOT_DICOM,
    "test_files/693_J2KI.dcm": ENCAPSULATED,
    "test_files/GDCMJ2K_TextGBR.dcm": ENCAPSULATED,
    "test_files/J2K_pixelrep_mismatch.dcm": ENCAPSULATED,
    "test_files/JPEG-lossy.dcm": ENCAPSULATED,
    "test_files/JPEG2000-embedded-sequence-delimiter.dcm": ENCAPSULATED,
    "test_files/JPEG2000.dcm": ENCAPSULATED,
    "test_files/JPEGLSNearLossless_08.dcm": ENCAPSULATED,
    "test_files/JPEGLSNearLossless_16.dcm": ENCAPSULATED,
    "test_files/JPGExtended.dcm": ENCAPSULATED,
    "test_files/MR_small_RLE.dcm": ENCAPSULATED,
    "test_files/MR_small_jp2klossless.dcm": ENCAPSULATED,
    "test_files/MR_small_jpeg_ls_lossless.dcm": ENCAPSULATED,
    "test_files/SC_jpeg_no_color_transform.dcm": ENCAPSULATED,
    "test_files/SC_jpeg_no_color_transform_2.dcm": ENCAPSULATED,
    "test_files/SC_rgb_dcmtk_+eb+cr.dcm": ENCAPSULATED,
    "test_files/SC_rgb_dcmtk_+eb+cy+n1.dcm": ENCAPSULATED,
    "test_files/SC_rgb_dcmtk_+eb+cy+n2.dcm": ENCAPSULATED,
    "test_files/SC_rgb_dcmtk_+eb+cy+np.dcm": ENCAPSULATED,
    "test_files/SC_rgb_dcmtk_+eb+cy+s2.dcm": ENCAPSULATED,
    "test_files/SC_rgb_dcmtk_+eb+cy+s4.dcm": ENCAPSULATED,
    "test_files/SC_rgb_gdcm_KY.dcm": ENCAPSULATED,
    "test_files/SC_rgb_jls_lossy_line.dcm": ENCAPSULATED,
    "test_files/SC_rgb_jls_lossy_sample.dcm": ENCAPSULATED,
    "test_files/SC_rgb_jpeg.dcm": ENCAPSULATED,
    "test_files/SC_rgb_jpeg_app14_dcmd.dcm": ENCAPSULATED,
    "test_files/SC_rgb_jpeg_dcmtk.dcm": ENCAPSULATED,
    "test_files/SC_rgb_jpeg_gdcm.dcm": ENCAPSULATED,
    "test_files/SC_rgb_jpeg_lossy_gdcm.dcm": ENCAPSULATED,
    "test_files/SC_rgb_rle.dcm": ENCAPSULATED,
    "test_files/SC_rgb_rle_16bit.dcm": ENCAPSULATED,
    "test_files/SC_rgb_rle_16bit_2frame.dcm": ENCAPSULATED,
    "test_files/SC_rgb_rle_2frame.dcm": ENCAPSULATED,
    "test_files/SC_rgb_rle_32bit.dcm": ENCAPSULATED,
    "test_files/SC_rgb_rle_32bit_2frame.dcm": ENCAPSULATED,
    "test_files/SC_rgb_small_odd_jpeg.dcm": ENCAPSULATED,
    "test_files/examples_jpeg2k.dcm": ENCAPSULATED,
    "test_files/examples_ybr_color.dcm": ENCAPSULATED,
    "test_files/rtdose_rle.dcm": ENCAPSULATED,
    "test_files/rtdose_rle_1frame.dcm": ENCAPSULATED,
}

# (file, top-level element) -> why that element is left out of the JSON and the comparison
ELEMENT_SKIPS: dict[tuple[str, str], str] = {
    ("test_files/badVR.dcm", "(0028,0008)"): (
        "Number of Frames IS '1A' is not an integer string: pydicom's to_json_dict raises on it, "
        "and json2dcm -E rightly rejects it (CONTRACT §4)"
    ),
}

# file -> extra json2dcm options, and why
EXTRA_OPTIONS: dict[str, tuple[list[str], str]] = {
    "test_files/nested_priv_SQ.dcm": (
        ["-e"],
        "private sequences in Implicit VR: pydicom recognises an unknown element as a sequence "
        "only by its undefined length, so the output is written with undefined lengths",
    ),
}

# Files that round-trip, but are odd (for the reader of a failure):
# - no_meta.dcm: pydicom cannot parse it (its first byte is missing), it reads one 38863-byte
#   UN element (0820,0500); that blob is what goes round.  Odd-length values like this one
#   (and (0001,0002) of meta_missing_tsyntax.dcm) are padded to even length on output
#   (PS3.5 7.1.1), so the comparison pads the original the same way.
# - ExplVR_BigEndNoMeta.dcm, ExplVR_LitEndNoMeta.dcm, no_meta.dcm, rtstruct.dcm,
#   meta_missing_tsyntax.dcm: no (0002,0010), so the output is Explicit VR Little Endian.


def _all_files() -> list[str]:
    out = []
    for root in ROOTS:
        for dirpath, dirnames, filenames in os.walk(DATA / root):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                out.append((Path(dirpath) / name).relative_to(DATA).as_posix())
    return sorted(out)


ALL_FILES = _all_files()
ROUND_TRIP = [f for f in ALL_FILES if f not in SKIPPED]

NATIVE_TS = {
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
}
BULK_MIN = 256  # bulk mode: values of at least this many bytes go to the bulk file
# VRs whose binary values PS3.18 F.2.7 defines as little endian words of this size
WORD = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}
PACK = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "UV": "Q", "SV": "q", "FL": "f", "FD": "d"}
TEXT_BULK_VRS = {"LT", "ST", "UT", "UC"}


# -- reading -------------------------------------------------------------------------------


def _read(path: Path) -> tuple[Dataset, list[str]]:
    """dcmread, returning the warnings it gave (pytest turns warnings into errors)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = pydicom.dcmread(path, force=True)
        # touch every element: ambiguous VRs are resolved, lazy values parsed
        _touch(ds)
    return ds, [str(w.message) for w in caught]


def _touch(ds: Dataset) -> None:
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                _touch(item)


def _little_endian(ds: Dataset) -> bool:
    enc = ds.original_encoding
    return enc[1] is not False


# -- DICOM -> DICOM JSON ---------------------------------------------------------------------


class JsonBuilder:
    """pydicom's to_json_dict, with group 0002 and either inline or bulk binary values."""

    def __init__(self, ds: Dataset, bulk_path: Path | None) -> None:
        self.ds = ds
        self.little = _little_endian(ds)
        self.bulk_path = bulk_path
        self.bulk = bytearray()
        self.values: list[tuple[str, bytes]] = []

    def _handler(self, elem: Any) -> str:
        # Called by pydicom for every non-empty binary value (threshold 0): remember it and
        # decide inline or bulk afterwards.  pydicom hands over the bytes as stored in the
        # file; PS3.18 F.2.7 wants little endian words, so big endian files are swapped here
        # (pydicom's own JSON writer does not).
        data = bytes(elem.value)
        vr = elem.VR
        if not self.little and vr in WORD:
            data = _swap(data, WORD[vr])
        self.values.append((vr, data))
        return f"@{len(self.values) - 1}"

    def build(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        meta = getattr(self.ds, "file_meta", None)
        if meta is not None and len(meta):
            doc.update(meta.to_json_dict(0, self._handler))
        doc.update(self.ds.to_json_dict(0, self._handler))
        self._finish(doc)
        return doc

    def _finish(self, obj: dict[str, Any]) -> None:
        for content in obj.values():
            uri = content.get("BulkDataURI")
            if isinstance(uri, str) and uri.startswith("@"):
                vr, data = self.values[int(uri[1:])]
                del content["BulkDataURI"]
                if self.bulk_path is not None and len(data) >= BULK_MIN:
                    content["BulkDataURI"] = self._add_bulk(data)
                else:
                    content["InlineBinary"] = base64.b64encode(data).decode("ascii")
                continue
            vr = content.get("vr")
            value = content.get("Value")
            if vr == "SQ":
                for item in value or []:
                    self._finish(item)
            elif self.bulk_path is not None and value:
                self._maybe_bulk(content, vr, value)

    def _maybe_bulk(self, content: dict[str, Any], vr: str, value: list[Any]) -> None:
        # pydicom only offers binary VRs to the bulk data handler; PS3.18 F.2.7 (and json2dcm,
        # dcmtk-behavior §6.4) also allow bulk data for the numeric VRs (little endian) and
        # text.  Text only when it is ASCII, so that no character set is involved.
        data: bytes | None = None
        if vr in PACK and None not in value:
            data = struct.pack(f"<{len(value)}{PACK[vr]}", *value)
        elif vr in TEXT_BULK_VRS and all(isinstance(v, str) and v.isascii() for v in value):
            data = "\\".join(value).encode("ascii")
        elif vr == "DS" and all(v is not None and len(repr(float(v))) <= 16 for v in value):
            data = "\\".join(repr(float(v)) for v in value).encode("ascii")
        elif vr == "IS" and None not in value:
            data = "\\".join(str(v) for v in value).encode("ascii")
        if data is not None and len(data) >= BULK_MIN:
            del content["Value"]
            content["BulkDataURI"] = self._add_bulk(data)

    def _add_bulk(self, data: bytes) -> str:
        assert self.bulk_path is not None
        offset = len(self.bulk)
        self.bulk += data
        if len(self.bulk) % 3 == 0:
            self.bulk += b"\xff"  # values need not be aligned in the bulk file
        return f"file://{self.bulk_path}?offset={offset}&length={len(data)}"

    def write_bulk(self) -> None:
        if self.bulk_path is not None:
            self.bulk_path.write_bytes(bytes(self.bulk))


def _swap(data: bytes, width: int) -> bytes:
    n = len(data) - len(data) % width
    out = bytearray(data)
    for i in range(0, n, width):
        out[i : i + width] = data[i : i + width][::-1]
    return bytes(out)


# -- comparison ------------------------------------------------------------------------------

_TEXT_VRS = {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UR", "UT", "UI"}


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "" or value == b"":
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return list(value)
    return [value]


def _num(v: Any) -> float | None:
    if v is None or v == "":
        return None
    return float(v)


def _norm_text(v: Any) -> str:
    return "" if v is None else str(v).rstrip(" \x00")


def _norm_pn(v: Any) -> str:
    # PS3.5 6.2.1.1: trailing empty component groups ('=') may be left out; json2dcm (like
    # DCMTK) writes '=' only before a non-empty group.
    return _norm_text(v).rstrip("=")


def _bytes_le(value: Any, vr: str, little: bool) -> bytes:
    data = bytes(value or b"")
    if len(data) % 2:
        data += b"\x00"  # PS3.5 7.1.1: values have even length; the output pads odd ones
    if not little and vr in WORD:
        data = _swap(data, WORD[vr])
    return data


class Comparer:
    def __init__(self, name: str, orig: Dataset, out: Dataset) -> None:
        self.name = name
        self.orig_little = _little_endian(orig)
        self.out_little = _little_endian(out)
        self.diffs: list[str] = []

    def dataset(self, a: Dataset, b: Dataset, prefix: str) -> None:
        a_tags = {int(e.tag) for e in a if e.tag.element != 0 and e.tag.group != 2}
        b_tags = {int(e.tag) for e in b if e.tag.group != 2}
        for tag in sorted(b_tags - a_tags):
            self.diffs.append(f"{prefix}{_tp(tag)}: in the output only")
        for tag in sorted(a_tags):
            path = prefix + _tp(tag)
            if (self.name, path) in ELEMENT_SKIPS:
                continue
            if tag not in b_tags:
                self.diffs.append(f"{path}: missing in the output")
                continue
            self.element(a[tag], b[tag], path)

    def element(self, ea: Any, eb: Any, path: str) -> None:
        vr = ea.VR
        if vr != eb.VR:
            self.diffs.append(f"{path}: VR {vr} became {eb.VR}")
            return
        va, vb = ea.value, eb.value
        if vr == "SQ":
            if len(va) != len(vb):
                self.diffs.append(f"{path}: {len(va)} items became {len(vb)}")
                return
            for i, (ia, ib) in enumerate(zip(va, vb, strict=True), 1):
                self.dataset(ia, ib, f"{path}[{i}].")
            return
        if vr in ("DS", "IS"):
            la = [_num(v) for v in _as_list(va)]
            lb = [_num(v) for v in _as_list(vb)]
            ok = la == lb
        elif vr == "PN":
            ok = [_norm_pn(v) for v in _as_list(va)] == [_norm_pn(v) for v in _as_list(vb)]
        elif vr in _TEXT_VRS:
            ok = [_norm_text(v) for v in _as_list(va)] == [_norm_text(v) for v in _as_list(vb)]
        elif vr in ("OB", "OW", "UN", "OF", "OD", "OL", "OV"):
            ok = _bytes_le(va, vr, self.orig_little) == _bytes_le(vb, vr, self.out_little)
        elif vr in ("FL", "FD"):
            fa, fb = _as_list(va), _as_list(vb)
            ok = len(fa) == len(fb) and all(
                x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(fa, fb, strict=True)
            )
        else:  # US SS UL SL UV SV AT
            ok = _as_list(va) == _as_list(vb)
        if not ok:
            self.diffs.append(f"{path} {vr}: {_short(va)} became {_short(vb)}")


def _tp(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) < 120 else text[:117] + "..."


# -- the test --------------------------------------------------------------------------------


def _convert_in_process(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    code = main(args, stderr=err)
    return code, err.getvalue()


def _convert_subprocess(args: list[str]) -> tuple[int, str]:
    # the installed console script when it is there, as a user runs it
    script = Path(sys.executable).parent / "json2dcm"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "streamconv", "convert"]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stderr


SUBPROCESS_FILES = {
    "test_files/CT_small.dcm",
    "test_files/MR_small_bigendian.dcm",
    "test_files/image_dfl.dcm",
    "charset_files/chrJapMulti.dcm",
}


def _round_trip(name: str, mode: str, tmp_path: Path) -> None:
    src = DATA / name
    orig, orig_warnings = _read(src)
    for (file, path), _reason in ELEMENT_SKIPS.items():
        if file == name:
            del orig[int(path[1:5] + path[6:10], 16)]
    bulk_path = tmp_path / "bulk" / "values.bin" if mode == "bulk" else None
    builder = JsonBuilder(orig, bulk_path)
    doc = builder.build()
    try:
        # three spellings of the same JSON: compact UTF-8, \u escapes, indented
        indent = 2 if mode == "big" else None
        text = json.dumps(doc, allow_nan=False, ensure_ascii=(mode == "bulk"), indent=indent)
    except ValueError as exc:
        pytest.fail(f"{name}: cannot be written as JSON: {exc}")
    json_path = tmp_path / "in.json"
    json_path.write_text(text, encoding="utf-8")
    out_path = tmp_path / "out.dcm"
    args = [str(json_path), str(out_path), *EXTRA_OPTIONS.get(name, ([], ""))[0]]
    if bulk_path is not None:
        bulk_path.parent.mkdir()
        builder.write_bulk()
        args += ["+Bd", str(bulk_path.parent)]
    expected_ts = None
    if mode == "big":
        args.append("+tb")
        expected_ts = "1.2.840.10008.1.2.2"
    convert = _convert_subprocess if name in SUBPROCESS_FILES else _convert_in_process
    code, stderr = convert(args)
    assert code == 0, f"json2dcm exit {code}:\n{stderr}"
    assert out_path.read_bytes()[:132] == b"\x00" * 128 + b"DICM"
    out, out_warnings = _read(out_path)
    new_warnings = [w for w in out_warnings if w not in orig_warnings]
    assert not new_warnings, f"reading the output: {new_warnings}"

    cmp = Comparer(name, orig, out)
    cmp.dataset(orig, out, "")
    _check_meta(orig, out, cmp.diffs, expected_ts)
    assert not cmp.diffs, f"{name} ({mode}):\n  " + "\n  ".join(cmp.diffs)


def _check_meta(orig: Dataset, out: Dataset, diffs: list[str], expected_ts: str | None) -> None:
    om = getattr(orig, "file_meta", Dataset())
    nm = out.file_meta
    ts = om.get("TransferSyntaxUID")
    if expected_ts is None:
        expected_ts = str(ts).rstrip("\x00 ") if ts else "1.2.840.10008.1.2.1"
    if nm.get("TransferSyntaxUID") != expected_ts:
        diffs.append(f"transfer syntax {nm.get('TransferSyntaxUID')} instead of {expected_ts}")
    if expected_ts in NATIVE_TS:
        uid = UID(expected_ts)
        enc = out.original_encoding
        if enc != (uid.is_implicit_VR, uid.is_little_endian):
            diffs.append(f"dataset encoded as {enc}, not as {uid.name}")
    ds_class = orig.get("SOPClassUID")
    ds_inst = orig.get("SOPInstanceUID")
    expect = {
        0x00020001: om.get("FileMetaInformationVersion") or b"\x00\x01",
        0x00020002: om.get("MediaStorageSOPClassUID") or ds_class,
        0x00020003: om.get("MediaStorageSOPInstanceUID") or ds_inst,
    }
    for tag, value in expect.items():
        got = nm.get(tag)
        got_value = got.value if got is not None else None
        if value is not None and got_value != value:
            diffs.append(f"meta {_tp(tag)}: {_short(got_value)} instead of {_short(value)}")
    for elem in om:
        if elem.tag.element == 0 or elem.tag in (
            0x00020001,
            0x00020002,
            0x00020003,
            0x00020010,
            0x00020012,
            0x00020013,
        ):
            continue
        got = nm.get(elem.tag)
        if got is None or got.value != elem.value or got.VR != elem.VR:
            diffs.append(f"meta {_tp(elem.tag)}: {_short(got)} instead of {_short(elem)}")


# inline: every binary value as InlineBinary; bulk: values of BULK_MIN bytes or more as
# file: BulkDataURIs into one bulk file; big: inline, written with +tb (byte swapping of
# every little endian JSON value)
@pytest.mark.parametrize("mode", ["inline", "bulk", "big"])
@pytest.mark.parametrize("name", ROUND_TRIP)
def test_round_trip(name: str, mode: str, tmp_path: Path) -> None:
    _round_trip(name, mode, tmp_path)


def test_skip_table() -> None:
    """Every skipped file exists and is skipped for the reason given."""
    assert len(ROUND_TRIP) > 100
    for name, reason in SKIPPED.items():
        path = DATA / name
        assert path.is_file(), name
        head = path.read_bytes()[:132]
        if reason == NOT_DICOM:
            group = int.from_bytes(head[:2], "little")
            assert path.suffix != ".dcm" and head[128:132] != b"DICM" and group not in (2, 8), name
            continue
        assert reason == ENCAPSULATED, name
        ds, _ = _read(path)
        assert UID(ds.file_meta.TransferSyntaxUID).is_encapsulated, name
        assert ds["PixelData"].is_undefined_length, name  # fragments (PS3.5 A.4)
    for file, element in ELEMENT_SKIPS:
        assert file in ROUND_TRIP and len(element) == 11, (file, element)
    assert set(EXTRA_OPTIONS) <= set(ROUND_TRIP)


@pytest.mark.parametrize("xfer", ["+te", "+tb"])
def test_bulk_numeric_values(xfer: str, tmp_path: Path) -> None:
    """Bulk data of word VRs is little endian (PS3.18 F.2.7), swapped for +tb; values over
    1 MiB are streamed from the bulk file, at offsets that are not word aligned."""
    import random

    rng = random.Random(5)
    floats = [rng.uniform(-1e6, 1e6) for _ in range(15_000)]
    blob = bytearray(rng.randbytes(2_400_003))
    blob[11 : 11 + 60_000] = struct.pack("<15000f", *floats)
    bulk = tmp_path / "bulk"
    bulk.mkdir()
    (bulk / "values.bin").write_bytes(bytes(blob))
    uri = f"file://{bulk}/values.bin"
    spans = {  # tag: (VR, offset, length); length None: to the end of the file
        0x00191001: ("OW", 1, 2_000_000),
        0x00191002: ("OD", 5, 1_600_000),
        0x00191003: ("FL", 11, 60_000),
        0x00191004: ("US", 3, 60_000),
        0x00191005: ("OL", 7, None),
        0x00191006: ("OB", 0, 1_500_001),
    }
    doc: dict[str, Any] = {
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
        "00080018": {"vr": "UI", "Value": ["1.2.3.4"]},
        "00190010": {"vr": "LO", "Value": ["STREAMCONV TEST"]},
    }
    for tag, (vr, offset, length) in spans.items():
        query = f"?offset={offset}" + (f"&length={length}" if length is not None else "")
        doc[f"{tag:08X}"] = {"vr": vr, "BulkDataURI": uri + query}
    (tmp_path / "in.json").write_text(json.dumps(doc))
    code, err = _convert_in_process(
        [str(tmp_path / "in.json"), str(tmp_path / "out.dcm"), "+Bd", str(bulk), xfer]
    )
    assert code == 0, err
    out, _ = _read(tmp_path / "out.dcm")
    little = _little_endian(out)
    assert little is (xfer == "+te")
    for tag, (vr, offset, length) in spans.items():
        end = len(blob) if length is None else offset + length
        expected = bytes(blob[offset:end])
        value = out[tag].value
        if vr == "FL":
            assert list(value) == pytest.approx(floats, rel=1e-6)
            continue
        if vr == "US":
            assert list(value) == list(struct.unpack(f"<{len(expected) // 2}H", expected))
            continue
        if vr == "OB":
            expected += b"\x00"  # odd length padded (PS3.5 7.1.1)
        got = bytes(value) if little or vr not in WORD else _swap(bytes(value), WORD[vr])
        assert got == expected, vr


# -- generated datasets: the VRs pydicom's files lack (UV SV OV OL OD UC UR ...) --------------

_ASCII = "".join(chr(c) for c in range(32, 127) if chr(c) != "\\")


def _strings(size: int) -> st.SearchStrategy[list[str]]:
    return st.lists(st.text(_ASCII, max_size=size).map(str.strip), min_size=1, max_size=3)


def _words(width: int, size: int = 120) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=size).map(lambda b: b[: len(b) - len(b) % width])


_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "AE": _strings(16),
    "AS": st.sampled_from([["030Y"], ["012M", "001D"]]),
    "CS": st.lists(st.text("ABCXYZ019 _", max_size=16).map(str.strip), min_size=1, max_size=3),
    "DA": st.sampled_from([["20240101"], ["19991231", "20000101"]]),
    "DS": st.lists(st.floats(-1e9, 1e9).map(lambda f: float(f"{f:.6g}")), min_size=1, max_size=4),
    "DT": st.sampled_from([["20240101120000.5"], ["1999"]]),
    "IS": st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=4),
    "LO": _strings(64),
    "LT": st.text(_ASCII + "\\\n", max_size=200).map(lambda s: [s]),
    "PN": st.lists(
        st.sampled_from(["Doe^John", "A^B^C^D^E", "Yamada^Taro=山田^太郎=やまだ^たろう"]),
        min_size=1,
        max_size=2,
    ),
    "SH": _strings(16),
    "ST": st.text(_ASCII + "\\", max_size=100).map(lambda s: [s]),
    "TM": st.sampled_from([["120000"], ["235959.123456", "00"]]),
    "UC": st.lists(st.text(_ASCII + "é€😀", max_size=100).map(str.strip), min_size=1, max_size=3),
    "UI": st.sampled_from([["1.2.3"], ["1.2.840.10008.1.2", "1.2.3.44"]]),
    "UR": st.sampled_from([["http://example.com/a?b=c"]]),
    "UT": st.text(_ASCII + "\\é", max_size=300).map(lambda s: [s]),
    "US": st.lists(st.integers(0, 2**16 - 1), min_size=1, max_size=5),
    "SS": st.lists(st.integers(-(2**15), 2**15 - 1), min_size=1, max_size=5),
    "UL": st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=5),
    "SL": st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=5),
    "UV": st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=3),
    "SV": st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=3),
    "FL": st.lists(
        st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=4
    ),
    "FD": st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=4),
    "AT": st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3),
    "OB": st.binary(max_size=600),
    "OW": _words(2, 600),
    "OF": _words(4),
    "OL": _words(4),
    "OD": _words(8),
    "OV": _words(8),
    "UN": st.binary(max_size=100),
}


@st.composite
def _datasets(draw: st.DrawFn, depth: int = 0) -> Dataset:
    ds = Dataset()
    for element in sorted(draw(st.sets(st.integers(0x10, 0xFF), max_size=8))):
        tag = 0x00191000 + element
        vr = draw(st.sampled_from(sorted(_VALUES) + (["SQ"] * 3 if depth < 2 else [])))
        if vr == "SQ":
            ds.add(DataElement(tag, "SQ", draw(st.lists(_datasets(depth + 1), max_size=2))))
            continue
        value = None if draw(st.integers(0, 5)) == 0 else draw(_VALUES[vr])
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        ds.add(DataElement(tag, vr, value))
    if depth == 0:
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
        ds.SOPInstanceUID = "1.2.3.4"
        ds.add(DataElement(0x00190010, "LO", "STREAMCONV TEST"))
    return ds


@settings(
    max_examples=int(os.environ.get("STREAMCONV_FUZZ", "0")) or 40,
    deadline=None,
    derandomize="STREAMCONV_FUZZ" not in os.environ,
    database=None,
)
@given(
    ds=_datasets(),
    xfer=st.sampled_from([[], ["+tb"], ["-e"], ["+td"], ["+tb", "-e"]]),
    bulk=st.booleans(),
)
def test_generated_round_trip(ds: Dataset, xfer: list[str], bulk: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        bulk_path = base / "bulk" / "values.bin" if bulk else None
        builder = JsonBuilder(ds, bulk_path)
        (base / "in.json").write_text(json.dumps(builder.build()), encoding="utf-8")
        args = [str(base / "in.json"), str(base / "out.dcm"), *xfer]
        if bulk_path is not None:
            bulk_path.parent.mkdir()
            builder.write_bulk()
            args += ["+Bd", str(bulk_path.parent)]
        code, stderr = _convert_in_process(args)
        assert code == 0, stderr
        out, _ = _read(base / "out.dcm")
    cmp = Comparer("generated", ds, out)
    cmp.dataset(ds, out, "")
    assert not cmp.diffs, "\n".join(cmp.diffs)
