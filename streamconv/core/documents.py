"""Bytes -> DICOM JSON datasets, incrementally (ijson push parsing; CONTRACT §3, §6).

Two stages, both fed by the caller (the core never opens files):

* :class:`JsonFilter` is a byte-level pre-pass in front of ijson.  It skips a UTF-8 BOM,
  drops trailing commas (accepted silently, as the manual page promises), and splices large
  ``InlineBinary`` strings out of the stream: their base64 text is decoded chunk by chunk
  into a :class:`Spill` (memory, then a temporary file) and ijson sees a short placeholder.
  ijson would otherwise hold the whole string (and its cost grows with the square of its
  length).  The filter only needs to know whether a byte is inside a string; it learns that
  from quote parity, computed with C-speed ``bytes`` operations.
* :class:`DocumentParser` feeds ijson (yajl2 C backend) and yields one top-level value at a
  time: the elements of a top-level array, or each of several top-level values (NDJSON,
  concatenated objects).
"""

from __future__ import annotations

import itertools
import operator
import sys
from collections.abc import Iterator

from ..errors import ContentError, JSONSyntaxError, LimitError
from ..options import Limits
from .lazyre import lazy_compile
from .numbers import json_number
from .spelling import (
    NEG_ZERO,
    NUMBER_CHARS,
    NUMBER_END,
    NUMBER_TAIL,
    has_negative_zero,
    load_yajl,
    negative_zero,
)
from .spills import Spill, SpillStore, decode_base64  # re-exported: their old home

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DocumentParser",
    "JsonFilter",
    "PairList",
    "Pairs",
    "RawDataset",
    "Spill",
    "SpillStore",
    "decode_base64",
    "parse_frame",
]

_yajl = load_yajl  # (ijson, its backend, the spelling parser), imported on first use


def load_ijson() -> Any:
    """Import ijson (once); its backend."""
    return _yajl()[1]


def __getattr__(name: str) -> Any:
    """``_BACKEND`` and ``_C`` (the version output, tests) import ijson on first use."""
    if name == "_BACKEND":
        return _yajl()[1]
    if name == "_C":
        return _yajl()[2]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


SPILL_PREFIX = "\x00streamconv-spill:"
_SPILL_START = 1 << 20  # an InlineBinary string longer than this is spliced out
_WS = b" \t\r\n"

# a trailing comma: ',' + whitespace + closing bracket; strings matched first so that
# commas inside them are never touched
# a comma right after '[', '{' or another comma is not a trailing one: kept, yajl rejects it
_TRAILING = lazy_compile(rb'("[^"\\]*(?:\\.[^"\\]*)*")|([\[{,][ \t\r\n]*,)|,([ \t\r\n]*[\]}])')
_STRINGS = lazy_compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_CANDIDATE = lazy_compile(rb",[ \t\r\n]*[\]}]")
_ESC_QUOTE = lazy_compile(rb'(?<!\\)(?:\\\\)*\\"')
_STRING_TAIL = lazy_compile(rb'[^"\\]*(?:\\.[^"\\]*)*')
# \uD800-\uDBFF must be followed by \uDC00-\uDFFF; a lone half is an error (RFC 8259 §8.2)
_SURROGATE = lazy_compile(
    rb"(\\+)u[dD][89abAB][0-9a-fA-F]{2}(\\u[dD][c-fC-F][0-9a-fA-F]{2})?|(\\+)u[dD][c-fC-F][0-9a-fA-F]{2}"
)
# the end of an open string that may be an unfinished \uXXXX escape or surrogate pair
_PARTIAL_ESCAPE = lazy_compile(
    rb"\\u(?:[0-9a-fA-F]{0,3}|[dD][89abAB][0-9a-fA-F]{2}(?:\\(?:u[0-9a-fA-F]{0,3})?)?)"
)
# nesting depth (JsonFilter._track_depth): keep quotes and brackets, then drop the strings
_NOT_MARK = bytes(c for c in range(256) if c not in b'"[]{}')
_QUOTED_MARKS = lazy_compile(rb'"[^"]*"')
_BRACKET_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
# JSON numbers (JsonFilter._check_digits): yajl2_c hands ijson the digits of an integer and
# ijson 3.6 crashes (SIGSEGV) when int() refuses more than 4300 digits; a long exponent
# raises decimal.InvalidOperation.  No DICOM value needs more than a few dozen digits.
MAX_NUMBER_DIGITS = 1000
_DIGIT_MARK = bytes.maketrans(b"0123456789", b"0000000000")
_DIGIT_RUN = b"0" * (MAX_NUMBER_DIGITS + 1)
_DIGITS = b"0123456789"
# JSON nesting allowed whatever --max-depth says (0 included): the model would run out of
# Python recursion first (RecursionError, 65) and ijson's cost grows with depth squared
MAX_JSON_DEPTH = 1000
_INLINE_KEY = lazy_compile(rb'(?i)"inlinebinary"[ \t\r\n]*:[ \t\r\n]*\Z')
_LOW_SURROGATE = lazy_compile(rb"\\u[dD][c-fC-F]")


