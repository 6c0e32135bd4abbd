"""A real HTTP server on 127.0.0.1 (stdlib http.server in a thread) that misbehaves on purpose.

Each path names one behaviour; ``/<behaviour>/<n>`` serves ``pattern(n)`` (n bytes) the way
the behaviour says.  Every request is recorded (path and headers) for the assertions.
"""

from __future__ import annotations

import gzip
import socket
import ssl
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["BOUNDARY", "FaultServer", "pattern"]

BOUNDARY = "streamconv-test-boundary-7d1c"
BLOCK = bytes(range(256)) * 4096  # 1 MiB


def pattern(n: int, start: int = 0) -> bytes:
    """n bytes of the repeating 0..255 pattern, starting at pattern byte ``start``."""
    out = bytearray()
    pos = start % 256
    while len(out) < n:
        out += BLOCK[pos : pos + n - len(out)]
        pos = 0
    return bytes(out)


def _part(data: bytes, ctype: str = "application/octet-stream", length: int | None = None) -> bytes:
    n = len(data) if length is None else length
    head = f"--{BOUNDARY}\r\nContent-Type: {ctype}\r\nContent-Length: {n}\r\n\r\n".encode()
    return head + data + b"\r\n"


_END = f"--{BOUNDARY}--\r\n".encode()
_MULTI = f'multipart/related; type="application/octet-stream"; boundary={BOUNDARY}'


class _Handler(BaseHTTPRequestHandler):
    server: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(
        self, status: int, body: bytes, ctype: str = "application/octet-stream", **headers: str
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k.replace("_", "-"), v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        srv = self.server
        with srv.lock:
            srv.requests.append((self.path, dict(self.headers.items())))
            srv.counts[self.path] = srv.counts.get(self.path, 0) + 1
            count = srv.counts[self.path]
        parts = self.path.lstrip("/").split("?")[0].split("/")
        kind = parts[0]
        n = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 16
        data = pattern(n)
        if kind == "single":
            self._send(200, data)
        elif kind == "multi":
            self._send(200, _part(data) + _END, _MULTI)
        elif kind == "auth":
            if self.headers.get("Authorization") != srv.expected_auth:
                self._send(401, b"no", "text/plain", WWW_Authenticate='Basic realm="x"')
            else:
                self._send(200, _part(data) + _END, _MULTI)
        elif kind == "octet-only":  # as some servers: multipart refused, octet-stream served
            if self.headers.get("Accept", "").startswith("multipart/"):
                self._send(406, b"not acceptable", "text/plain")
            else:
                self._send(200, data)
        elif kind == "busy-then-ok":  # 503 + Retry-After, then the value
            if count == 1:
                self._send(503, b"busy", "text/plain", Retry_After="1")
            else:
                self._send(200, _part(data) + _END, _MULTI)
        elif kind == "throttle-then-ok":  # 429, then the value
            if count == 1:
                self._send(429, b"slow down", "text/plain", Retry_After="0")
            else:
                self._send(200, _part(data) + _END, _MULTI)
        elif kind == "always-503":
            self._send(503, b"down", "text/plain", Retry_After="0")
        elif kind == "status":  # /status/404
            self._send(n, b"status", "text/plain")
        elif kind == "reset":  # headers promise n bytes, half arrive, then a TCP reset
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.write(data[: n // 2])
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        elif kind == "truncated-multipart":  # whole by Content-Length, no closing delimiter
            self._send(200, _part(data)[:-2], _MULTI)
        elif kind == "two-parts":
            self._send(200, _part(data) + _part(data) + _END, _MULTI)
        elif kind == "wrong-part-length":
            self._send(200, _part(data, length=n + 10) + _END, _MULTI)
        elif kind == "redirect-out":
            target = f"http://127.0.0.1:{srv.other_port}/single/{n}"
            self._send(302, b"", "text/plain", Location=target)
        elif kind == "redirect-in":
            self._send(302, b"", "text/plain", Location=f"/multi/{n}")
        elif kind == "gzip":  # sent although the client asked for identity
            self._send(200, gzip.compress(_part(data) + _END), _MULTI, Content_Encoding="gzip")
        elif kind == "ignore-range":
            self._send(200, _part(data) + _END, _MULTI)
        elif kind == "range":  # honours "bytes=a-b"
            spec = self.headers.get("Range", "")
            lo, _, hi = spec.removeprefix("bytes=").partition("-")
            a, b = int(lo), int(hi) if hi else n - 1
            self._send(206, data[a : b + 1], Content_Range=f"bytes {a}-{b}/{n}")
        elif kind == "fragments":  # offset table (empty) + two fragments, JPEG baseline
            ctype = "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.50"
            body = _part(b"", ctype) + _part(data, ctype) + _part(data[::-1], ctype) + _END
            self._send(200, body, _MULTI)
        elif kind == "doc":  # a DICOM JSON document whose BulkDataURI is relative
            doc = b'{"00420011": {"vr": "OB", "BulkDataURI": "../multi/%d"}}' % n
            self._send(200, doc, "application/dicom+json")
        elif kind == "doc-stall":  # half of a document, then silence past the timeout
            doc = b'{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "%s"}]}}' % (b"x" * n)
            self.send_response(200)
            self.send_header("Content-Type", "application/dicom+json")
            self.send_header("Content-Length", str(len(doc)))
            self.end_headers()
            self.wfile.write(doc[: len(doc) // 2])
            self.wfile.flush()
            srv.stop_event.wait(srv.slow_seconds)
            self.close_connection = True
        elif kind == "slow":  # a few bytes, then silence longer than the client's timeout
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            self.wfile.write(data[:4])
            self.wfile.flush()
            srv.stop_event.wait(srv.slow_seconds)
            self.close_connection = True
        elif kind == "together":  # answered only once two such requests are in flight at once
            try:
                srv.together.wait()
            except threading.BrokenBarrierError:
                self._send(400, b"requests came one after the other", "text/plain")
            else:
                self._send(200, _part(data) + _END, _MULTI)
        elif kind == "big":  # n bytes, one part, generated while sent
            head = f"--{BOUNDARY}\r\nContent-Type: application/octet-stream\r\n"
            head += f"Content-Length: {n}\r\n\r\n"
            tail = b"\r\n" + _END
            self.send_response(200)
            self.send_header("Content-Type", _MULTI)
            self.send_header("Content-Length", str(len(head) + n + len(tail)))
            self.end_headers()
            self.wfile.write(head.encode())
            left = n
            while left:
                step = min(left, len(BLOCK))
                self.wfile.write(BLOCK[:step])
                left -= step
            self.wfile.write(tail)
        else:
            self._send(404, b"unknown", "text/plain")


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.port: int = self.server_address[1]
        scheme = "http"
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.port}/"
        self.lock = threading.Lock()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.counts: dict[str, int] = {}
        self.expected_auth = ""
        self.other_port = 9  # the redirect target: a port nothing listens on
        self.slow_seconds = 5.0
        self.stop_event = threading.Event()
        # the "together" behaviour: proves two requests overlap (no timing involved; the
        # timeout only bounds a failing run)
        self.together = threading.Barrier(2, timeout=10)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that gives up (a timeout, a refused redirect) resets its connection:
        expected in these tests, so not printed over pytest's output; anything else is."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.stop_event.set()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)

    def reset(self) -> None:
        self.together.reset()
        with self.lock:
            self.requests.clear()
            self.counts.clear()
