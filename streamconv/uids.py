"""UIDs: streamconv's own roots, UID generation (2.25 UUID form) and pydicom's UID table.

pydicom's ``_uid_dict.py`` is executed on its own, without importing the pydicom package
(which costs ~250 ms of start-up), and only when a UID name is needed.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import uuid
from typing import Any

__all__ = [
    "GENERIC_SOP_CLASS",
    "IMPLEMENTATION_CLASS_UID",
    "IMPLEMENTATION_VERSION_NAME",
    "NATIVE_TS",
    "generate_uid",
    "mapped_uid",
    "transfer_syntax_name",
    "uid_for_keyword",
]

# PS3.5 9.2.1: a UID root derived from a UUID (uuid5 of the project URL namespace).
_ROOT_UUID = uuid.uuid5(uuid.NAMESPACE_URL, "https://streamconv.invalid/dicom")
IMPLEMENTATION_CLASS_UID = f"2.25.{_ROOT_UUID.int}"
IMPLEMENTATION_VERSION_NAME = "STREAMCONV_010"  # SH, at most 16 characters (PS3.10 7.1)
# streamconv's "private generic file" SOP Class, used when the dataset names none
# (DCMTK uses its own 1.2.276.0.7230010.3.1.0.1 for the same purpose).
GENERIC_SOP_CLASS = f"2.25.{uuid.uuid5(_ROOT_UUID, 'generic-file').int}"

NATIVE_TS = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
}


def generate_uid() -> str:
    """A new UID in the 2.25 UUID form (PS3.5 B.2)."""
    return f"2.25.{uuid.uuid4().int}"


def mapped_uid(salt: uuid.UUID, old: str) -> str:
    """The same new UID for the same old UID within one run (``salt`` is per run)."""
    return f"2.25.{uuid.uuid5(salt, old).int}"


@functools.cache
def _uid_table() -> dict[str, tuple[str, str, str, str, str]]:
    spec = importlib.util.find_spec("pydicom")
    if spec is None or spec.origin is None:  # pragma: no cover - pydicom is a dependency
        return {}
    path = os.path.join(os.path.dirname(spec.origin), "_uid_dict.py")
    mspec = importlib.util.spec_from_file_location("_streamconv_uid_dict", path)
    assert mspec is not None and mspec.loader is not None
    module: Any = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(module)
    table: dict[str, tuple[str, str, str, str, str]] = module.UID_dictionary
    return table


@functools.cache
def _keywords() -> dict[str, str]:
    return {v[4]: k for k, v in _uid_table().items() if v[4]}


def uid_for_keyword(keyword: str) -> str | None:
    return _keywords().get(keyword)


def transfer_syntax_name(uid: str) -> str | None:
    """The name of a known transfer syntax, or None."""
    if uid in NATIVE_TS:
        return NATIVE_TS[uid]
    entry = _uid_table().get(uid)
    if entry is not None and entry[1] == "Transfer Syntax":
        return entry[0]
    return None