class Pairs:
    """A JSON object as an ordered list of (key, value): keeps duplicate keys (ijson map_type).

    (No ``__slots__``: :class:`PairList`, a list subclass, derives from it.)"""

    def __init__(self) -> None:
        self.pairs: list[tuple[str, Any]] = []

    def __setitem__(self, key: str, value: Any) -> None:
        self.pairs.append((key, value))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.pairs!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pairs) and self.pairs == other.pairs

    __hash__ = None  # type: ignore[assignment]


class PairList(list, Pairs):  # type: ignore[type-arg]
    """A :class:`Pairs` that is the list of its (key, value) tuples, which the standard
    library's C scanner builds at C speed (``object_pairs_hook``, :func:`parse_frame`:
    ~90 vs ~175 us per CT header of ijson building Pairs key by key).  ijson cannot build
    it: its builder appends to any list instead of setting a key.  ``pairs`` is a copy of
    the tuples (C speed); arrays are told apart by ``type(v) is list``."""

    __slots__ = ()
    __init__ = list.__init__
    __setitem__ = list.__setitem__  # type: ignore[assignment]
    __eq__ = list.__eq__
    __hash__ = None  # type: ignore[misc]
    pairs = property(operator.itemgetter(slice(None)))


class JsonFilter:
    """BOM, trailing commas and InlineBinary splicing, ahead of ijson (see module doc)."""

    def __init__(
        self,
        spills: SpillStore,
        *,
        spill_start: int = _SPILL_START,
        max_depth: int = 0,
        max_input_bytes: int = 0,
        max_value_bytes: int = 0,
    ) -> None:
        self._spills = spills
        self._spill_start = spill_start
        self._max_depth = max_depth  # JSON nesting limit (0: none), checked before ijson sees it
        self._max_input = max_input_bytes  # Limits.max_input_bytes (0: none)
        self._max_value = max_value_bytes  # Limits.max_value_bytes, for spilled InlineBinary
        self._digits = 0  # length of the run of digits outside strings passed on last
        self.depth = 0  # JSON nesting depth after the bytes passed on
        self._carry = b""
        self._in_string = False  # the next byte fed continues an open string
        # the last feed was all inside one string, open before it and still open after it
        self.inside_string = False
        self._tail = b""  # the last bytes passed on, for the InlineBinary key look-behind
        self._spill: Spill | None = None
        self._started = False
        self.consumed = 0  # bytes of input accepted so far
        # the bytes the last feed returned have no string holding a bracket (known from
        # the depth tracking's scan, so only with max_depth): framing.Framer then counts
        # brackets in them without looking for strings again
        self.strings_plain = False
        self._plain = False

    def feed(self, data: bytes) -> bytes:
        self.inside_string = False
        self.strings_plain = self._plain = False
        self.consumed += len(data)
        if self._max_input and self.consumed > self._max_input:
            raise LimitError(f"input larger than {self._max_input} bytes (limit --max-input-bytes)")
        if not self._started:
            data = self._carry + data
            self._carry = b""
            if len(data) < 3 and b"\xef\xbb\xbf".startswith(data):
                self._carry = data
                return b""
            self._started = True
            if data.startswith(b"\xef\xbb\xbf"):
                data = data[3:]  # RFC 8259 §8.1: a BOM may be ignored
        out: list[bytes] = []
        self._plain = self._max_depth > 0
        self._process(data, out)
        self.strings_plain = self._plain
        result = b"".join(out)
        if result:
            # a backslash is looked for at memchr speed first: most inputs have none
            if self._pending_high or (b"\\" in result and b"\\u" in result):
                self._check_surrogates(result)
            self._tail = (self._tail + result)[-64:]
        return result

    _pending_high = False

    def _check_surrogates(self, data: bytes) -> None:
        if self._pending_high:
            self._pending_high = False
            if not _LOW_SURROGATE.match(data):
                raise JSONSyntaxError("lone UTF-16 surrogate in a \\u escape", offset=self.consumed)
            data = data[6:]
        for m in _SURROGATE.finditer(data):
            run = m.group(1) or m.group(3)
            if len(run) % 2 == 0:
                continue  # an escaped backslash followed by text, not an escape
            if m.group(1) is not None and m.group(2) is None:
                if m.end() == len(data):
                    self._pending_high = True  # its low half may come with the next chunk
                    continue
                raise JSONSyntaxError("lone UTF-16 surrogate in a \\u escape", offset=self.consumed)
            if m.group(3) is not None:
                raise JSONSyntaxError("lone UTF-16 surrogate in a \\u escape", offset=self.consumed)

    def finish(self) -> bytes:
        out = self._carry
        self._carry = b""
        if self._spill is not None:
            self._spill.finish()
            self._spill = None
        return out

    # -- internals ---------------------------------------------------------------------
    def _process(self, data: bytes, out: list[bytes]) -> None:
        pos = 0
        if self._spill is not None:
            end = data.find(b'"')
            if end < 0:
                self._spill_text(data)
                return
            self._spill_text(data[:end])
            self._spill.finish()
            self._spill = None
            out.append(b'"')
            pos = end + 1
        buf = self._carry + data[pos:] if self._carry else data[pos:]
        self._carry = b""
        if self._in_string:
            m = _STRING_TAIL.match(buf)
            assert m is not None
            end = m.end()
            if end >= len(buf) or buf[end : end + 1] != b'"':
                self._open_string_at_end(buf, 0, out, continuing=True)
                self.inside_string = True
                return
            out.append(buf[: end + 1])
            self._note_string(buf[: end + 1])
            self._in_string = False
            buf = buf[end + 1 :]
        # Where does the last complete token end?  Count real (unescaped) quotes.
        quotes = buf.count(b'"')
        if quotes and b"\\" in buf:  # memchr first: a two-byte count is ~3x slower
            esc = buf.count(b'\\"') and len(_ESC_QUOTE.findall(buf))
            quotes -= esc
        if quotes % 2:
            start = self._last_real_quote(buf)
            self._emit(buf[:start], out)
            self._open_string_at_end(buf, start, out, continuing=False)
        else:
            stripped = buf.rstrip(_WS)
            if stripped.endswith(b",") and stripped[:-1].rstrip(_WS)[-1:] not in (b"[", b"{", b","):
                # hold back a comma that may turn out to be a trailing one
                cut = len(stripped) - 1
                self._carry = buf[cut:]
                buf = buf[:cut]
            elif buf[-1:] in NUMBER_END:
                # a number token may continue in the next chunk: keep it whole, for -0
                # from the last 41 bytes only: the pattern ends at \Z with at most 40
                # characters, and searched from the start it tried every position of the
                # chunk (~4 ms per MiB)
                tail = NUMBER_TAIL.search(buf, max(0, len(buf) - 41))
                if tail is not None and (
                    tail.start() == 0 or buf[tail.start() - 1] not in NUMBER_CHARS
                ):
                    self._carry = buf[tail.start() :]
                    buf = buf[: tail.start()]
            self._emit(buf, out)

    def _emit(self, segment: bytes, out: list[bytes]) -> None:
        if segment:
            # the substitution costs a Python call per string, so look for a candidate first
            if _trailing_comma_candidate(segment):
                segment = _TRAILING.sub(rb"\1\2\3", segment)
            if b"-0" in segment and has_negative_zero(segment):
                segment = NEG_ZERO.sub(negative_zero, segment)
            out.append(segment)
            if self._max_depth:
                self._track_depth(segment)
            self._check_digits(segment)

    def _check_digits(self, segment: bytes) -> None:
        """Refuse a JSON number with more than MAX_NUMBER_DIGITS digits in a row before
        ijson sees it (see MAX_NUMBER_DIGITS).  ``segment`` starts outside a string and
        holds whole strings; a run may continue from the segment before."""
        lead = len(segment) - len(segment.lstrip(_DIGITS))
        run = self._digits + lead if self._digits else lead
        if lead == len(segment):
            self._digits = run
        else:
            self._digits = len(segment) - len(segment.rstrip(_DIGITS))
            if len(segment) > MAX_NUMBER_DIGITS and _DIGIT_RUN in segment.translate(_DIGIT_MARK):
                # digits inside strings (a long UT text) are fine: look again without them
                bare = _STRINGS.sub(b'""', segment)
                run = max(
                    run, MAX_NUMBER_DIGITS + 1 if _DIGIT_RUN in bare.translate(_DIGIT_MARK) else 0
                )
        if run > MAX_NUMBER_DIGITS:
            raise LimitError(
                f"JSON number with more than {MAX_NUMBER_DIGITS} digits"
                f" (at or before byte offset {self.consumed})"
            )

    def _track_depth(self, segment: bytes) -> None:
        """Follow the nesting depth of ``segment`` (which starts outside a string and holds
        whole strings) and stop before ijson sees a level beyond the limit: yajl2_c keeps a
        prefix string per level, so its time and memory grow with the square of the depth
        (40,000 nested arrays, 80 KB of input: 9 s and 3.9 GB)."""
        if b"\\" in segment:
            segment = segment.replace(b"\\\\", b"").replace(b'\\"', b"")  # escapes out
        marks = segment.translate(None, _NOT_MARK)
        if b'"' in marks:
            # brackets inside strings do not count; '""' goes first (C speed): it drops the
            # empty strings and joins neighbours, whose contents stay between quotes
            marks = marks.replace(b'""', b"")
            if b'"' in marks:
                self._plain = False  # a string holds a bracket (see framing._bracket_delta)
                marks = _QUOTED_MARKS.sub(b"", marks)
        if not marks:
            return
        # leaf pairs carry no depth information beyond the +2 allowed for below
        marks = marks.replace(b"[]", b"").replace(b"{}", b"")
        start = self.depth
        self.depth += marks.count(b"[") + marks.count(b"{") - marks.count(b"]") - marks.count(b"}")
        if start + len(marks) + 2 <= self._max_depth:
            return
        peak = (
            max(
                itertools.accumulate(
                    memoryview(marks.translate(_BRACKET_STEP)).cast("b"), initial=start
                )
            )
            + 2
        )
        if peak > self._max_depth:
            raise LimitError(
                f"JSON nested more than {self._max_depth} levels deep (sequences nested too deeply;"
                f" limit --max-depth)"
                f" (at or before byte offset {self.consumed})"
            )

    @staticmethod
    def _last_real_quote(buf: bytes) -> int:
        i = len(buf)
        while True:
            i = buf.rfind(b'"', 0, i)
            n = 0
            while i - n - 1 >= 0 and buf[i - n - 1] == 0x5C:
                n += 1
            if n % 2 == 0:
                return i

    def _open_string_at_end(
        self, buf: bytes, start: int, out: list[bytes], *, continuing: bool
    ) -> None:
        """``buf[start:]`` is a string that has not closed yet (``buf[start]`` is its quote
        unless ``continuing``)."""
        if not continuing and _INLINE_KEY.search((self._tail + b"".join(out))[-64:]):
            self._digits = 0
            text = buf[start + 1 :]
            if len(text) <= self._spill_start:
                # a short InlineBinary string is kept whole and looked at again next time
                self._carry = buf[start:]
                return
            ident, spill = self._spills.new()
            self._spill = spill
            out.append(b'"\\u0000' + SPILL_PREFIX[1:].encode() + str(ident).encode())
            self._spill_text(text)
            return
        # an ordinary string: pass it on as it is, but never split an escape sequence
        self._digits = 0
        tail = buf[start:]
        n = _escape_holdback(tail)
        if n:
            out.append(tail[:-n])
            self._carry = tail[-n:]
        else:
            out.append(tail)
        self._note_string(tail)
        self._in_string = True

    def _note_string(self, text: bytes) -> None:
        """``text`` is (part of) a string passed on outside _emit: does it hold a bracket?"""
        if self._plain and (b"{" in text or b"}" in text or b"[" in text or b"]" in text):
            self._plain = False

    def _spill_text(self, text: bytes) -> None:
        assert self._spill is not None
        if b"\\" in text:
            self._spill.error = "invalid base64 in InlineBinary: JSON escape sequence found"
        self._spill.write_b64(text)
        if self._max_value and self._spill.length > self._max_value:
            # stop now: the decoded value would otherwise fill memory or the temp directory
            raise LimitError(
                f"InlineBinary value larger than {self._max_value} bytes (limit --max-value-bytes)"
                f" (at or before byte offset {self.consumed})"
            )


