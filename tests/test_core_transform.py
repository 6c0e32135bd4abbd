"""core/transform.py directly: the character set (+c/-c) and new UIDs (+Ug, +Uo/-Uo).

Expected bytes are those of the character sets themselves (ISO 8859-1 and -2 tables,
UTF-8, the JIS X 0208 example of PS3.5 H.3.1), written out here, not computed by the code
under test; UIDs are checked against PS3.5 9.1 and the UUID derivation the module documents.
"""

from __future__ import annotations

import io
import logging
import os
import re
import uuid

import pydicom
import pytest
from pydicom import charset as pydicom_charset
from pydicom.multival import MultiValue

from streamconv.core.encode import encode_part10, iter_bytes
from streamconv.core.transform import apply_charset, apply_uids
from streamconv.core.uids import new_salt
from streamconv.core.vr import CHARSET_VRS, Element
from streamconv.errors import CharsetError
from streamconv.options import ConvertOptions

Dataset = dict[int, Element]
CHARSET = 0x00080005
NAME = 0x00100010  # PN
PATIENT_ID = 0x00100020  # LO
CONTENT_SEQ = 0x0040A730
TEXT_VALUE = 0x0040A160  # UT
STUDY, SERIES, SOP = 0x0020000D, 0x0020000E, 0x00080018
# PS3.5 9.1: digits and dots, no leading zeros in a component, at most 64 characters
UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*\Z")


def dataset(charset: str | None, **values: tuple[int, str, object]) -> Dataset:
    ds = {tag: Element(tag, vr, value) for tag, vr, value in values.values()}
    if charset is not None:
        ds[CHARSET] = Element(CHARSET, "CS", charset)
    return ds


def charset(ds: Dataset, *, charset_utf8: bool = False) -> Dataset:
    apply_charset(ds, ConvertOptions(charset_utf8=charset_utf8), "in.json")
    return ds


# -- character sets (PS3.5 6.1, PS3.3 C.12.1.1.2) -------------------------------------------


@pytest.mark.parametrize(
    ("term", "text", "expected"),
    [
        # ISO 8859-1: é = E9, ô = F4
        ("ISO_IR 100", "Buc^Jérôme", b"Buc^J\xe9r\xf4me"),
        # ISO 8859-2: Ł = A3, ó = F3, ź = BC
        ("ISO_IR 101", "Łódź", b"\xa3\xf3d\xbc"),
        # ISO 8859-5: Д = B4 (U+0414 - 0x360)
        ("ISO_IR 144", "Д", b"\xb4"),
        # UTF-8: é = C3 A9, ô = C3 B4
        ("ISO_IR 192", "Buc^Jérôme", b"Buc^J\xc3\xa9r\xc3\xb4me"),
        # PS3.5 H.3.1, example 1: JIS X 0208 with ISO 2022 escapes, each component group
        # starting and ending in the default repertoire (PS3.5 6.1.2.5.3)
        (
            "\\ISO 2022 IR 87",
            "Yamada^Tarou=山田^太郎=やまだ^たろう",
            b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B",
        ),
    ],
)
def test_text_encoded_in_the_declared_character_set(term: str, text: str, expected: bytes) -> None:
    ds = charset(dataset(term, pn=(NAME, "PN", text)))
    assert ds[NAME].value == expected


# pydicom's character set test files (from the PS3.5 Annex H/I/J examples and DCMTK's):
# each one's text, encoded by us in its declared character set, must read back the same
CHARSET_FILES = os.path.join(os.path.dirname(pydicom.__file__), "data", "charset_files")


def _text(value: object) -> str:
    if isinstance(value, MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value)


@pytest.mark.parametrize("name", sorted(f for f in os.listdir(CHARSET_FILES) if f.endswith(".dcm")))
def test_pydicom_charset_files_round_trip(name: str) -> None:
    original = pydicom.dcmread(os.path.join(CHARSET_FILES, name))
    ds: Dataset = {}
    for e in original:
        if e.VR in CHARSET_VRS and e.value not in (None, ""):
            ds[int(e.tag)] = Element(int(e.tag), e.VR, _text(e.value))
    terms = original.get("SpecificCharacterSet")
    if terms:
        ds[CHARSET] = Element(CHARSET, "CS", _text(terms))
    apply_charset(ds, ConvertOptions())
    written = encode_part10(ds, {}, ConvertOptions())
    got = pydicom.dcmread(io.BytesIO(b"".join(iter_bytes(written))))
    for tag in ds:
        assert _text(got[tag].value) == _text(original[tag].value), hex(tag)


KOREAN = "\\ISO 2022 IR 149"


def test_korean_person_name_as_in_ps3_5_i_2() -> None:
    ds = charset(dataset(KOREAN, pn=(NAME, "PN", "Hong^Gildong=洪^吉洞=홍^길동")))
    assert ds[NAME].value == (
        b"Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7"
        b"=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf"
    )


