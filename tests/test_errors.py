"""Every exit code and error path of CONTRACT §2, run as real subprocesses of ``json2dcm``.

For each failure: the exit code; an ``E:`` line naming the input (and the element path where
there is one, the byte offset for JSON syntax errors); never a Python traceback; no output
file and no temporary ``.*.part`` file left in the output directory; an existing output file
untouched. Command-line errors (exit 1) carry DCMTK's messages (dcmtk-behavior §14.1, C1-C15)
where CONTRACT.md does not say otherwise.
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest

from streamconv.cli import main
from streamconv.logsetup import reset_logging

JSON2DCM = shutil.which("json2dcm", path=os.path.dirname(sys.executable))
if JSON2DCM is None:  # pragma: no cover - the package is installed with its console scripts
    COMMAND = [sys.executable, "-m", "streamconv", "convert"]
else:
    COMMAND = [JSON2DCM]

MIN = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "A"}]}}
HEADER_LINE = "json2dcm: Convert JSON document to DICOM file or data set"
OLD = b"existing output, must survive"


def lo(*values: Any) -> dict[str, Any]:
    return {"vr": "LO", "Value": list(values)}


def json2dcm(
    *args: str, stdin: bytes = b"", cwd: Path | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*COMMAND, *args], input=stdin, capture_output=True, cwd=cwd, timeout=60, **kwargs
    )


def inprocess(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """The same run through ``streamconv.cli.main`` in this process, for the big tables (a
    subprocess costs ~0.3 s of CPU); a representative case of each table runs both ways."""
    stdout, stderr = io.StringIO(), io.StringIO()
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        code = main(list(args), stdout=stdout, stderr=stderr)
    except BaseException:  # what a user would see as a traceback
        code = -1
        stderr.write(traceback.format_exc())
    finally:
        os.chdir(old)
        reset_logging()
    return subprocess.CompletedProcess(
        list(args), code, stdout.getvalue().encode(), stderr.getvalue().encode()
    )


RUNNERS = {"inprocess": inprocess, "subprocess": json2dcm}


def runner(request: pytest.FixtureRequest, first: str) -> Any:
    """Subprocess for the table's first case, in-process for the others."""
    return json2dcm if request.node.callspec.id.startswith(first) else inprocess


def write(path: Path, doc: Any) -> Path:
    if isinstance(doc, bytes):
        path.write_bytes(doc)
    elif isinstance(doc, str):
        path.write_text(doc, encoding="utf-8")
    else:
        path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def leftovers(directory: Path, keep: set[str]) -> list[str]:
    """Files in the output directory other than the inputs (``.*.part`` included)."""
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def check_failure(
    res: subprocess.CompletedProcess[bytes],
    code: int,
    *,
    names: tuple[str, ...] = (),
    offset: bool = False,
) -> str:
    err = res.stderr.decode("utf-8", "replace")
    assert res.returncode == code, err
    assert "Traceback" not in err
    assert res.stdout == b""
    for name in names:
        assert name in err, (name, err)
    if offset:
        assert re.search(r"byte offset \d+", err), err
    return err


# -- 20: the input cannot be read --------------------------------------------------------------


def test_input_missing(tmp_path: Path) -> None:
    res = json2dcm(str(tmp_path / "nonexist.json"), str(tmp_path / "out.dcm"))
    err = check_failure(res, 20, names=(str(tmp_path / "nonexist.json"),))
    assert err.startswith("E: ")
    assert leftovers(tmp_path, set()) == []


def test_input_is_directory(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    res = json2dcm(str(tmp_path / "adir"), str(tmp_path / "out.dcm"))
    check_failure(res, 20, names=(str(tmp_path / "adir"),))
    assert leftovers(tmp_path, {"adir"}) == []


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root reads a mode-000 file; see test_input_read_error"
)
def test_input_unreadable(tmp_path: Path) -> None:
    src = write(tmp_path / "in.json", MIN)
    src.chmod(0)
    try:
        res = json2dcm(str(src), str(tmp_path / "out.dcm"))
    finally:
        src.chmod(0o644)
    check_failure(res, 20, names=(str(src),))
    assert leftovers(tmp_path, {"in.json"}) == []


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux /proc")
def test_input_read_error(tmp_path: Path) -> None:
    # an input that opens but cannot be read (EIO at offset 0), also as root
    res = json2dcm("/proc/self/mem", str(tmp_path / "out.dcm"))
    check_failure(res, 20, names=("/proc/self/mem",))
    assert leftovers(tmp_path, set()) == []


# -- 40: the output cannot be written ------------------------------------------------------------


def test_output_directory_missing(tmp_path: Path) -> None:
    src = write(tmp_path / "in.json", MIN)
    out = tmp_path / "nonexistdir" / "a.dcm"
    res = json2dcm(str(src), str(out))  # X5
    check_failure(res, 40, names=(str(out),))
    assert leftovers(tmp_path, {"in.json"}) == []


