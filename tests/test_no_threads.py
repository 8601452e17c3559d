"""The design is natively async: nothing under src/ may reach for threads or sync ccxt."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
FORBIDDEN = re.compile(
    r"run_in_executor|to_thread|ThreadPoolExecutor|ProcessPoolExecutor|\bimport threading\b"
    r"|^\s*import ccxt\s*$|^\s*from ccxt import|^\s*import ccxt\s+as|ccxt\.[a-z]\w*\(",
    re.MULTILINE,
)


def test_sources_use_no_threads_and_no_sync_ccxt() -> None:
    offenders = []
    files = list(SRC.rglob("*.py"))
    assert files, "no sources found"
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if FORBIDDEN.search(line):
                offenders.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert not offenders, "threads or sync ccxt under src/:\n" + "\n".join(offenders)


def test_the_scan_catches_what_it_should() -> None:
    for bad in (
        "await loop.run_in_executor(None, f)",
        "await asyncio.to_thread(f)",
        "import ccxt",
        "from ccxt import binance",
        "x = ccxt.binance()",
    ):
        assert FORBIDDEN.search(bad), bad
    assert not FORBIDDEN.search("import ccxt.async_support as ccxt")


def test_every_endpoint_and_dependency_is_async() -> None:
    # FastAPI runs a plain `def` endpoint or dependency in a worker thread: none on our request path.
    import inspect

    from fastapi.routing import APIRoute, APIWebSocketRoute

    from aiotrade.app import create_app
    from aiotrade.config import Settings, VenueConfig

    app = create_app(Settings(venues={"paper": VenueConfig(base_url="http://127.0.0.1:9")}))
    sync = []

    def visit(dependant) -> None:  # type: ignore[no-untyped-def]
        if dependant.call is not None and not inspect.iscoroutinefunction(dependant.call):
            sync.append(getattr(dependant.call, "__qualname__", repr(dependant.call)))
        for sub in dependant.dependencies:
            visit(sub)

    def flatten(routes):  # type: ignore[no-untyped-def]
        for route in routes:
            included = getattr(route, "original_router", None)  # FastAPI keeps included routers nested
            yield from flatten(included.routes) if included is not None else [route]

    routes = [r for r in flatten(app.routes) if isinstance(r, APIRoute | APIWebSocketRoute)]
    assert routes
    for route in routes:
        visit(route.dependant)
    assert not sync, f"sync endpoints or dependencies (they would run in threads): {sorted(set(sync))}"
