"""DCMTK-style logging: prefixes, levels, log4cplus and INI configuration files."""

from __future__ import annotations

import io
import logging
import logging.handlers
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamconv.logsetup import (
    LEVELS,
    TRACE,
    PatternFormatter,
    parse_file_size,
    reset_logging,
    setup_logging,
)

LOG = logging.getLogger("streamconv.test_logsetup")


@pytest.fixture(autouse=True)
def clean_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    reset_logging()
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def emit_all(logger: logging.Logger = LOG) -> None:
    logger.log(TRACE, "trace")
    logger.debug("debug")
    logger.info("info")
    logger.warning("warn")
    logger.error("error")
    logger.critical("fatal")


# --- the command-line set-up --------------------------------------------------------------------


def test_prefixes_per_level() -> None:
    out = io.StringIO()
    setup_logging("trace", stream=out)
    emit_all()
    assert out.getvalue() == "T: trace\nD: debug\nI: info\nW: warn\nE: error\nF: fatal\n"


@pytest.mark.parametrize(
    ("level", "letters"),
    [
        ("fatal", "F"),
        ("error", "EF"),
        ("warn", "WEF"),
        ("info", "IWEF"),
        ("debug", "DIWEF"),
        ("trace", "TDIWEF"),
        ("WARN", "WEF"),
    ],
)
def test_level_filtering(level: str, letters: str) -> None:
    out = io.StringIO()
    setup_logging(level, stream=out)
    emit_all()
    assert "".join(line[0] for line in out.getvalue().splitlines()) == letters


def test_default_level_is_warn() -> None:
    out = io.StringIO()
    setup_logging(stream=out)
    emit_all()
    assert out.getvalue().splitlines()[0] == "W: warn"


def test_levels_table() -> None:
    assert list(LEVELS) == ["fatal", "error", "warn", "info", "debug", "trace"]
    assert LEVELS["fatal"] == logging.CRITICAL
    assert LEVELS["trace"] == TRACE < logging.DEBUG


def test_unknown_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="invalid log level 'loud'"):
        setup_logging("loud")


def test_idempotent() -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging("info", stream=first)
    setup_logging("info", stream=second)
    LOG.info("once")
    assert first.getvalue() == ""
    assert second.getvalue() == "I: once\n"
    ours = [h for h in logging.getLogger().handlers if isinstance(h.formatter, PatternFormatter)]
    assert len(ours) == 1


def test_reset_restores_root() -> None:
    root = logging.getLogger()
    level, count = root.level, len(root.handlers)
    setup_logging("debug", stream=io.StringIO())
    reset_logging()
    assert (root.level, len(root.handlers)) == (level, count)


def test_exception_text_follows_the_line() -> None:
    out = io.StringIO()
    setup_logging(stream=out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        LOG.exception("failed")
    lines = out.getvalue().splitlines()
    assert lines[0] == "E: failed"
    assert lines[-1] == "RuntimeError: boom"
    assert out.getvalue().endswith("\n")


# --- PatternLayout ------------------------------------------------------------------------------


def record(
    message: str = "hello", level: int = logging.WARNING, name: str = "streamconv.model"
) -> logging.LogRecord:
    rec = logging.LogRecord(name, level, "/src/streamconv/model.py", 42, message, None, None, "f")
    rec.created = 1_700_000_000.123456  # 2023-11-14 22:13:20.123456 UTC
    return rec


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("%P: %m%n", "W: hello\n"),
        ("%p - %m", "WARN - hello"),
        ("[%5p]", "[ WARN]"),
        ("[%-5p]", "[WARN ]"),
        ("[%.3m]", "[llo]"),  # log4cplus truncates from the left
        ("%c / %c{1} / %c{2}", "streamconv.model / model / streamconv.model"),
        ("%-20c|", "streamconv.model    |"),
        ("%d{%Y-%m-%d %H:%M:%S.%q}", "2023-11-14 22:13:20.123"),
        ("%d{%S.%Q}", "20.123.456"),
        ("%d", "2023-11-14 22:13:20"),
        ("%l %L %b %M", "/src/streamconv/model.py:42 42 model.py f"),
        ("100%% %m", "100% hello"),
        ("%x<%X{key}>", "<>"),
        ("%z %Y{a} %", "%z %Y{a} %"),  # unknown conversions stay as written
        ("%i", None),
        ("%t", "MainThread"),
    ],
)
def test_pattern_conversions(pattern: str, expected: str | None) -> None:
    text = PatternFormatter(pattern).format(record())
    if expected is None:
        assert text.isdigit()
    else:
        assert text == expected


