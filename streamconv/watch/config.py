"""Configuration of ``streamconv watch``: the TOML file, the command line, and their checks.

Two ways in, one result (a frozen :class:`WatchConfig`):

- ``streamconv watch --config FILE``: the keys of ``examples/watch.toml`` (its header is the
  reference), one ``[[inbox]]`` table per folder, each with its json2dcm ``options`` string;
- ``streamconv watch INBOX --output-dir DIR [daemon options] [json2dcm options]``: one inbox.

json2dcm option words go through :func:`streamconv.cli.parse_args` and
:func:`streamconv.cli.build_options`, so they mean exactly what they mean for ``json2dcm``.
Every problem is a :class:`ConfigError` (exit code 1) that names the file, the inbox and the key.
"""

from __future__ import annotations

import enum
import fnmatch
import math
import os
import shlex
import string
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..args import ParsedArgs, build_options, expand_command_files, log_level, parse_args
from ..errors import UsageError
from ..options import ConvertOptions

__all__ = [
    "DAEMON_OPTIONS",
    "ConfigError",
    "InboxConfig",
    "LogSettings",
    "Naming",
    "WatchConfig",
    "config_from_args",
    "is_ignored",
    "load_config",
    "parse_command_line",
]

DEFAULT_PATTERNS = ("*.json", "*.ndjson")
DEFAULT_GRACE = 20.0
DEFAULT_MIN_FREE = 1 << 30
DEFAULT_QUIET = 5.0
DEFAULT_MAX_AGE = 3600.0
DEFAULT_RESCAN = 30.0
DEFAULT_RETRY_ATTEMPTS = 8
DEFAULT_RETRY_DELAY = 2.0
#: The daemon's default for one input file (json2dcm's --max-input-bytes default is none).
DEFAULT_MAX_INPUT = 4 << 30
_LOG_FAMILIES = ("log", "log_level", "log_config")


class ConfigError(UsageError):
    """The configuration (file or command line) is not usable; exit code 1."""


class Naming(enum.Enum):
    """How outputs are named inside ``output_dir``."""

    #: ``NAME.dcm`` for an input holding one dataset, ``NAME/000000.dcm``... for several
    DEFAULT = "default"
    #: ``NAME.dcm``: the array option (-ar, +as n, +ar) makes one output per input
    SINGLE = "single"
    #: ``filename_template`` / ``--filename-template`` for every dataset
    TEMPLATE = "template"


@dataclass(frozen=True, kw_only=True, slots=True)
class InboxConfig:
    """One watched folder. ``processing/``, ``done/`` and ``failed/`` are its siblings."""

    path: str
    output_dir: str
    options: ConvertOptions = field(default_factory=ConvertOptions)
    options_text: str = ""
    naming: Naming = Naming.DEFAULT
    filename_template: str | None = None
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    on_success: str = "move"
    quiet_period: float = DEFAULT_QUIET
    max_age: float = DEFAULT_MAX_AGE
    #: bytes of one input file (0: none); also options.limits.max_input_bytes (the pre-pass)
    max_input_bytes: int = DEFAULT_MAX_INPUT

    @property
    def base(self) -> str:
        return os.path.dirname(self.path)

    @property
    def processing_dir(self) -> str:
        return os.path.join(self.base, "processing")

    @property
    def done_dir(self) -> str:
        return os.path.join(self.base, "done")

    @property
    def failed_dir(self) -> str:
        return os.path.join(self.base, "failed")

    def accepts(self, name: str) -> bool:
        """Whether a file name in the inbox is an input (patterns, minus the ignored names)."""
        return not is_ignored(name) and any(fnmatch.fnmatchcase(name, p) for p in self.patterns)


@dataclass(frozen=True, kw_only=True, slots=True)
class WatchConfig:
    """Everything the daemon needs; built once, replaced whole on SIGHUP."""

    inboxes: tuple[InboxConfig, ...]
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    grace_period: float = DEFAULT_GRACE
    min_free_bytes: int = DEFAULT_MIN_FREE
    metrics_file: str | None = None
    max_inflight: int = 0  # 0: 16 x jobs
    rescan_interval: float = DEFAULT_RESCAN
    retry_attempts: int = DEFAULT_RETRY_ATTEMPTS
    retry_delay: float = DEFAULT_RETRY_DELAY
    force_polling: bool | None = None  # None: watchfiles decides ($WATCHFILES_FORCE_POLLING)
    source: str | None = None  # the TOML file, re-read on SIGHUP

    @property
    def inflight_limit(self) -> int:
        return self.max_inflight or 16 * self.jobs


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str = "info"
    config_file: str | None = None


def is_ignored(name: str) -> bool:
    """Names never taken as inputs: dot-files (rsync's ``.NAME.XXXXXX``, ``.~tmp~``), ``*.part``,
    ``*.tmp``, editor backups (``~``, ``#NAME#``) (daemon-conventions §1)."""
    return (
        name.startswith(".")
        or name.endswith((".part", ".tmp", "~"))
        or (name.startswith("#") and name.endswith("#"))
    )


# -- the TOML file -----------------------------------------------------------------------

_TOP_KEYS = {
    "jobs",
    "grace_period",
    "min_free_bytes",
    "metrics_file",
    "max_inflight",
    "rescan_interval",
    "retry_attempts",
    "retry_delay",
    "force_polling",
    "inbox",
}
_INBOX_KEYS = {
    "path",
    "output_dir",
    "options",
    "patterns",
    "on_success",
    "quiet_period",
    "max_age",
    "filename_template",
    "max_input_bytes",
}


def load_config(path: str) -> WatchConfig:
    """Read and check a TOML configuration file; relative paths are relative to its folder."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"configuration file '{path}' does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file '{path}': {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return config_from_mapping(data, source=os.path.abspath(path))


def config_from_mapping(data: Mapping[str, Any], *, source: str) -> WatchConfig:
    where = source
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    base = os.path.dirname(source)
    inboxes_raw = data.get("inbox")
    if not isinstance(inboxes_raw, list) or not inboxes_raw:
        raise ConfigError(f"{where}: at least one [[inbox]] table is required")
    inboxes = []
    for n, raw in enumerate(inboxes_raw, 1):
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: inbox {n} is not a table")
        inboxes.append(_inbox_from_mapping(raw, f"{where}: [[inbox]] {n}", base))
    jobs = _int(data, "jobs", where, os.cpu_count() or 1, low=1)
    metrics = data.get("metrics_file")
    if metrics is not None and (not isinstance(metrics, str) or not metrics):
        raise ConfigError(f"{where}: metrics_file must be a non-empty string")
    polling = data.get("force_polling")
    if polling is not None and not isinstance(polling, bool):
        raise ConfigError(f"{where}: force_polling must be true or false")
    config = WatchConfig(
        inboxes=tuple(inboxes),
        jobs=jobs,
        grace_period=_seconds(data, "grace_period", where, DEFAULT_GRACE),
        min_free_bytes=_int(data, "min_free_bytes", where, DEFAULT_MIN_FREE, low=0),
        metrics_file=None if metrics is None else _abspath(metrics, base),
        max_inflight=_int(data, "max_inflight", where, 0, low=0),
        rescan_interval=_seconds(data, "rescan_interval", where, DEFAULT_RESCAN, positive=True),
        retry_attempts=_int(data, "retry_attempts", where, DEFAULT_RETRY_ATTEMPTS, low=1),
        retry_delay=_seconds(data, "retry_delay", where, DEFAULT_RETRY_DELAY),
        force_polling=polling,
        source=source,
    )
    check_config(config, where)
    return config


def _inbox_from_mapping(raw: Mapping[str, Any], where: str, base: str) -> InboxConfig:
    unknown = sorted(set(raw) - _INBOX_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    for key in ("path", "output_dir"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ConfigError(f"{where}: '{key}' is required (a folder path)")
    text = raw.get("options", "")
    if not isinstance(text, str):
        raise ConfigError(f"{where}: 'options' must be a string of json2dcm option words")
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: options: {exc}") from None
    patterns = raw.get("patterns", list(DEFAULT_PATTERNS))
    if (
        not isinstance(patterns, list)
        or not patterns
        or not all(isinstance(p, str) and p for p in patterns)
    ):
        raise ConfigError(f"{where}: 'patterns' must be a non-empty list of glob patterns")
    on_success = raw.get("on_success", "move")
    if on_success not in ("move", "delete"):
        raise ConfigError(f'{where}: on_success must be "move" or "delete", not {on_success!r}')
    template = raw.get("filename_template")
    if template is not None and (not isinstance(template, str) or not template):
        raise ConfigError(f"{where}: filename_template must be a non-empty string")
    return make_inbox(
        path=_abspath(raw["path"], base),
        output_dir=_abspath(raw["output_dir"], base),
        words=words,
        where=where,
        patterns=tuple(patterns),
        on_success=on_success,
        quiet_period=_seconds(raw, "quiet_period", where, DEFAULT_QUIET),
        max_age=_seconds(raw, "max_age", where, DEFAULT_MAX_AGE, positive=True),
        filename_template=template,
        max_input_bytes=_size_limit(raw, "max_input_bytes", where),
        log_allowed=False,
    )


def make_inbox(
    *,
    path: str,
    output_dir: str,
    words: list[str] | ParsedArgs,
    where: str,
    patterns: tuple[str, ...] = DEFAULT_PATTERNS,
    on_success: str = "move",
    quiet_period: float = DEFAULT_QUIET,
    max_age: float = DEFAULT_MAX_AGE,
    filename_template: str | None = None,
    max_input_bytes: int | None = None,
    log_allowed: bool = True,
) -> InboxConfig:
    """An inbox from json2dcm option words (or already parsed ones).

    The input size limit is *max_input_bytes* if given, else a ``--max-input-bytes`` among the
    option words, else :data:`DEFAULT_MAX_INPUT`; it is set in the options' limits too, so that
    the pre-pass stops a file that grows past it while it is parsed.
    """
    if isinstance(words, ParsedArgs):
        parsed = words
        text = " ".join(shlex.quote(w) for w in parsed.expanded)
    else:
        text = " ".join(shlex.quote(w) for w in words)
        try:
            parsed = parse_args(list(words))
        except UsageError as exc:
            raise ConfigError(f"{where}: options: {exc.message}") from None
        if parsed.params:
            raise ConfigError(
                f"{where}: options: file names are not allowed here ({' '.join(parsed.params)})"
            )
    for family in ("help", "version", "arguments"):
        if family in parsed.values:
            raise ConfigError(f"{where}: options: --{family} is not a conversion option")
    if not log_allowed:
        for family in _LOG_FAMILIES:
            if family in parsed.values:
                raise ConfigError(
                    f"{where}: options: logging options (-q, -v, -d, -ll, -lc) belong on the "
                    "command line, not to an inbox"
                )
    template = filename_template
    if template is None and "filename_template" in parsed.values:
        template = str(parsed.values["filename_template"])
    array = parsed.values.get("array")
    values = dict(parsed.values)
    if array in (None, "split"):
        values["array"] = "split"  # one output per dataset; names below
        naming = Naming.TEMPLATE if template is not None else Naming.DEFAULT
    else:
        naming = Naming.TEMPLATE if template is not None else Naming.SINGLE
    if template is not None:
        _check_template(template, where)
        values["filename_template"] = template
    effective = ParsedArgs(values, parsed.order, parsed.bulkdata_dirs, [], parsed.expanded)
    try:
        options = build_options(effective)
    except UsageError as exc:
        raise ConfigError(f"{where}: options: {exc.message}") from None
    if max_input_bytes is None:
        given = "max_input_bytes" in parsed.values
        max_input_bytes = options.limits.max_input_bytes if given else DEFAULT_MAX_INPUT
    limits = options.limits._replace(max_input_bytes=max_input_bytes)
    options = options._replace(limits=limits)
    return InboxConfig(
        path=path,
        output_dir=output_dir,
        options=options,
        options_text=text,
        naming=naming,
        filename_template=template,
        patterns=patterns,
        on_success=on_success,
        quiet_period=quiet_period,
        max_age=max_age,
        max_input_bytes=max_input_bytes,
    )


def _check_template(template: str, where: str) -> None:
    from ..core.dictionary import get_dictionary

    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"{where}: filename template '{template}': {exc}") from None
    for name in fields:
        if name in ("index", "index1", "name"):
            continue
        if not name or get_dictionary().tag_for_keyword(name) is None:
            raise ConfigError(
                f"{where}: filename template '{template}': '{name}' is neither index, index1, "
                "name nor a DICOM keyword"
            )


def check_config(config: WatchConfig, where: str) -> None:
    """Checks across inboxes: each needs a folder tree of its own."""
    seen: dict[str, str] = {}
    for inbox in config.inboxes:
        if os.path.normpath(inbox.path) == os.path.normpath(inbox.base):
            raise ConfigError(f"{where}: inbox '{inbox.path}' has no parent folder for processing/")
        if inbox.base in seen:
            other = seen[inbox.base]
            if other == inbox.path:
                raise ConfigError(f"{where}: inbox '{inbox.path}' is configured twice")
            raise ConfigError(
                f"{where}: inboxes '{other}' and '{inbox.path}' share the parent folder "
                f"'{inbox.base}' (and so processing/, done/ and failed/); give each its own"
            )
        seen[inbox.base] = inbox.path
        if os.path.normpath(inbox.output_dir) in {
            os.path.normpath(inbox.path),
            inbox.processing_dir,
            inbox.done_dir,
            inbox.failed_dir,
        }:
            raise ConfigError(f"{where}: output_dir of '{inbox.path}' is one of its own folders")


def _abspath(path: str, base: str) -> str:
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def _int(data: Mapping[str, Any], key: str, where: str, default: int, *, low: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where}: {key} must be an integer >= {low}, not {value!r}")
    return value


def _size_limit(data: Mapping[str, Any], key: str, where: str) -> int | None:
    """A byte limit (0: none), or None if *key* is not given."""
    return _int(data, key, where, 0, low=0) if key in data else None


def _seconds(
    data: Mapping[str, Any], key: str, where: str, default: float, *, positive: bool = False
) -> float:
    value = data.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (positive and value == 0)
    ):
        kind = "a positive" if positive else "a non-negative"
        raise ConfigError(f"{where}: {key} must be {kind} number of seconds, not {value!r}")
    return float(value)


# -- the command line --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DaemonOption:
    names: tuple[str, ...]
    key: str
    arg: str = ""  # "" = a flag
    help: str = ""


DAEMON_OPTIONS: tuple[DaemonOption, ...] = (
    DaemonOption(("-h", "--help"), "help", help="print this help text and exit"),
    DaemonOption(("--version",), "version", help="print version information and exit"),
    DaemonOption(("--config",), "config", "FILE", "read the configuration (TOML) from FILE"),
    DaemonOption(("--output-dir",), "output_dir", "DIR", "write DICOM files into DIR (required with INBOX)"),
    DaemonOption(("-j", "--jobs"), "jobs", "N", "worker processes (default: number of CPUs)"),
    DaemonOption(("--max-inflight",), "max_inflight", "N", "inputs in flight at once (default: 16 x jobs)"),
    DaemonOption(("--pattern",), "patterns", "GLOB", "input file pattern, repeatable (default: *.json *.ndjson)"),
    DaemonOption(("--on-success",), "on_success", "move|delete", "what to do with a converted input (default: move to done/)"),
    DaemonOption(("--quiet-period",), "quiet_period", "SECONDS", "files written in place: unchanged this long (default: 5)"),
    DaemonOption(("--max-age",), "max_age", "SECONDS", "incomplete files go to failed/ after this long (default: 3600)"),
    DaemonOption(("--max-input-bytes",), "max_input_bytes", "N", "larger input files go to failed/ (default: 4 GiB; 0: none)"),
    DaemonOption(("--grace-period",), "grace_period", "SECONDS", "on SIGTERM: time to finish in-flight inputs (default: 20)"),
    DaemonOption(("--min-free-bytes",), "min_free_bytes", "N", "pause intake below this much free output space (default: 1 GiB)"),
    DaemonOption(("--metrics-file",), "metrics_file", "FILE", "Prometheus text file, rewritten atomically"),
    DaemonOption(("--rescan-interval",), "rescan_interval", "SECONDS", "full inbox scan interval (default: 30)"),
    DaemonOption(("--retry-attempts",), "retry_attempts", "N", "attempts for transient errors (default: 8)"),
    DaemonOption(("--retry-delay",), "retry_delay", "SECONDS", "first retry delay, doubled each time (default: 2)"),
    DaemonOption(("--force-polling",), "force_polling", help="poll the inbox instead of inotify (network filesystems)"),
)  # fmt: skip

_BY_NAME = {name: opt for opt in DAEMON_OPTIONS for name in opt.names}

USAGE = """\
usage: streamconv watch INBOX --output-dir DIR [daemon options] [json2dcm options]
       streamconv watch --config FILE [-q | -v | -d | -ll LEVEL | -lc FILE]

Converts DICOM JSON files dropped into INBOX to DICOM files in DIR. Producers write
elsewhere (or under a dot-, *.part or *.tmp name) and rename the finished file into INBOX.
INBOX's siblings processing/, done/ and failed/ hold claimed, converted and failed inputs.

daemon options:
{daemon}

json2dcm options (`json2dcm --help`) set the conversion; the logging options -q, -v, -d,
-ll and -lc the daemon's log level (default: one info line per input).
"""


def usage() -> str:
    lines = []
    for opt in DAEMON_OPTIONS:
        left = ", ".join(opt.names) + (f" {opt.arg}" if opt.arg else "")
        lines.append(f"  {left:<30} {opt.help}")
    return USAGE.format(daemon="\n".join(lines))


@dataclass(slots=True)
class CommandLine:
    """``streamconv watch`` arguments, split into daemon options and json2dcm words."""

    daemon: dict[str, Any] = field(default_factory=dict)
    parsed: ParsedArgs = field(default_factory=ParsedArgs)


def parse_command_line(argv: list[str]) -> CommandLine:
    """Split *argv*: daemon options (ours), the rest is json2dcm's (DCMTK syntax, ``@file``)."""
    try:
        args = expand_command_files(argv)
    except UsageError as exc:
        raise ConfigError(exc.message) from None
    daemon: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        opt = _BY_NAME.get(name)
        if opt is None:
            rest.append(arg)
            continue
        if not opt.arg:
            if eq:
                raise ConfigError(f"option {name} takes no value")
            daemon[opt.key] = True
            continue
        if eq:
            value = inline
        elif i < len(args):
            value = args[i]
            i += 1
        else:
            raise ConfigError(f"missing value for option {name}")
        if opt.key == "patterns":
            daemon.setdefault("patterns", []).append(value)
        else:
            daemon[opt.key] = value
    try:
        parsed = parse_args(rest)
    except UsageError as exc:
        raise ConfigError(exc.message) from None
    return CommandLine(daemon, parsed)


def log_settings(cmd: CommandLine) -> LogSettings:
    v = cmd.parsed.values
    if not any(f in v for f in _LOG_FAMILIES):
        return LogSettings()
    try:
        level = log_level(cmd.parsed)
    except UsageError as exc:
        raise ConfigError(exc.message) from None
    config_file = v.get("log_config")
    return LogSettings(level, None if config_file is None else str(config_file))


def config_from_args(cmd: CommandLine) -> WatchConfig:
    """The configuration a command line describes (``--config FILE`` or ``INBOX --output-dir``)."""
    d = cmd.daemon
    parsed = cmd.parsed
    if "config" in d:
        extra = sorted(k for k in d if k != "config")
        words = sorted(k for k in parsed.values if k not in _LOG_FAMILIES)
        if extra or words or parsed.params or parsed.bulkdata_dirs:
            raise ConfigError(
                "with --config, the configuration file holds every setting (only the logging "
                "options -q, -v, -d, -ll, -lc may be given on the command line)"
            )
        return load_config(str(d["config"]))
    if not parsed.params:
        raise ConfigError("missing parameter INBOX (or --config FILE)")
    if len(parsed.params) > 1:
        raise ConfigError(f"too many parameters: {' '.join(parsed.params)} (one INBOX)")
    if "output_dir" not in d:
        raise ConfigError("--output-dir DIR is required with INBOX")
    where = "command line"
    values = {k: v for k, v in parsed.values.items() if k not in _LOG_FAMILIES}
    shown = [w for w in parsed.expanded if w not in parsed.params]
    conversion = ParsedArgs(values, parsed.order, parsed.bulkdata_dirs, [], shown)

    def number(key: str, default: float, convert: Callable[[str], Any] = float) -> Any:
        if key not in d:
            return default
        try:
            return convert(str(d[key]))
        except ValueError:
            raise ConfigError(f"invalid value for --{key.replace('_', '-')}: {d[key]}") from None

    raw: dict[str, Any] = {
        "jobs": number("jobs", os.cpu_count() or 1, int),
        "grace_period": number("grace_period", DEFAULT_GRACE),
        "min_free_bytes": number("min_free_bytes", DEFAULT_MIN_FREE, int),
        "max_inflight": number("max_inflight", 0, int),
        "rescan_interval": number("rescan_interval", DEFAULT_RESCAN),
        "retry_attempts": number("retry_attempts", DEFAULT_RETRY_ATTEMPTS, int),
        "retry_delay": number("retry_delay", DEFAULT_RETRY_DELAY),
    }
    inbox_raw = {
        "quiet_period": number("quiet_period", DEFAULT_QUIET),
        "max_age": number("max_age", DEFAULT_MAX_AGE),
        "max_input_bytes": number("max_input_bytes", DEFAULT_MAX_INPUT, int),
    }
    limit_given = "max_input_bytes" in d
    on_success = d.get("on_success", "move")
    if on_success not in ("move", "delete"):
        raise ConfigError(f"--on-success must be move or delete, not '{on_success}'")
    inbox = make_inbox(
        path=_abspath(parsed.params[0], os.getcwd()),
        output_dir=_abspath(str(d["output_dir"]), os.getcwd()),
        words=conversion,
        where=where,
        patterns=tuple(d.get("patterns", DEFAULT_PATTERNS)),
        on_success=on_success,
        quiet_period=_seconds(inbox_raw, "quiet_period", where, DEFAULT_QUIET),
        max_age=_seconds(inbox_raw, "max_age", where, DEFAULT_MAX_AGE, positive=True),
        max_input_bytes=_size_limit(inbox_raw, "max_input_bytes", where) if limit_given else None,
    )
    metrics = d.get("metrics_file")
    config = WatchConfig(
        inboxes=(inbox,),
        jobs=_int(raw, "jobs", where, 1, low=1),
        grace_period=_seconds(raw, "grace_period", where, DEFAULT_GRACE),
        min_free_bytes=_int(raw, "min_free_bytes", where, DEFAULT_MIN_FREE, low=0),
        metrics_file=None if metrics is None else _abspath(str(metrics), os.getcwd()),
        max_inflight=_int(raw, "max_inflight", where, 0, low=0),
        rescan_interval=_seconds(raw, "rescan_interval", where, DEFAULT_RESCAN, positive=True),
        retry_attempts=_int(raw, "retry_attempts", where, DEFAULT_RETRY_ATTEMPTS, low=1),
        retry_delay=_seconds(raw, "retry_delay", where, DEFAULT_RETRY_DELAY),
        force_polling=True if d.get("force_polling") else None,
    )
    check_config(config, where)
    return config
