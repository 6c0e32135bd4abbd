"""The exception tree of streamconv; every class carries its json2dcm exit code.

    StreamconvError                 base, exit_code 65
    ├── UsageError                  1   command-line syntax, option conflicts
    ├── InputError                  20  the JSON input cannot be read
    │   └── BulkDataAccessError     20  bulk data file missing, unreadable, not permitted
    │       └── BulkDataFetchError  20  a permitted http(s) value cannot be fetched (``transient``
    │                                   when retrying later may help: timeouts, 429, 5xx)
    ├── OutputError                 40  the output cannot be written (also impossible TS)
    ├── ContentError                65  invalid JSON or invalid DICOM JSON content
    │   ├── JSONSyntaxError         65  RFC 8259 violation; carries the byte offset
    │   ├── LimitError              65  a configured resource limit was exceeded
    │   └── CharsetError            65  text not representable in the declared character set
    ├── UnsupportedURIError         66  BulkDataURI scheme not supported
    └── WorkerDied                  70  a worker process died (killed, out of memory)

Messages name the input, the element path (``(0010,1002)[2].(0010,0020)``, items from 1)
and what was expected.  The one -E/+E decision lives in :class:`Problems`.

Facts are attributes, never read back from the message text: ``exit_code``, ``category``,
``path`` (element path), ``offset`` (byte offset), ``source`` (the input), ``transient``
(worth trying again later: the input itself is not the problem) and ``truncated`` (the input
ended before its JSON did, as a writer that has not finished leaves it).  :meth:`as_dict` is
the one serialisation of every failure record (``NAME.error.json``,
``rejected/NNNNNN.error.json``, ``report.jsonl``, batch ``failure.ndjson``).
"""

from __future__ import annotations

from .core.lazylog import lazy_logger

__all__ = [
    "BulkDataAccessError",
    "BulkDataFetchError",
    "CharsetError",
    "ContentError",
    "InputError",
    "JSONSyntaxError",
    "LimitError",
    "OutputError",
    "Problems",
    "StreamconvError",
    "UnsupportedURIError",
    "UsageError",
    "WorkerDied",
]

log = lazy_logger("streamconv")


class StreamconvError(Exception):
    """Base class: a conversion failure with a json2dcm exit code."""

    exit_code = 65
    category = "content"
    transient = False  # class default; an instance may say otherwise

    def __init__(
        self,
        message: str,
        *,
        path: object = "",
        source: str = "",
        transient: bool | None = None,
        truncated: bool = False,
        offset: int | None = None,
    ) -> None:
        self.message = message
        self.path = str(path)
        self.source = source
        self.offset = offset
        self.truncated = truncated
        if transient is not None:
            self.transient = transient
        super().__init__(message)

    def as_dict(self) -> dict[str, object]:
        """The failure record's fields, the same in every record streamconv writes."""
        record: dict[str, object] = {
            "category": self.category,
            "exit_code": self.exit_code,
            "message": self.message,
            "path": self.path,
            "transient": self.transient,
        }
        if self.offset is not None:
            record["offset"] = self.offset
        if self.source:
            record["source"] = self.source
        return record

    def __str__(self) -> str:
        parts = []
        if self.source:
            parts.append(f"{self.source}:")
        if self.path:
            parts.append(f"{self.path}:")
        parts.append(self.message)
        return " ".join(parts)

    def with_source(self, source: str) -> StreamconvError:
        """Attach the input name once it is known (front ends call this)."""
        if not self.source:
            self.source = source
        return self


class UsageError(StreamconvError):
    exit_code = 1
    category = "usage"
    # False: DCMTK reports this one as a logged error ("E: ..."), not under the usage header
    # (a +Bd directory that does not exist, dcmtk-behavior §6)
    with_usage_header = True


class InputError(StreamconvError):
    exit_code = 20
    category = "input"
    transient = True  # not there yet, unreadable for now: the daemon tries again


class BulkDataAccessError(InputError):
    category = "bulkdata"


class BulkDataFetchError(BulkDataAccessError):
    """A permitted http(s) input or bulk value could not be fetched (CONTRACT §2: 20).

    ``transient`` is the daemon's retry decision: true after connection errors, timeouts,
    408/429/5xx that outlasted the bounded retries; false for the other 4xx answers.
    ``status`` is the last HTTP status (0 when none arrived), ``url`` the URL without
    credentials.
    """

    category = "bulkdata-fetch"

    def __init__(
        self, message: str, *, url: str, status: int = 0, transient: bool, path: object = ""
    ) -> None:
        self.url = url
        self.status = status
        super().__init__(message, path=path, transient=transient)


class OutputError(StreamconvError):
    exit_code = 40
    category = "output"
    #: the failed OS call's errno (ENOSPC, EDQUOT, EEXIST...), None when no OS call failed
    errno: int | None = None


class ContentError(StreamconvError):
    exit_code = 65
    category = "content"


class JSONSyntaxError(ContentError):
    category = "json-syntax"

    def __init__(
        self,
        message: str,
        *,
        offset: int | None = None,
        source: str = "",
        truncated: bool = False,
    ) -> None:
        if offset is not None:
            message = f"{message} (at byte offset {offset})"
        super().__init__(message, source=source, offset=offset, truncated=truncated)


class LimitError(ContentError):
    category = "limit"


class CharsetError(ContentError):
    category = "charset"


class WorkerDied(StreamconvError):
    """A worker process died (killed, out of memory): the run ends with the same exit code in
    every front end (EX_SOFTWARE, sysexits.h: the conversion did not finish and the input is
    not known to be at fault, so a daemon may try it again)."""

    exit_code = 70
    category = "internal"
    transient = True


class UnsupportedURIError(StreamconvError):
    exit_code = 66
    category = "unsupported-uri"


class Problems:
    """The single -E/+E decision point (CONTRACT §4).

    Under -E (``strict``) a problem raises; under +E it is logged as a warning and the
    caller goes on with DCMTK's result or drops the element.
    """

    __slots__ = ("strict", "warned", "warnings")

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict
        self.warnings: list[str] = []
        self.warned = 0  # warn() calls: something that built was told about

    def error(self, exc: StreamconvError) -> None:
        if self.strict:
            raise exc
        self.warnings.append(str(exc))
        log.warning("%s", exc)

    def warn(self, message: str, path: object = "") -> None:
        self.warned += 1
        if path:
            log.warning("%s: %s", path, message)
        else:
            log.warning("%s", message)
