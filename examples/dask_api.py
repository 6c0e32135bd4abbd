"""streamconv's Python API on Dask: one task per group of files (tested in the suite).

    pip install "streamconv[dask]"
    python examples/dask_api.py IN_DIR OUT_DIR [--scheduler tcp://HOST:8786] [+te -e ...]

Each task converts a list of files with :func:`streamconv.convert_bytes` and writes the
outputs itself (NAME.dcm; NAME/000000.dcm ... for an input with several datasets), so only
small records travel back to the client.  ``streamconv batch`` does all of this (and byte
ranges of big files, atomic writes to object stores, a report, --resume) for you; this is
the shape to copy when conversion is one step of a pipeline of your own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from streamconv import Converted, convert_bytes, options_from_args
from streamconv.options import ArrayPolicy, ConvertOptions


def convert_files(
    paths: list[str], in_dir: str, out_dir: str, options: ConvertOptions
) -> list[dict[str, Any]]:
    """The task: runs on a Dask worker; returns one small record per dataset."""
    records: list[dict[str, Any]] = []
    for path in paths:
        data = Path(path).read_bytes()
        name = os.path.splitext(os.path.relpath(path, in_dir))[0]
        results = convert_bytes(data, options, source=path, base_dir=os.path.dirname(path))
        several = len(results) > 1
        for r in results:
            if isinstance(r, Converted):
                assert isinstance(r.data, bytes)  # outputs below 64 MiB come as bytes
                target = Path(out_dir, name, r.name) if several else Path(out_dir, name + ".dcm")
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.part")
                tmp.write_bytes(r.data)
                tmp.replace(target)  # atomic: never a partial file under the final name
                records.append({"source": path, "index": r.index, "output": str(target)})
            else:
                records.append({"source": path, "index": r.index, "exit_code": r.exit_code,
                                "message": r.message, "path": r.path})  # fmt: skip
    return records


def main(argv: list[str]) -> int:
    from distributed import Client, LocalCluster

    scheduler = None
    if "--scheduler" in argv:
        i = argv.index("--scheduler")
        scheduler = argv[i + 1]
        del argv[i : i + 2]
    in_dir, out_dir, *words = argv
    # one output per dataset, whatever the input holds (json2dcm --array-split)
    options = options_from_args(words, array_policy=ArrayPolicy.SPLIT)
    files = sorted(str(p) for p in Path(in_dir).rglob("*") if p.suffix in (".json", ".ndjson"))
    groups = [files[i : i + 200] for i in range(0, len(files), 200)]  # ~1 s of work per task
    cluster = None if scheduler else LocalCluster(n_workers=2, threads_per_worker=1)
    with Client(scheduler or cluster) as client:
        futures = client.map(convert_files, groups, in_dir=in_dir, out_dir=out_dir, options=options)
        records = [rec for recs in client.gather(futures) for rec in recs]
    if cluster is not None:
        cluster.close()
    failed = [r for r in records if "exit_code" in r]
    for r in failed:
        print(
            f"{r['source']} dataset {r['index']}: {r['exit_code']} {r['message']}", file=sys.stderr
        )
    print(f"{len(records) - len(failed)} converted, {len(failed)} failed")
    return 65 if failed else 0


if __name__ == "__main__":  # the guard matters: Dask's worker processes import this file
    raise SystemExit(main(sys.argv[1:]))
