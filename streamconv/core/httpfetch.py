"""Fetch http(s) values under the ``+Bh`` prefixes (CONTRACT §5; PS3.18 8.7, 10.4).

Imported only when an http(s) URI is met: urllib3 and ``multipart`` load with this module,
never on json2dcm's start-up path.  Everything here is synchronous: it runs inside the
converting thread or worker process, one connection pool per process.

A response is streamed into a :class:`Body` (memory up to 1 MiB, then a temporary file of
streamconv's own) while the limits are checked, so a 1 GB value is never in memory.
Requests follow what real servers answer (issue 12): ``multipart/related`` first, then
``application/octet-stream``; ``Accept-Encoding: identity`` (gzip decoded anyway);
``?offset=&length=`` sent as a Range and trimmed here when the server ignores it; redirects
followed only while every hop stays under a prefix.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol
from urllib.parse import urljoin

import urllib3
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from ..errors import (
    BulkDataFetchError,
    ContentError,
    LimitError,
    OutputError,
    UnsupportedURIError,
)
from ..options import HttpSettings
from .bulkdata import BulkRef
from .lazylog import lazy_logger
from .urlperm import URL, Prefix, URLRefused, match, parse_prefix, rewrite

__all__ = ["Body", "Budget", "Part", "Sink", "fetch", "fetch_into", "resolve", "split_range"]

log = lazy_logger(__name__)

ACCEPT_MULTIPART = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
ACCEPT_SINGLE = "application/octet-stream"
CHUNK = 1 << 20
MEMORY_LIMIT = 1 << 20  # a value kept in memory up to this size, in a temporary file above
MAX_REDIRECTS = 5
BACKOFF_BASE = 0.5  # seconds; doubled per attempt, with jitter
BACKOFF_CAP = 30.0  # the longest wait between two attempts (Retry-After included)
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
# a server that cannot produce multipart/related may say so with any of these (Orthanc: 400
# for application/octet-stream first; others 406 or 415 the other way round)
_NOT_ACCEPTABLE = frozenset({400, 406, 415})
_CACHE_ENTRIES = 256
_CACHE_BYTES = 1 << 30


class Budget(NamedTuple):
    """How many bytes the value may have: the --max-value-bytes and --max-dataset-bytes left."""

    max_value: int  # 0 = unlimited
    dataset_left: int  # -1 = unlimited
    max_dataset: int = 0  # for the message


class Part(NamedTuple):
    """One part of a response inside its :class:`Body`."""

    content_type: str  # the part's Content-Type header as sent ("" when absent)
    offset: int
    length: int

    @property
    def transfer_syntax(self) -> str:
        """The ``transfer-syntax`` parameter (PS3.18 8.7.3.5.2), "" when absent."""
        _, params = parse_options_header(self.content_type)
        return str(params.get("transfer-syntax", ""))


class Cancelled(Exception):
    """A prefetched value nobody will take (its dataset failed): stop reading it."""


def cache_key_of(
    url: URL, offset: int, length: int | None, max_parts: int, cache_key: object
) -> tuple[Any, ...]:
    return (cache_key, url.geturl(), offset, length, max_parts)


class Sink(Protocol):
    """Where a response's bytes go: a :class:`Body`, or the JSON parser of an http input."""

    def write(self, chunk: bytes | bytearray | memoryview) -> None: ...

    def end_part(self, content_type: str) -> None: ...

    def reset(self) -> None:
        """A new attempt starts from the first byte (raise when that is impossible)."""


