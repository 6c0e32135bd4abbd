"""`streamconv batch`: many inputs, on Dask distributed (or in this process with --jobs 1).

    sources.py  SOURCE arguments -> inputs (files, directories, globs, @FILE, URLs)
    plan.py     inputs -> tasks (small files grouped, big arrays/NDJSON cut into byte ranges)
    task.py     the worker side: one task converted, every output written atomically
    store.py    local paths and fsspec URLs behind one small class
    engine.py   in-process or Dask (LocalCluster, or a running scheduler)
    report.py   success.ndjson, failure.ndjson, summary.json
    command.py  the command line

Nothing here is imported by json2dcm; Dask and fsspec are imported only when used.
"""

from __future__ import annotations

__all__: list[str] = []
