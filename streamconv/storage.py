"""Where bytes live: a local path (plain os calls) or a URL (fsspec, imported lazily).

One small class so that the planner, the tasks and :func:`streamconv.api.convert_url` read
and write every backend the same way.  Writes are atomic on every backend:

- local paths: the one atomic writer (:func:`streamconv.sinks.write_atomic`: a hidden
  ``.NAME.<12 hex>.part`` beside the output, renamed into place);
- object stores (S3, GCS, Azure, memory): one PUT, or a multipart upload for large outputs;
  both make the object visible only once it is complete (an interrupted multipart upload is
  invisible; a bucket lifecycle rule "abort incomplete multipart uploads" removes its parts);
- any other fsspec backend: a hidden temporary name in the same folder, then a move.

A killed worker can leave a local ``.part`` file behind (never under the final name):
:meth:`Store.sweep` removes them once the run is over.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .errors import InputError, OutputError, StreamconvError

if TYPE_CHECKING:
    from .core.pipeline import Output

__all__ = ["Store", "is_url", "read_all"]

READ_SIZE = 8 << 20
_PUT_MAX = 64 << 20  # larger outputs are streamed (multipart upload on object stores)
# object stores whose writes are atomic (an object appears whole or not at all)
_ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory"})
# sinks.write_atomic's temporary names, and our own on other backends
TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{12}\.part$")


# fsspec backends raise their own exception types (botocore's, aiohttp's, ...) besides
# OSError: every one of them is a failed input or output, never a traceback
_ERRORS = (Exception,)


def is_url(text: str) -> bool:
    head, sep, _ = text.partition("://")
    return bool(sep) and head.isascii() and head.replace("+", "").isalnum() and len(head) > 1


class Store:
    """A local filesystem (``fs`` None) or an fsspec filesystem for one protocol."""

    __slots__ = ("_dirs", "fs", "local", "protocol")

    def __init__(self, fs: Any, protocol: str) -> None:
        self.fs = fs
        self.protocol = protocol
        self.local = fs is None
        self._dirs: set[str] = set()  # local folders known to exist (one stat per output less)

    @classmethod
    def for_url(cls, url: str, storage_options: Mapping[str, Any] | None = None) -> Store:
        if not is_url(url) or url.startswith("file://"):
            return cls(None, "file")
        protocol = url.split("://", 1)[0]
        try:
            import fsspec
        except ImportError:
            raise InputError(
                f"cannot open '{url}': URLs need fsspec: pip install 'streamconv[dask]'"
            ) from None
        try:
            fs = fsspec.filesystem(protocol, **dict(storage_options or {}))
        except (ImportError, ValueError) as exc:
            raise InputError(
                f"cannot open '{url}': no filesystem for '{protocol}://' ({exc})"
            ) from None
        return cls(fs, protocol)

    # -- names ---------------------------------------------------------------------------
    def local_path(self, url: str) -> str:
        return url[len("file://") :] if url.startswith("file://") else url

    def join(self, base: str, rel: str) -> str:
        if self.local:
            return os.path.join(self.local_path(base), *rel.split("/"))
        return base.rstrip("/") + "/" + rel

    def full(self, path: str) -> str:
        """An fsspec path (without protocol) as a URL."""
        if self.local:
            return path
        return str(self.fs.unstrip_protocol(path))

    # -- reading -------------------------------------------------------------------------
    def size(self, url: str) -> int:
        try:
            if self.local:
                return os.stat(self.local_path(url)).st_size
            return int(self.fs.size(url))
        except StreamconvError:
            raise
        except _ERRORS as exc:
            raise InputError(f"cannot read JSON input '{url}': {_reason(exc)}") from None

    def read_range(self, url: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of ``url`` (one ranged GET on object stores)."""
        try:
            if self.local:
                with open(self.local_path(url), "rb") as f:
                    f.seek(start)
                    return f.read(end - start)
            return bytes(self.fs.cat_file(url, start=start, end=end))
        except StreamconvError:
            raise
        except _ERRORS as exc:
            raise InputError(f"cannot read JSON input '{url}': {_reason(exc)}") from None

    def chunks(self, url: str, size: int = READ_SIZE) -> Iterator[bytes]:
        try:
            if self.local:
                path = self.local_path(url)
                if os.path.isdir(path):
                    raise InputError(f"cannot read JSON input '{url}': is a directory")
                f = open(path, "rb")  # noqa: SIM115 (closed below, generator)
            else:
                f = self.fs.open(url, "rb", block_size=size)
            with f:
                while data := f.read(size):
                    yield data
        except StreamconvError:
            raise
        except _ERRORS as exc:
            raise InputError(f"cannot read JSON input '{url}': {_reason(exc)}") from None

    def find(self, prefix: str) -> dict[str, int]:
        """Every file under ``prefix`` with its size (URLs keep their protocol)."""
        found: dict[str, int] = {}
        if self.local:
            root = self.local_path(prefix)
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames.sort()
                for name in filenames:
                    path = os.path.join(dirpath, name)
                    try:
                        found[path] = os.stat(path).st_size
                    except OSError:
                        continue
            return found
        try:
            for path, info in self.fs.find(prefix, detail=True).items():
                if info.get("type", "file") == "file":
                    found[self.full(path)] = int(info.get("size") or 0)
        except FileNotFoundError:
            return {}
        except StreamconvError:
            raise
        except _ERRORS as exc:
            raise InputError(f"cannot list '{prefix}': {_reason(exc)}") from None
        return found

    def glob(self, pattern: str) -> dict[str, int]:
        if self.local:
            import glob

            return {
                p: os.stat(p).st_size
                for p in sorted(glob.glob(pattern, recursive=True))
                if os.path.isfile(p)
            }
        found: dict[str, int] = {}
        try:
            matches = self.fs.glob(pattern, detail=True)
        except StreamconvError:
            raise
        except _ERRORS as exc:
            raise InputError(f"cannot list '{pattern}': {_reason(exc)}") from None
        for path, info in matches.items():
            if info.get("type", "file") == "file":
                found[self.full(path)] = int(info.get("size") or 0)
        return found

    def isdir(self, url: str) -> bool:
        if self.local:
            return os.path.isdir(self.local_path(url))
        try:
            return bool(self.fs.isdir(url))
        except _ERRORS:
            return False

    def exists(self, url: str) -> bool:
        if self.local:
            return os.path.exists(self.local_path(url))
        try:
            return bool(self.fs.exists(url))
        except _ERRORS:
            return False

    # -- writing -------------------------------------------------------------------------
    def makedirs(self, url: str) -> None:
        try:
            if self.local:
                path = self.local_path(url)
                os.makedirs(path, exist_ok=True)
                if not os.access(path, os.W_OK | os.X_OK):
                    raise OutputError(f"cannot write to '{url}': permission denied")
            else:
                self.fs.makedirs(url, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create '{url}': {_reason(exc)}") from None

    def write_output(self, out: Output, target: str) -> int:
        """Write one output atomically at ``target``; its temporaries are released."""
        from .core.encode import iter_bytes
        from .core.pipeline import release

        try:
            return self.write_chunks(target, iter_bytes(out.encoded), out.encoded.size_hint)
        finally:
            release(out)

    def write_chunks(self, target: str, chunks: Iterator[bytes], size_hint: int = 0) -> int:
        if self.local:
            from .sinks import write_atomic

            path = self.local_path(target)
            parent = os.path.dirname(path)
            if parent and parent not in self._dirs:
                if not os.path.isdir(parent):
                    try:
                        os.makedirs(parent, exist_ok=True)
                    except OSError as exc:
                        raise OutputError(
                            f"cannot create directory '{parent}': {_reason(exc)}"
                        ) from None
                if len(self._dirs) < 1024:  # a bound: one folder per input is common
                    self._dirs.add(parent)
            # made durable by one syncfs per task (Store.sync), not two fsyncs per file
            return write_atomic(path, chunks, fsync=False, sync_dir=False)
        try:
            if self.protocol in _ATOMIC_PUT:
                if size_hint <= _PUT_MAX:
                    data = b"".join(chunks)
                    self.fs.pipe_file(target, data)
                    return len(data)
                return self._stream(target, chunks)
            # elsewhere: a hidden temporary name, then a move
            parent, _, name = target.rpartition("/")
            tmp = f"{parent}/.{name}.{os.urandom(6).hex()}.part"
            try:
                n = self._stream(tmp, chunks)
                self.fs.mv(tmp, target)
            except BaseException:
                try:
                    self.fs.rm(tmp)
                except _ERRORS:
                    pass
                raise
            return n
        except StreamconvError:
            raise
        except _ERRORS as exc:
            raise OutputError(f"cannot write '{target}': {_reason(exc)}") from None

    def _stream(self, target: str, chunks: Iterator[bytes]) -> int:
        n = 0
        with self.fs.open(target, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                n += len(chunk)
        return n

    def write_text(self, target: str, text: str) -> None:
        data = text.encode("utf-8")
        self.write_chunks(target, iter([data]), len(data))

    def sync(self, url: str) -> None:
        """Make what was written under ``url`` durable (local: one syncfs)."""
        if self.local:
            from .sinks import syncfs

            syncfs(self.local_path(url))

    def sweep(self, url: str) -> int:
        """Remove temporaries a killed writer left under ``url``; returns how many."""
        if self.local:
            return _sweep_local(self.local_path(url))
        removed = 0
        for path in self.find(url):
            name = path.rstrip("/").rsplit("/", 1)[-1]
            if TEMP_NAME.match(name):
                try:
                    self.fs.rm(path)
                    removed += 1
                except _ERRORS:
                    pass
        return removed


def _sweep_local(root: str) -> int:
    """Names only, no stat per file: a 20,000-file DEST is swept in ~20 ms, not ~90."""
    from .sinks import iter_files

    removed = 0
    for entry in iter_files(root):
        if TEMP_NAME.match(entry.name):
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                continue
    return removed


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def read_all(store: Store, url: str) -> bytes:
    return b"".join(store.chunks(url))
