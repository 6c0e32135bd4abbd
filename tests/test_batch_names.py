"""Output names that two inputs, or two datasets, would share: never replaced without a word.

Real processes (``streamconv batch --jobs 1``, the in-process engine: the checks run in the
driver, the same for every engine) on real files.
"""

from __future__ import annotations

import json
from pathlib import Path

from batchlib import dataset, json2dcm, lines, ndjson, streamconv, tree


def test_inputs_of_one_name_the_first_keeps_it(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x.json").write_text(json.dumps(dataset(0)))
    (b / "x.json").write_text(json.dumps(dataset(1)))  # another file SOURCE of the same name
    (a / "x.ndjson").write_bytes(ndjson([dataset(2), dataset(3)]))  # same name, other extension
    ref = tmp_path / "ref.dcm"
    assert json2dcm(a / "x.json", ref).returncode == 0
    out, report = tmp_path / "out", tmp_path / "report"

    run = streamconv(
        "batch", a / "x.json", b / "x.json", a / "x.ndjson", "-o", out, "--report", report,
        "-j", "1",
    )  # fmt: skip

    assert run.returncode == 65, run.stderr
    assert tree(out) == {"x.dcm": ref.read_bytes()}  # the first input's, whole
    failures = sorted(lines(report / "failure.ndjson"), key=lambda f: str(f["source"]))
    assert [(f["source"], f["index"], f["exit_code"], f["category"]) for f in failures] == [
        (str(a / "x.ndjson"), None, 40, "output"),
        (str(b / "x.json"), None, 40, "output"),
    ]
    for f in failures:
        assert str(a / "x.json") in f["message"]  # names the input that keeps the name
        assert f"{f['source']}: " in run.stderr
    assert [(s["source"], s["index"]) for s in lines(report / "success.ndjson")] == [
        (str(a / "x.json"), 0)
    ]
    summary = json.loads((report / "summary.json").read_text())
    assert (summary["inputs"], summary["converted"], summary["failed"]) == (3, 1, 2)


def test_keyword_names_repeated_across_tasks_are_reported(tmp_path: Path) -> None:
    # one NDJSON big enough to be split (4 MiB) into tasks of 100 datasets; datasets 5 and
    # 550 share a SOP Instance UID and so a {SOPInstanceUID} name, in different tasks
    datasets = [dataset(i) for i in range(620)]
    datasets[550]["00080018"] = datasets[5]["00080018"]
    src = tmp_path / "big.ndjson"
    src.write_bytes(ndjson(datasets))
    assert src.stat().st_size >= 4 << 20
    out, report = tmp_path / "out", tmp_path / "report"

    run = streamconv(
        "batch", src, "-o", out, "--report", report, "-j", "1", "--batch-size", "100",
        "--filename-template", "{SOPInstanceUID}.dcm",
    )  # fmt: skip

    assert run.returncode == 65, run.stderr
    summary = json.loads((report / "summary.json").read_text())
    assert summary["tasks"] > 1
    assert (summary["converted"], summary["failed"]) == (619, 1)
    (failure,) = lines(report / "failure.ndjson")
    assert (failure["index"], failure["exit_code"]) in ((550, 65), (5, 65))
    assert "same name" in failure["message"]
    assert len(tree(out)) == 619
    uid = datasets[5]["00080018"]["Value"][0]
    outputs = [s["output"] for s in lines(report / "success.ndjson")]
    assert outputs.count(str(out / "big" / f"{uid}.dcm")) == 1


def test_a_template_without_the_index_repeats_for_every_dataset(tmp_path: Path) -> None:
    src = tmp_path / "arr.json"
    src.write_text(json.dumps([dataset(0), dataset(1), dataset(2)]))
    out = tmp_path / "out"
    out.mkdir()

    run = json2dcm("--array-split", "--filename-template", "same.dcm", src, out)

    assert run.returncode == 65, run.stderr  # it stops at the first failing dataset
    # the workers finish in any order: which two datasets meet first is not fixed
    said = f"--filename-template gives the same name '{out / 'same.dcm'}' as dataset "
    assert said in run.stderr, run.stderr
    assert list(tree(out)) == ["same.dcm"]

    report = tmp_path / "report"
    run = streamconv(
        "batch", src, "-o", tmp_path / "o2", "--report", report, "-j", "1",
        "--filename-template", "same.dcm",
    )  # fmt: skip
    assert run.returncode == 65, run.stderr
    assert sorted(f["index"] for f in lines(report / "failure.ndjson")) == [1, 2]
