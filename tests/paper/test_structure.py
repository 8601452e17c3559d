"""The paper exchange stands apart: it imports nothing of the app, and its modules import each other without circles.

Every import counts, at module level or inside a function (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

PAPER = Path(__file__).resolve().parents[2] / "src" / "aiotrade" / "paper"
PACKAGE = "aiotrade.paper"


def imports_of(source: str, module: str) -> set[str]:
    """Every module name `source` (the text of `module`) imports, relative imports resolved."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.add(prefix)
            # `from aiotrade.paper import server` imports the module aiotrade.paper.server
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


def outside_imports(sources: dict[str, str]) -> list[str]:
    """`module: name` for each import of aiotrade outside aiotrade.paper."""
    return sorted(
        f"{module}: {name}"
        for module, source in sources.items()
        for name in imports_of(source, module)
        if (name == "aiotrade" or name.startswith("aiotrade.")) and not _in_package(name)
    )


def import_cycle(sources: dict[str, str]) -> list[str] | None:
    """One circle of imports among the given modules (a -> b -> a), or None."""
    graph = {
        module: {name for name in imports_of(source, module) if name in sources and name != module}
        for module, source in sources.items()
    }
    state: dict[str, str] = {}  # "open" while on the current path, "done" once fully explored
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def paper_sources() -> dict[str, str]:
    sources = {}
    for path in sorted(PAPER.rglob("*.py")):
        parts = path.relative_to(PAPER).with_suffix("").parts
        module = ".".join((PACKAGE, *parts[:-1])) if parts[-1] == "__init__" else ".".join((PACKAGE, *parts))
        sources[module] = path.read_text()
    return sources


def _in_package(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def test_the_paper_exchange_imports_nothing_of_aiotrade_outside_itself() -> None:
    sources = paper_sources()
    assert len(sources) > 10, "no paper modules found"
    assert outside_imports(sources) == []


def test_the_paper_modules_import_each_other_without_a_circle() -> None:
    assert import_cycle(paper_sources()) is None


def test_the_checks_catch_an_outside_import_and_a_lazy_circle() -> None:
    sources = {
        "aiotrade.paper.a": "from aiotrade.paper.b import thing\n",
        "aiotrade.paper.b": "def f():\n    from aiotrade.paper import a\n",  # a lazy import closes the circle
        "aiotrade.paper.c": "from aiotrade.config import Settings\nfrom . import b\n",
        "aiotrade.paper.d": "import aiotrade.exchange.pool\n",
    }
    assert outside_imports(sources) == [
        "aiotrade.paper.c: aiotrade.config",
        "aiotrade.paper.c: aiotrade.config.Settings",
        "aiotrade.paper.d: aiotrade.exchange.pool",
    ]
    assert import_cycle(sources) == ["aiotrade.paper.a", "aiotrade.paper.b", "aiotrade.paper.a"]
    assert import_cycle({k: v for k, v in sources.items() if k != "aiotrade.paper.b"}) is None