def _escape_holdback(tail: bytes) -> int:
    """How many bytes at the end of an open string to keep for the next chunk, so that no
    escape sequence, and no UTF-16 surrogate pair (RFC 8259 §7), is split between the
    pieces passed on: the surrogate check sees each pair whole, whatever the chunking."""
    k = tail.find(b"\\", max(0, len(tail) - 12))  # "\uD83D\uDE0" is 11 bytes
    while k >= 0:
        if _PARTIAL_ESCAPE.fullmatch(tail, k):
            j = k
            while j and tail[j - 1] == 0x5C:
                j -= 1
            if (k - j) % 2 == 0:  # an even run of backslashes before: a real escape
                return len(tail) - k
        k = tail.find(b"\\", k + 1)
    n = len(tail) - len(tail.rstrip(b"\\"))
    return n % 2  # a lone trailing backslash starts an escape


class RawDataset:
    """One top-level value as ijson built it, with where it came from: ``index`` is its
    0-based position in the stream, ``offset`` the input bytes consumed when it was complete."""

    __slots__ = ("index", "offset", "value")

    def __init__(self, index: int, value: Any, offset: int) -> None:
        self.index = index
        self.value = value
        self.offset = offset


def make_filter(spills: SpillStore, max_depth: int, limits: Limits | None) -> JsonFilter:
    """The pre-pass with the limits of a run (DocumentParser and framing.Framer)."""
    # max_depth counts sequence levels (Limits.max_depth); each takes three JSON levels
    # (element object, Value array, item object), plus the top level, PN objects, arrays
    json_depth = min(3 * max_depth + 16, MAX_JSON_DEPTH) if max_depth > 0 else MAX_JSON_DEPTH
    return JsonFilter(
        spills,
        max_depth=json_depth,
        max_input_bytes=limits.max_input_bytes if limits is not None else 0,
        max_value_bytes=limits.max_value_bytes if limits is not None else 0,
    )


