"""Inputs -> tasks: small files grouped, big arrays and NDJSON split into byte ranges.

A task should be about a second of work (the prototype of issue 13: one object per task ran
at 70 datasets/s, 1,000 per task at 404/s).  Inputs below ``split_bytes`` are converted
whole, grouped until a task holds ``group_bytes`` of JSON or ``batch_size`` files.  A larger
input is read once here through the stream's :class:`~streamconv.framing.Framer`, which
finds where each top-level value begins; it is cut every ``batch_size`` datasets, and each
task reads only its byte range (one ranged GET on an object store).

A cut must fall exactly between two datasets.  The Framer reports a dataset's start in input
bytes, shifted by what its pre-pass removed (a BOM, trailing commas, spliced-out
InlineBinary); the shift is exact as long as nothing was removed since the first dataset
began, so cuts are made only while that holds (a file with trailing commas or >1 MiB
InlineBinary values is cut only before the first such place).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from ..errors import StreamconvError
from ..options import Limits
from ..storage import Store
from .sources import Input

__all__ = ["Piece", "Scan", "plan_tasks", "scan_input"]

log = logging.getLogger(__name__)

SPLIT_BYTES = 4 << 20  # inputs at least this large are scanned for dataset boundaries
GROUP_BYTES = 4 << 20  # ~1 s of CT headers on one core


class Piece(NamedTuple):
    """One input, or one byte range of one: what a task converts."""

    source: str
    name: str
    start: int = 0
    end: int = -1  # -1: the whole input
    first_index: int = 0
    datasets: int = -1  # how many it holds; -1 unknown (a whole small input)
    shape: str = ""  # "array" / "values" for a byte range
    last: bool = True  # the range reaches the end of the input
    several: bool = False  # the input holds several datasets (names NAME/<template>)


class Scan(NamedTuple):
    shape: str
    datasets: int
    cuts: list[tuple[int, int]]  # (first index, byte offset) of each range after the first


def _removed(framer: object) -> int:
    # input bytes the pre-pass has taken out so far (see Framer._input_offset)
    f = framer.filter  # type: ignore[attr-defined]
    return int(f.consumed - len(f._carry) - framer._emitted)  # type: ignore[attr-defined]


def scan_input(chunks: Iterable[bytes], batch_size: int, limits: Limits, source: str) -> Scan:
    """Count the datasets of one input and find a cut every ``batch_size`` of them."""
    from ..core.framing import Framer

    framer = Framer(source=source, limits=limits, check=False)
    cuts: list[tuple[int, int]] = []
    removed_at_first: int | None = None
    exact = True
    try:
        for chunk in _with_end(chunks):
            before = _removed(framer)
            frames = framer.feed(chunk) if chunk else framer.finish()
            after = _removed(framer)
            for frame in frames:
                if removed_at_first is None:
                    removed_at_first = before  # a BOM or blanks before the first value
                if exact and after != removed_at_first:
                    exact = False  # offsets from here on may be shifted: no more cuts
                if exact and frame.index and frame.index % batch_size == 0:
                    cuts.append((frame.index, frame.start))
                frame.discard()
        return Scan(framer.shape, framer.count, cuts)
    finally:
        framer.close()


def _with_end(chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        if chunk:
            yield chunk
    yield b""


def split_input(inp: Input, scan: Scan) -> list[Piece]:
    if scan.datasets <= 1 or not scan.cuts:
        return [Piece(inp.url, inp.name, datasets=scan.datasets, several=scan.datasets > 1)]
    pieces: list[Piece] = []
    bounds = [(0, 0), *scan.cuts]
    for i, (first, start) in enumerate(bounds):
        last = i == len(bounds) - 1
        nxt_first, end = (scan.datasets, inp.size) if last else bounds[i + 1]
        pieces.append(
            Piece(inp.url, inp.name, start, end, first, nxt_first - first, scan.shape, last, True)
        )
    return pieces


def plan_tasks(
    inputs: list[Input],
    store_for: object,
    *,
    batch_size: int,
    limits: Limits,
    splittable: bool,
    split_bytes: int = SPLIT_BYTES,
    group_bytes: int = GROUP_BYTES,
) -> tuple[list[list[Piece]], list[tuple[Input, StreamconvError]]]:
    """Tasks (each a list of pieces) and the inputs that failed while being scanned."""
    tasks: list[list[Piece]] = []
    failed: list[tuple[Input, StreamconvError]] = []
    group: list[Piece] = []
    group_size = 0
    for inp in inputs:
        if inp.size < 0:
            continue  # reported by the caller
        if splittable and inp.size >= split_bytes:
            store: Store = store_for(inp.url)  # type: ignore[operator]
            try:
                scan = scan_input(store.chunks(inp.url), batch_size, limits, inp.url)
            except StreamconvError as exc:
                # broken structure: converted whole by a task, which reports what it can
                log.debug("%s: not split (%s)", inp.url, exc)
                tasks.append([Piece(inp.url, inp.name)])
                continue
            tasks.extend([p] for p in split_input(inp, scan))
            continue
        group.append(Piece(inp.url, inp.name))
        group_size += inp.size
        if group_size >= group_bytes or len(group) >= batch_size:
            tasks.append(group)
            group, group_size = [], 0
    if group:
        tasks.append(group)
    return tasks, failed
