"""Coverage-guided fuzz target: json2dcm argv -> parse_args + build_options (atheris/libFuzzer).

    python fuzz/fuzz_options.py fuzz/corpus/options  [libFuzzer flags]

An input is the argv words joined by NUL bytes.  Any argv must end in options or a
UsageError (exit 1) with a message: never another exception, never a hang.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

with atheris.instrument_imports(include=["streamconv"]):
    pass

from harness import check_options

_CWD = ""


def test_one_input(data: bytes) -> None:
    check_options(data, _CWD)


def main() -> None:
    global _CWD
    # a sandbox working directory: relative +Bd and @command-file names resolve here
    _CWD = tempfile.mkdtemp(
        prefix="streamconv-fuzz-opts-", dir=os.environ.get("STREAMCONV_FUZZ_TMP")
    )
    atexit.register(shutil.rmtree, _CWD, True)
    os.makedirs(os.path.join(_CWD, "bulk"))
    with open(os.path.join(_CWD, "cmdfile"), "w") as f:
        f.write("+E '+Bd' \"bulk\" +as 2\n")
    os.chdir(_CWD)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
