"""``streamconv watch``: the drop-folder daemon's lifecycle (daemon-conventions.md is the
reference).

Folders, for an inbox ``BASE/inbox`` (the siblings share one filesystem, so moves are renames)::

    BASE/inbox/        producers rename finished files in here (maildir's new/)
    BASE/processing/   claimed inputs, one sub-folder per running daemon: HOST.PID.RANDOM/
    BASE/done/         converted inputs (or deleted, on_success = "delete")
    BASE/failed/       failed inputs, each with NAME.error.json (and NAME.report.jsonl)
    output_dir/        NAME.dcm, or NAME/000000.dcm ... for several datasets

The life of an input, and the module that owns each step:

1. **Seen** (:mod:`.events`) through a watchfiles event, the start-up scan or a periodic
   rescan, and **scheduled** (:mod:`.intake`): a file written in place waits for
   ``quiet_period``; truncated JSON is "not ready yet" until ``max_age``.
2. **Checked, claimed, converted** in a worker process (:mod:`.worker`): entries that are not
   regular files, or whose names could forge a log line, are refused into failed/ unopened;
   ``rename(inbox/NAME, processing/ID/NAME)`` is the claim (§3).
3. **Outputs** (:mod:`.outputs`) written atomically under names that depend only on the
   input's name (or the template), so a retry replaces its own outputs; an output that
   another input already wrote is never replaced (the collision policy: README).
4. **Outcome** (:mod:`.outcome`): done/ (or deleted) only after every output is durable;
   failed/ with ``NAME.error.json``; transient errors retry with backoff (§6); a full disk
   pauses intake instead of failing anything.
5. **Claims and recovery** (:mod:`.claims`): every claim folder is ``flock``-ed by its daemon;
   claim folders whose lock is free are adopted at start-up and at every rescan, with the
   temporaries of their dead writers.

This module is the lifecycle that ties them together: start-up (folders, recovery, the
watch, the first scan, then ``READY=1``), the dispatch of due inputs to ``jobs`` worker
processes (``fanout.WorkerPool``), their results, the pauses, SIGHUP's reload, and the drain.
Tests drive :func:`serve` in-process; :mod:`.command` is the command line.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup, TaskStatus
from watchfiles import Change

from ..errors import StreamconvError, WorkerDied
from ..fanout import WorkerPool
from ..service import Notifier
from .claims import (
    Recovery,
    claimed_names,
    prepare_inbox,
    recover,
    release_claim,
    remove_temps_of,
    temp_pattern,
    temp_tag,
)
from .config import InboxConfig, WatchConfig, load_config
from .events import InboxWatch, scan_inbox, stat_paths
from .intake import MAX_TRACKED, Candidate, InboxState, Intake
from .jobs import ErrorInfo, Job, Mode, Result
from .metrics import Metrics, write_textfile
from .outcome import fail_input
from .status import describe, log_outcome, render_metrics, status_line, summary
from .worker import process_batch, process_input, warm_worker

# Job, Mode, Result and process_input are re-exported for callers written against the
# one-module daemon (tests/dicomweb/test_dicomweb_watch.py); new code imports .jobs and .worker.
__all__ = ["Job", "Mode", "Result", "StartupError", "Watcher", "process_input", "serve"]

logger = logging.getLogger(__name__)

MAX_RETRY_DELAY = 300.0
STATUS_INTERVAL = 5.0
METRICS_INTERVAL = 0.5
SPACE_CHECK_INTERVAL = 1.0
#: While a filesystem is full (ENOSPC/EDQUOT from a write), one input tries again this often.
FULL_PROBE_INTERVAL = 2.0
#: How often each inbox is looked at (stat) to notice that it was removed or recreated: the
#: watch of a removed folder dies without a word (inotify's IN_IGNORED).
INBOX_CHECK_INTERVAL = 0.5


class StartupError(Exception):
    """The daemon cannot start (its worker processes do not run)."""


class Watcher:
    """The daemon. :meth:`run` is :func:`serve`; :meth:`reload` is SIGHUP.

    *clock* is the intake scheduler's time (monotonic seconds), ``anyio.current_time``
    unless a test passes its own.
    """

    def __init__(
        self,
        config: WatchConfig,
        *,
        notifier: Notifier | None = None,
        loader: Callable[[], WatchConfig] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.config = config
        self.notifier = Notifier({}) if notifier is None else notifier
        self.loader = loader if loader is not None else _loader_for(config)
        self.clock = anyio.current_time if clock is None else clock
        self.intake = Intake(self.clock)
        self.metrics = Metrics()
        self.states: dict[str, InboxState] = {}
        self.retired: list[InboxState] = []
        self.events = InboxWatch(self._on_changes, self._want_rescan)
        #: scans and recoveries done so far (tests wait for these instead of sleeping)
        self.scans = 0
        self.recoveries = 0
        self.deferred = 0  # batches put back because intake is paused
        self.probes = 0  # inputs that tried again while a filesystem was full
        # the one worker-process engine (fanout.WorkerPool): runtime.worker_init in each
        # worker, WorkerDied when one dies, no reaping race at shutdown
        self._pool = WorkerPool(config.jobs)
        self._slot_free = anyio.Event()
        self._idle = anyio.Event()
        self._idle.set()
        self._inflight = 0  # inputs
        self._busy = 0  # batches (workers busy)
        self._stop = anyio.Event()
        self._metrics_dirty = anyio.Event()
        self._watch_failed = False
        self._rescan_now = anyio.Event()
        self._service: TaskGroup | None = None
        self._jobs: TaskGroup | None = None
        self._space: dict[str, tuple[float, bool]] = {}
        self.paused = False
        #: a filesystem that a write found full (ENOSPC/EDQUOT): the folder, and when one
        #: input may try again (intake is paused meanwhile)
        self.full: str | None = None
        self._full_probe_at = 0.0
        self._batches = 0
        self._identity: dict[str, tuple[int, int] | None] = {}  # inbox -> (dev, ino)
        self.draining = False
        self._completed: list[float] = []
        self.ready = False

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(inboxes={list(self.states)!r}, inflight={self._inflight}, "
            f"draining={self.draining})"
        )

    # -- public -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Begin the drain (as the first SIGTERM does)."""
        self._stop.set()

    def counts(self) -> dict[str, int]:
        """Inputs by result so far, over all inboxes."""
        out: dict[str, int] = {}
        for (_, result), n in self.metrics.inputs.items():
            out[result] = out.get(result, 0) + n
        return out

    async def reload(self) -> None:
        """Re-read the configuration and apply it; a bad file raises and changes nothing."""
        new = await anyio.to_thread.run_sync(self.loader)
        await self._apply(new)

    async def run(
        self,
        *,
        shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
        task_status: TaskStatus[Watcher] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            for inbox in self.config.inboxes:
                await self._open_inbox(inbox)
            async with anyio.create_task_group() as jobs:
                self._jobs = jobs
                jobs.start_soon(self.notifier.run_watchdog)  # also while draining
                async with anyio.create_task_group() as service:
                    self._service = service
                    if shutdown_trigger is not None:
                        service.start_soon(self._trigger, shutdown_trigger)
                    await self._restart_watch()
                    await self._warm_up()
                    service.start_soon(self._dispatch_loop)
                    service.start_soon(self._rescan_loop)
                    service.start_soon(self._status_loop)
                    service.start_soon(self._metrics_loop)
                    service.start_soon(self._inbox_loop)
                    self.ready = True
                    status = self._status()
                    logger.info("ready: %s", status)
                    self.notifier.ready(status)
                    task_status.started(self)
                    await self._stop.wait()
                    self.events.stop()  # before the cancel: the watch thread must see it
                    service.cancel_scope.cancel()
                await self._drain(jobs)
        finally:
            with anyio.CancelScope(shield=True):
                await self._close()

    # -- start-up and shutdown ----------------------------------------------------------------

    async def _trigger(self, trigger: Callable[[], Awaitable[Any]]) -> None:
        await trigger()
        self._stop.set()

    async def _open_inbox(self, inbox: InboxConfig) -> InboxState:
        """Folders, this daemon's claim folder, recovery of dead daemons' inputs, temps."""
        claim, rec, removed = await anyio.to_thread.run_sync(prepare_inbox, inbox, self.config)
        state = InboxState(inbox, claim)
        self.states[inbox.path] = state
        self.metrics.add_inbox(inbox.path)
        logger.info(
            "watching %s -> %s%s", inbox.path, inbox.output_dir,
            f" (options: {inbox.options_text})" if inbox.options_text else "",
        )  # fmt: skip
        if removed:
            logger.info("removed %d stray temporary file(s) under %s", removed, inbox.output_dir)
        await self._adopt(state, rec)
        return state

    async def _adopt(self, state: InboxState, rec: Recovery) -> None:
        resumed = 0
        for name in rec.loose:
            self.intake.add_claimed(state, state.claim.path, name)
            resumed += 1
        for claim in rec.adopted:
            # its daemon is dead, and its workers with it (PR_SET_PDEATHSIG): their
            # temporaries go now, not after TEMP_MAX_IDLE (which protects live writers)
            pattern = temp_pattern(temp_tag(claim.path), batch=False)
            removed = await anyio.to_thread.run_sync(remove_temps_of, state.config, pattern)
            if removed:
                logger.info(
                    "removed %d temporary file(s) of the dead daemon of %s",
                    removed, os.path.basename(claim.path),
                )  # fmt: skip
            names = await anyio.to_thread.run_sync(claimed_names, claim.path)
            if not names:
                await anyio.to_thread.run_sync(release_claim, claim)
                continue
            state.adopted[claim.path] = claim
            for name in names:
                self.intake.add_claimed(state, claim.path, name)
                resumed += 1
        if resumed:
            logger.info("resuming %d input(s) left in %s", resumed, state.config.processing_dir)

    async def _drain(self, jobs: TaskGroup) -> None:
        """Intake has stopped; let in-flight inputs finish within the grace period."""
        self.draining = True
        self.events.stop()
        if self._inflight:
            logger.info(
                "draining: %d input(s) in flight, grace period %g s",
                self._inflight, self.config.grace_period,
            )  # fmt: skip
            self.notifier.stopping(f"draining {self._inflight} input(s)")
        else:
            self.notifier.stopping()
        with anyio.move_on_after(self.config.grace_period):
            await self._idle.wait()
        if self._inflight:
            logger.warning(
                "grace period over: %d input(s) left in processing/ for the next start",
                self._inflight,
            )
        jobs.cancel_scope.cancel()

    async def _close(self) -> None:
        self.events.stop()
        await self._pool.aclose()
        for state in [*self.states.values(), *self.retired]:
            await self._release(state)
        await self._write_metrics()
        logger.info("stopped: %s", summary(self.counts()))

    async def _release(self, state: InboxState) -> None:
        claims = [state.claim, *state.adopted.values()]
        for claim in claims:
            if claim.fd >= 0:
                await anyio.to_thread.run_sync(release_claim, claim)
        state.adopted.clear()

    async def _warm_up(self) -> None:
        """Start the worker processes now, so that the first inputs do not wait for them."""
        async with anyio.create_task_group() as tg:
            for _ in range(self.config.jobs):
                tg.start_soon(self._warm_one)

    async def _warm_one(self) -> None:
        try:
            await self._pool.run(warm_worker, os.getpid())
        except WorkerDied as exc:
            # every input would "crash" into failed/: better not to start at all
            raise StartupError(f"worker processes cannot start: {exc}") from exc

    # -- watching, scanning ----------------------------------------------------------------------

    async def _restart_watch(self) -> None:
        """(Re)start the watch, prove it delivers events (a probe file), then scan."""
        assert self._service is not None
        self.events.stop()
        present = await anyio.to_thread.run_sync(self._identities)
        # a missing inbox is not watched (the watch would fail at once, again and again):
        # _inbox_loop restarts the watch when it is back
        inboxes = [s.config for s in self.states.values() if s.active and present[s.config.path]]
        if not inboxes:
            return
        self.events.start(self._service, inboxes, force_polling=self.config.force_polling)
        silent = await self.events.prove(inboxes)
        if silent:
            logger.warning(
                "no file events from %s within 5 s; relying on rescans every %g s (on a network "
                "filesystem set force_polling)",
                ", ".join(silent), self.config.rescan_interval,
            )  # fmt: skip
        for state in list(self.states.values()):
            if state.active:
                await self._scan(state, initial=not self.ready)

    def _identities(self) -> dict[str, tuple[int, int] | None]:
        """Each active inbox's (device, inode), None where it is missing (runs in a thread)."""
        for path, state in self.states.items():
            if state.active:
                try:
                    st = os.stat(path)
                    self._identity[path] = (st.st_dev, st.st_ino)
                except OSError:
                    self._identity[path] = None
        return dict(self._identity)

    async def _inbox_loop(self) -> None:
        """Notice an inbox removed, or removed and made again (its watch died with it), and
        restart the watch at once when it is back (issue 10, row 5)."""
        while True:
            await anyio.sleep(INBOX_CHECK_INTERVAL)
            known = dict(self._identity)
            now = await anyio.to_thread.run_sync(self._identities)
            back = False
            for path, ident in now.items():
                if path not in known or ident == known[path]:
                    continue
                if ident is None:
                    logger.warning("inbox %s was removed; watching it again once it is back", path)
                elif known[path] is None:
                    logger.warning("inbox %s is back; watching it again", path)
                    back = True
                else:
                    logger.warning("inbox %s was replaced by a new folder; watching it", path)
                    back = True
            if back:
                self._want_rescan(True)

    def _want_rescan(self, restart: bool) -> None:
        if restart:
            self._watch_failed = True  # the rescan restarts the watch at once
        self._rescan_now.set()

    async def _on_changes(self, kinds: dict[str, Change]) -> None:
        listed = list(kinds)
        stats = await anyio.to_thread.run_sync(stat_paths, listed)
        for path, st in zip(listed, stats, strict=True):
            directory, name = os.path.split(path)
            state = self.states.get(self.events.inbox_of(directory))
            if state is not None and state.active:
                self.intake.observe(state, name, st, kinds[path])

    async def _scan(self, state: InboxState, *, initial: bool = False) -> None:
        try:
            found = await anyio.to_thread.run_sync(scan_inbox, state.config)
        except OSError as exc:
            logger.error("cannot scan %s: %s", state.config.path, exc.strerror or exc)
            self._watch_failed = True  # its watch is gone too: start again once it is back
            return
        state.overflow = False
        present = set()
        wall = time.time()
        for name, st in found:
            present.add(name)
            age = max(0.0, wall - st.st_mtime) if initial else 0.0
            self.intake.observe(state, name, st, None, wall_age=age)
        inbox = state.config.path
        for key, cand in list(state.candidates.items()):
            if cand.directory == inbox and not cand.inflight and cand.name not in present:
                del state.candidates[key]  # gone without an event we saw
        for name in [n for n in state.left if n not in present]:
            del state.left[name]
        self.scans += 1

    async def _rescan_loop(self) -> None:
        while True:
            with anyio.move_on_after(self.config.rescan_interval):
                await self._rescan_now.wait()
            self._rescan_now = anyio.Event()
            if self._watch_failed:
                self._watch_failed = False
                await self._restart_watch()  # scans too
            for state in list(self.states.values()):
                if state.active:
                    await self._scan(state)
                    await self._recover_more(state)

    async def _recover_more(self, state: InboxState) -> None:
        """Adopt claim folders of daemons that died since (another host, another instance)."""
        known = list(state.adopted)
        rec = await anyio.to_thread.run_sync(
            recover, state.config.processing_dir, state.claim, known
        )
        if rec.adopted or rec.loose:
            await self._adopt(state, rec)
        self.recoveries += 1

    # -- dispatching ---------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        """Hand due inputs to free workers, in batches that grow with the queue."""
        while True:
            while self._busy >= self.config.jobs or self._inflight >= self.config.inflight_limit:
                self._slot_free = anyio.Event()
                await self._slot_free.wait()
            first = await self.intake.next_due()
            if self.full is not None:
                # a full filesystem: one input at a time tries again, every FULL_PROBE_INTERVAL
                now = self.clock()
                if now < self._full_probe_at:
                    self.intake.schedule(first, self._full_probe_at)
                    self.deferred += 1
                    continue
                self._full_probe_at = now + FULL_PROBE_INTERVAL
                batch = self.intake.take_batch(first, 1, 1)
                if batch:
                    self.probes += 1
                    self._start(batch)
                continue
            batch = self.intake.take_batch(
                first, self.config.jobs - self._busy, self.config.inflight_limit - self._inflight
            )
            if not batch:
                continue
            folders = {cand.state.config.output_dir for cand, _ in batch}
            if not all([await self._space_ok(folder) for folder in folders]):
                for cand, _ in batch:
                    self.intake.schedule(cand, self.clock() + 2.0)
                self.deferred += 1
                await anyio.sleep(2.0)
                continue
            self._start(batch)

    def _start(self, batch: list[tuple[Candidate, Mode]]) -> None:
        assert self._jobs is not None
        self._batches += 1
        jobs = []
        for cand, mode in batch:
            cand.inflight, cand.touched = True, False
            cand.state.busy.add(cand.name)
            attempt = cand.attempts + 1
            jobs.append(
                Job(
                    cand.state.config,
                    cand.name,
                    cand.directory,
                    cand.state.claim.path,
                    mode,
                    cand.sig,
                    attempt,
                    attempt >= self.config.retry_attempts,
                    os.getpid(),
                    temp_tag(cand.state.claim.path, self._batches),
                    cand.owned,
                )
            )
        self._inflight += len(batch)
        self._busy += 1
        self._idle = anyio.Event()
        self._jobs.start_soon(self._run_batch, [c for c, _ in batch], jobs)

    async def _run_batch(self, cands: list[Candidate], jobs: list[Job]) -> None:
        try:
            try:
                results = await self._pool.run(process_batch, jobs)
            except WorkerDied as exc:
                await self.remove_temps_of_batch(jobs)
                results = [await self._crashed(c, j, exc) for c, j in zip(cands, jobs, strict=True)]
                for cand in cands:
                    cand.crashed = True
                    cand.owned = None  # what it wrote before it died is not known
            for cand, job, result in zip(cands, jobs, results, strict=True):
                self._handle(cand, job, result)
        finally:
            for cand in cands:
                cand.inflight = False
                cand.state.busy.discard(cand.name)
            self._inflight -= len(cands)
            self._busy -= 1
            self._slot_free.set()
            if not self._inflight:
                self._idle.set()
        for cand in cands:
            if cand.touched and not cand.claimed and not self.draining:
                # an event for inbox/NAME while in flight: maybe a new file under that name
                st = await anyio.to_thread.run_sync(
                    stat_paths, [os.path.join(cand.directory, cand.name)]
                )
                self.intake.observe(cand.state, cand.name, st[0], Change.added)
            if not cand.state.active or cand.directory in cand.state.adopted:
                await self._maybe_release(cand.state, cand.directory)

    async def remove_temps_of_batch(self, jobs: list[Job]) -> None:
        """The worker died: its temporaries (tagged with its batch) go now (issue 10, row 6)."""
        pattern = temp_pattern(jobs[0].tag, batch=True)
        removed = 0
        for inbox in {job.inbox.path: job.inbox for job in jobs}.values():
            removed += await anyio.to_thread.run_sync(remove_temps_of, inbox, pattern)
        if removed:
            logger.info("removed %d temporary file(s) of the worker that died", removed)

    async def _crashed(self, cand: Candidate, job: Job, exc: BaseException) -> Result:
        """The worker died (killed, out of memory, a crash in a C extension)."""
        own = os.path.join(job.claim_dir, job.name)
        claimed = await anyio.to_thread.run_sync(os.path.lexists, own)
        info = ErrorInfo(
            "crash",
            WorkerDied.exit_code,
            f"the worker process died converting this input ({exc})",
            transient=True,
        )
        if job.final:
            moved = job if not claimed else replace(job, directory=job.claim_dir)
            return await anyio.to_thread.run_sync(fail_input, moved, info)
        result = Result("retry", error=info, directory=job.claim_dir if claimed else job.directory)
        return result

    def _handle(self, cand: Candidate, job: Job, result: Result) -> None:
        state = cand.state
        now = self.clock()
        inbox = state.config
        if result.status == "not_ready":
            self.intake.not_ready(cand, result)
            logger.debug("%s: not ready (%s)", cand.display, result.reason)
            return
        if result.status == "gone":
            state.candidates.pop(cand.key, None)
            return
        if result.status == "left":
            state.candidates.pop(cand.key, None)
            if result.sig is not None and len(state.left) < MAX_TRACKED:
                state.left[cand.name] = result.sig[0]
            logger.warning("refused %s: %s; left in the inbox", cand.display, result.reason)
            return
        if self.full is not None and result.status not in ("full", "not_ready", "gone"):
            self._resume_full()
        if result.status in ("retry", "full", "changed", "stuck"):
            # still claimed: where it is now, and the outputs it owns for its next attempt
            state.candidates.pop(cand.key, None)
            if result.directory:
                cand.directory = result.directory
                cand.claimed = result.directory != inbox.path
            state.candidates[cand.key] = cand
            if cand.owned is not None:
                cand.owned = cand.owned | frozenset(result.published)
        if result.status == "full":
            self._pause_full(cand, result)
            return
        if result.status == "changed":
            logger.warning(
                "%s changed while it was converted (%s): not moved to done/; converting it "
                "again once it has not changed for %g s",
                cand.display, result.reason, inbox.quiet_period,
            )  # fmt: skip
            cand.sig, cand.sig_since = result.sig, now
            self.intake.schedule(cand, now + inbox.quiet_period)
            return
        if result.status == "stuck":
            assert result.error is not None
            state.candidates.pop(cand.key, None)
            logger.error(
                "%s cannot be moved after %d attempt(s): %s%s; left in %s for the next start",
                cand.display, job.attempt, describe(result.error),
                f"; {result.reason}" if result.reason else "", cand.directory,
            )  # fmt: skip
            return
        if result.status == "retry":
            assert result.error is not None
            cand.attempts += 1
            delay = min(self.config.retry_delay * 2 ** (cand.attempts - 1), MAX_RETRY_DELAY)
            logger.warning(
                "retry %s in %g s (attempt %d of %d): %s",
                cand.display, delay, cand.attempts, self.config.retry_attempts,
                describe(result.error),
            )  # fmt: skip
            self.metrics.observe(inbox.path, "retried")
            self._metrics_dirty.set()
            self.intake.schedule(cand, now + delay)
            return
        state.candidates.pop(cand.key, None)
        if (
            state.overflow
            and len(state.candidates) < MAX_TRACKED // 2
            and self._service is not None
            and not self.draining
            and not self._stop.is_set()
        ):
            state.overflow = False  # room again for what waits untracked in the inbox
            self._service.start_soon(self._scan, state)
        latency = now - cand.first_seen
        self.metrics.observe(
            inbox.path,
            result.status,
            converted=result.converted,
            failed=result.failed,
            bytes_in=result.bytes_in,
            bytes_out=result.bytes_out,
            latency=latency,
        )
        self._metrics_dirty.set()
        self._completed.append(now)
        log_outcome(cand.display, job, result, inbox)

    def _pause_full(self, cand: Candidate, result: Result) -> None:
        """A write found no space (or quota): intake pauses like it does below min_free_bytes
        (statvfs cannot see inodes or quotas run out); the input waits, claimed, with no
        attempt counted, and tries again every FULL_PROBE_INTERVAL (issue 10, rows 8, 9)."""
        now = self.clock()
        self._full_probe_at = now + FULL_PROBE_INTERVAL
        if self.full is None:
            self.full = result.full_dir
            why = f"{result.reason}" if result.reason else "no space left"
            wait = ""
            if result.error is not None and result.full_dir != cand.state.config.output_dir:
                wait = f"; {cand.display} failed ({describe(result.error)}) and waits for room"
            logger.warning(
                "intake paused: %s%s; inputs wait in the inbox and processing/, trying again "
                "every %g s", why, wait, FULL_PROBE_INTERVAL,
            )  # fmt: skip
            self.paused = True
            self.notifier.status(self._status())
        self.intake.schedule(cand, self._full_probe_at)

    def _resume_full(self) -> None:
        logger.info("intake resumed: %s has room again", self.full)
        self.full = None
        self.paused = any(not ok for _, ok in self._space.values())
        self.notifier.status(self._status())
        self.intake.wake()

    async def _maybe_release(self, state: InboxState, directory: str) -> None:
        if any(c.directory == directory for c in state.candidates.values()):
            return
        claim = state.adopted.pop(directory, None)
        if claim is not None:
            await anyio.to_thread.run_sync(release_claim, claim)
        if not state.active and not state.candidates and state in self.retired:
            self.retired.remove(state)
            await self._release(state)

    async def _space_ok(self, directory: str) -> bool:
        """Intake pauses while the output filesystem has less than min_free_bytes free."""
        limit = self.config.min_free_bytes
        if not limit:
            return True
        now = self.clock()
        checked = self._space.get(directory)
        if checked is not None and now - checked[0] < SPACE_CHECK_INTERVAL:
            return checked[1]
        try:
            vfs = await anyio.to_thread.run_sync(os.statvfs, directory)
            free = vfs.f_bavail * vfs.f_frsize
        except OSError:
            free = limit  # cannot tell: do not stall
        ok = free >= limit
        self._space[directory] = (now, ok)
        if not ok and not self.paused:
            logger.warning(
                "intake paused: %s has %d bytes free, below min_free_bytes (%d)",
                directory, free, limit,
            )  # fmt: skip
            self.paused = True
            self.notifier.status(self._status())
        elif ok and self.paused and self.full is None and all(v[1] for v in self._space.values()):
            logger.info("intake resumed: %s has %d bytes free", directory, free)
            self.paused = False
            self.notifier.status(self._status())
        return ok

    # -- status, metrics -----------------------------------------------------------------------

    def _status(self) -> str:
        now = self.clock()
        self._completed = [t for t in self._completed if now - t < 60.0]
        rate = len(self._completed) / 60.0
        paused = ""
        if self.full is not None:
            paused = f"{self.full}: no space left"
        elif self.paused:
            paused = "output filesystem nearly full"
        return status_line(self.states.values(), self._inflight, self.counts(), rate, paused)

    async def _status_loop(self) -> None:
        if not self.notifier.enabled:
            return
        while True:
            await anyio.sleep(STATUS_INTERVAL)
            self.notifier.status(self._status())

    async def _metrics_loop(self) -> None:
        if self.config.metrics_file is None:
            return
        await self._write_metrics()
        while True:
            await self._metrics_dirty.wait()
            self._metrics_dirty = anyio.Event()
            await self._write_metrics()
            await anyio.sleep(METRICS_INTERVAL)

    async def _write_metrics(self) -> None:
        path = self.config.metrics_file
        if path is None:
            return
        text = render_metrics(self.metrics, self.states, self.paused)
        try:
            await anyio.to_thread.run_sync(write_textfile, path, text)
        except (OSError, StreamconvError) as exc:
            logger.warning("cannot write the metrics file: %s", exc)

    # -- reload ---------------------------------------------------------------------------------

    async def _apply(self, new: WatchConfig) -> None:
        old_paths = set(self.states)
        new_paths = {i.path for i in new.inboxes}
        for path in old_paths - new_paths:
            state = self.states.pop(path)
            state.active = False
            for key, cand in list(state.candidates.items()):
                if not cand.claimed and not cand.inflight:
                    del state.candidates[key]
            self.retired.append(state)
            if not state.candidates:
                self.retired.remove(state)
                await self._release(state)
            logger.info("no longer watching %s", path)
        self.config = new
        self._pool.limiter.total_tokens = new.jobs
        self._slot_free.set()
        for inbox in new.inboxes:
            kept = self.states.get(inbox.path)
            if kept is None:
                await self._open_inbox(inbox)
                continue
            if inbox != kept.config:
                kept.config = inbox
                for key, cand in list(kept.candidates.items()):
                    if not cand.claimed and not cand.inflight and not inbox.accepts(cand.name):
                        del kept.candidates[key]
        await self._restart_watch()
        logger.info("configuration reloaded: %d inbox(es), %d job(s)", len(self.states), new.jobs)


def _loader_for(config: WatchConfig) -> Callable[[], WatchConfig]:
    if config.source is not None:
        source = config.source
        return lambda: load_config(source)
    return lambda: config


async def serve(
    config: WatchConfig,
    *,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    task_status: TaskStatus[Watcher] = anyio.TASK_STATUS_IGNORED,
    notifier: Notifier | None = None,
    clock: Callable[[], float] | None = None,
) -> None:
    """Run the daemon until *shutdown_trigger* returns, then drain (hypercorn's shape).

    ``task_status.started(watcher)`` and ``READY=1`` happen at the same moment: after the
    recovery and the first scan of every inbox.
    """
    await Watcher(config, notifier=notifier, clock=clock).run(
        shutdown_trigger=shutdown_trigger, task_status=task_status
    )
