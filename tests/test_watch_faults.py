"""Faults the daemon survives without losing, replacing or hiding an input (issue 10, rows 4,
5, 6, 8, 9 and the documented limits): colliding names, a removed inbox, killed workers and
daemons, full disks and inode tables, inputs that change after they were read.

Real files, processes and filesystems: the full disks are small tmpfs mounts (root only;
skipped with the reason where mounting is impossible)."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import anyio
import pytest
from watchkit import (
    Daemon,
    Tree,
    daemon_pool,
    dataset,
    drop,
    files,
    job,
    leftovers,
    read_back,
    running,
    sidecars,
    text,
    wait_for,
    wait_until,
    with_bulk,
    write_config,
)

from streamconv.errors import OutputError
from streamconv.watch import worker
from streamconv.watch.jobs import Mode, Result


def uid(i: int) -> str:
    return str(dataset(i)["00080018"]["Value"][0])


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    yield from daemon_pool()


@contextmanager
def tmpfs(path: Path, *, size: str, inodes: int) -> Iterator[Path]:
    """A small tmpfs at *path*: a filesystem that really fills up."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    options = f"size={size},nr_inodes={inodes},mode=0755"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def outcomes(counts: dict[str, int]) -> int:
    return sum(counts.get(k, 0) for k in ("done", "partial", "failed"))


def logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


# -- row 4: collisions ------------------------------------------------------------------------


def test_the_atomic_writer_can_publish_without_replacing(tmp_path: Path) -> None:
    from streamconv.sinks import write_atomic

    target = tmp_path / "x.dcm"
    assert write_atomic(str(target), [b"first"], replace=False, tag="wabc123-1") == 5
    with pytest.raises(OutputError) as caught:
        write_atomic(str(target), [b"second"], replace=False, tag="wabc123-1")
    assert caught.value.errno == errno.EEXIST
    assert target.read_bytes() == b"first"
    assert os.listdir(tmp_path) == ["x.dcm"]  # no temporary left
    write_atomic(str(target), [b"third"])  # replacing is still the default
    assert target.read_bytes() == b"third"


@pytest.mark.anyio
async def test_two_inputs_for_one_output_name_neither_is_lost(tree: Tree) -> None:
    """b.json and b.ndjson dropped together: one becomes b.dcm, the other goes to failed/
    with the reason; no input is reported done without its output."""
    async with running(tree.config()) as watcher:
        drop(tree.inbox, "b.json", text(1))
        drop(tree.inbox, "b.ndjson", text(2) + "\n")
        await wait_for(lambda: outcomes(watcher.counts()) == 2)
    assert files(tree.out) == {"b.dcm"}
    done, failed = files(tree.done), files(tree.failed)
    assert len(done) == 1, (done, failed)
    winner = done.pop()
    loser = ({"b.json", "b.ndjson"} - {winner}).pop()
    assert read_back(tree.out / "b.dcm").SOPInstanceUID == uid(1 if winner == "b.json" else 2)
    assert loser in failed
    report = sidecars(tree.failed)[loser]
    assert (report["category"], report["exit_code"], report["transient"]) == ("output", 40, False)
    assert "output 'b.dcm' exists" in report["message"]


@pytest.mark.anyio
async def test_the_same_name_dropped_twice_replaces_nothing(tree: Tree) -> None:
    async with running(tree.config()) as watcher:
        drop(tree.inbox, "a.json", text(1))
        await wait_for(lambda: (tree.done / "a.json").exists())
        drop(tree.inbox, "a.json", text(2))
        await wait_for(lambda: outcomes(watcher.counts()) == 2)
    assert json.loads((tree.done / "a.json").read_text()) == dataset(1)  # the first, untouched
    assert read_back(tree.out / "a.dcm").SOPInstanceUID == uid(1)
    assert json.loads((tree.failed / "a.json").read_text()) == dataset(2)  # the second, kept
    assert "exists" in sidecars(tree.failed)["a.json"]["message"]


@pytest.mark.anyio
async def test_the_same_name_twice_with_different_outputs_keeps_both_in_done(tree: Tree) -> None:
    async with running(tree.config(filename_template="{SOPInstanceUID}.dcm")) as watcher:
        drop(tree.inbox, "a.json", text(1))
        await wait_for(lambda: (tree.done / "a.json").exists())
        drop(tree.inbox, "a.json", text(2))
        await wait_for(lambda: watcher.counts().get("done") == 2)
    assert files(tree.out) == {f"{uid(1)}.dcm", f"{uid(2)}.dcm"}
    kept = files(tree.done)
    assert len(kept) == 2 and "a.json" in kept
    (other,) = kept - {"a.json"}
    assert re.fullmatch(r"a\.json\.[0-9a-f]{6}", other)
    assert json.loads((tree.done / "a.json").read_text()) == dataset(1)
    assert json.loads((tree.done / other).read_text()) == dataset(2)


