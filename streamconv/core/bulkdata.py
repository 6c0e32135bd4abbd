"""BulkDataURI resolution: file URIs, offset/length, permitted directories (CONTRACT §5).

Security model: a URI is turned into a path, the path into its realpath, the realpath must
lie inside a permitted directory; the file is then opened without following links and what
was *opened* is verified again (``/proc/self/fd``), so a symlink swapped in between the
check and the open is refused. Only regular files are read: FIFOs, devices and directories
never reach ``read()``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from ..errors import BulkDataAccessError, ContentError, UnsupportedURIError
from .lazyre import lazy_compile

__all__ = [
    "BulkRef",
    "Encapsulated",
    "is_http",
    "iter_chunks",
    "open_verified",
    "permitted_dirs",
    "read_all",
    "resolve_uri",
    "temporary_ref",
]

CHUNK = 1 << 20
# PS3.18 F.2.7 names no host; DCMTK accepts these local names (dcmtk-behavior §6.2).
_LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "ip6-localhost", "::1", "[::1]"})
_SCHEME = lazy_compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_PCT = lazy_compile(r"%(?![0-9A-Fa-f]{2})")


class BulkRef:
    """A byte range of a regular file, read when the output is written (never changed).

    ``dev``/``ino`` pin the file that was checked: a reopen must find the same inode.
    ``temporary`` marks a spill file of streamconv's own (no containment check).
    """

    __slots__ = ("dev", "ino", "length", "offset", "path", "temporary")

    def __init__(
        self,
        path: str,
        offset: int,
        length: int,
        dev: int = 0,
        ino: int = 0,
        temporary: bool = False,
    ) -> None:
        self.path = path
        self.offset = offset
        self.length = length
        self.dev = dev
        self.ino = ino
        self.temporary = temporary

    def __repr__(self) -> str:
        return f"BulkRef({self.path!r}, offset={self.offset}, length={self.length})"


class Encapsulated:
    """An encapsulated Pixel Data value: Basic Offset Table and fragments (PS3.5 A.4).

    ``ts`` is the transfer syntax the server declared ("" until known).
    """

    __slots__ = ("fragments", "offset_table", "ts")

    def __init__(self, offset_table: bytes, fragments: list[bytes | BulkRef], ts: str) -> None:
        self.offset_table = offset_table
        self.fragments = fragments
        self.ts = ts

    def __repr__(self) -> str:
        return f"Encapsulated({len(self.fragments)} fragments, ts={self.ts!r})"


def temporary_ref(path: str, length: int) -> BulkRef:
    """A reference to a temporary file of streamconv's own, pinned to its inode like any other."""
    st = os.stat(path)
    return BulkRef(path, 0, length, st.st_dev, st.st_ino, temporary=True)


def is_http(uri: str, input_is_url: bool) -> bool:
    """An http(s) URI, or a relative reference when the input itself came over http(s)."""
    if uri[:8].lower().startswith(("http://", "https://")):
        return True
    return input_is_url and _SCHEME.match(uri) is None


def permitted_dirs(dirs: list[str]) -> tuple[str, ...]:
    """Normalise +Bd arguments (realpath + trailing separator); raise UsageError-worthy ValueError."""
    out = []
    for d in dirs:
        if not d:
            raise ValueError("Failed to normalize file path: ''")
        real = os.path.realpath(d)
        if not os.path.exists(real):
            raise ValueError(f"Failed to normalize file path: '{d}'")
        out.append(real.rstrip("/") + "/")
    return tuple(out)


def _inside(real: str, dirs: tuple[str, ...]) -> bool:
    return any(real.startswith(d) for d in dirs)


def _pct_decode(text: str, uri: str) -> str:
    # Percent-decoding applied exactly once (CONTRACT §5; DCMTK decodes repeatedly).
    if _PCT.search(text):
        raise ContentError(f"invalid percent-encoding in BulkDataURI '{uri}'")
    from urllib.parse import unquote

    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        # RFC 3986 §2.5: percent-encoded octets of a path are UTF-8 (here: must be)
        raise ContentError(
            f"percent-encoded bytes in BulkDataURI are not valid UTF-8: '{uri}'"
        ) from None


