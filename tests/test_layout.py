"""The package's shape, checked over its imports (README "Layout").

1. ``core/`` imports only ``core/``, ``options`` and ``errors`` (never anyio, never an edge or
   a front end);
2. no front end imports another (only ``umbrella`` sees them all);
3. no import circle between modules; no module over 800 lines.

Imports are read with :mod:`ast`, function-level (lazy) imports included: a lazy import is
still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "streamconv"

FRONT_ENDS = {"cli", "stream", "watch", "batch"}
CORE_MAY_IMPORT = {"core", "options", "errors"}
THIRD_PARTY_FORBIDDEN_IN_CORE = {"anyio", "watchfiles", "tqdm", "dask", "distributed"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports_of(name: str, path: Path) -> set[str]:
    """Absolute names of everything *path* imports (streamconv modules and third parties)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            found.add(target)
            # `from . import x` / `from .core import pipeline`: the submodules themselves
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                if candidate in MODULES:
                    found.add(candidate)
    return found


MODULES = modules()


def internal(names: set[str]) -> set[str]:
    """The streamconv modules among *names* (a name inside a module counts as that module)."""
    out = set()
    for n in names:
        while n and n not in MODULES:
            n = n.rpartition(".")[0]
        if n and n != "streamconv":
            out.add(n)
    return out


def area(name: str) -> str:
    """The first component below the package: core, options, watch, cli, ..."""
    return name.split(".")[1] if "." in name else ""


GRAPH = {name: internal(imports_of(name, path)) - {name} for name, path in MODULES.items()}


@pytest.mark.parametrize("name", sorted(n for n in MODULES if area(n) == "core"))
def test_core_imports_only_core_options_errors(name: str) -> None:
    outside = {m for m in GRAPH[name] if area(m) not in CORE_MAY_IMPORT}
    assert not outside, f"{name} imports {sorted(outside)}"
    third = {
        n.split(".")[0]
        for n in imports_of(name, MODULES[name])
        if n.split(".")[0] in THIRD_PARTY_FORBIDDEN_IN_CORE
    }
    assert not third, f"{name} imports {sorted(third)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_front_ends_never_import_one_another(name: str) -> None:
    own = area(name)
    others = {m for m in GRAPH[name] if area(m) in FRONT_ENDS and area(m) != own}
    if own == "umbrella":
        return  # the one place that sees every command
    assert not others, f"{name} imports the front end(s) {sorted(others)}"


def test_no_import_circle() -> None:
    # Tarjan-free: depth-first search for a back edge, reporting the cycle found
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(GRAPH[n]):
            if m.startswith(n + "."):
                continue  # a package importing its own submodules is not a circle
            if state.get(m) == 1:
                pytest.fail("import circle: " + " -> ".join([*stack[stack.index(m) :], m]))
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(GRAPH):
        if n not in state:
            visit(n)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name: str) -> None:
    lines = MODULES[name].read_text().count("\n")
    assert lines <= 800, f"{name}: {lines} lines"


def test_the_rules_see_a_violation(tmp_path: Path) -> None:
    """The checker itself: a core module importing anyio and a front end is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("import anyio\nfrom ..cli import main\n")
    found = imports_of("streamconv.core.bad", bad)
    assert "anyio" in found
    assert "streamconv.cli" in internal(found)
