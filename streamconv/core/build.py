"""One dataset's DICOM JSON (PS3.18 F.2) -> elements, per VR, with element paths in errors.

Strict under -E, DCMTK-like under +E (CONTRACT §4): every problem goes through
:meth:`Problems.error`, which raises under -E and warns under +E; the code after it is what
+E does (DCMTK's result, or the element dropped where DCMTK's result is garbage).
"""

from __future__ import annotations

import binascii
import struct
from decimal import Decimal

from ..errors import ContentError, LimitError, Problems, StreamconvError
from ..options import ConvertOptions
from . import bulkdata
from .dictionary import Dictionary, get_dictionary
from .documents import SPILL_PREFIX, PairList, Pairs, SpillStore, decode_base64
from .fused import (
    _FAST_TEXT,
    _FUSED_NUMBER,
    _FUSED_TEXT,
    _MAX_CHARS,
    _PAD,
    SPECIFIC_CHARACTER_SET,
    ascii_element,
    ascii_person_name,
    ascii_values,
    check_lengths,
    dataset_built,
    dataset_mark,
    empty_element,
    fused_number,
    has_space,
    keep_sequence,
    recent_for,
    remember,
    reuse_sequence,
)
from .lazylog import lazy_logger
from .numbers import (
    _SHORT_HEADER,
    _VR_BYTES,
    JsonNumber,
    binary_numbers,
    count_bytes,
    decimal_text,
    ds_value,
    is_value,
    json_type,
    plain_numbers,
)
from .vr import (
    ALL_VRS,
    BINARY_NUMERIC,
    BYTE_VRS,
    MULTI_TEXT_VRS,
    SINGLE_TEXT_VRS,
    TEXT_VRS,
    WORD_SIZE,
    Element,
    PreEncoded,
    pre_encoding_pays,
    tag_path,
)

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["BuildContext", "Built", "build_dataset"]

log = lazy_logger(__name__)

Dataset = dict[int, Element]
_OBJECTS = frozenset(
    {Pairs, PairList}
)  # a JSON object as ijson (Pairs) or json (PairList) builds it

PIXEL_DATA = 0x7FE00010
_HEX = "0123456789ABCDEFabcdef"
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
_ATTRS = {
    "vr": "vr",
    "value": "Value",
    "inlinebinary": "InlineBinary",
    "bulkdatauri": "BulkDataURI",
}
# DCMTK's internal pseudo-VRs, accepted under +E only (dcmtk-behavior §5.1)
_PSEUDO_VRS = {"ox": "OB", "xs": "US", "up": "UL", "lt": "OW", "px": "OW"}
_CHECKED_TEXT = frozenset({"UI", "IS", "DS"})  # text VRs whose values are checked one by one
_NO_LIMIT = 1 << 62
_ITEM_TAG = "an item or delimitation tag (group FFFE, PS3.5 7.5) is not a data element"


class BuildContext:
    """What building one dataset needs besides its JSON."""

    __slots__ = (
        "base_dir", "base_url", "decoded_bytes", "dictionary", "elements", "first_http_uri",
        "fuse", "max_dataset", "max_elements", "max_value", "options", "problems", "recent",
        "run_key", "source", "spills", "temporaries", "vr_agreed",
    )  # fmt: skip

    def __init__(
        self,
        options: ConvertOptions,
        problems: Problems,
        source: str = "",
        base_dir: str | None = None,
    ) -> None:
        self.options = options
        self.problems = problems
        self.source = source
        self.base_dir = base_dir
        self.base_url: str | None = None  # an http(s) input: relative URIs resolve against it
        self.run_key: object = None  # http values are fetched once per run (httpfetch cache)
        self.first_http_uri = ""  # names the DICOMweb server for --fetch-frames
        self.temporaries: list[str] = []  # fetched values' files (removed if the dataset fails)
        self.spills = SpillStore()
        self.dictionary: Dictionary = get_dictionary()
        self.vr_agreed = _VR_AGREED.setdefault(id(self.dictionary), {})
        self.recent = recent_for(self.dictionary)  # fused.Recent, or None (fused.recent_for)
        self.elements = 0
        self.decoded_bytes = 0
        # the limits as plain ints (0 = unlimited becomes "never"): checked for every value
        limits = options.limits
        self.max_value = limits.max_value_bytes or _NEVER
        self.max_dataset = limits.max_dataset_bytes or _NEVER
        self.max_elements = limits.max_elements or _NEVER
        self.fuse = pre_encoding_pays(options)