def test_korean_values_after_a_backslash_have_their_escape_sequence() -> None:
    ds = charset(dataset(KOREAN, lo=(0x00081030, "LO", "김희중\\김희중")))
    value = ds[0x00081030].value
    assert isinstance(value, bytes)
    codecs = pydicom_charset.convert_encodings(["", "ISO 2022 IR 149"])
    # decoded as PS3.5 6.1.2.5.3 says: each delimiter returns to the value-1 character set
    assert pydicom_charset.decode_bytes(value, codecs, {0x5C}) == "김희중\\김희중"


def test_ascii_is_ascii_in_every_character_set() -> None:
    for term in ("ISO_IR 100", "ISO_IR 192", "\\ISO 2022 IR 87", None):
        ds = charset(dataset(term, lo=(PATIENT_ID, "LO", "ID-1"), pn=(NAME, "PN", "Doe^J")))
        assert (ds[PATIENT_ID].value, ds[NAME].value) == (b"ID-1", b"Doe^J")


@pytest.mark.parametrize(
    ("term", "text"),
    [
        ("ISO_IR 100", "山田"),  # not in ISO 8859-1
        ("ISO_IR 101", "ñ"),  # ISO 8859-2 has é (E9) but no ñ (its F1 is ń)
        ("ISO_IR 6", "é"),  # the default repertoire is ISO 646 (ASCII), not Latin-1
        ("ISO_IR 144", "é"),
    ],
)
def test_unrepresentable_character_is_a_charset_error(term: str, text: str) -> None:
    with pytest.raises(CharsetError) as info:
        charset(dataset(term, lo=(PATIENT_ID, "LO", text)))
    assert info.value.exit_code == 65
    assert info.value.path == "(0010,0020)"
    assert f"U+{ord(text[0]):04X}" in str(info.value)


def test_charset_error_in_an_item_names_its_path() -> None:
    items = [
        {TEXT_VALUE: Element(TEXT_VALUE, "UT", "fine")},
        {TEXT_VALUE: Element(TEXT_VALUE, "UT", "Ω")},
    ]
    ds = dataset("ISO_IR 100", sq=(CONTENT_SEQ, "SQ", items))
    with pytest.raises(CharsetError) as info:
        charset(ds)
    assert info.value.path == "(0040,A730)[2].(0040,A160)"


def test_unknown_character_set_term() -> None:
    with pytest.raises(CharsetError) as info:
        charset(dataset("ISO_IR 999", lo=(PATIENT_ID, "LO", "é")))
    assert info.value.path == "(0008,0005)"


def test_an_item_with_its_own_character_set_is_encoded_in_it() -> None:
    own = {
        CHARSET: Element(CHARSET, "CS", "ISO_IR 192"),
        TEXT_VALUE: Element(TEXT_VALUE, "UT", "é"),
    }
    inherits = {TEXT_VALUE: Element(TEXT_VALUE, "UT", "é")}
    ds = dataset("ISO_IR 100", pn=(NAME, "PN", "é"), sq=(CONTENT_SEQ, "SQ", [own, inherits]))
    charset(ds)
    assert ds[NAME].value == b"\xe9"
    assert own[TEXT_VALUE].value == b"\xc3\xa9"
    assert inherits[TEXT_VALUE].value == b"\xe9"


def test_values_outside_the_character_set_vrs_are_written_as_given() -> None:
    # PS3.5 6.1.2.3: only SH, LO, ST, LT, UC, UT and PN use the declared character set
    ds = charset(dataset("ISO_IR 100", cs=(0x00080060, "CS", "é"), pn=(NAME, "PN", "é")))
    assert ds[0x00080060].value == "é".encode()
    assert ds[NAME].value == b"\xe9"


def test_undeclared_non_ascii_is_utf8_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        ds = charset(dataset(None, pn=(NAME, "PN", "é"), lo=(PATIENT_ID, "LO", "ü")))
    assert ds[NAME].value == b"\xc3\xa9" and ds[PATIENT_ID].value == b"\xc3\xbc"
    assert CHARSET not in ds
    warned = [r for r in caplog.records if "character set" in r.getMessage()]
    assert len(warned) == 1 and "in.json" in warned[0].getMessage()


def test_minus_c_declares_utf8_and_writes_utf8() -> None:
    ds = charset(dataset("ISO_IR 100", pn=(NAME, "PN", "é")), charset_utf8=True)
    assert ds[CHARSET].value == b"ISO_IR 192"
    assert ds[NAME].value == b"\xc3\xa9"
    # an unrepresentable character is no problem in UTF-8
    ds = charset(dataset("ISO_IR 100", pn=(NAME, "PN", "山")), charset_utf8=True)
    assert ds[NAME].value == "山".encode()


