"""The design is natively async: nothing of ours runs in a thread, and nothing reaches for sync ccxt.

Heavy maths goes to worker *processes* through a `ProcessPoolExecutor` passed explicitly, with an explicit
start method (`aiotrade.compute`): allowed. Not allowed: the loop's default executor (`run_in_executor(None,
...)`), `asyncio.to_thread`, `set_default_executor`, thread pools or threads of our own. Threads that
libraries keep internally are not ours: aiosqlite's connection thread, and the process pool's manager and
queue-feeder threads (they pickle a job's arguments and unpickle its result, off the loop).

Two checks, each with a self-check that it catches a real violation:
- the sources, read with `ast` (calls, names, imports), plus a regex for sync ccxt;
- the running app: after heavy requests through the real stack, no thread-pool worker and no thread of
  ours is alive, and the loop never made its default executor.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import threading
import time
from pathlib import Path

from tests.support.stack import Stack

SRC = Path(__file__).resolve().parents[1] / "src"
SYNC_CCXT = re.compile(r"^\s*import ccxt\s*$|^\s*from ccxt import|^\s*import ccxt\s+as|ccxt\.[a-z]\w*\(", re.MULTILINE)
THREAD_MODULES = ("threading", "_thread", "concurrent.futures.thread")
THREAD_NAMES = {"to_thread", "ThreadPoolExecutor", "set_default_executor"}


def source_offences(source: str) -> list[str]:
    """What in `source` runs our code in a thread (or uses sync ccxt), as "line: reason"."""
    tree = ast.parse(source)
    found = [
        f"{number}: sync ccxt" for number, line in enumerate(source.splitlines(), start=1) if SYNC_CCXT.search(line)
    ]
    pools = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and _called(node) == "ProcessPoolExecutor"]
    explicit_pools = bool(pools) and all(any(k.arg == "mp_context" for k in p.keywords) for p in pools)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom):
                names += [f"{node.module}.{a.name}" for a in node.names] + [a.name for a in node.names]
            if any(n in THREAD_MODULES or n in THREAD_NAMES for n in names):
                found.append(f"{node.lineno}: imports threads ({', '.join(names)})")
        elif isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in THREAD_NAMES:
                found.append(f"{node.lineno}: {name}")
        if not isinstance(node, ast.Call):
            continue
        called = _called(node)
        if called == "ProcessPoolExecutor" and not any(k.arg == "mp_context" for k in node.keywords):
            found.append(f"{node.lineno}: ProcessPoolExecutor without an explicit start method (mp_context)")
        elif called == "run_in_executor":
            executor = node.args[0] if node.args else None
            if executor is None or (isinstance(executor, ast.Constant) and executor.value is None):
                found.append(f"{node.lineno}: run_in_executor on the default (thread) executor")
            elif not explicit_pools:
                found.append(f"{node.lineno}: run_in_executor outside a module that builds only process pools")
    return found


def _called(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def test_sources_use_no_threads_and_no_sync_ccxt() -> None:
    files = list(SRC.rglob("*.py"))
    assert files, "no sources found"
    offenders = [f"{p.relative_to(SRC)}:{o}" for p in files for o in source_offences(p.read_text())]
    assert not offenders, "threads or sync ccxt under src/:\n" + "\n".join(offenders)
    compute = (SRC / "aiotrade" / "compute.py").read_text()
    assert "run_in_executor(" in compute and "ProcessPoolExecutor(" in compute  # the allowed form is scanned


def test_the_source_scan_catches_what_it_should() -> None:
    allowed = """
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver"))
async def run(loop, fn):
    return await loop.run_in_executor(pool, fn)
import ccxt.async_support as ccxt
"""
    assert source_offences(allowed) == []
    for bad in (
        "async def f(loop, g):\n    await loop.run_in_executor(None, g)",
        "async def f(loop, g):\n    await loop.run_in_executor(executor=None, func=g)",
        "import asyncio\nasync def f(g):\n    await asyncio.to_thread(g)",
        "from asyncio import to_thread",
        "from concurrent.futures import ThreadPoolExecutor",
        "import concurrent.futures\npool = concurrent.futures.ThreadPoolExecutor()",
        "import threading",
        "from threading import Thread",
        "import _thread",
        "def f(loop, pool):\n    loop.set_default_executor(pool)",
        "from concurrent.futures import ProcessPoolExecutor\npool = ProcessPoolExecutor(2)",  # fork, implicitly
        # An executor from elsewhere (it could be a thread pool): only a module of explicit process pools may.
        "async def f(loop, executor, g):\n    await loop.run_in_executor(executor, g)",
        "import ccxt",
        "from ccxt import binance",
        "x = ccxt.binance()",
    ):
        assert source_offences(bad), bad


# ----- the running app ---------------------------------------------------------------------------------


def threads_of_ours() -> list[str]:
    """Alive threads that run our code or a thread pool's work (library-internal ones are not ours)."""
    found = []
    for thread in threading.enumerate():
        if thread is threading.main_thread():
            continue
        target = getattr(thread, "_target", None)
        origin = inspect.getmodule(target) if target is not None else inspect.getmodule(type(thread))
        module = origin.__name__ if origin is not None else ""
        # Thread-pool workers (to_thread, the default executor, FastAPI's sync routes) or code of ours.
        if module in ("concurrent.futures.thread", "anyio._backends._asyncio") or module.startswith("aiotrade"):
            found.append(f"{thread.name} ({module})")
    return found


def library_threads() -> set[str]:
    names = set()
    for thread in threading.enumerate():
        target = getattr(thread, "_target", None)
        origin = inspect.getmodule(target) if target is not None else inspect.getmodule(type(thread))
        names.add(origin.__name__ if origin is not None else "")
    return names


PROBABILITY = {"symbol": "BTC/USDT", "take_profit": "80000", "stop_loss": "40000", "paths": 20_000}


async def test_heavy_requests_run_in_no_thread_of_ours_and_the_check_catches_one(stack: Stack) -> None:
    loop = asyncio.get_running_loop()
    responses = await asyncio.gather(
        stack.api.post("/api/v1/risk/probability", json=PROBABILITY),
        stack.api.post("/api/v1/risk/portfolio", json={"symbols": ["BTC/USDT", "ETH/USDT"], "lookback": 60}),
    )
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    assert stack.app.state.compute.stats().completed >= 2  # the maths ran in the workers
    # Library-internal threads are there (the check is not vacuous) and are not counted as ours.
    # (aiosqlite's connection threads are there too while the store pools connections.)
    assert {"concurrent.futures.process", "multiprocessing.queues"} <= library_threads()
    assert threads_of_ours() == []
    assert getattr(loop, "_default_executor", None) is None  # nothing asked for the default executor

    # Self-check: a real violation is caught.
    await asyncio.to_thread(time.sleep, 0)
    assert getattr(loop, "_default_executor", None) is not None
    assert any("concurrent.futures.thread" in t for t in threads_of_ours())
    await loop.shutdown_default_executor()


def test_every_endpoint_and_dependency_is_async() -> None:
    # FastAPI runs a plain `def` endpoint or dependency in a worker thread: none on our request path.
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
