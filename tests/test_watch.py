"""streamconv watch, in-process: ``serve()`` on real folders, real watchfiles events and real
worker processes. (Signals, kill -9 and several daemons: tests/test_watch_daemon.py.)"""

from __future__ import annotations

import json
import os
import shlex
import stat
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pydicom
import pytest

from streamconv.errors import UsageError
from streamconv.watch import daemon as watch
from streamconv.watch.config import (
    ConfigError,
    Naming,
    WatchConfig,
    config_from_args,
    is_ignored,
    load_config,
    make_inbox,
    parse_command_line,
)
from streamconv.watch.daemon import Watcher, make_claim_dir, serve

ROOT = Path(__file__).resolve().parent.parent
QUIET = 0.4


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


@asynccontextmanager
async def running(config: WatchConfig) -> AsyncIterator[Watcher]:
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        watcher: Watcher = await tg.start(lambda task_status: serve(
            config, shutdown_trigger=stop.wait, task_status=task_status
        ))  # fmt: skip
        try:
            yield watcher
        finally:
            stop.set()


def read_back(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(path)


# -- completion detection and the producer contract ------------------------------------


@pytest.mark.anyio
async def test_drop_by_rename_each_converted_once(tree: Tree) -> None:
    async with running(tree.config()) as watcher:
        names = [f"ct{i:03d}.json" for i in range(30)]
        for i, name in enumerate(names):
            drop(tree.inbox, name, text(i))
        await wait_for(lambda: watcher.counts().get("done") == 30)
    assert files(tree.done) == set(names)
    assert files(tree.out) == {f"ct{i:03d}.dcm" for i in range(30)}
    for i in range(30):
        ds = read_back(tree.out / f"ct{i:03d}.dcm")
        assert ds.SOPInstanceUID == f"1.2.826.0.1.3680043.8.498.{i + 1}"
    assert files(tree.inbox) == set()
    assert not tree.processing.exists() or list(tree.processing.iterdir()) == []
    assert temps(tree.root) == []


@pytest.mark.anyio
async def test_files_present_at_start_are_converted_before_ready(tree: Tree) -> None:
    for i in range(5):
        drop(tree.inbox, f"early{i}.json", text(i))
    async with running(tree.config()) as watcher:
        # READY comes after the first scan: every early file is already known
        assert (
            sum(s.queued() + s.inflight() for s in watcher.states.values())
            + sum(watcher.counts().values())
            == 5
        )
        await wait_for(lambda: len(files(tree.done)) == 5)
    assert files(tree.out) == {f"early{i}.dcm" for i in range(5)}


@pytest.mark.anyio
async def test_slow_in_place_write_is_taken_once_complete(tree: Tree) -> None:
    data = text(7).encode()
    async with running(tree.config()):
        pieces = [data[n : n + 40] for n in range(0, len(data), 40)]
        # pauses shorter than the quiet period
        await anyio.to_thread.run_sync(write_slowly, tree.inbox / "slow.json", pieces, 0.1)
        closed = time.time()
        await wait_for(lambda: (tree.done / "slow.json").exists())
    assert files(tree.out) == {"slow.dcm"}
    assert (tree.out / "slow.dcm").stat().st_mtime >= closed
    assert read_back(tree.out / "slow.dcm").InstanceNumber == 8


@pytest.mark.anyio
async def test_ndjson_written_line_by_line_waits_for_the_quiet_period(tree: Tree) -> None:
    # every line boundary parses completely; only the quiet period tells that it is finished
    async with running(tree.config()):
        lines = [(text(i) + "\n").encode() for i in range(5)]
        await anyio.to_thread.run_sync(write_slowly, tree.inbox / "lines.ndjson", lines, 0.15)
        await wait_for(lambda: (tree.done / "lines.ndjson").exists())
    assert files(tree.out) == {f"lines/{i:06d}.dcm" for i in range(5)}


@pytest.mark.anyio
async def test_truncated_file_becomes_ready_when_completed(tree: Tree) -> None:
    data = text(3)
    async with running(tree.config()):
        drop(tree.inbox, "cut.json", data[:-20])  # renamed in, but truncated
        await anyio.sleep(1.5)
        assert files(tree.inbox) == {"cut.json"}  # not ready yet, not failed, not claimed
        assert files(tree.out) == files(tree.failed) == set()
        await anyio.to_thread.run_sync(
            write_slowly, tree.inbox / "cut.json", [data[-20:].encode()], 0.0, "ab"
        )
        await wait_for(lambda: (tree.done / "cut.json").exists())
    assert files(tree.out) == {"cut.dcm"}


@pytest.mark.anyio
async def test_truncated_file_fails_after_max_age(tree: Tree) -> None:
    async with running(tree.config(max_age=1.0)):
        drop(tree.inbox, "never.json", text(1)[:-5])
        await wait_for(lambda: (tree.failed / "never.error.json").exists())
    report = json.loads((tree.failed / "never.error.json").read_text())
    assert report["category"] == "json-syntax"
    assert report["exit_code"] == 65
    assert "truncated" in report["message"] and "still incomplete" in report["message"]
    assert files(tree.failed) == {"never.json", "never.error.json"}
    assert files(tree.out) == set()


IGNORED = [".hidden.json", "x.json.part", "x.json.tmp", "x.json~", "#x.json#", ".x.json.Ab12Cd"]


@pytest.mark.parametrize(
    ("name", "ignored"),
    [(n, True) for n in IGNORED] + [("x.json", False), ("x.ndjson", False), ("x.part.json", False)],
)
def test_ignored_names(name: str, ignored: bool) -> None:
    assert is_ignored(name) is ignored


@pytest.mark.anyio
async def test_temporaries_and_other_patterns_are_left_alone(tree: Tree) -> None:
    for name in [*IGNORED, "notes.txt"]:
        (tree.inbox / name).write_text(text(0))
    async with running(tree.config()):
        drop(tree.inbox, "real.json", text(0))
        await wait_for(lambda: (tree.done / "real.json").exists())
        await anyio.sleep(0.5)
    assert files(tree.inbox) == {*IGNORED, "notes.txt"}
    assert files(tree.out) == {"real.dcm"}


# -- hostile inbox entries, the input size limit, a flood (issue 5) -----------------------


def sidecars(folder: Path) -> dict[str, dict[str, Any]]:
    """failed/*.error.json by their "input" field."""
    out = {}
    for name in os.listdir(folder):
        if name.endswith(".error.json"):
            report = json.loads((folder / name).read_text())
            out[report["input"]] = report
    return out


@pytest.mark.anyio
async def test_symlinks_fifos_and_directories_are_refused_into_failed(tree: Tree) -> None:
    """Never opened or followed: renamed into failed/ as they are, with the reason."""
    secret = tree.root / "secret.json"
    secret.write_text(text(9))  # a valid input outside the inbox: must not be converted
    os.symlink(secret, tree.inbox / "link.json")
    os.symlink("link.json", tree.inbox / "chain.json")
    os.mkfifo(tree.inbox / "pipe.json")  # opening it would block
    (tree.inbox / "dir.json").mkdir()
    (tree.inbox / "dir.json" / "inside.json").write_text(text(8))
    (tree.failed).mkdir()
    (tree.failed / "dir.json").write_text("taken")  # a directory cannot replace it
    async with running(tree.config()) as watcher:
        os.symlink("/dev/zero", tree.inbox / "zero.json")  # after start: an event, not the scan
        os.mkfifo(tree.inbox / "late.json")
        drop(tree.inbox, "ok.json", text(0))
        await wait_for(lambda: watcher.counts().get("failed") == 6 and not files(tree.inbox))
        await wait_for(lambda: watcher.counts().get("done") == 1)
    assert os.listdir(tree.inbox) == []
    assert files(tree.out) == {"ok.dcm"}
    assert secret.read_text() == text(9)
    reports = sidecars(tree.failed)
    reasons = {name: r["message"] for name, r in reports.items()}
    assert reasons == {
        "link.json": "refused: symbolic link (not opened)",
        "chain.json": "refused: symbolic link (not opened)",
        "zero.json": "refused: symbolic link (not opened)",
        "pipe.json": "refused: FIFO (not opened)",
        "late.json": "refused: FIFO (not opened)",
        "dir.json": "refused: directory (not opened)",
    }
    assert {(r["category"], r["exit_code"], r["transient"]) for r in reports.values()} == {
        ("refused", 20, False)
    }
    assert os.readlink(tree.failed / "link.json") == str(secret)  # moved as it is
    assert (tree.failed / "zero.json").is_symlink()
    assert stat.S_ISFIFO(os.lstat(tree.failed / "pipe.json").st_mode)
    assert (tree.failed / "dir.json").read_text() == "taken"
    moved = [p for p in tree.failed.iterdir() if p.name.startswith("dir.json.") and p.is_dir()]
    assert len(moved) == 1 and (moved[0] / "inside.json").read_text() == text(8)
    assert (tree.failed / (moved[0].name.rsplit(".", 1)[0] + ".error.json")).exists()
    assert tree.claimed() == set()


def write_raw(path: bytes, content: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, content.encode())
    os.close(fd)


@pytest.mark.anyio
async def test_names_with_control_characters_are_refused_and_escaped(
    tree: Tree, caplog: pytest.LogCaptureFixture
) -> None:
    """A name cannot forge a log line: refused, and escaped in the log and in error.json."""
    caplog.set_level("DEBUG", logger="streamconv")
    names = [
        "evil\nE: failed x.json: forged.json",
        "cr\rI: done.json",
        "esc\x1b[2Kx.json",
        "rtl\u202ejson.exe.json",
    ]
    for name in names[:2]:
        (tree.inbox / name).write_text(text(0))
    write_raw(os.path.join(os.fsencode(tree.inbox), b"latin\xe9.json"), text(1))  # not UTF-8
    async with running(tree.config()) as watcher:
        for name in names[2:]:
            drop(tree.inbox, name, text(2))
        drop(tree.inbox, "fine.json", text(3))
        await wait_for(lambda: watcher.counts().get("failed") == 5 and not os.listdir(tree.inbox))
        await wait_for(lambda: watcher.counts().get("done") == 1)
    assert files(tree.out) == {"fine.dcm"}
    reports = sidecars(tree.failed)
    bad = os.fsdecode(b"latin\xe9.json")
    assert set(reports) == {repr(n) for n in [*names, bad]}
    assert reports[repr(bad)]["message"] == "refused: name is not valid UTF-8 (not opened)"
    for name in names:
        assert (
            reports[repr(name)]["message"]
            == "refused: name contains control characters (not opened)"
        )
        assert reports[repr(name)]["category"] == "refused"
        assert (tree.failed / name).exists()  # the input, under its own name
    assert b"latin\xe9.json" in os.listdir(os.fsencode(tree.failed))
    logged = [r.getMessage() for r in caplog.records]
    assert logged
    assert all(not any(c in m for c in "\n\r\x1b\u202e") for m in logged), logged
    assert all("\udce9" not in m for m in logged)
    assert sum("refused: name contains control characters" in m for m in logged) == 4


def test_refused_entries_are_never_opened(tree: Tree) -> None:
    """The worker itself, handed a FIFO (as if swapped in after the scan): lstat, no open."""
    os.mkfifo(tree.inbox / "p.json")
    result = watch.process_input(job(tree, "p.json", watch.Mode.SETTLED))  # would block if opened
    assert result.status == "failed"
    assert result.error is not None and result.error.category == "refused"
    assert stat.S_ISFIFO(os.lstat(tree.failed / "p.json").st_mode)


def test_a_refused_entry_that_cannot_be_moved_is_left_alone(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory the daemon may not write to cannot be renamed: left where it is."""
    (tree.inbox / "d.json").mkdir()
    j = job(tree, "d.json", watch.Mode.FAST)

    def rename(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "rename", rename)
    result = watch.process_input(j)
    assert (result.status, result.reason) == (
        "left",
        "directory; cannot move it: Permission denied",
    )
    assert result.sig is not None and result.sig[0] == os.lstat(tree.inbox / "d.json").st_ino
    assert (tree.inbox / "d.json").is_dir() and files(tree.failed) == set()


@pytest.mark.anyio
async def test_input_larger_than_max_input_bytes_fails(tree: Tree) -> None:
    small = json.dumps({"00100020": {"vr": "LO", "Value": ["P1"]}})
    big = text(0)
    limit = len(small) + 10
    assert len(big) > limit
    config = tree.config(max_input_bytes=limit)
    assert config.inboxes[0].options.limits.max_input_bytes == limit  # the pre-pass too
    async with running(config) as watcher:
        drop(tree.inbox, "big.json", big)
        drop(tree.inbox, "small.json", small)
        await wait_for(lambda: watcher.counts().get("failed") == 1)
        await wait_for(lambda: watcher.counts().get("done") == 1)
    assert files(tree.failed) == {"big.json", "big.error.json"}
    report = json.loads((tree.failed / "big.error.json").read_text())
    assert (report["category"], report["exit_code"], report["transient"]) == ("limit", 65, False)
    assert report["message"] == (
        f"input file of {len(big)} bytes is larger than {limit} bytes "
        "(limit max_input_bytes / --max-input-bytes); not read"
    )
    assert files(tree.out) == {"small.dcm"}


@pytest.mark.parametrize("small_input", [watch.SMALL_INPUT, 100])
def test_input_that_grows_past_the_limit_fails_in_the_pre_pass(
    tree: Tree, monkeypatch: pytest.MonkeyPatch, small_input: int
) -> None:
    """A file under the limit at lstat time that is bigger when read: the parse stops."""
    monkeypatch.setattr(watch, "SMALL_INPUT", small_input)  # read whole, or checked in chunks
    content = text(0) + "\n" + text(1)
    j = job(tree, "grew.ndjson", watch.Mode.SETTLED)
    limits = j.inbox.options.limits._replace(max_input_bytes=len(text(0)) + 10)
    inbox = replace(j.inbox, max_input_bytes=0, options=j.inbox.options._replace(limits=limits))
    (tree.inbox / "grew.ndjson").write_text(content)
    result = watch.process_input(replace(j, inbox=inbox))
    assert result.status == "failed"
    assert result.error is not None and result.error.category == "limit"
    assert "--max-input-bytes" in result.error.message
    assert files(tree.failed) == {"grew.ndjson", "grew.error.json"}
    assert files(tree.out) == set()


def test_max_input_bytes_configuration(tmp_path: Path) -> None:
    def limit(inbox: Any) -> int:
        assert inbox.options.limits.max_input_bytes == inbox.max_input_bytes
        return int(inbox.max_input_bytes)

    base = [str(tmp_path / "i"), "--output-dir", "o"]
    assert limit(config_from_args(parse_command_line(base)).inboxes[0]) == 4 << 30
    cmd = parse_command_line([*base, "--max-input-bytes", "1000"])
    assert limit(config_from_args(cmd).inboxes[0]) == 1000
    cmd = parse_command_line([*base, "--max-input-bytes=0"])
    assert limit(config_from_args(cmd).inboxes[0]) == 0
    assert limit(load_config(write_toml(tmp_path, INBOX)).inboxes[0]) == 4 << 30
    body = INBOX + "max_input_bytes = 0\n"
    assert limit(load_config(write_toml(tmp_path, body)).inboxes[0]) == 0
    body = INBOX + 'options = "--max-input-bytes 500"\n'
    assert limit(load_config(write_toml(tmp_path, body)).inboxes[0]) == 500
    body = INBOX + 'options = "--max-input-bytes 500"\nmax_input_bytes = 700\n'
    assert limit(load_config(write_toml(tmp_path, body)).inboxes[0]) == 700  # the key wins
    with pytest.raises(ConfigError, match="max_input_bytes must be an integer >= 0"):
        load_config(write_toml(tmp_path, INBOX + "max_input_bytes = -1\n"))
    with pytest.raises(UsageError, match=None) as info:
        config_from_args(parse_command_line([*base, "--max-input-bytes", "lots"]))
    assert "--max-input-bytes" in info.value.message


@pytest.mark.anyio
async def test_a_flood_of_files_keeps_the_tracked_set_bounded(tree: Tree) -> None:
    """20,000 inputs, 12,000 there at start, 8,000 arriving at once: at most MAX_TRACKED are
    tracked (the rest wait in the inbox), the schedule stays proportional, work goes on."""
    n = 20_000
    content = text(0).encode()

    def make(start: int, stop: int) -> None:
        for i in range(start, stop):
            fd = os.open(tree.inbox / f"f{i:05d}.json", os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, content)
            os.close(fd)

    first = 12_000  # more than are tracked: 2,000 wait untracked from the start
    make(0, first)
    peak = peak_heap = 0
    async with running(tree.config(jobs=2, rescan_interval=1.0)) as watcher:
        state = watcher.states[str(tree.inbox)]
        assert len(state.candidates) == watch.MAX_TRACKED
        await anyio.to_thread.run_sync(make, first, n)
        deadline = anyio.current_time() + 8.0
        while anyio.current_time() < deadline:
            peak = max(peak, len(state.candidates))
            peak_heap = max(peak_heap, len(watcher._heap))
            await anyio.sleep(0.05)
        done = watcher.counts().get("done", 0)
    assert peak <= watch.MAX_TRACKED
    assert peak_heap <= 3 * watch.MAX_TRACKED
    assert done > 0
    assert len(os.listdir(tree.inbox)) + len(os.listdir(tree.done)) == n


# -- outputs and outcomes --------------------------------------------------------------


@pytest.mark.anyio
async def test_output_names(tree: Tree) -> None:
    array = json.dumps([dataset(i) for i in range(3)])
    ndjson = "".join(text(10 + i) + "\n" for i in range(2))
    async with running(tree.config()):
        drop(tree.inbox, "one.json", text(0))
        drop(tree.inbox, "single-array.json", json.dumps([dataset(1)]))
        drop(tree.inbox, "three.json", array)
        drop(tree.inbox, "two.ndjson", ndjson)
        await wait_for(lambda: len(files(tree.done)) == 4)
    assert files(tree.out) == {
        "one.dcm",
        "single-array.dcm",
        "three/000000.dcm",
        "three/000001.dcm",
        "three/000002.dcm",
        "two/000000.dcm",
        "two/000001.dcm",
    }
    assert read_back(tree.out / "three/000002.dcm").InstanceNumber == 3


@pytest.mark.anyio
async def test_filename_template(tree: Tree) -> None:
    config = tree.config(filename_template="{name}-{SOPInstanceUID}.dcm")
    assert config.inboxes[0].naming is Naming.TEMPLATE
    async with running(config):
        drop(tree.inbox, "a.ndjson", text(0) + "\n" + text(1) + "\n")
        await wait_for(lambda: (tree.done / "a.ndjson").exists())
    assert files(tree.out) == {
        "a-1.2.826.0.1.3680043.8.498.1.dcm",
        "a-1.2.826.0.1.3680043.8.498.2.dcm",
    }


@pytest.mark.anyio
async def test_array_option_makes_one_output(tree: Tree) -> None:
    config = tree.config("+as 2 +te")
    assert config.inboxes[0].naming is Naming.SINGLE
    async with running(config):
        drop(tree.inbox, "pick.json", json.dumps([dataset(i) for i in range(3)]))
        await wait_for(lambda: (tree.done / "pick.json").exists())
    assert files(tree.out) == {"pick.dcm"}
    ds = read_back(tree.out / "pick.dcm")
    assert ds.InstanceNumber == 2
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"


@pytest.mark.anyio
async def test_failed_input_gets_error_json(tree: Tree) -> None:
    bad = text(0, **{"00200013": {"vr": "IS", "Value": ["twelve"]}})
    async with running(tree.config()) as watcher:
        drop(tree.inbox, "bad.json", bad)
        drop(tree.inbox, "syntax.json", '{"00100010": {"vr": "PN", "Value": [}}')
        await wait_for(lambda: watcher.counts().get("failed") == 2)
    assert files(tree.failed) == {"bad.json", "bad.error.json", "syntax.json", "syntax.error.json"}
    report = json.loads((tree.failed / "bad.error.json").read_text())
    assert report["category"] == "content"
    assert report["exit_code"] == 65
    assert report["path"] == "(0020,0013)"
    assert "twelve" in report["message"]
    assert report["attempts"] == 1
    assert report["transient"] is False
    assert report["streamconv_version"]
    assert report["datasets"] == {"total": 1, "converted": 0, "failed": 1}
    syntax = json.loads((tree.failed / "syntax.error.json").read_text())
    assert (syntax["category"], syntax["exit_code"]) == ("json-syntax", 65)
    assert files(tree.out) == set()
    assert temps(tree.root) == []


@pytest.mark.anyio
async def test_partial_input_gets_a_report(tree: Tree) -> None:
    lines = [text(0), text(1, **{"00280010": {"vr": "US", "Value": [70000]}}), text(2)]
    async with running(tree.config()):
        drop(tree.inbox, "mixed.ndjson", "\n".join(lines) + "\n")
        await wait_for(lambda: (tree.failed / "mixed.ndjson").exists())
    assert files(tree.out) == {"mixed/000000.dcm", "mixed/000002.dcm"}
    sidecar = json.loads((tree.failed / "mixed.error.json").read_text())
    assert sidecar["result"] == "partial"
    assert sidecar["datasets"] == {"total": 3, "converted": 2, "failed": 1}
    assert sidecar["report"] == "mixed.report.jsonl"
    assert sidecar["path"].startswith("dataset 2")
    report = [
        json.loads(line) for line in (tree.failed / "mixed.report.jsonl").read_text().splitlines()
    ]
    assert [(r["index"], r["result"]) for r in report] == [
        (0, "converted"),
        (1, "failed"),
        (2, "converted"),
    ]
    assert report[1]["exit_code"] == 65 and report[0]["output"] == "mixed/000000.dcm"


@pytest.mark.anyio
async def test_on_success_delete(tree: Tree) -> None:
    async with running(tree.config(on_success="delete")):
        drop(tree.inbox, "gone.json", text(0))
        await wait_for(lambda: (tree.out / "gone.dcm").exists())
        await wait_for(lambda: tree.claimed() == set())
    assert files(tree.inbox) == files(tree.done) == set()


# -- transient errors ------------------------------------------------------------------


def with_bulk(i: int) -> str:
    return text(i, **{"7FE00010": {"vr": "OW", "BulkDataURI": "bulk/pixels.raw"}})


@pytest.mark.anyio
async def test_missing_bulk_data_is_retried_until_it_arrives(tree: Tree) -> None:
    bulk = tree.inbox / "bulk"
    bulk.mkdir()
    config = tree.config(f"+Bd {bulk}", retry_delay=0.3)
    async with running(config) as watcher:
        drop(tree.inbox, "px.json", with_bulk(0))
        await wait_for(lambda: watcher.counts().get("retried", 0) >= 2)
        assert tree.claimed() == {"px.json"}  # stays claimed between attempts
        assert files(tree.out) == set()
        (bulk / "pixels.raw").write_bytes(b"\x01\x02" * 8)
        await wait_for(lambda: (tree.done / "px.json").exists())
    assert read_back(tree.out / "px.dcm").PixelData == b"\x01\x02" * 8


@pytest.mark.anyio
async def test_output_that_cannot_be_written_is_retried(tree: Tree) -> None:
    """An output error (here: a folder where the file should go; in real life a full disk) is
    the environment's fault, not the input's: the input stays claimed and is tried again."""
    (tree.out / "blocked.dcm").mkdir(parents=True)
    async with running(tree.config(retry_delay=0.3)) as watcher:
        drop(tree.inbox, "blocked.json", text(0))
        await wait_for(lambda: watcher.counts().get("retried", 0) >= 1)
        assert tree.claimed() == {"blocked.json"}
        (tree.out / "blocked.dcm").rmdir()
        await wait_for(lambda: (tree.done / "blocked.json").exists())
    assert read_back(tree.out / "blocked.dcm").InstanceNumber == 1
    assert temps(tree.root) == []


@pytest.mark.anyio
async def test_transient_error_fails_after_the_last_attempt(tree: Tree) -> None:
    bulk = tree.inbox / "bulk"
    bulk.mkdir()
    config = tree.config(f"+Bd {bulk}", retry_delay=0.05, retry_attempts=3)
    async with running(config) as watcher:
        drop(tree.inbox, "px.json", with_bulk(0))
        await wait_for(lambda: watcher.counts().get("failed") == 1)
        assert watcher.counts().get("retried") == 2
    sidecar = json.loads((tree.failed / "px.error.json").read_text())
    assert (sidecar["category"], sidecar["exit_code"]) == ("bulkdata", 20)
    assert sidecar["attempts"] == 3
    assert sidecar["transient"] is True


# -- recovery, backpressure, reload, metrics -------------------------------------------


@pytest.mark.anyio
async def test_bounded_queue(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    """More inputs than the daemon tracks: the rest wait in the inbox and are taken later."""
    monkeypatch.setattr(watch, "MAX_TRACKED", 4)
    async with running(tree.config(jobs=1, max_inflight=2)) as watcher:
        for i in range(12):
            drop(tree.inbox, f"q{i:02d}.json", text(i))
        await wait_for(lambda: watcher.counts().get("done") == 12, 30)
    assert files(tree.out) == {f"q{i:02d}.dcm" for i in range(12)}


@pytest.mark.anyio
async def test_inbox_removed_and_recreated(tree: Tree) -> None:
    """The daemon survives its inbox disappearing; rescans find what arrives after."""
    async with running(tree.config(rescan_interval=0.5)) as watcher:
        tree.inbox.rmdir()
        await anyio.sleep(1.2)
        tree.inbox.mkdir()
        drop(tree.inbox, "back.json", text(0))
        await wait_for(lambda: watcher.counts().get("done") == 1)
    assert files(tree.out) == {"back.dcm"}


@pytest.mark.anyio
async def test_force_polling(tree: Tree) -> None:
    """Polling instead of inotify (network filesystems): same behaviour, a little later."""
    async with running(tree.config(force_polling=True)) as watcher:
        drop(tree.inbox, "polled.json", text(0))
        await wait_for(lambda: watcher.counts().get("done") == 1)
    assert files(tree.out) == {"polled.dcm"}


@pytest.mark.anyio
async def test_restart_recovery(tree: Tree) -> None:
    # A dead daemon's claim folder (its lock is free), a loose file in processing/, and
    # temporaries of interrupted writes.
    dead = tree.processing / "deadhost.4242.abcdef"
    dead.mkdir(parents=True)
    (dead / ".lock").write_text("pid=4242\n")
    (dead / "left.json").write_text(text(1))
    (tree.processing / "loose.json").write_text(text(2))
    tree.out.mkdir()
    (tree.out / ".left.dcm.0123456789ab.part").write_bytes(b"half")
    (tree.out / "sub").mkdir()
    (tree.out / "sub" / ".000000.dcm.a1b2c3d4e5f6.part").write_bytes(b"half")
    tree.failed.mkdir()
    (tree.failed / ".x.error.json.a1b2c3d4e5f6.part").write_bytes(b"{")
    tree.inbox.mkdir(exist_ok=True)
    probe = tree.inbox / ".streamconv-probe.4242.0a1b2c"  # its daemon was killed while probing
    probe.write_bytes(b".")
    async with running(tree.config()):
        assert temps(tree.root) == []
        assert not probe.exists()
        await wait_for(lambda: files(tree.done) == {"left.json", "loose.json"})
    assert files(tree.out) == {"left.dcm", "loose.dcm"}
    assert list(tree.processing.iterdir()) == []


@pytest.mark.anyio
async def test_a_live_daemons_claim_folder_is_left_alone(tree: Tree) -> None:
    other = make_claim_dir(str(tree.processing))  # held by "another daemon" (this process)
    theirs = tree.processing / os.path.basename(other.path) / "theirs.json"
    try:
        theirs.write_text(text(0))
        async with running(tree.config(rescan_interval=0.3)):
            drop(tree.inbox, "mine.json", text(1))
            await wait_for(lambda: (tree.done / "mine.json").exists())
            await anyio.sleep(0.8)  # a few rescans
        assert theirs.exists()
    finally:
        other.release(remove=False)


@pytest.mark.anyio
async def test_intake_pauses_when_the_output_filesystem_is_nearly_full(tree: Tree) -> None:
    cfg_file = tree.root / "watch.toml"

    def write_config(min_free: int) -> None:
        cfg_file.write_text(
            f'min_free_bytes = {min_free}\njobs = 1\n[[inbox]]\npath = "inbox"\n'
            f'output_dir = "out"\nquiet_period = {QUIET}\n'
        )

    write_config(1 << 62)
    config = load_config(str(cfg_file))
    async with running(config) as watcher:
        drop(tree.inbox, "wait.json", text(0))
        await wait_for(lambda: watcher.paused)
        await anyio.sleep(0.5)
        assert files(tree.inbox) == {"wait.json"} and files(tree.out) == set()
        write_config(0)
        await watcher.reload()  # what SIGHUP does
        await wait_for(lambda: (tree.done / "wait.json").exists())


@pytest.mark.anyio
async def test_reload_adds_an_inbox_and_keeps_a_bad_file_out(tree: Tree) -> None:
    cfg_file = tree.root / "watch.toml"
    (tree.root / "second" / "inbox").mkdir(parents=True)
    one = '[[inbox]]\npath = "inbox"\noutput_dir = "out"\nquiet_period = 0.4\n'
    two = one + '[[inbox]]\npath = "second/inbox"\noutput_dir = "second/out"\noptions = "+tb"\n'
    cfg_file.write_text("min_free_bytes = 0\n" + one)
    async with running(load_config(str(cfg_file))) as watcher:
        cfg_file.write_text("min_free_bytes = 0\n" + one + "[[inbox]]\npath = 3\n")
        with pytest.raises(ConfigError):
            await watcher.reload()
        assert list(watcher.states) == [str(tree.inbox)]
        cfg_file.write_text("min_free_bytes = 0\n" + two)
        await watcher.reload()
        drop(tree.root / "second" / "inbox", "b.json", text(0))
        drop(tree.inbox, "a.json", text(1))
        await wait_for(lambda: (tree.root / "second" / "done" / "b.json").exists())
        await wait_for(lambda: (tree.done / "a.json").exists())
    ds = read_back(tree.root / "second" / "out" / "b.dcm")
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.2"


@pytest.mark.anyio
async def test_metrics_file(tree: Tree) -> None:
    metrics = tree.root / "metrics" / "watch.prom"
    metrics.parent.mkdir()
    async with running(tree.config(metrics_file=str(metrics))):
        drop(tree.inbox, "a.json", text(0))
        drop(tree.inbox, "b.json", '{"x": ')
        drop(tree.inbox, "c.json", "{}")  # an empty dataset: converted, nothing to write
        await wait_for(lambda: len(files(tree.done)) + len(files(tree.failed)) >= 2)
        await wait_for(lambda: 'result="done"} 2' in metrics.read_text())
    body = metrics.read_text()
    inbox = str(tree.inbox)
    assert f'streamconv_watch_inputs_total{{inbox="{inbox}",result="done"}} 2' in body
    assert f'streamconv_watch_datasets_total{{inbox="{inbox}",result="converted"}} 2' in body
    assert f'streamconv_watch_latency_seconds_count{{inbox="{inbox}"}} 2' in body
    assert "# TYPE streamconv_watch_latency_seconds histogram" in body
    assert f'streamconv_watch_queue_depth{{inbox="{inbox}"}} 1' in body  # b.json, incomplete
    assert list(metrics.parent.iterdir()) == [metrics]


# -- the worker's steps, in-process -----------------------------------------------------


def job(tree: Tree, name: str, mode: watch.Mode, directory: Path | None = None) -> watch.Job:
    inbox = tree.config().inboxes[0]
    claim = tree.processing / "me.1.abc"
    for folder in (claim, tree.done, tree.failed, tree.out):
        folder.mkdir(parents=True, exist_ok=True)
    src = tree.inbox if directory is None else directory
    return watch.Job(inbox, name, str(src), str(claim), mode, None)


def test_large_input_is_checked_then_streamed(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "SMALL_INPUT", 100)  # every input counts as large
    monkeypatch.setattr(watch, "READ_SIZE", 64)
    (tree.inbox / "big.ndjson").write_text("".join(text(i) + "\n" for i in range(5)))
    result = watch.process_input(job(tree, "big.ndjson", watch.Mode.SETTLED))
    assert (result.status, result.converted, result.outputs) == ("done", 5, 5)
    assert files(tree.out) == {f"big/{i:06d}.dcm" for i in range(5)}
    assert files(tree.done) == {"big.ndjson"}
    (tree.inbox / "cut.json").write_text(text(0)[:-3])
    result = watch.process_input(job(tree, "cut.json", watch.Mode.SETTLED))
    assert (result.status, result.reason) == ("not_ready", "incomplete")
    assert files(tree.inbox) == {"cut.json"}


@pytest.mark.parametrize(
    ("content", "mode", "status", "reason"),
    [
        (text(0), watch.Mode.FAST, "done", ""),
        (text(0)[:-1], watch.Mode.FAST, "not_ready", "incomplete"),
        ("", watch.Mode.FAST, "not_ready", "incomplete"),
        ("", watch.Mode.EXPIRED, "failed", ""),
        ('{"x": [}', watch.Mode.FAST, "not_ready", "unsettled"),  # settle first, then fail
        ('{"x": [}', watch.Mode.SETTLED, "failed", ""),
        (text(0) + "\n" + text(1), watch.Mode.FAST, "not_ready", "unsettled"),  # NDJSON
        (text(0) + "\n" + text(1), watch.Mode.SETTLED, "done", ""),
        (json.dumps([dataset(0), dataset(1)]), watch.Mode.FAST, "done", ""),  # an array closes
    ],
)
def test_readiness(tree: Tree, content: str, mode: watch.Mode, status: str, reason: str) -> None:
    """The completion rules (daemon-conventions §2), one input at a time."""
    (tree.inbox / "x.json").write_text(content)
    result = watch.process_input(job(tree, "x.json", mode))
    assert (result.status, result.reason) == (status, reason)
    where = (
        tree.inbox if status == "not_ready" else (tree.done if status == "done" else tree.failed)
    )
    assert "x.json" in files(where)


def test_claim_lost_to_another_daemon(tree: Tree) -> None:
    """The rename is the lock: an input that vanished between the read and the claim is gone."""
    (tree.inbox / "x.json").write_text(text(0))
    j = job(tree, "x.json", watch.Mode.FAST)
    (tree.inbox / "x.json").rename(tree.root / "elsewhere.json")
    assert watch.process_input(j).status == "gone"
    assert files(tree.out) == set()


# -- configuration ---------------------------------------------------------------------


def test_command_line(tmp_path: Path) -> None:
    cmd = parse_command_line(
        [str(tmp_path / "inbox"), "--output-dir", str(tmp_path / "out"), "+te", "-e", "-j", "3",
         "--pattern", "*.dicom.json", "--quiet-period=1.5", "--force-polling", "-v"]
    )  # fmt: skip
    config = config_from_args(cmd)
    inbox = config.inboxes[0]
    assert config.jobs == 3 and config.force_polling is True
    assert inbox.patterns == ("*.dicom.json",)
    assert inbox.quiet_period == 1.5
    assert inbox.options.explicit_length is False
    assert inbox.options.transfer_syntax.value == "1.2.840.10008.1.2.1"
    assert inbox.processing_dir == str(tmp_path / "processing")
    assert inbox.naming is Naming.DEFAULT


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["inbox"], "--output-dir DIR is required"),
        (["a", "b", "--output-dir", "o"], "too many parameters"),
        (["--config", "x.toml", "+te"], "the configuration file holds every setting"),
        (["inbox", "--output-dir", "o", "+xx"], "Unknown option +xx"),
        (["inbox", "--output-dir", "o", "-j", "zero"], "invalid value for --jobs"),
        (["inbox", "--output-dir", "o", "-j", "0"], "jobs must be an integer >= 1"),
        (["inbox", "--output-dir", "o", "--on-success", "keep"], "move or delete"),
        (["inbox", "--output-dir", "o", "--filename-template", "{Nope}.dcm"], "'Nope'"),
        (["inbox", "--output-dir", "o", "--jobs"], "missing value for option --jobs"),
    ],
)
def test_command_line_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=None) as info:
        config_from_args(parse_command_line(argv))
    assert message in info.value.message


def write_toml(tmp_path: Path, body: str) -> str:
    path = tmp_path / "c.toml"
    path.write_text(body)
    return str(path)


INBOX = '[[inbox]]\npath = "in/box"\noutput_dir = "out"\n'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "at least one [[inbox]]"),
        ("jobz = 2\n" + INBOX, "unknown key(s) jobz"),
        ('[[inbox]]\npath = "in/box"\n', "'output_dir' is required"),
        (INBOX + 'options = "+te in.json"\n', "file names are not allowed"),
        (INBOX + 'options = "-v"\n', "logging options"),
        (INBOX + 'options = "+Uo"\n', "only allowed with --generate-new-uids"),
        (INBOX + 'on_success = "keep"\n', 'on_success must be "move" or "delete"'),
        (INBOX + "quiet_period = -1\n", "quiet_period must be a non-negative number"),
        (INBOX + "max_age = 0\n", "max_age must be a positive number"),
        (INBOX + "patterns = []\n", "'patterns' must be a non-empty list"),
        (INBOX + INBOX, "is configured twice"),
        (INBOX + '[[inbox]]\npath = "in/other"\noutput_dir = "o2"\n', "share the parent folder"),
        ("jobs = 0\n" + INBOX, "jobs must be an integer >= 1"),
        ("grace_period = true\n" + INBOX, "grace_period must be"),
        ("jobs = \n", "not valid TOML"),
    ],
)
def test_config_errors(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_toml(tmp_path, body))
    assert message in info.value.message


def test_example_config_loads(tmp_path: Path) -> None:
    """examples/watch.toml with its /var/lib/streamconv tree moved under tmp_path."""
    example = (ROOT / "examples" / "watch.toml").read_text()
    (tmp_path / "var/lib/streamconv/bulk").mkdir(parents=True)
    body = example.replace("/var/lib/streamconv", str(tmp_path / "var/lib/streamconv"))
    config = load_config(write_toml(tmp_path, body))
    inbox = config.inboxes[0]
    assert (config.jobs, config.grace_period, config.min_free_bytes) == (4, 20.0, 2 << 30)
    assert inbox.naming is Naming.TEMPLATE
    assert inbox.filename_template == "{SOPInstanceUID}.dcm"
    assert inbox.options.explicit_length is False
    assert inbox.options.bulkdata_dirs == (str(tmp_path / "var/lib/streamconv/bulk") + "/",)
    assert (inbox.quiet_period, inbox.max_age, inbox.on_success) == (5.0, 3600.0, "move")
    assert inbox.max_input_bytes == inbox.options.limits.max_input_bytes == 1 << 30


def test_defaults_without_a_config_file(tmp_path: Path) -> None:
    config = config_from_args(parse_command_line([str(tmp_path / "i"), "--output-dir", "o"]))
    inbox = config.inboxes[0]
    assert config.jobs == (os.cpu_count() or 1)
    assert (config.grace_period, config.min_free_bytes, config.metrics_file) == (
        20.0,
        1 << 30,
        None,
    )
    assert inbox.patterns == ("*.json", "*.ndjson")
    assert (inbox.quiet_period, inbox.max_age, inbox.on_success) == (5.0, 3600.0, "move")
    assert replace(config, jobs=1).inflight_limit == 16
