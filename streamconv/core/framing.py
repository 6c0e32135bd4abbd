"""Top-level JSON values as byte frames, found without building them (CONTRACT §3, §6).

The stream front end and ``+as n`` need where each dataset begins and ends, not its objects:
parsing in the reading process and pickling the result to a worker cost more than converting
it (measured: ~1.3 ms per CT header vs ~0.1 ms for a frame).  :class:`Framer` runs the same
pre-pass as :class:`~streamconv.documents.DocumentParser` (BOM, trailing commas, InlineBinary
spills, limits), then cuts the filtered bytes into one frame per top-level value: the elements
of a top-level array (several arrays in a row are allowed: paged QIDO-RS results), or each of
several values (NDJSON, concatenated objects).  With ``check`` (``+as n``, whose skipped
datasets nobody parses) every frame is checked to be RFC 8259 JSON here, in input order; the
stream leaves that to its workers, which parse each frame with ijson
(:func:`~streamconv.documents.parse_frame`).

Finding the end of an object costs C-speed ``bytes`` operations.  An object can only end at
a closing brace followed by a separator (``},{``, ``}]``, ``}\\n{``, the end of the data so
far); at each such candidate the brace depth moves by the count of opening minus closing
braces since the previous one.  Where it reaches zero, one pass over the frame confirms that
no string in it holds a bracket; if one does (or the frame grows past _FAST_LIMIT), an exact
token-by-token scan finds the end instead.
"""

from __future__ import annotations

import collections
import json
import re
from collections.abc import Iterable, Iterator

from ..errors import ContentError, JSONSyntaxError
from ..options import Limits
from .documents import Spill, SpillStore, _Via, load_ijson, make_filter

__all__ = ["Frame", "Framer", "chunks_then_end"]

