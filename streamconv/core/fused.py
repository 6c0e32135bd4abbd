"""The fused build+encode steps (PreEncoded) for the commonest elements of a header.

``{"vr": VR, "Value": [one value]}`` for a text VR with a short header, and for DS, IS and
the short binary numeric VRs, is built with its Explicit VR Little Endian encoding in one
step (build._build_items), when the dictionary's VR is known to agree.  Each step gives
the same bytes as the general path (build._build_element with its handlers) or None, and
the general path then builds the element with every check, warning and message.
"""

from __future__ import annotations

import math
import struct

from .documents import PairList, Pairs
from .numbers import _FL_LIMIT, _FUSED_BINARY, _SHORT_HEADER, _VR_BYTES, JsonNumber
from .vr import (
    ALL_VRS,
    BINARY_NUMERIC,
    LONG_HEADER_VRS,
    NEW_VRS,
    SINGLE_TEXT_VRS,
    TEXT_VRS,
    Element,
    PreEncoded,
)

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "ascii_element",
    "ascii_person_name",
    "ascii_values",
    "check_lengths",
    "dataset_built",
    "dataset_mark",
    "empty_element",
    "fused_number",
    "has_space",
    "keep_sequence",
    "recent_for",
    "remember",
    "reuse_sequence",
]

SPECIFIC_CHARACTER_SET = 0x00080005


def has_space(text: str) -> bool:
    r"""What ``re.compile(r"\s").search`` tells, as a truth value: whether the text holds a
    ``str.isspace()`` character; without ``re``, which a plain one-shot conversion does not
    import (start-up, issue 11).  Every such character is " " or not printable, which C
    checks first; only text failing that is looked at character by character."""
    if " " not in text and text.isprintable():
        return False
    return any(map(str.isspace, text))


# PS3.5 6.2 Table 6.2-1: maximum value lengths (characters; PN per component group)
_MAX_CHARS = {
    "AE": 16, "AS": 4, "CS": 16, "DA": 8, "DS": 16, "DT": 26, "IS": 12, "LO": 64, "LT": 10240,
    "PN": 64, "SH": 16, "ST": 1024, "TM": 14, "UI": 64,
}  # fmt: skip
# The fused path (PreEncoded): elements built with their Explicit VR Little Endian encoding,
# for the VRs with a short header (PS3.5 7.1.2) that -u leaves alone (PN has its own path)
_FUSED_TEXT = frozenset(TEXT_VRS - LONG_HEADER_VRS - {"PN"})
_PAD = {vr: b"\x00" if vr == "UI" else b" " for vr in TEXT_VRS}  # PS3.5 6.2, 7.1.1


# text VRs with a short header whose single value ascii_element takes as it is (IS and DS are
# checked value by value; PN is an object; UC, UR and UT have long headers)
_FAST_TEXT = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UI"})


def ascii_element(tag: int, vr: str, text: Any, ctx: Any) -> Element | None:
    """``{"vr": VR, "Value": [text]}`` fused (see PreEncoded) for a VR of _FAST_TEXT whose
    dictionary VR agreed before, ASCII text without a backslash, within the VR's length.
    None for anything else: the general path (_build_element) then builds it, with every
    check and message."""
    if (
        type(text) is not str
        or ctx.vr_agreed.get(tag) != vr
        or (tag == SPECIFIC_CHARACTER_SET and vr != "CS")
    ):
        return None
    if not text.isascii() or "\\" in text:
        return None
    # PS3.5 6.2: trailing spaces (and NUL padding) are not significant (DCMTK strips them)
    text = text.rstrip(" \x00")
    n = len(text)
    if not 0 < n <= _MAX_CHARS[vr] or n > ctx.max_value or ctx.decoded_bytes + n > ctx.max_dataset:
        return None
    if vr == "UI" and (text[0] == "=" or has_space(text)):
        return None  # a UID keyword, or whitespace to remove with a warning
    ctx.decoded_bytes += n
    value = text.encode("ascii")
    padded = value + _PAD[vr] if n & 1 else value
    head = _SHORT_HEADER(tag >> 16, tag & 0xFFFF, _VR_BYTES[vr], len(padded))
    return PreEncoded(tag, vr, text, head + padded)


