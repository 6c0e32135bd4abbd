"""`streamconv`: the umbrella command (convert, stream, watch, batch)."""

from __future__ import annotations

import sys

from . import __version__

__all__ = ["main", "main_entry"]

USAGE = f"""streamconv {__version__}: DICOM JSON to DICOM Part 10

usage:
  streamconv convert [json2dcm options] jsonfile-in dcmfile-out
  streamconv stream --output-dir DIR [json2dcm options]      (stdin stream)
  streamconv watch INBOX --output-dir DIR [json2dcm options] (drop-folder daemon)
  streamconv watch --config FILE
  streamconv batch SOURCE... --output DEST [--report DEST] [--cluster ADDRESS] [--jobs N]
                   [json2dcm options]                        (many inputs, on Dask)

`streamconv convert` is the same as `json2dcm`; run `json2dcm -h` for its options.
"""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if args[0] == "--version":
        sys.stdout.write(f"streamconv {__version__}\n")
        return 0
    command, rest = args[0], args[1:]
    from .runtime import tune_gc

    tune_gc()
    if command == "convert":
        from .cli import main as convert_main

        return convert_main(rest)
    if command == "stream":
        from .stream import main as stream_main

        return stream_main(rest)
    if command == "watch":
        from .watch import main as watch_main

        return watch_main(rest)
    if command == "batch":
        from .batch.command import main as batch_main

        return batch_main(rest)
    sys.stderr.write(f"streamconv: unknown command '{command}'\n\n{USAGE}")
    return 1


def main_entry() -> None:
    raise SystemExit(main())
