"""Issue 2 performance figures: start-up, 100 MiB pixel data (inline and bulk), header throughput.

Every ratio is measured in this one run, against a baseline run on the same machine at the same
time; the DCMTK figures (15 ms start-up, 1.3 s / 473 MiB for the pixel dataset) are constants
quoted from issue 2 (measured there on a 2-core machine), not re-measured.

    . /tmp/venv/bin/activate
    python bench/bench_convert.py                 # everything (~2 minutes)
    python bench/bench_convert.py --quick         # fewer repetitions
    python bench/bench_convert.py --only startup  # one section (startup, pixel, throughput)
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib
import corpus
from benchlib import (
    BENCH_DIR,
    Row,
    Run,
    add_idle_options,
    fmt_mib,
    loadavg,
    machine_info,
    median_run,
    print_table,
    run,
    script,
    use_bytecode_cache,
    verdict,
    wait_idle,
    write_json_line,
)

DCMTK_STARTUP_MS = 15.0  # issue 2: DCMTK converts the CT header in ~15 ms
DCMTK_PIXEL_S = 1.3  # issue 2: DCMTK json2dcm on the 100 MB InlineBinary dataset, 2 cores
DCMTK_PIXEL_MIB = 473.0
TARGET_STARTUP_X_DCMTK = 8.0
TARGET_PIXEL_S = 1.3
TARGET_PIXEL_MIB = 240.0
TARGET_THROUGHPUT_X = 5.0


def bench_startup(workdir: Path, outdir: Path, runs: int) -> tuple[list[Row], dict[str, Any]]:
    """Median wall time of ``json2dcm ct.json out.dcm`` vs bare and import-only interpreters."""
    ct = corpus.ensure_header(workdir)
    out = outdir / "startup.dcm"
    py = sys.executable
    cmds = {
        "pass": [py, "-c", "pass"],
        "import": [py, "-c", "import pydicom, ijson, anyio"],
        "json2dcm": [script("json2dcm"), str(ct), str(out)],
    }
    for cmd in cmds.values():  # warm the page cache and .pyc files
        run(cmd, sample=False)
    # as this machine runs it: an editable install that never writes bytecode, so every start
    # compiles streamconv's modules (pydicom, anyio and the stdlib have their .pyc files)
    nocache = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    nocache.pop("PYTHONPYCACHEPREFIX", None)
    nocache_walls, nocache_cpus = [], []
    for _ in range(max(3, runs // 4)):
        r = run(cmds["json2dcm"], sample=False, env=nocache)
        nocache_walls.append(r.wall)
        nocache_cpus.append(r.cpu)
    walls: dict[str, list[float]] = {k: [] for k in cmds}
    cpus: dict[str, list[float]] = {k: [] for k in cmds}
    rss: dict[str, int] = dict.fromkeys(cmds, 0)
    for _ in range(runs):  # interleaved, so drift hits all three alike
        for name, cmd in cmds.items():
            r = run(cmd, sample=False)
            walls[name].append(r.wall)
            cpus[name].append(r.cpu)
    for name, cmd in cmds.items():  # RSS in separate runs: GNU time would add to the wall time
        rss[name] = run(cmd).maxrss
    ms = {k: statistics.median(v) * 1000 for k, v in walls.items()}
    cpu = {k: statistics.median(v) * 1000 for k, v in cpus.items()}
    j = ms["json2dcm"]
    jc = cpu["json2dcm"]
    rows = [
        Row(
            "start-up: json2dcm ct.json out.dcm",
            f"{j:.0f} ms",
            "",
            "",
            f"< {TARGET_STARTUP_X_DCMTK * DCMTK_STARTUP_MS:.0f} ms",
            verdict(j < TARGET_STARTUP_X_DCMTK * DCMTK_STARTUP_MS),
        ),
        Row("  vs python -c pass", "", f"{ms['pass']:.0f} ms", f"{j / ms['pass']:.1f}x"),
        Row(
            "  vs python -c 'import pydicom, ijson, anyio'",
            "",
            f"{ms['import']:.0f} ms",
            f"{j / ms['import']:.2f}x",
            "< 1x",
            verdict(j < ms["import"]),
        ),
        Row(
            "  vs DCMTK json2dcm (issue 2 constant)",
            "",
            f"{DCMTK_STARTUP_MS:.0f} ms",
            f"{j / DCMTK_STARTUP_MS:.1f}x",
            f"< {TARGET_STARTUP_X_DCMTK:.0f}x",
            verdict(j / DCMTK_STARTUP_MS < TARGET_STARTUP_X_DCMTK),
        ),
        Row(
            "  CPU time (user+sys): json2dcm vs import-only",
            f"{jc:.0f} ms",
            f"{cpu['import']:.0f} ms (pass {cpu['pass']:.0f} ms)",
            f"{jc / cpu['import']:.2f}x",
            f"< {TARGET_STARTUP_X_DCMTK * DCMTK_STARTUP_MS:.0f} ms",
            verdict(jc < TARGET_STARTUP_X_DCMTK * DCMTK_STARTUP_MS),
        ),
        Row("  peak RSS json2dcm / import-only", fmt_mib(rss["json2dcm"]), fmt_mib(rss["import"])),
        Row(
            "  json2dcm without bytecode cache (PYTHONDONTWRITEBYTECODE=1, editable)",
            f"{statistics.median(nocache_walls) * 1000:.0f} ms",
            f"cpu {statistics.median(nocache_cpus) * 1000:.0f} ms",
        ),
    ]
    figures = {
        "startup_nocache_ms": statistics.median(nocache_walls) * 1000,
        "startup_nocache_cpu_ms": statistics.median(nocache_cpus) * 1000,
        "startup_cpu_ms": cpu,
        "startup_ms": ms,
        "startup_rss_kib": rss,
        "runs": runs,
        "heavy_imports": heavy_imports(ct, outdir / "importtime.dcm"),
    }
    return rows, figures


def heavy_imports(ct: Path, out: Path, top: int = 12) -> list[tuple[str, int]]:
    """The top-level packages json2dcm imports, by cumulative import time (``-X importtime``)."""
    code = "import sys; from streamconv.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, str(ct), str(out)],
        capture_output=True,
        text=True,
        check=False,
        env=benchlib.CHILD_ENV,
    )
    totals: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, raw = line[len("import time:") :].split("|")
        name = raw[1:]  # "| name" at the top level, two more spaces per nesting level
        if name == name.lstrip():
            pkg = name.split(".")[0]
            totals[pkg] = totals.get(pkg, 0) + int(cumulative)
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def bench_pixel(
    workdir: Path, outdir: Path, runs: int, mib: int
) -> tuple[list[Row], dict[str, Any]]:
    """json2dcm on the pixel dataset, InlineBinary and BulkDataURI, vs cp of the input."""
    inline = corpus.ensure_pixel_inline(workdir, mib=mib)
    bulk, raw = corpus.ensure_pixel_bulk(workdir, mib=mib)
    json2dcm = script("json2dcm")
    out_i, out_b, out_cp = outdir / "pixel-inline.dcm", outdir / "pixel-bulk.dcm", outdir / "cp.out"
    cases: dict[str, tuple[list[str], Path]] = {
        "cp_json": (["cp", str(inline), str(out_cp)], out_cp),
        "inline": ([json2dcm, str(inline), str(out_i)], out_i),
        "cp_raw": (["cp", str(raw), str(out_cp)], out_cp),
        "bulk": ([json2dcm, "+Bd", str(workdir), str(bulk), str(out_b)], out_b),
    }
    results: dict[str, list[Run]] = {k: [] for k in cases}
    for _ in range(runs + 1):  # the first round warms the page cache and is dropped
        for name, (cmd, out) in cases.items():
            out.unlink(missing_ok=True)
            results[name].append(run(cmd, check=False))
    med = {k: median_run(v[1:]) for k, v in results.items()}
    ok = out_i.exists() and out_b.exists()
    identical = ok and out_i.read_bytes() == out_b.read_bytes()
    out_size = out_i.stat().st_size if out_i.exists() else 0
    for p in (out_i, out_b, out_cp):
        p.unlink(missing_ok=True)
    i, b = med["inline"], med["bulk"]
    json_mb = inline.stat().st_size / 1e6
    tag = f"{mib} MiB pixels"
    rows = [failed(f"{tag}, {k}", med[k]) for k in ("inline", "bulk") if med[k].rc != 0]

    def judge(cond: bool, r: Run) -> str:
        return "FAILED" if r.rc else verdict(cond)

    rows += [
        Row(
            f"{tag}, InlineBinary ({json_mb:.0f} MB JSON): wall",
            f"{i.wall:.2f} s",
            f"cp JSON {med['cp_json'].wall:.2f} s",
            f"{i.wall / med['cp_json'].wall:.1f}x cp",
            f"<= {TARGET_PIXEL_S} s",
            judge(i.wall <= TARGET_PIXEL_S, i),
        ),
        Row(
            "  CPU time (user+sys)",
            f"{i.cpu:.2f} s",
            f"cp JSON {med['cp_json'].cpu:.2f} s",
            "",
            f"<= {TARGET_PIXEL_S} s",
            judge(i.cpu <= TARGET_PIXEL_S, i),
        ),
        Row(
            "  vs DCMTK (issue 2 constant)",
            "",
            f"{DCMTK_PIXEL_S} s",
            f"{i.wall / DCMTK_PIXEL_S:.2f}x",
            "<= 1x",
            judge(i.wall <= DCMTK_PIXEL_S, i),
        ),
        Row(
            "  peak RSS",
            fmt_mib(i.maxrss),
            f"DCMTK {DCMTK_PIXEL_MIB:.0f} MiB",
            f"{i.maxrss / 1024 / DCMTK_PIXEL_MIB:.2f}x",
            f"< {TARGET_PIXEL_MIB:.0f} MiB",
            judge(i.maxrss / 1024 < TARGET_PIXEL_MIB, i),
        ),
        Row(
            f"{tag}, BulkDataURI +Bd: wall",
            f"{b.wall:.2f} s",
            f"cp raw {med['cp_raw'].wall:.2f} s",
            f"{b.wall / med['cp_raw'].wall:.1f}x cp",
            f"<= {TARGET_PIXEL_S} s",
            judge(b.wall <= TARGET_PIXEL_S, b),
        ),
        Row(
            "  CPU time (user+sys)",
            f"{b.cpu:.2f} s",
            f"cp raw {med['cp_raw'].cpu:.2f} s",
            "",
            f"<= {TARGET_PIXEL_S} s",
            judge(b.cpu <= TARGET_PIXEL_S, b),
        ),
        Row(
            "  peak RSS",
            fmt_mib(b.maxrss),
            f"cp {fmt_mib(med['cp_raw'].maxrss)}",
            "",
            f"< {TARGET_PIXEL_MIB:.0f} MiB",
            judge(b.maxrss / 1024 < TARGET_PIXEL_MIB, b),
        ),
        Row(
            "  inline and bulk outputs byte-identical",
            ("yes" if identical else "NO") if ok else "n/a",
            f"{out_size / 1e6:.1f} MB .dcm" if ok else "",
        ),
    ]
    figures = {
        f"pixel_{mib}": {
            k: {
                "wall_s": v.wall,
                "cpu_s": v.cpu,
                "maxrss_kib": v.maxrss,
                "rc": v.rc,
                "runs": [r.wall for r in results[k][1:]],
            }
            for k, v in med.items()
        }
        | {"json_bytes": inline.stat().st_size, "out_bytes": out_size, "identical": identical}
    }
    return rows, figures


def failed(what: str, r: Run) -> Row:
    """A row for a command that failed: the figures of that case are not valid."""
    message = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    return Row(f"{what}: FAILED, exit {r.rc}", message[:120], verdict="FAILED")


# -- in-process throughput --------------------------------------------------------------------


def streamconv_converter() -> Callable[[bytes], bytes]:
    from streamconv.core.encode import iter_bytes
    from streamconv.core.pipeline import Converter, Output, RunContext
    from streamconv.options import ConvertOptions

    run_ctx = RunContext(ConvertOptions(), "bench", None)

    def convert(data: bytes) -> bytes:
        conv = Converter(run_ctx)
        try:
            outs = conv.feed(data) + conv.finish()
        finally:
            conv.close()
        (out,) = outs
        assert isinstance(out, Output)
        return b"".join(iter_bytes(out.encoded))

    return convert


def pydicom_converter() -> Callable[[bytes], bytes]:
    from pydicom import Dataset, dcmwrite
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    def convert(data: bytes) -> bytes:
        ds = Dataset.from_json(data.decode())  # json.loads inside: ~1% of the time
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        buf = io.BytesIO()
        dcmwrite(buf, ds, enforce_file_format=True)
        return buf.getvalue()

    return convert


def _rate(
    convert: Callable[[bytes], bytes], inputs: list[bytes], seconds: float
) -> tuple[float, float]:
    """Conversions per second of wall time and per second of this process's CPU time."""
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    deadline = t0 + seconds
    while True:
        for data in inputs:
            convert(data)
        n += len(inputs)
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - t0), n / (time.process_time() - c0)