def test_output_is_directory(tmp_path: Path) -> None:
    src = write(tmp_path / "in.json", MIN)
    (tmp_path / "adir").mkdir()
    res = json2dcm(str(src), str(tmp_path / "adir"))  # X6
    check_failure(res, 40, names=(str(tmp_path / "adir"),))
    assert leftovers(tmp_path, {"in.json", "adir"}) == []
    assert list((tmp_path / "adir").iterdir()) == []


@pytest.mark.skipif(
    os.geteuid() == 0,
    reason="root writes into a mode-555 directory; see test_output_file_too_large",
)
def test_output_directory_not_writable(tmp_path: Path) -> None:
    src = write(tmp_path / "in.json", MIN)
    outdir = tmp_path / "ro"
    outdir.mkdir()
    outdir.chmod(0o555)
    try:
        res = json2dcm(str(src), str(outdir / "a.dcm"))
    finally:
        outdir.chmod(0o755)
    check_failure(res, 40, names=(str(outdir / "a.dcm"),))
    assert list(outdir.iterdir()) == []


def _limit_file_size() -> None:
    # "disk full" for one process: writes past 4 KiB fail with EFBIG (SIGXFSZ ignored)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


@pytest.mark.parametrize("existing", [False, True])
def test_output_file_too_large(tmp_path: Path, existing: bool) -> None:
    # the write fails half-way: the temporary file goes, an existing file stays as it was
    src = write(tmp_path / "in.json", {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "A"}]},
                                       "00420011": {"vr": "OB", "InlineBinary": "AAAA" * 4000}})  # fmt: skip
    out = tmp_path / "out.dcm"
    if existing:
        out.write_bytes(OLD)
    res = json2dcm(str(src), str(out), preexec_fn=_limit_file_size)
    check_failure(res, 40, names=(str(out),))
    assert leftovers(tmp_path, {"in.json", "out.dcm"}) == []
    if existing:
        assert out.read_bytes() == OLD
    else:
        assert not out.exists()


def test_stdout_full(tmp_path: Path) -> None:
    src = write(tmp_path / "in.json", MIN)
    with open("/dev/full", "wb") as full:
        res = subprocess.run(
            [*COMMAND, str(src), "-"], stdout=full, stderr=subprocess.PIPE, timeout=60
        )
    err = res.stderr.decode()
    assert res.returncode == 40, err
    assert "Traceback" not in err and "E: " in err


