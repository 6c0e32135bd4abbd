"""The pipeline: bytes -> datasets -> elements -> Part 10, with the array policy.

:class:`Converter` is the synchronous core (no I/O of its own except bulk data and the +ar
spool): feed it bytes, get :class:`Output` objects.  :func:`convert_one` is the pure,
CPU-bound step per dataset (the stream front end runs it in worker processes).  The async
functions at the bottom are the one-shot front end's pipeline: chunked reads, conversion in
a worker thread, and the atomic writer.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .bulkdata import temporary_ref
from .documents import DocumentParser, RawDataset, SpillStore, parse_frame
from .encode import (
    EXPLICIT,
    Encoded,
    Piece,
    encode_items,
    encode_part10,
    iter_bytes,
    output_ts,
    sequence_end,
    sequence_header,
)
from .errors import ContentError, InputError, OutputError, Problems, StreamconvError
from .model import BuildContext, Built, build_dataset
from .options import ArrayPolicy, ConvertOptions, TransferSyntax
from .sinks import render_name, write_atomic, write_stdout
from .transform import apply_charset, apply_uids
from .uids import new_salt
from .vr import Element

__all__ = [
    "Converter",
    "Failure",
    "Output",
    "RunContext",
    "convert_file",
    "convert_file_sync",
    "convert_one",
    "open_input",
    "read_chunks",
    "release",
    "write_output",
]

if TYPE_CHECKING:
    from .framing import Frame, Framer

log = logging.getLogger(__name__)
_T = TypeVar("_T")

READ_SIZE = 1 << 20
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


class Failure:
    """A dataset that could not be converted (only with ``collect_errors``)."""

    __slots__ = ("error", "index", "raw")

    def __init__(self, index: int, error: StreamconvError, raw: RawDataset) -> None:
        self.index = index
        self.error = error
        self.raw = raw


class RunContext:
    """Per-run state shared by the datasets of one run (pickled to worker processes)."""

    __slots__ = ("base_dir", "options", "salt", "source")

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
    if spills is not None:
        ctx.spills = spills
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
    return built, sop_changed


def convert_one(raw: RawDataset, run: RunContext, spills: SpillStore | None = None) -> Output:
    """One dataset's JSON -> encoded Part 10 output (:func:`build_one`, then the encoder)."""
    built, sop_changed = build_one(raw, run, spills)
    enc = encode_part10(built.dataset, built.meta, run.options, sop_instance_changed=sop_changed)
    return Output(raw.index, enc, built.dataset, built.warnings)


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
        # gathered into ~1 MiB writes: an item is hundreds of small pieces
        pending: list[bytes] = []
        size = 0
        for chunk in iter_bytes(tmp):
            pending.append(chunk)
            size += len(chunk)
            if size >= READ_SIZE:
                self.file.write(b"".join(pending))
                pending, size = [], 0
        self.file.write(b"".join(pending))
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


# -- the async one-shot pipeline -----------------------------------------------------------


