"""Elements -> Part 10 bytes: +F/-F/+Fu, transfer syntaxes, +e/-e, +u/-u, +cl.

The encoder writes the element bytes directly (PS3.5 7.1); pydicom is not on this path.
The result is a list of pieces: ``bytes`` and large bulk values (:class:`BulkRef`), which
the sink streams from their files, byte-swapped for big endian and deflated for +td.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

from ..errors import OutputError
from ..options import ConvertOptions, TransferSyntax, WriteMode
from .bulkdata import BulkRef, Encapsulated, iter_chunks
from .lazylog import lazy_logger
from .uids import (
    GENERIC_SOP_CLASS,
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    NATIVE_TS,
    generate_uid,
    transfer_syntax_name,
)
from .vr import LONG_HEADER_VRS, NEW_VRS, WORD_SIZE, Element, PreEncoded

__all__ = ["Encoded", "Piece", "encode_items", "encode_part10", "iter_bytes", "output_ts"]

log = lazy_logger(__name__)

Dataset = dict[int, Element]
Piece = bytes | tuple[BulkRef, int]  # (ref, swap word size or 1)

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
BIG = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
PIXEL_DATA = 0x7FE00010
_ITEM = 0xFFFEE000
_ITEM_DELIM = 0xFFFEE00D
_SEQ_DELIM = 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF


class Encoded:
    """One output file (or dataset) ready to be streamed: ``head`` is the preamble and
    meta header (empty with -F), ``body`` the dataset's pieces, ``temporaries`` files to
    remove once written.  (A plain class: see streamconv/options.py on start-up.)"""

    __slots__ = ("_body", "_size", "bulk_dirs", "deflate_level", "head", "temporaries", "ts")

    def __init__(
        self,
        head: bytes,
        body: list[Piece],
        deflate_level: int | None = None,
        bulk_dirs: tuple[str, ...] = (),
        ts: str = EXPLICIT,
    ) -> None:
        self.head = head
        self._body = body
        self.deflate_level = deflate_level
        self.bulk_dirs = bulk_dirs
        self.ts = ts
        self.temporaries: list[str] = []
        self._size = -1  # the body's length, when the encoder knows it

    @property
    def body(self) -> list[Piece]:
        return self._body

    @body.setter
    def body(self, pieces: list[Piece]) -> None:
        self._body = pieces
        self._size = -1  # new pieces (+ar adds its spool): no longer known

    @property
    def size_hint(self) -> int:
        if self._size >= 0:
            return len(self.head) + self._size
        return len(self.head) + sum(
            len(p) if isinstance(p, bytes) else p[0].length for p in self.body
        )


class _Writer:
    """Encodes elements for one transfer syntax into pieces."""

    def __init__(self, ts: str, options: ConvertOptions) -> None:
        self.implicit = ts == IMPLICIT
        self.big = ts == BIG
        self.explicit_le = not self.implicit and not self.big  # PreEncoded pieces apply
        self.bulk = False  # a BulkRef piece was written (read from its file at write time)
        self.explicit_length = options.explicit_length
        self.new_vr = options.enable_new_vr
        e = ">" if self.big else "<"
        self.short = struct.Struct(e + "HH2sH").pack
        self.long = struct.Struct(e + "HH2s2xI").pack
        self.impl = struct.Struct(e + "HHI").pack
        self.tagonly = struct.Struct(e + "HHI").pack

    def header(self, tag: int, vr: str, length: int) -> bytes:
        if length > 0xFFFFFFFF:
            # PS3.5 7.1.1-7.1.3: a 32-bit length, 0xFFFFFFFF meaning "undefined": a value of
            # 4 GiB or more cannot be written in any transfer syntax
            raise OutputError(
                f"value of ({tag >> 16:04X},{tag & 0xFFFF:04X}) is {length} bytes, too long for "
                f"a 32-bit length field (at most 4294967294, PS3.5 7.1)"
            )
        if self.implicit:
            return self.impl(tag >> 16, tag & 0xFFFF, length)
        if not self.new_vr and vr in NEW_VRS:
            vr = "OB"  # -u (dcmtk-behavior §9.3)
        if vr in LONG_HEADER_VRS:
            return self.long(tag >> 16, tag & 0xFFFF, vr.encode(), length)
        if length > 0xFFFF:
            raise OutputError(
                f"value of ({tag >> 16:04X},{tag & 0xFFFF:04X}) is {length} bytes, too long for "
                f"VR {vr} in explicit VR (at most 65534)"
            )
        return self.short(tag >> 16, tag & 0xFFFF, vr.encode(), length)

    def dataset(self, ds: Dataset, out: list[Piece]) -> int:
        """Append the encoded elements of ``ds`` (sorted by tag) to ``out``; return the length."""
        total = 0
        if self.explicit_le:
            append = out.append
            for tag in sorted(ds):
                elem = ds[tag]
                if type(elem) is PreEncoded:
                    append(elem.piece)
                    total += len(elem.piece)
                else:
                    total += self.element(elem, out)
            return total
        for tag in sorted(ds):
            total += self.element(ds[tag], out)
        return total

    def element(self, elem: Element, out: list[Piece]) -> int:
        vr = elem.vr
        value = elem.value
        tag = elem.tag
        if vr == "SQ":
            return self.sequence(tag, value or [], out)
        if value is None:
            out.append(self.header(tag, vr, 0))
            return len(out[-1])
        if isinstance(value, Encapsulated):
            return self.encapsulated(tag, value, out)
        if isinstance(value, BulkRef):
            self.bulk = True
            n = value.length
            pad = n & 1
            h = self.header(tag, vr, n + pad)
            out.append(h)
            out.append((value, WORD_SIZE.get(vr, 1) if self.big else 1))
            if pad:
                out.append(b"\x00")
            return len(h) + n + pad
        if isinstance(value, str):  # ASCII of a PreEncoded element, or encode without transform
            value = value.encode("utf-8")
        if len(value) & 1:
            # PS3.5 7.1.1: even length; UI pads with NUL, text with space, binary with NUL
            value += b"\x00" if vr in ("UI", "OB", "UN") or vr not in _SPACE_PADDED else b" "
        if self.big:
            w = WORD_SIZE.get(vr, 1)
            if w > 1:
                value = _swap(value, w)
        h = self.header(tag, vr, len(value))
        if len(value) < 65536:
            # one piece for header + value: every later stage loops over the pieces
            out.append(h + value)
        else:
            out.append(h)
            out.append(value)
        return len(h) + len(value)

    def encapsulated(self, tag: int, value: Encapsulated, out: list[Piece]) -> int:
        """PS3.5 A.4: OB of undefined length; the offset table and each fragment an item."""
        h = self.header(tag, "OB", _UNDEFINED)
        out.append(h)
        total = len(h)
        for frag in (value.offset_table, *value.fragments):
            if isinstance(frag, BulkRef):
                n = frag.length
                out.append(self.tagonly(_ITEM >> 16, _ITEM & 0xFFFF, n + (n & 1)))
                out.append((frag, 1))
                if n & 1:
                    out.append(b"\x00")  # items have even lengths (PS3.5 A.4)
            else:
                n = len(frag)
                pad = b"\x00" if n & 1 else b""
                out.append(self.tagonly(_ITEM >> 16, _ITEM & 0xFFFF, n + len(pad)) + frag + pad)
            total += 8 + n + (n & 1)
        out.append(self.tagonly(_SEQ_DELIM >> 16, _SEQ_DELIM & 0xFFFF, 0))
        return total + 8

    def sequence(self, tag: int, items: list[Dataset], out: list[Piece]) -> int:
        if not self.explicit_length:
            h = self.header(tag, "SQ", _UNDEFINED)
            out.append(h)
            total = len(h)
            for item in items:
                ih = self.tagonly(_ITEM >> 16, _ITEM & 0xFFFF, _UNDEFINED)
                out.append(ih)
                total += len(ih) + self.dataset(item, out)
                out.append(self.tagonly(_ITEM_DELIM >> 16, _ITEM_DELIM & 0xFFFF, 0))
                total += 8
            out.append(self.tagonly(_SEQ_DELIM >> 16, _SEQ_DELIM & 0xFFFF, 0))
            return total + 8
        slot = len(out)
        out.append(b"")  # sequence header, once its length is known
        body = 0
        for item in items:
            islot = len(out)
            out.append(b"")
            n = self.dataset(item, out)
            out[islot] = self.tagonly(_ITEM >> 16, _ITEM & 0xFFFF, n)
            body += 8 + n
        h = self.header(tag, "SQ", body)
        out[slot] = h
        return len(h) + body


_SPACE_PADDED = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UR", "UT"}
)


def _swap(data: bytes, width: int) -> bytes:
    import array  # here: only big-endian output swaps (start-up, issue 11)

    code = {2: "H", 4: "I", 8: "Q"}[width]
    n = len(data) - len(data) % width
    arr = array.array(code)
    arr.frombytes(data[:n])
    arr.byteswap()
    return arr.tobytes() + data[n:]


def output_ts(options: ConvertOptions, meta: Dataset, has_pixel_data: bool) -> tuple[str, str]:
    """(UID written into (0002,0010), UID the dataset is encoded with)."""
    chosen = options.transfer_syntax
    if chosen is not TransferSyntax.SAME:
        return chosen.value, chosen.value
    elem = meta.get(0x00020010)
    uid = ""
    if elem is not None and elem.value:
        raw = elem.value
        uid = (raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)).split("\\")[
            0
        ]
        uid = uid.rstrip("\x00 ")
    if not uid:
        return EXPLICIT, EXPLICIT  # an empty (0002,0010) means "not given" (CONTRACT §7)
    if uid in NATIVE_TS:
        return uid, uid
    name = transfer_syntax_name(uid)
    if name is None:
        return EXPLICIT, EXPLICIT  # unknown UID: Explicit VR Little Endian (DCMTK)
    if has_pixel_data:
        raise OutputError(f"no conversion to transfer syntax {name} possible!")
    # Encapsulated TS without pixel data: meta names it, the dataset is native (DCMTK P11).
    return uid, EXPLICIT


def _encapsulated_ts(options: ConvertOptions, ts: str) -> tuple[str, str]:
    """Pixel Data that arrived encapsulated (issue 12): its transfer syntax is the file's;
    the dataset around it is explicit VR little endian (PS3.5 A.4).  Nothing is
    decompressed, so an option asking for another transfer syntax cannot be met (40)."""
    chosen = options.transfer_syntax
    if chosen is not TransferSyntax.SAME:
        name = transfer_syntax_name(ts) or ts
        raise OutputError(
            f"Pixel Data arrived encapsulated ({name}): no conversion to "
            f"{transfer_syntax_name(chosen.value) or chosen.value} possible (nothing is "
            "decompressed; leave the transfer syntax option out)"
        )
    return ts, EXPLICIT


def _find(ds: Dataset, tag: int) -> Element | None:
    """Depth-first search, as DCMTK's meta header update does (dcmtk-behavior §9.1)."""
    elem = ds.get(tag)
    if elem is not None and elem.value:
        return elem
    for e in ds.values():
        if e.vr == "SQ" and isinstance(e.value, list):
            for item in e.value:
                found = _find(item, tag)
                if found is not None:
                    return found
    return None


