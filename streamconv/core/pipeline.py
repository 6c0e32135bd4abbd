"""The pipeline: bytes -> datasets -> elements -> Part 10, with the array policy.

:class:`Converter` is the synchronous core (no I/O of its own except bulk data and the +ar
spool): feed it bytes, get :class:`Output` objects.  :func:`convert_one` is the pure,
CPU-bound step per dataset (the stream front end runs it in worker processes).  The async
functions at the bottom are the one-shot front end's pipeline: chunked reads, conversion in
a worker thread, and the atomic writer.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..errors import ContentError, Problems, StreamconvError
from ..options import ArrayPolicy, ConvertOptions, TransferSyntax
from .build import BuildContext, Built, build_dataset
from .bulkdata import BulkRef, Encapsulated, remove_temporaries, temporary_ref
from .documents import DocumentParser, RawDataset, SpillStore, parse_frame
from .encode import (
    EXPLICIT,
    Encoded,
    Piece,
    encode_items,
    encode_part10,
    gather,
    iter_bytes,
    output_ts,
    sequence_end,
    sequence_header,
)
from .lazylog import lazy_logger
from .transform import apply_charset, apply_uids
from .uids import new_salt
from .vr import Element

__all__ = [
    "Converter",
    "Failure",
    "Output",
    "RunContext",
    "convert_one",
    "release",
]

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from typing import TypeVar

    from .framing import Frame, Framer

    _T = TypeVar("_T")

log = lazy_logger(__name__)

PRIVATE_CREATOR = 0x00090010
PRIVATE_SEQUENCE = 0x00091000
CREATOR_NAME = "JSON2DCM_LIST_OF_DATASETS"


# Plain classes with __slots__, not dataclasses: see streamconv/options.py (start-up).


class Output:
    """One converted dataset: ``index`` is its 0-based position (-1 for a +ar file)."""

    __slots__ = ("dataset", "encoded", "index", "warnings")

    def __init__(
        self,
        index: int,
        encoded: Encoded,
        dataset: dict[int, Element],
        warnings: list[str] | None = None,
    ) -> None:
        self.index = index
        self.encoded = encoded
        self.dataset = dataset
        self.warnings: list[str] = [] if warnings is None else warnings

    def sop_instance_uid(self) -> str:
        """(0008,0018) as written (text, padding stripped); "" when there is none."""
        elem = self.dataset.get(0x00080018)
        value = None if elem is None else elem.value
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        return value.strip(" \x00") if isinstance(value, str) else ""


class Failure:
    """A dataset that could not be converted (only with ``collect_errors``)."""

    __slots__ = ("error", "index", "raw")

    def __init__(self, index: int, error: StreamconvError, raw: RawDataset) -> None:
        self.index = index
        self.error = error
        self.raw = raw


class RunContext:
    """Per-run state shared by the datasets of one run (pickled to worker processes)."""

    __slots__ = ("base_dir", "base_url", "options", "salt", "source")

    def __init__(
        self,
        options: ConvertOptions,
        source: str = "",
        base_dir: str | None = None,
        salt: bytes | None = None,
    ) -> None:
        self.options = options
        self.source = source
        self.base_dir = base_dir
        self.base_url: str | None = None  # an http(s) input (relative BulkDataURIs, frames)
        self.salt = new_salt() if salt is None else salt  # mapped_uid's namespace for this run


def build_one(
    raw: RawDataset, run: RunContext, spills: SpillStore | None = None, *, in_array: bool = False
) -> tuple[Built, bool]:
    """One dataset's JSON -> elements (model, UIDs, charset), not encoded yet; returns them
    and whether the SOP Instance UID changed.  ``spills`` holds its spliced-out InlineBinary."""
    options = run.options
    problems = Problems(strict=options.stop_on_error)
    ctx = BuildContext(options, problems, run.source, run.base_dir)
    ctx.run_key = run.salt  # one run: an http value shared by many datasets is fetched once
    ctx.base_url = run.base_url
    if spills is not None:
        ctx.spills = spills
    try:
        if options.http.prefixes and options.parse_bulkdata:
            from .webscan import prefetching  # a dataset's http values fetched side by side

            with prefetching(raw.value, ctx):
                built = build_dataset(raw.value, ctx, in_array=in_array)
        else:
            built = build_dataset(raw.value, ctx, in_array=in_array)
        http = options.http
        if not in_array and (http.prefixes or http.require_pixel_data):
            # a DICOMweb source (+Bh): pixel data omitted by the server, fragments (issue 12);
            # local conversions keep DCMTK's silence about images without pixels
            from .pixels import complete_pixel_data

            complete_pixel_data(built.dataset, built.meta, ctx)
        built.warnings = problems.warnings
        # +Ug considers the top-level dataset only (dcmtk-behavior §10); a +ar dataset is an item
        sop_changed = False if in_array else apply_uids(built.dataset, options, run.salt)
        apply_charset(built.dataset, options, run.source, declare=not in_array)
    except BaseException:
        remove_temporaries(ctx.temporaries)  # fetched values of a dataset that failed
        raise
    return built, sop_changed


def convert_one(raw: RawDataset, run: RunContext, spills: SpillStore | None = None) -> Output:
    """One dataset's JSON -> encoded Part 10 output (:func:`build_one`, then the encoder)."""
    built, sop_changed = build_one(raw, run, spills)
    try:
        enc = encode_part10(
            built.dataset, built.meta, run.options, sop_instance_changed=sop_changed
        )
    except BaseException:  # e.g. +te asked of encapsulated pixels (40): no output to release
        remove_temporaries(_temporary_paths(built.dataset))
        raise
    return Output(raw.index, enc, built.dataset, built.warnings)


