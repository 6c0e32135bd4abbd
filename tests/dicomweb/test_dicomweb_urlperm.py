"""+Bh permission table (CONTRACT §5): which http(s) BulkDataURIs a prefix list permits."""

from __future__ import annotations

import pytest

from streamconv.core.urlperm import URLRefused, match, parse_prefix, parse_url, rewrite

PREFIXES = (
    "http://pacs.example:8042/dicom-web/",
    "https://Secure.Example/wado",
    "http://127.0.0.1:8042/dicom-web",
    "http://[2001:db8::1]/dw/",
)


def _prefixes() -> tuple:  # type: ignore[type-arg]
    return tuple(parse_prefix(p) for p in PREFIXES)


PERMITTED = [
    # (uri, the prefix that must cover it)
    ("http://pacs.example:8042/dicom-web/studies/1/bulk/7fe00010", PREFIXES[0]),
    ("HTTP://PACS.EXAMPLE:8042/dicom-web/studies/1", PREFIXES[0]),  # scheme, host: any case
    ("http://pacs.example.:8042/dicom-web/x", PREFIXES[0]),  # absolute DNS name
    ("http://pacs.example:08042/dicom-web/x", PREFIXES[0]),  # leading zero in the port
    ("https://secure.example/wado", PREFIXES[1]),  # the prefix itself
    ("https://secure.example:443/wado/x?offset=2&length=4", PREFIXES[1]),  # default port
    ("https://secure.example/wado/", PREFIXES[1]),
    ("http://127.0.0.1:8042/dicom-web/studies/1.2/bulk/1", PREFIXES[2]),
    ("http://pacs.example:8042/dicom-web/%7Euser", PREFIXES[0]),  # encoded unreserved
    ("http://[2001:0db8:0:0::1]/dw/a", PREFIXES[3]),  # another spelling of the same IPv6
    ("http://[2001:DB8::1]:80/dw/a", PREFIXES[3]),
]

REFUSED = [
    # outside every prefix
    ("http://pacs.example:8043/dicom-web/x", "outside"),  # other port
    ("https://pacs.example:8042/dicom-web/x", "outside"),  # other scheme
    ("http://pacs.example/dicom-web/x", "outside"),  # default port 80 is not 8042
    ("http://pacs.example:8042/dicom-webX/x", "outside"),  # not at a segment boundary
    ("http://pacs.example:8042/", "outside"),  # above the prefix
    ("https://secure.example/wadox", "outside"),
    ("http://other.example:8042/dicom-web/x", "outside"),
    ("http://169.254.169.254/latest/meta-data/", "outside"),  # link-local metadata service
    ("http://localhost:8042/dicom-web/x", "outside"),  # not resolved: a different host
    ("http://127.0.0.2:8042/dicom-web/x", "outside"),
    ("http://[::1]:8042/dicom-web/x", "outside"),  # loopback IPv6, not listed
    ("http://[::ffff:127.0.0.1]:8042/dicom-web/x", "outside"),  # IPv4-mapped loopback
    ("http://[2001:db8::2]/dw/a", "outside"),
    # user information: the classic confusions
    ("http://pacs.example:8042@evil.example/dicom-web/x", "user information"),
    ("http://pacs.example:8042/dicom-web/x@evil", None),  # '@' in the path is a path: fine
    ("http://user:pw@pacs.example:8042/dicom-web/x", "user information"),
    ("http://evil.example#@pacs.example:8042/dicom-web/", "outside"),
    # percent-encoded and odd hosts
    ("http://pacs%2Eexample:8042/dicom-web/x", "percent-encoded"),
    ("http://%31%32%37.0.0.1:8042/dicom-web/x", "percent-encoded"),
    ("http://127.1:8042/dicom-web/x", "dotted decimal"),
    ("http://0x7f.0.0.1:8042/dicom-web/x", "dotted decimal"),
    ("http://2130706433:8042/dicom-web/x", "dotted decimal"),
    ("http://0177.0.0.1:8042/dicom-web/x", "dotted decimal"),
    ("http://127.0.0.01:8042/dicom-web/x", "dotted decimal"),
    ("http://256.0.0.1/x", "dotted decimal"),
    ("http://pacs.exämple:8042/dicom-web/x", "non-ASCII"),
    ("http://[fe80::1%25eth0]/dw/a", "zone"),
    ("http://[2001:db8::1/dw/a", "IPv6"),
    ("http://[2001:db8::zz]/dw/a", "IPv6"),
    ("http://pacs.example:8042\\@evil/dicom-web/x", "backslash"),
    ("http://pacs.example:8042/dicom-web/x y", "whitespace"),
    ("http://pacs.example:8042/dicom-web/\x00", "control"),
    ("http://pacs.example:99999/dicom-web/x", "port"),
    ("http://pacs.example:0/dicom-web/x", "port"),
    ("http://pacs.example:80a/dicom-web/x", "port"),
    ("http:///dicom-web/x", "without a host"),
    ("http://-bad-.example/x", "invalid host"),
    # paths that climb out of the prefix at the server
    ("http://pacs.example:8042/dicom-web/../admin", "dot segments"),
    ("http://pacs.example:8042/dicom-web/%2e%2E/admin", "dot segments"),
    ("http://pacs.example:8042/dicom-web/..%2Fadmin", "encoded slashes"),
    ("http://pacs.example:8042/dicom-web/..%5cadmin", "encoded slashes"),
    # other schemes never reach this module's yes
    ("ftp://pacs.example:8042/dicom-web/x", "not an absolute http"),
    ("http:pacs.example/dicom-web/x", "not an absolute http"),
    ("//pacs.example:8042/dicom-web/x", "not an absolute http"),
]


