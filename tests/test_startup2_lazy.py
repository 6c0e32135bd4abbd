"""Start-up (issue 11 §2, second round): what a plain one-shot conversion imports, and that the
lazy stand-ins (loggers, patterns, the JSON scanner, the public VR table) behave as what they
stand for.

No timing here (bench/bench_startup.py measures): these tests pin the facts the figures rest
on, so that an import cannot creep back onto json2dcm's start-up unnoticed.
"""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from support import JSON2DCM

from streamconv.cli import main
from streamconv.core import dictionary, lazylog, public_vrs
from streamconv.core.jsonscan import make_decoder
from streamconv.core.lazylog import lazy_logger
from streamconv.core.lazyre import LazyPattern, lazy_compile
from streamconv.logsetup import reset_logging

EXAMPLES = Path(__file__).parent.parent / "examples"

# Modules a plain ASCII or Latin-1 conversion must not import (each was on the path once):
# logging pulls threading, traceback, tokenize, string, weakref (~6 ms); json its decoder,
# encoder and five patterns; the rest are extension modules or packages the path never needs.
NEVER = frozenset(
    {
        "logging",
        "threading",
        "traceback",
        "tokenize",
        "json",
        "importlib.util",
        "string",
        "array",
        "bisect",
        "zlib",
        "typing",
        "dataclasses",
        "inspect",
        "ijson",
        "pybase64",
        "pydicom",
        "numpy",
        "anyio",
        "uuid",
        "hashlib",
        "tempfile",
        "re",  # with enum: ~3 ms where the console script does not import it (pip >= 25, uv)
        "enum",
        "functools",
    }
)
# Everything outside streamconv that a plain conversion may import beyond what the console
# script itself imports (the interpreter, site and `re`): a module added here costs every
# json2dcm run its import (an extension module: its dlopen), so add one knowingly.
ALLOWED = frozenset(
    {
        "__future__",  # every module's `from __future__ import annotations`
        "_decimal",  # JsonNumber is a Decimal (core/numbers.py)
        "decimal",
        "numbers",  # imported by decimal
        "math",
        "_struct",  # element headers (core/encode.py)
        "struct",
        "binascii",  # InlineBinary (core/spills.py)
        "_json",  # the C scanner (core/jsonscan.py)
        "gc",
        "errno",
        "collections.abc",
        # collections, imported by _decimal (its DecimalTuple), with what it imports
        "collections",
        "_collections",
        "itertools",
        "keyword",
        "operator",
        "_operator",
        "reprlib",
    }
)
# what pip >= 25 and uv write as the console script (pip < 25's also imports re)
ENTRY = "import sys\nfrom streamconv.cli import main_entry\nsys.exit(main_entry())\n"


@pytest.fixture(autouse=True)
def no_deferred_setup_left() -> Iterator[None]:
    yield
    lazylog.cancel_setup()
    reset_logging()


