"""The intake scheduler with a clock of its own (no sleeping): when each input is looked at,
and what the worker is told (daemon-conventions §2). Real files give the stat results."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from watchfiles import Change
from watchkit import IGNORED, Clock, text

from streamconv.watch.claims import ClaimDir
from streamconv.watch.config import make_inbox
from streamconv.watch.events import InputFilter, scan_inbox
from streamconv.watch.intake import Candidate, InboxState, Intake
from streamconv.watch.jobs import Mode, Result

QUIET = 5.0
MAX_AGE = 600.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def intake(clock: Clock) -> Intake:
    return Intake(clock)


@pytest.fixture
def state(tmp_path: Path) -> InboxState:
    (tmp_path / "inbox").mkdir()
    inbox = make_inbox(
        path=str(tmp_path / "inbox"),
        output_dir=str(tmp_path / "out"),
        words=[],
        where="test",
        quiet_period=QUIET,
        max_age=MAX_AGE,
    )
    return InboxState(inbox, ClaimDir(str(tmp_path / "processing" / "me"), -1, own=True))


def put(state: InboxState, name: str, content: str, mode: str = "w") -> os.stat_result:
    path = Path(state.config.path) / name
    with open(path, mode) as f:
        f.write(content)
    return os.stat(path)


def seen(intake: Intake, state: InboxState, name: str, change: Change | None) -> Candidate:
    intake.observe(state, name, os.stat(Path(state.config.path) / name), change)
    return state.candidates[(state.config.path, name)]


def test_a_file_renamed_in_is_due_at_once_and_fast(intake: Intake, state: InboxState) -> None:
    put(state, "a.json", text(0))
    cand = seen(intake, state, "a.json", Change.added)
    assert intake.pop_due() is cand
    assert intake.mode(cand) is Mode.FAST


def test_a_file_written_in_place_waits_for_the_quiet_period(
    intake: Intake, state: InboxState, clock: Clock
) -> None:
    put(state, "b.json", text(0)[:10])
    cand = seen(intake, state, "b.json", Change.modified)
    clock.advance(QUIET - 0.01)
    assert intake.pop_due() is None  # nothing happens before the quiet period is over
    put(state, "b.json", text(0)[10:], "a")  # still being written: the quiet period restarts
    intake.observe(state, "b.json", os.stat(Path(state.config.path) / "b.json"), Change.modified)
    clock.advance(QUIET - 0.01)
    assert intake.pop_due() is None
    clock.advance(0.01)
    assert intake.pop_due() is cand
    assert intake.mode(cand) is Mode.SETTLED


def test_an_incomplete_file_waits_for_a_change_or_max_age(
    intake: Intake, state: InboxState, clock: Clock
) -> None:
    put(state, "cut.json", text(0)[:-5])
    cand = seen(intake, state, "cut.json", Change.added)
    assert intake.pop_due() is cand
    due = intake.not_ready(cand, Result("not_ready", "incomplete", cand.sig))
    assert due == cand.first_seen + MAX_AGE
    for _ in range(10):  # time passes, short of max_age: not looked at again
        clock.advance(MAX_AGE / 20)
        assert intake.pop_due() is None
    assert state.candidates  # still tracked, not dropped
    # completed by its writer: due once quiet, and no longer "fast"
    put(state, "cut.json", text(0)[-5:], "a")
    intake.observe(state, "cut.json", os.stat(Path(state.config.path) / "cut.json"), None)
    clock.advance(QUIET)
    assert intake.pop_due() is cand
    assert intake.mode(cand) is Mode.SETTLED


def test_an_incomplete_file_is_taken_as_it_is_after_max_age(
    intake: Intake, state: InboxState, clock: Clock
) -> None:
    put(state, "never.json", text(0)[:-5])
    cand = seen(intake, state, "never.json", Change.added)
    assert intake.pop_due() is cand
    intake.not_ready(cand, Result("not_ready", "incomplete", cand.sig))
    clock.advance(MAX_AGE - 0.01)
    assert intake.pop_due() is None
    clock.advance(0.01)
    assert intake.pop_due() is cand
    assert intake.mode(cand) is Mode.EXPIRED


def test_busy_names_wait_and_a_batch_never_holds_a_name_twice(
    intake: Intake, state: InboxState, clock: Clock
) -> None:
    for i in range(6):
        put(state, f"f{i}.json", text(i))
        seen(intake, state, f"f{i}.json", Change.added)
    state.busy.add("f0.json")  # being converted
    first = intake.pop_due()
    assert first is not None
    batch = intake.take_batch(first, free=2, room=100)
    names = [c.name for c, _ in batch]
    assert "f0.json" not in names
    assert len(names) == len(set(names)) == 3  # a fair share: 6 due, 2 free workers
    f0 = state.candidates[(state.config.path, "f0.json")]
    assert f0.due == clock() + 0.5  # looked at again shortly


def test_ignored_names_are_neither_scanned_nor_seen(state: InboxState) -> None:
    for name in [*IGNORED, "notes.txt"]:
        put(state, name, text(0))
    put(state, "real.json", text(0))
    assert [name for name, _ in scan_inbox(state.config)] == ["real.json"]
    filt = InputFilter([state.config], probe=".streamconv-probe.1.abcdef")
    inbox = state.config.path
    assert [
        n for n in [*IGNORED, "notes.txt", "real.json"] if filt(Change.added, f"{inbox}/{n}")
    ] == ["real.json"]
