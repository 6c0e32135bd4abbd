"""Module loggers that import :mod:`logging` only when a record may be emitted (issue 11).

``logging`` pulls in threading, traceback, tokenize, string and weakref: ~7 ms of CPU, a
fifth of a one-shot json2dcm run, which on a plain header logs nothing at all.  A module
says ``log = lazy_logger(__name__)`` instead of ``logging.getLogger(__name__)`` and calls
it as a :class:`logging.Logger` (``debug``, ``info``, ``warning``, ``error``,
``exception``, ``isEnabledFor``); the real logger is made on the first call that can emit.

Nothing changes for a record: a DEBUG or INFO call before anything imported ``logging`` is
dropped, as the real logger would drop it (nothing can have lowered the root logger's
default WARNING level without importing ``logging``); every other call goes to
``logging.getLogger(name)`` with the caller's file and line (``stacklevel``).

Library modules only log; the front end decides the set-up.  A front end whose level lets
DEBUG and INFO records through sets up at once; otherwise it may hand its set-up to
:func:`defer_setup`, run once just before the first real logger is made (the first warning
or error), so that a run that logs nothing never imports ``logging``.
"""

from __future__ import annotations

import sys
from _thread import allocate_lock  # not threading: logging itself would pull that in

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    import logging
    from collections.abc import Callable
    from typing import Any

__all__ = ["INFO", "LazyLogger", "cancel_setup", "defer_setup", "lazy_logger", "logging_used"]

DEBUG = 10  # logging.DEBUG
INFO = 20  # logging.INFO
WARNING = 30  # logging.WARNING: the root logger's level until someone sets another

_lock = allocate_lock()
_pending: list[Callable[[], None]] = []  # a front end's deferred set-up (at most one)


def defer_setup(setup: Callable[[], None]) -> None:
    """Run ``setup`` (a front end's logging set-up, at WARNING or above) once, before the
    first record of a :class:`LazyLogger`; it replaces a set-up deferred earlier."""
    with _lock:
        _pending[:] = [setup]


def cancel_setup() -> None:
    """Forget a deferred set-up that never ran (the front end's run is over)."""
    with _lock:
        _pending.clear()


def logging_used() -> bool:
    """Whether ``logging`` was imported (by a LazyLogger or anyone else)."""
    return sys.modules.get("logging") is not None


def _materialize() -> None:
    """The deferred set-up, if any, exactly once (callers hold no lock)."""
    with _lock:
        setups = _pending[:]
        _pending.clear()
    for setup in setups:
        setup()


class LazyLogger:
    """A stand-in for ``logging.getLogger(name)`` that imports ``logging`` on first need."""

    __slots__ = ("_logger", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: logging.Logger | None = None

    def __repr__(self) -> str:
        return f"LazyLogger({self.name!r})"

    @property
    def logger(self) -> logging.Logger:
        """The real logger (importing ``logging`` and running a deferred set-up first)."""
        found = self._logger
        if found is None:
            if _pending:
                _materialize()
            import logging

            found = self._logger = logging.getLogger(self.name)
        elif _pending:  # a front end deferred its set-up after this logger was made
            _materialize()
        return found

    def isEnabledFor(self, level: int) -> bool:
        if level < WARNING and sys.modules.get("logging") is None:
            return False
        return self.logger.isEnabledFor(level)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        if sys.modules.get("logging") is not None:
            kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
            self.logger.debug(msg, *args, **kwargs)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        if sys.modules.get("logging") is not None:
            kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
            self.logger.info(msg, *args, **kwargs)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.logger.warning(msg, *args, **kwargs)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.logger.error(msg, *args, **kwargs)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.logger.exception(msg, *args, **kwargs)

    def critical(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        self.logger.critical(msg, *args, **kwargs)


def lazy_logger(name: str) -> LazyLogger:
    """``logging.getLogger(name)``, made on first need (see the module doc)."""
    return LazyLogger(name)
