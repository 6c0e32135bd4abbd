"""What the daemon tells: one log line per input, the systemd status line, the metrics file.

File names and UIDs only: content messages quote the offending value, which may be patient
data, so the log redacts them (the full message is in failed/NAME.error.json, beside the
input that holds it anyway; daemon-conventions §10).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

from .config import InboxConfig
from .intake import InboxState
from .jobs import ErrorInfo, Job, Result, printable
from .metrics import Metrics
from .outcome import sidecar_name

__all__ = ["describe", "log_outcome", "render_metrics", "status_line", "summary"]

logger = logging.getLogger(__name__)

_QUOTED = re.compile(r"'[^']*'")


def summary(counts: dict[str, int]) -> str:
    c = counts
    return f"{c.get('done', 0)} done, {c.get('partial', 0)} partial, {c.get('failed', 0)} failed"


def status_line(
    states: Iterable[InboxState], inflight: int, counts: dict[str, int], rate: float, paused: str
) -> str:
    """systemd's STATUS= (and the ready line): queue, work, outcomes, rate, a pause."""
    queued = sum(s.queued() for s in states)
    text = f"{queued} queued, {inflight} in flight, {summary(counts)}, {rate:.1f} files/s"
    if paused:
        text += f"; intake paused: {paused}"
    return text


def render_metrics(metrics: Metrics, states: dict[str, InboxState], paused: bool) -> str:
    gauges: dict[str, dict[str, float]] = {"queue_depth": {}, "inflight": {}, "paused": {}}
    for inbox, state in states.items():
        gauges["queue_depth"][inbox] = state.queued()
        gauges["inflight"][inbox] = state.inflight()
        gauges["paused"][inbox] = 1 if paused else 0
    return metrics.render(gauges)


def _redact(info: ErrorInfo) -> str:
    if info.exit_code == 65:
        return _QUOTED.sub("'...'", info.message)
    return info.message


def describe(info: ErrorInfo) -> str:
    where = f" at {info.path}" if info.path else ""
    return f"{info.category} (exit {info.exit_code}){where}: {_redact(info)}"


def log_outcome(display: str, job: Job, result: Result, inbox: InboxConfig) -> None:
    ms = result.seconds * 1000
    if result.status == "done":
        more = f" (+{result.outputs - 1} more)" if result.outputs > 1 else ""
        warn = f", {result.warnings} warning(s)" if result.warnings else ""
        moved = ""
        if result.moved_to and os.path.basename(result.moved_to) != job.name:
            moved = f", kept as {printable(os.path.basename(result.moved_to))}"
        logger.info(
            "done %s: %d dataset(s) -> %s%s, %d bytes, %.0f ms%s%s",
            display, result.converted, result.first_output, more, result.bytes_out, ms, warn,
            moved,
        )  # fmt: skip
        return
    assert result.error is not None
    name = os.path.basename(result.moved_to) if result.moved_to else job.name
    sidecar = printable(
        os.path.join(os.path.basename(inbox.failed_dir), sidecar_name(name, job.name))
    )
    if result.status == "partial":
        logger.warning(
            "partial %s: %d of %d dataset(s) converted, %d failed, first: %s -> %s",
            display, result.converted, result.datasets, result.failed,
            describe(result.error), sidecar,
        )  # fmt: skip
    else:
        logger.error("failed %s: %s -> %s", display, describe(result.error), sidecar)
