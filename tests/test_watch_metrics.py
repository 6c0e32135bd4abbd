"""watch/metrics.py directly: the Prometheus text exposition format and the textfile.

The rendered text is read back by a strict parser of the text format 0.0.4 written here from
the format's description (prometheus.io, "Exposition formats"): ``# HELP`` / ``# TYPE`` once
per family and before its samples, a family's samples together, metric and label names of
the given alphabets, label values with ``\\\\``, ``\\"`` and ``\\n`` escapes, float values
(``+Inf``/``-Inf``/``NaN``), ``\\n`` after every line; histograms with cumulative
``_bucket{le=...}`` series ending in ``le="+Inf"`` equal to ``_count``, then ``_sum``.
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamconv.watch.metrics import LATENCY_BUCKETS, Histogram, Metrics, write_textfile

P = "streamconv_watch_"
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"'
_SAMPLE = re.compile(
    rf"(?P<name>{_NAME})(?:\{{(?P<labels>(?:{_LABEL})(?:,{_LABEL})*,?)?\}})? (?P<value>\S+)( -?[0-9]+)?\Z"
)
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


@dataclass
class Family:
    kind: str = ""
    help: str = ""
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def _float(text: str) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    assert re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", text), text
    return float(text)


def parse(text: str) -> dict[str, Family]:
    """The text format, strictly; an AssertionError names the first violation."""
    assert text.endswith("\n"), "the last line must end with a line feed"
    families: dict[str, Family] = {}
    current = ""
    closed: set[str] = set()
    for line in text[:-1].split("\n"):
        assert "\r" not in line
        if line.startswith("# "):
            keyword, name, rest = [*line[2:].split(" ", 2), ""][:3]
            assert re.fullmatch(_NAME, name), line
            fam = families.setdefault(name, Family())
            if keyword == "TYPE":
                assert not fam.kind and not fam.samples, f"TYPE after samples or twice: {line}"
                assert rest in _TYPES, line
                fam.kind = rest
            elif keyword == "HELP":
                assert not fam.help, f"HELP twice: {line}"
                fam.help = rest
            if name != current:
                assert name not in closed, f"family {name} is not together"
                if current:
                    closed.add(current)
                current = name
            continue
        assert line and not line.startswith("#"), repr(line)
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name = m.group("name")
        base = re.sub(r"_(bucket|sum|count)\Z", "", name)
        family = name if name in families else base
        assert family == current, f"{name} outside its family ({current})"
        labels = {k: _unescape(v) for k, v in re.findall(_LABEL, m.group("labels") or "")}
        families[family].samples.append((name, labels, _float(m.group("value"))))
    return families


def check_histogram(fam: Family, name: str) -> dict[str, dict[str, float]]:
    """Per label set (without le): {le: count, "sum": .., "count": ..}; checks the rules."""
    series: dict[str, dict[str, float]] = {}
    for sample, labels, value in fam.samples:
        key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "le")
        entry = series.setdefault(key, {})
        if sample == name + "_bucket":
            entry[labels["le"]] = value
        else:
            assert sample in (name + "_sum", name + "_count"), sample
            entry[sample.rsplit("_", 1)[1]] = value
    for entry in series.values():
        buckets = [(_float(le), n) for le, n in entry.items() if le not in ("sum", "count")]
        bounds = [b for b, _ in buckets]
        assert bounds == sorted(bounds) and bounds[-1] == math.inf, bounds
        counts = [n for _, n in buckets]
        assert counts == sorted(counts), f"buckets not cumulative: {counts}"
        assert counts[-1] == entry["count"]
    return series


def value(families: dict[str, Family], name: str, **labels: str) -> float:
    found = [
        v for fam in families.values() for n, lab, v in fam.samples if n == name and lab == labels
    ]
    assert len(found) == 1, (name, labels, found)
    return found[0]


@pytest.mark.parametrize(
    "text",
    [
        "x 1",  # no line feed at the end
        'x{a="b"} 1\n# TYPE x counter\n',  # TYPE after a sample
        "# TYPE x counter\n# TYPE x counter\nx 1\n",
        "# TYPE x counter\nx 1\n# TYPE y gauge\ny 1\nx 2\n",  # x not together
        '# TYPE x counter\nx{a="b\\q"} 1\n',  # an escape the format does not have
        '# TYPE x counter\nx{a="b"c"} 1\n',  # an unescaped quote
        "# TYPE x counter\nx one\n",
        "# TYPE x counter\n1x 1\n",
        "# TYPE x kind\nx 1\n",
    ],
)
def test_the_parser_itself_refuses_what_the_format_does_not_allow(text: str) -> None:
    with pytest.raises(AssertionError):
        parse(text)


# -- the families --------------------------------------------------------------------------------


def test_a_fresh_daemon_renders_every_family() -> None:
    before = time.time()
    metrics = Metrics()
    after = time.time()
    families = parse(metrics.render())
    assert {name: fam.kind for name, fam in families.items()} == {
        P + "inputs_total": "counter",
        P + "datasets_total": "counter",
        P + "input_bytes_total": "counter",
        P + "output_bytes_total": "counter",
        P + "latency_seconds": "histogram",
        P + "last_success_timestamp_seconds": "gauge",
        P + "queue_depth": "gauge",
        P + "inflight": "gauge",
        P + "paused": "gauge",
        P + "start_time_seconds": "gauge",
    }
    assert all(fam.help for fam in families.values())
    start = value(families, P + "start_time_seconds")
    assert before - 0.001 <= start <= after + 0.001


def test_an_inbox_has_its_series_at_zero_before_its_first_input() -> None:
    metrics = Metrics()
    metrics.add_inbox("/srv/in")
    families = parse(metrics.render())
    for result in ("done", "partial", "failed", "retried"):
        assert value(families, P + "inputs_total", inbox="/srv/in", result=result) == 0
    for result in ("converted", "failed"):
        assert value(families, P + "datasets_total", inbox="/srv/in", result=result) == 0
    assert value(families, P + "input_bytes_total", inbox="/srv/in") == 0
    series = check_histogram(families[P + "latency_seconds"], P + "latency_seconds")
    assert series["inbox=/srv/in"]["count"] == 0
    assert families[P + "last_success_timestamp_seconds"].samples == []


def test_counters_add_up() -> None:
    metrics = Metrics()
    metrics.observe("/a", "done", converted=3, bytes_in=100, bytes_out=1000, latency=0.2)
    metrics.observe("/a", "partial", converted=1, failed=2, bytes_in=50, bytes_out=10)
    metrics.observe("/a", "retried")
    metrics.observe("/b", "failed", failed=1, bytes_in=7)
    families = parse(metrics.render())
    expected = {
        ("/a", "done"): 1,
        ("/a", "partial"): 1,
        ("/a", "retried"): 1,
        ("/a", "failed"): 0,
        ("/b", "failed"): 1,
        ("/b", "done"): 0,
    }
    for (inbox, result), n in expected.items():
        assert value(families, P + "inputs_total", inbox=inbox, result=result) == n
    assert value(families, P + "datasets_total", inbox="/a", result="converted") == 4
    assert value(families, P + "datasets_total", inbox="/a", result="failed") == 2
    assert value(families, P + "input_bytes_total", inbox="/a") == 150
    assert value(families, P + "output_bytes_total", inbox="/a") == 1010
    assert value(families, P + "input_bytes_total", inbox="/b") == 7
    assert metrics.count("/a", "done") == 1 and metrics.count("/c", "done") == 0


def test_last_success_only_when_something_was_converted() -> None:
    metrics = Metrics()
    metrics.observe("/a", "failed", failed=1)
    metrics.observe("/b", "done", converted=0)
    before = time.time()
    metrics.observe("/c", "partial", converted=1, failed=1)
    after = time.time()
    samples = parse(metrics.render())[P + "last_success_timestamp_seconds"].samples
    assert [labels for _, labels, _ in samples] == [{"inbox": "/c"}]
    assert before - 0.001 <= samples[0][2] <= after + 0.001


def test_gauges() -> None:
    metrics = Metrics()
    text = metrics.render(
        {"queue_depth": {"/a": 3, "/b": 0}, "inflight": {"/a": 2}, "paused": {"/a": 1.0}}
    )
    families = parse(text)
    assert value(families, P + "queue_depth", inbox="/a") == 3
    assert value(families, P + "queue_depth", inbox="/b") == 0
    assert value(families, P + "inflight", inbox="/a") == 2
    assert value(families, P + "paused", inbox="/a") == 1


@pytest.mark.parametrize("inbox", ['C:\\in "x"\nnext', "/srv/ü/in", "a,b=c}"])
def test_label_values_are_escaped(inbox: str) -> None:
    metrics = Metrics()
    metrics.observe(inbox, "done", converted=1, latency=1.0)
    families = parse(metrics.render({"inflight": {inbox: 1}}))
    assert value(families, P + "inputs_total", inbox=inbox, result="done") == 1
    assert value(families, P + "inflight", inbox=inbox) == 1
    assert f"inbox={inbox}" in check_histogram(
        families[P + "latency_seconds"], P + "latency_seconds"
    )


# -- the latency histogram -------------------------------------------------------------------------


def test_histogram_buckets_are_cumulative_and_le_inclusive() -> None:
    metrics = Metrics()
    for latency in (0.01, 0.3, 2.0, 5000.0):  # 0.01 is exactly a bound: le means <=
        metrics.observe("/a", "done", converted=1, latency=latency)
    families = parse(metrics.render())
    series = check_histogram(families[P + "latency_seconds"], P + "latency_seconds")["inbox=/a"]
    by_bound = {_float(le): n for le, n in series.items() if le not in ("sum", "count")}
    assert sorted(by_bound) == [*LATENCY_BUCKETS, math.inf]
    expected = {b: sum(1 for x in (0.01, 0.3, 2.0) if x <= b) for b in LATENCY_BUCKETS}
    assert {b: n for b, n in by_bound.items() if b != math.inf} == expected
    assert by_bound[0.01] == 1 and by_bound[0.25] == 1 and by_bound[0.5] == 2
    assert by_bound[2.5] == 3 and by_bound[1800.0] == 3 and by_bound[math.inf] == 4
    assert series["count"] == 4
    assert series["sum"] == pytest.approx(5002.31)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e5, allow_nan=False), max_size=40))
def test_any_observations_give_a_valid_histogram(observations: list[float]) -> None:
    hist = Histogram()
    for x in observations:
        hist.observe(x)
    families = parse("# TYPE h histogram\n" + "\n".join(hist.lines("h", 'inbox="x"')) + "\n")
    series = check_histogram(families["h"], "h")["inbox=x"]
    assert series["count"] == len(observations)
    assert series["sum"] == pytest.approx(sum(observations))
    for le, n in series.items():
        if le not in ("sum", "count"):
            assert n == sum(1 for x in observations if x <= _float(le))


# -- the textfile ---------------------------------------------------------------------------------


def test_textfile_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "streamconv.prom"
    path.write_text("old\n")
    old_inode = path.stat().st_ino
    metrics = Metrics()
    metrics.observe("/a", "done", converted=1)
    text = metrics.render()
    write_textfile(str(path), text)
    assert path.read_text() == text
    parse(path.read_text())
    # a new file renamed over the old one (node_exporter's pattern): a scrape that opened
    # the old file reads it whole, never a half-written one
    assert path.stat().st_ino != old_inode
    assert path.stat().st_mode & 0o777 == 0o644 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["streamconv.prom"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
