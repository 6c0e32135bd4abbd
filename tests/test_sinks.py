"""sinks.py directly: the one atomic writer, stdout, output naming, write_output.

What is expected: the whole file or nothing, an existing file untouched on failure, no
``.part`` left (daemon-conventions §4, CONTRACT §2), data fsynced before the rename, and
output names that never leave the output directory (CONTRACT §6).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamconv import sinks
from streamconv.core import bulkdata
from streamconv.core.encode import encode_part10
from streamconv.core.pipeline import Output
from streamconv.core.vr import Element
from streamconv.errors import ContentError, OutputError, StreamconvError
from streamconv.options import ArrayPolicy, ConvertOptions

PATIENT_ID = 0x00100020
MODALITY = 0x00080060
SOP_INSTANCE = 0x00080018


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- write_atomic ------------------------------------------------------------------------------


def test_write_atomic_writes_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "out.dcm"
    n = sinks.write_atomic(str(target), [b"abc", b"", b"defg"])
    assert n == 7 and target.read_bytes() == b"abcdefg"
    assert listing(tmp_path) == ["out.dcm"]


def test_write_atomic_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "out.dcm"
    target.write_bytes(b"old content")
    sinks.write_atomic(str(target), [b"new"])
    assert target.read_bytes() == b"new"
    assert listing(tmp_path) == ["out.dcm"]


def test_any_chunking_gives_the_same_file(tmp_path: Path) -> None:
    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.binary(max_size=3000), max_size=20))
    def check(chunks: list[bytes]) -> None:
        target = tmp_path / "out.bin"
        n = sinks.write_atomic(str(target), iter(chunks), fsync=False)
        assert target.read_bytes() == b"".join(chunks)
        assert n == sum(map(len, chunks))
        assert listing(tmp_path) == ["out.bin"]

    check()


def _failing(after: int, exc: BaseException) -> Iterator[bytes]:
    yield b"x" * after
    raise exc


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_failure_while_writing_leaves_the_old_file_and_no_part(
    tmp_path: Path, exc: BaseException
) -> None:
    target = tmp_path / "out.dcm"
    target.write_bytes(b"old content")
    with pytest.raises(type(exc)):
        # past one gathered write (1 MiB), so that something reached the temporary file
        sinks.write_atomic(str(target), _failing((1 << 20) + 5, exc))
    assert target.read_bytes() == b"old content"
    assert listing(tmp_path) == ["out.dcm"]


def test_failure_without_an_existing_file_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        sinks.write_atomic(str(tmp_path / "out.dcm"), _failing(10, RuntimeError("boom")))
    assert listing(tmp_path) == []


def test_write_error_is_an_output_error_and_the_old_file_stays(tmp_path: Path) -> None:
    # a real write(2) failure: the file size limit (EFBIG), in a child process of its own
    target = tmp_path / "out.dcm"
    target.write_bytes(b"old content")
    code = textwrap.dedent(
        f"""
        import resource, signal, sys
        from streamconv import sinks
        from streamconv.errors import OutputError
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        try:
            sinks.write_atomic({str(target)!r}, [b"x" * 100_000])
        except OutputError as exc:
            print(exc.exit_code, exc)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("40 ") and str(target) in proc.stdout
    assert "Traceback" not in proc.stderr
    assert target.read_bytes() == b"old content"
    assert listing(tmp_path) == ["out.dcm"]


