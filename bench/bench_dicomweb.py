"""DICOMweb bulk data over loopback from a real Orthanc (issue 12).

1. A 100 MB pixel value: `json2dcm +Bh` on the instance's WADO-RS metadata, against `curl`
   downloading the same bulk data URL to a file in the same run (wall ratio, target <= 1.5;
   json2dcm's peak RSS, target < 64 MiB); then the same with the (FFFC,FFFC) padding of the
   MR_small template kept, a second bulk value (one more server round, fetched side by side).
   A first round of each warms the .pyc files and the server's storage and is dropped.
2. A 200-instance study with 3 bulk values each: the study's metadata converted with
   `--array-split` (worker processes, one connection pool each): instances/s.

Needs Orthanc and its DICOMweb plugin (apt-get install orthanc orthanc-dicomweb).

    python bench/bench_dicomweb.py [--repeat 3] [--instances 200]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import warnings
from pathlib import Path

import pydicom
from benchlib import (
    REPO,
    Row,
    fmt_mib,
    machine_info,
    median_run,
    print_table,
    run,
    script,
    use_bytecode_cache,
    verdict,
    write_json_line,
)
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

sys.path.insert(0, str(REPO / "tests" / "dicomweb"))
from orthanc import Orthanc, orthanc_binary

SIDE = 7240  # 7240 x 7240 x 16 bit = 104,835,200 bytes of pixel data


def _template() -> pydicom.Dataset:
    path = get_testdata_file("MR_small.dcm")
    assert isinstance(path, str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def _big_instance(workdir: Path, padding: bool) -> tuple[Path, pydicom.Dataset]:
    """MR_small grown to 100 MB of pixels; ``padding`` keeps its (FFFC,FFFC) Data Set Trailing
    Padding, which WADO-RS serves as a second bulk value (Orthanc parses the whole instance
    for each bulk request: a second server round)."""
    ds = _template()
    if not padding:
        del ds[0xFFFCFFFC]
    ds.Rows = ds.Columns = SIDE
    row = bytes(range(256)) * (SIDE * 2 // 256) + bytes(range(SIDE * 2 % 256))
    ds.PixelData = row * SIDE
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    path = workdir / f"big-{padding}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, ds


def _study(workdir: Path, count: int) -> tuple[list[Path], str]:
    base = _template()
    for tag in [t for t in base.keys() if t.is_private]:  # noqa: SIM118 (Dataset: keys are tags)
        del base[tag]
    study, series = generate_uid(), generate_uid()
    paths = []
    for i in range(count):
        ds = copy.deepcopy(base)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = i + 1
        # two more binary values: WADO-RS metadata gives every OB/OW value as a BulkDataURI
        block = ds.private_block(0x0009, "STREAMCONV BENCH", create=True)
        block.add_new(0x01, "OB", bytes([i % 256]) * 4096)
        block.add_new(0x02, "OB", bytes([(i + 1) % 256]) * 512)
        path = workdir / f"s{i:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths, study


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--instances", type=int, default=200)
    args = p.parse_args()
    if orthanc_binary() is None:
        raise SystemExit("bench: Orthanc and orthanc-dicomweb are not installed")
    with tempfile.TemporaryDirectory(prefix="bench-dicomweb-") as tmp:
        workdir = Path(tmp)
        use_bytecode_cache(workdir)
        server = Orthanc(workdir / "orthanc")
        try:
            return _bench(server, workdir, args.repeat, args.instances)
        finally:
            server.stop()


def _big(
    server: Orthanc,
    workdir: Path,
    auth: list[str],
    json2dcm: str,
    repeat: int,
    padding: bool,
    figures: dict[str, float],
) -> list[Row]:
    big, ds = _big_instance(workdir, padding)
    server.upload(big)
    big.unlink()
    instance = (
        f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    meta = workdir / "big.json"
    meta.write_bytes(server.get(instance + "/metadata"))
    bulk_url = server.root + instance + "/bulk/7fe00010"
    out = workdir / "big-out.dcm"
    curl_out = workdir / "curl.bin"
    curl = [
        "curl", "-sS", "--fail", "-u", f"{server.user}:{server.password}", "-o", str(curl_out),
        "-H", 'Accept: multipart/related; type="application/octet-stream"', bulk_url,
    ]  # fmt: skip
    ours, theirs = [], []
    for _ in range(repeat + 1):  # interleaved: both see the same machine load
        theirs.append(run(curl))
        ours.append(run([json2dcm, *auth, str(meta), str(out)]))
        out.unlink()
        curl_out.unlink()
    # the first round warms the .pyc files and the server's storage, and is dropped
    a, b = median_run(ours[1:]), median_run(theirs[1:])
    ratio = a.wall / b.wall
    label = "100 MB pixel value" + (" + (FFFC,FFFC) padding: 2 bulk values" if padding else "")
    key = "padded_" if padding else "big_"
    figures.update({
        f"{key}wall_s": a.wall, f"{key}curl_wall_s": b.wall, f"{key}ratio": ratio,
        f"{key}peak_rss_kib": a.maxrss,
    })  # fmt: skip
    return [
        Row(f"{label}: wall", f"{a.wall:.2f} s", f"curl {b.wall:.2f} s",
            f"{ratio:.2f}x", "<= 1.5x", verdict(ratio <= 1.5)),
        Row(f"{label}: peak RSS", fmt_mib(a.maxrss), f"curl {fmt_mib(b.maxrss)}",
            "", "< 64 MiB", verdict(a.maxrss < 64 * 1024)),
    ]  # fmt: skip


def _bench(server: Orthanc, workdir: Path, repeat: int, instances: int) -> int:
    header = workdir / "auth"
    header.write_text(f"Authorization: {server.auth_header}\n")
    auth = ["+Bh", server.dicomweb, "--http-header-file", f"{server.dicomweb}={header}"]
    json2dcm = script("json2dcm")

    rows = []
    figures: dict[str, float] = {}
    for padding in (False, True):
        rows += _big(server, workdir, auth, json2dcm, repeat, padding, figures)
    paths, study = _study(workdir, instances)
    for path in paths:
        server.upload(path)
        path.unlink()
    doc = workdir / "study.json"
    doc.write_bytes(server.get(f"/dicom-web/studies/{study}/metadata"))
    split = []
    for i in range(repeat):
        out_dir = workdir / f"study-out-{i}"
        split.append(run([json2dcm, *auth, "--array-split", str(doc), str(out_dir)]))
        written = len(list(out_dir.iterdir()))
        assert written == instances, f"{written} of {instances} written"
    s = median_run(split)
    rate = instances / s.wall
    rows.append(
        Row(f"{instances}-instance study, 3 bulk values each (--array-split)",
            f"{rate:.0f} instances/s", f"{s.wall:.2f} s", "", "", "")
    )  # fmt: skip
    print_table("DICOMweb bulk data over loopback (Orthanc 1.10, DICOMweb plugin)", rows)
    figures.update({"study_instances_per_s": rate, "study_wall_s": s.wall})
    write_json_line("dicomweb", figures, rows)
    print(machine_info())
    return 0


if __name__ == "__main__":
    sys.exit(main())
