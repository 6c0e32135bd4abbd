"""The json2dcm option vocabulary: DCMTK's command line (json2dcm 3.7.0 manual page) -> options.

DCMTK's syntax (dcmtk-behavior §1.3): options start with '+' or '-' and have at least two
characters, an argument whose second character is a digit is a parameter, options and
parameters mix freely, the rightmost option of a family wins, an option value is the next
argument verbatim, ``@file`` expands to the file's whitespace-separated words.

One table (:data:`OPTIONS`) shared by every front end: ``json2dcm``, ``streamconv stream``,
``watch`` options strings and ``batch`` parse the same words into the same
:class:`~streamconv.options.ConvertOptions`.
"""

from __future__ import annotations

import os
import stat

from .errors import UsageError
from .options import (
    ArrayPolicy,
    ConvertOptions,
    HttpSettings,
    Limits,
    NamedTuple,
    TransferSyntax,
    WriteMode,
)

__all__ = [
    "OPTIONS",
    "PROG",
    "ParsedArgs",
    "build_options",
    "expand_command_files",
    "log_config",
    "log_level",
    "parse_args",
    "split_command_file",
    "usage",
]

PROG = "json2dcm"


class Opt(NamedTuple):
    short: str
    long: str
    family: str  # dest written; the rightmost of a family wins
    value: object = None  # value stored (flags)
    arg: str = ""  # name of the argument it takes ("" = none)
    help: str = ""
    aliases: tuple[str, ...] = ()


