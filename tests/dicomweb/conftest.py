"""Fixtures of the DICOMweb tests: a real Orthanc (session) and a fault server (module)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .faultserver import FaultServer
from .orthanc import Orthanc, orthanc_binary


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    if orthanc_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Orthanc and its DICOMweb plugin must be installed under CI (.ci/run)")
        pytest.skip(
            "Orthanc with its DICOMweb plugin is not installed "
            "(apt-get install orthanc orthanc-dicomweb; .ci/run does it)"
        )
    server = Orthanc(tmp_path_factory.mktemp("orthanc"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def faults() -> Iterator[FaultServer]:
    server = FaultServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fault(faults: FaultServer) -> FaultServer:
    faults.reset()
    return faults


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
