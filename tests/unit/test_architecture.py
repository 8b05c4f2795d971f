"""The shape of the house: no import cycle, no long module, few loose modules.

The layers themselves are import-linter's contracts (`[tool.importlinter]` in
pyproject.toml, `lint-imports` in `make lint`); these are the rules it has no contract for.
Imports inside functions and under TYPE_CHECKING count: a cycle that only a lazy import
hides still ties the two modules together.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("service", "connectors")
MAX_LINES = 500
MAX_LOOSE = 6  # modules at the root of service/, __init__.py not counted

Graph = dict[str, set[str]]


@cache
def imports() -> Graph:
    """Module -> the modules it imports, within PACKAGES.

    `from a.b import c` of a submodule `c` runs a/b/__init__.py too: grimp records only
    a.b.c, so the package is added (a package that imports its own submodule, and that
    submodule importing it back this way, is a cycle)."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False, cache_dir=None)
    found: Graph = {module: set() for module in graph.modules}
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            found[importer].add(imported)
            for detail in graph.get_import_details(importer=importer, imported=imported):
                words = detail["line_contents"].split()
                named = words[1] if words[:1] == ["from"] and len(words) > 1 else ""
                if named in found and named != importer and imported.startswith(named + "."):
                    found[importer].add(named)
    return found


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle (shortest from its first module) per strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(start: str) -> None:
        # Tarjan's algorithm, iterative: the graph's depth is no business of the recursion limit.
        work: list[tuple[str, Iterable[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            module, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[module] = min(low[module], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[module])
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [_shortest_cycle(graph, set(c), c[0]) for c in components]


def _shortest_cycle(graph: Graph, within: set[str], start: str) -> list[str]:
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        module = queue.popleft()
        for target in sorted(graph[module] & within):
            if target == start:
                path = [module]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if target not in came_from:
                came_from[target] = module
                queue.append(target)
    raise AssertionError(f"{start} is in a component but on no cycle")


def test_the_cycle_finder_finds_a_cycle_and_says_where() -> None:
    graph: Graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_holds_lazy_and_type_checking_imports() -> None:
    graph = imports()
    assert "service.devtools.demo.main" in graph["service.cli.main"]  # inside `demo()`
    assert "service.entrypoints.admin" in graph["service.app.runner"]  # TYPE_CHECKING, lazy
    # `from service.devtools.demo import summary` runs the package's __init__ too
    assert "service.devtools.demo" in graph["service.devtools.demo.run"]


def test_no_import_cycle() -> None:
    found = cycles(imports())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_module_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_few_modules_are_loose_at_the_root_of_service() -> None:
    loose = sorted(p.name for p in (ROOT / "service").glob("*.py") if p.name != "__init__.py")
    assert len(loose) <= MAX_LOOSE, f"{len(loose)} loose modules in service/: {loose}"