def _text(elem: Element | None) -> bytes | None:
    if elem is None or elem.value is None:
        return None
    v = elem.value
    if isinstance(v, str):
        v = v.encode("utf-8")
    return v if isinstance(v, bytes) and v else None


def build_meta(ds: Dataset, meta: Dataset, ts_uid: str, update: bool) -> Dataset:
    """The file meta information as DCMTK writes it (PS3.10 7.1; dcmtk-behavior §9.1)."""
    out: Dataset = dict(meta)
    out.pop(0x00020000, None)
    version = out.get(0x00020001)
    if version is None or not version.value:
        out[0x00020001] = Element(0x00020001, "OB", b"\x00\x01")
    for meta_tag, ds_tag, name in (
        (0x00020002, 0x00080016, "SOPClassUID"),
        (0x00020003, 0x00080018, "SOPInstanceUID"),
    ):
        given = out.get(meta_tag)
        source = _find(ds, ds_tag)
        src_val = _text(source)
        if given is not None and _text(given) is not None and given.vr == "UI":
            if update and src_val is not None:
                out[meta_tag] = Element(meta_tag, "UI", src_val)
            elif src_val is not None and _text(given) != src_val:
                log.warning(
                    "Value of %s in File Meta Information Header and Dataset is different", name
                )
            continue
        if given is not None and given.vr != "UI" and _text(given) is not None:
            continue  # written as given, not updated (DCMTK M13)
        if src_val is not None:
            out[meta_tag] = Element(meta_tag, "UI", src_val)
        elif meta_tag == 0x00020002:
            out[meta_tag] = Element(meta_tag, "UI", GENERIC_SOP_CLASS.encode())
        else:
            out[meta_tag] = Element(meta_tag, "UI", generate_uid().encode())
    out[0x00020010] = Element(0x00020010, "UI", ts_uid.encode())
    out[0x00020012] = Element(0x00020012, "UI", IMPLEMENTATION_CLASS_UID.encode())
    out[0x00020013] = Element(0x00020013, "SH", IMPLEMENTATION_VERSION_NAME.encode())
    return out


