"""One input -> its outputs: the read loop around :class:`~streamconv.core.pipeline.Converter`.

:func:`convert_file_sync` is json2dcm's path (no event loop: importing asyncio and anyio's
backend costs more than converting a header); :func:`convert_file` is the same under anyio,
and hands ``--array-split`` to the worker-process engine (:mod:`streamconv.fanout`).
Both return the paths written.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator

from .core.pipeline import Converter, Output, RunContext
from .errors import InputError, OutputError, StreamconvError
from .options import ArrayPolicy, ConvertOptions
from .sinks import write_output

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["READ_SIZE", "convert_file", "convert_file_sync", "open_input", "read_chunks"]

READ_SIZE = 1 << 20


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


def _make_output_dir(path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output directory '{path}': {exc.strerror}") from None


class _Input:
    """The input: stdin, a file, or an http(s) URL under +Bh (CONTRACT §5)."""

    def __init__(self, input_path: str, options: ConvertOptions) -> None:
        self.source = "stdin" if input_path == "-" else input_path
        self.base_dir: str | None = None
        self.base_url: str | None = None
        self.url: Any = None
        if input_path[:8].lower().startswith(("http://", "https://")):
            from .httpinput import UrlInput  # the HTTP stack only for a URL input

            self.base_url = input_path  # relative BulkDataURIs resolve against it
            self.url = UrlInput(input_path, options.http)
            self.fd = self.url.fd
        elif input_path == "-":
            self.fd = 0
        else:
            self.base_dir = os.path.dirname(os.path.abspath(input_path))
            self.fd = open_input(input_path)

    def run(self, options: ConvertOptions) -> RunContext:
        run = RunContext(options, self.source, self.base_dir)
        run.base_url = self.base_url
        return run

    def __enter__(self) -> _Input:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        self.close(exc if isinstance(exc, StreamconvError) else None)

    def close(self, failure: StreamconvError | None = None) -> None:
        """Close the input; a URL's fetch error wins over what the parser saw (a cut)."""
        if self.url is not None:
            error = self.url.close()
            if error is not None and failure is not None:
                raise error.with_source(self.source) from None
        elif self.fd != 0:
            os.close(self.fd)


async def convert_file(
    input_path: str, output_path: str, options: ConvertOptions, *, resume: bool = False
) -> list[str]:
    """The one-shot pipeline: one input, one output (or a directory with --array-split).

    Returns the paths of the outputs, in input order.  ``resume`` (--array-split only): a
    dataset whose output file exists is not converted again; its path is returned too.
    """
    import anyio
    import anyio.to_thread

    if options.array_policy is ArrayPolicy.SPLIT and output_path != "-":
        await anyio.to_thread.run_sync(_make_output_dir, output_path)
    with _Input(input_path, options) as inp:
        return await _convert_file(inp, output_path, options, resume=resume)


async def _convert_file(
    inp: _Input, output_path: str, options: ConvertOptions, *, resume: bool = False
) -> list[str]:
    import anyio
    import anyio.to_thread

    source, base_dir, fd = inp.source, inp.base_dir, inp.fd
    run = inp.run(options)
    if options.array_policy is ArrayPolicy.SPLIT and output_path != "-":
        # one file per dataset: the stream engine, with conversion in worker processes
        from .fanout import convert_stream

        try:
            summary = await convert_stream(
                fd,
                output_path,
                options,
                source=source,
                base_dir=base_dir,
                base_url=inp.base_url,
                fail_fast=True,
                resume=resume,
                collect_paths=True,
            )
        except StreamconvError as exc:
            exc.with_source(source)
            raise
        return summary.paths
    conv = Converter(run)
    written: list[str] = []
    limiter = anyio.CapacityLimiter(1)
    try:
        async for chunk in read_chunks(fd):
            outs = await anyio.to_thread.run_sync(conv.feed, chunk, limiter=limiter)
            for out in outs:
                assert isinstance(out, Output)
                written.append(
                    await anyio.to_thread.run_sync(write_output, out, output_path, options)
                )
        outs = await anyio.to_thread.run_sync(conv.finish, limiter=limiter)
        for out in outs:
            assert isinstance(out, Output)
            written.append(await anyio.to_thread.run_sync(write_output, out, output_path, options))
    except StreamconvError as exc:
        exc.with_source(source)
        raise
    finally:
        conv.close()
    return written


def convert_file_sync(input_path: str, output_path: str, options: ConvertOptions) -> list[str]:
    """:func:`convert_file` without an event loop, for the json2dcm command (not --array-split).

    The same stages (Converter, atomic writer) driven by a plain loop: a one-shot conversion
    of a header takes a few milliseconds, importing asyncio and anyio's backend ~60 ms.
    """
    if options.array_policy is ArrayPolicy.SPLIT:
        raise ValueError("--array-split needs convert_file (worker processes)")
    with _Input(input_path, options) as inp:
        return _convert_sync(inp, output_path, options)


def _convert_sync(inp: _Input, output_path: str, options: ConvertOptions) -> list[str]:
    source, fd = inp.source, inp.fd
    conv = Converter(inp.run(options))
    written: list[str] = []
    try:
        chunk = _read(fd)
        ahead = _read(fd) if 0 < len(chunk) < READ_SIZE else None
        if ahead == b"":
            # the whole input in one read (a header, the usual case): parsed without ijson
            # when it can be (start-up, issue 11); the bytes and messages are the same
            outs = conv.feed_whole(chunk)
            if outs is not None:
                for out in outs:
                    assert isinstance(out, Output)
                    written.append(write_output(out, output_path, options))
                chunk = b""
        while True:
            outs = conv.feed(chunk) if chunk else conv.finish()
            for out in outs:
                assert isinstance(out, Output)
                written.append(write_output(out, output_path, options))
            if not chunk:
                return written
            if ahead is not None:
                chunk, ahead = ahead, None
            else:
                chunk = _read(fd)
    except StreamconvError as exc:
        exc.with_source(source)
        raise
    finally:
        conv.close()


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, READ_SIZE)
    except OSError as exc:
        raise InputError(f"cannot read JSON input: {exc.strerror}") from None