def test_minus_c_leaves_an_items_own_declaration_as_dcmtk_does() -> None:
    # dcmtk-behavior §11 (observed H10, H12, C23): -c sets the top-level (0008,0005) only;
    # nested ones are untouched although the item's text is written as UTF-8.  (A reader
    # then decodes the item's text in the item's declared set: kept for byte-identity.)
    item = {
        CHARSET: Element(CHARSET, "CS", "ISO_IR 100"),
        TEXT_VALUE: Element(TEXT_VALUE, "UT", "café"),
    }
    ds = charset(
        dataset("ISO_IR 100", pn=(NAME, "PN", "Jérôme"), sq=(CONTENT_SEQ, "SQ", [item])),
        charset_utf8=True,
    )
    assert ds[CHARSET].value == b"ISO_IR 192"
    assert ds[NAME].value == "Jérôme".encode()
    assert item[CHARSET].value == b"ISO_IR 100"
    assert item[TEXT_VALUE].value == b"caf\xc3\xa9"


def test_minus_c_item_without_declaration() -> None:
    # a +ar item under -c: UTF-8, and no (0008,0005) added to the item
    ds = dataset(None, pn=(NAME, "PN", "é"))
    apply_charset(ds, ConvertOptions(charset_utf8=True), declare=False)
    assert ds[NAME].value == b"\xc3\xa9" and CHARSET not in ds


# -- UIDs (+Ug, +Uo/-Uo) ---------------------------------------------------------------------------


def _uids(study: str | None, series: str | None, sop: str | None) -> Dataset:
    ds: Dataset = {}
    for tag, uid in ((STUDY, study), (SERIES, series), (SOP, sop)):
        if uid is not None:
            ds[tag] = Element(tag, "UI", uid)
    return ds


def _value(ds: Dataset, tag: int) -> str:
    value = ds[tag].value
    return value.decode() if isinstance(value, bytes) else str(value)


def _valid(uid: str) -> bool:
    return uid.startswith("2.25.") and bool(UID.match(uid)) and len(uid) <= 64


def test_no_plus_ug_changes_nothing() -> None:
    ds = _uids("1.2.3", None, "1.2.5")
    assert apply_uids(ds, ConvertOptions(), new_salt()) is False
    assert sorted(ds) == [SOP, STUDY] and _value(ds, STUDY) == "1.2.3"


def test_plus_ug_fills_only_missing_or_empty_uids() -> None:
    ds = _uids("1.2.3", None, "1.2.5")
    ds[SERIES] = Element(SERIES, "UI", None)
    changed = apply_uids(ds, ConvertOptions(generate_uids=True), new_salt())
    assert changed is False  # the SOP Instance UID was there
    assert _value(ds, STUDY) == "1.2.3" and _value(ds, SOP) == "1.2.5"
    assert _valid(_value(ds, SERIES))
    ds = _uids("1.2.3", "1.2.4", None)
    assert apply_uids(ds, ConvertOptions(generate_uids=True), new_salt()) is True
    assert _valid(_value(ds, SOP))


def test_plus_uo_maps_the_same_old_uid_to_the_same_new_one() -> None:
    options = ConvertOptions(generate_uids=True, overwrite_uids=True)
    salt = new_salt()
    first = _uids("1.2.3", "1.2.3.1", "1.2.3.1.1")
    second = _uids("1.2.3", "1.2.3.1", "1.2.3.1.2")  # same study and series, another image
    assert apply_uids(first, options, salt) is True
    apply_uids(second, options, salt)
    assert _value(first, STUDY) == _value(second, STUDY) != "1.2.3"
    assert _value(first, SERIES) == _value(second, SERIES)
    assert _value(first, SOP) != _value(second, SOP)
    for ds in (first, second):
        assert all(_valid(_value(ds, tag)) for tag in (STUDY, SERIES, SOP))
    # the documented derivation: the version 5 UUID of the old UID in the salt's namespace
    assert _value(first, STUDY) == f"2.25.{uuid.uuid5(uuid.UUID(bytes=salt), '1.2.3').int}"
    # another run (another salt): other UIDs
    third = _uids("1.2.3", "1.2.3.1", "1.2.3.1.1")
    apply_uids(third, options, new_salt())
    assert _value(third, STUDY) != _value(first, STUDY)


def test_plus_ug_leaves_nested_uids_alone() -> None:
    item = {SOP: Element(SOP, "UI", "1.2.9")}
    ds = _uids("1.2.3", "1.2.4", "1.2.5")
    ds[0x00081115] = Element(0x00081115, "SQ", [item])
    apply_uids(ds, ConvertOptions(generate_uids=True, overwrite_uids=True), new_salt())
    assert item[SOP].value == "1.2.9"
    assert _value(ds, SOP) != "1.2.5"


def test_generated_uids_differ() -> None:
    options = ConvertOptions(generate_uids=True)
    made: set[str] = set()
    for _ in range(20):
        ds: Dataset = {}
        apply_uids(ds, options, new_salt())
        made.update(_value(ds, tag) for tag in (STUDY, SERIES, SOP))
    assert len(made) == 60