def _encode_meta(meta: Dataset, options: ConvertOptions) -> bytes:
    w = _Writer(EXPLICIT, options)
    w.new_vr = True  # the meta header is never affected by -u
    pieces: list[Piece] = []
    n = w.dataset(meta, pieces)
    group_length = w.header(0x00020000, "UL", 4) + struct.pack("<I", n)
    # a large meta value (a BulkDataURI, a spilled InlineBinary) is a reference: read it here,
    # the meta header being one piece of bytes (PS3.10 7.1: always explicit VR little endian,
    # so no byte swapping)
    body = b"".join(
        p if isinstance(p, bytes) else b"".join(iter_chunks(p[0], options.bulkdata_dirs))
        for p in pieces
    )
    return b"\x00" * 128 + b"DICM" + group_length + body


def encode_part10(
    ds: Dataset,
    meta: Dataset,
    options: ConvertOptions,
    *,
    sop_instance_changed: bool = False,
    meta_source: Dataset | None = None,
) -> Encoded:
    """Encode one dataset (and its meta header unless -F) for the chosen transfer syntax.

    ``meta_source`` is searched for the SOP Class/Instance UIDs instead of ``ds`` (+ar).
    """
    pixels = ds.get(PIXEL_DATA)
    if pixels is not None and isinstance(pixels.value, Encapsulated):
        meta_ts, data_ts = _encapsulated_ts(options, pixels.value.ts)
    else:
        meta_ts, data_ts = output_ts(options, meta, pixels is not None)
    write_file = options.write_mode is WriteMode.FILE
    if not write_file and meta_ts != data_ts:
        log.warning("encapsulated pixel data require file format, ignoring --write-dataset")
        write_file = True
    head = b""
    if write_file:
        update = options.update_meta or sop_instance_changed
        source = ds if meta_source is None else meta_source
        head = _encode_meta(build_meta(source, meta, meta_ts, update), options)
    body: list[Piece] = []
    w = _Writer(data_ts, options)
    size = w.dataset(ds, body)
    level = options.compression_level if data_ts == DEFLATED else None
    enc = Encoded(head, body, level, options.bulkdata_dirs, meta_ts)
    if not w.bulk:
        enc._size = size  # bytes only: iter_bytes may join them at once
    return enc


