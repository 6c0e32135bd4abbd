"""Numbers keep their spelling (CONTRACT §7, issue 11), and the deflate pad byte (PS3.5 A.5).

DCMTK copies a JSON number's token text into DS, IS and the other text VRs as written
(dcmtk-behavior §5.3 S6, §5.5 N11/N12); FD given ``-0`` is -0.0 (N18: atof).  The contract
adds its own rules on that text: a DS over 16 characters is rewritten (warning), an integral
IS such as ``4.0`` or ``1e3`` is written as an integer (warning), never silently.

Expected bytes are built here from PS3.5 7.1.2 (explicit VR little endian element: tag,
VR, 2-byte length, value padded to even length with a space, 6.2), never taken from
streamconv's output.  The JSON is written as text, since json.dumps would respell it.
"""

from __future__ import annotations

import io
import pickle
import struct
import zlib
from pathlib import Path

import pytest

from streamconv.cli import main
from streamconv.core.documents import DocumentParser
from streamconv.core.numbers import JsonNumber
from streamconv.logsetup import reset_logging


def element(tag: int, vr: str, text: str) -> bytes:
    """One explicit VR LE element with a short header (PS3.5 7.1.2), text padded (6.2)."""
    value = text.encode("ascii")
    if len(value) % 2:
        value += b" "
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value


def convert(tmp_path: Path, doc: str, *opts: str) -> tuple[int, bytes, str]:
    """json2dcm -F [opts] in.json out.dcm, in-process: (exit code, dataset bytes, stderr)."""
    src, out = tmp_path / "in.json", tmp_path / "out.dcm"
    src.write_text(doc, encoding="ascii")
    stdout, stderr = io.StringIO(), io.StringIO()
    rc = main(["-F", *opts, str(src), str(out)], stdout=stdout, stderr=stderr)
    reset_logging()
    return rc, out.read_bytes() if out.exists() else b"", stderr.getvalue()


# (VR, the Value array as JSON text, the value DCMTK writes, a warning expected or "")
SPELLED = [
    # exponent forms are copied (DCMTK N11, N12), whatever their case, sign and digits
    ("DS", "[1e-06]", "1e-06", ""),
    ("DS", "[1.000000e01]", "1.000000e01", ""),
    ("DS", "[6.1e-05]", "6.1e-05", ""),
    ("DS", "[2.5E+3]", "2.5E+3", ""),
    ("DS", "[1E-7]", "1E-7", ""),
    ("DS", "[0.0000001]", "0.0000001", ""),
    # negative zero, as an integer token and as a decimal (N12)
    ("DS", "[-0]", "-0", ""),
    ("DS", "[-0.0]", "-0.0", ""),
    # trailing zeros of the fraction are part of the spelling (N11: 1.0 stays 1.0)
    ("DS", "[1.0, 2.50]", "1.0\\2.50", ""),
    # exactly 16 characters: no rewriting and no warning (PS3.5 6.2: DS at most 16 bytes)
    ("DS", "[1.23456789012e-6]", "1.23456789012e-6", ""),
    ("DS", "[-1.2345678901234]", "-1.2345678901234", ""),
    # a long mantissa: the closest 16-character form, with a warning (CONTRACT §4)
    ("DS", "[0.12345678901234567890]", "0.12345678901235", "longer than 16 characters"),
    ("DS", "[1.234567890123e-6]", "1.23456789012e-6", "longer than 16 characters"),
    # IS: the integer token -0 as written (N11); integral numbers with a fraction or an
    # exponent become integers with a warning (CONTRACT §4: "4.0 becomes 4")
    ("IS", "[-0]", "-0", ""),
    ("IS", "[4.0]", "4", "IS value 4.0 written as 4"),
    ("IS", "[1e3]", "1000", "IS value 1e3 written as 1000"),
    ("IS", "[2.5E+3]", "2500", "IS value 2.5E+3 written as 2500"),
    ("IS", "[-1.000e1]", "-10", "IS value -1.000e1 written as -10"),
    # a text VR given numbers (S6: LO [12, 1.50, -0, 1e3] -> 12\1.50\-0\1e3)
    ("LO", "[12, 1.50, -0, 1e3]", "12\\1.50\\-0\\1e3", ""),
    ("SH", "[1E+02, -0.0]", "1E+02\\-0.0", ""),
]


