"""`streamconv batch`: argv -> sources, plan, engine, report -> exit code."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

from ..errors import ContentError, OutputError, StreamconvError, UsageError
from ..sinks import names_by_index
from ..storage import _ATOMIC_PUT, Store, is_url
from .plan import Piece, plan_tasks
from .report import Previous, Report, read_previous
from .sources import Input, expand_sources, name_owners
from .task import Job, TaskResult, failure_line, job_options

__all__ = ["USAGE", "main"]

log = logging.getLogger("streamconv.batch")

USAGE = """usage: streamconv batch SOURCE... --output DEST [--report DEST] [--cluster ADDRESS]
                        [--jobs N] [--batch-size N] [--resume] [--storage-option KEY=VALUE]...
                        [--filename-template T] [--dashboard] [-q] [json2dcm options]

Converts many DICOM JSON inputs on Dask (one machine, or a cluster), each output written
atomically: DEST/NAME.dcm for an input NAME.json holding one dataset, DEST/NAME/000000.dcm,
DEST/NAME/000001.dcm, ... for an input holding several (array, NDJSON).

  SOURCE                a file, a directory (recursed for *.json and *.ndjson), a glob,
                        @FILE (one source per line), or a URL (s3://bucket/prefix/, gs://,
                        az://, https://)
  -o, --output DEST     a directory or a URL (created when missing)
  --report DEST         success.ndjson, failure.ndjson and summary.json go there
  --cluster ADDRESS     a running Dask scheduler (tcp://HOST:PORT); never shut down by us
  -j, --jobs N          worker processes of the embedded LocalCluster (default: the CPUs);
                        1 converts in this process, without Dask
  --batch-size N        datasets per task when a big array/NDJSON is split (default 250);
                        small files are grouped into tasks of ~4 MB of JSON
  --resume              skip inputs whose outputs exist and whose success lines are in the
                        report (needs --report); failed inputs are tried again
  --storage-option K=V  passed to fsspec (repeatable; e.g. endpoint_url=http://host:9000,
                        anon=true; client_kwargs.region_name=eu-west-1 nests)
  --filename-template T names as with --array-split; {name} is the input's name
  --dashboard           start the Dask dashboard and print its address
  -q, --quiet           no progress, no messages

json2dcm options (+te, -e, +Ug, +Bd DIR, +ar, ...) may stand anywhere.
exit codes: 0 all converted; 65 something failed (see the report); 1 usage; 40 DEST not
writable; 130 interrupted
"""

DEFAULT_BATCH = 250  # ~0.5 s of CT headers per task: a 5,000-dataset file is 20 tasks


def _parse_value(text: str) -> Any:
    if text in ("true", "false", "null") or text.lstrip("-").isdigit():
        return json.loads(text)
    return text


def storage_option(text: str, into: dict[str, Any]) -> None:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--storage-option needs KEY=VALUE, got '{text}'")
    *parents, leaf = key.split(".")
    node = into
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UsageError(f"--storage-option '{key}': '{part}' is already a value")
        node = child
    node[leaf] = _parse_value(value)


class Args:
    def __init__(self) -> None:
        self.output = ""
        self.report: str | None = None
        self.cluster: str | None = None
        self.jobs = 0
        self.batch_size = DEFAULT_BATCH
        self.resume = False
        self.dashboard = False
        self.storage: dict[str, Any] = {}
        self.sources: list[str] = []
        self.json2dcm: list[str] = []


_VALUED = {
    "--output",
    "-o",
    "--report",
    "--cluster",
    "--jobs",
    "-j",
    "--batch-size",
    "--storage-option",
}


def _positive(name: str, text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise UsageError(f"{name} needs a positive integer, got '{text}'")
    return n


def parse(argv: list[str]) -> Args:
    a = Args()
    i = 0
    rest: list[str] = []
    lists: dict[str, str] = {}
    while i < len(argv):
        arg = argv[i]
        if arg in _VALUED:
            if i + 1 >= len(argv):
                raise UsageError(f"missing value for {arg}")
            value = argv[i + 1]
            i += 2
            if arg in ("--output", "-o"):
                a.output = value
            elif arg == "--report":
                a.report = value
            elif arg == "--cluster":
                a.cluster = value
            elif arg in ("--jobs", "-j"):
                a.jobs = _positive(arg, value)
            elif arg == "--batch-size":
                a.batch_size = _positive(arg, value)
            else:
                storage_option(value, a.storage)
            continue
        i += 1
        if arg == "--resume":
            a.resume = True
        elif arg == "--dashboard":
            a.dashboard = True
        elif arg.startswith("@") and len(arg) > 1:
            # @FILE is a list of sources here (one per line), not json2dcm's command file
            key = f"\x00{len(lists)}"
            lists[key] = arg
            rest.append(key)
        else:
            rest.append(arg)
    a.json2dcm = rest
    from ..args import parse_args

    parsed = parse_args(rest)
    a.sources = [lists.get(p, p) for p in parsed.params]
    return a


def main(argv: list[str]) -> int:
    if any(x in ("-h", "--help") for x in argv):
        sys.stdout.write(USAGE)
        return 0
    from ..args import build_options, log_config, log_level, parse_args
    from ..logsetup import setup_logging

    try:
        args = parse(argv)
        parsed = parse_args([x for x in args.json2dcm if not x.startswith("\x00")])
        level = log_level(parsed)
        options = build_options(parsed)
        if not args.output:
            raise UsageError("--output DEST is required")
        if not args.sources:
            raise UsageError("no SOURCE given")
        if args.resume and not args.report:
            raise UsageError("--resume needs --report DEST (the report says what was done)")
        if args.cluster and args.jobs:
            raise UsageError("--jobs is for the embedded cluster; --cluster uses its own workers")
    except UsageError as exc:
        sys.stderr.write(f"streamconv batch: error: {exc.message}\n\n{USAGE}")
        return 1
    quiet = parsed.values.get("log") == "quiet"
    try:
        setup_logging(
            level,
            log_config(parsed),
            appname="streamconv",
        )
    except ValueError as exc:
        sys.stderr.write(f"streamconv batch: error: {exc}\n")
        return 1
    jobs = args.jobs or (os.cpu_count() or 1)
    engine: Any
    if jobs == 1 and not args.cluster:
        from .engine import InProcessEngine

        engine = InProcessEngine()
    else:
        import importlib.util

        # found, not imported: the engine imports it in a thread while we read the sources
        if importlib.util.find_spec("distributed") is None:
            sys.stderr.write(
                "streamconv batch: error: Dask is not installed: pip install 'streamconv[dask]' "
                "(or use --jobs 1)\n"
            )
            return 1
        from .engine import DaskEngine

        engine = DaskEngine(jobs, args.cluster, args.dashboard)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        return _run(args, options, engine, quiet)
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    finally:
        engine.close()


def _run(args: Args, options: Any, engine: Any, quiet: bool) -> int:
    from ..core.uids import new_salt

    started = time.time()
    t0 = time.monotonic()
    try:
        out_store = Store.for_url(args.output, args.storage)
        out_store.makedirs(args.output)
        report_store = Store.for_url(args.report, args.storage) if args.report else None
        if report_store is not None and args.report:
            report_store.makedirs(args.report)
    except StreamconvError as exc:
        log.error("%s", exc)
        return OutputError.exit_code
    dest = args.output if is_url(args.output) else os.path.normpath(args.output)
    task_options, whole = job_options(options)
    job = Job(task_options, dest, new_salt(), args.storage, whole)
    stores: dict[str, Store] = {}

    def store_for(url: str) -> Store:
        key = url.split("://", 1)[0] if is_url(url) else "file"
        if key not in stores:
            stores[key] = Store.for_url(url, args.storage)
        return stores[key]

    try:
        inputs = expand_sources(args.sources, args.storage)
    except UsageError as exc:
        log.error("%s", exc.message)
        return 1
    # two inputs of one name would write the same outputs: the later one is not converted
    taken = name_owners(inputs)
    tasks: Iterator[list[Piece]] = plan_tasks(
        [i for i in inputs if i.url not in taken] if taken else inputs,
        store_for,
        batch_size=args.batch_size,
        limits=options.limits,
        splittable=not whole,
    )
    carried: list[dict[str, Any]] = []
    if args.resume and report_store is not None and args.report:
        # the whole plan first: the carried success lines start the new report
        previous = read_previous(report_store, args.report)
        tasks, carried = _skip_done(list(tasks), previous, out_store, dest)
    try:
        report = Report(report_store, args.report, carried)
    except StreamconvError as exc:
        log.error("%s", exc)
        return OutputError.exit_code
    counts = {"converted": 0, "failed": 0, "failed_inputs": 0, "tasks": 0}
    task_seconds = [0.0]
    workers_used: set[str] = set()
    # inputs that could not be found are failures of their own (exit code 20, as json2dcm)
    from ..errors import InputError

    missing = [
        failure_line(i.url, None, InputError(_input_message(i.url, i.error), source=i.url))
        if i.size < 0
        else failure_line(i.url, None, _name_taken(i, taken[i.url]))
        for i in inputs
        if i.size < 0 or i.url in taken
    ]
    if missing:
        report.add([], missing)
        for line in missing:
            if line["source"] in taken:
                log.error("%s: %s", line["source"], line["message"])
            else:  # the message names the input
                log.error("%s", line["message"])
        counts["failed"] += len(missing)
        counts["failed_inputs"] += len(missing)
    progress = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        progress = tqdm(unit=" tasks", desc="streamconv batch", file=sys.stderr)

    # names from keywords ({SOPInstanceUID}), or a template without the index, can repeat
    # inside one input, also across the tasks of a split one: as json2dcm --array-split, the
    # later dataset is reported (65) rather than replaced without a word
    indexed = names_by_index(options.filename_template, also=frozenset({"name"}))
    names: dict[str, tuple[str, int]] | None = None if indexed else {}
    if names is not None:
        for line in carried:
            names.setdefault(str(line["output"]), (str(line["source"]), int(line["index"])))

    def duplicates(res: TaskResult) -> TaskResult:
        assert names is not None
        kept: list[dict[str, Any]] = []
        failures = list(res.failures)
        for line in res.successes:
            src, index = line["source"], line["index"]
            first = names.setdefault(line["output"], (src, index))
            if first == (src, index):
                kept.append(line)
                continue
            where = f"dataset {first[1] + 1}" + ("" if first[0] == src else f" of '{first[0]}'")
            err = ContentError(
                f"--filename-template gives the same name '{line['output']}' as {where}; "
                "the file holds whichever was written last",
                source=src,
            )
            failures.append(failure_line(src, index, err))
        return res._replace(successes=kept, failures=failures)

    def on_result(pieces: list[Piece], res: TaskResult | None, exc: BaseException | None) -> None:
        counts["tasks"] += 1
        if res is None:
            # the engine gave up on the task (its workers kept dying): every piece failed
            err = StreamconvError(f"task failed: {type(exc).__name__}: {exc}")
            err.category = "worker"
            res = TaskResult([], [failure_line(p.source, None, err) for p in pieces], 0.0, "")
        elif names is not None:
            res = duplicates(res)
        report.add(res.successes, res.failures)
        if res.worker:
            workers_used.add(res.worker)
        task_seconds[0] += res.seconds
        counts["converted"] += len(res.successes)
        counts["failed"] += len(res.failures)
        counts["failed_inputs"] += sum(1 for f in res.failures if f["index"] is None)
        for f in res.failures:
            where = f"{f['path']}: " if f["path"] else ""
            log.error("%s: %s%s", f["source"], where, f["message"])
        if progress is not None:
            elapsed = time.monotonic() - t0
            progress.set_postfix(
                datasets=counts["converted"] + counts["failed"],
                rate=f"{counts['converted'] / elapsed:.0f}/s" if elapsed else "-",
            )
            progress.update(1)

    stopped_by = 0
    try:
        engine.run(tasks, job, on_result)
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM (see _on_signal)
        stopped_by = exc.args[0] if exc.args and isinstance(exc.args[0], int) else signal.SIGINT
        log.error("stopped by signal %d: the report lists what was done", stopped_by)
    finally:
        if progress is not None:
            progress.close()
        # no worker of ours may write after this (an embedded cluster is shut down here;
        # tasks on a --cluster finish their current output, renamed whole)
        engine.close()
        if out_store.local:
            out_store.sync(dest)  # what the workers wrote since their last sync
        if out_store.local or out_store.protocol not in _ATOMIC_PUT:
            swept = out_store.sweep(dest)
            if swept:
                log.info("removed %d temporary file(s) of interrupted writes", swept)
    seconds = time.monotonic() - t0
    skipped = len(carried)
    failed_datasets = counts["failed"] - counts["failed_inputs"]
    summary = {
        "inputs": len(inputs),
        "datasets": counts["converted"] + failed_datasets + skipped,
        "converted": counts["converted"],
        "failed": counts["failed"],
        "skipped": skipped,
        "failed_inputs": counts["failed_inputs"],
        "tasks": counts["tasks"],
        "engine": engine.name,
        "workers": engine.workers,
        "workers_used": len(workers_used),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(seconds, 3),
        "task_seconds": round(task_seconds[0], 3),  # spent inside tasks, all workers
        "datasets_per_second": round(counts["converted"] / seconds, 1) if seconds else 0.0,
        "output": dest,
    }
    if stopped_by:
        summary["stopped_by_signal"] = int(stopped_by)
    report.finish(summary)
    log.info(
        "%d inputs, %d converted, %d failed, %d skipped in %.1f s",
        summary["inputs"], summary["converted"], summary["failed"], skipped, seconds,
    )  # fmt: skip
    if stopped_by:
        return 128 + int(stopped_by)
    return 65 if counts["failed"] else 0


def _name_taken(inp: Input, owner: str) -> OutputError:
    err = OutputError(
        f"its outputs would be named '{inp.name}' like those of '{owner}', which keeps the "
        "name; not converted (give the inputs different names, or convert them in separate "
        "runs or to separate --output folders)",
        source=inp.url,
    )
    err.errno = errno.EEXIST
    return err


def _on_signal(signum: int, frame: object) -> None:
    # SIGTERM as SIGINT: one path that stops the engine, sweeps and writes the report
    raise KeyboardInterrupt(signum)


def _input_message(url: str, error: str) -> str:
    return error if error.startswith("cannot") else f"cannot read JSON input '{url}': {error}"


def _skip_done(
    tasks: list[list[Piece]], previous: Previous, out_store: Store, dest: str
) -> tuple[Iterator[list[Piece]], list[dict[str, Any]]]:
    """--resume: drop the pieces whose datasets all have success lines and outputs of the
    size the report says; returns the tasks left and the success lines carried over."""
    existing = out_store.find(dest)
    carried: list[dict[str, Any]] = []
    left: list[list[Piece]] = []

    def present(line: dict[str, Any]) -> bool:
        out = line.get("output")
        key = out if is_url(str(out)) or not out_store.local else os.path.normpath(str(out))
        return existing.get(str(key)) == line.get("bytes")

    for pieces in tasks:
        keep: list[Piece] = []
        for piece in pieces:
            lines = previous.by_source.get(piece.source, {})
            if piece.source in previous.failed or not lines:
                keep.append(piece)
                continue
            if piece.datasets >= 0:
                wanted = [
                    lines.get(i)
                    for i in range(piece.first_index, piece.first_index + piece.datasets)
                ]
            else:
                wanted = list(lines.values())  # a whole input: its lines were written together
            if all(w is not None and present(w) for w in wanted):
                carried.extend(w for w in wanted if w is not None)
            else:
                keep.append(piece)
        if keep:
            left.append(keep)
    return iter(left), carried
