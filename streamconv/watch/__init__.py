"""`streamconv watch`: the drop-folder daemon."""

from __future__ import annotations

from .daemon import main

__all__ = ["main"]
