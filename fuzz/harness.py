"""What the fuzz targets (and tests/test_fuzz_smoke.py) run on one input, and the invariant.

The invariant (issue 5): any input ends with a :class:`StreamconvError` whose exit code is
one of the contract's (1, 20, 40, 65, 66) and leaves no output and no temporary file
behind, or with output files that pydicom reads.  Any other exception is a finding; so is a
hang (libFuzzer's ``-timeout``) or a crash (segfault, ``-rss_limit_mb``).

An input is two header bytes and the JSON text:

* byte 0 picks the json2dcm options (:data:`OPTION_SETS`, built by the real command-line
  parser, so that only valid combinations are fuzzed);
* byte 1 picks where the JSON is cut into two chunks (the filter's state across chunks);
* the rest is fed to :class:`streamconv.core.pipeline.Converter`.

Bulk data: ``+Bd`` names a sandbox directory holding a few small files, a FIFO, a
directory and symlinks to a secret file outside it.  Relative BulkDataURIs resolve there.
A secret's bytes in an output, or a read of the FIFO, is a finding.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CONTRACT_CODES",
    "OPTION_SETS",
    "InvariantError",
    "Sandbox",
    "check_options",
    "run_convert",
    "seed_inputs",
]

CONTRACT_CODES = frozenset({1, 20, 40, 65, 66})
SECRET = b"TOP-SECRET-OUTSIDE-BULK-DIR"

# byte 0 of an input (mod len) -> extra json2dcm options
OPTION_SETS: tuple[tuple[str, ...], ...] = (
    (),
    ("+E",),
    ("+ar",),
    ("+as", "2"),
    ("+aS",),
    ("+tb",),
    ("+ti", "-e"),
    ("+td", "+cl", "1"),
    ("-F", "-f"),
    ("+Ug", "+Uo", "-c"),
    ("-u", "+E", "+ar"),
    ("-Bu",),
    (
        "--max-depth",
        "4",
        "--max-elements",
        "40",
        "--max-value-bytes",
        "64",
        "--max-dataset-bytes",
        "256",
    ),
    ("+E", "+tb", "-e", "+aS"),
    ("+Fu", "+te"),
    ("+E", "-c", "+td"),
    ("+aS", "+E", "--filename-template", "{SOPInstanceUID}/{Modality}-{PatientName}_{index1}.dcm"),
)


class InvariantError(AssertionError):
    """The invariant does not hold for an input (a finding)."""


@dataclass
class Sandbox:
    """A directory tree for one fuzzing process: bulk/ (permitted), outside/, out/, tmp/."""

    root: str = ""
    bulk: str = ""
    out: str = ""
    tmp: str = ""
    options: list[Any] = field(default_factory=list)

    @classmethod
    def create(cls, base: str | None = None) -> Sandbox:
        root = os.path.realpath(tempfile.mkdtemp(prefix="streamconv-fuzz-", dir=base))
        box = cls(
            root, os.path.join(root, "bulk"), os.path.join(root, "out"), os.path.join(root, "tmp")
        )
        outside = os.path.join(root, "outside")
        for d in (box.bulk, box.out, box.tmp, outside, os.path.join(box.bulk, "sub")):
            os.makedirs(d)
        with open(os.path.join(outside, "secret.bin"), "wb") as f:
            f.write(SECRET)
        files = {
            "ok.bin": bytes(range(16)),
            "odd.bin": b"\x01\x02\x03",
            "text.txt": b"1.5\\2.5 ",
            "empty.bin": b"",
            "big.bin": bytes(range(256)) * 8,
        }
        for name, data in files.items():
            with open(os.path.join(box.bulk, name), "wb") as f:
                f.write(data)
        os.symlink(os.path.join(outside, "secret.bin"), os.path.join(box.bulk, "link-out"))
        os.symlink("link-out", os.path.join(box.bulk, "chain"))
        os.symlink(outside, os.path.join(box.bulk, "dir-out"))
        os.symlink("ok.bin", os.path.join(box.bulk, "link-in"))
        os.mkfifo(os.path.join(box.bulk, "fifo"))
        # spill and +ar spool files go here: what is left after an input is a finding
        tempfile.tempdir = box.tmp
        from streamconv.args import build_options, parse_args

        box.options = [
            build_options(parse_args([*extra, "+Bd", box.bulk, "in", "out"]))
            for extra in OPTION_SETS
        ]
        return box

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def run_convert(data: bytes, box: Sandbox) -> str:
    """Run one input through the Converter; return "ok" or "exit N"; raise on a finding."""
    from streamconv.core.pipeline import Converter, Output, RunContext, release
    from streamconv.errors import StreamconvError
    from streamconv.options import ArrayPolicy, WriteMode
    from streamconv.sinks import write_output

    flags = data[0] if data else 0
    cut_byte = data[1] if len(data) > 1 else 0
    text = data[2:]
    options = box.options[flags % len(box.options)]
    split = options.array_policy is ArrayPolicy.SPLIT
    cut = len(text) * cut_byte // 255
    conv = Converter(RunContext(options, "fuzz.json", box.bulk))
    pending: list[Output] = []
    written: list[tuple[str, bool]] = []
    result = "ok"
    try:
        try:
            for chunk in (text[:cut], text[cut:]):
                for item in conv.feed(chunk):
                    assert isinstance(item, Output)
                    pending.append(item)
            for item in conv.finish():
                assert isinstance(item, Output)
                pending.append(item)
            while pending:
                out = pending.pop(0)
                target = box.out if split else os.path.join(box.out, "out.dcm")
                # pydicom reads group 0000 after the meta header as a command set, in implicit
                # VR little endian whatever the transfer syntax (PS3.7 6.3.1): not checkable
                command = any(tag >> 16 == 0 for tag in out.dataset)
                written.append((write_output(out, target, options, fsync=False), command))
        except StreamconvError as exc:
            if exc.exit_code not in CONTRACT_CODES:
                raise InvariantError(
                    f"exit code {exc.exit_code} is not a contract code: {exc}"
                ) from exc
            if not str(exc).strip():
                raise InvariantError(f"{type(exc).__name__} without a message") from exc
            result = f"exit {exc.exit_code}"
        finally:
            conv.close()
            for out in pending:
                release(out)
        if result != "ok" and not split and _files(box.out):
            raise InvariantError(f"{result} but an output was left: {_files(box.out)}")
        for path, command in written:
            if not os.path.realpath(path).startswith(box.out + os.sep):
                raise InvariantError(f"output written outside the output directory: {path!r}")
            _check_output(
                path,
                dataset_only=options.write_mode is WriteMode.DATASET,
                strict=options.stop_on_error,
                parse=not command,
            )
        if _files(box.tmp):
            raise InvariantError(f"temporary files left behind: {_files(box.tmp)}")
        if any(name.endswith(".part") for name in _files(box.out)):
            raise InvariantError(f"partial output left behind: {_files(box.out)}")
    finally:
        _empty(box.out)
        _empty(box.tmp)
    return result


def _check_output(path: str, *, dataset_only: bool, strict: bool, parse: bool = True) -> None:
    import pydicom
    import pydicom.config

    with open(path, "rb") as f:
        data = f.read()
    if SECRET in data:
        raise InvariantError(f"{path}: bytes of a file outside the +Bd directory were written")
    if not parse:
        return
    old = pydicom.config.settings.reading_validation_mode
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=dataset_only)
            implicit = ds.original_encoding[0]
            # under -E every value must parse as well; not in implicit VR, where a reader
            # takes each VR from its dictionary while the JSON's VR wins (CONTRACT §4)
            if strict and not implicit:
                for elem in ds.iterall():
                    _ = elem.value
    except Exception as exc:
        raise InvariantError(f"{path}: pydicom cannot read the output: {exc!r}") from exc
    finally:
        pydicom.config.settings.reading_validation_mode = old


def _files(directory: str) -> list[str]:
    out = []
    for dirpath, _dirs, names in os.walk(directory):
        out += [os.path.relpath(os.path.join(dirpath, n), directory) for n in names]
    return out


def _empty(directory: str) -> None:
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass


def check_options(data: bytes, cwd: str) -> str:
    """The option parser: any argv ends in options or a UsageError (exit 1)."""
    from streamconv.args import build_options, log_level, parse_args
    from streamconv.errors import UsageError

    words = [w.decode("utf-8", "surrogateescape") for w in data.split(b"\x00")]
    try:
        parsed = parse_args(words)
        log_level(parsed)
        build_options(parsed)
    except UsageError as exc:
        if exc.exit_code != 1 or not exc.message:
            raise InvariantError(f"usage error without exit code 1 or message: {exc!r}") from exc
        return "exit 1"
    return "ok"


def seed_inputs(repo: str) -> dict[str, bytes]:
    """Seeds for the converter target (header bytes + JSON), from examples/ and small cases."""
    seeds: dict[str, bytes] = {}
    with open(os.path.join(repo, "examples", "ct.json"), "rb") as f:
        ct = f.read()
    for i in (0, 1, 4, 5, 13):  # defaults, +E, +aS, +tb, +E +tb -e +aS
        seeds[f"ct-{i:02d}"] = bytes([i, 128]) + ct
    small = {
        "min": b'{"00100010":{"vr":"PN","Value":[{"Alphabetic":"A"}]}}',
        "array": b'[{"00100020":{"vr":"LO","Value":["a"]}},{"00100020":{"vr":"LO","Value":["b"]}},]',
        "ndjson": b'{"00100020":{"vr":"LO","Value":["a"]}}\n{"00100020":{"vr":"LO","Value":["b"]}}\n',
        "seq": b'{"00081115":{"vr":"SQ","Value":[{"00081150":{"vr":"UI","Value":["1.2.3"]},'
        b'"00081155":{"vr":"UI","Value":["1.2.3.4"]}}]}}',
        "numbers": b'{"00280010":{"vr":"US","Value":[512]},"00280030":{"vr":"DS","Value":[0.5,"0.5"]},'
        b'"00201041":{"vr":"DS","Value":[-12.25]},"00200013":{"vr":"IS","Value":[1]},'
        b'"00189087":{"vr":"FD","Value":[1000.5]},"00720082":{"vr":"UV","Value":[18446744073709551615]},'
        b'"00209165":{"vr":"AT","Value":["00100010"]}}',
        "inline": b'{"00091010":{"vr":"OB","InlineBinary":"AAECAwQFBgc="},'
        b'"00091011":{"vr":"OW","InlineBinary":"AAE="},"00091012":{"vr":"OF","InlineBinary":"AACAPw=="}}',
        "bulk": b'{"7FE00010":{"vr":"OW","BulkDataURI":"ok.bin?offset=2&length=8"},'
        b'"00091010":{"vr":"OB","BulkDataURI":"big.bin"},"00091011":{"vr":"DS","BulkDataURI":"text.txt"}}',
        "bulk-abs": b'{"7FE00010":{"vr":"OB","BulkDataURI":"file:///nonexistent/ok.bin"}}',
        "bulk-escape": b'{"7FE00010":{"vr":"OB","BulkDataURI":"link-out"},'
        b'"00091010":{"vr":"OB","BulkDataURI":"%2e%2e/outside/secret.bin"}}',
        "charset": b'{"00080005":{"vr":"CS","Value":["ISO_IR 100"]},'
        b'"00100010":{"vr":"PN","Value":[{"Alphabetic":"M\\u00fcller^J\\u00f6rg"}]}}',
        "charset-2022": b'{"00080005":{"vr":"CS","Value":["","ISO 2022 IR 87"]},'
        b'"00100010":{"vr":"PN","Value":[{"Alphabetic":"Yamada^Tarou","Ideographic":"\\u5c71\\u7530^\\u592a\\u90ce"}]}}',
        "meta": b'{"00020010":{"vr":"UI","Value":["1.2.840.10008.1.2"]},"00020002":{"vr":"UI","Value":["1.2.3"]},'
        b'"00080016":{"vr":"UI","Value":["1.2.3"]},"00080018":{"vr":"UI","Value":["1.2.3.4"]}}',
        "private": b'{"00090010":{"vr":"LO","Value":["ACME"]},"00091001":{"Value":["x"]},'
        b'"00091002":{"vr":"UN","InlineBinary":"AAAA"}}',
        "texts": b'{"00081030":{"vr":"LO","Value":["a",null,"b"]},"00204000":{"vr":"LT","Value":["a\\\\b"]},'
        b'"00080090":{"vr":"PN","Value":[null,{"Alphabetic":"x","Phonetic":"y"}]},'
        b'"00100030":{"vr":"DA","Value":["20000101"]},"00081190":{"vr":"UR","Value":["http://x/y z"]}}',
        "escapes": b'{"00100020":{"vr":"LO","Value":["\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\ud83d\\ude00"]}}',
        "bom": b'\xef\xbb\xbf{"00100020":{"vr":"LO","Value":["bom"]}}',
        "uid-keyword": b'{"00080016":{"vr":"UI","Value":["=CTImageStorage"]}}',
        "pixel": b'{"00280010":{"vr":"US","Value":[2]},"00280011":{"vr":"US","Value":[2]},'
        b'"7FE00010":{"vr":"OW","InlineBinary":"AAABAAIAAwA="}}',
        "deep": b'{"00081115":{"vr":"SQ","Value":[' * 5 + b"{}" + b"]}}" * 5,
    }
    for i, (name, text) in enumerate(small.items()):
        seeds[name] = bytes([i % len(OPTION_SETS), 100]) + text
    return seeds


def option_seeds() -> dict[str, bytes]:
    """Seeds for the option-parser target: argv words joined by NUL."""
    argvs = [
        ["in.json", "out.dcm"],
        ["+E", "+ar", "-u", "in.json", "out.dcm"],
        ["+as", "3", "+tb", "-e", "x", "y"],
        ["+Ug", "+Uo", "-c", "+td", "+cl", "9", "a", "b"],
        [
            "--max-depth",
            "10",
            "--max-elements",
            "5",
            "--max-value-bytes",
            "100",
            "--max-dataset-bytes",
            "1000",
            "a",
            "b",
        ],
        ["+Bd", ".", "+Bd", "bulk", "-Bu", "+Bu", "a", "b"],
        ["-ll", "debug", "+aS", "--filename-template", "{SOPInstanceUID}.dcm", "a", "b"],
        ["-F", "+Fu", "a", "b"],
        ["@cmdfile", "a", "b"],
        ["-q", "-v", "-d", "--arguments", "--version", "-h"],
    ]
    return {f"argv-{i:02d}": b"\x00".join(w.encode() for w in argv) for i, argv in enumerate(argvs)}
