"""InlineBinary values spilled out of the JSON text (documents.JsonFilter), decoded as they
arrive: in memory, then in a temporary file past _SPILL_MEMORY.  The model finds them by
the placeholder the pre-pass left (``SpillStore``); frames carry theirs to worker processes.
"""

from __future__ import annotations

import binascii
import os

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Spill", "SpillStore", "decode_base64"]

_SPILL_MEMORY = 16 << 20  # decoded spill bytes kept in memory before moving to a temp file


class Spill:
    """A decoded InlineBinary value taken out of the JSON text (in memory, then in a
    temporary file past _SPILL_MEMORY).  Pickled to worker processes with its frame."""

    __slots__ = ("_pending", "data", "error", "file", "length", "path")

    def __init__(self) -> None:
        self.data: bytearray | None = bytearray()
        self.file: Any = None  # the temporary file while it is written
        self.path = ""
        self.length = 0
        self.error = ""
        self._pending = b""

    def write_b64(self, text: bytes) -> None:
        if self.error:
            return
        text = self._pending + text
        cut = len(text) - len(text) % 4
        self._pending = text[cut:]
        self._decode(text[:cut])

    def _decode(self, text: bytes) -> None:
        if not text:
            return
        try:
            raw = decode_base64(text)
        except binascii.Error as exc:
            self.error = f"invalid base64 in InlineBinary: {exc}"
            return
        self.length += len(raw)
        if self.file is None:
            assert self.data is not None
            self.data += raw
            if len(self.data) > _SPILL_MEMORY:
                import tempfile  # lazily: start-up (only spills over 16 MiB get here)

                fd, self.path = tempfile.mkstemp(prefix="streamconv-spill-")
                self.file = os.fdopen(fd, "wb")
                self.file.write(self.data)
                self.data = None
        else:
            self.file.write(raw)

    def finish(self) -> None:
        if self._pending and not self.error:
            # PS3.18 F.2.7: InlineBinary is base64 with padding; a partial quad is invalid.
            self.error = "invalid base64 in InlineBinary: length is not a multiple of 4"
        if self.file is not None:
            self.file.flush()
            self.file.close()
            self.file = None

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            self.path = ""
        self.data = None


_SHORT_BASE64 = 4096  # characters


def decode_base64(text: bytes | str) -> bytes:
    """Strict base64 (PS3.18 F.2.7, RFC 4648 §4): alphabet, padding only at the end, length.

    pybase64 (SIMD) decodes ~7x faster than binascii here (8 MiB: 9 ms vs 64 ms), which is
    most of the time of a large InlineBinary; binascii's strict mode is the fallback, and
    decodes the short ones (a header's few bytes: importing pybase64 costs more, ~0.7 ms of
    json2dcm's start-up, issue 11).
    """
    if len(text) < _SHORT_BASE64:
        try:
            return binascii.a2b_base64(text, strict_mode=True)
        except (binascii.Error, ValueError):
            pass  # refused: pybase64 refuses it too, and says why in the words it always did
    try:
        import pybase64
    except ImportError:  # pragma: no cover - pybase64 is a dependency
        return binascii.a2b_base64(text, strict_mode=True)
    decoded: bytes = pybase64.b64decode(text, validate=True)
    return decoded


class SpillStore:
    """Spills by id; the model looks placeholders up here."""

    def __init__(self) -> None:
        self._spills: dict[int, Spill] = {}
        self._next = 0

    def new(self) -> tuple[int, Spill]:
        self._next += 1
        spill = Spill()
        self._spills[self._next] = spill
        return self._next, spill

    def take(self, ident: int) -> Spill | None:
        return self._spills.pop(ident, None)

    def adopt(self, spills: dict[int, Spill]) -> None:
        """Take over spills cut out elsewhere (a frame's, in a worker or for +as n)."""
        self._spills.update(spills)
        spills.clear()

    def __len__(self) -> int:
        return len(self._spills)

    def discard_all(self) -> None:
        for spill in self._spills.values():
            spill.discard()
        self._spills.clear()
