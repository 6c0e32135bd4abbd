"""The standard library's C JSON scanner, without importing the ``json`` package (issue 11).

``json.JSONDecoder(...).decode`` is ``_json.make_scanner`` (the C scanner) over the
decoder's settings, plus a whitespace skip at both ends; the ``json`` package around it
(decoder, encoder and scanner modules, five regular expressions) costs ~1.5 ms of a
one-shot json2dcm run.  :func:`make_decoder` builds the same decode function from the C
scanner alone, and falls back to ``json.JSONDecoder`` where ``_json`` is missing.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["make_decoder"]

_WS = " \t\n\r"  # RFC 8259 §2 insignificant whitespace (json.decoder.WHITESPACE)


class _Settings:
    """The attributes the C scanner reads from a ``json.JSONDecoder`` (Modules/_json.c)."""

    def __init__(
        self,
        object_pairs_hook: Callable[[list[tuple[str, Any]]], Any],
        parse_float: Callable[[str], Any],
        parse_constant: Callable[[str], Any],
    ) -> None:
        self.strict = True  # control characters inside strings refused, as by default
        self.object_hook = None
        self.object_pairs_hook = object_pairs_hook
        self.parse_float = parse_float
        self.parse_int = int  # the scanner's own fast path for int
        self.parse_constant = parse_constant
        self.memo: dict[str, str] = {}


def make_decoder(
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any],
    parse_float: Callable[[str], Any],
    parse_constant: Callable[[str], Any],
) -> Callable[[str], Any]:
    """``json.JSONDecoder(object_pairs_hook=..., parse_float=..., parse_constant=...)
    .decode``: one JSON text -> its value; ValueError (or RecursionError) if it is not one."""
    try:
        from _json import make_scanner
    except ImportError:  # pragma: no cover - CPython always has _json
        import json

        return json.JSONDecoder(
            object_pairs_hook=object_pairs_hook,
            parse_float=parse_float,
            parse_constant=parse_constant,
        ).decode
    settings: Any = _Settings(object_pairs_hook, parse_float, parse_constant)  # duck-typed
    scan = make_scanner(settings)

    def decode(text: str) -> Any:
        start = len(text) - len(text.lstrip(_WS))
        try:
            value, end = scan(text, start)
        except StopIteration as exc:  # no value at start (JSONDecoder: "Expecting value")
            raise ValueError(f"expecting a JSON value at {exc.value}") from None
        if text[end:].strip(_WS):
            raise ValueError(f"extra data after the JSON value at {end}")
        return value

    return decode
