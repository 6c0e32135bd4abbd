"""An http(s) URL as the JSON input (``json2dcm URL out.dcm``; CONTRACT §5).

The URL must lie under a ``+Bh`` prefix; it is fetched with the same client, credentials
and retry rules as bulk data, and streamed through a pipe into the reading loop that a
file would feed, so the parser never holds the whole document.  A retry is possible only
before the first byte went to the parser.
"""

from __future__ import annotations

import os
import threading

from .core.httpfetch import fetch_into, permitted
from .errors import BulkDataFetchError, StreamconvError
from .options import HttpSettings

__all__ = ["ACCEPT_JSON", "UrlInput", "is_url"]

ACCEPT_JSON = ("application/dicom+json, application/json",)


def is_url(path: str) -> bool:
    return path[:8].lower().startswith(("http://", "https://"))


class _ReaderGone(Exception):
    """The reading loop closed its end (it stopped with an error of its own): not a
    failure of the fetch, and never a reason to fetch again."""


class _PipeSink:
    def __init__(self, fd: int, url: str) -> None:
        self.fd = fd
        self.url = url
        self.sent = 0

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        view = memoryview(chunk)
        try:
            while view:
                n = os.write(self.fd, view)
                self.sent += n
                view = view[n:]
        except OSError:
            raise _ReaderGone from None

    def end_part(self, content_type: str) -> None:
        pass

    def reset(self) -> None:
        if self.sent:
            raise BulkDataFetchError(
                f"the input '{self.url}' broke off after {self.sent} bytes (it cannot be resumed)",
                url=self.url,
                transient=True,
            )


class UrlInput:
    """The read end of a pipe that a thread fills with the response body."""

    def __init__(self, url: str, http: HttpSettings) -> None:
        self.url = url
        self.error: StreamconvError | None = None
        try:
            permitted(url.partition("?")[0], http)  # 66 before anything starts
        except StreamconvError as exc:
            raise exc.with_source(url) from None
        read_fd, self._write_fd = os.pipe()
        self.fd = read_fd
        self._thread = threading.Thread(target=self._run, args=(http,), daemon=True)
        self._thread.start()

    def _run(self, http: HttpSettings) -> None:
        try:
            fetch_into(_PipeSink(self._write_fd, self.url), self.url, http, ACCEPT_JSON)
        except StreamconvError as exc:
            self.error = exc
        except _ReaderGone:
            pass  # the reader stopped early, with its own error
        finally:
            os.close(self._write_fd)

    def close(self) -> StreamconvError | None:
        """Close the read end, wait for the thread; the fetch error, if there was one."""
        os.close(self.fd)
        self._thread.join()
        return self.error
