"""Fault tests of json2dcm, ``json2dcm --array-split`` and ``streamconv stream`` (issue 10).

Rows 1, 2, 3, 7, 10, 11, 12 of issue 10 and the worker-process engine of issue 9, each with
real processes, pipes, signals and filesystems: a large string value from a pipe (linear
time), a reader that closes the pipe early, closed standard streams, read-only and full
tmpfs mounts, kill -9 of the whole process group and a rerun with ``--resume``, a stray NUL
between datasets, a worker killed under the stream, and many clean runs whose stderr must
stay empty.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pydicom
import pytest

from streamconv.errors import WorkerDied
from streamconv.oneshot import convert_file
from streamconv.options import ArrayPolicy, ConvertOptions
from streamconv.sinks import part_name, part_writer, sweep_parts

JSON2DCM = [sys.executable, "-m", "streamconv.cli"]
STREAM = [sys.executable, "-m", "streamconv", "stream"]
DEADLINE = 60.0
SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7"


def dataset(i: int, *, blob: int = 0, text: str = "") -> dict[str, Any]:
    ds: dict[str, Any] = {
        "00080016": {"vr": "UI", "Value": [SOP_CLASS]},
        "00080018": {"vr": "UI", "Value": [f"1.2.826.0.1.3680043.10.1.{i + 1}"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": f"Patient^{i}"}]},
        "00100020": {"vr": "LO", "Value": [f"ID{i}"]},
    }
    if blob:
        ds["7FE00010"] = {"vr": "OB", "InlineBinary": base64.b64encode(bytes(blob)).decode()}
    if text:
        ds["0040A160"] = {"vr": "UT", "Value": [text]}
    return ds


def ndjson(datasets: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(ds).encode() + b"\n" for ds in datasets)


def part_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


def patient(path: Path) -> str:
    return str(pydicom.dcmread(path).PatientName)


def no_traceback(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace")
    assert "Traceback" not in text, text
    return text


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- row 1: one large string value, linear time ---------------------------------------------


@pytest.fixture(scope="module")
def big_string(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.json"
    # 32 MiB in one UT value: before the fix, the framer rescanned the open string from its
    # start on every 64 KiB read of a pipe (~1 minute here, 258 s for 64 MiB)
    path.write_text(json.dumps(dataset(0, text="A" * (32 << 20))))
    return path


def timed(cmd: list[str], *, stdin: Any = None) -> float:
    start = time.monotonic()
    proc = subprocess.run(cmd, stdin=stdin, capture_output=True, timeout=300, check=False)
    took = time.monotonic() - start
    assert proc.returncode == 0, no_traceback(proc.stderr)
    no_traceback(proc.stderr)
    return took


@pytest.mark.slow
def test_large_string_value_is_framed_in_linear_time(tmp_path: Path, big_string: Path) -> None:
    plain = timed([*JSON2DCM, str(big_string), str(tmp_path / "plain.dcm")])
    split = timed([*JSON2DCM, "--array-split", str(big_string), str(tmp_path / "split")])
    # from a pipe: the producer's writes arrive in pieces of at most 64 KiB
    cat = subprocess.Popen(["cat", str(big_string)], stdout=subprocess.PIPE)
    try:
        stream = timed([*STREAM, "-o", str(tmp_path / "stream"), "--jobs", "2"], stdin=cat.stdout)
    finally:
        assert cat.stdout is not None
        cat.stdout.close()
        cat.wait()
    sys.stderr.write(f"\n32 MiB string: json2dcm {plain:.2f} s, --array-split {split:.2f} s, ")
    sys.stderr.write(f"stream from a pipe {stream:.2f} s\n")
    # the target is 3x; a generous bound against a loaded machine (the quadratic framer
    # took more than 30x)
    limit = 6 * plain + 3.0
    assert split < limit, (split, plain)
    assert stream < limit, (stream, plain)
    expected = (tmp_path / "plain.dcm").read_bytes()
    assert (tmp_path / "split" / "000000.dcm").read_bytes() == expected
    got = pydicom.dcmread(tmp_path / "stream" / "000000.dcm")
    assert got[0x0040A160].value == "A" * (32 << 20)


def test_a_top_level_string_open_across_many_reads_is_one_frame(tmp_path: Path) -> None:
    # the framer's other open-value kinds (a string or a bare word as the top-level value)
    # are taken up where they stopped too; both are rejected as datasets, with offsets
    doc = b'"' + b"x" * (3 << 20) + b'"\n' + b"1" * 100 + b"\n" + ndjson([dataset(0)])
    proc = subprocess.run(
        [*STREAM, "-o", str(tmp_path), "--jobs", "1"], input=doc, capture_output=True,
        timeout=DEADLINE, check=False,
    )  # fmt: skip
    text = no_traceback(proc.stderr)
    assert proc.returncode == 65, text
    assert [p.name for p in tmp_path.glob("*.dcm")] == ["000002.dcm"]
    assert sorted(p.name for p in (tmp_path / "rejected").glob("*.error.json")) == [
        "000000.error.json",
        "000001.error.json",
    ]


# -- rows 2 and 10: stdout that cannot take the output; closed stderr ----------------------


@pytest.fixture(scope="module")
def five_mib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mid") / "mid.json"
    path.write_text(json.dumps(dataset(0, blob=5 << 20)))
    return path


def test_reader_that_closes_the_pipe_early_is_exit_40(five_mib: Path) -> None:
    # json2dcm big.json - | head -c 100
    proc = subprocess.Popen(
        [*JSON2DCM, str(five_mib), "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    got = proc.stdout.read(100)
    proc.stdout.close()  # as head -c 100 does
    proc.stdout = None
    _, stderr = proc.communicate(timeout=DEADLINE)
    rc = proc.returncode
    text = no_traceback(stderr)
    assert len(got) == 100
    assert rc == 40, text
    assert text.startswith("E: ") and "broken pipe" in text and str(five_mib) in text


def test_whole_output_through_a_pipe_is_exit_0(five_mib: Path, tmp_path: Path) -> None:
    # the counterpart: a reader that takes everything gets the same bytes as a file
    proc = subprocess.run([*JSON2DCM, str(five_mib), "-"], capture_output=True, check=False)
    assert proc.returncode == 0, no_traceback(proc.stderr)
    subprocess.run([*JSON2DCM, str(five_mib), str(tmp_path / "f.dcm")], check=True)
    assert len(proc.stdout) > 5 << 20
    assert proc.stdout[-1000:] == (tmp_path / "f.dcm").read_bytes()[-1000:]


def sh(command: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``command`` in a shell, with "$@" = the json2dcm command line and ``args``."""
    return subprocess.run(
        ["sh", "-c", command, "sh", *JSON2DCM, *args], capture_output=True, timeout=DEADLINE,
        check=False,
    )  # fmt: skip