def test_pattern_local_time_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SC_TEST_VAR", "value")
    rec = record()
    local = time.strftime("%H:%M:%S", time.localtime(rec.created))
    assert PatternFormatter("%D{%H:%M:%S} %E{SC_TEST_VAR}").format(rec) == f"{local} value"


@pytest.mark.parametrize(
    ("level", "name"),
    [
        (logging.CRITICAL, "FATAL"),
        (logging.ERROR, "ERROR"),
        (logging.WARNING, "WARN"),
        (logging.INFO, "INFO"),
        (logging.DEBUG, "DEBUG"),
        (TRACE, "TRACE"),
    ],
)
def test_level_names(level: int, name: str) -> None:
    assert PatternFormatter("%p %P").format(record(level=level)) == f"{name} {name[0]}"


def test_pattern_repr() -> None:
    assert repr(PatternFormatter("%P: %m%n")) == "PatternFormatter('%P: %m%n')"


# --- log4cplus files ----------------------------------------------------------------------------

# A trimmed copy of DCMTK's oflog/etc/logger.cfg.
DCMTK_LOGGER_CFG = """\
# This is an example config file for oflog.
#
# So, if you want to to catch all log messages, just configure the root logger:
log4cplus.rootLogger = DEBUG, console

log4cplus.appender.console = log4cplus::ConsoleAppender
log4cplus.appender.console.logToStderr = true
log4cplus.appender.console.ImmediateFlush = true
log4cplus.appender.console.layout = log4cplus::PatternLayout
log4cplus.appender.console.layout.ConversionPattern = %D{%H:%M:%S} %p - %m%n

# dcmdata's logger inherits its level, sends events to dcmdata_logger only
log4cplus.logger.dcmtk.dcmdata = INHERIT, dcmdata_logger
log4cplus.appender.dcmdata_logger = log4cplus::NullAppender
log4cplus.additivity.dcmtk.dcmdata = false

#log4cplus.appender.dcmnet_logger = log4cplus::RollingFileAppender
#log4cplus.appender.dcmnet_logger.MaxFileSize = 500KB
log4cplus.appender.dcmnet_logger = log4cplus::DailyRollingFileAppender
log4cplus.appender.dcmnet_logger.File = dcmnet.log
log4cplus.appender.dcmnet_logger.Schedule = twice_daily
log4cplus.appender.dcmnet_logger.MaxBackupIndex = 5

log4cplus.logger.dcmtk.dcmnet = INHERIT, dcmnet_logger, dcmnet_cons_logger
log4cplus.additivity.dcmtk.dcmnet = false
log4cplus.appender.dcmnet_logger.layout = log4cplus::PatternLayout
log4cplus.appender.dcmnet_logger.layout.ConversionPattern = %D{%H:%M:%S} %p - %m%n

log4cplus.appender.dcmnet_cons_logger = log4cplus::ConsoleAppender
log4cplus.appender.dcmnet_cons_logger.filters.1 = log4cplus::spi::LogLevelRangeFilter
log4cplus.appender.dcmnet_cons_logger.filters.1.logLevelMin = warn
log4cplus.appender.dcmnet_cons_logger.filters.1.logLevelMax = fatal
log4cplus.appender.dcmnet_cons_logger.filters.1.acceptOnMatch = true
log4cplus.appender.dcmnet_cons_logger.filters.2 = log4cplus::spi::DenyAllFilter
"""

