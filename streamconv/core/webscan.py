"""A dataset's http BulkDataURIs, found before it is built, so that their values are fetched
side by side (issue 12: a server slow before each value's first byte is paid once).

No HTTP import here: webbulk (urllib3) is loaded only when two or more http values exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import bulkdata
from .documents import Pairs

__all__ = ["prefetching"]


def tag_of(key: str) -> int | None:
    if len(key) != 8:
        return None
    try:
        return int(key, 16)
    except ValueError:
        return None


@contextmanager
def prefetching(value: Any, ctx: Any) -> Iterator[None]:
    """While the dataset is built: its http values fetched ahead; those never taken (the
    build failed first) are stopped and their files removed at the end."""
    started = _prefetch_values(value, ctx) if isinstance(value, Pairs) else []
    try:
        yield
    finally:
        if started:
            from .webbulk import drop

            drop(started)


def _prefetch_values(value: Pairs, ctx: Any) -> list[Any]:
    """A dataset with two or more http bulk values: fetch them side by side (webbulk)."""
    found: list[tuple[int, str, str]] = []
    _http_values(value, ctx, found, 0)
    if len(found) < 2:
        return []  # one value: nothing to overlap
    from .webbulk import prefetch  # urllib3: only once an http(s) URI is met

    return prefetch(found, ctx)


def _http_values(obj: Pairs, ctx: Any, out: list[tuple[int, str, str]], depth: int) -> None:
    """Every (tag, vr, URI) of an http BulkDataURI, items included, in element order."""
    http = ctx.options.http
    for key, content in obj.pairs:
        if not isinstance(content, Pairs):
            continue
        vr: Any = None
        uri: Any = None
        for name, val in content.pairs:
            lname = name.lower()
            if lname == "vr":
                vr = val
            elif lname == "bulkdatauri":
                uri = val
            elif lname == "value" and type(val) is list and depth < 8:  # PairList: a list subclass
                for item in val:
                    if isinstance(item, Pairs):
                        _http_values(item, ctx, out, depth + 1)
        if isinstance(uri, str) and isinstance(vr, str):
            tag = tag_of(key)
            if http.rewrites:
                from .urlperm import rewrite

                uri = rewrite(uri, http.rewrites)
            if tag is not None and bulkdata.is_http(uri, ctx.base_url is not None):
                out.append((tag, vr, uri))
