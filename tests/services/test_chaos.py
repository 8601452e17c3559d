"""Chaos: hundreds of orders through two API replicas sharing PostgreSQL, ~30% mixed faults on the
order endpoint (commit-then-drop among them), keys sent twice and concurrently. Afterwards the paper
exchange's own ledger holds exactly one order per key and our store agrees with it.

The same faults against a naive retry-on-timeout client produce duplicates: the test can fail.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import ccxt.async_support as ccxt
import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from aiotrade.app import create_app
from aiotrade.config import OrdersConfig
from aiotrade.paper.config import FaultConfig, PaperConfig
from aiotrade.paper.server import PaperExchange
from aiotrade.services.orders.keys import client_id_for_key
from aiotrade.store.db import make_engine
from tests.support.stack import BASE_URL, auth_headers, scoped_key, stack_settings

KEYS = 200
ORDER_PATH = "/api/v3/order"
CHAOS = FaultConfig(
    paths=frozenset({ORDER_PATH}),
    error_rate=0.06,
    rate_limit_rate=0.04,
    slow_rate=0.04,
    drop_rate=0.04,
    commit_drop_rate=0.06,
    commit_slow_rate=0.03,
    malformed_rate=0.03,
    slow_delay_ms=1_500,
)  # 30% of order requests, creation and look-ups alike
EXCHANGE_STATUS = {
    "FILLED": "FILLED",
    "NEW": "OPEN",
    "PARTIALLY_FILLED": "PARTIALLY_FILLED",
    "CANCELED": "CANCELED",
    "EXPIRED": "EXPIRED",
}


async def _clean(url: str) -> None:
    engine = make_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@contextlib.asynccontextmanager
async def replicas(paper: PaperExchange, data_dir: Path, database_url: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    settings = stack_settings(
        paper.url,
        data_dir,
        database_url=database_url,
        venue_overrides={"timeout_ms": 600, "options": {"recvWindow": 1000}},
        orders=OrdersConfig(clock_skew_ms=200, reconcile_interval_s=3600),
    )
    apps = [create_app(settings), create_app(settings)]
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for app in apps:
            manager = await stack.enter_async_context(LifespanManager(app, startup_timeout=30, shutdown_timeout=30))
            clients.append(
                await stack.enter_async_context(
                    httpx.AsyncClient(
                        transport=httpx.ASGITransport(app=manager.app),
                        base_url=BASE_URL,
                        headers=auth_headers(),
                        timeout=60,
                    )
                )
            )
        yield clients


def _body(i: int) -> dict[str, str]:
    symbol = ("BTC/USDT", "ETH/USDT", "SOL/USDT")[i % 3]
    amount = {"BTC/USDT": "0.001", "ETH/USDT": "0.01", "SOL/USDT": "0.5"}[symbol]
    return {"symbol": symbol, "side": "buy", "type": "market", "amount": amount}


async def test_chaos_two_replicas_place_exactly_one_order_per_key(tmp_path: Path, postgres_url: str) -> None:
    await _clean(postgres_url)
    config = PaperConfig(port=0, seed=11, weight_limit=10_000_000, orders_per_10s=1_000_000, faults=CHAOS)
    async with PaperExchange(config) as paper, replicas(paper, tmp_path, postgres_url) as (a, b):
        await a.put("/api/v1/accounts/paper/risk-limits", json={"max_orders_per_minute": None})
        limit = asyncio.Semaphore(24)
        first_answers: Counter[int] = Counter()

        async def send(client: httpx.AsyncClient, i: int) -> int:
            async with limit:
                response = await client.post(
                    "/api/v1/accounts/paper/orders", json=_body(i), headers={"Idempotency-Key": f"chaos-{i}"}
                )
            first_answers[response.status_code] += 1
            return response.status_code

        async def key_traffic(i: int) -> None:
            if i % 5 == 0:  # the same key at once on both replicas
                await asyncio.gather(send(a, i), send(b, i))
            elif i % 5 == 1:  # a retry after an answer, on the other replica
                await send(a, i)
                await send(b, i)
            else:
                await send((a, b)[i % 2], i)

        await asyncio.gather(*(key_traffic(i) for i in range(KEYS)))
        faults = dict(paper.stats.faults)

        # The exchange recovers; clients retry every key until they have an answer that settles it.
        paper.set_faults()
        final: dict[int, dict] = {}
        for i in range(KEYS):
            for attempt in range(10):
                response = await (a, b)[attempt % 2].post(
                    "/api/v1/accounts/paper/orders", json=_body(i), headers={"Idempotency-Key": f"chaos-{i}"}
                )
                if response.status_code == 201:
                    final[i] = response.json()
                    break
                assert response.status_code in (409, 503), response.text
                await asyncio.sleep(0.3)

        ledger = Counter(order["clientOrderId"] for order in paper.state.private.engine.ledger())
        exchange = {order["clientOrderId"]: order for order in paper.state.private.engine.ledger()}

    assert sum(faults.values()) >= 0.2 * KEYS, faults  # the chaos did happen
    assert faults.get("commit_then_drop", 0) > 0
    assert len(final) == KEYS, f"keys without an order: {sorted(set(range(KEYS)) - set(final))}"
    for i in range(KEYS):
        client_order_id = client_id_for_key("paper", scoped_key(f"chaos-{i}"))  # keys are scoped by caller
        assert ledger[client_order_id] == 1, (i, ledger[client_order_id], final[i]["status"], final[i]["error"])
        assert final[i]["id"] == client_order_id
        assert final[i]["status"] == EXCHANGE_STATUS[exchange[client_order_id]["status"]]
    assert sum(ledger.values()) == KEYS  # nothing else was placed


async def test_a_naive_retry_on_timeout_client_duplicates_orders_under_the_same_faults() -> None:
    config = PaperConfig(port=0, seed=11, weight_limit=10_000_000, orders_per_10s=1_000_000, faults=CHAOS)
    async with PaperExchange(config) as paper:
        client = ccxt.binance(
            {
                "apiKey": "paper-api-key",
                "secret": "paper-secret",
                "timeout": 600,
                "timeout_on_exit": 0,
                "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False},
            }
        )
        from aiotrade.paper.urls import binance_urls

        client.urls["api"] = binance_urls(paper.url)
        try:
            paper.set_faults()
            await client.load_markets()
            paper.set_faults(CHAOS)

            async def naive(i: int) -> None:
                for _ in range(4):  # what a hand-rolled wrapper does: retry on a network error
                    try:
                        await client.create_order("BTC/USDT", "market", "buy", 0.001, None, {"clientOrderId": f"n{i}"})
                        return
                    except (ccxt.NetworkError, ccxt.BadResponse):
                        continue

            await asyncio.gather(*(naive(i) for i in range(100)))
        finally:
            await client.close()
        ledger = Counter(order["clientOrderId"] for order in paper.state.private.engine.ledger())
    duplicated = [cid for cid, count in ledger.items() if count > 1]
    assert duplicated, "the naive client should have placed some orders twice"