_NEVER = 1 << 62


class Built:
    __slots__ = ("dataset", "meta", "warnings")

    def __init__(self, dataset: Dataset, meta: Dataset) -> None:
        self.dataset = dataset
        self.meta = meta  # top-level group 0002 elements (with +f)
        self.warnings: list[str] = []  # +E: what was tolerated


_TAG_CACHE: dict[str, int] = {}


def _key_tag(key: str) -> int | None:
    tag = _TAG_CACHE.get(key)
    if tag is not None:
        return tag
    if len(key) == 8 and not key.strip(_HEX):  # 8 hex digits, without re (start-up)
        tag = int(key, 16)
        if len(_TAG_CACHE) < 65536:
            _TAG_CACHE[key] = tag
        return tag
    return None


class _Path:
    """An element path, formatted only when a message needs it (hot path)."""

    __slots__ = ("prefix", "tag")

    def __init__(self, prefix: str, tag: int) -> None:
        self.prefix = prefix
        self.tag = tag

    def __str__(self) -> str:
        return self.prefix + tag_path(self.tag)


def build_dataset(value: Any, ctx: BuildContext, *, in_array: bool = False) -> Built:
    """Build the top-level dataset; ``in_array`` marks a +ar item (group 0002 dropped)."""
    if not isinstance(value, Pairs):
        raise ContentError(
            f"datasets must be encapsulated in a JSON object, found {json_type(value)}"
        )
    meta: Dataset = {}
    mark = dataset_mark(ctx)
    ds = _build_items(value, ctx, "", 0, meta if (ctx.options.read_meta and not in_array) else None)
    dataset_built(ctx, mark)
    return Built(ds, meta)


