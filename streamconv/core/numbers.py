"""Numbers in DICOM JSON: IS and DS values (PS3.5 6.2), JSON types in messages.

A JSON number given for IS or DS (PS3.18 F.2.3.1) arrives as an int or a
:class:`JsonNumber` (a Decimal that remembers the token's text, see core/documents.py); a
string arrives as text and is checked against the VR's grammar.

DCMTK copies a number's token text into DS, IS and the other text VRs as written
(dcmtk-behavior §5.3, §5.5: ``1e-06`` stays ``1e-06``, ``-0`` stays ``-0``), and so does
streamconv (CONTRACT §7).  The contract's rules then apply to that text: a DS longer than
16 characters is rewritten to the closest 16-character form, an integral IS given as
``4.0`` or ``1e3`` is written as an integer, both with a warning (CONTRACT §4).
"""

from __future__ import annotations

import math
import struct
import sys
from decimal import Decimal

from ..errors import ContentError, LimitError, Problems
from .lazyre import lazy_compile
from .vr import ALL_VRS, BINARY_NUMERIC, Element, PreEncoded

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "JsonNumber",
    "binary_element",
    "binary_numbers",
    "count_bytes",
    "decimal_int",
    "decimal_text",
    "ds_value",
    "is_value",
    "json_number",
    "json_type",
    "plain_numbers",
]

_IS_TEXT = lazy_compile(r" *[+-]?[0-9]+ *\Z")
_DS_TEXT = lazy_compile(r" *[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)? *\Z")


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if type(value) is list:  # a JSON object may be a PairList, a list subclass
        return "an array"
    return "an object"


class JsonNumber(Decimal):
    """A JSON number that is not a plain integer, with the text of its token.

    ijson builds these (documents.py hands them to its C parser in place of Decimal), and
    for ``-0``, the one integer token whose value loses its spelling, the pre-pass supplies
    the token as :data:`NEGATIVE_ZERO`.  Pickled with its text (frames go to workers).
    """

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> JsonNumber:
        self = Decimal.__new__(cls, text)
        self.text = "-0" if text == NEGATIVE_ZERO else text
        return self

    def __reduce__(self) -> tuple[type[JsonNumber], tuple[str]]:
        return (type(self), (self.text,))

    @property
    def integer_token(self) -> bool:
        """Spelled as a JSON integer (only ``-0`` arrives as a JsonNumber so)."""
        return "." not in self.text and "e" not in self.text and "E" not in self.text


def json_number(text: str, _new: Any = Decimal.__new__, _cls: Any = JsonNumber) -> JsonNumber:
    """``JsonNumber(text)`` for the json module's ``parse_float``: the same object, made
    without a Python-level ``__new__`` call (~0.1 us of ~0.3 us, 45 times per CT header)."""
    self: JsonNumber = _new(_cls, text)
    self.text = "-0" if text == NEGATIVE_ZERO else text
    return self


# The pre-pass spells an integer token ``-0`` so (a number ijson hands to JsonNumber, not to
# int(), which would lose its sign); JsonNumber gives it back its text "-0".
NEGATIVE_ZERO = "-0e-0000000000"


def decimal_text(d: Decimal) -> str:
    """The text of a JSON number: as written when known (JsonNumber), else from its digits."""
    if type(d) is JsonNumber:
        return d.text
    s = str(d)
    if "E" in s:
        s = s.replace("E+", "e").replace("E", "e")
    return s


