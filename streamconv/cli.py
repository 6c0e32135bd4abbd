"""json2dcm: the one-shot command (json2dcm 3.7.0 manual page): argv -> options -> exit code."""

from __future__ import annotations

import os
import sys

from . import __version__
from .args import PROG, build_options, log_config, log_level, parse_args, usage
from .core.lazylog import INFO, cancel_setup, defer_setup, lazy_logger
from .errors import StreamconvError, UsageError
from .options import ArrayPolicy, ConvertOptions

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["main", "main_entry", "run"]

log = lazy_logger("streamconv.cli")

# levels at which a run that logs nothing need not import logging at all (issue 11): the
# set-up waits for the first record (core/lazylog.py); -v, -d and -lc set up at once
_DEFERRED_LEVELS = ("warn", "error", "fatal")

HEADER = f"$streamconv: {PROG} v{__version__} $\n\n{PROG}: Convert JSON document to DICOM file or data set\n"


def version_text() -> str:
    from importlib.metadata import version

    import anyio  # noqa: F401  (version via metadata)
    import ijson

    lines = [
        f"$streamconv: {PROG} v{__version__} $",
        "",
        "External libraries used:",
        f"- ijson, Version {version('ijson')} (backend {_backend_name(ijson)})",
        f"- pydicom, Version {version('pydicom')}",
        f"- anyio, Version {version('anyio')}",
        f"- Python, Version {sys.version.split()[0]}",
    ]
    return "\n".join(lines) + "\n"


def _backend_name(ijson: object) -> str:
    from .core.documents import _BACKEND

    return str(getattr(_BACKEND, "backend_name", getattr(_BACKEND, "backend", "?")))


def _discard() -> TextIO:
    return open(os.devnull, "w")  # stderr closed: kept for the life of the process


def _text(out: TextIO | None, text: str) -> int:
    """Usage or version text: exit 0 once written, 40 if stdout is closed or fails."""
    if out is None:
        return 40
    try:
        out.write(text)
        out.flush()
    except OSError:
        return 40
    return 0


def _print_error(stderr: TextIO, text: str) -> None:
    stderr.write(HEADER + f"\nerror: {text}\n")


def main(
    argv: list[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """json2dcm's main: returns the exit code (CONTRACT §2)."""
    try:
        return _main(argv, stdout=stdout, stderr=stderr)
    finally:
        cancel_setup()  # a deferred logging set-up that no record needed


def _main(argv: list[str] | None, *, stdout: TextIO | None, stderr: TextIO | None) -> int:
    from .sinks import claim_std_fds

    # A closed stdin/stdout/stderr is opened on /dev/null first, so that no file opened
    # later takes its number; writing to a closed stdout is exit 40, logging to a closed
    # stderr goes nowhere and the exit code stays the conversion's (issue 10 row 10).
    claim_std_fds()
    out = stdout or sys.stdout
    err = stderr or sys.stderr or _discard()
    argv = list(sys.argv[1:] if argv is None else argv)
    from .runtime import tune_gc

    tune_gc()
    if not argv:
        return _text(out, HEADER + "\n" + usage())
    try:
        parsed = parse_args(argv)
    except UsageError as exc:
        _print_error(err, exc.message)
        return 1
    if parsed.values.get("help"):
        return _text(out, HEADER + "\n" + usage())
    if parsed.values.get("version"):
        return _text(out, version_text())
    quiet = parsed.values.get("log") == "quiet"
    try:
        level = log_level(parsed)
    except UsageError as exc:
        _print_error(err, exc.message)
        return 1
    config = log_config(parsed)
    if config is None and level in _DEFERRED_LEVELS:
        defer_setup(lambda: _setup_logging(level, None, err))
    else:
        try:
            _setup_logging(level, config, err)
        except ValueError as exc:
            _print_error(err, str(exc))
            return 1
    if parsed.values.get("arguments"):
        # in command-line order, options by their long names (dcmtk-behavior C16)
        shown = " ".join(f"'{a}'" for a in parsed.expanded)
        log.info("calling '%s' with %d arguments: %s", PROG, len(parsed.expanded), shown)
        if not log.isEnabledFor(INFO):
            err.write(f"I: calling '{PROG}' with {len(parsed.expanded)} arguments: {shown}\n")
    if len(parsed.params) < 2:
        _print_error(
            err, "Missing parameter " + ("jsonfile-in" if not parsed.params else "dcmfile-out")
        )
        return 1
    if len(parsed.params) > 2:
        _print_error(err, "Too many parameters")
        return 1
    try:
        options = build_options(parsed)
    except UsageError as exc:
        if not exc.with_usage_header:
            log.error("%s", exc.message)
        else:
            _print_error(err, exc.message)
        return 1
    src, dst = parsed.params
    if options.array_policy is ArrayPolicy.SPLIT and dst == "-":
        _print_error(
            err,
            "--array-split writes one file per data set: dcmfile-out must be a directory, not '-'",
        )
        return 1
    if not src:
        log.error("%s: invalid input filename: <empty string>", PROG)
        return 1
    if not dst:
        log.error("%s: invalid output filename: <empty string>", PROG)
        return 1
    resume = bool(parsed.values.get("resume"))
    if resume and options.array_policy is not ArrayPolicy.SPLIT:
        _print_error(err, "--resume needs --array-split (it skips data sets already written)")
        return 1
    return run(src, dst, options, quiet=quiet, resume=resume)


def _setup_logging(level: str, config: str | None, err: TextIO) -> None:
    from .logsetup import setup_logging

    setup_logging(level, config, stream=err, appname=PROG)


def run(
    src: str, dst: str, options: ConvertOptions, *, quiet: bool = False, resume: bool = False
) -> int:
    from .oneshot import convert_file, convert_file_sync

    try:
        if options.array_policy is ArrayPolicy.SPLIT:
            import functools

            import anyio  # worker processes: the async stream engine

            # a worker that died: errors.WorkerDied, exit 70
            anyio.run(functools.partial(convert_file, src, dst, options, resume=resume))
        else:
            convert_file_sync(src, dst, options)
    except StreamconvError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except MemoryError:
        log.error("%s: out of memory", src)
        return 65
    except RecursionError:
        log.error("%s: input nested too deeply", src)
        return 65
    return 0


def main_entry() -> None:
    """Console-script entry point."""
    code = main()
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError:
        # usage or version text that could not be written whole (the output is the text)
        code = code or 40
    # Everything is written and closed (outputs, temporary files, log handlers): skip the
    # interpreter's teardown of every module, ~13 ms of a ~130 ms one-shot run.
    try:
        logging = sys.modules.get("logging")  # imported only if something was logged
        if logging is not None:  # -lc file handlers flushed and closed
            logging.shutdown()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr gone: the exit code still says what happened
    os._exit(code)


if __name__ == "__main__":  # python -m streamconv.cli: json2dcm
    main_entry()
