"""``streamconv watch``: the drop-folder daemon (daemon-conventions.md is the reference).

Folders, for an inbox ``BASE/inbox`` (the siblings share one filesystem, so moves are renames)::

    BASE/inbox/        producers rename finished files in here (maildir's new/)
    BASE/processing/   claimed inputs, one sub-folder per running daemon: HOST.PID.RANDOM/
    BASE/done/         converted inputs (or deleted, on_success = "delete")
    BASE/failed/       failed inputs, each with NAME.error.json (and NAME.report.jsonl)
    output_dir/        NAME.dcm, or NAME/000000.dcm ... for several datasets

The life of an input:

1. **Seen** through a watchfiles event, the start-up scan or a periodic rescan (events are lost
   while the daemon is down and on inotify queue overflow; daemon-conventions §7). Entries are
   looked at with lstat: a symlink, FIFO, socket, device or directory, or a name with control
   characters or bytes that are not UTF-8, is *refused* (:func:`_refuse`): claimed and renamed
   into failed/ unopened, with ``NAME.error.json`` (category ``refused``). A file larger than
   ``max_input_bytes`` goes to failed/ unread.
2. **Ready?** (§2) A worker process reads and converts it *before* claiming it. A file whose
   first sighting shows a complete single JSON value (renamed in, the producer contract) is
   taken at once. A file that changed after it was first seen was written in place: it is taken
   once its size and mtime have not changed for ``quiet_period`` and it parses completely.
   Several top-level values (NDJSON) prove nothing (every line boundary parses), and neither
   does the first line of a file named ``*.ndjson``/``*.jsonl``: those wait for the quiet period
   unless the file's ctime is newer than its mtime (renamed after its last write). Truncated
   JSON is "not ready yet" until ``max_age``, then failed.
3. **Claimed** by ``rename(inbox/NAME, processing/ID/NAME)`` (§3): of several daemons exactly one
   rename succeeds. The worker checks that the claimed inode is the one it read.
4. **Outputs** written atomically (temp + fsync + rename + directory fsync, §4) under names that
   depend only on the input's name (or the template), so a retry replaces instead of adding.
5. **Outcome**: the input moves to ``done/`` (or is deleted) only after every output is durable;
   a failure moves it to ``failed/`` with ``NAME.error.json``; transient errors (a bulk data
   file not there yet, disk full) leave it claimed and retry with exponential backoff (§6).

Crash safety: every claim folder is locked (``flock``) by its daemon; the kernel drops the lock
when the daemon dies, however it dies. At start-up (and at every rescan) unlocked claim folders
are adopted and their inputs converted again, which the deterministic names make idempotent;
stray ``.NAME.<hex>.part`` temporaries are removed; the inbox is watched, then scanned, and only
then is ``READY=1`` sent. Workers die with the daemon (``PR_SET_PDEATHSIG``), so an adopted input
is never still being worked on by an orphan.

The event loop does no conversion work: a whole input (read, parse, build, encode, write,
move) runs in a worker process (``anyio.to_process``, ``jobs`` of them) and returns a small
:class:`Result`. A worker gets one input when the queue is short and a batch of up to
``MAX_BATCH`` when it is long (:func:`process_batch`: one round trip and one fsync per output
folder per batch; outputs are written by threads while the next input converts). Tests drive
:func:`serve` in-process; :func:`main` is the command.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import enum
import errno
import fcntl
import heapq
import json
import logging
import os
import re
import secrets
import signal
import socket
import stat
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import anyio.to_process
import anyio.to_thread
from anyio.abc import TaskGroup, TaskStatus
from watchfiles import Change, awatch

from .. import __version__
from ..errors import (
    ContentError,
    InputError,
    JSONSyntaxError,
    LimitError,
    OutputError,
    StreamconvError,
    UsageError,
)
from ..options import ArrayPolicy
from ..service import JournalFormatter, Notifier, ServiceSignals, stderr_is_journal
from ..sinks import fsync_dir, render_name
from .config import (
    ConfigError,
    InboxConfig,
    LogSettings,
    Naming,
    WatchConfig,
    config_from_args,
    load_config,
    log_settings,
    parse_command_line,
    usage,
)
from .metrics import Metrics, write_textfile

__all__ = ["Job", "Mode", "Result", "Watcher", "main", "process_batch", "process_input", "serve"]

logger = logging.getLogger(__name__)

#: Inputs up to this size are read into memory and converted before the claim (one parse);
#: larger ones get a parse-only completeness pass, then a streaming conversion.
SMALL_INPUT = 16 << 20
READ_SIZE = 1 << 20
#: Inputs tracked per inbox; more wait in the inbox (the bounded queue) until a rescan.
MAX_TRACKED = 10_000
#: watchfiles batching: a batch is yielded after STEP ms without events, at most DEBOUNCE ms.
DEBOUNCE_MS = 100
STEP_MS = 20
#: A batch of this many events is a flood in which inotify may have dropped some: rescan.
FLOOD_EVENTS = 1000
#: The watch thread returns at least this often, so that a cancellation (exit now) is quick.
RUST_TIMEOUT_MS = 500
MAX_RETRY_DELAY = 300.0
STATUS_INTERVAL = 5.0
METRICS_INTERVAL = 0.5
SPACE_CHECK_INTERVAL = 1.0
#: Temporaries of another live daemon sharing the output folder are left alone unless idle
#: this long (a temp being written is touched continuously).
TEMP_MAX_IDLE = 600.0
#: Names of inputs that hold a stream of values: a first complete line proves nothing.
STREAM_SUFFIXES = (".ndjson", ".jsonl", ".ldjson")
#: Inputs per worker call at most (the batch grows with the queue: 1 when it is short).
MAX_BATCH = 16
#: Output writes (fsync waits) in flight per worker process, and queued per input.
WRITE_THREADS = 4
MAX_PENDING_WRITES = 64
SMALL_OUTPUT = 4 << 20
LOCK_NAME = ".lock"
PROBE_PREFIX = ".streamconv-probe."
_TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{12}\.part$")
# an inotify probe (Daemon._probe): a daemon killed while probing leaves it in the inbox
_PROBE_RE = re.compile(r"^" + re.escape(PROBE_PREFIX) + r"\d+\.[0-9a-f]{6}$")
_QUOTED = re.compile(r"'[^']*'")
#: Characters refused in input names: C0/C1 controls (newline, carriage return, escape...),
#: Unicode line and paragraph separators and bidirectional overrides (they can forge or hide
#: log lines), and lone surrogates (os.fsdecode's stand-ins for bytes that are not UTF-8).
_UNSAFE_NAME = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class StartupError(Exception):
    """The daemon cannot start (its worker processes do not run)."""


# == the worker side: one input, start to end, in a worker process ==========================


class Mode(enum.Enum):
    """What the daemon knows about an input it hands to a worker."""

    FAST = "fast"  # first sighting: take it only if obviously complete
    SETTLED = "settled"  # unchanged for quiet_period: take it if it parses completely
    EXPIRED = "expired"  # older than max_age: take it, complete or not
    CLAIMED = "claimed"  # already ours (resumed or retried): convert it


@dataclass(frozen=True, slots=True)
class Job:
    """One input for :func:`process_batch` (pickled to a worker process)."""

    inbox: InboxConfig
    name: str
    directory: str  # where the input is now: the inbox, or a claim folder
    claim_dir: str  # this daemon's processing/ID/
    mode: Mode
    sig: tuple[int, int, int] | None  # (inode, size, mtime_ns) as the daemon last saw it
    attempt: int = 1
    final: bool = False  # the last attempt: a transient error fails the input
    parent_pid: int = 0


@dataclass(slots=True)
class ErrorInfo:
    category: str
    exit_code: int
    message: str
    path: str = ""
    transient: bool = False

    @classmethod
    def of(cls, exc: StreamconvError, *, transient: bool = False) -> ErrorInfo:
        return cls(exc.category, exc.exit_code, exc.message, exc.path, transient)


@dataclass(slots=True)
class Result:
    """What became of a :class:`Job`; ``status`` is one of

    ``done``, ``partial`` (some datasets failed; the input is in failed/), ``failed``, ``left``
    (refused but cannot be moved: ``reason``; left in the inbox, logged once),
    ``retry`` (transient error; the input stays claimed in ``directory``), ``not_ready``
    (``reason``: incomplete, changed, unsettled, busy), ``gone`` (vanished or claimed by another
    daemon).
    """

    status: str
    reason: str = ""
    sig: tuple[int, int, int] | None = None
    directory: str = ""
    datasets: int = 0
    converted: int = 0
    failed: int = 0
    outputs: int = 0
    first_output: str = ""
    bytes_in: int = 0
    bytes_out: int = 0
    warnings: int = 0
    error: ErrorInfo | None = None
    moved_to: str = ""
    seconds: float = 0.0


_worker_ready = False


def _worker_init(parent_pid: int) -> None:
    """Once per worker process: ignore SIGINT (a terminal's ^C is the daemon's to handle) and
    die with the daemon (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so that no orphan keeps
    working on an input that a restarted daemon adopts."""
    global _worker_ready
    if _worker_ready or not parent_pid:  # not sent by a daemon (tests call it in-process)
        return
    _worker_ready = True
    from ..runtime import tune_gc

    tune_gc()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):  # pragma: no cover - no prctl
            pass
    if os.getppid() != parent_pid:
        os._exit(1)  # the daemon is already gone


def _warm_worker(parent_pid: int) -> None:
    _worker_init(parent_pid)
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
    _worker_init(jobs[0].parent_pid)
    results: list[Result | None] = [None] * len(jobs)
    pending: list[tuple[int, _Pending, float]] = []
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
    logger.exception("internal error on %s", _printable(job.name))
    result = Result("retry", directory=job.directory)
    result.error = ErrorInfo("internal", 70, f"internal error: {exc!r}", transient=True)
    if os.path.exists(os.path.join(job.claim_dir, job.name)):
        result.directory = job.claim_dir
    return result


@dataclass(slots=True)
class _Prepared:
    """An input converted in memory, before the claim."""

    items: list[Any]  # Output | Failure
    error: StreamconvError | None
    parsed_whole: bool  # the JSON parse reached the end of the input
    shape: str
    count: int


def _printable(text: str) -> str:
    """*text* as it is, or its ``repr`` if it holds characters that could forge a log line or
    a name that is not UTF-8 (escaped, so that it is one line of valid text)."""
    return repr(text) if _UNSAFE_NAME.search(text) or _SURROGATE.search(text) else text


def _name_problem(name: str) -> str:
    """Why an input name is refused ("" if it is not)."""
    if _SURROGATE.search(name):
        return "name is not valid UTF-8"
    if _UNSAFE_NAME.search(name):
        return "name contains control characters"
    return ""


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
    return _name_problem(name)


def _process(job: Job) -> Result | _Pending:
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
            return _convert_claimed(job, src, fd, data, None, st.st_size)
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
        if os.path.lexists(dst):
            _discard(prepared)
            return Result("not_ready", "busy", sig)
        try:
            os.rename(src, dst)
        except FileNotFoundError:
            _discard(prepared)
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
            return _convert_claimed(job, dst, fd, data, None, claimed.st_size)
        if data is None:
            os.lseek(fd, 0, os.SEEK_SET)
        return _convert_claimed(job, dst, fd, data, prepared, st.st_size)
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
    if error is not None and _incomplete(error):
        return "incomplete"
    if job.mode is Mode.FAST:
        if not parsed_whole:
            return "unsettled"  # e.g. a syntax error: wait for the quiet period, then fail it
        stream = count > 1 or job.name.endswith(STREAM_SUFFIXES)
        if shape == "values" and stream and not st.st_ctime_ns > st.st_mtime_ns:
            return "unsettled"  # NDJSON: a line boundary parses too
    return ""


def _incomplete(exc: StreamconvError) -> bool:
    """Truncated JSON or an empty file: what a writer that has not finished leaves."""
    return exc.truncated


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
        and not _incomplete(error)
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


class _Writer:
    """Names and writes the outputs of one input, in the order they come (streaming).

    Writes go to a few threads (:func:`_write_file`: temp + fsync + rename, no folder fsync);
    :meth:`wait` collects them and returns the folders to fsync before the input may move on.
    """

    def __init__(self, job: Job, stem: str) -> None:
        self.job = job
        self.inbox = job.inbox
        self.stem = stem
        self.template: str | None = None
        if self.inbox.naming is Naming.TEMPLATE and self.inbox.filename_template is not None:
            escaped = stem.replace("{", "{{").replace("}", "}}")
            self.template = self.inbox.filename_template.replace("{name}", escaped)
        self.count = 0
        self.converted = 0
        self.failed = 0
        self.outputs = 0
        self.bytes_out = 0
        self.warnings = 0
        self.first_output = ""
        self.first_failure: ErrorInfo | None = None
        self.transient_failures = 0
        self.records: list[dict[str, Any]] = []
        self.write_error: StreamconvError | None = None
        self.folders: set[str] = set()  # to fsync once the writes are done
        self._writes: collections.deque[tuple[Future[int], dict[str, Any]]] = collections.deque()
        self._held: Any = None
        self._made: set[str] = set()

    def add(self, item: Any) -> None:
        self.count += 1
        if self.inbox.naming is not Naming.DEFAULT:
            self._emit(item, multi=False)
        elif self.count == 1:
            self._held = item  # one dataset (NAME.dcm) or the first of several (NAME/000000.dcm)?
        else:
            if self._held is not None:
                held, self._held = self._held, None
                self._emit(held, multi=True)
            self._emit(item, multi=True)

    def finish(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._emit(held, multi=False)

    def abort(self) -> None:
        """A whole-input error: the held first output is not written (its name is undecided)."""
        from ..core.pipeline import Output, release

        if isinstance(self._held, Output):
            release(self._held)
        self._held = None

    def wait(self) -> set[str]:
        """Wait for every write; the folders whose entries must be fsynced (none on error)."""
        while self._writes:
            self._collect()
        return set() if self.write_error is not None else self.folders

    def fail_writes(self, exc: OutputError) -> None:
        if self.write_error is None:
            self.write_error = exc

    def _collect(self) -> None:
        future, record = self._writes.popleft()
        try:
            self.bytes_out += future.result()
        except StreamconvError as exc:
            self.write_error = self.write_error or exc
            record.update(result="failed", **_error_fields(exc))
            self.converted -= 1
        except OSError as exc:
            target = record.get("output", "")
            err = OutputError(f"cannot write '{target}': {exc.strerror or exc}")
            self.write_error = self.write_error or err
            record.update(result="failed", **_error_fields(err))
            self.converted -= 1

    def _emit(self, item: Any, *, multi: bool) -> None:
        from ..core.pipeline import Failure, Output, release

        if isinstance(item, Failure):
            self._failure(item.index, item.error)
            return
        assert isinstance(item, Output)
        try:
            target = self._target(item, multi=multi)
        except ContentError as exc:
            release(item)
            if self.inbox.options.array_policy is ArrayPolicy.SPLIT and self.count > 1:
                self._failure(item.index, exc)
                return
            raise
        try:
            self._parent(target)
        except OSError as exc:
            release(item)
            self.write_error = OutputError(f"cannot create '{os.path.dirname(target)}': {exc}")
            raise self.write_error from None
        rel = os.path.relpath(target, self.inbox.output_dir)
        record = {"index": item.index, "result": "converted", "output": rel}
        self.records.append(record)
        self._writes.append((_submit_write(item, target), record))
        self.folders.add(os.path.dirname(target))
        self.converted += 1
        self.outputs += 1
        self.warnings += len(item.warnings)
        if not self.first_output:
            self.first_output = rel
        while len(self._writes) > MAX_PENDING_WRITES:  # bounded memory for huge inputs
            self._collect()
        if self.write_error is not None:
            raise self.write_error

    def _failure(self, index: int, exc: StreamconvError) -> None:
        transient = _transient(exc, self.write_error)
        self.failed += 1
        if transient:
            self.transient_failures += 1
        if self.first_failure is None:
            self.first_failure = ErrorInfo.of(exc, transient=transient)
        self.records.append({"index": index, "result": "failed", **_error_fields(exc)})

    def _target(self, out: Any, *, multi: bool) -> str:
        root = self.inbox.output_dir
        if self.template is not None:
            return os.path.join(root, render_name(self.template, max(out.index, 0), out.dataset))
        if multi:
            return os.path.join(root, self.stem, f"{out.index:06d}.dcm")
        return os.path.join(root, self.stem + ".dcm")

    def _parent(self, target: str) -> None:
        """Create the output's folder; the folders that got a new entry join the fsync set."""
        parent = os.path.dirname(target)
        if parent in self._made:
            return
        if not os.path.isdir(parent):
            missing = []
            p = parent
            while not os.path.isdir(p):
                missing.append(p)
                p = os.path.dirname(p)
            os.makedirs(parent, exist_ok=True)
            for made in missing:
                self.folders.add(os.path.dirname(made))
        self._made.add(parent)


_pool: ThreadPoolExecutor | None = None


def _write_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="streamconv-write")
    return _pool