def _temporary_paths(ds: dict[int, Element]) -> list[str]:
    """The files of streamconv's own (fetched, spilled) that a built dataset's values hold."""
    paths: list[str] = []
    for elem in ds.values():
        value = elem.value
        refs = value.fragments if isinstance(value, Encapsulated) else [value]
        paths += [r.path for r in refs if isinstance(r, BulkRef) and r.temporary]
        if isinstance(value, list):  # a sequence: its items
            for item in value:
                if isinstance(item, dict):
                    paths += _temporary_paths(item)
    return paths


class Converter:
    """Push bytes in, get outputs out, according to the array policy (CONTRACT §6)."""

    def __init__(self, run: RunContext, *, collect_errors: bool = False) -> None:
        self.run = run
        self.collect_errors = collect_errors
        self.options = run.options
        self.parser: DocumentParser | Framer
        if run.options.array_policy is ArrayPolicy.SELECT:
            from .framing import Framer  # not on the path of a plain conversion (start-up)

            # +as n: the others are cut out as bytes and checked, never built (CONTRACT §6)
            self.parser = Framer(source=run.source, limits=run.options.limits)
        else:
            self.parser = DocumentParser(source=run.source, limits=run.options.limits)
        self._held: RawDataset | None = None
        self._held_frame: Frame | None = None
        self._seq: _SequenceSpool | None = None
        self.count = 0

    def feed(self, data: bytes) -> list[Output | Failure]:
        if isinstance(self.parser, DocumentParser):
            return self._handle(self.parser.feed(data))
        self._select(self.parser.feed(data))
        return []

    def feed_whole(self, data: bytes) -> list[Output | Failure] | None:
        """The whole input in one piece (a one-shot conversion of a small file): parsed
        without ijson when it can be (DocumentParser.parse_whole), else None and nothing
        done: the caller feeds it instead.  Not for --array-split, whose outputs are written
        as each read completes them; :meth:`finish` follows as after :meth:`feed`."""
        if not isinstance(self.parser, DocumentParser):
            return None
        if self.options.array_policy is ArrayPolicy.SPLIT:
            return None
        raws = self.parser.parse_whole(data)
        return None if raws is None else self._handle(raws)

    def finish(self) -> list[Output | Failure]:
        if isinstance(self.parser, DocumentParser):
            outs = self._handle(self.parser.finish())
        else:
            self._select(self.parser.finish())
            outs = []
        policy = self.options.array_policy
        total = self.parser.count
        if self._seq is not None:
            outs.append(self._seq.finish())
            self._seq = None
            return outs
        if policy is ArrayPolicy.SPLIT:
            return outs
        if self._held_frame is not None:
            frame, self._held_frame = self._held_frame, None
            self._held = parse_frame(
                frame.data, frame.index, frame.offset, start=frame.start, source=self.run.source
            )
            self.parser.spills.adopt(frame.spills)
        if self._held is not None:
            outs.append(self._convert(self._held))
            self._held = None
        elif policy is ArrayPolicy.SELECT and total > 1:
            raise ContentError(
                f"found JSON array containing {total} DICOM datasets, cannot store dataset "
                f"no. {self.options.array_select}"
            )
        return outs

    def close(self) -> None:
        if self._held_frame is not None:
            self._held_frame.discard()
            self._held_frame = None
        self.parser.close()
        if self._seq is not None:
            self._seq.discard()
            self._seq = None

    def _convert(self, raw: RawDataset) -> Output:
        return self._named(raw, lambda: convert_one(raw, self.run, self.parser.spills))

    def _build_item(self, raw: RawDataset) -> Built:
        """+ar: one dataset as an item (elements only; the spool encodes it)."""
        return self._named(
            raw, lambda: build_one(raw, self.run, self.parser.spills, in_array=True)[0]
        )

    def _named(self, raw: RawDataset, step: Callable[[], _T]) -> _T:
        try:
            return step()
        except StreamconvError as exc:
            several = self.parser.count > 1 or self.parser.shape == "array"
            if several and not exc.path.startswith("dataset"):
                exc.path = f"dataset {raw.index + 1}" + (f" {exc.path}" if exc.path else "")
            raise

    def _select(self, frames: list[Frame]) -> None:
        """+as n: hold the n-th frame (or the first, in case it is the only one); a frame
        let go releases its spilled InlineBinary at once, so memory does not grow with the
        number of datasets skipped."""
        n = self.options.array_select
        for frame in frames:
            self.count += 1
            if frame.index in (0, n - 1):
                if self._held_frame is not None:
                    self._held_frame.discard()
                self._held_frame = frame
            elif frame.index == 1 and n != 1:
                if self._held_frame is not None:  # several datasets: only the n-th counts
                    self._held_frame.discard()
                    self._held_frame = None
                frame.discard()
            else:
                frame.discard()

    def _handle(self, raws: list[RawDataset]) -> list[Output | Failure]:
        outs: list[Output | Failure] = []
        policy = self.options.array_policy
        for raw in raws:
            self.count += 1
            if policy is ArrayPolicy.SPLIT:
                try:
                    outs.append(self._convert(raw))
                except StreamconvError as exc:
                    if not self.collect_errors:
                        raise
                    outs.append(Failure(raw.index, exc, raw))
            elif policy is ArrayPolicy.SEQUENCE:
                if self._seq is not None:
                    self._seq.add(raw)
                elif self._held is None:
                    self._held = raw
                else:
                    self._seq = _SequenceSpool(self)
                    self._seq.add(self._held)
                    self._seq.add(raw)
                    self._held = None
            else:  # REJECT
                if self._held is None and raw.index == 0:
                    self._held = raw
                else:
                    self._held = None
                    raise ContentError(
                        "found more than one DICOM dataset (a JSON array or several top-level "
                        "values), rejecting conversion; use +as n, +ar or --array-split"
                    )
        return outs


