"""What logging and metrics cost on the ticker hot path: the app with its `RequestContext` (request id, one
access line on standard error, the HTTP histogram) at the default settings, the same with the access line
switched off (``AIOTRADE_ACCESS_LOG=false``), and the app without it (bench/logging_app.py), side by side
in one run: c=8 p50 and c=256 throughput, interleaved rounds so drift on a shared machine hits all three.

Default settings: log level INFO, console format, the market-data cache on (most tickers come from it, so
the app's own work is the largest share of each request: the worst case for this overhead).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

from bench.common import LoadResult, api_env, free_port, load, paper_args, paper_env, process

CONCURRENCIES = (8, 256)
BUDGET = 0.03  # the issue's: logging and metrics cost at most 3% of throughput


async def logging_section(quick: bool) -> str:
    seconds, warmup, rounds = (2.0, 0.5, 2) if quick else (4.0, 1.0, 3)
    paper_port = free_port()
    ports = {"default": free_port(), "no access line": free_port(), "bare": free_port()}
    logs = Path(tempfile.gettempdir())
    results: dict[tuple[str, int], list[LoadResult]] = {}
    cpu_spent: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as data_dir:
        async with process(
            "paper-logging",
            paper_args(paper_port),
            paper_env(paper_port, latency_ms=0, weight_limit=1_000_000_000),
            f"http://127.0.0.1:{paper_port}/api/v3/ping",
        ):
            env = {**api_env(paper_port, data_dir, budget=1e9), "AIOTRADE_LOG_LEVEL": "INFO"}
            variants = {
                "default": ([], env),
                "no access line": ([], {**env, "AIOTRADE_ACCESS_LOG": "false"}),
                "bare": (["--bare"], env),
            }
            async with contextlib.AsyncExitStack() as servers:
                pids = {}
                for name, (extra, variant_env) in variants.items():
                    slug = name.replace(" ", "-")
                    pids[name] = await servers.enter_async_context(
                        process(
                            f"logging-{slug}",
                            [sys.executable, "-m", "bench.logging_app", "--port", str(ports[name]), *extra],
                            {**variant_env, "AIOTRADE_DATA_DIR": str(Path(data_dir) / slug)},
                            f"http://127.0.0.1:{ports[name]}/readyz",
                        )
                    )
                    pids[name] = pids[name].pid
                for concurrency in CONCURRENCIES:
                    for round_ in range(rounds):
                        order = list(ports) if round_ % 2 == 0 else list(ports)[::-1]
                        for name in order:
                            url = f"http://127.0.0.1:{ports[name]}"
                            sampled = asyncio.create_task(cpu_seconds_during(pids[name], warmup, seconds))
                            run = await load(url, name, concurrency, seconds, warmup)
                            results.setdefault((name, concurrency), []).append(run)
                            cpu_spent[(name, concurrency)] = cpu_spent.get((name, concurrency), 0.0) + await sampled
    cells = {key: merged(runs) for key, runs in results.items()}
    lines = [
        f"Ticker endpoint (paper exchange, no injected latency, market-data cache on), {rounds} interleaved rounds "
        f"of {seconds:.0f} s per variant and concurrency (after {warmup:.1f} s warm-up each), one server process "
        "each, log level INFO, access lines to a file (standard error redirected).",
        "",
        "| variant | c=8 p50 ms | c=8 p99 ms | c=8 req/s | c=256 req/s | c=256 p50 ms | errors "
        "| c=256 throughput vs bare | server CPU µs/request c=8 | c=256 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    bare_top = cells[("bare", 256)].throughput

    def cpu_us(name: str, concurrency: int) -> float:
        return cpu_spent[(name, concurrency)] / max(cells[(name, concurrency)].ok, 1) * 1e6

    for name in ports:
        low, top = cells[(name, 8)], cells[(name, 256)]
        share = top.throughput / bare_top - 1 if bare_top else 0.0
        lines.append(
            f"| {name} | {low.percentile(0.5):.2f} | {low.percentile(0.99):.2f} | {low.throughput:.0f} | "
            f"{top.throughput:.0f} | {top.percentile(0.5):.1f} | {low.errors + top.errors} | {share:+.1%} | "
            f"{cpu_us(name, 8):.0f} | {cpu_us(name, 256):.0f} |"
        )
    cpu_cost = 1 - cpu_us("bare", 256) / cpu_us("default", 256)
    cost = 1 - cells[("default", 256)].throughput / bare_top if bare_top else 0.0
    cpu = await in_process_costs(calls=2_000 if quick else 5_000, rounds=3 if quick else 5)
    lines += [
        "",
        "CPU per cached ticker request in process (the app called as ASGI, no network or load generator, best of "
        "interleaved runs): " + ", ".join(f"{name} {us:.0f} µs" for name, us in cpu.items()) + "; the middleware's "
        f"share at the default settings {1 - cpu['bare'] / cpu['default']:.1%}, without the access line "
        f"{1 - cpu['bare'] / cpu['no access line']:.1%}.",
        "",
        f"Server CPU per request at c=256 (the bound on throughput once the server is the bottleneck): logging "
        f"and metrics at the default settings {cpu_cost:.1%} of it.",
        f"Logging and metrics at the default settings cost {cost:.1%} of c=256 throughput as measured "
        f"(budget: at most {BUDGET:.0%}); c=8 p50 {cells[('default', 8)].percentile(0.5):.2f} ms with them, "
        f"{cells[('bare', 8)].percentile(0.5):.2f} ms without. Server logs: {logs}/aiotrade-bench-logging-*.log.",
    ]
    return "\n".join(lines)


def merged(results: list[LoadResult]) -> LoadResult:
    """Several runs of one variant as one: their requests, errors and latencies over their total time."""
    first = results[0]
    return LoadResult(
        first.target,
        first.concurrency,
        sum(r.seconds for r in results),
        sum(r.ok for r in results),
        sum(r.errors for r in results),
        [latency for r in results for latency in r.latencies_ms],
    )


async def in_process_costs(calls: int = 5_000, rounds: int = 5) -> dict[str, float]:
    """Microseconds of CPU per cached ticker request, the app called as ASGI (no network, no load generator):
    with `RequestContext` (access line to /dev/null), without the access line, and without the middleware.
    The three apps run side by side in one process; each figure is the best of ``rounds`` interleaved runs."""

    from asgi_lifespan import LifespanManager

    from aiotrade.config import Settings
    from aiotrade.observability.logs import configure_logging
    from aiotrade.paper.config import PaperConfig
    from aiotrade.paper.server import PaperExchange
    from bench.common import BENCH_KEY
    from bench.logging_app import bare, observed

    best: dict[str, float] = {}
    saved_env = dict(os.environ)
    devnull = open(os.devnull, "w")  # noqa: ASYNC230, SIM115 - opened once, before any request runs
    with devnull, contextlib.redirect_stderr(devnull), tempfile.TemporaryDirectory() as d:
        configure_logging("INFO", "console")
        try:
            async with (
                PaperExchange(PaperConfig(port=0, weight_limit=1_000_000_000)) as paper,
                contextlib.AsyncExitStack() as apps,
            ):
                running = {}
                for name, access_log, build in (
                    ("default", True, observed),
                    ("no access line", False, observed),
                    ("bare", True, bare),
                ):
                    os.environ.update(
                        {
                            "AIOTRADE_VENUES__PAPER__BASE_URL": paper.url,
                            "AIOTRADE_VENUES__PAPER__RATE_LIMIT__BUDGET": "1e9",
                            "AIOTRADE_DATA_DIR": str(Path(d) / name.replace(" ", "-")),
                            "AIOTRADE_AUTH__BOOTSTRAP_KEY": BENCH_KEY,
                            "AIOTRADE_AUTH__BOOTSTRAP_RATE_LIMIT": "0",
                            "AIOTRADE_ACCESS_LOG": str(access_log).lower(),
                            "AIOTRADE_EQUITY_INTERVAL_S": "3600",
                            "AIOTRADE_COMPUTE__WORKERS": "1",
                        }
                    )
                    assert Settings().access_log is access_log
                    manager = await apps.enter_async_context(
                        LifespanManager(build(), startup_timeout=120, shutdown_timeout=10)
                    )
                    running[name] = manager.app
                os.environ.clear()
                os.environ.update(saved_env)
                for _ in range(rounds):
                    for name, app in running.items():
                        spent = await _per_request(app, calls) * 1e6
                        best[name] = min(best.get(name, spent), spent)
        except TimeoutError:  # three apps stopping in one process can outlast asgi-lifespan's wait
            if len(best) < 3:
                raise
    return best


async def _per_request(app: object, calls: int) -> float:
    from bench.common import BENCH_HEADERS

    headers = [(b"host", b"127.0.0.1")] + [(k.lower().encode(), v.encode()) for k, v in BENCH_HEADERS.items()]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/api/v1/exchanges/paper/ticker", "raw_path": b"/api/v1/exchanges/paper/ticker",
        "query_string": b"symbol=BTC/USDT", "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        "root_path": "",
    }  # fmt: skip
    statuses: list[int] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])  # type: ignore[arg-type]

    for _ in range(500):  # warm: markets, the cache, every lazily built piece
        await app(dict(scope), receive, send)  # type: ignore[operator]
    assert set(statuses) == {200}, set(statuses)
    started = time.process_time()
    for _ in range(calls):
        await app(dict(scope), receive, send)  # type: ignore[operator]
    return (time.process_time() - started) / calls


def cpu_seconds_during(pid: int, warmup: float, seconds: float) -> Awaitable[float]:
    """The CPU time (user + system) process ``pid`` spends in the measured window of a `load` run."""

    async def sample() -> float:
        await asyncio.sleep(warmup)
        before = _cpu_seconds(pid)
        await asyncio.sleep(seconds)
        return _cpu_seconds(pid) - before

    return sample()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":  # python -m bench.logging_cost [--quick]
    print(asyncio.run(logging_section(quick="--quick" in sys.argv)))
