"""The intake scheduler: which known input to look at next, and how (daemon-conventions §2).

An input is seen (an event or a scan: :meth:`Intake.observe`), scheduled for a check, handed to
a worker with a :class:`~streamconv.watch.jobs.Mode` saying what the daemon knows of it, and
rescheduled when the worker finds it not ready (:meth:`Intake.not_ready`).  Time is the
*clock* passed in (monotonic seconds; ``anyio.current_time`` in the daemon), so that tests
can move it by hand instead of sleeping.
"""

from __future__ import annotations

import heapq
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from watchfiles import Change

from .claims import ClaimDir
from .config import InboxConfig
from .jobs import Mode, Result, Sig, printable

__all__ = ["MAX_BATCH", "MAX_TRACKED", "Candidate", "InboxState", "Intake"]

#: Inputs tracked per inbox; more wait in the inbox (the bounded queue) until a rescan.
MAX_TRACKED = 10_000
#: Inputs per worker call at most (the batch grows with the queue: 1 when it is short).
MAX_BATCH = 16


@dataclass(slots=True, eq=False)
class Candidate:
    """An input the daemon knows of, waiting or in flight."""

    state: InboxState
    name: str
    directory: str
    claimed: bool
    first_seen: float  # monotonic
    sig: Sig | None = None
    sig_since: float = 0.0
    in_place: bool = False  # changed after it was first seen: written in place
    due: float = 0.0
    attempts: int = 0
    inflight: bool = False
    touched: bool = False  # an event came while in flight
    crashed: bool = False  # a worker died on its batch: convert it alone from now on
    reason: str = ""
    owned: frozenset[str] | None = frozenset()  # outputs it published (Job.owned)

    @property
    def key(self) -> tuple[str, str]:
        return (self.directory, self.name)

    @property
    def display(self) -> str:
        """The input's path for the log: escaped if the name could forge a log line."""
        return printable(os.path.join(self.state.config.path, self.name))


class InboxState:
    def __init__(self, config: InboxConfig, claim: ClaimDir) -> None:
        self.config = config
        self.claim = claim
        self.adopted: dict[str, ClaimDir] = {}
        self.candidates: dict[tuple[str, str], Candidate] = {}
        self.busy: set[str] = set()
        #: refused entries that cannot be moved, name -> inode: logged once, then not tracked
        self.left: dict[str, int] = {}
        self.active = True
        self.overflow = False

    def __repr__(self) -> str:
        return f"InboxState({self.config.path!r}, candidates={len(self.candidates)})"

    def queued(self) -> int:
        return sum(1 for c in self.candidates.values() if not c.inflight)

    def inflight(self) -> int:
        return sum(1 for c in self.candidates.values() if c.inflight)