@pytest.mark.parametrize(("uri", "prefix"), PERMITTED)
def test_permitted(uri: str, prefix: str) -> None:
    _url, chosen = match(uri, _prefixes())
    assert chosen.text == prefix


@pytest.mark.parametrize(("uri", "reason"), REFUSED)
def test_refused(uri: str, reason: str | None) -> None:
    if reason is None:
        match(uri, _prefixes())  # listed for contrast: permitted
        return
    with pytest.raises(URLRefused) as info:
        match(uri, _prefixes())
    assert reason.lower() in info.value.reason.lower()


def test_longest_prefix_wins() -> None:
    prefixes = (parse_prefix("http://h:1/a"), parse_prefix("http://h:1/a/b/"))
    assert match("http://h:1/a/b/c", prefixes)[1].text == "http://h:1/a/b/"
    assert match("http://h:1/a/c", prefixes)[1].text == "http://h:1/a"


def test_empty_list_refuses_everything() -> None:
    with pytest.raises(URLRefused):
        match("http://127.0.0.1:8042/x", ())


@pytest.mark.parametrize(
    "bad",
    ["http://h/x?y=1", "http://h/x#f", "file:///tmp", "http://u@h/", "http://127.1/", ""],
)
def test_bad_prefixes(bad: str) -> None:
    with pytest.raises(URLRefused):
        parse_prefix(bad)


def test_normal_form() -> None:
    url = parse_url("HTTPS://Secure.Example:443/a/%7e%41%2a?q=1")
    assert url.geturl() == "https://secure.example/a/~A%2A?q=1"
    assert parse_url("http://[2001:DB8:0::1]:8080/").origin == "http://[2001:db8::1]:8080"


def test_rewrite_first_matching_rule() -> None:
    rules = (("http://pacs/", "http://127.0.0.1:8042/"), ("http://pacs", "http://x/"))
    assert rewrite("http://pacs/dicom-web/a", rules) == "http://127.0.0.1:8042/dicom-web/a"
    assert rewrite("http://pacsX/a", rules) == "http://x/X/a"
    assert rewrite("http://other/a", rules) == "http://other/a"
