"""Issue 4 figures: the drop-folder daemon converting 5,000 dropped CT headers.

Measured in one run, on the same machine, one after the other:

1. **Baseline**: a loop that starts one ``python -c pass`` process per file (what a per-file
   converter costs before it does any work; DCMTK's json2dcm converts a CT header in about 0.7x
   of that, issue 4), files/s.
2. **Flood**: ``streamconv watch INBOX --output-dir OUT`` (a subprocess, ready when it sends
   ``READY=1`` on a NOTIFY_SOCKET of ours) while 5,000 CT headers are renamed into the inbox as
   fast as possible: files/s from the first rename to the last output, and the daemon's peak
   RSS (its process tree, sampled from /proc every 20 ms).
3. **Paced**: 500 more headers renamed in at half the flood rate (at most 200/s), so that none
   waits behind the others: latency from each rename to its output (the output's ctime, set by
   the rename that publishes it), p50/p99.

Every output is checked (count, done/ holds every input, nothing failed).

    . /tmp/venv/bin/activate
    python bench/bench_watch.py                 # 5,000 files (~1 minute)
    python bench/bench_watch.py --files 1000    # quicker
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    BENCH_DIR,
    Row,
    _tree_rss,
    add_idle_options,
    loadavg,
    machine_info,
    print_table,
    script,
    verdict,
    wait_idle,
    write_json_line,
)
from corpus import DEFAULT_WORKDIR, HeaderFactory

TARGET_X = 15.0  # issue 4: at least 15x the per-file process loop
DCMTK_OF_PASS = 0.7  # issue 4: DCMTK's json2dcm takes ~0.7x of `python -c pass` per CT header


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def baseline(n: int) -> float:
    """files/s of a loop starting one ``python -c pass`` per file."""
    cmd = [sys.executable, "-c", "pass"]
    subprocess.run(cmd, check=True)  # warm the page cache
    t0 = time.perf_counter()
    for _ in range(n):
        subprocess.run(cmd, check=True)
    return n / (time.perf_counter() - t0)


def _hwm_kib(pid: int) -> int:
    """VmHWM (peak RSS) of one process, KiB."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", "rb") as f:
                    stack.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


class Daemon:
    """The daemon as a subprocess, its readiness from a NOTIFY_SOCKET, its tree's RSS."""

    def __init__(self, workdir: Path, jobs: int) -> None:
        self.inbox = workdir / "inbox"
        self.out = workdir / "out"
        self.done = workdir / "done"
        self.notify = workdir / "notify"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.notify))
        self.log = open(workdir / "daemon.log", "wb")  # noqa: SIM115
        cmd = [
            script("streamconv"), "watch", str(self.inbox), "--output-dir", str(self.out),
            "--jobs", str(jobs), "--min-free-bytes", "0",
        ]  # fmt: skip
        env = {**os.environ, "NOTIFY_SOCKET": str(self.notify)}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        self.peak_tree = 0
        self.peak_process = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_tree = max(self.peak_tree, _tree_rss(self.proc.pid))

    def wait_ready(self, timeout: float = 60) -> float:
        self.sock.settimeout(timeout)
        while True:
            fields = self.sock.recv(4096).decode().split("\n")
            if "READY=1" in fields:
                return time.perf_counter() - self.started

    def stop(self) -> int:
        for pid in _descendants(self.proc.pid):
            self.peak_process = max(self.peak_process, _hwm_kib(pid))
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(60)
        self._stop.set()
        self._sampler.join()
        self.sock.close()
        self.log.close()
        return rc


def count(folder: Path) -> int:
    with os.scandir(folder) as it:
        return sum(1 for _ in it)