class Intake:
    """Known inputs in a heap by the time they are due; *clock* says what time it is."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.heap: list[tuple[float, int, Candidate]] = []
        self._seq = 0
        self._wakeup = anyio.Event()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scheduled={len(self.heap)})"

    # -- sightings ------------------------------------------------------------------------------

    def observe(
        self,
        state: InboxState,
        name: str,
        st: os.stat_result | None,
        change: Change | None,
        *,
        wall_age: float = 0.0,
    ) -> None:
        """A sighting of inbox/NAME (an event or a scan): track it, schedule its check."""
        inbox = state.config
        key = (inbox.path, name)
        cand = state.candidates.get(key)
        if cand is not None and cand.inflight:
            if st is not None:  # not just our own claim taking it away
                cand.touched = True
            return
        if st is None:  # gone; anything else (a FIFO, a symlink...) is refused by a worker
            if cand is not None:
                del state.candidates[key]
            return
        if state.left.get(name) == st.st_ino and not stat.S_ISREG(st.st_mode):
            return  # refused, could not be moved, logged
        now = self.clock()
        sig = (st.st_ino, st.st_size, st.st_mtime_ns)
        if cand is None:
            if len(state.candidates) >= MAX_TRACKED:
                state.overflow = True  # stays in the inbox until a rescan finds room
                return
            cand = Candidate(state, name, inbox.path, False, now - wall_age, sig, now)
            cand.in_place = change is Change.modified
            state.candidates[key] = cand
            self.schedule(cand, now + (inbox.quiet_period if cand.in_place else 0.0))
        elif sig != cand.sig:
            if cand.sig is None or sig[0] != cand.sig[0]:
                # another file renamed over it: a new input
                cand.first_seen, cand.in_place = now, False
                self.schedule(cand, now)
            else:
                cand.in_place = True
                self.schedule(cand, now + inbox.quiet_period)
            cand.sig, cand.sig_since = sig, now

    def add_claimed(self, state: InboxState, directory: str, name: str) -> Candidate:
        """An input already in a claim folder (resumed): converted as it is, at once."""
        now = self.clock()
        # owned None: its earlier outputs are not known (outputs.Writer decides by time)
        cand = Candidate(state, name, directory, True, now, sig_since=now, owned=None)
        state.candidates[cand.key] = cand
        self.schedule(cand, now)
        return cand

    # -- the heap ---------------------------------------------------------------------------------

    def schedule(self, cand: Candidate, due: float) -> None:
        cand.due = due
        self._seq += 1
        heapq.heappush(self.heap, (due, self._seq, cand))
        if self.heap[0][2] is cand:
            self._wakeup.set()

    def _valid(self, entry: tuple[float, int, Candidate]) -> bool:
        due, _, cand = entry
        return (
            due == cand.due
            and not cand.inflight
            and cand.state.candidates.get(cand.key) is cand
            and (cand.state.active or cand.claimed)
        )

    def _prune(self) -> None:
        while self.heap and not self._valid(self.heap[0]):
            heapq.heappop(self.heap)

    def pop_due(self, *, alone_too: bool = True) -> Candidate | None:
        """The next input due now, or None (with *alone_too* False, not one that crashed)."""
        self._prune()
        top = self.heap[0] if self.heap else None
        if top is not None and top[0] <= self.clock() and (alone_too or not top[2].crashed):
            return heapq.heappop(self.heap)[2]
        return None

    def due_count(self) -> int:
        now = self.clock()
        return sum(1 for entry in self.heap if entry[0] <= now)

    async def next_due(self) -> Candidate:
        """Wait (real time) until an input is due by the clock."""
        while True:
            cand = self.pop_due()
            if cand is not None:
                return cand
            self._wakeup = anyio.Event()
            timeout = self.heap[0][0] - self.clock() if self.heap else 3600.0
            with anyio.move_on_after(max(timeout, 0.0)):
                await self._wakeup.wait()

    def wake(self) -> None:
        """Look at the heap again now (the clock was moved, or room came free)."""
        self._wakeup.set()

    # -- batches ----------------------------------------------------------------------------------

    def take_batch(self, first: Candidate, free: int, room: int) -> list[tuple[Candidate, Mode]]:
        """*first* and more due inputs: a fair share of the queue for one of *free* workers,
        at most *room* (the in-flight limit)."""
        now = self.clock()
        due = self.due_count() + 1
        size = min(MAX_BATCH, -(-due // max(1, free)), room)
        batch: list[tuple[Candidate, Mode]] = []
        names: set[tuple[int, str]] = set()
        cand: Candidate | None = first
        while cand is not None:
            key = (id(cand.state), cand.name)
            if cand.name in cand.state.busy or key in names:
                self.schedule(cand, now + 0.5)  # the same name is being converted
            elif cand.crashed and batch:
                self.schedule(cand, now)  # after a crash, inputs go one at a time
            else:
                mode = self.mode(cand)
                if mode is not None:
                    batch.append((cand, mode))
                    names.add(key)
                    if cand.crashed:
                        break
            if len(batch) >= size:
                break
            cand = self.pop_due(alone_too=False)
        return batch

    def mode(self, cand: Candidate) -> Mode | None:
        """What the worker is told (None: not yet, rescheduled for the end of its quiet period)."""
        if cand.claimed:
            return Mode.CLAIMED
        inbox = cand.state.config
        now = self.clock()
        if now - cand.first_seen >= inbox.max_age:
            return Mode.EXPIRED
        if now - cand.sig_since >= inbox.quiet_period:
            return Mode.SETTLED
        if not cand.in_place:
            return Mode.FAST
        self.schedule(cand, cand.sig_since + inbox.quiet_period)
        return None

    def not_ready(self, cand: Candidate, result: Result) -> float:
        """A worker found the input not ready: when to look again (scheduled; returned)."""
        now = self.clock()
        inbox = cand.state.config
        cand.reason = result.reason
        if result.sig is not None and result.sig != cand.sig:
            new_inode = cand.sig is None or result.sig[0] != cand.sig[0]
            cand.sig, cand.sig_since = result.sig, now
            cand.in_place = cand.in_place or not new_inode or result.reason == "changed"
        if result.reason == "busy":
            due = now + 1.0
        elif result.reason == "incomplete":
            # wait for a change (events, rescans) or for max_age
            due = max(cand.first_seen + inbox.max_age, now + 0.1)
        else:
            due = max(cand.sig_since + inbox.quiet_period, now + 0.1)
        if cand.touched:
            due = min(due, now + inbox.quiet_period)
        self.schedule(cand, due)
        return due
