"""Bulk data confinement (CONTRACT §5, issue 5): one test per attack, against real files,
symlinks, FIFOs and devices in ``tmp_path``.

Every case runs json2dcm (in-process ``streamconv.cli.main``; the FIFO, device, symlink and
host cases also as a real subprocess) and checks the exit code, that the message says what
was refused, and that no output file and no temporary file is left.  A refused read must
never reach the bytes of ``outside/secret.bin``.

Exit codes (CONTRACT §2): 20 for a bulk data file that is missing, unreadable, not a
regular file or outside the ``+Bd`` directories; 66 for URIs streamconv does not read
(other schemes, other hosts); 65 for a URI that is malformed or points past the end of
the file.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import pytest

from streamconv.cli import main
from streamconv.core import bulkdata
from streamconv.logsetup import reset_logging

JSON2DCM = shutil.which("json2dcm", path=os.path.dirname(sys.executable)) or "json2dcm"
SECRET = b"SECRET-OUTSIDE-THE-BULK-DIR!"  # 28 bytes, even
DATA = bytes(range(16))
OUTSIDE = "BulkDataURI refers to a file outside the permitted bulk data directories"
NOT_REGULAR = "bulk data path is not a regular file"


@dataclass
class Tree:
    root: Path
    bulk: Path  # the +Bd directory
    outside: Path
    secret: Path
    json_dir: Path
    out: Path
    tmp: Path

    def uri(self, rel: str) -> str:
        return f"file://{self.bulk}/{rel}"


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tree]:
    bulk = tmp_path / "bulk"
    outside = tmp_path / "outside"
    json_dir = tmp_path / "json"
    out = tmp_path / "out"
    tmp = tmp_path / "tmp"
    for d in (bulk, outside, json_dir, out, tmp):
        d.mkdir()
    (bulk / "ok.bin").write_bytes(DATA)
    secret = outside / "secret.bin"
    secret.write_bytes(SECRET)
    # spill and spool files of streamconv's own go here: it must be empty afterwards
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    yield Tree(tmp_path, bulk, outside, secret, json_dir, out, tmp)
    reset_logging()


@dataclass
class Result:
    rc: int
    stderr: str
    out: Path

    def ds(self) -> pydicom.Dataset:
        return pydicom.dcmread(self.out)


def doc(uri: str, vr: str = "OB", tag: str = "7FE00010") -> dict[str, Any]:
    return {"00080016": {"vr": "UI", "Value": ["1.2.3"]}, tag: {"vr": vr, "BulkDataURI": uri}}


def run(tree: Tree, document: dict[str, Any], *opts: str, bd: bool = True) -> Result:
    """json2dcm in-process: ``json2dcm [+Bd bulk] opts json/in.json out/out.dcm``."""
    src = tree.json_dir / "in.json"
    src.write_text(json.dumps(document), encoding="utf-8")
    out = tree.out / "out.dcm"
    stderr = io.StringIO()
    args = [*(("+Bd", str(tree.bulk)) if bd else ()), *opts, str(src), str(out)]
    rc = main(args, stdout=io.StringIO(), stderr=stderr)
    reset_logging()
    return Result(rc, stderr.getvalue(), out)


def run_process(tree: Tree, document: dict[str, Any], *opts: str, timeout: float = 30) -> Result:
    """json2dcm as a real process (exit code and stderr as a user sees them)."""
    src = tree.json_dir / "in.json"
    src.write_text(json.dumps(document), encoding="utf-8")
    out = tree.out / "out.dcm"
    env = {**os.environ, "TMPDIR": str(tree.tmp)}
    proc = subprocess.run(
        [JSON2DCM, "+Bd", str(tree.bulk), *opts, str(src), str(out)],
        capture_output=True, timeout=timeout, env=env, check=False,
    )  # fmt: skip
    return Result(proc.returncode, proc.stderr.decode("utf-8", "replace"), out)


def refused(result: Result, code: int, message: str) -> None:
    """The run failed with ``code``, said ``message``, and left nothing behind."""
    assert result.rc == code, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(("E: ", "$streamconv")) or "\nE: " in result.stderr
    assert not result.out.exists()
    left = [p for p in result.out.parent.iterdir()]
    assert left == [], f"left in the output directory: {left}"
    assert not any(Path(tempfile.gettempdir()).iterdir()), "temporary files left behind"


def converted(result: Result, expected: bytes) -> None:
    assert result.rc == 0, result.stderr
    value = result.ds()[0x7FE00010].value
    assert value == expected
    assert SECRET not in result.out.read_bytes()


# -- the baseline: a permitted file is read ---------------------------------------------------


def test_permitted_file_is_read(tree: Tree) -> None:
    converted(run(tree, doc(tree.uri("ok.bin"))), DATA)


def test_no_bulk_dir_means_nothing_is_permitted(tree: Tree) -> None:
    # CONTRACT §5: no permitted directories by default
    refused(run(tree, doc(tree.uri("ok.bin")), bd=False), 20, OUTSIDE)


# -- traversal in the path string ------------------------------------------------------------


def test_dotdot_traversal(tree: Tree) -> None:
    refused(run(tree, doc(tree.uri("../outside/secret.bin"))), 20, OUTSIDE)


def test_relative_dotdot_traversal(tree: Tree) -> None:
    # a relative reference resolves against the JSON file's directory (CONTRACT §5)
    (tree.json_dir / "x").mkdir()
    refused(run(tree, doc("../outside/secret.bin")), 20, OUTSIDE)


def test_permitted_prefix_is_not_a_parent(tree: Tree) -> None:
    # bulk-evil/ starts with the name of bulk/ but is not inside it
    evil = tree.root / "bulk-evil"
    evil.mkdir()
    (evil / "x.bin").write_bytes(SECRET)
    refused(run(tree, doc(f"file://{evil}/x.bin")), 20, OUTSIDE)


@pytest.mark.parametrize(
    "rel",
    ["%2e%2e/outside/secret.bin", "%2E%2E/outside/secret.bin", "..%2Foutside%2Fsecret.bin",
     "%2e%2e%2foutside%2fsecret.bin", ".%2e/outside/secret.bin"],
)  # fmt: skip
def test_percent_encoded_traversal(tree: Tree, rel: str) -> None:
    # percent-decoding comes first, containment is checked on the decoded path
    refused(run(tree, doc(tree.uri(rel))), 20, OUTSIDE)


def test_double_encoding_is_decoded_once(tree: Tree) -> None:
    # %252e%252e is '%2e%2e' after one decoding: a directory of that literal name, never '..'
    literal = tree.bulk / "%2e%2e" / "outside"
    literal.mkdir(parents=True)
    (literal / "secret.bin").write_bytes(b"LITERAL-DIRECTORY-INSIDE")
    result = run(tree, doc(tree.uri("%252e%252e/outside/secret.bin")))
    converted(result, b"LITERAL-DIRECTORY-INSIDE")


def test_double_encoding_without_literal_directory(tree: Tree) -> None:
    refused(
        run(tree, doc(tree.uri("%252e%252e/outside/secret.bin"))), 20, "bulk data file not found"
    )


def test_encoded_nul_byte(tree: Tree) -> None:
    refused(run(tree, doc(tree.uri("ok.bin%00.txt"))), 65, "NUL byte in BulkDataURI path")


def test_percent_encoding_not_utf8(tree: Tree) -> None:
    # fuzz finding: %ff raised UnicodeDecodeError
    refused(run(tree, doc(tree.uri("ok%ff.bin"))), 65, "not valid UTF-8")


def test_invalid_percent_encoding(tree: Tree) -> None:
    refused(run(tree, doc(tree.uri("ok%zz.bin"))), 65, "invalid percent-encoding")


# -- symlinks -------------------------------------------------------------------------------------


def test_symlink_to_outside(tree: Tree) -> None:
    (tree.bulk / "link").symlink_to(tree.secret)
    refused(run(tree, doc(tree.uri("link"))), 20, OUTSIDE)


def test_symlink_to_outside_subprocess(tree: Tree) -> None:
    (tree.bulk / "link").symlink_to(tree.secret)
    refused(run_process(tree, doc(tree.uri("link"))), 20, OUTSIDE)


def test_relative_symlink_to_outside(tree: Tree) -> None:
    (tree.bulk / "link").symlink_to("../outside/secret.bin")
    refused(run(tree, doc(tree.uri("link"))), 20, OUTSIDE)


def test_chained_symlinks(tree: Tree) -> None:
    # bulk/a -> bulk/b -> bulk/c -> outside/secret.bin: every hop but the last is inside
    (tree.bulk / "c").symlink_to(tree.secret)
    (tree.bulk / "b").symlink_to("c")
    (tree.bulk / "a").symlink_to("b")
    refused(run(tree, doc(tree.uri("a"))), 20, OUTSIDE)


def test_chained_symlinks_inside_are_followed(tree: Tree) -> None:
    # containment is judged on where the chain ends (CONTRACT §5: after every symlink)
    (tree.bulk / "b").symlink_to("ok.bin")
    (tree.bulk / "a").symlink_to("b")
    converted(run(tree, doc(tree.uri("a"))), DATA)


def test_symlinked_directory_component(tree: Tree) -> None:
    (tree.bulk / "dir").symlink_to(tree.outside, target_is_directory=True)
    refused(run(tree, doc(tree.uri("dir/secret.bin"))), 20, OUTSIDE)


def test_symlink_loop(tree: Tree) -> None:
    (tree.bulk / "loop1").symlink_to("loop2")
    (tree.bulk / "loop2").symlink_to("loop1")
    result = run(tree, doc(tree.uri("loop1")))
    assert result.rc == 20, result.stderr
    assert "bulk data" in result.stderr
    refused(result, 20, "")


def test_permitted_dir_given_through_a_symlink(tree: Tree) -> None:
    # +Bd is normalised with realpath too: a link to the bulk dir permits the bulk dir
    alias = tree.root / "alias"
    alias.symlink_to(tree.bulk, target_is_directory=True)
    src = tree.json_dir / "in.json"
    src.write_text(json.dumps(doc(f"file://{alias}/ok.bin")), encoding="utf-8")
    rc = main(
        ["+Bd", str(alias), str(src), str(tree.out / "out.dcm")],
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    reset_logging()
    assert rc == 0
    assert pydicom.dcmread(tree.out / "out.dcm")[0x7FE00010].value == DATA


# -- the check and the open are not the same moment --------------------------------------------


def test_file_swapped_for_symlink_before_open(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    # between realpath() (the check) and open() the file becomes a link to the secret:
    # O_NOFOLLOW refuses to open it
    target = tree.bulk / "ok.bin"
    real_open = bulkdata.open_verified

    def swap_then_open(real: str, dirs: tuple[str, ...], ref: Any = None) -> int:
        if ref is None and real == str(target):
            target.unlink()
            target.symlink_to(tree.secret)
        return real_open(real, dirs, ref)

    monkeypatch.setattr(bulkdata, "open_verified", swap_then_open)
    refused(run(tree, doc(tree.uri("ok.bin"))), 20, "cannot open bulk data file")


def test_directory_swapped_for_symlink_before_open(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    # O_NOFOLLOW guards only the last component: here a directory on the path becomes a
    # link to outside/, and what was opened is checked again (/proc/self/fd)
    sub = tree.bulk / "sub"
    sub.mkdir()
    (sub / "secret.bin").write_bytes(b"harmless")
    real_open = bulkdata.open_verified

    def swap_then_open(real: str, dirs: tuple[str, ...], ref: Any = None) -> int:
        if ref is None and real == str(sub / "secret.bin"):
            shutil.rmtree(sub)
            sub.symlink_to(tree.outside, target_is_directory=True)
        return real_open(real, dirs, ref)

    monkeypatch.setattr(bulkdata, "open_verified", swap_then_open)
    refused(run(tree, doc(tree.uri("sub/secret.bin"))), 20, OUTSIDE)


def _swap_after_check(monkeypatch: pytest.MonkeyPatch, action: Any) -> None:
    real_resolve = bulkdata.resolve_uri

    def resolve_then_swap(uri: str, **kw: Any) -> bulkdata.BulkRef:
        ref = real_resolve(uri, **kw)
        action(ref)
        return ref

    monkeypatch.setattr(bulkdata, "resolve_uri", resolve_then_swap)


def test_file_replaced_between_check_and_read(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    # the checked file's device and inode are pinned: another file renamed over the
    # name (inside the permitted directory, so every path check passes) is refused
    def replace(ref: bulkdata.BulkRef) -> None:
        other = tree.bulk / "other.bin"
        other.write_bytes(bytes(16))
        os.replace(other, ref.path)

    _swap_after_check(monkeypatch, replace)
    refused(run(tree, doc(tree.uri("ok.bin"))), 20, "replaced while converting")


def test_large_file_replaced_before_it_is_streamed(
    tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    # values over 1 MiB are read while the output is written: the pin holds there too,
    # and the half-written temporary output is removed
    (tree.bulk / "big.bin").write_bytes(b"\x01" * (3 << 20))

    def replace(ref: bulkdata.BulkRef) -> None:
        other = tree.bulk / "other.bin"
        other.write_bytes(b"\x02" * (3 << 20))
        os.replace(other, ref.path)

    _swap_after_check(monkeypatch, replace)
    refused(run(tree, doc(tree.uri("big.bin"))), 20, "replaced while converting")


def test_file_shrinks_between_check_and_read(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    _swap_after_check(monkeypatch, lambda ref: os.truncate(ref.path, 4))
    refused(run(tree, doc(tree.uri("ok.bin"))), 20, "shrank while reading")


def test_large_file_shrinks_while_streamed(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    (tree.bulk / "big.bin").write_bytes(b"\x01" * (3 << 20))
    _swap_after_check(monkeypatch, lambda ref: os.truncate(ref.path, 1 << 20))
    refused(run(tree, doc(tree.uri("big.bin"))), 20, "shrank while reading")


def test_symlink_replaced_while_resolved(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    # realpath() lstat()s a component, sees a symlink, then readlink() finds a file there:
    # EINVAL escaped as a traceback (found by test_symlink_race_loop)
    real_realpath = os.path.realpath

    def racing_realpath(path: Any, *args: Any, **kw: Any) -> Any:
        if str(path).endswith("flip"):
            raise OSError(22, "Invalid argument", str(path))
        return real_realpath(path, *args, **kw)

    monkeypatch.setattr(os.path, "realpath", racing_realpath)
    refused(run(tree, doc(tree.uri("flip"))), 20, "cannot resolve bulk data path")


def test_symlink_race_loop(tree: Tree) -> None:
    # a real race for a bounded time: a thread flips bulk/flip between a regular file and
    # a link to the secret while conversions run; each run reads the regular file or is
    # refused (20), and the secret never reaches an output
    flip = tree.bulk / "flip"
    plain = tree.bulk / "plain.bin"
    link = tree.bulk / "link.tmp"
    plain.write_bytes(DATA)
    stop = threading.Event()

    def flipper() -> None:
        while not stop.is_set():
            try:
                os.link(plain, tree.bulk / "flip.new")
                os.replace(tree.bulk / "flip.new", flip)
                link.symlink_to(tree.secret)
                os.replace(link, flip)
            except OSError:
                pass

    thread = threading.Thread(target=flipper, daemon=True)
    thread.start()
    codes: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            result = run(tree, doc(tree.uri("flip")))
            codes[result.rc] = codes.get(result.rc, 0) + 1
            assert result.rc in (0, 20), result.stderr
            if result.rc == 0:
                data = result.out.read_bytes()
                assert SECRET not in data
                assert pydicom.dcmread(result.out)[0x7FE00010].value == DATA
                result.out.unlink()
            else:
                assert "Traceback" not in result.stderr
                assert not result.out.exists()
    finally:
        stop.set()
        thread.join()
    assert not any(tree.out.iterdir())
    assert sum(codes.values()) >= 3


# -- hosts and schemes --------------------------------------------------------------------------


def test_other_host(tree: Tree) -> None:
    refused(
        run(tree, doc(f"file://otherhost{tree.bulk}/ok.bin")), 66, "network hosts are not supported"
    )


def test_other_host_subprocess(tree: Tree) -> None:
    refused(run_process(tree, doc(f"file://otherhost{tree.bulk}/ok.bin")), 66, "network hosts")


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "127.0.0.1", ""])
def test_local_host_names(tree: Tree, host: str) -> None:
    converted(run(tree, doc(f"file://{host}{tree.bulk}/ok.bin")), DATA)


@pytest.mark.parametrize(
    "uri", ["http://example.com/x.bin", "https://h/x", "ftp://h/x", "urn:x:y", "cid:abc"]
)
def test_unsupported_scheme(tree: Tree, uri: str) -> None:
    refused(run(tree, doc(uri)), 66, "is not supported")


def test_relative_uri_from_stdin(tree: Tree) -> None:
    # no directory to resolve against (CONTRACT §5): 66, nothing read
    proc = subprocess.run(
        [JSON2DCM, "+Bd", str(tree.bulk), "-", str(tree.out / "out.dcm")],
        input=json.dumps(doc("ok.bin")).encode(), capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 66
    assert b"cannot be resolved when reading from stdin" in proc.stderr
    assert not any(tree.out.iterdir())


# -- what is not a regular file ----------------------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_device_outside(tree: Tree, device: str) -> None:
    refused(run(tree, doc(f"file://{device}")), 20, OUTSIDE)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_device_in_a_permitted_directory(tree: Tree, device: str) -> None:
    # +Bd /dev: permitted, but only regular files are read (a device never ends)
    result = run_process(tree, doc(f"file://{device}"), "+Bd", "/dev", timeout=30)
    refused(result, 20, NOT_REGULAR)


def test_symlink_to_device_inside(tree: Tree) -> None:
    (tree.bulk / "zero").symlink_to("/dev/zero")
    refused(run(tree, doc(tree.uri("zero")), "+Bd", "/dev"), 20, NOT_REGULAR)


def test_fifo_does_not_block(tree: Tree) -> None:
    # a FIFO with no writer would block open() and read() forever
    os.mkfifo(tree.bulk / "fifo")
    started = time.monotonic()
    result = run_process(tree, doc(tree.uri("fifo")), timeout=30)
    assert time.monotonic() - started < 20
    refused(result, 20, NOT_REGULAR)


def test_fifo_does_not_block_in_process(tree: Tree) -> None:
    os.mkfifo(tree.bulk / "fifo")
    done = threading.Event()
    holder: list[Result] = []

    def target() -> None:
        holder.append(run(tree, doc(tree.uri("fifo"))))
        done.set()

    threading.Thread(target=target, daemon=True).start()
    if not done.wait(20):
        # unblock the reader so that the thread can end, then fail
        fd = os.open(tree.bulk / "fifo", os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        pytest.fail("reading a FIFO blocked")
    refused(holder[0], 20, NOT_REGULAR)


def test_fifo_swapped_in_after_check(tree: Tree, monkeypatch: pytest.MonkeyPatch) -> None:
    # a FIFO renamed over the checked file must not block the re-open either
    def make_fifo(ref: bulkdata.BulkRef) -> None:
        os.unlink(ref.path)
        os.mkfifo(ref.path)

    _swap_after_check(monkeypatch, make_fifo)
    refused(run(tree, doc(tree.uri("ok.bin"))), 20, NOT_REGULAR)


def test_directory(tree: Tree) -> None:
    (tree.bulk / "sub").mkdir()
    refused(run(tree, doc(tree.uri("sub"))), 20, NOT_REGULAR)


def test_permitted_directory_itself(tree: Tree) -> None:
    refused(run(tree, doc(f"file://{tree.bulk}")), 20, "")


def test_missing_file(tree: Tree) -> None:
    refused(run(tree, doc(tree.uri("missing.bin"))), 20, "bulk data file not found")


def test_unreadable_file(tree: Tree) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads a mode-000 file")
    path = tree.bulk / "locked.bin"
    path.write_bytes(DATA)
    path.chmod(0)
    refused(run(tree, doc(tree.uri("locked.bin"))), 20, "cannot open bulk data file")


# -- offset and length ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [("offset=4", DATA[4:]), ("offset=2&length=6", DATA[2:8]), ("length=4", DATA[:4]),
     ("offset=16", None), ("offset=0&length=0", None)],
)  # fmt: skip
def test_offset_length_inside_the_file(tree: Tree, query: str, expected: bytes | None) -> None:
    result = run(tree, doc(tree.uri(f"ok.bin?{query}")))
    assert result.rc == 0, result.stderr
    value = result.ds()[0x7FE00010].value
    assert (value or None) == expected


@pytest.mark.parametrize(
    "query",
    ["offset=17", "offset=8&length=9", "length=17", "offset=9999999999999999999",
     "offset=1&length=9999999999999999999"],
)  # fmt: skip
def test_offset_length_beyond_the_file(tree: Tree, query: str) -> None:
    refused(run(tree, doc(tree.uri(f"ok.bin?{query}"))), 65, "bulk data file too short")


@pytest.mark.parametrize(
    "query",
    ["offset=18446744073709551616", "length=18446744073709551616",
     "offset=18446744073709551615&length=18446744073709551615",
     "offset=" + "9" * 40, "offset=-1", "length=-5", "offset=abc", "length=0x10", "offset=",
     "length=1e3", "offset=+4", "offset=\u0663", "offset= 4"],
)  # fmt: skip
def test_overflowing_negative_or_garbage_parameters(tree: Tree, query: str) -> None:
    refused(run(tree, doc(tree.uri(f"ok.bin?{query}"))), 65, "invalid value for URI parameter")


@pytest.mark.parametrize("query", ["foo=1", "offset", "offset=1&offset", "length=2&x=y", "=3"])
def test_unknown_or_malformed_parameters(tree: Tree, query: str) -> None:
    refused(run(tree, doc(tree.uri(f"ok.bin?{query}"))), 65, "unsupported parameter")


# -- the whole: several values, and nothing is read when one is refused ------------------------------


def test_one_refused_value_fails_the_whole_file(tree: Tree) -> None:
    (tree.bulk / "link").symlink_to(tree.secret)
    document = doc(tree.uri("ok.bin"))
    document["00091010"] = {"vr": "OB", "BulkDataURI": tree.uri("link")}
    document["00090010"] = {"vr": "LO", "Value": ["ACME"]}
    refused(run(tree, document), 20, OUTSIDE)


def test_ignore_bulkdata_reads_nothing(tree: Tree) -> None:
    # -Bu: the URI is not looked at, not even for containment (CONTRACT §5)
    result = run(tree, doc(tree.uri("../outside/secret.bin")), "-Bu")
    assert result.rc == 0, result.stderr
    assert SECRET not in result.out.read_bytes()
