"""Order placement: latency and throughput through the API, and the chaos run's counts."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import httpx
from asgi_lifespan import LifespanManager

from aiotrade.app import create_app
from aiotrade.config import AccountConfig, AuthConfig, OrdersConfig, RateLimitConfig, Settings, VenueConfig
from aiotrade.paper.config import FaultConfig, PaperConfig
from aiotrade.paper.server import PaperExchange
from aiotrade.services.orders.keys import client_id_for_key
from bench.common import BENCH_HEADERS, BENCH_KEY, api_args, api_env, free_port, paper_args, paper_env, process, summary

ORDERS = "/api/v1/accounts/paper/orders"


async def _place(base: str, concurrency: int, seconds: float, tag: str) -> tuple[int, int, list[float]]:
    latencies: list[float] = []
    errors = 0
    counter = 0
    stop_at = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), headers=BENCH_HEADERS) as session:

        async def worker() -> None:
            nonlocal errors, counter
            while time.perf_counter() < stop_at:
                counter += 1
                side = ("buy", "sell")[counter % 2]  # keeps balances level
                body = {"symbol": "BTC/USDT", "side": side, "type": "market", "amount": "0.001"}
                started = time.perf_counter()
                async with session.post(base + ORDERS, json=body, headers={"Idempotency-Key": f"{tag}-{counter}"}) as r:
                    await r.read()
                    if r.status == 201:
                        latencies.append((time.perf_counter() - started) * 1000)
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), errors, latencies


async def orders_section(quick: bool) -> str:
    seconds = 5.0 if quick else 10.0
    paper_port, api_port = free_port(), free_port()
    rows = []
    with tempfile.TemporaryDirectory() as data_dir:
        async with (
            process(
                "paper-orders",
                paper_args(paper_port),
                paper_env(paper_port, latency_ms=50, weight_limit=10**9, orders_per_10s="1000000"),
                f"http://127.0.0.1:{paper_port}/api/v3/ping",
            ),
            process("aiotrade-orders", api_args(api_port), api_env(paper_port, data_dir, budget=1e9),
                    f"http://127.0.0.1:{api_port}/readyz"),
        ):  # fmt: skip
            base = f"http://127.0.0.1:{api_port}"
            async with aiohttp.ClientSession(headers=BENCH_HEADERS) as session:
                await session.put(base + "/api/v1/accounts/paper/risk-limits", json={"max_orders_per_minute": None})
            for concurrency in (1, 32):
                ok, errors, latencies = await _place(base, concurrency, seconds, f"bench-{concurrency}")
                p50, p99 = summary(latencies)
                rows.append(f"| {concurrency} | {ok / seconds:.0f} | {p50:.1f} | {p99:.1f} | {errors} |")
    chaos = await chaos_counts(300 if quick else 500)
    return "\n".join(
        [
            f"Market orders (BTC/USDT, buy and sell alternating, a fresh Idempotency-Key each) through the API, "
            f"paper exchange with 50 ms injected latency, risk gate on, SQLite store, {seconds:.0f} s per row.",
            "",
            "| concurrency | orders/s | p50 ms | p99 ms | errors |",
            "|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "Chaos run (in-process, one replica, SQLite): every order request and look-up faces ~30% mixed faults "
            "(5xx, 429, held before commit, dropped, committed-then-dropped, committed-then-held, garbled); a fifth of "
            "the keys are sent twice at once, a fifth twice in a row; then the exchange recovers and every key is "
            "retried until it has an answer.",
            "",
            "| keys | order requests at the exchange | faults injected | orders on the exchange | duplicates | lost |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {chaos['keys']} | {chaos['requests']} | {chaos['faults']} | {chaos['orders']} | {chaos['duplicates']} "
            f"| {chaos['lost']} |",
            "",
            f"Faults by kind: {chaos['by_kind']}.",
        ]
    )


async def chaos_counts(keys: int) -> dict[str, object]:
    faults = FaultConfig(
        paths=frozenset({"/api/v3/order"}), error_rate=0.06, rate_limit_rate=0.04, slow_rate=0.04, drop_rate=0.04,
        commit_drop_rate=0.06, commit_slow_rate=0.03, malformed_rate=0.03, slow_delay_ms=1_500,
    )  # fmt: skip
    config = PaperConfig(port=0, seed=11, weight_limit=10**8, orders_per_10s=10**8, faults=faults)
    with tempfile.TemporaryDirectory() as data_dir:
        async with PaperExchange(config) as paper:
            settings = Settings(
                venues={"paper": VenueConfig(base_url=paper.url, timeout_ms=600, options={"recvWindow": 1000},
                                             rate_limit=RateLimitConfig(budget=10**7))},
                accounts={"paper": AccountConfig(venue="paper", api_key="paper-api-key", secret="paper-secret")},
                database_url=f"sqlite+aiosqlite:///{Path(data_dir) / 'chaos.db'}",
                orders=OrdersConfig(clock_skew_ms=200),
                equity_interval_s=3600,
                auth=AuthConfig(bootstrap_key=BENCH_KEY),
            )  # fmt: skip
            app = create_app(settings)
            async with (
                LifespanManager(app, startup_timeout=30) as manager,
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=manager.app),
                    base_url="http://127.0.0.1",
                    timeout=60,
                    headers=BENCH_HEADERS,
                ) as api,
            ):
                await api.put("/api/v1/accounts/paper/risk-limits", json={"max_orders_per_minute": None})
                limit = asyncio.Semaphore(24)

                async def send(i: int) -> int:
                    body = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}
                    async with limit:
                        r = await api.post(ORDERS, json=body, headers={"Idempotency-Key": f"chaos-{i}"})
                    return r.status_code

                async def traffic(i: int) -> None:
                    if i % 5 == 0:
                        await asyncio.gather(send(i), send(i))
                    elif i % 5 == 1:
                        await send(i)
                        await send(i)
                    else:
                        await send(i)

                await asyncio.gather(*(traffic(i) for i in range(keys)))
                injected = dict(paper.stats.faults)
                requests = paper.stats.requests.get("/api/v3/order", 0)
                paper.set_faults()
                for i in range(keys):
                    for _ in range(10):
                        if await send(i) == 201:
                            break
                        await asyncio.sleep(0.2)
            ledger = Counter(order["clientOrderId"] for order in paper.state.private.engine.ledger())
    wanted = [client_id_for_key("paper", f"chaos-{i}") for i in range(keys)]
    return {
        "keys": keys,
        "requests": requests,
        "faults": sum(injected.values()),
        "by_kind": ", ".join(f"{k} {v}" for k, v in sorted(injected.items())),
        "orders": sum(ledger.values()),
        "duplicates": sum(ledger[c] - 1 for c in wanted if ledger[c] > 1),
        "lost": sum(1 for c in wanted if ledger[c] == 0),
    }
