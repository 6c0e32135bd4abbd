"""A real Orthanc with its DICOMweb plugin (Debian's ``orthanc``, ``orthanc-dicomweb``),
on a free loopback port, with its own configuration, storage and index, authentication on."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["PLUGIN", "Orthanc", "free_port", "orthanc_binary"]

PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
USER, PASSWORD = "streamconv", "s3cret-Passw0rd"


def orthanc_binary() -> str | None:
    found = shutil.which("Orthanc") or (
        "/usr/sbin/Orthanc" if os.path.exists("/usr/sbin/Orthanc") else None
    )
    return found if found and os.path.exists(PLUGIN) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Orthanc:
    """One server process; :meth:`stop` ends it (the fixture's teardown)."""

    def __init__(self, workdir: Path) -> None:
        binary = orthanc_binary()
        assert binary is not None
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.dicomweb = f"{self.root}/dicom-web/"
        self.user, self.password = USER, PASSWORD
        self.auth_header = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        config = {
            "Name": "streamconv-test",
            "StorageDirectory": str(workdir / "storage"),
            "IndexDirectory": str(workdir / "index"),
            "HttpPort": self.port,
            "DicomServerEnabled": False,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "Plugins": [PLUGIN],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "HttpThreadsCount": 8,
        }
        workdir.mkdir(parents=True, exist_ok=True)
        cfg = workdir / "orthanc.json"
        cfg.write_text(json.dumps(config))
        self.log_path = workdir / "orthanc.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [binary, str(cfg)], stdout=self._log, stderr=subprocess.STDOUT, cwd=workdir
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.get_json("/system")
                break
            except (OSError, urllib.error.URLError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        "Orthanc did not start: " + self.log_path.read_text(errors="replace")
                    ) from None
                time.sleep(0.1)

    def _request(
        self, path: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> bytes:
        req = urllib.request.Request(
            self.root + path,
            data=data,
            headers={"Authorization": self.auth_header, **(headers or {})},
            method="POST" if data is not None else "GET",
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            body: bytes = resp.read()
            return body

    def get_json(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return json.loads(self._request(path, headers=headers))

    def get(self, path: str, headers: dict[str, str] | None = None) -> bytes:
        return self._request(path, headers=headers)

    def upload(self, path: str | Path) -> dict[str, Any]:
        """POST /instances (Orthanc's REST API): the file as it is."""
        result: dict[str, Any] = json.loads(self._request("/instances", Path(path).read_bytes()))
        return result

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
