"""An http(s) BulkDataURI under a ``+Bh`` prefix -> an element value (CONTRACT §5).

The value is fetched while the dataset is built, streamed into a temporary file of
streamconv's own past 1 MiB (released with the output, like a spilled InlineBinary), the
limits checked while the bytes arrive.  Pixel Data may arrive as fragments (PS3.18 8.7.3.5).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ContentError
from . import bulkdata, httpfetch, httpprefetch
from .pixels import PIXEL_DATA, encapsulated_value
from .vr import WORD_SIZE, Element

__all__ = ["drop", "http_element", "prefetch"]


def http_element(
    tag: int,
    vr: str,
    uri: str,
    ctx: Any,
    path: Any,
    count: Callable[[Any, int, Any], None],
    *,
    text: bool,
) -> Element | None:
    """Fetch ``uri`` for element ``tag``; ``count`` books the bytes against the dataset's
    limits (build._count), ``text``: a DS/IS/LT/ST/UT/UC value (trailing padding stripped)."""
    opts = ctx.options
    limits = opts.limits
    uri = httpfetch.resolve(uri, opts.http, ctx.base_url)
    left = limits.max_dataset_bytes - ctx.decoded_bytes if limits.max_dataset_bytes else -1
    budget = httpfetch.Budget(limits.max_value_bytes, left, limits.max_dataset_bytes)
    if not ctx.first_http_uri:
        ctx.first_http_uri = uri
    pixels = tag == PIXEL_DATA and vr in ("OB", "OW")
    body = httpfetch.fetch(
        uri, opts.http, budget, max_parts=1 << 20 if pixels else 1, cache_key=ctx.run_key
    )
    if body.path:
        ctx.temporaries.append(body.path)  # removed if the dataset fails (build_one)
    if pixels:
        try:
            encapsulated = encapsulated_value(body, frames=False)
        except BaseException:
            body.discard()
            raise
        if encapsulated is not None:
            count(ctx, body.length, path)
            return Element(tag, "OB", encapsulated)  # PS3.5 A.4: encapsulated is OB
    part = body.parts[0]
    w = WORD_SIZE.get(vr, 1)
    if part.length % w:
        ctx.problems.error(
            ContentError(
                f"{vr} bulk data of {part.length} bytes is not a multiple of {w}", path=path
            )
        )
        part = part._replace(length=part.length - part.length % w)
    count(ctx, part.length, path)
    value = body.value(part)
    if isinstance(value, bytes):
        body.discard()
        if text:
            return Element(tag, vr, value.rstrip(b" \x00") or None)
        return Element(tag, vr, value or None)
    if text:  # text values are small; one larger than 1 MiB is read here
        raw = bulkdata.read_all(value, opts.bulkdata_dirs).rstrip(b" \x00")
        body.discard()
        return Element(tag, vr, raw or None)
    return Element(tag, vr, value)  # the temporary file goes with the output (release)


def prefetch(values: list[tuple[int, str, str]], ctx: Any) -> list[Any]:
    """Start fetching a dataset's http values side by side ((tag, vr, rewritten URI) in
    element order); the keys of those started, for :func:`drop`."""
    opts = ctx.options
    limits = opts.limits
    budget = httpfetch.Budget(
        limits.max_value_bytes,
        limits.max_dataset_bytes or -1,
        limits.max_dataset_bytes,
    )
    keys = []
    for tag, vr, uri in values:
        pixels = tag == PIXEL_DATA and vr in ("OB", "OW")
        try:
            resolved = httpfetch.resolve(uri, opts.http, ctx.base_url)
        except ValueError:
            continue  # the element's own fetch reports it
        key = httpprefetch.prefetch(
            resolved,
            opts.http,
            budget,
            max_parts=1 << 20 if pixels else 1,
            cache_key=ctx.run_key,
        )
        if key is not None:
            keys.append(key)
    return keys


def drop(keys: list[Any]) -> None:
    httpprefetch.drop(keys)
