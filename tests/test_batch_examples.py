"""examples/dask_api.py, the Dask example of the Python API, run as a user runs it.

(The Spark and Ray files in examples/ are recipes: their engines are not installed here.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from batchlib import DEADLINE, ROOT, bad_dataset, dataset, json2dcm, ndjson, tree


def test_dask_example(tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.json").write_text(json.dumps(dataset(0)))
    (src / "b.ndjson").write_bytes(ndjson([dataset(1), bad_dataset(2), dataset(3)]))
    ref = tmp_path / "ref"
    (ref / "sub").mkdir(parents=True)
    assert json2dcm("+te", src / "sub" / "a.json", ref / "sub" / "a.dcm").returncode == 0
    for i, n in ((1, 0), (3, 2)):
        (tmp_path / f"{i}.json").write_text(json.dumps(dataset(i)))
        (ref / "b").mkdir(exist_ok=True)
        assert json2dcm("+te", tmp_path / f"{i}.json", ref / "b" / f"{n:06d}.dcm").returncode == 0
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "dask_api.py"), str(src), str(tmp_path / "out"), "+te"],
        capture_output=True, text=True, timeout=DEADLINE * 2,
    )  # fmt: skip
    assert run.returncode == 65, run.stderr  # one dataset failed
    assert "3 converted, 1 failed" in run.stdout
    assert "b.ndjson dataset 1: 65" in run.stderr
    assert tree(tmp_path / "out") == tree(ref)
