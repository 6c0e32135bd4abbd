"""The embedded cluster's start (issue 13, batch at stream's pace): workers forked with the
converter already imported, the default SIGTERM in them, a user's start method honoured,
no cluster started for an engine closed unused; and the end of a run: temporaries swept
by name."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest

from streamconv.batch.engine import DaskEngine
from streamconv.storage import Store

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork on Linux only")


def _probes(engine: DaskEngine) -> list[tuple[bool, bool, int]]:
    engine.wait_ready()

    def probe() -> tuple[bool, bool, int]:
        # nested: pickled by value, so a worker imports nothing of this test module
        import os
        import signal
        import sys

        return (
            "streamconv.core.build" in sys.modules,
            signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
            os.getppid(),
        )

    return list(engine.client.run(probe).values())


def test_workers_are_forked_with_the_converter_and_the_default_sigterm() -> None:
    # this process's own SIGTERM handler (as `streamconv batch` sets one) must not reach them
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    engine = DaskEngine(2, None, False)
    try:
        probes = _probes(engine)
    finally:
        engine.close()
        signal.signal(signal.SIGTERM, previous)
    assert len(probes) == 2
    for imported, default_sigterm, parent in probes:
        assert imported  # a spawned worker would import it at its first task
        assert default_sigterm
        assert parent == os.getpid()  # the nanny lives here: forked from this process


def test_a_start_method_of_the_user_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD", "spawn")
    engine = DaskEngine(1, None, False)
    try:
        ((imported, _, _),) = _probes(engine)
    finally:
        engine.close()
    assert not imported  # spawned: a fresh interpreter that has run no task yet


def test_an_engine_closed_unused_starts_no_cluster() -> None:
    engine = DaskEngine(2, None, False)
    engine.close()
    assert engine.cluster is None and engine.client is None
    assert engine.error is None


def test_sweep_removes_temporaries_by_name_only(tmp_path: Path) -> None:
    keep = [tmp_path / "a.dcm", tmp_path / "s" / ".hidden", tmp_path / "s" / "t" / "b.dcm",
            tmp_path / "s" / ".b.dcm.0123456789ab.partial"]  # fmt: skip
    temps = [
        tmp_path / ".a.dcm.0123456789ab.part",
        tmp_path / "s" / "t" / ".b.dcm.ffffffffffff.part",
    ]
    for path in keep + temps:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert Store.for_url(str(tmp_path)).sweep(str(tmp_path)) == 2
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(keep)


def _forked_children(pid: int) -> list[int]:
    """The batch process's children that are forks of it (its cmdline): the Dask workers."""
    from batchlib import children

    own = Path(f"/proc/{pid}/cmdline").read_bytes()
    kids: list[int] = []
    for child in sorted(children(pid)):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{child}/cmdline").read_bytes() == own:
                kids.append(child)
    return kids


def test_a_forked_worker_killed_mid_run_is_replaced_and_nothing_is_lost(tmp_path: Path) -> None:
    # the nanny forks the replacement from the batch process while its threads are busy
    # (driver, Dask's event loop): the run must still end with every output once, identical
    import subprocess

    from batchlib import DEADLINE, alive, dataset, json2dcm, lines, ndjson, tree, wait_for

    n = 3000
    src = tmp_path / "in" / "series.ndjson"
    src.parent.mkdir()
    src.write_bytes(ndjson(dataset(i) for i in range(n)))
    assert json2dcm("--array-split", src, tmp_path / "ref").returncode == 0
    out, report = tmp_path / "out", tmp_path / "report"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamconv", "batch", str(src), "--output", str(out),
         "--report", str(report), "--jobs", "2", "--batch-size", "25"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(
            lambda: (
                (report / "success.ndjson").exists()
                and len((report / "success.ndjson").read_bytes().splitlines()) >= 200
            ),
            "the first tasks to complete",
        )
        workers = _forked_children(proc.pid)
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        at_kill = len((report / "success.ndjson").read_bytes().splitlines())
        assert proc.poll() is None and at_kill < n  # really killed mid-run
        seen = set(workers)

        def replaced() -> bool:  # the nanny's new fork, unless the run ended first
            if proc.poll() is not None:
                return True
            with contextlib.suppress(OSError):
                seen.update(_forked_children(proc.pid))
            return len(seen) > 2

        wait_for(replaced, "the killed worker to be replaced")
        _, err = proc.communicate(timeout=DEADLINE * 3)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err
    assert sorted(s["index"] for s in lines(report / "success.ndjson")) == list(range(n))
    assert tree(out / "series") == tree(tmp_path / "ref")  # every output once, identical
    assert sorted(os.listdir(out)) == ["series"]  # no temporaries
    wait_for(lambda: not any(alive(pid) for pid in seen), "every worker to exit")
