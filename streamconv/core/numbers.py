"""Numbers in DICOM JSON: IS and DS values (PS3.5 6.2), JSON types in messages.

A JSON number given for IS or DS (PS3.18 F.2.3.1) arrives as an int or a Decimal; a string
arrives as text and is checked against the VR's grammar.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from ..errors import ContentError, Problems

__all__ = ["decimal_int", "decimal_text", "ds_value", "is_value", "json_type"]

_IS_TEXT = re.compile(r" *[+-]?[0-9]+ *\Z")
_DS_TEXT = re.compile(r" *[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)? *\Z")


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def decimal_text(d: Decimal) -> str:
    # JSON keeps the spelling of the number; Decimal keeps its digits and exponent.
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
    if math.isinf(f) or (f == 0 and d != 0):
        return _ds16_decimal(d)  # beyond the range of a double: 'inf' or '0' would be wrong
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