def _imported(*args: str) -> set[str]:
    """The modules a fresh interpreter imports for ``args``, read from ``-X importtime``."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", *args], capture_output=True, text=True, check=True
    )
    names = set()
    for line in run.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def _latin1_header(tmp_path: Path) -> Path:
    doc = json.loads((EXAMPLES / "ct.json").read_text(encoding="utf-8"))
    doc["00080005"] = {"vr": "CS", "Value": ["ISO_IR 100"]}
    doc["00100010"] = {"vr": "PN", "Value": [{"Alphabetic": "Müller^Jürgen"}]}
    src = tmp_path / "latin1.json"
    src.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return src


@pytest.mark.parametrize("script", ["installed", "re-free"])
@pytest.mark.parametrize("kind", ["ascii", "latin1"])
def test_plain_conversion_imports_only_what_it_needs(
    tmp_path: Path, kind: str, script: str
) -> None:
    src = EXAMPLES / "ct.json" if kind == "ascii" else _latin1_header(tmp_path)
    out = tmp_path / "out.dcm"
    if script == "installed":  # the console script, as a user's shell loop starts it
        names = _imported(JSON2DCM, str(src), str(out))
        baseline = _imported("-c", "import re, sys")  # what pip < 25's script imports
    else:  # the script pip >= 25 and uv write: nothing of ours may import re either
        names = _imported("-c", ENTRY, str(src), str(out))
        baseline = _imported("-c", "import sys")
    assert out.read_bytes()[128:132] == b"DICM"
    extra = {n for n in names - baseline if not n.startswith(("streamconv", "encodings."))}
    assert not (names - baseline) & NEVER, sorted((names - baseline) & NEVER)
    assert extra <= ALLOWED, f"new on json2dcm's start-up: {sorted(extra - ALLOWED)}"


@pytest.mark.parametrize("kind", ["ascii", "latin1"])
def test_plain_conversion_runs_with_the_never_modules_blocked(tmp_path: Path, kind: str) -> None:
    # the same fact, seen where -X importtime cannot see it (an editable install's finder
    # imports re, enum and importlib.util at start-up): with each NEVER module made
    # unimportable, the conversion still succeeds and writes the same bytes
    src = EXAMPLES / "ct.json" if kind == "ascii" else _latin1_header(tmp_path)
    code = (
        "import sys\n"
        f"for name in {sorted(NEVER)!r}:\n"
        "    sys.modules[name] = None  # import name: ImportError\n"
        "from streamconv.cli import main\n"
        "print(main(sys.argv[1:]))\n"
        f"for name in {sorted(NEVER)!r}:\n"
        "    if sys.modules[name] is None:\n"
        "        del sys.modules[name]  # the interpreter's exit looks some of them up\n"
    )
    blocked, free = tmp_path / "blocked.dcm", tmp_path / "free.dcm"
    run = subprocess.run(
        [sys.executable, "-c", code, str(src), str(blocked)], capture_output=True, text=True
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, "0\n", "")
    assert main([str(src), str(free)]) == 0
    # the same file, but for the UIDs generated from time and randomness (none in these)
    assert blocked.read_bytes() == free.read_bytes()


def test_a_warning_still_imports_logging_and_prints_dcmtks_look(tmp_path: Path) -> None:
    # the deferred set-up runs at the first record: the same "W:" line as before, and -q
    # still silences it (the run's other output is unchanged, see test_options.py)
    src = tmp_path / "w.json"
    src.write_text('{"00200013": {"vr": "IS", "Value": [4.0]}}')
    out = tmp_path / "w.dcm"
    code = (
        "import sys\n"
        "from streamconv.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "print(rc, 'logging' in sys.modules)\n"
    )
    for opts, stderr, logging_imported in (
        ([], "W: (0020,0013): IS value 4.0 written as 4\n", "True"),
        (["-q"], "", "True"),
    ):
        run = subprocess.run(
            [sys.executable, "-c", code, *opts, str(src), str(out)],
            capture_output=True,
            text=True,
            check=True,
        )
        assert run.stdout.split() == ["0", logging_imported]
        assert run.stderr == stderr


def test_a_run_without_records_leaves_no_deferred_setup(tmp_path: Path) -> None:
    # in-process (tests, the API): main() forgets the set-up it deferred, so a record of a
    # later conversion cannot reach this run's (by then closed) stderr
    err = io.StringIO()
    assert main([str(EXAMPLES / "ct.json"), str(tmp_path / "ct.dcm")], stderr=err) == 0
    assert lazylog._pending == []
    lazy_logger("streamconv.test_startup2").warning("after the run")
    assert all(getattr(h, "stream", None) is not err for h in logging.getLogger().handlers)
    reset_logging()


def test_deferred_setup_runs_once_before_the_first_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    lazylog.defer_setup(lambda: calls.append("setup"))
    log = lazy_logger("streamconv.test_startup2")
    log.debug("dropped")  # logging is imported here (pytest): the logger is made, set-up first
    with caplog.at_level(logging.WARNING):
        log.warning("first %s", 1)
        log.warning("second")
    assert calls == ["setup"]
    assert [r.getMessage() for r in caplog.records] == ["first 1", "second"]
    lazylog.defer_setup(lambda: calls.append("again"))
    lazylog.cancel_setup()
    log.error("after cancel")
    assert calls == ["setup"]


def test_lazy_logger_records_the_callers_place(caplog: pytest.LogCaptureFixture) -> None:
    log = lazy_logger("streamconv.test_startup2")
    with caplog.at_level(logging.DEBUG, logger="streamconv.test_startup2"):
        log.debug("d")
        log.info("i")
        log.warning("w")
        try:
            raise KeyError("k")
        except KeyError:
            log.exception("e")
        assert log.isEnabledFor(logging.DEBUG)
    assert [r.levelname for r in caplog.records] == ["DEBUG", "INFO", "WARNING", "ERROR"]
    for record in caplog.records:
        assert record.funcName == "test_lazy_logger_records_the_callers_place"
        assert record.pathname == __file__
    assert caplog.records[-1].exc_info is not None
    assert log.logger is logging.getLogger("streamconv.test_startup2")
    assert repr(log) == "LazyLogger('streamconv.test_startup2')"


def test_lazy_logger_without_logging_imported() -> None:
    # a fresh interpreter: DEBUG and INFO records are dropped without importing logging (the
    # root logger's level is WARNING until someone imports logging to change it); a warning
    # imports it and reaches logging's last-resort handler as any library's would
    code = (
        "import sys\n"
        "from streamconv.core.lazylog import INFO, lazy_logger\n"
        "log = lazy_logger('streamconv.x')\n"
        "log.debug('d'); log.info('i %s', 1)\n"
        "print(log.isEnabledFor(INFO), 'logging' in sys.modules)\n"
        "log.warning('w %s', 2)\n"
        "print('logging' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split() == ["False", "False", "True"]
    assert run.stderr == "w 2\n"


def test_lazy_pattern_is_the_compiled_pattern() -> None:
    lazy = lazy_compile(rb'"inlinebinary"[ \t]*:', re.IGNORECASE)
    assert isinstance(lazy, LazyPattern)
    assert not {"search", "pattern", "flags"} & set(vars(lazy))  # nothing compiled yet
    real = re.compile(rb'"inlinebinary"[ \t]*:', re.IGNORECASE)
    for data in (b'{"InlineBinary" :', b'"inlinebinary":', b"nothing here", b""):
        found, expected = lazy.search(data), real.search(data)
        assert (found and found.span()) == (expected and expected.span())
    assert lazy.pattern == real.pattern and lazy.flags == real.flags
    assert "search" in vars(lazy)  # kept: the next call is a plain attribute look-up
    text = lazy_compile(r"[^A-Za-z0-9._-]")
    assert text.sub("_", "a/b c..d") == "a_b_c..d"
    assert text.fullmatch("/") is not None and text.fullmatch("a") is None
    assert repr(text) == "lazy_compile('[^A-Za-z0-9._-]')"
    with pytest.raises(AttributeError):
        text.__wrapped__  # noqa: B018 (dunder probes are not pattern attributes)


DECODER_CASES = [
    '{"a": 1, "b": [1.5, -0, 1e-06, "x"], "a": null}',
    "  [ ]  ",
    "\n\t 17 \r\n",
    '"\\u00e9\\ud83d\\ude00"',
    '{"nested": {"deep": [[[{}]]]}, "t": true, "f": false}',
    "[1, 2,]",
    '{"a": NaN}',
    "[Infinity]",
    '{"a": 1} {"b": 2}',
    '{"a": [1, 2',
    "",
    "   ",
    '"control\x01char"',
    "01",
]


class _Pairs(list):  # type: ignore[type-arg]
    """object_pairs_hook stand-in: keeps the pairs, duplicates and order."""


def _refuse(name: str) -> None:
    raise ValueError(f"'{name}' is not a JSON value")


@pytest.mark.parametrize("text", DECODER_CASES)
def test_c_scanner_decodes_as_json_decoder(text: str) -> None:
    ours = make_decoder(_Pairs, str, _refuse)
    theirs = json.JSONDecoder(object_pairs_hook=_Pairs, parse_float=str, parse_constant=_refuse)
    try:
        expected: object = theirs.decode(text)
    except ValueError:
        with pytest.raises(ValueError):
            ours(text)
        return
    got = ours(text)
    assert got == expected and type(got) is type(expected)


@pytest.fixture
def table() -> Iterator[dictionary._SortedVRs]:
    yield dictionary._SortedVRs(public_vrs.TAGS, public_vrs.CODES, public_vrs.VRS)


def test_public_vr_table_looks_up_as_a_dict(table: dictionary._SortedVRs) -> None:
    whole, _ = dictionary.public_vr_table()
    assert len(table) == len(whole) > 4000
    assert all(table.get(tag) == vr for tag, vr in whole.items())
    assert list(table) == sorted(whole)
    # PS3.6: (0010,0010) PN, (7FE0,0010) OB or OW; the first and last tags; absent ones
    assert table[0x00100010] == "PN" and table.get(0x7FE00010) == "OB or OW"
    first, last = min(whole), max(whole)
    assert table.get(first) == whole[first] and table.get(last) == whole[last]
    for absent in (0x00100011, first - 1, last + 1, 0xFFFFFFFF, -1, 1 << 32):
        assert table.get(absent) is None and table.get(absent, "UN") == "UN"
        assert table.get(absent, "UN") == "UN"  # the remembered miss gives the default too
        with pytest.raises(KeyError):
            table[absent]
    assert table.get(0x00100010) == table.get(0x00100010) == "PN"  # remembered hit


def test_public_vr_table_refuses_mismatched_text() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        dictionary._SortedVRs("00100010", "AB", public_vrs.VRS)


def test_records_behave_as_named_tuples() -> None:
    # option records are built by streamconv/_records.py at run time: what typing.NamedTuple
    # would give for the same class statement (mypy checks against typing.NamedTuple)
    import collections
    import copy
    import pickle

    from streamconv.options import ConvertOptions, HttpAuth, Limits

    make: Any = collections.namedtuple  # the reference, under the same class name
    reference = make(
        "Limits",
        "max_depth max_elements max_value_bytes max_dataset_bytes max_input_bytes",
        defaults=(64, 1_000_000, 4 << 30, 16 << 30, 0),
    )
    for args, kwargs in (((), {}), ((3,), {}), ((1, 2), {"max_input_bytes": 9})):
        ours, theirs = Limits(*args, **kwargs), reference(*args, **kwargs)
        assert tuple(ours) == tuple(theirs) and repr(ours) == repr(theirs)
        assert ours._asdict() == theirs._asdict()
    assert Limits._fields == reference._fields
    assert Limits._field_defaults == reference._field_defaults
    assert Limits().max_depth == 64 and Limits(max_depth=3)[0] == 3
    assert Limits._make(range(5)) == (0, 1, 2, 3, 4)
    assert Limits()._replace(max_elements=7).max_elements == 7
    untyped: Any = Limits  # calls a type checker would refuse
    refused: list[Callable[[], object]] = [
        lambda: untyped(1, 2, 3, 4, 5, 6),
        lambda: untyped(1, max_depth=2),
        lambda: untyped(depth=2),
        lambda: untyped._make(range(4)),
        lambda: cast(Any, HttpAuth)("https://x/"),
    ]
    for bad in refused:
        with pytest.raises(TypeError):
            bad()
    with pytest.raises(ValueError, match="unexpected field names"):
        untyped()._replace(depth=1)
    with pytest.raises(AttributeError):
        Limits().max_depth = 1  # type: ignore[misc]
    o = ConvertOptions(array_select=2, limits=Limits(max_depth=3))
    assert pickle.loads(pickle.dumps(o)) == o == copy.deepcopy(o)
    assert type(pickle.loads(pickle.dumps(o))) is ConvertOptions
    assert repr(HttpAuth("https://x/", "Authorization", "secret")).endswith("'***')")


def test_option_enums_behave_as_enums() -> None:
    import copy
    import pickle

    from streamconv.options import ArrayPolicy, TransferSyntax

    assert [m.name for m in TransferSyntax] == ["SAME", "LITTLE", "BIG", "IMPLICIT", "DEFLATED"]
    assert TransferSyntax("1.2.840.10008.1.2.2") is TransferSyntax.BIG is TransferSyntax["BIG"]
    assert TransferSyntax.BIG.value == "1.2.840.10008.1.2.2" and len(TransferSyntax) == 5
    assert repr(ArrayPolicy.SPLIT) == "<ArrayPolicy.SPLIT: 'split'>"
    assert str(ArrayPolicy.SPLIT) == "ArrayPolicy.SPLIT"
    assert ArrayPolicy.SPLIT in ArrayPolicy and ArrayPolicy.SPLIT not in TransferSyntax
    assert (
        cast(object, ArrayPolicy.SPLIT) != "split"
        and {ArrayPolicy.SPLIT: 1}[ArrayPolicy("split")] == 1
    )
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(ArrayPolicy.SEQUENCE, protocol)) is ArrayPolicy.SEQUENCE
    assert copy.deepcopy(ArrayPolicy.SELECT) is ArrayPolicy.SELECT
    with pytest.raises(ValueError, match="'nope' is not a valid ArrayPolicy"):
        ArrayPolicy("nope")
    with pytest.raises(KeyError):
        ArrayPolicy["NOPE"]
    with pytest.raises(AttributeError):
        setattr(ArrayPolicy, "SPLIT", ArrayPolicy.SELECT)  # noqa: B010 (a member is fixed)


TRAILING_CASES = [
    b'{"a": [1, 2, ], "b": {"c": 1,\n\t}}',
    b'{"a": [1, 2], "b": {"c": 1}}',
    b"[,]",
    b", ]",
    b",\r\n}",
    b"],",
    b'"x, ]"',  # inside a string: a candidate all the same (the substitution tells them apart)
    b"",
    b",",
    b",\x0b]",  # vertical tab: no JSON whitespace
]


@pytest.mark.parametrize("segment", TRAILING_CASES)
def test_trailing_comma_candidate_without_re(segment: bytes) -> None:
    from streamconv.core import documents

    expected = documents._CANDIDATE.search(segment) is not None
    assert documents._squeezed_candidate(segment) is expected
    assert documents._trailing_comma_candidate(segment) is expected


@pytest.mark.parametrize(
    "segment",
    [b"-0", b"[-0]", b"-0.5", b"1-0", b"-0e1", b"-01", b"[-0,-0.0]", b"x-0 ", b"--0", b"-0-0", b""],
)
def test_negative_zero_look_without_re(segment: bytes) -> None:
    from streamconv.core import spelling

    found = any(
        m.start() == 0 or segment[m.start() - 1] not in spelling.NUMBER_CHARS
        for m in re.finditer(rb"-0(?![0-9.eE])", segment)
    )
    assert spelling.has_negative_zero(segment) is found


def test_whitespace_look_without_re() -> None:
    from streamconv.core.fused import has_space

    space = re.compile(r"\s")
    for code in range(0x3100):
        for text in (chr(code), f"1.2{chr(code)}3", f"{chr(code)}1.2.840"):
            assert has_space(text) is (space.search(text) is not None), hex(code)


def test_tag_key_look_without_re() -> None:
    # build._key_tag: exactly 8 hex digits (what [0-9A-Fa-f]{8}\Z matched), else an error
    from streamconv.core import build

    for key in ("00100010", "7fe00010", "0010001", "001000100", "0010 010", "0x100010", "+0100010"):
        expected = int(key, 16) if re.fullmatch(r"[0-9A-Fa-f]{8}", key) else None
        assert build._key_tag(key) == expected, key