OPTIONS: tuple[Opt, ...] = (
    Opt("-h", "--help", "help", True, help="print this help text and exit"),
    Opt("", "--version", "version", True, help="print version information and exit"),
    Opt("", "--arguments", "arguments", True, help="print expanded command line arguments"),
    Opt("-q", "--quiet", "log", "quiet", help="quiet mode, print no warnings and errors"),
    Opt("-v", "--verbose", "log", "verbose", help="verbose mode, print processing details"),
    Opt("-d", "--debug", "log", "debug", help="debug mode, print debug information"),
    Opt("-ll", "--log-level", "log_level", arg="[l]evel: string constant",
        help="(fatal, error, warn, info, debug, trace)\nuse level l for the logger"),
    Opt("-lc", "--log-config", "log_config", arg="[f]ilename: string", help="use config file f for the logger"),
    Opt("+f", "--read-meta-info", "read_meta", True, help="read meta information if present (default)"),
    Opt("-f", "--ignore-meta-info", "read_meta", False, help="ignore file meta information"),
    Opt("+Ug", "--generate-new-uids", "generate_uids", True, help="generate new Study/Series/SOP Instance UID"),
    Opt("-Uo", "--dont-overwrite-uids", "overwrite_uids", False, help="do not overwrite existing UIDs (default)"),
    Opt("+Uo", "--overwrite-uids", "overwrite_uids", True, help="overwrite existing UIDs"),
    Opt("+Bu", "--parse-bulkdata-uri", "parse_bulkdata", True, help="parse Bulkdata URIs (default)"),
    Opt("-Bu", "--ignore-bulkdata-uri", "parse_bulkdata", False, help="ignore Bulkdata URIs"),
    Opt("+Bd", "--add-bulkdata-dir", "bulkdata_dirs", arg="[d]irectory: string",
        help="add d to list of permitted bulk data sources"),
    Opt("+Bh", "--add-bulkdata-url", "bulkdata_urls", arg="[u]rl: string",
        help="permit http(s) bulk data and input under URL (streamconv)"),
    Opt("", "--bulkdata-rewrite", "bulkdata_rewrites", arg="[r]ule: FROM=TO",
        help="replace the BulkDataURI prefix FROM by TO (streamconv)"),
    Opt("", "--http-header-file", "http_header_files", arg="URL=FILE",
        help="send the header line in FILE to URLs under URL (streamconv)"),
    Opt("", "--http-header-env", "http_header_envs", arg="URL=VAR",
        help="send the header line in variable VAR to URLs under URL (streamconv)"),
    Opt("", "--http-basic-file", "http_basic_files", arg="URL=FILE",
        help="basic authentication, user:password in FILE, for URLs under URL (streamconv)"),
    Opt("", "--http-netrc", "http_netrc", True,
        help="credentials from $NETRC or ~/.netrc for permitted URLs (streamconv)"),
    Opt("", "--http-ca-bundle", "http_ca_bundle", arg="[f]ilename: string",
        help="verify TLS servers with the CA certificates in f (streamconv)"),
    Opt("", "--http-timeout", "http_timeout", arg="[s]econds: number (default: 60)",
        help="connect and read timeout of http(s) requests (streamconv)"),
    Opt("", "--http-retries", "http_retries", arg="[n]: integer (default: 4)",
        help="retries after a timeout, 429 or 5xx answer (streamconv)"),
    Opt("", "--fetch-frames", "fetch_frames", True,
        help="fetch the frames of images whose metadata has no pixel data (streamconv)"),
    Opt("", "--require-pixel-data", "require_pixel_data", True,
        help="an image without pixel data is an error (streamconv)"),
    Opt("-ar", "--array-reject", "array", "reject", help="reject multiple data sets (default)"),
    Opt("+as", "--array-select", "array", "select", arg="[n]umber: integer", help="select data set n from array"),
    Opt("+ar", "--array-sequence", "array", "sequence", help="store all data sets in private sequence"),
    Opt("+aS", "--array-split", "array", "split",
        help="write one file per data set into the directory dcmfile-out (streamconv)"),
    Opt("", "--filename-template", "filename_template", arg="[t]emplate: string",
        help="file names for --array-split (default: {index:06d}.dcm;\nDICOM keywords like {SOPInstanceUID} allowed)"),
    Opt("", "--resume", "resume", True,
        help="--array-split: skip data sets whose output file exists\n(a rerun after an interrupted run; streamconv)"),
    Opt("+F", "--write-file", "write_mode", "file", help="write file format (default)"),
    Opt("-F", "--write-dataset", "write_mode", "dataset", help="write data set without file meta information"),
    Opt("+Fu", "--update-meta-info", "update_meta", True, help="update particular file meta information"),
    Opt("+t=", "--write-xfer-same", "xfer", "same", help="write with same TS as input (default)"),
    Opt("+te", "--write-xfer-little", "xfer", "little", help="write with explicit VR little endian TS"),
    Opt("+tb", "--write-xfer-big", "xfer", "big", help="write with explicit VR big endian TS"),
    Opt("+ti", "--write-xfer-implicit", "xfer", "implicit", help="write with implicit VR little endian TS"),
    Opt("+td", "--write-xfer-deflated", "xfer", "deflated", help="write with deflated explicit VR little endian TS"),
    Opt("-E", "--stop-on-error", "stop_on_error", True, help="do not write if document is invalid (default)"),
    Opt("+E", "--ignore-errors", "stop_on_error", False, help="attempt to write even if document is invalid"),
    Opt("+u", "--enable-new-vr", "new_vr", True, help="enable support for new VRs (UN/UT) (default)"),
    Opt("-u", "--disable-new-vr", "new_vr", False, help="disable support for new VRs, convert to OB"),
    Opt("+e", "--length-explicit", "explicit_length", True, help="write with explicit lengths (default)"),
    Opt("-e", "--length-undefined", "explicit_length", False, help="write with undefined lengths"),
    Opt("+c", "--charset-accept", "charset_utf8", False, help="write with the given charset in JSON (default)",
        aliases=("--charset-convert",)),
    Opt("-c", "--charset-replace", "charset_utf8", True, help="replace the given charset in JSON with UTF-8",
        aliases=("--charset-utf8",)),
    Opt("+cl", "--compression-level", "compression_level", arg="[l]evel: integer (default: 6)",
        help="0=uncompressed, 1=fastest, 9=best compression"),
    Opt("", "--max-depth", "max_depth", arg="[n]: integer (default: 64)",
        help="limit: nested sequence levels (streamconv)"),
    Opt("", "--max-elements", "max_elements", arg="[n]: integer (default: 1000000)",
        help="limit: elements in one data set (streamconv)"),
    Opt("", "--max-value-bytes", "max_value_bytes", arg="[n]: integer (default: 4 GiB)",
        help="limit: bytes of one decoded value (streamconv)"),
    Opt("", "--max-dataset-bytes", "max_dataset_bytes", arg="[n]: integer (default: 16 GiB)",
        help="limit: decoded bytes of one data set (streamconv)"),
    Opt("", "--max-input-bytes", "max_input_bytes", arg="[n]: integer (default: 0 = none)",
        help="limit: bytes of JSON input (streamconv)"),
)  # fmt: skip

_BY_NAME: dict[str, Opt] = {}
for _o in OPTIONS:
    for _n in (_o.short, _o.long, *_o.aliases):
        if _n:
            _BY_NAME[_n] = _o

_SECTIONS = (
    ("general options", ("-h", "--version", "--arguments", "-q", "-v", "-d", "-ll", "-lc")),
    ("input options", ("+f", "-f")),
    ("processing options", ("+Ug", "-Uo", "+Uo", "+Bu", "-Bu", "+Bd", "-ar", "+as", "+ar", "+aS",
                            "--filename-template", "--resume")),
    ("DICOMweb (streamconv)", ("+Bh", "--bulkdata-rewrite", "--http-header-file", "--http-header-env",
                               "--http-basic-file", "--http-netrc", "--http-ca-bundle",
                               "--http-timeout", "--http-retries", "--fetch-frames",
                               "--require-pixel-data")),
    ("output options", ("+F", "-F", "+Fu", "+t=", "+te", "+tb", "+ti", "+td", "-E", "+E", "+u", "-u",
                        "+e", "-e", "+c", "-c", "+cl")),
    ("limits (streamconv)", ("--max-depth", "--max-elements", "--max-value-bytes", "--max-dataset-bytes",
                             "--max-input-bytes")),
)  # fmt: skip


