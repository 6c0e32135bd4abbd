"""Start-up (issue 11): what a one-shot conversion imports, and that the faster paths write
the same bytes.

No timing here (bench/bench_startup.py measures); these tests pin the facts the figures rest
on: single-byte character sets are encoded without pydicom (whose import pulls in numpy and
the pixel handlers), with the bytes pydicom's own encoder gives.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from streamconv.core.transform import _PYTHON_CODECS, _encoder_for
from streamconv.errors import CharsetError

# one sample per set, in its script (PS3.3 C.12.1.1.2 Table C.12-2; GB18030/GBK C.12-4)
SAMPLES = {
    "ISO_IR 6": "Doe^John",
    "ISO_IR 100": "Müller^Jürgen",
    "ISO_IR 101": "Dvořák^Řehoř",
    "ISO_IR 109": "Ħal^Ġużeppi",
    "ISO_IR 110": "Ųžė^Ąčė",
    "ISO_IR 144": "Люкceмбypг^Иван",
    "ISO_IR 127": "قباني^لنزار",
    "ISO_IR 126": "Διονυσιος^Γιαννης",
    "ISO_IR 138": "שרון^דבורה",
    "ISO_IR 148": "Çelik^Gülşen",
    "ISO_IR 166": "ประเทศไทย^ไทย",
    "GB18030": "王^小东",
    "GBK": "王^小东",
}


@pytest.mark.parametrize("term", sorted(SAMPLES))
def test_own_codecs_match_pydicom(term: str) -> None:
    from pydicom import charset

    expected = charset.encode_string(SAMPLES[term], [term])
    assert _encoder_for([term], "(0008,0005)")(SAMPLES[term], "PN") == expected
    assert term in _PYTHON_CODECS


def test_latin9_is_iso_8859_15() -> None:
    # ISO_IR 203 (absent from pydicom's table): the euro sign is A4 in ISO 8859-15
    assert _encoder_for(["ISO_IR 203"], "(0008,0005)")("€uro", "LO") == b"\xa4uro"


def test_own_codec_refuses_unrepresentable_text() -> None:
    with pytest.raises(CharsetError, match=r"'Ł' \(U\+0141\) cannot be represented"):
        _encoder_for(["ISO_IR 100"], "(0008,0005)")("Łukasz", "PN")


def test_latin1_header_imports_no_pydicom(tmp_path: Path) -> None:
    # one CT header with a Latin-1 name, converted in a fresh interpreter: neither pydicom
    # nor numpy is imported, and the name is written in ISO 8859-1
    doc = json.loads((Path(__file__).parent.parent / "examples" / "ct.json").read_text())
    doc["00100010"] = {"vr": "PN", "Value": [{"Alphabetic": "Müller^Jürgen"}]}
    src, out = tmp_path / "ct.json", tmp_path / "ct.dcm"
    src.write_text(json.dumps(doc), encoding="utf-8")
    code = (
        "import sys\n"
        "from streamconv.cli import main\n"
        f"rc = main([{str(src)!r}, {str(out)!r}])\n"
        "print(rc, sorted(m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('pydicom', 'numpy')))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.split("\n")[0] == "0 []", run.stderr
    name = "Müller^Jürgen".encode("latin-1")  # 13 bytes, padded with a space (PS3.5 6.2)
    assert b"\x10\x00\x10\x00PN\x0e\x00" + name + b" " in out.read_bytes()
