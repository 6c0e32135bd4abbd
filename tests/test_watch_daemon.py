"""streamconv watch as a real process: kill -9 at random moments, two daemons on one inbox,
SIGTERM (drain, then exit now), SIGHUP (reload), sd_notify over a real NOTIFY_SOCKET."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from watchkit import Daemon, daemon_pool, leftovers, names, wait_until, write_config

N_KILL = 300  # inputs of the kill -9 test


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    yield from daemon_pool()


def dataset(i: int) -> dict[str, Any]:
    return {
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
        "00080018": {"vr": "UI", "Value": [f"1.2.826.0.1.3680043.8.498.{i + 1}"]},
        "00080060": {"vr": "CS", "Value": ["CT"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]},
        "00200013": {"vr": "IS", "Value": [i + 1]},
        "00280010": {"vr": "US", "Value": [512]},
    }


def drop(inbox: Path, name: str, content: str) -> None:
    tmp = inbox / f".{name}.part"
    tmp.write_text(content)
    os.rename(tmp, inbox / name)


def done_lines(log: str) -> list[str]:
    """The input names of the daemon's "done" lines."""
    return [
        os.path.basename(line.split(" ", 2)[2].split(":", 1)[0])
        for line in log.splitlines()
        if line.startswith("I: done ")
    ]


def check_outputs(root: Path, expected: list[str]) -> None:
    """Each input converted exactly once: one output each, readable, right content."""
    out = root / "out"
    produced = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert produced == sorted(n.replace(".json", ".dcm") for n in expected)
    for name in expected:
        i = int(name[2:7])
        ds = pydicom.dcmread(out / name.replace(".json", ".dcm"))
        assert ds.SOPInstanceUID == f"1.2.826.0.1.3680043.8.498.{i + 1}"


@pytest.mark.slow
def test_kill_9_at_random_moments(tmp_path: Path, daemons: list[Daemon]) -> None:
    rng = random.Random(4)
    config = write_config(tmp_path / "watch.toml")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    expected = [f"in{i:05d}.json" for i in range(N_KILL)]
    contents = {name: json.dumps(dataset(i)) for i, name in enumerate(expected)}

    def producer() -> None:  # drops keep coming while daemons die
        for name in expected:
            drop(inbox, name, contents[name])
            time.sleep(0.008)

    thread = threading.Thread(target=producer)
    thread.start()
    try:
        kills = 0
        for _ in range(7):
            d = Daemon(tmp_path, config)
            daemons.append(d)
            if rng.random() < 0.3:
                time.sleep(rng.uniform(0.0, 0.4))  # maybe still starting up
            else:
                d.wait_for_message("READY=1")
                time.sleep(rng.uniform(0.05, 0.6))
            d.send(signal.SIGKILL)
            d.wait()
            kills += 1
    finally:
        thread.join()
    final = Daemon(tmp_path, config)
    daemons.append(final)
    final.wait_for_message("READY=1")
    wait_until(
        lambda: len(names(tmp_path / "done")) + len(names(tmp_path / "failed")) >= N_KILL,
        90,
        "every input in done/ or failed/",
    )
    final.send(signal.SIGTERM)
    assert final.wait() == 0, final.log()
    assert kills == 7
    assert names(tmp_path / "failed") == set()
    assert names(tmp_path / "done") == set(expected)
    assert names(inbox) == set()
    check_outputs(tmp_path, expected)
    assert leftovers(tmp_path) == []
    assert list((tmp_path / "processing").iterdir()) == []  # every claim folder gone


@pytest.mark.slow
def test_two_daemons_on_one_inbox(tmp_path: Path, daemons: list[Daemon]) -> None:
    config = write_config(tmp_path / "watch.toml", jobs=1)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    a, b = Daemon(tmp_path, config), Daemon(tmp_path, config)
    daemons += [a, b]
    a.wait_for_message("READY=1")
    b.wait_for_message("READY=1")
    expected = [f"in{i:05d}.json" for i in range(200)]
    for i, name in enumerate(expected):
        drop(inbox, name, json.dumps(dataset(i)))
    wait_until(lambda: len(names(tmp_path / "done")) == 200, 60, "200 inputs in done/")
    for d in (a, b):
        d.send(signal.SIGTERM)
    assert a.wait() == 0 and b.wait() == 0
    by_a, by_b = done_lines(a.log()), done_lines(b.log())
    assert len(by_a) == len(set(by_a)) and len(by_b) == len(set(by_b))
    assert set(by_a).isdisjoint(by_b), "an input converted by both daemons"
    assert sorted(by_a + by_b) == expected
    assert by_a and by_b, "both daemons took a share"
    check_outputs(tmp_path, expected)
    assert list((tmp_path / "processing").iterdir()) == []


def big_ndjson(n: int) -> str:
    return "".join(json.dumps(dataset(i)) + "\n" for i in range(n))


def claimed(root: Path) -> set[str]:
    return {p.name for p in (root / "processing").glob("*/*") if not p.name.startswith(".")}