def test_stdout_closed(tmp_path: Path) -> None:
    src = write(tmp_path / "in.json", MIN)
    proc = subprocess.Popen(
        [*COMMAND, str(src), "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before json2dcm has written anything (it starts in ~0.2 s)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 40, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("ts", "name"),
    [
        ("1.2.840.10008.1.2.4.50", "JPEG Baseline"),  # P10
        ("1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian"),  # P13
        ("1.2.840.10008.1.2.5", "RLE Lossless"),
    ],
)
def test_encapsulated_transfer_syntax_with_pixel_data(tmp_path: Path, ts: str, name: str) -> None:
    doc = {
        "00020010": {"vr": "UI", "Value": [ts]},
        "7FE00010": {"vr": "OB", "InlineBinary": "AQIDBA=="},
    }
    src = write(tmp_path / "in.json", doc)
    out = tmp_path / "out.dcm"
    out.write_bytes(OLD)
    err = check_failure(
        json2dcm(str(src), str(out)), 40, names=(str(src), "no conversion to transfer syntax", name)
    )
    assert out.read_bytes() == OLD
    assert leftovers(tmp_path, {"in.json", "out.dcm"}) == []
    assert err.startswith("E: ")


# -- 65: invalid JSON -----------------------------------------------------------------------------

# (id, raw input bytes, byte offset of the error: the reported offset is not before it)
SYNTAX: list[tuple[str, bytes, int]] = [
    ("truncated-object", b'{"00100020":{"vr":"LO","Value":["X"]}', 37),  # J15
    ("truncated-string", b'{"00100020":{"vr":"LO","Value":["abc', 36),  # J3
    ("truncated-array", b'[{"00100020":{"vr":"LO","Value":["X"]}},', 39),
    ("unquoted-word", b'{"00100020":{"vr":"LO","Value":[hello]}}', 32),  # J8
    ("nan", b'{"00180050":{"vr":"DS","Value":[NaN]}}', 32),  # J9
    ("infinity", b'{"00189089":{"vr":"FD","Value":[Infinity]}}', 32),
    ("plus-number", b'{"00280010":{"vr":"US","Value":[+5]}}', 32),
    ("leading-zero", b'{"00280010":{"vr":"US","Value":[007]}}', 33),
    ("unquoted-key", b'{00100020:{"vr":"LO","Value":["X"]}}', 1),  # J27
    ("block-comment", b'{"00100020":{"vr":"LO","Value":["X"]} /* c */}', 38),  # J5
    ("line-comment", b'// c\n{"00100020":{"vr":"LO","Value":["X"]}}', 0),  # J6
    ("single-quotes", b"{'00100010':{'vr':'PN'}}", 1),  # J7
    ("bad-escape", b'{"00100020":{"vr":"LO","Value":["a\\qb"]}}', 34),  # J13
    ("short-unicode-escape", b'{"00100020":{"vr":"LO","Value":["\\u00e"]}}', 33),  # J18
    ("capital-u-escape", b'{"00100020":{"vr":"LO","Value":["\\U0041"]}}', 33),  # J18
    ("lone-high-surrogate", b'{"00100020":{"vr":"LO","Value":["\\ud83d"]}}', 33),  # S7
    ("lone-low-surrogate", b'{"00100020":{"vr":"LO","Value":["\\ude00"]}}', 33),
    ("high-then-ascii", b'{"00100020":{"vr":"LO","Value":["\\ud83d\\u0041"]}}', 33),
    ("latin1-byte", b'{"00100020":{"vr":"LO","Value":["caf\xe9"]}}', 36),  # J19 (DCMTK accepts)
    ("invalid-utf8-ff", b'{"00100020":{"vr":"LO","Value":["\xff"]}}', 33),
    ("overlong-utf8", b'{"00100020":{"vr":"LO","Value":["\xc0\xaf"]}}', 33),
    ("truncated-utf8", b'{"00100020":{"vr":"LO","Value":["\xe4\xb8"]}}', 33),
    ("utf8-surrogate", b'{"00100020":{"vr":"LO","Value":["\xed\xa0\x80"]}}', 33),
    ("byte-outside-string", b'{"00100020":{"vr":"LO","Value":["X"]},\xe9}', 38),  # J2
    ("raw-tab-in-string", b'{"00100020":{"vr":"LO","Value":["a\tb"]}}', 34),  # J17; RFC 8259 §7
    ("missing-colon", b'{"00100020" {"vr":"LO","Value":["X"]}}', 12),  # J20
    ("comma-for-colon", b'{"00100020", {"vr":"LO","Value":["X"]}}', 11),  # J20
    ("extra-bracket", b'{"00100020":{"vr":"LO","Value":["X"]}}]', 38),  # J14
    ("mismatched-bracket", b'{"00100020":{"vr":"LO","Value":["X"}}}', 35),  # J21
    ("garbage-after", b'{"00100020":{"vr":"LO","Value":["X"]}} garbage', 39),  # J11
    ("nul-after", b'{"00100020":{"vr":"LO","Value":["X"]}}\x00garbage', 38),  # J22
    ("nul-inside", b'{"00100020":{"vr":"LO","Value":["X"]}\x00}', 37),  # J23
    ("two-boms", b"\xef\xbb\xbf\xef\xbb\xbf{}", 3),  # one BOM is skipped (CONTRACT §3), not two
    ("double-comma", b'{"00100020":{"vr":"LO","Value":["X",,"Y"]}}', 36),
]


@pytest.mark.parametrize(("data", "at"), [c[1:] for c in SYNTAX], ids=[c[0] for c in SYNTAX])
def test_invalid_json(request: pytest.FixtureRequest, tmp_path: Path, data: bytes, at: int) -> None:
    src = write(tmp_path / "in.json", data)
    out = tmp_path / "out.dcm"
    run = runner(request, "truncated-object")
    err = check_failure(run(str(src), str(out)), 65, names=(str(src),), offset=True)
    assert err.startswith("E: ")
    reported = int(re.findall(r"byte offset (\d+)", err)[0])
    assert at <= reported <= len(data), (at, reported)
    assert leftovers(tmp_path, {"in.json"}) == []


def test_invalid_json_even_with_ignore_errors(tmp_path: Path) -> None:
    # +E relaxes CONTRACT §4's list, not JSON syntax (§3): J16 converted the truncated text
    src = write(tmp_path / "in.json", b'{"00100020":{"vr":"LO","Value":["X"]}')
    check_failure(
        json2dcm("+E", str(src), str(tmp_path / "out.dcm")), 65, names=(str(src),), offset=True
    )
    assert leftovers(tmp_path, {"in.json"}) == []


def test_invalid_json_late_in_large_input(tmp_path: Path) -> None:
    # the error is 3 MiB in: the offset points into the input, past every valid byte before it
    head = b'{"00420011":{"vr":"OB","InlineBinary":"' + b"AAAA" * (3 << 18) + b'"},'
    data = head + b'"00100020":{"vr":"LO","Value":[hello]}}'
    src = write(tmp_path / "in.json", data)
    err = check_failure(
        json2dcm(str(src), str(tmp_path / "out.dcm")), 65, names=(str(src),), offset=True
    )
    reported = int(re.findall(r"byte offset (\d+)", err)[0])
    assert len(head) + 32 <= reported <= len(data)
    assert leftovers(tmp_path, {"in.json"}) == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),  # X4
        (b"  \n\t ", "empty"),  # X4
        (b"x", ""),  # X4
        (b"[]", "empty JSON array"),  # A3
        (b'"abc"', "JSON object"),  # A20
        (b"42", "JSON object"),  # A21
        (b"null", "JSON object"),
        (b'[[{"00100020":{"vr":"LO","Value":["X"]}}]]', "JSON object"),  # A4
        (b'["x"]', "JSON object"),  # A5
        (b'[{"00100020":{"vr":"LO","Value":["a"]}},{"00100020":{"vr":"LO","Value":["b"]}}]', ""),  # A1
        (b'{"00100020":{"vr":"LO","Value":["a"]}}\n{"00100020":{"vr":"LO","Value":["b"]}}\n', ""),  # CONTRACT §3
    ],
    ids=["empty", "whitespace", "one-byte", "empty-array", "string", "number", "null", "nested-array",
         "array-of-string", "two-datasets", "ndjson"],
)  # fmt: skip
def test_invalid_document(
    request: pytest.FixtureRequest, tmp_path: Path, data: bytes, message: str
) -> None:
    src = write(tmp_path / "in.json", data)
    run = runner(request, "empty-array")
    err = check_failure(run(str(src), str(tmp_path / "out.dcm")), 65, names=(str(src), message))
    assert err.startswith("E: ")
    assert leftovers(tmp_path, {"in.json"}) == []


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def _nested(levels: int) -> str:
    core = '{"00100020":{"vr":"LO","Value":["deep"]}}'
    return '{"00081115":{"vr":"SQ","Value":[' * levels + core + "]}}" * levels