def _build_items(
    obj: Pairs, ctx: BuildContext, prefix: str, depth: int, meta: Dataset | None
) -> Dataset:
    ds: Dataset = {}
    problems = ctx.problems
    tags = _TAG_CACHE
    fuse = ctx.fuse
    recent = ctx.recent
    for key, content in obj.pairs:
        if fuse and recent:
            # the element this key had last (fused.Recent): the headers of a series repeat
            # most; the same JSON content (compared at C speed) is the same element
            seen = recent.get(key)
            if seen is not None:
                # a PairList (the json module's object) is its pairs; ijson builds Pairs
                pairs = content if type(content) is PairList else getattr(content, "pairs", None)
            if (
                seen is not None
                and pairs == seen[1]
                and (
                    seen[2]  # strings only: equal is the same
                    or (
                        type(number := pairs[1][1][0]) is seen[5]
                        and (type(number) is not JsonNumber or number.text == seen[6])
                    )
                )
            ):
                known = seen[0]
                n = seen[3]
                if (
                    known not in ds
                    and ctx.elements < ctx.max_elements
                    and n <= ctx.max_value
                    and ctx.decoded_bytes + n <= ctx.max_dataset
                ):
                    ctx.elements += 1
                    ctx.decoded_bytes += n
                    ds[known] = seen[4]
                    continue
        tag = tags.get(key)
        if tag is None:
            tag = _key_tag(key)
        if tag is None:
            problems.error(
                ContentError(
                    f"attribute tag must be 8 hexadecimal digits, found '{key}'",
                    path=prefix.rstrip(".") or "",
                )
            )
            continue
        group = tag >> 16
        if tag & 0xFFFF == 0:
            continue  # group length: dropped everywhere, (0002,0000) recomputed (PS3.5 7.2)
        if group == 0xFFFE:  # PS3.5 7.5: they frame items; as elements they end them early
            problems.error(ContentError(_ITEM_TAG, path=_Path(prefix, tag)))
            continue
        if tag in ds or (group == 2 and meta is not None and tag in meta):
            problems.error(
                ContentError("duplicate tag in one dataset or item", path=_Path(prefix, tag))
            )
            continue
        ctx.elements += 1
        sequence: Any = None  # a sequence's content, to keep once built (fused.keep_sequence)
        if fuse and group != 2 and type(content) in _OBJECTS and ctx.elements <= ctx.max_elements:
            pairs = content if type(content) is PairList else content.pairs
            if len(pairs) == 2:
                # the commonest elements, {"vr": VR, "Value": [text or numbers]}, in one step
                (k1, vr), (k2, values) = pairs
                if k1 == "vr" and k2 == "Value" and type(values) is list and type(vr) is str:
                    before = ctx.decoded_bytes
                    fast = None
                    if vr in _FAST_TEXT:
                        if len(values) == 1:
                            fast = ascii_element(tag, vr, values[0], ctx)
                        else:
                            fast = ascii_values(tag, vr, values, ctx)
                    elif vr in _FUSED_NUMBER and values and ctx.vr_agreed.get(tag) == vr:
                        # numbers (DS, IS, US, SS, ...): a third of a CT header's elements
                        fast = fused_number(tag, vr, values, ctx)
                    elif vr == "PN" and len(values) == 1 and ctx.vr_agreed.get(tag) == vr:
                        fast = ascii_person_name(tag, values[0], ctx)
                    elif vr == "SQ" and ctx.vr_agreed.get(tag) == vr:
                        fast = reuse_sequence(key, pairs, ctx, depth)
                        sequence = pairs
                    if fast is not None:
                        ds[tag] = fast
                        if recent is not None:
                            remember(recent, key, tag, vr, values, ctx.decoded_bytes - before, fast)
                        continue
            elif len(pairs) == 1 and pairs[0][0] == "vr":
                # {"vr": VR}: an empty element (PS3.18 F.2.5), as _build_element builds it
                # once the dictionary's VR is known to agree (a sequence's list and the
                # pixel data and character set elements, checked there, are left to it)
                vr = pairs[0][1]
                if (
                    type(vr) is str
                    and ctx.vr_agreed.get(tag) == vr
                    and vr != "SQ"
                    and tag != PIXEL_DATA
                    and tag != SPECIFIC_CHARACTER_SET
                ):
                    ds[tag] = empty = empty_element(tag, vr)
                    if recent is not None:
                        remember(recent, key, tag, vr, None, 0, empty)
                    continue
        path: Any = _Path(prefix, tag)
        if ctx.elements > ctx.max_elements:
            limit = ctx.options.limits.max_elements
            raise LimitError(
                f"more than {limit} elements in one dataset (limit --max-elements)", path=path
            )
        counts, warned = (ctx.elements, ctx.decoded_bytes), problems.warned + len(problems.warnings)
        try:
            elem = _build_element(tag, content, ctx, path, depth, obj)
        except StreamconvError as exc:
            if not exc.path:
                exc.path = str(path)
            if isinstance(exc, LimitError) or problems.strict:
                raise
            problems.error(exc)
            continue
        if elem is None:
            continue
        if sequence is not None:
            keep_sequence(key, sequence, elem, ctx, counts, warned)
        if group == 2:
            # PS3.10 7.1: file meta belongs in the meta header; in items it is dropped.
            if meta is not None and not prefix:
                meta[tag] = elem
            continue
        ds[tag] = elem
    return ds


