#!/bin/sh
# Everything the test suite needs, installed into the current Python environment:
#  - the package with its test extra (pytest, hypothesis, ruff, mypy, Dask, fsspec, s3fs, ...);
#  - moto's S3 server (tests/test_batch_s3.py), in a step of its own with boto3 pinned to the
#    botocore that s3fs (aiobotocore) already chose: resolved together, pip back-tracks for long;
#  - a real DICOMweb server for tests/dicomweb: Orthanc and its DICOMweb plugin from Debian
#    (as root, when missing; elsewhere those tests are skipped with the reason, except under
#    CI=true, where they must run).
set -eu
cd "$(dirname "$0")/.."
if [ ! -x /usr/sbin/Orthanc ] || [ ! -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq orthanc orthanc-dicomweb >/dev/null
    else
        echo "install-deps: Orthanc is not installed (apt-get install orthanc orthanc-dicomweb as root);" \
             "the DICOMweb server tests will be skipped" >&2
    fi
fi
# an editable install (a developer's `pip install -e`) stays editable; otherwise, as in CI, a
# plain install (what users get: bytecode compiled, no editable-import finder)
if python -c 'import json, sys, importlib.metadata as m
d = m.distribution("streamconv").read_text("direct_url.json") or "{}"
sys.exit(0 if json.loads(d).get("dir_info", {}).get("editable") else 1)' 2>/dev/null; then
    python -m pip install --quiet -e ".[test]"
else
    python -m pip install --quiet ".[test]"
fi
botocore_version=$(python -c "import importlib.metadata as m; print(m.version('botocore'))")
python -m pip install --quiet "moto[server]" "boto3==$botocore_version" "botocore==$botocore_version" \
    || python -m pip install --quiet "moto[server]" "botocore==$botocore_version"