def test_missing_directory_is_an_output_error(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "out.dcm"
    with pytest.raises(OutputError) as info:
        sinks.write_atomic(str(target), [b"x"])
    assert info.value.exit_code == 40 and str(target) in str(info.value)


def test_target_that_is_a_directory_is_an_output_error(tmp_path: Path) -> None:
    (tmp_path / "out.dcm").mkdir()
    with pytest.raises(OutputError):
        sinks.write_atomic(str(tmp_path / "out.dcm"), [b"x"])
    assert listing(tmp_path / "out.dcm") == []


@pytest.mark.parametrize(
    ("fsync", "sync_dir", "files", "dirs"),
    [(True, True, 1, 1), (True, False, 1, 0), (False, True, 0, 0), (False, False, 0, 0)],
)
def test_fsync_flags(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fsync: bool,
    sync_dir: bool,
    files: int,
    dirs: int,
) -> None:
    target = tmp_path / "out.dcm"
    real_fsync = os.fsync
    seen: list[tuple[bool, bool]] = []  # (a directory?, the final name there yet?)

    def spy(fd: int) -> None:
        seen.append((os.path.isdir(f"/proc/self/fd/{fd}"), target.exists()))
        real_fsync(fd)  # the real call still happens

    monkeypatch.setattr(os, "fsync", spy)
    sinks.write_atomic(str(target), [b"data"], fsync=fsync, sync_dir=sync_dir)
    assert [d for d, _ in seen].count(False) == files
    assert [d for d, _ in seen].count(True) == dirs
    # the data is on disk before the rename: a crash leaves the old file or the whole new one
    assert all(not exists for d, exists in seen if not d)
    assert target.read_bytes() == b"data"


def test_mode_of_the_new_file(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        sinks.write_atomic(str(tmp_path / "a"), [b"x"], mode=0o640)
        sinks.write_atomic(str(tmp_path / "b"), [b"x"])
    finally:
        os.umask(umask)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "b").stat().st_mode & 0o777 == 0o644  # 0o666 less the umask


# -- output names (--filename-template) ----------------------------------------------------------


def _ds(**values: str | bytes) -> dict[int, Element]:
    tags = {"PatientID": PATIENT_ID, "Modality": MODALITY, "SOPInstanceUID": SOP_INSTANCE}
    return {tags[k]: Element(tags[k], "LO", v) for k, v in values.items()}


@pytest.mark.parametrize(
    ("template", "index", "values", "expected"),
    [
        ("{index:06d}.dcm", 0, {}, "000000.dcm"),  # the default: index counted from 0
        ("{index:06d}.dcm", 41, {}, "000041.dcm"),
        ("{index1}.dcm", 0, {}, "1.dcm"),
        (
            "{Modality}/{SOPInstanceUID}.dcm",
            0,
            {"Modality": "CT", "SOPInstanceUID": b"1.2.3\x00"},
            "CT/1.2.3.dcm",
        ),
        ("{PatientID}.dcm", 0, {"PatientID": "A\\B"}, "A.dcm"),  # the first value
        ("{PatientID}.dcm", 0, {"PatientID": " id 7 "}, "id_7.dcm"),
        # nothing in a value may leave the directory: separators and '..' replaced
        ("{PatientID}.dcm", 0, {"PatientID": "../../etc/passwd"}, ".._.._etc_passwd.dcm"),
        ("{PatientID}", 0, {"PatientID": ".."}, "__"),
        ("{PatientID}", 0, {"PatientID": "."}, "_"),
        ("{PatientID}", 0, {"PatientID": "C:\\x"}, "C_"),
        # a template's own separators make directories; leading '/' and '.' go
        ("/abs/./{index}.dcm", 3, {}, "abs/3.dcm"),
        ("a\\b\\{index}", 3, {}, "a/b/3"),
    ],
)
def test_render_name(
    template: str, index: int, values: dict[str, str | bytes], expected: str
) -> None:
    assert sinks.render_name(template, index, _ds(**values)) == expected


@pytest.mark.parametrize(
    ("template", "values"),
    [
        ("{PatientID}.dcm", {}),  # the dataset does not have it
        ("{NoSuchKeyword}.dcm", {}),
        ("{index!r}.dcm", {}),  # conversions are not allowed
        ("{index:q}.dcm", {}),
        ("../{index}.dcm", {}),
        ("a/../../{index}.dcm", {}),
        ("", {}),
        ("/", {}),
    ],
)
def test_render_name_errors(template: str, values: dict[str, str]) -> None:
    with pytest.raises(ContentError):
        sinks.render_name(template, 0, _ds(**values))


def test_unbalanced_template_is_an_error() -> None:
    with pytest.raises(StreamconvError):
        sinks.render_name("{index", 0, {})


_TEMPLATE_PARTS = st.sampled_from(
    ["{index}", "{index1:03d}", "{PatientID}", "{Modality}", "/", "\\", ".", "..", "a", "-", " "]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    template=st.lists(_TEMPLATE_PARTS, min_size=1, max_size=8).map("".join),
    patient=st.text(min_size=1, max_size=30),
    modality=st.text(alphabet="./\\ \x00abc", min_size=1, max_size=6),
    index=st.integers(0, 10**6),
)
def test_render_name_never_leaves_the_directory(
    template: str, patient: str, modality: str, index: int
) -> None:
    ds = _ds(PatientID=patient, Modality=modality)
    try:
        rel = sinks.render_name(template, index, ds)
    except StreamconvError:
        return  # refused: fine (an empty value, '..' in the template)
    base = "/srv/out"
    assert not os.path.isabs(rel)
    assert ".." not in rel.split(os.sep)
    assert os.path.normpath(os.path.join(base, rel)).startswith(base + os.sep)


# -- write_stdout, write_output --------------------------------------------------------------------


def _output(index: int = 0, **values: str) -> Output:
    ds = {PATIENT_ID: Element(PATIENT_ID, "LO", b"ID7")}
    for key, value in values.items():
        tag = {"Modality": MODALITY, "SOPInstanceUID": SOP_INSTANCE}[key]
        ds[tag] = Element(tag, "CS" if key == "Modality" else "UI", value.encode())
    return Output(index, encode_part10(ds, {}, ConvertOptions()), ds)


def test_write_output_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "out.dcm"
    assert sinks.write_output(_output(), str(target), ConvertOptions()) == str(target)
    assert pydicom.dcmread(target).PatientID == "ID7"
    assert listing(tmp_path) == ["out.dcm"]


def test_write_output_split_names_files_from_the_template(tmp_path: Path) -> None:
    options = ConvertOptions(
        array_policy=ArrayPolicy.SPLIT, filename_template="{Modality}/{index:03d}.dcm"
    )
    path = sinks.write_output(_output(7, Modality="MR"), str(tmp_path), options)
    assert path == str(tmp_path / "MR" / "007.dcm")
    assert pydicom.dcmread(path).Modality == "MR"
    assert listing(tmp_path / "MR") == ["007.dcm"]


def test_write_output_split_with_a_missing_field_writes_nothing(tmp_path: Path) -> None:
    options = ConvertOptions(array_policy=ArrayPolicy.SPLIT, filename_template="{Modality}.dcm")
    with pytest.raises(ContentError):
        sinks.write_output(_output(0), str(tmp_path), options)
    assert listing(tmp_path) == []


def test_write_output_to_stdout(capfdbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    out = _output()  # the same output twice: its generated SOP Instance UID too
    expected_file = tmp_path / "same.dcm"
    sinks.write_output(out, str(expected_file), ConvertOptions())
    assert sinks.write_output(out, "-", ConvertOptions()) == "-"
    assert capfdbinary.readouterr().out == expected_file.read_bytes()


def test_write_output_releases_temporaries_even_when_it_fails(no_leftovers: Path) -> None:
    for target in (str(no_leftovers / "out.dcm"), str(no_leftovers / "missing" / "out.dcm")):
        out = _output()
        spool = no_leftovers / "spool.tmp"
        spool.write_bytes(b"spooled")
        out.encoded.temporaries.append(str(spool))
        try:
            sinks.write_output(out, target, ConvertOptions())
        except OutputError:
            assert "missing" in target
        assert not spool.exists()
    (no_leftovers / "out.dcm").unlink()


def test_write_stdout_streams_bulk_values(tmp_path: Path, no_leftovers: Path) -> None:
    data = os.urandom(3000)
    (tmp_path / "bulk.bin").write_bytes(data)
    dirs = (os.path.realpath(tmp_path) + "/",)
    ref = bulkdata.resolve_uri((tmp_path / "bulk.bin").as_uri(), base_dir=None, dirs=dirs)
    ds = {0x00091010: Element(0x00091010, "OB", ref)}
    enc = encode_part10(ds, {}, ConvertOptions(bulkdata_dirs=dirs))
    stream = io.BytesIO()
    n = sinks.write_stdout(enc, stream)
    assert n == len(stream.getvalue())
    assert stream.getvalue() == enc.head + b"\x09\x00\x10\x10OB\x00\x00\xb8\x0b\x00\x00" + data
