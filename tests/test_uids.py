"""UID generation without the uuid module (start-up): the same UIDs as uuid would give."""

from __future__ import annotations

import os
import re
import uuid

from streamconv.core import uids

# PS3.5 9.1: a UID is digits and dots, components without leading zeros, at most 64 chars
UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def test_roots_are_the_documented_uuid5_derivations() -> None:
    root = uuid.uuid5(uuid.NAMESPACE_URL, "https://streamconv.invalid/dicom")
    assert f"2.25.{root.int}" == uids.IMPLEMENTATION_CLASS_UID
    assert f"2.25.{uuid.uuid5(root, 'generic-file').int}" == uids.GENERIC_SOP_CLASS


def test_uuid_int_matches_the_uuid_module() -> None:
    for _ in range(200):
        raw = os.urandom(16)
        for version in (4, 5):
            assert uids.uuid_int(raw, version) == uuid.UUID(bytes=raw, version=version).int


def test_mapped_uid_is_uuid5_in_the_salt_namespace() -> None:
    salt = uids.new_salt()
    old = "1.2.840.113619.2.1.1.322987881.621.736170080.681"
    assert uids.mapped_uid(salt, old) == f"2.25.{uuid.uuid5(uuid.UUID(bytes=salt), old).int}"
    assert uids.mapped_uid(salt, old) == uids.mapped_uid(salt, old)
    assert uids.mapped_uid(uids.new_salt(), old) != uids.mapped_uid(salt, old)


def test_generated_uids_are_valid_random_v4() -> None:
    seen = {uids.generate_uid() for _ in range(500)}
    assert len(seen) == 500
    for uid in seen:
        assert UID.match(uid) and len(uid) <= 64, uid
        assert uuid.UUID(int=int(uid[5:])).version == 4
