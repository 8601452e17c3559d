"""`make bench`: the numbers in docs/benchmarks.md, measured side by side in one run.

Sections (all against the paper exchange in its own process, on loopback):
- ticker: throughput and p50/p99 of GET /api/v1/exchanges/paper/ticker at several concurrencies,
  aiotrade vs the design we replace (sync ccxt in run_in_executor, bench/baseline_app.py),
  with 50 ms injected upstream latency, distinct symbols round-robin, no caching.
- limiter: requests the exchange accepted per minute window against its weight budget, and 429s.

Usage: python -m bench [--quick] [--only ticker,limiter]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def process(name: str, args: Sequence[str], env: dict[str, str], ready_url: str) -> AsyncIterator[None]:
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
        yield
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


def paper_env(port: int, *, latency_ms: float, weight_limit: int) -> dict[str, str]:
    return {
        "AIOTRADE_PAPER_HOST": "127.0.0.1",
        "AIOTRADE_PAPER_PORT": str(port),
        "AIOTRADE_PAPER_LATENCY_MS": str(latency_ms),
        "AIOTRADE_PAPER_JITTER_MS": "0",
        "AIOTRADE_PAPER_WEIGHT_LIMIT": str(weight_limit),
    }


def api_env(paper_port: int, data_dir: str, *, budget: float) -> dict[str, str]:
    return {
        "AIOTRADE_VENUES__PAPER__BASE_URL": f"http://127.0.0.1:{paper_port}",
        "AIOTRADE_VENUES__PAPER__RATE_LIMIT__BUDGET": str(budget),
        "AIOTRADE_DATA_DIR": data_dir,
        "AIOTRADE_LOG_LEVEL": "WARNING",
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
    base_url: str, target: str, concurrency: int, seconds: float, warmup: float, request=api_ticker
) -> LoadResult:
    """``concurrency`` workers in a closed loop for ``seconds`` (after ``warmup``), symbols round-robin."""
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    result = LoadResult(target, concurrency, seconds, 0, 0, [])
    counter = 0
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
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


async def ticker_section(quick: bool) -> str:
    seconds, warmup = (4.0, 1.0) if quick else (10.0, 2.0)
    paper_port, ours_port, base_port = free_port(), free_port(), free_port()
    rows: list[tuple[LoadResult, LoadResult]] = []
    with tempfile.TemporaryDirectory() as data_dir:
        async with (
            process(
                "paper",
                paper_args(paper_port),
                paper_env(paper_port, latency_ms=50, weight_limit=1_000_000_000),
                f"http://127.0.0.1:{paper_port}/api/v3/ping",
            ),
            process(
                "aiotrade",
                [sys.executable, "-m", "aiotrade", "serve", "--port", str(ours_port)],
                api_env(paper_port, data_dir, budget=1e9),
                f"http://127.0.0.1:{ours_port}/readyz",
            ),
            process(
                "baseline",
                [sys.executable, "-m", "uvicorn", "bench.baseline_app:app", "--port", str(base_port),
                 "--log-level", "warning", "--no-access-log"],
                {"AIOTRADE_BASELINE_PAPER_URL": f"http://127.0.0.1:{paper_port}"},
                f"http://127.0.0.1:{base_port}{TICKER_PATH}?symbol=BTC/USDT",
            ),
        ):  # fmt: skip
            for concurrency in (8, 64, 256):
                ours = await load(f"http://127.0.0.1:{ours_port}", "aiotrade", concurrency, seconds, warmup)
                base = await load(f"http://127.0.0.1:{base_port}", "baseline", concurrency, seconds, warmup)
                rows.append((ours, base))
            # The upstream as a client sees it, without us: what "50 ms injected" really costs here.
            direct = await load(f"http://127.0.0.1:{paper_port}", "paper", 8, seconds, warmup, paper_ticker)
            ours_again = await load(f"http://127.0.0.1:{ours_port}", "aiotrade", 8, seconds, warmup)
    lines = [
        f"Ticker endpoint, paper exchange with 50 ms injected latency, {seconds:.0f} s per cell "
        f"after {warmup:.0f} s warm-up, closed-loop clients, 12 symbols round-robin, no caching.",
        "",
        "| concurrency | aiotrade req/s | p50 ms | p99 ms | errors | baseline req/s | p50 ms | p99 ms | errors "
        "| throughput ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for ours, base in rows:
        ratio = ours.throughput / base.throughput if base.throughput else float("inf")
        lines.append(
            f"| {ours.concurrency} | {ours.throughput:.0f} | {ours.percentile(0.5):.1f} | "
            f"{ours.percentile(0.99):.1f} | {ours.errors} | {base.throughput:.0f} | {base.percentile(0.5):.1f} | "
            f"{base.percentile(0.99):.1f} | {base.errors} | {ratio:.1f}x |"
        )
    light = rows[0][0]
    top_ratio = rows[-1][0].throughput / max(rows[-1][1].throughput, 1e-9)
    overhead = ours_again.percentile(0.5) - direct.percentile(0.5)
    lines += [
        "",
        f"Concurrency 8, measured back to back: the paper exchange asked directly p50 {direct.percentile(0.5):.1f} ms "
        f"(p99 {direct.percentile(0.99):.1f}); through aiotrade p50 {ours_again.percentile(0.5):.1f} ms "
        f"(p99 {ours_again.percentile(0.99):.1f}); our overhead at p50 {overhead:.1f} ms (target: at most 2 ms above "
        f"the upstream; first pass p50 {light.percentile(0.5):.1f} ms).",
        f"Throughput ratio at 256: {top_ratio:.1f}x (target: at least 10x).",
    ]
    return "\n".join(lines)


async def limiter_section(quick: bool) -> str:
    """Saturate a small budget for whole minute windows and read the paper exchange's own counters."""
    weight_limit = 600  # Binance weight per minute at the paper exchange
    budget_units = weight_limit / 5  # ccxt cost units: binance cost 1 = weight 5
    windows = 1 if quick else 2
    paper_port, ours_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        async with (
            process(
                "paper-limiter",
                paper_args(paper_port),
                paper_env(paper_port, latency_ms=5, weight_limit=weight_limit),
                f"http://127.0.0.1:{paper_port}/api/v3/ping",
            ),
            process(
                "aiotrade-limiter",
                [sys.executable, "-m", "aiotrade", "serve", "--port", str(ours_port)],
                api_env(paper_port, data_dir, budget=budget_units),
                f"http://127.0.0.1:{ours_port}/readyz",
            ),
        ):
            # Start at the next minute boundary + 1 s, run `windows` whole windows plus a margin.
            now = time.time()
            start = (int(now // 60) + 1) * 60 + 1
            await asyncio.sleep(start - now)
            await load(f"http://127.0.0.1:{ours_port}", "aiotrade", 32, windows * 60 + 2, 0)
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{paper_port}/__paper/stats") as response,
            ):
                stats = await response.json()
    per_window = _weight_windows(stats)
    whole = [w for minute, w in per_window.items() if start // 60 <= minute < start // 60 + windows]
    rejected = _rejections(stats)
    utilisation = [w / weight_limit for w in whole]
    return "\n".join(
        [
            f"Rate limiter: paper exchange budget {weight_limit} weight/min (= {budget_units:.0f} ccxt units), "
            f"aiotrade limiter set to the same budget, 32 clients saturating the ticker endpoint for {windows} "
            "whole minute windows.",
            "",
            "| window | weight accepted | budget | utilisation |",
            "|---:|---:|---:|---:|",
            *(
                f"| {i + 1} | {w} | {weight_limit} | {u:.1%} |"
                for i, (w, u) in enumerate(zip(whole, utilisation, strict=True))
            ),
            "",
            f"429 answers from the exchange: {rejected} (target 0). Target utilisation: at least 95%.",
            "",
            "Raw stats: `" + json.dumps(stats)[:400] + "`",
        ]
    )


def _weight_windows(stats: dict) -> dict[int, int]:
    """{minute index: weight used} from the paper exchange's stats (shape documented in paper/)."""
    raw = stats.get("weight_by_minute") or stats.get("weight_windows") or {}
    return {int(int(k) // 60_000 if int(k) > 10**9 else int(k)): int(v) for k, v in raw.items()}


def _rejections(stats: dict) -> int:
    return int(stats.get("rate_limited", stats.get("responses_429", 0)))


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="shorter runs (noisier figures)")
    parser.add_argument("--only", default="ticker,limiter", help="comma-separated sections")
    args = parser.parse_args(argv)
    sections = {"ticker": ticker_section, "limiter": limiter_section}
    print(f"# aiotrade benchmark — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} cores, `python -m bench {' '.join(argv or sys.argv[1:])}`\n")  # fmt: skip
    for name in args.only.split(","):
        print(f"## {name}\n")
        print(await sections[name.strip()](args.quick))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
