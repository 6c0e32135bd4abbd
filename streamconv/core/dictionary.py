"""The DICOM data dictionary (PS3.6) for VR look-up, plus DCMTK-format DCMDICTPATH files.

Start-up matters, so the ``pydicom`` package is never imported (it pulls numpy): its data
modules ``_dicom_dict.py`` and, on the first private look-up, ``_private_dict.py`` are
executed on their own from pydicom's directory.

Look-up order for a public (even group) tag: DCMDICTPATH exact entries, pydicom's exact
entries, DCMDICTPATH range entries, pydicom's repeating groups, then the group length rule.
For a private tag (odd group, PS3.5 7.8): DCMDICTPATH entries for the creator, creator-less
DCMDICTPATH entries (what DCMTK's json2dcm matches, as it looks up without a creator), then
the rules for group length and private creator elements, then pydicom's private dictionary.
"""

from __future__ import annotations

import os
import sys
from _thread import allocate_lock  # threading.Lock, without importing threading (start-up)
from collections.abc import Iterable, Iterator, Mapping

from .lazylog import lazy_logger
from .lazyre import lazy_compile

__all__ = ["DictEntry", "Dictionary", "get_dictionary", "load_dictionary"]

logger = lazy_logger(__name__)

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Final, Literal, NamedTuple

    _Rule = Literal["any", "even", "odd"]
else:
    from ..options import NamedTuple

# (VR, VM, name, retired, keyword) in pydicom's _dicom_dict; (VR, VM, name, retired) in
# its _private_dict.
_PublicEntry = tuple[str, str, str, str, str]
_PrivateEntry = tuple[str, str, str, str]

PIXEL_DATA: Final = 0x7FE00010
_LUT_DATA: Final = 0x00283006

# The VRs of PS3.5 6.2 Table 6.2-1.
_STANDARD_VRS: Final = frozenset(
    [
        "AE",
        "AS",
        "AT",
        "CS",
        "DA",
        "DS",
        "DT",
        "FD",
        "FL",
        "IS",
        "LO",
        "LT",
        "OB",
        "OD",
        "OF",
        "OL",
        "OV",
        "OW",
        "PN",
        "SH",
        "SL",
        "SQ",
        "SS",
        "ST",
        "SV",
        "TM",
        "UC",
        "UI",
        "UL",
        "UN",
        "UR",
        "US",
        "UT",
        "UV",
    ]
)
# DCMTK's internal pseudo-VRs as they appear in dicom.dic, resolved as DCMTK resolves them
# when the JSON has no "vr" (dcmtk-behavior §5.1 item 4): ox -> OB (OW for Pixel Data),
# px -> OW, xs -> US, lt -> OW, up -> UL; na (items, delimiters) and pi have no VR.
_PSEUDO_VRS: Final[Mapping[str, str | None]] = {
    "ox": "OB",
    "px": "OW",
    "xs": "US",
    "lt": "OW",
    "up": "UL",
    "na": None,
    "pi": None,
}
# pydicom's spellings of a choice of VRs (PS3.6 lists e.g. "US or SS"), resolved as DCMTK
# does: xs -> US; LUT Data and the retired Gray LUT Data (lt) -> OW.
_AMBIGUOUS_VRS: Final[Mapping[str, str]] = {
    "US or SS": "US",
    "US or SS or OW": "OW",
    "US or OW": "OW",
}

# DCMDICTPATH file syntax, compiled on first use (not at start-up: issue 11)
_HEX_PART: Final = lazy_compile(
    r"(?P<lo>[0-9A-Fa-f]{1,4})(?:-(?P<rule>[oOeEuU])-(?P<hi>[0-9A-Fa-f]{1,4})"
    r"|-(?P<hi2>[0-9A-Fa-f]{1,4}))?"
)
# the VRs a pseudo-VR stands for (DCMTK's DcmVR: xs = US/SS, ox/px = OB/OW, lt = US/SS/OW)
_PSEUDO_CHOICES: Final[Mapping[str, tuple[str, ...]]] = {
    "xs": ("US", "SS"),
    "ox": ("OB", "OW"),
    "px": ("OB", "OW"),
    "lt": ("US", "SS", "OW"),
    "up": ("UL",),
}
_RULES: Final[Mapping[str, _Rule]] = {"o": "odd", "e": "even", "u": "any"}
_VM: Final = lazy_compile(r"(?:\d+(?:-(?:\d+|\d*[nN]))?|\d*[nN])")