def test_sigterm_drains(tmp_path: Path, daemons: list[Daemon]) -> None:
    config = write_config(tmp_path / "watch.toml", jobs=1, extra="grace_period = 60")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    d = Daemon(tmp_path, config)
    daemons.append(d)
    d.wait_for_message("READY=1")
    drop(inbox, "big.ndjson", big_ndjson(400))
    wait_until(lambda: claimed(tmp_path) == {"big.ndjson"}, 20, "the input to be claimed")
    d.send(signal.SIGTERM)
    d.wait_for_message("STOPPING=1", 5)
    drop(inbox, "late.json", json.dumps(dataset(0)))  # intake has stopped
    assert d.wait(60) == 0, d.log()
    assert names(tmp_path / "done") == {"big.ndjson"}
    assert len(names(tmp_path / "out" / "big")) == 400
    assert names(inbox) == {"late.json"}
    assert list((tmp_path / "processing").iterdir()) == []
    assert "draining: 1 input(s) in flight" in d.log()


def test_second_sigterm_exits_at_once_and_the_input_is_resumed(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    config = write_config(tmp_path / "watch.toml", jobs=1, extra="grace_period = 60")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    d = Daemon(tmp_path, config)
    daemons.append(d)
    d.wait_for_message("READY=1")
    drop(inbox, "big.ndjson", big_ndjson(1000))
    wait_until(lambda: claimed(tmp_path) == {"big.ndjson"}, 20, "the input to be claimed")
    d.send(signal.SIGTERM)
    d.wait_for_message("STOPPING=1", 5)
    started = time.monotonic()
    d.send(signal.SIGTERM)
    assert d.wait(10) == 0, d.log()
    assert time.monotonic() - started < 3
    assert claimed(tmp_path) == {"big.ndjson"}  # left for the next start
    assert names(tmp_path / "done") == set()
    again = Daemon(tmp_path, config)
    daemons.append(again)
    again.wait_for_message("READY=1")
    wait_until(lambda: names(tmp_path / "done") == {"big.ndjson"}, 60, "the resumed input")
    again.send(signal.SIGTERM)
    assert again.wait() == 0
    assert len(names(tmp_path / "out" / "big")) == 1000
    assert leftovers(tmp_path) == []
    assert "resuming 1 input(s)" in again.log()


def test_sighup_reloads_and_the_service_protocol(tmp_path: Path, daemons: list[Daemon]) -> None:
    config = write_config(tmp_path / "watch.toml")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    drop(inbox, "early.json", json.dumps(dataset(0)))  # before the start: the first scan finds it
    d = Daemon(tmp_path, config, env={"WATCHDOG_USEC": "400000"})
    daemons.append(d)
    ready = d.wait_for_message("READY=1")
    assert any(f.startswith("STATUS=") for f in ready)
    d.wait_for_message("WATCHDOG=1", 5)
    wait_until(lambda: names(tmp_path / "done") == {"early.json"}, 20, "early.json")
    ts = pydicom.dcmread(tmp_path / "out" / "early.dcm").file_meta.TransferSyntaxUID
    assert ts == "1.2.840.10008.1.2.1"

    # a configuration that does not parse: logged, the old one kept
    good = config.read_text()
    config.write_text(good + "[[inbox]]\npath = 5\n")
    d.messages.clear()
    d.send(signal.SIGHUP)
    d.wait_for_message("RELOADING=1", 10)
    failed = d.wait_for_message("READY=1", 10)
    assert any(f.startswith("STATUS=reload failed") for f in failed)

    # a good one: big endian from now on
    write_config(config, inbox_extra='options = "+tb"')
    d.messages.clear()
    d.send(signal.SIGHUP)
    d.wait_for_message("RELOADING=1", 10)
    d.wait_for_message("READY=1", 10)
    drop(inbox, "later.json", json.dumps(dataset(1)))
    wait_until(lambda: "later.json" in names(tmp_path / "done"), 20, "later.json")
    ts = pydicom.dcmread(tmp_path / "out" / "later.dcm").file_meta.TransferSyntaxUID
    assert ts == "1.2.840.10008.1.2.2"
    d.send(signal.SIGTERM)
    assert d.wait() == 0
    log = d.log()
    assert "reload failed, keeping the previous configuration" in log
    assert "configuration reloaded" in log


def test_one_log_line_per_input_without_patient_data(tmp_path: Path, daemons: list[Daemon]) -> None:
    config = write_config(tmp_path / "watch.toml")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    d = Daemon(tmp_path, config)
    daemons.append(d)
    d.wait_for_message("READY=1")
    bad = dataset(1)
    bad["00100020"] = {"vr": "IS", "Value": ["Secret^Patient"]}
    drop(inbox, "ok.json", json.dumps(dataset(0)))
    drop(inbox, "bad.json", json.dumps(bad))
    wait_until(lambda: len(names(tmp_path / "done")) + len(names(tmp_path / "failed")) == 3, 20,
               "both outcomes")  # fmt: skip
    d.send(signal.SIGTERM)
    assert d.wait() == 0
    lines = [line for line in d.log().splitlines() if "/ok.json:" in line or "/bad.json:" in line]
    assert len(lines) == 2, lines
    assert lines[0].startswith(("I: done", "E: failed")) and lines[1].startswith(
        ("I: done", "E: failed")
    )
    assert "Secret" not in d.log() and "Doe" not in d.log()
    assert "Secret^Patient" in (tmp_path / "failed" / "bad.error.json").read_text()


@pytest.mark.parametrize(
    ("argv", "code", "text"),
    [
        ([], 0, "usage: streamconv watch INBOX"),
        (["--help"], 0, "--output-dir DIR"),
        (["inbox"], 1, "--output-dir DIR is required"),
        (["--config", "/nonexistent.toml"], 1, "does not exist"),
    ],
)
def test_command_exit_codes(argv: list[str], code: int, text: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "streamconv", "watch", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == code
    assert text in proc.stdout + proc.stderr
