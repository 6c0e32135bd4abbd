"""core/bulkdata.py directly: BulkDataURI -> a verified byte range of a permitted file.

What is expected comes from RFC 8089 (file URI forms), RFC 3986 (percent-encoding, relative
references) and CONTRACT §5 (decoded once; ?offset=&length=; containment after resolving
'..' and symlinks: 20; relative from stdin and other schemes: 66).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamconv.core import bulkdata
from streamconv.errors import BulkDataAccessError, ContentError, UnsupportedURIError

DATA = bytes(range(256)) * 4  # 1024 bytes, each position's byte known


class Bulk:
    """A permitted directory (realpath, as +Bd gives it) holding data.bin."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "permitted"
        self.dir.mkdir()
        self.real = os.path.realpath(self.dir)
        self.dirs = bulkdata.permitted_dirs([str(self.dir)])
        self.file = self.dir / "data.bin"
        self.file.write_bytes(DATA)
        self.outside = root / "outside.bin"
        self.outside.write_bytes(b"secret")

    def resolve(self, uri: str, base_dir: str | None = None) -> bulkdata.BulkRef:
        return bulkdata.resolve_uri(uri, base_dir=base_dir, dirs=self.dirs)

    def read(self, uri: str, base_dir: str | None = None) -> bytes:
        return bulkdata.read_all(self.resolve(uri, base_dir), self.dirs)


@pytest.fixture
def bulk(tmp_path: Path) -> Bulk:
    return Bulk(tmp_path)


# -- URI forms -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        "file:{path}",  # RFC 8089: file:/p
        "file://{path}",  # file:///p
        "file://localhost{path}",
        "FILE://LOCALHOST{path}",  # scheme and host are case-insensitive (RFC 3986 3.1, 3.2.2)
        "file://127.0.0.1{path}",
    ],
)
def test_file_uri_forms(bulk: Bulk, form: str) -> None:
    ref = bulk.resolve(form.format(path=quote(str(bulk.file))))
    assert ref.path == os.path.join(bulk.real, "data.bin")
    assert (ref.offset, ref.length) == (0, len(DATA))
    assert bulkdata.read_all(ref, bulk.dirs) == DATA


def test_relative_reference_resolves_against_the_base_directory(bulk: Bulk) -> None:
    # RFC 3986 5.2: against the JSON file's directory (CONTRACT §5)
    assert bulk.read("data.bin?offset=1&length=2", base_dir=str(bulk.dir)) == DATA[1:3]
    (bulk.dir / "sub").mkdir()
    (bulk.dir / "sub" / "x.bin").write_bytes(b"xy")
    assert bulk.read("sub/x.bin", base_dir=str(bulk.dir)) == b"xy"


def test_relative_reference_without_base_is_unsupported(bulk: Bulk) -> None:
    # stdin has no directory: an unsupported URI (66)
    with pytest.raises(UnsupportedURIError) as info:
        bulk.resolve("data.bin")
    assert info.value.exit_code == 66


@pytest.mark.parametrize(
    "uri",
    [
        "http://example.com/data.bin",
        "https://example.com/data.bin",
        "ftp://example.com/data.bin",
        "file://otherhost/tmp/data.bin",  # a network host (RFC 8089 2)
    ],
)
def test_other_schemes_and_hosts_are_unsupported(bulk: Bulk, uri: str) -> None:
    with pytest.raises(UnsupportedURIError) as info:
        bulk.resolve(uri)
    assert info.value.exit_code == 66
    assert info.value.category == "unsupported-uri"


@pytest.mark.parametrize("uri", ["file:", "file://", "file://localhost", "file:relative/x"])
def test_file_uri_without_an_absolute_path(bulk: Bulk, uri: str) -> None:
    with pytest.raises(ContentError):
        bulk.resolve(uri)


# -- percent-decoding: exactly once ------------------------------------------------------------


def test_percent_decoding_is_applied_once(bulk: Bulk) -> None:
    # "%2541" decodes once to "%41"; decoding again would give "A" (DCMTK's behaviour)
    (bulk.dir / "x%41.bin").write_bytes(b"once")
    (bulk.dir / "xA.bin").write_bytes(b"twice")
    uri = f"file://{bulk.real}/x%2541.bin"
    assert bulk.read(uri) == b"once"
    assert bulk.resolve(uri).path.endswith("/x%41.bin")


