"""The fused build+encode path (issue 11 §3): elements built with their Explicit VR Little
Endian encoding (PreEncoded) write the same bytes as the element-by-element encoder, under
every transfer syntax and the -u/+e/-e options.

Expected bytes come from the same dataset built without fusing (the encoder of every other
element), and for a few elements from PS3.5 7.1.2 directly.
"""

from __future__ import annotations

import struct

import pytest

from streamconv.args import build_options, parse_args
from streamconv.core.build import BuildContext, build_dataset
from streamconv.core.documents import DocumentParser
from streamconv.core.encode import encode_part10, iter_bytes
from streamconv.core.transform import apply_charset
from streamconv.core.vr import PreEncoded
from streamconv.errors import Problems

DOC = b"""{
 "00080005": {"vr": "CS", "Value": ["ISO_IR 100"]},
 "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
 "00080018": {"vr": "UI", "Value": ["1.2.3.4.5"]},
 "00080060": {"vr": "CS", "Value": ["CT"]},
 "00080070": {"vr": "LO", "Value": ["Odd"]},
 "00081030": {"vr": "LO", "Value": ["M\xc3\xbcller study"]},
 "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]},
 "00100020": {"vr": "LO", "Value": ["id  "]},
 "00180050": {"vr": "DS", "Value": [1.25]},
 "00200013": {"vr": "IS", "Value": [7]},
 "00200032": {"vr": "DS", "Value": [-125.0, 1e-06, -0]},
 "00204000": {"vr": "LT", "Value": ["a\\\\b"]},
 "00280010": {"vr": "US", "Value": [512]},
 "00280106": {"vr": "SS", "Value": [-1000, 3]},
 "00189089": {"vr": "FD", "Value": [0.5]},
 "00181030": {"vr": "LO", "Value": [""]},
 "00209241": {"vr": "FL", "Value": [1.5]},
 "00081140": {"vr": "SQ", "Value": [{"00081150": {"vr": "UI", "Value": ["1.2.3"]}}]},
 "00091010": {"vr": "UN", "InlineBinary": "AQID"},
 "00187050": {"vr": "UT", "Value": ["long text"]},
 "00189088": {"vr": "SV", "Value": [-5]}
}"""

TS_OPTIONS = [(), ("+te",), ("+ti",), ("+tb",), ("+td",), ("-u",), ("-e",), ("+ti", "-u")]


def convert(opts: tuple[str, ...], fuse: bool | None) -> tuple[bytes, int]:
    """The Part 10 bytes, and how many top-level elements were PreEncoded (``fuse`` None:
    as the build context decides for these options)."""
    options = build_options(parse_args([*opts, "in.json", "out.dcm"]))
    parser = DocumentParser()  # with the pre-pass, as every front end (-0 keeps its sign)
    raw = (parser.feed(DOC) + parser.finish())[0]
    ctx = BuildContext(options, Problems(strict=True))
    if fuse is not None:
        ctx.fuse = fuse
    built = build_dataset(raw.value, ctx)
    fused = sum(type(e) is PreEncoded for e in built.dataset.values())
    apply_charset(built.dataset, options)
    enc = encode_part10(built.dataset, built.meta, options)
    return b"".join(iter_bytes(enc)), fused


@pytest.mark.parametrize("opts", TS_OPTIONS, ids=lambda o: " ".join(o) or "default")
def test_fused_bytes_equal_the_encoder(opts: tuple[str, ...]) -> None:
    chosen, n_chosen = convert(opts, fuse=None)
    fused, n_fused = convert(opts, fuse=True)
    plain, n_plain = convert(opts, fuse=False)
    assert n_plain == 0 and n_fused >= 12
    # not built for a transfer syntax that cannot use them; ignored if they are
    assert n_chosen == (0 if "+ti" in opts or "+tb" in opts else n_fused)
    assert chosen == fused == plain


def test_fused_pieces_follow_ps3_5() -> None:
    # PS3.5 7.1.2: tag, VR, 2-byte length; odd text padded with a space, UI with a NUL
    data, _ = convert(("-F",), fuse=True)
    assert b"\x08\x00\x70\x00LO\x04\x00Odd " in data
    assert b"\x08\x00\x18\x00UI\x0a\x001.2.3.4.5\x00" in data
    assert struct.pack("<HH2sHhh", 0x0028, 0x0106, b"SS", 4, -1000, 3) in data
    assert b"\x20\x00\x32\x00DS\x10\x00-125.0\\1e-06\\-0 " in data
