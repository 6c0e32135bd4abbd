"""Claims and recovery: who owns an input in processing/, and what a dead daemon left.

Every daemon claims inputs into its own ``processing/HOST.PID.RANDOM/``, locked with ``flock``
(the kernel drops the lock when the daemon dies, however it dies).  A claim folder whose lock
is free belongs to a dead daemon: another daemon adopts it and converts its inputs again,
which the deterministic output names make idempotent (daemon-conventions §7).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import re
import secrets
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..sinks import fsync_dir, rename_noreplace
from .config import InboxConfig, WatchConfig
from .events import PROBE_RE

__all__ = [
    "LOCK_NAME",
    "TEMP_MAX_IDLE",
    "TEMP_RE",
    "ClaimDir",
    "Recovery",
    "claim_entry",
    "claimed_names",
    "make_claim_dir",
    "prepare_inbox",
    "recover",
    "release_claim",
    "remove_temps",
    "remove_temps_of",
    "temp_pattern",
    "temp_tag",
]

LOCK_NAME = ".lock"
#: Temporaries of another live daemon sharing the output folder are left alone unless idle
#: this long (a temp being written is touched continuously).
TEMP_MAX_IDLE = 600.0
TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{12}\.part$")


@dataclass(slots=True, eq=False)
class ClaimDir:
    """A folder under processing/ and the flock that says its daemon is alive."""

    path: str
    fd: int
    own: bool

    def release(self, *, remove: bool) -> bool:
        """Drop the lock; with *remove*, delete the folder if nothing but the lock is left."""
        removed = False
        if remove:
            try:
                names = [n for n in os.listdir(self.path) if n != LOCK_NAME]
                if not names:
                    os.unlink(os.path.join(self.path, LOCK_NAME))
                    os.rmdir(self.path)
                    fsync_dir(os.path.dirname(self.path))
                    removed = True
            except OSError:
                pass
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1
        return removed


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "host"


def make_claim_dir(processing: str) -> ClaimDir:
    """This daemon's ``processing/HOST.PID.RANDOM/``, locked before it becomes visible."""
    os.makedirs(processing, exist_ok=True)
    ident = f"{_host()}.{os.getpid()}.{secrets.token_hex(3)}"
    hidden = os.path.join(processing, "." + ident)
    os.mkdir(hidden)
    fd = os.open(os.path.join(hidden, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    os.write(fd, f"pid={os.getpid()} host={socket.gethostname()} started={started}\n".encode())
    path = os.path.join(processing, ident)
    os.rename(hidden, path)
    fsync_dir(processing)
    return ClaimDir(path, fd, own=True)


@dataclass(slots=True)
class Recovery:
    adopted: list[ClaimDir] = field(default_factory=list)
    loose: list[str] = field(default_factory=list)  # files directly in processing/, now ours
    live_others: int = 0


def recover(processing: str, own: ClaimDir, known: Iterable[str]) -> Recovery:
    """Adopt the claim folders of dead daemons (their lock is free) and loose files."""
    rec = Recovery()
    skip = {own.path, *known}
    try:
        entries = list(os.scandir(processing))
    except FileNotFoundError:
        return rec
    for entry in entries:
        path = entry.path
        if path in skip:
            continue
        if entry.name.startswith("."):
            # a claim folder half made by a daemon that died while starting: empty but the lock.
            # One made this minute may be a daemon starting right now, between its mkdir and
            # its flock (two daemons started at once): not ours to touch
            if entry.is_dir(follow_symlinks=False) and _older_than(path, HALF_MADE_GRACE):
                claim = _try_lock(path)
                if claim is not None:
                    claim.release(remove=True)
            continue
        if entry.is_dir(follow_symlinks=False):
            claim = _try_lock(path)
            if claim is None:
                rec.live_others += 1
            else:
                rec.adopted.append(claim)
        elif entry.is_file(follow_symlinks=False):
            dst = os.path.join(own.path, entry.name)
            if not os.path.lexists(dst):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(path, dst)
                    rec.loose.append(entry.name)
    return rec


HALF_MADE_GRACE = 60.0  # seconds: a starting daemon renames its claim folder within ms


def _older_than(path: str, seconds: float) -> bool:
    try:
        return time.time() - os.lstat(path).st_mtime > seconds
    except OSError:
        return False


def _try_lock(path: str) -> ClaimDir | None:
    try:
        fd = os.open(os.path.join(path, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return ClaimDir(path, fd, own=False)


def remove_temps(
    roots: Iterable[tuple[str, bool]],
    *,
    min_idle: float,
    prefix: str = "",
    pattern: re.Pattern[str] = TEMP_RE,
) -> int:
    """Delete ``.NAME.<hex>.part`` temporaries (or other names of *pattern*) under each
    (root, recursive) idle >= *min_idle*."""
    removed = 0
    now = time.time()
    for root, recursive in roots:
        walker: Iterator[tuple[str, list[str], list[str]]]
        if recursive:
            walker = os.walk(root)
        else:
            try:
                walker = iter([(root, [], os.listdir(root))])
            except OSError:
                continue
        for folder, _, files in walker:
            for name in files:
                if not pattern.match(name) or not name.startswith("." + prefix):
                    continue
                path = os.path.join(folder, name)
                try:
                    if min_idle and now - os.stat(path).st_mtime < min_idle:
                        continue
                    os.unlink(path)
                    removed += 1
                except OSError:
                    continue
    return removed


def claimed_names(directory: str) -> list[str]:
    try:
        # every entry, not only regular files: a refused one left there by a crash is refused
        # again (and not left to keep the claim folder from being removed)
        return sorted(e.name for e in os.scandir(directory) if not e.name.startswith("."))
    except FileNotFoundError:
        return []


def release_claim(claim: ClaimDir) -> bool:
    return claim.release(remove=True)


def temp_tag(claim_path: str, batch: int | None = None) -> str:
    """The tag in the names of the temporaries a daemon's workers write
    (``.NAME.<tag>.<hex>.part``): ``w`` + its claim folder's random part, + ``-N`` for one
    batch.  Whoever sees a worker, or the whole daemon, die removes exactly its temporaries:
    no idle time to wait for, and never a live writer's file."""
    token = os.path.basename(claim_path).rsplit(".", 1)[-1]
    return f"w{token}" if batch is None else f"w{token}-{batch:x}"


def temp_pattern(tag: str, *, batch: bool) -> re.Pattern[str]:
    """Temporaries of one batch (*batch*) or of every batch of a daemon (tag without -N)."""
    rest = r"" if batch else r"-[0-9a-f]+"
    return re.compile(r"^\..+\." + re.escape(tag) + rest + r"\.[0-9a-f]{12}\.part$")


def prepare_inbox(inbox: InboxConfig, config: WatchConfig) -> tuple[ClaimDir, Recovery, int]:
    """Blocking start-up work for one inbox (runs in a thread)."""
    for folder in (inbox.path, inbox.done_dir, inbox.failed_dir, inbox.output_dir):
        os.makedirs(folder, exist_ok=True)
    claim = make_claim_dir(inbox.processing_dir)
    rec = recover(inbox.processing_dir, claim, ())
    idle = 0.0 if rec.live_others == 0 else TEMP_MAX_IDLE
    roots = [(inbox.output_dir, True), (inbox.failed_dir, False), (inbox.done_dir, False)]
    removed = remove_temps(roots, min_idle=idle)
    removed += remove_temps([(inbox.path, False)], min_idle=idle, pattern=PROBE_RE)
    if config.metrics_file is not None:
        folder, name = os.path.split(config.metrics_file)
        removed += remove_temps([(folder, False)], min_idle=idle, prefix=name + ".")
    return claim, rec, removed


def remove_temps_of(inbox: InboxConfig, pattern: re.Pattern[str]) -> int:
    """Temporaries of *pattern* (a dead writer's) in every folder a worker writes to."""
    roots = [(inbox.output_dir, True), (inbox.failed_dir, False), (inbox.done_dir, False)]
    return remove_temps(roots, min_idle=0.0, pattern=pattern)


def claim_entry(src: str, dst: str) -> str:
    """Move an inbox entry into our claim folder: the rename is the lock (daemon-conventions
    §3).  ``"claimed"``; ``"busy"`` when our claim folder holds that name already (an input of
    the same name dropped again while the first is converted: never replaced, it waits);
    ``"gone"`` when the entry vanished (another daemon's rename won).  Other OSErrors rise.

    ``renameat2(RENAME_NOREPLACE)``: a check and then a rename could replace an input claimed in
    between; where the filesystem lacks it, that check and rename are the fallback.
    """
    try:
        rename_noreplace(src, dst)
    except FileExistsError:
        return "busy"
    except (FileNotFoundError, NotADirectoryError):
        return "gone"
    return "claimed"
