"""`streamconv batch` on one machine (issue 13): in-process, a LocalCluster of two worker
processes, the report, --resume after kill -9 of the whole batch.

Every output is compared byte for byte with json2dcm (one-dataset inputs) or
json2dcm --array-split (several datasets) run as real processes on the same inputs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from batchlib import (
    DEADLINE,
    UNSUPPORTED,
    alive,
    array,
    bad_dataset,
    children,
    dataset,
    json2dcm,
    lines,
    ndjson,
    references,
    streamconv,
    tree,
    wait_for,
)

BIG = 400  # datasets of the NDJSON/array that is split into byte ranges (>= 4 MiB)


def _inputs(root: Path) -> Path:
    """A directory SOURCE: one-dataset files in sub-folders, an NDJSON with two bad
    datasets, a big array, a JSON syntax error, and a file that is not JSON input."""
    src = root / "in"
    (src / "ct" / "series1").mkdir(parents=True)
    for i in range(3):
        (src / "ct" / "series1" / f"img{i}.json").write_text(json.dumps(dataset(i)))
    (src / "one-in-array.json").write_bytes(array([dataset(10)]))
    (src / "mixed.ndjson").write_bytes(
        ndjson([dataset(20), bad_dataset(21), dataset(22), bad_dataset(23, UNSUPPORTED)])
    )
    (src / "big.json").write_bytes(array(dataset(100 + i) for i in range(BIG)))
    (src / "broken.json").write_bytes(b'{"00100010": {"vr": "PN", "Value": [')
    (src / "notes.txt").write_text("not an input")
    return src


def _references(src: Path, ref: Path, *opts: str) -> None:
    """json2dcm's outputs for the good inputs, named as batch names them."""
    for name in ("ct/series1/img0", "ct/series1/img1", "ct/series1/img2", "one-in-array"):
        (ref / name).parent.mkdir(parents=True, exist_ok=True)
        run = json2dcm(*opts, src / f"{name}.json", ref / f"{name}.dcm")
        assert run.returncode == 0, run.stderr
    run = json2dcm("--array-split", *opts, src / "big.json", ref / "big")
    assert run.returncode == 0, run.stderr
    good = src.parent / "mixed-good"
    good.mkdir()
    for i in (20, 22):
        (good / f"{i}.json").write_text(json.dumps(dataset(i)))
        run = json2dcm(*opts, good / f"{i}.json", good / f"{i}.dcm")
        assert run.returncode == 0, run.stderr
    (ref / "mixed").mkdir()
    (ref / "mixed" / "000000.dcm").write_bytes((good / "20.dcm").read_bytes())
    (ref / "mixed" / "000002.dcm").write_bytes((good / "22.dcm").read_bytes())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("batch-local")
    src = _inputs(root)
    _references(src, root / "ref", "+te")
    return src, tree(root / "ref")


def _expected_failures(src: Path) -> list[tuple[str, Any, int, str]]:
    return sorted(
        [
            (str(src / "mixed.ndjson"), 1, 65, "content"),
            (str(src / "mixed.ndjson"), 3, 66, "unsupported-uri"),
            (str(src / "broken.json"), 0, 65, "json-syntax"),
        ],
        key=str,
    )


def _check_run(src: Path, out: Path, report: Path, ref: dict[str, bytes], *, jobs: int) -> None:
    assert tree(out) == ref  # byte-identical, nothing else in DEST (no temporaries)
    ok = lines(report / "success.ndjson")
    assert len(ok) == len(ref)
    expected = (
        {(str(src / "big.json"), i, str(out / "big" / f"{i:06d}.dcm")) for i in range(BIG)}
        | {
            (str(src / "mixed.ndjson"), 0, str(out / "mixed" / "000000.dcm")),
            (str(src / "mixed.ndjson"), 2, str(out / "mixed" / "000002.dcm")),
            (str(src / "one-in-array.json"), 0, str(out / "one-in-array.dcm")),
        }
        | {
            (
                str(src / "ct" / "series1" / f"img{i}.json"),
                0,
                str(out / "ct" / "series1" / f"img{i}.dcm"),
            )
            for i in range(3)
        }
    )
    assert {(x["source"], x["index"], x["output"]) for x in ok} == expected
    for x in ok:
        assert x["bytes"] == len(ref[str(Path(x["output"]).relative_to(out))])
    by_output = {x["output"]: x["sop_instance_uid"] for x in ok}
    assert by_output[str(out / "big" / "000007.dcm")] == "1.2.826.0.1.3680043.10.1.108"
    bad = lines(report / "failure.ndjson")
    got = sorted(((x["source"], x["index"], x["exit_code"], x["category"]) for x in bad), key=str)
    assert got == _expected_failures(src)
    by_index = {(x["source"], x["index"]): x for x in bad}
    assert "(0010,0010)" in by_index[(str(src / "mixed.ndjson"), 1)]["path"]
    assert {"source", "index", "exit_code", "category", "message", "path"} <= set(bad[0])
    summary = json.loads((report / "summary.json").read_text())
    assert {k: summary[k] for k in ("inputs", "datasets", "converted", "failed", "skipped")} == {
        "inputs": 7,
        "datasets": len(ref) + 3,
        "converted": len(ref),
        "failed": 3,
        "skipped": 0,
    }


