"""Bounded fuzzing in the test suite (issue 5), about a minute in all.

* The two coverage-guided targets of ``fuzz/`` (atheris/libFuzzer) run for a few seconds
  each from the seed corpus, when atheris is installed (``pip install atheris``); a long
  campaign is documented in fuzz/README.
* Property tests (hypothesis), always: any byte mutation of a valid input ends with a
  contract exit code and no output file, or with a file pydicom reads; never another
  exception, never a temporary file left behind.

The invariant itself lives in fuzz/harness.py, shared with the fuzz targets.
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pydicom.config
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
FUZZ = REPO / "fuzz"
sys.path.insert(0, str(FUZZ))

from harness import CONTRACT_CODES, Sandbox, check_options, option_seeds, run_convert, seed_inputs  # noqa: E402

from streamconv.cli import main  # noqa: E402
from streamconv.logsetup import reset_logging  # noqa: E402

HAVE_ATHERIS = importlib.util.find_spec("atheris") is not None
SEEDS = seed_inputs(str(REPO))
ARGV_SEEDS = option_seeds()
TOKENS = [line.strip()[1:-1].encode().decode("unicode_escape").encode("latin-1")
          for line in (FUZZ / "dicom-json.dict").read_text().splitlines()
          if line.startswith('"')]  # fmt: skip


# -- the coverage-guided targets, briefly -------------------------------------------------------


def _libfuzzer(tmp_path: Path, target: str, corpus: str, seconds: int, *extra: str) -> str:
    work = tmp_path / "corpus"
    shutil.copytree(FUZZ / "corpus" / corpus, work)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    env = {**os.environ, "STREAMCONV_FUZZ_TMP": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(FUZZ / target), f"-max_total_time={seconds}", "-timeout=10",
         "-rss_limit_mb=2048", "-max_len=65536", f"-artifact_prefix={artifacts}/", *extra, str(work)],
        capture_output=True, timeout=seconds + 120, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    log = proc.stderr.decode("utf-8", "replace")
    found = sorted(p.name for p in artifacts.iterdir())
    assert proc.returncode == 0 and not found, f"finding(s) {found}:\n{log[-4000:]}"
    assert "Done" in log, log[-2000:]
    return log


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ATHERIS, reason="atheris not installed (pip install atheris)")
def test_fuzz_convert_smoke(tmp_path: Path) -> None:
    _libfuzzer(tmp_path, "fuzz_convert.py", "convert", 20, f"-dict={FUZZ / 'dicom-json.dict'}")


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_ATHERIS, reason="atheris not installed (pip install atheris)")
def test_fuzz_options_smoke(tmp_path: Path) -> None:
    _libfuzzer(tmp_path, "fuzz_options.py", "options", 8)


# -- property tests: mutations of valid inputs ---------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, seeds: dict[str, bytes], *, keep_header: bool = True) -> bytes:
    """A seed with 1-8 byte-level mutations (flip, overwrite, insert, delete, duplicate,
    dictionary token), the libFuzzer kinds, so that shrinking gives small reproducers."""
    data = bytearray(seeds[draw(st.sampled_from(sorted(seeds)))])
    low = 2 if keep_header else 0  # the option/cut header bytes of the converter seeds
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(low, max(low, len(data))))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "dup", "token"]))
        if op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "dup":
            end = min(len(data), pos + draw(st.integers(1, 64)))
            data[end:end] = data[pos:end]
        else:
            data[pos:pos] = draw(st.sampled_from(TOKENS))
    if keep_header:
        data[0] = draw(st.integers(0, 255))
    return bytes(data)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    old = tempfile.tempdir
    box = Sandbox.create()
    yield box
    box.remove()
    tempfile.tempdir = old
    reset_logging()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                   HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=mutated(SEEDS))
def test_mutations_through_the_pipeline(sandbox: Sandbox, data: bytes) -> None:
    # Converter feed/finish + the sink, every option set, two chunks: StreamconvError with a
    # contract code and nothing left, or outputs that pydicom reads (see fuzz/harness.py)
    import logging

    logging.disable(logging.CRITICAL)
    old = tempfile.tempdir
    tempfile.tempdir = sandbox.tmp
    try:
        run_convert(data, sandbox)
    finally:
        tempfile.tempdir = old
        logging.disable(logging.NOTSET)


_J2D_OPTIONS: list[tuple[str, ...]] = [
    (),
    ("+E",),
    ("+tb", "-e"),
    ("+ar",),
    ("+td",),
    ("-F",),
    ("+Ug", "-c"),
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                   HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    data=mutated({k: v for k, v in SEEDS.items() if not k.startswith("ct-")}),
    which=st.integers(0, len(_J2D_OPTIONS) - 1),
)
def test_mutations_through_json2dcm(tmp_path: Path, data: bytes, which: int) -> None:
    # the command as a user runs it: an exit code of CONTRACT §2, and no output file unless 0
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    tmp = work / "tmp"
    tmp.mkdir()
    src = work / "in.json"
    src.write_bytes(data[2:])
    out = work / "out.dcm"
    err = io.StringIO()
    old = tempfile.tempdir
    tempfile.tempdir = str(tmp)
    try:
        rc = main([*_J2D_OPTIONS[which], str(src), str(out)], stdout=io.StringIO(), stderr=err)
    finally:
        tempfile.tempdir = old
        reset_logging()
    assert rc == 0 or rc in CONTRACT_CODES - {1}, err.getvalue()
    assert "Traceback" not in err.getvalue()
    assert not any(tmp.iterdir()), "temporary files left behind"
    left = sorted(p.name for p in work.iterdir() if p.name not in ("in.json", "tmp"))
    if rc != 0:
        assert left == [], f"exit {rc} left {left}"
        assert "E: " in err.getvalue()
        return
    assert left == ["out.dcm"]
    _read(out, dataset_only="-F" in _J2D_OPTIONS[which])


def _read(path: Path, *, dataset_only: bool) -> Any:
    old = pydicom.config.settings.reading_validation_mode
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=dataset_only)
            # see harness: group 0000 and implicit VR are read with pydicom's own ideas
            if not any(elem.tag.group == 0 for elem in ds) and not ds.original_encoding[0]:
                for elem in ds.iterall():
                    _ = elem.value
            return ds
    finally:
        pydicom.config.settings.reading_validation_mode = old


@settings(max_examples=300, deadline=None)
@given(data=mutated(ARGV_SEEDS, keep_header=False))
def test_mutated_command_lines(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    # parse_args + build_options: options, or a UsageError (exit 1) with a message
    cwd = os.getcwd()
    work = tmp_path_factory.mktemp("argv")
    (work / "bulk").mkdir()
    (work / "cmdfile").write_text("+E '+Bd' \"bulk\" +as 2\n")
    os.chdir(work)
    try:
        check_options(data, str(work))
    finally:
        os.chdir(cwd)
