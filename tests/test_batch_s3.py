"""`streamconv batch` against S3: a real S3 server on loopback (moto in server mode).

Inputs are read from a bucket (a big NDJSON in byte ranges by the tasks of two worker
processes), outputs and the report written to buckets; --storage-option endpoint_url
and the usual AWS environment variables reach the workers.  Outputs are compared byte for
byte with json2dcm run locally on the same inputs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from batchlib import dataset, free_port, json2dcm, ndjson, streamconv, tree

BIG = 400  # datasets of the NDJSON cut into byte ranges (--batch-size 100: four ranges)

moto_server = pytest.importorskip("moto.server", reason="moto[server] is installed by .ci/run")


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    import boto3

    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    try:
        yield endpoint, client
    finally:
        server.stop()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    env.pop("AWS_PROFILE", None)
    return env


def _objects(client: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            out[key[len(prefix) :]] = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    return out


def test_s3_in_s3_out(tmp_path: Path, s3: tuple[str, Any]) -> None:
    endpoint, client = s3
    for bucket in ("inbox", "outbox"):
        client.create_bucket(Bucket=bucket)
    local = tmp_path / "in"
    (local / "sub").mkdir(parents=True)
    (local / "a.json").write_text(json.dumps(dataset(0)))
    (local / "sub" / "b.json").write_text(json.dumps(dataset(1)))
    (local / "big.ndjson").write_bytes(ndjson(dataset(100 + i) for i in range(BIG)))
    for path in local.rglob("*"):
        if path.is_file():
            key = "studies/" + str(path.relative_to(local))
            client.put_object(Bucket="inbox", Key=key, Body=path.read_bytes())
    ref = tmp_path / "ref"
    (ref / "sub").mkdir(parents=True)
    assert json2dcm(local / "a.json", ref / "a.dcm").returncode == 0
    assert json2dcm(local / "sub" / "b.json", ref / "sub" / "b.dcm").returncode == 0
    assert json2dcm("--array-split", local / "big.ndjson", ref / "big").returncode == 0

    run = streamconv(
        "batch", "s3://inbox/studies/", "--output", "s3://outbox/converted",
        "--report", "s3://outbox/reports/run1", "--jobs", "2", "--batch-size", "100",
        "--storage-option", f"endpoint_url={endpoint}",
        env=_env(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    outputs = _objects(client, "outbox", "converted/")
    assert outputs == tree(ref)  # every output, identical, nothing else in DEST
    report = _objects(client, "outbox", "reports/run1/")
    assert sorted(report) == ["failure.ndjson", "success.ndjson", "summary.json"]
    ok = [json.loads(x) for x in report["success.ndjson"].splitlines()]
    assert len(ok) == BIG + 2
    assert {x["source"] for x in ok} == {
        "s3://inbox/studies/a.json",
        "s3://inbox/studies/sub/b.json",
        "s3://inbox/studies/big.ndjson",
    }
    line = next(x for x in ok if x["index"] == 5 and x["source"].endswith("big.ndjson"))
    assert line["output"] == "s3://outbox/converted/big/000005.dcm"
    assert line["bytes"] == len(outputs["big/000005.dcm"])
    assert report["failure.ndjson"] == b""
    summary = json.loads(report["summary.json"])
    assert (summary["inputs"], summary["converted"], summary["failed"]) == (3, BIG + 2, 0)
    # the big NDJSON was read by four tasks, each a byte range (one ranged GET)
    assert summary["tasks"] >= BIG // 100
    assert summary["workers_used"] == 2


def test_s3_bad_endpoint_is_not_a_silent_success(tmp_path: Path, s3: tuple[str, Any]) -> None:
    """Without the endpoint the inputs cannot be listed: a failure, never exit 0."""
    _, client = s3
    client.create_bucket(Bucket="lonely")
    run = streamconv(
        "batch", "s3://lonely/x.json", "--output", tmp_path / "o", "-j", "1",
        "--storage-option", "endpoint_url=http://127.0.0.1:9",
        # few retries: nested keys reach botocore's Config (a refused port is retried)
        "--storage-option", "config_kwargs.retries.max_attempts=1",
        "--storage-option", "retries=1", env=_env(), timeout=120,
    )  # fmt: skip
    assert run.returncode == 65, run.stderr
    assert "Traceback" not in run.stderr and "s3://lonely/x.json" in run.stderr
    assert list((tmp_path / "o").iterdir()) == []
