"""http(s) bulk data against a real misbehaving server on 127.0.0.1 (issue 12, CONTRACT §5)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from streamconv.cli import main
from streamconv.core import httpfetch
from streamconv.errors import BulkDataFetchError
from streamconv.options import HttpSettings

from .faultserver import FaultServer, pattern

DOC_TAG = "00420011"  # Encapsulated Document, OB: any bytes


@pytest.fixture(autouse=True)
def _private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Temporary files of the fetcher go to a folder of the test's own: none may be left."""
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    monkeypatch.setattr(httpfetch, "BACKOFF_BASE", 0.01)
    yield spool
    assert list(spool.iterdir()) == [], "a temporary file was left behind"


def _doc(tmp_path: Path, *uris: str) -> Path:
    ds: dict[str, object] = {
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.104.1"]},
        "00080018": {"vr": "UI", "Value": ["1.2.3.4"]},
    }
    for i, uri in enumerate(uris):
        tag = DOC_TAG if i == 0 else f"0009{0x1010 + i:04X}"
        if i:
            ds["00090010"] = {"vr": "LO", "Value": ["STREAMCONV TEST"]}
        ds[tag] = {"vr": "OB", "BulkDataURI": uri}
    path = tmp_path / "in.json"
    path.write_text(json.dumps(ds))
    return path


def _run(tmp_path: Path, server: FaultServer, uri: str, *extra: str) -> tuple[int, str, Path]:
    src = _doc(tmp_path, uri)
    out = tmp_path / "out.dcm"
    err = io.StringIO()
    rc = main(["+Bh", server.url, *extra, str(src), str(out)], stderr=err)
    return rc, err.getvalue(), out


def _value(out: Path) -> bytes:
    value: bytes = pydicom.dcmread(out)[0x00420011].value
    return value


def _even(data: bytes) -> bytes:
    return data + b"\x00" if len(data) & 1 else data  # PS3.5 7.1.1: OB padded to even length


@pytest.mark.parametrize("kind", ["single", "multi", "gzip", "redirect-in"])
def test_value_arrives(tmp_path: Path, fault: FaultServer, kind: str) -> None:
    rc, err, out = _run(tmp_path, fault, f"{fault.url}{kind}/5001")
    assert rc == 0, err
    assert _value(out) == _even(pattern(5001))


def test_request_headers(tmp_path: Path, fault: FaultServer) -> None:
    rc, err, _ = _run(tmp_path, fault, f"{fault.url}multi/10")
    assert rc == 0, err
    [(_, headers)] = fault.requests
    assert headers["Accept"] == (
        'multipart/related; type="application/octet-stream"; transfer-syntax=*'
    )
    assert headers["Accept-Encoding"] == "identity"
    assert "Authorization" not in headers


def test_octet_stream_when_multipart_refused(tmp_path: Path, fault: FaultServer) -> None:
    rc, err, out = _run(tmp_path, fault, f"{fault.url}octet-only/300")
    assert rc == 0, err
    assert _value(out) == pattern(300)
    accepts = [h["Accept"] for _, h in fault.requests]
    assert accepts[0].startswith("multipart/related")
    assert accepts[1] == "application/octet-stream"


@pytest.mark.parametrize("kind", ["busy-then-ok", "throttle-then-ok"])
def test_retry_after_then_success(tmp_path: Path, fault: FaultServer, kind: str) -> None:
    rc, err, out = _run(tmp_path, fault, f"{fault.url}{kind}/64")
    assert rc == 0, err
    assert _value(out) == pattern(64)
    assert fault.counts[f"/{kind}/64"] == 2


@pytest.mark.parametrize(
    ("path", "attempts"),
    [("always-503/8", 3), ("status/500", 3), ("status/408", 3), ("reset/4096", 3)],
)
def test_transient_failures_exhaust_retries(
    tmp_path: Path, fault: FaultServer, path: str, attempts: int
) -> None:
    rc, err, out = _run(tmp_path, fault, fault.url + path, "--http-retries", "2")
    assert rc == 20, err
    assert fault.counts["/" + path] == attempts
    assert "after 3 attempts" in err
    assert not out.exists()


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_client_errors_fail_at_once(tmp_path: Path, fault: FaultServer, status: int) -> None:
    rc, err, out = _run(tmp_path, fault, f"{fault.url}status/{status}")
    assert rc == 20, err
    # 400 also means "media type not served": the octet-stream request is the second
    assert fault.counts[f"/status/{status}"] == (2 if status == 400 else 1)
    assert f"HTTP {status}" in err
    assert not out.exists()