def _resolve_vr(vr: str, tag: int) -> str | None:
    """Return the one VR to use for a dictionary VR that may offer a choice."""
    if vr in _STANDARD_VRS:
        return vr
    if vr in _PSEUDO_VRS:
        if vr == "ox" and tag == PIXEL_DATA:
            return "OW"
        return _PSEUDO_VRS[vr]
    if vr in _AMBIGUOUS_VRS:
        return _AMBIGUOUS_VRS[vr]
    if vr == "NONE" or not vr:  # pydicom's items and delimitation items (PS3.5 7.5)
        return None
    choices = vr.replace("_", " or ").split(" or ")
    if choices == ["OB", "OW"]:
        # PS3.5 A.1 (Pixel Data), 8.1.2 (Overlay Data): OW is DCMTK's choice for Pixel Data
        # only (its "px"); everything else is "ox", written as OB.
        return "OW" if tag == PIXEL_DATA else "OB"
    return choices[0]


def _is_private(group: int) -> bool:
    # PS3.5 7.8.1: odd groups other than 0001, 0003, 0005, 0007 and FFFF are private; DCMTK's
    # dictionary treats the illegal odd groups the same way (its "IllegalPrivateCreator").
    return bool(group & 1)


class DictEntry(NamedTuple):
    """One line of a DCMTK-format dictionary file; a tag or a range of tags."""

    group: int
    group_hi: int
    group_rule: _Rule
    element: int
    element_hi: int
    element_rule: _Rule
    vr: str
    keyword: str
    vm: str = "1"
    creator: str | None = None
    origin: str = ""

    @property
    def is_range(self) -> bool:
        return self.group != self.group_hi or self.element != self.element_hi

    def contains(self, group: int, element: int, creator: str | None) -> bool:
        """Whether this entry describes the tag, as DCMTK's ``DcmDictEntry::contains``."""
        if not _rule_ok(self.group_rule, group) or not _rule_ok(self.element_rule, element):
            return False
        if creator != self.creator:
            return False
        if not self.group <= group <= self.group_hi:
            return False
        if self.element <= element <= self.element_hi:
            return True
        # A private entry given as (gggg,"CREATOR",ee) matches in any block (PS3.5 7.8.1).
        return creator is not None and self.element <= (element & 0xFF) <= self.element_hi

    def same_range(self, other: DictEntry) -> bool:
        return (
            self.group,
            self.group_hi,
            self.element,
            self.element_hi,
            self.group_rule,
            self.element_rule,
            self.creator,
        ) == (
            other.group,
            other.group_hi,
            other.element,
            other.element_hi,
            other.group_rule,
            other.element_rule,
            other.creator,
        )

    def subset_of(self, other: DictEntry) -> bool:
        return (
            self.group >= other.group
            and self.group_hi <= other.group_hi
            and self.element >= other.element
            and self.element_hi <= other.element_hi
            and self.creator == other.creator
        )

    def __repr__(self) -> str:
        group = _part_repr(self.group, self.group_hi, self.group_rule)
        element = _part_repr(self.element, self.element_hi, self.element_rule)
        creator = f'"{self.creator}",' if self.creator is not None else ""
        return f"DictEntry(({group},{creator}{element}) {self.vr} {self.keyword})"


def _rule_ok(rule: _Rule, value: int) -> bool:
    if rule == "even":
        return not value & 1
    if rule == "odd":
        return bool(value & 1)
    return True


def _part_repr(lo: int, hi: int, rule: _Rule) -> str:
    if lo == hi:
        return f"{lo:04X}"
    return f"{lo:04X}-{rule[0]}-{hi:04X}"