def _submit_write(out: Any, target: str) -> Future[int]:
    """Start writing one output. A small one is encoded to bytes here (Python work, under the
    GIL), so that the thread only waits in write/fsync/rename, which release it; one with bulk
    data or of many MiB streams in the thread."""
    from ..core.encode import iter_bytes
    from ..core.pipeline import release

    enc = out.encoded
    small = all(isinstance(piece, bytes) for piece in enc.body) and enc.size_hint <= SMALL_OUTPUT
    if small and not enc.temporaries:
        try:
            data = b"".join(iter_bytes(enc))
        finally:
            release(out)
        return _write_pool().submit(_write_file, target, (data,))
    return _write_pool().submit(_write_output, out, target)


def _write_output(out: Any, target: str) -> int:
    """One output, in a write thread: the encoded chunks (bulk data read here) to the file."""
    from ..core.encode import iter_bytes
    from ..core.pipeline import release

    try:
        return _write_file(target, _coalesce(iter_bytes(out.encoded)))
    finally:
        release(out)  # spill and +ar temporaries


def _write_file(path: str, chunks: Iterable[bytes]) -> int:
    """:func:`streamconv.sinks.write_atomic` without its folder fsync, which the batch does
    once per folder: ``.NAME.<hex>.part`` + write + fsync, then rename over *path*."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    written = 0
    try:
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                    written += n
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return written


def _coalesce(chunks: Iterable[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    """The encoder yields one small chunk per element: one write per MiB instead."""
    pending: list[bytes] = []
    n = 0
    for chunk in chunks:
        pending.append(chunk)
        n += len(chunk)
        if n >= size:
            yield b"".join(pending)
            pending, n = [], 0
    if pending:
        yield b"".join(pending)


def _convert_claimed(
    job: Job, path: str, fd: int, data: bytes | None, prepared: _Prepared | None, size: int
) -> _Pending:
    """The input is ours (at *path*): convert it and start writing its outputs."""
    from ..core.pipeline import Converter

    stem = os.path.splitext(job.name)[0] or job.name
    writer = _Writer(job, stem)
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
    return _Pending(job, path, stem, size, writer, error)


@dataclass(slots=True)
class _Pending:
    """An input whose outputs are being written; :meth:`finish` once they are durable."""

    job: Job
    path: str  # the claimed input
    stem: str
    size: int
    writer: _Writer
    error: StreamconvError | None

    def finish(self) -> Result:
        """Move the input to done/ or failed/ (or leave it claimed for a retry)."""
        job, writer = self.job, self.writer
        error = self.error
        if error is None and writer.write_error is not None:
            error = writer.write_error
        result = Result(
            "done",
            directory=job.claim_dir,
            datasets=writer.count,
            converted=writer.converted,
            failed=writer.failed,
            outputs=writer.outputs,
            first_output=writer.first_output,
            bytes_in=self.size,
            bytes_out=writer.bytes_out,
            warnings=writer.warnings,
        )
        if error is None and writer.failed == 0:
            result.moved_to = _finish_success(job, self.path)
            return result
        transient = (error is not None and _transient(error, writer.write_error)) or (
            error is None and writer.transient_failures > 0
        )
        if error is not None:
            info = ErrorInfo.of(error, transient=transient)
            if _incomplete(error) and job.mode is Mode.EXPIRED:
                info.message += f" (still incomplete after {job.inbox.max_age:g} s)"
            writer.records.append({"index": None, "result": "failed", **_error_fields(error)})
        else:
            assert writer.first_failure is not None
            info = writer.first_failure
        result.error = info
        if transient and not job.final:
            result.status = "retry"
            result.directory = os.path.dirname(self.path)
            return result
        result.status = "partial" if writer.converted else "failed"
        result.moved_to = _finish_failure(job, self.path, self.stem, info, writer)
        return result


def _finish_success(job: Job, path: str) -> str:
    if job.inbox.on_success == "delete":
        os.unlink(path)  # not fsynced either: see _move
        return ""
    return _move(path, job.inbox.done_dir, job.name)


def _finish_failure(
    job: Job, path: str, stem: str, info: ErrorInfo, writer: _Writer, *, refused: bool = False
) -> str:
    from ..sinks import write_atomic

    failed_dir = job.inbox.failed_dir
    name = job.name
    if refused:  # a directory cannot replace what is there, and nothing else should replace it
        name = _free_name(failed_dir, name)
        stem = os.path.splitext(name)[0] or name
    report = None
    if writer.count > 1:
        report = stem + ".report.jsonl"
        lines = (json.dumps(r, ensure_ascii=False) + "\n" for r in writer.records)
        write_atomic(os.path.join(failed_dir, report), (line.encode() for line in lines))
    sidecar = {
        "input": _printable(job.name),
        "inbox": job.inbox.path,
        "result": "partial" if writer.converted else "failed",
        "category": info.category,
        "exit_code": info.exit_code,
        "message": info.message,
        "path": info.path,
        "attempts": job.attempt,
        "transient": info.transient,
        "datasets": {"total": writer.count, "converted": writer.converted, "failed": writer.failed},
        "outputs": [r["output"] for r in writer.records[:100] if r["result"] == "converted"],
        "report": report,
        "streamconv_version": __version__,
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    text = json.dumps(sidecar, ensure_ascii=False, indent=1) + "\n"
    write_atomic(os.path.join(failed_dir, stem + ".error.json"), [text.encode()])
    return _move(path, failed_dir, name)


def _free_name(directory: str, name: str) -> str:
    """*name*, or ``NAME.<hex>`` if something already has that name in *directory*."""
    candidate = name
    while os.path.lexists(os.path.join(directory, candidate)):
        candidate = f"{name}.{secrets.token_hex(3)}"
    return candidate


def _move(path: str, directory: str, name: str) -> str:
    """Move the input to its outcome folder (a rename).

    No fsync of either folder: the outputs (or the error sidecar) are already durable, and a
    rename lost in a power failure only leaves the input in processing/, where the next start
    converts it again under the same output names. The input is in exactly one place whatever
    happens, which is what matters; two fsyncs per input would halve the throughput.
    """
    target = os.path.join(directory, name)
    os.replace(path, target)
    return target


def _transient(exc: StreamconvError, write_error: StreamconvError | None = None) -> bool:
    """Worth trying again later (daemon-conventions §6): the input itself is not the problem."""
    if exc is write_error:
        return True  # writing the output: disk full, quota, EIO, permissions being fixed
    # bulk data not there yet / unreadable yet; a path outside the permitted folders stays
    # outside (the error says which: errors.py)
    return isinstance(exc, InputError) and exc.transient


def _error_fields(exc: StreamconvError) -> dict[str, Any]:
    fields = exc.as_dict()
    fields.pop("source", None)  # the record names its input already
    return fields


def fail_input(job: Job, info: ErrorInfo) -> Result:
    """Move an input to failed/ without converting it (a worker kept crashing on it)."""
    path = os.path.join(job.directory, job.name)
    if job.directory != job.claim_dir:
        dst = os.path.join(job.claim_dir, job.name)
        if os.path.lexists(dst):
            return Result("not_ready", "busy")
        try:
            os.rename(path, dst)
        except FileNotFoundError:
            return Result("gone")
        path = dst
    stem = os.path.splitext(job.name)[0] or job.name
    writer = _Writer(job, stem)
    result = Result("failed", error=info, directory=job.claim_dir)
    result.moved_to = _finish_failure(job, path, stem, info, writer)
    return result


def _refuse(job: Job, reason: str, lst: os.stat_result) -> Result | _Pending:
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
        if os.path.lexists(dst):
            return Result("not_ready", "busy")
        try:
            os.rename(path, dst)
        except (FileNotFoundError, NotADirectoryError):
            return Result("gone")
        except OSError as exc:
            sig = (lst.st_ino, lst.st_size, lst.st_mtime_ns)
            return Result("left", f"{reason}; cannot move it: {exc.strerror or exc}", sig)
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
    result.moved_to = _finish_failure(job, path, stem, info, _Writer(job, stem), refused=True)
    return result


# == folders: claim folders, locks, recovery =================================================


@dataclass(slots=True, eq=False)
class ClaimDir:
    """A folder under processing/ and the flock that says its daemon is alive."""

    path: str
    fd: int
    own: bool

    def release(self, *, remove: bool) -> bool:
        """Drop the lock; with *remove*, delete the folder if nothing but the lock is left."""
        removed = False
        if remove:
            try:
                names = [n for n in os.listdir(self.path) if n != LOCK_NAME]
                if not names:
                    os.unlink(os.path.join(self.path, LOCK_NAME))
                    os.rmdir(self.path)
                    fsync_dir(os.path.dirname(self.path))
                    removed = True
            except OSError:
                pass
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1
        return removed


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "host"


def make_claim_dir(processing: str) -> ClaimDir:
    """This daemon's ``processing/HOST.PID.RANDOM/``, locked before it becomes visible."""
    os.makedirs(processing, exist_ok=True)
    ident = f"{_host()}.{os.getpid()}.{secrets.token_hex(3)}"
    hidden = os.path.join(processing, "." + ident)
    os.mkdir(hidden)
    fd = os.open(os.path.join(hidden, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    os.write(fd, f"pid={os.getpid()} host={socket.gethostname()} started={started}\n".encode())
    path = os.path.join(processing, ident)
    os.rename(hidden, path)
    fsync_dir(processing)
    return ClaimDir(path, fd, own=True)


@dataclass(slots=True)
class Recovery:
    adopted: list[ClaimDir] = field(default_factory=list)
    loose: list[str] = field(default_factory=list)  # files directly in processing/, now ours
    live_others: int = 0


def recover(processing: str, own: ClaimDir, known: Iterable[str]) -> Recovery:
    """Adopt the claim folders of dead daemons (their lock is free) and loose files."""
    rec = Recovery()
    skip = {own.path, *known}
    try:
        entries = list(os.scandir(processing))
    except FileNotFoundError:
        return rec
    for entry in entries:
        path = entry.path
        if path in skip:
            continue
        if entry.name.startswith("."):
            # a claim folder half made by a daemon that died while starting: empty but the lock
            if entry.is_dir(follow_symlinks=False):
                claim = _try_lock(path)
                if claim is not None:
                    claim.release(remove=True)
            continue
        if entry.is_dir(follow_symlinks=False):
            claim = _try_lock(path)
            if claim is None:
                rec.live_others += 1
            else:
                rec.adopted.append(claim)
        elif entry.is_file(follow_symlinks=False):
            dst = os.path.join(own.path, entry.name)
            if not os.path.lexists(dst):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(path, dst)
                    rec.loose.append(entry.name)
    return rec


def _try_lock(path: str) -> ClaimDir | None:
    try:
        fd = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return ClaimDir(path, fd, own=False)


def remove_temps(
    roots: Iterable[tuple[str, bool]],
    *,
    min_idle: float,
    prefix: str = "",
    pattern: re.Pattern[str] = _TEMP_RE,
) -> int:
    """Delete ``.NAME.<hex>.part`` temporaries (or other names of *pattern*) under each
    (root, recursive) idle >= *min_idle*."""
    removed = 0
    now = time.time()
    for root, recursive in roots:
        walker: Iterator[tuple[str, list[str], list[str]]]
        if recursive:
            walker = os.walk(root)
        else:
            try:
                walker = iter([(root, [], os.listdir(root))])
            except OSError:
                continue
        for folder, _, files in walker:
            for name in files:
                if not pattern.match(name) or not name.startswith("." + prefix):
                    continue
                path = os.path.join(folder, name)
                try:
                    if min_idle and now - os.stat(path).st_mtime < min_idle:
                        continue
                    os.unlink(path)
                    removed += 1
                except OSError:
                    continue
    return removed


def _claimed_names(directory: str) -> list[str]:
    try:
        # every entry, not only regular files: a refused one left there by a crash is refused
        # again (and not left to keep the claim folder from being removed)
        return sorted(e.name for e in os.scandir(directory) if not e.name.startswith("."))
    except FileNotFoundError:
        return []


def _scan(inbox: InboxConfig) -> list[tuple[str, os.stat_result]]:
    """Entries that match the patterns, of every kind (lstat): regular files are inputs, the
    rest (and names with control characters) are refused into failed/."""
    out = []
    with os.scandir(inbox.path) as it:
        for entry in it:
            if inbox.accepts(entry.name):
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                out.append((entry.name, st))
    return out


def _stat_paths(paths: list[str]) -> list[os.stat_result | None]:
    out: list[os.stat_result | None] = []
    for p in paths:
        try:
            out.append(os.stat(p, follow_symlinks=False))
        except OSError:
            out.append(None)
    return out


# == the daemon =============================================================================


@dataclass(slots=True, eq=False)
class Candidate:
    """An input the daemon knows of, waiting or in flight."""

    state: InboxState
    name: str
    directory: str
    claimed: bool
    first_seen: float  # monotonic
    sig: tuple[int, int, int] | None = None
    sig_since: float = 0.0
    in_place: bool = False  # changed after it was first seen: written in place
    due: float = 0.0
    attempts: int = 0
    inflight: bool = False
    touched: bool = False  # an event came while in flight
    crashed: bool = False  # a worker died on its batch: convert it alone from now on
    reason: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.directory, self.name)

    @property
    def display(self) -> str:
        """The input's path for the log: escaped if the name could forge a log line."""
        return _printable(os.path.join(self.state.config.path, self.name))


class InboxState:
    def __init__(self, config: InboxConfig, claim: ClaimDir) -> None:
        self.config = config
        self.claim = claim
        self.adopted: dict[str, ClaimDir] = {}
        self.candidates: dict[tuple[str, str], Candidate] = {}
        self.busy: set[str] = set()
        #: refused entries that cannot be moved, name -> inode: logged once, then not tracked
        self.left: dict[str, int] = {}
        self.active = True
        self.overflow = False

    def __repr__(self) -> str:
        return f"InboxState({self.config.path!r}, candidates={len(self.candidates)})"

    def queued(self) -> int:
        return sum(1 for c in self.candidates.values() if not c.inflight)

    def inflight(self) -> int:
        return sum(1 for c in self.candidates.values() if c.inflight)


class InputFilter:
    """watchfiles filter: input names directly inside a watched inbox, and the start-up probe."""

    def __init__(self, inboxes: Iterable[InboxConfig], probe: str) -> None:
        self.inboxes: dict[str, InboxConfig] = {}
        for inbox in inboxes:
            self.inboxes[inbox.path] = inbox
            self.inboxes[os.path.realpath(inbox.path)] = inbox
        self.probe = probe

    def __repr__(self) -> str:
        paths = sorted({i.path for i in self.inboxes.values()})
        return f"{type(self).__name__}(inboxes={paths!r})"

    def __call__(self, change: Change, path: str) -> bool:
        directory, name = os.path.split(path)
        if name == self.probe:
            return True
        inbox = self.inboxes.get(directory)
        return inbox is not None and inbox.accepts(name)


class Watcher:
    """The daemon. :meth:`run` is :func:`serve`; :meth:`reload` is SIGHUP."""

    def __init__(
        self,
        config: WatchConfig,
        *,
        notifier: Notifier | None = None,
        loader: Callable[[], WatchConfig] | None = None,
    ) -> None:
        self.config = config
        self.notifier = Notifier({}) if notifier is None else notifier
        self.loader = loader if loader is not None else _loader_for(config)
        self.metrics = Metrics()
        self.states: dict[str, InboxState] = {}
        self.retired: list[InboxState] = []
        self._limiter = anyio.CapacityLimiter(config.jobs)
        self._heap: list[tuple[float, int, Candidate]] = []
        self._seq = 0
        self._wakeup = anyio.Event()
        self._slot_free = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()
        self._inflight = 0  # inputs
        self._busy = 0  # batches (workers busy)
        self._stop = anyio.Event()
        self._metrics_dirty = anyio.Event()
        self._probe = f"{PROBE_PREFIX}{os.getpid()}.{secrets.token_hex(3)}"
        self._probes_pending: set[str] = set()
        self._probe_event = anyio.Event()
        self._watch_scope: anyio.CancelScope | None = None
        self._watch_stop: anyio.Event | None = None
        self._watch_failed = False
        self._rescan_now = anyio.Event()
        self._service: TaskGroup | None = None
        self._jobs: TaskGroup | None = None
        self._space: dict[str, tuple[float, bool]] = {}
        self.paused = False
        self.draining = False
        self._completed: list[float] = []
        self.ready = False

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(inboxes={list(self.states)!r}, inflight={self._inflight}, "
            f"draining={self.draining})"
        )

    # -- public -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Begin the drain (as the first SIGTERM does)."""
        self._stop.set()

    def counts(self) -> dict[str, int]:
        """Inputs by result so far, over all inboxes."""
        out: dict[str, int] = {}
        for (_, result), n in self.metrics.inputs.items():
            out[result] = out.get(result, 0) + n
        return out

    async def reload(self) -> None:
        """Re-read the configuration and apply it; a bad file raises and changes nothing."""
        new = await anyio.to_thread.run_sync(self.loader)
        await self._apply(new)

    async def run(
        self,
        *,
        shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
        task_status: TaskStatus[Watcher] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            for inbox in self.config.inboxes:
                await self._open_inbox(inbox)
            async with anyio.create_task_group() as jobs:
                self._jobs = jobs
                jobs.start_soon(self.notifier.run_watchdog)  # also while draining
                async with anyio.create_task_group() as service:
                    self._service = service
                    if shutdown_trigger is not None:
                        service.start_soon(self._trigger, shutdown_trigger)
                    await self._restart_watch()
                    await self._warm_up()
                    service.start_soon(self._dispatch_loop)
                    service.start_soon(self._rescan_loop)
                    service.start_soon(self._status_loop)
                    service.start_soon(self._metrics_loop)
                    self.ready = True
                    status = self._status()
                    logger.info("ready: %s", status)
                    self.notifier.ready(status)
                    task_status.started(self)
                    await self._stop.wait()
                    self._stop_watch()  # before the cancel: the watch thread must see it
                    service.cancel_scope.cancel()
                await self._drain(jobs)
        finally:
            with anyio.CancelScope(shield=True):
                await self._close()

    # -- start-up and shutdown ----------------------------------------------------------------

    async def _trigger(self, trigger: Callable[[], Awaitable[Any]]) -> None:
        await trigger()
        self._stop.set()

    async def _open_inbox(self, inbox: InboxConfig) -> InboxState:
        """Folders, this daemon's claim folder, recovery of dead daemons' inputs, temps."""
        claim, rec, removed = await anyio.to_thread.run_sync(_prepare_inbox, inbox, self.config)
        state = InboxState(inbox, claim)
        self.states[inbox.path] = state
        self.metrics.add_inbox(inbox.path)
        logger.info(
            "watching %s -> %s%s", inbox.path, inbox.output_dir,
            f" (options: {inbox.options_text})" if inbox.options_text else "",
        )  # fmt: skip
        if removed:
            logger.info("removed %d stray temporary file(s) under %s", removed, inbox.output_dir)
        await self._adopt(state, rec)
        return state

    async def _adopt(self, state: InboxState, rec: Recovery) -> None:
        now = anyio.current_time()
        resumed = 0
        for name in rec.loose:
            self._add_claimed(state, state.claim.path, name, now)
            resumed += 1
        for claim in rec.adopted:
            names = await anyio.to_thread.run_sync(_claimed_names, claim.path)
            if not names:
                await anyio.to_thread.run_sync(_release_claim, claim)
                continue
            state.adopted[claim.path] = claim
            for name in names:
                self._add_claimed(state, claim.path, name, now)
                resumed += 1
        if resumed:
            logger.info("resuming %d input(s) left in %s", resumed, state.config.processing_dir)

    def _add_claimed(self, state: InboxState, directory: str, name: str, now: float) -> None:
        cand = Candidate(state, name, directory, True, now, sig_since=now)
        state.candidates[cand.key] = cand
        self._schedule(cand, now)

    async def _drain(self, jobs: TaskGroup) -> None:
        """Intake has stopped; let in-flight inputs finish within the grace period."""
        self.draining = True
        self._stop_watch()
        if self._inflight:
            logger.info(
                "draining: %d input(s) in flight, grace period %g s",
                self._inflight, self.config.grace_period,
            )  # fmt: skip
            self.notifier.stopping(f"draining {self._inflight} input(s)")
        else:
            self.notifier.stopping()
        with anyio.move_on_after(self.config.grace_period):
            await self._idle.wait()
        if self._inflight:
            logger.warning(
                "grace period over: %d input(s) left in processing/ for the next start",
                self._inflight,
            )
        jobs.cancel_scope.cancel()

    async def _close(self) -> None:
        self._stop_watch()
        for state in [*self.states.values(), *self.retired]:
            await self._release(state)
        await self._write_metrics()
        logger.info("stopped: %s", self._summary())

    async def _release(self, state: InboxState) -> None:
        claims = [state.claim, *state.adopted.values()]
        for claim in claims:
            if claim.fd >= 0:
                await anyio.to_thread.run_sync(_release_claim, claim)
        state.adopted.clear()

    async def _warm_up(self) -> None:
        """Start the worker processes now, so that the first inputs do not wait for them."""
        async with anyio.create_task_group() as tg:
            for _ in range(self.config.jobs):
                tg.start_soon(self._warm_one)

    async def _warm_one(self) -> None:
        try:
            await anyio.to_process.run_sync(
                _warm_worker, os.getpid(), cancellable=True, limiter=self._limiter
            )
        except anyio.BrokenWorkerProcess as exc:
            # every input would "crash" into failed/: better not to start at all
            raise StartupError(f"worker processes cannot start: {exc.__cause__ or exc}") from exc

    # -- watching, scanning ----------------------------------------------------------------------

    async def _restart_watch(self) -> None:
        """(Re)start the watcher, prove it delivers events (a probe file), then scan."""
        assert self._service is not None
        self._stop_watch()
        inboxes = [s.config for s in self.states.values() if s.active]
        if not inboxes:
            return
        scope = anyio.CancelScope()
        stop = anyio.Event()
        self._watch_scope, self._watch_stop = scope, stop
        self._probe_event = anyio.Event()
        self._probes_pending = {i.path for i in inboxes}
        self._service.start_soon(self._watch, inboxes, scope, stop)
        with anyio.move_on_after(5) as waited:
            while not self._probe_event.is_set():
                await anyio.to_thread.run_sync(_touch_probes, inboxes, self._probe)
                with anyio.move_on_after(0.5):
                    await self._probe_event.wait()
        await anyio.to_thread.run_sync(_remove_probes, inboxes, self._probe)
        if waited.cancelled_caught:
            logger.warning(
                "no file events from %s within 5 s; relying on rescans every %g s (on a network "
                "filesystem set force_polling)",
                ", ".join(sorted(self._probes_pending)), self.config.rescan_interval,
            )  # fmt: skip
        for state in list(self.states.values()):
            if state.active:
                await self._scan(state, initial=not self.ready)

    def _stop_watch(self) -> None:
        if self._watch_stop is not None:
            self._watch_stop.set()
        if self._watch_scope is not None:
            self._watch_scope.cancel()
        self._watch_scope = self._watch_stop = None

    async def _watch(
        self, inboxes: list[InboxConfig], scope: anyio.CancelScope, stop: anyio.Event
    ) -> None:
        filt = InputFilter(inboxes, self._probe)
        paths = {directory: inbox.path for directory, inbox in filt.inboxes.items()}
        with scope:
            try:
                async for changes in awatch(
                    *[i.path for i in inboxes],
                    watch_filter=filt,
                    stop_event=stop,
                    debounce=DEBOUNCE_MS,
                    step=STEP_MS,
                    force_polling=self.config.force_polling,
                    poll_delay_ms=300,
                    rust_timeout=RUST_TIMEOUT_MS,
                    recursive=False,
                    ignore_permission_denied=True,
                ):
                    await self._on_changes(changes, paths)
            # e.g. an inbox removed or unmounted; a name that is not UTF-8 (watchfiles raises
            # inside its own task group, so the error comes wrapped in an exception group)
            except* (OSError, RuntimeError) as group:
                exc = _first_leaf(group)
                logger.error(
                    "no file events (%s); rescanning every %g s and trying again",
                    _printable(str(exc)), self.config.rescan_interval,
                )  # fmt: skip
                self._watch_failed = True
                self._rescan_now.set()  # the rescan restarts the watch at once

    async def _on_changes(self, changes: set[tuple[Change, str]], paths: dict[str, str]) -> None:
        if len(changes) >= FLOOD_EVENTS:
            # watchfiles drops inotify's queue-overflow notice (IN_Q_OVERFLOW): after a flood
            # like this one, do not wait for the periodic rescan to find what was lost
            self._rescan_now.set()
        kinds: dict[str, Change] = {}
        for change, path in changes:
            directory, name = os.path.split(path)
            if name == self._probe:
                if change is not Change.deleted:
                    self._probes_pending.discard(paths.get(directory, directory))
                    if not self._probes_pending:
                        self._probe_event.set()
                continue
            previous = kinds.get(path)
            if previous is None or change is Change.modified or previous is Change.deleted:
                kinds[path] = change
        if not kinds:
            return
        listed = list(kinds)
        stats = await anyio.to_thread.run_sync(_stat_paths, listed)
        for path, st in zip(listed, stats, strict=True):
            directory, name = os.path.split(path)
            state = self.states.get(paths.get(directory, directory))
            if state is not None and state.active:
                self._observe(state, name, st, kinds[path])

    async def _scan(self, state: InboxState, *, initial: bool = False) -> None:
        try:
            found = await anyio.to_thread.run_sync(_scan, state.config)
        except OSError as exc:
            logger.error("cannot scan %s: %s", state.config.path, exc.strerror or exc)
            self._watch_failed = True  # its watch is gone too: start again once it is back
            return
        state.overflow = False
        present = set()
        wall = time.time()
        for name, st in found:
            present.add(name)
            self._observe(
                state, name, st, None, wall_age=max(0.0, wall - st.st_mtime) if initial else 0.0
            )
        inbox = state.config.path
        for key, cand in list(state.candidates.items()):
            if cand.directory == inbox and not cand.inflight and cand.name not in present:
                del state.candidates[key]  # gone without an event we saw
        for name in [n for n in state.left if n not in present]:
            del state.left[name]

    async def _rescan_loop(self) -> None:
        while True:
            with anyio.move_on_after(self.config.rescan_interval):
                await self._rescan_now.wait()
            self._rescan_now = anyio.Event()
            if self._watch_failed:
                self._watch_failed = False
                await self._restart_watch()  # scans too
            for state in list(self.states.values()):
                if state.active:
                    await self._scan(state)
                    await self._recover_more(state)

    async def _recover_more(self, state: InboxState) -> None:
        """Adopt claim folders of daemons that died since (another host, another instance)."""
        known = list(state.adopted)
        rec = await anyio.to_thread.run_sync(
            recover, state.config.processing_dir, state.claim, known
        )
        if rec.adopted or rec.loose:
            await self._adopt(state, rec)

    def _observe(
        self,
        state: InboxState,
        name: str,
        st: os.stat_result | None,
        change: Change | None,
        *,
        wall_age: float = 0.0,
    ) -> None:
        """A sighting of inbox/NAME (an event or a scan): track it, schedule its check."""
        inbox = state.config
        key = (inbox.path, name)
        cand = state.candidates.get(key)
        if cand is not None and cand.inflight:
            if st is not None:  # not just our own claim taking it away
                cand.touched = True
            return
        if st is None:  # gone; anything else (a FIFO, a symlink...) is refused by a worker
            if cand is not None:
                del state.candidates[key]
            return
        if state.left.get(name) == st.st_ino and not stat.S_ISREG(st.st_mode):
            return  # refused, could not be moved, logged
        now = anyio.current_time()
        sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        if cand is None:
            if len(state.candidates) >= MAX_TRACKED:
                state.overflow = True  # stays in the inbox until a rescan finds room
                return
            cand = Candidate(state, name, inbox.path, False, now - wall_age, sig, now)
            cand.in_place = change is Change.modified
            state.candidates[key] = cand
            self._schedule(cand, now + (inbox.quiet_period if cand.in_place else 0.0))
        elif sig != cand.sig:
            if cand.sig is None or sig[0] != cand.sig[0]:
                # another file renamed over it: a new input
                cand.first_seen, cand.in_place = now, False
                self._schedule(cand, now)
            else:
                cand.in_place = True
                self._schedule(cand, now + inbox.quiet_period)
            cand.sig, cand.sig_since = sig, now

    # -- dispatching ---------------------------------------------------------------------------

    def _schedule(self, cand: Candidate, due: float) -> None:
        cand.due = due
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, cand))
        if self._heap[0][2] is cand:
            self._wakeup.set()

    def _valid(self, entry: tuple[float, int, Candidate]) -> bool:
        due, _, cand = entry
        return (
            due == cand.due
            and not cand.inflight
            and cand.state.candidates.get(cand.key) is cand
            and (cand.state.active or cand.claimed)
        )

    async def _next_due(self) -> Candidate:
        while True:
            while self._heap and not self._valid(self._heap[0]):
                heapq.heappop(self._heap)
            now = anyio.current_time()
            if self._heap and self._heap[0][0] <= now:
                return heapq.heappop(self._heap)[2]
            self._wakeup = anyio.Event()
            timeout = self._heap[0][0] - now if self._heap else 3600.0
            with anyio.move_on_after(timeout):
                await self._wakeup.wait()

    async def _dispatch_loop(self) -> None:
        """Hand due inputs to free workers, in batches that grow with the queue."""
        while True:
            while self._busy >= self.config.jobs or self._inflight >= self.config.inflight_limit:
                self._slot_free = anyio.Event()
                await self._slot_free.wait()
            batch = self._take_batch(await self._next_due())
            if not batch:
                continue
            folders = {cand.state.config.output_dir for cand, _ in batch}
            if not all([await self._space_ok(folder) for folder in folders]):
                for cand, _ in batch:
                    self._schedule(cand, anyio.current_time() + 2.0)
                await anyio.sleep(2.0)
                continue
            self._start(batch)

    def _take_batch(self, first: Candidate) -> list[tuple[Candidate, Mode]]:
        """*first* and more due inputs: a fair share of the queue for one worker."""
        now = anyio.current_time()
        due = sum(1 for entry in self._heap if entry[0] <= now) + 1
        free = max(1, self.config.jobs - self._busy)
        size = min(MAX_BATCH, -(-due // free), self.config.inflight_limit - self._inflight)
        batch: list[tuple[Candidate, Mode]] = []
        names: set[tuple[int, str]] = set()
        cand: Candidate | None = first
        while cand is not None:
            key = (id(cand.state), cand.name)
            if cand.name in cand.state.busy or key in names:
                self._schedule(cand, now + 0.5)  # the same name is being converted
            elif cand.crashed and batch:
                self._schedule(cand, now)  # after a crash, inputs go one at a time
            else:
                mode = self._mode(cand)
                if mode is not None:
                    batch.append((cand, mode))
                    names.add(key)
                    if cand.crashed:
                        break
            if len(batch) >= size:
                break
            cand = self._pop_due(now)
        return batch

    def _pop_due(self, now: float) -> Candidate | None:
        while self._heap and not self._valid(self._heap[0]):
            heapq.heappop(self._heap)
        if self._heap and self._heap[0][0] <= now and not self._heap[0][2].crashed:
            return heapq.heappop(self._heap)[2]
        return None

    def _mode(self, cand: Candidate) -> Mode | None:
        if cand.claimed:
            return Mode.CLAIMED
        inbox = cand.state.config
        now = anyio.current_time()
        if now - cand.first_seen >= inbox.max_age:
            return Mode.EXPIRED
        if now - cand.sig_since >= inbox.quiet_period:
            return Mode.SETTLED
        if not cand.in_place:
            return Mode.FAST
        self._schedule(cand, cand.sig_since + inbox.quiet_period)
        return None

    def _start(self, batch: list[tuple[Candidate, Mode]]) -> None:
        assert self._jobs is not None
        jobs = []
        for cand, mode in batch:
            cand.inflight, cand.touched = True, False
            cand.state.busy.add(cand.name)
            attempt = cand.attempts + 1
            jobs.append(
                Job(
                    cand.state.config,
                    cand.name,
                    cand.directory,
                    cand.state.claim.path,
                    mode,
                    cand.sig,
                    attempt,
                    attempt >= self.config.retry_attempts,
                    os.getpid(),
                )
            )
        self._inflight += len(batch)
        self._busy += 1
        self._idle = anyio.Event()
        self._jobs.start_soon(self._run_batch, [c for c, _ in batch], jobs)

    async def _run_batch(self, cands: list[Candidate], jobs: list[Job]) -> None:
        try:
            try:
                results = await anyio.to_process.run_sync(
                    process_batch, jobs, cancellable=True, limiter=self._limiter
                )
            except anyio.BrokenWorkerProcess as exc:
                results = [await self._crashed(c, j, exc) for c, j in zip(cands, jobs, strict=True)]
                for cand in cands:
                    cand.crashed = True
            for cand, job, result in zip(cands, jobs, results, strict=True):
                self._handle(cand, job, result)
        finally:
            for cand in cands:
                cand.inflight = False
                cand.state.busy.discard(cand.name)
            self._inflight -= len(cands)
            self._busy -= 1
            self._slot_free.set()
            if not self._inflight:
                self._idle.set()
        for cand in cands:
            if cand.touched and not cand.claimed and not self.draining:
                # an event for inbox/NAME while in flight: maybe a new file under that name
                st = await anyio.to_thread.run_sync(
                    _stat_paths, [os.path.join(cand.directory, cand.name)]
                )
                self._observe(cand.state, cand.name, st[0], Change.added)
            if not cand.state.active or cand.directory in cand.state.adopted:
                await self._maybe_release(cand.state, cand.directory)

    async def _crashed(self, cand: Candidate, job: Job, exc: BaseException) -> Result:
        """The worker died (killed, out of memory, a crash in a C extension)."""
        own = os.path.join(job.claim_dir, job.name)
        claimed = await anyio.to_thread.run_sync(os.path.lexists, own)
        info = ErrorInfo(
            "crash",
            70,
            f"the worker process died converting this input ({exc.__cause__ or exc})",
            transient=True,
        )
        if job.final:
            moved = job if not claimed else replace(job, directory=job.claim_dir)
            return await anyio.to_thread.run_sync(fail_input, moved, info)
        result = Result("retry", error=info, directory=job.claim_dir if claimed else job.directory)
        return result

    def _handle(self, cand: Candidate, job: Job, result: Result) -> None:
        state = cand.state
        now = anyio.current_time()
        inbox = state.config
        if result.status == "not_ready":
            cand.reason = result.reason
            if result.sig is not None and result.sig != cand.sig:
                new_inode = cand.sig is None or result.sig[0] != cand.sig[0]
                cand.sig, cand.sig_since = result.sig, now
                cand.in_place = cand.in_place or not new_inode or result.reason == "changed"
            if result.reason == "busy":
                due = now + 1.0
            elif result.reason == "incomplete":
                # wait for a change (events, rescans) or for max_age
                due = max(cand.first_seen + inbox.max_age, now + 0.1)
            else:
                due = max(cand.sig_since + inbox.quiet_period, now + 0.1)
            if cand.touched:
                due = min(due, now + inbox.quiet_period)
            logger.debug("%s: not ready (%s)", cand.display, result.reason)
            self._schedule(cand, due)
            return
        if result.status == "gone":
            state.candidates.pop(cand.key, None)
            return
        if result.status == "left":
            state.candidates.pop(cand.key, None)
            if result.sig is not None and len(state.left) < MAX_TRACKED:
                state.left[cand.name] = result.sig[0]
            logger.warning("refused %s: %s; left in the inbox", cand.display, result.reason)
            return
        if result.status == "retry":
            assert result.error is not None
            state.candidates.pop(cand.key, None)
            if result.directory:
                cand.directory = result.directory
                cand.claimed = result.directory != inbox.path
            state.candidates[cand.key] = cand
            cand.attempts += 1
            delay = min(self.config.retry_delay * 2 ** (cand.attempts - 1), MAX_RETRY_DELAY)
            logger.warning(
                "retry %s in %g s (attempt %d of %d): %s",
                cand.display, delay, cand.attempts, self.config.retry_attempts,
                _describe(result.error),
            )  # fmt: skip
            self.metrics.observe(inbox.path, "retried")
            self._metrics_dirty.set()
            self._schedule(cand, now + delay)
            return
        state.candidates.pop(cand.key, None)
        if (
            state.overflow
            and len(state.candidates) < MAX_TRACKED // 2
            and self._service is not None
            and not self.draining
            and not self._stop.is_set()
        ):
            state.overflow = False  # room again for what waits untracked in the inbox
            self._service.start_soon(self._scan, state)
        latency = now - cand.first_seen
        self.metrics.observe(
            inbox.path,
            result.status,
            converted=result.converted,
            failed=result.failed,
            bytes_in=result.bytes_in,
            bytes_out=result.bytes_out,
            latency=latency,
        )
        self._metrics_dirty.set()
        self._completed.append(now)
        _log_outcome(cand.display, job, result, inbox)

    async def _maybe_release(self, state: InboxState, directory: str) -> None:
        if any(c.directory == directory for c in state.candidates.values()):
            return
        claim = state.adopted.pop(directory, None)
        if claim is not None:
            await anyio.to_thread.run_sync(_release_claim, claim)
        if not state.active and not state.candidates and state in self.retired:
            self.retired.remove(state)
            await self._release(state)

    async def _space_ok(self, directory: str) -> bool:
        """Intake pauses while the output filesystem has less than min_free_bytes free."""
        limit = self.config.min_free_bytes
        if not limit:
            return True
        now = anyio.current_time()
        checked = self._space.get(directory)
        if checked is not None and now - checked[0] < SPACE_CHECK_INTERVAL:
            return checked[1]
        try:
            vfs = await anyio.to_thread.run_sync(os.statvfs, directory)
            free = vfs.f_bavail * vfs.f_frsize
        except OSError:
            free = limit  # cannot tell: do not stall
        ok = free >= limit
        self._space[directory] = (now, ok)
        if not ok and not self.paused:
            logger.warning(
                "intake paused: %s has %d bytes free, below min_free_bytes (%d)",
                directory, free, limit,
            )  # fmt: skip
            self.paused = True
            self.notifier.status(self._status())
        elif ok and self.paused and all(v[1] for v in self._space.values()):
            logger.info("intake resumed: %s has %d bytes free", directory, free)
            self.paused = False
            self.notifier.status(self._status())
        return ok

    # -- status, metrics -----------------------------------------------------------------------

    def _summary(self) -> str:
        c = self.counts()
        return (
            f"{c.get('done', 0)} done, {c.get('partial', 0)} partial, {c.get('failed', 0)} failed"
        )

    def _status(self) -> str:
        queued = sum(s.queued() for s in self.states.values())
        now = anyio.current_time()
        self._completed = [t for t in self._completed if now - t < 60.0]
        rate = len(self._completed) / 60.0
        text = f"{queued} queued, {self._inflight} in flight, {self._summary()}, {rate:.1f} files/s"
        if self.paused:
            text += "; intake paused: output filesystem nearly full"
        return text

    async def _status_loop(self) -> None:
        if not self.notifier.enabled:
            return
        while True:
            await anyio.sleep(STATUS_INTERVAL)
            self.notifier.status(self._status())

    async def _metrics_loop(self) -> None:
        if self.config.metrics_file is None:
            return
        await self._write_metrics()
        while True:
            await self._metrics_dirty.wait()
            self._metrics_dirty = anyio.Event()
            await self._write_metrics()
            await anyio.sleep(METRICS_INTERVAL)

    async def _write_metrics(self) -> None:
        path = self.config.metrics_file
        if path is None:
            return
        gauges: dict[str, dict[str, float]] = {"queue_depth": {}, "inflight": {}, "paused": {}}
        for inbox, state in self.states.items():
            gauges["queue_depth"][inbox] = state.queued()
            gauges["inflight"][inbox] = state.inflight()
            gauges["paused"][inbox] = 1 if self.paused else 0
        text = self.metrics.render(gauges)
        try:
            await anyio.to_thread.run_sync(write_textfile, path, text)
        except (OSError, StreamconvError) as exc:
            logger.warning("cannot write the metrics file: %s", exc)

    # -- reload ---------------------------------------------------------------------------------

    async def _apply(self, new: WatchConfig) -> None:
        old_paths = set(self.states)
        new_paths = {i.path for i in new.inboxes}
        for path in old_paths - new_paths:
            state = self.states.pop(path)
            state.active = False
            for key, cand in list(state.candidates.items()):
                if not cand.claimed and not cand.inflight:
                    del state.candidates[key]
            self.retired.append(state)
            if not state.candidates:
                self.retired.remove(state)
                await self._release(state)
            logger.info("no longer watching %s", path)
        self.config = new
        self._limiter.total_tokens = new.jobs
        self._slot_free.set()
        for inbox in new.inboxes:
            kept = self.states.get(inbox.path)
            if kept is None:
                await self._open_inbox(inbox)
                continue
            if inbox != kept.config:
                kept.config = inbox
                for key, cand in list(kept.candidates.items()):
                    if not cand.claimed and not cand.inflight and not inbox.accepts(cand.name):
                        del kept.candidates[key]
        await self._restart_watch()
        logger.info("configuration reloaded: %d inbox(es), %d job(s)", len(self.states), new.jobs)


def _prepare_inbox(inbox: InboxConfig, config: WatchConfig) -> tuple[ClaimDir, Recovery, int]:
    """Blocking start-up work for one inbox (runs in a thread)."""
    for folder in (inbox.path, inbox.done_dir, inbox.failed_dir, inbox.output_dir):
        os.makedirs(folder, exist_ok=True)
    claim = make_claim_dir(inbox.processing_dir)
    rec = recover(inbox.processing_dir, claim, ())
    idle = 0.0 if rec.live_others == 0 else TEMP_MAX_IDLE
    roots = [(inbox.output_dir, True), (inbox.failed_dir, False), (inbox.done_dir, False)]
    removed = remove_temps(roots, min_idle=idle)
    removed += remove_temps([(inbox.path, False)], min_idle=idle, pattern=_PROBE_RE)
    if config.metrics_file is not None:
        folder, name = os.path.split(config.metrics_file)
        removed += remove_temps([(folder, False)], min_idle=idle, prefix=name + ".")
    return claim, rec, removed


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _release_claim(claim: ClaimDir) -> bool:
    return claim.release(remove=True)


def _touch_probes(inboxes: list[InboxConfig], probe: str) -> None:
    for inbox in inboxes:
        path = os.path.join(inbox.path, probe)
        try:
            with open(path, "ab") as f:
                f.write(b".")
        except OSError as exc:  # the warning about missing events follows
            logger.debug("cannot write %s: %s", path, exc)


def _remove_probes(inboxes: list[InboxConfig], probe: str) -> None:
    for inbox in inboxes:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(inbox.path, probe))


def _redact(info: ErrorInfo) -> str:
    # Content messages quote the offending value, which may be patient data: not in the log
    # (the full message is in failed/NAME.error.json, beside the input that holds it anyway).
    if info.exit_code == 65:
        return _QUOTED.sub("'...'", info.message)
    return info.message


def _describe(info: ErrorInfo) -> str:
    where = f" at {info.path}" if info.path else ""
    return f"{info.category} (exit {info.exit_code}){where}: {_redact(info)}"


def _log_outcome(display: str, job: Job, result: Result, inbox: InboxConfig) -> None:
    ms = result.seconds * 1000
    if result.status == "done":
        more = f" (+{result.outputs - 1} more)" if result.outputs > 1 else ""
        warn = f", {result.warnings} warning(s)" if result.warnings else ""
        logger.info(
            "done %s: %d dataset(s) -> %s%s, %d bytes, %.0f ms%s",
            display, result.converted, result.first_output, more, result.bytes_out, ms, warn,
        )  # fmt: skip
        return
    assert result.error is not None
    name = os.path.basename(result.moved_to) if result.moved_to else job.name
    stem = os.path.splitext(name)[0] or name
    sidecar = _printable(os.path.join(os.path.basename(inbox.failed_dir), stem + ".error.json"))
    if result.status == "partial":
        logger.warning(
            "partial %s: %d of %d dataset(s) converted, %d failed, first: %s -> %s",
            display, result.converted, result.datasets, result.failed,
            _describe(result.error), sidecar,
        )  # fmt: skip
    else:
        logger.error("failed %s: %s -> %s", display, _describe(result.error), sidecar)


def _loader_for(config: WatchConfig) -> Callable[[], WatchConfig]:
    if config.source is not None:
        source = config.source
        return lambda: load_config(source)
    return lambda: config


async def serve(
    config: WatchConfig,
    *,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    task_status: TaskStatus[Watcher] = anyio.TASK_STATUS_IGNORED,
    notifier: Notifier | None = None,
) -> None:
    """Run the daemon until *shutdown_trigger* returns, then drain (hypercorn's shape).

    ``task_status.started(watcher)`` and ``READY=1`` happen at the same moment: after the
    recovery and the first scan of every inbox.
    """
    await Watcher(config, notifier=notifier).run(
        shutdown_trigger=shutdown_trigger, task_status=task_status
    )


# == the command ===============================================================================


def _setup_logging(settings: LogSettings) -> None:
    from ..logsetup import setup_logging

    setup_logging(settings.level, settings.config_file, stream=sys.stderr, appname="streamconv")
    # watchfiles logs every batch ("N changes detected") at info: not one line per input
    logging.getLogger("watchfiles").setLevel(max(logging.WARNING, logging.getLogger().level))
    if settings.config_file is None and stderr_is_journal():
        # one "<N>message" line per event; journald adds the time (SyslogLevelPrefix=)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setFormatter(JournalFormatter())
                handler.terminator = "\n"


async def _main_async(config: WatchConfig, loader: Callable[[], WatchConfig]) -> None:
    notifier = Notifier()
    watcher = Watcher(config, notifier=notifier, loader=loader)
    async with ServiceSignals(on_reload=watcher.reload, notifier=notifier) as signals:
        await watcher.run(shutdown_trigger=signals.wait_drain)
    if signals.exit_requested.is_set():
        logger.warning("exited at once; inputs in flight stay in processing/ for the next start")


def main(argv: list[str] | None = None) -> int:
    """``streamconv watch ...``: returns the exit code (0 after a drain, 1 for usage errors)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stdout.write(usage())
        return 0
    try:
        cmd = parse_command_line(args)
        if cmd.daemon.get("help"):
            sys.stdout.write(usage())
            return 0
        if cmd.daemon.get("version"):
            sys.stdout.write(f"streamconv watch {__version__}\n")
            return 0
        settings = log_settings(cmd)
        config = config_from_args(cmd)
    except UsageError as exc:
        sys.stderr.write(f"streamconv watch: error: {exc.message}\n")
        return 1
    try:
        _setup_logging(settings)
    except ValueError as exc:
        sys.stderr.write(f"streamconv watch: error: {exc}\n")
        return 1
    if config.source is not None:
        source = config.source
        loader: Callable[[], WatchConfig] = lambda: load_config(source)  # noqa: E731
    else:
        loader = lambda: config_from_args(parse_command_line(args))  # noqa: E731
    try:
        anyio.run(_main_async, config, loader)
    except ConfigError as exc:
        logger.error("%s", exc.message)
        return 1
    except (OSError, StartupError) as exc:
        logger.error("cannot run: %s", exc)
        return 1
    return 0
