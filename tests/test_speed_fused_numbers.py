"""One-number elements fused in one step (build._build_items -> fused.fused_number) write
the same bytes, warnings and errors as the element-by-element path, at every edge where the
general path rewrites, warns or fails (issue 11 §3; numbers keep their spelling, CONTRACT §7).

Expected bytes come from the same dataset built without fusing, and for a few elements from
PS3.5 7.1.2 and 6.2 directly.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from streamconv.args import build_options, parse_args
from streamconv.core import build, fused
from streamconv.core.build import BuildContext, build_dataset
from streamconv.core.documents import DocumentParser
from streamconv.core.encode import encode_part10, iter_bytes
from streamconv.core.transform import apply_charset
from streamconv.core.vr import PreEncoded
from streamconv.errors import Problems, StreamconvError

# (tag, VR, the JSON number as written)
CASES = [
    ("00180050", "DS", "1.25"),
    ("00180050", "DS", "1e-06"),
    ("00180050", "DS", "1.000000e01"),
    ("00180050", "DS", "2.5E+3"),
    ("00180050", "DS", "-0"),
    ("00180050", "DS", "-0.0"),
    ("00180050", "DS", "7"),
    ("00180050", "DS", "1.23456789012e-6"),  # 16 characters: kept, no warning
    ("00180050", "DS", "1.234567890123e-6"),  # 17: the general path rewrites it
    ("00180050", "DS", "12345678901234567"),  # an integer of 17 digits
    ("00180050", "DS", "0.00000000000000001"),
    ("00200013", "IS", "7"),
    ("00200013", "IS", "-2147483648"),
    ("00200013", "IS", "2147483647"),
    ("00200013", "IS", "2147483648"),  # out of IS range: error under -E, warning under +E
    ("00200013", "IS", "1e2"),  # IS given a number with an exponent
    ("00200013", "IS", "3.0"),
    ("00200013", "IS", "-0"),
    ("00280010", "US", "512"),
    ("00280010", "US", "0"),
    ("00280010", "US", "65535"),
    ("00280010", "US", "65536"),
    ("00280010", "US", "-1"),
    ("00280010", "US", "5.0"),
    ("00280106", "SS", "-32768"),
    ("00280106", "SS", "-32769"),
    ("00181063", "DS", "33.3"),
    ("00189089", "FD", "0.5"),
    ("00189089", "FD", "-0"),
    ("00189089", "FD", "1e400"),
    ("00189089", "FD", "9007199254740993"),  # above 2^53: not exact as a double
    ("00189089", "FD", "123456789012345678901234567890"),
    ("00209241", "FL", "1.5"),
    ("00209241", "FL", "3.4028235e38"),  # FLT_MAX's shortest decimal
    ("00209241", "FL", "3.5e38"),
    ("00209241", "FL", "7"),
    ("00186020", "SL", "-2147483648"),
    ("00186020", "SL", "2147483648"),
    ("00280002", "US", "1"),
    ("00081160", "IS", "12"),
    ("00080000", "UL", "5"),  # a group length: dropped on both paths
    ("00186018", "UL", "4294967295"),
    ("00186018", "UL", "4294967296"),
    # several values: DS and IS joined with backslashes (PS3.5 6.4), each as written
    ("00200032", "DS", "-125.0, 1e-06, -0"),
    ("00200037", "DS", "1, 0, 0, 0, 1, 0"),
    ("00280030", "DS", "1.23456789012e-6, 1.234567890123e-6"),  # the second is rewritten
    ("00280030", "DS", '0.5, "0.5"'),  # a string among the numbers
    ("00280030", "DS", "0.5, null"),
    ("00280030", "DS", "0.5, true"),
    ("00280034", "IS", "1, 2"),
    ("00280034", "IS", "1, 2147483648"),
    ("00201041", "IS", "1, 2"),  # the dictionary says DS: a warning, never fused
    ("00280106", "SS", "-1000, 3"),  # binary VRs with several values: the general path
    ("00189089", "FD", "0.5, 0.25"),
]


def _doc(tag: str, vr: str, number: str) -> bytes:
    element = f'"{tag}": {{"vr": "{vr}", "Value": [{number}]}}'
    # the element twice over: in an item first (the dictionary's VR agreed there), then at
    # the top level, where the fused step takes it
    return (
        f'{{"00081140": {{"vr": "SQ", "Value": [{{{element}}}]}}, {element},'
        f' "00080016": {{"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]}},'
        f' "00080018": {{"vr": "UI", "Value": ["1.2.3.4"]}}}}'
    ).encode()


def convert(doc: bytes, fuse: bool, strict: bool) -> tuple[bytes | str, list[str], bool]:
    """The Part 10 bytes (or the error), the +E warnings, and whether the element was fused."""
    options = build_options(parse_args([*(() if strict else ("+E",)), "in.json", "out.dcm"]))
    parser = DocumentParser()  # with the pre-pass, as every front end (-0 keeps its sign)
    raw = (parser.feed(doc) + parser.finish())[0]
    problems = Problems(strict=strict)
    ctx = BuildContext(options, problems)
    ctx.fuse = fuse
    try:
        built = build_dataset(raw.value, ctx)
    except StreamconvError as exc:
        return f"{type(exc).__name__}: {exc}", problems.warnings, False
    fused = any(
        type(e) is PreEncoded and tag not in (0x00080016, 0x00080018, 0x00081140)
        for tag, e in built.dataset.items()
    )
    apply_charset(built.dataset, options)
    enc = encode_part10(built.dataset, built.meta, options)
    return b"".join(iter_bytes(enc)), problems.warnings, fused


@pytest.mark.parametrize("strict", [True, False], ids=["-E", "+E"])
@pytest.mark.parametrize(("tag", "vr", "number"), CASES, ids=lambda v: str(v))
def test_fused_number_equals_the_general_path(
    tag: str, vr: str, number: str, strict: bool, caplog: pytest.LogCaptureFixture
) -> None:
    doc = _doc(tag, vr, number)
    convert(doc, True, strict)  # the dictionary's VR known to agree, as after one dataset
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        fused = convert(doc, True, strict)
        fused_log = [r.getMessage() for r in caplog.records]
        caplog.clear()
        plain = convert(doc, False, strict)
        plain_log = [r.getMessage() for r in caplog.records]
    assert fused[:2] == plain[:2]
    assert fused_log == plain_log


@pytest.mark.parametrize(
    ("tag", "vr", "number", "piece"),
    [
        # PS3.5 7.1.2: tag (group, element little endian), VR, 2-byte length, value;
        # PS3.5 6.2: DS and IS padded to even length with a space, the spelling kept
        ("00180050", "DS", "1e-06", b"\x18\x00\x50\x00DS\x06\x001e-06 "),
        ("00180050", "DS", "-0", b"\x18\x00\x50\x00DS\x02\x00-0"),
        ("00200013", "IS", "7", b"\x20\x00\x13\x00IS\x02\x007 "),
        ("00280010", "US", "512", b"\x28\x00\x10\x00US\x02\x00\x00\x02"),
        ("00280106", "SS", "-2", b"\x28\x00\x06\x01SS\x02\x00\xfe\xff"),
        ("00189089", "FD", "0.5", b"\x18\x00\x89\x90FD\x08\x00" + b"\x00" * 6 + b"\xe0\x3f"),
        ("00209241", "FL", "1.5", b"\x20\x00\x41\x92FL\x04\x00\x00\x00\xc0\x3f"),
        ("00280030", "DS", "1.5, -0", b"\x28\x00\x30\x00DS\x06\x001.5\\-0"),
        ("00280034", "IS", "10, 2", b"\x28\x00\x34\x00IS\x04\x0010\\2"),
    ],
)
def test_fused_number_bytes_follow_ps3_5(
    tag: str, vr: str, number: str, piece: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = _doc(tag, vr, number)
    convert(doc, True, True)
    taken: list[int] = []

    def spy(tag: int, vr: str, values: list[Any], ctx: Any) -> Any:
        elem = fused.fused_number(tag, vr, values, ctx)
        if elem is not None:
            taken.append(tag)
        return elem

    monkeypatch.setattr(build, "fused_number", spy)
    monkeypatch.setattr(fused, "_RECENT", {})  # else the element built above is reused
    data, warnings, _ = convert(doc, True, True)
    assert int(tag, 16) in taken, "the fused step took the element"
    assert isinstance(data, bytes) and piece in data
    assert warnings == []
