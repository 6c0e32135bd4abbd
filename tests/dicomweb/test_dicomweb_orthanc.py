"""Round trips through a real DICOMweb server (Orthanc + its DICOMweb plugin, Debian packages).

Real files from pydicom's test data go in through Orthanc's REST API; their WADO-RS metadata
comes back as DICOM JSON whose bulk values are absolute http URIs; json2dcm with ``+Bh``
fetches them and must write every element the original has, with the original's value.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames

from streamconv.cli import main

from .orthanc import Orthanc

NATIVE = [
    "CT_small.dcm",  # explicit little endian, private OB values served as bulk data
    "MR_small.dcm",
    "rtdose_1frame.dcm",  # implicit VR original
    "SC_rgb_small_odd.dcm",  # odd-length values
    "liver_1frame.dcm",
    "examples_palette.dcm",  # palette LUT data (OW bulk values)
    "rtplan.dcm",  # no pixel data at all, nested sequences
]
BIG_ENDIAN = ["MR_small_bigendian.dcm", "SC_rgb_small_odd_big_endian.dcm"]
# the server omits Pixel Data from the metadata of these (it cannot decode them)
COMPRESSED = {"JPEG2000.dcm": 1, "SC_rgb_rle_2frame.dcm": 2}


class Loaded:
    def __init__(self, server: Orthanc, workdir: Path) -> None:
        self.server = server
        self.workdir = workdir
        self.header = workdir / "auth-header"
        self.header.write_text(f"Authorization: {server.auth_header}\n")
        self.originals: dict[str, pydicom.Dataset] = {}

    def load(self, name: str) -> pydicom.Dataset:
        path = get_testdata_file(name)
        assert isinstance(path, str)
        ds = _read(path)
        self.server.upload(path)
        self.originals[name] = ds
        return ds

    def instance_path(self, ds: pydicom.Dataset) -> str:
        return (
            f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}"
        )

    def metadata(self, name: str) -> Path:
        ds = self.originals[name]
        out = self.workdir / f"{name}.json"
        out.write_bytes(self.server.get(self.instance_path(ds) + "/metadata"))
        return out

    def auth_args(self) -> list[str]:
        url = self.server.dicomweb
        return ["+Bh", url, "--http-header-file", f"{url}={self.header}"]


@pytest.fixture(scope="module")
def loaded(orthanc: Orthanc, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    state = Loaded(orthanc, tmp_path_factory.mktemp("dicomweb"))
    for name in [*NATIVE, *BIG_ENDIAN, *COMPRESSED]:
        state.load(name)
    yield state


def _read(path: str | Path) -> pydicom.Dataset:
    # pydicom warns about the test files' own odd values (rtdose's over-long UI): not ours
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        ds.walk(lambda _ds, _elem: None)  # convert every raw element while warnings are off
        return ds


def _convert(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    rc = main(argv, stderr=err)
    return rc, err.getvalue()


def _differences(original: pydicom.Dataset, written: pydicom.Dataset) -> list[str]:
    """Every element of the original must be in the output with an equal value."""
    out = []
    for elem in original:
        if elem.tag not in written:
            out.append(f"{elem.tag} missing")
        elif written[elem.tag].value != elem.value:
            out.append(
                f"{elem.tag} {elem.keyword}: {elem.value!r:.60} != {written[elem.tag].value!r:.60}"
            )
    return out


@pytest.mark.parametrize("name", NATIVE)
def test_native_instance_round_trip(loaded: Loaded, tmp_path: Path, name: str) -> None:
    out = tmp_path / "out.dcm"
    rc, err = _convert([*loaded.auth_args(), str(loaded.metadata(name)), str(out)])
    assert rc == 0, err
    original = loaded.originals[name]
    written = _read(out)
    assert _differences(original, written) == []
    if "PixelData" in original:
        assert written.PixelData == original.PixelData


@pytest.mark.parametrize("name", BIG_ENDIAN)
def test_big_endian_original_round_trip(loaded: Loaded, tmp_path: Path, name: str) -> None:
    """PS3.18 bulk data is little endian; +tb swaps it back to the original's bytes."""
    out = tmp_path / "out.dcm"
    rc, err = _convert([*loaded.auth_args(), "+tb", str(loaded.metadata(name)), str(out)])
    assert rc == 0, err
    original = loaded.originals[name]
    written = _read(out)
    assert written.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRBigEndian
    assert _differences(original, written) == []
    assert written.PixelData == original.PixelData