def test_error_attributes_decide_retry(fault: FaultServer) -> None:
    http = HttpSettings(prefixes=(fault.url,), retries=1)
    budget = httpfetch.Budget(0, -1)
    with pytest.raises(BulkDataFetchError) as transient:
        httpfetch.fetch(f"{fault.url}always-503/8", http, budget)
    assert (transient.value.transient, transient.value.status) == (True, 503)
    assert transient.value.exit_code == 20
    with pytest.raises(BulkDataFetchError) as final:
        httpfetch.fetch(f"{fault.url}status/404", http, budget)
    assert (final.value.transient, final.value.status) == (False, 404)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("truncated-multipart", "invalid multipart"),
        ("two-parts", "more than one part"),
        ("wrong-part-length", "invalid multipart"),
    ],
)
def test_shape_mismatch_is_65(tmp_path: Path, fault: FaultServer, kind: str, words: str) -> None:
    rc, err, out = _run(tmp_path, fault, f"{fault.url}{kind}/100")
    assert rc == 65, err
    assert words in err
    assert "(0042,0011)" in err  # the element path
    assert fault.counts[f"/{kind}/100"] == 1  # not retried: the answer itself is wrong
    assert not out.exists()


def test_redirect_leaving_the_list_is_refused(tmp_path: Path, fault: FaultServer) -> None:
    other = FaultServer().start()
    try:
        fault.other_port = other.port  # a real server that must never be contacted
        rc, err, out = _run(tmp_path, fault, f"{fault.url}redirect-out/10")
        assert rc == 66, err
        assert "redirects to a URL that is not permitted" in err
        assert other.requests == []
        assert not out.exists()
    finally:
        other.stop()


@pytest.mark.parametrize("kind", ["ignore-range", "range"])
def test_offset_length_as_range(tmp_path: Path, fault: FaultServer, kind: str) -> None:
    rc, err, out = _run(tmp_path, fault, f"{fault.url}{kind}/1000?offset=10&length=101")
    assert rc == 0, err
    assert _value(out) == _even(pattern(1000)[10:111])
    [(path, headers)] = fault.requests
    assert path == f"/{kind}/1000"  # offset/length travel as a Range, not in the query
    assert headers["Range"] == "bytes=10-110"


def test_range_beyond_the_value_is_65(tmp_path: Path, fault: FaultServer) -> None:
    rc, err, _ = _run(tmp_path, fault, f"{fault.url}ignore-range/100?offset=90&length=20")
    assert rc == 65, err


def test_slow_body_times_out(tmp_path: Path, fault: FaultServer) -> None:
    fault.slow_seconds = 3.0
    rc, err, out = _run(
        tmp_path, fault, f"{fault.url}slow/100", "--http-timeout", "0.5", "--http-retries", "0"
    )
    assert rc == 20, err
    assert "timed out" in err.lower()
    assert not out.exists()


@pytest.mark.parametrize(
    ("limit", "words"),
    [("--max-value-bytes", "--max-value-bytes"), ("--max-dataset-bytes", "--max-dataset-bytes")],
)
def test_limits_while_bytes_arrive(
    tmp_path: Path, fault: FaultServer, limit: str, words: str
) -> None:
    rc, err, out = _run(tmp_path, fault, f"{fault.url}big/{3 << 20}", limit, str(1 << 20))
    assert rc == 65, err
    assert words in err
    assert not out.exists()


def test_outside_the_list_no_request(tmp_path: Path, fault: FaultServer) -> None:
    src = _doc(tmp_path, f"{fault.url}single/10")
    out = tmp_path / "out.dcm"
    err = io.StringIO()
    rc = main(["+Bh", f"{fault.url}other/", str(src), str(out)], stderr=err)
    assert rc == 66, err.getvalue()
    assert "+Bh" in err.getvalue()
    assert fault.requests == []


def test_without_bh_http_is_refused(tmp_path: Path, fault: FaultServer) -> None:
    src = _doc(tmp_path, f"{fault.url}single/10")
    err = io.StringIO()
    assert main([str(src), str(tmp_path / "o.dcm")], stderr=err) == 66
    assert fault.requests == []