STAMP = r"\d\d:\d\d:\d\d"


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_dcmtk_example_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    err = io.StringIO()
    setup_logging(config_file=write(tmp_path / "logger.cfg", DCMTK_LOGGER_CFG), stream=err)
    assert logging.getLogger().level == logging.DEBUG
    logging.getLogger("streamconv.cli").debug("from the front end")
    # dcmtk.dcmdata: the library's loggers, by the names its modules really log under
    logging.getLogger("streamconv.core.build").warning("from the library")
    logging.getLogger("streamconv.sinks").warning("from the writer")
    net = logging.getLogger("dcmtk.dcmnet")
    net.info("net info")
    net.warning("net warning")
    reset_logging()  # closes dcmnet.log
    assert re.fullmatch(rf"{STAMP} DEBUG - from the front end\n", err.getvalue())
    # dcmnet_cons_logger: no logToStdErr means stdout; SimpleLayout; warn..fatal only
    assert capsys.readouterr().out == "WARN - net warning\n"
    lines = (tmp_path / "dcmnet.log").read_text(encoding="utf-8").splitlines()
    assert [line[9:] for line in lines] == ["INFO - net info", "WARN - net warning"]
    assert all(re.match(STAMP, line) for line in lines)


def test_file_and_console_appenders(tmp_path: Path) -> None:
    log_file = tmp_path / "out.log"
    cfg = write(
        tmp_path / "two.cfg",
        f"""\
log4cplus.rootLogger = INFO, console, logfile
log4cplus.appender.console = log4cplus::ConsoleAppender
log4cplus.appender.console.logToStdErr = true
log4cplus.appender.console.Threshold = ERROR
log4cplus.appender.console.layout = log4cplus::PatternLayout
log4cplus.appender.console.layout.ConversionPattern = %P: %m%n
log4cplus.appender.logfile = log4cplus::FileAppender
log4cplus.appender.logfile.File = {log_file}
log4cplus.appender.logfile.Append = true
log4cplus.appender.logfile.layout = log4cplus::PatternLayout
log4cplus.appender.logfile.layout.ConversionPattern = %D{{%Y-%m-%d %H:%M:%S.%q}} %5p [%-8c{{1}}] %m%n
""",
    )
    log_file.write_text("kept\n", encoding="utf-8")
    err = io.StringIO()
    setup_logging(config_file=cfg, stream=err)
    emit_all(logging.getLogger("streamconv.encode"))
    reset_logging()
    assert err.getvalue() == "E: error\nF: fatal\n"
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "kept"  # Append = true
    assert [line[24:] for line in lines[1:]] == [
        " INFO [encode  ] info",
        " WARN [encode  ] warn",
        "ERROR [encode  ] error",
        "FATAL [encode  ] fatal",
    ]
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ", line) for line in lines[1:])


def test_file_appender_truncates_by_default(tmp_path: Path) -> None:
    log_file = tmp_path / "trunc.log"
    log_file.write_text("old\n", encoding="utf-8")
    cfg = write(
        tmp_path / "t.cfg",
        f"log4cplus.rootLogger = WARN, f\n"
        f"log4cplus.appender.f = log4cplus::FileAppender\n"
        f"log4cplus.appender.f.File = {log_file}\n",
    )
    setup_logging(config_file=cfg)
    LOG.warning("new")
    reset_logging()
    assert log_file.read_text(encoding="utf-8") == "WARN - new\n"  # SimpleLayout


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("5MB", 5 * 1024 * 1024),
        ("500KB", 500 * 1024),
        ("500kb", 500 * 1024),
        ("1GB", 1024**3),
        ("123456", 123456),
        (" 10 MB ", 10 * 1024 * 1024),
    ],
)
def test_parse_file_size(text: str, size: int) -> None:
    assert parse_file_size(text) == size


@pytest.mark.parametrize("text", ["", "MB", "5TB", "-1", "1.5MB", "five"])
def test_parse_file_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid file size"):
        parse_file_size(text)