class _UserEntries:
    """DCMDICTPATH entries: exact tags hashed, ranges in DCMTK's list order."""

    def __init__(self) -> None:
        self.exact: dict[tuple[int, str | None], DictEntry] = {}
        self.ranges: list[DictEntry] = []

    def __len__(self) -> int:
        return len(self.exact) + len(self.ranges)

    def add(self, entry: DictEntry) -> None:
        # Later entries replace equal ones; a subset range goes before its superset so that
        # the narrower one is found first (DCMTK DcmDataDictionary::addEntry).
        if not entry.is_range:
            self.exact[((entry.group << 16) | entry.element, entry.creator)] = entry
            return
        for i, old in enumerate(self.ranges):
            if entry.same_range(old):
                self.ranges[i] = entry
                return
            if entry.subset_of(old):
                self.ranges.insert(i, entry)
                return
        self.ranges.append(entry)

    def find_exact(self, tag: int, creator: str | None) -> DictEntry | None:
        entry = self.exact.get((tag, creator))
        if entry is None and creator is not None:
            # DCMTK DcmHashDict::get: "a private tag with flexible element number".
            entry = self.exact.get((tag & 0xFFFF00FF, creator))
        return entry

    def find_range(self, tag: int, creator: str | None) -> DictEntry | None:
        group, element = tag >> 16, tag & 0xFFFF
        for entry in self.ranges:
            if entry.contains(group, element, creator):
                return entry
        return None

    def find(self, tag: int, creator: str | None) -> DictEntry | None:
        return self.find_exact(tag, creator) or self.find_range(tag, creator)


# --- pydicom's data modules, executed without importing the pydicom package ---------------


def _pydicom_file(filename: str) -> str:
    # the import system's finders locate the package without running its __init__ (what
    # importlib.util.find_spec does for a top-level name, without importing importlib.util)
    spec = None
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is not None and (spec := find_spec("pydicom", None)) is not None:
            break
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("pydicom is not installed; streamconv needs its data dictionary")
    return os.path.join(next(iter(spec.submodule_search_locations)), filename)


def _exec_pydicom_module(filename: str) -> ModuleType:
    import importlib.util

    path = _pydicom_file(filename)
    module_spec = importlib.util.spec_from_file_location(
        f"_streamconv_pydicom_{filename.removesuffix('.py').lstrip('_')}", path
    )
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load pydicom's {filename} from {path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)  # not put in sys.modules
    return module


class _Builtin:
    """pydicom's dictionaries, loaded once per process."""

    _lock = allocate_lock()
    _public: tuple[dict[int, _PublicEntry], list[tuple[int, int, _PublicEntry]]] | None = None
    _private: dict[str, dict[str, _PrivateEntry]] | None = None

    @classmethod
    def public(cls) -> tuple[dict[int, _PublicEntry], list[tuple[int, int, _PublicEntry]]]:
        if cls._public is None:
            with cls._lock:
                if cls._public is None:
                    module = _exec_pydicom_module("_dicom_dict.py")
                    exact: dict[int, _PublicEntry] = module.DicomDictionary
                    repeaters: dict[str, _PublicEntry] = module.RepeatersDictionary
                    # A mask like '60xx3000': the tag matches when every non-x digit does.
                    masks = [
                        (
                            int(mask.replace("x", "0"), 16),
                            int("".join("0" if c == "x" else "F" for c in mask), 16),
                            entry,
                        )
                        for mask, entry in repeaters.items()
                    ]
                    cls._public = (exact, masks)
        return cls._public

    _vrs: tuple[Mapping[int, str], list[tuple[int, int, str]]] | None = None

    @classmethod
    def vrs(cls) -> tuple[Mapping[int, str], list[tuple[int, int, str]]]:
        """The public VRs alone (exact tags, masks), all a conversion looks up.

        Loading pydicom's whole dictionary (names and keywords: ~10,000 strings) costs
        ~3.5 ms, a tenth of a one-shot json2dcm run (issue 11); core/public_vrs.py holds its
        VRs, made from pydicom's _dicom_dict.py of the size it records.  Any other file:
        taken from the whole dictionary, as before.
        """
        if cls._vrs is None:
            from . import public_vrs

            try:
                same = os.stat(_pydicom_file("_dicom_dict.py")).st_size == public_vrs.SOURCE_SIZE
            except OSError:
                same = False
            if same:
                exact = _SortedVRs(public_vrs.TAGS, public_vrs.CODES, public_vrs.VRS)
                cls._vrs = (exact, list(public_vrs.MASKS))
            else:
                cls._vrs = public_vr_table()
        return cls._vrs

    @classmethod
    def private(cls) -> dict[str, dict[str, _PrivateEntry]]:
        if cls._private is None:
            with cls._lock:
                if cls._private is None:
                    module = _exec_pydicom_module("_private_dict.py")
                    cls._private = module.private_dictionaries
        return cls._private


