"""The one worker-process engine: frames of bytes out, written outputs back.

Serves ``streamconv stream`` and ``json2dcm --array-split`` (and anything else that converts
a sequence of datasets into a directory).  This process only cuts the input into one frame
of bytes per dataset, in order (:class:`~streamconv.core.framing.Framer`); parsing,
conversion and writing run in a pool of worker processes (anyio's ``to_process``), a batch
of frames per call.  (Parsing here and pickling the objects to the workers cost as much as
the conversion itself.)  A semaphore on datasets in flight is the backpressure: when the
workers fall behind, the reader stops reading (the producer's pipe fills up and blocks),
memory stays bounded.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import string
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_process
import anyio.to_thread

from .core.documents import SpillStore, parse_frame
from .core.framing import Frame, Framer
from .core.pipeline import RunContext, convert_one
from .errors import ContentError, InputError, OutputError, StreamconvError
from .options import ArrayPolicy, ConvertOptions
from .sinks import syncfs, write_atomic, write_output

__all__ = ["READ_SIZE", "StreamSummary", "convert_stream"]

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20
_BATCH = 16  # at most this many datasets per worker call
# Outputs are renamed into place at once (never half-written); they are made durable by
# one syncfs(2) at most this often, and before the stream ends.  syncfs per batch cost
# ~1 ms of system time per file here (its writeback runs in the caller).
SYNC_INTERVAL = 1.0


@dataclass(slots=True)
class StreamSummary:
    datasets: int = 0
    converted: int = 0
    rejected: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    stopped_by: int = 0  # signal number, if a signal stopped the stream
    first_error: StreamconvError | None = None
    failures: list[tuple[int, str]] = field(default_factory=list)


@dataclass(slots=True)
class _Result:
    index: int
    path: str = ""
    size: int = 0
    error: StreamconvError | None = None


def _convert_batch(
    run: RunContext, out_dir: str, batch: list[Frame], fail_fast: bool
) -> list[_Result]:
    """Worker process: parse, convert and write a batch of frames; never raises for one.

    ``fail_fast``: the batch ends at its first failed dataset (nothing after it is written).
    """
    _worker_signals()
    results: list[_Result] = []
    for frame in batch:
        if fail_fast and results and results[-1].error is not None:
            frame.discard()
            continue
        store = SpillStore()
        store.adopt(frame.spills)
        try:
            raw = parse_frame(
                frame.data, frame.index, frame.offset, start=frame.start, source=run.source
            )
            out = convert_one(raw, run, store)
            path = write_output(out, out_dir, run.options, fsync=False)
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


_SIGNALS_SET = False


def _worker_signals() -> None:
    # Workers share the terminal's process group: Ctrl-C must reach only the main
    # process, which finishes the datasets in hand (the workers exit at EOF on stdin).
    global _SIGNALS_SET
    if not _SIGNALS_SET:
        from .runtime import tune_gc

        tune_gc()
    if not _SIGNALS_SET and __name__ != "__main__":
        import threading

        if threading.current_thread() is threading.main_thread() and os.getpid() != _MAIN_PID:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _SIGNALS_SET = True


_MAIN_PID = os.getpid()


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
    fail_fast: bool = False,
    progress: Any = None,
    stop: anyio.Event | None = None,
) -> StreamSummary:
    """Convert every dataset read from ``fd`` into ``out_dir`` (names from the template).

    ``fail_fast`` (json2dcm --array-split): the first failed dataset ends the run with its
    error.  Otherwise failed datasets go to ``out_dir/rejected/`` with the reason beside
    them and the stream goes on.
    """
    jobs = jobs or os.cpu_count() or 1
    options = _split_options(options)
    run = RunContext(options, source, base_dir)
    summary = StreamSummary()
    started = time.monotonic()
    # Frames are not checked here: the worker's ijson parse finds invalid JSON inside a
    # dataset, which is then rejected like any other invalid dataset.  Invalid JSON between
    # datasets (the framing itself) or a truncated input ends the stream.
    parser = Framer(source=source, limits=options.limits, check=False)
    # batches in flight (each at most _BATCH datasets): the backpressure; acquired once
    # per batch, not per dataset (each acquire is an event-loop checkpoint)
    in_flight = anyio.Semaphore(jobs * 2)
    limiter = anyio.CapacityLimiter(jobs)
    rejected_dir = os.path.join(out_dir, "rejected")
    failed: list[tuple[int, StreamconvError]] = []  # fail_fast: (index, error)

    sync = _Syncer(out_dir)

    async def dispatch(batch: list[Frame]) -> None:
        try:
            if jobs == 1:
                results = await anyio.to_thread.run_sync(
                    _convert_batch, run, out_dir, batch, fail_fast
                )
            else:
                results = await anyio.to_process.run_sync(
                    _convert_batch, run, out_dir, batch, fail_fast, limiter=limiter
                )
            frames = {frame.index: frame for frame in batch}
            for res in results:
                await _record(res, frames[res.index])
            sync.pending = True
            await sync.maybe()
        finally:
            in_flight.release()

    # names from keywords can collide; index-only names cannot (and need no memory)
    track_names = any(
        f not in (None, "index", "index1")
        for _, f, _, _ in string.Formatter().parse(options.filename_template)
    )
    names: dict[str, int] = {}

    async def _record(res: _Result, frame: Frame) -> None:
        if res.error is None and track_names:
            first = names.setdefault(res.path, res.index)
            if first != res.index:
                res.error = ContentError(
                    f"--filename-template gives the same name '{res.path}' as dataset {first + 1}; "
                    f"the file holds whichever was written last"
                )
        if res.error is None:
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
        if fail_fast:
            failed.append((res.index, err))
            return
        log.error("%s", err)
        # the dataset's own text (after the pre-pass: trailing commas out, big InlineBinary
        # values as placeholders), so nothing of what was sent is lost
        await anyio.to_thread.run_sync(_save_rejected, rejected_dir, res, frame.data)

    reader = _Reader(fd, stop, source)
    error: StreamconvError | None = None
    try:
        async with anyio.create_task_group() as tg, anyio.create_task_group() as watcher:
            watcher.start_soon(reader.watch)
            try:
                while not failed and (chunk := await reader.read()):
                    summary.bytes_in += len(chunk)
                    raws = parser.feed(chunk)
                    await _send(raws, jobs, in_flight, tg, dispatch, summary, failed)
                if not failed and not reader.stopped:
                    raws = parser.finish()
                    await _send(raws, jobs, in_flight, tg, dispatch, summary, failed)
            except StreamconvError as exc:
                # invalid JSON ends the stream; the datasets complete before it are converted
                error = exc.with_source(source)
                await _send(parser.completed(), jobs, in_flight, tg, dispatch, summary, failed)
            watcher.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # a worker's failure (BrokenWorkerProcess, a rejected/ write): one plain exception
        raise _leaf(group) from None
    finally:
        parser.close()
    with anyio.CancelScope(shield=True):
        await sync.now()  # what was written is durable before the exit status says so
    summary.seconds = time.monotonic() - started
    if failed:
        # the first failed dataset in input order, whichever worker finished first
        raise min(failed, key=lambda f: f[0])[1]
    if error is not None:
        raise error
    missing = summary.datasets - summary.converted - summary.rejected
    if missing:
        # every dataset handed to a worker must come back converted or rejected: never
        # exit 0 with outputs missing (a worker that lost a batch, a version mismatch)
        raise OutputError(
            f"{missing} of {summary.datasets} datasets were neither written nor rejected",
            source=source,
        )
    return summary


class _Syncer:
    """syncfs(2) of the output filesystem, at most every SYNC_INTERVAL, one at a time."""

    def __init__(self, out_dir: str) -> None:
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
    for start in range(0, len(items), size):
        if failed:  # fail_fast: nothing more is dispatched after a failure
            for frame in items[start:]:
                frame.discard()
            return
        batch = items[start : start + size]
        await in_flight.acquire()
        tg.start_soon(dispatch, batch)


def _save_rejected(rejected_dir: str, res: _Result, text: bytes) -> None:
    os.makedirs(rejected_dir, exist_ok=True)
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
