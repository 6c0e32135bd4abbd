"""Issue 12's acceptance check on a subset (bench/roundtrip_dicomweb.py runs every file).

A fresh Orthanc (its own, so that no instance is "already stored" by the other tests), ten of
pydicom's test files chosen for what they exercise, both paths of the issue converted and every
output compared element by element with the instance the server holds. The expected verdicts
come from what the server's JSON is known to say about each file (issue 12), not from a run.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest

from .orthanc import Orthanc, orthanc_binary

BENCH = Path(__file__).resolve().parents[2] / "bench" / "roundtrip_dicomweb.py"

IDENTICAL = ("identical", "identical")
PIXELS_OMITTED = ("differ (server JSON)", "identical")  # only --fetch-frames brings them back
JSON_DEFECT = ("differ (server JSON)", "differ (server JSON)")
EXPECTED: dict[str, tuple[str, str]] = {  # name: (stream +Bh, --array-split --fetch-frames)
    "CT_small.dcm": IDENTICAL,  # private OB values served as bulk data
    "MR_small_bigendian.dcm": IDENTICAL,  # big-endian original, compared by value
    "rtdose.dcm": IDENTICAL,  # implicit VR, multi-frame native pixel data via bulk URI
    "examples_palette.dcm": IDENTICAL,  # palette LUT data: OW bulk values
    "SC_rgb_small_odd.dcm": IDENTICAL,  # odd-length values
    "rtplan.dcm": IDENTICAL,  # nested sequences, no pixel data
    "JPEG2000.dcm": PIXELS_OMITTED,
    "SC_rgb_rle_2frame.dcm": PIXELS_OMITTED,  # two frames
    # the server writes the private FL 1.4e-45 as 0 in its JSON
    "dicomdirtests/77654033/CT2/17106": JSON_DEFECT,
    # ISO 2022 IR 13: the server reads the backslash (0x5C) as a yen sign, one value
    "J2K_pixelrep_mismatch.dcm": JSON_DEFECT,
}


def _load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("roundtrip_dicomweb", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["roundtrip_dicomweb"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, Any]]]:
    if orthanc_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Orthanc and its DICOMweb plugin must be installed under CI (.ci/run)")
        pytest.skip("Orthanc with its DICOMweb plugin is not installed")
    bench = _load_bench()
    workdir = tmp_path_factory.mktemp("roundtrip")
    server = Orthanc(workdir / "orthanc")
    try:
        instances, counts = bench.roundtrip(server, workdir, list(EXPECTED))
    finally:
        server.stop()
    bench.COUNTS = counts
    yield bench, {i.name: i for i in instances.values()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_verdict(result: tuple[Any, dict[str, Any]], name: str) -> None:
    bench, by_name = result
    inst = by_name[name]
    got = (bench.verdict(inst, "stream"), bench.verdict(inst, "split"))
    reasons = inst.results["stream"][1] + inst.results["split"][1]
    assert got == EXPECTED[name], reasons
    # not one difference may be streamconv's
    assert [r for r in reasons if r.startswith("[streamconv]")] == []


def test_server_json_defects_named(result: tuple[Any, dict[str, Any]]) -> None:
    _bench, by_name = result
    tiny = by_name["dicomdirtests/77654033/CT2/17106"].defects
    assert (0x00451002,) in tiny and tiny[(0x00451002,)].startswith("json-value")
    yen = by_name["J2K_pixelrep_mismatch.dcm"].defects
    assert (0x00080008,) in yen  # ImageType: one value with yen signs, not four
    pixels = {(0x7FE00010,): "json-omits: Pixel Data (compressed original)"}
    assert by_name["JPEG2000.dcm"].defects == pixels


def test_the_check_catches_a_converter_fault(result: tuple[Any, dict[str, Any]]) -> None:
    """The comparison is not vacuous: a value changed where the JSON is faithful is blamed
    on the converter; a missing frame of encapsulated pixel data is a difference."""
    bench, by_name = result
    inst = by_name["CT_small.dcm"]
    written = copy.deepcopy(inst.original)
    written.PatientName = "Not^The^Original"
    diffs = bench.differences(inst.original, written, False, False)
    assert [t for _p, t in diffs] == [
        "(0010,0010) PatientName: 'CompressedSamples^CT1' != 'Not^The^Original'"
    ]
    assert bench.classify(inst.defects, diffs[0][0]) == "streamconv"
    rle = by_name["SC_rgb_rle_2frame.dcm"].original
    one_frame = copy.deepcopy(rle)
    frames = bench._frames(rle)
    one_frame.PixelData = pydicom.encaps.encapsulate([frames[0], frames[0]])
    texts = [t for _p, t in bench.differences(rle, one_frame, True, False)]
    assert texts == ["(7FE0,0010) PixelData: frames differ"]


def test_report_table(
    result: tuple[Any, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    """The printed table counts what the verdicts say (6 + 2 identical on the README path,
    8 with --fetch-frames; every instance whose JSON is faithful identical)."""
    bench, by_name = result
    instances = {i.orthanc_id: i for i in by_name.values()}
    bench._report(instances, bench.COUNTS, False, 0.0)
    out = capsys.readouterr().out
    assert "instances on the server: 10 in " in out
    rows = [line for line in out.splitlines() if line.startswith("| `")]
    cells = [[c.strip() for c in row.split("|")[-7:-1]] for row in rows]
    # identical | differ: JSON | differ: streamconv | failed: JSON | failed: faithful | target
    assert cells == [
        ["6", "4", "0", "0", "0", "6 of 6"],
        ["8", "2", "0", "0", "0", "8 of 8"],
    ]