class _SortedVRs(Mapping[int, str]):
    """core/public_vrs.py's table: tag -> VR by binary search over its text.

    Made as a dict (5,000 entries) it cost ~1 ms of a one-shot json2dcm run, executing the
    literal or building it (issue 11).  TAGS is the tags' 8 upper-case hex digits each,
    ascending (text of equal length sorts as the numbers do); CODES one letter a tag, its VR
    in VRS.  Two string constants: no dict to build, no array or bisect module to load.
    """

    __slots__ = ("_codes", "_count", "_last", "_tags", "_vrs")

    def __init__(self, tags: str, codes: str, vrs: Mapping[str, str]) -> None:
        if len(tags) != 8 * len(codes):
            raise ValueError("public_vrs: TAGS and CODES differ in length")
        self._tags = tags
        self._codes = codes
        self._vrs = vrs
        self._count = len(codes)
        # a conversion looks each tag up twice in a row (Dictionary.vr_choices, then its VR)
        self._last: tuple[int, str | None] = (-1, None)

    def get(self, tag: int, default: str | None = None) -> str | None:  # type: ignore[override]
        last_tag, last_vr = self._last
        if tag == last_tag:
            return last_vr if last_vr is not None else default
        found = self._find(tag)
        self._last = (tag, found)
        return found if found is not None else default

    def _find(self, tag: int) -> str | None:
        key = f"{tag:08X}"
        tags = self._tags
        lo, hi = 0, self._count
        while lo < hi:
            mid = (lo + hi) >> 1
            at = tags[mid * 8 : mid * 8 + 8]
            if at < key:
                lo = mid + 1
            elif at > key:
                hi = mid
            else:
                return self._vrs[self._codes[mid]]
        return None

    def __getitem__(self, tag: int) -> str:
        found = self.get(tag)
        if found is None:
            raise KeyError(tag)
        return found

    def __iter__(self) -> Iterator[int]:
        tags = self._tags
        return (int(tags[i : i + 8], 16) for i in range(0, len(tags), 8))

    def __len__(self) -> int:
        return self._count


def public_vr_table() -> tuple[dict[int, str], list[tuple[int, int, str]]]:
    """(tag -> VR, [(value, mask, VR)]) from pydicom's whole public dictionary."""
    exact, masks = _Builtin.public()
    return {tag: e[0] for tag, e in exact.items()}, [(v, m, e[0]) for v, m, e in masks]


