"""The layers hold: a lower layer never imports a higher one, and the rules of the house stay written.

Read from the sources with `ast` (imports anywhere in a module count, lazy ones included):
- store, models, exchange, quant, domain never import services, api, jobs, stream or the app;
- services never import FastAPI, Starlette, api, jobs or the app;
- paper imports nothing of aiotrade outside paper; client imports only models (once it exists);
- quant does no I/O, no async and no pydantic; routers never reach the store (they call services);
- no `Any` in the signatures of services; one money quantum, one allocation-method enum, one orders config.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "aiotrade"

HIGH = ("aiotrade.services", "aiotrade.api", "aiotrade.jobs", "aiotrade.stream", "aiotrade.app")
RULES: list[tuple[str, tuple[str, ...], str]] = [
    # (package or module under src/aiotrade, forbidden import prefixes, why)
    ("store", HIGH, "the store is below the services"),
    ("models", (*HIGH, "aiotrade.store", "aiotrade.exchange"), "models are the bottom floor"),
    ("exchange", HIGH, "exchange/ is below the services"),
    ("domain", (*HIGH, "aiotrade.store", "aiotrade.exchange"), "domain rules are pure"),
    ("quant", ("aiotrade.", "aiohttp", "httpx", "sqlalchemy", "asyncio", "pydantic", "socket", "ccxt"), "pure maths"),
    ("services", ("fastapi", "starlette", "aiotrade.api", "aiotrade.jobs", "aiotrade.app"), "services know no HTTP"),
    ("api/routers", ("aiotrade.store",), "routers call services, not the store"),
    ("client", ("aiotrade.",), "the client imports only models"),
]
ALLOWED: dict[str, tuple[str, ...]] = {"client": ("aiotrade.models", "aiotrade.client"), "quant": ("aiotrade.quant",)}


def modules(where: str) -> Iterator[Path]:
    root = SRC / where
    if root.is_file() or root.with_suffix(".py").is_file():
        yield root if root.is_file() else root.with_suffix(".py")
    elif root.is_dir():
        yield from sorted(root.rglob("*.py"))


def imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def offences(where: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    found = []
    for path in modules(where):
        for line, name in imports(path):
            hit = any(name == f.rstrip(".") or name.startswith(f if f.endswith(".") else f + ".") for f in forbidden)
            if hit and not any(name == a or name.startswith(a + ".") for a in allowed):
                found.append(f"{path.relative_to(SRC)}:{line}: imports {name}")
    return found


@pytest.mark.parametrize(("where", "forbidden", "why"), RULES, ids=[r[0] for r in RULES])
def test_a_lower_layer_never_imports_a_higher_one(where: str, forbidden: tuple[str, ...], why: str) -> None:
    found = offences(where, forbidden, ALLOWED.get(where, ()))
    assert not found, f"{why}:\n" + "\n".join(found)


def test_paper_imports_nothing_of_the_app() -> None:
    found = offences("paper", ("aiotrade",), ("aiotrade.paper",))
    assert not found, "paper/ stands apart:\n" + "\n".join(found)


def test_quant_has_no_async_code() -> None:
    found = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path in modules("quant")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.AsyncFunctionDef | ast.Await)
    ]
    assert not found, "quant/ is pure maths:\n" + "\n".join(found)


def test_no_any_in_the_signatures_of_services() -> None:
    found = []
    for path in modules("services"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                annotations = [a.annotation for a in (*node.args.args, *node.args.kwonlyargs) if a.annotation]
                annotations += [a.annotation for a in (node.args.vararg, node.args.kwarg) if a and a.annotation]
                if node.returns is not None:
                    annotations.append(node.returns)
                if any("Any" in ast.unparse(a) for a in annotations):
                    found.append(f"{path.relative_to(SRC)}:{node.lineno}: {node.name}")
    assert not found, "Any in service signatures (use a typed record):\n" + "\n".join(found)


def test_one_money_quantum_one_allocation_enum_one_orders_config() -> None:
    sources = {path: path.read_text() for path in SRC.rglob("*.py") if "paper" not in path.parts}
    quantum = [str(p.relative_to(SRC)) for p, text in sources.items() if '"0.00000001"' in text]
    assert not quantum, f"the money quantum lives in domain/money.py only: {quantum}"
    enums = [
        str(p.relative_to(SRC))
        for p, text in sources.items()
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.ClassDef) and "Allocation" in node.name and "Method" in node.name
    ]
    assert enums == ["quant/allocation.py"], enums
    assert not [p for p, text in sources.items() if "class OrderPolicy" in text]


def test_the_checks_catch_what_they_should(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from aiotrade.services.market import get_ticker\nimport fastapi.routing\n")
    names = [name for _, name in imports(bad)]
    assert names == ["aiotrade.services.market", "fastapi.routing"]
    assert any(n.startswith("aiotrade.services.") for n in names)
