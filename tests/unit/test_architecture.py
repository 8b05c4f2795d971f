"""The shape of the house: no import cycle, no long module, few loose modules.

The layers themselves are import-linter's contracts (`[tool.importlinter]` in
pyproject.toml, `lint-imports` in `make lint`); these are the rules it has no contract for.
Imports inside functions and under TYPE_CHECKING count: a cycle that only a lazy import
hides still ties the two modules together.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("service", "connectors")
MAX_LINES = 500
MAX_LOOSE = 6  # modules at the root of service/, __init__.py not counted


@cache
def imports() -> grimp.ImportGraph:
    """The import graph of PACKAGES, lazy and TYPE_CHECKING imports included.

    `from a.b import c` of a submodule `c` runs a/b/__init__.py too: grimp records only
    a.b.c, so the package is added (a package that imports its own submodule, and that
    submodule importing it back this way, is a cycle)."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=False, cache_dir=None)
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            for detail in graph.get_import_details(importer=importer, imported=imported):
                words = detail["line_contents"].split()
                named = words[1] if words[:1] == ["from"] and len(words) > 1 else ""
                if (
                    named in graph.modules
                    and named != importer
                    and imported.startswith(named + ".")
                ):
                    graph.add_import(importer=importer, imported=named)
    return graph


def cycles(graph: grimp.ImportGraph) -> list[tuple[str, ...]]:
    """One shortest cycle through each module that is on one (grimp finds the chain back)."""
    found: dict[frozenset[str], tuple[str, ...]] = {}
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                cycle = (module, *back)
                found.setdefault(frozenset(cycle), cycle)
                break
    return list(found.values())


def graph_of(edges: dict[str, set[str]]) -> grimp.ImportGraph:
    graph = grimp.ImportGraph()
    for module, targets in edges.items():
        graph.add_module(module)
        for target in targets:
            graph.add_import(importer=module, imported=target)
    return graph


def test_the_cycle_finder_finds_a_cycle_and_says_where() -> None:
    graph = graph_of({"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()})
    assert cycles(graph) == [("a", "b", "c", "a")]
    assert cycles(graph_of({"a": {"b"}, "b": set()})) == []


def test_the_graph_holds_lazy_and_type_checking_imports() -> None:
    graph = imports()

    def imports_(importer: str, imported: str) -> bool:
        return imported in graph.find_modules_directly_imported_by(importer)

    assert imports_("service.cli.main", "service.devtools.demo.main")  # inside `demo()`
    assert imports_("service.app.runner", "service.entrypoints.admin")  # TYPE_CHECKING, lazy
    # `from service.devtools.demo import summary` runs the package's __init__ too
    assert imports_("service.devtools.demo.run", "service.devtools.demo")


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
