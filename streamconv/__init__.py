"""streamconv: DICOM JSON (PS3.18 Annex F) in, DICOM Part 10 out, at any scale.

Public API (imported lazily so that the command-line tools start fast; typed for checkers
through the ``TYPE_CHECKING`` imports below and ``py.typed``):

- :func:`convert_bytes`, :func:`convert_url`, :func:`options_from_args`, :func:`make_options`
  and the result records :class:`Converted` / :class:`Failed` (:mod:`streamconv.api`): the
  plain API any engine calls (no event loop, everything picklable).
- :func:`convert_file` (async) and :func:`convert_file_sync`: one input path (or "-") to
  its outputs; both return the paths written.
- :class:`ConvertOptions`, :class:`Limits` and the enums in :mod:`streamconv.options`.
- :class:`Converter`: the synchronous push pipeline (bytes in, encoded outputs out).
- The exception tree in :mod:`streamconv.errors`, each class with its json2dcm exit code.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from typing import Any

    from .api import (
        Converted,
        Failed,
        convert_bytes,
        convert_url,
        make_options,
        options_from_args,
    )
    from .core.pipeline import Converter
    from .errors import (
        ContentError,
        InputError,
        OutputError,
        StreamconvError,
        UnsupportedURIError,
        UsageError,
    )
    from .oneshot import convert_file, convert_file_sync
    from .options import ConvertOptions, Limits

__all__ = [
    "ContentError",
    "ConvertOptions",
    "Converted",
    "Converter",
    "Failed",
    "InputError",
    "Limits",
    "OutputError",
    "StreamconvError",
    "UnsupportedURIError",
    "UsageError",
    "__version__",
    "convert_bytes",
    "convert_file",
    "convert_file_sync",
    "convert_url",
    "make_options",
    "options_from_args",
]

_LAZY = {
    "ConvertOptions": "options",
    "Limits": "options",
    "Converter": "core.pipeline",
    "convert_file": "oneshot",
    "convert_file_sync": "oneshot",
    "StreamconvError": "errors",
    "UsageError": "errors",
    "InputError": "errors",
    "OutputError": "errors",
    "ContentError": "errors",
    "UnsupportedURIError": "errors",
    "convert_bytes": "api",
    "convert_url": "api",
    "options_from_args": "api",
    "make_options": "api",
    "Converted": "api",
    "Failed": "api",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'streamconv' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"streamconv.{module}"), name)
