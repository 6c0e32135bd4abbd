"""Helpers of the daemon's tests (tests/test_watch*.py): inputs, a folder tree, serve()."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import anyio
import pydicom

from streamconv.watch.config import WatchConfig, make_inbox
from streamconv.watch.daemon import Watcher, serve
from streamconv.watch.jobs import Job, Mode

QUIET = 0.4
IGNORED = [".hidden.json", "x.json.part", "x.json.tmp", "x.json~", "#x.json#", ".x.json.Ab12Cd"]

# -- inputs ------------------------------------------------------------------------------


def dataset(i: int, **extra: Any) -> dict[str, Any]:
    """A small CT-like dataset whose SOP Instance UID depends on *i*."""
    ds: dict[str, Any] = {
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
        "00080018": {"vr": "UI", "Value": [f"1.2.826.0.1.3680043.8.498.{i + 1}"]},
        "00080060": {"vr": "CS", "Value": ["CT"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
        "00100020": {"vr": "LO", "Value": ["PID0001"]},
        "00200013": {"vr": "IS", "Value": [i + 1]},
        "00280010": {"vr": "US", "Value": [512]},
    }
    ds.update(extra)
    return ds


def text(i: int, **extra: Any) -> str:
    return json.dumps(dataset(i, **extra))


def drop(inbox: Path, name: str, content: str | bytes) -> None:
    """The producer contract: write under a dot-name, rename into the inbox."""
    data = content.encode() if isinstance(content, str) else content
    tmp = inbox / f".{name}.part"
    tmp.write_bytes(data)
    os.rename(tmp, inbox / name)


async def wait_for(predicate: Callable[[], bool], seconds: float = 15.0) -> None:
    """Poll the folders (what an outside observer sees) until *predicate* holds."""
    with anyio.fail_after(seconds):
        while not predicate():  # noqa: ASYNC110  (the file system has no event to wait for)
            await anyio.sleep(0.05)


def write_slowly(path: Path, pieces: list[bytes], pause: float, mode: str = "wb") -> None:
    """A producer writing in place, in pieces (run in a thread: it blocks)."""
    with open(path, mode) as f:
        for piece in pieces:
            f.write(piece)
            f.flush()
            time.sleep(pause)


def files(folder: Path) -> set[str]:
    if not folder.exists():
        return set()
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def temps(*folders: Path) -> list[str]:
    return [str(p) for f in folders if f.exists() for p in f.rglob("*.part")]


class Tree:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.inbox = root / "inbox"
        self.out = root / "out"
        self.done = root / "done"
        self.failed = root / "failed"
        self.processing = root / "processing"
        self.inbox.mkdir(parents=True)

    def config(self, words: str = "", **kw: Any) -> WatchConfig:
        inbox_kw = {
            k: kw.pop(k)
            for k in (
                "quiet_period",
                "max_age",
                "on_success",
                "filename_template",
                "patterns",
                "max_input_bytes",
            )
            if k in kw
        }
        inbox_kw.setdefault("quiet_period", QUIET)
        inbox = make_inbox(
            path=str(self.inbox),
            output_dir=str(self.out),
            words=shlex.split(words),
            where="test",
            **inbox_kw,
        )
        defaults: dict[str, Any] = {
            "jobs": 2,
            "min_free_bytes": 0,
            "rescan_interval": 2.0,
            "retry_delay": 0.2,
            "grace_period": 10.0,
        }
        defaults.update(kw)
        return WatchConfig(inboxes=(inbox,), **defaults)

    def claimed(self) -> set[str]:
        """Inputs in any claim folder under processing/."""
        return {p.name for p in self.processing.glob("*/*") if not p.name.startswith(".")}


@asynccontextmanager
async def running(
    config: WatchConfig, clock: Callable[[], float] | None = None
) -> AsyncIterator[Watcher]:
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        watcher: Watcher = await tg.start(lambda task_status: serve(
            config, shutdown_trigger=stop.wait, task_status=task_status, clock=clock
        ))  # fmt: skip
        try:
            yield watcher
        finally:
            stop.set()


def read_back(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(path)


def sidecars(folder: Path) -> dict[str, dict[str, Any]]:
    """failed/*.error.json by their "input" field."""
    out = {}
    for name in os.listdir(folder):
        if name.endswith(".error.json"):
            report = json.loads((folder / name).read_text())
            out[report["input"]] = report
    return out


def write_raw(path: bytes, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, content.encode())
    os.close(fd)


def with_bulk(i: int) -> str:
    return text(i, **{"7FE00010": {"vr": "OW", "BulkDataURI": "bulk/pixels.raw"}})


def job(tree: Tree, name: str, mode: Mode, directory: Path | None = None) -> Job:
    inbox = tree.config().inboxes[0]
    claim = tree.processing / "me.1.abc"
    for folder in (claim, tree.done, tree.failed, tree.out):
        folder.mkdir(parents=True, exist_ok=True)
    src = tree.inbox if directory is None else directory
    return Job(inbox, name, str(src), str(claim), mode, None)


class Clock:
    """A clock for the intake scheduler that moves only when a test moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- the daemon as a real process (test_watch_daemon.py, test_watch_faults.py) ---------------


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def names(folder: Path, pattern: str = "*") -> set[str]:
    return {p.name for p in folder.glob(pattern) if p.is_file()} if folder.exists() else set()


def leftovers(root: Path) -> list[str]:
    """Temporaries and partial files anywhere under *root* (producer temps excluded)."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.name.endswith(".part") and "src" not in p.parts
    )


class Daemon:
    """`python -m streamconv watch --config FILE` with a NOTIFY_SOCKET of its own."""

    count = 0

    def __init__(self, root: Path, config: Path, *, env: dict[str, str] | None = None) -> None:
        Daemon.count += 1
        self.name = f"d{Daemon.count}"
        self.notify_path = root / f"notify-{self.name}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.notify_path))
        self.messages: list[list[str]] = []
        self.log_path = root / f"{self.name}.log"
        self._log: IO[bytes] = open(self.log_path, "wb")  # noqa: SIM115
        full_env = {**os.environ, "NOTIFY_SOCKET": str(self.notify_path), **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamconv", "watch", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=full_env,
        )

    def receive(self, timeout: float) -> list[str] | None:
        self.sock.settimeout(timeout)
        try:
            fields = self.sock.recv(4096).decode().split("\n")
        except TimeoutError:
            return None
        self.messages.append(fields)
        return fields

    def wait_for_message(self, field: str, timeout: float = 30.0) -> list[str]:
        for fields in self.messages:
            if field in fields:
                return fields
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}): {self.log()}")
            got = self.receive(max(0.01, min(0.5, deadline - time.monotonic())))
            if got is not None and field in got:
                return got
        raise AssertionError(f"no {field} within {timeout} s: {self.messages} {self.log()}")

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        self.sock.close()


def daemon_pool() -> Iterator[list[Daemon]]:
    """The body of a ``daemons`` fixture: the daemons a test starts, closed after it."""
    started: list[Daemon] = []
    yield started
    for d in started:
        d.close()


def write_config(path: Path, *, extra: str = "", inbox_extra: str = "", jobs: int = 2) -> Path:
    path.write_text(
        f"jobs = {jobs}\nmin_free_bytes = 0\nrescan_interval = 1\nretry_delay = 0.2\n{extra}\n"
        f'[[inbox]]\npath = "inbox"\noutput_dir = "out"\nquiet_period = 0.3\n{inbox_extra}\n'
    )
    return path
