"""ruff (lint and format) and mypy --strict over the package and the tests, in the suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> list[str]:
    exe = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if exe is None:
        pytest.fail(f"{name} is not installed: pip install '.[test]'")
    return [exe]


def test_ruff_clean() -> None:
    run = subprocess.run(
        [*_tool("ruff"), "check", "streamconv", "tests"], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_mypy_clean() -> None:
    run = subprocess.run([*_tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_ruff_format_clean() -> None:
    run = subprocess.run(
        [*_tool("ruff"), "format", "--check", "streamconv", "tests", "bench", "fuzz"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_mypy_covers_the_tests() -> None:
    """The configuration itself: mypy strict runs over tests/ too (a test's types are code)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["strict"] is True
    assert {"streamconv", "tests"} <= set(config["files"])
