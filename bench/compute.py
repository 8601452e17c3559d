"""Heavy maths off the event loop (issue 10), against `python -m aiotrade serve` over HTTP:

- four probability requests at the documented maximum (100,000 paths × 1,000 bars, 2,000 candles of
  lookback) at once, while one client asks `/healthz` back to back: the slowest and p99 `/healthz`;
- the wall time of one maximum probability request on its own (median);
- portfolio risk for 50 symbols × 1000 daily candles, 10 at a time, beside 4 ticker streams: the longest
  loop stall, and ticker p99 beside it against ticker p99 of the same streams alone.

Usage: python -m bench --only compute [--quick]
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import tempfile
import time

import aiohttp
import numpy as np

from aiotrade.quant import jobs
from bench.common import api_args, api_env, free_port, paper_args, paper_env, process, summary
from bench.risk import BODY as PORTFOLIO_BODY

KEY = "at_" + secrets.token_urlsafe(32)
MAXIMUM = {
    "symbol": "BTC/USDT", "take_profit": "80000", "stop_loss": "40000", "paths": 100_000, "horizon_bars": 1_000,
    "lookback": 2_000,
}  # fmt: skip
PROBABILITY = "/api/v1/risk/probability"
PORTFOLIO = "/api/v1/risk/portfolio"
TICKER = "/api/v1/exchanges/paper/ticker"
OHLCV = "/api/v1/exchanges/paper/ohlcv"


async def compute_section(quick: bool) -> str:
    serial_runs, portfolio_requests, ticker_alone_s = (3, 20, 5.0) if quick else (5, 50, 10.0)
    paper_port, api_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**api_env(paper_port, data_dir, budget=1e9), "AIOTRADE_AUTH__BOOTSTRAP_KEY": KEY}
        async with (
            process("paper-compute", paper_args(paper_port),
                    paper_env(paper_port, latency_ms=5, weight_limit=10**9, extra_assets="40"),
                    f"http://127.0.0.1:{paper_port}/api/v3/ping"),
            process("aiotrade-compute", api_args(api_port), env, f"http://127.0.0.1:{api_port}/readyz"),
            aiohttp.ClientSession(
                base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {KEY}"},
                timeout=aiohttp.ClientTimeout(total=600),
            ) as session,
        ):  # fmt: skip
            await _until_ok(session, PROBABILITY, MAXIMUM)  # cold: the paper exchange makes the history
            serial, alone = [], []
            for _ in range(serial_runs):  # interleaved: both see the same machine (other load comes and goes)
                serial.append(await _timed_post(session, PROBABILITY, MAXIMUM))
                alone.append(maths_alone_ms())
            alone_ms = statistics.median(alone)

            await _loop_lag(session, reset=True)
            stop = asyncio.Event()
            health: list[float] = []
            probe = asyncio.create_task(_probe(session, "/healthz", stop, health))
            started = time.perf_counter()
            statuses = await asyncio.gather(*(_post(session, PROBABILITY, MAXIMUM) for _ in range(4)))
            four_wall = time.perf_counter() - started
            stop.set()
            await probe
            four_lag = await _loop_lag(session)

            for symbol in PORTFOLIO_BODY["symbols"]:  # cold: the paper exchange makes 50 histories, one at a time
                await _until_ok(session, OHLCV, {"symbol": symbol, "timeframe": "1d", "limit": 1001}, get=True)
            await _until_ok(session, PORTFOLIO, PORTFOLIO_BODY)
            alone = await _tickers_for(session, ticker_alone_s)
            await _loop_lag(session, reset=True)
            stop = asyncio.Event()
            beside: list[float] = []
            streams = [asyncio.create_task(_probe(session, TICKER, stop, beside, {"symbol": "BTC/USDT"}))
                       for _ in range(4)]  # fmt: skip
            limit = asyncio.Semaphore(10)

            async def one_portfolio() -> int:
                async with limit:
                    return await _post(session, PORTFOLIO, PORTFOLIO_BODY)

            started = time.perf_counter()
            portfolio_statuses = await asyncio.gather(*(one_portfolio() for _ in range(portfolio_requests)))
            portfolio_wall = time.perf_counter() - started
            stop.set()
            await asyncio.gather(*streams)
            portfolio_lag = await _loop_lag(session)

    health_p50, health_p99 = summary(health)
    alone_p50, alone_p99 = summary(alone)
    beside_p50, beside_p99 = summary(beside)
    one_ms = statistics.median(serial)
    return "\n".join(
        [
            "`python -m aiotrade serve` (defaults: compute workers = cores, one job per worker) against the paper "
            "exchange in its own process (5 ms latency), clients over HTTP on loopback.",
            "",
            "| measure | value | target |",
            "|---|---:|---:|",
            f"| one maximum probability request alone, median of {serial_runs} | {one_ms:.0f} ms | no worse than "
            "before |",
            f"| its maths in the bench process, as the service ran it before (on the loop), interleaved, median | "
            f"{alone_ms:.0f} ms | |",
            f"| four maximum probability requests at once: statuses / wall time | {_statuses(statuses)} / "
            f"{four_wall:.1f} s | 4 × 200 |",
            f"| `/healthz` meanwhile ({len(health)} back to back): slowest / p99 / p50 | {max(health):.1f} / "
            f"{health_p99:.1f} / {health_p50:.1f} ms | slowest ≤ 50 ms |",
            f"| longest loop stall meanwhile | {four_lag:.1f} ms | |",
            f"| portfolio risk 50 × 1000, {portfolio_requests} requests 10 at a time: statuses / wall time | "
            f"{_statuses(portfolio_statuses)} / {portfolio_wall:.1f} s | |",
            f"| longest loop stall meanwhile (4 ticker streams beside) | {portfolio_lag:.1f} ms | ≤ 20 ms |",
            f"| ticker p50 / p99: alone ({len(alone)}) → beside the risk load ({len(beside)}) | {alone_p50:.1f} / "
            f"{alone_p99:.1f} → {beside_p50:.1f} / {beside_p99:.1f} ms | p99 within +20 ms |",
        ]
    )


async def _until_ok(
    session: aiohttp.ClientSession, path: str, body: dict, attempts: int = 12, *, get: bool = False
) -> None:
    """Ask until 200: a cold paper exchange can take longer than a read's deadline to make a history."""
    for _ in range(attempts):
        if get:
            async with session.get(path, params=body) as response:
                await response.read()
                if response.status == 200:
                    return
        elif await _post(session, path, body) == 200:
            return
        await asyncio.sleep(6)  # past the breaker's reset time, if those timeouts opened it
    raise RuntimeError(f"{path} never answered 200")


