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
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from ..errors import ContentError, StreamconvError
from ..options import Limits
from ..storage import Store
from .sources import Input

if TYPE_CHECKING:
    from ..core.framing import Framer

__all__ = ["Piece", "Scan", "plan_tasks", "scan_input"]

log = logging.getLogger(__name__)

_BOM = b"\xef\xbb\xbf"
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


class _Verbatim:
    """A pre-pass that passes every byte on: offsets of frames are then exact input offsets.

    Duck-typed for :class:`~streamconv.core.framing.Framer` (its ``filter``).  The real
    pre-pass (BOM, trailing commas, InlineBinary spills, limits) is the conversion's job; here
    it would only cost time (3x the scan) and shift offsets.  A leading BOM (RFC 8259 §8.1)
    is skipped.  An input that needs more (a trailing comma) makes the verbatim scan fail:
    it is then scanned again through the pre-pass and cut only where offsets are still
    exact (see :func:`_scan`).
    """

    def __init__(self) -> None:
        self.consumed = 0
        self._carry = b""

    def feed(self, data: bytes) -> bytes:
        first = self.consumed == 0
        self.consumed += len(data)
        if first and data.startswith(_BOM):
            return data[len(_BOM) :]  # before every dataset: offsets stay exact (+3)
        return data

    def finish(self) -> bytes:
        return b""


def scan_input(
    chunks: Callable[[], Iterable[bytes]], batch_size: int, limits: Limits, source: str
) -> Iterator[tuple[int, int, str] | Scan]:
    """Find a cut every ``batch_size`` datasets of one input: ``(first index, byte offset)``
    as each is found, then the :class:`Scan` (shape, datasets) at the end."""
    done = 0  # cuts up to this index were handed out already
    try:
        for item in _scan(chunks(), batch_size, limits, source, verbatim=True):
            if not isinstance(item, Scan):
                done = item[0]
            yield item
        return
    except StreamconvError:
        pass
    for item in _scan(chunks(), batch_size, limits, source, verbatim=False):
        if isinstance(item, Scan) or item[0] > done:
            yield item


def _removed(framer: Framer) -> int:
    # input bytes the pre-pass has taken out so far (see Framer._input_offset)
    f = framer.filter
    return int(f.consumed - len(f._carry) - framer._emitted)


def _scan(
    chunks: Iterable[bytes], batch_size: int, limits: Limits, source: str, *, verbatim: bool
) -> Iterator[tuple[int, int, str] | Scan]:
    from ..core.framing import Framer

    framer = Framer(source=source, limits=limits, check=False)
    if verbatim:
        framer.filter = _Verbatim()  # type: ignore[assignment]
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
                if verbatim and frame.data[:1] != b"{":
                    # not an object where a dataset should begin: let the pre-pass judge
                    raise ContentError("not a dataset (verbatim scan)")
                if not verbatim and exact and after != removed_at_first:
                    exact = False  # offsets from here on may be shifted: no more cuts
                if exact and frame.index and frame.index % batch_size == 0:
                    yield frame.index, frame.start, framer.shape
                frame.discard()
        yield Scan(framer.shape, framer.count)
    finally:
        framer.close()


def _with_end(chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        if chunk:
            yield chunk
    yield b""


def split_input(inp: Input, store: Store, batch_size: int, limits: Limits) -> Iterator[Piece]:
    """The pieces of one big input, each as soon as its end is known."""
    first, start, shape = 0, 0, ""
    try:
        for item in scan_input(lambda: store.chunks(inp.url), batch_size, limits, inp.url):
            if isinstance(item, Scan):
                if first == 0:  # never cut: the input is one piece
                    yield Piece(
                        inp.url, inp.name, datasets=item.datasets, several=item.datasets > 1
                    )
                else:
                    yield Piece(inp.url, inp.name, start, inp.size, first, item.datasets - first,
                                shape, True, True)  # fmt: skip
                return
            index, offset, shape = item
            yield Piece(inp.url, inp.name, start, offset, first, index - first, shape, False, True)
            first, start = index, offset
    except StreamconvError as exc:
        # a broken structure: what is left goes to one task, which converts the datasets
        # before the break and reports the error (as json2dcm --array-split would)
        log.debug("%s: not split further (%s)", inp.url, exc)
        if first == 0:
            yield Piece(inp.url, inp.name)
        else:
            yield Piece(inp.url, inp.name, start, inp.size, first, -1, shape, True, True)


def plan_tasks(
    inputs: list[Input],
    store_for: Callable[[str], Store],
    *,
    batch_size: int,
    limits: Limits,
    splittable: bool,
    split_bytes: int = SPLIT_BYTES,
    group_bytes: int = GROUP_BYTES,
) -> Iterator[list[Piece]]:
    """Tasks (each a list of pieces), as soon as each is known: the engine starts on the
    first byte ranges of a big input while the rest of it is still being scanned."""
    group: list[Piece] = []
    group_size = 0
    for inp in inputs:
        if inp.size < 0:
            continue  # reported by the caller
        if splittable and inp.size >= split_bytes:
            for piece in split_input(inp, store_for(inp.url), batch_size, limits):
                yield [piece]
            continue
        group.append(Piece(inp.url, inp.name))
        group_size += inp.size
        if group_size >= group_bytes or len(group) >= batch_size:
            yield group
            group, group_size = [], 0
    if group:
        yield group
