"""Big inputs cut into byte ranges at dataset boundaries (issue 13): every cut exact, also
where the JSON pre-pass changes offsets (trailing commas, a BOM, CRLF and blank lines),
and a structure broken in the middle costs only what follows the break."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from batchlib import dataset, json2dcm, lines, streamconv, tree

from streamconv.batch.plan import Scan, scan_input
from streamconv.options import Limits

N = 320  # ~4.4 MB of headers: above the size that is scanned for cuts


def _text(i: int) -> bytes:
    return json.dumps(dataset(i), separators=(",", ":")).encode()


VARIANTS = {
    "trailing-comma.json": b"[" + b",".join(_text(i) for i in range(N)) + b",]",
    "bom.json": b"\xef\xbb\xbf[" + b",\n".join(_text(i) for i in range(N)) + b"]",
    "crlf.ndjson": b"\r\n".join(_text(i) + (b"\r\n" if i % 7 == 0 else b"") for i in range(N)),
    "paged.json": b"[" + b",".join(_text(i) for i in range(N // 2)) + b"]\n["
    + b",".join(_text(i) for i in range(N // 2, N)) + b"]",
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_split_outputs_equal_array_split(tmp_path: Path, name: str) -> None:
    src = tmp_path / "in" / name
    src.parent.mkdir()
    src.write_bytes(VARIANTS[name])
    ref = tmp_path / "ref"
    run = json2dcm("--array-split", src, ref)
    assert run.returncode == 0, run.stderr
    out, report = tmp_path / "out", tmp_path / "report"
    run = streamconv("batch", src, "-o", out, "--report", report, "-j", "1", "--batch-size", "50")
    assert run.returncode == 0, run.stderr
    stem = name.rsplit(".", 1)[0]
    assert tree(out / stem) == tree(ref)
    assert sorted(x["index"] for x in lines(report / "success.ndjson")) == list(range(N))
    assert json.loads((report / "summary.json").read_text())["tasks"] == -(-N // 50)  # cut


def test_cuts_are_exact_offsets() -> None:
    data = VARIANTS["crlf.ndjson"]
    items = list(scan_input(lambda: [data[i : i + 65536] for i in range(0, len(data), 65536)],
                            100, Limits(), "x"))  # fmt: skip
    *cuts, end = items
    assert end == Scan("values", N)
    assert [c[0] for c in cuts if not isinstance(c, Scan)] == [100, 200, 300]
    for cut in cuts:
        assert not isinstance(cut, Scan)
        index, offset, _ = cut
        assert data[offset:].startswith(_text(index))  # exactly where the dataset begins


def test_broken_structure_costs_what_follows(tmp_path: Path) -> None:
    body = b"\n".join(_text(i) for i in range(N)).replace(_text(250), _text(250) + b" ]", 1)
    src = tmp_path / "broken.ndjson"
    src.write_bytes(body)
    out, report = tmp_path / "out", tmp_path / "report"
    run = streamconv("batch", src, "-o", out, "--report", report, "-j", "1", "--batch-size", "50")
    assert run.returncode == 65, run.stderr
    done = sorted(x["index"] for x in lines(report / "success.ndjson"))
    assert done == list(range(251))  # everything up to and including the last good dataset
    (bad,) = lines(report / "failure.ndjson")
    assert (bad["index"], bad["exit_code"], bad["category"]) == (251, 65, "json-syntax")
    assert len(tree(out / "broken")) == 251
