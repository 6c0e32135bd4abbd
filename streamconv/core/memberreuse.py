"""A frame's top-level members parsed once: the ones whose text is the previous frame's are
taken from it (issue 11 §3).

The headers of one series repeat most of their elements byte for byte.  A member of a JSON
object (``"KEY": value``) whose text, found where a member begins, is exactly the text of a
member parsed before is the same member: JSON values are self-delimiting (objects, arrays,
strings), and a number or literal is followed here by a separator, which is checked; so the
objects parsed then are the objects this text parses to (RFC 8259 §4).  Only the members
that changed go through the C scanner.  :func:`decode_object` gives what the json module's
decode gives (a PairList of (key, value)), or raises ValueError for anything it does not
follow (the caller then parses the whole text, which says what is wrong, if anything is).

The parsed objects are shared between the datasets: nothing changes a parsed dataset (the
model reads it), and sharing them lets build.Recent know an element by its identity.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["MemberMemo", "decode_object", "member_decoder"]

_WS = " \t\n\r"  # RFC 8259 §2


_REST = 32  # frames parsed whole after one whose members were mostly new


class MemberMemo:
    """The previous frame's members: (text, key, value), in order; ``rest``: frames still
    to leave to the whole parse (a stream of unrelated datasets reuses little, and looking
    member by member costs more than the C scanner's one pass)."""

    __slots__ = ("members", "rest")

    def __init__(self) -> None:
        self.members: list[tuple[str, str, Any]] = []
        self.rest = 0


def decode_object(
    text: str,
    memo: MemberMemo,
    scan: Callable[[str, int], tuple[Any, int]],
    scanstring: Callable[[str, int], tuple[str, int]],
    make: Callable[[list[tuple[str, Any]]], Any],
) -> Any:
    """``text`` (one JSON object) -> ``make([(key, value), ...])``, its unchanged members
    taken from ``memo`` (which then holds this text's); ValueError for anything else."""
    if memo.rest:
        memo.rest -= 1
        raise ValueError("resting")  # the caller parses it whole
    prev = memo.members
    index: dict[str, int] | None = None
    hits = 0
    members: list[tuple[str, str, Any]] = []
    i = len(text) - len(text.lstrip(_WS))
    if text[i] != "{":
        raise ValueError("not an object")
    i += 1
    while text[i] in _WS:
        i += 1
    if text[i] == "}":
        raise ValueError("an empty object")  # nothing to reuse: the caller parses it
    k = 0  # the previous frame's member expected next
    while True:
        m = prev[k] if k < len(prev) else None
        if m is not None and text.startswith(m[0], i):
            j = i + len(m[0])
            k += 1
            hits += 1
        else:
            if text[i] != '"':
                raise ValueError("expected a member")
            key, j = scanstring(text, i + 1)
            while text[j] in _WS:
                j += 1
            if text[j] != ":":
                raise ValueError("expected ':'")
            j += 1
            while text[j] in _WS:
                j += 1
            value, j = scan(text, j)  # StopIteration: no value here
            m = (text[i:j], key, value)
            if k < len(prev) and prev[k][1] == key:
                k += 1  # the same member, changed
            else:  # one added or left out: go on after this key's place, if it had one
                if index is None:
                    index = {p[1]: n for n, p in enumerate(prev)}
                k = index.get(key, k - 1) + 1
        members.append(m)
        while text[j] in _WS:
            j += 1
        if text[j] == ",":
            i = j + 1
            while text[i] in _WS:
                i += 1
            continue
        if text[j] == "}":
            break
        raise ValueError("expected ',' or '}'")  # a number run on, or not JSON
    if text[j + 1 :].strip(_WS):
        raise ValueError("extra data")
    memo.members = members
    if prev and hits * 2 < len(members):
        memo.rest = _REST  # mostly new: not worth it for a while
    return make([(m[1], m[2]) for m in members])


def member_decoder(
    make: Callable[[list[tuple[str, Any]]], Any],
    parse_float: Callable[[str], Any],
    parse_constant: Callable[[str], Any],
) -> Callable[[str], Any] | None:
    """decode_object with the C scanner of these settings and a memo of its own (one per
    process: a stream worker parses its frames one after the other); None without it."""
    try:
        from _json import make_scanner, scanstring
    except ImportError:  # pragma: no cover - CPython always has _json
        return None
    from .jsonscan import _Settings

    settings: Any = _Settings(make, parse_float, parse_constant)  # duck-typed
    scan = make_scanner(settings)
    memo = MemberMemo()

    def decode(text: str) -> Any:
        return decode_object(text, memo, scan, scanstring, make)

    return decode