def public_vrs_source() -> str:
    """The text of core/public_vrs.py for the installed pydicom (tests compare; to renew:
    ``python -c "from streamconv.core.dictionary import public_vrs_source as s;
    print(s(), end='')" > streamconv/core/public_vrs.py``)."""
    exact, masks = public_vr_table()
    size = os.stat(_pydicom_file("_dicom_dict.py")).st_size
    tags = sorted(exact)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    names = sorted(set(exact.values()))
    assert len(names) <= len(letters)  # one letter a tag
    letter = dict(zip(names, letters, strict=False))
    tag_hex = [f"{tag:08X}" for tag in tags]
    codes = [letter[exact[tag]] for tag in tags]
    triples = [f'(0x{v:08X}, 0x{m:08X}, "{vr}"),' for v, m, vr in masks]
    lines = [
        '"""The VRs of pydicom\'s public data dictionary (generated: see',
        "dictionary.public_vrs_source; used while pydicom's file has SOURCE_SIZE bytes), read by",
        'dictionary._SortedVRs: the tags ascending, 8 hex digits each; a letter a tag for its VR."""',
        "",
        "# fmt: off",  # several entries a line: a module stays under 800 lines
        f"SOURCE_SIZE = {size}",
        "VRS: dict[str, str] = {",
        *(
            "    " + " ".join(f'"{letter[n]}": "{n}",' for n in names[i : i + 6])
            for i in range(0, len(names), 6)
        ),
        "}",
        "TAGS = (",
        *(f'    "{"".join(tag_hex[i : i + 16])}"' for i in range(0, len(tag_hex), 16)),
        ")",
        "CODES = (  # a letter a tag: its VR in VRS",
        *(f'    "{"".join(codes[i : i + 96])}"' for i in range(0, len(codes), 96)),
        ")",
        "MASKS: tuple[tuple[int, int, str], ...] = (",
        *("    " + " ".join(triples[i : i + 4]) for i in range(0, len(triples), 4)),
        ")",
    ]
    return "\n".join(lines) + "\n"


def _builtin_private_entry(tag: int, creator: str) -> _PrivateEntry | None:
    block = _Builtin.private().get(creator)
    if block is None:
        return None
    # pydicom's keys put 'xx' in the block byte (PS3.5 7.8.1), a few fix the element, a few
    # also mask the group's low byte: try the same three spellings as pydicom.
    key = f"{tag:08X}"
    for candidate in (key, f"{key[:4]}xx{key[6:]}", f"{key[:2]}xxxx{key[6:]}"):
        entry = block.get(candidate)
        if entry is not None:
            return entry
    return None


# --- the dictionary -------------------------------------------------------------------------