def maths_alone_ms() -> float:
    """The same maximum job in this process, as the service ran it on the loop before."""
    closes = 100.0 * np.exp(np.cumsum(np.random.default_rng(1).normal(0.0, 0.02, MAXIMUM["lookback"] + 1)))
    started = time.perf_counter()
    jobs.probability_job(
        closes, entry=100.0, take_profit=120.0, stop_loss=85.0, side="long", paths=MAXIMUM["paths"],
        horizon_bars=MAXIMUM["horizon_bars"], seed=7,
    )  # fmt: skip
    return (time.perf_counter() - started) * 1000


async def _post(session: aiohttp.ClientSession, path: str, body: dict) -> int:
    try:
        async with session.post(path, json=body) as response:
            await response.read()
            return response.status
    except aiohttp.ServerDisconnectedError:  # a pooled connection the server closed while idle (keep-alive 5 s)
        async with session.post(path, json=body) as response:
            await response.read()
            return response.status


async def _timed_post(session: aiohttp.ClientSession, path: str, body: dict) -> float:
    started = time.perf_counter()
    status = await _post(session, path, body)
    assert status == 200, status
    return (time.perf_counter() - started) * 1000


async def _probe(
    session: aiohttp.ClientSession, path: str, stop: asyncio.Event, out: list[float], params: dict | None = None
) -> None:
    """GET `path` back to back until `stop`, recording each latency in ms."""
    while not stop.is_set():
        started = time.perf_counter()
        async with session.get(path, params=params) as response:
            await response.read()
        out.append((time.perf_counter() - started) * 1000)


async def _tickers_for(session: aiohttp.ClientSession, seconds: float) -> list[float]:
    stop, out = asyncio.Event(), []
    streams = [asyncio.create_task(_probe(session, TICKER, stop, out, {"symbol": "BTC/USDT"})) for _ in range(4)]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*streams)
    return out


async def _loop_lag(session: aiohttp.ClientSession, *, reset: bool = False) -> float:
    async with session.get("/debug/loop-lag", params={"reset": "true" if reset else "false"}) as response:
        return float((await response.json())["max_lag_ms"])


def _statuses(statuses: list[int]) -> str:
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    return ", ".join(f"{n} × {s}" for s, n in counts.items())


if __name__ == "__main__":  # python -m bench.compute [--quick] (also a section of python -m bench: --only compute)
    import sys

    print(asyncio.run(compute_section("--quick" in sys.argv[1:])))
