"""The embedded cluster's start (issue 13, batch at stream's pace): workers forked with the
converter already imported, the default SIGTERM in them, a user's start method honoured,
no cluster started for an engine closed unused; and the end of a run: temporaries swept
by name."""

from __future__ import annotations

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