def is_value(v: Any, problems: Problems, path: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        problems.error(ContentError("IS value must be an integer, found a boolean", path=path))
        return None
    if isinstance(v, int):
        n = v
    elif isinstance(v, Decimal):
        if type(v) is JsonNumber and v.integer_token:
            return v.text  # "-0": an integer token, written as given (dcmtk-behavior N11)
        if v.is_finite() and v == v.to_integral_value():
            n = decimal_int(v)
            if -(1 << 31) <= n < (1 << 31):
                problems.warn(f"IS value {decimal_text(v)} written as {n}", path)
        else:
            problems.error(
                ContentError(f"IS value must be an integer, found {decimal_text(v)}", path=path)
            )
            return decimal_text(v)
    elif isinstance(v, str):
        if not _IS_TEXT.match(v) or not v.strip():
            if v.strip() == "":
                return v
            problems.error(ContentError(f"IS value must be an integer, found '{v}'", path=path))
            return v
        n = _text_int(v)
        if -(1 << 31) <= n < (1 << 31):
            return v
    else:
        problems.error(
            ContentError(f"IS value must be a number or string, found {json_type(v)}", path=path)
        )
        return None
    if not -(1 << 31) <= n < (1 << 31):
        shown = (
            v.strip() if isinstance(v, str) else decimal_text(v) if isinstance(v, Decimal) else n
        )
        problems.error(
            ContentError(f"IS value {shown} outside [-2^31, 2^31-1] (PS3.5 6.2)", path=path)
        )
        if abs(n) == _HUGE:
            return str(shown)
    return str(n) if not isinstance(v, str) else v


_HUGE = 1 << 80  # beyond every integer VR's range (UV, SV: 64 bits)


def decimal_int(d: Decimal) -> int:
    """An integral Decimal as an int; one far out of every VR's range (1E+999999999 would
    need a billion digits) becomes +-2^80, which the range checks then refuse."""
    if d.adjusted() > 24:
        return -_HUGE if d < 0 else _HUGE
    return int(d)


def _text_int(text: str) -> int:
    """int() of a checked integer string, bounded like :func:`decimal_int` (int() refuses
    more than 4300 digits with ValueError, and takes quadratic time below that)."""
    digits = text.strip().lstrip("+-").lstrip("0")
    if len(digits) > 24:
        return -_HUGE if text.strip().startswith("-") else _HUGE
    return int(text)


def ds_value(v: Any, problems: Problems, path: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        problems.error(
            ContentError("DS value must be a decimal number, found a boolean", path=path)
        )
        return None
    if isinstance(v, (int, Decimal)):
        s = str(v) if isinstance(v, int) else decimal_text(v)
        if len(s) > 16:
            # PS3.5 6.2: DS is at most 16 bytes; keep the closest value that fits
            short = _ds16(Decimal(v))
            problems.warn(f"DS value {s} longer than 16 characters, written as {short}", path)
            s = short
        return s
    if isinstance(v, str):
        if v.strip() and not _DS_TEXT.match(v):
            problems.error(
                ContentError(f"DS value must be a decimal number, found '{v}'", path=path)
            )
        return v
    problems.error(
        ContentError(f"DS value must be a number or string, found {json_type(v)}", path=path)
    )
    return None


def _ds16(d: Decimal) -> str:
    if not d.is_finite():
        return str(d)
    f = float(d)
    if math.isinf(f) or (abs(f) < sys.float_info.min and d != 0):
        # beyond a double's range, or subnormal (few significant bits left): 'inf', '0' or
        # 1.234670049e-320 for 1.2345678901234567e-320 would be wrong
        return _ds16_decimal(d)
    for prec in range(17, 0, -1):
        for fmt in (f"{{:.{prec}g}}",):
            s = fmt.format(f)
            if "e" in s:
                mant, _, exp = s.partition("e")
                s = f"{mant}e{int(exp)}"
            if len(s) <= 16:
                return s
    return "0"


def _ds16_decimal(d: Decimal) -> str:
    """The closest DS text of at most 16 characters for a value outside a double's range
    (PS3.5 6.2: DS is a decimal string; its exponent is not bounded)."""
    for prec in range(15, -1, -1):
        mant, _, exp = f"{d:.{prec}e}".partition("e")
        if "." in mant:
            mant = mant.rstrip("0").rstrip(".")
        s = f"{mant}e{int(exp)}"
        if len(s) <= 16:
            return s
    raise ContentError(f"DS value {decimal_text(d)} cannot be written in 16 characters")


# -- building elements from numbers (core/build.py's value handlers) -----------------------

_INT_RANGE = {
    "US": (0, 0xFFFF), "SS": (-0x8000, 0x7FFF), "UL": (0, 0xFFFFFFFF),
    "SL": (-0x80000000, 0x7FFFFFFF), "UV": (0, (1 << 64) - 1), "SV": (-(1 << 63), (1 << 63) - 1),
}  # fmt: skip


_SHORT_HEADER = struct.Struct("<HH2sH").pack
_VR_BYTES = {vr: vr.encode() for vr in ALL_VRS}
_FUSED_BINARY = frozenset({"US", "SS", "UL", "SL", "FL", "FD"})


def count_bytes(ctx: Any, n: int, path: str) -> None:
    ctx.decoded_bytes += n
    if n <= ctx.max_value and ctx.decoded_bytes <= ctx.max_dataset:
        return
    ctx.decoded_bytes -= n
    limits = ctx.options.limits
    if limits.max_value_bytes and n > limits.max_value_bytes:
        raise LimitError(
            f"value of {n} bytes exceeds the limit of {limits.max_value_bytes} (--max-value-bytes)",
            path=path,
        )
    ctx.decoded_bytes += n
    if limits.max_dataset_bytes and ctx.decoded_bytes > limits.max_dataset_bytes:
        raise LimitError(
            f"dataset exceeds the limit of {limits.max_dataset_bytes} decoded bytes (--max-dataset-bytes)",
            path=path,
        )


def binary_element(tag: int, vr: str, data: bytes, ctx: Any) -> Element:
    """A binary numeric element (little endian, even length), with its encoding if fused."""
    if ctx.fuse and vr in _FUSED_BINARY and len(data) < 0xFFFF:
        return PreEncoded(
            tag, vr, data, _SHORT_HEADER(tag >> 16, tag & 0xFFFF, _VR_BYTES[vr], len(data)) + data
        )
    return Element(tag, vr, data)


def plain_numbers(vr: str, payload: list[Any]) -> str | None:
    """The DS or IS value of JSON numbers that need no rewriting, no warning and no error
    (DS: at most 16 characters; IS: integers in range), as written; None otherwise (then
    numbers.ds_value / is_value decide, one value at a time)."""
    texts: list[str] = []
    for v in payload:
        t = type(v)
        if t is int:
            if vr == "IS" and not -(1 << 31) <= v < (1 << 31):
                return None
            s = str(v)
        elif t is JsonNumber and vr == "DS":
            s = v.text
        else:
            return None
        if len(s) > 16:
            return None
        texts.append(s)
    return "\\".join(texts) if texts else None


_PACKERS: dict[tuple[int, str], Any] = {}  # (count, struct code) -> Struct.pack


# IEEE 754 binary32 round to nearest: below (2 - 2^-24) * 2^127 a double becomes at most
# FLT_MAX (0x7F7FFFFF), as DCMTK's cast gives; 3.4028235e38, FLT_MAX's shortest decimal, too
_FL_LIMIT = math.ldexp(2 - 2**-24, 127) * (1 - 2**-53)


def binary_numbers(tag: int, vr: str, payload: list[Any], ctx: Any, path: Any) -> Element | None:
    code = BINARY_NUMERIC[vr]
    if payload and vr not in ("FL", "FD") and all(type(v) is int for v in payload):
        key = (len(payload), code)
        pack = _PACKERS.get(key)
        if pack is None:
            pack = struct.Struct(f"<{len(payload)}{code}").pack
            if len(_PACKERS) < 256:
                _PACKERS[key] = pack
        try:  # fast path: struct checks the range; the slow path below explains errors
            data = pack(*payload)
        except struct.error:
            pass
        else:
            count_bytes(ctx, len(data), path)
            return binary_element(tag, vr, data, ctx)
    problems = ctx.problems
    nums: list[Any] = []
    is_float = vr in ("FL", "FD")
    for v in payload:
        if v is None:
            if len(payload) == 1:
                return Element(tag, vr, None)  # [null] is an empty value (DCMTK)
            problems.error(ContentError(f"null inside a {vr} value list", path=path))
            return None  # +E: DCMTK fails the whole element
        if isinstance(v, bool) or not isinstance(v, (int, Decimal, str)):
            problems.error(
                ContentError(f"{vr} value must be a number, found {json_type(v)}", path=path)
            )
            return None
        if isinstance(v, str):
            problems.error(
                ContentError(f"{vr} value must be a JSON number, found the string '{v}'", path=path)
            )
            try:
                v = Decimal(v.strip())
            except ArithmeticError:
                return None
        if is_float:
            f = float(v)
            if not math.isfinite(f) or (vr == "FL" and abs(f) > _FL_LIMIT):
                shown = decimal_text(v) if isinstance(v, Decimal) else str(v)
                problems.error(
                    ContentError(f"{vr} value {shown} is not a finite {vr} number", path=path)
                )
                return None
            nums.append(f)
        else:
            if isinstance(v, Decimal):
                if not v.is_finite() or v != v.to_integral_value():
                    problems.error(
                        ContentError(
                            f"{vr} value must be an integer, found {decimal_text(v)}", path=path
                        )
                    )
                    return None
                shown = decimal_text(v)
                v = decimal_int(v)
            else:
                shown = v
            lo, hi = _INT_RANGE[vr]
            if not lo <= v <= hi:
                problems.error(ContentError(f"{vr} value {shown} outside [{lo}, {hi}]", path=path))
                return None
            nums.append(v)
    if not nums:
        return Element(tag, vr, None)
    data = struct.pack(f"<{len(nums)}{code}", *nums)
    count_bytes(ctx, len(data), path)
    return binary_element(tag, vr, data, ctx)