class _SequenceSpool:
    """+ar: items encoded one at a time into a spool file; memory stays flat."""

    def __init__(self, conv: Converter) -> None:
        self.conv = conv
        opts = conv.options
        _, self.ts = output_ts(opts, {}, False)
        import tempfile  # lazily: ~7 ms of start-up that a plain conversion never needs

        fd, self.path = tempfile.mkstemp(prefix="streamconv-ar-")
        self.file = os.fdopen(fd, "wb")
        self.length = 0
        self.uids: dict[int, Element] = {}

    def add(self, raw: RawDataset) -> None:
        ds = self.conv._build_item(raw).dataset
        for tag in (0x00080016, 0x00080018):
            if tag not in self.uids and tag in ds and ds[tag].value:
                self.uids[tag] = ds[tag]
        pieces, n = encode_items([ds], self.conv.options, self.ts)
        tmp = Encoded(b"", pieces, None, self.conv.options.bulkdata_dirs)
        for chunk in gather(iter_bytes(tmp)):
            self.file.write(chunk)
        self.length += n

    def finish(self) -> Output:
        self.file.close()
        opts = self.conv.options
        ds: dict[int, Element] = {
            PRIVATE_CREATOR: Element(PRIVATE_CREATOR, "LO", CREATOR_NAME.encode()),
        }
        # the wrapper is the top-level dataset: +Ug and -c apply to it (dcmtk-behavior §10, §11)
        sop_changed = apply_uids(ds, opts, self.conv.run.salt)
        apply_charset(ds, opts, self.conv.run.source)
        # the meta header takes the first nested SOP UIDs (DCMTK §8): offer them in an item
        meta_source = {
            **ds,
            PRIVATE_SEQUENCE: Element(PRIVATE_SEQUENCE, "SQ", [self.uids] if self.uids else []),
        }
        enc = encode_part10(ds, {}, opts, sop_instance_changed=sop_changed, meta_source=meta_source)
        explicit = opts.explicit_length
        seq_head = sequence_header(
            PRIVATE_SEQUENCE, self.length if explicit else None, opts, self.ts
        )
        body: list[Piece] = [*enc.body, seq_head]
        if self.length:
            body.append((temporary_ref(self.path, self.length), 1))
        if not explicit:
            body.append(sequence_end(opts, self.ts))
        enc.body = body
        enc.temporaries.append(self.path)
        return Output(-1, enc, ds)

    def discard(self) -> None:
        try:
            self.file.close()
            os.unlink(self.path)
        except OSError:
            pass


def release(out: Output) -> None:
    """Remove the temporary files (spills, +ar spool) an output still holds."""
    enc = out.encoded
    for path in enc.temporaries:
        try:
            os.unlink(path)
        except OSError:
            pass
    if enc._size >= 0:
        return  # bytes only (the encoder found no bulk reference): no spill to remove
    for piece in enc.body:
        if not isinstance(piece, bytes) and piece[0].temporary:
            try:
                os.unlink(piece[0].path)
            except OSError:
                pass


def ts_for(options: ConvertOptions) -> str:
    return (
        EXPLICIT
        if options.transfer_syntax is TransferSyntax.SAME
        else options.transfer_syntax.value
    )