class _Via:
    """Hands a C coroutine to the next stage as its ``send``: _yajl2 then calls it directly."""

    __slots__ = ("send",)

    def __init__(self, coro: Any) -> None:
        self.send = coro


def _items_coro(target: Any, prefix: str) -> Any:
    """ijson's items push pipeline; with yajl2_c the three C stages are chained directly.

    ``items_coro`` chains them through ``utils.chain`` with bound ``send`` methods, so every
    JSON event costs a generic Python call: measured 0.64 ms vs 0.26 ms per CT header.
    """
    _, backend, spelled = _yajl()
    if spelled is not None:
        # built here, in streamconv.core, so that they use streamconv.core._yajl2's state
        items = spelled.items_basecoro(target.send, prefix, Pairs)
        parse = spelled.parse_basecoro(items)
        coro = spelled.basic_parse_basecoro(parse, multiple_values=True)
        return coro
    if getattr(backend, "backend_name", "") == "yajl2_c":  # pragma: no cover - no spelling
        items = backend.items_basecoro(target, prefix, Pairs)
        parse = backend.parse_basecoro(_Via(items))
        return backend.basic_parse_basecoro(_Via(parse), multiple_values=True)
    return backend.items_coro(target, prefix, multiple_values=True, map_type=Pairs)


class _Target:
    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[Any] = []

    def send(self, value: Any) -> None:
        self.items.append(value)