def test_rolling_file_appender(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "roll.cfg",
        f"""\
log4cplus.rootLogger = DEBUG, roll, small
log4cplus.appender.roll = log4cplus::RollingFileAppender
log4cplus.appender.roll.File = {tmp_path}/roll.log
log4cplus.appender.roll.MaxFileSize = 5MB
log4cplus.appender.roll.MaxBackupIndex = 10
log4cplus.appender.small = log4cplus::RollingFileAppender
log4cplus.appender.small.File = {tmp_path}/small.log
log4cplus.appender.small.MaxFileSize = 1KB
""",
    )
    setup_logging(config_file=cfg)
    rolling = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.handlers.RotatingFileHandler)
    ]
    limits = sorted((h.maxBytes, h.backupCount) for h in rolling)
    # log4cplus never rolls below 200KB; MaxBackupIndex defaults to 1
    assert limits == [(200 * 1024, 1), (5 * 1024 * 1024, 10)]


def test_variable_substitution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SC_LOG_SUFFIX", "env")
    cfg = write(
        tmp_path / "vars.cfg",
        f"""\
logdir = {tmp_path}
name = ${{appname}}-${{SC_LOG_SUFFIX}}${{undefined}}
level = INFO
log4cplus.rootLogger = ${{level}}, file
log4cplus.appender.file = log4cplus::FileAppender
log4cplus.appender.file.File = ${{logdir}}/${{name}}.log
log4cplus.appender.file.layout = log4cplus::PatternLayout
log4cplus.appender.file.layout.ConversionPattern = ${{pid}} %m%n
""",
    )
    setup_logging(config_file=cfg, appname="json2dcm")
    LOG.info("substituted")
    reset_logging()
    text = (tmp_path / "json2dcm-env.log").read_text(encoding="utf-8")
    assert re.fullmatch(r"\d+ substituted\n", text)


def test_continuation_and_comments(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "cont.cfg",
        "! a Java-style comment\n"
        "# a log4cplus comment\n"
        "log4cplus.rootLogger = INFO, \\\n"
        "    console\n"
        "log4cplus.appender.console = log4cplus::ConsoleAppender\n"
        "log4cplus.appender.console.logToStdErr = true\n"
        "log4cplus.appender.console.layout = log4cplus::TTCCLayout\n",
    )
    err = io.StringIO()
    setup_logging(config_file=cfg, stream=err)
    LOG.info("ttcc")
    assert re.fullmatch(
        r"\d+ \[MainThread\] INFO streamconv\.test_logsetup <> - ttcc\n", err.getvalue()
    )


def test_filters_level_match_and_string_match(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "filters.cfg",
        """\
log4cplus.rootLogger = TRACE, c
log4cplus.appender.c = log4cplus::ConsoleAppender
log4cplus.appender.c.logToStdErr = true
log4cplus.appender.c.layout = log4cplus::PatternLayout
log4cplus.appender.c.layout.ConversionPattern = %P %m%n
log4cplus.appender.c.filters.1 = log4cplus::spi::StringMatchFilter
log4cplus.appender.c.filters.1.StringToMatch = secret
log4cplus.appender.c.filters.1.AcceptOnMatch = false
log4cplus.appender.c.filters.2 = log4cplus::spi::LogLevelMatchFilter
log4cplus.appender.c.filters.2.LogLevelToMatch = TRACE
log4cplus.appender.c.filters.2.AcceptOnMatch = false
""",
    )
    err = io.StringIO()
    setup_logging(config_file=cfg, stream=err)
    emit_all()
    LOG.error("a secret")
    assert err.getvalue() == "D debug\nI info\nW warn\nE error\nF fatal\n"