def test_value_shared_by_elements_fetched_once(tmp_path: Path, fault: FaultServer) -> None:
    uri = f"{fault.url}big/{2 << 20}"  # past the in-memory size: the file path of the cache
    src = _doc(tmp_path, uri, uri, uri)
    out = tmp_path / "out.dcm"
    err = io.StringIO()
    assert main(["+Bh", fault.url, str(src), str(out)], stderr=err) == 0, err.getvalue()
    ds = pydicom.dcmread(out)
    assert ds[0x00420011].value == pattern(2 << 20)
    assert ds[0x00091011].value == ds[0x00091012].value == pattern(2 << 20)
    assert fault.counts[f"/big/{2 << 20}"] == 1
    httpfetch.clear_cache()


def test_credentials_only_under_their_prefix(tmp_path: Path, fault: FaultServer) -> None:
    fault.expected_auth = "Bearer t0ken-for-auth-only"
    header = tmp_path / "header"
    header.write_text("Authorization: Bearer t0ken-for-auth-only\n")
    src = _doc(tmp_path, f"{fault.url}auth/77", f"{fault.url}multi/5")
    out = tmp_path / "out.dcm"
    err = io.StringIO()
    argv = ["+Bh", fault.url, "--http-header-file", f"{fault.url}auth=" + str(header)]
    rc = main([*argv, "-d", str(src), str(out)], stderr=err)
    assert rc == 0, err.getvalue()
    assert pydicom.dcmread(out)[0x00420011].value == _even(pattern(77))
    sent = {path: h.get("Authorization") for path, h in fault.requests}
    assert sent == {"/auth/77": "Bearer t0ken-for-auth-only", "/multi/5": None}
    assert "t0ken" not in err.getvalue()  # never logged, even under -d


def test_wrong_credentials_are_20(tmp_path: Path, fault: FaultServer) -> None:
    fault.expected_auth = "Basic right"
    rc, err, _ = _run(tmp_path, fault, f"{fault.url}auth/7")
    assert rc == 20
    assert "HTTP 401" in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["+Bh", "http://u@h/"], "user information"),
        (["+Bh", "ftp://h/"], "not an absolute http"),
        (["--http-header-file", "http://h/=x"], "under no +Bh prefix"),
        (["+Bh", "http://h/", "--http-header-env", "http://h/=STREAMCONV_NO_SUCH_VAR"], "not set"),
        (["+Bh", "http://h/", "--http-timeout", "0"], "--http-timeout"),
        (["+Bh", "http://h/", "--http-retries", "-1"], "--http-retries"),
        (["--bulkdata-rewrite", "nothing"], "FROM=TO"),
    ],
)
def test_option_errors_exit_1(tmp_path: Path, argv: list[str], words: str) -> None:
    err = io.StringIO()
    assert main([*argv, "in.json", "out.dcm"], stderr=err) == 1
    assert words in err.getvalue()


def test_rewrite_maps_what_the_server_built(tmp_path: Path, fault: FaultServer) -> None:
    src = _doc(tmp_path, "http://pacs.invalid/dicom-web/multi/33")
    out = tmp_path / "out.dcm"
    err = io.StringIO()
    argv = ["+Bh", fault.url, "--bulkdata-rewrite", f"http://pacs.invalid/dicom-web/={fault.url}"]
    assert main([*argv, str(src), str(out)], stderr=err) == 0, err.getvalue()
    assert _value(out) == _even(pattern(33))


def test_large_value_memory_stays_flat(tmp_path: Path, fault: FaultServer) -> None:
    """A 256 MiB value through a subprocess: its peak RSS stays far below the value."""
    size = 256 << 20
    src = _doc(tmp_path, f"{fault.url}big/{size}")
    out = tmp_path / "big.dcm"
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork+exec from this (large)
    # pytest process; the new address space's high-water mark is the child's own
    code = (
        "import sys\n"
        "from streamconv.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
        "print(status.split()[0])\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "+Bh", fault.url, str(src), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TMPDIR": str(tmp_path / "spool")},
    )
    assert proc.returncode == 0, proc.stderr
    peak_kib = int(proc.stdout.split()[-1])
    assert peak_kib < 100 * 1024, f"peak RSS {peak_kib} KiB for a {size >> 20} MiB value"
    assert out.stat().st_size > size
    with open(out, "rb") as f:
        f.seek(out.stat().st_size - 4096)
        assert f.read() == pattern(size)[-4096:]
    out.unlink()