@pytest.mark.parametrize(
    ("name", "encoded"),
    [("a b.bin", "a%20b.bin"), ("é.bin", "%C3%A9.bin"), ("q?.bin", "q%3F.bin")],
)
def test_percent_encoded_names(bulk: Bulk, name: str, encoded: str) -> None:
    (bulk.dir / name).write_bytes(name.encode())
    assert bulk.read(f"file://{bulk.real}/{encoded}") == name.encode()
    assert bulk.read(encoded, base_dir=str(bulk.dir)) == name.encode()


@pytest.mark.parametrize(
    "tail",
    [
        "x%zz.bin",  # not two hex digits
        "x%4.bin",
        "%C3.bin",  # percent-encoded bytes that are not UTF-8 (RFC 3986 2.5)
        "x%00.bin",  # a NUL byte in a path
    ],
)
def test_invalid_percent_encoding(bulk: Bulk, tail: str) -> None:
    with pytest.raises(ContentError) as info:
        bulk.resolve(f"file://{bulk.real}/{tail}")
    assert info.value.exit_code == 65


# -- ?offset=&length= ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "offset", "length"),
    [
        ("?offset=2&length=3", 2, 3),
        ("?length=3&offset=2", 2, 3),
        ("?offset=1000", 1000, 24),  # offset without length: to the end of the file
        ("?length=10", 0, 10),
        ("?offset=1024", 1024, 0),  # at the end: an empty range
        ("?offset=0&length=1024", 0, 1024),
        ("?offset=%32", 2, 1022),  # the query is percent-decoded too
    ],
)
def test_offset_and_length(bulk: Bulk, query: str, offset: int, length: int) -> None:
    ref = bulk.resolve(bulk.file.as_uri() + query)
    assert (ref.offset, ref.length) == (offset, length)
    assert bulkdata.read_all(ref, bulk.dirs) == DATA[offset : offset + length]


@pytest.mark.parametrize(
    "query",
    [
        "?offset=1025",  # past the end
        "?offset=1000&length=25",  # runs past the end
        "?offset=-1",
        "?length=1.5",
        "?offset",
        "?range=1",
        "?offset=１",  # a non-ASCII digit
    ],
)
def test_bad_offset_or_length(bulk: Bulk, query: str) -> None:
    with pytest.raises(ContentError):
        bulk.resolve(bulk.file.as_uri() + query)


def test_any_range_reads_exactly_those_bytes(bulk: Bulk) -> None:
    @settings(max_examples=60, deadline=None)
    @given(st.integers(0, len(DATA)), st.integers(0, len(DATA)), st.integers(1, 300))
    def check(offset: int, length: int, chunk: int) -> None:
        length = min(length, len(DATA) - offset)
        ref = bulk.resolve(f"{bulk.file.as_uri()}?offset={offset}&length={length}")
        chunks = list(bulkdata.iter_chunks(ref, bulk.dirs, chunk))
        assert b"".join(chunks) == DATA[offset : offset + length]
        assert all(0 < len(c) <= chunk for c in chunks)

    check()


# -- permitted directories (CONTRACT §5: 20, not transient) ----------------------------------------


def _refused(bulk: Bulk, uri: str, base_dir: str | None = None) -> BulkDataAccessError:
    with pytest.raises(BulkDataAccessError) as info:
        bulk.resolve(uri, base_dir)
    assert info.value.exit_code == 20
    assert info.value.category == "bulkdata"
    return info.value


def test_file_outside_the_permitted_directories(bulk: Bulk) -> None:
    error = _refused(bulk, bulk.outside.as_uri())
    # the input will not get better by waiting: the daemon must not retry it
    assert error.transient is False


def test_no_permitted_directory_refuses_everything(bulk: Bulk) -> None:
    with pytest.raises(BulkDataAccessError) as info:
        bulkdata.resolve_uri(bulk.file.as_uri(), base_dir=None, dirs=())
    assert info.value.transient is False