def _build_element(
    tag: int, content: Any, ctx: BuildContext, path: Any, depth: int, siblings: Pairs | None = None
) -> Element | None:
    if not isinstance(content, Pairs):
        raise ContentError(f"element content must be a JSON object, found {json_type(content)}")
    pairs = content.pairs
    if len(pairs) == 2 and tag != PIXEL_DATA:
        # fast path: the usual {"vr": "XX", "Value": [...]}
        (k1, vr), (k2, values) = pairs
        if (
            k1 == "vr"
            and k2 == "Value"
            and type(vr) is str  # a list or an object is not hashable (found by review)
            and vr in ALL_VRS
            and (vr == "CS" or tag != SPECIFIC_CHARACTER_SET)
        ):
            handler = _VALUE_HANDLERS.get(vr)
            if handler is not None and type(values) is list:
                _check_dictionary_vr(tag, vr, ctx, path)
                elem: Element | None = handler(tag, vr, values, ctx, path)
                return elem
    problems = ctx.problems
    vr_raw: Any = None
    have_vr = False
    kind = ""
    payload: Any = None
    for name, val in content.pairs:
        attr = _ATTRS.get(name.lower())  # attribute names compared case-insensitively (DCMTK)
        if attr is None:
            problems.error(
                ContentError(
                    f"unknown attribute name '{name}' (expected vr, Value, InlineBinary or BulkDataURI)",
                    path=path,
                )
            )
            return None
        if attr == "vr":
            if have_vr:
                problems.warn("attribute 'vr' given twice, the first is used", path)
                continue
            have_vr, vr_raw = True, val
            continue
        if kind:
            problems.error(
                ContentError(
                    f"more than one of Value/InlineBinary/BulkDataURI ('{kind}' and '{attr}')",
                    path=path,
                )
            )
            continue
        kind, payload = attr, val
    vr = _resolve_vr(tag, vr_raw, have_vr, ctx, path, siblings)
    if vr is None:
        return None
    if tag == SPECIFIC_CHARACTER_SET and vr != "CS":
        # its value decides how every text of the dataset is encoded (PS3.5 6.1.2.5), and
        # readers take it as CS: a sequence or a PN there makes the file unreadable
        # (pydicom fails); +E drops it (fuzz findings)
        problems.error(
            ContentError(f"Specific Character Set with VR {vr}; it must be CS (PS3.6)", path=path)
        )
        return None
    if tag == PIXEL_DATA:
        if kind == "Value":
            raise ContentError(
                "pixel data must not have a 'Value' attribute in the DICOM JSON model (PS3.18 F.2.7)"
            )
        if vr not in ("OB", "OW", "UN"):
            raise ContentError(f"pixel data with VR {vr} (expected OB or OW)")
    if not kind:
        return Element(
            tag, vr, [] if vr == "SQ" else None
        )  # no value: empty element (PS3.18 F.2.5)
    if kind == "Value":
        return _value(tag, vr, payload, ctx, path, depth)
    if kind == "InlineBinary":
        return _inline(tag, vr, payload, ctx, path)
    from .bulkuri import bulk_element  # only for datasets with BulkDataURI values

    return bulk_element(tag, vr, payload, ctx, path)


# per dictionary (by id; dictionaries are cached for the process): tag -> a VR known to agree
_VR_AGREED: dict[int, dict[int, str]] = {}


def _check_dictionary_vr(tag: int, vr: str, ctx: BuildContext, path: Any) -> None:
    # the JSON VR wins over the dictionary, with a warning (CONTRACT §4; DCMTK V5, V6, V8)
    if ctx.vr_agreed.get(tag) == vr:
        return
    choices = ctx.dictionary.vr_choices(tag)
    if not choices or vr in choices:
        if len(ctx.vr_agreed) < 100_000:
            ctx.vr_agreed[tag] = vr
        return
    if choices and vr not in choices:
        ctx.problems.warn(
            f"element has VR {vr}, the data dictionary says {'/'.join(sorted(choices))}; using {vr}",
            path,
        )


def _private_creator(tag: int, siblings: Pairs | None) -> str | None:
    """The value of the private creator element reserving ``tag``'s block (PS3.5 7.8.1)."""
    group, element = tag >> 16, tag & 0xFFFF
    if siblings is None or not group & 1 or element < 0x1000:
        return None
    creator_tag = group << 16 | element >> 8
    for key, content in siblings.pairs:
        if _key_tag(key) != creator_tag or not isinstance(content, Pairs):
            continue
        for name, value in content.pairs:
            first = value[0] if type(value) is list and value else None
            if name.lower() == "value" and isinstance(first, str):
                return first
    return None


def _resolve_vr(
    tag: int,
    vr_raw: Any,
    have_vr: bool,
    ctx: BuildContext,
    path: Any,
    siblings: Pairs | None = None,
) -> str | None:
    problems = ctx.problems
    if have_vr:
        if isinstance(vr_raw, str) and vr_raw in ALL_VRS:
            _check_dictionary_vr(tag, vr_raw, ctx, path)
            return vr_raw
        problems.error(ContentError(f"unknown or malformed vr {_show(vr_raw)}", path=path))
        # +E: DCMTK looks at the first two characters only
        if isinstance(vr_raw, str):
            head = vr_raw[:2]
            if head in ALL_VRS:
                return head
            if head in _PSEUDO_VRS:
                return _PSEUDO_VRS[head]
    dict_vr = ctx.dictionary.vr(tag, _private_creator(tag, siblings))
    if dict_vr is None:
        problems.error(
            ContentError("no vr given and the tag is not in the data dictionary", path=path)
        )
        return "UN"
    if not have_vr:
        problems.warn(f"missing 'vr' attribute, using the dictionary's VR ({dict_vr})", path)
    return dict_vr