def wait_count(folder: Path, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while count(folder) < n:
        if time.monotonic() > deadline:
            raise SystemExit(
                f"bench: only {count(folder)} of {n} inputs in {folder} after {timeout} s"
            )
        time.sleep(0.05)


def bench(a: argparse.Namespace) -> tuple[list[Row], dict[str, Any]]:
    work: Path = a.workdir / "watch"
    shutil.rmtree(work, ignore_errors=True)
    src = work / "src"
    src.mkdir(parents=True)
    (work / "inbox").mkdir()
    total = a.files + a.paced
    factory = HeaderFactory()
    names = [f"ct{i:06d}.json" for i in range(total)]
    sizes = 0
    for i, name in enumerate(names):  # written before anything is timed
        data = factory.render(i).encode()
        sizes += len(data)
        (src / name).write_bytes(data)
    print(f"{total} CT headers of ~{sizes / total / 1000:.1f} KB in {src}", flush=True)

    print(f"baseline: {a.baseline} x `python -c pass` ...", flush=True)
    loop_rate = baseline(a.baseline)

    daemon = Daemon(work, a.jobs)
    try:
        ready_s = daemon.wait_ready()
        # -- flood
        flood = names[: a.files]
        renamed: dict[str, float] = {}
        t0 = time.time()
        for name in flood:
            os.rename(src / name, daemon.inbox / name)
            renamed[name] = time.time()
        wait_count(daemon.done, len(flood), a.timeout)
        ends = {n: (daemon.out / n.replace(".json", ".dcm")).stat().st_ctime for n in flood}
        elapsed = max(ends.values()) - t0
        rate = len(flood) / elapsed
        flood_lat = [ends[n] - renamed[n] for n in flood]
        # -- paced
        paced = names[a.files :]
        pace = min(rate / 2, 200.0)
        p_renamed: dict[str, float] = {}
        start = time.monotonic()
        for k, name in enumerate(paced):
            delay = start + k / pace - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            os.rename(src / name, daemon.inbox / name)
            p_renamed[name] = time.time()
        wait_count(daemon.done, total, a.timeout)
        lat = [
            (daemon.out / n.replace(".json", ".dcm")).stat().st_ctime - p_renamed[n] for n in paced
        ]
    finally:
        rc = daemon.stop()
    outputs = count(daemon.out)
    failed = count(work / "failed") if (work / "failed").exists() else 0
    ok = rc == 0 and outputs == total and failed == 0
    ratio = rate / loop_rate
    dcmtk_rate = loop_rate / DCMTK_OF_PASS
    p50, p99 = percentile(lat, 50) * 1000, percentile(lat, 99) * 1000
    f50, f99 = percentile(flood_lat, 50), percentile(flood_lat, 99)
    rows = [
        Row(
            f"files/s, {len(flood)} dropped CT headers, --jobs {a.jobs}",
            f"{rate:.0f} files/s",
            f"{loop_rate:.1f} files/s (python -c pass per file)",
            f"{ratio:.1f}x",
            f">= {TARGET_X:.0f}x",
            verdict(ok and ratio >= TARGET_X),
        ),
        Row(
            "  the same vs a per-file DCMTK json2dcm loop (estimated)",
            f"{rate:.0f} files/s",
            f"{dcmtk_rate:.1f} files/s (0.7x of python -c pass)",
            f"{rate / dcmtk_rate:.1f}x",
            ">= 10x",
            verdict(ok and rate / dcmtk_rate >= 10),
        ),
        Row(f"latency p50, rename -> output, paced {pace:.0f} files/s", f"{p50:.0f} ms"),
        Row(f"latency p99, rename -> output, paced {pace:.0f} files/s", f"{p99:.0f} ms"),
        Row(f"latency p50 / p99 in the flood of {len(flood)}", f"{f50:.1f} s / {f99:.1f} s"),
        Row(
            "peak RSS, daemon + worker processes (summed, sampled)",
            f"{daemon.peak_tree / 1024:.0f} MiB",
            f"largest single process {daemon.peak_process / 1024:.0f} MiB",
        ),
        Row("start-up to READY=1 (incl. worker start)", f"{ready_s * 1000:.0f} ms"),
        Row(
            "outputs checked",
            f"{outputs} of {total}, {failed} failed, exit {rc}",
            verdict=verdict(ok),
        ),
    ]
    figures = {
        "files": len(flood),
        "paced_files": len(paced),
        "jobs": a.jobs,
        "header_bytes_avg": round(sizes / total),
        "daemon_files_per_s": round(rate, 1),
        "loop_python_pass_files_per_s": round(loop_rate, 2),
        "ratio_vs_loop": round(ratio, 2),
        "ratio_vs_dcmtk_loop_est": round(rate / dcmtk_rate, 2),
        "paced_files_per_s": round(pace, 1),
        "latency_p50_ms": round(p50, 1),
        "latency_p99_ms": round(p99, 1),
        "flood_latency_p50_s": round(f50, 2),
        "flood_latency_p99_s": round(f99, 2),
        "peak_rss_tree_mib": round(daemon.peak_tree / 1024, 1),
        "peak_rss_process_mib": round(daemon.peak_process / 1024, 1),
        "ready_ms": round(ready_s * 1000),
        "ok": ok,
    }
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return rows, figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--files", type=int, default=5000, help="files dropped at once (5000)")
    p.add_argument("--paced", type=int, default=500, help="files dropped at a steady rate (500)")
    p.add_argument("--baseline", type=int, default=200, help="python -c pass runs (200)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="daemon --jobs")
    p.add_argument("--timeout", type=float, default=600, help="give up after S seconds")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    p.add_argument("--keep", action="store_true", help="keep the folders afterwards")
    p.add_argument("--results", type=Path, default=BENCH_DIR / "out" / "results.jsonl")
    add_idle_options(p)
    a = p.parse_args(argv)
    info = machine_info()
    print(
        f"# bench_watch  {info['date']}  nproc={info['nproc']}  Python {info['python']}  "
        f"{info['cpu']}  commit {info['commit']}\n"
    )
    load = wait_idle(a.wait_idle, a.idle_load) if a.wait_idle else loadavg()
    print(f"(1-min load average before: {load:.2f})\n", flush=True)
    rows, figures = bench(a)
    figures["loadavg_before"] = round(load, 2)
    figures["loadavg_after"] = round(loadavg(), 2)
    print_table(f"drop-folder daemon, {figures['files']} files (issue 4)", rows)
    write_json_line("bench_watch", figures, rows, a.results)
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
