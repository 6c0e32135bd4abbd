"""A dataset's http bulk values fetched side by side (issue 12).

A server may take long before the first byte of each value (Orthanc reads and parses the
whole instance for every bulk request: 0.25-0.65 s for a 100 MB instance); one after the
other, a dataset with Pixel Data and (FFFC,FFFC) padding pays that twice.  The builder
announces the dataset's http values before it starts (webscan -> :func:`prefetch`); a small
thread pool fetches each into its own :class:`~.httpfetch.Body` while the values before it
are built; :func:`.httpfetch.fetch` takes the finished body (:func:`take`), its error
re-raised there, in element order, as if it had been fetched then.  Nothing is requested for
a URI no ``+Bh`` prefix covers.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..errors import ContentError, UnsupportedURIError
from ..options import HttpSettings
from . import httpfetch
from .httpfetch import (
    ACCEPT_MULTIPART,
    ACCEPT_SINGLE,
    Body,
    Budget,
    _cache,
    _fetch_into,
    _get_pool,
    cache_key_of,
    permitted,
    split_range,
)

__all__ = ["drop", "prefetch", "take"]

_PREFETCH_THREADS = 4  # = the pool's connections per host (maxsize)
_pending: dict[tuple[Any, ...], tuple[Future[None], Body]] = {}
_pending_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_executor_pid = 0


def _forget_prefetches() -> None:
    # a forked child has none of the parent's threads: their futures would never complete
    global _executor, _pending_lock
    _pending.clear()
    _executor = None
    _pending_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_prefetches)


def prefetch(
    uri: str, http: HttpSettings, budget: Budget, *, max_parts: int, cache_key: object
) -> tuple[Any, ...] | None:
    """Start fetching a resolved URI in the background; the key to :func:`drop` it, or None
    when nothing was started (refused or malformed: :func:`fetch` says so in its turn)."""
    global _executor, _executor_pid
    try:
        target, offset, length = split_range(uri)
        url = permitted(target, http)
    except (ContentError, UnsupportedURIError):
        return None  # no request for a URI that is not permitted
    key = cache_key_of(url, offset, length, max_parts, cache_key)
    with _pending_lock:
        if key in _pending or (cache_key is not None and key in _cache):
            return None
        if _executor is None or _executor_pid != os.getpid():  # a forked worker makes its own
            _executor = ThreadPoolExecutor(_PREFETCH_THREADS, thread_name_prefix="prefetch")
            _executor_pid = os.getpid()
        _get_pool(http)  # created here, shared by the threads (urllib3's pool is thread-safe)
        body = Body(budget)
        accept = (ACCEPT_MULTIPART, ACCEPT_SINGLE)
        future = _executor.submit(_prefetch_job, body, url, http, offset, length, max_parts, accept)
        _pending[key] = (future, body)
    return key


def _prefetch_job(body: Body, *args: Any) -> None:
    try:
        _fetch_into(body, *args)
        body.finish()
    except BaseException:
        body.discard()
        raise


def take(key: tuple[Any, ...], budget: Budget) -> Body | None:
    with _pending_lock:
        entry = _pending.pop(key, None)
    if entry is None:
        return None
    future, body = entry
    future.result()  # the fetch's own error, raised here in the dataset's element order
    # the dataset's limit as it stands now (the prefetch knew only the value limit)
    body.budget = budget
    try:
        body._check(max((p.length for p in body.parts), default=0), body.length)
    except BaseException:
        body.discard()
        raise
    return body


def _discarder(body: Body) -> Any:
    def discard(_future: Future[None]) -> None:
        body.discard()

    return discard


def drop(keys: list[tuple[Any, ...]]) -> None:
    """Forget prefetches never taken (the dataset failed first): stop them, free their files."""
    for key in keys:
        with _pending_lock:
            entry = _pending.pop(key, None)
        if entry is not None:
            future, body = entry
            body.cancelled = True
            # never wait here (a retry may be sleeping): the body is freed when the job ends
            future.add_done_callback(_discarder(body))


httpfetch.take_prefetched = take
