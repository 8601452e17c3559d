"""Portfolio risk over 50 symbols x 1000 daily candles, and the event loop while it runs."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time

import aiohttp
import numpy as np

from aiotrade.quant.risk import portfolio_risk
from bench.common import BENCH_HEADERS, api_args, api_env, free_port, paper_args, paper_env, process, summary

SYMBOLS = [
    "BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT", "LTC/USDT", "DOT/USDT",
    "LINK/USDT", *(f"ALT{i:02d}/USDT" for i in range(1, 41)),
]  # fmt: skip
BODY = {"symbols": SYMBOLS, "timeframe": "1d", "lookback": 1000, "confidence": "0.99"}


def maths_only_ms(repeats: int = 30) -> float:
    """Median time of the quant/ call alone on a 1000 x 50 panel (no I/O, no models)."""
    rng = np.random.default_rng(3)
    returns = rng.standard_t(4, size=(1000, 50)) * 0.02
    weights = np.full(50, 1 / 50)
    bench = returns[:, 0]
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        portfolio_risk(returns, weights, confidence=0.99, periods_per_year=365, risk_free_rate=0.0, benchmark=bench)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


async def risk_section(quick: bool) -> str:
    requests = 30 if quick else 100
    paper_port, api_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        async with (
            process("paper-risk", paper_args(paper_port),
                    paper_env(paper_port, latency_ms=5, weight_limit=10**9, extra_assets="40"),
                    f"http://127.0.0.1:{paper_port}/api/v3/ping"),
            process("aiotrade-risk", api_args(api_port), api_env(paper_port, data_dir, budget=1e9),
                    f"http://127.0.0.1:{api_port}/readyz"),
        ):  # fmt: skip
            base = f"http://127.0.0.1:{api_port}"
            async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=300), headers=BENCH_HEADERS
            ) as session:
                started = time.perf_counter()
                async with session.post(base + "/api/v1/risk/portfolio", json=BODY) as r:
                    first = await r.json()
                    assert r.status == 200, first
                cold_ms = (time.perf_counter() - started) * 1000
                serial: list[float] = []
                for _ in range(10):
                    started = time.perf_counter()
                    async with session.post(base + "/api/v1/risk/portfolio", json=BODY) as r:
                        await r.read()
                    serial.append((time.perf_counter() - started) * 1000)

                await session.get(base + "/debug/loop-lag", params={"reset": "true"})
                tickers: list[float] = []
                done = asyncio.Event()

                async def ticker_stream() -> None:
                    while not done.is_set():
                        started = time.perf_counter()
                        async with session.get(
                            base + "/api/v1/exchanges/paper/ticker", params={"symbol": "BTC/USDT"}
                        ) as r:
                            await r.read()
                        tickers.append((time.perf_counter() - started) * 1000)

                async def risk_requests() -> None:
                    limit = asyncio.Semaphore(10)

                    async def one() -> None:
                        async with limit, session.post(base + "/api/v1/risk/portfolio", json=BODY) as r:
                            await r.read()

                    await asyncio.gather(*(one() for _ in range(requests)))
                    done.set()

                started = time.perf_counter()
                await asyncio.gather(risk_requests(), *(ticker_stream() for _ in range(4)))
                wall = time.perf_counter() - started
                async with session.get(base + "/debug/loop-lag") as r:
                    lag = await r.json()
    serial_p50, _ = summary(serial)
    ticker_p50, ticker_p99 = summary(tickers)
    maths = maths_only_ms()
    return "\n".join(
        [
            f"POST /api/v1/risk/portfolio for {len(SYMBOLS)} symbols x 1000 daily candles (1001 fetched per symbol, "
            "two pages each, concurrently), paper exchange with 5 ms latency, end to end over HTTP.",
            "",
            "| measure | value | target |",
            "|---|---:|---:|",
            f"| maths alone (quant.portfolio_risk, 1000 x 50, median of 30) | {maths:.1f} ms | < 20 ms |",
            f"| first request (paper exchange generating history cold) | {cold_ms:.0f} ms | |",
            f"| warm request, p50 of 10 in a row | {serial_p50:.0f} ms | |",
            f"| {requests} requests (10 at a time) beside 4 ticker streams: wall time | {wall:.1f} s | |",
            f"| longest event-loop stall in the API process meanwhile | {lag['max_lag_ms']:.1f} ms | ≤ 50 ms |",
            f"| ticker latency meanwhile, p50 / p99 | {ticker_p50:.1f} / {ticker_p99:.1f} ms | |",
        ]
    )