def _show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else json_type(value)


# -- Value ---------------------------------------------------------------------------------


def _value(
    tag: int, vr: str, payload: Any, ctx: BuildContext, path: Any, depth: int
) -> Element | None:
    if type(payload) is not list:  # an object (PairList) is a list subclass
        raise ContentError(f"attribute Value must be a JSON array, found {json_type(payload)}")
    if vr == "SQ":
        return Element(tag, vr, _sequence(payload, ctx, path, depth))
    if vr == "PN":
        return Element(tag, vr, _person_names(payload, ctx, path))
    if vr in TEXT_VRS:
        return _text(tag, vr, payload, ctx, path)
    if vr in BINARY_NUMERIC:
        return binary_numbers(tag, vr, payload, ctx, path)
    if vr == "AT":
        return _tags(tag, payload, ctx, path)
    # OB/OW/UN/OF/OD/OL/OV with Value: DCMTK reads hex bytes/words or numbers (§5.10)
    return _binary_value(tag, vr, payload, ctx, path)


def _sequence(items: list[Any], ctx: BuildContext, path: Any, depth: int) -> list[Dataset]:
    limit = ctx.options.limits.max_depth
    if limit and depth + 1 >= limit:
        raise LimitError(
            f"sequences nested {depth + 1} levels deep; at most {limit - 1} are allowed (limit --max-depth {limit})"
        )
    out: list[Dataset] = []
    where = str(path)
    for i, item in enumerate(items, 1):
        ipath = f"{where}[{i}]"
        if not isinstance(item, Pairs):
            ctx.problems.error(
                ContentError(
                    f"sequence item must be a JSON object, found {json_type(item)}", path=ipath
                )
            )
            break  # +E: the sequence keeps the items before (DCMTK)
        out.append(_build_items(item, ctx, ipath + ".", depth + 1, None))
    return out


def _entry_text(v: Any, vr: str, ctx: BuildContext, path: Any) -> str | None:
    """One Value entry of a text VR as text; None for null."""
    if isinstance(v, str):
        return v
    if v is None:
        return None
    if isinstance(v, bool):
        ctx.problems.error(
            ContentError(f"VR {vr} value must be a string, found a boolean", path=path)
        )
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Decimal):
        return decimal_text(v)
    ctx.problems.error(
        ContentError(f"expected number, string or null, found {json_type(v)}", path=path)
    )
    return None


def _text(tag: int, vr: str, payload: list[Any], ctx: BuildContext, path: Any) -> Element | None:
    if len(payload) == 1 and type(payload[0]) is str:
        # fastest path, most elements: one plain string (a UID too, when it has no
        # whitespace and is not a "=keyword"; a backslash in a multi-valued VR is checked below)
        text = payload[0]
        if (
            vr not in _CHECKED_TEXT or (vr == "UI" and text[:1] != "=" and not has_space(text))
        ) and ("\\" not in text or vr in SINGLE_TEXT_VRS):
            return _text_element(tag, vr, text, ctx, path)
    if vr not in _CHECKED_TEXT and payload and all(type(v) is str for v in payload):
        # fast path: plain strings, no backslash inside a value (checked below otherwise)
        text = "\\".join(payload)
        if len(payload) == 1 if vr in SINGLE_TEXT_VRS else text.count("\\") == len(payload) - 1:
            return _text_element(tag, vr, text, ctx, path)
    if vr == "DS" or vr == "IS":
        plain = plain_numbers(vr, payload)
        if plain is not None:
            return _text_element(tag, vr, plain, ctx, path)
    problems = ctx.problems
    if vr in SINGLE_TEXT_VRS and len(payload) > 1:
        problems.error(
            ContentError(f"VR {vr} holds a single value, found {len(payload)}", path=path)
        )
    values: list[str] = []
    for v in payload:
        if vr == "IS":
            s = is_value(v, ctx.problems, path)
        elif vr == "DS":
            s = ds_value(v, ctx.problems, path)
        else:
            s = _entry_text(v, vr, ctx, path)
        if s is None:
            values.append("")
            continue
        if vr in MULTI_TEXT_VRS and "\\" in s:
            problems.error(
                ContentError(
                    f"backslash inside a {vr} value would change the value multiplicity", path=path
                )
            )
        values.append(s)
    text = "\\".join(values)
    if vr == "UI":
        if has_space(text):
            problems.warn("UI value contains whitespace, which was removed", path)
            text = "".join(text.split())
        if text.startswith("="):
            text = _uid_keyword(text[1:], path)
    return _text_element(tag, vr, text, ctx, path)


