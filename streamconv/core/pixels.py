"""Pixel data from DICOMweb servers: fragments, frames, and images without pixels (issue 12).

* Several parts for Pixel Data are fragments (PS3.18 8.7.3.5): the value is written
  encapsulated (PS3.5 A.4) under the transfer syntax the server declares; nothing is
  decompressed, so an output transfer syntax that is native is impossible (40).
* ``--fetch-frames``: an image whose metadata has no Pixel Data (servers omit it for
  compressed instances) gets its frames by WADO-RS frames retrieval (PS3.18 10.4.1.1.4,
  ``transfer-syntax=*``): native frames as a native value, compressed ones encapsulated.
* Without it such an image is written with a warning; ``--require-pixel-data`` makes it 65.
"""

from __future__ import annotations

import itertools
import struct
from typing import TYPE_CHECKING, Any

from ..errors import BulkDataFetchError, ContentError
from .bulkdata import Encapsulated
from .lazylog import lazy_logger
from .vr import Element

if TYPE_CHECKING:
    from .httpfetch import Body

__all__ = ["NATIVE_TS", "Encapsulated", "complete_pixel_data", "encapsulated_value"]

log = lazy_logger(__name__)

PIXEL_DATA = 0x7FE00010
_OTHER_PIXELS = (0x7FE00008, 0x7FE00009)  # Float / Double Float Pixel Data
_ROWS, _COLUMNS, _FRAMES, _BITS = 0x00280010, 0x00280011, 0x00280008, 0x00280100
_STUDY, _SERIES, _SOP = 0x0020000D, 0x0020000E, 0x00080018
NATIVE_TS = frozenset(
    {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}
)


def _looks_like_offset_table(data: bytes) -> bool:
    """PS3.5 A.4 Table A.4-1: empty, or 32-bit offsets starting at 0, increasing."""
    if not data:
        return True
    if len(data) % 4:
        return False
    offsets = struct.unpack(f"<{len(data) // 4}I", data)
    return offsets[0] == 0 and all(a < b for a, b in itertools.pairwise(offsets))


def encapsulated_value(body: Body, *, frames: bool) -> Encapsulated | None:
    """The parts of a Pixel Data answer as an encapsulated value, or None when native.

    ``frames``: the answer to a frames request (one frame per part, no offset table);
    otherwise a bulk data answer, whose first part is the offset table (as Orthanc sends it).
    """
    parts = body.parts
    declared = {p.transfer_syntax for p in parts} - {""}
    if len(declared) > 1:
        raise ContentError(f"the server declared several transfer syntaxes: {sorted(declared)}")
    ts = declared.pop() if declared else ""
    if ts in NATIVE_TS or (len(parts) == 1 and not ts):
        return None
    values = [body.value(p) for p in parts]
    table = b""
    if not frames:
        first = values[0]
        head = first if isinstance(first, bytes) else b"\x01"  # a file-sized part: a fragment
        if _looks_like_offset_table(head) and len(values) > 1:
            table = head
            values = values[1:]
    return Encapsulated(table, values, ts)


def _text(ds: dict[int, Element], tag: int) -> str:
    elem = ds.get(tag)
    if elem is None or elem.value is None:
        return ""
    value = elem.value
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).split("\\")[0].strip("\x00 ")


def _us(ds: dict[int, Element], tag: int) -> int:
    elem = ds.get(tag)
    if elem is None or not isinstance(elem.value, bytes) or len(elem.value) < 2:
        return 0
    value: int = struct.unpack("<H", elem.value[:2])[0]
    return value