def encode_items(items: list[Dataset], options: ConvertOptions, ts: str) -> tuple[list[Piece], int]:
    """Encode datasets as sequence items (for +ar), one item's pieces and length at a time."""
    w = _Writer(ts, options)
    out: list[Piece] = []
    total = 0
    for item in items:
        slot = len(out)
        out.append(b"")
        n = w.dataset(item, out)
        out[slot] = w.tagonly(
            _ITEM >> 16, _ITEM & 0xFFFF, n if options.explicit_length else _UNDEFINED
        )
        total += 8 + n
        if not options.explicit_length:
            out.append(w.tagonly(_ITEM_DELIM >> 16, _ITEM_DELIM & 0xFFFF, 0))
            total += 8
    return out, total


def sequence_header(tag: int, length: int | None, options: ConvertOptions, ts: str) -> bytes:
    w = _Writer(ts, options)
    return w.header(tag, "SQ", _UNDEFINED if length is None else length)


def sequence_end(options: ConvertOptions, ts: str) -> bytes:
    w = _Writer(ts, options)
    return w.tagonly(_SEQ_DELIM >> 16, _SEQ_DELIM & 0xFFFF, 0)


def _body_bytes(enc: Encoded) -> Iterator[bytes]:
    for piece in enc.body:
        if isinstance(piece, bytes):
            if piece:
                yield piece
            continue
        ref, width = piece
        carry = b""
        for chunk in iter_chunks(ref, enc.bulk_dirs):
            if width > 1:
                chunk = carry + chunk
                cut = len(chunk) - len(chunk) % width
                chunk, carry = _swap(chunk[:cut], width), chunk[cut:]
            yield chunk
        if carry:
            yield carry