def _text_element(tag: int, vr: str, text: str, ctx: BuildContext, path: Any) -> Element:
    """The element of a text value, its values joined with backslashes."""
    # PS3.5 6.2: trailing spaces (and NUL padding) are not significant (DCMTK strips them)
    text = text.rstrip(" \x00")
    n = len(text)
    if n > _MAX_CHARS.get(vr, _NO_LIMIT):
        check_lengths(vr, text.split("\\") if vr in MULTI_TEXT_VRS else [text], ctx, path)
    count_bytes(ctx, n, path)
    if not n:
        return Element(tag, vr, None)
    if ctx.fuse and n < 0xFFFF and vr in _FUSED_TEXT and text.isascii():
        # ASCII is the same bytes in every character set (PS3.5 6.1.2.2): final already
        value = text.encode("ascii")
        padded = value + _PAD[vr] if n & 1 else value
        head = _SHORT_HEADER(tag >> 16, tag & 0xFFFF, _VR_BYTES[vr], len(padded))
        return PreEncoded(tag, vr, text, head + padded)
    return Element(tag, vr, text)


def _uid_keyword(keyword: str, path: Any) -> str:
    # DCMTK resolves '=Keyword' UI values (dcmtk-behavior §5.3)
    from .uids import uid_for_keyword

    uid = uid_for_keyword(keyword)
    if uid is None:
        raise ContentError(f"unknown UID keyword '={keyword}'", path=path)
    return uid


def _person_names(payload: list[Any], ctx: BuildContext, path: Any) -> str | None:
    problems = ctx.problems
    values: list[str] = []
    for v in payload:
        if v is None or v == "null":
            values.append("")  # DCMTK treats the string "null" as null for PN (§5.4)
            continue
        if not isinstance(v, Pairs):
            problems.error(
                ContentError(
                    f"PN value must be an object with Alphabetic/Ideographic/Phonetic, found {json_type(v)}",
                    path=path,
                )
            )
            values.append("")
            continue
        groups = {"Alphabetic": "", "Ideographic": "", "Phonetic": ""}
        for k, text in v.pairs:
            if k not in groups:
                problems.error(
                    ContentError(f"unknown PN component group '{k}' (PS3.18 F.2.2)", path=path)
                )
                continue
            if not isinstance(text, str):
                problems.error(
                    ContentError(
                        f"PN component group {k} must be a string, found {json_type(text)}",
                        path=path,
                    )
                )
                continue
            if "\\" in text:
                problems.error(
                    ContentError(
                        "backslash inside a PN value would change the value multiplicity", path=path
                    )
                )
            groups[k] = text  # duplicate keys: the last wins (DCMTK)
        a, i, p = groups["Alphabetic"], groups["Ideographic"], groups["Phonetic"]
        if max(len(a), len(i), len(p)) > _MAX_CHARS["PN"]:
            check_lengths("PN", [a, i, p], ctx, path)  # 64 per component group
        s = a
        if i or p:
            s += "=" + i
        if p:
            s += "=" + p
        values.append(s)
    text = "\\".join(values).rstrip(" \x00")
    count_bytes(ctx, len(text), path)
    return text or None


def _parse_tag(v: Any, ctx: BuildContext, path: Any) -> int | None:
    if not isinstance(v, str):
        ctx.problems.error(
            ContentError(f"AT values must be JSON strings, found {json_type(v)}", path=path)
        )
        return None
    t = _key_tag(v)
    if t is None:
        ctx.problems.error(
            ContentError(f"AT value must be 8 hexadecimal digits, found '{v}'", path=path)
        )
    return t


