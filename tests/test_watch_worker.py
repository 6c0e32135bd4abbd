"""The worker side in-process: one input through check, claim, conversion and outcome."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from watchkit import (
    Tree,
    dataset,
    files,
    job,
    text,
)

from streamconv.watch import claims, worker
from streamconv.watch.jobs import SMALL_INPUT, Mode


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


def test_refused_entries_are_never_opened(tree: Tree) -> None:
    """The worker itself, handed a FIFO (as if swapped in after the scan): lstat, no open."""
    os.mkfifo(tree.inbox / "p.json")
    result = worker.process_input(job(tree, "p.json", Mode.SETTLED))  # would block if opened
    assert result.status == "failed"
    assert result.error is not None and result.error.category == "refused"
    assert stat.S_ISFIFO(os.lstat(tree.failed / "p.json").st_mode)


def test_a_refused_entry_that_cannot_be_moved_is_left_alone(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory the daemon may not write to cannot be renamed: left where it is."""
    (tree.inbox / "d.json").mkdir()
    j = job(tree, "d.json", Mode.FAST)

    def rename(src: str, dst: str) -> None:
        raise PermissionError(13, "Permission denied")

    # root may move any directory: the refusal the kernel gives others, at the claim's rename
    monkeypatch.setattr(claims, "rename_noreplace", rename)
    result = worker.process_input(j)
    assert (result.status, result.reason) == (
        "left",
        "directory; cannot move it: Permission denied",
    )
    assert result.sig is not None and result.sig[0] == os.lstat(tree.inbox / "d.json").st_ino
    assert (tree.inbox / "d.json").is_dir() and files(tree.failed) == set()


@pytest.mark.parametrize("small_input", [SMALL_INPUT, 100])
def test_input_that_grows_past_the_limit_fails_in_the_pre_pass(
    tree: Tree, monkeypatch: pytest.MonkeyPatch, small_input: int
) -> None:
    """A file under the limit at lstat time that is bigger when read: the parse stops."""
    monkeypatch.setattr(worker, "SMALL_INPUT", small_input)  # read whole, or checked in chunks
    content = text(0) + "\n" + text(1)
    j = job(tree, "grew.ndjson", Mode.SETTLED)
    limits = j.inbox.options.limits._replace(max_input_bytes=len(text(0)) + 10)
    inbox = replace(j.inbox, max_input_bytes=0, options=j.inbox.options._replace(limits=limits))
    (tree.inbox / "grew.ndjson").write_text(content)
    result = worker.process_input(replace(j, inbox=inbox))
    assert result.status == "failed"
    assert result.error is not None and result.error.category == "limit"
    assert "--max-input-bytes" in result.error.message
    assert files(tree.failed) == {"grew.ndjson", "grew.error.json"}
    assert files(tree.out) == set()


def test_large_input_is_checked_then_streamed(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "SMALL_INPUT", 100)  # every input counts as large
    monkeypatch.setattr(worker, "READ_SIZE", 64)
    (tree.inbox / "big.ndjson").write_text("".join(text(i) + "\n" for i in range(5)))
    result = worker.process_input(job(tree, "big.ndjson", Mode.SETTLED))
    assert (result.status, result.converted, result.outputs) == ("done", 5, 5)
    assert files(tree.out) == {f"big/{i:06d}.dcm" for i in range(5)}
    assert files(tree.done) == {"big.ndjson"}
    (tree.inbox / "cut.json").write_text(text(0)[:-3])
    result = worker.process_input(job(tree, "cut.json", Mode.SETTLED))
    assert (result.status, result.reason) == ("not_ready", "incomplete")
    assert files(tree.inbox) == {"cut.json"}


@pytest.mark.parametrize(
    ("content", "mode", "status", "reason"),
    [
        (text(0), Mode.FAST, "done", ""),
        (text(0)[:-1], Mode.FAST, "not_ready", "incomplete"),
        ("", Mode.FAST, "not_ready", "incomplete"),
        ("", Mode.EXPIRED, "failed", ""),
        ('{"x": [}', Mode.FAST, "not_ready", "unsettled"),  # settle first, then fail
        ('{"x": [}', Mode.SETTLED, "failed", ""),
        (text(0) + "\n" + text(1), Mode.FAST, "not_ready", "unsettled"),  # NDJSON
        (text(0) + "\n" + text(1), Mode.SETTLED, "done", ""),
        (json.dumps([dataset(0), dataset(1)]), Mode.FAST, "done", ""),  # an array closes
    ],
)
def test_readiness(tree: Tree, content: str, mode: Mode, status: str, reason: str) -> None:
    """The completion rules (daemon-conventions §2), one input at a time."""
    (tree.inbox / "x.json").write_text(content)
    result = worker.process_input(job(tree, "x.json", mode))
    assert (result.status, result.reason) == (status, reason)
    where = (
        tree.inbox if status == "not_ready" else (tree.done if status == "done" else tree.failed)
    )
    assert "x.json" in files(where)


def test_claim_lost_to_another_daemon(tree: Tree) -> None:
    """The rename is the lock: an input that vanished between the read and the claim is gone."""
    (tree.inbox / "x.json").write_text(text(0))
    j = job(tree, "x.json", Mode.FAST)
    (tree.inbox / "x.json").rename(tree.root / "elsewhere.json")
    assert worker.process_input(j).status == "gone"
    assert files(tree.out) == set()