WRITE_SIZE = 1 << 20


def gather(chunks: Iterable[bytes], size: int = WRITE_SIZE) -> Iterator[bytes]:
    """Chunks joined into pieces of at least *size* bytes (the last may be shorter).

    The encoder yields every element header and value apart: every writer (files, stdout,
    the +ar spool, the deflater) gathers them into ~1 MiB writes, one write(2) per small
    file instead of hundreds.
    """
    pending: list[bytes] = []
    n = 0
    for chunk in chunks:
        pending.append(chunk)
        n += len(chunk)
        if n >= size:
            yield b"".join(pending)
            pending, n = [], 0
    if pending:
        yield b"".join(pending)


def iter_bytes(enc: Encoded) -> Iterator[bytes]:
    """The output file as a stream of byte chunks (bulk values read here)."""
    if enc.deflate_level is None and 0 <= enc._size <= WRITE_SIZE:
        # a small file of bytes only (_size is set when there is no BulkRef piece): one
        # chunk, joined at C speed (every header goes this way)
        yield enc.head + b"".join(enc.body)  # type: ignore[arg-type]
        return
    if enc.head:
        yield enc.head
    if enc.deflate_level is None:
        yield from _body_bytes(enc)
        return
    import zlib  # here: only +td deflates (start-up, issue 11)

    # PS3.5 A.5: the dataset after the meta header is a raw deflate (RFC 1951) bitstream
    comp = zlib.compressobj(enc.deflate_level, zlib.DEFLATED, -zlib.MAX_WBITS)
    size = 0
    for chunk in gather(_body_bytes(enc)):
        out = comp.compress(chunk)
        if out:
            size += len(out)
            yield out
    out = comp.flush()
    size += len(out)
    if size & 1:
        # PS3.5 A.5: "If the deflate algorithm produces an odd number of bytes then a single
        # trailing NULL byte shall be added after the last byte of the deflated bit stream."
        # (DCMTK 3.7 does not add it; CONTRACT §7 allows the difference.)
        out += b"\x00"
    yield out
