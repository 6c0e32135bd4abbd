"""Recipe (not run by the test suite): streamconv in a Ray Data pipeline.

    pip install "ray[data]" "streamconv"
    python examples/ray_recipe.py /data/json/ /data/dicom/

``read_binary_files`` gives one row per JSON input; ``map_batches`` runs
:func:`streamconv.convert_bytes` on the Ray workers and returns one row per dataset; the
bytes are written by the workers (here to a shared filesystem, atomically).
"""

from __future__ import annotations

import os
import sys
from typing import Any


def main(src: str, dest: str) -> None:
    import ray

    from streamconv import Converted, convert_bytes, options_from_args
    from streamconv.options import ArrayPolicy

    options = options_from_args(["+te"], array_policy=ArrayPolicy.SPLIT)

    def convert(batch: dict[str, Any]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"source": [], "index": [], "output": [], "exit_code": []}
        for path, data in zip(batch["path"], batch["bytes"], strict=True):
            results = convert_bytes(bytes(data), options, source=path)
            stem = os.path.splitext(os.path.basename(path))[0]
            for r in results:
                target = ""
                if isinstance(r, Converted) and isinstance(r.data, bytes):
                    target = os.path.join(dest, stem, r.name) if len(results) > 1 else (
                        os.path.join(dest, stem + ".dcm"))  # fmt: skip
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with open(target + ".part", "wb") as f:
                        f.write(r.data)
                    os.replace(target + ".part", target)
                out["source"].append(path)
                out["index"].append(r.index)
                out["output"].append(target)
                out["exit_code"].append(0 if isinstance(r, Converted) else r.exit_code)
        return out

    ds = ray.data.read_binary_files(src, include_paths=True, file_extensions=["json", "ndjson"])
    summary = ds.map_batches(convert, batch_size=200).to_pandas()
    print(summary.groupby("exit_code").size())


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
