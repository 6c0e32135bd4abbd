"""Resource limits (issue 5; CONTRACT §3): each breach is a clear 65 that names the option
setting the limit, each limit is configurable on the command line, and nesting that is not
made of sequences ([[[...]]], {"a":{"a":...}}) can neither crash the process nor take long.

Defaults (streamconv.options.Limits): --max-depth 64 (63 nested sequences convert),
--max-elements 1,000,000, --max-value-bytes 4 GiB, --max-dataset-bytes 16 GiB,
--max-input-bytes 0 (none; the daemon sets one).  JSON nesting is refused before ijson
sees it: at 3 x --max-depth + 16 levels, and never more than 1000.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pydicom
import pytest
from support import JSON2DCM, Run, j2d, j2d_process

from streamconv.cli import main
from streamconv.core.documents import MAX_JSON_DEPTH
from streamconv.options import Limits

pytestmark = pytest.mark.usefixtures("private_tmp")


def refused(run: Run, *words: str) -> None:
    """65, a message with ``words`` (the limit's option among them), nothing left behind."""
    assert run.rc == 65, run.stderr
    for word in words:
        assert word in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert not run.out.exists()
    assert [
        p.name for p in run.out.parent.iterdir() if p.name not in ("in.json", "tmp", "bulk")
    ] == []
    assert not any(Path(tempfile.gettempdir()).iterdir()), "temporary files left behind"


def ok(run: Run) -> pydicom.Dataset:
    assert run.rc == 0, run.stderr
    return pydicom.dcmread(run.out)


def nested_sequences(levels: int) -> str:
    """``levels`` sequences, each item holding the next; the innermost holds a LO."""
    head = '{"00081115":{"vr":"SQ","Value":[' * levels
    return head + '{"00100020":{"vr":"LO","Value":["deep"]}}' + "]}}" * levels


def depth_of(ds: pydicom.Dataset) -> int:
    n = 0
    while "ReferencedSeriesSequence" in ds:
        ds = ds.ReferencedSeriesSequence[0]
        n += 1
    assert ds.PatientID == "deep"
    return n


# -- nesting depth -------------------------------------------------------------------------------


def test_default_depth_limit() -> None:
    assert Limits().max_depth == 64


def test_63_nested_sequences_convert(tmp_path: Path) -> None:
    assert depth_of(ok(j2d(tmp_path, nested_sequences(63)))) == 63


def test_64_nested_sequences_are_refused(tmp_path: Path) -> None:
    refused(j2d(tmp_path, nested_sequences(64)), "nested", "--max-depth")


@pytest.mark.parametrize("levels", [65, 66, 70, 200, 1000])
def test_deeper_sequences_are_refused(tmp_path: Path, levels: int) -> None:
    refused(j2d(tmp_path, nested_sequences(levels)), "nested", "--max-depth")


@pytest.mark.parametrize(("limit", "levels", "converts"), [(5, 4, True), (5, 5, False), (1, 0, True), (1, 1, False),
                                                           (100, 99, True), (100, 100, False)])  # fmt: skip
def test_max_depth_option(tmp_path: Path, limit: int, levels: int, converts: bool) -> None:
    run = j2d(tmp_path, nested_sequences(levels), "--max-depth", str(limit))
    if converts:
        assert depth_of(ok(run)) == levels
    else:
        refused(run, "nested", "--max-depth")


def test_100000_nested_sequences(tmp_path: Path) -> None:
    # a real process: no crash (DCMTK's json2dcm segfaults at ~7,400), no delay, no memory
    run = j2d_process(tmp_path, nested_sequences(100_000), timeout=60)
    refused(run, "nested", "--max-depth")
    assert run.seconds < 20


def test_100000_nested_sequences_in_an_array_split(tmp_path: Path) -> None:
    run = j2d_process(tmp_path, "[" + nested_sequences(100_000) + "]", "+aS", timeout=60)
    assert run.rc == 65, run.stderr
    assert "nested" in run.stderr and "Traceback" not in run.stderr


def test_63_nested_sequences_through_worker_processes(tmp_path: Path) -> None:
    # json2dcm +aS converts in worker processes: the parsed dataset crosses a pickle
    # (which recursed ~16 levels per sequence and failed at 63, a fuzz/limits finding)
    text = "[" + nested_sequences(63) + "," + nested_sequences(1) + "]"
    run = j2d_process(tmp_path, text, "+aS", timeout=120)
    assert run.rc == 0, run.stderr
    assert depth_of(pydicom.dcmread(run.out / "000000.dcm")) == 63
    assert depth_of(pydicom.dcmread(run.out / "000001.dcm")) == 1


# -- nesting that is not sequences -------------------------------------------------------------


DEEP = 1_000_000


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("arrays", "[" * DEEP + "]" * DEEP),
        ("arrays-unclosed", "[" * DEEP),
        ("objects", '{"a":' * DEEP + "1" + "}" * DEEP),
        ("objects-unclosed", '{"a":' * DEEP),
        ("in-a-value", '{"00100020":{"vr":"LO","Value":' + "[" * DEEP + "]" * DEEP + "}}"),
        ("in-an-item", '{"00081115":{"vr":"SQ","Value":[{"x":' + "[" * DEEP + "]" * DEEP + "}]}}"),
        ("mixed", '[{"a":' * (DEEP // 2) + "0" + "}]" * (DEEP // 2)),
    ],
)
def test_deep_json_that_is_not_sequences(tmp_path: Path, name: str, text: str) -> None:
    # yajl2_c + ijson cost grows with the square of the depth (30,000 levels: 2.2 GB):
    # the pre-pass refuses the input before ijson sees it
    run = j2d_process(tmp_path, text, timeout=60)
    refused(run, "nested", "--max-depth")
    assert run.seconds < 20


def test_deep_json_refused_in_process_quickly(tmp_path: Path) -> None:
    run = j2d(tmp_path, "[" * DEEP + "]" * DEEP)
    refused(run, "nested more than", "--max-depth")
    assert run.seconds < 10


@pytest.mark.parametrize("limit", ["0", "1000000"])
def test_json_nesting_ceiling_whatever_max_depth_says(tmp_path: Path, limit: str) -> None:
    # --max-depth 0 (no sequence limit) or a huge one: JSON nesting still stops at 1000
    run = j2d(tmp_path, "[" * DEEP + "]" * DEEP, "--max-depth", limit)
    refused(run, f"nested more than {MAX_JSON_DEPTH} levels")
    assert run.seconds < 10


def test_sequences_beyond_python_recursion(tmp_path: Path) -> None:
    # --max-depth 0 lifts the sequence limit; what Python recursion cannot hold is a
    # clear 65, not a crash
    run = j2d(tmp_path, nested_sequences(320), "--max-depth", "0")
    refused(run, "nested")


def test_deep_json_in_a_stream(tmp_path: Path) -> None:
    # streamconv stream applies the same pre-pass; the first dataset is still converted
    text = nested_sequences(1) + "\n" + "[" * DEEP + "]" * DEEP
    proc = subprocess.run(
        [sys.executable, "-m", "streamconv", "stream", "--output-dir", str(tmp_path / "out"), "--jobs", "1"],
        input=text.encode(), capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    stderr = proc.stderr.decode()
    assert proc.returncode == 65, stderr
    assert "nested" in stderr and "Traceback" not in stderr


# -- elements per dataset ------------------------------------------------------------------------


def flat(n: int) -> str:
    elems = {f"0009{0x1000 + i:04X}": {"vr": "LO", "Value": [str(i)]} for i in range(n)}
    return json.dumps({"00090010": {"vr": "LO", "Value": ["ACME"]}, **elems})


def test_max_elements_default() -> None:
    assert Limits().max_elements == 1_000_000


def test_max_elements_at_the_limit_converts(tmp_path: Path) -> None:
    ds = ok(j2d(tmp_path, flat(9), "--max-elements", "10"))
    assert len(ds) == 10


def test_max_elements_breach(tmp_path: Path) -> None:
    refused(
        j2d(tmp_path, flat(10), "--max-elements", "10"), "more than 10 elements", "--max-elements"
    )


def test_max_elements_counts_every_level(tmp_path: Path) -> None:
    # 3 top-level + 1 sequence element holding items of 2 elements each: 3 + 1 + 4 = 8
    item = {
        "00081150": {"vr": "UI", "Value": ["1.2"]},
        "00081155": {"vr": "UI", "Value": ["1.2.3"]},
    }
    doc = {"00100020": {"vr": "LO", "Value": ["p"]}, "00100010": {"vr": "PN"}, "00080060": {"vr": "CS"},
           "00081115": {"vr": "SQ", "Value": [item, item]}}  # fmt: skip
    ok(j2d(tmp_path, json.dumps(doc), "--max-elements", "8"))
    (tmp_path / "out.dcm").unlink()
    refused(j2d(tmp_path, json.dumps(doc), "--max-elements", "7"), "--max-elements")


def test_max_elements_is_per_dataset(tmp_path: Path) -> None:
    # +ar: each dataset of the array has its own count
    text = "[" + ",".join([flat(4)] * 5) + "]"
    ok(j2d(tmp_path, text, "+ar", "--max-elements", "5"))


# -- one value's length --------------------------------------------------------------------------


def inline(n: int, tag: str = "00091010") -> dict[str, Any]:
    return {tag: {"vr": "OB", "InlineBinary": base64.b64encode(b"\x01" * n).decode()}}


def test_max_value_bytes_default() -> None:
    assert Limits().max_value_bytes == 4 << 30


def test_max_value_bytes_inline(tmp_path: Path) -> None:
    ok(j2d(tmp_path, json.dumps(inline(64)), "--max-value-bytes", "64"))
    (tmp_path / "out.dcm").unlink()
    refused(
        j2d(tmp_path, json.dumps(inline(66)), "--max-value-bytes", "64"),
        "exceeds the limit of 64",
        "--max-value-bytes",
    )


@pytest.mark.parametrize(
    "element",
    [{"vr": "LO", "Value": ["x" * 65]}, {"vr": "UT", "Value": ["y" * 100]},
     {"vr": "US", "Value": list(range(40))}, {"vr": "FD", "Value": [1.5] * 10},
     {"vr": "AT", "Value": ["00100010"] * 20}, {"vr": "OB", "Value": ["ff"] * 70},
     {"vr": "PN", "Value": [{"Alphabetic": "z" * 70}]}],
    ids=["LO", "UT", "US", "FD", "AT", "OB-hex", "PN"],
)  # fmt: skip
def test_max_value_bytes_every_kind_of_value(tmp_path: Path, element: dict[str, Any]) -> None:
    refused(j2d(tmp_path, json.dumps({"00091010": element, "00090010": {"vr": "LO", "Value": ["A"]}}),
                "--max-value-bytes", "64", "+E"), "--max-value-bytes")  # fmt: skip


def test_max_value_bytes_large_inline_binary_stops_early(tmp_path: Path) -> None:
    # an InlineBinary over 1 MiB is decoded while it is read (to memory, then a temporary
    # file): the limit stops it there, before the whole value is decoded
    run = j2d(tmp_path, json.dumps(inline(3 << 20)), "--max-value-bytes", str(2 << 20))
    refused(run, "--max-value-bytes")


def test_max_value_bytes_bulk_data(tmp_path: Path) -> None:
    bulk = tmp_path / "bulk"
    bulk.mkdir()
    (bulk / "v.bin").write_bytes(b"\x00" * 100)
    doc = {"7FE00010": {"vr": "OB", "BulkDataURI": "bulk/v.bin"}}
    refused(
        j2d(tmp_path, json.dumps(doc), "+Bd", str(bulk), "--max-value-bytes", "99"),
        "--max-value-bytes",
    )


# -- total decoded size of a dataset ---------------------------------------------------------------


def test_max_dataset_bytes_default() -> None:
    assert Limits().max_dataset_bytes == 16 << 30


def test_max_dataset_bytes(tmp_path: Path) -> None:
    doc = {
        **inline(40, "00091010"),
        **inline(40, "00091011"),
        "00090010": {"vr": "LO", "Value": ["A"]},
    }
    ok(j2d(tmp_path, json.dumps(doc), "--max-dataset-bytes", "100"))
    (tmp_path / "out.dcm").unlink()
    doc["00091012"] = inline(40)["00091010"]
    refused(
        j2d(tmp_path, json.dumps(doc), "--max-dataset-bytes", "100"),
        "decoded bytes",
        "--max-dataset-bytes",
    )


def test_max_dataset_bytes_counts_items(tmp_path: Path) -> None:
    item = inline(30, "00091010") | {"00090010": {"vr": "LO", "Value": ["A"]}}
    doc = {"00081115": {"vr": "SQ", "Value": [item, item, item, item]}}
    refused(j2d(tmp_path, json.dumps(doc), "--max-dataset-bytes", "100"), "--max-dataset-bytes")


def test_max_dataset_bytes_bulk_amplification(tmp_path: Path) -> None:
    # a few bytes of JSON that name the same bulk file many times: counted each time
    bulk = tmp_path / "bulk"
    bulk.mkdir()
    (bulk / "v.bin").write_bytes(b"\x00" * 1000)
    doc: dict[str, Any] = {"00090010": {"vr": "LO", "Value": ["A"]}}
    for i in range(20):
        doc[f"0009{0x1000 + i:04X}"] = {"vr": "OB", "BulkDataURI": "bulk/v.bin"}
    refused(
        j2d(tmp_path, json.dumps(doc), "+Bd", str(bulk), "--max-dataset-bytes", "10000"),
        "--max-dataset-bytes",
    )


# -- size of the input ---------------------------------------------------------------------------


def test_max_input_bytes_default() -> None:
    assert Limits().max_input_bytes == 0


def test_max_input_bytes(tmp_path: Path) -> None:
    text = json.dumps({"00100020": {"vr": "LO", "Value": ["x" * 100]}})
    ok(j2d(tmp_path, text, "--max-input-bytes", str(len(text))))
    (tmp_path / "out.dcm").unlink()
    refused(
        j2d(tmp_path, text, "--max-input-bytes", str(len(text) - 1)),
        "input larger than",
        "--max-input-bytes",
    )


def test_max_input_bytes_on_stdin(tmp_path: Path) -> None:
    text = json.dumps({"00100020": {"vr": "LO", "Value": ["x" * 5000]}}).encode()
    out = tmp_path / "out.dcm"
    proc = subprocess.run([JSON2DCM, "--max-input-bytes", "1000", "-", str(out)], input=text,
                          capture_output=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 65
    assert b"--max-input-bytes" in proc.stderr
    assert not out.exists()


# -- the options themselves ----------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--max-depth", "--max-elements", "--max-value-bytes", "--max-dataset-bytes",
                                    "--max-input-bytes"])  # fmt: skip
@pytest.mark.parametrize("value", ["-1", "x", "1.5", ""])
def test_limit_option_values(tmp_path: Path, option: str, value: str) -> None:
    run = j2d(tmp_path, flat(1), option, value)
    assert run.rc == 1, run.stderr
    assert f"Invalid value for option {option}" in run.stderr


@pytest.mark.parametrize("option", ["--max-depth", "--max-elements", "--max-value-bytes", "--max-dataset-bytes",
                                    "--max-input-bytes"])  # fmt: skip
def test_limit_options_are_in_the_help(option: str) -> None:
    out = io.StringIO()
    assert main(["--help"], stdout=out, stderr=io.StringIO()) == 0
    assert option in out.getvalue()
