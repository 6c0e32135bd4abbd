"""Value representation tables (PS3.5 6.2, 7.1.2) and the element type of the core."""

from __future__ import annotations

from ..options import ConvertOptions, TransferSyntax

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "ALL_VRS",
    "BINARY_NUMERIC",
    "BYTE_VRS",
    "CHARSET_VRS",
    "LONG_HEADER_VRS",
    "MULTI_TEXT_VRS",
    "NEW_VRS",
    "SINGLE_TEXT_VRS",
    "TEXT_VRS",
    "WORD_SIZE",
    "Element",
    "PreEncoded",
    "pre_encoding_pays",
    "tag_path",
]

ALL_VRS = frozenset(
    "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN "
    "UR US UT UV".split()
)
# PS3.5 6.2: these hold exactly one value; a backslash in them is ordinary text.
SINGLE_TEXT_VRS = frozenset({"LT", "ST", "UT", "UR"})
TEXT_VRS = (
    frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UC", "UI"})
    | SINGLE_TEXT_VRS
)
MULTI_TEXT_VRS = TEXT_VRS - SINGLE_TEXT_VRS
# PS3.5 6.1.2.3: values affected by (0008,0005) Specific Character Set.
CHARSET_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
# struct codes of the binary numeric VRs
BINARY_NUMERIC = {
    "US": "H",
    "SS": "h",
    "UL": "I",
    "SL": "i",
    "UV": "Q",
    "SV": "q",
    "FL": "f",
    "FD": "d",
}
# VRs whose value may come from InlineBinary (PS3.18 F.2.7)
BYTE_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
# byte-swap unit for big endian (PS3.5 7.3); 1 = no swap
WORD_SIZE = {
    "OW": 2, "US": 2, "SS": 2, "AT": 2,
    "OF": 4, "OL": 4, "UL": 4, "SL": 4, "FL": 4,
    "OD": 8, "OV": 8, "UV": 8, "SV": 8, "FD": 8,
}  # fmt: skip
# PS3.5 7.1.2: explicit VRs with a 2-byte reserved field and a 4-byte length
LONG_HEADER_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)
# -u writes these as OB (dcmtk-behavior §9.3)
NEW_VRS = frozenset({"UN", "UT", "UR", "UC", "OF", "OD", "OL", "OV", "SV", "UV"})


class Element:
    """One data element.

    ``value`` is ``None`` (empty), ``str`` (text not yet encoded in a character set, or
    the ASCII text of a :class:`PreEncoded` element, which every character set encodes alike),
    ``bytes`` (encoded; binary values little endian), ``list`` of item datasets (SQ), or a
    :class:`~streamconv.bulkdata.BulkRef` streamed at write time.
    """

    __slots__ = ("tag", "value", "vr")

    def __init__(self, tag: int, vr: str, value: Any) -> None:
        self.tag = tag
        self.vr = vr
        self.value = value

    def __repr__(self) -> str:
        return f"Element({tag_path(self.tag)}, {self.vr}, {self.value!r:.60})"


class PreEncoded(Element):
    """An element built together with its Explicit VR Little Endian encoding, ``piece``
    (header and padded value, PS3.5 7.1.2): ASCII text, binary numbers, or no value.  ``value`` is as
    for any element (ASCII text stays ``str``: it is the same bytes in every character set,
    PS3.5 6.1.2.2, and every writer encodes it as ASCII); the writer for that transfer
    syntax appends ``piece`` as it is, any other writer encodes ``value``.  Nothing changes
    a PreEncoded element after it is built (the character set step leaves its ASCII text
    as it is), so the two stay in step, and one element may serve several datasets
    (fused.Recent).
    """

    __slots__ = ("piece",)

    def __init__(self, tag: int, vr: str, value: str | bytes | None, piece: bytes) -> None:
        self.tag = tag
        self.vr = vr
        self.value = value
        self.piece = piece


def pre_encoding_pays(options: ConvertOptions) -> bool:
    """Whether the dataset may be encoded in Explicit VR Little Endian (deflated too), so
    that building the elements' encoding with them pays.  With +t= the JSON's (0002,0010)
    decides later (encode.output_ts), and it is rarely given: the pieces are built, and a
    writer for another transfer syntax ignores them."""
    ts = options.transfer_syntax
    return ts is not TransferSyntax.IMPLICIT and ts is not TransferSyntax.BIG


def tag_path(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
