"""File events: the watchfiles watch on the inboxes, proved by a probe file, and the scans.

Events are a hint, never the only source: they are lost while the daemon is down and on
inotify queue overflow, so the inboxes are also scanned at start-up and periodically
(daemon-conventions §7).  At every (re)start the watch is proved to deliver events by a probe
file written into each inbox; without events the daemon relies on its rescans and says so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable

import anyio
from anyio.abc import TaskGroup
from watchfiles import Change, awatch

from .config import InboxConfig
from .jobs import printable

__all__ = [
    "FLOOD_EVENTS",
    "PROBE_PREFIX",
    "PROBE_RE",
    "InboxWatch",
    "InputFilter",
    "scan_inbox",
    "stat_paths",
]

logger = logging.getLogger(__name__)

#: watchfiles batching: a batch is yielded after STEP ms without events, at most DEBOUNCE ms.
DEBOUNCE_MS = 100
STEP_MS = 20
#: A batch of this many events is a flood in which inotify may have dropped some: rescan.
FLOOD_EVENTS = 1000
#: The watch thread returns at least this often, so that a cancellation (exit now) is quick.
RUST_TIMEOUT_MS = 500
#: How long the probe may take to show up as an event before the daemon gives up on events.
PROBE_TIMEOUT = 5.0
PROBE_PREFIX = ".streamconv-probe."
# an inotify probe: a daemon killed while probing leaves it in the inbox
PROBE_RE = re.compile(r"^" + re.escape(PROBE_PREFIX) + r"\d+\.[0-9a-f]{6}$")

OnChanges = Callable[[dict[str, Change]], Awaitable[None]]


class InputFilter:
    """watchfiles filter: input names directly inside a watched inbox, and the start-up probe."""

    def __init__(self, inboxes: Iterable[InboxConfig], probe: str) -> None:
        self.inboxes: dict[str, InboxConfig] = {}
        for inbox in inboxes:
            self.inboxes[inbox.path] = inbox
            self.inboxes[os.path.realpath(inbox.path)] = inbox
        self.probe = probe

    def __repr__(self) -> str:
        paths = sorted({i.path for i in self.inboxes.values()})
        return f"{type(self).__name__}(inboxes={paths!r})"

    def __call__(self, change: Change, path: str) -> bool:
        directory, name = os.path.split(path)
        if name == self.probe:
            return True
        inbox = self.inboxes.get(directory)
        return inbox is not None and inbox.accepts(name)


class InboxWatch:
    """One watchfiles watch over the active inboxes, restarted as a whole when they change.

    *on_changes* gets ``{path: change}`` (the probe's events removed); *on_rescan* asks for a
    rescan now: ``on_rescan(True)`` when the watch died (an inbox removed or unmounted) and
    must be restarted too, ``on_rescan(False)`` after a flood of events.
    """

    def __init__(self, on_changes: OnChanges, on_rescan: Callable[[bool], None]) -> None:
        self.on_changes = on_changes
        self.on_rescan = on_rescan
        self.probe = f"{PROBE_PREFIX}{os.getpid()}.{secrets.token_hex(3)}"
        self._pending: set[str] = set()
        self._seen = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self._stop: anyio.Event | None = None
        self._paths: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(running={self._scope is not None})"

    def start(
        self, tg: TaskGroup, inboxes: list[InboxConfig], *, force_polling: bool | None
    ) -> None:
        self.stop()
        scope = anyio.CancelScope()
        stop = anyio.Event()
        self._scope, self._stop = scope, stop
        self._seen = anyio.Event()
        self._pending = {i.path for i in inboxes}
        tg.start_soon(self._run, inboxes, scope, stop, force_polling)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()  # before the cancel: the watch thread must see it
        if self._scope is not None:
            self._scope.cancel()
        self._scope = self._stop = None

    async def prove(self, inboxes: list[InboxConfig]) -> list[str]:
        """Write the probe until every inbox has shown an event for it; the inboxes that
        showed none within PROBE_TIMEOUT (empty: events work)."""
        with anyio.move_on_after(PROBE_TIMEOUT):
            while not self._seen.is_set():
                await anyio.to_thread.run_sync(touch_probes, inboxes, self.probe)
                with anyio.move_on_after(0.5):
                    await self._seen.wait()
        await anyio.to_thread.run_sync(remove_probes, inboxes, self.probe)
        return sorted(self._pending) if not self._seen.is_set() else []

    async def _run(
        self,
        inboxes: list[InboxConfig],
        scope: anyio.CancelScope,
        stop: anyio.Event,
        force_polling: bool | None,
    ) -> None:
        filt = InputFilter(inboxes, self.probe)
        self._paths = {directory: inbox.path for directory, inbox in filt.inboxes.items()}
        with scope:
            try:
                async for changes in awatch(
                    *[i.path for i in inboxes],
                    watch_filter=filt,
                    stop_event=stop,
                    debounce=DEBOUNCE_MS,
                    step=STEP_MS,
                    force_polling=force_polling,
                    poll_delay_ms=300,
                    rust_timeout=RUST_TIMEOUT_MS,
                    recursive=False,
                    ignore_permission_denied=True,
                ):
                    kinds = self._sort(changes)
                    if len(changes) >= FLOOD_EVENTS:
                        # watchfiles drops inotify's queue-overflow notice (IN_Q_OVERFLOW):
                        # after a flood like this one, do not wait for the periodic rescan
                        self.on_rescan(False)
                    if kinds:
                        await self.on_changes(kinds)
            # e.g. an inbox removed or unmounted; a name that is not UTF-8 (watchfiles raises
            # inside its own task group, so the error comes wrapped in an exception group)
            except* (OSError, RuntimeError) as group:
                exc = first_leaf(group)
                logger.error(
                    "no file events (%s); rescanning and trying again", printable(str(exc))
                )
                self.on_rescan(True)

    def inbox_of(self, directory: str) -> str:
        """The configured inbox path of a watched *directory* (which may be its real path)."""
        return self._paths.get(directory, directory)

    def _sort(self, changes: set[tuple[Change, str]]) -> dict[str, Change]:
        """One change per path (the one that matters), the probe's events taken out."""
        kinds: dict[str, Change] = {}
        for change, path in changes:
            directory, name = os.path.split(path)
            if name == self.probe:
                if change is not Change.deleted:
                    self._pending.discard(self.inbox_of(directory))
                    if not self._pending:
                        self._seen.set()
                continue
            previous = kinds.get(path)
            if previous is None or change is Change.modified or previous is Change.deleted:
                kinds[path] = change
        return kinds


def scan_inbox(inbox: InboxConfig) -> list[tuple[str, os.stat_result]]:
    """Entries that match the patterns, of every kind (lstat): regular files are inputs, the
    rest (and names with control characters) are refused into failed/."""
    out = []
    with os.scandir(inbox.path) as it:
        for entry in it:
            if inbox.accepts(entry.name):
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                out.append((entry.name, st))
    return out


def stat_paths(paths: list[str]) -> list[os.stat_result | None]:
    out: list[os.stat_result | None] = []
    for p in paths:
        try:
            out.append(os.stat(p, follow_symlinks=False))
        except OSError:
            out.append(None)
    return out


def first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def touch_probes(inboxes: list[InboxConfig], probe: str) -> None:
    for inbox in inboxes:
        path = os.path.join(inbox.path, probe)
        try:
            with open(path, "ab") as f:
                f.write(b".")
        except OSError as exc:  # the warning about missing events follows
            logger.debug("cannot write %s: %s", path, exc)


def remove_probes(inboxes: list[InboxConfig], probe: str) -> None:
    for inbox in inboxes:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(inbox.path, probe))
