"""Shared helpers of the benchmark scripts: timed child processes, peak RSS, tables, machine info."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

__all__ = [
    "BENCH_DIR",
    "REPO",
    "Row",
    "Run",
    "fmt_mib",
    "loadavg",
    "machine_info",
    "median_run",
    "print_table",
    "run",
    "script",
    "use_bytecode_cache",
    "verdict",
    "wait_idle",
    "write_json_line",
]

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
GNU_TIME = "/usr/bin/time"


def script(name: str) -> str:
    """A console script of the running interpreter's environment (the venv's json2dcm)."""
    path = Path(sys.executable).parent / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"bench: console script '{name}' not found (pip install -e .)")
    return found


@dataclass(slots=True)
class Run:
    """One child process: wall time, its peak RSS and the sampled peak RSS of its process tree."""

    wall: float  # seconds
    maxrss: int  # KiB, ru_maxrss of the child (the largest process of its tree, Linux)
    tree_rss: int  # KiB, peak of the summed RSS of the child and its descendants (sampled)
    rc: int
    stderr: str = ""
    cpu: float = 0.0  # seconds, user + system of the child and its waited-for descendants


def _tree_rss(pid: int) -> int:
    """Summed VmRSS (KiB) of ``pid`` and its descendants, from /proc."""
    total = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmRSS:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", "rb") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return total


def run(
    cmd: Sequence[str],
    *,
    stdin: str | os.PathLike[str] | None = None,
    stdout: str | os.PathLike[str] | None = None,
    check: bool = True,
    sample: bool = True,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> Run:
    """Run ``cmd``, timing it; peak RSS from GNU time, tree RSS sampled every 5 ms.

    Linux keeps a process's RSS high-water mark across exec, so ``ru_maxrss`` of a child forked
    from this (large) Python process would never read below this process's own RSS; GNU time
    (``/usr/bin/time -f %M``, a small parent) gives the command's own peak.  Without it the
    figure comes from wait4 and is only an upper bound.
    """
    timefile = None
    argv = list(cmd)
    if sample and os.path.exists(GNU_TIME):
        fd, timefile = tempfile.mkstemp(prefix="bench-time-")
        os.close(fd)
        argv = [GNU_TIME, "-f", "%M", "-o", timefile, *argv]
    with contextlib.ExitStack() as stack:
        fin = stack.enter_context(open(stdin, "rb")) if stdin is not None else subprocess.DEVNULL
        fout = stack.enter_context(open(stdout, "wb")) if stdout is not None else subprocess.DEVNULL
        t0 = time.perf_counter()
        # a session of its own: on timeout the whole tree (worker processes too) is killed
        proc = subprocess.Popen(
            argv,
            stdin=fin,
            stdout=fout,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=env if env is not None else CHILD_ENV,
        )
        fired = threading.Event()

        def expire() -> None:
            fired.set()
            _kill_group(proc.pid)

        timer = threading.Timer(timeout, expire) if timeout else None
        if timer is not None:
            timer.start()
        peak = [0]
        done = threading.Event()

        def sampler() -> None:
            while not done.wait(0.005):
                peak[0] = max(peak[0], _tree_rss(proc.pid))

        def drain(stream: IO[bytes], into: list[bytes]) -> None:
            into.append(stream.read())

        threads = [threading.Thread(target=sampler, daemon=True)] if sample else []
        err_chunks: list[bytes] = []
        assert proc.stderr is not None
        threads.append(threading.Thread(target=drain, args=(proc.stderr, err_chunks), daemon=True))
        for t in threads:
            t.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if timer is not None:
            timer.cancel()
            timer.join()
        timed_out = fired.is_set()
        if timed_out:
            _kill_group(proc.pid)  # workers that outlived the killed child (same group)
        done.set()
        for t in threads:
            t.join()
        proc.stderr.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
    err = b"".join(err_chunks).decode(errors="replace")
    if timed_out:
        err += f"\nTIMEOUT after {timeout:.0f} s (killed by the benchmark)"
    maxrss = usage.ru_maxrss
    if timefile is not None:
        try:
            with open(timefile) as f:
                maxrss = int(f.read().split()[-1])
        except (OSError, ValueError, IndexError):
            pass
        os.unlink(timefile)
    # the sampler sees GNU time's own ~2 MiB too: negligible beside the figures measured
    cpu = usage.ru_utime + usage.ru_stime  # CPU time barely moves with other load; wall does
    result = Run(wall, maxrss, max(peak[0], maxrss), proc.returncode, err, cpu)
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, cmd))} exited {proc.returncode}: {err.strip()[-2000:]}"
        )
    return result


CHILD_ENV: dict[str, str] | None = None  # None: this process's environment


def use_bytecode_cache(workdir: Path) -> dict[str, str]:
    """Run every child with a bytecode cache, as a pip-installed package has.

    An editable install under ``PYTHONDONTWRITEBYTECODE=1`` (as on the development machines)
    recompiles every streamconv module at each start (~0.1 s CPU) while pydicom, anyio and the
    standard library load from their .pyc files; the cache goes to ``workdir/pycache`` so the
    checkout stays untouched.
    """
    global CHILD_ENV
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    CHILD_ENV = env
    return env


def _kill_group(pgid: int) -> None:
    """Kill the process group of a child this module started (its own session)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


