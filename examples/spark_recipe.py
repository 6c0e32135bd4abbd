"""Recipe (not run by the test suite: PySpark needs a JVM): streamconv in a Spark job.

    pip install pyspark "streamconv"        # on the driver and every executor
    spark-submit examples/spark_recipe.py s3a://bucket/json/ s3a://bucket/dicom/

``binaryFile`` reads each JSON input as one row (path, content); ``mapInPandas`` calls
:func:`streamconv.convert_bytes` on the executors, batch by batch, and returns one row per
dataset: the Part 10 bytes (or the failure), which Spark then writes where you want them.
The options are a picklable NamedTuple, built once on the driver.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any


def main(src: str, dest: str) -> None:
    import pandas as pd
    from pyspark.sql import SparkSession

    from streamconv import Converted, convert_bytes, options_from_args
    from streamconv.options import ArrayPolicy

    options = options_from_args(["+te"], array_policy=ArrayPolicy.SPLIT)
    spark = SparkSession.builder.appName("streamconv").getOrCreate()
    files = spark.read.format("binaryFile").option("pathGlobFilter", "*.json").load(src)

    def convert(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            rows: list[dict[str, Any]] = []
            for path, content in zip(batch["path"], batch["content"], strict=True):
                for r in convert_bytes(bytes(content), options, source=path):
                    if isinstance(r, Converted):
                        rows.append({"source": path, "index": r.index, "name": r.name,
                                     "sop_instance_uid": r.sop_instance_uid, "dicom": r.data,
                                     "exit_code": 0, "message": ""})  # fmt: skip
                    else:
                        rows.append({"source": path, "index": r.index, "name": "",
                                     "sop_instance_uid": "", "dicom": None,
                                     "exit_code": r.exit_code, "message": r.message})  # fmt: skip
            yield pd.DataFrame(rows)

    schema = ("source string, index int, name string, sop_instance_uid string, dicom binary, "
              "exit_code int, message string")  # fmt: skip
    out = files.select("path", "content").mapInPandas(convert, schema=schema)
    # e.g. a table of outputs and failures (Delta/Parquet); writing each .dcm file to object
    # storage from the executors works the same way with fsspec inside convert()
    out.write.mode("overwrite").parquet(dest)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
