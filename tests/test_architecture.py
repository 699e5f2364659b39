"""The architecture, checked: layers only import downwards, no two packages import each other
(directly or round a longer loop), and no module grows past a size a reader can hold.

Every import counts, including those inside functions and under TYPE_CHECKING (grimp reads them
all). The layer order lives in pyproject.toml's import-linter contract; docs/architecture.md
explains it.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest
from importlinter.application.use_cases import lint_imports
from importlinter.configuration import configure

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mediagen"
MAX_MODULE_LINES = 520  # "about 500": a little slack so a docstring does not force a split
# Pure data tables of the synth engine (styles, patterns, vocabulary) may run longer.
DATA_TABLES = {"engines/synth/styles.py", "engines/synth/vocabulary.py", "engines/synth/patterns.py"}


def top_level_graph() -> dict[str, set[str]]:
    """Imports between the package's top-level modules and subpackages."""
    graph = grimp.build_graph("mediagen", cache_dir=None)
    edges: dict[str, set[str]] = {}
    for importer in graph.modules:
        src = ".".join(importer.split(".")[:2])
        for imported in graph.find_modules_directly_imported_by(importer):
            dst = ".".join(imported.split(".")[:2])
            if dst.startswith("mediagen.") and dst != src:
                edges.setdefault(src, set()).add(dst)
            edges.setdefault(dst, set())
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle in the graph as a path, or None (iterative DFS with colours)."""
    colour = dict.fromkeys(edges, 0)  # 0 new, 1 on the stack, 2 done
    for start in sorted(edges):
        if colour[start]:
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(edges[start]))]
        path = [start]
        colour[start] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                colour[node] = 2
                stack.pop()
                path.pop()
                continue
            nxt = todo.pop()
            if colour[nxt] == 1:
                return path[path.index(nxt) :] + [nxt]
            if colour[nxt] == 0:
                colour[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(edges[nxt])))
    return None


def test_no_import_cycle_between_packages() -> None:
    edges = top_level_graph()
    assert "mediagen.generations" in edges and "mediagen.api" in edges  # the graph is really built
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges) or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_layers_contract_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    configure()  # what the `lint-imports` command does before it reads the contracts
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_logo=True, cache_dir=None)


def test_every_package_is_in_a_layer() -> None:
    """A new top-level module must be placed in the layer order, or the contract cannot see it."""
    config = (ROOT / "pyproject.toml").read_text()
    layered = config.split("[tool.importlinter]", 1)[1]
    missing = [
        name
        for name in sorted(top_level_graph())
        if name != "mediagen.__init__" and f'"{name}' not in layered and f"| {name}" not in layered
    ]
    assert missing == []


def test_modules_stay_small() -> None:
    big = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES and rel not in DATA_TABLES and "migrations/" not in rel:
            big[rel] = lines
    assert big == {}
