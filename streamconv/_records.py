"""Run-time stand-ins for ``typing.NamedTuple`` and ``enum.Enum`` (json2dcm start-up, issue 11).

Type checkers see the real ones (``TYPE_CHECKING`` imports in options.py); at run time the
same class statements build these.  Why: ``collections.namedtuple`` compiles a ``__new__``
from source for every class (~60 us of its ~85 us) and ``enum.Enum``'s metaclass is slow
to create classes; the option records and enums alone cost ~0.6 ms of a one-shot run whose
own work is ~2.5 ms.

- :class:`NamedTuple`: ``class X(NamedTuple): field: type = default`` makes a tuple
  subclass with what ``collections.namedtuple`` gives (fields as C getters, ``_fields``,
  ``_field_defaults``, ``_make``, ``_replace``, ``_asdict``, ``__repr__``, pickling by
  module and name) and the class body's other names (methods, docstring).
- :class:`Enum`: ``class X(Enum): NAME = value`` makes one singleton member a name, with
  ``.name``, ``.value``, ``X(value)``, ``X[name]``, iteration in definition order,
  ``repr``/``str`` as enum's, and pickling that gives the same member back.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up, see options.py)
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any

try:
    from _collections import _tuplegetter  # type: ignore[import-not-found]  # namedtuple's
except ImportError:  # pragma: no cover - another Python

    def _tuplegetter(index: int, doc: str) -> Any:
        from operator import itemgetter

        return property(itemgetter(index), doc=doc)


__all__ = ["Enum", "NamedTuple"]

_MISSING = object()


def _record_class(name: str, ns: dict[str, Any]) -> type:
    fields: tuple[str, ...] = tuple(ns.get("__annotations__", {}))
    defaults = tuple(ns[f] for f in fields if f in ns)
    count, first_default = len(fields), len(fields) - len(defaults)
    if any(f not in ns for f in fields[first_default:]):
        raise TypeError(f"{name}: a field without a default follows one with a default")
    index = {f: i for i, f in enumerate(fields)}

    def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        # the rules of a function signature (field1, field2=default, ...)
        if len(args) > count:
            raise TypeError(f"{name}() takes {count} arguments but {len(args)} were given")
        values = [*args, *[_MISSING] * (count - len(args))]
        for key, value in kwargs.items():
            i = index.get(key)
            if i is None:
                raise TypeError(f"{name}() got an unexpected keyword argument '{key}'")
            if i < len(args):
                raise TypeError(f"{name}() got multiple values for argument '{key}'")
            values[i] = value
        for i in range(len(args), count):
            if values[i] is _MISSING:
                if i < first_default:
                    raise TypeError(f"{name}() missing required argument: '{fields[i]}'")
                values[i] = defaults[i - first_default]
        return values

    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:
        if kwargs or len(args) != count:
            return tuple.__new__(cls, bind(args, kwargs))
        return tuple.__new__(cls, args)

    def _make(cls: type, iterable: Iterable[Any]) -> Any:
        result: tuple[Any, ...] = tuple.__new__(cls, iterable)
        if len(result) != count:
            raise TypeError(f"Expected {count} arguments, got {len(result)}")
        return result

    def _replace(self: tuple[Any, ...], **kwargs: Any) -> Any:
        result = self._make(kwargs.pop(f, v) for f, v in zip(fields, self, strict=True))  # type: ignore[attr-defined]
        if kwargs:
            raise ValueError(f"Got unexpected field names: {list(kwargs)!r}")
        return result

    def __repr__(self: tuple[Any, ...]) -> str:
        shown = ", ".join(f"{f}={v!r}" for f, v in zip(fields, self, strict=True))
        return f"{type(self).__name__}({shown})"

    def _asdict(self: tuple[Any, ...]) -> dict[str, Any]:
        return dict(zip(fields, self, strict=True))

    def __getnewargs__(self: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(self)

    body: dict[str, Any] = {
        "__slots__": (),
        "__doc__": f"{name}({', '.join(fields)})",
        "_fields": fields,
        "_field_defaults": dict(zip(fields[first_default:], defaults, strict=True)),
        "__match_args__": fields,
        "__new__": __new__,
        "_make": classmethod(_make),
        "_replace": _replace,
        "__repr__": __repr__,
        "_asdict": _asdict,
        "__getnewargs__": __getnewargs__,
    }
    for i, f in enumerate(fields):
        body[f] = _tuplegetter(i, f"Alias for field number {i}")
    for key, value in ns.items():
        if key not in index and key not in ("__annotations__", "__qualname__"):
            body[key] = value  # methods, docstring, __module__
    cls = type(name, (tuple,), body)
    cls.__qualname__ = ns.get("__qualname__", name)
    return cls


class _RecordMeta(type):
    def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> type:
        if not bases:  # NamedTuple itself
            return super().__new__(mcls, name, bases, ns)
        return _record_class(name, ns)


class NamedTuple(metaclass=_RecordMeta):
    """Base of the option records (see the module doc)."""


class _EnumMeta(type):
    _member_map_: dict[str, Any]
    _value2member_map_: dict[Any, Any]

    def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> type:
        members = [(k, v) for k, v in ns.items() if bases and not k.startswith("_")]
        body = {k: v for k, v in ns.items() if not (bases and not k.startswith("_"))}
        cls = super().__new__(mcls, name, bases, body)
        cls._member_map_ = {}
        cls._value2member_map_ = {}
        for key, value in members:
            member: Any = object.__new__(cls)  # type: ignore[arg-type]
            member._name_ = key
            member._value_ = value
            cls._member_map_[key] = member
            cls._value2member_map_.setdefault(value, member)  # a repeated value: an alias
            type.__setattr__(cls, key, member)
        return cls

    def __call__(cls, value: Any) -> Any:
        try:
            return cls._value2member_map_[value]
        except (KeyError, TypeError):
            raise ValueError(f"{value!r} is not a valid {cls.__qualname__}") from None

    def __getitem__(cls, name: str) -> Any:
        return cls._member_map_[name]

    def __iter__(cls) -> Iterator[Any]:
        return iter(list(dict.fromkeys(cls._member_map_.values())))

    def __len__(cls) -> int:
        return len(cls._member_map_)

    def __contains__(cls, member: object) -> bool:
        name = getattr(member, "_name_", None)
        return isinstance(member, cls) and cls._member_map_.get(name) is member

    def __setattr__(cls, key: str, value: Any) -> None:
        if key in cls.__dict__.get("_member_map_", ()):
            raise AttributeError(f"cannot reassign member '{key}'")
        super().__setattr__(key, value)


class Enum(metaclass=_EnumMeta):
    """Base of the option enums (see the module doc)."""

    __slots__ = ("_name_", "_value_")
    _name_: str
    _value_: Any

    @property
    def name(self) -> str:
        return self._name_

    @property
    def value(self) -> Any:
        return self._value_

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self._name_}: {self._value_!r}>"

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self._name_}"

    def __hash__(self) -> int:
        return hash(self._name_)

    def __reduce_ex__(self, protocol: object) -> tuple[Any, ...]:
        return getattr, (type(self), self._name_)  # the same member back

    def __copy__(self) -> Enum:
        return self

    def __deepcopy__(self, memo: object) -> Enum:
        return self