class DocumentParser:
    """Push bytes in, get top-level datasets out, in order.

    ``shape`` becomes "array", "values" or "empty" once known; ``count`` is the number of
    datasets seen.  ``skip`` (a predicate on the 0-based index) lets ``+as n`` skip the
    others without building them.
    """

    def __init__(
        self,
        *,
        source: str = "",
        spills: SpillStore | None = None,
        max_depth: int = 64,
        limits: Limits | None = None,
    ) -> None:
        self.source = source
        self.spills = spills if spills is not None else SpillStore()
        if limits is not None:
            max_depth = limits.max_depth
        self.filter = make_filter(self.spills, max_depth, limits)
        self.shape = ""
        self.count = 0
        self._target = _Target()
        self._coro: Any = None
        self._head = b""
        self._closed = False
        # the rest of a string still open after a whole read: yajl re-lexes a token split
        # over several sends from its start each time (128 MB in 1 MiB reads: 2.7 s, sent
        # whole: 0.13 s), so its pieces are held here and sent when it closes (issue 10 row 1)
        self._held = bytearray()

    def _start(self, first: int) -> None:
        if first == 0x5B:  # '['
            self.shape = "array"
            prefix = "item"
        else:
            self.shape = "values"
            prefix = ""
        self._coro = _items_coro(self._target, prefix)

    def parse_whole(self, whole: bytes) -> list[RawDataset] | None:
        """The whole input, read in one piece, parsed by the standard library's C scanner as
        :func:`parse_frame` does (no ijson import on a one-shot conversion's start-up).

        None, with this parser untouched, when that does not apply or fails: the caller then
        feeds the same bytes to :meth:`feed` and :meth:`finish`, and yajl says what is wrong
        as it always did.  A fresh pre-pass runs over the bytes (BOM, trailing commas, limits,
        lone surrogates, digits); below its splicing size nothing is spilled, so dropping it
        leaves nothing behind.  After a success :meth:`finish` has nothing more to give.
        """
        if self._coro is not None or self.filter.consumed or len(whole) >= _SPILL_START:
            return None
        pre = JsonFilter(
            self.spills,
            max_depth=self.filter._max_depth,
            max_input_bytes=self.filter._max_input,
            max_value_bytes=self.filter._max_value,
        )
        try:
            data = pre.feed(whole) + pre.finish()
            first = data.lstrip(_WS)[:1]
            if not first:
                return None
            value = _decoder()(data.decode("utf-8"))
        except Exception:  # anything refused: yajl's path reports it (or accepts it)
            return None
        self.filter = pre
        if first == b"[":
            self.shape = "array"
            values = value
        else:
            self.shape = "values"
            values = [value]
        self._closed = True
        self._coro = _Done
        if self.shape == "array" and not values:
            raise ContentError("found empty JSON array instead of DICOM JSON dataset")
        self._target.items = values
        return self._collect()

    def feed(self, chunk: bytes) -> list[RawDataset]:
        data: bytes | bytearray = self.filter.feed(chunk)
        if self.filter.inside_string and self._coro is not None:
            # a piece of a string that was open before this read and still is: no dataset
            # can complete inside it, so nothing is delayed by holding it
            self._held += data
            return []
        if self._held:
            self._held += data
            data, self._held = self._held, bytearray()  # sent as it is: no copy
        return self._push(data)

    def finish(self) -> list[RawDataset]:
        if self._coro is _Done:  # parse_whole had it all
            return []
        tail: bytes | bytearray = self.filter.finish()
        if self._held:
            self._held += tail
            tail, self._held = self._held, bytearray()
        out = self._push(tail)
        if self._coro is None:
            stripped = self._head.strip(_WS)
            if not stripped:
                raise ContentError(
                    "no JSON value found in the input (empty document)", truncated=True
                )
            self._start(stripped[0])
            out += self._push(b"")
        ijson = _yajl()[0]
        try:
            self._coro.close()
        except ijson.common.IncompleteJSONError as exc:
            raise self._syntax(exc, truncated=True) from None
        except ijson.JSONError as exc:
            raise self._syntax(exc) from None
        except (ArithmeticError, ValueError):
            raise self._number_error() from None
        out += self._collect()
        self._closed = True
        if self.shape == "array" and self.count == 0:
            raise ContentError("found empty JSON array instead of DICOM JSON dataset")
        return out

    def _push(self, data: bytes | bytearray) -> list[RawDataset]:
        if self._coro is None:
            self._head += data
            stripped = self._head.lstrip(_WS)
            if not stripped:
                return []
            self._start(stripped[0])
            data, self._head = self._head, b""
        if not data:
            return []
        ijson = _yajl()[0]
        try:
            self._coro.send(data)
        except ijson.JSONError as exc:
            raise self._syntax(exc, data=data) from None
        except UnicodeDecodeError:
            # ijson decoding yajl's bytes of a lone surrogate (the filter should catch it first)
            raise JSONSyntaxError(
                "invalid JSON: a string is not valid UTF-8 (lone UTF-16 surrogate?)",
                offset=self.filter.consumed,
                source=self.source,
            ) from None
        except (ArithmeticError, ValueError):
            raise self._number_error() from None
        return self._collect()

    def _number_error(self) -> LimitError:
        # ijson turning a number into a Decimal: an exponent beyond +-999999999999999999
        # raises decimal.InvalidOperation (RFC 8259 §6 lets an implementation limit range)
        exc = LimitError(
            f"JSON number out of the supported range (at or before byte offset {self.filter.consumed})"
        )
        exc.source = self.source
        return exc

    def completed(self) -> list[RawDataset]:
        """After a syntax error: the datasets that were complete before it (the stream
        converts them before it stops, whatever the chunking of the input)."""
        return self._collect()

    def _collect(self) -> list[RawDataset]:
        items = self._target.items
        if not items:
            return []
        self._target.items = []
        out = []
        for value in items:
            out.append(RawDataset(self.count, value, self.filter.consumed))
            self.count += 1
        return out

    def _syntax(
        self, exc: Exception, truncated: bool = False, data: bytes | bytearray = b""
    ) -> JSONSyntaxError:
        from .yajlerrors import locate, yajl_message  # an error: not at start-up

        message, text = yajl_message(exc)
        offset = self.filter.consumed
        located = locate(message, data)
        if located is not None:
            # yajl shows the text around the error; find it in what was fed (approximate
            # only where the pre-pass removed a trailing comma or spliced out InlineBinary)
            offset = max(0, self.filter.consumed - len(self.filter._carry) - len(data) + located)
        # yajl says which in its text only (ijson raises IncompleteJSONError for both)
        truncated = truncated or "premature EOF" in text or "Incomplete" in text
        text = f"truncated JSON input ({text})" if truncated else f"invalid JSON: {text}"
        return JSONSyntaxError(text, offset=offset, source=self.source, truncated=truncated)

    def close(self) -> None:
        """Release spill files of datasets that were never converted."""
        self.spills.discard_all()


