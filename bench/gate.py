"""The gate under load on PostgreSQL: one account, two accounts, and a slow venue — before and after.

"Before" is the order path as it was before the gate was serialised (git revision `BEFORE_REV`, exported
into a temp dir and served with the same venv); "after" is this tree. Both run side by side in one run,
against the same paper exchange process, each with a fresh PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from tests.support.servers import postgres_server

from bench.common import BENCH_HEADERS, ROOT, api_args, api_env, free_port, paper_args, paper_env, process, summary

BEFORE_REV = os.environ.get("AIOTRADE_BENCH_BEFORE_REV", "693c85f")
SECOND = {"api_key": "paper-api-key-2", "secret": "paper-secret-2"}
BALANCES = {"USDT": "100000000", "BTC": "10000"}


async def gate_section(quick: bool) -> str:
    seconds = 5.0 if quick else 10.0
    rows: list[str] = []
    slow_rows: list[str] = []
    with postgres_server() as pg_url, tempfile.TemporaryDirectory() as tmp:
        before_src = _export(BEFORE_REV, Path(tmp) / "before")
        for label, src in (("before", before_src), ("after", ROOT / "src")):
            async with _stack(pg_url, f"gate_{label}", src, latency_ms=50, data_dir=tmp) as base:
                one = await _place(base, {"paper": 32}, seconds, f"{label}-one")
                two = await _place(base, {"paper": 32, "second": 32}, seconds, f"{label}-two")
            ratio = two.rate / one.rate if one.rate else float("nan")
            rows.append(
                f"| {label} | {one.rate:.0f} | {one.p50:.0f} | {one.p99:.0f} | {one.errors} "
                f"| {two.rate:.0f} | {ratio:.2f}x | {two.errors} |"
            )
            async with _stack(pg_url, f"gate_slow_{label}", src, latency_ms=200, data_dir=tmp) as base:
                single = await _burst(base, 1, f"{label}-single")
                burst = await _burst(base, 10, f"{label}-burst")
            slow_rows.append(f"| {label} | {single:.0f} | {burst:.0f} | {burst / single:.2f} |")
    return "\n".join(
        [
            f"Market orders through the API on PostgreSQL, paper exchange with 50 ms injected latency, {seconds:.0f} s "
            f"per cell, closed-loop clients, a fresh Idempotency-Key each; 'before' is revision {BEFORE_REV} (the gate "
            "not serialised), 'after' this tree; same paper process, same machine, one run.",
            "",
            "| code | one account c=32 orders/s | p50 ms | p99 ms | errors | two accounts c=32 each orders/s "
            "| two ÷ one | errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "Paper exchange with 200 ms injected latency: wall time of one order alone, and of 10 orders on one "
            "account sent at once (the gate holds its lock for milliseconds, not for the exchange's round trips).",
            "",
            "| code | one order ms | 10 concurrent orders ms | ratio |",
            "|---|---:|---:|---:|",
            *slow_rows,
        ]
    )


class Rate:
    def __init__(self, ok: int, errors: int, seconds: float, latencies: list[float]) -> None:
        self.rate = ok / seconds
        self.errors = errors
        self.p50, self.p99 = summary(latencies)


async def _place(base: str, clients: dict[str, int], seconds: float, tag: str) -> Rate:
    latencies: list[float] = []
    errors = 0
    counter = 0
    stop_at = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), headers=BENCH_HEADERS) as session:

        async def worker(account: str) -> None:
            nonlocal errors, counter
            while time.perf_counter() < stop_at:
                counter += 1
                side = ("buy", "sell")[counter % 2]
                body = {"symbol": "BTC/USDT", "side": side, "type": "market", "amount": "0.001"}
                started = time.perf_counter()
                headers = {"Idempotency-Key": f"{tag}-{counter}"}
                async with session.post(f"{base}/api/v1/accounts/{account}/orders", json=body, headers=headers) as r:
                    await r.read()
                    if r.status == 201 and time.perf_counter() <= stop_at:
                        latencies.append((time.perf_counter() - started) * 1000)
                    elif r.status != 201:
                        errors += 1

        await asyncio.gather(*(worker(a) for a, n in clients.items() for _ in range(n)))
    return Rate(len(latencies), errors, seconds, latencies)


async def _burst(base: str, count: int, tag: str) -> float:
    """Wall time (ms) of ``count`` orders on one account sent at once; the median of three bursts."""
    times = []
    body = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}
    async with aiohttp.ClientSession(headers=BENCH_HEADERS) as session:
        for attempt in range(3):

            async def one(i: int, attempt: int = attempt) -> int:
                headers = {"Idempotency-Key": f"{tag}-{attempt}-{i}"}
                async with session.post(f"{base}/api/v1/accounts/paper/orders", json=body, headers=headers) as r:
                    await r.read()
                    return r.status

            started = time.perf_counter()
            statuses = await asyncio.gather(*(one(i) for i in range(count)))
            times.append((time.perf_counter() - started) * 1000)
            assert statuses == [201] * count, statuses
    return sorted(times)[1]


@contextlib.asynccontextmanager
async def _stack(pg_url: str, database: str, src: Path, *, latency_ms: float, data_dir: str) -> AsyncIterator[str]:
    paper_port, api_port = free_port(), free_port()
    accounts = [
        {"api_key": "paper-api-key", "secret": "paper-secret", "balances": BALANCES},
        {**SECOND, "balances": BALANCES},
    ]
    url = await _fresh_database(pg_url, database)
    env = {
        **api_env(paper_port, data_dir, budget=1e9),
        "AIOTRADE_DATABASE_URL": url,
        # Naming one account replaces the default set: name both.
        "AIOTRADE_ACCOUNTS__PAPER__VENUE": "paper",
        "AIOTRADE_ACCOUNTS__PAPER__API_KEY": "paper-api-key",
        "AIOTRADE_ACCOUNTS__PAPER__SECRET": "paper-secret",
        "AIOTRADE_ACCOUNTS__SECOND__VENUE": "paper",
        "AIOTRADE_ACCOUNTS__SECOND__API_KEY": SECOND["api_key"],
        "AIOTRADE_ACCOUNTS__SECOND__SECRET": SECOND["secret"],
        "PYTHONPATH": str(src),
    }
    if src == ROOT / "src":
        # The paper venue here allows 1,000,000 orders per 10 s: tell our limiter so (it knows Binance's 50), so
        # the gate, not the venue's published order limit, is what is measured. The revision before had no
        # order-count limiter (and no such setting).
        env["AIOTRADE_VENUES__PAPER__RATE_LIMIT__ORDER_LIMITS"] = json.dumps({"orders_10s": 1_000_000})
    async with (
        process(
            f"paper-{database}",
            paper_args(paper_port),
            paper_env(
                paper_port, latency_ms=latency_ms, weight_limit=10**9, orders_per_10s="1000000",
                accounts=json.dumps(accounts),
            ),
            f"http://127.0.0.1:{paper_port}/api/v3/ping",
        ),
        process(f"aiotrade-{database}", api_args(api_port), env, f"http://127.0.0.1:{api_port}/readyz"),
    ):  # fmt: skip
        base = f"http://127.0.0.1:{api_port}"
        async with aiohttp.ClientSession(headers=BENCH_HEADERS) as session:
            for account in ("paper", "second"):
                await session.put(f"{base}/api/v1/accounts/{account}/risk-limits", json={"max_orders_per_minute": None})
        yield base


async def _fresh_database(pg_url: str, name: str) -> str:
    import asyncpg

    dsn = pg_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return pg_url.rsplit("/", 1)[0] + f"/{name}"


def _export(revision: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", revision, "src"], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


if __name__ == "__main__":
    print(asyncio.run(gate_section("--quick" in sys.argv)))