def test_without_credentials_the_server_says_401(loaded: Loaded, tmp_path: Path) -> None:
    out = tmp_path / "out.dcm"
    rc, err = _convert(["+Bh", loaded.server.dicomweb, str(loaded.metadata(NATIVE[0])), str(out)])
    assert rc == 20, err
    assert "HTTP 401" in err
    assert not out.exists()


def test_basic_auth_file(loaded: Loaded, tmp_path: Path) -> None:
    secret = tmp_path / "basic"
    secret.write_text(f"{loaded.server.user}:{loaded.server.password}\n")
    url = loaded.server.dicomweb
    out = tmp_path / "out.dcm"
    argv = ["+Bh", url, "--http-basic-file", f"{url}={secret}"]
    rc, err = _convert([*argv, str(loaded.metadata("MR_small.dcm")), str(out)])
    assert rc == 0, err
    assert _read(out).PixelData == loaded.originals["MR_small.dcm"].PixelData


def test_netrc(loaded: Loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(
        f"machine 127.0.0.1 login {loaded.server.user} password {loaded.server.password}\n"
    )
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    out = tmp_path / "out.dcm"
    argv = ["+Bh", loaded.server.dicomweb, "--http-netrc"]
    rc, err = _convert([*argv, str(loaded.metadata("CT_small.dcm")), str(out)])
    assert rc == 0, err
    assert _read(out).PixelData == loaded.originals["CT_small.dcm"].PixelData


def test_header_from_environment(
    loaded: Loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMCONV_TEST_AUTH", f"Authorization: {loaded.server.auth_header}")
    url = loaded.server.dicomweb
    out = tmp_path / "out.dcm"
    argv = ["+Bh", url, "--http-header-env", f"{url}=STREAMCONV_TEST_AUTH"]
    rc, err = _convert([*argv, str(loaded.metadata("liver_1frame.dcm")), str(out)])
    assert rc == 0, err
    assert _differences(loaded.originals["liver_1frame.dcm"], _read(out)) == []


def test_study_metadata_array_split(loaded: Loaded, tmp_path: Path) -> None:
    """A whole study's metadata (one JSON array), one file per instance, worker processes."""
    ds = loaded.originals["CT_small.dcm"]
    doc = tmp_path / "study.json"
    doc.write_bytes(loaded.server.get(f"/dicom-web/studies/{ds.StudyInstanceUID}/metadata"))
    out_dir = tmp_path / "out"
    argv = [*loaded.auth_args(), "--array-split", "--filename-template", "{SOPInstanceUID}.dcm"]
    proc = subprocess.run(
        [sys.executable, "-m", "streamconv", "convert", *argv, str(doc), str(out_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    written = _read(out_dir / f"{ds.SOPInstanceUID}.dcm")
    assert _differences(ds, written) == []


def test_stream_front_end(loaded: Loaded, tmp_path: Path) -> None:
    """The README's pipeline: WADO-RS metadata piped into `streamconv stream` with +Bh."""
    name = "MR_small.dcm"
    out_dir = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "streamconv", "stream", "--output-dir", str(out_dir),
         *loaded.auth_args(), "--filename-template", "{SOPInstanceUID}.dcm"],
        input=loaded.metadata(name).read_bytes(),
        capture_output=True,
        timeout=120,
        env={**os.environ},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    original = loaded.originals[name]
    written = _read(out_dir / f"{original.SOPInstanceUID}.dcm")
    assert _differences(original, written) == []


def _frames(ds: pydicom.Dataset, count: int) -> list[bytes]:
    return list(generate_frames(ds.PixelData, number_of_frames=count))


@pytest.mark.parametrize("name", sorted(COMPRESSED))
def test_compressed_without_pixels_warns(loaded: Loaded, tmp_path: Path, name: str) -> None:
    out = tmp_path / "out.dcm"
    rc, err = _convert([*loaded.auth_args(), str(loaded.metadata(name)), str(out)])
    assert rc == 0, err
    assert "without Pixel Data (7FE0,0010)" in err
    assert "PixelData" not in _read(out)
    rc, err = _convert(
        [*loaded.auth_args(), "--require-pixel-data", str(loaded.metadata(name)), str(out)]
    )
    assert rc == 65, err


@pytest.mark.parametrize("name", sorted(COMPRESSED))
def test_compressed_via_fetch_frames(loaded: Loaded, tmp_path: Path, name: str) -> None:
    """Frames retrieval with transfer-syntax=*: the original compressed frames, encapsulated
    under the transfer syntax the server declares; identical frame by frame."""
    out = tmp_path / "out.dcm"
    argv = [*loaded.auth_args(), "--fetch-frames", str(loaded.metadata(name)), str(out)]
    rc, err = _convert(argv)
    assert rc == 0, err
    original, written = loaded.originals[name], _read(out)
    assert written.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    count = COMPRESSED[name]
    assert _frames(written, count) == _frames(original, count)
    # every other element identical; the offset table and fragmentation are free (issue 12)
    others = [d for d in _differences(original, written) if not d.startswith("(7FE0,0010)")]
    assert others == []


def test_compressed_via_bulk_fragments(loaded: Loaded, tmp_path: Path) -> None:
    """Pixel Data's bulk URI answered with one part per fragment (offset table first)."""
    import json

    name = "JPEG2000.dcm"
    original = loaded.originals[name]
    doc = json.loads(loaded.metadata(name).read_text())[0]
    url = loaded.server.root + loaded.instance_path(original) + "/bulk/7fe00010"
    doc["7FE00010"] = {"vr": "OB", "BulkDataURI": url}
    # Orthanc's parts carry no transfer-syntax parameter: the JSON's (0002,0010) names it
    doc["00020010"] = {"vr": "UI", "Value": [original.file_meta.TransferSyntaxUID]}
    src = tmp_path / "in.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / "out.dcm"
    rc, err = _convert([*loaded.auth_args(), str(src), str(out)])
    assert rc == 0, err
    written = _read(out)
    assert written.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert _frames(written, 1) == _frames(original, 1)
    rc, err = _convert([*loaded.auth_args(), "+te", str(src), str(tmp_path / "te.dcm")])
    assert rc == 40, err
    assert "nothing is decompressed" in err
    assert not (tmp_path / "te.dcm").exists()


def test_input_url_with_fetch_frames(loaded: Loaded, tmp_path: Path) -> None:
    """json2dcm reads the instance's metadata URL itself; its frames come from there."""
    name = "JPEG2000.dcm"
    original = loaded.originals[name]
    url = loaded.server.root + loaded.instance_path(original) + "/metadata"
    out = tmp_path / "out.dcm"
    rc, err = _convert([*loaded.auth_args(), "--fetch-frames", url, str(out)])
    assert rc == 0, err
    assert _frames(_read(out), 1) == _frames(original, 1)


def test_study_url_array_split_with_fetch_frames(loaded: Loaded, tmp_path: Path) -> None:
    name = "SC_rgb_rle_2frame.dcm"
    original = loaded.originals[name]
    url = f"{loaded.server.dicomweb}studies/{original.StudyInstanceUID}/metadata"
    out_dir = tmp_path / "out"
    argv = [*loaded.auth_args(), "--fetch-frames", "--array-split",
            "--filename-template", "{SOPInstanceUID}.dcm", url, str(out_dir)]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "streamconv", "convert", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    written = _read(out_dir / f"{original.SOPInstanceUID}.dcm")
    assert written.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert _frames(written, 2) == _frames(original, 2)
