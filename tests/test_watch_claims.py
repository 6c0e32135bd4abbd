"""Claim folders (watch/claims.py): recovery leaves a daemon that is starting alone."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from streamconv.watch.claims import (
    HALF_MADE_GRACE,
    LOCK_NAME,
    claim_entry,
    make_claim_dir,
    recover,
)


def _half_made(processing: Path, age: float) -> Path:
    """A claim folder as a daemon leaves it between its mkdir and its rename (lock unheld)."""
    hidden = processing / ".otherhost.4242.abcdef"
    hidden.mkdir(parents=True)
    (hidden / LOCK_NAME).write_bytes(b"")
    then = time.time() - age
    os.utime(hidden, (then, then))
    return hidden


def test_a_claim_folder_being_made_right_now_is_not_taken(tmp_path: Path) -> None:
    # two daemons started at the same instant: the one that recovers first must not lock (and
    # remove) the other's half-made folder, or the other's flock fails with EAGAIN and it exits
    processing = tmp_path / "processing"
    hidden = _half_made(processing, age=1.0)
    own = make_claim_dir(str(processing))
    try:
        recover(str(processing), own, [])
        assert hidden.is_dir()
        fd = os.open(hidden / LOCK_NAME, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # still free for its maker
        finally:
            os.close(fd)
    finally:
        own.release(remove=True)


def test_a_half_made_claim_folder_of_a_dead_daemon_is_removed(tmp_path: Path) -> None:
    processing = tmp_path / "processing"
    hidden = _half_made(processing, age=HALF_MADE_GRACE + 5)
    own = make_claim_dir(str(processing))
    try:
        recover(str(processing), own, [])
        assert not hidden.exists()
    finally:
        own.release(remove=True)


def test_a_claim_never_replaces_an_input_claimed_before(tmp_path: Path) -> None:
    # the same name dropped again while the first input is still in processing/: the second
    # waits in the inbox ("busy"), the first keeps its bytes; a vanished entry is "gone"
    inbox, claim = tmp_path / "inbox", tmp_path / "processing" / "host.1.abc"
    inbox.mkdir()
    claim.mkdir(parents=True)
    (claim / "a.json").write_bytes(b"first")
    (inbox / "a.json").write_bytes(b"second")

    assert claim_entry(str(inbox / "a.json"), str(claim / "a.json")) == "busy"
    assert (claim / "a.json").read_bytes() == b"first"
    assert (inbox / "a.json").read_bytes() == b"second"

    (claim / "a.json").unlink()
    assert claim_entry(str(inbox / "a.json"), str(claim / "a.json")) == "claimed"
    assert (claim / "a.json").read_bytes() == b"second"
    assert not (inbox / "a.json").exists()
    assert claim_entry(str(inbox / "a.json"), str(claim / "a.json")) == "gone"
