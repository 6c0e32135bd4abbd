"""Helpers of the per-module core tests (test_core_*.py, test_sinks.py): DICOM JSON text
turned into what the core's build step takes, without going through a front end.

The JSON is parsed with the standard library, not with streamconv's own parser, so that a
build test fails for the model's fault only: objects become :class:`Pairs` (duplicate keys
kept, in order), numbers become ``int`` or ``Decimal`` as ijson gives them.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from streamconv.core.build import BuildContext, Built, build_dataset
from streamconv.core.documents import Pairs
from streamconv.core.vr import Element
from streamconv.errors import Problems
from streamconv.options import ConvertOptions

__all__ = ["Dataset", "build", "dicom_json", "to_pairs"]

Dataset = dict[int, Element]


def _pairs_hook(items: list[tuple[str, Any]]) -> Pairs:
    p = Pairs()
    p.pairs = list(items)
    return p


def dicom_json(text: str) -> Any:
    """JSON text -> the value the model builds from (objects as Pairs, numbers int/Decimal)."""
    return json.loads(text, object_pairs_hook=_pairs_hook, parse_float=Decimal)


def to_pairs(value: Any) -> Any:
    """A Python value (dicts, lists, numbers) -> the value the model builds from."""
    return dicom_json(json.dumps(value))


def build(
    value: Any,
    options: ConvertOptions | None = None,
    *,
    strict: bool = True,
    base_dir: str | None = None,
) -> tuple[Built, Problems]:
    """Build one dataset from a Python value or JSON text; returns it and its Problems."""
    if isinstance(value, str):
        value = dicom_json(value)
    elif not isinstance(value, Pairs):
        value = to_pairs(value)
    problems = Problems(strict=strict)
    ctx = BuildContext(options or ConvertOptions(), problems, "test.json", base_dir)
    return build_dataset(value, ctx), problems
