"""`make bench` section `cache`: the ticker endpoint with the market-data cache on and off, and a bare FastAPI JSON
endpoint, side by side in one run.

Three servers, one at a time under the same closed-loop load (c=256): aiotrade with the default cache (ticker
TTL 0.25 s) asked for one hot symbol (what "cached" means: answers from the cache, 4 fetches a second) and for the
12 symbols round-robin (48 fetches a second, each parsed by ccxt), aiotrade with `AIOTRADE_CACHE__ENABLED=false`
(12 symbols), both against the paper exchange in its own process with 50 ms injected latency, and `bare_app` —
FastAPI returning a fixed ticker-shaped JSON body (no middleware, no authentication): the ceiling of the
framework on this machine. Targets (issue 11): cached >= 3x uncached and >= 50% of bare.

Usage: python -m bench --only cache [--quick]
"""

from __future__ import annotations

import sys
import tempfile

from fastapi import FastAPI

from bench.common import LoadResult, api_args, api_env, api_ticker, free_port, load, paper_args, paper_env, process

CONCURRENCY = 256
TICKER_BODY = {
    "exchange": "paper", "symbol": "BTC/USDT", "timestamp": "2026-01-01T00:00:00Z", "last": "97000.01",
    "bid": "97000.00", "ask": "97000.02", "high": "98000.00", "low": "96000.00", "base_volume": "1234.5678",
    "quote_volume": "119753086.12", "percentage": "1.25",
}  # fmt: skip

bare_app = FastAPI()


@bare_app.get("/api/v1/exchanges/paper/ticker")
async def bare_ticker(symbol: str) -> dict[str, str]:
    return TICKER_BODY


async def cache_section(quick: bool) -> str:
    seconds, warmup = (4.0, 1.0) if quick else (10.0, 2.0)
    paper_port, cached_port, uncached_port, bare_port = free_port(), free_port(), free_port(), free_port()
    results: list[tuple[str, LoadResult]] = []
    with tempfile.TemporaryDirectory() as cached_dir, tempfile.TemporaryDirectory() as uncached_dir:
        async with (
            process(
                "paper-cache",
                paper_args(paper_port),
                paper_env(paper_port, latency_ms=50, weight_limit=1_000_000_000),
                f"http://127.0.0.1:{paper_port}/api/v3/ping",
            ),
            process(
                "aiotrade-cached",
                api_args(cached_port),
                api_env(paper_port, cached_dir, budget=1e9),
                f"http://127.0.0.1:{cached_port}/readyz",
            ),
            process(
                "aiotrade-uncached",
                api_args(uncached_port),
                {**api_env(paper_port, uncached_dir, budget=1e9), "AIOTRADE_CACHE__ENABLED": "false"},
                f"http://127.0.0.1:{uncached_port}/readyz",
            ),
            process(
                "bare-fastapi",
                [sys.executable, "-m", "uvicorn", "bench.cache:bare_app", "--port", str(bare_port),
                 "--log-level", "warning", "--no-access-log"],
                {},
                f"http://127.0.0.1:{bare_port}/api/v1/exchanges/paper/ticker?symbol=BTC/USDT",
            ),
        ):  # fmt: skip
            cached_url, uncached_url = f"http://127.0.0.1:{cached_port}", f"http://127.0.0.1:{uncached_port}"
            hot = await load(cached_url, "hot", CONCURRENCY, seconds, warmup, request=_one_symbol)
            results.append(("aiotrade, cache on, one symbol", hot))
            mixed = await load(cached_url, "mixed", CONCURRENCY, seconds, warmup)
            results.append(("aiotrade, cache on, 12 symbols", mixed))
            uncached = await load(uncached_url, "uncached", CONCURRENCY, seconds, warmup)
            results.append(("aiotrade, cache off, 12 symbols", uncached))
            bare = await load(f"http://127.0.0.1:{bare_port}", "bare", CONCURRENCY, seconds, warmup)
            results.append(("bare FastAPI JSON", bare))
    lines = [
        f"Ticker endpoint at c={CONCURRENCY}, {seconds:.0f} s per row after {warmup:.0f} s warm-up, closed-loop "
        "clients; the paper exchange in its own process with 50 ms injected latency; ticker TTL 0.25 s; "
        "aiotrade with its API key check, request ids, access log and metrics on (the defaults); the bare app "
        "has none of them.",
        "",
        "| server | req/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {label} | {r.throughput:.0f} | {r.percentile(0.5):.1f} | {r.percentile(0.99):.1f} | {r.errors} |"
            for label, r in results
        ),
        "",
        f"Cached (one symbol) / uncached: {hot.throughput / max(uncached.throughput, 1e-9):.1f}x (target: at least "
        f"3x); 12 symbols cached / uncached: {mixed.throughput / max(uncached.throughput, 1e-9):.1f}x. "
        f"Cached / bare FastAPI: {hot.throughput / max(bare.throughput, 1e-9):.0%} (target: at least 50%).",
    ]
    return "\n".join(lines)


def _one_symbol(symbol: str) -> tuple[str, dict[str, str]]:
    return api_ticker("BTC/USDT")
