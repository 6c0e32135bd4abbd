"""Which http(s) URLs may be fetched: the ``+Bh`` prefixes (CONTRACT §5), pure string work.

A BulkDataURI comes from the document being converted, so it is attacker-controlled: a
metadata document must not make a daemon fetch ``169.254.169.254`` or a loopback service.
The check is therefore strict and simple rather than clever:

* scheme, host and port are compared after normalisation (RFC 3986 §6.2.2: case, default
  port, IPv6 text form); the path must extend the prefix's path at a segment boundary;
* anything whose meaning differs between URL parsers is refused outright instead of being
  normalised: userinfo (``http://allowed@evil/``), percent-encoded or non-ASCII hosts,
  numeric IPv4 forms other than dotted decimal (``127.1``, ``0x7f.0.0.1``, ``2130706433``),
  IPv6 zone identifiers, backslashes, whitespace and control characters, dot segments and
  encoded slashes in the path;
* no name is resolved: ``localhost`` and ``127.0.0.1`` are different hosts here, and an
  address the list does not name is never contacted.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

__all__ = ["Prefix", "URLRefused", "match", "parse_prefix", "parse_url", "rewrite"]

_DEFAULT_PORT = {"http": 80, "https": 443}
_REG_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?)*")
_HEX_LABEL = re.compile(r"0x[0-9a-f]*")
_DOTTED_QUAD = re.compile(r"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}")
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
# RFC 3986 §2.3: percent-encoded unreserved characters are equivalent to the characters
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


class URLRefused(ValueError):
    """The text is not an http(s) URL this module can vouch for; ``reason`` says why."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{reason}: '{url}'")


class URL(NamedTuple):
    """A parsed, normalised http(s) URL (``path`` keeps its percent-encoding, normalised)."""

    scheme: str
    host: str  # lower case; IPv6 in brackets, compressed
    port: int
    path: str
    query: str  # without '?', "" when absent

    @property
    def origin(self) -> str:
        default = _DEFAULT_PORT[self.scheme]
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}"

    def geturl(self) -> str:
        return self.origin + self.path + (f"?{self.query}" if self.query else "")


class Prefix(NamedTuple):
    """One ``+Bh`` argument, normalised; ``text`` is what the user gave (for messages)."""

    url: URL
    text: str

    def covers(self, url: URL) -> bool:
        own = self.url
        if (own.scheme, own.host, own.port) != (url.scheme, url.host, url.port):
            return False
        base = own.path.rstrip("/")  # "/dw/" and "/dw" name the same segment boundary
        return url.path == base or url.path.startswith(base + "/")


def _normalise_pct(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        byte = int(m.group(1), 16)
        return chr(byte) if byte in _UNRESERVED else "%" + m.group(1).upper()

    return _PCT.sub(one, text)


def _host(raw: str, url: str) -> str:
    if raw.startswith("["):
        if not raw.endswith("]"):
            raise URLRefused(url, "malformed IPv6 host")
        inner = raw[1:-1]
        if "%" in inner:
            raise URLRefused(url, "IPv6 zone identifiers are not accepted")
        try:
            return f"[{ipaddress.IPv6Address(inner).compressed}]"
        except ValueError:
            raise URLRefused(url, "malformed IPv6 host") from None
    if "%" in raw:
        raise URLRefused(url, "percent-encoded host names are not accepted")
    if not raw.isascii():
        raise URLRefused(url, "non-ASCII host names are not accepted (give the IDNA form)")
    host = raw.lower()
    if host.endswith(".") and len(host) > 1:
        host = host[:-1]  # an absolute DNS name names the same host (RFC 1034 §3.1)
    last = host.rsplit(".", 1)[-1]
    if last.isdigit() or _HEX_LABEL.fullmatch(last):
        # a host "ending in a number" is an IPv4 address to WHATWG parsers, which read 127.1,
        # 0177.0.0.1, 0x7f.1 and 2130706433 as 127.0.0.1: refuse all but the one
        # dotted-decimal spelling, which every parser reads the same way
        if not _DOTTED_QUAD.fullmatch(host) or any(int(p) > 255 for p in host.split(".")):
            raise URLRefused(url, "IPv4 addresses only in dotted decimal form")
        return host
    if not _REG_NAME.fullmatch(host):
        raise URLRefused(url, "invalid host name")
    return host


def _path(raw: str, url: str) -> str:
    path = _normalise_pct(raw) or "/"
    lowered = path.lower()
    if "%2f" in lowered or "%5c" in lowered:
        raise URLRefused(url, "encoded slashes in the path are not accepted")
    if any(seg in (".", "..") for seg in path.split("/")):
        raise URLRefused(url, "dot segments in the path are not accepted")
    return path


def parse_url(text: str) -> URL:
    """Parse and normalise an absolute http(s) URL, or raise :class:`URLRefused`."""
    if _FORBIDDEN_CHARS.search(text):
        raise URLRefused(text, "whitespace, control characters and backslashes are not accepted")
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORT:
        raise URLRefused(text, "not an absolute http or https URL")
    rest, _, _fragment = rest.partition("#")
    authority_end = len(rest)
    for c in "/?":
        i = rest.find(c)
        if i != -1:
            authority_end = min(authority_end, i)
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        raise URLRefused(text, "user information in URLs is not accepted")
    if authority.startswith("["):
        close = authority.find("]")
        host_raw, port_raw = authority[: close + 1], authority[close + 1 :]
        if close == -1 or (port_raw and not port_raw.startswith(":")):
            raise URLRefused(text, "malformed IPv6 host")
        port_raw = port_raw[1:]
    else:
        host_raw, _, port_raw = authority.partition(":")
    if not host_raw:
        raise URLRefused(text, "URL without a host")
    host = _host(host_raw, text)
    if port_raw:
        if not port_raw.isascii() or not port_raw.isdigit() or int(port_raw) > 65535:
            raise URLRefused(text, "invalid port")
        port = int(port_raw)
        if port == 0:
            raise URLRefused(text, "invalid port")
    else:
        port = _DEFAULT_PORT[scheme]
    raw_path, _, query = tail.partition("?")
    return URL(scheme, host, port, _path(raw_path, text), query)


def parse_prefix(text: str) -> Prefix:
    """One ``+Bh`` argument; a query or fragment makes no sense in a prefix."""
    if "?" in text or "#" in text:
        raise URLRefused(text, "a +Bh prefix has no query or fragment")
    url = parse_url(text)
    return Prefix(url, text)


def match(text: str, prefixes: tuple[Prefix, ...]) -> tuple[URL, Prefix]:
    """The URL and the longest prefix that covers it, or :class:`URLRefused`."""
    url = parse_url(text)
    best: Prefix | None = None
    for prefix in prefixes:
        if prefix.covers(url) and (best is None or len(prefix.url.path) > len(best.url.path)):
            best = prefix
    if best is None:
        raise URLRefused(text, "http(s) URL outside every permitted prefix (add one with +Bh)")
    return url, best


def rewrite(text: str, rules: tuple[tuple[str, str], ...]) -> str:
    """``--bulkdata-rewrite FROM=TO``: the first rule whose FROM starts the URI replaces it
    (plain string prefixes, applied before the permission check)."""
    for old, new in rules:
        if text.startswith(old):
            return new + text[len(old) :]
    return text