@pytest.mark.parametrize(("vr", "values", "written", "warning"), SPELLED)
def test_number_spelling(tmp_path: Path, vr: str, values: str, written: str, warning: str) -> None:
    tag = {"DS": 0x00181050, "IS": 0x00200013, "LO": 0x00100020, "SH": 0x00080050}[vr]
    doc = f'{{"{tag:08X}": {{"vr": "{vr}", "Value": {values}}}}}'
    rc, data, stderr = convert(tmp_path, doc)
    assert rc == 0, stderr
    assert data == element(tag, vr, written)
    if warning:
        assert warning in stderr
    else:
        assert stderr == ""


def test_spelling_survives_the_slow_path(tmp_path: Path) -> None:
    # spelled numbers among strings and nulls, and in a sequence item
    doc = (
        '{"00081115": {"vr": "SQ", "Value": [{"00181050": {"vr": "DS", "Value": [null, "7", 1e-06]}}]},'
        ' "00280030": {"vr": "DS", "Value": [ 5.0E-1 , -0 ]}}'
    )
    rc, data, stderr = convert(tmp_path, doc)  # +e: explicit lengths (default)
    assert rc == 0, stderr
    item = element(0x00181050, "DS", "\\7\\1e-06")
    seq = struct.pack("<HH2s2xI", 0x0008, 0x1115, b"SQ", 8 + len(item))
    seq += struct.pack("<HHI", 0xFFFE, 0xE000, len(item)) + item
    assert data == seq + element(0x00280030, "DS", "5.0E-1\\-0")


def test_binary_vrs_read_the_value(tmp_path: Path) -> None:
    # FD -0 is -0.0 (DCMTK N18, atof("-0")); US -0 is 0; FL 1e-06 the float's bytes
    doc = (
        '{"00189089": {"vr": "FD", "Value": [-0, 1e-06]}, "00280010": {"vr": "US", "Value": [-0]}}'
    )
    rc, data, stderr = convert(tmp_path, doc)
    assert rc == 0, stderr
    fd = struct.pack("<HH2sH2d", 0x0018, 0x9089, b"FD", 16, -0.0, 1e-06)
    us = struct.pack("<HH2sHH", 0x0028, 0x0010, b"US", 2, 0)
    assert data == fd + us


def test_is_exponent_not_integral_is_an_error(tmp_path: Path) -> None:
    rc, data, stderr = convert(tmp_path, '{"00200013": {"vr": "IS", "Value": [1.5e0]}}')
    assert rc == 65
    assert "IS value must be an integer, found 1.5e0" in stderr
    assert data == b""


def test_any_chunking_keeps_the_spelling() -> None:
    # the pre-pass holds a number back at a chunk end: "-0" split anywhere is still -0,
    # and an exponent "1e-0" is never mistaken for it
    doc = b'[{"a": [-0, "-0", 1e-0, -0.0, -0 ,[-0], "x,-0", 0, true, 1.5e-06,-0]}]'
    expected = ["-0", "-0", "1e-0", "-0.0", "-0", ["-0"], "x,-0", 0, True, "1.5e-06", "-0"]

    def texts(chunks: list[bytes]) -> list[object]:
        parser = DocumentParser()
        out = [d for c in chunks for d in parser.feed(c)] + parser.finish()
        values = out[0].value.pairs[0][1]
        return [
            [v.text for v in x] if isinstance(x, list) else getattr(x, "text", x) for x in values
        ]

    assert texts([doc]) == expected
    for i in range(len(doc)):
        for j in range(i, len(doc)):
            assert texts([doc[:i], doc[i:j], doc[j:]]) == expected, (i, j)