@pytest.mark.parametrize(("levels", "code"), [(63, 0), (65, 65), (10_000, 65), (200_000, 65)])
def test_nesting_depth(tmp_path: Path, levels: int, code: int) -> None:
    # CONTRACT §3: at most 64 nested sequence levels, deeper input a clear 65, never a crash;
    # and quickly, with little memory (the subprocess has 60 s and 1 GiB of address space)
    src = write(tmp_path / "in.json", _nested(levels))
    res = json2dcm(str(src), str(tmp_path / "out.dcm"), preexec_fn=_limit_memory)
    if code == 0:
        assert res.returncode == 0, res.stderr
        return
    err = check_failure(res, 65, names=(str(src),))
    assert "nested" in err
    if levels < 100:
        assert "(0008,1115)[1].(0008,1115)" in err  # the element path
    assert leftovers(tmp_path, {"in.json"}) == []


@pytest.mark.parametrize(
    "doc", ["[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000]
)
def test_nesting_depth_plain_json(tmp_path: Path, doc: str) -> None:
    # yajl2_c's prefix per level made this quadratic (40,000 levels: 9 s, 3.9 GB)
    src = write(tmp_path / "in.json", doc)
    err = check_failure(
        json2dcm(str(src), str(tmp_path / "out.dcm"), preexec_fn=_limit_memory),
        65,
        names=(str(src),),
    )
    assert "nested" in err
    assert leftovers(tmp_path, {"in.json"}) == []


# -- 65: invalid DICOM JSON content (CONTRACT §4), with the element path ---------------------------

NESTED = '"00101002":{"vr":"SQ","Value":[{"00100020":{"vr":"LO","Value":["ok"]}},{"00100020":%s}]}'
CONTENT: list[tuple[str, str, str]] = [
    ("tag-7-digits", '"0010020":{"vr":"LO","Value":["X"]}', "0010020"),  # K2
    ("tag-9-digits", '"001000100":{"vr":"LO","Value":["X"]}', "001000100"),  # K3
    ("tag-0x", '"0x100020":{"vr":"LO","Value":["X"]}', "0x100020"),  # K4: CONTRACT §4 strict
    ("tag-empty", '"":{"vr":"LO","Value":["X"]}', "''"),  # K13
    (
        "duplicate",
        '"00100020":{"vr":"LO","Value":["a"]},"00100020":{"vr":"LO","Value":["b"]}',
        "(0010,0020)",
    ),  # K10
    (
        "duplicate-case",
        '"0010001a":{"vr":"LO","Value":["a"]},"0010001A":{"vr":"LO","Value":["b"]}',
        "(0010,001A)",
    ),
    ("unknown-attribute", '"00100020":{"vr":"LO","Value":["X"],"foo":1}', "(0010,0020)"),  # V20
    (
        "two-values",
        '"00100020":{"vr":"LO","Value":["X"],"InlineBinary":"AQID"}',
        "(0010,0020)",
    ),  # V19
    ("vr-unknown", '"00100020":{"vr":"XX","Value":["X"]}', "(0010,0020)"),  # V4
    ("vr-pseudo", '"00100020":{"vr":"ox","Value":["ff"]}', "(0010,0020)"),  # V10
    ("vr-na", '"00100020":{"vr":"na","Value":["X"]}', "(0010,0020)"),  # V13
    ("vr-null", '"00100020":{"vr":null,"Value":["X"]}', "(0010,0020)"),
    ("no-vr-unknown-tag", '"00501234":{"Value":["abc"]}', "(0050,1234)"),  # K18
    ("no-vr-private", '"00291010":{"Value":["x"]}', "(0029,1010)"),  # K16
    ("content-string", '"00100020":"X"', "(0010,0020)"),  # V23
    ("value-string", '"00100020":{"vr":"LO","Value":"X"}', "(0010,0020)"),  # V24
    ("value-null", '"00100020":{"vr":"LO","Value":null}', "(0010,0020)"),  # V25
    ("value-object", '"00100020":{"vr":"LO","Value":[{"a":1}]}', "(0010,0020)"),  # S10
    ("value-array", '"00100020":{"vr":"LO","Value":[["a"]]}', "(0010,0020)"),  # S11
    ("us-range", '"00280010":{"vr":"US","Value":[70000]}', "(0028,0010)"),  # N13
    ("ss-range", '"00189219":{"vr":"SS","Value":[-40000]}', "(0018,9219)"),  # N14
    ("ul-negative", '"0040A132":{"vr":"UL","Value":[-1]}', "(0040,A132)"),  # N15
    ("sv-range", '"00720082":{"vr":"SV","Value":[9223372036854775808]}', "(0072,0082)"),  # N16
    ("uv-range", '"00720083":{"vr":"UV","Value":[18446744073709551616]}', "(0072,0083)"),  # N16
    ("us-fraction", '"00280010":{"vr":"US","Value":[1.9]}', "(0028,0010)"),  # N13
    ("us-string", '"00280010":{"vr":"US","Value":["12"]}', "(0028,0010)"),  # N13
    ("us-null", '"00280010":{"vr":"US","Value":[1,null,3]}', "(0028,0010)"),  # N21
    ("us-boolean", '"00280010":{"vr":"US","Value":[true]}', "(0028,0010)"),  # J10
    ("fd-overflow", '"00189089":{"vr":"FD","Value":[1e400]}', "(0018,9089)"),  # N19
    ("fl-overflow", '"00089459":{"vr":"FL","Value":[1e39]}', "(0008,9459)"),  # N20
    ("fl-string", '"00089459":{"vr":"FL","Value":["abc"]}', "(0008,9459)"),  # N21
    ("is-fraction", '"00201208":{"vr":"IS","Value":[1.5]}', "(0020,1208)"),  # N11
    ("is-range", '"00201208":{"vr":"IS","Value":[123456789012345]}', "(0020,1208)"),  # N11
    ("is-text", '"00201208":{"vr":"IS","Value":["12a"]}', "(0020,1208)"),
    ("ds-text", '"00180050":{"vr":"DS","Value":["1,5"]}', "(0018,0050)"),
    ("ds-boolean", '"00180050":{"vr":"DS","Value":[true]}', "(0018,0050)"),
    ("lo-backslash", '"00100020":{"vr":"LO","Value":["a\\\\b"]}', "(0010,0020)"),  # S2
    ("cs-backslash", '"00080060":{"vr":"CS","Value":["CT\\\\MR"]}', "(0008,0060)"),
    (
        "pn-backslash",
        '"00100010":{"vr":"PN","Value":[{"Alphabetic":"a\\\\b"}]}',
        "(0010,0010)",
    ),  # N10
    ("pn-string", '"00100010":{"vr":"PN","Value":["Doe^John"]}', "(0010,0010)"),  # N5
    ("pn-group", '"00100010":{"vr":"PN","Value":[{"alphabetic":"Doe"}]}', "(0010,0010)"),  # N6
    ("pn-null-group", '"00100010":{"vr":"PN","Value":[{"Alphabetic":null}]}', "(0010,0010)"),  # N9
    ("at-text", '"00209167":{"vr":"AT","Value":["(0010,0010)"]}', "(0020,9167)"),  # N24
    ("at-number", '"00209167":{"vr":"AT","Value":[100010]}', "(0020,9167)"),  # N25
    ("at-null", '"00209167":{"vr":"AT","Value":[null]}', "(0020,9167)"),  # N26
    ("at-non-hex", '"00209167":{"vr":"AT","Value":["0010002G"]}', "(0020,9167)"),
    ("base64-alphabet", '"00420011":{"vr":"OB","InlineBinary":"-_-_"}', "(0042,0011)"),  # Q15
    ("base64-padding", '"00420011":{"vr":"OB","InlineBinary":"AQ==AQID"}', "(0042,0011)"),  # Q17
    ("base64-space", '"00420011":{"vr":"OB","InlineBinary":"AQ ID"}', "(0042,0011)"),  # Q13
    ("base64-length", '"00420011":{"vr":"OB","InlineBinary":"A"}', "(0042,0011)"),  # Q18
    ("base64-escape", '"00420011":{"vr":"OB","InlineBinary":"AQID\\nBA=="}', "(0042,0011)"),  # Q13
    ("inline-null", '"00420011":{"vr":"OB","InlineBinary":null}', "(0042,0011)"),  # Q22
    ("ow-odd", '"00281201":{"vr":"OW","InlineBinary":"AQID"}', "(0028,1201)"),  # Q10
    ("od-length", '"7FE00009":{"vr":"OD","InlineBinary":"AQIDBA=="}', "(7FE0,0009)"),
    ("inline-us", '"00280010":{"vr":"US","InlineBinary":"AQI="}', "(0028,0010)"),  # Q21
    ("inline-lo", '"00100020":{"vr":"LO","InlineBinary":"AQI="}', "(0010,0020)"),  # Q21
    ("inline-sq", '"00081115":{"vr":"SQ","InlineBinary":"AQI="}', "(0008,1115)"),  # Q5
    (
        "bulk-lo",
        '"00100020":{"vr":"LO","BulkDataURI":"file:///etc/hostname"}',
        "(0010,0020)",
    ),  # B48
    ("bulk-number", '"00420011":{"vr":"OB","BulkDataURI":123}', "(0042,0011)"),  # B43
    ("item-null", '"00081115":{"vr":"SQ","Value":[null]}', "(0008,1115)[1]"),  # Q2
    ("item-string", '"00081115":{"vr":"SQ","Value":["x"]}', "(0008,1115)[1]"),  # Q3
    ("pixel-value", '"7FE00010":{"vr":"OW","Value":[1,2]}', "(7FE0,0010)"),  # P6
    ("pixel-us", '"7FE00010":{"vr":"US","InlineBinary":"AQI="}', "(7FE0,0010)"),  # P7
    ("uid-keyword", '"00080016":{"vr":"UI","Value":["=NoSuchThing"]}', "(0008,0016)"),  # S14
    ("nested-backslash", NESTED % '{"vr":"LO","Value":["a\\\\b"]}', "(0010,1002)[2].(0010,0020)"),
    (
        "nested-duplicate",
        NESTED % '{"vr":"LO","Value":["x"]},"00100020":{"vr":"LO"}',
        "(0010,1002)[2].(0010,0020)",
    ),
    (
        "nested-range",
        NESTED.replace('00100020":%s', '00280010":%s') % '{"vr":"US","Value":[-1]}',
        "(0010,1002)[2].(0028,0010)",
    ),
    (
        "charset",
        '"00080005":{"vr":"CS","Value":["ISO_IR 100"]},"00100020":{"vr":"LO","Value":["\\u4e2d"]}',
        "(0010,0020)",
    ),  # H6
    (
        "charset-unknown",
        '"00080005":{"vr":"CS","Value":["FOOBAR"]},"00100020":{"vr":"LO","Value":["caf\\u00e9"]}',
        "FOOBAR",
    ),  # H11
]


@pytest.mark.parametrize(
    ("elements", "where"), [c[1:] for c in CONTENT], ids=[c[0] for c in CONTENT]
)
def test_invalid_content(
    request: pytest.FixtureRequest, tmp_path: Path, elements: str, where: str
) -> None:
    src = write(tmp_path / "in.json", "{" + elements + "}")
    run = runner(request, "nested-backslash")
    err = check_failure(run(str(src), str(tmp_path / "out.dcm")), 65, names=(str(src), where))
    assert re.search(r"^E: ", err, re.MULTILINE), err
    assert leftovers(tmp_path, {"in.json"}) == []


def test_invalid_content_in_array_names_the_dataset(tmp_path: Path) -> None:
    doc = '[{"00100020":{"vr":"LO","Value":["a"]}},{"00280010":{"vr":"US","Value":[-1]}}]'
    src = write(tmp_path / "in.json", doc)
    err = check_failure(
        json2dcm("+ar", str(src), str(tmp_path / "out.dcm")), 65, names=(str(src), "(0028,0010)")
    )
    assert "2" in err.split("(0028,0010)")[0]  # the second dataset
    assert leftovers(tmp_path, {"in.json"}) == []


def test_content_error_keeps_existing_output(tmp_path: Path) -> None:
    src = write(tmp_path / "in.json", '{"00280010":{"vr":"US","Value":[70000]}}')
    out = write(tmp_path / "out.dcm", OLD)
    check_failure(json2dcm(str(src), str(out)), 65, names=(str(src), "(0028,0010)"))
    assert out.read_bytes() == OLD
    assert leftovers(tmp_path, {"in.json", "out.dcm"}) == []


# -- 20 and 66: bulk data -------------------------------------------------------------------------


@pytest.fixture
def bulk(tmp_path: Path) -> Path:
    (tmp_path / "bulk" / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "bulk" / "data.bin").write_bytes(bytes(range(1, 9)))
    (tmp_path / "outside" / "o.bin").write_bytes(b"ABCDEFGH")
    (tmp_path / "bulk" / "link.bin").symlink_to(tmp_path / "outside" / "o.bin")
    (tmp_path / "out").mkdir()
    return tmp_path


def _bulk_doc(uri: Any) -> str:
    return json.dumps({"00100020": lo("kept"), "00101002": {"vr": "SQ", "Value": [
        {"00420011": {"vr": "OB", "BulkDataURI": uri}}]}})  # fmt: skip


@pytest.mark.parametrize(
    ("uri", "bd", "code"),
    [
        ("F/bulk/data.bin", False, 20),  # B1: nothing permitted by default
        ("F/bulk/nope.bin", True, 20),  # B7
        ("F/bulk/nope.bin", False, 20),  # B8
        ("F/bulk/../outside/o.bin", True, 20),  # B9
        ("F/bulk/link.bin", True, 20),  # B11: symlink out
        ("F/bulk/sub", True, 20),  # B35: a directory is not a bulk data file
        ("F/outside/o.bin", True, 20),
        ("file:///etc/passwd", True, 20),
        ("../outside/o.bin", True, 20),  # relative, resolved, then refused
        ("http://example.com/x", True, 66),  # B36
        ("https://example.com/x", True, 66),  # B36
        ("urn:uuid:1234", True, 66),  # B38
        ("cid:part1@example.com", True, 66),
        ("ftp://example.com/x", True, 66),
        ("data:application/octet-stream;base64,AQID", True, 66),
    ],
)
def test_bulkdata_errors(
    request: pytest.FixtureRequest, bulk: Path, uri: str, bd: bool, code: int
) -> None:
    uri = uri.replace("F/", f"file://{bulk}/")
    src = write(bulk / "in.json", _bulk_doc(uri))
    out = bulk / "out" / "out.dcm"
    opts = ["+Bd", str(bulk / "bulk")] if bd else []
    run = (
        json2dcm
        if uri in ("http://example.com/x",) or request.node.callspec.id.startswith("F/bulk/link")
        else inprocess
    )
    err = check_failure(
        run(*opts, str(src), str(out)), code, names=(str(src), "(0010,1002)[1].(0042,0011)")
    )
    assert err.startswith("E: ")
    assert list((bulk / "out").iterdir()) == []


def test_bulkdata_relative_uri_from_stdin(bulk: Path) -> None:
    # CONTRACT §5: with stdin as input there is no directory to resolve against: 66
    out = bulk / "out" / "out.dcm"
    res = json2dcm(
        "+Bd",
        str(bulk / "bulk"),
        "-",
        str(out),
        stdin=_bulk_doc("bulk/data.bin").encode(),
        cwd=bulk,
    )
    check_failure(res, 66, names=("stdin", "(0010,1002)[1].(0042,0011)"))
    assert list((bulk / "out").iterdir()) == []


def test_bulkdata_error_keeps_existing_output(bulk: Path) -> None:
    src = write(bulk / "in.json", _bulk_doc("http://example.com/x"))
    out = write(bulk / "out" / "out.dcm", OLD)
    check_failure(json2dcm(str(src), str(out)), 66, names=(str(src),))
    assert out.read_bytes() == OLD
    assert [p.name for p in (bulk / "out").iterdir()] == ["out.dcm"]


def test_bulkdata_fails_while_writing(bulk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a large bulk value is read while the output is written; if that read fails the
    # temporary file is removed and the existing output stays (in-process, failure injected)
    import streamconv.core.bulkdata
    import streamconv.core.encode

    (bulk / "bulk" / "big.bin").write_bytes(b"\x01" * (3 << 20))
    src = write(bulk / "in.json", _bulk_doc(f"file://{bulk}/bulk/big.bin"))
    out = write(bulk / "out" / "out.dcm", OLD)
    real = streamconv.core.bulkdata.iter_chunks

    def failing(*args: Any, **kwargs: Any) -> Any:
        chunks = real(*args, **kwargs)
        yield next(chunks)
        from streamconv.errors import BulkDataAccessError

        raise BulkDataAccessError("bulk data file shrank while reading (injected)")

    monkeypatch.setattr(streamconv.core.encode, "iter_chunks", failing)
    stderr = io.StringIO()
    rc = main(["+Bd", str(bulk / "bulk"), str(src), str(out)], stdout=io.StringIO(), stderr=stderr)
    reset_logging()
    assert rc == 20, stderr.getvalue()
    assert "injected" in stderr.getvalue() and str(src) in stderr.getvalue()
    assert out.read_bytes() == OLD
    assert [p.name for p in (bulk / "out").iterdir()] == ["out.dcm"]


# -- 1: the command line (C1-C15; CONTRACT §1) ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["min.json"], "error: Missing parameter dcmfile-out"),  # C1
        (["min.json", "a.dcm", "b.dcm"], "error: Too many parameters"),  # C2
        (["--foo", "min.json", "a.dcm"], "error: Unknown option --foo"),  # C3
        (["+x", "min.json", "a.dcm"], "error: Unknown option +x"),
        (["min.json", "a.dcm", "+as"], "error: Missing value for option --array-select"),  # C4
        (["+as"], "error: Missing value for option --array-select"),  # C4
        (
            ["-Uo", "min.json", "a.dcm"],
            "error: --dont-overwrite-uids only allowed with --generate-new-uids",
        ),  # C7
        (
            ["+Uo", "min.json", "a.dcm"],
            "error: --overwrite-uids only allowed with --generate-new-uids",
        ),  # C7
        (
            ["+Fu", "-F", "min.json", "a.dcm"],
            "error: --update-meta-info not allowed with --write-dataset",
        ),  # C8
        (
            ["-F", "+Fu", "min.json", "a.dcm"],
            "error: --update-meta-info not allowed with --write-dataset",
        ),  # C8
        (
            ["+cl", "5", "min.json", "a.dcm"],
            "error: --compression-level only allowed with --write-xfer-deflated",
        ),  # C9
        (
            ["+td", "+cl", "10", "min.json", "a.dcm"],
            "error: Invalid value for option --compression-level (overflow: 10)",
        ),  # C10
        (
            ["-ll", "warn", "-v", "min.json", "a.dcm"],
            "error: --log-level not allowed with --verbose, --debug or --quiet",
        ),  # C13
        (
            ["-ll", "bogus", "min.json", "a.dcm"],
            "error: Invalid log level for --log-level option",
        ),  # C13
        (["@nofile.txt"], "error: Cannot open command file 'nofile.txt'"),  # C14
        (
            ["+as", "0", "min.json", "a.dcm"],
            "error: Invalid value for option --array-select",
        ),  # CONTRACT §1
        (
            ["+as", "abc", "min.json", "a.dcm"],
            "error: Invalid value for option --array-select",
        ),  # CONTRACT §1
        (
            ["+as", "-2", "min.json", "a.dcm"],
            "error: Invalid value for option --array-select",
        ),  # CONTRACT §1
        (["-lc", "nofile.cfg", "min.json", "a.dcm"], "nofile.cfg"),
    ],
)
def test_command_line_errors(
    request: pytest.FixtureRequest, tmp_path: Path, args: list[str], message: str
) -> None:
    write(tmp_path / "min.json", MIN)
    run = (
        json2dcm if request.node.callspec.id.startswith(("args0", "args4", "args14")) else inprocess
    )
    res = run(*args, cwd=tmp_path)
    err = check_failure(res, 1)
    lines = err.splitlines()
    if message.endswith(("(", "array-select")):  # streamconv's own wording after DCMTK's
        assert any(line.startswith(message) for line in lines), err
    elif message.startswith("error: "):
        assert message in lines, err  # DCMTK's exact line
    else:
        assert message in err
    assert lines[-1].startswith("error: "), err
    assert HEADER_LINE in lines  # the program header, then the error (§1.3)
    assert leftovers(tmp_path, {"min.json"}) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["+Bd", "/nonexistent", "min.json", "a.dcm"],
            "E: Failed to normalize file path: '/nonexistent'",
        ),  # C11
        (["+Bd", "", "min.json", "a.dcm"], "E: Failed to normalize file path: ''"),  # C12
        (["min.json", ""], "E: json2dcm: invalid output filename: <empty string>"),  # C15
        (["", "a.dcm"], "E: json2dcm: invalid input filename: <empty string>"),  # C15
    ],
)
@pytest.mark.parametrize("via", ["inprocess", "subprocess"])
def test_command_line_errors_logged(
    tmp_path: Path, args: list[str], message: str, via: str
) -> None:
    write(tmp_path / "min.json", MIN)
    err = check_failure(RUNNERS[via](*args, cwd=tmp_path), 1)
    assert err.splitlines() == [message]
    assert leftovers(tmp_path, {"min.json"}) == []