class Dictionary:
    """VR, keyword and name look-up: pydicom's dictionary extended by DCMDICTPATH entries."""

    def __init__(self, entries: Iterable[DictEntry] = (), *, sources: Iterable[str] = ()):
        self._user = _UserEntries()
        for entry in entries:
            self._user.add(entry)
        self._vr_exact, self._vr_masks = _Builtin.vrs()
        self.sources: tuple[str, ...] = tuple(sources)
        self._keywords: dict[str, int] | None = None
        self._choices: dict[int, frozenset[str]] = {}

    def __repr__(self) -> str:
        return f"Dictionary(user_entries={len(self._user)}, sources={list(self.sources)!r})"

    def vr(self, tag: int, creator: str | None = None) -> str | None:
        """The VR of ``tag`` (one VR, choices resolved as DCMTK does), or None if unknown.

        ``creator`` is the value of the private creator element reserving the block of a
        private data element (PS3.5 7.8.1); it is ignored for public tags.
        """
        group, element = tag >> 16, tag & 0xFFFF
        if not _is_private(group):
            public = self._public_vr(tag)
            if public is not None:
                return public
            return "UL" if element == 0 else None  # group length, PS3.5 7.2
        creator = creator.strip(" \0") if creator is not None else None
        if self._user:
            user = None
            if creator is not None and element >= 0x1000:
                user = self._user.find(tag, creator)
            if user is None:
                user = self._user.find(tag, None)
            if user is not None:
                return _resolve_vr(user.vr, tag)
        if element == 0:
            return "UL"  # group length, PS3.5 7.2
        if 0x0010 <= element <= 0x00FF:
            return "LO"  # private creator data element, PS3.5 7.8.1
        if element >= 0x1000 and creator:
            private = _builtin_private_entry(tag, creator)
            if private is not None:
                return _resolve_vr(private[0], tag)
        return None

    def vr_choices(self, tag: int) -> frozenset[str]:
        """Every VR the dictionary allows for ``tag``, looked up without a private creator as
        DCMTK's json2dcm does (``US or SS`` gives both); empty when the tag is unknown."""
        found = self._choices.get(tag)
        if found is None:
            found = self._vr_choices(tag)
            self._choices[tag] = found
        return found

    def _vr_choices(self, tag: int) -> frozenset[str]:
        resolved = self.vr(tag)
        if resolved is None:
            return frozenset()
        entry = None if _is_private(tag >> 16) else self._public_raw_vr(tag)
        raw = entry if entry is not None else resolved
        choices = set(_PSEUDO_CHOICES.get(raw, ()))
        choices.update(c for c in raw.replace("_", " or ").split(" or ") if c in _STANDARD_VRS)
        choices.add(resolved)
        if tag == _LUT_DATA:
            choices.add("SS")  # DCMTK's dicom.dic: lt, i.e. US, SS or OW
        return frozenset(choices)

    def keyword(self, tag: int) -> str | None:
        """The keyword of a public tag (``PatientName``), or None."""
        found = self._public_entry(tag)
        return (found[1] or None) if found is not None else None

    def name(self, tag: int) -> str | None:
        """The name of a public tag (``Patient's Name``), or None."""
        found = self._public_entry(tag)
        return (found[2] or None) if found is not None else None

    def tag_for_keyword(self, keyword: str) -> int | None:
        """The tag of a public keyword (not a repeating-group one), or None."""
        if self._keywords is None:
            exact = _Builtin.public()[0]
            keywords = {entry[4]: tag for tag, entry in exact.items() if entry[4]}
            for (tag, creator), entry in self._user.exact.items():
                if creator is None and entry.keyword:
                    keywords[entry.keyword] = tag
            self._keywords = keywords
        return self._keywords.get(keyword)

    def _public_vr(self, tag: int) -> str | None:
        found = self._public_raw_vr(tag)
        return _resolve_vr(found, tag) if found is not None else None

    def _public_raw_vr(self, tag: int) -> str | None:
        """_public_entry's VR, from the VR table alone (the same order of look-ups)."""
        user = self._user.find_exact(tag, None) if self._user else None
        if user is not None:
            return user.vr
        builtin = self._vr_exact.get(tag)
        if builtin is not None:
            return builtin
        user = self._user.find_range(tag, None) if self._user else None
        if user is not None:
            return user.vr
        if _is_private(tag >> 16):
            return None  # repeating groups are even (PS3.5 7.6); pydicom's masks ignore that
        for value, mask, vr in self._vr_masks:
            if (tag ^ value) & mask == 0:
                return vr
        return None

    def _public_entry(self, tag: int) -> tuple[str, str, str] | None:
        """(VR, keyword, name) from the creator-less entries."""
        user = self._user.find_exact(tag, None) if self._user else None
        if user is not None:
            return user.vr, user.keyword, user.keyword
        exact, masks = _Builtin.public()
        builtin = exact.get(tag)
        if builtin is not None:
            return builtin[0], builtin[4], builtin[2]
        user = self._user.find_range(tag, None) if self._user else None
        if user is not None:
            return user.vr, user.keyword, user.keyword
        if _is_private(tag >> 16):
            return None  # repeating groups are even (PS3.5 7.6); pydicom's masks ignore that
        for value, mask, entry in masks:
            if (tag ^ value) & mask == 0:
                return entry[0], entry[4], entry[2]
        return None


# --- DCMTK-format dictionary files ----------------------------------------------------------


class _BadLine(ValueError):
    pass


def _parse_tag_part(text: str) -> tuple[int, int, _Rule]:
    # dcdict.cc parseTagPart: "lo", "lo-hi" (even only) or "lo-r-hi" with r in o/e/u.
    match = _HEX_PART.fullmatch(text)
    if match is None:
        raise _BadLine(f"bad tag part {text!r}")
    lo = int(match["lo"], 16)
    rule: _Rule
    if match["hi"] is not None:
        rule, hi = _RULES[match["rule"].lower()], int(match["hi"], 16)
    elif match["hi2"] is not None:
        rule, hi = "even", int(match["hi2"], 16)  # DCMTK: a range without restrictor is even
    else:
        rule, hi = "any", lo
    if hi < lo:
        raise _BadLine(f"empty tag range {text!r}")
    return lo, hi, rule