def test_dcmtk_logger_names_map_to_streamconv(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "names.cfg",
        """\
log4cplus.rootLogger = WARN, c
log4cplus.logger.dcmtk.apps.json2dcm = DEBUG
log4cplus.logger.streamconv.watch = ERROR
log4cplus.appender.c = log4cplus::ConsoleAppender
log4cplus.appender.c.logToStdErr = true
log4cplus.appender.c.layout = log4cplus::PatternLayout
log4cplus.appender.c.layout.ConversionPattern = %P %c %m%n
""",
    )
    err = io.StringIO()
    setup_logging(config_file=cfg, stream=err)
    logging.getLogger("streamconv.cli").debug("cli")
    logging.getLogger("streamconv.watch").warning("hidden")
    logging.getLogger("streamconv.model").debug("hidden")
    assert err.getvalue() == "D streamconv.cli cli\n"
    reset_logging()
    assert logging.getLogger("streamconv.cli").level == logging.NOTSET


def test_ini_config_accepted(tmp_path: Path) -> None:
    log_file = tmp_path / "ini.log"
    cfg = write(
        tmp_path / "logging.ini",
        f"""\
[loggers]
keys = root

[handlers]
keys = file

[formatters]
keys = plain

[logger_root]
level = INFO
handlers = file

[handler_file]
class = FileHandler
formatter = plain
args = ({str(log_file)!r}, "w", "utf-8")

[formatter_plain]
format = %(levelname)s:%(message)s
""",
    )
    setup_logging(config_file=cfg)
    LOG.debug("hidden")
    LOG.info("from ini")
    reset_logging()
    assert log_file.read_text(encoding="utf-8") == "INFO:from ini\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("", "does not set up log4cplus.rootLogger"),
        ("# only comments\n", "does not set up log4cplus.rootLogger"),
        ("log4cplus.logger.x = DEBUG\n", "does not set up log4cplus.rootLogger"),
        ("log4cplus.rootLogger = LOUD\n", "unknown log level 'LOUD'"),
        ("log4cplus.rootLogger = INFO, nowhere\n", "appender 'nowhere' is not defined"),
        (
            "log4cplus.rootLogger = INFO, s\nlog4cplus.appender.s = log4cplus::SocketAppender\n",
            "unsupported appender 'SocketAppender'",
        ),
        (
            "log4cplus.rootLogger = INFO, f\nlog4cplus.appender.f = log4cplus::FileAppender\n",
            "File is not set",
        ),
        (
            "log4cplus.rootLogger = INFO, f\nlog4cplus.appender.f = log4cplus::RollingFileAppender\n"
            "log4cplus.appender.f.File = x.log\nlog4cplus.appender.f.MaxFileSize = big\n",
            "invalid file size",
        ),
        (
            "log4cplus.rootLogger = INFO, f\nlog4cplus.appender.f = log4cplus::FileAppender\n"
            "log4cplus.appender.f.File = /nonexistent-dir/x.log\n",
            "cannot open",
        ),
        ("[loggers]\nkeys = root\n", "invalid logging configuration file"),
    ],
)
def test_bad_files_rejected(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "bad.cfg"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    before = list(logging.getLogger().handlers)
    with pytest.raises(ValueError, match=message) as excinfo:
        setup_logging(config_file=str(path))
    assert str(path) in str(excinfo.value)
    assert logging.getLogger().handlers == before


def test_directory_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be read"):
        setup_logging(config_file=str(tmp_path))


def test_bad_file_keeps_previous_setup(tmp_path: Path) -> None:
    out = io.StringIO()
    setup_logging("info", stream=out)
    with pytest.raises(ValueError):
        setup_logging(config_file=str(tmp_path / "missing.cfg"))
    LOG.info("still here")
    assert out.getvalue() == "I: still here\n"


def test_dcmtk_logger_names_stand_for_modules_that_exist() -> None:
    # a -lc file's dcmtk.dcmdata / dcmtk.apps must reach real loggers: after a module moves,
    # a name left behind would silently match nothing
    import importlib.util

    from streamconv.logsetup import DCMTK_LOGGERS

    names = {name for names in DCMTK_LOGGERS.values() for name in names}
    assert "streamconv.core" in DCMTK_LOGGERS["dcmtk.dcmdata"]
    assert "streamconv.batch" in DCMTK_LOGGERS["dcmtk.apps"]
    missing = sorted(n for n in names if importlib.util.find_spec(n) is None)
    assert missing == []
