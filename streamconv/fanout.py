"""The one worker-process engine: frames of bytes out, written outputs back.

Serves ``streamconv stream`` and ``json2dcm --array-split`` (and anything else that converts
a sequence of datasets into a directory).  This process only cuts the input into one frame
of bytes per dataset, in order (:class:`~streamconv.core.framing.Framer`); parsing,
conversion and writing run in a pool of worker processes (:class:`WorkerPool`), a batch
of frames per call.  (Parsing here and pickling the objects to the workers cost as much as
the conversion itself.)  A semaphore on datasets in flight is the backpressure: when the
workers fall behind, the reader stops reading (the producer's pipe fills up and blocks),
memory stays bounded.

What ends a run, and what is left: a dataset that fails is rejected (``rejected/``, or the
run's error with ``fail_fast``); an output folder that cannot be written (read-only, full,
no inodes) is an OutputError for the run (exit 40), since every dataset after it would fail
the same way; a worker that died is :class:`WorkerDied` (exit 70).  Outputs are renamed into
place only when whole, so after any of these (or a kill -9) the outputs present are
complete: a rerun removes the temporaries of dead writers (:func:`~streamconv.sinks.sweep_parts`)
and, with ``resume``, skips the datasets whose outputs exist.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import signal
import stat
import struct
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .core.documents import SpillStore, parse_frame
from .core.framing import Frame, Framer
from .core.pipeline import RunContext, convert_one, release
from .errors import ContentError, InputError, OutputError, StreamconvError, WorkerDied
from .options import ArrayPolicy, ConvertOptions
from .runtime import worker_init
from .sinks import (
    names_by_index,
    output_path,
    render_name,
    sweep_parts,
    syncfs,
    write_atomic,
    write_output,
)

if TYPE_CHECKING:
    import anyio
    from anyio.abc import Process

# anyio (and subprocess) are imported where the parent uses them, not here: a worker process
# imports this module to run _convert_batch, and anyio's import cost ~70 ms of CPU in each
# worker of every json2dcm --array-split run

__all__ = ["READ_SIZE", "StreamSummary", "WorkerDied", "WorkerPool", "convert_stream"]

T = TypeVar("T")

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20
# at most this many datasets, and about this many bytes, per worker call: each call costs
# the event loop, two pipe round trips and a pickle; 64 CT headers (~450 KB) per call
# halved that cost per dataset against 16, and the byte bound keeps large datasets few
_BATCH = 64
_BATCH_BYTES = 1 << 20
# Outputs are renamed into place at once (never half-written); they are made durable by
# one syncfs(2) at most this often, and before the stream ends.  syncfs per batch cost
# ~1 ms of system time per file here (its writeback runs in the caller).
SYNC_INTERVAL = 1.0
_STOP_GRACE = 30.0  # seconds an idle worker has to exit at EOF before it is killed


class StreamSummary:
    """What a stream run did.  (A plain class, not a dataclass: a worker process imports
    this module, and ``dataclasses`` costs ~40 ms of start-up with ``inspect``.)"""

    __slots__ = (
        "bytes_in",
        "bytes_out",
        "converted",
        "datasets",
        "failures",
        "first_error",
        "paths",
        "rejected",
        "seconds",
        "skipped",
        "stopped_by",
    )

    def __init__(self) -> None:
        self.datasets = 0
        self.converted = 0
        self.rejected = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.seconds = 0.0
        self.skipped = 0  # --resume: outputs complete already
        self.stopped_by = 0  # signal number, if a signal stopped the stream
        self.first_error: StreamconvError | None = None
        self.failures: list[tuple[int, str]] = []
        self.paths: list[str] = []  # collect_paths: the outputs, in order

    def __repr__(self) -> str:
        return f"StreamSummary({', '.join(f'{k}={getattr(self, k)!r}' for k in self.__slots__)})"


class _Result:
    """One dataset's outcome, sent back from a worker (pickled as a plain tuple)."""

    __slots__ = ("error", "fatal", "index", "path", "size", "skipped")

    def __init__(
        self,
        index: int,
        path: str = "",
        size: int = 0,
        error: StreamconvError | None = None,
        fatal: bool = False,  # the output folder cannot be written: the run ends (exit 40)
        skipped: bool = False,  # --resume: the output was already complete
    ) -> None:
        self.index = index
        self.path = path
        self.size = size
        self.error = error
        self.fatal = fatal
        self.skipped = skipped

    def __reduce__(self) -> tuple[type[_Result], tuple[Any, ...]]:
        return (_Result, (self.index, self.path, self.size, self.error, self.fatal, self.skipped))


