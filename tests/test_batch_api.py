"""The plain Python API (issue 13, item 1): convert_bytes, options, results, convert_url.

Expected bytes come from json2dcm run as a real process on the same input and options.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from batchlib import UNSUPPORTED, bad_dataset, dataset, json2dcm, ndjson, tree

from streamconv import Converted, Failed, convert_bytes, convert_url, options_from_args
from streamconv.api import make_options
from streamconv.errors import UsageError
from streamconv.options import ArrayPolicy, ConvertOptions, TransferSyntax


def _reference(tmp_path: Path, data: bytes, *opts: str) -> bytes:
    src = tmp_path / "ref-in.json"
    src.write_bytes(data)
    out = tmp_path / "ref-out.dcm"
    run = json2dcm(*opts, src, out)
    assert run.returncode == 0, run.stderr
    return out.read_bytes()


@pytest.mark.parametrize("words", [[], ["+te", "-e"], ["+tb"], ["+ti", "-u"], ["+td", "+cl", "1"]])
def test_one_dataset_matches_json2dcm(tmp_path: Path, words: list[str]) -> None:
    data = json.dumps(dataset(0)).encode()
    (result,) = convert_bytes(data, options_from_args(words), source="ct.json")
    assert isinstance(result, Converted) and result.ok
    assert result.data == _reference(tmp_path, data, *words)
    assert result.index == 0
    assert result.name == "ct.dcm"
    assert result.sop_instance_uid == "1.2.826.0.1.3680043.10.1.1"
    assert result.size == len(result.data)


def test_keyword_options_equal_option_words() -> None:
    assert make_options(transfer_syntax=TransferSyntax.LITTLE, explicit_length=False) == (
        options_from_args(["+te", "-e"])
    )
    assert options_from_args(["+te"], explicit_length=False) == options_from_args(["+te", "-e"])


def test_option_errors_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        options_from_args(["+nonsense"])
    with pytest.raises(UsageError):
        options_from_args(["+te", "input.json"])  # a file among the options
    with pytest.raises(UsageError):
        make_options(transfer_sintax=TransferSyntax.BIG)  # a typo must not pass silently
    with pytest.raises(UsageError):
        options_from_args(["+Uo"])  # +Uo only with +Ug (json2dcm's conflict, exit 1)


def test_split_results_per_dataset_match_array_split(tmp_path: Path) -> None:
    """--array-split: every good dataset converted as json2dcm --array-split writes it, the
    bad ones reported with their index, exit code, category and element path."""
    items = [dataset(0), bad_dataset(1), dataset(2), bad_dataset(3, UNSUPPORTED), dataset(4)]
    data = ndjson(items)
    good = ndjson([items[0], items[2], items[4]])
    src = tmp_path / "good.ndjson"
    src.write_bytes(good)
    run = json2dcm("--array-split", "+te", src, tmp_path / "ref")
    assert run.returncode == 0, run.stderr
    ref = tree(tmp_path / "ref")
    results = convert_bytes(data, options_from_args(["--array-split", "+te"]), source="s.ndjson")
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    ok = [r for r in results if isinstance(r, Converted)]
    assert [r.name for r in ok] == ["000000.dcm", "000002.dcm", "000004.dcm"]
    # the reference numbers its three datasets 0, 1, 2
    assert [r.data for r in ok] == [ref["000000.dcm"], ref["000001.dcm"], ref["000002.dcm"]]
    bad = [r for r in results if isinstance(r, Failed)]
    assert [(r.index, r.exit_code, r.category) for r in bad] == [
        (1, 65, "content"),
        (3, 66, "unsupported-uri"),
    ]
    assert "(0010,0010)" in bad[0].path and bad[0].path.startswith("dataset 2")
    assert "(7FE0,0010)" in bad[1].path
    assert bad[0].source == "s.ndjson"


def test_reject_policy_fails_the_input_as_json2dcm(tmp_path: Path) -> None:
    data = ndjson([dataset(0), dataset(1)])
    src = tmp_path / "two.ndjson"
    src.write_bytes(data)
    run = json2dcm(src, tmp_path / "x.dcm")
    (result,) = convert_bytes(data, ConvertOptions(), source=str(src))
    assert isinstance(result, Failed)
    assert result.index is None and result.exit_code == run.returncode == 65
    assert not (tmp_path / "x.dcm").exists()


def test_invalid_json_is_a_result_never_an_exception() -> None:
    (result,) = convert_bytes(b'{"00100010": {"vr": "PN", "Value": [', ConvertOptions())
    assert isinstance(result, Failed) and result.exit_code == 65
    assert result.category == "json-syntax"


def test_large_output_comes_back_as_a_spooled_file(tmp_path: Path) -> None:
    data = json.dumps(dataset(0)).encode()
    (small,) = convert_bytes(data, ConvertOptions())
    (big,) = convert_bytes(data, ConvertOptions(), spool_threshold=100)
    assert isinstance(small, Converted) and isinstance(small.data, bytes)
    assert isinstance(big, Converted) and big.data is not None
    assert not isinstance(big.data, bytes)  # a file object, its owner closes it
    with big.data as f:
        assert f.read() == small.data
    assert big.size == len(small.data)


def test_options_and_results_pickle() -> None:
    opts = options_from_args(["+te", "--array-split", "+Bd", "/tmp"])
    assert pickle.loads(pickle.dumps(opts)) == opts
    results = convert_bytes(ndjson([dataset(0), bad_dataset(1)]), opts)
    assert pickle.loads(pickle.dumps(results)) == results


def test_chunks_in_any_size_give_the_same_bytes() -> None:
    data = ndjson([dataset(i) for i in range(3)])
    opts = options_from_args(["--array-split"])
    whole = convert_bytes(data, opts)
    pieces = convert_bytes((data[i : i + 7] for i in range(0, len(data), 7)), opts)
    assert all(isinstance(r, Converted) for r in whole + pieces)
    assert [getattr(r, "data", None) for r in whole] == [getattr(r, "data", None) for r in pieces]


def test_convert_url_local_and_memory(tmp_path: Path) -> None:
    data = ndjson([dataset(0), dataset(1)])
    src = tmp_path / "in.ndjson"
    src.write_bytes(data)
    opts = options_from_args(["--array-split"])
    local = convert_url(str(src), str(tmp_path / "out"), opts)
    assert [r.ok for r in local] == [True, True]
    run = json2dcm("--array-split", src, tmp_path / "ref")
    assert run.returncode == 0, run.stderr
    assert tree(tmp_path / "out") == tree(tmp_path / "ref")
    # a URL on both sides: fsspec's in-memory filesystem (a real fsspec backend)
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe_file("/api-test/in.ndjson", data)
    remote = convert_url("memory://api-test/in.ndjson", "memory://api-test/out", opts)
    assert all(isinstance(r, Converted) for r in remote)
    assert fs.cat_file("/api-test/out/000001.dcm") == tree(tmp_path / "ref")["000001.dcm"]
    missing = convert_url("memory://api-test/nothing.json", "memory://api-test/o.dcm", opts)
    assert [(r.index, r.exit_code) for r in missing if isinstance(r, Failed)] == [(None, 20)]


def test_api_imports_no_event_loop_and_no_engine() -> None:
    code = (
        "import sys, json\n"
        "from streamconv import convert_bytes, options_from_args\n"
        "r = convert_bytes(open(sys.argv[1], 'rb').read(), options_from_args(['+te']))\n"
        "assert r[0].ok, r\n"
        "print(json.dumps(sorted(m for m in ('anyio', 'asyncio', 'dask', 'distributed', 'fsspec')"
        " if m in sys.modules)))\n"
    )
    path = Path(__file__).resolve().parent.parent / "examples" / "ct.json"
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == []


def test_policy_sequence_is_one_output() -> None:
    results = convert_bytes(
        ndjson([dataset(0), dataset(1)]), options_from_args(["+ar"]), source="x.ndjson"
    )
    assert len(results) == 1 and isinstance(results[0], Converted)
    assert results[0].name == "x.dcm" and results[0].index == -1
    assert options_from_args(["+ar"]).array_policy is ArrayPolicy.SEQUENCE
