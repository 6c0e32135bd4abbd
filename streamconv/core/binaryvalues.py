"""InlineBinary and BulkDataURI values of one element (PS3.18 F.2.7, F.2.6; CONTRACT §5):
base64 decoded (or taken from the pre-pass's spill), bulk data resolved and confined."""

from __future__ import annotations

import binascii
import logging

from ..errors import BulkDataAccessError, ContentError
from . import bulkdata
from .documents import SPILL_PREFIX, decode_base64
from .numbers import count_bytes, json_type
from .vr import BINARY_NUMERIC, BYTE_VRS, WORD_SIZE, Element

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["bulk_element", "inline_element"]

# ``ctx`` is a build.BuildContext (Any here: build imports this module)

log = logging.getLogger(__name__)

_BULK_TEXT_VRS = frozenset({"DS", "IS", "LT", "ST", "UT", "UC"})
_INLINE_LIMIT = 1 << 20  # bulk values larger than this are streamed at write time


def inline_element(tag: int, vr: str, payload: Any, ctx: Any, path: Any) -> Element | None:
    problems = ctx.problems
    if not isinstance(payload, str):
        raise ContentError(f"InlineBinary value must be a JSON string, found {json_type(payload)}")
    if vr not in BYTE_VRS:
        problems.error(
            ContentError(
                f"InlineBinary is not allowed for VR {vr} (only OB, OD, OF, OL, OV, OW, UN)",
                path=path,
            )
        )
        return None
    if payload.startswith(SPILL_PREFIX):
        spill = ctx.spills.take(int(payload[len(SPILL_PREFIX) :]))
        if spill is None:
            raise ContentError("internal error: spilled InlineBinary value not found")
        if spill.error:
            spill.discard()
            problems.error(ContentError(spill.error, path=path))
            return None
        _check_words(vr, spill.length, ctx, path)
        count_bytes(ctx, spill.length, path)
        if spill.path:
            ref = bulkdata.temporary_ref(
                spill.path, spill.length - spill.length % WORD_SIZE.get(vr, 1)
            )
            return Element(tag, vr, ref)
        data = bytes(spill.data or b"")
        spill.discard()
        return Element(tag, vr, _trim(vr, data) or None)
    try:
        data = decode_base64(payload)
    except (binascii.Error, ValueError) as exc:  # ValueError: a non-ASCII character
        problems.error(ContentError(f"invalid base64 in InlineBinary: {exc}", path=path))
        return Element(tag, vr, None)  # +E: DCMTK keeps the element empty (Q19)
    _check_words(vr, len(data), ctx, path)
    count_bytes(ctx, len(data), path)
    return Element(tag, vr, _trim(vr, data) or None)


def _trim(vr: str, data: bytes) -> bytes:
    w = WORD_SIZE.get(vr, 1)
    extra = len(data) % w
    return data[: len(data) - extra] if extra else data


def _check_words(vr: str, length: int, ctx: Any, path: Any) -> None:
    w = WORD_SIZE.get(vr, 1)
    if length % w:
        ctx.problems.error(
            ContentError(f"{vr} value of {length} bytes is not a multiple of {w}", path=path)
        )


def bulk_element(tag: int, vr: str, payload: Any, ctx: Any, path: Any) -> Element | None:
    opts = ctx.options
    if not opts.parse_bulkdata:
        log.info("%s: ignoring BulkDataURI, leaving element empty", path)
        return Element(tag, vr, [] if vr == "SQ" else None)
    if not isinstance(payload, str):
        raise ContentError(f"BulkDataURI value must be a JSON string, found {json_type(payload)}")
    if vr not in BYTE_VRS and vr not in BINARY_NUMERIC and vr not in _BULK_TEXT_VRS:
        # check the VR first: a BulkDataURI on AE, SQ etc. can never be converted (§6.4)
        raise ContentError(f"BulkDataURI is not allowed for VR {vr}")
    http = opts.http
    if http.rewrites:
        from .urlperm import rewrite

        payload = rewrite(payload, http.rewrites)
    if http.prefixes and bulkdata.is_http(payload, ctx.base_url is not None):
        from .webbulk import http_element  # urllib3 and multipart: only for an http(s) URI

        return http_element(tag, vr, payload, ctx, path, count_bytes, text=vr in _BULK_TEXT_VRS)
    try:
        ref = bulkdata.resolve_uri(payload, base_dir=ctx.base_dir, dirs=opts.bulkdata_dirs)
    except BulkDataAccessError:
        raise
    w = WORD_SIZE.get(vr, 1)
    if ref.length % w:
        ctx.problems.error(
            ContentError(
                f"{vr} bulk data of {ref.length} bytes is not a multiple of {w}", path=path
            )
        )
        ref = bulkdata.BulkRef(ref.path, ref.offset, ref.length - ref.length % w, ref.dev, ref.ino)
    count_bytes(ctx, ref.length, path)
    if vr in _BULK_TEXT_VRS:
        raw = bulkdata.read_all(ref, opts.bulkdata_dirs).rstrip(b" \x00")
        return Element(tag, vr, raw or None)
    if ref.length <= _INLINE_LIMIT:
        data = bulkdata.read_all(ref, opts.bulkdata_dirs)
        return Element(tag, vr, data or None)
    return Element(tag, vr, ref)