class Body:
    """The bytes of one response, part after part; memory first, then a temporary file."""

    __slots__ = ("_fd", "budget", "cancelled", "data", "length", "part_start", "parts", "path")

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.cancelled = False  # a prefetch nobody waits for any more: stop at the next chunk
        self.data: bytearray | None = bytearray()
        self.path = ""
        self._fd = -1
        self.length = 0
        self.part_start = 0
        self.parts: list[Part] = []

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if self.cancelled:
            raise Cancelled
        n = len(chunk)
        self._check(self.length - self.part_start + n, self.length + n)
        self.length += n
        try:
            if self.data is not None:
                self.data += chunk
                if len(self.data) > MEMORY_LIMIT:
                    self._fd, self.path = tempfile.mkstemp(prefix="streamconv-http-")
                    self._write_fd(self.data)
                    self.data = None
            else:
                self._write_fd(chunk)
        except OSError as exc:
            # not the server's fault: no retry (disk full, quota); an output problem (40)
            raise OutputError(
                f"cannot keep fetched bulk data in a temporary file: {exc.strerror}"
            ) from None

    def _write_fd(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def _check(self, value: int, total: int) -> None:
        b = self.budget
        if b.max_value and value > b.max_value:
            raise LimitError(
                f"value of more than {b.max_value} bytes exceeds the limit (--max-value-bytes)"
            )
        if b.dataset_left >= 0 and total > b.dataset_left:
            raise LimitError(
                f"dataset exceeds the limit of {b.max_dataset} decoded bytes (--max-dataset-bytes)"
            )

    def end_part(self, content_type: str) -> None:
        self.parts.append(Part(content_type, self.part_start, self.length - self.part_start))
        self.part_start = self.length

    def reset(self) -> None:
        """Forget what arrived (a new attempt starts from the first byte)."""
        if self.cancelled:
            raise Cancelled
        self.discard()
        self.data = bytearray()
        self.length = self.part_start = 0
        self.parts = []

    def finish(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        self.finish()
        if self.path:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self.path = ""
        self.data = None

    def value(self, part: Part) -> bytes | BulkRef:
        """One part as bytes (small) or a temporary :class:`BulkRef` (released with the output)."""
        if self.data is not None:
            return bytes(self.data[part.offset : part.offset + part.length])
        st = os.stat(self.path)
        return BulkRef(self.path, part.offset, part.length, st.st_dev, st.st_ino, temporary=True)


# -- one pool per process -----------------------------------------------------------------

_pool: urllib3.PoolManager | None = None
_pool_key: tuple[Any, ...] = ()


def _get_pool(http: HttpSettings) -> urllib3.PoolManager:
    global _pool, _pool_key
    key = (os.getpid(), http.ca_bundle, http.timeout)
    if _pool is None or key != _pool_key:
        if _pool is not None and _pool_key[0] == key[0]:
            _pool.clear()
        _pool = urllib3.PoolManager(
            num_pools=16,
            maxsize=4,
            retries=False,  # retries are decided here, with the daemon's rules
            cert_reqs="CERT_REQUIRED",  # TLS verification is never off
            ca_certs=http.ca_bundle or None,
            timeout=urllib3.Timeout(connect=http.timeout, read=http.timeout),
        )
        _pool_key = key
    return _pool


# -- credentials ----------------------------------------------------------------------------


def _credentials(url: URL, http: HttpSettings) -> dict[str, str]:
    """The header of the longest auth prefix covering ``url``, else .netrc; never global."""
    best: tuple[int, str, str] | None = None
    for auth in http.auth:
        prefix = _prefix(auth.prefix)
        if prefix.covers(url) and (best is None or len(prefix.url.path) > best[0]):
            best = (len(prefix.url.path), auth.header, auth.value)
    if best is not None:
        return {best[1]: best[2]}
    if http.netrc:
        import base64
        import netrc

        try:
            entry = netrc.netrc(http.netrc).authenticators(url.host.strip("[]"))
        except (OSError, netrc.NetrcParseError) as exc:
            log.warning("cannot read %s: %s", http.netrc, exc)
            entry = None
        if entry is not None and entry[0]:
            token = base64.b64encode(f"{entry[0]}:{entry[2] or ''}".encode()).decode("ascii")
            return {"Authorization": f"Basic {token}"}
    return {}


_prefix_cache: dict[str, Prefix] = {}


def _prefix(text: str) -> Prefix:
    p = _prefix_cache.get(text)
    if p is None:
        p = _prefix_cache[text] = parse_prefix(text)
    return p


def permitted(text: str, http: HttpSettings) -> URL:
    """The URL if a ``+Bh`` prefix covers it; otherwise UnsupportedURIError (66)."""
    try:
        url, _ = match(text, tuple(_prefix(p) for p in http.prefixes))
    except URLRefused as exc:
        raise UnsupportedURIError(f"BulkDataURI refused: {exc.reason}: '{text}'") from None
    return url


def split_range(text: str) -> tuple[str, int, int | None]:
    """Take ``offset``/``length`` out of a URI's query (DCMTK's file-URI convention, which
    issue 12 carries over to http as a Range); other parameters stay."""
    base, q, query = text.partition("?")
    if not q:
        return text, 0, None
    keep: list[str] = []
    offset, length = 0, None
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        if name in ("offset", "length") and eq:
            if not value.isascii() or not value.isdigit() or len(value) > 19:
                raise ContentError(f"invalid value for URI parameter '{name}': '{value}'")
            if name == "offset":
                offset = int(value)
            else:
                length = int(value)
        elif item:
            keep.append(item)
    return (base + "?" + "&".join(keep)) if keep else base, offset, length


# -- the cache: a value referenced by many datasets is fetched once --------------------------


class _Cached(NamedTuple):
    data: bytes | None  # small values
    fd: int  # else an open descriptor of the temporary file (survives its unlink)
    parts: tuple[Part, ...]
    size: int


_cache: OrderedDict[tuple[Any, ...], _Cached] = OrderedDict()
_cache_bytes = 0


def _cache_put(key: tuple[Any, ...], body: Body) -> None:
    global _cache_bytes
    if body.data is not None:
        entry = _Cached(bytes(body.data), -1, tuple(body.parts), 0)
    else:
        try:
            fd = os.open(body.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return
        entry = _Cached(None, fd, tuple(body.parts), body.length)
    _cache[key] = entry
    _cache_bytes += entry.size
    while len(_cache) > _CACHE_ENTRIES or _cache_bytes > _CACHE_BYTES:
        _, old = _cache.popitem(last=False)
        _cache_bytes -= old.size
        if old.fd >= 0:
            os.close(old.fd)


def _cache_get(key: tuple[Any, ...], budget: Budget) -> Body | None:
    entry = _cache.get(key)
    if entry is None:
        return None
    _cache.move_to_end(key)
    body = Body(budget)
    try:
        if entry.data is not None:
            body.write(entry.data)
        else:
            pos = 0
            while pos < entry.size:
                chunk = os.pread(entry.fd, min(CHUNK, entry.size - pos), pos)
                if not chunk:
                    break
                body.write(chunk)
                pos += len(chunk)
        body.finish()
    except BaseException:
        body.discard()
        raise
    body.parts = list(entry.parts)
    return body


def clear_cache() -> None:
    global _cache_bytes
    for entry in _cache.values():
        if entry.fd >= 0:
            os.close(entry.fd)
    _cache.clear()
    _cache_bytes = 0


# set by httpprefetch once it is loaded: hands over a body fetched ahead (or None)
take_prefetched: Callable[[tuple[Any, ...], Budget], Body | None] | None = None


# -- fetching -------------------------------------------------------------------------------


class _RelatedParser(PushMultipartParser):  # type: ignore[misc]
    """``multipart``'s push parser for multipart/related (RFC 2387): parts need no
    Content-Disposition (the hook its documentation names for other multipart types)."""

    def _create_segment(self, headerlist: list[tuple[str, str]]) -> MultipartSegment:
        return MultipartSegment(headerlist)


class _Shape(Exception):
    """The response does not fit the element (65), raised inside an attempt."""


class _Transient(Exception):
    """An attempt failed in a way another attempt may cure."""

    def __init__(self, reason: str, status: int = 0, wait: float | None = None) -> None:
        self.reason = reason
        self.status = status
        self.wait = wait
        super().__init__(reason)


def resolve(uri: str, http: HttpSettings, base_url: str | None = None) -> str:
    """Apply --bulkdata-rewrite and resolve a relative reference against the input URL."""
    if base_url is not None and "://" not in uri.partition("?")[0]:
        uri = urljoin(base_url, uri)  # RFC 3986 §5.2
    return rewrite(uri, http.rewrites)


def fetch(
    uri: str,
    http: HttpSettings,
    budget: Budget,
    *,
    max_parts: int = 1,
    cache_key: object = None,
    accept: tuple[str, ...] = (ACCEPT_MULTIPART, ACCEPT_SINGLE),
) -> Body:
    """Fetch a permitted URI (already rewritten/resolved) into a :class:`Body`.

    ``max_parts``: how many parts may arrive (1 for an ordinary value; Pixel Data may come
    as fragments).  The caller owns the body (``discard`` it, or hand its file to an output).
    """
    target, offset, length = split_range(uri)
    url = permitted(target, http)
    key = cache_key_of(url, offset, length, max_parts, cache_key)
    if take_prefetched is not None and accept == (ACCEPT_MULTIPART, ACCEPT_SINGLE):
        taken = take_prefetched(key, budget)
        if taken is not None:
            if cache_key is not None:
                _cache_put(key, taken)
            return taken
    if cache_key is not None:
        cached = _cache_get(key, budget)
        if cached is not None:
            log.debug("bulk data from this run's cache: %s", url.geturl())
            return cached
    body = Body(budget)
    try:
        _fetch_into(body, url, http, offset, length, max_parts, accept)
        body.finish()
    except BaseException:
        body.discard()
        raise
    if cache_key is not None:
        _cache_put(key, body)
    return body


def fetch_into(
    sink: Sink, uri: str, http: HttpSettings, accept: tuple[str, ...], max_parts: int = 1
) -> None:
    """Stream a permitted URI into ``sink`` (the http input: no cache, no Body)."""
    target, offset, length = split_range(uri)
    _fetch_into(sink, permitted(target, http), http, offset, length, max_parts, accept, True)


def _fetch_into(
    body: Sink,
    url: URL,
    http: HttpSettings,
    offset: int,
    length: int | None,
    max_parts: int,
    accept: tuple[str, ...],
    document: bool = False,
) -> None:
    pool = _get_pool(http)
    attempt = 0
    accept_index = 0
    hops = 0
    origin = url.geturl()
    while True:
        headers = {
            "Accept": accept[accept_index],
            "Accept-Encoding": "identity",
            "User-Agent": "streamconv",
            **_credentials(url, http),
        }
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        log.debug("GET %s (Accept: %s)", url.geturl(), headers["Accept"])
        failure: _Transient | None
        try:
            resp = pool.urlopen(
                "GET",
                url.geturl(),
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                assert_same_host=False,
            )
        except urllib3.exceptions.SSLError as exc:
            raise BulkDataFetchError(
                f"cannot fetch '{origin}': TLS verification failed: {exc}",
                url=origin,
                transient=False,
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            failure = _Transient(f"connection failed: {_reason(exc)}")
        else:
            complete = False
            try:
                failure = _handle(resp, body, url, offset, length, max_parts, document)
                complete = failure is None
            except _Redirect as redirect:
                hops += 1
                if hops > MAX_REDIRECTS:
                    raise BulkDataFetchError(
                        f"cannot fetch '{origin}': more than {MAX_REDIRECTS} redirects",
                        url=origin,
                        status=redirect.status,
                        transient=False,
                    ) from None
                target = urljoin(url.geturl(), redirect.location)
                try:
                    url, _ = match(target, tuple(_prefix(p) for p in http.prefixes))
                except URLRefused as exc:
                    # every hop is checked: no redirect leaves the +Bh list (SSRF)
                    raise UnsupportedURIError(
                        f"'{origin}' redirects to a URL that is not permitted: {exc.reason}: "
                        f"'{target}'"
                    ) from None
                continue
            except _Shape as exc:
                raise ContentError(f"bulk data from '{origin}' does not fit: {exc}") from None
            finally:
                if not complete:
                    resp.close()  # never reuse a connection with a body half read
                resp.release_conn()
        if failure is None:
            return
        if failure.status in _NOT_ACCEPTABLE and accept_index + 1 < len(accept):
            accept_index += 1  # the server does not speak this media type: the next one
            continue
        if failure.status and failure.status not in _RETRY_STATUS:
            # 4xx other than 408/429 (and other final answers): trying again will not help
            raise BulkDataFetchError(
                f"cannot fetch '{origin}': {failure.reason}",
                url=origin,
                status=failure.status,
                transient=False,
            )
        body.reset()
        if attempt >= http.retries:
            raise BulkDataFetchError(
                f"cannot fetch '{origin}' after {attempt + 1} attempts: {failure.reason}",
                url=origin,
                status=failure.status,
                transient=True,
            )
        wait = failure.wait
        if wait is None:
            wait = BACKOFF_BASE * (2**attempt) * (0.5 + random.random())
        wait = min(max(wait, 0.0), BACKOFF_CAP)
        log.info("%s: %s; trying again in %.1f s", origin, failure.reason, wait)
        time.sleep(wait)
        attempt += 1


class _Redirect(Exception):
    def __init__(self, status: int, location: str) -> None:
        self.status = status
        self.location = location
        super().__init__(location)


def _reason(exc: BaseException) -> str:
    """A short reason for the message, without urllib3's pool and object reprs."""
    inner = getattr(exc, "reason", None)
    if isinstance(inner, BaseException):
        return _reason(inner)
    if len(exc.args) > 1 and isinstance(exc.args[-1], BaseException):
        return _reason(exc.args[-1])  # ProtocolError("Connection broken: ...", OSError)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    if text.startswith(("HTTPConnectionPool", "HTTPSConnectionPool", "<")):
        text = text.split(": ", 1)[-1]
    return text


def _retry_after(value: str | None) -> float | None:
    """RFC 9110 §10.2.3: seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _handle(
    resp: Any,
    body: Sink,
    url: URL,
    offset: int,
    length: int | None,
    max_parts: int,
    document: bool = False,
) -> _Transient | None:
    """One response: None when the body is complete, else a failure; raises _Shape/_Redirect."""
    status: int = resp.status
    if status in _REDIRECT_STATUS:
        location = resp.headers.get("Location")
        if not location:
            raise _Shape(f"HTTP {status} without a Location")
        raise _Redirect(status, location)
    if status not in (200, 206):
        reason = f"HTTP {status} {resp.reason or ''}".rstrip()
        return _Transient(reason, status, _retry_after(resp.headers.get("Retry-After")))
    skip, take = offset, length
    if status == 206:
        # PS3.18 doesn't define ranges; RFC 9110 §14.4: the server sent what was asked
        content_range = resp.headers.get("Content-Range", "")
        if not content_range.startswith(f"bytes {offset}-"):
            raise _Shape(f"Content-Range '{content_range}' does not start at byte {offset}")
        skip = 0
    ctype = resp.headers.get("Content-Type", "")
    media, params = parse_options_header(ctype)
    try:
        declared = int(resp.headers["Content-Length"]) if "Content-Length" in resp.headers else -1
    except ValueError:
        raise _Shape("invalid Content-Length") from None
    try:
        stream = _decoded(resp, declared)
        if document:  # the JSON input itself (httpinput): the body as it is
            if media not in ("application/dicom+json", "application/json", ""):
                raise _Shape(f"the server answered with {media}, not DICOM JSON")
            _single(stream, body, ctype, skip, take)
        elif media == "multipart/related":
            boundary = params.get("boundary", "")
            if not boundary:
                raise _Shape("multipart/related without a boundary")
            _parts(stream, str(boundary), body, max_parts, skip, take)
        elif media.startswith("text/") or media in ("application/json", "application/dicom+json"):
            raise _Shape(f"the server answered with {media}, not bulk data")
        else:
            _single(stream, body, ctype, skip, take)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return _Transient(f"connection failed while reading the body: {_reason(exc)}")
    return None


def _decoded(resp: Any, declared: int) -> Iterator[bytes]:
    """The body, Content-Length checked, gzip/deflate decoded in bounded steps."""
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        # we asked for identity; RFC 9110 §12.5.3 lets a server send gzip anyway
        dec: Any = zlib.decompressobj(zlib.MAX_WBITS | 32)
    elif encoding in ("identity", ""):
        dec = None
    else:
        raise _Shape(f"unsupported Content-Encoding '{encoding}'")
    received = 0
    for raw in resp.stream(CHUNK, decode_content=False):
        received += len(raw)
        if dec is None:
            yield raw
            continue
        data = raw
        while data:
            try:
                out = dec.decompress(data, CHUNK)
            except zlib.error as exc:
                raise _Shape(f"invalid {encoding} data: {exc}") from None
            if out:
                yield out
            data = dec.unconsumed_tail
    if declared >= 0 and received < declared:
        raise urllib3.exceptions.ProtocolError(
            f"connection closed after {received} of {declared} bytes"
        )
    if dec is not None:
        tail = dec.flush()
        if tail:
            yield tail
        if not dec.eof:
            raise _Shape(f"truncated {encoding} data")


def _trim(chunk: bytes, pos: int, skip: int, take: int | None) -> bytes:
    """The part of ``chunk`` (starting at value byte ``pos``) inside [skip, skip + take)."""
    lo = max(0, skip - pos)
    hi = len(chunk) if take is None else max(0, min(len(chunk), skip + take - pos))
    return chunk[lo:hi] if lo < hi else b""


def _single(stream: Iterator[bytes], body: Sink, ctype: str, skip: int, take: int | None) -> None:
    pos = 0
    for chunk in stream:
        kept = _trim(chunk, pos, skip, take) if skip or take is not None else chunk
        pos += len(chunk)
        if kept:
            body.write(kept)
    _check_range(pos, skip, take)
    body.end_part(ctype)


def _check_range(received: int, skip: int, take: int | None) -> None:
    need = skip + take if take is not None else skip
    if received < need:
        raise _Shape(f"{received} bytes received, the URI asks for bytes {skip} to {need}")


def _parts(
    stream: Iterator[bytes],
    boundary: str,
    body: Sink,
    max_parts: int,
    skip: int,
    take: int | None,
) -> None:
    try:
        parser = _RelatedParser(boundary, max_header_count=32)
    except MultipartError as exc:
        raise _Shape(f"invalid multipart boundary: {exc}") from None
    ctype = ""
    pos = 0
    count = 0
    try:
        for chunk in stream:
            for event in parser.parse(chunk):
                if isinstance(event, MultipartSegment):
                    count += 1
                    if count > max_parts:
                        what = "one part" if max_parts == 1 else f"at most {max_parts} parts"
                        raise _Shape(f"the server sent more than {what}")
                    ctype = event.header("Content-Type", "") or ""
                    pos = 0
                elif event is None:
                    if skip or take is not None:
                        _check_range(pos, skip, take)
                    body.end_part(ctype)
                else:
                    data = event  # a fresh slice of the parser: written at once, not kept
                    kept = _trim(data, pos, skip, take) if skip or take is not None else data
                    pos += len(data)
                    if kept:
                        body.write(kept)
        parser.close(check_complete=True)
    except MultipartError as exc:
        # a truncated multipart (no closing delimiter), a part longer or shorter than its
        # Content-Length: the body arrived whole, so the answer itself is wrong (65)
        raise _Shape(f"invalid multipart/related body: {exc}") from None
    if count == 0:
        raise _Shape("multipart/related body without any part")
