"""Counters of the drop-folder daemon, as a Prometheus text file (daemon-conventions §11).

:class:`Metrics` keeps counters and a latency histogram per inbox; :meth:`Metrics.render` is
the text exposition format 0.0.4 that node_exporter's textfile collector reads, and
:func:`write_textfile` replaces the file atomically (temp file + rename, the node_exporter
``*.prom.$$`` + ``mv`` pattern), so a scrape never sees half a file.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..sinks import write_atomic

__all__ = ["LATENCY_BUCKETS", "Histogram", "Metrics", "write_textfile"]

#: Upper bounds (seconds) of the latency histogram: first seen in the inbox -> input done.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
)  # fmt: skip

PREFIX = "streamconv_watch_"


@dataclass(slots=True)
class Histogram:
    """A cumulative Prometheus histogram."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * len(self.bounds)

    def observe(self, value: float) -> None:
        self.total += value
        self.count += 1
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
                break

    def lines(self, name: str, labels: str) -> Iterable[str]:
        sep = "," if labels else ""
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=True):
            running += n
            yield f'{name}_bucket{{{labels}{sep}le="{_number(bound)}"}} {running}'
        yield f'{name}_bucket{{{labels}{sep}le="+Inf"}} {self.count}'
        yield f"{name}_sum{{{labels}}} {_number(self.total)}"
        yield f"{name}_count{{{labels}}} {self.count}"


class Metrics:
    """What the daemon counts, per inbox (label ``inbox``, the folder's path).

    Results of an input: ``done`` (every dataset converted), ``partial`` (some datasets
    failed), ``failed`` (moved to failed/), ``retried`` (a transient error, tried again).
    Results of a dataset: ``converted``, ``failed``.
    """

    def __init__(self) -> None:
        self.started = time.time()
        self.inputs: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.datasets: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.bytes_in: defaultdict[str, int] = defaultdict(int)
        self.bytes_out: defaultdict[str, int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.last_success: dict[str, float] = {}

    def __repr__(self) -> str:
        done = sum(n for (_, r), n in self.inputs.items() if r == "done")
        return f"{type(self).__name__}(inputs_done={done})"

    def add_inbox(self, inbox: str) -> None:
        """Make the inbox's series exist (at zero) before its first input."""
        for result in ("done", "partial", "failed", "retried"):
            self.inputs[(inbox, result)] += 0
        for result in ("converted", "failed"):
            self.datasets[(inbox, result)] += 0
        self.bytes_in[inbox] += 0
        self.bytes_out[inbox] += 0
        self.latency.setdefault(inbox, Histogram())

    def count(self, inbox: str, result: str) -> int:
        return self.inputs.get((inbox, result), 0)

    def observe(
        self,
        inbox: str,
        result: str,
        *,
        converted: int = 0,
        failed: int = 0,
        bytes_in: int = 0,
        bytes_out: int = 0,
        latency: float | None = None,
    ) -> None:
        """One input finished (or was retried) with *result*."""
        self.add_inbox(inbox)
        self.inputs[(inbox, result)] += 1
        self.datasets[(inbox, "converted")] += converted
        self.datasets[(inbox, "failed")] += failed
        self.bytes_in[inbox] += bytes_in
        self.bytes_out[inbox] += bytes_out
        if latency is not None:
            self.latency[inbox].observe(latency)
        if result in ("done", "partial") and converted:
            self.last_success[inbox] = time.time()

    def render(self, gauges: Mapping[str, Mapping[str, float]] | None = None) -> str:
        """The text exposition format; *gauges* maps a gauge name to {inbox: value}."""
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> str:
            full = PREFIX + name
            out.append(f"# HELP {full} {help_text}")
            out.append(f"# TYPE {full} {kind}")
            return full

        name = family(
            "inputs_total", "counter", "Input files by result (done, partial, failed, retried)."
        )
        for (inbox, result), n in sorted(self.inputs.items()):
            out.append(f'{name}{{inbox="{_label(inbox)}",result="{result}"}} {n}')
        name = family("datasets_total", "counter", "Datasets by result (converted, failed).")
        for (inbox, result), n in sorted(self.datasets.items()):
            out.append(f'{name}{{inbox="{_label(inbox)}",result="{result}"}} {n}')
        name = family("input_bytes_total", "counter", "Bytes of input files converted.")
        for inbox, n in sorted(self.bytes_in.items()):
            out.append(f'{name}{{inbox="{_label(inbox)}"}} {n}')
        name = family("output_bytes_total", "counter", "Bytes of DICOM files written.")
        for inbox, n in sorted(self.bytes_out.items()):
            out.append(f'{name}{{inbox="{_label(inbox)}"}} {n}')
        name = family(
            "latency_seconds", "histogram", "Seconds from an input's arrival to its outcome."
        )
        for inbox, hist in sorted(self.latency.items()):
            out.extend(hist.lines(name, f'inbox="{_label(inbox)}"'))
        name = family(
            "last_success_timestamp_seconds", "gauge", "When an input was last converted."
        )
        for inbox, ts in sorted(self.last_success.items()):
            out.append(f'{name}{{inbox="{_label(inbox)}"}} {_number(round(ts, 3))}')
        for gauge, help_text in (
            ("queue_depth", "Inputs seen and waiting (not in flight)."),
            ("inflight", "Inputs being converted."),
            ("paused", "1 while intake is paused (output filesystem nearly full)."),
        ):
            name = family(gauge, "gauge", help_text)
            for inbox, value in sorted((gauges or {}).get(gauge, {}).items()):
                out.append(f'{name}{{inbox="{_label(inbox)}"}} {_number(value)}')
        name = family("start_time_seconds", "gauge", "When the daemon started.")
        out.append(f"{name} {_number(round(self.started, 3))}")
        return "\n".join(out) + "\n"


def write_textfile(path: str, text: str) -> None:
    """Replace *path* atomically (``.NAME.<hex>.part`` + rename; no fsync: it is rewritten)."""
    write_atomic(path, [text.encode()], fsync=False, mode=0o644)


def _label(value: str) -> str:
    # exposition format: backslash, double quote and line feed are escaped in label values
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value)) if value != 0 or math.copysign(1, value) > 0 else "0"
    return repr(value) if isinstance(value, float) else str(value)
