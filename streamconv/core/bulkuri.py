"""BulkDataURI values of one element (PS3.18 F.2.6; CONTRACT §5): resolved and confined,
read now or streamed at write time.  Imported by build when a dataset has one."""

from __future__ import annotations

import logging

from ..errors import BulkDataAccessError, ContentError
from . import bulkdata
from .numbers import count_bytes, json_type
from .vr import BINARY_NUMERIC, BYTE_VRS, WORD_SIZE, Element

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["bulk_element"]

# ``ctx`` is a build.BuildContext (Any here: build imports this module)

log = logging.getLogger(__name__)

_BULK_TEXT_VRS = frozenset({"DS", "IS", "LT", "ST", "UT", "UC"})
_INLINE_LIMIT = 1 << 20  # bulk values larger than this are streamed at write time


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
