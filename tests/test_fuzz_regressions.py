"""Every finding of the fuzz targets and hostile-input probes (issue 5), as a regression test.

Each case names where it was found (fuzz target, probe) and the commit that fixed it.  The
inputs are minimised by hand from the reproducers; the crash cases run as a real process,
because what they broke was the process (a segfault is not an exception pytest would see).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from support import JSON2DCM, Run, j2d, j2d_process

from streamconv.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuzz"))

pytestmark = pytest.mark.usefixtures("no_leftovers")


def failed(run: Run, code: int, message: str) -> None:
    assert run.rc == code, run.stderr
    assert message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert not run.out.exists()


# -- ijson 3.6 yajl2_c: an integer of more than 4300 digits is a segfault ------------------------
# probe (issue 5), fixed in the JSON pre-pass (JsonFilter._check_digits, dd6e53a): numbers of
# more than 1000 digits are refused before ijson sees them.


@pytest.mark.parametrize(
    "text",
    [b'{"00280010":{"vr":"US","Value":[' + b"1" * 4301 + b"]}}",
     b'{"00201013":{"vr":"IS","Value":[-' + b"9" * 5000 + b"]}}",
     b"[" + b"7" * 100_000 + b"]",
     b'{"00091010":{"vr":"OB","Value":[' + b"9" * 5000 + b"]}}"],
    ids=["US-4301", "IS-negative-5000", "top-level-100000", "OB-5000"],
)  # fmt: skip
def test_huge_integer_does_not_crash(tmp_path: Path, text: bytes) -> None:
    failed(j2d_process(tmp_path, text), 65, "JSON number with more than 1000 digits")


def test_huge_integer_split_across_reads(tmp_path: Path) -> None:
    # the run of digits is counted across the 1 MiB reads of the pipeline
    text = b'{"00280010":{"vr":"US","Value":[' + b" " * ((1 << 20) - 600) + b"1" * 2000 + b"]}}"
    failed(j2d_process(tmp_path, text), 65, "more than 1000 digits")


def test_long_digit_strings_are_not_numbers(tmp_path: Path) -> None:
    # digits inside a string (a long UT text) are text, not a number
    text = b'{"00204000":{"vr":"LT","Value":["' + b"1" * 6000 + b'"]}}'
    run = j2d(tmp_path, text)
    assert run.rc == 0, run.stderr
    assert pydicom.dcmread(run.out).ImageComments == "1" * 6000


def test_fraction_digits_up_to_the_limit(tmp_path: Path) -> None:
    text = b'{"00180050":{"vr":"DS","Value":[0.' + b"5" * 998 + b"]}}"
    run = j2d(tmp_path, text)
    assert run.rc == 0, run.stderr


# -- a number whose exponent does not fit a Decimal: decimal.InvalidOperation traceback ------------
# fuzz_convert (run 2), fixed in DocumentParser (dd6e53a).


@pytest.mark.parametrize(
    "number",
    [
        b"11e9999999998446744073709551615",
        b"1e9999999999999999999",
        b"1E-9999999999999999999",
        b"-0.5e+99999999999999999999",
    ],
)
def test_number_exponent_out_of_range(tmp_path: Path, number: bytes) -> None:
    text = b'{"00720082":{"vr":"UV","Value":[' + number + b"]}}"
    failed(j2d(tmp_path, text), 65, "JSON number out of the supported range")


def test_number_exponent_out_of_range_at_the_end(tmp_path: Path) -> None:
    # the last token of the input is converted when ijson is closed
    failed(j2d(tmp_path, b"1e9999999999999999999"), 65, "out of the supported range")


# -- huge exponents that do fit: int() of 1E+999999999 never ended ---------------------------------
# probe (issue 5), fixed in model (ea40d8d).


@pytest.mark.parametrize(
    ("vr", "value", "message"),
    [("IS", b"1e999999999", "IS value 1e999999999 outside"),
     ("US", b"1e999999999", "US value 1e999999999 outside"),
     ("UV", b"-1.5e999999999", "outside"), ("SV", b"1e40", "SV value 1e40 outside"),
     ("SL", b"2e18", "outside")],
)  # fmt: skip
def test_huge_exponent_integer_values(tmp_path: Path, vr: str, value: bytes, message: str) -> None:
    run = j2d(tmp_path, b'{"00091010":{"vr":"' + vr.encode() + b'","Value":[' + value + b"]}}")
    failed(run, 65, message)
    assert run.seconds < 5


def test_is_string_of_5000_digits(tmp_path: Path) -> None:
    # int() refused it with ValueError (more than 4300 digits): a traceback
    failed(
        j2d(tmp_path, b'{"00201013":{"vr":"IS","Value":["' + b"9" * 5000 + b'"]}}'),
        65,
        "outside [-2^31, 2^31-1]",
    )


def test_us_string_under_ignore_errors(tmp_path: Path) -> None:
    run = j2d(tmp_path, b'{"00280010":{"vr":"US","Value":["1e999999999"]}}', "+E")
    assert run.rc == 0, run.stderr
    assert run.seconds < 5


def test_ds_beyond_double_range_keeps_its_exponent(tmp_path: Path) -> None:
    # written as 'inf' before (exit 0, an invalid DS)
    text = b'{"00180050":{"vr":"DS","Value":[1' + b"0" * 400 + b".5]}}"
    run = j2d(tmp_path, text)
    assert run.rc == 0, run.stderr
    assert b"inf" not in run.out.read_bytes()
    assert b"1e400" in run.out.read_bytes()


def test_ds_exponent_too_long_for_16_characters(tmp_path: Path) -> None:
    failed(
        j2d(tmp_path, b'{"00180050":{"vr":"DS","Value":[1.5e999999999999999999]}}'),
        65,
        "cannot be written in 16 characters",
    )


# -- InlineBinary with a character that is not ASCII: ValueError traceback ----------------------------
# fuzz_convert (run 1), fixed in model (6933480).


@pytest.mark.parametrize(
    "text", ["AAAA\\ud83d\\ude00AAAA", "AAAA\u00e9AAA", "\u00ff\u00ff\u00ff\u00ff"]
)
def test_inline_binary_not_ascii(tmp_path: Path, text: str) -> None:
    doc = ('{"00091010":{"vr":"OB","InlineBinary":"' + text + '"}}').encode()
    failed(j2d(tmp_path, doc), 65, "invalid base64 in InlineBinary")


def test_inline_binary_not_ascii_ignore_errors(tmp_path: Path) -> None:
    run = j2d(tmp_path, '{"00091010":{"vr":"OB","InlineBinary":"AAAA\u00e9AAA"}}'.encode(), "+E")
    assert run.rc == 0, run.stderr
    assert "invalid base64" in run.stderr


# -- BulkDataURI percent-decoded to bytes that are not UTF-8: UnicodeDecodeError traceback ------------
# probe (issue 5), fixed in bulkdata (2f9095e).


@pytest.mark.parametrize(
    "uri", ["file:///tmp/x%ff", "file:///tmp/%c3%28", "x%80y.bin", "file:///tmp/a?offset=%ff"]
)
def test_bulk_uri_percent_encoding_not_utf8(tmp_path: Path, uri: str) -> None:
    doc = ('{"7FE00010":{"vr":"OB","BulkDataURI":"' + uri + '"}}').encode()
    failed(j2d(tmp_path, doc, "+Bd", str(tmp_path)), 65, "not valid UTF-8")


# -- command files: @/dev/zero never ended, a FIFO blocked, Latin-1 was a traceback ------------------
# probe of the option parser (issue 5), fixed in cli (135d50a).


def test_command_file_device(tmp_path: Path) -> None:
    proc = subprocess.run(
        [JSON2DCM, "@/dev/zero", "a", "b"], capture_output=True, timeout=30, check=False
    )
    assert proc.returncode == 1
    assert b"not a regular file" in proc.stderr


def test_command_file_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "cmd.fifo"
    os.mkfifo(fifo)
    proc = subprocess.run(
        [JSON2DCM, f"@{fifo}", "a", "b"], capture_output=True, timeout=30, check=False
    )
    assert proc.returncode == 1
    assert b"not a regular file" in proc.stderr


def test_command_file_not_utf8(tmp_path: Path) -> None:
    cmd = tmp_path / "latin1.cmd"
    cmd.write_bytes(b"+E \xe9t\xe9.json out.dcm")
    err = io.StringIO()
    assert main([f"@{cmd}"], stdout=io.StringIO(), stderr=err) == 1
    assert "not valid UTF-8" in err.getvalue()


def test_command_file_too_large(tmp_path: Path) -> None:
    cmd = tmp_path / "big.cmd"
    cmd.write_bytes(b"+E " * (400_000))
    err = io.StringIO()
    assert main([f"@{cmd}", "a", "b"], stdout=io.StringIO(), stderr=err) == 1
    assert "larger than" in err.getvalue()


# -- the fuzz harness on the original reproducers ----------------------------------------------------


REPRODUCERS = {
    # fuzz_convert run 1: option set 10 (-u +E +ar), InlineBinary with an escaped emoji
    "inline-emoji": b'\n\x80{"00431029":{"vr":"OB","InlineBinary":"AAAA\\ud83d\\ude00AAAAAAAA=="}}',
    # fuzz_convert run 2: option set 4 (+aS), UV with an exponent of 19+ digits
    "uv-exponent": b'\x04d{"00280010":{"vr":"US","Value":[512]},"00720082":{"vr":"UV","Value":[11e9999999998446744073709551615]}}',
    # fuzz_convert run 3: option set 13 (+E +tb -e +aS), a group 0000 element; pydicom reads
    # group 0000 after the meta header as a command set (implicit VR LE, PS3.7 6.3.1), so the
    # harness does not parse such outputs (see fuzz/README, "Not findings")
    # fuzz_convert run 6: option set 13, (0008,0005) with VR SQ (pydicom: AttributeError)
    "charset-sequence": b'\rd{"00081030":{"vr":"LO","Value":["a",null,"b"]},"00080005":{"vr":"SQ","Value":[null,{"Aletic":"y"}]}}',
    "group-0000": b'\rd{"00081030":{"vr":"LO","Value":["a",null,"b"]},"00004000":{"vr":"SQLT","Value":["a\\\\b"]},'
    b'"00080090":{"vr":"SQ","Value":[null,{"Alphabetic":"x","Phonetic":"y"}]}}',
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[object]:
    from harness import Sandbox

    old = tempfile.tempdir
    box = Sandbox.create()
    yield box
    box.remove()
    tempfile.tempdir = old


@pytest.mark.parametrize("name", sorted(REPRODUCERS))
def test_reproducer_through_the_harness(
    sandbox: object, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness import Sandbox, run_convert

    assert isinstance(sandbox, Sandbox)
    monkeypatch.setattr(tempfile, "tempdir", sandbox.tmp)
    run_convert(REPRODUCERS[name], sandbox)


# -- Specific Character Set with another VR than CS: written, and unreadable (pydicom fails) -------
# fuzz_convert (runs 6 and 7: SQ, PN), fixed in model: an error under -E, dropped under +E.


@pytest.mark.parametrize("where", ["top", "item"])
def test_specific_character_set_as_sequence(tmp_path: Path, where: str) -> None:
    elem = b'"00080005":{"vr":"SQ","Value":[{}]}'
    doc = (
        b"{" + elem + b"}"
        if where == "top"
        else b'{"00081115":{"vr":"SQ","Value":[{' + elem + b"}]}}"
    )
    failed(j2d(tmp_path, doc), 65, "Specific Character Set with VR SQ; it must be CS")
    run = j2d(tmp_path, doc, "+E")
    assert run.rc == 0, run.stderr
    ds = pydicom.dcmread(run.out)
    assert "SpecificCharacterSet" not in (ds if where == "top" else ds.ReferencedSeriesSequence[0])


@pytest.mark.parametrize(
    "element",
    [b'{"vr":"PN","Value":[{"Alphabetic":"ISO_IR 100"}]}', b'{"vr":"LO","Value":["ISO_IR 100"]}',
     b'{"vr":"OB","InlineBinary":"SVNPX0lSIDEwMA=="}', b'{"vr":"US","Value":[100]}'],
    ids=["PN", "LO", "OB", "US"],
)  # fmt: skip
def test_specific_character_set_other_vrs(tmp_path: Path, element: bytes) -> None:
    doc = (
        b'{"00080005":'
        + element
        + b',"00100010":{"vr":"PN","Value":[{"Alphabetic":"M\\u00fcller"}]}}'
    )
    failed(j2d(tmp_path, doc), 65, "it must be CS")
    run = j2d(tmp_path, doc, "+E")
    assert run.rc == 0, run.stderr
    ds = pydicom.dcmread(run.out)
    assert "SpecificCharacterSet" not in ds
