"""streamconv watch, in-process: ``serve()`` on real folders, real watchfiles events and real
worker processes. (Signals, kill -9 and several daemons: tests/test_watch_daemon.py; the worker
alone: test_watch_worker.py; the scheduler with a clock of its own: test_watch_intake.py.)"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import anyio
import pytest
from watchkit import (
    IGNORED,
    QUIET,
    Clock,
    Tree,
    dataset,
    drop,
    files,
    read_back,
    running,
    sidecars,
    temps,
    text,
    wait_for,
    with_bulk,
    write_raw,
    write_slowly,
)

from streamconv.watch import daemon, intake
from streamconv.watch.claims import make_claim_dir
from streamconv.watch.config import ConfigError, Naming, load_config


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


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
    """The scheduler's clock stands still (injected): a truncated file found incomplete waits
    for a change or max_age, whatever the real time; once completed it is taken."""
    data = text(3)
    clock = Clock()
    async with running(tree.config(max_age=60.0), clock) as watcher:
        drop(tree.inbox, "cut.json", data[:-20])  # renamed in, but truncated
        state = watcher.states[str(tree.inbox)]
        key = (str(tree.inbox), "cut.json")
        await wait_for(lambda: key in state.candidates and state.candidates[key].reason != "")
        cand = state.candidates[key]
        assert cand.reason == "incomplete" and cand.due == cand.first_seen + 60.0
        clock.advance(59.0)  # not yet max_age
        watcher.intake.wake()
        assert watcher.intake.pop_due() is None
        assert files(tree.inbox) == {"cut.json"}  # not ready yet, not failed, not claimed
        assert files(tree.out) == files(tree.failed) == set()
        await anyio.to_thread.run_sync(
            write_slowly, tree.inbox / "cut.json", [data[-20:].encode()], 0.0, "ab"
        )
        # the change is seen (an event): due once it has been quiet for quiet_period
        await wait_for(lambda: cand.in_place and cand.due == cand.sig_since + QUIET)
        clock.advance(QUIET)
        watcher.intake.wake()
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


@pytest.mark.anyio
async def test_temporaries_and_other_patterns_are_left_alone(tree: Tree) -> None:
    for name in [*IGNORED, "notes.txt"]:
        (tree.inbox / name).write_text(text(0))
    async with running(tree.config(rescan_interval=0.2)) as watcher:
        drop(tree.inbox, "real.json", text(0))
        await wait_for(lambda: (tree.done / "real.json").exists())
        scans = watcher.scans
        await wait_for(lambda: watcher.scans >= scans + 2)  # rescans saw them too
        assert all(not state.candidates for state in watcher.states.values())
    assert files(tree.inbox) == {*IGNORED, "notes.txt"}
    assert files(tree.out) == {"real.dcm"}


# -- hostile inbox entries, the input size limit, a flood (issue 5) -----------------------


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
    assert (tree.failed / (moved[0].name + ".error.json")).exists()  # dir.json was taken
    assert tree.claimed() == set()


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
        assert len(state.candidates) == intake.MAX_TRACKED
        await anyio.to_thread.run_sync(make, first, n)
        deadline = anyio.current_time() + 8.0
        while anyio.current_time() < deadline:
            peak = max(peak, len(state.candidates))
            peak_heap = max(peak_heap, len(watcher.intake.heap))
            await anyio.sleep(0.05)
        done = watcher.counts().get("done", 0)
    assert peak <= intake.MAX_TRACKED
    assert peak_heap <= 3 * intake.MAX_TRACKED
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
    monkeypatch.setattr(intake, "MAX_TRACKED", 4)
    monkeypatch.setattr(daemon, "MAX_TRACKED", 4)
    async with running(tree.config(jobs=1, max_inflight=2)) as watcher:
        for i in range(12):
            drop(tree.inbox, f"q{i:02d}.json", text(i))
        await wait_for(lambda: watcher.counts().get("done") == 12, 30)
    assert files(tree.out) == {f"q{i:02d}.dcm" for i in range(12)}


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
        async with running(tree.config(rescan_interval=0.3)) as watcher:
            drop(tree.inbox, "mine.json", text(1))
            await wait_for(lambda: (tree.done / "mine.json").exists())
            recoveries = watcher.recoveries
            await wait_for(lambda: watcher.recoveries >= recoveries + 2)  # looked at it twice
            assert all(not state.adopted for state in watcher.states.values())
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
        await wait_for(lambda: watcher.paused and watcher.deferred >= 1)  # handed back
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
