"""Helpers shared by the test modules (fixtures live in conftest.py).

A json2dcm run in-process (:func:`j2d`, through ``cli.main``) or as the installed command
(:func:`j2d_process`, for the real exit code and streams), on one input written to
``tmp_path/in.json`` and one output ``tmp_path/out.dcm``.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from streamconv.cli import main
from streamconv.logsetup import reset_logging

__all__ = ["JSON2DCM", "Run", "j2d", "j2d_process"]

JSON2DCM = shutil.which("json2dcm", path=os.path.dirname(sys.executable)) or "json2dcm"


@dataclass
class Run:
    rc: int
    stderr: str
    out: Path
    seconds: float


def _write_input(tmp_path: Path, text: str | bytes) -> tuple[Path, Path]:
    src = tmp_path / "in.json"
    src.write_bytes(text.encode() if isinstance(text, str) else text)
    return src, tmp_path / "out.dcm"


def j2d(tmp_path: Path, text: str | bytes, *opts: str) -> Run:
    """json2dcm in this process (``cli.main``), stdout and stderr captured."""
    src, out = _write_input(tmp_path, text)
    stderr = io.StringIO()
    started = time.monotonic()
    rc = main([*opts, str(src), str(out)], stdout=io.StringIO(), stderr=stderr)
    reset_logging()
    return Run(rc, stderr.getvalue(), out, time.monotonic() - started)


def j2d_process(tmp_path: Path, text: str | bytes, *opts: str, timeout: float = 60) -> Run:
    """The installed json2dcm command; its temporary files go to ``tmp_path/tmp`` if that
    exists (the ``private_tmp`` fixture makes it)."""
    src, out = _write_input(tmp_path, text)
    env = dict(os.environ)
    if (tmp_path / "tmp").is_dir():
        env["TMPDIR"] = str(tmp_path / "tmp")
    started = time.monotonic()
    proc = subprocess.run(
        [JSON2DCM, *opts, str(src), str(out)],
        capture_output=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    return Run(
        proc.returncode, proc.stderr.decode("utf-8", "replace"), out, time.monotonic() - started
    )