@pytest.mark.anyio
async def test_a_retry_replaces_its_own_outputs(tree: Tree) -> None:
    """Outputs written by an earlier attempt of the same input are its own: replaced."""
    bulk = tree.inbox / "bulk"
    bulk.mkdir()
    async with running(tree.config(f"+Bd {bulk}", retry_delay=0.3)) as watcher:
        drop(tree.inbox, "two.ndjson", text(0) + "\n" + with_bulk(1) + "\n")
        await wait_for(lambda: watcher.counts().get("retried", 0) >= 1)
        assert files(tree.out) == {"two/000000.dcm"}  # the first dataset, from attempt 1
        (bulk / "pixels.raw").write_bytes(b"\x01\x02" * 8)
        await wait_for(lambda: (tree.done / "two.ndjson").exists())
    assert files(tree.out) == {"two/000000.dcm", "two/000001.dcm"}
    assert files(tree.failed) == set()


@pytest.mark.anyio
async def test_an_adopted_input_replaces_what_it_wrote_but_not_older_outputs(tree: Tree) -> None:
    """A dead daemon's input: an output written after its claim is its own (replaced); one
    older than the claim belongs to another input (kept, the input to failed/)."""
    dead = tree.processing / "deadhost.4242.abcdef"
    dead.mkdir(parents=True)
    (dead / ".lock").write_text("pid=4242\n")
    (dead / "mine.json").write_text(text(1))
    (dead / "older.json").write_text(text(2))
    tree.out.mkdir()
    (tree.out / "mine.dcm").write_bytes(b"half done by the dead daemon")
    (tree.out / "older.dcm").write_bytes(b"another input's output")
    os.utime(tree.out / "older.dcm", (1_000_000_000, 1_000_000_000))  # long before the claim
    async with running(tree.config()) as watcher:
        await wait_for(lambda: outcomes(watcher.counts()) == 2)
    assert files(tree.done) == {"mine.json"}
    assert read_back(tree.out / "mine.dcm").SOPInstanceUID == uid(1)
    assert (tree.out / "older.dcm").read_bytes() == b"another input's output"
    assert "exists" in sidecars(tree.failed)["older.json"]["message"]


# -- row 5: the inbox removed and made again ------------------------------------------------------


@pytest.mark.anyio
async def test_a_removed_and_recreated_inbox_is_watched_again(
    tree: Tree, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="streamconv")
    async with running(tree.config(rescan_interval=120.0)) as watcher:
        drop(tree.inbox, "before.json", text(0))
        await wait_for(lambda: watcher.counts().get("done") == 1)
        tree.inbox.rmdir()
        await wait_for(lambda: any("was removed" in m for m in logged(caplog)), 5)
        tree.inbox.mkdir()
        drop(tree.inbox, "after.json", text(1))
        # long before the 120 s rescan: the watch is back within a second or two
        await wait_for(lambda: (tree.done / "after.json").exists(), 5)
    assert any(f"inbox {tree.inbox} is back" in m for m in logged(caplog))
    assert files(tree.out) == {"before.dcm", "after.dcm"}


# -- row 6: temporaries of a dead worker or daemon -------------------------------------------------

BIG = 384 << 20  # bytes of bulk data: the output's temporary lives for a while


def children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(c) for c in f.read().split()]
    return out


def writer_of(path: Path, daemons: list[Daemon]) -> tuple[Daemon, int] | None:
    """The daemon, and its worker process, that has *path* open."""
    for d in daemons:
        for child in children(d.proc.pid):
            try:
                fds = os.listdir(f"/proc/{child}/fd")
            except FileNotFoundError:
                continue
            for fd in fds:
                try:
                    if os.readlink(f"/proc/{child}/fd/{fd}") == str(path):
                        return d, child
                except OSError:
                    continue
    return None


def big_input(tmp_path: Path) -> Path:
    inbox = tmp_path / "inbox"
    (inbox / "bulk").mkdir(parents=True)
    with open(inbox / "bulk" / "pixels.raw", "wb") as f:
        f.truncate(BIG)  # sparse: cheap to make, slow to write out
    return inbox


def caught_writing(tmp_path: Path, daemons: list[Daemon]) -> tuple[Path, Daemon, int]:
    """Wait for the big output's temporary, and who writes it."""
    out = tmp_path / "out"
    found: list[tuple[Path, Daemon, int]] = []

    def look() -> bool:
        for part in out.glob(".big.dcm.*.part") if out.exists() else []:
            who = writer_of(part, daemons)
            if who is not None:
                found.append((part, *who))
                return True
        return False

    wait_until(look, 60, "the big output's temporary")
    return found[0]


