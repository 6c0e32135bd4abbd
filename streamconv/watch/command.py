"""The command line: ``streamconv watch INBOX --output-dir DIR ...`` or ``--config FILE``.

``main(argv) -> int``: 0 after a drain, 1 for usage and configuration errors.  Logging is set
up here (the front end), in DCMTK's look, or journald's when stderr is the journal.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import anyio

from .. import __version__
from ..errors import UsageError
from ..service import JournalFormatter, Notifier, ServiceSignals, stderr_is_journal
from .config import (
    ConfigError,
    LogSettings,
    WatchConfig,
    config_from_args,
    load_config,
    log_settings,
    parse_command_line,
    usage,
)
from .daemon import StartupError, Watcher

__all__ = ["main"]

logger = logging.getLogger(__name__)


def _setup_logging(settings: LogSettings) -> None:
    from ..logsetup import setup_logging

    setup_logging(settings.level, settings.config_file, stream=sys.stderr, appname="streamconv")
    # watchfiles logs every batch ("N changes detected") at info: not one line per input
    logging.getLogger("watchfiles").setLevel(max(logging.WARNING, logging.getLogger().level))
    if settings.config_file is None and stderr_is_journal():
        # one "<N>message" line per event; journald adds the time (SyslogLevelPrefix=)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setFormatter(JournalFormatter())
                handler.terminator = "\n"


async def _main_async(config: WatchConfig, loader: Callable[[], WatchConfig]) -> None:
    notifier = Notifier()
    watcher = Watcher(config, notifier=notifier, loader=loader)
    async with ServiceSignals(on_reload=watcher.reload, notifier=notifier) as signals:
        await watcher.run(shutdown_trigger=signals.wait_drain)
    if signals.exit_requested.is_set():
        logger.warning("exited at once; inputs in flight stay in processing/ for the next start")


def main(argv: list[str] | None = None) -> int:
    """``streamconv watch ...``: returns the exit code (0 after a drain, 1 for usage errors)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stdout.write(usage())
        return 0
    try:
        cmd = parse_command_line(args)
        if cmd.daemon.get("help"):
            sys.stdout.write(usage())
            return 0
        if cmd.daemon.get("version"):
            sys.stdout.write(f"streamconv watch {__version__}\n")
            return 0
        settings = log_settings(cmd)
        config = config_from_args(cmd)
    except UsageError as exc:
        sys.stderr.write(f"streamconv watch: error: {exc.message}\n")
        return 1
    try:
        _setup_logging(settings)
    except ValueError as exc:
        sys.stderr.write(f"streamconv watch: error: {exc}\n")
        return 1
    if config.source is not None:
        source = config.source
        loader: Callable[[], WatchConfig] = lambda: load_config(source)  # noqa: E731
    else:
        loader = lambda: config_from_args(parse_command_line(args))  # noqa: E731
    try:
        anyio.run(_main_async, config, loader)
    except ConfigError as exc:
        logger.error("%s", exc.message)
        return 1
    except (OSError, StartupError) as exc:
        logger.error("cannot run: %s", exc)
        return 1
    return 0