def usage() -> str:
    lines = [
        f"{PROG}: Convert JSON document to DICOM file or data set",
        f"usage: {PROG} [options] jsonfile-in dcmfile-out",
        "",
        "parameters:",
        '  jsonfile-in   JSON input filename to be converted ("-" for stdin)',
        "",
        '  dcmfile-out   DICOM output filename ("-" for stdout)',
    ]
    for title, names in _SECTIONS:
        lines += ["", f"{title}:"]
        for name in names:
            o = _BY_NAME[name]
            left = f"  {o.short:<4} {o.long}" if o.short else f"       {o.long}"
            if o.arg:
                left += f"  {o.arg}"
            lines.append(left)
            for h in o.help.split("\n"):
                lines.append(f"         {h}")
    return "\n".join(lines) + "\n"


class ParsedArgs:
    __slots__ = ("bulkdata_dirs", "expanded", "order", "params", "values")

    def __init__(
        self,
        values: dict[str, object] | None = None,
        order: dict[str, int] | None = None,
        bulkdata_dirs: list[str] | None = None,
        params: list[str] | None = None,
        expanded: list[str] | None = None,
    ) -> None:
        self.values: dict[str, object] = {} if values is None else values
        self.order: dict[str, int] = {} if order is None else order
        self.bulkdata_dirs: list[str] = [] if bulkdata_dirs is None else bulkdata_dirs
        self.params: list[str] = [] if params is None else params
        self.expanded: list[str] = [] if expanded is None else expanded


def _is_option(arg: str) -> bool:
    return len(arg) >= 2 and arg[0] in "+-" and not arg[1].isdigit()


def split_command_file(text: str) -> list[str]:
    """DCMTK's command file words: whitespace separates, single or double quotes group,
    no escapes (a backslash is an ordinary character; dcmtk-behavior §1.3)."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    started = False  # a word has begun (also an empty quoted one)
    for c in text:
        if quote:
            if c == quote:
                quote = ""
            else:
                word.append(c)
        elif c in "'\"":
            quote, started = c, True
        elif c.isspace():
            if started:
                words.append("".join(word))
                word, started = [], False
        else:
            word.append(c)
            started = True
    if started:
        words.append("".join(word))
    return words


_COMMAND_FILE_MAX = 1 << 20


def _read_command_file(name: str) -> str:
    """A command file's text: a regular file of at most 1 MiB, UTF-8 (``@/dev/zero`` or a
    FIFO would otherwise never finish reading)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):
        raise UsageError(f"Cannot open command file '{name}'") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"Cannot open command file '{name}' (not a regular file)")
        if st.st_size > _COMMAND_FILE_MAX:
            raise UsageError(f"Command file '{name}' is larger than {_COMMAND_FILE_MAX} bytes")
        data = os.read(fd, _COMMAND_FILE_MAX + 1)
    except OSError:
        raise UsageError(f"Cannot open command file '{name}'") from None
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"Command file '{name}' is not valid UTF-8") from None


def expand_command_files(argv: list[str]) -> list[str]:
    out: list[str] = []
    for arg in argv:
        if len(arg) > 1 and arg.startswith("@"):
            name = arg[1:]
            out += split_command_file(_read_command_file(name))
        else:
            out.append(arg)
    return out


