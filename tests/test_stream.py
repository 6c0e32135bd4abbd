"""Streams of datasets (issue 3): the array policies, --array-split and `streamconv stream`.

Expected outcomes come from the documents: CONTRACT.md §3 (trailing commas, BOM, several
top-level values get the array policy) and §6 (single-element array unwrapped, -ar rejects,
+as n 1-based, +ar private sequence, --array-split one file per dataset), dcmtk-behavior §8
and its A table (§14.12).  json2dcm runs in-process (``streamconv.cli.main``); the stream
front end runs as a real process fed through stdin, for its exit code, signals and pipes.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pydicom
import pydicom.config
import pytest
from pydicom.filereader import dcmread

from streamconv import fanout as stream_module
from streamconv.cli import main as json2dcm
from streamconv.core.pipeline import Converter, RunContext
from streamconv.fanout import convert_stream
from streamconv.logsetup import reset_logging
from streamconv.options import ArrayPolicy, ConvertOptions
from streamconv.sinks import write_output

# -- helpers -------------------------------------------------------------------------------

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"
LIST_CREATOR = "JSON2DCM_LIST_OF_DATASETS"
BOM = b"\xef\xbb\xbf"
DEADLINE = 30.0  # seconds: generous bounds for a loaded 2-core machine


def lo(*values: Any) -> dict[str, Any]:
    return {"vr": "LO", "Value": list(values)}


def ui(*values: Any) -> dict[str, Any]:
    return {"vr": "UI", "Value": list(values)}


def sq(*items: dict[str, Any]) -> dict[str, Any]:
    return {"vr": "SQ", "Value": list(items)}


def dataset(n: int, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "00080016": ui(SC_IMAGE),
        "00080018": ui(f"1.2.826.0.1.3680043.10.543.{n}"),
        "00100020": lo(name),
        "0020000D": ui("1.2.826.0.1.3680043.10.543.100"),
        "0020000E": ui("1.2.826.0.1.3680043.10.543.200"),
        **extra,
    }


# Three datasets that differ: the second carries its own (0002,0010) (A6: it becomes the
# input TS when it is converted alone; A18: dropped from a +ar item) and a sequence.
DATASETS = [
    dataset(1, "one"),
    dataset(2, "two", **{"00020010": ui(IMPLICIT), "00081115": sq({"00081150": ui("1.2.3.9")})}),
    dataset(3, "three", **{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]}}),
]
NAMES = ["one", "two", "three"]


def dumps(value: Any, trailing: bool) -> str:
    """JSON text; ``trailing`` puts a comma after the last member of every object and array
    (accepted silently, CONTRACT §3)."""
    comma = "," if trailing else ""
    if isinstance(value, dict):
        body = ",".join(f"{json.dumps(k)}:{dumps(v, trailing)}" for k, v in value.items())
        return "{" + body + (comma if value else "") + "}"
    if isinstance(value, list):
        body = ",".join(dumps(v, trailing) for v in value)
        return "[" + body + (comma if value else "") + "]"
    return json.dumps(value)


def shape_text(shape: str, trailing: bool) -> str:
    docs = [dumps(d, trailing) for d in DATASETS]
    comma = "," if trailing else ""
    if shape == "array":
        return "[\n " + ",\n ".join(docs) + comma + "\n]\n"
    if shape == "ndjson":
        return "".join(d + "\n" for d in docs)
    if shape == "concatenated":
        return "".join(docs)  # on one line, nothing between the values
    if shape == "object":
        return docs[0]
    if shape == "single-array":
        return "[" + docs[0] + comma + "]"
    raise AssertionError(shape)


SHAPES = {"array": 3, "ndjson": 3, "concatenated": 3, "object": 1, "single-array": 1}
# (trailing commas, BOM): with and without trailing commas, and with a BOM (RFC 8259 §8.1)
VARIANTS = {"plain": (False, False), "trailing": (True, False), "bom+trailing": (True, True)}


def shape_bytes(shape: str, variant: str) -> bytes:
    trailing, bom = VARIANTS[variant]
    return (BOM if bom else b"") + shape_text(shape, trailing).encode()


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    old = pydicom.config.settings.reading_validation_mode
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    yield
    pydicom.config.settings.reading_validation_mode = old
    reset_logging()


@dataclass
class Run:
    rc: int
    stderr: str


def run_json2dcm(*args: str) -> Run:
    err = io.StringIO()
    rc = json2dcm(list(args), stdout=io.StringIO(), stderr=err)
    reset_logging()
    return Run(rc, err.getvalue())


STREAM = [sys.executable, "-m", "streamconv", "stream"]


def run_stream(infile: Path, out: Path, *opts: str, jobs: int = 1) -> Run:
    with infile.open("rb") as stdin:
        proc = subprocess.run(
            [*STREAM, "--output-dir", str(out), "--jobs", str(jobs), *opts],
            stdin=stdin, capture_output=True, timeout=120, check=False,
        )  # fmt: skip
    stderr = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, stderr
    return Run(proc.returncode, stderr)


def part_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


def dcm_files(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("*.dcm"))


def check_dataset(ds: pydicom.Dataset, i: int) -> None:
    """Dataset ``i`` (0-based) of DATASETS, converted as a top-level dataset."""
    assert ds.PatientID == NAMES[i]
    assert ds.SOPInstanceUID == f"1.2.826.0.1.3680043.10.543.{i + 1}"
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert 0x00091000 not in ds and 0x00090010 not in ds
    if i == 1:  # its own (0002,0010) is the input TS (A6); its sequence kept
        assert ds.file_meta.TransferSyntaxUID == IMPLICIT
        assert ds[0x00081115][0][0x00081150].value == "1.2.3.9"
    else:
        assert ds.file_meta.TransferSyntaxUID == EXPLICIT
    if i == 2:
        assert str(ds.PatientName) == "Doe^Jane"


def check_sequence(ds: pydicom.Dataset) -> None:
    """A12: (0009,0010) LO creator, (0009,1000) SQ, one item per dataset in order, group
    0002 dropped from the items (A18) so the TS is the default."""
    assert ds[0x00090010].VR == "LO" and ds[0x00090010].value == LIST_CREATOR
    assert ds[0x00091000].VR == "SQ"
    items = ds[0x00091000].value
    assert [item.PatientID for item in items] == NAMES
    assert all(0x00020010 not in item for item in items)
    assert items[1][0x00081115][0][0x00081150].value == "1.2.3.9"
    assert str(items[2].PatientName) == "Doe^Jane"
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT
    assert set(ds.keys()) == {0x00090010, 0x00091000}


def check_split(out: Path, count: int) -> None:
    assert dcm_files(out) == [f"{i:06d}.dcm" for i in range(count)]
    for i in range(count):
        check_dataset(dcmread(out / f"{i:06d}.dcm"), i)
    assert not (out / "rejected").exists()
    assert not part_files(out)


# -- 1. the matrix: input shape x front end ------------------------------------------------

FRONT_ENDS = {
    "-ar": ("-ar",),
    "+as2": ("+as", "2"),
    "+ar": ("+ar",),
    "split": ("--array-split",),
    "stream": (),
}


def expected(shape: str, front: str) -> tuple[str, list[int]]:
    """(kind, dataset indexes) for a shape through a front end (CONTRACT §3, §6; A table)."""
    count = SHAPES[shape]
    if front in ("split", "stream"):
        return "split", list(range(count))
    if count == 1:  # a single object, or a single-element array unwrapped (A2, A15-A17)
        return "file", [0]
    if front == "-ar":
        return "reject", []  # A1; several top-level values too (CONTRACT §3)
    if front == "+as2":
        return "file", [1]  # A7, 1-based
    return "sequence", [0, 1, 2]  # A12


MATRIX = [
    pytest.param(shape, variant, front, id=f"{shape}-{variant}-{front}")
    for shape in SHAPES
    for variant in VARIANTS
    for front in FRONT_ENDS
]


@pytest.mark.parametrize(("shape", "variant", "front"), MATRIX)
def test_matrix(
    tmp_path: Path, shape: str, variant: str, front: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # json2dcm --array-split runs the stream engine with one worker per CPU; here one
    # (a thread of this process), as `stream --jobs 1` below: the worker processes cost a
    # second of start-up per case.  test_stream_two_workers and the +aS failure test use them.
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    infile = tmp_path / "in.json"
    infile.write_bytes(shape_bytes(shape, variant))
    kind, indexes = expected(shape, front)
    out = tmp_path / "out"
    if front == "stream":
        run = run_stream(infile, out)
    else:
        run = run_json2dcm(*FRONT_ENDS[front], str(infile), str(out))
    if kind == "reject":
        assert run.rc == 65
        assert "E: " in run.stderr and "rejecting conversion" in run.stderr
        assert not out.exists()
        assert not part_files(tmp_path)
        return
    assert run.rc == 0, run.stderr
    if kind == "split":
        check_split(out, len(indexes))
    elif kind == "file":
        check_dataset(dcmread(out), indexes[0])
    else:
        check_sequence(dcmread(out))
    assert not part_files(tmp_path)


@pytest.mark.parametrize("shape", ["array", "ndjson", "concatenated"])
def test_stream_two_workers(tmp_path: Path, shape: str) -> None:
    # --jobs 2: worker processes; names are the input order whichever worker wrote them
    infile = tmp_path / "in.json"
    infile.write_bytes(shape_bytes(shape, "bom+trailing"))
    run = run_stream(infile, tmp_path / "out", jobs=2)
    assert run.rc == 0, run.stderr
    check_split(tmp_path / "out", 3)


@pytest.mark.parametrize(
    ("doc", "message"),
    [(b"[]", "empty JSON array"), (b"", "no JSON value"), (b"[1, 2]", "JSON object")],
    ids=["empty-array", "empty-input", "not-objects"],
)
def test_stream_nothing_to_convert(tmp_path: Path, doc: bytes, message: str) -> None:
    # A3: an empty array is an error (65); so is an empty document (CONTRACT §3); A5
    # non-object elements are rejected datasets (65)
    infile = tmp_path / "in.json"
    infile.write_bytes(doc)
    run = run_stream(infile, tmp_path / "out")
    assert run.rc == 65
    assert message in run.stderr
    assert dcm_files(tmp_path / "out") == []


# -- 2. a real pipe held open ----------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def start_stream(out: Path, *opts: str, jobs: int = 1) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*STREAM, "--output-dir", str(out), "--jobs", str(jobs), *opts],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def finish(proc: subprocess.Popen[bytes]) -> Run:
    """Wait for the exit of a stream whose stdin the test has closed."""
    proc.stdin = None  # closed already; communicate() would flush it
    try:
        _, stderr = proc.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("streamconv stream did not exit") from None
    text = stderr.decode("utf-8", "replace")
    assert "Traceback" not in text, text
    return Run(proc.returncode, text)


@pytest.mark.parametrize("newline", [True, False], ids=["newline", "no-newline"])
def test_pipe_held_open(tmp_path: Path, newline: bool) -> None:
    # issue 3: a dataset is written as soon as its closing brace has arrived; a producer
    # that writes one and keeps the pipe open sees its file appear
    out = tmp_path / "out"
    proc = start_stream(out)
    assert proc.stdin is not None
    try:
        first = json.dumps(DATASETS[0]).encode() + (b"\n" if newline else b"")
        proc.stdin.write(first)
        proc.stdin.flush()
        wait_for(lambda: (out / "000000.dcm").exists(), "the first file while stdin is open")
        assert proc.poll() is None  # still waiting for more
        check_dataset(dcmread(out / "000000.dcm"), 0)
        proc.stdin.write(json.dumps(DATASETS[2]).encode())
        proc.stdin.close()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    run = finish(proc)
    assert run.rc == 0, run.stderr
    assert dcm_files(out) == ["000000.dcm", "000001.dcm"]
    assert dcmread(out / "000001.dcm").PatientID == "three"
    assert not part_files(out)


# -- 3. memory does not grow with the number of datasets -----------------------------------


def small(i: int) -> dict[str, Any]:
    return {
        "00080016": ui("1.2.840.10008.5.1.4.1.1.2"),
        "00080018": ui(f"1.2.826.0.1.3680043.10.543.{i + 1}"),
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]},
        "00100020": lo(f"p{i}"),
        "00200032": {"vr": "DS", "Value": [-125.5, 80.25, i]},
        "00280010": {"vr": "US", "Value": [512]},
    }


def array_doc(count: int) -> bytes:
    return ("[" + ",\n".join(json.dumps(small(i)) for i in range(count)) + "]").encode()


def peak_of(action: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def sequence_to_file(data: bytes, out: Path) -> None:
    """+ar through the core, fed 64 KiB at a time (a pipe's worth; json2dcm reads 1 MiB,
    which would hide a growth below a few MB of input)."""
    conv = Converter(RunContext(ConvertOptions(array_policy=ArrayPolicy.SEQUENCE)))
    try:
        outs = []
        for start in range(0, len(data), 1 << 16):
            outs += conv.feed(data[start : start + (1 << 16)])
        outs += conv.finish()
        assert len(outs) == 1
        write_output(outs[0], str(out), conv.options, fsync=False)  # type: ignore[arg-type]
    finally:
        conv.close()


def split_through_pipe(data: bytes, out: Path) -> None:
    """The split engine (jobs=1: conversion in a thread of this process, so tracemalloc
    sees it) reading a real pipe, as `streamconv stream` does."""
    out.mkdir()
    read_fd, write_fd = os.pipe()

    def producer() -> None:
        with os.fdopen(write_fd, "wb") as f:
            f.write(data)

    thread = threading.Thread(target=producer)
    thread.start()
    try:
        options = ConvertOptions(array_policy=ArrayPolicy.SPLIT)
        summary = anyio.run(lambda: convert_stream(read_fd, str(out), options, jobs=1))
    finally:
        os.close(read_fd)
        thread.join()
    assert summary.converted == summary.datasets


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["+ar", "split"])
def test_memory_flat(tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 3: memory bounded by the datasets in flight, not by the number of datasets
    in_flight = [0, 0]  # now, most
    real_batch = stream_module._convert_batch

    def counting_batch(run: Any, out_dir: str, batch: list[Any], *rest: Any) -> Any:
        in_flight[0] += len(batch)
        in_flight[1] = max(in_flight)
        try:
            return real_batch(run, out_dir, batch, *rest)
        finally:
            in_flight[0] -= len(batch)

    monkeypatch.setattr(stream_module, "_convert_batch", counting_batch)

    def convert(count: int, name: str) -> int:
        data = array_doc(count)
        if mode == "+ar":
            return peak_of(lambda: sequence_to_file(data, tmp_path / f"{name}.dcm"))
        peak = peak_of(lambda: split_through_pipe(data, tmp_path / name))
        assert len(list((tmp_path / name).glob("*.dcm"))) == count
        return peak

    convert(20, "warm-up")  # lazy imports and caches are not part of the figure
    small_peak = convert(300, "small")
    large_peak = convert(2400, "large")
    assert large_peak < 1.5 * small_peak, (small_peak, large_peak)
    if mode == "+ar":
        items = dcmread(tmp_path / "large.dcm")[0x00091000].value
        assert len(items) == 2400
        assert items[0].PatientID == "p0" and items[-1].PatientID == "p2399"
    else:
        # the semaphore on datasets in flight (2 batches per worker) is the bound
        assert 0 < in_flight[1] <= 2 * stream_module._BATCH


# -- 4. rejected datasets ------------------------------------------------------------------

BAD_KEY = {"0010002": lo("x")}  # a tag key of 7 digits
BAD_NESTED = dataset(9, "nested", **{"00081115": sq({"00081150": {"vr": "XX", "Value": ["1.2"]}})})


@pytest.mark.parametrize("jobs", [1, 2])
def test_rejected_datasets(tmp_path: Path, jobs: int) -> None:
    docs = [DATASETS[0], BAD_KEY, DATASETS[2], BAD_NESTED, dataset(5, "five")]
    infile = tmp_path / "in.json"
    infile.write_text("".join(json.dumps(d) + "\n" for d in docs))
    out = tmp_path / "out"
    run = run_stream(infile, out, jobs=jobs)
    assert run.rc == 65  # some datasets rejected, the rest converted
    assert dcm_files(out) == ["000000.dcm", "000002.dcm", "000004.dcm"]
    assert dcmread(out / "000004.dcm").PatientID == "five"
    rejected = out / "rejected"
    assert sorted(p.name for p in rejected.iterdir()) == [
        "000001.error.json", "000001.json", "000003.error.json", "000003.json",
    ]  # fmt: skip
    # the saved JSON is the dataset as it came
    assert json.loads((rejected / "000001.json").read_text()) == BAD_KEY
    assert json.loads((rejected / "000003.json").read_text()) == BAD_NESTED
    reason = json.loads((rejected / "000001.error.json").read_text())
    assert reason["index"] == 1 and reason["exit_code"] == 65
    assert "0010002" in reason["message"] and "8 hexadecimal digits" in reason["message"]
    assert reason["path"] == "dataset 2"
    reason = json.loads((rejected / "000003.error.json").read_text())
    assert reason["index"] == 3 and reason["exit_code"] == 65
    assert "XX" in reason["message"]
    # the element path names the item (PS3.18 F.2; items numbered from 1, CONTRACT §2)
    assert reason["path"] == "dataset 4 (0008,1115)[1].(0008,1150)"
    # reported on stderr, DCMTK style
    assert re.search(r"^E: stdin: dataset 2: .*8 hexadecimal digits", run.stderr, re.M)
    assert re.search(r"^E: stdin: dataset 4 \(0008,1115\)\[1\]\.\(0008,1150\): ", run.stderr, re.M)
    assert not part_files(out)


def test_invalid_json_inside_a_dataset_rejects_that_dataset(tmp_path: Path) -> None:
    # the framing (brackets) still finds where the dataset ends: it is rejected like any
    # other invalid dataset, with the byte offset of the error, and the stream goes on
    bad = '{"00100020": {"vr": "LO", "Value": [oops]}}'
    lines = [json.dumps(DATASETS[0]), json.dumps(DATASETS[2]), bad, json.dumps(dataset(4, "four"))]
    infile = tmp_path / "in.json"
    text = "\n".join(lines) + "\n"
    infile.write_text(text)
    out = tmp_path / "out"
    run = run_stream(infile, out)
    assert run.rc == 65
    m = re.search(
        r"^E: stdin: dataset 3: invalid JSON: .*\(at byte offset (\d+)\)", run.stderr, re.M
    )
    assert m, run.stderr
    assert text.index(bad) <= int(m.group(1)) <= text.index("oops") + 4
    assert dcm_files(out) == ["000000.dcm", "000001.dcm", "000003.dcm"]
    assert dcmread(out / "000003.dcm").PatientID == "four"
    assert (out / "rejected" / "000002.json").read_text().strip() == bad
    reason = json.loads((out / "rejected" / "000002.error.json").read_text())
    assert (
        reason["index"] == 2 and reason["exit_code"] == 65 and "invalid JSON" in reason["message"]
    )


def test_invalid_json_between_datasets_stops_the_stream(tmp_path: Path) -> None:
    # where one dataset ends and the next begins is lost: the stream cannot go on (65,
    # with a byte offset); the datasets complete before it are converted, nothing after
    text = (
        json.dumps(DATASETS[0])
        + "\n"
        + json.dumps(DATASETS[2])
        + "}\n"
        + json.dumps(dataset(4, "four"))
    )
    infile = tmp_path / "in.json"
    infile.write_text(text)
    out = tmp_path / "out"
    run = run_stream(infile, out)
    assert run.rc == 65
    m = re.search(
        r"^E: stdin: invalid JSON: unexpected '}' \(at byte offset (\d+)\)", run.stderr, re.M
    )
    assert m, run.stderr
    assert int(m.group(1)) == len(json.dumps(DATASETS[0])) + 1 + len(json.dumps(DATASETS[2]))
    assert dcm_files(out) == ["000000.dcm", "000001.dcm"]
    assert dcmread(out / "000001.dcm").PatientID == "three"
    assert not (out / "rejected").exists()


def test_truncated_stream(tmp_path: Path) -> None:
    infile = tmp_path / "in.json"
    infile.write_text("[" + json.dumps(DATASETS[0]) + "," + json.dumps(DATASETS[2])[:-5])
    run = run_stream(infile, tmp_path / "out")
    assert run.rc == 65
    assert "truncated JSON input" in run.stderr and "byte offset" in run.stderr
    assert dcm_files(tmp_path / "out") == ["000000.dcm"]


def test_array_split_stops_at_the_first_failure(tmp_path: Path) -> None:
    # json2dcm --array-split keeps json2dcm's rule: the first invalid dataset ends the run
    # (65, named), no rejected/ folder, no temporary files
    docs = [DATASETS[0], BAD_KEY, DATASETS[2], BAD_NESTED]
    infile = tmp_path / "in.json"
    infile.write_text(json.dumps(docs))
    out = tmp_path / "out"
    run = run_json2dcm("+aS", str(infile), str(out))
    assert run.rc == 65
    assert re.search(r"^E: .*in\.json: dataset 2: .*8 hexadecimal digits", run.stderr, re.M), (
        run.stderr
    )
    assert "dataset 4" not in run.stderr
    assert "000000.dcm" in dcm_files(out)
    assert "000001.dcm" not in dcm_files(out)
    assert not (out / "rejected").exists()
    assert not part_files(out)


# -- 5. signals; file-name templates -------------------------------------------------------


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_cleanly(tmp_path: Path, signum: int, busy: bool) -> None:
    # issue 3: SIGINT/SIGTERM finish the datasets in hand and stop (128+N); the producer
    # keeps the pipe open all along
    out = tmp_path / "out"
    proc = start_stream(out, jobs=1 if signum == signal.SIGINT else 2)
    assert proc.stdin is not None
    try:
        proc.stdin.write(json.dumps(DATASETS[0]).encode() + b"\n")
        proc.stdin.flush()
        wait_for(lambda: (out / "000000.dcm").exists(), "the first file")
        if busy:  # a burst still being converted when the signal comes
            proc.stdin.write(b"".join(json.dumps(small(i)).encode() + b"\n" for i in range(300)))
            proc.stdin.flush()
        proc.send_signal(signum)
        run = finish_with_stdin_open(proc)
    finally:
        proc.stdin.close()
    assert run.rc == 128 + signum, run.stderr
    assert f"signal {int(signum)}" in run.stderr
    assert not part_files(out)
    names = dcm_files(out)
    assert names[0] == "000000.dcm"
    for name in names:  # every file written is complete
        dcmread(out / name)


def finish_with_stdin_open(proc: subprocess.Popen[bytes]) -> Run:
    try:
        proc.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("streamconv stream did not stop on the signal") from None
    assert proc.stderr is not None
    with proc.stderr:
        text = proc.stderr.read().decode("utf-8", "replace")
    assert "Traceback" not in text, text
    return Run(proc.returncode, text)


def test_filename_template_keywords(tmp_path: Path) -> None:
    docs = [
        DATASETS[0],
        {k: v for k, v in DATASETS[2].items() if k != "00080018"},  # no SOPInstanceUID
        dataset(3, "three"),
    ]
    infile = tmp_path / "in.json"
    infile.write_text("".join(json.dumps(d) + "\n" for d in docs))
    out = tmp_path / "out"
    template = "{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm"
    run = run_stream(infile, out, "--filename-template", template)
    assert run.rc == 65
    series = out / "1.2.826.0.1.3680043.10.543.100" / "1.2.826.0.1.3680043.10.543.200"
    assert sorted(p.name for p in series.iterdir()) == [
        "1.2.826.0.1.3680043.10.543.1.dcm", "1.2.826.0.1.3680043.10.543.3.dcm",
    ]  # fmt: skip
    reason = json.loads((out / "rejected" / "000001.error.json").read_text())
    assert (
        reason["message"]
        == "--filename-template needs SOPInstanceUID, which dataset 2 does not have"
    )
    assert "dataset 2" in run.stderr and "SOPInstanceUID" in run.stderr
    assert not part_files(out)


def test_filename_template_values_stay_inside(tmp_path: Path) -> None:
    # CONTRACT §6: unsafe characters replaced so that a value can never leave the directory
    ids = ["../../escape", "a/b", "..", "/abs", "ok"]
    docs = [dataset(i + 1, pid) for i, pid in enumerate(ids)]
    infile = tmp_path / "in.json"
    infile.write_text(json.dumps(docs))
    work = tmp_path / "work"
    out = work / "out"
    run = run_stream(infile, out, "--filename-template", "{PatientID}/{index:03d}.dcm")
    assert run.rc == 0, run.stderr
    assert sorted(p.name for p in work.iterdir()) == ["out"]  # nothing beside it
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.dcm"))
    assert len(written) == len(ids)
    for rel in written:
        assert ".." not in rel.split("/") and not rel.startswith("/")
        assert (out / rel).resolve().is_relative_to(out.resolve())
    assert "ok/004.dcm" in written
    # each file holds its own dataset
    by_index = {int(rel.rsplit("/", 1)[1][:3]): rel for rel in written}
    for i, pid in enumerate(ids):
        assert dcmread(out / by_index[i]).PatientID == pid


# -- 6. large arrays through +as n and +ar -------------------------------------------------

LARGE = 3000


@pytest.fixture(scope="module")
def large_array(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("large") / "large.json"
    path.write_bytes(array_doc(LARGE))
    return path


@pytest.mark.parametrize("n", [1, 1717, LARGE])
def test_select_in_large_array(tmp_path: Path, large_array: Path, n: int) -> None:
    run = run_json2dcm("+as", str(n), str(large_array), str(tmp_path / "out.dcm"))
    assert run.rc == 0, run.stderr
    ds = dcmread(tmp_path / "out.dcm")
    assert ds.PatientID == f"p{n - 1}"
    assert ds.SOPInstanceUID == f"1.2.826.0.1.3680043.10.543.{n}"


def test_select_beyond_large_array(tmp_path: Path, large_array: Path) -> None:
    # A8: n > count -> 65 with DCMTK's message, nothing written
    run = run_json2dcm("+as", str(LARGE + 1), str(large_array), str(tmp_path / "out.dcm"))
    assert run.rc == 65
    assert (
        f"E: {large_array}: found JSON array containing {LARGE} DICOM datasets, "
        f"cannot store dataset no. {LARGE + 1}"
    ) in run.stderr
    assert not (tmp_path / "out.dcm").exists()
    assert not part_files(tmp_path)


def test_sequence_of_large_array(tmp_path: Path, large_array: Path) -> None:
    run = run_json2dcm("+ar", str(large_array), str(tmp_path / "out.dcm"))
    assert run.rc == 0, run.stderr
    ds = dcmread(tmp_path / "out.dcm")
    assert ds[0x00090010].value == LIST_CREATOR
    items = ds[0x00091000].value
    assert [item.PatientID for item in items] == [f"p{i}" for i in range(LARGE)]
    # the meta header takes the first nested SOP UIDs (§8, §9.1)
    assert ds.file_meta.MediaStorageSOPInstanceUID == "1.2.826.0.1.3680043.10.543.1"


# -- in-process: the engine's stop event ------------------------------------------------------


@pytest.mark.anyio
async def test_stop_event_ends_a_quiet_stream(tmp_path: Path) -> None:
    # what SIGINT/SIGTERM do in `streamconv stream`: the stop event ends a read that waits
    # on a pipe the producer keeps open and quiet; the datasets in hand are converted
    read_fd, write_fd = os.pipe()
    stop = anyio.Event()
    summaries = []
    options = ConvertOptions(array_policy=ArrayPolicy.SPLIT)

    async def engine() -> None:
        summaries.append(await convert_stream(read_fd, str(tmp_path), options, jobs=1, stop=stop))

    try:
        os.write(
            write_fd, json.dumps(DATASETS[0]).encode() + b"\n" + json.dumps(DATASETS[2]).encode()
        )
        with anyio.fail_after(DEADLINE):
            async with anyio.create_task_group() as tg:
                tg.start_soon(engine)
                while len(dcm_files(tmp_path)) < 2:  # noqa: ASYNC110 - polling the filesystem
                    await anyio.sleep(0.05)
                stop.set()  # the pipe stays open: without the event this would wait forever
    finally:
        os.close(write_fd)
        os.close(read_fd)
    assert dcm_files(tmp_path) == ["000000.dcm", "000001.dcm"]
    (summary,) = summaries
    assert (summary.datasets, summary.converted, summary.rejected) == (2, 2, 0)