def test_closed_stdout_is_exit_40(five_mib: Path) -> None:
    proc = sh('exec "$@" >&-', str(five_mib), "-")
    text = no_traceback(proc.stderr)
    assert proc.returncode == 40, text
    assert "standard output" in text and "closed" in text


def test_closed_stdout_never_receives_a_file_opened_later(tmp_path: Path) -> None:
    # with fd 1 closed, the input file would be opened as fd 1; the output must not go there
    src = tmp_path / "in.json"
    src.write_text(json.dumps(dataset(0)))
    before = src.read_bytes()
    proc = sh('exec "$@" >&-', str(src), "-")
    assert proc.returncode == 40, no_traceback(proc.stderr)
    assert src.read_bytes() == before


@pytest.mark.parametrize(
    ("doc", "rc"), [(dataset(0), 0), ({"0010": {}}, 65)], ids=["success", "invalid"]
)
def test_closed_stderr_keeps_the_conversions_exit_code(
    tmp_path: Path, doc: dict[str, Any], rc: int
) -> None:
    src = tmp_path / "in.json"
    src.write_text(json.dumps(doc))
    proc = sh('exec "$@" 2>&-', str(src), str(tmp_path / "out.dcm"))
    assert proc.returncode == rc
    assert (tmp_path / "out.dcm").exists() == (rc == 0)


def test_closed_stdout_for_usage_text_is_exit_40() -> None:
    proc = sh('exec "$@" >&-')
    assert proc.returncode == 40, no_traceback(proc.stderr)


# -- row 3: an output folder that cannot be written ------------------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """mount(8) a small tmpfs under tmp_path (root only); unmounted afterwards."""
    mounted: list[Path] = []

    def mount(name: str, *, size: str = "4m", inodes: int = 0) -> Path:
        point = tmp_path / name
        point.mkdir()
        opts = f"size={size}" + (f",nr_inodes={inodes}" if inodes else "")
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)],
            capture_output=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], check=False)


