"""UIDs: streamconv's own roots, UID generation (2.25 UUID form) and pydicom's UID table.

pydicom's ``_uid_dict.py`` is executed on its own, without importing the pydicom package
(which costs ~250 ms of start-up), and only when a UID name is needed.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
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

# PS3.5 9.2.1 / B.2: UIDs in the "2.25." + UUID-as-integer form.  The root is
# uuid5(NAMESPACE_URL, "https://streamconv.invalid/dicom"), the generic SOP Class its
# uuid5(root, "generic-file"); written out so that start-up imports neither uuid nor
# hashlib (~9 ms): tests/test_uids.py derives them again with the uuid module.
IMPLEMENTATION_CLASS_UID = "2.25.96368561848117718635501901513710320987"
IMPLEMENTATION_VERSION_NAME = "STREAMCONV_010"  # SH, at most 16 characters (PS3.10 7.1)
# streamconv's "private generic file" SOP Class, used when the dataset names none
# (DCMTK uses its own 1.2.276.0.7230010.3.1.0.1 for the same purpose).
GENERIC_SOP_CLASS = "2.25.38785385848685646804499832341308530295"

NATIVE_TS = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
}


def uuid_int(raw: bytes, version: int) -> int:
    """The first 16 bytes of ``raw`` as an RFC 4122 UUID of ``version``, as an integer
    (what ``uuid.UUID(bytes=raw[:16], version=version).int`` gives)."""
    n = int.from_bytes(raw[:16], "big")
    n = (n & ~(0xC000 << 48)) | (0x8000 << 48)  # variant: RFC 4122
    return (n & ~(0xF000 << 64)) | (version << 76)


def new_salt() -> bytes:
    """A run's salt for :func:`mapped_uid` (the bytes of a random UUID namespace)."""
    return os.urandom(16)


def generate_uid() -> str:
    """A new UID in the 2.25 UUID form (PS3.5 B.2): a random (version 4) UUID."""
    return f"2.25.{uuid_int(os.urandom(16), 4)}"


def mapped_uid(salt: bytes, old: str) -> str:
    """The same new UID for the same old UID within one run (``salt`` is per run): the
    name-based (version 5, SHA-1) UUID of ``old`` in the namespace ``salt``."""
    import hashlib

    return f"2.25.{uuid_int(hashlib.sha1(salt + old.encode('utf-8')).digest(), 5)}"


_made: dict[str, Any] = {}  # _uid_table() and _keywords(), each made once (no functools)


def _uid_table() -> dict[str, tuple[str, str, str, str, str]]:
    table: dict[str, tuple[str, str, str, str, str]] | None = _made.get("table")
    if table is None:
        table = _made["table"] = _load_uid_table()
    return table


def _load_uid_table() -> dict[str, tuple[str, str, str, str, str]]:
    import importlib.util  # here: not on a plain conversion's start-up (issue 11)

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


def _keywords() -> dict[str, str]:
    keywords: dict[str, str] | None = _made.get("keywords")
    if keywords is None:
        keywords = _made["keywords"] = {v[4]: k for k, v in _uid_table().items() if v[4]}
    return keywords


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
