"""TLS verification stays on: a self-signed server is refused unless --http-ca-bundle names it."""

from __future__ import annotations

import io
import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from streamconv.cli import main

from .faultserver import FaultServer, pattern


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FaultServer, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (it makes the test's self-signed certificate)")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    server = FaultServer(tls=ctx).start()
    try:
        yield server, cert
    finally:
        server.stop()


def _doc(tmp_path: Path, uri: str) -> Path:
    path = tmp_path / "in.json"
    path.write_text(json.dumps({"00420011": {"vr": "OB", "BulkDataURI": uri}}))
    return path


def test_untrusted_certificate_is_refused(
    tmp_path: Path, tls_server: tuple[FaultServer, Path]
) -> None:
    server, _ = tls_server
    err = io.StringIO()
    src, out = _doc(tmp_path, f"{server.url}multi/10"), tmp_path / "out.dcm"
    assert main(["+Bh", server.url, str(src), str(out)], stderr=err) == 20
    assert "TLS verification failed" in err.getvalue()
    assert not out.exists()


def test_ca_bundle_trusts_it(tmp_path: Path, tls_server: tuple[FaultServer, Path]) -> None:
    server, cert = tls_server
    err = io.StringIO()
    src, out = _doc(tmp_path, f"{server.url}multi/10"), tmp_path / "out.dcm"
    argv = ["+Bh", server.url, "--http-ca-bundle", str(cert), str(src), str(out)]
    assert main(argv, stderr=err) == 0, err.getvalue()
    assert pydicom.dcmread(out)[0x00420011].value == pattern(10)