def remount_ro(point: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)


def run_stream(out: Path, data: bytes, *opts: str) -> tuple[int, str]:
    proc = subprocess.run(
        [*STREAM, "-o", str(out), *opts], input=data, capture_output=True, timeout=DEADLINE,
        check=False,
    )  # fmt: skip
    return proc.returncode, no_traceback(proc.stderr)


def one_error_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1 and lines[0].startswith("E: "), text
    return lines[0]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_stream_into_a_read_only_filesystem(tmpfs: Callable[..., Path], jobs: str) -> None:
    point = tmpfs("ro")
    (point / "out").mkdir()
    remount_ro(point)
    rc, text = run_stream(point / "out", ndjson([dataset(i) for i in range(5)]), "--jobs", jobs)
    assert rc == 40, text
    assert "read-only file system" in one_error_line(text).lower()


def test_stream_rejected_folder_on_a_read_only_filesystem(tmpfs: Callable[..., Path]) -> None:
    # only invalid datasets: creating rejected/ is what fails
    point = tmpfs("ro")
    (point / "out").mkdir()
    remount_ro(point)
    rc, text = run_stream(point / "out", b'{"0010": {}}\n', "--jobs", "1")
    assert rc == 40, text
    # the dataset's own reason (it cannot be saved beside it), then why the run ended
    reason, folder = text.splitlines()
    assert reason.startswith("E: stdin: dataset 1: attribute tag must be 8 hexadecimal")
    assert folder.startswith("E: ") and "rejected" in folder and "Read-only" in folder


def test_stream_with_no_free_inodes(tmpfs: Callable[..., Path]) -> None:
    point = tmpfs("inodes", inodes=16)
    out = point / "out"
    out.mkdir()
    filler = 0
    while True:
        try:
            (point / f"fill{filler}").touch()
        except OSError:
            break
        filler += 1
    rc, text = run_stream(out, ndjson([dataset(i) for i in range(5)]), "--jobs", "2")
    assert rc == 40, text
    assert "no space left on device" in one_error_line(text)
    assert not part_files(point)


def test_stream_into_a_full_filesystem(tmpfs: Callable[..., Path]) -> None:
    point = tmpfs("full", size="3m")
    data = ndjson([dataset(i, blob=1 << 20) for i in range(8)])
    rc, text = run_stream(point, data, "--jobs", "2")
    assert rc == 40, text
    one_error_line(text)
    assert not part_files(point)
    for path in point.glob("*.dcm"):  # what was written is whole
        assert pydicom.dcmread(path).PixelData == bytes(1 << 20)


# -- row 7: kill -9 of the process group; a rerun cleans up and resumes ---------------------


@pytest.fixture(scope="module")
def forty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("forty") / "forty.ndjson"
    path.write_bytes(ndjson([dataset(i, blob=3 << 20) for i in range(40)]))
    return path