def test_in_process_without_dask(tmp_path: Path, corpus: tuple[Path, dict[str, bytes]]) -> None:
    src, ref = corpus
    out, report = tmp_path / "out" / "new", tmp_path / "report" / "new"  # created when missing
    code = (
        "import sys\n"
        "from streamconv.umbrella import main\n"
        "rc = main(sys.argv[1:])\n"
        "assert not any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules)\n"
        "sys.exit(rc)\n"
    )
    # json2dcm options on both sides of the batch options
    argv = ["batch", "+te", str(src), "--jobs", "1", "-o", str(out), "--report", str(report)]
    run = subprocess.run(
        [sys.executable, "-c", code, *argv, "--batch-size", "64", "-q"],
        capture_output=True,
        text=True,
        timeout=DEADLINE * 3,
    )
    assert run.returncode == 65, run.stderr  # something failed, whatever its own code (66)
    _check_run(src, out, report, ref, jobs=1)
    summary = json.loads((report / "summary.json").read_text())
    assert summary["tasks"] > BIG // 64  # the big array was cut into byte ranges


def test_local_cluster_two_workers(tmp_path: Path, corpus: tuple[Path, dict[str, bytes]]) -> None:
    src, ref = corpus
    out, report = tmp_path / "out", tmp_path / "report"
    run = streamconv(
        "batch", str(src), "--output", out, "--report", report, "--jobs", "2",
        "--batch-size", "50", "+te",
    )  # fmt: skip
    assert run.returncode == 65, run.stderr
    assert "Traceback" not in run.stderr
    _check_run(src, out, report, ref, jobs=2)
    summary = json.loads((report / "summary.json").read_text())
    assert summary["engine"] == "dask" and summary["workers"] == 2
    assert summary["workers_used"] == 2  # the split array kept both workers busy


def test_all_good_exits_0_and_template_with_name(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.ndjson").write_bytes(ndjson([dataset(0), dataset(1)]))
    (tmp_path / "in" / "b.json").write_text(json.dumps(dataset(2)))
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'in' / 'a.ndjson'}\n\n{tmp_path}/in/b.*\n")
    out = tmp_path / "out"
    run = streamconv(
        "batch", f"@{tmp_path / 'list.txt'}", "-o", out, "-j", "1",
        "--filename-template", "{name}-{index:03d}.dcm",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert sorted(tree(out)) == ["a-000.dcm", "a-001.dcm", "b-000.dcm"]


def test_usage_and_unwritable_dest(tmp_path: Path) -> None:
    assert streamconv("batch", "--help").returncode == 0
    assert streamconv("batch", str(tmp_path)).returncode == 1  # no --output
    assert streamconv("batch", "-o", str(tmp_path / "o")).returncode == 1  # no SOURCE
    assert streamconv("batch", "x.json", "-o", str(tmp_path), "+bogus").returncode == 1
    blocker = tmp_path / "file"
    blocker.write_text("")
    (tmp_path / "a.json").write_text(json.dumps(dataset(0)))
    run = streamconv("batch", str(tmp_path / "a.json"), "-o", blocker / "sub", "-j", "1")
    assert run.returncode == 40, run.stderr


def test_missing_source_is_a_failure_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(dataset(0)))
    report = tmp_path / "r"
    run = streamconv(
        "batch", tmp_path / "a.json", tmp_path / "nope.json", "-o", tmp_path / "o",
        "--report", report, "-j", "1",
    )  # fmt: skip
    assert run.returncode == 65
    (bad,) = lines(report / "failure.ndjson")
    assert (bad["source"], bad["index"], bad["exit_code"]) == (
        str(tmp_path / "nope.json"),
        None,
        20,
    )
    assert (tmp_path / "o" / "a.dcm").exists()