# Recent: per dictionary (by id, as build._VR_AGREED), JSON key -> the element the fused
# path built last for that key, and the JSON content it was built from.  The headers of one
# series repeat most values from dataset to dataset (of a CT header's ~160 elements, ~150
# are the same in the next slice's), and the same content, with the same VR, is the same
# element: build._build_items hands out the one built before (its ``n`` decoded bytes and
# the element counted against the limits as if built again).  One entry per key, so memory
# is bounded by the tags seen, not by the datasets converted.  The elements are shared
# between datasets: nothing changes an element after it is built but the character set
# step, which leaves PreEncoded elements alone.
#
# An entry is (tag, content, exact, n, element, type, token): ``content`` the element's
# JSON object as (name, value) pairs, [("vr", VR), ("Value", [...])] or [("vr", VR)];
# ``exact`` when its values are all strings, which are equal only to the same strings;
# otherwise it holds one number, whose ``type`` and ``token`` must match as well: equal
# numbers are not the same element (1.0 and 1.00 are spelled differently in DS, 7 and 7.0
# too, and 1 and true are not the same JSON; CONTRACT §7)
if TYPE_CHECKING:
    Recent = dict[Any, tuple[Any, ...]]  # str keys: elements; (key,): sequences
_RECENT: dict[int, Recent] = {}
_RECENT_MAX = 20_000  # keys remembered per dictionary (private tags are many)
# and about this many value bytes (counted as entries are made, replaced ones too): memory
# stays bounded whatever the input holds (20,000 private LT values of 10 KB would be 200 MB)
_BYTES_MAX = 16 << 20


class _Memory:
    """When Recent is used: not for the first dataset of a process (json2dcm builds one:
    remembering it would only cost), and not for the next _REST when most of a dataset's
    elements were not the ones remembered (a stream of unrelated datasets: every element
    would cost a look-up and a new entry)."""

    __slots__ = ("kept_bytes", "remembered", "rest")

    def __init__(self, rest: int = 1) -> None:
        self.rest = rest  # datasets still to build without Recent
        self.remembered = 0  # elements remembered so far
        self.kept_bytes = 0  # value bytes kept since Recent was last emptied


_STATE = _Memory()
_REST = 32


def recent_for(dictionary: object) -> Recent | None:
    """The Recent of ``dictionary``'s VRs for the next dataset, or None (see _STATE)."""
    if _STATE.rest:
        return None
    return _RECENT.setdefault(id(dictionary), {})


def dataset_mark(ctx: Any) -> tuple[int, int]:
    """Before a dataset: the elements remembered so far and the entries of its Recent."""
    return _STATE.remembered, len(ctx.recent or ())


def dataset_built(ctx: Any, mark: tuple[int, int]) -> None:
    """After a dataset; ``mark``: _STATE.remembered and the entries of Recent before it."""
    if ctx.recent is None:
        _STATE.rest = max(0, _STATE.rest - 1)
    elif mark[1] and (_STATE.remembered - mark[0]) * 2 > ctx.elements:
        _STATE.rest = _REST  # most of it was new: not worth remembering for a while


def _make_room(recent: Recent, key: object, n: int) -> None:
    """Empty ``recent`` when one more key, or ``n`` more bytes, would go past the bounds
    (a stream of ever new private tags, or large values: start again)."""
    _STATE.kept_bytes += n
    if (len(recent) >= _RECENT_MAX and key not in recent) or _STATE.kept_bytes > _BYTES_MAX:
        recent.clear()
        _STATE.kept_bytes = n


def remember(
    recent: Recent,
    key: str,
    tag: int,
    vr: str,
    values: list[Any] | None,
    n: int,
    elem: Element,
) -> None:
    """Keep ``elem``, built from ``{"vr": vr, "Value": values}`` (``{"vr": vr}`` for None)
    under ``key`` (see Recent), for the next dataset."""
    if vr == "SQ":
        return  # sequences are kept by keep_sequence, with their nested counts
    t: type = str
    token: Any = None
    if values is not None and not _all_text(values):
        if len(values) != 1:
            return
        t = type(values[0])
        if t is JsonNumber:
            token = values[0].text
        elif t is int:
            token = values[0]
        else:
            return
    _make_room(recent, key, n)
    content = [("vr", vr)] if values is None else [("vr", vr), ("Value", list(values))]
    recent[key] = (tag, content, t is str, n, elem, t, token)
    _STATE.remembered += 1


def _all_text(value: Any) -> bool:
    """Strings only, in lists and objects (pairs): equal is then the same JSON."""
    t = type(value)
    if t is str:
        return True
    if t is list or t is tuple or t is PairList:
        return all(type(v) is str or _all_text(v) for v in value)
    if t is Pairs:
        return _all_text(value.pairs)
    return False


# Sequences are kept in Recent too, under (key,): (content, nested elements, decoded bytes,
# the largest piece, element, changes).  Only one whose items hold PreEncoded elements alone and were
# built without a warning, from strings alone: nothing in it changes after it is built (the
# character set step leaves PreEncoded elements alone), and the same content is the same
# sequence.  Its nested elements and bytes count against the limits as if built again.
_SEQUENCE_MAX = 1 << 16  # bytes of a sequence kept (headers' sequences are small)


