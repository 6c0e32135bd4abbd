"""Fixtures shared by the test modules (plain helpers: tests/support.py)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamconv.logsetup import reset_logging


@pytest.fixture
def anyio_backend() -> str:
    """anyio's tests run on asyncio, the backend the front ends use."""
    return "asyncio"


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary directory of this test's own for everything streamconv spools (spill
    files, the +ar spool): a test can then say that nothing was left behind."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    yield tmp
    reset_logging()


@pytest.fixture
def no_leftovers(private_tmp: Path) -> Iterator[Path]:
    """:func:`private_tmp`, and after the test: no temporary file left in it."""
    yield private_tmp
    left = sorted(p.name for p in private_tmp.iterdir())
    assert not left, f"temporary files left behind: {left}"