def test_resume_after_kill_9(tmp_path: Path) -> None:
    """kill -9 of the whole batch (its process group) mid-run; --resume converts only
    what is missing; a second --resume converts nothing."""
    src = tmp_path / "in"
    src.mkdir()
    n_files = 120
    for i in range(n_files):
        (src / f"f{i:03d}.json").write_text(json.dumps(dataset(i)))
    (src / "big.ndjson").write_bytes(ndjson(dataset(1000 + i) for i in range(BIG)))
    ref = tmp_path / "ref"
    assert json2dcm("--array-split", src / "big.ndjson", ref / "big").returncode == 0
    references(
        [dataset(i) for i in range(n_files)], [ref / f"f{i:03d}.dcm" for i in range(n_files)]
    )
    out, report = tmp_path / "out", tmp_path / "report"
    argv = [sys.executable, "-m", "streamconv", "batch", str(src), "-o", str(out),
            "--report", str(report), "--jobs", "2", "--batch-size", "40"]  # fmt: skip
    proc = subprocess.Popen(argv, start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        wait_for(
            lambda: (
                (report / "success.ndjson").exists()
                and len((report / "success.ndjson").read_bytes().splitlines()) >= 100
            ),
            "the first tasks to complete",
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=DEADLINE)
    done_before = {(x["source"], x["index"]) for x in lines(report / "success.ndjson")}
    total = n_files + BIG
    assert 100 <= len(done_before) < total  # really killed mid-run
    run = subprocess.run(
        [*argv, "--resume", "-q"], capture_output=True, text=True, timeout=DEADLINE * 3
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads((report / "summary.json").read_text())
    assert summary["skipped"] >= len(done_before) - 40  # a half-reported task may be redone
    assert summary["converted"] + summary["skipped"] == total
    assert summary["converted"] < total
    assert tree(out) == tree(ref)  # every output once, identical, no temporaries left
    ok = lines(report / "success.ndjson")
    assert sorted((x["source"], x["index"]) for x in ok) == sorted(
        {(x["source"], x["index"]) for x in ok}
    )
    assert len(ok) == total
    again = subprocess.run(
        [*argv, "--resume", "-q"], capture_output=True, text=True, timeout=DEADLINE * 3
    )
    assert again.returncode == 0, again.stderr
    summary = json.loads((report / "summary.json").read_text())
    assert (summary["converted"], summary["skipped"]) == (0, total)
    assert len(lines(report / "success.ndjson")) == total


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    """SIGTERM: the workers are stopped, temporaries swept, the report written, exit 143,
    and no process of the batch is left."""
    src = tmp_path / "big.ndjson"
    src.write_bytes(ndjson(dataset(i) for i in range(BIG)))
    out, report = tmp_path / "out", tmp_path / "report"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamconv", "batch", str(src), "-o", str(out), "--report",
         str(report), "--jobs", "2", "--batch-size", "10"],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(
            lambda: (
                (report / "success.ndjson").exists()
                and len((report / "success.ndjson").read_bytes().splitlines()) >= 20
            ),
            "the first tasks to complete",
        )
        kids = children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    assert b"Traceback" not in err
    summary = json.loads((report / "summary.json").read_text())
    assert summary["stopped_by_signal"] == signal.SIGTERM
    assert summary["converted"] == len(lines(report / "success.ndjson")) < BIG
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temporary left
    wait_for(lambda: not any(alive(k) for k in kids), "the workers to exit")


def test_select_policy_is_one_output_per_input(tmp_path: Path) -> None:
    """+as n (and +ar): one output per input, NAME.dcm, as json2dcm writes it."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "s.ndjson").write_bytes(ndjson([dataset(0), dataset(1), dataset(2)]))
    assert json2dcm("+as", "2", src / "s.ndjson", tmp_path / "ref.dcm").returncode == 0
    run = streamconv("batch", src, "+as", "2", "-o", tmp_path / "out", "-j", "1")
    assert run.returncode == 0, run.stderr
    assert tree(tmp_path / "out") == {"s.dcm": (tmp_path / "ref.dcm").read_bytes()}
