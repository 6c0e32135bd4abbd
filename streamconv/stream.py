"""`streamconv stream`: an endless stdin stream of datasets, converted as they arrive.

The command line and the signals around :func:`streamconv.fanout.convert_stream`, the
worker-process engine that ``json2dcm --array-split`` shares.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

import anyio

from .errors import OutputError, StreamconvError, UsageError
from .fanout import StreamSummary, convert_stream
from .options import ConvertOptions

__all__ = ["main"]

log = logging.getLogger(__name__)

# -- command line ---------------------------------------------------------------------------

USAGE = """usage: streamconv stream --output-dir DIR [--jobs N] [--filename-template T] [--resume] [json2dcm options]

Reads DICOM JSON datasets from stdin until EOF: a JSON array, NDJSON (one dataset per line)
or concatenated objects, detected automatically.  Each dataset is written to DIR as soon as
it has arrived (default names {index:06d}.dcm).  A dataset that fails is reported and saved
in DIR/rejected/ with the reason beside it; the stream goes on.  --resume skips datasets
whose output file exists (a rerun of a stream that was interrupted).  Temporary files that a
killed earlier run left in DIR are removed at start.  SIGTERM/SIGINT: stop reading, finish
the datasets in hand; a second one: stop now.

exit codes: 0 all converted, 65 some datasets rejected, 1 usage, 40 output not writable,
            65 invalid JSON (the stream cannot go on), 70 a worker process died,
            128+N stopped by signal N
"""


def main(argv: list[str]) -> int:
    from .args import build_options, log_config, log_level, parse_args
    from .logsetup import setup_logging
    from .sinks import claim_std_fds

    claim_std_fds()  # a closed stdin/stdout/stderr: /dev/null, never a file opened later
    out_dir = ""
    jobs = 0
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        if a in ("--output-dir", "-o", "--jobs", "-j"):
            if i + 1 >= len(argv):
                sys.stderr.write(f"streamconv stream: missing value for {a}\n")
                return 1
            if a in ("--output-dir", "-o"):
                out_dir = argv[i + 1]
            else:
                try:
                    jobs = int(argv[i + 1])
                    if jobs < 1:
                        raise ValueError
                except ValueError:
                    sys.stderr.write(
                        f"streamconv stream: --jobs needs a positive integer, got '{argv[i + 1]}'\n"
                    )
                    return 1
            i += 2
            continue
        rest.append(a)
        i += 1
    if not out_dir:
        sys.stderr.write("streamconv stream: --output-dir DIR is required\n\n" + USAGE)
        return 1
    try:
        parsed = parse_args(rest)
        if parsed.params:
            raise UsageError(f"unexpected parameter '{parsed.params[0]}' (the input is stdin)")
        level = log_level(parsed)
        options = build_options(parsed)
    except UsageError as exc:
        sys.stderr.write(f"streamconv stream: error: {exc.message}\n")
        return 1
    try:
        setup_logging(
            level,
            log_config(parsed),
            appname="streamconv",
        )
    except ValueError as exc:
        sys.stderr.write(f"streamconv stream: error: {exc}\n")
        return 1
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        log.error("cannot create output directory '%s': %s", out_dir, exc.strerror)
        return OutputError.exit_code
    quiet = parsed.values.get("log") == "quiet"
    verbose = level in ("info", "debug", "trace")
    resume = bool(parsed.values.get("resume"))
    return anyio.run(_main_async, out_dir, options, jobs, quiet, verbose, resume)


async def _main_async(
    out_dir: str, options: ConvertOptions, jobs: int, quiet: bool, verbose: bool, resume: bool
) -> int:
    from .service import ServiceSignals

    progress = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        progress = tqdm(unit=" datasets", desc="streamconv", file=sys.stderr, dynamic_ncols=True)
    # the first SIGTERM/SIGINT drains (no more reading; the datasets in hand are finished),
    # a second one exits now (workers killed, their temporaries removed)
    signals = ServiceSignals()
    summary: StreamSummary | None = None
    try:
        async with signals:
            try:
                summary = await convert_stream(
                    0,
                    out_dir,
                    options,
                    jobs=jobs,
                    progress=progress,
                    stop=signals.drain_requested,
                    resume=resume,
                )
            except StreamconvError as exc:
                log.error("%s", exc)
                return exc.exit_code
    finally:
        if progress is not None:
            progress.close()
    received = signals.received
    if summary is None:  # a second signal: stopped now (ServiceSignals said so)
        return 128 + (received[0] if received else signal.SIGINT)
    if received:
        log.warning("signal %d: stopped reading; the datasets in hand were finished", received[0])
    if verbose or received:
        rate = summary.datasets / summary.seconds if summary.seconds else 0.0
        log.info(
            "%d datasets, %d converted, %d skipped, %d rejected, %.1f MB in, %.1f MB out, %.1f s, %.0f datasets/s",
            summary.datasets, summary.converted, summary.skipped, summary.rejected,
            summary.bytes_in / 1e6, summary.bytes_out / 1e6, summary.seconds, rate,
        )  # fmt: skip
    if received:
        return 128 + received[0]
    return 65 if summary.rejected else 0