def _convert_batch(
    run: RunContext, out_dir: str, batch: list[Frame], fail_fast: bool, resume: bool = False
) -> list[_Result]:
    """Worker process: parse, convert and write a batch of frames; never raises for one.

    ``fail_fast``: the batch ends at its first failed dataset (nothing after it is written).
    ``resume``: a dataset whose output file exists is not written again (keyword templates:
    the name is known once the dataset is built).
    """
    results: list[_Result] = []
    for frame in batch:
        if results and results[-1].error is not None and (fail_fast or results[-1].fatal):
            frame.discard()
            continue
        store = SpillStore()
        store.adopt(frame.spills)
        try:
            raw = parse_frame(
                frame.data, frame.index, frame.offset, start=frame.start, source=run.source
            )
            if _in_worker:  # the parent keeps its own copy for rejected/; one 64 MB value
                frame.data = b""  # is then held once here while it is converted
            out = convert_one(raw, run, store)
            if resume:
                path = output_path(out, out_dir, run.options)
                if os.path.lexists(path):
                    release(out)
                    results.append(_Result(frame.index, path, skipped=True))
                    continue
            try:
                path = write_output(out, out_dir, run.options, fsync=False)
            except OutputError as exc:
                # the folder, not the dataset: every dataset after it would fail the same way
                results.append(_Result(frame.index, error=exc, fatal=True))
                continue
            results.append(_Result(frame.index, path, out.encoded.size_hint))
        except StreamconvError as exc:
            results.append(_Result(frame.index, error=exc))
        except (MemoryError, RecursionError) as exc:
            err = ContentError(f"dataset too large or too deeply nested ({type(exc).__name__})")
            results.append(_Result(frame.index, error=err))
        except Exception as exc:  # a bug of ours: reject this dataset, keep the stream going
            log.exception("internal error converting dataset %d", frame.index + 1)
            err = ContentError(f"internal error ({type(exc).__name__}: {exc}); please report it")
            results.append(_Result(frame.index, error=err))
        finally:
            store.discard_all()
    return results


# -- the worker processes ----------------------------------------------------------------
#
# Our own small pool rather than anyio.to_process: its shutdown (and its clean-up of a
# worker that failed) signals workers through subprocess.Popen.send_signal, which first
# polls the child with waitpid(WNOHANG); a worker that has just exited is then reaped there,
# and asyncio's child watcher thread, blocked in waitpid on the same pid, logs "Unknown child
# process pid N, will report returncode 255" (seen in ~1 of 7 clean stream runs, issue 10
# row 12).  Here a worker is stopped by closing its stdin (it exits at EOF) and waited for;
# only the child watcher ever reaps it.  A worker that must die now gets os.kill(SIGKILL),
# which reaps nothing.

_HEAD = struct.Struct("<Q")
_in_worker = False  # this process is a worker of a WorkerPool
_SEND_SIZE = 1 << 20
_WORKER_CODE = "from streamconv.fanout import _worker_main; _worker_main()"


def _worker_main() -> None:
    """A worker process: (function, args) pickles in on stdin, results out on stdout."""
    global _in_worker
    _in_worker = True
    parent = int(sys.argv[1])
    worker_init(parent)  # SIGINT/SIGTERM ignored, dies with its parent
    _grow_pipe(0)
    inp = os.fdopen(os.dup(0), "rb")
    out = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):  # nothing a library prints can corrupt the channel
        os.dup2(null, fd)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    while True:
        head = inp.read(_HEAD.size)
        if len(head) < _HEAD.size:
            return  # EOF: the pool is closing (or the parent is gone)
        payload = inp.read(_HEAD.unpack(head)[0])
        status = b"R"
        try:
            func, args = pickle.loads(payload)
            del payload  # a large dataset is held once (in args), not twice
            result: object = func(*args)
        except BaseException as exc:  # sent back, raised in the parent
            status, result = b"E", exc
        try:
            data = pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            status = b"E"
            data = pickle.dumps(RuntimeError(f"worker result cannot be pickled: {exc!r}"))
        out.write(status + _HEAD.pack(len(data)) + data)
        out.flush()


