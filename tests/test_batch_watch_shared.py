"""Two `streamconv watch` daemons on one shared inbox, polling (issue 13, item 3).

The rename-claim lets exactly one daemon take each input; with --force-polling neither
depends on inotify seeing the other clients' writes (NFS, SMB).  Every input must be
converted exactly once, by one daemon or the other, each output identical to json2dcm's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from batchlib import DEADLINE, dataset, references, tree, wait_for

N = 60


def _ready(log: Path) -> Callable[[], bool]:
    return lambda: b"I: ready" in log.read_bytes()


def test_two_daemons_share_one_inbox(tmp_path: Path) -> None:
    inbox, out = tmp_path / "spool" / "inbox", tmp_path / "out"
    inbox.mkdir(parents=True)
    staging = tmp_path / "staging"
    staging.mkdir()
    ref = tmp_path / "ref"
    ref.mkdir()
    for i in range(N):
        (staging / f"f{i:02d}.json").write_text(json.dumps(dataset(i)))
    references([dataset(i) for i in range(N)], [ref / f"f{i:02d}.dcm" for i in range(N)])
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for log in logs:
            with open(log, "wb") as f:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "streamconv", "watch", str(inbox), "--output-dir",
                     str(out), "--force-polling", "--jobs", "1", "--rescan-interval", "1"],
                    stdout=f, stderr=subprocess.STDOUT,
                ))  # fmt: skip
            # one after the other: two daemons starting at the same instant is a known race
            # of the daemon's start-up (reported to its owner), not what is tested here
            wait_for(_ready(log), f"{log.name} ready")
        for i in range(N):  # producers write elsewhere and rename in (the daemon's contract)
            os.rename(staging / f"f{i:02d}.json", inbox / f"f{i:02d}.json")
        done = tmp_path / "spool" / "done"
        wait_for(lambda: done.exists() and len(os.listdir(done)) == N, "every input done")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=DEADLINE)
    assert [p.returncode for p in procs] == [0, 0]
    assert tree(out) == tree(ref)  # each output once, identical, no temporaries
    converted = [log.read_text().count("I: done ") for log in logs]
    assert sum(converted) == N  # each input converted exactly once, by one of the two
    assert sorted(os.listdir(done)) == sorted(f"f{i:02d}.json" for i in range(N))
    assert os.listdir(inbox) == []
