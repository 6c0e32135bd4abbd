"""Running as a service: sd_notify, journald log lines, and signals.

Nothing here needs systemd to be installed: every piece degrades to a no-op (or to plain
stderr logging) outside it, so the daemon and its tests run the same code everywhere.

- :class:`Notifier` speaks the sd_notify(3) protocol directly over ``$NOTIFY_SOCKET``
  (one datagram per message; gunicorn's ``systemd.py`` is the model).
- :func:`journald_prefix` / :class:`JournalFormatter` write one ``<N>message`` line per
  event for ``SyslogLevelPrefix=`` (systemd.exec(5)); :func:`stderr_is_journal` says
  when to use them.
- :class:`ServiceSignals` turns SIGTERM/SIGINT into "drain" then "exit now", and SIGHUP
  into "reload", for a daemon's ``serve(config, *, shutdown_trigger, task_status)``.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import IO, Any, Self

import anyio
from anyio.abc import TaskGroup, TaskStatus

__all__ = [
    "JournalFormatter",
    "Notifier",
    "ServiceSignals",
    "journald_prefix",
    "stderr_is_journal",
]

logger = logging.getLogger(__name__)

#: Upper bound for one sd_notify datagram send. The socket is blocking only so that a
#: momentarily full receive queue in PID 1 does not drop READY=1; it never stalls the
#: event loop for longer than this.
_SEND_TIMEOUT = 1.0


class Notifier:
    """sd_notify(3) over ``$NOTIFY_SOCKET``; every method is a no-op outside systemd.

    The address is read once, at construction, from *environ* (default ``os.environ``).
    ``@name`` means the Linux abstract namespace. Send errors are logged at debug level
    and reported as ``False``; they never raise, so notification can never take the
    daemon down.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        address = self._environ.get("NOTIFY_SOCKET") or None
        if address is not None and address.startswith("@"):
            # Abstract namespace: sd_notify(3) spells the leading NUL as '@'.
            address = "\0" + address[1:]
        self._address = address

    def __repr__(self) -> str:
        shown = None if self._address is None else self._address.replace("\0", "@", 1)
        return f"{type(self).__name__}(address={shown!r})"

    @property
    def enabled(self) -> bool:
        """Whether ``$NOTIFY_SOCKET`` was set (messages are actually sent)."""
        return self._address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` *fields* as one datagram; ``True`` if it was sent."""
        if self._address is None or not fields:
            return False
        if not self._address.startswith(("/", "\0")):
            # e.g. systemd >= 254's "vsock:" addresses, which a host service never gets.
            logger.debug("sd_notify: unsupported NOTIFY_SOCKET %r", self._address)
            return False
        message = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.settimeout(_SEND_TIMEOUT)
                sock.sendto(message, self._address)
        except OSError as exc:
            logger.debug("sd_notify: cannot send %r: %s", message, exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up (or a reload) is complete."""
        return self.send("READY=1", *_status_field(status))

    def status(self, text: str) -> bool:
        """``STATUS=``: a one-line state shown by ``systemctl status``."""
        return self.send(*_status_field(text))

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: shutdown (the drain) has begun."""
        return self.send("STOPPING=1", *_status_field(status))

    def reloading(self, status: str | None = None) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC=``; send :meth:`ready` when done.

        ``Type=notify-reload`` (systemd >= 253) requires the timestamp so that it can
        match the notification to the SIGHUP it sent.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", *_status_field(status))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the keep-alive ping for ``WatchdogSec=``."""
        return self.send("WATCHDOG=1")

    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog pings, or ``None`` if no watchdog is expected.

        Half of ``$WATCHDOG_USEC``, as sd_watchdog_enabled(3) recommends; ``None`` when
        the variable is unset or invalid, or when ``$WATCHDOG_PID`` names another process
        (the variables were inherited from a parent that is the one being watched).
        """
        try:
            usec = int(self._environ.get("WATCHDOG_USEC", ""))
        except ValueError:
            return None
        if usec <= 0:
            return None
        pid = self._environ.get("WATCHDOG_PID")
        if pid is not None:
            try:
                if int(pid) != os.getpid():
                    return None
            except ValueError:
                return None
        return usec / 2_000_000

    async def run_watchdog(self) -> None:
        """Ping the watchdog from the event loop forever; return at once if disabled.

        Run it in the daemon's task group: a stalled event loop stops the pings, and
        systemd restarts the service.
        """
        interval = self.watchdog_interval()
        if interval is None:
            return
        while True:
            self.watchdog()
            await anyio.sleep(interval)


def _status_field(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    return ("STATUS=" + " ".join(text.splitlines()),)


# -- journald ---------------------------------------------------------------------------


def journald_prefix(level: int) -> str:
    """The ``<N>`` syslog priority prefix (RFC 5424 6.2.1) for a :mod:`logging` level.

    CRITICAL -> ``<2>``, ERROR -> ``<3>``, WARNING -> ``<4>``, INFO -> ``<6>``,
    DEBUG and below -> ``<7>``; custom levels between INFO and WARNING map to notice
    (``<5>``), and every other level to the priority of the standard level below it.
    """
    if level >= logging.CRITICAL:
        priority = 2
    elif level >= logging.ERROR:
        priority = 3
    elif level >= logging.WARNING:
        priority = 4
    elif level > logging.INFO:
        priority = 5
    elif level == logging.INFO:
        priority = 6
    else:
        priority = 7
    return f"<{priority}>"


class JournalFormatter(logging.Formatter):
    """Format each record as one ``<N>message`` line, for ``SyslogLevelPrefix=yes``.

    Line breaks (including those of a traceback) become spaces: journald stores every
    stderr line as a separate entry, and one event must stay one entry. No timestamp is
    needed; journald adds its own. Takes the arguments of :class:`logging.Formatter`;
    the default format is ``%(message)s``.
    """

    def format(self, record: logging.LogRecord) -> str:
        text = " ".join(super().format(record).splitlines())
        return journald_prefix(record.levelno) + text


def stderr_is_journal(
    stream: IO[Any] | None = None, environ: Mapping[str, str] | None = None
) -> bool:
    """Whether *stream* (default ``sys.stderr``) is connected to journald.

    systemd.exec(5): ``$JOURNAL_STREAM`` holds ``DEVICE:INODE`` of the journal stream,
    and a process should compare it with its stderr, since the variable is inherited by
    children whose stderr may be redirected elsewhere. ``$INVOCATION_ID`` alone is not
    enough: it is set for every unit, also with ``StandardError=file:`` or a tty, where
    ``<N>`` prefixes would be noise.
    """
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    device, sep, inode = value.partition(":")
    if not sep:
        return False
    stream = sys.stderr if stream is None else stream
    try:
        st = os.fstat(stream.fileno())
        return (st.st_dev, st.st_ino) == (int(device), int(inode))
    except (AttributeError, OSError, ValueError):
        # No real file descriptor (pytest's capture, io.StringIO) or a malformed value.
        return False


# -- signals ----------------------------------------------------------------------------

#: A reload callback: plain or async, no arguments.
ReloadCallback = Callable[[], Awaitable[None] | None]

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ServiceSignals:
    """SIGTERM/SIGINT -> drain, then exit now; SIGHUP -> reload. An async context manager.

    ::

        async def main(config: Config) -> None:
            notifier = Notifier()
            async with ServiceSignals(on_reload=daemon.reload, notifier=notifier) as signals:
                await serve(config, shutdown_trigger=signals.wait_drain)
            # leaving the block puts the default signal handlers back

    - The first SIGTERM or SIGINT sets :attr:`drain_requested` (so
      :meth:`wait_drain`, the ``shutdown_trigger``, returns) and sends ``STOPPING=1``.
      ``serve`` stops intake and drains in-flight work within its grace period.
    - The second sets :attr:`exit_requested` and cancels the body of the ``async with``
      block: ``serve`` is cancelled wherever it is and the block exits normally. Work
      that cannot be cancelled (a worker thread) still runs to its end; inputs left in
      ``processing/`` are recovered at the next start. Further signals are ignored.
    - SIGHUP sends ``RELOADING=1``, runs *on_reload* (plain or async) in its own task,
      then sends ``READY=1``. Reloads never overlap; one raising an exception is logged
      and the service keeps running on its old configuration. After a drain has been
      requested, SIGHUP is ignored.

    The handlers are installed when ``__aenter__`` returns (a signal sent after that is
    never lost) and removed on exit, and after "exit now" (back to the defaults: a third
    SIGTERM kills the process). An exception raised in the body propagates unchanged.
    :meth:`request_drain` and :meth:`request_exit` do the same as the signals, for
    in-process callers. The *notifier* defaults to a disabled one. Signal handling needs
    the main thread (Python's rule).
    """

    def __init__(
        self,
        *,
        on_reload: ReloadCallback | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self._on_reload = on_reload
        self._notifier = Notifier({}) if notifier is None else notifier
        self.drain_requested = anyio.Event()
        self.exit_requested = anyio.Event()
        self.received: list[int] = []  # SIGTERM/SIGINT numbers, in order (a front end's exit code)
        self._reload_lock = anyio.Lock()
        self._task_group: TaskGroup | None = None

    def __repr__(self) -> str:
        state = (
            "exit"
            if self.exit_requested.is_set()
            else "drain"
            if self.drain_requested.is_set()
            else "running"
        )
        return f"{type(self).__name__}(state={state!r}, on_reload={self._on_reload!r})"

    async def __aenter__(self) -> Self:
        if self._task_group is not None:
            raise RuntimeError(f"{type(self).__name__} is not reentrant")
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        try:
            await task_group.start(self._receive)
        except BaseException:
            # e.g. not the main thread: report that error, not an ExceptionGroup around it
            self._task_group = None
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        task_group, self._task_group = self._task_group, None
        assert task_group is not None
        # The body is done: stop the receiver (and any running reload).
        task_group.cancel_scope.cancel()
        if exc is not None and not isinstance(exc, anyio.get_cancelled_exc_class()):
            # The body's own error propagates as it is, not wrapped in an ExceptionGroup.
            await task_group.__aexit__(None, None, None)
            return False
        # A cancellation: ours (exit now) is absorbed here, an outer one propagates.
        return await task_group.__aexit__(exc_type, exc, tb)

    async def wait_drain(self) -> None:
        """Return once a drain has been requested: a daemon's ``shutdown_trigger``."""
        await self.drain_requested.wait()

    def request_drain(self) -> None:
        """What the first SIGTERM does; a no-op if a drain was already requested."""
        if self.drain_requested.is_set():
            return
        self.drain_requested.set()
        self._notifier.stopping()

    def request_exit(self) -> None:
        """What the second SIGTERM does: cancel the ``async with`` body."""
        self.request_drain()
        if self.exit_requested.is_set():
            return
        self.exit_requested.set()
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    async def _receive(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(*_STOP_SIGNALS, signal.SIGHUP) as received:
            task_status.started()
            async for signum in received:
                name = signal.Signals(signum).name
                if signum == signal.SIGHUP:
                    self._on_sighup()
                    continue
                self.received.append(signum)
                if not self.drain_requested.is_set():
                    logger.info("%s received: draining (send it again to exit now)", name)
                    self.request_drain()
                elif not self.exit_requested.is_set():
                    logger.warning("%s received again: exiting now", name)
                    self.request_exit()

    def _on_sighup(self) -> None:
        if self.drain_requested.is_set():
            logger.info("SIGHUP received while draining: not reloading")
        elif self._on_reload is None:
            logger.info("SIGHUP received: nothing to reload")
        elif self._task_group is not None:
            self._task_group.start_soon(self._reload)

    async def _reload(self) -> None:
        assert self._on_reload is not None
        async with self._reload_lock:
            if self.drain_requested.is_set():
                return
            logger.info("SIGHUP received: reloading")
            self._notifier.reloading()
            try:
                result = self._on_reload()
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                # A bad config must not take the service down: keep the old one.
                logger.error("reload failed, keeping the previous configuration: %s", exc)
                self._notifier.ready(f"reload failed: {exc}")
            else:
                self._notifier.ready()
