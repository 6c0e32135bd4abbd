"""The plain Python API: bytes in, results out; no event loop, no engine, no files of its own.

Any engine calls it from its own workers: a Dask task (``streamconv batch`` does), a Spark
``mapInPandas`` function, a Ray ``map_batches`` function, a Beam ``DoFn``.  Everything an
engine has to ship to its workers pickles: the options (:class:`ConvertOptions`, a
NamedTuple), the results (:class:`Converted`, :class:`Failed`) and the exceptions.

    >>> from streamconv.api import convert_bytes, options_from_args
    >>> opts = options_from_args(["+te", "-e"])          # json2dcm's option words
    >>> for r in convert_bytes(data, opts, source="ct.json"):
    ...     if r.ok: save(r.name, r.data)                 # bytes (or a spooled file)
    ...     else: print(r.exit_code, r.category, r.message, r.path)

The outputs are the bytes json2dcm writes for the same input and options (the same
pipeline: :class:`~streamconv.pipeline.Converter` and its per-dataset step).  With
``--array-split`` (``array_policy=ArrayPolicy.SPLIT``) every dataset of an array or NDJSON
input is converted on its own and a failed one does not stop the others; under the other
policies the input is one conversion, as with json2dcm.

:func:`convert_url` is the URL-to-URL form over fsspec (imported only when it is called).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from .errors import ContentError, JSONSyntaxError, StreamconvError, UsageError
from .options import ArrayPolicy, ConvertOptions

if TYPE_CHECKING:
    from .core.pipeline import Output, RunContext

__all__ = [
    "Converted",
    "Failed",
    "Result",
    "convert_bytes",
    "convert_url",
    "iter_outputs",
    "make_options",
    "options_from_args",
    "output_bytes",
]

log = logging.getLogger(__name__)

SPOOL_THRESHOLD = 64 << 20  # an output larger than this comes back as a spooled file
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Converted:
    """One converted dataset.

    ``index``: 0-based position in the input (0 for a one-dataset input, -1 for a ``+ar``
    file); ``name``: the output's relative name (the ``--filename-template`` name under
    ``--array-split``, else ``<source stem>.dcm``); ``data``: the Part 10 bytes, or a
    spooled temporary file (rewound) when larger than ``spool_threshold``.
    """

    index: int
    name: str
    data: bytes | IO[bytes] | None
    sop_instance_uid: str
    warnings: tuple[str, ...] = ()
    size: int = 0
    output: str = ""  # where it was written (convert_url, batch); data is then None

    @property
    def ok(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Failed:
    """One failed dataset (``index`` >= 0) or an input that failed as a whole (``index``
    None): json2dcm's exit code for it, the category, the message and the element path."""

    index: int | None
    exit_code: int
    category: str
    message: str
    path: str
    source: str = ""

    @property
    def ok(self) -> bool:
        return False

    @classmethod
    def from_error(cls, exc: StreamconvError, index: int | None, source: str = "") -> Failed:
        return cls(index, exc.exit_code, exc.category, exc.message, exc.path, source or exc.source)


Result = Converted | Failed


# -- options ---------------------------------------------------------------------------------


def options_from_args(words: Sequence[str], **overrides: Any) -> ConvertOptions:
    """Options from json2dcm's option words (``["+te", "-e", "+Bd", "/data"]``), then
    keyword ``overrides`` (fields of :class:`ConvertOptions`).  Raises UsageError (exit
    code 1) for an unknown option, a conflict or a parameter among the words."""
    from .args import build_options, parse_args

    parsed = parse_args(list(words))
    if parsed.params:
        raise UsageError(f"not an option: '{parsed.params[0]}' (files are not options)")
    options = build_options(parsed)
    return make_options(options, **overrides) if overrides else options


def make_options(base: ConvertOptions | None = None, **fields: Any) -> ConvertOptions:
    """Options from keywords: ``make_options(transfer_syntax=TransferSyntax.LITTLE)``.
    Unknown names raise UsageError (a typo must not be silently ignored)."""
    known = set(ConvertOptions._fields)
    unknown = sorted(set(fields) - known)
    if unknown:
        raise UsageError(f"unknown option field(s): {', '.join(unknown)}")
    base = base if base is not None else ConvertOptions()
    if "bulkdata_dirs" in fields:
        from .core.bulkdata import permitted_dirs

        try:
            fields["bulkdata_dirs"] = permitted_dirs(list(fields["bulkdata_dirs"]))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return base._replace(**fields)