def parse_args(argv: list[str]) -> ParsedArgs:
    """DCMTK-style parse: returns raw values per family (rightmost wins)."""
    p = ParsedArgs()
    args = expand_command_files(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not _is_option(arg):
            p.params.append(arg)
            p.expanded.append(arg)
            continue
        opt = _BY_NAME.get(arg)
        if opt is None:
            raise UsageError(f"Unknown option {arg}")
        value: object = opt.value
        p.expanded.append(opt.long)
        if opt.arg:
            if i >= len(args):
                raise UsageError(f"Missing value for option {opt.long}")
            value = args[i]
            p.expanded.append(args[i])
            i += 1
            if opt.family == "array":  # +as n
                p.values["array_select"] = value
                value = "select"
        if opt.family == "bulkdata_dirs":
            p.bulkdata_dirs.append(str(value))
            continue
        if opt.family in REPEATABLE:
            listed = p.values.setdefault(opt.family, [])
            assert isinstance(listed, list)
            listed.append(str(value))
            p.order[opt.family] = len(p.expanded)
            continue
        p.values[opt.family] = value
        p.order[opt.family] = len(p.expanded)
    return p


# option families that collect every occurrence (a list in ParsedArgs.values)
REPEATABLE = frozenset(
    {
        "bulkdata_urls",
        "bulkdata_rewrites",
        "http_header_files",
        "http_header_envs",
        "http_basic_files",
    }
)
_HTTP_FAMILIES = (
    *sorted(REPEATABLE),
    "http_netrc",
    "http_ca_bundle",
    "http_timeout",
    "http_retries",
    "fetch_frames",
    "require_pixel_data",
)


def _int_option(text: object, name: str, lo: int, hi: int | None) -> int:
    try:
        n = int(str(text), 10)
    except ValueError:
        raise UsageError(f"Invalid value for option {name} (not a number: {text})") from None
    if n < lo or (hi is not None and n > hi):
        kind = "underflow" if n < lo else "overflow"
        raise UsageError(f"Invalid value for option {name} ({kind}: {n})")
    return n


def build_options(p: ParsedArgs) -> ConvertOptions:
    """Check option conflicts (exit 1) and build the frozen options, once."""
    v = p.values
    if "overwrite_uids" in v and not v.get("generate_uids"):
        name = "--overwrite-uids" if v["overwrite_uids"] else "--dont-overwrite-uids"
        raise UsageError(f"{name} only allowed with --generate-new-uids")
    if v.get("update_meta") and v.get("write_mode") == "dataset":
        raise UsageError("--update-meta-info not allowed with --write-dataset")
    xfer = str(v.get("xfer", "same"))
    level = 6
    if "compression_level" in v:
        if xfer != "deflated":
            raise UsageError("--compression-level only allowed with --write-xfer-deflated")
        level = _int_option(v["compression_level"], "--compression-level", 0, 9)
    array = str(v.get("array", "reject"))
    select = 0
    if array == "select":
        select = _int_option(v.get("array_select"), "--array-select", 1, None)
    limits = Limits()
    limit_values = {}
    for key in (
        "max_depth",
        "max_elements",
        "max_value_bytes",
        "max_dataset_bytes",
        "max_input_bytes",
    ):
        if key in v:
            limit_values[key] = _int_option(v[key], "--" + key.replace("_", "-"), 0, None)
    if limit_values:
        limits = Limits(**limit_values)
    from .core.bulkdata import permitted_dirs

    try:
        dirs = permitted_dirs(p.bulkdata_dirs)
    except ValueError as exc:
        error = UsageError(str(exc))
        error.with_usage_header = False
        raise error from None
    template = str(v.get("filename_template", "{index:06d}.dcm"))
    http = HttpSettings()
    if any(k in v for k in _HTTP_FAMILIES):
        from .httpargs import http_settings  # only when an http option is given (start-up)

        http = http_settings(v)
    return ConvertOptions(
        read_meta=bool(v.get("read_meta", True)),
        generate_uids=bool(v.get("generate_uids", False)),
        overwrite_uids=bool(v.get("overwrite_uids", False)),
        parse_bulkdata=bool(v.get("parse_bulkdata", True)),
        bulkdata_dirs=dirs,
        array_policy=ArrayPolicy(array),
        array_select=select,
        write_mode=WriteMode(str(v.get("write_mode", "file"))),
        update_meta=bool(v.get("update_meta", False)),
        transfer_syntax={
            "same": TransferSyntax.SAME,
            "little": TransferSyntax.LITTLE,
            "big": TransferSyntax.BIG,
            "implicit": TransferSyntax.IMPLICIT,
            "deflated": TransferSyntax.DEFLATED,
        }[xfer],
        stop_on_error=bool(v.get("stop_on_error", True)),
        enable_new_vr=bool(v.get("new_vr", True)),
        explicit_length=bool(v.get("explicit_length", True)),
        charset_utf8=bool(v.get("charset_utf8", False)),
        compression_level=level,
        filename_template=template,
        limits=limits,
        http=http,
    )


def log_config(p: ParsedArgs) -> str | None:
    """The -lc file, if one was given (every front end hands it to ``setup_logging``)."""
    return str(p.values["log_config"]) if "log_config" in p.values else None


def log_level(p: ParsedArgs) -> str:
    v = p.values
    if "log_level" in v and ("log" in v or "log_config" in v):
        raise UsageError("--log-level not allowed with --verbose, --debug or --quiet")
    if "log_config" in v and "log" in v:
        raise UsageError("--log-config not allowed with --verbose, --debug or --quiet")
    if "log_level" in v:
        level = str(v["log_level"])
        if level not in ("fatal", "error", "warn", "info", "debug", "trace"):
            raise UsageError("Invalid log level for --log-level option")
        return level
    return {"quiet": "fatal", "verbose": "info", "debug": "debug"}.get(
        str(v.get("log", "")), "warn"
    )
