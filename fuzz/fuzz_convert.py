"""Coverage-guided fuzz target: DICOM JSON bytes -> Converter -> Part 10 (atheris/libFuzzer).

    python fuzz/fuzz_convert.py -dict=fuzz/dicom-json.dict fuzz/corpus/convert  [libFuzzer flags]

See fuzz/README for the seed corpus, the invariant and a long campaign.
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports(include=["streamconv"]):
    pass

from harness import Sandbox, run_convert

_BOX: Sandbox | None = None


def test_one_input(data: bytes) -> None:
    global _BOX
    if _BOX is None:
        _BOX = Sandbox.create(os.environ.get("STREAMCONV_FUZZ_TMP"))
    run_convert(data, _BOX)


def main() -> None:
    import logging

    logging.disable(logging.CRITICAL)  # warnings of +E inputs would flood the terminal
    atheris.Setup(sys.argv, test_one_input)
    try:
        atheris.Fuzz()
    finally:
        if _BOX is not None:
            _BOX.remove()


if __name__ == "__main__":
    main()
