"""streamconv.service: sd_notify over a real socket, journald lines, real signals."""

from __future__ import annotations

import io
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from streamconv.service import (
    JournalFormatter,
    Notifier,
    ServiceSignals,
    journald_prefix,
    stderr_is_journal,
)


class Receiver:
    """The service manager's end of NOTIFY_SOCKET: a bound AF_UNIX datagram socket."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(5)

    def fields(self) -> list[str]:
        """The next datagram, split into its KEY=VALUE lines."""
        return self.sock.recv(4096).decode().split("\n")

    def pending(self) -> bool:
        self.sock.setblocking(False)
        try:
            self.sock.recv(4096, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        finally:
            self.sock.settimeout(5)
        return True


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    r = Receiver(str(tmp_path / "notify"))
    with r.sock:
        yield r


@pytest.fixture
def notifier(receiver: Receiver, tmp_path: Path) -> Notifier:
    return Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify")})


# -- Notifier ----------------------------------------------------------------------------


def test_messages_over_a_path_socket(receiver: Receiver, notifier: Notifier) -> None:
    assert notifier.enabled
    assert notifier.ready()
    assert receiver.fields() == ["READY=1"]
    assert notifier.ready(status="idle")
    assert receiver.fields() == ["READY=1", "STATUS=idle"]
    assert notifier.status("queue 3, done 10, failed 0")
    assert receiver.fields() == ["STATUS=queue 3, done 10, failed 0"]
    assert notifier.stopping()
    assert receiver.fields() == ["STOPPING=1"]
    assert notifier.watchdog()
    assert receiver.fields() == ["WATCHDOG=1"]
    assert notifier.send("EXTEND_TIMEOUT_USEC=5000000", "STATUS=scanning")
    assert receiver.fields() == ["EXTEND_TIMEOUT_USEC=5000000", "STATUS=scanning"]


def test_reloading_carries_the_monotonic_clock(receiver: Receiver, notifier: Notifier) -> None:
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    reloading, monotonic = receiver.fields()
    assert reloading == "RELOADING=1"
    key, _, usec = monotonic.partition("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(usec) <= after


def test_status_is_one_line(receiver: Receiver, notifier: Notifier) -> None:
    notifier.status("first\nsecond")
    assert receiver.fields() == ["STATUS=first second"]


def test_abstract_namespace_socket() -> None:
    name = f"streamconv-test-{uuid.uuid4().hex}"
    r = Receiver("\0" + name)
    with r.sock:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert repr(notifier) == f"Notifier(address='@{name}')"
        assert notifier.ready()
        assert r.fields() == ["READY=1"]


@pytest.mark.parametrize("environ", [{}, {"NOTIFY_SOCKET": ""}])
def test_no_op_without_notify_socket(environ: dict[str, str]) -> None:
    notifier = Notifier(environ)
    assert not notifier.enabled
    assert repr(notifier) == "Notifier(address=None)"
    assert not notifier.ready("x")
    assert not notifier.status("x")
    assert not notifier.stopping()
    assert not notifier.reloading()
    assert not notifier.watchdog()


def test_reads_os_environ_by_default(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    assert Notifier().ready()
    assert receiver.fields() == ["READY=1"]
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not Notifier().enabled


@pytest.mark.parametrize(
    "address", ["/nonexistent/notify", "@streamconv-nobody-listens", "vsock:2:1"]
)
def test_send_errors_are_not_raised(address: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="streamconv.service")
    assert not Notifier({"NOTIFY_SOCKET": address}).ready()
    assert any(r.levelno == logging.DEBUG for r in caplog.records)


OUR_PID = str(os.getpid())
OTHER_PID = str(os.getpid() + 1)


@pytest.mark.parametrize(
    ("usec", "pid", "interval"),
    [
        (None, None, None),  # no WatchdogSec=
        (None, OUR_PID, None),
        ("30000000", None, 15.0),  # WatchdogSec=30: ping every 15 s
        ("30000000", OUR_PID, 15.0),
        ("30000000", OTHER_PID, None),  # inherited from the watched parent
        ("1000000", OUR_PID, 0.5),
        ("0", None, None),  # sd_watchdog_enabled(3): invalid
        ("-5", None, None),
        ("soon", None, None),
        ("30000000", "me", None),
    ],
)
def test_watchdog_interval(usec: str | None, pid: str | None, interval: float | None) -> None:
    environ = {}
    if usec is not None:
        environ["WATCHDOG_USEC"] = usec
    if pid is not None:
        environ["WATCHDOG_PID"] = pid
    assert Notifier(environ).watchdog_interval() == interval


@pytest.mark.anyio
async def test_run_watchdog_pings(receiver: Receiver, tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "40000"})
    with anyio.move_on_after(0.1):
        await notifier.run_watchdog()
    pings = 0
    while receiver.pending():
        assert receiver.fields() == ["WATCHDOG=1"]
        pings += 1
    assert pings >= 3  # every 20 ms for 100 ms


@pytest.mark.anyio
async def test_run_watchdog_returns_when_disabled() -> None:
    with anyio.fail_after(1):
        await Notifier({"NOTIFY_SOCKET": "/nonexistent"}).run_watchdog()


# -- journald ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "prefix"),
    [
        (logging.CRITICAL, "<2>"),
        (logging.CRITICAL + 10, "<2>"),
        (logging.ERROR, "<3>"),
        (logging.WARNING, "<4>"),
        (logging.WARNING + 5, "<4>"),
        (25, "<5>"),  # a custom level between INFO and WARNING: notice
        (logging.INFO, "<6>"),
        (logging.DEBUG, "<7>"),
        (5, "<7>"),
        (logging.NOTSET, "<7>"),
    ],
)
def test_journald_prefix(level: int, prefix: str) -> None:
    assert journald_prefix(level) == prefix


def _record(level: int, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("streamconv.watch", level, __file__, 1, msg, args, None)


def test_journal_formatter_one_line_per_event() -> None:
    formatter = JournalFormatter()
    assert (
        formatter.format(_record(logging.INFO, "converted %s", "a.json")) == "<6>converted a.json"
    )
    assert formatter.format(_record(logging.ERROR, "bad\ninput\r\nhere")) == "<3>bad input here"


def test_journal_formatter_folds_tracebacks() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record(logging.ERROR, "failed")
        record.exc_info = sys.exc_info()
    line = JournalFormatter("%(name)s: %(message)s").format(record)
    assert "\n" not in line
    assert line.startswith("<3>streamconv.watch: failed Traceback (most recent call last):")
    assert line.endswith("ValueError: boom")


def test_journal_formatter_in_a_handler() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JournalFormatter())
    log = logging.getLogger("streamconv.test_service")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("disk %d%% full\nintake paused", 95)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    assert stream.getvalue() == "<4>disk 95% full intake paused\n"


def test_stderr_is_journal(tmp_path: Path) -> None:
    with open(tmp_path / "stream", "w") as stream:
        st = os.fstat(stream.fileno())
        assert stderr_is_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        # Inherited from a parent whose stderr was the journal; ours is something else.
        assert not stderr_is_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert not stderr_is_journal(stream, {"JOURNAL_STREAM": "garbage"})
        assert not stderr_is_journal(stream, {"INVOCATION_ID": "0" * 32})
        assert not stderr_is_journal(stream, {})
    assert not stderr_is_journal(io.StringIO(), {"JOURNAL_STREAM": "1:2"})


# -- signals -----------------------------------------------------------------------------


def _kill(signum: signal.Signals) -> None:
    os.kill(os.getpid(), signum)


@pytest.mark.anyio
async def test_sigterm_drains_then_exits(receiver: Receiver, notifier: Notifier) -> None:
    reached_end = False
    with anyio.fail_after(5):
        async with ServiceSignals(notifier=notifier) as signals:
            assert repr(signals) == "ServiceSignals(state='running', on_reload=None)"
            _kill(signal.SIGTERM)
            await signals.wait_drain()
            assert receiver.fields() == ["STOPPING=1"]
            assert not signals.exit_requested.is_set()
            _kill(signal.SIGTERM)
            await anyio.sleep_forever()  # cancelled by the second signal
            reached_end = True
    assert not reached_end
    assert signals.exit_requested.is_set()
    assert repr(signals).startswith("ServiceSignals(state='exit'")
    assert not receiver.pending()  # STOPPING=1 was sent once
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


@pytest.mark.anyio
async def test_sigint_then_sigterm() -> None:
    with anyio.fail_after(5):
        async with ServiceSignals() as signals:
            _kill(signal.SIGINT)
            await signals.wait_drain()
            _kill(signal.SIGTERM)
            await anyio.sleep_forever()
    assert signals.exit_requested.is_set()


async def serve(
    signals: ServiceSignals, log: list[str], *, task_status: anyio.abc.TaskStatus[None]
) -> None:
    """A daemon in miniature: intake until the shutdown trigger, then a drain."""
    async with anyio.create_task_group() as tg:

        async def intake() -> None:
            await signals.wait_drain()
            log.append("intake stopped")
            tg.cancel_scope.cancel()

        tg.start_soon(intake)
        task_status.started()
        await anyio.sleep_forever()
    log.append("draining")
    await anyio.sleep(0.05)
    log.append("drained")


@pytest.mark.anyio
async def test_drain_lets_serve_finish() -> None:
    log: list[str] = []
    with anyio.fail_after(5):
        async with ServiceSignals() as signals, anyio.create_task_group() as tg:
            await tg.start(serve, signals, log)
            _kill(signal.SIGTERM)
    assert log == ["intake stopped", "draining", "drained"]
    assert not signals.exit_requested.is_set()


@pytest.mark.anyio
async def test_second_signal_cuts_the_drain_short() -> None:
    log: list[str] = []

    async def slow_drain(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        await signals.wait_drain()
        log.append("draining")
        try:
            await anyio.sleep(30)
        finally:
            log.append("cancelled")

    with anyio.fail_after(5):
        async with ServiceSignals() as signals, anyio.create_task_group() as tg:
            await tg.start(slow_drain)
            _kill(signal.SIGTERM)
            await signals.wait_drain()
            await anyio.sleep(0.01)
            _kill(signal.SIGTERM)
    assert log == ["draining", "cancelled"]


@pytest.mark.anyio
async def test_sighup_reloads(receiver: Receiver, notifier: Notifier) -> None:
    reloads: list[int] = []
    done = anyio.Event()

    async def reload() -> None:
        reloads.append(len(reloads))
        done.set()

    with anyio.fail_after(5):
        async with ServiceSignals(on_reload=reload, notifier=notifier) as signals:
            _kill(signal.SIGHUP)
            await done.wait()
    assert reloads == [0]
    assert not signals.drain_requested.is_set()
    assert receiver.fields()[0] == "RELOADING=1"
    assert receiver.fields() == ["READY=1"]


@pytest.mark.anyio
async def test_sighup_with_a_plain_callback() -> None:
    reloaded = anyio.Event()
    with anyio.fail_after(5):
        async with ServiceSignals(on_reload=reloaded.set):
            _kill(signal.SIGHUP)
            await reloaded.wait()


@pytest.mark.anyio
async def test_failed_reload_keeps_running(
    receiver: Receiver, notifier: Notifier, caplog: pytest.LogCaptureFixture
) -> None:
    attempted = anyio.Event()

    def reload() -> None:
        attempted.set()
        raise ValueError("inbox path missing")

    with anyio.fail_after(5):
        async with ServiceSignals(on_reload=reload, notifier=notifier) as signals:
            _kill(signal.SIGHUP)
            await attempted.wait()
            assert receiver.fields()[0] == "RELOADING=1"
            assert receiver.fields() == ["READY=1", "STATUS=reload failed: inbox path missing"]
    assert not signals.drain_requested.is_set()
    assert "reload failed, keeping the previous configuration: inbox path missing" in caplog.text


@pytest.mark.anyio
async def test_sighup_ignored_while_draining(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="streamconv.service")
    reloads: list[None] = []
    with anyio.fail_after(5):
        async with ServiceSignals(on_reload=lambda: reloads.append(None)) as signals:
            _kill(signal.SIGTERM)
            await signals.wait_drain()
            _kill(signal.SIGHUP)
            _kill(signal.SIGTERM)  # handled after the SIGHUP: exit now
            await anyio.sleep_forever()
    assert "SIGHUP received while draining: not reloading" in caplog.text
    assert reloads == []


@pytest.mark.anyio
async def test_reloads_do_not_overlap() -> None:
    running = 0
    peak = 0
    finished = 0
    all_done = anyio.Event()

    async def reload() -> None:
        nonlocal running, peak, finished
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.05)
        running -= 1
        finished += 1
        if finished == 3:
            all_done.set()

    with anyio.fail_after(5):
        async with ServiceSignals(on_reload=reload):
            for _ in range(3):
                _kill(signal.SIGHUP)
                await anyio.sleep(0.01)
            await all_done.wait()
    assert peak == 1


@pytest.mark.anyio
async def test_request_methods_without_signals() -> None:
    with anyio.fail_after(5):
        async with ServiceSignals() as signals:
            signals.request_drain()
            await signals.wait_drain()
            signals.request_exit()
            await anyio.sleep_forever()
    assert signals.exit_requested.is_set()


@pytest.mark.anyio
async def test_body_exceptions_propagate_unwrapped() -> None:
    with pytest.raises(ValueError, match="from the body"):
        async with ServiceSignals():
            raise ValueError("from the body")
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


@pytest.mark.anyio
async def test_outer_cancellation_propagates() -> None:
    with anyio.move_on_after(0.05) as outer:
        async with ServiceSignals():
            await anyio.sleep_forever()
        pytest.fail("the outer cancellation was swallowed")
    assert outer.cancelled_caught


@pytest.mark.anyio
async def test_not_reentrant() -> None:
    signals = ServiceSignals()
    async with signals:
        with pytest.raises(RuntimeError, match="not reentrant"):
            await signals.__aenter__()


def test_needs_the_main_thread() -> None:
    errors: list[BaseException] = []

    async def enter() -> None:
        async with ServiceSignals():
            pass

    def run() -> None:
        try:
            anyio.run(enter)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert len(errors) == 1
    assert type(errors[0]) is RuntimeError  # not wrapped in an ExceptionGroup
