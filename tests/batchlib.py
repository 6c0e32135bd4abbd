"""Helpers of the batch and API tests (issue 13): datasets, reference runs, trees, ports."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CT = json.loads((ROOT / "examples" / "ct.json").read_text())
DEADLINE = 60.0  # seconds: generous bounds for a loaded 2-core machine


def dataset(i: int) -> dict[str, Any]:
    """The example CT header with its own SOP Instance UID and instance number."""
    ds: dict[str, Any] = copy.deepcopy(CT)
    ds["00080018"] = {"vr": "UI", "Value": [f"1.2.826.0.1.3680043.10.1.{i + 1}"]}
    ds["00200013"] = {"vr": "IS", "Value": [i + 1]}
    return ds


BAD = {"00100010": {"vr": "US", "Value": ["not a number"]}}  # 65 at (0010,0010)
UNSUPPORTED = {"7FE00010": {"vr": "OB", "BulkDataURI": "urn:example:nothing"}}  # 66


def bad_dataset(i: int, kind: dict[str, Any] = BAD) -> dict[str, Any]:
    ds = dataset(i)
    ds.update(kind)
    return ds


def ndjson(datasets: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(d, separators=(",", ":")).encode() + b"\n" for d in datasets)


def array(datasets: Iterable[dict[str, Any]]) -> bytes:
    return b"[" + b",\n".join(json.dumps(d).encode() for d in datasets) + b"]\n"


def json2dcm(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """The json2dcm command as a real process (the reference outputs)."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from streamconv.cli import main_entry; main_entry()",
            *map(str, args),
        ],
        capture_output=True,
        text=True,
        timeout=DEADLINE * 2,
    )


def streamconv(*args: str | os.PathLike[str], env: dict[str, str] | None = None,
               timeout: float = DEADLINE * 3) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "streamconv", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by its relative path, with its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def references(datasets: list[dict[str, Any]], names: list[Path], *opts: str) -> None:
    """json2dcm's output for each dataset at its own name, from one json2dcm --array-split
    process (its outputs are json2dcm's bytes for each dataset alone; one process instead
    of one per dataset keeps the tests fast)."""
    tmp = names[0].parent / ".references"
    tmp.mkdir(parents=True)
    (tmp / "all.ndjson").write_bytes(ndjson(datasets))
    run = json2dcm("--array-split", *opts, tmp / "all.ndjson", tmp / "out")
    assert run.returncode == 0, run.stderr
    for i, name in enumerate(names):
        name.parent.mkdir(parents=True, exist_ok=True)
        (tmp / "out" / f"{i:06d}.dcm").rename(name)
    (tmp / "all.ndjson").unlink()
    (tmp / "out").rmdir()
    tmp.rmdir()


def children(pid: int) -> set[int]:
    """The child processes of ``pid`` (all its threads' children, from /proc)."""
    out: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out.update(int(c) for c in f.read().split())
    return out


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (exists and is not a zombie waiting to be reaped)."""
    try:
        return b"zombie" not in Path(f"/proc/{pid}/status").read_bytes().lower()
    except OSError:
        return False
