"""+Ug/+Uo/-Uo (new UIDs) and the character set (+c/-c): the dataset-level transforms."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import CharsetError, StreamconvError
from ..options import ConvertOptions
from .lazylog import lazy_logger
from .lazyre import lazy_compile
from .uids import generate_uid, mapped_uid
from .vr import CHARSET_VRS, Element, PreEncoded, tag_path

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["apply_charset", "apply_uids"]

log = lazy_logger(__name__)

Dataset = dict[int, Element]
SPECIFIC_CHARACTER_SET = 0x00080005
_UID_TAGS = (
    (0x0020000D, "Study Instance UID"),
    (0x0020000E, "Series Instance UID"),
    (0x00080018, "SOP Instance UID"),
)


def apply_uids(ds: Dataset, options: ConvertOptions, salt: bytes) -> bool:
    """+Ug: new top-level Study/Series/SOP Instance UIDs; True if the SOP Instance UID changed.

    -Uo fills only absent or empty ones; +Uo replaces all, mapping the same old UID to the
    same new UID within one run (``salt``).  Nested UIDs are left alone (DCMTK).
    """
    if not options.generate_uids:
        return False
    sop_changed = False
    for tag, name in _UID_TAGS:
        elem = ds.get(tag)
        old = elem.value if elem is not None else None
        if isinstance(old, bytes):
            old = old.decode("ascii", "replace")
        if not old:
            new = generate_uid()
        elif options.overwrite_uids:
            new = mapped_uid(salt, old)
        else:
            continue
        log.info("generating new %s", name)
        ds[tag] = Element(tag, "UI", new)
        if tag == 0x00080018:
            sop_changed = True
    return sop_changed


Encoder = Callable[[str, str], bytes]


def _utf8(text: str, vr: str) -> bytes:
    return text.encode("utf-8")


def _terms(elem: Element | None) -> list[str] | None:
    if elem is None or elem.value is None:
        return None
    value = elem.value
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    terms = [t.strip() for t in value.split("\\")]
    return terms if any(terms) else None


# PS3.3 C.12.1.1.2 defined terms (and ISO_IR 6, which DCMTK and pydicom take as the default)
_SINGLE_TERMS = frozenset(
    f"ISO_IR {n}" for n in (6, 100, 101, 109, 110, 144, 127, 126, 138, 148, 203, 13, 166, 192)
) | {"GB18030", "GBK"}
_ISO2022_TERMS = frozenset(
    f"ISO 2022 IR {n}"
    for n in (6, 100, 101, 109, 110, 144, 127, 126, 138, 148, 203, 13, 166, 87, 159, 149, 58)
)


# PS3.3 C.12.1.1.2: the single-byte sets without code extensions (Table C.12-2) and the
# multi-byte GB18030 and GBK (Table C.12-4) are Python's own codecs: encoding them needs no
# pydicom.charset, whose import pulls in pydicom with numpy and its pixel handlers (~100 ms,
# 5x the whole conversion of a CT header).  The codecs are those pydicom uses (its names are
# aliases of these), so the bytes are the same; ISO_IR 203 (Latin-9), absent from
# pydicom's table, is ISO 8859-15 as DCMTK takes it.  ISO 2022 sets, and ISO_IR 13 (pydicom's
# own JIS X 0201 encoder), still go through pydicom.
_PYTHON_CODECS = {
    "ISO_IR 6": "ascii",  # the default repertoire, ISO 646 (not Latin-1)
    "ISO_IR 100": "latin_1", "ISO_IR 101": "iso8859_2", "ISO_IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4", "ISO_IR 144": "iso8859_5", "ISO_IR 127": "iso8859_6",
    "ISO_IR 126": "iso8859_7", "ISO_IR 138": "iso8859_8", "ISO_IR 148": "iso8859_9",
    "ISO_IR 203": "iso8859_15", "ISO_IR 166": "tis_620", "GB18030": "gb18030", "GBK": "gbk",
}  # fmt: skip


def _codec_encoder(codec: str) -> Encoder:
    def encode(text: str, vr: str) -> bytes:
        try:
            return text.encode(codec)
        except UnicodeEncodeError as err:
            raise _unrepresentable(text[err.start]) from None

    return encode


def _unrepresentable(bad: str) -> CharsetError:
    return CharsetError(
        f"character {bad!r} (U+{ord(bad):04X}) cannot be represented in the declared character set"
    )


def _encoder_for(terms: list[str], path: str) -> Encoder:
    if terms == ["ISO_IR 192"]:
        return _utf8
    names = ["ISO 2022 IR 6" if not t and i == 0 else t for i, t in enumerate(terms)]
    for term in names:
        if term not in _SINGLE_TERMS and term not in _ISO2022_TERMS:
            raise CharsetError(
                f"unknown Specific Character Set term '{term}' (PS3.3 C.12.1.1.2)", path=path
            )
    if len(names) == 1 and names[0] in _PYTHON_CODECS:
        return _codec_encoder(_PYTHON_CODECS[names[0]])
    state: dict[str, Any] = {}

    def encode(text: str, vr: str) -> bytes:
        # pydicom.charset costs ~300 ms to import: only when non-ASCII text needs it
        if not state:
            from pydicom import charset as pc

            codecs = []
            for term in names:
                codec = pc.python_encoding.get(term)
                if codec is None:
                    raise CharsetError(
                        f"unsupported Specific Character Set term '{term}'", path=path
                    )
                codecs.append(codec)
            state["pc"], state["codecs"] = pc, codecs
        pc, codecs = state["pc"], state["codecs"]
        if len(codecs) == 1:
            return _encode(pc, text, codecs)
        # PS3.5 6.1.2.5.3: the value-1 character set is active again before every delimiter
        # (control characters; '\\' between values; '^' and '=' in PN), so each piece between
        # them is encoded on its own, with its own escape sequence (the PS3.5 I.2 example
        # repeats ESC $ ) C after '^'); the delimiters themselves are ASCII in every set
        splitter = _PN_DELIMITERS if vr == "PN" else _DELIMITERS
        pieces = splitter.split(text)
        if len(pieces) == 1:
            return _encode(pc, text, codecs)
        return b"".join(
            piece.encode("ascii") if i % 2 else _encode(pc, piece, codecs)
            for i, piece in enumerate(pieces)
        )

    return encode


_DELIMITERS = lazy_compile(r"([\\\r\n\f\t])")
_PN_DELIMITERS = lazy_compile(r"([\\\r\n\f\t^=])")

# pydicom names the default repertoire (ISO-IR 6, PS3.3 C.12.1.1.2) 'iso8859', which Python
# reads as Latin-1: 'é' would become a silent E9. The default repertoire is ASCII (ISO 646).
_DEFAULT_REPERTOIRE = "iso8859"


def _impl(pc: Any, text: str, codec: str) -> bytes:
    if codec == _DEFAULT_REPERTOIRE:
        return text.encode("ascii")
    encoded: bytes = pc._encode_string_impl(text, codec)
    return encoded


def _encode_parts(pc: Any, text: str, codecs: list[str]) -> bytes:
    """pydicom's ``_encode_string_parts`` with the default repertoire as ASCII: each run of
    text in the codec that encodes the longest part, with its escape sequence (PS3.5 6.1.2.5)."""
    encoded = bytearray()
    rest = text
    best = codecs[0]
    while rest:
        longest = 0
        for codec in codecs:
            try:
                _impl(pc, rest, codec)
            except UnicodeError as err:
                start = getattr(err, "start", 0)
                if start > longest:
                    longest, best = start, codec
                continue
            longest, best = len(rest), codec
            break
        if longest == 0:
            raise ValueError("no declared character set can encode the next character")
        part = _impl(pc, rest[:longest], best)
        if best not in pc.handled_encodings:
            encoded += pc._get_escape_sequence_for_encoding(best, encoded=part)
        encoded += part
        rest = rest[longest:]
    if best in pc.need_tail_escape_sequence_encodings:
        encoded += pc._get_escape_sequence_for_encoding(codecs[0])
    return bytes(encoded)


def _encode(pc: Any, text: str, codecs: list[str]) -> bytes:
    # pydicom's encode_string falls back to '?' replacement; we never write a silent '?'.
    for i, codec in enumerate(codecs):
        try:
            encoded = _impl(pc, text, codec)
        except UnicodeError:
            continue
        if i > 0 and codec not in pc.handled_encodings:
            encoded = pc._get_escape_sequence_for_encoding(codec, encoded=encoded) + encoded
        if codec in pc.need_tail_escape_sequence_encodings:
            encoded += pc._get_escape_sequence_for_encoding(codecs[0])
        return encoded
    if len(codecs) > 1:
        try:
            return _encode_parts(pc, text, codecs)
        except ValueError:
            pass
    raise _unrepresentable(next((c for c in text if not _encodable(pc, c, codecs)), "?"))


def _encodable(pc: Any, char: str, codecs: list[str]) -> bool:
    for codec in codecs:
        try:
            _impl(pc, char, codec)
            return True
        except UnicodeError:
            continue
    return False


def apply_charset(
    ds: Dataset, options: ConvertOptions, source: str = "", *, declare: bool = True
) -> None:
    """Encode every text value to bytes (CONTRACT §7 "Character set").

    -c: (0008,0005) becomes ISO_IR 192 and text is written as UTF-8.  +c: text is encoded in
    the declared character set; a (0008,0005) inside an item governs that item
    (PS3.5 6.1.2.5.3); unrepresentable text fails with a CharsetError (65).
    ``declare=False`` (a +ar item under -c): UTF-8 without adding (0008,0005) to the item;
    the wrapper's ISO_IR 192 governs it (DCMTK sets the top level only).
    """
    if options.charset_utf8 and not declare:
        _walk(ds, _utf8, None, "", utf8_all=True)
        return
    if options.charset_utf8:
        old = _terms(ds.get(SPECIFIC_CHARACTER_SET))
        if old is not None and old != ["ISO_IR 192"]:
            log.debug(
                "JSON file '%s' specifies a character set ('%s') other than UTF-8, it will be set to UTF-8 ('ISO_IR 192')",
                source, "\\".join(old),
            )  # fmt: skip
        ds[SPECIFIC_CHARACTER_SET] = Element(SPECIFIC_CHARACTER_SET, "CS", "ISO_IR 192")
        _walk(ds, _utf8, None, "", utf8_all=True)
        return
    terms = _terms(ds.get(SPECIFIC_CHARACTER_SET))
    state: dict[str, bool] = {"warned": False}
    encoder = _utf8 if terms is None else _encoder_for(terms, tag_path(SPECIFIC_CHARACTER_SET))

    def undeclared_non_ascii() -> None:
        if not state["warned"]:
            state["warned"] = True
            log.warning(
                "JSON file '%s' does not specify a character set, none will be specified and "
                "the file will be encoded in UTF-8 ('ISO_IR 192')",
                source,
            )

    _walk(ds, encoder, undeclared_non_ascii if terms is None else None, "")


def _walk(
    ds: Dataset,
    encoder: Encoder,
    on_undeclared: Callable[[], None] | None,
    prefix: str,
    *,
    utf8_all: bool = False,
) -> None:
    for tag, elem in ds.items():
        if type(elem) is PreEncoded:
            # left as it is: its piece holds the bytes already (ASCII, the same in every
            # character set, PS3.5 6.1.2.2), and it may serve other datasets (fused.Recent)
            continue
        value = elem.value
        if isinstance(value, str):
            if value.isascii():
                elem.value = value.encode("ascii")
            elif elem.vr in CHARSET_VRS:
                if on_undeclared is not None:
                    on_undeclared()
                try:
                    elem.value = encoder(value, elem.vr)
                except StreamconvError as exc:
                    exc.path = prefix + tag_path(tag)
                    raise
            else:
                elem.value = value.encode("utf-8")  # CS, UI ...: written as given (DCMTK)
        elif elem.vr == "SQ" and isinstance(value, list):
            for i, item in enumerate(value, 1):
                ipath = f"{prefix}{tag_path(tag)}[{i}]."
                if utf8_all:
                    _walk(item, encoder, None, ipath, utf8_all=True)
                    continue
                terms = _terms(item.get(SPECIFIC_CHARACTER_SET))
                if terms is None:
                    _walk(item, encoder, on_undeclared, ipath)
                else:
                    _walk(
                        item,
                        _encoder_for(terms, ipath + tag_path(SPECIFIC_CHARACTER_SET)),
                        None,
                        ipath,
                    )
