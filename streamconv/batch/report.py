"""The report of a batch: success.ndjson, failure.ndjson, summary.json under --report DEST.

    success.ndjson  one line per converted dataset:
                    {"source", "index", "output", "sop_instance_uid", "bytes"}
                    (+ "skipped": true for a line carried over by --resume)
    failure.ndjson  one line per failed dataset, or per input that failed as a whole
                    ("index": null): {"source", "index", "exit_code", "category",
                    "message", "path"}
    summary.json    {"inputs", "datasets", "converted", "failed", "skipped", ...}

A local report is appended to as each task completes (one write per task, flushed), so a
batch killed with -9 leaves every line of every task it finished: what ``--resume`` reads.
A report at a URL is written when the run ends.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from ..storage import Store

__all__ = ["Previous", "Report", "read_previous"]

SUCCESS = "success.ndjson"
FAILURE = "failure.ndjson"
SUMMARY = "summary.json"


def _lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill: that task is done again
        if isinstance(value, dict):
            out.append(value)
    return out


class Previous:
    """What an earlier run's report says: success lines by source, sources that failed."""

    def __init__(self, successes: list[dict[str, Any]], failures: list[dict[str, Any]]) -> None:
        self.by_source: dict[str, dict[int, dict[str, Any]]] = {}
        for line in successes:
            src, index = line.get("source"), line.get("index")
            if isinstance(src, str) and isinstance(index, int):
                self.by_source.setdefault(src, {})[index] = line
        self.failed = {str(line.get("source")) for line in failures}


def read_previous(store: Store, report: str) -> Previous:
    def read(name: str) -> str:
        path = store.join(report, name)
        try:
            if store.local:
                with open(path, encoding="utf-8", errors="replace") as f:
                    return f.read()
            return bytes(store.fs.cat_file(path)).decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    return Previous(_lines(read(SUCCESS)), _lines(read(FAILURE)))


class Report:
    """Writes the three files (see module doc); ``None`` dest: counts only."""

    def __init__(
        self, store: Store | None, dest: str | None, carried: Iterable[dict[str, Any]]
    ) -> None:
        self.store = store
        self.dest = dest
        self.success_lines: list[str] = []  # URL reports: kept until the end
        self.failure_lines: list[str] = []
        self._files: list[Any] = []
        if store is None or dest is None:
            return
        store.makedirs(dest)
        carried_text = "".join(json.dumps({**line, "skipped": True}) + "\n" for line in carried)
        if store.local:
            # the carried lines replace the old file at once (never a half-written report)
            store.write_text(store.join(dest, SUCCESS), carried_text)
            store.write_text(store.join(dest, FAILURE), "")
            self._success = open(store.join(dest, SUCCESS), "a", encoding="utf-8")  # noqa: SIM115
            self._failure = open(store.join(dest, FAILURE), "a", encoding="utf-8")  # noqa: SIM115
        else:
            self.success_lines.append(carried_text)

    def add(self, successes: list[dict[str, Any]], failures: list[dict[str, Any]]) -> None:
        if self.store is None:
            return
        ok = "".join(json.dumps(line) + "\n" for line in successes)
        bad = "".join(json.dumps(line) + "\n" for line in failures)
        if self.store.local:
            if ok:
                self._success.write(ok)
                self._success.flush()
            if bad:
                self._failure.write(bad)
                self._failure.flush()
        else:
            self.success_lines.append(ok)
            self.failure_lines.append(bad)

    def finish(self, summary: dict[str, Any]) -> None:
        if self.store is None or self.dest is None:
            return
        store, dest = self.store, self.dest
        if store.local:
            for f in (self._success, self._failure):
                os.fsync(f.fileno())
                f.close()
        else:
            store.write_text(store.join(dest, SUCCESS), "".join(self.success_lines))
            store.write_text(store.join(dest, FAILURE), "".join(self.failure_lines))
        store.write_text(store.join(dest, SUMMARY), json.dumps(summary, indent=1) + "\n")

    def close(self) -> None:
        if self.store is not None and self.store.local and hasattr(self, "_success"):
            self._success.close()
            self._failure.close()