def _tags(tag: int, payload: list[Any], ctx: BuildContext, path: Any) -> Element | None:
    vals: list[int] = []
    for v in payload:
        t = _parse_tag(v, ctx, path)
        if t is None:
            return Element(tag, "AT", None)  # +E: AT zero length (DCMTK N27)
        vals += (t >> 16, t & 0xFFFF)
    count_bytes(ctx, 2 * len(vals), path)
    return Element(tag, "AT", struct.pack(f"<{len(vals)}H", *vals) if vals else None)


def _binary_value(
    tag: int, vr: str, payload: list[Any], ctx: BuildContext, path: Any
) -> Element | None:
    if vr in ("OF", "OD", "OL", "OV"):
        alias = {"OF": "FL", "OD": "FD", "OL": "UL", "OV": "UV"}[vr]
        elem = binary_numbers(tag, alias, payload, ctx, path)
        return None if elem is None else Element(tag, vr, elem.value)
    # OB/UN: hex bytes; OW: hex words (DCMTK §5.10)
    size = 2 if vr == "OW" else 1
    out = bytearray()
    for v in payload:
        text = (
            v
            if isinstance(v, str)
            else str(v)
            if isinstance(v, int) and not isinstance(v, bool)
            else v.text
            if type(v) is JsonNumber and v.integer_token  # -0, as before it kept its text
            else None
        )
        try:
            n = int(text, 16) if text is not None else -1
        except ValueError:
            n = -1
        if n < 0:
            ctx.problems.error(
                ContentError(
                    f"{vr} Value entries must be hexadecimal strings, found {_show(v)}", path=path
                )
            )
            return None
        out += (n & (0xFFFF if size == 2 else 0xFF)).to_bytes(size, "little")
    count_bytes(ctx, len(out), path)
    return Element(tag, vr, bytes(out) or None)


_VALUE_HANDLERS: dict[str, Any] = {
    **{vr: _text for vr in TEXT_VRS if vr != "PN"},
    **{vr: binary_numbers for vr in BINARY_NUMERIC},
}


# -- InlineBinary (BulkDataURI: bulkuri.py) ------------------------------------------------


def _inline(tag: int, vr: str, payload: Any, ctx: BuildContext, path: Any) -> Element | None:
    problems = ctx.problems
    if not isinstance(payload, str):
        raise ContentError(f"InlineBinary value must be a JSON string, found {json_type(payload)}")
    if vr not in BYTE_VRS:
        problems.error(
            ContentError(
                f"InlineBinary is not allowed for VR {vr} (only OB, OD, OF, OL, OV, OW, UN)",
                path=path,
            )
        )
        return None
    if payload.startswith(SPILL_PREFIX):
        spill = ctx.spills.take(int(payload[len(SPILL_PREFIX) :]))
        if spill is None:
            raise ContentError("internal error: spilled InlineBinary value not found")
        if spill.error:
            spill.discard()
            problems.error(ContentError(spill.error, path=path))
            return None
        _check_words(vr, spill.length, ctx, path)
        count_bytes(ctx, spill.length, path)
        if spill.path:
            ref = bulkdata.temporary_ref(
                spill.path, spill.length - spill.length % WORD_SIZE.get(vr, 1)
            )
            return Element(tag, vr, ref)
        data = bytes(spill.data or b"")
        spill.discard()
        return Element(tag, vr, _trim(vr, data) or None)
    try:
        data = decode_base64(payload)
    except (binascii.Error, ValueError) as exc:  # ValueError: a non-ASCII character
        problems.error(ContentError(f"invalid base64 in InlineBinary: {exc}", path=path))
        return Element(tag, vr, None)  # +E: DCMTK keeps the element empty (Q19)
    _check_words(vr, len(data), ctx, path)
    count_bytes(ctx, len(data), path)
    return Element(tag, vr, _trim(vr, data) or None)


def _trim(vr: str, data: bytes) -> bytes:
    w = WORD_SIZE.get(vr, 1)
    extra = len(data) % w
    return data[: len(data) - extra] if extra else data


def _check_words(vr: str, length: int, ctx: BuildContext, path: Any) -> None:
    w = WORD_SIZE.get(vr, 1)
    if length % w:
        ctx.problems.error(
            ContentError(f"{vr} value of {length} bytes is not a multiple of {w}", path=path)
        )
