"""streamconv: DICOM JSON (PS3.18 Annex F) in, DICOM Part 10 out, at any scale.

Public API (imported lazily so that the command-line tools start fast):

- :func:`convert_file` (async): one input path (or "-") to one output path.
- :func:`convert_bytes`, :func:`convert_url`, :func:`options_from_args`, :func:`make_options`
  and the result records :class:`Converted` / :class:`Failed` (:mod:`streamconv.api`): the
  plain API any engine calls (no event loop, everything picklable).
- :class:`ConvertOptions`, :class:`Limits` and the enums in :mod:`streamconv.options`.
- :class:`Converter`: the synchronous push pipeline (bytes in, encoded outputs out).
- The exception tree in :mod:`streamconv.errors`, each class with its json2dcm exit code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

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
    "convert_url",
    "make_options",
    "options_from_args",
]

_LAZY = {
    "ConvertOptions": "options",
    "Limits": "options",
    "Converter": "pipeline",
    "convert_file": "pipeline",
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

if TYPE_CHECKING:  # the facade's types for checkers; nothing imported at run time
    from .api import (
        Converted,
        Failed,
        convert_bytes,
        convert_url,
        make_options,
        options_from_args,
    )
    from .errors import (
        ContentError,
        InputError,
        OutputError,
        StreamconvError,
        UnsupportedURIError,
        UsageError,
    )
    from .options import ConvertOptions, Limits
    from .pipeline import Converter, convert_file


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'streamconv' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"streamconv.{module}"), name)