def test_json_number_pickles_with_its_text() -> None:
    # frames are parsed in worker processes; a number that crosses a pipe keeps its text
    n = pickle.loads(pickle.dumps(JsonNumber("1.000000e01")))
    assert type(n) is JsonNumber and n.text == "1.000000e01" and n == 10


def test_array_split_workers_keep_the_spelling(tmp_path: Path) -> None:
    # --array-split converts in worker processes (streamconv.fanout): same bytes there
    docs = [f'{{"00181050": {{"vr": "DS", "Value": [{n}]}}}}' for n in ("1e-06", "-0", "2.50")]
    src, out = tmp_path / "in.json", tmp_path / "out"
    src.write_text("[" + ",".join(docs) + "]", encoding="ascii")
    stderr = io.StringIO()
    rc = main(["-F", "--array-split", str(src), str(out)], stdout=io.StringIO(), stderr=stderr)
    reset_logging()
    assert rc == 0, stderr.getvalue()
    for i, text in enumerate(("1e-06", "-0", "2.50")):
        assert (out / f"{i:06d}.dcm").read_bytes() == element(0x00181050, "DS", text)


# -- the deflate pad byte (PS3.5 A.5) --------------------------------------------------------


def _deflated_body(tmp_path: Path, text: str) -> tuple[bytes, bytes]:
    """(plain explicit VR LE dataset, the +td dataset) for one LO value."""
    doc = f'{{"00100020": {{"vr": "LO", "Value": ["{text}"]}}}}'
    rc, plain, err = convert(tmp_path, doc, "+te")
    assert rc == 0, err
    rc, deflated, err = convert(tmp_path, doc, "+td")
    assert rc == 0, err
    return plain, deflated


@pytest.mark.parametrize("parity", [0, 1])
def test_deflate_pad_byte(tmp_path: Path, parity: int) -> None:
    # PS3.5 A.5: "If the deflate algorithm produces an odd number of bytes then a single
    # trailing NULL byte shall be added after the last byte of the deflated bit stream."
    # Find a value whose raw deflate stream (zlib level 6, the +cl default) has this parity.
    for n in range(2, 200):
        text = "".join(chr(65 + (i * i + n) % 26) for i in range(n))
        plain = element(0x00100020, "LO", text)
        comp = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        stream = comp.compress(plain) + comp.flush()
        if len(stream) % 2 == parity:
            break
    else:  # pragma: no cover
        pytest.fail("no value with that parity")
    written_plain, deflated = _deflated_body(tmp_path, text)
    assert written_plain == plain
    assert len(deflated) % 2 == 0  # PS3.10 7.1 / PS3.5 7.1: a DICOM stream has even length
    if parity:
        assert deflated == stream + b"\x00"
    else:
        assert deflated == stream
    assert zlib.decompressobj(-zlib.MAX_WBITS).decompress(deflated) == plain


def test_vr_that_is_not_a_string_is_an_error(tmp_path: Path) -> None:
    # a list or an object as "vr" is unhashable: it crashed with a traceback (exit 1)
    rc, data, stderr = convert(tmp_path, '{"00100020": {"vr": ["LO"], "Value": ["x"]}}')
    assert rc == 65
    assert "(0010,0020): unknown or malformed vr an array" in stderr
    assert "Traceback" not in stderr and data == b""


def test_ijson_and_decimal_untouched_for_everyone_else() -> None:
    # the spelling parser is a private copy of ijson's C module: the decimal module and
    # ijson's own parser (other code in the process) still give plain Decimals
    import decimal
    import sys

    import ijson

    from streamconv.core import documents

    assert documents._C is not None and documents._C is not sys.modules["ijson.backends._yajl2"]
    assert sys.modules["decimal"] is decimal and decimal.Decimal is not JsonNumber
    (value,) = ijson.items(b"[1e-06]", "item")
    assert type(value) is decimal.Decimal
