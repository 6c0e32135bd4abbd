"""The drop-folder daemon with a DICOMweb source: +Bh in an inbox's options string, and the
retry rule read from the error (issue 12: transient for 5xx/timeouts, final for a 404)."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

from streamconv.watch import daemon as watch
from streamconv.watch.config import make_inbox

from .faultserver import FaultServer, pattern


def _job(tmp_path: Path, fault: FaultServer, uri: str, *, final: bool = False) -> watch.Job:
    inbox_dir, out, claim = tmp_path / "inbox", tmp_path / "out", tmp_path / "processing" / "me"
    for d in (inbox_dir, out, claim, tmp_path / "done", tmp_path / "failed"):
        d.mkdir(parents=True, exist_ok=True)
    doc = {
        "00080018": {"vr": "UI", "Value": ["1.2.3.4"]},
        "00420011": {"vr": "OB", "BulkDataURI": uri},
    }
    (inbox_dir / "in.json").write_text(json.dumps(doc))
    inbox = make_inbox(
        path=str(inbox_dir),
        output_dir=str(out),
        # the options string of an inbox: the json2dcm vocabulary, +Bh included
        words=["+Bh", fault.url, "--http-retries", "1", "--http-timeout", "5"],
        where="test",
        log_allowed=False,
    )
    assert inbox.options.http.prefixes == (fault.url,)
    return watch.Job(inbox, "in.json", str(inbox_dir), str(claim), watch.Mode.FAST, None,
                     final=final)  # fmt: skip


def test_inbox_fetches_permitted_bulk_data(tmp_path: Path, fault: FaultServer) -> None:
    result = watch.process_input(_job(tmp_path, fault, f"{fault.url}multi/300"))
    assert result.status == "done", result
    [written] = list((tmp_path / "out").iterdir())
    assert pydicom.dcmread(written)[0x00420011].value == pattern(300)


@pytest.mark.parametrize(
    ("path", "status", "transient"),
    [("always-503/8", "retry", True), ("status/404", "failed", False)],
)
def test_retry_decision_comes_from_the_error(
    tmp_path: Path, fault: FaultServer, path: str, status: str, transient: bool
) -> None:
    result = watch.process_input(_job(tmp_path, fault, fault.url + path))
    assert result.status == status, result
    assert result.error is not None
    assert (result.error.exit_code, result.error.transient) == (20, transient)
    assert list((tmp_path / "out").iterdir()) == []