def bench_throughput(seconds: float, rounds: int) -> tuple[list[Row], dict[str, Any]]:
    """Conversions/s of distinct 150-element CT headers, in this process, one core."""
    from pydicom import dcmread

    factory = corpus.HeaderFactory()
    inputs = [factory.render(i).encode() for i in range(100)]
    ours, theirs = streamconv_converter(), pydicom_converter()
    a, b = dcmread(io.BytesIO(ours(inputs[1]))), dcmread(io.BytesIO(theirs(inputs[1])))
    same = [e.value for e in a] == [e.value for e in b] and len(a) == 150
    for conv in (ours, theirs):  # warm-up
        _rate(conv, inputs[:20], 0.2)
    rates: dict[str, list[tuple[float, float]]] = {"streamconv": [], "pydicom": []}
    for _ in range(rounds):  # alternated, so drift in the machine's load hits both alike
        rates["streamconv"].append(_rate(ours, inputs, seconds))
        rates["pydicom"].append(_rate(theirs, inputs, seconds))
    s = statistics.median(r[0] for r in rates["streamconv"])
    p = statistics.median(r[0] for r in rates["pydicom"])
    sc = statistics.median(r[1] for r in rates["streamconv"])
    pc = statistics.median(r[1] for r in rates["pydicom"])
    rows = [
        Row(
            "150-element CT header, in-process: conversions/s",
            f"{s:.0f}/s ({1000 / s:.2f} ms)",
            f"pydicom from_json+dcmwrite {p:.0f}/s ({1000 / p:.2f} ms)",
            f"{s / p:.1f}x",
            f">= {TARGET_THROUGHPUT_X:.0f}x",
            verdict(s / p >= TARGET_THROUGHPUT_X),
        ),
        Row(
            "  the same per CPU second",
            f"{sc:.0f}/s ({1000 / sc:.2f} ms)",
            f"pydicom {pc:.0f}/s ({1000 / pc:.2f} ms)",
            f"{sc / pc:.1f}x",
            f">= {TARGET_THROUGHPUT_X:.0f}x",
            verdict(sc / pc >= TARGET_THROUGHPUT_X),
        ),
        Row("  same element values as pydicom's output", "yes" if same else "NO"),
    ]
    return rows, {"throughput": rates | {"seconds": seconds, "same_values": same}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--workdir",
        type=Path,
        default=corpus.DEFAULT_WORKDIR,
        help="corpus directory (git-ignored)",
    )
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--only", choices=("startup", "pixel", "throughput"), action="append")
    p.add_argument(
        "--pixel-mib",
        type=int,
        action="append",
        help="pixel data sizes (default 100 and 75: 75 MiB is a 100 MiB InlineBinary string)",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=BENCH_DIR / "out" / "results.jsonl",
        help="JSON lines appended here",
    )
    add_idle_options(p)
    p.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run children in this environment as it is (default: with a bytecode cache in WORKDIR/pycache)",
    )
    a = p.parse_args(argv)
    sections = set(a.only or ("startup", "pixel", "throughput"))
    workdir: Path = a.workdir
    if not a.no_bytecode_cache:
        use_bytecode_cache(workdir)
    outdir = workdir / "out-convert"
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    info = machine_info()
    print(
        f"# bench_convert  {info['date']}  nproc={info['nproc']}  Python {info['python']}  "
        f"{info['cpu']}  commit {info['commit']}{' (streamconv/ modified)' if info['streamconv_dirty'] else ''}\n"
    )
    rows: list[Row] = []
    figures: dict[str, Any] = {}

    def settle(name: str) -> None:
        load = wait_idle(a.wait_idle, a.idle_load) if a.wait_idle else loadavg()
        figures.setdefault("loadavg_before", {})[name] = round(load, 2)
        print(f"(1-min load average before {name}: {load:.2f})\n", flush=True)

    if "startup" in sections:
        settle("startup")
        r, f = bench_startup(workdir, outdir, 8 if a.quick else 20)
        print_table(f"start-up (median of {f['runs']} runs)", r)
        print(
            "heavy imports of json2dcm (cumulative us):",
            ", ".join(f"{k} {v}" for k, v in f["heavy_imports"]),
            "\n",
        )
        rows += r
        figures |= f
    if "pixel" in sections:
        for mib in a.pixel_mib or [100, 75]:
            settle(f"pixel {mib} MiB")
            r, f = bench_pixel(workdir, outdir, 2 if a.quick else 3, mib)
            print_table(f"pixel dataset, {mib} MiB of Pixel Data (median wall, max RSS)", r)
            rows += r
            figures |= f
    if "throughput" in sections:
        settle("throughput")
        r, f = bench_throughput(1.0 if a.quick else 3.0, 2 if a.quick else 3)
        print_table("throughput, one core, in-process", r)
        rows += r
        figures |= f
    shutil.rmtree(outdir, ignore_errors=True)
    write_json_line("bench_convert", figures, rows, a.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
