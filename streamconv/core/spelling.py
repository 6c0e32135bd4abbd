"""Keeping each JSON number's spelling through ijson (CONTRACT §7, dcmtk-behavior §5.3, §5.5).

Two parts: :func:`load_spelling_parser` gives documents.py a copy of ijson's C parser that
builds :class:`~.numbers.JsonNumber` (a Decimal with its token text) for every number that
is not a plain integer; and the pre-pass (documents.JsonFilter) respells the one integer
token whose value loses its spelling, ``-0``, with the helpers below.
"""

from __future__ import annotations

from .lazyre import lazy_compile
from .numbers import NEGATIVE_ZERO, JsonNumber

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    import re
    from typing import Any

__all__ = [
    "NEG_ZERO",
    "NUMBER_CHARS",
    "NUMBER_END",
    "NUMBER_TAIL",
    "has_negative_zero",
    "load_spelling_parser",
    "load_yajl",
    "negative_zero",
]


# ijson is imported on first use (load_yajl): a stream's reader only frames and its workers
# parse with the json module (documents.parse_frame), yajl taking what that refuses; ijson
# (and inspect, which it pulls in) costs ~50 ms of CPU in each of these processes.
_YAJL: tuple[Any, Any, Any] | None = None


def load_yajl() -> tuple[Any, Any, Any]:
    """(ijson, its yajl2_c backend when it is there (it is, in binary wheels) or ijson itself,
    the spelling parser or None), imported once."""
    global _YAJL
    if _YAJL is None:
        import ijson

        backend = ijson.get_backend("yajl2_c") if "yajl2_c" in ijson.ALL_BACKENDS else ijson
        spelled = (
            load_spelling_parser() if getattr(backend, "backend_name", "") == "yajl2_c" else None
        )
        _YAJL = (ijson, backend, spelled)
    return _YAJL


def load_spelling_parser() -> Any:
    """ijson's C extension loaded a second time, as ``streamconv.core._yajl2``, with
    :class:`JsonNumber` where it calls ``decimal.Decimal``: every JSON number that is not a
    plain integer then reaches the model with its token text (CONTRACT §7: a number given
    for DS, IS or a text VR keeps its spelling, as DCMTK copies the token).

    yajl hands ijson each number's text; ijson (3.4 and later) builds non-integers with the
    ``Decimal`` it looked up in ``decimal`` when the module was executed, kept in that
    module's state.  The coroutine types find their state by importing ``_yajl2``
    relative to the calling code's package, so ``documents._items_coro``, in this package,
    gets this copy; ijson's own module, and every other user of it, are untouched.  None if
    this ijson does not work so (then numbers are spelled from their value, as before).
    """
    try:
        from ijson.backends import _yajl2
    except ImportError:
        return None
    import sys
    from importlib.machinery import ExtensionFileLoader, ModuleSpec  # not .util: start-up

    name = f"{__package__}._yajl2"
    path = _yajl2.__file__
    if not path:
        return None
    loader = ExtensionFileLoader(name, path)
    spec = ModuleSpec(name, loader, origin=path)
    shim = type(sys)("decimal")  # a module object
    shim.Decimal = JsonNumber  # type: ignore[attr-defined]
    saved = sys.modules.get("decimal")
    sys.modules["decimal"] = shim  # only while the extension executes (microseconds)
    try:
        module = loader.create_module(spec)
        loader.exec_module(module)
    except Exception:  # pragma: no cover - another ijson layout
        return None
    finally:
        if saved is not None:
            sys.modules["decimal"] = saved
        else:  # pragma: no cover - numbers.py imports decimal first
            del sys.modules["decimal"]
    sys.modules[name] = module
    # the proof, once: a number reaches the target as a JsonNumber with its text
    got: list[Any] = []
    try:
        coro = module.basic_parse_basecoro(
            module.parse_basecoro(module.items_basecoro(got.append, "item", None))
        )
        coro.send(b"[1.50]")
        coro.close()
    except Exception:  # pragma: no cover - another ijson layout
        got = []
    if got != [1.5] or getattr(got[0], "text", "") != "1.50":  # pragma: no cover
        del sys.modules[name]
        return None
    return module


# the integer token -0 (JsonFilter._emit): ijson would make it int 0, losing the sign that
# DCMTK copies into IS/DS/text VRs and FD (dcmtk-behavior N11, N12, S6); spelled as
# NEGATIVE_ZERO it reaches the model as JsonNumber("-0")
NEG_ZERO_TOKEN = lazy_compile(rb"-0(?![0-9.eE])")  # a literal first: searched at memchr speed
NEG_ZERO = lazy_compile(rb'("[^"\\]*(?:\\.[^"\\]*)*")|(?<![0-9.eE+\-])-0(?![0-9.eE])')
NEG_ZERO_TEXT = NEGATIVE_ZERO.encode()
NUMBER_TAIL = lazy_compile(rb"[0-9.eE+\-]{1,40}\Z")  # a number that may go on in the next chunk


NUMBER_END = frozenset(bytes([c]) for c in b"0123456789.eE+-")
NUMBER_CHARS = frozenset(b"0123456789.eE+-")
_AFTER_ZERO = frozenset(b"0123456789.eE")  # NEG_ZERO_TOKEN's look-ahead


def has_negative_zero(segment: bytes) -> bool:
    """Whether ``segment`` may hold the token -0 (a cheap look; strings are not told apart:
    ``NEG_ZERO`` does that when this says yes).  What NEG_ZERO_TOKEN.finditer finds, by
    ``find`` (no pattern, hence no ``re`` import, on a plain conversion's start-up)."""
    i = segment.find(b"-0")
    while i >= 0:
        after = i + 2
        if (after == len(segment) or segment[after] not in _AFTER_ZERO) and (
            i == 0 or segment[i - 1] not in NUMBER_CHARS
        ):
            return True
        i = segment.find(b"-0", after)
    return False


def negative_zero(m: re.Match[bytes]) -> bytes:
    return m.group(1) or NEG_ZERO_TEXT  # strings unchanged, the token -0 respelled