# -- conversion ------------------------------------------------------------------------------


def _stem(source: str) -> str:
    base = source.rstrip("/").rsplit("/", 1)[-1]
    for ext in (".json", ".ndjson", ".jsonl"):
        if base.lower().endswith(ext):
            return base[: -len(ext)]
    return base


def iter_outputs(
    chunks: Iterable[bytes],
    options: ConvertOptions,
    *,
    source: str = "",
    base_dir: str | None = None,
    first_index: int = 0,
    salt: bytes | None = None,
) -> Iterator[tuple[int, Output | StreamconvError]]:
    """The engine-facing generator: ``(index, Output)`` per converted dataset and
    ``(index, error)`` per failure, in input order.  An Output still holds temporary files
    (spilled InlineBinary) until it is written or released: pass it to
    :func:`output_bytes`, :func:`streamconv.pipeline.write_output` or
    :func:`streamconv.pipeline.release`.  An error that ends the input (a broken JSON
    structure, an unreadable bulk file under ``-ar``) comes last, with the index of the
    first dataset it cost, or -1 when it concerns the input as a whole.

    ``first_index`` shifts the indices (a byte range of a larger input starts there);
    ``salt`` fixes the namespace of generated UIDs, so that a task run twice (a worker lost
    and its task recomputed) writes the same UIDs.
    """
    from .core.pipeline import RunContext

    run = RunContext(options, source, base_dir, salt)
    if options.array_policy is ArrayPolicy.SPLIT:
        yield from _iter_split(chunks, run, first_index)
        return
    from .core.framing import chunks_then_end
    from .core.pipeline import Converter

    conv = Converter(run)
    try:
        for chunk in chunks_then_end(chunks):
            outs = conv.feed(chunk) if chunk else conv.finish()
            for out in outs:
                assert not isinstance(out, Exception)
                index = out.index if out.index < 0 else out.index + first_index
                yield index, out  # type: ignore[misc]
    except StreamconvError as exc:
        yield -1, exc.with_source(source)
    finally:
        conv.close()


def _iter_split(
    chunks: Iterable[bytes], run: RunContext, first_index: int
) -> Iterator[tuple[int, Output | StreamconvError]]:
    """--array-split: the stream engine's path (frames of bytes, each parsed and converted
    on its own), so a failed dataset costs that dataset only."""
    from .core.documents import SpillStore, parse_frame
    from .core.framing import Framer, chunks_then_end
    from .core.pipeline import convert_one

    framer = Framer(source=run.source, limits=run.options.limits, check=False)
    try:
        for chunk in chunks_then_end(chunks):
            try:
                frames = framer.feed(chunk) if chunk else framer.finish()
            except StreamconvError as exc:
                # invalid JSON between datasets: those before it still count
                for frame in framer.completed():
                    yield _convert_frame(
                        frame, run, first_index, parse_frame, convert_one, SpillStore
                    )
                # broken JSON costs the dataset it is in (index 0 for a one-dataset file);
                # an input with no value at all fails as a whole
                located = framer.count or isinstance(exc, JSONSyntaxError)
                yield (first_index + framer.count if located else -1), exc.with_source(run.source)
                return
            for frame in frames:
                yield _convert_frame(frame, run, first_index, parse_frame, convert_one, SpillStore)
    finally:
        framer.close()


def _convert_frame(
    frame: Any,
    run: RunContext,
    first_index: int,
    parse_frame: Any,
    convert_one: Any,
    store_cls: Any,
) -> tuple[int, Output | StreamconvError]:
    index = first_index + frame.index
    store = store_cls()
    store.adopt(frame.spills)
    try:
        raw = parse_frame(
            frame.data, frame.index, frame.offset, start=frame.start, source=run.source
        )
        out: Output = convert_one(raw, run, store)
        return index, out
    except StreamconvError as exc:
        if not exc.path.startswith("dataset"):
            exc.path = f"dataset {index + 1}" + (f" {exc.path}" if exc.path else "")
        return index, exc.with_source(run.source)
    except (MemoryError, RecursionError) as exc:
        err = ContentError(f"dataset too large or too deeply nested ({type(exc).__name__})")
        err.path = f"dataset {index + 1}"
        return index, err.with_source(run.source)
    finally:
        # a spill the dataset used was taken over by its output (a temporary piece that
        # release() removes once written); what is left here was never used
        store.discard_all()


