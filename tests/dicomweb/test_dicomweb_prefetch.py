"""A dataset's http bulk values are fetched side by side (httpfetch.prefetch): a server that
is slow before the first byte of each value (Orthanc parses the whole instance per bulk
request) is paid once, not once per value.  Errors still come in element order, refused URIs
are never requested, and what a failed dataset prefetched is stopped and removed."""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from streamconv.cli import main
from streamconv.core import httpfetch

from .faultserver import FaultServer, pattern

HEAD = (
    '{"00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.104.1"]},'
    ' "00080018": {"vr": "UI", "Value": ["1.2.3.4"]},'
    ' "00090010": {"vr": "LO", "Value": ["STREAMCONV TEST"]}'
)


@pytest.fixture(autouse=True)
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "spool"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    yield path
    httpfetch.clear_cache()


def _doc(tmp_path: Path, *elements: str) -> Path:
    src = tmp_path / "in.json"
    src.write_text(HEAD + "".join(", " + e for e in elements) + "}")
    return src


def _bulk(tag: str, uri: str) -> str:
    return f'"{tag}": {{"vr": "OB", "BulkDataURI": "{uri}"}}'


def _convert(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    return main(argv, stderr=err), err.getvalue()


def test_two_values_are_in_flight_at_once(tmp_path: Path, fault: FaultServer) -> None:
    """The server answers a "together" request only while another one is open: fetched one
    after the other, the first would get 400 (exit 20)."""
    src = _doc(
        tmp_path,
        _bulk("00091010", f"{fault.url}together/1000"),
        _bulk("00091011", f"{fault.url}together/3000"),
    )
    out = tmp_path / "out.dcm"
    rc, err = _convert(["+Bh", fault.url, str(src), str(out)])
    assert rc == 0, err
    ds = pydicom.dcmread(out)
    assert ds[0x00091010].value == pattern(1000)
    assert ds[0x00091011].value == pattern(3000)
    assert fault.counts == {"/together/1000": 1, "/together/3000": 1}


def test_a_refused_uri_is_never_requested(tmp_path: Path, fault: FaultServer) -> None:
    src = _doc(
        tmp_path,
        _bulk("00091010", f"{fault.url}multi/100"),
        _bulk("00091011", f"{fault.url}single/16"),  # outside the +Bh prefix below
    )
    out = tmp_path / "out.dcm"
    rc, err = _convert(["+Bh", f"{fault.url}multi/", str(src), str(out)])
    assert rc == 66, err
    assert "/single/16" not in fault.counts
    assert not out.exists()


def test_errors_keep_element_order(tmp_path: Path, fault: FaultServer) -> None:
    """The first failing element is the one reported, though a later one failed too."""
    src = _doc(
        tmp_path,
        _bulk("00091010", f"{fault.url}status/404"),
        _bulk("00091011", f"{fault.url}status/403"),
    )
    rc, err = _convert(["+Bh", fault.url, str(src), str(tmp_path / "out.dcm")])
    assert rc == 20, err
    assert "(0009,1010)" in err and "HTTP 404" in err
    assert "(0009,1011)" not in err


def test_a_failed_dataset_leaves_no_prefetched_file(
    tmp_path: Path, fault: FaultServer, spool: Path
) -> None:
    """A content error between two large values: the second, prefetched, is stopped and its
    temporary file removed; nothing is written."""
    src = _doc(
        tmp_path,
        _bulk("00091010", f"{fault.url}big/{3 << 20}"),
        '"00280010": {"vr": "US", "Value": ["not a number"]}',
        _bulk("00091011", f"{fault.url}big/{4 << 20}"),
    )
    out = tmp_path / "out.dcm"
    rc, err = _convert(["+Bh", fault.url, str(src), str(out)])
    assert rc == 65, err
    assert "(0028,0010)" in err
    assert not out.exists()
    # the cancelled fetch ends at its next chunk and frees its file from its own thread
    deadline = time.monotonic() + 30
    while list(spool.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(spool.iterdir()) == []


def test_a_fetched_value_of_a_failed_dataset_is_removed(
    tmp_path: Path, fault: FaultServer, spool: Path
) -> None:
    """One value (no prefetch), spilled to a file past 1 MiB, then a content error: the file
    goes with the dataset (it was left in the temporary folder before)."""
    src = _doc(
        tmp_path,
        _bulk("00091010", f"{fault.url}big/{3 << 20}"),
        '"00280010": {"vr": "US", "Value": ["not a number"]}',
    )
    rc, err = _convert(["+Bh", fault.url, str(src), str(tmp_path / "out.dcm")])
    assert rc == 65, err
    assert list(spool.iterdir()) == []


def test_fragments_of_a_refused_encode_are_removed(
    tmp_path: Path, fault: FaultServer, spool: Path
) -> None:
    """Encapsulated pixel data fetched, then +te (native) refused at encoding: exit 40 and
    the fragments' file removed."""
    src = _doc(
        tmp_path,
        '"00280010": {"vr": "US", "Value": [1]}',
        '"00280011": {"vr": "US", "Value": [1]}',
        _bulk("7FE00010", f"{fault.url}fragments/{2 << 20}"),
    )
    out = tmp_path / "out.dcm"
    rc, err = _convert(["+Bh", fault.url, "+te", str(src), str(out)])
    assert rc == 40, err
    assert not out.exists()
    assert list(spool.iterdir()) == []
