"""`streamconv batch --cluster`: a real Dask cluster on loopback (issue 13).

The test starts `dask scheduler` and two `dask worker` processes itself, kills one worker
with SIGKILL while the batch runs, and checks that every output is present exactly once
and identical to json2dcm --array-split; the cluster is still up after the batch.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from batchlib import DEADLINE, dataset, free_port, json2dcm, lines, ndjson, tree, wait_for

N = 800  # datasets in the NDJSON; --batch-size 20 makes 40 tasks


def _dask() -> str:
    exe = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which("dask")
    if exe is None:
        pytest.fail("the dask command is missing: pip install '.[test]'")
    return exe


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log = tmp / "cluster.log"
        self._log = open(self.log, "wb")  # noqa: SIM115 (closed in stop)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([_dask(), *args], stdout=self._log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def info(self) -> dict[str, Any]:
        import distributed

        dd: Any = distributed  # untyped
        with dd.Client(self.address, timeout="10s") as client:
            info: dict[str, Any] = client.scheduler_info()
            return info

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=DEADLINE)
        self._log.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    c.start("scheduler", "--host", "127.0.0.1", "--port", str(c.port), "--no-dashboard")
    for name in ("w1", "w2"):
        c.start(
            "worker", c.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
            "--host", "127.0.0.1", "--name", name,
        )  # fmt: skip
    try:
        wait_for(lambda: _workers(c) == 2, "two workers registered with the scheduler")
        yield c
    finally:
        c.stop()


def _workers(c: Cluster) -> int:
    try:
        return len(c.info()["workers"])
    except OSError:
        return 0


def test_worker_killed_mid_run(tmp_path: Path, cluster: Cluster) -> None:
    src = tmp_path / "in" / "series.ndjson"
    src.parent.mkdir()
    src.write_bytes(ndjson(dataset(i) for i in range(N)))
    assert json2dcm("--array-split", "+te", src, tmp_path / "ref").returncode == 0
    out, report = tmp_path / "out", tmp_path / "report"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamconv", "batch", str(src.parent), "--output", str(out),
         "--report", str(report), "--cluster", cluster.address, "--batch-size", "20", "+te"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(
            lambda: (
                (report / "success.ndjson").exists()
                and len((report / "success.ndjson").read_bytes().splitlines()) >= 100
            ),
            "the first tasks to complete",
        )
        victim = cluster.procs[1]  # worker w1, busy with its share of the tasks
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=DEADLINE)
        at_kill = len((report / "success.ndjson").read_bytes().splitlines())
        assert proc.poll() is None and at_kill < N  # really killed mid-run
        _, err = proc.communicate(timeout=DEADLINE * 3)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
    done = len(lines(report / "success.ndjson"))
    assert done == N  # each dataset reported exactly once
    ref = tree(tmp_path / "ref")
    assert tree(out / "series") == ref  # every output present once and identical
    assert sorted(os.listdir(out)) == ["series"]  # nothing else: no temporaries
    assert len(cluster.info()["workers"]) == 1  # the cluster is still up: never shut down
    assert cluster.procs[0].poll() is None