_NOT_WS = re.compile(rb"[^ \t\r\n]")
# a closing brace that may end a top-level object: followed by ",{" / ",[" (array items),
# or by anything but "," and "}" (which only follow a brace inside a value): "]" (the
# array's end), "{" / "[" (the next value), stray bytes after a complete value (a NUL, a
# word: framed on their own, so the value before them stands), or the end of the data so
# far (a pattern that starts with a literal is searched ~4x faster than one with a class)
_CANDIDATE = re.compile(rb"\}(?=[ \t\r\n]*(?:,[ \t\r\n]*[{\[]|[^ \t\r\n,}]|\Z))")
# a string from its opening quote (group 1: the closing quote, absent while the string is
# still open at the end of the data: it then ends at the end, or before a lone trailing
# backslash); the slow path's tokens are strings and brackets.  An open string is never
# matched again from its start: _STRING_REST goes on from where the last chunk ended, so a
# 64 MB text value read in 64 KiB pieces costs one pass, not a thousand (issue 10 row 1)
_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*(")?'
_TOKEN = re.compile(_STRING + rb"|[{}\[\]]", re.DOTALL)
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
# a bare word (number, literal, stray bytes); it may go on in the next chunk
_BARE = re.compile(rb'[^ \t\r\n,\[\]{}"]*')
_NOT_MARK = bytes(c for c in range(256) if c not in b'"[]{}')
_PLACEHOLDER = re.compile(rb'"\\u0000streamconv-spill:(\d+)"')
_LOADS_MAX = 8 << 20  # larger frames are checked by yajl, which builds no objects
# a value still open after this many bytes is followed token by token: a brace inside a
# string could otherwise keep the brace count from ever reaching zero
_FAST_LIMIT = 8 << 20
_LBRACE, _LBRACKET, _RBRACKET, _RBRACE, _COMMA, _QUOTE = 0x7B, 0x5B, 0x5D, 0x7D, 0x2C, 0x22


class Frame:
    """One top-level value's bytes (after the pre-pass), with where it came from.

    (A plain class, not a dataclass: every stream worker imports this module, and
    ``dataclasses`` pulls in ``inspect``, ~40 ms of start-up.)"""

    __slots__ = ("data", "index", "offset", "spills", "start")

    def __init__(
        self,
        index: int,  # 0-based position in the stream
        data: bytes,
        offset: int,  # input bytes consumed when it was complete (RawDataset.offset)
        start: int,  # input byte offset where it begins (shifted by bytes the pre-pass removed)
        spills: dict[int, Spill] | None = None,  # its spliced-out InlineBinary
    ) -> None:
        self.index = index
        self.data = data
        self.offset = offset
        self.start = start
        self.spills: dict[int, Spill] = {} if spills is None else spills

    def __repr__(self) -> str:
        return f"Frame(index={self.index}, offset={self.offset}, start={self.start}, {len(self.data)} bytes)"

    def discard(self) -> None:
        for spill in self.spills.values():
            spill.discard()
        self.spills.clear()


def _bracket_delta(segment: bytes | bytearray) -> int | None:
    """Opening minus closing brackets in ``segment`` (which starts outside a string), or
    None when a string in it holds a bracket or the segment ends inside a string."""
    if b"\\" in segment:
        segment = segment.replace(b"\\\\", b"").replace(b'\\"', b"")  # escapes out
    marks = segment.translate(None, _NOT_MARK)
    # every string is a pair of quotes with only its brackets between: with none, the
    # quotes come in runs of even length, and '""' removal leaves no quote at all
    if b'"' in marks and b'"' in marks.replace(b'""', b""):
        return None
    return marks.count(b"{") + marks.count(b"[") - marks.count(b"}") - marks.count(b"]")


class Framer:
    """Push bytes in, get :class:`Frame` objects out, in order (see module doc).

    ``shape`` is "array" or "values" once the first byte is known; ``count`` is the number
    of frames so far.  ``check=False`` skips the JSON check of each frame (the caller
    parses every frame itself).
    """

    def __init__(
        self,
        *,
        source: str = "",
        spills: SpillStore | None = None,
        limits: Limits | None = None,
        check: bool = True,
    ) -> None:
        self.source = source
        self.spills = spills if spills is not None else SpillStore()
        self.filter = make_filter(
            self.spills, limits.max_depth if limits is not None else 64, limits
        )
        self.check = check
        self.shape = ""
        self.count = 0
        self.arrays = 0  # top-level arrays opened
        self._buf = bytearray()
        self._base = 0  # offset of _buf[0] in the filtered stream
        self._emitted = 0  # filtered bytes received
        self._pos = 0  # next byte of _buf to look at (outside any value)
        self._in_array = False
        self._need_sep = False  # in an array, after a value: ',' or ']' comes next
        self._after_comma = False
        self._start = -1  # start of the object/array being framed, or -1
        self._scan = 0  # its depth is known up to here (a position outside strings)
        self._depth = 0
        self._searched = 0  # candidates looked for up to here
        self._marked = 0  # _last_mark looked at the data up to here
        self._slow = False  # the value is found token by token (_end_slowly)
        self._in_str = False  # _end_slowly: _scan is inside a string that is still open
        self._bare = False  # the value is a bare word (number, literal, stray bytes)
        self._done: list[Frame] = []
        # filtered bytes before this offset may have a string holding a bracket (the
        # pre-pass says which feeds have none: JsonFilter.strings_plain)
        self._dirty_end = 0

    # -- the caller's side ----------------------------------------------------------------
    def feed(self, data: bytes) -> list[Frame]:
        out = self.filter.feed(data)
        # a filter that does not say (batch's verbatim one, duck-typed) is not known plain
        if out and not getattr(self.filter, "strings_plain", False):
            self._dirty_end = self._emitted + len(out)
        return self._push(out, final=False)

    def finish(self) -> list[Frame]:
        out = self.filter.finish()
        if out:  # held back and passed on unscanned
            self._dirty_end = self._emitted + len(out)
        frames = self._push(out, final=True)
        if self._start >= 0 or self._in_array:
            raise JSONSyntaxError(
                "truncated JSON input (premature EOF)",
                offset=self.filter.consumed,
                source=self.source,
                truncated=True,
            )
        if self.count == 0:
            if self.arrays:
                raise ContentError("found empty JSON array instead of DICOM JSON dataset")
            raise ContentError("no JSON value found in the input (empty document)")
        return frames

    def completed(self) -> list[Frame]:
        """After an error: the frames that were complete before it (in the failed call)."""
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        """Release spill files of frames never handed out."""
        for frame in self._done:
            frame.discard()
        self._done = []
        self.spills.discard_all()

    # -- internals ------------------------------------------------------------------------
    def _push(self, data: bytes, *, final: bool) -> list[Frame]:
        if data:
            self._buf += data
            self._emitted += len(data)
        self._done = []
        self._cut(final)
        # drop what is behind us once per call (never per frame: that would be quadratic)
        cut = self._start if self._start >= 0 else self._pos
        if cut:
            del self._buf[:cut]
            self._base += cut
            self._pos -= cut
            if self._start >= 0:
                self._start -= cut
                self._scan -= cut
                self._searched -= cut
                self._marked = max(0, self._marked - cut)
        done, self._done = self._done, []
        return done

    def _cut(self, final: bool) -> None:
        buf = self._buf
        n = len(buf)
        while True:
            if self._start >= 0:
                end = self._end(final)
                if end < 0:
                    return
                start, self._start = self._start, -1
                self._pos = end
                self._emit(start, end)
                continue
            m = _NOT_WS.search(buf, self._pos)
            if m is None:
                self._pos = n
                return
            i = m.start()
            c = buf[i]
            if not self.shape:
                self.shape = "array" if c == _LBRACKET else "values"
            if self._in_array:
                if self._need_sep:
                    if c == _COMMA:
                        self._need_sep, self._after_comma = False, True
                    elif c == _RBRACKET:
                        self._in_array = self._need_sep = False
                    else:
                        raise self._syntax(f"expected ',' or ']' after dataset {self.count}", i)
                    self._pos = i + 1
                    continue
                if c == _RBRACKET and not self._after_comma:
                    self._in_array = False  # an empty array
                    self._pos = i + 1
                    continue
                if c in (_COMMA, _RBRACKET):
                    raise self._syntax("expected a value", i)
            elif c == _LBRACKET:
                self._in_array, self._after_comma = True, False
                self.arrays += 1
                self._pos = i + 1
                continue
            if c in (_COMMA, _RBRACKET, _RBRACE):
                raise self._syntax(f"unexpected '{chr(c)}'", i)
            self._start = self._scan = self._searched = self._marked = i
            self._depth = 0
            self._in_str = False
            # an array or a string as a dataset: rare, and rejected; token by token
            self._slow = c != _LBRACE
            # a number, literal or stray bytes (a NUL after a dataset) as a dataset: framed
            # so that the converter reports it with its offset, and the datasets around it
            # stand (issue 10 row 11)
            self._bare = c not in (_LBRACE, _LBRACKET, _QUOTE)

    def _end(self, final: bool) -> int:
        """The end of the object/array at ``_start``, or -1 if it has not arrived yet."""
        if self._bare:
            m = _BARE.match(self._buf, self._scan)
            assert m is not None  # it matches the empty string
            if m.end() == len(self._buf) and not final:
                self._scan = m.end()  # may go on in the next chunk: go on from here
                return -1
            return m.end()
        if self._slow:
            return self._end_slowly()
        buf = self._buf
        scan, depth = self._scan, self._depth
        for m in _CANDIDATE.finditer(buf, self._searched):
            end = m.end()
            depth += buf.count(b"{", scan, end) - buf.count(b"}", scan, end)
            scan = end
            if depth <= 0:
                start = self._start
                if depth:
                    balanced = False
                elif self._base + start >= self._dirty_end:
                    # no string in the frame holds a bracket (the pre-pass's scan, shared):
                    # every bracket counts, and the braces balance already
                    balanced = buf.count(b"[", start, end) == buf.count(b"]", start, end)
                else:
                    balanced = _bracket_delta(buf[start:end]) == 0
                if balanced:
                    self._scan, self._depth = scan, depth
                    return end
                return self._restart_slowly()  # a string holds a bracket, or invalid JSON
        self._scan, self._depth = scan, depth
        self._searched = max(scan, self._last_mark(self._searched))
        if final or len(buf) - self._start > _FAST_LIMIT:
            return self._restart_slowly()
        return -1

    def _restart_slowly(self) -> int:
        self._slow = True
        self._scan, self._depth, self._in_str = self._start, 0, False
        return self._end_slowly()

    def _end_slowly(self) -> int:
        """Bracket by bracket, strings skipped whole (a string here holds a bracket).

        Every byte is looked at once: a string still open at the end of the data is taken
        up where it stopped (``_in_str``), never from its opening quote again.
        """
        buf = self._buf
        depth = self._depth
        pos = self._scan
        if self._in_str:
            m = _STRING_REST.match(buf, pos)
            assert m is not None  # it matches the empty string
            pos = m.end()
            if pos >= len(buf) or buf[pos] != _QUOTE:  # still open (or a lone trailing \\)
                self._scan = pos
                return -1
            pos += 1
            self._in_str = False
            if depth <= 0:  # a string as the top-level value
                self._scan = pos
                return pos
        for m in _TOKEN.finditer(buf, pos):
            if buf[m.start()] == _QUOTE:
                pos = m.end()
                if m.group(1) is None:  # still open: go on from here next time
                    self._scan, self._depth, self._in_str = pos, depth, True
                    return -1
                if depth <= 0:  # a string as the top-level value
                    self._scan, self._depth = pos, depth
                    return pos
                continue
            depth += 1 if buf[m.start()] in (_LBRACE, _LBRACKET) else -1
            pos = m.end()
            if depth <= 0:
                self._scan, self._depth = pos, depth
                return pos
        self._scan, self._depth = len(buf), depth
        return -1

    def _last_mark(self, lo: int) -> int:
        """The last non-blank byte: a closing bracket there may become a candidate once its
        separator arrives, so the next search starts from it.  Only the bytes that arrived
        since the last call are looked at (``lo``: the mark found then), so a long run of
        blanks costs one pass, not one per read."""
        buf = self._buf
        new = max(lo + 1, self._marked)
        self._marked = len(buf)
        if new >= len(buf):
            return lo
        kept = len(bytes(buf[new:]).rstrip(b" \t\r\n"))
        return new + kept - 1 if kept else lo

    def _emit(self, start: int, end: int) -> None:
        with memoryview(self._buf) as view, view[start:end] as part:
            data = bytes(part)  # one copy (a bytearray slice would make two)
        at = self._input_offset(start)
        spills: dict[int, Spill] = {}
        if self.spills and b"streamconv-spill:" in data:
            for m in _PLACEHOLDER.finditer(data):
                ident = int(m.group(1))
                spill = self.spills.take(ident)
                if spill is not None:
                    spills[ident] = spill
        frame = Frame(self.count, data, self.filter.consumed, at, spills)
        if self.check:
            try:
                check_json(data, at)
            except JSONSyntaxError as exc:
                frame.discard()
                exc.source = self.source
                raise
        self.count += 1
        self._done.append(frame)
        if self._in_array:
            self._need_sep, self._after_comma = True, False

    def _input_offset(self, start: int) -> int:
        # bytes the pre-pass took out (BOM, trailing commas, spliced base64) shift offsets;
        # counted up to now, so the figure is at or after the true offset
        removed = self.filter.consumed - len(self.filter._carry) - self._emitted
        return self._base + start + max(0, removed)

    def _syntax(self, message: str, i: int) -> JSONSyntaxError:
        return JSONSyntaxError(
            f"invalid JSON: {message}", offset=self._input_offset(i), source=self.source
        )


def _no_constant(name: str) -> None:
    raise ValueError(f"'{name}' is not a JSON value")


def check_json(data: bytes, at: int = 0) -> None:
    """Raise JSONSyntaxError unless ``data`` is one RFC 8259 JSON value (offsets from ``at``).

    The standard library's C scanner checks a CT header in ~0.09 ms, yajl with events ~0.2 ms;
    yajl takes over for large frames (no object tree) and deep nesting (no recursion limit).
    """
    if len(data) <= _LOADS_MAX:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONSyntaxError(
                "invalid JSON: a string is not valid UTF-8", offset=at + exc.start
            ) from None
        try:
            json.loads(text, parse_constant=_no_constant)
            return
        except json.JSONDecodeError as exc:
            where = at + len(text[: exc.pos].encode("utf-8"))
            raise JSONSyntaxError(f"invalid JSON: {exc.msg}", offset=where) from None
        except ValueError as exc:  # _no_constant
            raise JSONSyntaxError(f"invalid JSON: {exc}", offset=at) from None
        except RecursionError:
            pass
    import ijson  # loaded by load_ijson: only frames yajl checks need it

    backend = load_ijson()
    sink = _Via(collections.deque(maxlen=0).append)  # events dropped at C speed
    make = getattr(backend, "basic_parse_basecoro", None) or backend.basic_parse_coro
    coro = make(sink)
    try:
        coro.send(data)
        coro.close()
    except ijson.JSONError as exc:
        from .yajlerrors import yajl_message

        raise JSONSyntaxError(f"invalid JSON: {yajl_message(exc)[1]}", offset=at) from None
    except UnicodeDecodeError:
        raise JSONSyntaxError("invalid JSON: a string is not valid UTF-8", offset=at) from None


def chunks_then_end(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The non-empty chunks, then ``b""``: the end of the input, as Framer.feed's callers
    (and the Converter's) tell it apart from a chunk."""
    for chunk in chunks:
        if chunk:
            yield chunk
    yield b""