def loadavg() -> float:
    """The 1-minute load average: other work on the machine skews every figure."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return -1.0


def wait_idle(max_wait: float, threshold: float = 0.5) -> float:
    """Wait (up to ``max_wait`` s) for the 1-minute load average to fall below ``threshold``."""
    deadline = time.monotonic() + max_wait
    load = loadavg()
    while load >= threshold and time.monotonic() < deadline:
        time.sleep(5)
        load = loadavg()
    return load


def add_idle_options(p: Any) -> None:
    """--wait-idle / --idle-load, shared by every benchmark's argument parser."""
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        metavar="S",
        help="before each section wait up to S seconds for the 1-min load average to drop below --idle-load",
    )
    p.add_argument(
        "--idle-load",
        type=float,
        default=0.5,
        metavar="L",
        help="load average counted as idle (0.5)",
    )


def median_run(runs: Sequence[Run]) -> Run:
    """Median wall time; the largest RSS of all runs (memory is a ceiling, not an average)."""
    walls = [r.wall for r in runs]
    return Run(
        statistics.median(walls),
        max(r.maxrss for r in runs),
        max(r.tree_rss for r in runs),
        max((r.rc for r in runs), key=abs),
        runs[-1].stderr,
        statistics.median(r.cpu for r in runs),
    )


def fmt_mib(kib: float) -> str:
    return f"{kib / 1024:.0f} MiB"


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def machine_info() -> dict[str, Any]:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kib = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kib = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    dirty = _git("status", "--porcelain", "--untracked-files=no", "streamconv")
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "mem_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "streamconv_dirty": bool(dirty and dirty != "?"),
        "loadavg_1min": round(loadavg(), 2),
    }


@dataclass(slots=True)
class Row:
    """One line of a result table: a measured figure, what it is compared with, the ratio."""

    figure: str
    value: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""


def print_table(title: str, rows: Sequence[Row], *, file: Any = None) -> str:
    """A Markdown table (it goes into RESULTS.md as printed)."""
    head = ("figure", "streamconv", "compared with", "ratio", "target", "")
    cells = [head, *[(r.figure, r.value, r.baseline, r.ratio, r.target, r.verdict) for r in rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = [f"### {title}", ""]
    for n, c in enumerate(cells):
        lines.append("| " + " | ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    text = "\n".join(lines) + "\n"
    print(text, file=file or sys.stdout, flush=True)
    return text


def write_json_line(
    name: str, figures: dict[str, Any], rows: Sequence[Row], path: Path | None = None
) -> None:
    """One JSON line with every figure (stdout, and appended to ``path`` when given)."""
    line = json.dumps(
        {
            "bench": name,
            "machine": machine_info(),
            "figures": figures,
            "rows": [asdict(r) for r in rows],
        },
        sort_keys=True,
    )
    print(line, flush=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(line + "\n")


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"
