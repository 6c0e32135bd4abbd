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
    as each is found, then the :class:`Scan` (shape, datasets) at the end.

    Three scans, each tried when the one before cannot vouch for its cuts: NDJSON lines
    (:func:`_scan_lines`), the Framer without its pre-pass, the Framer with it.  Each finds
    the same cuts where it can, so one that gives up is followed by the next from the start,
    and only its cuts past those already handed out are handed out."""
    done = 0  # cuts up to this index were handed out already
    attempts: list[Callable[[], Iterator[tuple[int, int, str] | Scan]]] = [
        lambda: _scan_lines(chunks(), batch_size),
        lambda: _scan(chunks(), batch_size, limits, source, verbatim=True),
    ]
    for attempt in attempts:
        try:
            for item in attempt():
                if isinstance(item, Scan) or item[0] > done:
                    if not isinstance(item, Scan):
                        done = item[0]
                    yield item
            return
        except (StreamconvError, _NotLines):
            pass
    for item in _scan(chunks(), batch_size, limits, source, verbatim=False):
        if isinstance(item, Scan) or item[0] > done:
            yield item


class _NotLines(Exception):
    """The input is not one dataset per line, or that cannot be shown cheaply."""


_NL, _LBRACE, _RBRACE, _CR = 0x0A, 0x7B, 0x7D, 0x0D
# bytes that shape a JSON text's structure (a newline never stands inside a string: RFC
# 8259 §7 wants control characters escaped), everything else deleted
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'"[]{}\n')
_MAX_LINE = 64 << 20  # a longer line (a huge dataset): the Framer takes over
_MAX_NESTING = 48  # brackets nested deeper: the Framer takes over (it knows the limits)


def _scan_lines(chunks: Iterable[bytes], batch_size: int) -> Iterator[tuple[int, int, str] | Scan]:
    """NDJSON: one dataset per line, cut at line starts, without a parse (~15 us per CT
    header, against ~40 us for the Framer; the driver plans on the cores the workers need).

    Each block of whole lines is vouched for before its cuts are handed out: every line is
    blank, or starts with '{' and ends with '}' (a CR before the newline allowed), and holds
    exactly one object: with no string holding a bracket, the brackets of each line nest
    as one '{...}'.  Then the Framer would cut at the same line starts: inside an object or
    array a '}' is never followed by a line that starts with '{' (a ',' or ':' must come
    between), so each line end is between two top-level values.  Anything else raises
    _NotLines: a JSON array, a value over several lines, two values on a line, a string
    holding a bracket, or a broken line (whose errors the Framer reports exactly).
    """
    from ..core.framing import chunks_then_end

    count = 0  # datasets (non-blank lines) so far
    base = 0  # input offset of carry[0]
    carry = b""
    first = True
    for chunk in chunks_then_end(chunks):
        final = not chunk
        data = carry + chunk if carry else chunk
        if first:
            if len(data) < 3 and not final:
                carry = data
                continue
            first = False
            if data.startswith(_BOM):  # RFC 8259 §8.1: skipped, offsets stay exact
                data, base = data[3:], 3
        end = len(data) if final else data.rfind(b"\n") + 1
        if end == 0:
            if len(data) > _MAX_LINE:
                raise _NotLines
            carry = data
            continue
        block, carry = data[:end], data[end:]
        if final and block and not block.endswith(b"\n"):
            block += b"\n"  # the last line may lack its newline
        cuts, count = _lines(block, base, count, batch_size)
        base += end
        yield from cuts
    if count == 0:
        raise _NotLines
    yield Scan("values", count)


def _lines(
    block: bytes, base: int, count: int, batch_size: int
) -> tuple[list[tuple[int, int, str]], int]:
    """The cuts in ``block`` (whole lines, from input offset ``base``), and the datasets
    counted after it; raises _NotLines unless every line is blank or one object."""
    cuts: list[tuple[int, int, str]] = []
    nonblank = 0
    find = block.find
    start = 0
    while start < len(block):
        nl = find(b"\n", start)
        last = block[nl - 1] if nl > start else _NL
        if last == _CR and nl - 1 > start:
            last = block[nl - 2]
        if block[start] == _LBRACE and last == _RBRACE:
            if count and count % batch_size == 0:
                cuts.append((count, base + start, "values"))
            count += 1
            nonblank += 1
        elif block[start:nl].strip(b" \t\r"):
            raise _NotLines  # neither blank nor '{...}'
        start = nl + 1
    if nonblank:
        _one_object_per_line(block, nonblank)
    return cuts, count


def _one_object_per_line(block: bytes, lines: int) -> None:
    if b"\\" in block:
        block = block.replace(b"\\\\", b"").replace(b'\\"', b"")  # escapes out
    marks = block.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    if b'"' in marks:
        raise _NotLines  # a string holds a bracket: only a parse can tell
    # each line's own braces become '(' ')', then nested pairs are taken out from the
    # inside: a line that is one object ends as '()', anything else keeps a bracket
    marks = (b"\n" + marks).replace(b"\n{", b"\n(").replace(b"}\n", b")\n")
    for _ in range(_MAX_NESTING):
        shorter = marks.replace(b"{}", b"").replace(b"[]", b"")
        if len(shorter) == len(marks):
            break
        marks = shorter
    if marks.count(b"()\n") != lines or marks.replace(b"()\n", b"\n").strip(b"\n"):
        raise _NotLines


def _removed(framer: Framer) -> int:
    # input bytes the pre-pass has taken out so far (see Framer._input_offset)
    f = framer.filter
    return int(f.consumed - len(f._carry) - framer._emitted)


def _scan(
    chunks: Iterable[bytes], batch_size: int, limits: Limits, source: str, *, verbatim: bool
) -> Iterator[tuple[int, int, str] | Scan]:
    from ..core.framing import Framer, chunks_then_end

    framer = Framer(source=source, limits=limits, check=False)
    if verbatim:
        framer.filter = _Verbatim()  # type: ignore[assignment]
    removed_at_first: int | None = None
    exact = True
    try:
        for chunk in chunks_then_end(chunks):
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
