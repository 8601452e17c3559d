"""What checking an API key costs: the same routes at c=256 with the key checked and with the check bypassed
(bench/auth_app.py), side by side in one run; and one cached verification measured in-process.

The authenticated app's key is made as a user makes one, with `keys create --rate-limit 0` (no inbound limit
in the way); the bypassed app is the same app with its authentication middleware swapped for a fixed
principal. Routes: `GET /api/v1/exchanges` (configuration only: the check's share is largest there) and the
ticker (through the pool to a paper exchange with no injected latency).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace

from bench.common import ROOT, TICKER_PATH, LoadResult, api_env, free_port, load, paper_args, paper_env, process

CONCURRENCY = 256
EXCHANGES = "/api/v1/exchanges"


def exchanges(_: str) -> tuple[str, dict[str, str]]:
    return EXCHANGES, {}


def ticker(symbol: str) -> tuple[str, dict[str, str]]:
    return TICKER_PATH, {"symbol": symbol}


async def auth_section(quick: bool) -> str:
    seconds, warmup, rounds = (2.0, 0.5, 2) if quick else (2.0, 0.5, 10)
    paper_port, auth_port, bypass_port = free_port(), free_port(), free_port()
    rows: list[tuple[str, LoadResult, LoadResult, float]] = []
    with tempfile.TemporaryDirectory() as auth_dir, tempfile.TemporaryDirectory() as bypass_dir:
        async with process(
            "paper-auth",
            paper_args(paper_port),
            paper_env(paper_port, latency_ms=0, weight_limit=1_000_000_000),
            f"http://127.0.0.1:{paper_port}/api/v3/ping",
        ):
            key = make_key(api_env(paper_port, auth_dir, budget=1e9))
            async with (
                process(
                    "aiotrade-auth",
                    [sys.executable, "-m", "bench.auth_app", "--port", str(auth_port)],
                    api_env(paper_port, auth_dir, budget=1e9),
                    f"http://127.0.0.1:{auth_port}/readyz",
                ),
                process(
                    "aiotrade-bypass",
                    [sys.executable, "-m", "bench.auth_app", "--port", str(bypass_port), "--bypass"],
                    api_env(paper_port, bypass_dir, budget=1e9),
                    f"http://127.0.0.1:{bypass_port}/readyz",
                ),
            ):
                headers = {"Authorization": f"Bearer {key}"}
                checked_url, bypassed_url = f"http://127.0.0.1:{auth_port}", f"http://127.0.0.1:{bypass_port}"
                for label, request in ((EXCHANGES, exchanges), (f"{TICKER_PATH}?symbol=", ticker)):
                    checked, bypassed = [], []
                    # Interleaved rounds, the order swapped each time: drift on a shared machine hits both.
                    for round_ in range(rounds):
                        pair = [(checked, checked_url, headers), (bypassed, bypassed_url, {})]
                        for results, url, sent in pair if round_ % 2 == 0 else pair[::-1]:
                            results.append(await load(url, "auth", CONCURRENCY, seconds, warmup, request, headers=sent))
                    rows.append((label, merged(checked), merged(bypassed), paired_cost_us(checked, bypassed)))
    verify_us, middleware_us, limited_us = await in_process_costs()
    lines = [
        f"Key check at concurrency {CONCURRENCY}: {rounds} interleaved rounds of {seconds:.0f} s per variant "
        f"(after {warmup:.1f} s warm-up each), closed-loop clients on the same machine, one server process "
        "each, the key made with `--rate-limit 0`.",
        "",
        "| route | checked req/s | p50 ms | p99 ms | errors | bypassed req/s | p50 ms | p99 ms | errors "
        "| cost per request |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, checked, bypassed, cost_us in rows:
        lines.append(
            f"| `{label}` | {checked.throughput:.0f} | {checked.percentile(0.5):.1f} | "
            f"{checked.percentile(0.99):.1f} | {checked.errors} | {bypassed.throughput:.0f} | "
            f"{bypassed.percentile(0.5):.1f} | {bypassed.percentile(0.99):.1f} | {bypassed.errors} | "
            f"{cost_us:.0f} µs |"
        )
    lines += [
        "",
        "Cost per request: the median over rounds of the difference in time per request (1/throughput), "
        "checked minus bypassed, each round against its neighbour (so that load from elsewhere on the machine "
        "cancels out as far as it can).",
        "In-process CPU per request, measured apart from the network and the load generator: the whole "
        f"authentication middleware {middleware_us:.1f} µs more than the bypass (of which one cached "
        f"`Authenticator.verify`, i.e. pattern check, SHA-256 and cache look-up, {verify_us:.1f} µs); "
        f"with a rate-limited key (in-process GCRA) {limited_us:.1f} µs more than the bypass.",
    ]
    return "\n".join(lines)


def make_key(env: dict[str, str]) -> str:
    """`python -m aiotrade keys create --rate-limit 0` in the app's data dir: the key is the last line."""
    made = subprocess.run(
        [sys.executable, "-m", "aiotrade", "keys", "create", "--name", "bench", "--scopes", "read",
         "--accounts", "*", "--rate-limit", "0"],
        env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return made.stdout.splitlines()[-1]


def paired_cost_us(checked: list[LoadResult], bypassed: list[LoadResult]) -> float:
    """Median over rounds of (1/checked - 1/bypassed throughput), in microseconds per request."""
    costs = [
        (1 / c.throughput - 1 / b.throughput) * 1e6 for c, b in zip(checked, bypassed, strict=True) if c.ok and b.ok
    ]
    return statistics.median(costs) if costs else float("nan")


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


async def in_process_costs(calls: int = 100_000) -> tuple[float, float, float]:
    """Microseconds per request, on a real key store (SQLite in a temp dir), of: a cached verification; the
    authentication middleware around a no-op app, minus the bypass around it; the same with a limited key."""
    from aiotrade.api.auth import Authentication, Authenticator, create_key
    from aiotrade.api.ratelimit import LocalInboundLimiter
    from aiotrade.config import Settings
    from aiotrade.models.keys import NewApiKey
    from aiotrade.store.api_keys import ApiKeyStore
    from aiotrade.store.db import make_engine, make_sessions, migrate
    from bench.auth_app import Bypass

    async def noop(scope: dict, receive: object, send: object) -> None:
        return None

    async def per_call(run: Callable[[], Awaitable[object]]) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            await run()
        return (time.perf_counter() - started) / calls * 1e6

    with tempfile.TemporaryDirectory() as data_dir:
        engine = make_engine(f"sqlite+aiosqlite:///{Path(data_dir) / 'keys.db'}")
        try:
            await migrate(engine)
            store = ApiKeyStore(make_sessions(engine))
            made = {
                rate: (await create_key(store, Settings(), NewApiKey(name=f"bench-{rate}", scopes=["read"],
                                                                      accounts=["*"], rate_limit=rate),
                                        created_by="bench")).key
                for rate in (0, 100_000)
            }  # fmt: skip
            authenticator = Authenticator(store, ttl_s=5.0)
            state = SimpleNamespace(authenticator=authenticator, inbound_limiter=LocalInboundLimiter())
            app = SimpleNamespace(state=state)

            def scope(key: str) -> dict:
                headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {key}".encode())]
                return {"type": "http", "path": EXCHANGES, "headers": headers, "app": app}

            checked, bypass = Authentication(noop), Bypass(noop)
            for key in made.values():
                assert await authenticator.verify(key) is not None  # in the cache from here on
            verify_us = await per_call(lambda: authenticator.verify(made[0]))
            bypass_us = await per_call(lambda: bypass(scope(made[0]), None, None))
            middleware_us = await per_call(lambda: checked(scope(made[0]), None, None))
            limited_us = await per_call(lambda: checked(scope(made[100_000]), None, None))
        finally:
            await engine.dispose()
    return verify_us, middleware_us - bypass_us, limited_us - bypass_us


if __name__ == "__main__":
    print(asyncio.run(auth_section("--quick" in sys.argv)))