def test_dot_dot_out_of_the_directory(bulk: Bulk) -> None:
    assert _refused(bulk, f"file://{bulk.real}/../outside.bin").transient is False
    assert _refused(bulk, "../outside.bin", base_dir=str(bulk.dir)).transient is False
    # '..' that stays inside is fine
    (bulk.dir / "sub").mkdir()
    assert bulk.read(f"file://{bulk.real}/sub/../data.bin") == DATA


def test_symlink_out_of_the_directory(bulk: Bulk) -> None:
    (bulk.dir / "link.bin").symlink_to(bulk.outside)
    assert _refused(bulk, f"file://{bulk.real}/link.bin").transient is False
    (bulk.dir / "linkdir").symlink_to(bulk.outside.parent)
    assert _refused(bulk, f"file://{bulk.real}/linkdir/outside.bin").transient is False


def test_symlink_inside_the_directory_reads_its_target(bulk: Bulk) -> None:
    (bulk.dir / "link.bin").symlink_to("data.bin")
    ref = bulk.resolve(f"file://{bulk.real}/link.bin")
    assert ref.path == os.path.join(bulk.real, "data.bin")
    assert bulkdata.read_all(ref, bulk.dirs) == DATA


def test_a_sibling_with_the_same_prefix_is_outside(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "ab").mkdir()
    (tmp_path / "ab" / "f.bin").write_bytes(b"x")
    dirs = bulkdata.permitted_dirs([str(tmp_path / "a")])
    with pytest.raises(BulkDataAccessError):
        bulkdata.resolve_uri((tmp_path / "ab" / "f.bin").as_uri(), base_dir=None, dirs=dirs)


def test_permitted_dirs_are_realpaths_with_a_trailing_separator(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    real = os.path.realpath(tmp_path / "real")
    assert bulkdata.permitted_dirs([str(tmp_path / "alias"), str(tmp_path / "real") + "/"]) == (
        real + "/",
        real + "/",
    )
    for bad in ("", str(tmp_path / "missing")):
        with pytest.raises(ValueError):
            bulkdata.permitted_dirs([bad])


# -- what is not a readable regular file -----------------------------------------------------------


def test_missing_file_is_an_input_error(bulk: Bulk) -> None:
    error = _refused(bulk, f"file://{bulk.real}/missing.bin")
    # it may still arrive: worth trying again (InputError, errors.py)
    assert error.transient is True


def test_directory_is_not_read(bulk: Bulk) -> None:
    (bulk.dir / "sub").mkdir()
    assert _refused(bulk, f"file://{bulk.real}/sub").transient is False


def test_fifo_is_refused_without_blocking(bulk: Bulk) -> None:
    os.mkfifo(bulk.dir / "fifo")
    errors: list[BaseException] = []

    def resolve() -> None:
        try:
            bulk.resolve(f"file://{bulk.real}/fifo")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=resolve, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "opening a FIFO blocked (no writer)"
    assert len(errors) == 1 and isinstance(errors[0], BulkDataAccessError)
    assert errors[0].transient is False


def test_a_file_replaced_after_the_check_is_refused_when_read(bulk: Bulk) -> None:
    ref = bulk.resolve(bulk.file.as_uri())
    replacement = bulk.dir / "new.bin"
    replacement.write_bytes(DATA)
    os.replace(replacement, bulk.file)  # same name, same size, another inode
    with pytest.raises(BulkDataAccessError):
        bulkdata.read_all(ref, bulk.dirs)


def test_a_file_that_shrank_is_refused_when_read(bulk: Bulk) -> None:
    ref = bulk.resolve(bulk.file.as_uri())
    os.truncate(bulk.file, 10)
    with pytest.raises(BulkDataAccessError):
        bulkdata.read_all(ref, bulk.dirs)


def test_temporary_ref_is_pinned_to_its_inode(tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    spill.write_bytes(b"abcdef")
    ref = bulkdata.temporary_ref(str(spill), 4)
    assert ref.temporary and (ref.offset, ref.length) == (0, 4)
    # streamconv's own temporary file: no permitted directory needed
    assert bulkdata.read_all(ref, ()) == b"abcd"
    (tmp_path / "other").write_bytes(b"abcdef")  # made while the spill exists: another inode
    os.replace(tmp_path / "other", spill)
    with pytest.raises(BulkDataAccessError):
        bulkdata.read_all(ref, ())