_decode: Any = None  # parse_frame's decode (JSONDecoder.decode), made on first use
_reuse: Any = None  # parse_frame's memberreuse decoder, made on first use
_Done = object()  # DocumentParser._coro after parse_whole: the input was parsed whole


def _trailing_comma_candidate(segment: bytes) -> bool:
    """Whether ``_CANDIDATE`` matches: by the pattern where ``re`` is loaded anyway (2.5x
    faster), else without it (json2dcm's start-up imports no re)."""
    if sys.modules.get("re") is not None:  # (None: import blocked)
        return _CANDIDATE.search(segment) is not None
    return _squeezed_candidate(segment)


def _squeezed_candidate(segment: bytes) -> bool:
    """``_CANDIDATE`` without re: whitespace dropped, a comma right before ']' or '}'."""
    squeezed = segment.translate(None, _WS)
    return b",]" in squeezed or b",}" in squeezed


def _no_constant(name: str) -> None:
    raise ValueError(f"'{name}' is not a JSON value")


def _decoder() -> Any:
    """The standard library's JSON decoder, building what yajl builds (made once)."""
    global _decode
    if _decode is None:
        from .jsonscan import make_decoder  # the C scanner, without the json package

        # numbers as the spelling parser builds them (JsonNumber: a Decimal with its text;
        # json_number makes the same object without a Python __new__ call)
        _decode = make_decoder(PairList, json_number, _no_constant)
    return _decode


