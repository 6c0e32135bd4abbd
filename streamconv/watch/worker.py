"""The worker side: one input, start to end, in a worker process.

:func:`process_batch` takes a few :class:`~streamconv.watch.jobs.Job` s: each input is checked
(ready? daemon-conventions §2), claimed by a rename (§3), converted, its outputs written
(:mod:`.outputs`) and, once they are durable, moved to done/ or failed/ (:mod:`.outcome`).
Nothing here touches the event loop: the daemon gets a small :class:`Result` per input.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import time
from dataclasses import dataclass, replace
from typing import Any

from ..errors import (
    ContentError,
    InputError,
    JSONSyntaxError,
    LimitError,
    OutputError,
    StreamconvError,
    WorkerDied,
)
from ..runtime import worker_init
from ..sinks import fsync_dir
from .claims import claim_entry
from .jobs import (
    READ_SIZE,
    SMALL_INPUT,
    STREAM_SUFFIXES,
    ErrorInfo,
    Job,
    Mode,
    Result,
    Sig,
    name_problem,
    printable,
)
from .outcome import Pending, fail_input, finish_failure, incomplete
from .outputs import Writer

__all__ = ["process_batch", "process_input", "warm_worker"]

logger = logging.getLogger(__name__)


def warm_worker(parent_pid: int) -> None:
    """Start-up of a worker process: the one initialiser, and the conversion modules."""
    worker_init(parent_pid)
    from ..core import pipeline  # noqa: F401  (the conversion modules, imported once per worker)


def process_input(job: Job) -> Result:
    """One input through check, claim, conversion, outputs and outcome (in a worker)."""
    return process_batch([job])[0]


def process_batch(jobs: list[Job]) -> list[Result]:
    """Several inputs in one worker call: one round trip, one fsync per output folder.

    Each input is checked, claimed and converted in turn while its outputs are written (temp +
    fsync + rename) by a few threads, so that fsync waits overlap the next conversion. Then the
    output folders are fsynced once, and only then does each input move to done/ or failed/.
    """
    worker_init(jobs[0].parent_pid)
    results: list[Result | None] = [None] * len(jobs)
    pending: list[tuple[int, Pending, float]] = []
    for n, job in enumerate(jobs):
        started = time.perf_counter()
        try:
            outcome = _process(job)
        except Exception as exc:  # a bug must not take the worker (or the input) down silently
            outcome = _internal_error(job, exc)
        if isinstance(outcome, Result):
            outcome.seconds = time.perf_counter() - started
            results[n] = outcome
        else:
            pending.append((n, outcome, started))
    folders: set[str] = set()
    for _, pend, _ in pending:
        folders |= pend.writer.wait()
    for folder in sorted(folders):
        try:
            fsync_dir(folder)
        except OSError as exc:  # the outputs there are not known to be durable: retry
            for _, pend, _ in pending:
                if folder in pend.writer.folders:
                    pend.writer.fail_writes(OutputError(f"cannot fsync '{folder}': {exc}"))
    for n, pend, started in pending:
        try:
            result = pend.finish()
        except Exception as exc:
            result = _internal_error(pend.job, exc)
        result.seconds = time.perf_counter() - started
        results[n] = result
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def _internal_error(job: Job, exc: Exception) -> Result:
    logger.exception("internal error on %s", printable(job.name))
    result = Result("retry", directory=job.directory)
    result.error = ErrorInfo(
        "internal", WorkerDied.exit_code, f"internal error: {exc!r}", transient=True
    )
    if os.path.lexists(os.path.join(job.claim_dir, job.name)):
        result.directory = job.claim_dir
    if job.final:  # the retry limit holds for bugs too: failed/, category "internal"
        try:
            return fail_input(replace(job, directory=result.directory), result.error)
        except Exception:
            logger.exception("cannot move %s to failed/", printable(job.name))
            result.status = "stuck"
    return result


@dataclass(slots=True)
class _Prepared:
    """An input converted in memory, before the claim."""

    items: list[Any]  # Output | Failure
    error: StreamconvError | None
    parsed_whole: bool  # the JSON parse reached the end of the input
    shape: str
    count: int


_KINDS = (
    (stat.S_ISLNK, "symbolic link"),
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def _refusal(name: str, st: os.stat_result) -> str:
    """Why an inbox entry (*st* from lstat) is refused unopened ("" if it may be read)."""
    if not stat.S_ISREG(st.st_mode):
        return next((kind for test, kind in _KINDS if test(st.st_mode)), "not a regular file")
    return name_problem(name)


def _process(job: Job) -> Result | Pending:
    src = os.path.join(job.directory, job.name)
    try:
        lst = os.lstat(src)  # never stat: a symlink is refused, not followed
    except (FileNotFoundError, NotADirectoryError):
        return Result("gone")
    refused = _refusal(job.name, lst)
    if refused:
        return _refuse(job, refused, lst)
    limit = job.inbox.max_input_bytes
    if limit and lst.st_size > limit:
        message = (
            f"input file of {lst.st_size} bytes is larger than {limit} bytes "
            "(limit max_input_bytes / --max-input-bytes); not read"
        )
        return fail_input(job, ErrorInfo.of(LimitError(message)))
    try:
        # O_NONBLOCK: a FIFO swapped in after the lstat cannot block the open (it is not read)
        fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return Result("gone")
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink swapped in: not an input
            return Result("gone", reason="symbolic link")
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return Result("gone", reason="not a regular file")
        sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        if job.mode is Mode.CLAIMED:
            data = _read_all(fd) if st.st_size <= SMALL_INPUT else None
            return _convert_claimed(job, src, fd, data, None, sig)
        if job.mode is Mode.SETTLED and job.sig is not None and job.sig != sig:
            return Result("not_ready", "changed", sig)
        prepared: _Prepared | None = None
        data = None
        if st.st_size <= SMALL_INPUT:
            data = _read_all(fd)
            after = os.fstat(fd)
            if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                return Result(
                    "not_ready", "changed", (after.st_ino, after.st_size, after.st_mtime_ns)
                )
            prepared = _prepare(job, data)
            error, parsed_whole, shape, count = (
                prepared.error, prepared.parsed_whole, prepared.shape, prepared.count,
            )  # fmt: skip
        else:
            error, parsed_whole, shape, count = _check_stream(job, fd)
        verdict = _readiness(job, st, error, parsed_whole, shape, count)
        if verdict:
            _discard(prepared)
            return Result("not_ready", verdict, sig)
        # -- claim (daemon-conventions §3): the rename is the lock
        dst = os.path.join(job.claim_dir, job.name)
        claim = claim_entry(src, dst)
        if claim != "claimed":
            _discard(prepared)
            if claim == "busy":
                return Result("not_ready", "busy", sig)
            return Result("gone", reason="claimed elsewhere")
        claimed = os.stat(dst, follow_symlinks=False)
        if (claimed.st_ino, claimed.st_size, claimed.st_mtime_ns) != sig:
            # replaced between our read and the rename: convert what we actually own
            _discard(prepared)
            os.close(fd)
            fd = os.open(dst, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return Result("gone", reason="not a regular file")
            data = _read_all(fd) if claimed.st_size <= SMALL_INPUT else None
            resig = (claimed.st_ino, claimed.st_size, claimed.st_mtime_ns)
            return _convert_claimed(job, dst, fd, data, None, resig)
        if data is None:
            os.lseek(fd, 0, os.SEEK_SET)
        return _convert_claimed(job, dst, fd, data, prepared, sig)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def _readiness(
    job: Job,
    st: os.stat_result,
    error: StreamconvError | None,
    parsed_whole: bool,
    shape: str,
    count: int,
) -> str:
    """Why the input may not be claimed yet ("" if it may; daemon-conventions §2)."""
    if job.mode is Mode.EXPIRED:
        return ""
    if error is not None and incomplete(error):
        return "incomplete"
    if job.mode is Mode.FAST:
        if not parsed_whole:
            return "unsettled"  # e.g. a syntax error: wait for the quiet period, then fail it
        stream = count > 1 or job.name.endswith(STREAM_SUFFIXES)
        if shape == "values" and stream and not st.st_ctime_ns > st.st_mtime_ns:
            return "unsettled"  # NDJSON: a line boundary parses too
    return ""


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, READ_SIZE):
        chunks.append(chunk)
    return b"".join(chunks)


def _run_context(job: Job) -> Any:
    from ..core.pipeline import RunContext

    # Relative BulkDataURIs resolve against the inbox, where the producer put the file.
    return RunContext(job.inbox.options, os.path.join(job.inbox.path, job.name), job.inbox.path)


def _prepare(job: Job, data: bytes) -> _Prepared:
    from ..core.pipeline import Converter

    conv = Converter(_run_context(job), collect_errors=True)
    items: list[Any] = []
    error: StreamconvError | None = None
    phase = "feed"
    try:
        items.extend(conv.feed(data))
        phase = "finish"
        items.extend(conv.finish())
        phase = "done"
    except StreamconvError as exc:
        error = exc
    except (MemoryError, RecursionError) as exc:
        error = ContentError("input too large or nested too deeply" if isinstance(exc, MemoryError)
                             else "input nested too deeply")  # fmt: skip
    finally:
        conv.close()
    parsed_whole = phase == "done" or (
        phase == "finish" and error is not None and not isinstance(error, JSONSyntaxError)
        and not incomplete(error)
    )  # fmt: skip
    return _Prepared(items, error, parsed_whole, conv.parser.shape, conv.parser.count)


def _check_stream(job: Job, fd: int) -> tuple[StreamconvError | None, bool, str, int]:
    """A parse-only pass over a large input: (error, parsed to the end, shape, values)."""
    from ..core.documents import DocumentParser

    parser = DocumentParser(
        source=os.path.join(job.inbox.path, job.name), limits=job.inbox.options.limits
    )
    error: StreamconvError | None = None
    try:
        while chunk := os.read(fd, READ_SIZE):
            parser.feed(chunk)
        parser.finish()
    except StreamconvError as exc:
        error = exc
    finally:
        parser.close()
    return error, error is None, parser.shape, parser.count


def _discard(prepared: _Prepared | None) -> None:
    if prepared is None:
        return
    from ..core.pipeline import Output, release  # the spill/bulk temporaries of unwritten outputs

    for item in prepared.items:
        if isinstance(item, Output):
            release(item)
    prepared.items.clear()


def _convert_claimed(
    job: Job, path: str, fd: int, data: bytes | None, prepared: _Prepared | None, sig: Sig
) -> Pending:
    """The input is ours (at *path*): convert it and start writing its outputs.

    *sig* is the input as it was read: :meth:`Pending.finish` compares it with the file
    before it moves the input anywhere (a file written in place after it was taken).
    """
    from ..core.pipeline import Converter

    stem = os.path.splitext(job.name)[0] or job.name
    writer = Writer(job, stem)
    writer.claimed_ctime_ns = os.fstat(fd).st_ctime_ns  # the claim (a rename) set it
    error: StreamconvError | None = None
    try:
        if prepared is None and data is not None:
            prepared = _prepare(job, data)
        if prepared is not None:
            error = prepared.error
            items, prepared.items = prepared.items, []
            for n, item in enumerate(items):
                try:
                    writer.add(item)
                except StreamconvError:
                    _discard(_Prepared(items[n + 1 :], None, False, "", 0))
                    raise
        else:
            conv = Converter(_run_context(job), collect_errors=True)
            try:
                while chunk := os.read(fd, READ_SIZE):
                    for item in conv.feed(chunk):
                        writer.add(item)
                for item in conv.finish():
                    writer.add(item)
            finally:
                conv.close()
        if error is None:
            writer.finish()
    except StreamconvError as exc:
        error = exc
    except OSError as exc:  # reading the claimed input
        error = InputError(f"cannot read JSON input: {exc.strerror or exc}")
    except (MemoryError, RecursionError):
        error = ContentError("input too large or nested too deeply")
    if error is not None:
        writer.abort()
    return Pending(job, path, stem, sig[1], writer, error, sig)


def _refuse(job: Job, reason: str, lst: os.stat_result) -> Result | Pending:
    """An inbox entry that is not read (a symlink, FIFO, socket, device or directory, or a name
    with control characters or bytes that are not UTF-8): claimed by a rename like any input,
    then renamed into failed/ beside ``NAME.error.json`` (category ``refused``). Only the
    directory entry moves: nothing is opened or followed (a directory keeps its contents).

    An entry that cannot be moved (a directory the daemon may not write to: its ``..`` would
    change) is ``left`` where it is: the daemon logs it once and does not track it again.
    """
    path = os.path.join(job.directory, job.name)
    if job.directory != job.claim_dir:
        dst = os.path.join(job.claim_dir, job.name)
        try:
            claim = claim_entry(path, dst)
        except OSError as exc:
            sig = (lst.st_ino, lst.st_size, lst.st_mtime_ns)
            return Result("left", f"{reason}; cannot move it: {exc.strerror or exc}", sig)
        if claim != "claimed":
            return Result("not_ready", "busy") if claim == "busy" else Result("gone")
        try:
            st = os.lstat(dst)
        except FileNotFoundError:
            return Result("gone")
        reason = _refusal(job.name, st)  # what the rename actually claimed
        if not reason:  # a regular file renamed over the entry since the lstat: an input
            return _process(replace(job, directory=job.claim_dir, mode=Mode.CLAIMED))
        path = dst
    info = ErrorInfo("refused", InputError.exit_code, f"refused: {reason} (not opened)")
    stem = os.path.splitext(job.name)[0] or job.name
    result = Result("failed", error=info, directory=job.claim_dir)
    result.moved_to = finish_failure(job, path, info, Writer(job, stem))
    return result
