"""What the daemon hands a worker process and what it gets back (both pickled).

A :class:`Job` is one input and what the daemon knows of it (:class:`Mode`); a :class:`Result`
is what became of it, with an :class:`ErrorInfo` when it failed: the facts of the
:class:`~streamconv.errors.StreamconvError` (``as_dict()`` is the one record format), or of a
failure that has no exception class (a worker that died, an entry that is refused).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from ..errors import StreamconvError
from .config import InboxConfig

__all__ = [
    "READ_SIZE",
    "SMALL_INPUT",
    "STREAM_SUFFIXES",
    "ErrorInfo",
    "Job",
    "Mode",
    "Result",
    "name_problem",
    "printable",
]

#: Inputs up to this size are read into memory and converted before the claim (one parse);
#: larger ones get a parse-only completeness pass, then a streaming conversion.
SMALL_INPUT = 16 << 20
READ_SIZE = 1 << 20
#: Names of inputs that hold a stream of values: a first complete line proves nothing.
STREAM_SUFFIXES = (".ndjson", ".jsonl", ".ldjson")
#: Characters refused in input names: C0/C1 controls (newline, carriage return, escape...),
#: Unicode line and paragraph separators and bidirectional overrides (they can forge or hide
#: log lines), and lone surrogates (os.fsdecode's stand-ins for bytes that are not UTF-8).
_UNSAFE_NAME = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")

Sig = tuple[int, int, int]  # (inode, size, mtime_ns)


class Mode(enum.Enum):
    """What the daemon knows about an input it hands to a worker."""

    FAST = "fast"  # first sighting: take it only if obviously complete
    SETTLED = "settled"  # unchanged for quiet_period: take it if it parses completely
    EXPIRED = "expired"  # older than max_age: take it, complete or not
    CLAIMED = "claimed"  # already ours (resumed or retried): convert it


@dataclass(frozen=True, slots=True)
class Job:
    """One input for :func:`~streamconv.watch.worker.process_batch`."""

    inbox: InboxConfig
    name: str
    directory: str  # where the input is now: the inbox, or a claim folder
    claim_dir: str  # this daemon's processing/ID/
    mode: Mode
    sig: Sig | None  # (inode, size, mtime_ns) as the daemon last saw it
    attempt: int = 1
    final: bool = False  # the last attempt: a transient error fails the input
    parent_pid: int = 0
    #: marks this batch's temporaries (``.NAME.<tag>.<hex>.part``), so that whoever sees the
    #: worker die can remove exactly them (claims.temp_tag)
    tag: str = ""
    #: outputs this input published in earlier attempts: replaced, never a collision; None
    #: when unknown (an input adopted from a dead daemon: see outputs.Writer)
    owned: frozenset[str] | None = frozenset()


@dataclass(slots=True)
class ErrorInfo:
    """The facts of a failure, as in :meth:`StreamconvError.as_dict`."""

    category: str
    exit_code: int
    message: str
    path: str = ""
    transient: bool = False

    @classmethod
    def of(cls, exc: StreamconvError, *, transient: bool = False) -> ErrorInfo:
        return cls(exc.category, exc.exit_code, exc.message, exc.path, transient)

    def as_dict(self) -> dict[str, object]:
        return {
            "category": self.category,
            "exit_code": self.exit_code,
            "message": self.message,
            "path": self.path,
            "transient": self.transient,
        }


@dataclass(slots=True)
class Result:
    """What became of a :class:`Job`; ``status`` is one of

    ``done``, ``partial`` (some datasets failed; the input is in failed/), ``failed``, ``left``
    (refused but cannot be moved: ``reason``; left in the inbox, logged once),
    ``retry`` (transient error; the input stays claimed in ``directory``), ``full`` (a write
    found no space or quota: the input stays claimed, intake pauses, no attempt counted),
    ``changed`` (the input changed while it was converted: it stays claimed and is converted
    again, not moved to done/), ``not_ready`` (``reason``: incomplete, changed, unsettled,
    busy), ``gone`` (vanished or claimed by another daemon).
    """

    status: str
    reason: str = ""
    sig: Sig | None = None
    directory: str = ""
    datasets: int = 0
    converted: int = 0
    failed: int = 0
    outputs: int = 0
    first_output: str = ""
    bytes_in: int = 0
    bytes_out: int = 0
    warnings: int = 0
    error: ErrorInfo | None = None
    moved_to: str = ""
    seconds: float = 0.0
    #: every output path this input published (kept for its later attempts: Job.owned)
    published: tuple[str, ...] = ()
    #: the folder that was full (status ``full``)
    full_dir: str = ""


def printable(text: str) -> str:
    """*text* as it is, or its ``repr`` if it holds characters that could forge a log line or
    a name that is not UTF-8 (escaped, so that it is one line of valid text)."""
    return repr(text) if _UNSAFE_NAME.search(text) or _SURROGATE.search(text) else text


def name_problem(name: str) -> str:
    """Why an input name is refused ("" if it is not)."""
    if _SURROGATE.search(name):
        return "name is not valid UTF-8"
    if _UNSAFE_NAME.search(name):
        return "name contains control characters"
    return ""
