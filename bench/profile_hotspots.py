"""Where the time goes: cProfile of the header path and the 100 MiB InlineBinary path, stage
timings of one header, and what json2dcm imports at start-up.

    . /tmp/venv/bin/activate
    python bench/profile_hotspots.py                    # all, top 15 by tottime
    python bench/profile_hotspots.py --only header --top 25

Profiles are written to bench/out/profile-*.pstats (git-ignored) for ``python -m pstats`` or
snakeviz.  The InlineBinary path is driven in-process exactly as ``convert_file`` does it (1 MiB
reads fed to :class:`Converter`, then ``write_output``), without the anyio shell: cProfile
sees only the thread it runs in, and the one-shot command runs the conversion in a worker
thread.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus
from bench_convert import streamconv_converter
from benchlib import BENCH_DIR, use_bytecode_cache

OUT = BENCH_DIR / "out"


def top(prof: cProfile.Profile, n: int, title: str, path: Path) -> str:
    prof.dump_stats(path)
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(n)
    text = buf.getvalue()
    # keep the table, drop pstats' preamble; shorten site-packages paths
    text = text[text.index("   ncalls") :] if "   ncalls" in text else text
    text = re.sub(r"\S*/site-packages/", "", text)
    text = re.sub(r"\S*/work/main/", "", text)
    text = re.sub(r"\S*/lib/python3\.\d+/", "", text)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    out = f"### {title}\n\ntotal tottime {total:.3f} s; profile in {path.relative_to(BENCH_DIR.parent)}\n\n```\n{text.rstrip()}\n```\n"
    print(out, flush=True)
    return out


def header_stages(n: int) -> str:
    """Per-stage cost of one 150-element header (no profiler: plain perf_counter sums)."""
    from streamconv.core.build import BuildContext, build_dataset
    from streamconv.core.documents import DocumentParser
    from streamconv.core.encode import encode_part10, iter_bytes
    from streamconv.core.pipeline import RunContext
    from streamconv.core.transform import apply_charset, apply_uids
    from streamconv.errors import Problems
    from streamconv.options import ConvertOptions

    factory = corpus.HeaderFactory()
    inputs = [factory.render(i).encode() for i in range(n)]
    run = RunContext(ConvertOptions(), "bench", None)
    opts = run.options
    t = dict.fromkeys(
        ("parse (ijson + filter)", "build (model)", "uids + charset", "encode", "join bytes"), 0.0
    )
    for data in inputs:
        t0 = time.perf_counter()
        parser = DocumentParser(source="bench")
        raws = parser.feed(data) + parser.finish()
        t1 = time.perf_counter()
        ctx = BuildContext(opts, Problems(strict=True), run.source, run.base_dir)
        ctx.spills = parser.spills
        built = build_dataset(raws[0].value, ctx)
        t2 = time.perf_counter()
        changed = apply_uids(built.dataset, opts, run.salt)
        apply_charset(built.dataset, opts, run.source)
        t3 = time.perf_counter()
        enc = encode_part10(built.dataset, built.meta, opts, sop_instance_changed=changed)
        t4 = time.perf_counter()
        b"".join(iter_bytes(enc))
        t5 = time.perf_counter()
        parser.close()
        for k, a, b in zip(t, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5), strict=True):
            t[k] += b - a
    total = sum(t.values())
    lines = [
        f"### stages of one 150-element header (mean of {n})",
        "",
        "| stage | ms | share |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {v / n * 1000:.3f} | {v / total:.0%} |" for k, v in t.items()]
    lines.append(f"| total | {total / n * 1000:.3f} | |")
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text


def profile_header(n: int, ntop: int) -> str:
    convert = streamconv_converter()
    factory = corpus.HeaderFactory()
    inputs = [factory.render(i).encode() for i in range(100)]
    for data in inputs[:20]:
        convert(data)
    prof = cProfile.Profile()
    prof.enable()
    for i in range(n):
        convert(inputs[i % len(inputs)])
    prof.disable()
    return top(
        prof,
        ntop,
        f"cProfile: {n} conversions of the 150-element header, top {ntop} by tottime",
        OUT / "profile-header.pstats",
    )


def profile_inline(workdir: Path, mib: int, ntop: int) -> str:
    from streamconv.core.pipeline import Converter, Output, RunContext
    from streamconv.oneshot import READ_SIZE
    from streamconv.options import ConvertOptions
    from streamconv.sinks import write_output

    src = corpus.ensure_pixel_inline(workdir, mib=mib)
    target = workdir / "profile-inline.dcm"
    options = ConvertOptions()
    note = ""

    def job() -> None:
        run = RunContext(options, str(src), str(src.parent))
        conv = Converter(run)
        fd = os.open(src, os.O_RDONLY)
        try:
            outs: list[Any] = []
            while chunk := os.read(fd, READ_SIZE):
                outs += conv.feed(chunk)
            outs += conv.finish()
            for out in outs:
                assert isinstance(out, Output)
                write_output(out, str(target), options)
        finally:
            conv.close()
            os.close(fd)

    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    try:
        job()
    except Exception as exc:  # a streamconv bug must not hide the profile of what ran
        note = f"\n**the conversion failed: {type(exc).__name__}: {exc}** (profile up to the failure)\n"
    prof.disable()
    wall = time.perf_counter() - t0
    target.unlink(missing_ok=True)
    title = f"cProfile: {mib} MiB InlineBinary pixel dataset ({src.stat().st_size / 1e6:.0f} MB JSON), top {ntop} by tottime"
    text = top(prof, ntop, title, OUT / f"profile-inline-{mib}.pstats")
    return text + f"\nwall under the profiler {wall:.2f} s{note}\n"


def profile_select(workdir: Path, n: int, ntop: int) -> str:
    """``+as n`` (the last of n) in-process: what each skipped dataset costs."""
    from streamconv.core.pipeline import Converter, RunContext
    from streamconv.oneshot import READ_SIZE
    from streamconv.options import ArrayPolicy, ConvertOptions

    src = corpus.ensure_array(workdir, n)
    options = ConvertOptions(array_policy=ArrayPolicy.SELECT, array_select=n)
    prof = cProfile.Profile()
    t0 = time.process_time()
    prof.enable()
    conv = Converter(RunContext(options, str(src), str(src.parent)))
    try:
        with open(src, "rb") as f:
            while chunk := f.read(READ_SIZE):
                conv.feed(chunk)
        conv.finish()
    finally:
        conv.close()
    prof.disable()
    cpu = time.process_time() - t0
    title = f"cProfile: +as {n} (the last) of {n} headers, top {ntop} by tottime"
    text = top(prof, ntop, title, OUT / "profile-select.pstats")
    return (
        text
        + f"\nCPU under the profiler {cpu:.2f} s = {cpu / n * 1000:.2f} ms per skipped dataset\n"
    )


def startup_imports(workdir: Path, ntop: int) -> str:
    """Modules json2dcm imports to convert one header, by self import time (-X importtime)."""
    ct = corpus.ensure_header(workdir)
    out = workdir / "profile-startup.dcm"
    code = (
        "import sys; from streamconv.cli import main; rc = main(sys.argv[1:]); "
        "sys.stdout.write(' '.join(sorted(sys.modules)))"
    )
    env = use_bytecode_cache(workdir)  # as an installed package loads (see benchlib)
    subprocess.run(
        [sys.executable, "-c", code, str(ct), str(out)], env=env, capture_output=True, check=False
    )
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, str(ct), str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    out.unlink(missing_ok=True)
    modules = proc.stdout.split()
    rows: list[tuple[int, int, str]] = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            own, cumulative, name = (x.strip() for x in line[len("import time:") :].split("|"))
            rows.append((int(own), int(cumulative), name))
    by_self = sorted(rows, reverse=True)[:ntop]
    roots = sorted({m.split(".")[0] for m in modules})
    notable = [
        m
        for m in (
            "numpy",
            "asyncio",
            "tqdm",
            "email",
            "http",
            "urllib",
            "ssl",
            "decimal",
            "uuid",
            "zlib",
        )
        if m in roots
    ]
    pyd = sorted({".".join(m.split(".")[:2]) for m in modules if m.startswith("pydicom.")})
    text = (
        f"### start-up imports of `json2dcm ct.json out.dcm` (-X importtime)\n\n"
        f"{len(modules)} modules loaded; {len(pyd)} pydicom subpackages/modules: {', '.join(pyd)}\n\n"
        f"notable: {', '.join(notable)}\n\n"
        "| self us | cumulative us | module |\n|---|---|---|\n"
        + "\n".join(f"| {a} | {b} | `{c.strip()}` |" for a, b, c in by_self)
        + "\n"
    )
    print(text, flush=True)
    return text


def ijson_paths(rounds: int = 3) -> str:
    """ijson's push chain (``items_coro``) vs the same C coroutines chained as objects, vs pull.

    ``items_coro`` chains the C coroutines through ``utils.chain``, which hands each stage the
    next one's bound ``send`` method: every JSON event then goes through a generic Python call.
    Passing the C coroutine object itself as the target lets _yajl2 call it directly.
    """
    from ijson.backends import yajl2_c

    from streamconv.core.documents import Pairs

    class Via:  # the public *_basecoro wrappers take ``target.send``: make that the object
        __slots__ = ("send",)

        def __init__(self, coro: Any) -> None:
            self.send = coro

    def chain_items(sink: Any, prefix: str, map_type: Any) -> Any:
        return yajl2_c.items_coro(sink, prefix, map_type=map_type, multiple_values=True)

    def direct_items(sink: Any, prefix: str, map_type: Any) -> Any:
        items = yajl2_c.items_basecoro(sink, prefix, map_type)
        parse = yajl2_c.parse_basecoro(Via(items))
        return yajl2_c.basic_parse_basecoro(Via(parse), multiple_values=True)

    factory = corpus.HeaderFactory()
    headers = [factory.render(i).encode() for i in range(300)]
    array = b"[" + b",\n".join(headers) + b"]"

    def per_header(make: Any, map_type: Any) -> float:
        best = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            for data in headers:
                sink: list[Any] = []
                coro = make(_Sink(sink), "", map_type)
                coro.send(data)
                coro.close()
            best = min(best, (time.perf_counter() - t0) / len(headers))
        return best * 1000

    def per_array_item(make: Any, map_type: Any) -> float:
        best = float("inf")
        for _ in range(rounds):
            sink: list[Any] = []
            t0 = time.perf_counter()
            coro = make(_Sink(sink), "item", map_type)
            for i in range(0, len(array), 1 << 20):
                coro.send(array[i : i + (1 << 20)])
            coro.close()
            best = min(best, (time.perf_counter() - t0) / len(headers))
        return best * 1000

    def pull(map_type: Any, prefix: str) -> float:
        best = float("inf")
        for _ in range(rounds):
            t0 = time.perf_counter()
            if prefix:
                n = sum(1 for _ in yajl2_c.items_gen(io.BytesIO(array), prefix, map_type=map_type))
            else:
                n = 0
                for data in headers:
                    n += sum(1 for _ in yajl2_c.items_gen(io.BytesIO(data), "", map_type=map_type))
            best = min(best, (time.perf_counter() - t0) / n)
        return best * 1000

    lines = [
        f"### ijson (yajl2_c) parse cost, ms per 150-element header (best of {rounds})",
        "",
        "| path | map_type | one header per document | in a 300-header array (1 MiB sends) |",
        "|---|---|---|---|",
    ]
    for name, make in (
        ("items_coro (streamconv today)", chain_items),
        ("C coroutines chained as objects", direct_items),
    ):
        for mt_name, mt in (("Pairs", Pairs), ("dict", None)):
            lines.append(
                f"| {name} | {mt_name} | {per_header(make, mt):.3f} | {per_array_item(make, mt):.3f} |"
            )
    for mt_name, mt in (("Pairs", Pairs), ("dict", None)):
        lines.append(
            f"| items() pull generator | {mt_name} | {pull(mt, ''):.3f} | {pull(mt, 'item'):.3f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text


class _Sink:
    __slots__ = ("items",)

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def send(self, value: Any) -> None:
        self.items.append(value)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=corpus.DEFAULT_WORKDIR)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--n", type=int, default=2000, help="header conversions profiled")
    p.add_argument("--pixel-mib", type=int, default=100)
    p.add_argument(
        "--only",
        choices=("stages", "ijson", "header", "inline", "select", "startup"),
        action="append",
    )
    p.add_argument("--markdown", type=Path, help="also write the report here")
    a = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    parts: dict[str, Callable[[], str]] = {
        "stages": lambda: header_stages(min(a.n, 1000)),
        "ijson": ijson_paths,
        "header": lambda: profile_header(a.n, a.top),
        "inline": lambda: profile_inline(a.workdir, a.pixel_mib, a.top),
        "select": lambda: profile_select(a.workdir, 1000, a.top),
        "startup": lambda: startup_imports(a.workdir, a.top),
    }
    report = [parts[k]() for k in (a.only or parts)]
    if a.markdown:
        a.markdown.write_text("\n".join(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
