"""The outputs of one input: named, written by a few threads, collected (in a worker process).

Names depend only on the input's name (or the template), so that a retry replaces its own
outputs instead of adding new ones (daemon-conventions §4).  Every output is written by the
one atomic writer, :func:`streamconv.sinks.write_atomic` (temp + fsync + rename); the folders
are fsynced once per batch by the worker (:func:`~streamconv.watch.worker.process_batch`).
"""

from __future__ import annotations

import collections
import errno
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..errors import ContentError, InputError, OutputError, StreamconvError
from ..options import ArrayPolicy
from ..sinks import render_name, write_atomic
from .config import Naming
from .jobs import ErrorInfo, Job

__all__ = ["NO_SPACE", "Writer", "error_fields", "no_space", "submit_write", "transient"]

#: A write that found no room: the disk (blocks or inodes) or the quota is full.  Never the
#: input's fault, and no number of quick retries helps: the daemon pauses intake instead.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})

#: Output writes (fsync waits) in flight per worker process, and queued per input.
WRITE_THREADS = 4
MAX_PENDING_WRITES = 64
SMALL_OUTPUT = 4 << 20


class Writer:
    """Names and writes the outputs of one input, in the order they come (streaming).

    Writes go to a few threads (:func:`streamconv.sinks.write_atomic`: temp + fsync + rename,
    no folder fsync);
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
        self.published: list[str] = []  # outputs now on disk (Result.published)
        #: ctime of the claimed input (its claim): an input adopted from a dead daemon owns
        #: the outputs written after it (Job.owned None)
        self.claimed_ctime_ns: int | None = None
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
            self.published.append(os.path.join(self.inbox.output_dir, record["output"]))
        except OutputError as exc:
            if exc.errno == errno.EEXIST:
                self._collision(record)
                return
            self.write_error = self.write_error or exc
            record.update(result="failed", **error_fields(exc))
            self.converted -= 1
        except StreamconvError as exc:
            self.write_error = self.write_error or exc
            record.update(result="failed", **error_fields(exc))
            self.converted -= 1
        except OSError as exc:
            target = record.get("output", "")
            err = OutputError(f"cannot write '{target}': {exc.strerror or exc}")
            self.write_error = self.write_error or err
            record.update(result="failed", **error_fields(err))
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
            err = OutputError(f"cannot create '{os.path.dirname(target)}': {exc.strerror or exc}")
            err.errno = exc.errno
            self.write_error = err
            raise err from None
        rel = os.path.relpath(target, self.inbox.output_dir)
        record = {"index": item.index, "result": "converted", "output": rel}
        self.records.append(record)
        future = submit_write(item, target, self.job.tag, replace=self._may_replace(target))
        self._writes.append((future, record))
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
        again = transient(exc, self.write_error)
        self.failed += 1
        if again:
            self.transient_failures += 1
        if self.first_failure is None:
            self.first_failure = ErrorInfo.of(exc, transient=again)
        self.records.append({"index": index, "result": "failed", **error_fields(exc)})

    def _may_replace(self, target: str) -> bool:
        """The collision policy: an output is replaced only by the input that wrote it (a
        retry, a conversion again after a crash); any other input's output is kept."""
        owned = self.job.owned
        if owned is not None:
            return target in owned
        try:  # adopted: what it wrote before its daemon died was written after its claim
            st = os.stat(target, follow_symlinks=False)
        except OSError:
            return False
        return self.claimed_ctime_ns is not None and st.st_mtime_ns >= self.claimed_ctime_ns

    def _collision(self, record: dict[str, Any]) -> None:
        """Another input's output has this name: this dataset fails, the output stays."""
        rel = record["output"]
        err = OutputError(
            f"output '{rel}' exists, written by another input; it is not replaced "
            "(remove it to convert this input again)"
        )
        err.errno = errno.EEXIST
        record.update(result="failed", **error_fields(err))
        self.converted -= 1
        self.outputs -= 1
        self.failed += 1
        if self.first_output == rel:
            self.first_output = ""
        if self.first_failure is None:
            self.first_failure = ErrorInfo.of(err)

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


def submit_write(out: Any, target: str, tag: str = "", *, replace: bool = True) -> Future[int]:
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
        return _write_pool().submit(_write, target, (data,), tag, replace)
    return _write_pool().submit(_write_output, out, target, tag, replace)


def _write_output(out: Any, target: str, tag: str, replace: bool) -> int:
    """One output, in a write thread: the encoded chunks (bulk data read here) to the file."""
    from ..core.encode import iter_bytes
    from ..core.pipeline import release

    try:
        return _write(target, iter_bytes(out.encoded), tag, replace)
    finally:
        release(out)  # spill and +ar temporaries


def _write(target: str, chunks: Any, tag: str, replace: bool) -> int:
    # no folder fsync here: the batch does it once per folder
    return write_atomic(target, chunks, fsync=True, sync_dir=False, tag=tag, replace=replace)


def no_space(exc: BaseException | None) -> bool:
    """A write that failed for want of space or quota (errno ENOSPC, EDQUOT)."""
    return isinstance(exc, OutputError) and exc.errno in NO_SPACE


def transient(exc: StreamconvError, write_error: StreamconvError | None = None) -> bool:
    """Worth trying again later (daemon-conventions §6): the input itself is not the problem."""
    if exc is write_error:
        return True  # writing the output: disk full, quota, EIO, permissions being fixed
    # bulk data not there yet / unreadable yet; a path outside the permitted folders stays
    # outside (the error says which: errors.py)
    return isinstance(exc, InputError) and exc.transient


def error_fields(exc: StreamconvError) -> dict[str, Any]:
    """A per-dataset record's fields: :meth:`StreamconvError.as_dict` without the source."""
    fields = exc.as_dict()
    fields.pop("source", None)  # the record names its input already
    return fields
