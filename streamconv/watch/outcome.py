"""Where an input ends: done/ (or deleted), failed/ with its record, or claimed for later.

The input moves only after every output is durable.  ``failed/NAME.error.json`` holds the
facts of the failure (:meth:`~streamconv.watch.jobs.ErrorInfo.as_dict`, the same fields as
every streamconv failure record) and ``NAME.report.jsonl`` one line per dataset.

Nothing in done/ or failed/ is ever replaced: a name already there gets a free one
(``NAME.<hex>``, its record ``NAME.<hex>.error.json``), moved with ``renameat2(
RENAME_NOREPLACE)``.  An input that changed after it was read is not moved at all (it is
converted again), and a move or record that finds its filesystem full leaves the input
claimed (status ``full``: the daemon pauses intake; no attempt is counted).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
from dataclasses import dataclass

from .. import __version__
from ..errors import OutputError, StreamconvError
from ..sinks import rename_noreplace, write_atomic
from .claims import claim_entry
from .jobs import ErrorInfo, Job, Mode, Result, Sig, printable
from .outputs import Writer, error_fields, no_space, transient

__all__ = [
    "Pending",
    "fail_input",
    "finish_failure",
    "incomplete",
    "move",
    "sidecar_name",
]


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
    sig: Sig | None = None  # (inode, size, mtime_ns) of what was read

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
            published=tuple(writer.published),
        )
        if no_space(error):
            assert isinstance(error, OutputError)
            return _full(result, self.path, error, job.inbox.output_dir)
        changed = self._changed(result)
        if changed is not None:
            return changed
        if error is None and writer.failed == 0:
            _remove_stale(job, writer)
            try:
                result.moved_to = finish_success(job, self.path)
            except OutputError as exc:
                return _cannot_move(result, job, self.path, exc, ErrorInfo.of(exc))
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
        try:
            result.moved_to = finish_failure(job, self.path, info, writer)
        except OutputError as exc:
            return _cannot_move(result, job, self.path, exc, info)
        return result

    def _changed(self, result: Result) -> Result | None:
        """The input changed (size, mtime, inode) since it was read: it is not moved to done/
        as converted (nor to failed/): it stays claimed and is converted again."""
        if self.sig is None:
            return None
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return Result("gone", reason="removed while it was converted")
        now = (st.st_ino, st.st_size, st.st_mtime_ns)
        if now == self.sig:
            return None
        result.status = "changed"
        result.reason = f"{self.sig[1]} -> {now[1]} bytes"
        result.sig = now
        result.directory = os.path.dirname(self.path)
        result.error = None
        return result


def _remove_stale(job: Job, writer: Writer) -> None:
    """Outputs an earlier attempt published that this one did not (the input changed, e.g.
    one dataset became several): removed, so that what is left is this conversion."""
    for path in sorted((job.owned or frozenset()) - set(writer.published)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _full(result: Result, path: str, exc: OutputError, folder: str) -> Result:
    result.status = "full"
    result.error = ErrorInfo.of(exc, transient=True)
    result.reason = exc.message
    result.directory = os.path.dirname(path)
    result.full_dir = folder
    return result


def _cannot_move(result: Result, job: Job, path: str, exc: OutputError, info: ErrorInfo) -> Result:
    """done/ or failed/ (or its record) cannot be written: the input stays claimed.

    No space: status ``full`` (intake pauses, no attempt counted); the error stays the
    input's own failure (its category), ``reason`` says why it waits.  Anything else (a
    folder made read-only, ...) is retried like a transient error, and after the last attempt
    the input is left in its claim folder (status ``stuck``), where the next start finds it.
    """
    result.directory = os.path.dirname(path)
    if no_space(exc):
        done = result.status == "done"
        result.status = "full"
        result.full_dir = job.inbox.done_dir if done else job.inbox.failed_dir
        result.error = info
        result.reason = exc.message
        return result
    if result.status != "done":  # what failed/ would have said
        result.reason = f"the input failed: {info.category} (exit {info.exit_code})"
    result.error = ErrorInfo.of(exc, transient=True)
    result.status = "stuck" if job.final else "retry"
    return result


def finish_success(job: Job, path: str) -> str:
    if job.inbox.on_success == "delete":
        os.unlink(path)  # not fsynced either: see move
        return ""
    return move(path, job.inbox.done_dir, job.name)


def sidecar_name(name: str, original: str) -> str:
    """failed/NAME's record: ``STEM.error.json``, or ``NAME.<hex>.error.json`` for an input
    that got a free name (NAME was taken)."""
    if name != original:
        return name + ".error.json"
    return (os.path.splitext(name)[0] or name) + ".error.json"


def finish_failure(job: Job, path: str, info: ErrorInfo, writer: Writer) -> str:
    failed_dir = job.inbox.failed_dir
    name = job.name
    while True:
        taken = os.path.lexists(os.path.join(failed_dir, name))
        record = sidecar_name(name, job.name)
        if not taken and not os.path.lexists(os.path.join(failed_dir, record)):
            break
        name = f"{job.name}.{secrets.token_hex(3)}"
    report = None
    if writer.count > 1:
        report = record.removesuffix(".error.json") + ".report.jsonl"
        lines = (json.dumps(r, ensure_ascii=False) + "\n" for r in writer.records)
        write_atomic(
            os.path.join(failed_dir, report), (line.encode() for line in lines), tag=job.tag
        )
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
    if name != job.name:
        sidecar["moved_as"] = printable(name)
    text = json.dumps(sidecar, ensure_ascii=False, indent=1) + "\n"
    write_atomic(os.path.join(failed_dir, record), [text.encode()], tag=job.tag)
    return move(path, failed_dir, name)


def move(path: str, directory: str, name: str) -> str:
    """Move the input to its outcome folder (a rename that never replaces: a name already
    there gets a free one, ``NAME.<hex>``).

    No fsync of either folder: the outputs (or the error sidecar) are already durable, and a
    rename lost in a power failure only leaves the input in processing/, where the next start
    converts it again under the same output names. The input is in exactly one place whatever
    happens, which is what matters; two fsyncs per input would halve the throughput.
    """
    candidate = name
    while True:
        target = os.path.join(directory, candidate)
        try:
            rename_noreplace(path, target)
            return target
        except FileExistsError:
            candidate = f"{name}.{secrets.token_hex(3)}"
        except OSError as exc:
            err = OutputError(f"cannot move the input to '{target}': {exc.strerror or exc}")
            err.errno = exc.errno
            raise err from None


def fail_input(job: Job, info: ErrorInfo) -> Result:
    """Move an input to failed/ without converting it (a worker kept crashing on it)."""
    path = os.path.join(job.directory, job.name)
    if job.directory != job.claim_dir:
        dst = os.path.join(job.claim_dir, job.name)
        claim = claim_entry(path, dst)
        if claim != "claimed":
            return Result("not_ready", "busy") if claim == "busy" else Result("gone")
        path = dst
    stem = os.path.splitext(job.name)[0] or job.name
    writer = Writer(job, stem)
    result = Result("failed", error=info, directory=job.claim_dir)
    try:
        result.moved_to = finish_failure(job, path, info, writer)
    except OutputError as exc:
        return _cannot_move(result, job, path, exc, info)
    return result
