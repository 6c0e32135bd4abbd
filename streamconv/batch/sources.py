"""SOURCE arguments -> the inputs of a batch: files, directories, globs, @FILE, URLs.

Each input gets the ``name`` its outputs are named after: the file name without its
extension, with the relative sub-folders of a directory (or glob) SOURCE kept
(``DIR/a/b.json`` -> ``a/b``), always with ``/`` separators.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ..errors import InputError, UsageError
from ..storage import Store, is_url

__all__ = ["EXTENSIONS", "Input", "expand_sources", "name_owners", "stem"]

EXTENSIONS = (".json", ".ndjson")
_MAGIC = frozenset("*?[")


class Input(NamedTuple):
    url: str  # a local path or a URL, as the report shows it
    name: str  # relative output name without extension
    size: int  # bytes; -1 when it could not be found (error says why)
    error: str = ""


def stem(path: str) -> str:
    base = path.rstrip("/").rsplit("/", 1)[-1]
    for ext in (*EXTENSIONS, ".jsonl"):
        if base.lower().endswith(ext):
            return base[: -len(ext)]
    return base


def _rel_name(path: str, base: str) -> str:
    rel = path[len(base) :].lstrip("/") if path.startswith(base) else path.rsplit("/", 1)[-1]
    head, _, tail = rel.rpartition("/")
    return f"{head}/{stem(tail)}" if head else stem(tail)


def _wanted(path: str) -> bool:
    return path.lower().endswith(EXTENSIONS)


def _read_list(name: str) -> list[str]:
    """@FILE: one source per line (blank lines and lines starting with '#' ignored)."""
    try:
        with open(name, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read source list '{name}': {exc}") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def expand_sources(
    sources: Iterable[str], storage_options: Mapping[str, Any] | None = None
) -> list[Input]:
    """Every input in order of the arguments, each once (the first mention wins)."""
    out: list[Input] = []
    seen: set[str] = set()
    stores: dict[str, Store] = {}

    def store_for(url: str) -> Store:
        key = url.split("://", 1)[0] if is_url(url) else "file"
        if key not in stores:
            stores[key] = Store.for_url(url, storage_options)
        return stores[key]

    def add(url: str, name: str, size: int, error: str = "") -> None:
        if url not in seen:
            seen.add(url)
            out.append(Input(url, name, size, error))

    def expand(source: str, depth: int = 0) -> None:
        if source.startswith("@") and len(source) > 1:
            if depth > 8:
                raise UsageError(f"source lists nested too deeply at '{source}'")
            for line in _read_list(source[1:]):
                expand(line, depth + 1)
            return
        try:
            store = store_for(source)
        except InputError as exc:
            add(source, stem(source), -1, exc.message)
            return
        local = store.local
        path = store.local_path(source) if local else source
        if any(c in _MAGIC for c in path):
            base = path
            while any(c in _MAGIC for c in base):
                base = base.rsplit("/", 1)[0] if "/" in base else ""
            try:
                matches = store.glob(path)
            except InputError as exc:
                add(source, stem(source), -1, exc.message)
                return
            if not matches:
                add(source, stem(source), -1, "no file matches the pattern")
            for p, size in matches.items():
                add(p, _rel_name(p, _norm_base(base, store)), size)
            return
        if store.isdir(path) or (not local and source.endswith("/")):
            if local:
                path = os.path.normpath(path)
            base = path.rstrip("/")
            try:
                sizes = store.find(path)
            except InputError as exc:
                add(source, stem(source), -1, exc.message)
                return
            files = sorted(p for p in sizes if _wanted(p))
            for p in files:
                add(p, _rel_name(p, _norm_base(base, store)), sizes[p])
            if not files:
                add(source, stem(source), -1, "no *.json or *.ndjson file in it")
            return
        try:
            size = store.size(path)
        except InputError as exc:
            add(source, stem(source), -1, exc.message)
            return
        add(source if not local else path, stem(path), size)

    for source in sources:
        expand(source)
    return out


def name_owners(inputs: Iterable[Input]) -> dict[str, str]:
    """Inputs whose outputs would take an earlier input's names -> that earlier input.

    Every output of an input is named after its ``name`` (``NAME.dcm``, ``NAME/000000.dcm``,
    a template's names inside ``NAME``'s folder), so two inputs with one name (``a.json`` and
    ``a.ndjson``; ``x/a.json`` and ``y/a.json`` given as two file SOURCEs) would write over
    each other's outputs.  The first one in SOURCE order keeps the name, as in the daemon;
    inputs that could not be found write nothing and take no name.
    """
    owner: dict[str, str] = {}
    taken: dict[str, str] = {}
    for inp in inputs:
        if inp.size < 0:
            continue
        first = owner.setdefault(inp.name, inp.url)
        if first != inp.url:
            taken[inp.url] = first
    return taken


def _norm_base(base: str, store: Store) -> str:
    if store.local:
        return base
    return store.full(base.split("://", 1)[-1]) if "://" in base else base
