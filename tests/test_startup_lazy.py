"""Start-up (issue 11 §2): a one-shot conversion of a small file parses it whole with the
standard library's JSON scanner and imports none of the modules made lazy; what it writes,
and what it reports, are what the ijson path writes and reports.

No timing here (bench/bench_startup.py measures).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streamconv.core.documents import DocumentParser, Pairs

EXAMPLES = Path(__file__).parent.parent / "examples"
# made lazy for issue 11: none of them is needed to convert a plain header
LAZY = (
    "ijson",
    "inspect",
    "ast",
    "dis",
    "typing",
)  # (tokenize: compiling a .py without .pyc uses it)


def test_oneshot_imports_none_of_the_lazy_modules(tmp_path: Path) -> None:
    out = tmp_path / "ct.dcm"
    code = (
        "import sys\n"
        "from streamconv.cli import main\n"
        f"rc = main([{str(EXAMPLES / 'ct.json')!r}, {str(out)!r}])\n"
        f"print(rc, sorted(m for m in sys.modules if m.split('.')[0] in {LAZY!r}))\n"
        "from streamconv.core.dictionary import _Builtin\n"
        "print('whole dictionary loaded:', _Builtin._public is not None)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split("\n")[:2] == ["0 []", "whole dictionary loaded: False"], run.stderr
    assert out.read_bytes()[128:132] == b"DICM"


def _both(data: bytes) -> tuple[list[object], list[object]]:
    whole = DocumentParser(max_depth=8)
    got = whole.parse_whole(data)
    assert got is not None
    assert whole.finish() == []
    fed = DocumentParser(max_depth=8)
    ref = fed.feed(data) + fed.finish()
    assert (whole.shape, whole.count) == (fed.shape, fed.count)
    return [_plain(r.value) for r in got], [_plain(r.value) for r in ref]


def _plain(v: object) -> object:
    """Pairs (yajl) and PairList (json) alike as lists of (key, value); numbers by text."""
    if isinstance(v, Pairs):
        return [(k, _plain(x)) for k, x in v.pairs]
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return (type(v).__name__, str(v))


@pytest.mark.parametrize(
    "data",
    [
        (EXAMPLES / "ct.json").read_bytes(),
        b'\xef\xbb\xbf{"00100010": {"vr": "PN", "Value": [{"Alphabetic": "M\xc3\xbcller"}]},}',
        b'[{"00280030": {"vr": "DS", "Value": [1e-06, 2.5E+3, -0, 10]}}, {}]',
        b'{"00100020": {"vr": "LO", "Value": ["a"]}, "00100020": {"vr": "LO", "Value": ["b"]}}',
    ],
)
def test_parse_whole_builds_what_yajl_builds(data: bytes) -> None:
    got, ref = _both(data)
    assert got == ref
    assert got  # something was parsed


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": NaN}',  # refused by both; yajl's message is the one reported
        b'{"a": 1} {"b": 2}',  # several top-level values: the yajl path takes them
        b'{"a": [1, 2',  # truncated
        b'{"a": "\\ud800"}',  # a lone surrogate: the pre-pass refuses it
        b"   ",
    ],
)
def test_parse_whole_leaves_the_rest_to_yajl(data: bytes) -> None:
    p = DocumentParser()
    assert p.parse_whole(data) is None
    assert p.filter.consumed == 0 and p.count == 0


def test_parse_whole_reports_an_empty_array() -> None:
    from streamconv.errors import ContentError

    with pytest.raises(ContentError, match="empty JSON array"):
        DocumentParser().parse_whole(b" [ ] ")


def test_option_records_are_named_tuples() -> None:
    import pickle

    from streamconv.core.dictionary import DictEntry
    from streamconv.options import ConvertOptions, HttpAuth, Limits

    o = ConvertOptions(array_select=2)
    assert o._fields[:3] == ("read_meta", "generate_uids", "overwrite_uids")
    assert o.limits == Limits() and Limits().max_depth == 64  # defaults, as declared
    changed = o._replace(limits=Limits(max_depth=3))
    assert changed.limits.max_depth == 3 and changed.array_select == 2
    assert pickle.loads(pickle.dumps(changed)) == changed  # workers get them pickled
    assert repr(HttpAuth("https://x/", "Authorization", "secret")).endswith("'***')")
    assert isinstance(o, tuple) and Limits.__doc__ and "limits" in Limits.__doc__
    assert callable(DictEntry.contains)  # methods of the class body are kept


@pytest.mark.parametrize(
    "text",
    [b"", b"QQ==", b"QR==", b"QUJD", "QUJDRA==", b"QUJDREU=", b"////", b"A" * 4092 + b"QQ=="],
)
def test_short_base64_decodes_as_pybase64(text: bytes | str) -> None:
    import pybase64

    from streamconv.core.spills import decode_base64

    assert decode_base64(text) == pybase64.b64decode(text, validate=True)


@pytest.mark.parametrize(
    "text", [b"QQ", b"Q===", b"QQ==QQ==", b"QQ\nQQ==", b"-_-_", "QÜ==", b"=QQQ"]
)
def test_short_base64_refused_with_pybase64s_words(text: bytes | str) -> None:
    import binascii

    import pybase64

    from streamconv.core.spills import decode_base64

    with pytest.raises((binascii.Error, ValueError)) as ours:
        decode_base64(text)
    with pytest.raises((binascii.Error, ValueError)) as theirs:
        pybase64.b64decode(text, validate=True)
    assert str(ours.value) == str(theirs.value)


def test_public_vr_table_is_pydicoms() -> None:
    # core/public_vrs.py is what pydicom's dictionary of that size gives (renew it when
    # pydicom changes: see dictionary.public_vrs_source); another pydicom: the VRs come
    # from its whole dictionary.  Either way they are pydicom's.
    import os

    from streamconv.core import dictionary, public_vrs

    path = Path(dictionary.__file__).with_name("public_vrs.py")
    size = os.stat(dictionary._pydicom_file("_dicom_dict.py")).st_size
    if size == public_vrs.SOURCE_SIZE:
        assert path.read_text() == dictionary.public_vrs_source()
    exact, masks = dictionary._Builtin.vrs()
    whole, whole_masks = dictionary._Builtin.public()
    assert exact == {tag: e[0] for tag, e in whole.items()} and len(exact) > 4000
    assert masks == [(v, m, e[0]) for v, m, e in whole_masks]
