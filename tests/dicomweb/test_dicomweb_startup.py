"""HTTP stays out of json2dcm's start-up: nothing of it is imported for a local conversion."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HTTP_MODULES = ("urllib3", "multipart", "streamconv.core.httpfetch", "http.client", "ssl")

CODE = """
import sys
from streamconv.cli import main
rc = main(sys.argv[1:])
print(" ".join(sorted(sys.modules)))
sys.exit(rc)
"""


@pytest.mark.parametrize("extra", [[], ["+Bh", "http://127.0.0.1:9/dicom-web/"]])
def test_local_conversion_imports_no_http(tmp_path: Path, extra: list[str]) -> None:
    bulk = tmp_path / "bulk.bin"
    bulk.write_bytes(b"\x01\x02")
    doc = tmp_path / "in.json"
    doc.write_text(
        json.dumps(
            {
                "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^J"}]},
                "00420011": {"vr": "OB", "BulkDataURI": "bulk.bin"},
            }
        )
    )
    argv = [*extra, "+Bd", str(tmp_path), str(doc), str(tmp_path / "out.dcm")]
    proc = subprocess.run(
        [sys.executable, "-c", CODE, *argv], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert "streamconv.core.build" in loaded  # the conversion did run here
    assert loaded.isdisjoint(HTTP_MODULES), sorted(loaded & set(HTTP_MODULES))