def resolve_uri(
    uri: str,
    *,
    base_dir: str | None,
    dirs: tuple[str, ...],
) -> BulkRef:
    """Turn a BulkDataURI into a verified :class:`BulkRef` (checks containment and size)."""
    m = _SCHEME.match(uri)
    if m is None:
        # A relative reference resolves against the JSON file's directory (RFC 3986 §5.2).
        if base_dir is None:
            raise UnsupportedURIError(
                f"relative BulkDataURI '{uri}' cannot be resolved when reading from stdin"
            )
        rel, _, query = uri.partition("?")
        path = os.path.join(base_dir, _pct_decode(rel, uri))
    else:
        scheme = m.group(0)[:-1].lower()
        if scheme != "file":
            raise UnsupportedURIError(
                f"BulkDataURI scheme '{scheme}' is not supported (only file URIs): '{uri}'"
            )
        rest, _, query = uri[m.end() :].partition("?")
        if rest.startswith("//"):
            host, slash, tail = rest[2:].partition("/")
            if host.lower() not in _LOCAL_HOSTS:
                raise UnsupportedURIError(f"file URIs for network hosts are not supported: '{uri}'")
            rest = slash + tail
        if not rest.startswith("/") or len(rest) < 2:
            raise ContentError(f"file URI without a path: '{uri}'")
        path = _pct_decode(rest, uri)
    offset, length = _parse_query(query, uri)
    if "\x00" in path:
        raise ContentError(f"NUL byte in BulkDataURI path: '{uri}'")
    try:
        real = os.path.realpath(path)
    except OSError as exc:
        # a symlink on the path replaced while realpath() reads it (lstat, then readlink:
        # EINVAL), or a path too long: nothing was opened
        raise BulkDataAccessError(
            f"cannot resolve bulk data path '{path}': {exc.strerror}"
        ) from None
    if not _inside(real, dirs):
        raise BulkDataAccessError(
            f"BulkDataURI refers to a file outside the permitted bulk data directories "
            f"(add one with +Bd): '{path}'",
            transient=False,
        )
    fd = open_verified(real, dirs)
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    size = st.st_size
    if offset > size:
        raise ContentError(
            f"bulk data file too short: '{real}' has {size} bytes, offset is {offset}"
        )
    if length is None:
        length = size - offset  # offset without length: to the end of the file
    elif offset + length > size:
        raise ContentError(
            f"bulk data file too short: '{real}', expected {offset + length} bytes "
            f"but only found {size}"
        )
    return BulkRef(real, offset, length, st.st_dev, st.st_ino)


def _parse_query(query: str, uri: str) -> tuple[int, int | None]:
    offset, length = 0, None
    if not query:
        return offset, length
    for part in query.split("&"):
        if not part:
            continue
        name, eq, value = _pct_decode(part, uri).partition("=")
        if name not in ("offset", "length") or not eq:
            raise ContentError(f"file URI with unsupported parameter '{part}': '{uri}'")
        if not value.isdigit() or not value.isascii() or len(value) > 19:
            raise ContentError(f"invalid value for URI parameter '{name}': '{value}'")
        if name == "offset":
            offset = int(value)
        else:
            length = int(value)
    return offset, length


def open_verified(real: str, dirs: tuple[str, ...], ref: BulkRef | None = None) -> int:
    """Open ``real`` read-only without following links; verify it is a permitted regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in must not block the open
    try:
        fd = os.open(real, flags)
    except FileNotFoundError:
        raise BulkDataAccessError(f"bulk data file not found: '{real}'") from None
    except OSError as exc:
        raise BulkDataAccessError(f"cannot open bulk data file '{real}': {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BulkDataAccessError(
                f"bulk data path is not a regular file: '{real}'", transient=False
            )
        if ref is not None and (st.st_dev, st.st_ino) != (ref.dev, ref.ino):
            raise BulkDataAccessError(f"bulk data file was replaced while converting: '{real}'")
        if ref is None or not ref.temporary:
            try:
                opened = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                opened = real
            if not _inside(opened, dirs):
                raise BulkDataAccessError(
                    f"BulkDataURI refers to a file outside the permitted bulk data directories: '{real}'",
                    transient=False,
                )
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def iter_chunks(ref: BulkRef, dirs: tuple[str, ...], chunk: int = CHUNK) -> Iterator[bytes]:
    """Yield the referenced bytes in chunks (re-verified at open time)."""
    fd = open_verified(ref.path, dirs, ref)
    try:
        pos, end = ref.offset, ref.offset + ref.length
        while pos < end:
            data = os.pread(fd, min(chunk, end - pos), pos)
            if not data:
                raise BulkDataAccessError(f"bulk data file shrank while reading: '{ref.path}'")
            pos += len(data)
            yield data
    finally:
        os.close(fd)


def read_all(ref: BulkRef, dirs: tuple[str, ...]) -> bytes:
    return b"".join(iter_chunks(ref, dirs))


def remove_temporaries(paths: list[str]) -> None:
    """Unlink fetched values' files of a dataset that failed (gone already is fine)."""
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass
