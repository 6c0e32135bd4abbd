"""DCMTK-style logging for the front ends: ``W: message`` on stderr, ``-ll`` levels, ``-lc`` files.

DCMTK (oflog, a log4cplus fork) logs through the root logger with the pattern ``%P: %m%n``
to stderr, level WARN by default. ``-lc FILE`` reads a log4cplus properties file (console,
file, rolling-file, daily-rolling-file, syslog and null appenders; pattern, simple and TTCC
layouts; level-range, level-match, string-match and deny-all filters). A Python logging INI
file (one with a ``[loggers]`` section) is accepted too.

Library modules never call this; they only ``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping

from .core.lazyre import lazy_compile

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from typing import Final, TextIO

__all__ = [
    "DCMTK_LOGGERS",
    "LEVELS",
    "TRACE",
    "PatternFormatter",
    "parse_file_size",
    "reset_logging",
    "setup_logging",
]

TRACE: Final = 5
"""log4cplus's TRACE, below Python's DEBUG."""

LEVELS: Final[Mapping[str, int]] = {
    "fatal": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE,
}
"""The six level names of ``-ll`` (dcmtk-behavior §1.2) as Python logging levels."""

DEFAULT_PATTERN: Final = "%P: %m%n"  # oflog.cc: the console pattern of every DCMTK tool

# DCMTK logger names in a -lc file and the streamconv loggers they stand for. dcmtk.dcmdata is
# the library (core/ and the shared edges below the front ends); dcmtk.apps the front ends,
# dcmtk.apps.json2dcm the CLI; other dcmtk.apps.NAME map to streamconv.NAME; any other name
# is used as written.
_LIBRARY_MODULES: Final = tuple(
    f"streamconv.{name}"
    for name in (
        "core",
        "sinks",
        "storage",
        "oneshot",
        "fanout",
        "api",
        "httpinput",
        "runtime",
    )
)
_FRONT_ENDS: Final = tuple(
    f"streamconv.{name}" for name in ("cli", "stream", "watch", "batch", "service", "umbrella")
)
DCMTK_LOGGERS: Final[Mapping[str, tuple[str, ...]]] = {
    "dcmtk": ("streamconv",),
    "dcmtk.dcmdata": _LIBRARY_MODULES,
    "dcmtk.apps": _FRONT_ENDS,
    "dcmtk.apps.json2dcm": ("streamconv.cli",),
}

# log4cplus level names (loglevel.cxx) and the Python levels they become.
_LOG4CPLUS_LEVELS: Final[Mapping[str, int]] = {
    "ALL": 1,
    "TRACE": TRACE,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "CRITICAL": logging.CRITICAL,
    "OFF": logging.CRITICAL + 10,
    "NOTSET": logging.NOTSET,
    "INHERIT": logging.NOTSET,
}


def _level_name(levelno: int) -> str:
    """log4cplus's name of a Python level (%p); its first letter is %P."""
    if levelno >= logging.CRITICAL:
        return "FATAL"
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARN"
    if levelno >= logging.INFO:
        return "INFO"
    if levelno >= logging.DEBUG:
        return "DEBUG"
    return "TRACE"


def _hostname() -> str:
    try:
        return os.uname().nodename
    except AttributeError:  # pragma: no cover - Windows
        import socket

        return socket.gethostname()


# --- PatternLayout ----------------------------------------------------------------------------

_CONVERSION: Final = lazy_compile(r"%(-)?(\d+)?(?:\.(\d+))?([A-Za-z%])?")
_WITH_OPTION: Final = frozenset("cdDXE")
_DEFAULT_DATE: Final = "%Y-%m-%d %H:%M:%S"
_Render = Callable[[logging.LogRecord], str]


class PatternFormatter(logging.Formatter):
    """A log4cplus ``PatternLayout``: ``%P: %m%n``, ``%D{%H:%M:%S} %5p - %m%n``, ...

    Conversions: %m message, %n newline, %p level (``WARN``), %P its letter, %c logger name
    (``%c{1}`` the last component), %d{fmt} UTC and %D{fmt} local time (strftime plus %q
    milliseconds, %Q fractional milliseconds), %r milliseconds since start, %t thread, %i
    process id, %h host, %H fully qualified host, %l file:line, %L line, %F file, %b file
    base name, %M function, %x NDC and %X{key} MDC (empty), %E{VAR} environment, %% percent;
    ``-``, minimum width and ``.max`` modifiers. Unknown conversions are kept as written.
    """

    def __init__(self, pattern: str = DEFAULT_PATTERN, *, strip_newline: bool = False) -> None:
        super().__init__()
        self.pattern = pattern
        self._strip_newline = strip_newline
        self._parts: list[str | tuple[_Render, bool, int, int]] = []
        pos = 0
        while (start := pattern.find("%", pos)) >= 0:
            if start > pos:
                self._parts.append(pattern[pos:start])
            match = _CONVERSION.match(pattern, start)
            assert match is not None  # the regex matches any '%'
            left, min_width, max_width, char = match.groups()
            end = match.end()
            option = None
            if char in _WITH_OPTION and pattern.startswith("{", end):
                close = pattern.find("}", end)
                if close >= 0:
                    option, end = pattern[end + 1 : close], close + 1
            render = self._converter(char, option)
            if render is None:
                self._parts.append(pattern[start:end])  # unknown: kept literally
            elif left is None and min_width is None and max_width is None:
                self._parts.append((render, False, 0, 0))
            else:
                width = int(min_width) if min_width else 0
                limit = int(max_width) if max_width else 0
                self._parts.append((render, left is not None, width, limit))
            pos = end
        if pos < len(pattern):
            self._parts.append(pattern[pos:])

    def __repr__(self) -> str:
        return f"PatternFormatter({self.pattern!r})"

    def _converter(self, char: str | None, option: str | None) -> _Render | None:
        if char is None:
            return None
        simple: dict[str, _Render] = {
            "m": lambda r: r.getMessage(),
            "n": lambda r: "\n",
            "p": lambda r: _level_name(r.levelno),
            "P": lambda r: _level_name(r.levelno)[0],
            "t": lambda r: str(r.threadName),
            "i": lambda r: str(r.process),
            "r": lambda r: str(int(r.relativeCreated)),
            "l": lambda r: f"{r.pathname}:{r.lineno}",
            "L": lambda r: str(r.lineno),
            "F": lambda r: r.pathname,
            "b": lambda r: r.filename,
            "M": lambda r: r.funcName or "",
            "x": lambda r: "",
            "X": lambda r: "",
            "%": lambda r: "%",
        }
        if char in simple:
            return simple[char]
        if char == "h":
            host = _hostname()
            return lambda r: host
        if char == "H":
            import socket

            fqdn = socket.getfqdn()
            return lambda r: fqdn
        if char == "c":
            depth = int(option) if option and option.isdigit() and int(option) > 0 else 0
            if depth:
                return lambda r: ".".join(r.name.split(".")[-depth:])
            return lambda r: r.name
        if char in "dD":
            utc = char == "d"
            date_format = option or _DEFAULT_DATE
            return lambda r: _format_time(date_format, r.created, utc=utc)
        if char == "E":
            name = option or ""
            return lambda r: os.environ.get(name, "")
        return None

    def format(self, record: logging.LogRecord) -> str:
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
                continue
            render, left, width, limit = part
            text = render(record)
            if limit and len(text) > limit:
                text = text[len(text) - limit :]  # log4cplus keeps the end
            if len(text) < width:
                text = text.ljust(width) if left else text.rjust(width)
            out.append(text)
        text = "".join(out)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            text = _append_block(text, record.exc_text)
        if record.stack_info:
            text = _append_block(text, self.formatStack(record.stack_info))
        return text.rstrip("\n") if self._strip_newline else text


def _append_block(text: str, block: str) -> str:
    if text.endswith("\n"):
        return f"{text}{block}\n"
    return f"{text}\n{block}"


def _format_time(date_format: str, created: float, *, utc: bool) -> str:
    # log4cplus adds %q (milliseconds, 3 digits) and %Q (milliseconds with 3 decimals).
    micros = int(created * 1_000_000) % 1_000_000
    pieces = re.split(r"(%%|%q|%Q)", date_format)
    expanded = "".join(
        f"{micros // 1000:03d}"
        if piece == "%q"
        else f"{micros // 1000:03d}.{micros % 1000:03d}"
        if piece == "%Q"
        else piece
        for piece in pieces
    )
    struct = time.gmtime(created) if utc else time.localtime(created)
    return time.strftime(expanded, struct)


# --- state: what setup_logging installed, so that it can be undone --------------------------

_lock = threading.RLock()
_installed: list[tuple[logging.Logger, logging.Handler]] = []
_touched: dict[str, tuple[int, bool]] = {}


def _logger(name: str) -> logging.Logger:
    return logging.getLogger(name) if name else logging.getLogger()


def _remember(name: str) -> logging.Logger:
    logger = _logger(name)
    _touched.setdefault(name, (logger.level, logger.propagate))
    return logger


def _install(name: str, handler: logging.Handler) -> None:
    logger = _remember(name)
    logger.addHandler(handler)
    _installed.append((logger, handler))


def reset_logging() -> None:
    """Remove the handlers :func:`setup_logging` added and restore the loggers it changed."""
    with _lock:
        handlers: list[logging.Handler] = []
        for logger, handler in _installed:
            logger.removeHandler(handler)
            if handler not in handlers:
                handlers.append(handler)
        for handler in handlers:
            handler.close()
        _installed.clear()
        for name, (level, propagate) in _touched.items():
            logger = _logger(name)
            logger.setLevel(level)
            logger.propagate = propagate
        _touched.clear()


def setup_logging(
    level: str = "warn",
    config_file: str | None = None,
    *,
    stream: TextIO | None = None,
    appname: str | None = None,
) -> None:
    """Configure logging for a front end, replacing what an earlier call set up.

    Without ``config_file``: one handler on the root logger writing ``X: message`` to
    ``stream`` (default stderr), the root level from ``level`` (a key of :data:`LEVELS`).
    With ``config_file`` (``-lc``): the log4cplus or Python INI file decides everything;
    ``stream`` replaces stderr for console appenders, ``appname`` is ``${appname}`` (default:
    the program name). Raises ValueError for an unknown level or a file that cannot be used.
    """
    logging.addLevelName(TRACE, "TRACE")
    with _lock:
        if config_file is None:
            levelno = LEVELS.get(level.lower())
            if levelno is None:
                raise ValueError(
                    f"invalid log level '{level}' (expected one of {', '.join(LEVELS)})"
                )
            reset_logging()
            handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
            handler.terminator = ""  # the pattern's %n ends the line
            handler.setFormatter(PatternFormatter(DEFAULT_PATTERN))
            _install("", handler)
            _remember("").setLevel(levelno)
            return
        text = _read_config(config_file)
        if re.search(r"^[ \t]*\[loggers\][ \t]*$", text, re.MULTILINE):
            reset_logging()
            _configure_ini(config_file)
            return
        properties = _parse_properties(text)
        if "log4cplus.rootLogger" not in properties:
            raise ValueError(
                f"log configuration file '{config_file}' does not set up log4cplus.rootLogger"
            )
        app = appname if appname is not None else os.path.basename(sys.argv[0] or "streamconv")
        _Log4cplusConfig(config_file, properties, app, stream).apply()


def _read_config(path: str) -> str:
    if not os.path.exists(path):
        raise ValueError(f"log configuration file '{path}' does not exist")
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise ValueError(
            f"log configuration file '{path}' cannot be read: {exc.strerror or exc}"
        ) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _configure_ini(path: str) -> None:
    import logging.config

    # Snapshot levels and handlers, so that reset_logging() can undo what fileConfig does.
    for logger in [logging.getLogger(), *_all_loggers()]:
        _remember(_name(logger))
    before = {(id(lg), id(h)) for lg in [logging.getLogger(), *_all_loggers()] for h in lg.handlers}
    try:
        logging.config.fileConfig(path, disable_existing_loggers=False)
    except Exception as exc:  # configparser, KeyError, ImportError, ...: all mean a bad file
        raise ValueError(f"invalid logging configuration file '{path}': {exc!r}") from exc
    for logger in [logging.getLogger(), *_all_loggers()]:
        _touched.setdefault(_name(logger), (logging.NOTSET, True))
        for handler in logger.handlers:
            if (id(logger), id(handler)) not in before:
                _installed.append((logger, handler))


def _name(logger: logging.Logger) -> str:
    return "" if logger is logging.getLogger() else logger.name


def _all_loggers() -> list[logging.Logger]:
    return [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]


# --- log4cplus properties files ---------------------------------------------------------------


def _parse_properties(text: str) -> dict[str, str]:
    """``key = value`` lines as log4cplus reads them, plus ``!`` comments and ``\\`` joins."""
    properties: dict[str, str] = {}
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#!":
            continue
        if (len(line) - len(line.rstrip("\\"))) % 2:  # an odd number of \ continues the line
            pending = line[:-1]
        else:
            lines.append(line)
    if pending:
        lines.append(pending)
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:  # log4cplus ignores lines without '='
            properties[key.strip()] = value.strip()
    return properties


_VARIABLE: Final = lazy_compile(r"\$\{([^}]*)\}")


def _substitute(properties: dict[str, str]) -> dict[str, str]:
    # log4cplus fRecursiveExpansion | fShadowEnvironment (set by DCMTK's oflog.cc): ${var}
    # comes from the properties first, then the environment, else empty; repeated until
    # nothing changes (bounded, so that a ${a} = ${a} loop ends).
    def expand(value: str) -> str:
        for _ in range(16):
            expanded = _VARIABLE.sub(
                lambda m: properties.get(m[1], os.environ.get(m[1], "")), value
            )
            if expanded == value:
                break
            value = expanded
        return value

    return {expand(key): expand(value) for key, value in properties.items()}


_SIZE: Final = lazy_compile(r"\s*(\d+)\s*(|B|KB|MB|GB)\s*", re.IGNORECASE)
_MIN_ROLLING_SIZE: Final = 200 * 1024  # log4cplus MINIMUM_ROLLING_LOG_SIZE


def parse_file_size(text: str) -> int:
    """A log4cplus ``MaxFileSize``: ``5MB``, ``500KB``, ``1GB`` or bytes; ValueError if bad."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid file size {text!r} (expected e.g. 500KB, 5MB)")
    factor = {"": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}[match[2].lower()]
    return int(match[1]) * factor


def _parse_bool(text: str, what: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{what}: invalid boolean {text!r}")


def _parse_level(text: str, what: str) -> int:
    levelno = _LOG4CPLUS_LEVELS.get(text.strip().upper())
    if levelno is None:
        raise ValueError(f"{what}: unknown log level {text!r}")
    return levelno


# DailyRollingFileAppender Schedule -> TimedRotatingFileHandler (when, interval). Python has
# no calendar months: MONTHLY rolls every 30 days.
_SCHEDULES: Final[Mapping[str, tuple[str, int]]] = {
    "MINUTELY": ("M", 1),
    "HOURLY": ("H", 1),
    "TWICE_DAILY": ("H", 12),
    "DAILY": ("MIDNIGHT", 1),
    "WEEKLY": ("W6", 1),
    "MONTHLY": ("D", 30),
}


class _ConfigError(ValueError):
    """A ValueError that already names the configuration file."""


class _LevelFilters(logging.Filter):
    """An appender's log4cplus filter chain: the first ACCEPT or DENY decides."""

    def __init__(self, chain: list[Callable[[logging.LogRecord], bool | None]]) -> None:
        super().__init__()
        self.chain = chain

    def filter(self, record: logging.LogRecord) -> bool:
        for decide in self.chain:
            verdict = decide(record)
            if verdict is not None:
                return verdict
        return True


class _Log4cplusConfig:
    """One log4cplus properties file applied to Python logging (PropertyConfigurator)."""

    def __init__(
        self, path: str, properties: dict[str, str], appname: str, stream: TextIO | None
    ) -> None:
        self.path = path
        self.stream = stream
        # DCMTK's oflog.cc addVariables(): these pretend the user wrote them in the file.
        now = time.localtime()
        properties = {
            **properties,
            "appname": appname,
            "hostname": _hostname(),
            "pid": str(os.getpid()),
            "date": time.strftime("%Y%m%d", now),
            "time": time.strftime("%H%M%S", now),
        }
        self.properties = _substitute(properties)
        self.appenders: dict[str, logging.Handler] = {}

    def error(self, key: str, message: str) -> ValueError:
        return _ConfigError(f"log configuration file '{self.path}': {key}: {message}")

    def subset(self, prefix: str) -> dict[str, str]:
        """Properties under ``prefix``, keys lower-cased (log4cplus would be case-sensitive)."""
        return {
            key[len(prefix) :].lower(): value
            for key, value in self.properties.items()
            if key.startswith(prefix)
        }

    def apply(self) -> None:
        try:
            root_level, root_handlers = self.logger_spec("log4cplus.rootLogger")
            plan: list[tuple[str, int | None, list[logging.Handler], bool | None]] = [
                ("", root_level, root_handlers, None)
            ]
            prefix = "log4cplus.logger."
            for key in self.properties:
                if key.startswith(prefix):
                    name = key[len(prefix) :]
                    additivity = self.properties.get(f"log4cplus.additivity.{name}")
                    propagate = (
                        _parse_bool(additivity, f"log4cplus.additivity.{name}")
                        if additivity is not None
                        else None
                    )
                    plan.append((name, *self.logger_spec(key), propagate))
        except BaseException as exc:
            for handler in self.appenders.values():
                handler.close()
            if isinstance(exc, ValueError) and not isinstance(exc, _ConfigError):
                raise _ConfigError(f"log configuration file '{self.path}': {exc}") from None
            raise
        # Everything parsed and every file opened: only now replace the previous set-up.
        reset_logging()
        for name, levelno, handlers, propagate in plan:
            for target in self.python_loggers(name):
                logger = _remember(target)
                if levelno is not None:
                    logger.setLevel(levelno)
                if propagate is not None:
                    logger.propagate = propagate
                for handler in handlers:
                    _install(target, handler)

    @staticmethod
    def python_loggers(name: str) -> tuple[str, ...]:
        if not name:
            return ("",)
        if name in DCMTK_LOGGERS:
            return DCMTK_LOGGERS[name]
        if name.startswith("dcmtk.dcmdata."):
            return DCMTK_LOGGERS["dcmtk.dcmdata"]
        if name.startswith("dcmtk.apps."):
            return (f"streamconv.{name.removeprefix('dcmtk.apps.')}",)
        return (name,)

    def logger_spec(self, key: str) -> tuple[int | None, list[logging.Handler]]:
        # "LEVEL, appender1, appender2": an empty level leaves the level alone.
        level_text, *names = (part.strip() for part in self.properties[key].split(","))
        levelno = _parse_level(level_text, key) if level_text else None
        handlers = [self.appender(name, key) for name in names if name]
        return levelno, handlers

    def appender(self, name: str, used_by: str) -> logging.Handler:
        if name in self.appenders:
            return self.appenders[name]
        key = f"log4cplus.appender.{name}"
        kind = self.properties.get(key)
        if kind is None:
            raise self.error(used_by, f"appender '{name}' is not defined")
        props = self.subset(key + ".")
        handler = self.make_handler(key, kind.rsplit("::", 1)[-1].strip(), props)
        self.appenders[name] = handler
        threshold = props.get("threshold")
        if threshold:
            handler.setLevel(_parse_level(threshold, f"{key}.Threshold"))
        self.add_filters(key, handler, props)
        if not isinstance(handler, logging.NullHandler):
            # syslog messages carry no line end
            is_stream = isinstance(handler, logging.StreamHandler)
            handler.setFormatter(self.layout(key, props, strip_newline=not is_stream))
        return handler

    def make_handler(self, key: str, kind: str, props: dict[str, str]) -> logging.Handler:
        handler: logging.Handler
        if kind == "ConsoleAppender":
            # log4cplus writes to stdout unless logToStdErr is true.
            to_stderr = _parse_bool(props.get("logtostderr", "false"), f"{key}.logToStdErr")
            target = (self.stream or sys.stderr) if to_stderr else sys.stdout
            handler = logging.StreamHandler(target)
        elif kind == "NullAppender":
            handler = logging.NullHandler()
        elif kind in ("FileAppender", "RollingFileAppender", "DailyRollingFileAppender"):
            handler = self.file_handler(key, kind, props)
        elif kind == "SysLogAppender":
            handler = self.syslog_handler(key, props)
        else:
            raise self.error(key, f"unsupported appender '{kind}'")
        if isinstance(handler, logging.StreamHandler):
            handler.terminator = ""  # the layout's %n ends the line
        return handler

    def file_handler(self, key: str, kind: str, props: dict[str, str]) -> logging.Handler:
        import logging.handlers

        filename = props.get("file", "")
        if not filename:
            raise self.error(key, "File is not set")
        if _parse_bool(props.get("createdirs", "false"), f"{key}.CreateDirs"):
            os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
        try:
            if kind == "RollingFileAppender":
                try:
                    size = parse_file_size(props.get("maxfilesize", "10MB"))
                except ValueError as exc:
                    raise self.error(f"{key}.MaxFileSize", str(exc)) from None
                return logging.handlers.RotatingFileHandler(
                    filename,
                    maxBytes=max(size, _MIN_ROLLING_SIZE),
                    backupCount=self.integer(key, props, "maxbackupindex", 1),
                    encoding="utf-8",
                )
            if kind == "DailyRollingFileAppender":
                schedule = props.get("schedule", "DAILY").strip().upper()
                if schedule not in _SCHEDULES:
                    raise self.error(f"{key}.Schedule", f"unknown schedule {schedule!r}")
                when, interval = _SCHEDULES[schedule]
                return logging.handlers.TimedRotatingFileHandler(
                    filename,
                    when=when,
                    interval=interval,
                    backupCount=self.integer(key, props, "maxbackupindex", 10),
                    encoding="utf-8",
                )
            append = _parse_bool(props.get("append", "false"), f"{key}.Append")
            return logging.FileHandler(filename, mode="a" if append else "w", encoding="utf-8")
        except OSError as exc:
            raise self.error(key, f"cannot open '{filename}': {exc.strerror or exc}") from exc

    def syslog_handler(self, key: str, props: dict[str, str]) -> logging.Handler:
        import logging.handlers

        facility_name = props.get("facility", "user").strip().lower()
        facility = logging.handlers.SysLogHandler.facility_names.get(facility_name)
        if facility is None:
            raise self.error(f"{key}.facility", f"unknown syslog facility {facility_name!r}")
        host = props.get("host", "").strip()
        address: str | tuple[str, int]
        if host:
            address = (host, self.integer(key, props, "port", 514))
        elif os.path.exists("/dev/log"):
            address = "/dev/log"
        else:
            address = ("localhost", 514)
        try:
            handler = logging.handlers.SysLogHandler(address=address, facility=facility)
        except OSError as exc:
            raise self.error(key, f"cannot reach syslog at {address!r}: {exc}") from exc
        ident = props.get("ident", self.properties["appname"])
        handler.ident = f"{ident}: " if ident else ""
        return handler

    def integer(self, key: str, props: dict[str, str], name: str, default: int) -> int:
        text = props.get(name)
        if text is None:
            return default
        try:
            return int(text)
        except ValueError:
            raise self.error(f"{key}.{name}", f"not an integer: {text!r}") from None

    def layout(self, key: str, props: dict[str, str], *, strip_newline: bool) -> PatternFormatter:
        kind = props.get("layout", "log4cplus::SimpleLayout").rsplit("::", 1)[-1].strip()
        if kind == "PatternLayout":
            pattern = props.get("layout.conversionpattern", props.get("layout.pattern", "%m%n"))
        elif kind == "SimpleLayout":
            pattern = "%p - %m%n"
        elif kind == "TTCCLayout":
            date_format = props.get("layout.dateformat", "")
            gmt = _parse_bool(props.get("layout.use_gmtime", "false"), f"{key}.layout.Use_gmtime")
            stamp = f"%{'d' if gmt else 'D'}{{{date_format}}}" if date_format else "%r"
            pattern = f"{stamp} [%t] %p %c <%x> - %m%n"
        else:
            raise self.error(f"{key}.layout", f"unsupported layout '{kind}'")
        return PatternFormatter(pattern, strip_newline=strip_newline)

    def add_filters(self, key: str, handler: logging.Handler, props: dict[str, str]) -> None:
        numbers = sorted(
            int(name.removeprefix("filters."))
            for name in props
            if re.fullmatch(r"filters\.\d+", name)
        )
        chain: list[Callable[[logging.LogRecord], bool | None]] = []
        for number in numbers:
            prefix = f"filters.{number}"
            kind = props[prefix].rsplit("::", 1)[-1].strip()
            params = {
                k[len(prefix) + 1 :]: v for k, v in props.items() if k.startswith(prefix + ".")
            }
            chain.append(self.make_filter(f"{key}.{prefix}", kind, params))
        if chain:
            handler.addFilter(_LevelFilters(chain))

    def make_filter(
        self, key: str, kind: str, params: dict[str, str]
    ) -> Callable[[logging.LogRecord], bool | None]:
        # log4cplus spi/filter.cxx: each filter says ACCEPT (True), DENY (False) or NEUTRAL.
        accept = _parse_bool(params.get("acceptonmatch", "true"), f"{key}.AcceptOnMatch")
        if kind == "DenyAllFilter":
            return lambda record: False
        if kind == "LogLevelRangeFilter":
            low = _parse_level(params.get("loglevelmin", "NOTSET"), f"{key}.LogLevelMin")
            high = _parse_level(params.get("loglevelmax", "NOTSET"), f"{key}.LogLevelMax")

            def in_range(record: logging.LogRecord) -> bool | None:
                if low and record.levelno < low:
                    return False
                if high and record.levelno > high:
                    return False
                return True if accept else None

            return in_range
        if kind == "LogLevelMatchFilter":
            match = _parse_level(params.get("logleveltomatch", "NOTSET"), f"{key}.LogLevelToMatch")

            def level_matches(record: logging.LogRecord) -> bool | None:
                if not match or record.levelno != match:
                    return None
                return accept

            return level_matches
        if kind == "StringMatchFilter":
            needle = params.get("stringtomatch", "")

            def string_matches(record: logging.LogRecord) -> bool | None:
                if not needle or needle not in record.getMessage():
                    return None
                return accept

            return string_matches
        raise self.error(key, f"unsupported filter '{kind}'")