def killed_run(cmd: list[str], out: Path, stdin: Path | None) -> None:
    """Start ``cmd`` in its own process group and kill -9 the group once a few outputs
    exist (or a temporary is being written)."""
    with stdin.open("rb") if stdin else open(os.devnull, "rb") as fin:
        proc = subprocess.Popen(
            cmd, stdin=fin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_for(
                lambda: (
                    (out.is_dir() and len(list(out.glob("*.dcm"))) >= 3 and bool(part_files(out)))
                    or proc.poll() is not None
                ),
                "outputs and a temporary",
            )
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, "finished before the kill: make the input larger"


def split_cmd(src: Path, out: Path, *opts: str) -> tuple[list[str], Path | None]:
    return [*JSON2DCM, "--array-split", *opts, str(src), str(out)], None


def stream_cmd(src: Path, out: Path, *opts: str) -> tuple[list[str], Path | None]:
    return [*STREAM, "-o", str(out), "--jobs", "2", *opts], src  # src: its stdin


FRONTS: dict[str, Callable[..., tuple[list[str], Path | None]]] = {
    "array-split": split_cmd,
    "stream": stream_cmd,
}


@pytest.mark.slow
@pytest.mark.parametrize("front", list(FRONTS))
def test_kill_9_then_rerun_with_resume(tmp_path: Path, forty: Path, front: str) -> None:
    out = tmp_path / "out"
    cmd, stdin = FRONTS[front](forty, out)
    killed_run(cmd, out, stdin)
    first = {p.name: p.stat().st_ino for p in out.glob("*.dcm")}
    assert len(first) >= 3
    # a live writer's temporary (this test process) must survive the rerun's clean-up
    live = out / part_name("000039.dcm")
    live.write_bytes(b"being written")
    cmd, stdin = FRONTS[front](forty, out, "--resume")
    with stdin.open("rb") if stdin else open(os.devnull, "rb") as fin:
        proc = subprocess.run(cmd, stdin=fin, capture_output=True, timeout=300, check=False)
    assert proc.returncode == 0, no_traceback(proc.stderr)
    assert part_files(out) == [live]
    names = sorted(p.name for p in out.glob("*.dcm"))
    assert names == [f"{i:06d}.dcm" for i in range(40)]
    for name in names:
        assert patient(out / name) == f"Patient^{int(name[:6])}"
    # the outputs of the killed run were kept, not converted again
    assert {n: (out / n).stat().st_ino for n in first} == first


def test_resume_with_keyword_names(tmp_path: Path) -> None:
    src = tmp_path / "in.ndjson"
    src.write_bytes(ndjson([dataset(i) for i in range(6)]))
    out = tmp_path / "out"
    template = ["--filename-template", "{PatientID}.dcm"]
    subprocess.run([*JSON2DCM, "--array-split", *template, str(src), str(out)], check=True)
    (out / "ID3.dcm").unlink()  # as if the run had been killed before this one
    kept = {p.name: p.stat().st_ino for p in out.glob("*.dcm")}
    subprocess.run(
        [*JSON2DCM, "--array-split", "--resume", *template, str(src), str(out)], check=True
    )
    assert sorted(p.name for p in out.glob("*.dcm")) == [f"ID{i}.dcm" for i in range(6)]
    assert {n: (out / n).stat().st_ino for n in kept} == kept
    assert patient(out / "ID3.dcm") == "Patient^3"


def test_resume_needs_array_split(tmp_path: Path) -> None:
    src = tmp_path / "in.json"
    src.write_text(json.dumps(dataset(0)))
    proc = subprocess.run(
        [*JSON2DCM, "--resume", str(src), str(tmp_path / "o.dcm")], capture_output=True,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and b"--array-split" in proc.stderr


def test_sweep_removes_only_dead_writers_files(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    sub = tmp_path / "sub"
    sub.mkdir()
    host = part_name("x").split(".")[2].rpartition("-p")[0]
    assert host  # this host's name, as the temporaries carry it
    stale = sub / f".000001.dcm.{host}-p{dead.pid}.0123456789ab.part"
    stale.write_bytes(b"x")
    mine = tmp_path / part_name("000002.dcm")
    mine.write_bytes(b"x")
    # not ours to judge: another host's (container's) pid, a name without a writer
    elsewhere = tmp_path / f".000003.dcm.{host}x-p{dead.pid}.0123456789ab.part"
    elsewhere.write_bytes(b"x")
    other = tmp_path / ".notes.txt.part"
    other.write_bytes(b"x")
    assert part_writer(mine.name) == os.getpid()
    assert part_writer(elsewhere.name) is None
    assert sweep_parts(str(tmp_path)) == [str(stale)]
    assert mine.exists() and elsewhere.exists() and other.exists()


# -- row 11: stray bytes between datasets ----------------------------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_nul_after_a_complete_dataset(tmp_path: Path, jobs: str) -> None:
    a, b = (json.dumps(dataset(i)).encode() for i in range(2))
    rc, text = run_stream(tmp_path, a + b"\x00" + b + b"\n", "--jobs", jobs)
    assert rc == 65, text
    # both datasets converted; the NUL is reported with its offset (counted as an input)
    assert patient(tmp_path / "000000.dcm") == "Patient^0"
    assert patient(tmp_path / "000002.dcm") == "Patient^1"
    record = json.loads((tmp_path / "rejected" / "000001.error.json").read_text())
    assert record["offset"] == len(a)
    assert f"offset {len(a)}" in one_error_line(text)


def test_a_nul_after_a_dataset_one_shot(tmp_path: Path) -> None:
    # json2dcm checks the whole input (CONTRACT §3): invalid JSON is exit 65, and the
    # message points at the NUL itself, not at the valid dataset before it
    a, b = (json.dumps(dataset(i)).encode() for i in range(2))
    src = tmp_path / "in.json"
    src.write_bytes(a + b"\x00" + b)
    proc = subprocess.run(
        [*JSON2DCM, "+as", "1", str(src), str(tmp_path / "a.dcm")], capture_output=True,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 65
    assert f"offset {len(a)})" in one_error_line(no_traceback(proc.stderr))


# -- row 12 and issue 9: the worker processes ----------------------------------------------


@pytest.mark.slow
def test_clean_streams_write_nothing_to_stderr(tmp_path: Path) -> None:
    # "W: Unknown child process pid N" came in ~1 of 7 runs (a race at the pool's shutdown)
    src = tmp_path / "in.ndjson"
    src.write_bytes(ndjson([dataset(i) for i in range(150)]))
    for run in range(30):
        cat = subprocess.Popen(["cat", str(src)], stdout=subprocess.PIPE)
        proc = subprocess.run(
            [*STREAM, "-o", str(tmp_path / f"o{run}"), "--jobs", "2"], stdin=cat.stdout,
            capture_output=True, timeout=DEADLINE, check=False,
        )  # fmt: skip
        assert cat.stdout is not None
        cat.stdout.close()
        cat.wait()
        assert (proc.returncode, proc.stderr) == (0, b""), (run, proc.stderr)
        assert len(list((tmp_path / f"o{run}").glob("*.dcm"))) == 150


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize("front", list(FRONTS))
def test_a_worker_that_died_is_exit_70(tmp_path: Path, front: str) -> None:
    if not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        pytest.skip("no /proc/PID/task/PID/children here")
    src = tmp_path / "in.ndjson"
    src.write_bytes(ndjson([dataset(i, blob=3 << 20) for i in range(60)]))
    out = tmp_path / "out"
    cmd, stdin = FRONTS[front](src, out)
    with (stdin or src).open("rb") as fin:
        proc = subprocess.Popen(
            cmd, stdin=fin if stdin else subprocess.DEVNULL, stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(lambda: len(list(out.glob("*.dcm"))) >= 2, "the first outputs")
        workers = children(proc.pid)
        assert workers, "no worker process found"
        os.kill(workers[0], signal.SIGKILL)
        _, stderr = proc.communicate(timeout=DEADLINE)
    text = no_traceback(stderr)
    assert proc.returncode == WorkerDied.exit_code, text
    assert "worker process died" in text and "signal 9" in text
    assert not part_files(out)


def test_second_sigterm_exits_now(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [*STREAM, "-o", str(out), "--jobs", "2"], stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    stdin = proc.stdin
    assert stdin is not None
    proc.stdin = None  # the producer thread's: communicate() must not touch it

    def produce() -> None:  # a producer that goes on writing: the pipe stays open
        try:
            for i in range(40):
                stdin.write(ndjson([dataset(i, blob=4 << 20)]))
                stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        wait_for(lambda: out.is_dir() and any(out.glob("*.dcm")), "the first output")
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.05)  # two signals, not one coalesced (the outcome holds either way)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
        stdin.close()
        producer.join()
    text = no_traceback(stderr)
    # exit now (128+15 from the stream); or, if the drain was over before the second
    # signal came, the default action of a SIGTERM once the handlers are gone (-15)
    assert proc.returncode in (128 + signal.SIGTERM, -signal.SIGTERM), text
    if proc.returncode > 0:
        # the second signal stopped the drain ("again"), or the drain of the datasets in hand
        # was already over when it came (both a clean end: nothing half-written either way)
        assert "again" in text or "the datasets in hand were finished" in text, text
    assert not part_files(out)  # the killed workers' temporaries were removed
    for path in out.glob("*.dcm"):
        pydicom.dcmread(path)


def test_convert_file_returns_the_split_paths(tmp_path: Path) -> None:
    src = tmp_path / "in.ndjson"
    src.write_bytes(ndjson([dataset(i) for i in range(20)]))
    out = tmp_path / "out"
    options = ConvertOptions(array_policy=ArrayPolicy.SPLIT)
    paths = anyio.run(convert_file, str(src), str(out), options)
    assert paths == [str(out / f"{i:06d}.dcm") for i in range(20)]
    again = anyio.run(lambda: convert_file(str(src), str(out), options, resume=True))
    assert again == paths