def _image(tmp_path: Path, **extra: object) -> Path:
    ds: dict[str, object] = {
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
        "00080018": {"vr": "UI", "Value": ["1.2.3.4.5"]},
        "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
        "0020000E": {"vr": "UI", "Value": ["1.2.3.4"]},
        "00280010": {"vr": "US", "Value": [8]},
        "00280011": {"vr": "US", "Value": [8]},
        "00280100": {"vr": "US", "Value": [8]},
        **extra,
    }
    path = tmp_path / "image.json"
    path.write_text(json.dumps(ds))
    return path


def test_fragments_written_encapsulated(tmp_path: Path, fault: FaultServer) -> None:
    from pydicom.encaps import generate_fragments

    src = _image(tmp_path, **{"7FE00010": {"vr": "OB", "BulkDataURI": f"{fault.url}fragments/99"}})
    out = tmp_path / "out.dcm"
    err = io.StringIO()
    assert main(["+Bh", fault.url, str(src), str(out)], stderr=err) == 0, err.getvalue()
    ds = pydicom.dcmread(out)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    fragments = list(generate_fragments(ds.PixelData))
    # PS3.5 A.4: the offset table item first (empty here), fragments padded to even length
    assert fragments == [b"", _even(pattern(99)), _even(pattern(99)[::-1])]


def test_frames_missing_on_the_server_warns(tmp_path: Path, fault: FaultServer) -> None:
    src = _image(tmp_path)
    out = tmp_path / "out.dcm"
    err = io.StringIO()
    argv = ["+Bh", f"{fault.url}dw/", "--fetch-frames", str(src), str(out)]
    assert main(argv, stderr=err) == 0, err.getvalue()
    assert "no frames for this image" in err.getvalue()
    assert "PixelData" not in pydicom.dcmread(out)
    [(path, headers)] = fault.requests
    assert path == "/dw/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5/frames/1"
    assert "transfer-syntax=*" in headers["Accept"]
    err = io.StringIO()
    assert main([*argv[:-2], "--require-pixel-data", *argv[-2:]], stderr=err) == 65


def test_missing_pixels_warn_only_for_dicomweb_sources(tmp_path: Path, fault: FaultServer) -> None:
    src = _image(tmp_path)
    err = io.StringIO()
    assert main(["+Bh", fault.url, str(src), str(tmp_path / "a.dcm")], stderr=err) == 0
    assert "without Pixel Data (7FE0,0010)" in err.getvalue()
    err = io.StringIO()  # a local conversion keeps DCMTK's silence
    assert main([str(src), str(tmp_path / "b.dcm")], stderr=err) == 0
    assert "Pixel Data" not in err.getvalue()
    assert fault.requests == []


def test_url_input_relative_uris_resolve_against_it(tmp_path: Path, fault: FaultServer) -> None:
    out = tmp_path / "out.dcm"
    err = io.StringIO()
    assert main(["+Bh", fault.url, f"{fault.url}doc/41", str(out)], stderr=err) == 0, err.getvalue()
    assert _value(out) == _even(pattern(41))
    assert [path for path, _ in fault.requests] == ["/doc/41", "/multi/41"]
    assert fault.requests[0][1]["Accept"] == "application/dicom+json, application/json"


def test_url_input_outside_the_list(tmp_path: Path, fault: FaultServer) -> None:
    err = io.StringIO()
    argv = ["+Bh", f"{fault.url}other/", f"{fault.url}doc/4", str(tmp_path / "o.dcm")]
    assert main(argv, stderr=err) == 66
    assert fault.requests == []
    assert not (tmp_path / "o.dcm").exists()


def test_url_input_cut_is_20_not_a_json_error(tmp_path: Path, fault: FaultServer) -> None:
    """The input stalls after 1.5 MiB: what reached the parser cannot be fetched again."""
    fault.slow_seconds = 3.0
    err = io.StringIO()
    url = f"{fault.url}doc-stall/{3 << 20}"
    argv = ["+Bh", fault.url, "--http-timeout", "0.5", url, str(tmp_path / "o.dcm")]
    assert main(argv, stderr=err) == 20, err.getvalue()
    assert "broke off after" in err.getvalue()
    assert fault.counts[f"/doc-stall/{3 << 20}"] == 1, err.getvalue()
    assert not (tmp_path / "o.dcm").exists()