def parse_frame(
    data: bytes, index: int, offset: int, *, start: int = 0, source: str = ""
) -> RawDataset:
    """One top-level value's bytes (a :class:`~streamconv.framing.Frame`) -> RawDataset.

    The frame has been through the pre-pass already; ``start`` is its input offset, for
    error messages.
    """
    global _reuse
    decode = _decoder()
    if _reuse is None:
        from .memberreuse import member_decoder  # the members the last frame had (a series)

        _reuse = member_decoder(PairList, json_number, _no_constant) or decode
    try:
        # the standard library's C scanner builds the objects at C speed; it accepts what
        # yajl accepts, no more (NaN and Infinity are refused by _no_constant; lone
        # surrogates were refused by the pre-pass), and numbers reach the model as yajl
        # gives them (int, or JsonNumber with the token's text).  Whatever it refuses
        # goes to yajl below, which says what is wrong, and where, as it always did.
        text = data.decode("utf-8")
        try:
            return RawDataset(index, _reuse(text), offset)
        except (ValueError, LookupError, StopIteration, RecursionError):
            return RawDataset(index, decode(text), offset)  # parsed whole
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError
        pass
    ijson = _yajl()[0]
    target = _Target()
    coro = _items_coro(target, "")
    try:
        coro.send(data)
        coro.close()
    except ijson.JSONError as exc:
        from .yajlerrors import locate, yajl_message  # an error: not at start-up

        message, text = yajl_message(exc)
        located = locate(message, data)
        raise JSONSyntaxError(
            f"invalid JSON: {text}", offset=start + (located or 0), source=source
        ) from None
    except UnicodeDecodeError:
        raise JSONSyntaxError(
            "invalid JSON: a string is not valid UTF-8", offset=start, source=source
        ) from None
    except (ArithmeticError, ValueError):
        exc2 = LimitError(
            f"JSON number out of the supported range (at or before byte offset {offset})"
        )
        exc2.source = source
        raise exc2 from None
    if len(target.items) != 1:
        raise JSONSyntaxError("invalid JSON: expected one value", offset=start, source=source)
    return RawDataset(index, target.items[0], offset)


def iter_datasets(parser: DocumentParser, chunks: Iterator[bytes]) -> Iterator[RawDataset]:
    """Drive a parser from an iterator of byte chunks (sync helper for tests and workers)."""
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.finish()


def check_depth(limit: int, depth: int, path: str) -> None:
    if limit and depth >= limit:
        raise LimitError(
            f"sequences nested {depth} levels deep; the limit is {limit - 1}", path=path
        )
