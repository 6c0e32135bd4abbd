"""The worker side: convert the pieces of one task and write every output atomically.

:func:`run_task` is what an engine runs (a Dask task, or a plain call with ``--jobs 1``).
It never raises for an input's content: each converted dataset becomes a success record,
each failed dataset or input a failure record, returned to the driver that writes the
report.  Running a task twice (a worker lost, its task recomputed elsewhere) writes the
same bytes under the same names: the UID salt travels with the job.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import ContentError, StreamconvError
from ..options import ArrayPolicy, ConvertOptions
from ..storage import Store
from .plan import Piece

if TYPE_CHECKING:
    from ..core.pipeline import Output

__all__ = ["Job", "TaskResult", "output_target", "run_task"]

log = logging.getLogger(__name__)


SYNC_INTERVAL = 1.0
_last_sync = 0.0


class Job(NamedTuple):
    """What every task of one run shares (pickled with each task: small)."""

    options: ConvertOptions  # array policy SPLIT, or SEQUENCE/SELECT (one output per input)
    dest: str
    salt: bytes
    storage_options: dict[str, Any]
    whole: bool = False  # +ar / +as n: one output per input, NAME.dcm


class TaskResult(NamedTuple):
    successes: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    seconds: float
    worker: str


def success_line(source: str, index: int, output: str, uid: str, size: int) -> dict[str, Any]:
    return {
        "source": source,
        "index": index,
        "output": output,
        "sop_instance_uid": uid,
        "bytes": size,
    }


def failure_line(source: str, index: int | None, exc: StreamconvError) -> dict[str, Any]:
    """The team's one failure record (``as_dict``: exit_code, category, message, path,
    transient, offset) with the input and the dataset's index (None: the whole input)."""
    record = exc.as_dict()
    record.pop("source", None)
    return {"source": source, "index": index, **record}


def output_target(
    store: Store, job: Job, piece: Piece, index: int, out: Output, several: bool
) -> str:
    """DEST/NAME.dcm for a one-dataset input, DEST/NAME/<template> for several; a template
    holding ``{name}`` names every output itself (inside NAME's sub-folder)."""
    from ..sinks import render_name

    template = job.options.filename_template
    folder, _, base = piece.name.rpartition("/")
    if "{name}" in template:
        escaped = base.replace("{", "{{").replace("}", "}}")
        rel = render_name(template.replace("{name}", escaped), max(index, 0), out.dataset)
        return store.join(job.dest, f"{folder}/{rel}" if folder else rel)
    if several:
        rel = render_name(template, index, out.dataset)
        return store.join(job.dest, f"{piece.name}/{rel}")
    return store.join(job.dest, piece.name + ".dcm")


def _piece_bytes(store: Store, piece: Piece) -> Iterator[bytes]:
    """A byte range made a whole JSON text again: a range from the middle of an array is
    ``{..},{..},`` and gets its brackets back (a trailing comma is accepted, CONTRACT §3)."""
    if piece.end < 0:
        yield from store.chunks(piece.source)
        return
    data = store.read_range(piece.source, piece.start, piece.end)
    if piece.shape == "array":
        if piece.start > 0:
            yield b"["
        yield data
        if not piece.last:
            yield b"]"
    else:
        yield data


def _convert_piece(store: Store, out_store: Store, job: Job, piece: Piece, res: TaskResult) -> None:
    from ..api import iter_outputs
    from ..core.pipeline import release

    source = piece.source
    base_dir = os.path.dirname(os.path.abspath(source)) if store.local else None
    several = piece.several
    held: tuple[int, Output] | None = None  # a whole input's first output, until we know
    seen = 0

    def write(index: int, out: Output, several: bool) -> None:
        try:
            target = output_target(out_store, job, piece, index, out, several)
            uid = out.sop_instance_uid()
            size = out_store.write_output(out, target)
        except StreamconvError as exc:
            release(out)
            res.failures.append(failure_line(source, max(index, 0), exc.with_source(source)))
            return
        res.successes.append(success_line(source, max(index, 0), target, uid, size))

    whole_failed = False
    decide = piece.end < 0 and not job.whole and not several  # one dataset or several?
    try:
        items = iter_outputs(
            _piece_bytes(store, piece),
            job.options,
            source=source,
            base_dir=base_dir,
            first_index=piece.first_index,
            salt=job.salt,
        )
        for index, item in items:
            if index >= 0 or not isinstance(item, StreamconvError):
                seen += 1
            if decide and seen > 1:
                decide, several = False, True
                if held is not None:
                    write(held[0], held[1], True)
                    held = None
            if isinstance(item, StreamconvError):
                whole_failed = whole_failed or index < 0
                res.failures.append(failure_line(source, index if index >= 0 else None, item))
                continue
            if decide:
                held = (index, item)
            else:
                write(index, item, several)
    except StreamconvError as exc:  # reading the input failed
        whole_failed = True
        res.failures.append(failure_line(source, None, exc.with_source(source)))
    finally:
        if held is not None:
            write(held[0], held[1], several)
    if piece.datasets >= 0 and seen != piece.datasets and not whole_failed:
        mismatch = ContentError(
            f"the byte range {piece.start}-{piece.end} held {seen} datasets, "
            f"{piece.datasets} were expected (the input changed while the batch ran?)"
        )
        res.failures.append(failure_line(source, piece.first_index, mismatch.with_source(source)))


def run_task(pieces: list[Piece], job: Job) -> TaskResult:
    """Convert every piece of one task; returns its report lines."""
    from ..runtime import tune_gc

    tune_gc()  # once per worker process: the collector's rescans cost ~2x (runtime.py)
    started = time.monotonic()
    res = TaskResult([], [], 0.0, f"{os.uname().nodename}:{os.getpid()}")
    stores: dict[str, Store] = {}

    def store_for(url: str) -> Store:
        key = url.split("://", 1)[0] if "://" in url else "file"
        if key not in stores:
            stores[key] = Store.for_url(url, job.storage_options)
        return stores[key]

    out_store = store_for(job.dest)
    for piece in pieces:
        try:
            store = store_for(piece.source)
        except StreamconvError as exc:
            res.failures.append(failure_line(piece.source, None, exc.with_source(piece.source)))
            continue
        _convert_piece(store, out_store, job, piece, res)
    global _last_sync
    if out_store.local and res.successes and time.monotonic() - _last_sync >= SYNC_INTERVAL:
        # one syncfs(2) at most this often per worker, as the stream engine does (it flushes
        # the whole filesystem: per task it cost more than the conversion on a busy disk);
        # the driver syncs once more at the end
        out_store.sync(job.dest)
        _last_sync = time.monotonic()
    return res._replace(seconds=time.monotonic() - started)


def job_options(options: ConvertOptions) -> tuple[ConvertOptions, bool]:
    """The options the tasks convert with, and whether each input is one output (+ar, +as)."""
    if options.array_policy in (ArrayPolicy.SEQUENCE, ArrayPolicy.SELECT):
        return options, True
    return options._replace(array_policy=ArrayPolicy.SPLIT), False