def reuse_sequence(key: str, pairs: list[Any], ctx: Any, depth: int) -> Element | None:
    """The sequence built last under ``key`` if ``pairs`` is the same content (an SQ
    element whose dictionary VR agrees), within the limits; None: build it."""
    seen = None if ctx.recent is None else ctx.recent.get((key,))
    if seen is None or pairs != seen[0]:
        return None
    limit = ctx.options.limits.max_depth
    if limit and depth + 1 >= limit:
        return None  # build._sequence says why
    nested, n, widest, elem = seen[1], seen[2], seen[3], seen[4]
    if (
        ctx.elements + nested > ctx.max_elements
        or ctx.decoded_bytes + n > ctx.max_dataset
        or widest > ctx.max_value
    ):
        return None
    ctx.elements += nested
    ctx.decoded_bytes += n
    return elem  # type: ignore[no-any-return]


def keep_sequence(
    key: str, pairs: list[Any], elem: Element, ctx: Any, before: tuple[int, int], warned: int
) -> None:
    """Keep the sequence ``elem`` just built from ``pairs`` for reuse_sequence, if it can
    serve again (``before``: the counts before it was built; ``warned``: the problems
    reported before, Problems.warned and its +E errors)."""
    items = elem.value
    problems = ctx.problems
    if type(items) is not list or problems.warned + len(problems.warnings) != warned:
        return
    recent = ctx.recent
    if recent is None:
        return
    old = recent.get((key,))
    if old is not None and old[5] % 64 > 0:
        # it changed the last time too (a sequence of per-dataset UIDs): kept as it was,
        # and looked at again every 64th change
        recent[(key,)] = (*old[:5], old[5] + 1, None)
        return
    widest = 0
    for item in items:
        for e in item.values():
            if type(e) is not PreEncoded:
                return
            widest = max(widest, len(e.piece))
    n = ctx.decoded_bytes - before[1]
    if n > _SEQUENCE_MAX or not _all_text(pairs):
        return
    _make_room(recent, (key,), n)
    changes = 0 if old is None else old[5] + 1  # 1: it changed once
    recent[(key,)] = (list(pairs), ctx.elements - before[0], n, widest, elem, changes, None)


def ascii_person_name(tag: int, value: Any, ctx: Any) -> Element | None:
    """``{"vr": "PN", "Value": [{"Alphabetic": text}]}`` fused as ascii_element fuses text
    (PS3.18 F.2.2): ASCII without a backslash, within the 64 characters of a component
    group (PS3.5 6.2); the same element as _person_names builds.  None for anything else."""
    t = type(value)
    pairs: list[Any] = value if t is PairList else value.pairs if t is Pairs else []
    if len(pairs) != 1:
        return None
    name, text = pairs[0]
    if name != "Alphabetic" or type(text) is not str or len(text) > _MAX_CHARS["PN"]:
        return None
    if not text.isascii() or "\\" in text:
        return None
    text = text.rstrip(" \x00")
    n = len(text)
    if not n or n > ctx.max_value or ctx.decoded_bytes + n > ctx.max_dataset:
        return None
    ctx.decoded_bytes += n
    data = text.encode("ascii")
    padded = data + b" " if n & 1 else data  # PS3.5 6.2: PN pads with a space
    head = _SHORT_HEADER(tag >> 16, tag & 0xFFFF, _VR_BYTES["PN"], len(padded))
    return PreEncoded(tag, "PN", text, head + padded)


# an empty element of these VRs is its short header alone (PS3.5 7.1.2), whatever -u says
_EMPTY_FUSED = frozenset(ALL_VRS - LONG_HEADER_VRS - NEW_VRS)


def empty_element(tag: int, vr: str) -> Element:
    """``{"vr": VR}`` (PS3.18 F.2.5: no value): PreEncoded where its encoding is known."""
    if vr in _EMPTY_FUSED:
        return PreEncoded(tag, vr, None, _SHORT_HEADER(tag >> 16, tag & 0xFFFF, _VR_BYTES[vr], 0))
    return Element(tag, vr, None)


def check_lengths(vr: str, values: list[Any], ctx: Any, path: Any) -> None:
    """Warn about the first value longer than VR allows (build's general path)."""
    # PS3.5 6.2 Table 6.2-1: longer values are a warning, not an error (CONTRACT §4)
    limit = _MAX_CHARS[vr]
    for value in values:
        n = len(value.rstrip(" \x00")) if isinstance(value, str) else 0
        if n > limit:
            ctx.problems.warn(
                f"value of {n} characters is longer than the {limit} allowed for VR {vr} (PS3.5 6.2)",
                path,
            )
            return


