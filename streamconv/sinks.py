"""Where output goes: an atomic file, stdout, or a directory with a file-name template.

Atomic file (daemon-conventions §4): ``.NAME.p<pid>.<random>.part`` in the target
directory, written, fsynced, renamed over the final name, then the directory fsynced.  On
any failure the temporary file is removed and an existing file at the final path is
untouched.  A process killed while writing (kill -9, out of memory) cannot remove its
temporary: the writer's pid in the name lets whoever comes next (a rerun, the parent of a
dead worker) tell a dead writer's leftover from a live writer's file (:func:`sweep_parts`).
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterable, Iterator

from .core.encode import Encoded, gather, iter_bytes
from .core.lazyre import lazy_compile
from .core.pipeline import Output, release
from .core.vr import Element
from .errors import ContentError, OutputError, StreamconvError
from .options import ArrayPolicy, ConvertOptions

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from typing import Any, BinaryIO

__all__ = [
    "PART_SUFFIX",
    "claim_std_fds",
    "fsync_dir",
    "output_path",
    "part_name",
    "part_writer",
    "rename_noreplace",
    "render_name",
    "sweep_parts",
    "syncfs",
    "write_atomic",
    "write_output",
    "write_stdout",
]

PART_SUFFIX = ".part"
_SAFE = lazy_compile(r"[^A-Za-z0-9._-]")
# .NAME.<host>-p<pid>.<12 hex>.part (the daemon's older pattern, .NAME.<12 hex>.part,
# matches it too).  The host name tells containers (pid namespaces) and hosts sharing an
# output folder apart: a pid is only looked up on the host that wrote it.
_PART = lazy_compile(r"^\..+\.([A-Za-z0-9_]*)-p([0-9]+)\.[0-9a-f]{12}\.part$")
# (what re.sub(r"[^A-Za-z0-9_]", "_", name) gives, without compiling a pattern at start-up)
_HOST = "".join(
    c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in os.uname().nodename
)[:32]


def part_name(name: str) -> str:
    """The temporary name for ``name``: hidden, unique, naming its writer (host and pid)."""
    return f".{name}.{_HOST}-p{os.getpid()}.{os.urandom(6).hex()}{PART_SUFFIX}"


def part_writer(filename: str) -> int | None:
    """The pid of the process on this host writing the temporary ``filename``; None if it
    is not one of ours, or was written on another host (whose pids we cannot look up)."""
    m = _PART.match(filename)
    return int(m.group(2)) if m and m.group(1) == _HOST else None


def _alive(pid: int) -> bool:
    """Whether ``pid`` can still write: it exists and is not a zombie (a process killed
    a moment ago may wait to be reaped; it writes nothing any more)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: assume alive (never remove a live writer's file)
    return state not in (b"Z", b"X")


def sweep_parts(root: str, *, pids: Iterable[int] | None = None) -> list[str]:
    """Remove the temporaries under ``root`` (and its sub-folders) whose writer is dead.

    ``pids``: only those writers' (known to be dead: a worker this process saw die).
    Otherwise every temporary whose writer pid no longer exists on this host.  A live
    writer's file is never touched (pids are of this host: an output folder shared over the
    network between hosts is not supported).  Returns the paths removed; errors reading a
    folder are ignored (the run reports them when it writes there).
    """
    only = set(pids) if pids is not None else None
    removed: list[str] = []
    for entry in iter_files(root):
        pid = part_writer(entry.name)
        if pid is None or (only is not None and pid not in only):
            continue
        if pid == os.getpid() or (only is None and _alive(pid)):
            continue
        try:
            os.unlink(entry.path)
            removed.append(entry.path)
        except OSError:
            pass  # gone already, or a read-only folder: nothing to do about it here
    return removed


def iter_files(root: str) -> Iterator[os.DirEntry[str]]:
    """Every entry under ``root`` that is not a folder, by name only (scandir: no stat per
    file, so a 20,000-file folder is walked in ~20 ms); unreadable folders are skipped."""
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                    continue
            except OSError:
                continue
            yield entry


def claim_std_fds() -> tuple[bool, bool, bool]:
    """Which of stdin, stdout, stderr were closed when the process started; each closed one
    is opened on /dev/null, so no file opened later takes its number (output meant for
    stdout must never land in a file opened as fd 1).  sys.stdout stays None: writing to
    "-" then fails with exit 40 (issue 10 row 10); logging to a closed stderr goes nowhere.
    """
    closed = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:  # pragma: no cover - the lowest free number is fd
                os.dup2(null, fd)
                os.close(null)
            closed.append(True)
        else:
            closed.append(False)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    return closed[0], closed[1], closed[2]


def fsync_dir(path: str) -> None:
    fd = os.open(path or ".", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def syncfs(path: str) -> None:
    """Flush the filesystem holding ``path`` (syncfs(2); os.sync where it is missing).

    One call makes a whole batch of renamed files durable: far cheaper than two fsyncs
    per file (measured here: ~10 ms per file with fsyncs).
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path or ".", os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    os.sync()


def _output_error(exc: OSError, path: str) -> OutputError:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        reason = "no space left on device"
    err = OutputError(f"cannot write '{path}': {reason}")
    err.errno = exc.errno  # the fact callers decide on (the daemon pauses on ENOSPC/EDQUOT)
    return err


def write_atomic(
    path: str,
    chunks: Iterable[bytes],
    *,
    fsync: bool = True,
    sync_dir: bool = True,
    mode: int = 0o666,
    tag: str = "",
    replace: bool = True,
) -> int:
    """Write ``chunks`` to ``path`` atomically; returns the number of bytes written.

    ``fsync``: the data is on disk before the rename, so a crash leaves the old file or the
    whole new one, never an empty or torn one; ``sync_dir`` also makes the rename itself
    durable (one more fsync: ~15 ms on this machine's virtual disk).

    ``tag`` marks the temporary (``.NAME.<tag>.<hex>.part``, still matched by the
    ``.NAME.<hex>.part`` pattern every cleanup uses) so that the owner of a dead writer can
    remove exactly its temporaries.  ``replace=False`` publishes with ``link(2)``, which never
    replaces: an existing ``path`` raises :class:`OutputError` with ``errno`` EEXIST (the
    daemon's collision policy); where hard links are not supported, a check and a rename.
    """
    directory, name = os.path.split(path)
    directory = directory or "."
    # replace=True: rename(2) onto a directory fails with EISDIR (caught below), so no stat
    # here (one syscall fewer per output of a stream); link(2) would give EEXIST instead
    if not replace and os.path.isdir(path):
        raise OutputError(f"cannot write '{path}': is a directory")
    if tag:  # the daemon's: its owner removes a dead writer's temporaries by the tag
        tmp = os.path.join(directory, f".{name}.{tag}.{os.urandom(6).hex()}{PART_SUFFIX}")
    else:  # the writer's host and pid: a rerun removes a dead writer's (sweep_parts)
        tmp = os.path.join(directory, part_name(name))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as exc:
        raise _output_error(exc, path) from None
    written = 0
    try:
        # plain os.write on the descriptor: os.fdopen would fstat(2) it (one syscall per
        # output; a stream writes thousands of small files)
        try:
            for chunk in gather(chunks):
                written += _write_fd(fd, chunk)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            try:
                os.replace(tmp, path)
            except IsADirectoryError:
                _unlink(tmp)
                raise OutputError(f"cannot write '{path}': is a directory") from None
        else:
            _publish_new(tmp, path)
    except OSError as exc:
        _unlink(tmp)
        raise _output_error(exc, path) from None
    except BaseException:
        _unlink(tmp)
        raise
    if fsync and sync_dir:
        fsync_dir(directory)
    return written


def _publish_new(tmp: str, path: str) -> None:
    """Rename *tmp* to *path* unless *path* exists (EEXIST): ``renameat2(RENAME_NOREPLACE)``
    (one call, atomic), or a hard link and the temp removed where that is missing."""
    try:
        rename_noreplace(tmp, path, fallback=False)
        return
    except NotImplementedError:
        pass
    try:
        os.link(tmp, path)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # no hard links here (vfat, some FUSE): check, then rename (a race may replace)
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "output exists", path) from None
        os.replace(tmp, path)
        return
    _unlink(tmp)  # published: a temp that cannot be removed is not a failed write


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
_renameat2: Any = None


def rename_noreplace(src: str, dst: str, *, fallback: bool = True) -> None:
    """``rename(src, dst)`` that raises FileExistsError instead of replacing *dst*: Linux
    ``renameat2(RENAME_NOREPLACE)``, atomic.  Where the kernel or the filesystem lacks it:
    with *fallback* a check and a rename (a race may replace), else NotImplementedError."""
    global _renameat2
    if _renameat2 is None:
        _renameat2 = False
        try:
            import ctypes

            fn = ctypes.CDLL(None, use_errno=True).renameat2
            fn.argtypes = [
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_uint,
            ]
            _renameat2 = fn
        except (OSError, AttributeError):
            pass
    if _renameat2:
        import ctypes

        if (
            _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
            == 0
        ):
            return
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            raise FileExistsError(code, os.strerror(code), dst)
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), dst)
    if not fallback:
        raise NotImplementedError("renameat2(RENAME_NOREPLACE)")
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    os.rename(src, dst)


def _write_all(f: BinaryIO, data: bytes) -> int:
    view = memoryview(data)
    while view:
        n = f.write(view)
        assert n is not None
        view = view[n:]
    return len(data)


def _write_fd(fd: int, data: bytes) -> int:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    return len(data)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def write_stdout(enc: Encoded, stream: BinaryIO | None = None) -> int:
    """Write to stdout (or ``stream``) only once the whole output exists (CONTRACT §2).

    Every byte is accounted for: a short write is continued, and a reader that went away
    (``| head -c 100``: EPIPE) or a closed stdout is an output error (exit 40), never a
    success with part of the file delivered (issue 10 rows 2 and 10).
    """
    if stream is None:
        if sys.stdout is None:  # closed when the process started (claim_std_fds)
            raise OutputError("cannot write to standard output: it is closed")
        try:
            sys.stdout.flush()  # nothing of ours is in it, but keep any order
        except OSError as exc:
            raise _output_error(exc, "standard output") from None
        fd = sys.stdout.fileno()

        def put(data: bytes) -> None:
            view = memoryview(data)
            while view:  # os.write: a pipe takes 64 KiB at a time
                view = view[os.write(fd, view) :]
    else:

        def put(data: bytes) -> None:
            _write_all(stream, data)

    def send(data: bytes) -> int:
        try:
            put(data)
        except BrokenPipeError:
            raise OutputError(
                "cannot write to standard output: the reader closed the pipe before the"
                " whole output was written (broken pipe)"
            ) from None
        except OSError as exc:
            raise _output_error(exc, "standard output") from None
        return len(data)

    if all(isinstance(p, bytes) for p in enc.body) and enc.deflate_level is None:
        total = send(b"".join(iter_bytes(enc)))
    else:
        import tempfile  # lazily: start-up

        with tempfile.TemporaryFile(prefix="streamconv-stdout-") as spool:
            for chunk in iter_bytes(enc):
                spool.write(chunk)
            spool.seek(0)
            total = 0
            while data := spool.read(1 << 20):
                total += send(data)
    if stream is not None:
        try:
            stream.flush()
        except OSError as exc:
            raise _output_error(exc, "standard output") from None
    return total


def _field_value(ds: dict[int, Element], keyword: str) -> str | None:
    from .core.dictionary import get_dictionary

    tag = get_dictionary().tag_for_keyword(keyword)
    if tag is None:
        raise ContentError(f"--filename-template: '{keyword}' is not a DICOM keyword")
    elem = ds.get(tag)
    if elem is None or elem.value is None or isinstance(elem.value, list):
        return None
    value = elem.value
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return value.split("\\")[0].strip(" \x00") or None


def _safe(text: str) -> str:
    # nothing in a value may leave the output directory: no separators, no '..'
    text = _SAFE.sub("_", text)
    if text in ("", ".", ".."):
        text = text.replace(".", "_") or "_"
    return text[:200]


def names_by_index(template: str, *, also: frozenset[str] = frozenset()) -> bool:
    """Whether ``template`` names each dataset by its index (``{index}``/``{index1}``, plus
    the fields in ``also``) and nothing else: such names never repeat, while names from
    keywords, or a template without the index, can (and need checking, with memory)."""
    import string

    fields = {f for _, f, _, _ in string.Formatter().parse(template)}
    return fields <= {None, "index", "index1", *also} and bool(fields & {"index", "index1"})


def render_name(template: str, index: int, ds: dict[int, Element]) -> str:
    """The relative output path for dataset ``index`` (0-based) from ``template``."""
    parts: list[str] = []
    try:
        import string  # here: only a file-name template needs it (start-up)

        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise StreamconvError(f"invalid --filename-template '{template}': {exc}") from None
    for literal, field, spec, conv in parsed:
        parts.append(literal)
        if field is None:
            continue
        if conv:
            raise ContentError(
                f"invalid --filename-template '{template}': conversions are not allowed"
            )
        if field == "index":
            value: object = index
        elif field == "index1":
            value = index + 1
        else:
            text = _field_value(ds, field)
            if text is None:
                raise ContentError(
                    f"--filename-template needs {field}, which dataset {index + 1} does not have"
                )
            value = _safe(text)
        try:
            parts.append(format(value, spec or ""))
        except (ValueError, TypeError) as exc:
            raise ContentError(f"invalid --filename-template '{template}': {exc}") from None
    rel = "".join(parts)
    pieces = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
    if not pieces or any(p == ".." for p in pieces):
        raise ContentError(f"--filename-template produced an unsafe name '{rel}'")
    return os.path.join(*pieces)


def write_output(out: Output, target: str, options: ConvertOptions, *, fsync: bool = True) -> str:
    """Write one output (blocking): ``target`` is a file, "-", or the --array-split directory.

    ``fsync=False`` leaves durability to the caller (the stream engine syncs the
    filesystem once per batch instead of twice per file).
    """
    return _write_output(out, target, options, fsync)


def output_path(out: Output, target: str, options: ConvertOptions) -> str:
    """Where :func:`write_output` puts ``out`` (the name from the template, with
    --array-split): what ``--resume`` looks for."""
    if options.array_policy is ArrayPolicy.SPLIT and out.index >= 0:
        return os.path.join(target, render_name(options.filename_template, out.index, out.dataset))
    return target


_SEEN_DIRS: set[str] = set()  # output folders known to exist (see _write_output)


def _make_parent(parent: str) -> None:
    if not os.path.isdir(parent):
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create directory '{parent}': {exc.strerror}") from None
    if len(_SEEN_DIRS) < 64:
        _SEEN_DIRS.add(parent)


def _write_output(out: Output, target: str, options: ConvertOptions, fsync: bool = True) -> str:
    try:
        if options.array_policy is ArrayPolicy.SPLIT and out.index >= 0:
            path = output_path(out, target, options)
            parent = os.path.dirname(path)
            # the output folder is looked at once per process, not once per dataset (a
            # stat(2) per output); one removed since then is made again when the write
            # finds it missing (ENOENT)
            if parent and parent not in _SEEN_DIRS:
                _make_parent(parent)
            try:
                write_atomic(path, iter_bytes(out.encoded), fsync=fsync, sync_dir=False)
            except OutputError as exc:
                if exc.errno != errno.ENOENT or parent not in _SEEN_DIRS:
                    raise
                _SEEN_DIRS.discard(parent)
                _make_parent(parent)
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