_F_SETPIPE_SZ = 1031  # Linux fcntl(2)


def _grow_pipe(fd: int) -> None:
    """A batch of frames (~0.5 MB) through a 1 MiB pipe instead of Linux's 64 KiB: the
    parent's writes go in at once rather than in sixteen wake-ups of this worker.  Where
    the call is refused (another kernel, /proc/sys/fs/pipe-max-size): the default pipe."""
    try:
        import fcntl

        fcntl.fcntl(fd, _F_SETPIPE_SZ, _SEND_SIZE)
    except (ImportError, OSError):
        pass


class _Worker:
    __slots__ = ("proc", "receive")

    def __init__(self, proc: Process) -> None:
        from anyio.streams.buffered import BufferedByteReceiveStream

        self.proc = proc
        assert proc.stdout is not None
        self.receive = BufferedByteReceiveStream(proc.stdout)

    async def call(self, payload: bytes) -> tuple[bytes, bytes]:
        assert self.proc.stdin is not None
        await self.proc.stdin.send(_HEAD.pack(len(payload)))
        # in pieces: the pipe transport copies what the pipe does not take at once, so a
        # 64 MB dataset sent whole would be held twice more
        for i in range(0, len(payload), _SEND_SIZE):
            await self.proc.stdin.send(payload[i : i + _SEND_SIZE])
        head = await self.receive.receive_exactly(1 + _HEAD.size)
        data = await self.receive.receive_exactly(_HEAD.unpack(head[1:])[0])
        return head[:1], data


class WorkerPool:
    """Up to ``size`` worker processes, started on demand, each set up by
    :func:`streamconv.runtime.worker_init`.  :meth:`run` raises :class:`WorkerDied` when
    the worker died; :meth:`aclose` stops them all and waits for them."""

    def __init__(self, size: int) -> None:
        import anyio

        self.size = size
        self.limiter = anyio.CapacityLimiter(size)
        self.dead: list[int] = []  # pids of workers that died or were killed
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()

    async def run(self, func: Callable[..., T], *args: object) -> T:
        import anyio

        payload = pickle.dumps((func, args), pickle.HIGHEST_PROTOCOL)
        async with self.limiter:
            worker = self._idle.pop() if self._idle else await self._start()
            try:
                status, data = await worker.call(payload)
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await self._kill(worker)
                raise
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError) as exc:
                with anyio.CancelScope(shield=True):
                    code = await self._kill(worker)
                how = f"signal {-code}" if code < 0 else f"exit status {code}"
                raise WorkerDied(
                    f"a worker process died ({how}): killed, or out of memory; the datasets"
                    " it was converting were not written"
                ) from exc
            self._idle.append(worker)
        result = pickle.loads(data)
        if status == b"E":
            raise result
        return cast(T, result)

    async def _start(self) -> _Worker:
        import subprocess

        import anyio

        try:
            proc = await anyio.open_process(
                [sys.executable, "-c", _WORKER_CODE, str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None,  # inherited: a crash's last words reach the terminal
            )
        except OSError as exc:
            raise WorkerDied(f"cannot start a worker process: {exc.strerror}") from None
        worker = _Worker(proc)
        self._all.add(worker)
        return worker

    async def _kill(self, worker: _Worker) -> int:
        """SIGKILL (unless it already exited), then wait: its exit status."""
        self._all.discard(worker)
        proc = worker.proc
        if proc.returncode is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        await proc.aclose()
        self.dead.append(proc.pid)
        return proc.returncode if proc.returncode is not None else -signal.SIGKILL

    async def aclose(self) -> None:
        """Stop every worker: idle ones at EOF on their stdin, busy ones (cancelled) by
        SIGKILL; returns once all have been waited for."""
        import anyio

        with anyio.CancelScope(shield=True):
            workers, self._idle = list(self._all), []
            for worker in workers:
                if worker.proc.stdin is not None:
                    await worker.proc.stdin.aclose()  # the worker exits at EOF
            with anyio.move_on_after(_STOP_GRACE):
                for worker in workers:
                    await worker.proc.wait()
            for worker in workers:
                if worker.proc.returncode is None:  # pragma: no cover - a stuck worker
                    await self._kill(worker)
                else:
                    self._all.discard(worker)
                    await worker.proc.aclose()


class _Reader:
    """Reads ``fd`` chunk by chunk; ``stop`` ends a read that is waiting for input.

    A producer may keep the pipe open and quiet for hours: a signal must not wait for its
    next byte.
    """

    def __init__(self, fd: int, stop: anyio.Event | None, source: str) -> None:
        self.fd = fd
        self.stop = stop
        self.source = source
        self._scope: anyio.CancelScope | None = None
        # a pipe, socket or terminal is waited on in the event loop (cancellable; a thread
        # blocked in read(2) would keep the process from exiting); a file is read in a thread
        mode = os.fstat(fd).st_mode if fd >= 0 else 0
        self._poll = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)

    @property
    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    async def watch(self) -> None:
        if self.stop is not None:
            await self.stop.wait()
            if self._scope is not None:
                self._scope.cancel()

    async def read(self) -> bytes:
        """The next chunk; b"" at EOF or once stopped."""
        import anyio
        import anyio.to_thread

        if self.fd < 0 or self.stopped:
            return b""
        with anyio.CancelScope() as self._scope:
            try:
                if self._poll:
                    try:
                        await anyio.wait_readable(self.fd)
                    except PermissionError:  # epoll refuses some devices (/dev/null)
                        self._poll = False
                    else:
                        return os.read(self.fd, READ_SIZE)  # ready: returns at once
                return await anyio.to_thread.run_sync(os.read, self.fd, READ_SIZE)
            except OSError as exc:
                raise InputError(
                    f"cannot read JSON input: {exc.strerror}", source=self.source
                ) from None
            finally:
                self._scope = None
        return b""  # cancelled by stop


async def convert_stream(
    fd: int,
    out_dir: str,
    options: ConvertOptions,
    *,
    jobs: int = 0,
    source: str = "stdin",
    base_dir: str | None = None,
    base_url: str | None = None,
    fail_fast: bool = False,
    resume: bool = False,
    collect_paths: bool = False,
    progress: Any = None,
    stop: anyio.Event | None = None,
) -> StreamSummary:
    """Convert every dataset read from ``fd`` into ``out_dir`` (names from the template).

    ``fail_fast`` (json2dcm --array-split): the first failed dataset ends the run with its
    error.  Otherwise failed datasets go to ``out_dir/rejected/`` with the reason beside
    them and the stream goes on.  An output folder that cannot be written (read-only, full,
    no inodes) ends the run either way (OutputError, exit 40).  ``resume``: datasets whose
    output file exists are skipped (outputs are renamed into place only when complete).
    ``collect_paths``: ``summary.paths`` lists the outputs in input order (not for an
    endless stream: it grows with every dataset).
    """
    import anyio
    import anyio.to_thread

    jobs = jobs or os.cpu_count() or 1
    options = _split_options(options)
    run = RunContext(options, source, base_dir)
    run.base_url = base_url  # an http(s) input: relative BulkDataURIs resolve against it
    summary = StreamSummary()
    started = time.monotonic()
    # what an earlier run killed with -9 left: temporaries whose writer is dead
    removed = await anyio.to_thread.run_sync(sweep_parts, out_dir)
    if removed:
        log.info("removed %d temporary file(s) left by an earlier run", len(removed))
    # Frames are not checked here: the worker's ijson parse finds invalid JSON inside a
    # dataset, which is then rejected like any other invalid dataset.  Invalid JSON between
    # datasets (the framing itself) or a truncated input ends the stream.
    parser = Framer(source=source, limits=options.limits, check=False)
    # batches in flight (each at most _BATCH datasets): the backpressure; acquired once
    # per batch, not per dataset (each acquire is an event-loop checkpoint)
    in_flight = anyio.Semaphore(jobs * 2)
    pool = WorkerPool(jobs) if jobs > 1 else None
    thread_limiter = anyio.CapacityLimiter(1)
    rejected_dir = os.path.join(out_dir, "rejected")
    failed: list[tuple[int, StreamconvError]] = []  # the run ends: (index, error)
    paths: list[tuple[int, str]] = []

    sync = _Syncer(out_dir)

    async def dispatch(batch: list[Frame]) -> None:
        try:
            if pool is None:
                results = await anyio.to_thread.run_sync(
                    _convert_batch, run, out_dir, batch, fail_fast, resume, limiter=thread_limiter
                )
            else:
                try:
                    results = await pool.run(_convert_batch, run, out_dir, batch, fail_fast, resume)
                except WorkerDied as exc:
                    # its temporaries: the worker cannot remove them any more
                    await anyio.to_thread.run_sync(
                        functools.partial(sweep_parts, out_dir, pids=pool.dead)
                    )
                    first, last = batch[0].index + 1, batch[-1].index + 1
                    exc.path = f"dataset {first}" if first == last else f"datasets {first}-{last}"
                    for frame in batch:
                        frame.discard()
                    failed.append((batch[0].index, exc.with_source(source)))
                    return
            frames = {frame.index: frame for frame in batch}
            for res in results:
                await _record(res, frames[res.index])
            sync.pending = True
            await sync.maybe()
        finally:
            in_flight.release()

    # names from keywords (or a template without a field) can collide; names with the index
    # and nothing else cannot (and need no memory)
    index_only = names_by_index(options.filename_template)
    names: dict[str, int] = {}

    async def _record(res: _Result, frame: Frame) -> None:
        if res.error is None and not index_only:
            first = names.setdefault(res.path, res.index)
            if first != res.index:
                res.error = ContentError(
                    f"--filename-template gives the same name '{res.path}' as dataset {first + 1}; "
                    f"the file holds whichever was written last"
                )
        if res.error is None:
            if collect_paths:
                paths.append((res.index, res.path))
            if res.skipped:
                summary.skipped += 1
                log.info("dataset %d: %s is complete already (--resume)", res.index + 1, res.path)
            else:
                summary.converted += 1
                summary.bytes_out += res.size
                log.info("dataset %d -> %s", res.index + 1, res.path)
            if progress is not None:
                progress.update(1)
            return
        err = res.error
        if not err.path.startswith("dataset"):
            err.path = f"dataset {res.index + 1}" + (f" {err.path}" if err.path else "")
        err.with_source(source)
        summary.rejected += 1
        summary.failures.append((res.index, str(err)))
        if summary.first_error is None:
            summary.first_error = err
        if fail_fast or res.fatal:
            failed.append((res.index, err))
            return
        log.error("%s", err)
        # the dataset's own text (after the pre-pass: trailing commas out, big InlineBinary
        # values as placeholders), so nothing of what was sent is lost
        try:
            await anyio.to_thread.run_sync(_save_rejected, rejected_dir, res, frame.data)
        except OutputError as exc:
            failed.append((res.index, exc.with_source(source)))

    async def send(frames: list[Frame]) -> None:
        if resume and index_only and frames:
            # index-named outputs: known before conversion; skipped without being sent
            done = await anyio.to_thread.run_sync(_complete, frames, out_dir, options)
            for frame, path in done:
                frame.discard()
                summary.datasets += 1
                await _record(_Result(frame.index, path, skipped=True), frame)
            taken = {id(frame) for frame, _ in done}
            frames = [frame for frame in frames if id(frame) not in taken]
        await _send(frames, jobs, in_flight, tg, dispatch, summary, failed)

    reader = _Reader(fd, stop, source)
    error: StreamconvError | None = None
    try:
        async with anyio.create_task_group() as tg, anyio.create_task_group() as watcher:
            watcher.start_soon(reader.watch)
            try:
                while not failed and (chunk := await reader.read()):
                    summary.bytes_in += len(chunk)
                    await send(parser.feed(chunk))
                if not failed and not reader.stopped:
                    await send(parser.finish())
            except StreamconvError as exc:
                # invalid JSON ends the stream; the datasets complete before it are converted
                error = exc.with_source(source)
                await send(parser.completed())
            watcher.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # anything else that escaped a task: one plain exception, not a group
        raise _leaf(group) from None
    finally:
        parser.close()
        if pool is not None:
            await pool.aclose()
            if pool.dead:  # killed (exit now) or died: their temporaries are ours to remove
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(
                        functools.partial(sweep_parts, out_dir, pids=pool.dead)
                    )
    with anyio.CancelScope(shield=True):
        await sync.now()  # what was written is durable before the exit status says so
    summary.seconds = time.monotonic() - started
    if collect_paths:
        summary.paths = [path for _, path in sorted(paths)]
    if failed:
        # the first failed dataset in input order, whichever worker finished first
        raise min(failed, key=lambda f: f[0])[1]
    if error is not None:
        raise error
    missing = summary.datasets - summary.converted - summary.rejected - summary.skipped
    if missing:
        # every dataset handed to a worker must come back converted or rejected: never
        # exit 0 with outputs missing (a worker that lost a batch, a version mismatch)
        raise OutputError(
            f"{missing} of {summary.datasets} datasets were neither written nor rejected",
            source=source,
        )
    return summary


def _complete(
    frames: list[Frame], out_dir: str, options: ConvertOptions
) -> list[tuple[Frame, str]]:
    """--resume with index-named outputs: the frames whose output file exists."""
    done = []
    for frame in frames:
        path = os.path.join(out_dir, render_name(options.filename_template, frame.index, {}))
        if os.path.lexists(path):
            done.append((frame, path))
    return done


class _Syncer:
    """syncfs(2) of the output filesystem, at most every SYNC_INTERVAL, one at a time."""

    def __init__(self, out_dir: str) -> None:
        import anyio

        self.out_dir = out_dir
        self.pending = False
        self.last = time.monotonic()
        self.lock = anyio.Lock()

    async def maybe(self) -> None:
        if (
            self.pending
            and time.monotonic() - self.last >= SYNC_INTERVAL
            and not self.lock.locked()
        ):
            await self.now()

    async def now(self) -> None:
        import anyio.to_thread

        async with self.lock:
            if self.pending:
                self.pending = False
                self.last = time.monotonic()
                await anyio.to_thread.run_sync(syncfs, self.out_dir)


def _leaf(group: BaseExceptionGroup) -> BaseException:
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            stack[:0] = exc.exceptions
        else:
            leaves.append(exc)
    return next((e for e in leaves if isinstance(e, StreamconvError)), leaves[0])