def output_bytes(out: Output, spool_threshold: int = SPOOL_THRESHOLD) -> bytes | IO[bytes]:
    """The output's Part 10 bytes (or a rewound spooled file past ``spool_threshold``);
    its temporary files are released."""
    from .core.encode import iter_bytes
    from .core.pipeline import release

    try:
        if out.encoded.size_hint <= spool_threshold:
            return b"".join(iter_bytes(out.encoded))
        import tempfile

        spool = tempfile.SpooledTemporaryFile(max_size=spool_threshold, prefix="streamconv-")  # noqa: SIM115 (returned open)
        for chunk in iter_bytes(out.encoded):
            spool.write(chunk)
        spool.seek(0)
        return spool
    finally:
        release(out)


def output_name(out: Output, index: int, options: ConvertOptions, source: str) -> str:
    """The relative name of an output: the template under --array-split, else the stem."""
    if options.array_policy is ArrayPolicy.SPLIT and index >= 0:
        from .sinks import render_name

        return render_name(options.filename_template, index, out.dataset)
    return (_stem(source) or "output") + ".dcm"


def convert_bytes(
    data: bytes | bytearray | memoryview | Iterable[bytes],
    options: ConvertOptions,
    *,
    source: str = "",
    base_dir: str | None = None,
    spool_threshold: int = SPOOL_THRESHOLD,
) -> list[Result]:
    """Convert one JSON input (bytes, or an iterable of byte chunks) and return one
    :class:`Converted` per output and one :class:`Failed` per failure, in input order.

    Never raises for the input's content: failures are results.  ``source`` names the
    input in messages; ``base_dir`` resolves relative BulkDataURIs (without it they are
    unsupported: 66, as for stdin).
    """
    chunks: Iterable[bytes]
    if isinstance(data, bytes | bytearray | memoryview):
        view = bytes(data)
        chunks = (view[i : i + _CHUNK] for i in range(0, len(view), _CHUNK))
    else:
        chunks = data
    results: list[Result] = []
    for index, item in iter_outputs(chunks, options, source=source, base_dir=base_dir):
        if isinstance(item, StreamconvError):
            results.append(Failed.from_error(item, None if index < 0 else index, source))
            continue
        try:
            name = output_name(item, index, options, source)
        except StreamconvError as exc:
            from .core.pipeline import release

            release(item)
            results.append(Failed.from_error(exc.with_source(source), index, source))
            continue
        uid = item.sop_instance_uid()
        warnings = tuple(item.warnings)
        payload = output_bytes(item, spool_threshold)
        size = len(payload) if isinstance(payload, bytes) else _size_of(payload)
        results.append(Converted(index, name, payload, uid, warnings, size))
    return results


def _size_of(f: IO[bytes]) -> int:
    pos = f.tell()
    end = f.seek(0, os.SEEK_END)
    f.seek(pos)
    return end


def convert_url(
    source: str,
    dest: str,
    options: ConvertOptions,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> list[Result]:
    """URL to URL over fsspec: read ``source`` (``s3://``, ``gs://``, a path, ...), write
    each output atomically at ``dest`` (a file, or the directory under --array-split).

    Returns :class:`Converted` records with ``output`` (the written path or URL) and no
    ``data``.  Local paths need no fsspec.
    """
    from .storage import Store, read_all

    store_opts = dict(storage_options or {})
    src_store = Store.for_url(source, store_opts)
    out_store = Store.for_url(dest, store_opts)
    base_dir = os.path.dirname(os.path.abspath(source)) if src_store.local else None
    try:
        chunks: Iterable[bytes] = [read_all(src_store, source)]
    except StreamconvError as exc:
        return [Failed.from_error(exc.with_source(source), None, source)]
    results: list[Result] = []
    split = options.array_policy is ArrayPolicy.SPLIT
    for index, item in iter_outputs(chunks, options, source=source, base_dir=base_dir):
        if isinstance(item, StreamconvError):
            results.append(Failed.from_error(item, None if index < 0 else index, source))
            continue
        try:
            target = (
                out_store.join(dest, output_name(item, index, options, source)) if split else dest
            )
            uid = item.sop_instance_uid()
            size = out_store.write_output(item, target)
        except StreamconvError as exc:
            results.append(Failed.from_error(exc.with_source(source), index, source))
            continue
        results.append(Converted(index, target, None, uid, tuple(item.warnings), size, target))
    return results