def test_command_line_error_keeps_existing_output(tmp_path: Path) -> None:
    write(tmp_path / "min.json", MIN)
    out = write(tmp_path / "a.dcm", OLD)
    check_failure(json2dcm("+cl", "5", "min.json", "a.dcm", cwd=tmp_path), 1)
    assert out.read_bytes() == OLD


def test_no_arguments_is_not_an_error() -> None:
    res = json2dcm()  # C6: usage on stdout, exit 0
    assert res.returncode == 0 and res.stderr == b""
    assert b"jsonfile-in" in res.stdout


def test_umbrella_convert_same_codes(tmp_path: Path) -> None:
    # `streamconv convert` is json2dcm (issue 2)
    src = write(tmp_path / "in.json", '{"00280010":{"vr":"US","Value":[70000]}}')
    res = subprocess.run([sys.executable, "-m", "streamconv", "convert", str(src), str(tmp_path / "o.dcm")],
                         capture_output=True, timeout=60)  # fmt: skip
    check_failure(res, 65, names=(str(src), "(0028,0010)"))
    res = subprocess.run(
        [sys.executable, "-m", "streamconv", "convert", "+Uo", "x", "y"],
        capture_output=True,
        timeout=60,
    )
    check_failure(res, 1)
    assert leftovers(tmp_path, {"in.json"}) == []


def test_success_leaves_only_the_output(tmp_path: Path) -> None:
    # the counterpart: no temporary file after success either; the output is complete
    src = write(tmp_path / "in.json", MIN)
    out = write(tmp_path / "out.dcm", OLD)
    res = json2dcm("-F", str(src), str(out))
    assert res.returncode == 0 and res.stderr == b""
    assert out.read_bytes() == bytes.fromhex("10001000504e02004120")
    assert leftovers(tmp_path, {"in.json", "out.dcm"}) == []
