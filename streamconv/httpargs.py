"""The DICOMweb options of the json2dcm vocabulary -> :class:`HttpSettings` (at the edge).

Credentials are read here, once, from the files and variables the options name; they are
bound to one permitted URL prefix each (never sent elsewhere) and never logged.
"""

from __future__ import annotations

import os
import re

from .core.urlperm import Prefix, URLRefused, parse_prefix, parse_url
from .errors import UsageError
from .options import HttpAuth, HttpSettings

__all__ = ["http_settings"]

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2: a header name
_SECRET_MAX = 64 << 10


def _list(v: dict[str, object], key: str) -> list[str]:
    value = v.get(key, [])
    return [str(x) for x in value] if isinstance(value, list) else [str(value)]


def _pair(text: str, option: str, what: str) -> tuple[str, str]:
    left, eq, right = text.partition("=")
    if not eq or not left or not right:
        raise UsageError(f"Invalid value for option {option} (expected {what}: {text})")
    return left, right


def _read_secret(path: str, option: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(_SECRET_MAX + 1)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise UsageError(f"{option}: cannot read '{path}': {reason}") from None
    if len(text) > _SECRET_MAX:
        raise UsageError(f"{option}: '{path}' is larger than {_SECRET_MAX} bytes")
    return text.strip("\r\n")


def _header_line(text: str, option: str, where: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not _TOKEN.fullmatch(name) or not value:
        raise UsageError(f"{option}: {where} does not hold one 'Name: value' header line")
    if any(c in value for c in "\r\n\x00"):
        # a second line would be a second header (request smuggling)
        raise UsageError(f"{option}: {where} holds more than one header line")
    return name, value


def _permitted_url(text: str, prefixes: tuple[Prefix, ...], option: str) -> str:
    try:
        url = parse_url(text)
    except URLRefused as exc:
        raise UsageError(f"Invalid value for option {option}: {exc}") from None
    if not any(p.covers(url) for p in prefixes):
        raise UsageError(f"{option}: '{text}' is under no +Bh prefix (credentials are per URL)")
    return text


def http_settings(v: dict[str, object]) -> HttpSettings:
    """Check the DICOMweb options (exit 1) and read the credentials they name."""
    texts = _list(v, "bulkdata_urls")
    try:
        prefixes = tuple(parse_prefix(t) for t in texts)
    except URLRefused as exc:
        raise UsageError(f"Invalid value for option --add-bulkdata-url: {exc}") from None
    rewrites = tuple(
        _pair(t, "--bulkdata-rewrite", "FROM=TO") for t in _list(v, "bulkdata_rewrites")
    )
    auth: list[HttpAuth] = []
    for t in _list(v, "http_header_files"):
        url, path = _pair(t, "--http-header-file", "URL=FILE")
        url = _permitted_url(url, prefixes, "--http-header-file")
        name, value = _header_line(_read_secret(path, "--http-header-file"),
                                   "--http-header-file", f"'{path}'")  # fmt: skip
        auth.append(HttpAuth(url, name, value))
    for t in _list(v, "http_header_envs"):
        url, var = _pair(t, "--http-header-env", "URL=VAR")
        url = _permitted_url(url, prefixes, "--http-header-env")
        if var not in os.environ:
            raise UsageError(f"--http-header-env: environment variable {var} is not set")
        name, value = _header_line(os.environ[var].strip("\r\n"), "--http-header-env",
                                   f"variable {var}")  # fmt: skip
        auth.append(HttpAuth(url, name, value))
    for t in _list(v, "http_basic_files"):
        import base64

        url, path = _pair(t, "--http-basic-file", "URL=FILE")
        url = _permitted_url(url, prefixes, "--http-basic-file")
        secret = _read_secret(path, "--http-basic-file")
        if ":" not in secret or "\n" in secret:
            raise UsageError(f"--http-basic-file: '{path}' does not hold one 'user:password' line")
        token = base64.b64encode(secret.encode("utf-8")).decode("ascii")
        auth.append(HttpAuth(url, "Authorization", f"Basic {token}"))
    netrc = ""
    if v.get("http_netrc"):
        netrc = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    timeout = 60.0
    if "http_timeout" in v:
        try:
            timeout = float(str(v["http_timeout"]))
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= 3600:
            raise UsageError(f"Invalid value for option --http-timeout: {v['http_timeout']}")
    retries = 4
    if "http_retries" in v:
        text = str(v["http_retries"])
        if not text.isascii() or not text.isdigit() or int(text) > 100:
            raise UsageError(f"Invalid value for option --http-retries: {text}")
        retries = int(text)
    ca = str(v.get("http_ca_bundle", ""))
    if ca and not os.path.isfile(ca):
        raise UsageError(f"--http-ca-bundle: no such file '{ca}'")
    return HttpSettings(
        prefixes=tuple(texts),
        rewrites=rewrites,
        auth=tuple(auth),
        netrc=netrc,
        ca_bundle=ca,
        timeout=timeout,
        retries=retries,
        fetch_frames=bool(v.get("fetch_frames", False)),
        require_pixel_data=bool(v.get("require_pixel_data", False)),
    )