def open_input(path: str) -> int:
    """Open the JSON input (exit 20 when it cannot be read)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(f"cannot read JSON input '{path}': no such file") from None
    except OSError as exc:
        raise InputError(f"cannot read JSON input '{path}': {exc.strerror}") from None
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        os.close(fd)
        raise InputError(f"cannot read JSON input '{path}': is a directory")
    return fd


async def read_chunks(fd: int, size: int = READ_SIZE) -> AsyncIterator[bytes]:
    import anyio.to_thread

    while True:
        try:
            data = await anyio.to_thread.run_sync(os.read, fd, size)
        except OSError as exc:
            raise InputError(f"cannot read JSON input: {exc.strerror}") from None
        if not data:
            return
        yield data


Sink = Callable[[Output], Any]


def release(out: Output) -> None:
    """Remove the temporary files (spills, +ar spool) an output still holds."""
    for path in out.encoded.temporaries:
        try:
            os.unlink(path)
        except OSError:
            pass
    for piece in out.encoded.body:
        if not isinstance(piece, bytes) and piece[0].temporary:
            try:
                os.unlink(piece[0].path)
            except OSError:
                pass


def write_output(out: Output, target: str, options: ConvertOptions, *, fsync: bool = True) -> str:
    """Write one output (blocking): ``target`` is a file, "-", or the --array-split directory.

    ``fsync=False`` leaves durability to the caller (the stream engine syncs the
    filesystem once per batch instead of twice per file).
    """
    return _write_output(out, target, options, fsync)


def _write_output(out: Output, target: str, options: ConvertOptions, fsync: bool = True) -> str:
    try:
        if options.array_policy is ArrayPolicy.SPLIT and out.index >= 0:
            rel = render_name(options.filename_template, out.index, out.dataset)
            path = os.path.join(target, rel)
            parent = os.path.dirname(path)
            if parent and not os.path.isdir(parent):
                try:
                    os.makedirs(parent, exist_ok=True)
                except OSError as exc:
                    raise OutputError(
                        f"cannot create directory '{parent}': {exc.strerror}"
                    ) from None
            write_atomic(path, iter_bytes(out.encoded), fsync=fsync, sync_dir=False)
            return path
        if target == "-":
            write_stdout(out.encoded)
            return "-"
        # json2dcm: the file is fsynced before its rename (never torn); the rename is not
        # made durable with a directory fsync, which would add ~10% to a one-shot run
        # (DCMTK syncs nothing).  The daemon syncs its folders before it reports success.
        write_atomic(target, iter_bytes(out.encoded), fsync=fsync, sync_dir=False)
        return target
    finally:
        release(out)


def _make_output_dir(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output directory '{path}': {exc.strerror}") from None


async def convert_file(input_path: str, output_path: str, options: ConvertOptions) -> list[str]:
    """The one-shot pipeline: one input, one output (or a directory with --array-split)."""
    import anyio
    import anyio.to_thread

    source = "stdin" if input_path == "-" else input_path
    base_dir = None if input_path == "-" else os.path.dirname(os.path.abspath(input_path))  # noqa: ASYNC240 (string work, no I/O)
    run = RunContext(options, source, base_dir)
    if options.array_policy is ArrayPolicy.SPLIT and output_path != "-":
        await anyio.to_thread.run_sync(_make_output_dir, output_path)
    fd = 0 if input_path == "-" else open_input(input_path)
    if options.array_policy is ArrayPolicy.SPLIT and output_path != "-":
        # one file per dataset: the stream engine, with conversion in worker processes
        from .stream import convert_stream

        try:
            summary = await convert_stream(
                fd, output_path, options, source=source, base_dir=base_dir, fail_fast=True
            )
        except StreamconvError as exc:
            exc.with_source(source)
            raise
        finally:
            if fd != 0:
                os.close(fd)
        return [str(summary.converted)]
    conv = Converter(run)
    written: list[str] = []
    limiter = anyio.CapacityLimiter(1)
    try:
        async for chunk in read_chunks(fd):
            outs = await anyio.to_thread.run_sync(conv.feed, chunk, limiter=limiter)
            for out in outs:
                assert isinstance(out, Output)
                written.append(
                    await anyio.to_thread.run_sync(_write_output, out, output_path, options)
                )
        outs = await anyio.to_thread.run_sync(conv.finish, limiter=limiter)
        for out in outs:
            assert isinstance(out, Output)
            written.append(await anyio.to_thread.run_sync(_write_output, out, output_path, options))
    except StreamconvError as exc:
        exc.with_source(source)
        raise
    finally:
        conv.close()
        if fd != 0:
            os.close(fd)
    return written


def convert_file_sync(input_path: str, output_path: str, options: ConvertOptions) -> list[str]:
    """:func:`convert_file` without an event loop, for the json2dcm command (not --array-split).

    The same stages (Converter, atomic writer) driven by a plain loop: a one-shot conversion
    of a header takes a few milliseconds, importing asyncio and anyio's backend ~60 ms.
    """
    if options.array_policy is ArrayPolicy.SPLIT:
        raise ValueError("--array-split needs convert_file (worker processes)")
    source = "stdin" if input_path == "-" else input_path
    base_dir = None if input_path == "-" else os.path.dirname(os.path.abspath(input_path))
    conv = Converter(RunContext(options, source, base_dir))
    fd = 0 if input_path == "-" else open_input(input_path)
    written: list[str] = []
    try:
        while True:
            try:
                chunk = os.read(fd, READ_SIZE)
            except OSError as exc:
                raise InputError(f"cannot read JSON input: {exc.strerror}") from None
            outs = conv.feed(chunk) if chunk else conv.finish()
            for out in outs:
                assert isinstance(out, Output)
                written.append(_write_output(out, output_path, options))
            if not chunk:
                return written
    except StreamconvError as exc:
        exc.with_source(source)
        raise
    finally:
        conv.close()
        if fd != 0:
            os.close(fd)


def ts_for(options: ConvertOptions) -> str:
    return (
        EXPLICIT
        if options.transfer_syntax is TransferSyntax.SAME
        else options.transfer_syntax.value
    )