# text VRs whose values ascii_values joins as they are (UI values are checked one by one)
_MULTI_FAST = frozenset(_FAST_TEXT - SINGLE_TEXT_VRS - {"UI"})


def ascii_values(tag: int, vr: str, values: list[Any], ctx: Any) -> Element | None:
    """``{"vr": VR, "Value": [texts]}`` with several values (CS "ORIGINAL\\PRIMARY"), fused
    as ascii_element fuses one: ASCII strings without a backslash, none longer than the VR
    allows (PS3.5 6.2); the same element as _text builds.  None for anything else."""
    if (
        vr not in _MULTI_FAST
        or ctx.vr_agreed.get(tag) != vr
        or (tag == SPECIFIC_CHARACTER_SET and vr != "CS")
    ):
        return None
    for v in values:
        if type(v) is not str:
            return None
    text = "\\".join(values)
    if not text.isascii() or text.count("\\") != len(values) - 1:
        return None  # a backslash inside a value would change the value multiplicity
    # PS3.5 6.2: trailing spaces (and NUL padding) are not significant (DCMTK strips them,
    # of the last value: _text_element strips the joined text)
    text = text.rstrip(" \x00")
    n = len(text)
    limit = _MAX_CHARS[vr]
    if n > limit and any(len(v.rstrip(" \x00")) > limit for v in values):
        return None  # the general path warns about it (check_lengths)
    if not n or n > ctx.max_value or ctx.decoded_bytes + n > ctx.max_dataset:
        return None
    ctx.decoded_bytes += n
    value = text.encode("ascii")
    padded = value + _PAD[vr] if n & 1 else value
    head = _SHORT_HEADER(tag >> 16, tag & 0xFFFF, _VR_BYTES[vr], len(padded))
    return PreEncoded(tag, vr, text, head + padded)


_ONE_BINARY = {vr: struct.Struct("<" + code).pack for vr, code in BINARY_NUMERIC.items()}
_FUSED_NUMBER = frozenset({"DS", "IS"} | _FUSED_BINARY)


def fused_number(tag: int, vr: str, values: list[Any], ctx: Any) -> Element | None:
    """``{"vr": VR, "Value": [numbers]}`` for DS and IS (any count), and one number of a
    short binary VR, fused in one step (build._build_items, whose caller knows the
    dictionary agrees with ``vr``): the same bytes as the general path (binary_numbers,
    plain_numbers and the text element).  None for anything else (a value that needs
    rewriting, a warning or an error, a limit reached): the general path then builds it,
    with every check and message."""
    if vr == "DS" or vr == "IS":
        texts: list[str] = []
        for v in values:
            t = type(v)
            if t is JsonNumber and vr == "DS":
                text = v.text  # the token as written (CONTRACT §7)
            elif t is int and (vr == "DS" or -(1 << 31) <= v < (1 << 31)):
                text = str(v)
            else:
                return None
            # DS/IS values of at most 16 characters (PS3.5 6.2); longer ones are rewritten
            # or warned about by the general path
            if len(text) > 16:
                return None
            texts.append(text)
        text = texts[0] if len(texts) == 1 else "\\".join(texts)
        n = len(text)
        if n >= 0xFFFF or n > ctx.max_value or ctx.decoded_bytes + n > ctx.max_dataset:
            return None
        ctx.decoded_bytes += n
        value = text.encode("ascii")
        padded = value + b" " if n & 1 else value  # PS3.5 6.2: DS and IS pad with a space
        return PreEncoded(
            tag,
            vr,
            text,
            _SHORT_HEADER(tag >> 16, tag & 0xFFFF, _VR_BYTES[vr], len(padded)) + padded,
        )
    if len(values) != 1:
        return None
    v = values[0]
    t = type(v)
    if vr == "FD" or vr == "FL":
        if t is not JsonNumber and not (t is int and -(1 << 53) <= v <= (1 << 53)):
            return None
        f = float(v)
        if not math.isfinite(f) or (vr == "FL" and abs(f) > _FL_LIMIT):
            return None
        data = _ONE_BINARY[vr](f)
    elif t is int:
        try:  # struct checks the range; the general path explains the error
            data = _ONE_BINARY[vr](v)
        except struct.error:
            return None
    else:
        return None
    n = len(data)
    if n > ctx.max_value or ctx.decoded_bytes + n > ctx.max_dataset:
        return None
    ctx.decoded_bytes += n
    return PreEncoded(
        tag, vr, data, _SHORT_HEADER(tag >> 16, tag & 0xFFFF, _VR_BYTES[vr], n) + data
    )
