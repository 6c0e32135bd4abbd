"""What yajl (ijson's C backend) says about invalid JSON, as streamconv reports it: the
first line of its message, and the input offset its "(right here) ^" points at."""

from __future__ import annotations

__all__ = ["locate", "yajl_message"]


def yajl_message(exc: Exception) -> tuple[str, str]:
    """ijson's error as (its whole message, its first line for ours)."""
    arg = exc.args[0] if exc.args else ""
    message = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    return message, first


def locate(message: str, data: bytes | bytearray) -> int | None:
    """The index in ``data`` of the error yajl's message points at (its "(right here) ^")."""
    lines = message.split("\n")
    if len(lines) < 3 or "^" not in lines[2] or not data:
        return None
    shown = lines[1]
    snippet = shown.lstrip(" ")
    if not snippet:
        return None
    column = lines[2].index("^") - (len(shown) - len(snippet))
    raw = snippet.encode("utf-8", "replace")
    where = data.find(raw)
    if where < 0 or data.find(raw, where + 1) >= 0:
        return None  # not found, or not unique
    return where + max(0, min(column, len(raw)))
