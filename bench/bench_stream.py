"""Issue 3 performance figures: flat memory, datasets/s, linearity, MB/s, +as/+ar on ~100 MB.

Every ratio is measured in this one run.  DCMTK figures are constants quoted from issue 3.

    . /tmp/venv/bin/activate
    python bench/bench_stream.py --quick     # smaller sizes, a few minutes
    python bench/bench_stream.py             # the issue's sizes (1.1 GB array; ~30+ minutes)
    python bench/bench_stream.py --only flat --only rate

Sizes (full / --quick): flat memory 1,000 vs 20,000 datasets (200 vs 2,000); datasets/s on the
20,000 array (2,000); linearity ~142 MB vs ~1.1 GB (7 MB vs 55 MB, the same byte ratio);
+as/+ar on ~100 MB (~10 MB).  Corpora go to --workdir (default bench/corpus/, git-ignored).

Front ends measured: ``json2dcm --array-split IN DIR/`` (split), ``json2dcm +ar IN OUT``,
``json2dcm +as n IN OUT`` and, when ``streamconv stream -h`` works, ``streamconv stream
--output-dir DIR < IN`` (stream, with its default --jobs).  The naive baseline is this file's
``naive`` subcommand: ``json.load`` of the whole file, then ``Dataset.from_json`` and
``dcmwrite`` per dataset, in one process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus
from benchlib import (
    BENCH_DIR,
    Row,
    Run,
    add_idle_options,
    fmt_mib,
    loadavg,
    machine_info,
    print_table,
    run,
    script,
    use_bytecode_cache,
    verdict,
    wait_idle,
    write_json_line,
)

SETTLE_S = 65  # ext4 without a journal skips inodes deleted within 60 s (see Bench._fresh)
TARGET_FLAT = 1.3  # RSS 20,000 vs 1,000 datasets
TARGET_RATE_X = 15.0  # datasets/s vs the naive path (issue 11; issue 3 asked 10x)
STRETCH_RATE_X = 20.0
TARGET_LINEAR = 1.1  # wall ratio / byte ratio
TARGET_LINEAR_RSS = 1.05
DCMTK_AR = {5000: (12.0, 318.0), 20000: (470.0, 1229.0)}  # +ar: seconds, MiB (issue 3)
DCMTK_103MB = {"+as last": 162.0, "+ar": 268.0}  # seconds on a 103 MB array (issue 3)


@dataclass(frozen=True, slots=True)
class Sizes:
    flat_small: int
    flat_big: int
    rate_n: int
    lin_small_bytes: int
    lin_big_bytes: int
    arr100_bytes: int


FULL = Sizes(1000, 20000, 20000, 142_000_000, 1_100_000_000, 100_000_000)
QUICK = Sizes(200, 2000, 2000, 7_100_000, 55_000_000, 10_000_000)


def naive(path: Path, outdir: Path) -> int:
    """The baseline: whole file in memory, pydicom per dataset, one process."""
    from pydicom import Dataset, dcmwrite
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    with open(path, "rb") as f:
        items = json.load(f)
    outdir.mkdir(parents=True, exist_ok=True)
    for i, item in enumerate(items):
        ds = Dataset.from_json(item)
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        dcmwrite(outdir / f"{i:06d}.dcm", ds, enforce_file_format=True)
    return len(items)


class Bench:
    def __init__(
        self,
        workdir: Path,
        sizes: Sizes,
        modes: list[str],
        timeout: float,
        out_dir: Path | None = None,
    ) -> None:
        self.timeout = timeout
        self.workdir = workdir
        self.sizes = sizes
        self.out = (out_dir or workdir) / "out-stream"
        self.modes = modes
        self.json2dcm = script("json2dcm")
        self.streamconv = script("streamconv")
        self.figures: dict[str, Any] = {}
        self._runs = 0
        if self.out.exists():  # left by an interrupted run: remove, then let ext4 forget it
            shutil.rmtree(self.out, ignore_errors=True)
            print(
                f"bench: removed old outputs in {self.out}; waiting {SETTLE_S} s (see _fresh)",
                file=sys.stderr,
            )
            time.sleep(SETTLE_S)

    def _fresh(self, name: str) -> Path:
        # a new name per run, and nothing deleted until the end of the bench: this machine's
        # ext4 has no journal, and then every file creation scans past the inodes deleted
        # in the last 60 s (fs/ext4/ialloc.c, recently_deleted): right after removing
        # 20,000 outputs, creating a file cost ~1 ms instead of ~0.03 ms
        self._runs += 1
        path = self.out / f"{self._runs:03d}-{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def convert(self, mode: str, src: Path, n: int, extra: tuple[str, ...] = ()) -> Run:
        """One conversion of ``src`` (``n`` datasets) by ``mode``; output checked, then removed."""
        if mode == "split":
            dest = self._fresh("split")
            r = run(
                [self.json2dcm, "--array-split", *extra, str(src), str(dest) + "/"],
                check=False,
                timeout=self.timeout,
            )
            produced = _count_files(dest)
        elif mode == "stream":
            dest = self._fresh("stream")
            dest.mkdir()
            cmd = [self.streamconv, "stream", "--output-dir", str(dest), *extra]
            r = run(cmd, stdin=src, check=False, timeout=self.timeout)
            produced = _count_files(dest, skip="rejected")
        elif mode == "naive":
            dest = self._fresh("naive")
            r = run(
                [sys.executable, __file__, "naive", str(src), str(dest)],
                check=False,
                timeout=self.timeout,
            )
            produced = _count_files(dest)
        elif mode in ("ar", "as"):
            dest = self._fresh("single.dcm")
            opt = ["+ar"] if mode == "ar" else ["+as", str(extra[0])]
            r = run([self.json2dcm, *opt, str(src), str(dest)], check=False, timeout=self.timeout)
            produced = n if dest.exists() else 0
            if dest.exists():
                self.figures.setdefault("out_bytes", {})[f"{mode}-{src.name}"] = dest.stat().st_size
        else:
            raise ValueError(mode)
        key = f"{mode}{'-' + extra[0] if extra else ''}:{src.name}"
        self.figures[key] = {
            "wall_s": r.wall,
            "cpu_s": r.cpu,
            "maxrss_kib": r.maxrss,
            "tree_rss_kib": r.tree_rss,
            "rc": r.rc,
        }
        if r.rc != 0 or produced != n:
            msg = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
            self.figures[key]["error"] = f"exit {r.rc}, {produced}/{n} outputs: {msg}"
            print(f"bench: {key}: exit {r.rc}, {produced} of {n} outputs: {msg}", file=sys.stderr)
            r.rc = r.rc or 1
        return r

    # -- the figures ----------------------------------------------------------------------------

    def flat(self) -> list[Row]:
        s = self.sizes
        small, big = (
            corpus.ensure_array(self.workdir, s.flat_small),
            corpus.ensure_array(self.workdir, s.flat_big),
        )
        rows = []
        for mode in [m for m in ("split", "ar", "stream") if m in self.modes]:
            a = self.convert(mode, small, s.flat_small)
            b = self.convert(mode, big, s.flat_big)
            # split and stream run worker processes: their summed RSS is the figure that counts
            ra, rb = a.tree_rss, b.tree_rss
            rows.append(
                Row(
                    f"{mode}: peak RSS (process tree), {s.flat_big:,} vs {s.flat_small:,} datasets",
                    fmt_mib(rb),
                    fmt_mib(ra),
                    f"{rb / ra:.2f}x",
                    f"<= {TARGET_FLAT}x",
                    _judge(rb / ra <= TARGET_FLAT, a, b),
                )
            )
            if mode == "ar" and s.flat_big in DCMTK_AR:
                secs, mib = DCMTK_AR[s.flat_big]
                rows.append(
                    Row(
                        f"  +ar {s.flat_big:,} datasets vs DCMTK (issue 3 constant)",
                        f"{b.wall:.1f} s (cpu {b.cpu:.1f} s), {fmt_mib(b.tree_rss)}",
                        f"{secs:.0f} s, {mib:.0f} MiB",
                        f"{b.wall / secs:.3f}x time",
                    )
                )
        return rows

    def rate(self) -> list[Row]:
        n = self.sizes.rate_n
        src = corpus.ensure_array(self.workdir, n)
        base = self.convert("naive", src, n)
        base_rate = n / base.wall
        rows = [
            Row(
                f"naive json.load + from_json + dcmwrite, {n:,} datasets",
                f"{base_rate:.0f} ds/s",
                f"{base.wall:.1f} s, cpu {base.cpu:.1f} s, {fmt_mib(base.tree_rss)}",
                verdict="FAILED" if base.rc else "",
            )
        ]
        for mode in [m for m in ("split", "stream") if m in self.modes]:
            r = self.convert(mode, src, n)
            rate = n / r.wall
            rows.append(
                Row(
                    f"{mode}: datasets/s, {n:,}-dataset array",
                    f"{rate:.0f} ds/s ({r.wall:.1f} s, {fmt_mib(r.tree_rss)})",
                    f"naive {base_rate:.0f} ds/s",
                    f"{rate / base_rate:.1f}x",
                    f">= {TARGET_RATE_X:.0f}x (stretch {STRETCH_RATE_X:.0f}x)",
                    _judge(rate / base_rate >= TARGET_RATE_X, r, base),
                )
            )
            rows.append(
                Row(
                    f"  {mode}: datasets per CPU second (all processes)",
                    f"{n / r.cpu:.0f} ds/cpu-s (cpu {r.cpu:.1f} s)",
                    f"naive {n / base.cpu:.0f} ds/cpu-s",
                    f"{(n / r.cpu) / (n / base.cpu):.1f}x",
                )
            )
        return rows

    def linear(self) -> list[Row]:
        s = self.sizes
        n_small = corpus.array_size_for(s.lin_small_bytes)
        n_big = corpus.array_size_for(s.lin_big_bytes)
        small, big = (
            corpus.ensure_array(self.workdir, n_small),
            corpus.ensure_array(self.workdir, n_big),
        )
        bytes_small, bytes_big = small.stat().st_size, big.stat().st_size
        byte_ratio = bytes_big / bytes_small
        cp_dest = self._fresh("cp.json")
        run(["cp", str(big), str(cp_dest)])  # warm the page cache
        cp = run(["cp", str(big), str(cp_dest)])
        cp_dest.unlink()
        cp_mbs = bytes_big / 1e6 / cp.wall
        self.figures["cp_big"] = {"wall_s": cp.wall, "bytes": bytes_big}
        rows = []
        for mode in [m for m in ("split", "stream") if m in self.modes]:
            a = self.convert(mode, small, n_small)
            b = self.convert(mode, big, n_big)
            ra, rb = a.tree_rss, b.tree_rss
            time_ratio = b.wall / a.wall
            mbs = bytes_big / 1e6 / b.wall
            rows += [
                Row(
                    f"{mode}: wall {bytes_big / 1e6:,.0f} MB vs {bytes_small / 1e6:,.0f} MB ({n_big:,} vs {n_small:,} ds)",
                    f"{b.wall:.1f} s vs {a.wall:.1f} s = {time_ratio:.2f}x",
                    f"bytes {byte_ratio:.2f}x",
                    f"{time_ratio / byte_ratio:.2f}x",
                    f"<= {TARGET_LINEAR}x",
                    _judge(time_ratio / byte_ratio <= TARGET_LINEAR, a, b),
                ),
                Row(
                    f"  {mode}: CPU time big / small",
                    f"{b.cpu:.1f} s vs {a.cpu:.1f} s = {b.cpu / a.cpu:.2f}x",
                    f"bytes {byte_ratio:.2f}x",
                    f"{b.cpu / a.cpu / byte_ratio:.2f}x",
                    f"<= {TARGET_LINEAR}x",
                    _judge(b.cpu / a.cpu / byte_ratio <= TARGET_LINEAR, a, b),
                ),
                Row(
                    f"  {mode}: RSS big / small",
                    f"{fmt_mib(rb)} vs {fmt_mib(ra)}",
                    "",
                    f"{rb / ra:.2f}x",
                    f"<= {TARGET_LINEAR_RSS}x",
                    _judge(rb / ra <= TARGET_LINEAR_RSS, a, b),
                ),
                Row(
                    f"  {mode}: end-to-end MB/s ({bytes_big / 1e6:,.0f} MB)",
                    f"{mbs:.1f} MB/s",
                    f"cp {cp_mbs:.0f} MB/s ({cp.wall:.2f} s)",
                    f"{mbs / cp_mbs:.3f}x cp",
                ),
            ]
        return rows

    def select(self) -> list[Row]:
        s = self.sizes
        n = corpus.array_size_for(s.arr100_bytes)
        src = corpus.ensure_array(self.workdir, n)
        mb = src.stat().st_size / 1e6
        rows = []
        r = self.convert("as", src, 1, (str(n),))
        rows.append(
            Row(
                f"+as {n} (the last) of {n:,} datasets, {mb:.0f} MB",
                f"{r.wall:.2f} s (cpu {r.cpu:.2f} s), {fmt_mib(r.tree_rss)}",
                f"DCMTK {DCMTK_103MB['+as last']:.0f} s (103 MB)" if s is FULL else "",
                verdict="FAILED" if r.rc else "",
            )
        )
        r = self.convert("ar", src, n)
        rows.append(
            Row(
                f"+ar, {n:,} datasets, {mb:.0f} MB",
                f"{r.wall:.2f} s (cpu {r.cpu:.2f} s), {fmt_mib(r.tree_rss)}",
                f"DCMTK {DCMTK_103MB['+ar']:.0f} s, 0.9 GB (103 MB)" if s is FULL else "",
                verdict="FAILED" if r.rc else "",
            )
        )
        big = corpus.ensure_array(self.workdir, s.flat_big)
        r = self.convert("as", big, 1, (str(s.flat_big),))
        rows.append(
            Row(
                f"+as {s.flat_big} (the last) of the {s.flat_big:,}-dataset array, {big.stat().st_size / 1e6:.0f} MB",
                f"{r.wall:.2f} s (cpu {r.cpu:.2f} s), {fmt_mib(r.tree_rss)}",
                verdict="FAILED" if r.rc else "",
            )
        )
        return rows


def _judge(ok: bool, *runs: Run) -> str:
    return "FAILED" if any(r.rc for r in runs) else verdict(ok)


def _count_files(path: Path, skip: str = "") -> int:
    n = 0
    for _root, dirs, files in os.walk(path):
        if skip and skip in dirs:
            dirs.remove(skip)
        n += sum(1 for f in files if f.endswith(".dcm"))
    return n


def stream_available() -> tuple[bool, str]:
    try:
        proc = subprocess.run(
            [script("streamconv"), "stream", "-h"], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired, SystemExit) as exc:
        return False, str(exc)
    if proc.returncode != 0:
        return False, (proc.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
    return True, ""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["naive"]:
        n = naive(Path(args[1]), Path(args[2]))
        print(n)
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--workdir",
        type=Path,
        default=corpus.DEFAULT_WORKDIR,
        help="corpus directory (git-ignored)",
    )
    p.add_argument("--quick", action="store_true", help="smaller sizes (a few minutes)")
    p.add_argument("--only", choices=("flat", "rate", "linear", "select"), action="append")
    p.add_argument("--no-stream", action="store_true", help="skip `streamconv stream` rows")
    p.add_argument(
        "--out-dir",
        type=Path,
        help="where outputs go (default WORKDIR): a tmpfs such as /dev/shm keeps a shared "
        "disk's file-creation cost, which varies with other work, out of both sides' figures",
    )
    p.add_argument(
        "--rate-n", type=int, help="datasets of the rate section (default 20,000, quick 2,000)"
    )
    p.add_argument(
        "--modes",
        type=lambda v: v.split(","),
        help="front ends to run, comma-separated: split,ar,stream (default all)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        help="seconds before one command is killed (default 1800, quick 300)",
    )
    add_idle_options(p)
    p.add_argument(
        "--results",
        type=Path,
        default=BENCH_DIR / "out" / "results.jsonl",
        help="JSON lines appended here",
    )
    p.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run children in this environment as it is (default: with a bytecode cache in WORKDIR/pycache)",
    )
    a = p.parse_args(args)
    if not a.no_bytecode_cache:
        use_bytecode_cache(a.workdir)
    sizes = QUICK if a.quick else FULL
    if a.rate_n:
        sizes = dataclasses.replace(sizes, rate_n=a.rate_n)
    modes = ["split", "ar"]
    note = ""
    if a.modes:
        modes = [m for m in modes if m in a.modes]
    if not a.no_stream and (not a.modes or "stream" in a.modes):
        ok, why = stream_available()
        if ok:
            modes.append("stream")
        else:
            note = f"streamconv stream rows skipped: `streamconv stream -h` failed ({why})"
    info = machine_info()
    print(
        f"# bench_stream{' --quick' if a.quick else ''}  {info['date']}  nproc={info['nproc']}  "
        f"Python {info['python']}  {info['cpu']}  commit {info['commit']}"
        f"{' (streamconv/ modified)' if info['streamconv_dirty'] else ''}\n"
    )
    if note:
        print(note + "\n")
    bench = Bench(a.workdir, sizes, modes, a.timeout or (300 if a.quick else 1800), a.out_dir)
    sections = a.only or ["flat", "rate", "linear", "select"]
    titles = {
        "flat": "peak RSS, big vs small array (flat memory)",
        "rate": "datasets/s vs the naive path",
        "linear": "linearity and end-to-end MB/s",
        "select": "+as / +ar on a ~100 MB array"
        if sizes.arr100_bytes == FULL.arr100_bytes
        else "+as / +ar on a ~10 MB array",
    }
    rows: list[Row] = []
    t0 = time.perf_counter()
    for name in sections:
        before = wait_idle(a.wait_idle, a.idle_load) if a.wait_idle else loadavg()
        r = getattr(bench, name)()
        after = loadavg()
        bench.figures.setdefault("loadavg", {})[name] = [before, after]
        print_table(titles[name], r)
        print(f"(1-min load average before/after: {before:.2f} / {after:.2f})\n")
        rows += r
    shutil.rmtree(bench.out, ignore_errors=True)
    bench.figures["sizes"] = asdict(sizes)
    bench.figures["note"] = note
    bench.figures["elapsed_s"] = time.perf_counter() - t0
    write_json_line(
        "bench_stream" + (" --quick" if a.quick else ""), bench.figures, rows, a.results
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