def _parse_tag_field(
    text: str,
) -> tuple[tuple[int, int, _Rule], tuple[int, int, _Rule], str | None]:
    # dcdict.cc parseWholeTagField: (gggg,eeee) or (gggg,"CREATOR",ee), ranges allowed.
    text = text.strip()
    if not (text.startswith("(") and text.endswith(")")) or "," not in text:
        raise _BadLine(f"bad tag field {text!r}")
    group_text, _, rest = text[1:-1].partition(",")
    rest = rest.lstrip()
    creator = None
    if rest.startswith('"'):
        end = rest.find('"', 1)
        if end < 0:
            raise _BadLine(f"unterminated private creator in {text!r}")
        creator = rest[1:end].strip(" ")
        rest = rest[end + 1 :].lstrip()
        if not rest.startswith(","):
            raise _BadLine(f"element part missing in {text!r}")
        rest = rest[1:]
        if not creator:
            creator = None  # DCMTK ignores an empty creator
    group = _parse_tag_part("".join(group_text.split()))
    element = _parse_tag_part("".join(rest.split()))
    return group, element, creator


def _parse_line(line: str, origin: str) -> DictEntry:
    fields = line.split("\t")
    if len(fields) < 3:
        raise _BadLine("too few fields (Tag, VR, Name, VM, Version separated by tabs)")
    if len(fields) > 5:
        raise _BadLine("too many fields")
    (group, group_hi, group_rule), (element, element_hi, element_rule), creator = _parse_tag_field(
        fields[0]
    )
    vr = "".join(fields[1].split())
    if vr not in _STANDARD_VRS and vr not in _PSEUDO_VRS:
        raise _BadLine(f"bad VR field {vr!r}")
    vm = "".join(fields[3].split()) if len(fields) > 3 else "1"
    if not _VM.fullmatch(vm):
        raise _BadLine(f"bad VM field {vm!r}")
    return DictEntry(
        group=group,
        group_hi=group_hi,
        group_rule=group_rule,
        element=element,
        element_hi=element_hi,
        element_rule=element_rule,
        vr=vr,
        keyword="".join(fields[2].split()),
        vm=vm,
        creator=creator,
        origin=origin,
    )


def _read_dictionary_file(path: str) -> list[DictEntry] | None:
    """The entries of one file; None (with a warning) when it cannot be read."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        # DCMTK: "DcmDataDictionary: Cannot open file: <name>", the file is skipped.
        logger.warning("cannot load data dictionary file '%s': %s", path, exc.strerror or exc)
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    entries: list[DictEntry] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            entries.append(_parse_line(line, f"{path}:{number}"))
        except _BadLine as exc:
            logger.warning("%s:%d: %s; line skipped", path, number, exc)
    logger.debug("loaded %d entries from data dictionary file '%s'", len(entries), path)
    return entries


def load_dictionary(dcmdictpath: str | None) -> Dictionary:
    """Build a dictionary: pydicom's, extended by the files of a DCMDICTPATH value.

    The value is a list separated by ``os.pathsep`` (':' on POSIX, ';' on Windows, as
    DCMTK); empty items are skipped, a file that cannot be read is a warning.
    """
    entries: list[DictEntry] = []
    sources: list[str] = []
    for path in (dcmdictpath or "").split(os.pathsep):
        if not path:
            continue
        loaded = _read_dictionary_file(path)
        if loaded is not None:
            entries.extend(loaded)
            sources.append(path)
    return Dictionary(entries, sources=sources)


_default_lock = allocate_lock()
_default: Dictionary | None = None


def get_dictionary() -> Dictionary:
    """The process-wide dictionary, built on first use from ``DCMDICTPATH``."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = load_dictionary(os.environ.get("DCMDICTPATH"))
    return _default
