"""Module-level regular expressions compiled on first use (issue 11 start-up).

Compiling a pattern costs 0.02-0.15 ms; a one-shot json2dcm run compiled some twenty at
import and used four.  ``_X = lazy_compile(r"...")`` is used as the compiled pattern it
stands for (type checkers see a :class:`re.Pattern`): the first attribute looked up on it
compiles the pattern and keeps what was looked up on the instance, so every later call
(``_X.search(...)``) costs what a plain module-level pattern costs.  Nor is :mod:`re`
itself imported before a pattern is used: a plain one-shot conversion uses none (the
patterns it once used on every run have C-speed ``str``/``bytes`` equivalents), and ``re``
with the ``enum`` it pulls in is ~3 ms of start-up where the console script does not import
it (pip >= 25, uv).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    import re
    from typing import Any, AnyStr

__all__ = ["LazyPattern", "lazy_compile"]


class LazyPattern:
    """Stands for ``re.compile(pattern, flags)``, compiled on the first attribute used."""

    def __init__(self, pattern: str | bytes, flags: int = 0) -> None:
        self._args: tuple[Any, int] = (pattern, flags)  # str or bytes

    def __getattr__(self, name: str) -> object:
        # only called for a name not yet on the instance: compile, and keep the attribute
        # (a bound method of the compiled pattern) so that it is found directly next time
        if name.startswith("__"):
            raise AttributeError(name)  # copy/pickle probing: not a pattern attribute
        import re  # here: a run that uses no pattern does not import re (~3 ms, with enum)

        value = getattr(re.compile(*self._args), name)
        setattr(self, name, value)
        return value

    def __repr__(self) -> str:
        return f"lazy_compile({self._args[0]!r})"


def lazy_compile(pattern: AnyStr, flags: int = 0) -> re.Pattern[AnyStr]:
    """``re.compile(pattern, flags)``, done on first use (see the module doc)."""
    lazy: re.Pattern[AnyStr] = LazyPattern(pattern, flags)  # type: ignore[assignment]
    return lazy