async def _send(
    items: list[Frame],
    jobs: int,
    in_flight: anyio.Semaphore,
    tg: Any,
    dispatch: Any,
    summary: StreamSummary,
    failed: list[Any],
) -> None:
    if not items:
        return
    summary.datasets += len(items)
    # batches: at most one per worker per read, so a slow producer's datasets go out at once
    size = min(_BATCH, max(1, -(-len(items) // jobs)))
    start = 0
    while start < len(items):
        if failed:  # fail_fast: nothing more is dispatched after a failure
            for frame in items[start:]:
                frame.discard()
            return
        end, nbytes = start, 0
        while end < len(items) and end - start < size and (end == start or nbytes < _BATCH_BYTES):
            nbytes += len(items[end].data)
            end += 1
        batch = items[start:end]
        start = end
        await in_flight.acquire()
        tg.start_soon(dispatch, batch)


def _save_rejected(rejected_dir: str, res: _Result, text: bytes) -> None:
    try:
        os.makedirs(rejected_dir, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create '{rejected_dir}': {exc.strerror}") from None
    name = f"{res.index:06d}"
    assert res.error is not None
    import json

    from . import __version__

    reason = {"index": res.index, **res.error.as_dict(), "streamconv": __version__}
    write_atomic(os.path.join(rejected_dir, name + ".json"), [text, b"\n"], fsync=False)
    write_atomic(
        os.path.join(rejected_dir, name + ".error.json"),
        [json.dumps(reason, indent=1).encode()],
        fsync=False,
    )


def _split_options(options: ConvertOptions) -> ConvertOptions:
    if options.array_policy is ArrayPolicy.SPLIT:
        return options
    return options._replace(array_policy=ArrayPolicy.SPLIT)