def complete_pixel_data(ds: dict[int, Element], meta: dict[int, Element], ctx: Any) -> None:
    """After building a top-level dataset: settle the transfer syntax of encapsulated
    fragments, or deal with an image that has no pixel data (fetch, warn, or fail)."""
    pixels = ds.get(PIXEL_DATA)
    if pixels is not None and isinstance(pixels.value, Encapsulated):
        if not pixels.value.ts:
            # the server sent fragments without naming their transfer syntax: the JSON's
            # own (0002,0010) may (PS3.18 F.2: group 0002 may be present)
            pixels.value.ts = _text(meta, 0x00020010)
            if not pixels.value.ts or pixels.value.ts in NATIVE_TS:
                raise ContentError(
                    "Pixel Data arrived as fragments, but the server declared no "
                    "transfer syntax for them",
                    path="(7FE0,0010)",
                )
        return
    if pixels is not None or any(t in ds for t in _OTHER_PIXELS):
        return
    if _ROWS not in ds or _COLUMNS not in ds:
        return  # not an image
    http = ctx.options.http
    if http.fetch_frames:
        _fetch_frames(ds, ctx)
        return
    message = "image (Rows, Columns) without Pixel Data (7FE0,0010)"
    if http.require_pixel_data:
        raise ContentError(message)
    ctx.problems.warn(
        f"{message}: written without pixels (DICOMweb servers omit compressed pixel data; "
        "--fetch-frames retrieves it)"
    )


def _server_root(ctx: Any) -> str:
    """The DICOMweb root: from the input URL, else a BulkDataURI of the dataset (both up to
    ``/studies/``), else the one ``+Bh`` prefix when only one is given."""
    for url in (ctx.base_url, ctx.first_http_uri):
        if url:
            cut = url.find("/studies/")
            if cut != -1:
                return str(url[:cut])
    prefixes = ctx.options.http.prefixes
    if len(prefixes) == 1:
        root = str(prefixes[0])
        cut = root.find("/studies/")
        return root[:cut] if cut != -1 else root.rstrip("/")
    return ""


def _fetch_frames(ds: dict[int, Element], ctx: Any) -> None:
    from . import httpfetch

    root = _server_root(ctx)
    http = ctx.options.http
    if not root:
        message = (
            "--fetch-frames: no DICOMweb server named (no input URL, no BulkDataURI "
            ".../studies/... in the dataset, and more than one +Bh prefix): written without "
            "Pixel Data"
        )
        if http.require_pixel_data:
            raise ContentError(message.replace(": written without Pixel Data", ""))
        ctx.problems.warn(message)
        return
    study, series, sop = _text(ds, _STUDY), _text(ds, _SERIES), _text(ds, _SOP)
    try:
        count = max(1, int(_text(ds, _FRAMES) or "1"))
    except ValueError:
        count = 1
    numbers = ",".join(str(i) for i in range(1, count + 1))
    url = f"{root}/studies/{study}/series/{series}/instances/{sop}/frames/{numbers}"
    limits = ctx.options.limits
    left = limits.max_dataset_bytes - ctx.decoded_bytes if limits.max_dataset_bytes else -1
    budget = httpfetch.Budget(limits.max_value_bytes, left, limits.max_dataset_bytes)
    try:
        body = httpfetch.fetch(
            url, http, budget, max_parts=count, accept=(httpfetch.ACCEPT_MULTIPART,)
        )
    except BulkDataFetchError as exc:
        if exc.transient or not 400 <= exc.status < 500:
            raise
        message = f"--fetch-frames: the server has no frames for this image ({exc.message})"
        if http.require_pixel_data:
            raise ContentError(message) from None
        ctx.problems.warn(message + ": written without Pixel Data")
        return
    if body.path:
        ctx.temporaries.append(body.path)  # removed if the dataset fails (build_one)
    if len(body.parts) != count:
        body.discard()
        raise ContentError(
            f"--fetch-frames: {count} frames asked for, the server sent {len(body.parts)}"
        )
    ctx.decoded_bytes += body.length
    value = encapsulated_value(body, frames=True)
    if value is not None:
        ds[PIXEL_DATA] = Element(PIXEL_DATA, "OB", value)
        return
    # native frames, concatenated: PS3.5 A.1 (OW when a sample is larger than a byte)
    vr = "OW" if _us(ds, _BITS) > 8 else "OB"
    whole = body.value(body.parts[0]._replace(length=body.length))
    if isinstance(whole, bytes):
        body.discard()
    ds[PIXEL_DATA] = Element(PIXEL_DATA, vr, whole or None)
