"""Where an input ends: done/ (or deleted), failed/ with its record, or claimed for a retry.

The input moves only after every output is durable.  ``failed/NAME.error.json`` holds the
facts of the failure (:meth:`~streamconv.watch.jobs.ErrorInfo.as_dict`, the same fields as
every streamconv failure record) and ``NAME.report.jsonl`` one line per dataset.
"""

from __future__ import annotations

import datetime
import json
import os
import secrets
from dataclasses import dataclass

from .. import __version__
from ..errors import StreamconvError
from ..sinks import write_atomic
from .jobs import ErrorInfo, Job, Mode, Result, printable
from .outputs import Writer, error_fields, transient

__all__ = ["Pending", "fail_input", "finish_failure", "incomplete", "move"]


def incomplete(exc: StreamconvError) -> bool:
    """Truncated JSON or an empty file: what a writer that has not finished leaves."""
    return exc.truncated


@dataclass(slots=True)
class Pending:
    """An input whose outputs are being written; :meth:`finish` once they are durable."""

    job: Job
    path: str  # the claimed input
    stem: str
    size: int
    writer: Writer
    error: StreamconvError | None

    def finish(self) -> Result:
        """Move the input to done/ or failed/ (or leave it claimed for a retry)."""
        job, writer = self.job, self.writer
        error = self.error
        if error is None and writer.write_error is not None:
            error = writer.write_error
        result = Result(
            "done",
            directory=job.claim_dir,
            datasets=writer.count,
            converted=writer.converted,
            failed=writer.failed,
            outputs=writer.outputs,
            first_output=writer.first_output,
            bytes_in=self.size,
            bytes_out=writer.bytes_out,
            warnings=writer.warnings,
        )
        if error is None and writer.failed == 0:
            result.moved_to = finish_success(job, self.path)
            return result
        again = (error is not None and transient(error, writer.write_error)) or (
            error is None and writer.transient_failures > 0
        )
        if error is not None:
            info = ErrorInfo.of(error, transient=again)
            if incomplete(error) and job.mode is Mode.EXPIRED:
                info.message += f" (still incomplete after {job.inbox.max_age:g} s)"
            writer.records.append({"index": None, "result": "failed", **error_fields(error)})
        else:
            assert writer.first_failure is not None
            info = writer.first_failure
        result.error = info
        if again and not job.final:
            result.status = "retry"
            result.directory = os.path.dirname(self.path)
            return result
        result.status = "partial" if writer.converted else "failed"
        result.moved_to = finish_failure(job, self.path, self.stem, info, writer)
        return result


def finish_success(job: Job, path: str) -> str:
    if job.inbox.on_success == "delete":
        os.unlink(path)  # not fsynced either: see move
        return ""
    return move(path, job.inbox.done_dir, job.name)


def finish_failure(
    job: Job, path: str, stem: str, info: ErrorInfo, writer: Writer, *, refused: bool = False
) -> str:
    failed_dir = job.inbox.failed_dir
    name = job.name
    if refused:  # a directory cannot replace what is there, and nothing else should replace it
        name = free_name(failed_dir, name)
        stem = os.path.splitext(name)[0] or name
    report = None
    if writer.count > 1:
        report = stem + ".report.jsonl"
        lines = (json.dumps(r, ensure_ascii=False) + "\n" for r in writer.records)
        write_atomic(os.path.join(failed_dir, report), (line.encode() for line in lines))
    sidecar = {
        "input": printable(job.name),
        "inbox": job.inbox.path,
        "result": "partial" if writer.converted else "failed",
        **info.as_dict(),
        "attempts": job.attempt,
        "datasets": {"total": writer.count, "converted": writer.converted, "failed": writer.failed},
        "outputs": [r["output"] for r in writer.records[:100] if r["result"] == "converted"],
        "report": report,
        "streamconv_version": __version__,
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    text = json.dumps(sidecar, ensure_ascii=False, indent=1) + "\n"
    write_atomic(os.path.join(failed_dir, stem + ".error.json"), [text.encode()])
    return move(path, failed_dir, name)


def free_name(directory: str, name: str) -> str:
    """*name*, or ``NAME.<hex>`` if something already has that name in *directory*."""
    candidate = name
    while os.path.lexists(os.path.join(directory, candidate)):
        candidate = f"{name}.{secrets.token_hex(3)}"
    return candidate


def move(path: str, directory: str, name: str) -> str:
    """Move the input to its outcome folder (a rename).

    No fsync of either folder: the outputs (or the error sidecar) are already durable, and a
    rename lost in a power failure only leaves the input in processing/, where the next start
    converts it again under the same output names. The input is in exactly one place whatever
    happens, which is what matters; two fsyncs per input would halve the throughput.
    """
    target = os.path.join(directory, name)
    os.replace(path, target)
    return target


def fail_input(job: Job, info: ErrorInfo) -> Result:
    """Move an input to failed/ without converting it (a worker kept crashing on it)."""
    path = os.path.join(job.directory, job.name)
    if job.directory != job.claim_dir:
        dst = os.path.join(job.claim_dir, job.name)
        if os.path.lexists(dst):
            return Result("not_ready", "busy")
        try:
            os.rename(path, dst)
        except FileNotFoundError:
            return Result("gone")
        path = dst
    stem = os.path.splitext(job.name)[0] or job.name
    writer = Writer(job, stem)
    result = Result("failed", error=info, directory=job.claim_dir)
    result.moved_to = finish_failure(job, path, stem, info, writer)
    return result
