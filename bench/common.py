"""Shared pieces of the benchmarks: server processes, free ports, closed-loop HTTP load."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = [
    "BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT", "BNB/USDT", "XRP/USDT",
    "ADA/USDT", "DOGE/USDT", "LTC/USDT", "DOT/USDT", "LINK/USDT", "SOL/BTC",
]  # fmt: skip
TICKER_PATH = "/api/v1/exchanges/paper/ticker"
# Every benchmarked app stores this as its bootstrap key (every scope, rate limit 0), and `load` sends it:
# the figures are measured with authentication on, and no inbound limit in the way.
BENCH_KEY = "at_" + secrets.token_urlsafe(32)
BENCH_HEADERS = {"Authorization": f"Bearer {BENCH_KEY}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def process(
    name: str, args: Sequence[str], env: dict[str, str], ready_url: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Start a server process, wait until ``ready_url`` answers 200, stop it on exit."""
    log = open(Path(tempfile.gettempdir()) / f"aiotrade-bench-{name}.log", "wb")  # noqa: ASYNC230, SIM115
    proc = await asyncio.create_subprocess_exec(*args, env={**os.environ, **env}, stdout=log, stderr=log, cwd=str(ROOT))
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                if proc.returncode is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {log.name}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(ready_url) as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"{name} did not become ready; see {log.name}")
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


def paper_args(port: int) -> list[str]:
    return [sys.executable, "-m", "aiotrade", "paper"]


def paper_env(port: int, *, latency_ms: float, weight_limit: int, **extra: str) -> dict[str, str]:
    return {
        "AIOTRADE_PAPER_HOST": "127.0.0.1",
        "AIOTRADE_PAPER_PORT": str(port),
        "AIOTRADE_PAPER_LATENCY_MS": str(latency_ms),
        "AIOTRADE_PAPER_JITTER_MS": "0",
        "AIOTRADE_PAPER_WEIGHT_LIMIT": str(weight_limit),
        **{f"AIOTRADE_PAPER_{name.upper()}": value for name, value in extra.items()},
    }


def api_env(paper_port: int, data_dir: str, *, budget: float) -> dict[str, str]:
    return {
        "AIOTRADE_EQUITY_INTERVAL_S": "3600",
        "AIOTRADE_VENUES__PAPER__BASE_URL": f"http://127.0.0.1:{paper_port}",
        "AIOTRADE_VENUES__PAPER__RATE_LIMIT__BUDGET": str(budget),
        "AIOTRADE_DATA_DIR": data_dir,
        "AIOTRADE_LOG_LEVEL": "WARNING",
        "AIOTRADE_AUTH__BOOTSTRAP_KEY": BENCH_KEY,
        "AIOTRADE_AUTH__BOOTSTRAP_RATE_LIMIT": "0",
    }


@dataclass
class LoadResult:
    target: str
    concurrency: int
    seconds: float
    ok: int
    errors: int
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def api_ticker(symbol: str) -> tuple[str, dict[str, str]]:
    return TICKER_PATH, {"symbol": symbol}


def paper_ticker(symbol: str) -> tuple[str, dict[str, str]]:
    return "/api/v3/ticker/24hr", {"symbol": symbol.replace("/", "")}


async def load(
    base_url: str,
    target: str,
    concurrency: int,
    seconds: float,
    warmup: float,
    request=api_ticker,
    headers: dict[str, str] = BENCH_HEADERS,
) -> LoadResult:
    """``concurrency`` workers in a closed loop for ``seconds`` (after ``warmup``), symbols round-robin,
    sending ``headers`` (the benchmark's API key unless told otherwise)."""
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    result = LoadResult(target, concurrency, seconds, 0, 0, [])
    counter = 0
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
        started = time.perf_counter()
        measure_from, stop_at = started + warmup, started + warmup + seconds

        async def worker() -> None:
            nonlocal counter
            while (now := time.perf_counter()) < stop_at:
                symbol = SYMBOLS[counter % len(SYMBOLS)]
                counter += 1
                path, params = request(symbol)
                try:
                    async with session.get(base_url + path, params=params) as response:
                        await response.read()
                        ok = response.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                done = time.perf_counter()
                if now >= measure_from and done <= stop_at:
                    if ok:
                        result.ok += 1
                        result.latencies_ms.append((done - now) * 1000)
                    else:
                        result.errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


def api_args(port: int) -> list[str]:
    return [sys.executable, "-m", "aiotrade", "serve", "--port", str(port)]


def summary(latencies_ms: Sequence[float]) -> tuple[float, float]:
    """(p50, p99) of a sample, in ms."""
    ordered = sorted(latencies_ms)
    if not ordered:
        return float("nan"), float("nan")
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