def two_daemons(tmp_path: Path, daemons: list[Daemon]) -> Path:
    inbox = big_input(tmp_path)
    config = write_config(
        tmp_path / "watch.toml", jobs=1, inbox_extra=f'options = "+Bd {inbox / "bulk"}"'
    )
    for _ in range(2):
        daemons.append(Daemon(tmp_path, config))
    for d in daemons:
        d.wait_for_message("READY=1")
    drop(inbox, "big.json", with_bulk(0))
    return inbox


@pytest.mark.slow
def test_a_killed_workers_temporaries_are_removed(tmp_path: Path, daemons: list[Daemon]) -> None:
    two_daemons(tmp_path, daemons)
    part, daemon, pid = caught_writing(tmp_path, daemons)
    os.kill(pid, signal.SIGKILL)  # the worker, not its daemon
    wait_until(lambda: not part.exists(), 10, f"{part.name} removed")
    wait_until(lambda: (tmp_path / "done" / "big.json").exists(), 120, "big.json converted")
    assert daemon.proc.poll() is None
    assert "removed 1 temporary file(s) of the worker that died" in daemon.log()
    assert (tmp_path / "out" / "big.dcm").stat().st_size > BIG
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_a_killed_daemons_temporaries_are_removed_by_the_other(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    two_daemons(tmp_path, daemons)
    part, daemon, _ = caught_writing(tmp_path, daemons)
    daemon.send(signal.SIGKILL)  # its workers die with it (PR_SET_PDEATHSIG)
    daemon.wait()
    (other,) = [d for d in daemons if d is not daemon]
    wait_until(lambda: not part.exists(), 15, f"{part.name} removed by the other daemon")
    wait_until(lambda: (tmp_path / "done" / "big.json").exists(), 120, "big.json converted")
    assert "temporary file(s) of the dead daemon" in other.log()
    assert (tmp_path / "out" / "big.dcm").stat().st_size > BIG
    assert leftovers(tmp_path) == []


# -- rows 8 and 9: full disks -------------------------------------------------------------------


def test_no_space_and_quota_are_the_same_fact() -> None:
    from streamconv.watch.outputs import no_space

    for code in (errno.ENOSPC, errno.EDQUOT):
        err = OutputError("cannot write")
        err.errno = code
        assert no_space(err)
    assert not no_space(OutputError("cannot write"))


@pytest.mark.anyio
async def test_no_free_inodes_pause_intake_and_nothing_fails(
    tree: Tree, caplog: pytest.LogCaptureFixture
) -> None:
    """ENOSPC with bytes free (the inode table is full): intake pauses like below
    min_free_bytes; the inputs continue when room comes back; none ends in failed/."""
    caplog.set_level("INFO", logger="streamconv")
    n = 12
    taken = tree.root / "taken"  # where a consumer puts the outputs it took
    taken.mkdir()
    with tmpfs(tree.out, size="16m", inodes=6):
        config = tree.config(retry_attempts=2, retry_delay=0.05, min_free_bytes=1)
        async with running(config) as watcher:
            for i in range(n):
                drop(tree.inbox, f"i{i:02d}.json", text(i))
            await wait_for(
                lambda: (
                    any("intake paused" in m for m in logged(caplog)) or bool(files(tree.failed))
                )
            )
            assert files(tree.failed) == set()
            vfs = os.statvfs(tree.out)
            assert vfs.f_bavail * vfs.f_frsize > 1 << 20  # bytes free all along
            with anyio.fail_after(90):
                while len(files(tree.done)) < n:  # a consumer takes the outputs away
                    for p in tree.out.glob("*.dcm"):
                        shutil.move(p, taken / p.name)
                    assert files(tree.failed) == set()
                    await anyio.sleep(0.1)
            for p in tree.out.glob("*.dcm"):
                shutil.move(p, taken / p.name)
    assert files(tree.failed) == set()
    assert {p.name for p in taken.iterdir()} == {f"i{i:02d}.dcm" for i in range(n)}
    for i in range(n):
        assert read_back(taken / f"i{i:02d}.dcm").SOPInstanceUID == uid(i)
    assert any("intake resumed" in m for m in logged(caplog))
    assert watcher.counts().get("retried", 0) == 0  # a full disk is not an attempt


def fill_inodes(folder: Path) -> list[Path]:
    """Files in *folder* until the filesystem has no inode left."""
    folder.mkdir()
    made: list[Path] = []
    while True:
        path = folder / f"f{len(made)}"
        try:
            path.touch()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
            return made
        made.append(path)


@pytest.mark.anyio
async def test_failed_on_a_full_filesystem(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """failed/ cannot take the record of a failed input: the input waits (the category of
    its own failure, no attempt counted, never "internal"), and lands when room is back."""
    caplog.set_level("INFO", logger="streamconv")
    with tmpfs(tmp_path / "fs", size="16m", inodes=48) as fs:
        tree = Tree(fs)
        bad = text(0, **{"00200013": {"vr": "IS", "Value": ["twelve"]}})
        async with running(tree.config(retry_attempts=3, retry_delay=0.05)) as watcher:
            fillers = fill_inodes(fs / "filler")
            fillers.pop().unlink()  # one inode left: the input takes it
            drop(tree.inbox, "bad.json", bad)
            await wait_for(lambda: any("paused" in m or "retry" in m for m in logged(caplog)))
            assert not [m for m in logged(caplog) if "internal" in m or "retry" in m]
            await wait_for(lambda: watcher.probes >= 2)  # tried again, still full
            assert files(tree.failed) == set()
            for p in fillers[:8]:
                p.unlink()
            await wait_for(lambda: (tree.failed / "bad.error.json").exists(), 20)
        report = json.loads((tree.failed / "bad.error.json").read_text())
        assert files(tree.failed) == {"bad.json", "bad.error.json"}
    assert (report["category"], report["exit_code"], report["attempts"]) == ("content", 65, 1)
    messages = logged(caplog)
    assert not [m for m in messages if "internal" in m]
    paused = [m for m in messages if "intake paused" in m]
    assert "content (exit 65)" in paused[0] and "no space left on device" in paused[0]
    for m in messages:
        for tried, limit in re.findall(r"attempt (\d+) of (\d+)", m):
            assert int(tried) <= int(limit), m


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """*folder* made read-only by a bind mount over itself (root ignores mode bits)."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    for args in (["--bind", str(folder), str(folder)], ["-o", "remount,bind,ro", str(folder)]):
        done = subprocess.run(["mount", *args], capture_output=True, text=True)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=False)
            pytest.skip(f"cannot bind-mount read-only here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.anyio
async def test_failed_that_cannot_be_written_stops_at_the_retry_limit(
    tree: Tree, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a full disk (read-only failed/): retried retry_attempts times, counted truly, then
    left claimed in processing/ with an error line, for the next start."""
    caplog.set_level("INFO", logger="streamconv")
    tree.failed.mkdir()
    bad = text(0, **{"00200013": {"vr": "IS", "Value": ["twelve"]}})
    with read_only(tree.failed):
        async with running(tree.config(retry_attempts=3, retry_delay=0.05)):
            drop(tree.inbox, "bad.json", bad)
            await wait_for(lambda: any("cannot be moved" in m for m in logged(caplog)))
    messages = logged(caplog)
    tries = [m for m in messages if m.startswith("retry ")]
    assert [re.search(r"attempt (\d+) of 3", m).group(1) for m in tries] == ["1", "2"]  # type: ignore[union-attr]
    (stuck,) = [m for m in messages if "cannot be moved" in m]
    assert "after 3 attempt(s)" in stuck and "output (exit 40)" in stuck
    assert "the input failed: content (exit 65)" in stuck
    assert not [m for m in messages if "internal" in m]
    assert tree.claimed() == {"bad.json"} and files(tree.failed) == set()


# -- the documented limit: a file changed after it was taken ------------------------------------


def test_an_input_changed_after_it_was_read_is_not_moved_to_done(tree: Tree) -> None:
    """Size, mtime or inode changed between the read and the move: not done/; it stays
    claimed and is converted again, whole (the daemon does this after quiet_period)."""
    (tree.inbox / "grow.ndjson").write_text(text(0) + "\n")
    j = job(tree, "grow.ndjson", Mode.SETTLED)
    pending = worker._process(j)  # checked, claimed, converted; outputs being written
    assert not isinstance(pending, Result)
    claimed = Path(j.claim_dir) / "grow.ndjson"
    with open(claimed, "a") as f:  # the producer was not finished
        f.write(text(1) + "\n")
    pending.writer.wait()
    result = pending.finish()
    assert (result.status, result.directory) == ("changed", j.claim_dir)
    assert files(tree.done) == set() and claimed.exists()
    again = replace(j, directory=j.claim_dir, mode=Mode.CLAIMED, owned=frozenset(result.published))
    result = worker.process_input(again)
    assert result.status == "done"
    assert files(tree.out) == {"grow/000000.dcm", "grow/000001.dcm"}  # grow.dcm was replaced
    assert files(tree.done) == {"grow.ndjson"}
