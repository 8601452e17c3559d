"""The risk gate holds under concurrency: two replicas on one database, ten orders at once, one account.

Real stack: two app instances (each with its own pool, gate and lifespan) on one SQLite file or one real
PostgreSQL server, real ccxt over HTTP to one paper exchange. The exchange's ledger is the truth. The
control — the same ten orders only *validated* concurrently, with no critical section — approves them
all, which is the race the gate closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange
from aiotrade.store.db import make_engine
from tests.support.stack import app_instance, stack_settings

ORDERS = "/api/v1/accounts/paper/orders"


@dataclass
class Replicas:
    paper: PaperExchange
    apis: tuple[httpx.AsyncClient, httpx.AsyncClient]

    def placed(self) -> list[dict]:
        return self.paper.state.private.engine.ledger()


@contextlib.asynccontextmanager
async def replicas(database_url: str, data_dir: Path) -> AsyncIterator[Replicas]:
    async with PaperExchange(PaperConfig(port=0, seed=7, weight_limit=500_000)) as paper:
        settings = stack_settings(paper.url, data_dir, database_url=database_url)
        async with app_instance(settings) as (_, first), app_instance(settings) as (_, second):
            yield Replicas(paper, (first, second))


@pytest.fixture(params=["sqlite", "postgresql"])
async def two(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Replicas]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
        engine = make_engine(url)
        async with engine.begin() as connection:  # a clean schema per test on the shared server
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        await engine.dispose()
    async with replicas(url, tmp_path) as running:
        yield running


async def set_limits(two: Replicas, **limits: object) -> None:
    response = await two.apis[0].put("/api/v1/accounts/paper/risk-limits", json=limits)
    assert response.status_code == 200, response.text


async def last_price(two: Replicas) -> Decimal:
    ticker = (await two.apis[1].get("/api/v1/exchanges/paper/ticker", params={"symbol": "BTC/USDT"})).json()
    return Decimal(ticker["last"])


async def send_together(two: Replicas, orders: list[dict]) -> list[httpx.Response]:
    """Every order at once, alternating between the replicas."""
    return list(await asyncio.gather(*(two.apis[i % 2].post(ORDERS, json=o) for i, o in enumerate(orders))))


def refusal_codes(responses: list[httpx.Response]) -> list[set[str]]:
    return [{e["name"] for e in r.json()["errors"]} for r in responses if r.status_code == 422]


async def test_ten_resting_orders_under_max_open_orders_3_place_exactly_3(two: Replicas) -> None:
    await set_limits(two, max_open_orders=3, max_orders_per_minute=None)
    bid = str((await last_price(two) * Decimal("0.98")).quantize(Decimal("0.01")))
    order = {"symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": "0.001", "price": bid}

    responses = await send_together(two, [order] * 10)

    assert sorted(r.status_code for r in responses) == [201] * 3 + [422] * 7, [r.text for r in responses]
    assert all("OPEN_ORDERS_EXCEED_MAX" in codes for codes in refusal_codes(responses))
    assert len(two.placed()) == 3  # the exchange saw three orders, no more


async def test_ten_buys_fundable_alone_but_only_four_together_place_four(two: Replicas) -> None:
    await set_limits(two, max_orders_per_minute=None)
    price = (await last_price(two) * Decimal("0.98")).quantize(Decimal("0.01"))
    # 100,000 USDT free: 22,000 of notional each (fees included) — four fit, a fifth does not.
    amount = (Decimal(22_000) / price).quantize(Decimal("0.00001"), rounding=ROUND_DOWN)
    order = {"symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": str(amount), "price": str(price)}

    responses = await send_together(two, [order] * 10)

    assert sorted(r.status_code for r in responses) == [201] * 4 + [422] * 6, [r.text for r in responses]
    assert all("INSUFFICIENT_BALANCE" in codes for codes in refusal_codes(responses))
    assert len(two.placed()) == 4


async def test_max_orders_per_minute_5_with_10_concurrent_places_5(two: Replicas) -> None:
    await set_limits(two, max_orders_per_minute=5)
    order = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}

    responses = await send_together(two, [order] * 10)

    assert sorted(r.status_code for r in responses) == [201] * 5 + [422] * 5, [r.text for r in responses]
    assert all("SUBMIT_RATE_EXCEEDED" in codes for codes in refusal_codes(responses))
    assert len(two.placed()) == 5


async def test_control_concurrent_validation_without_the_critical_section_approves_all(two: Replicas) -> None:
    # validate-trade reads and judges like the gate but takes no lock and records nothing: ten at once
    # all see an account with no open orders. Placing on those verdicts would put ten orders out.
    await set_limits(two, max_open_orders=3, max_orders_per_minute=None)
    bid = str((await last_price(two) * Decimal("0.98")).quantize(Decimal("0.01")))
    body = {"orders": [{"symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": "0.001", "price": bid}]}

    verdicts = await asyncio.gather(
        *(two.apis[i % 2].post("/api/v1/risk/validate-trade", json=body) for i in range(10))
    )

    assert [v.json()["approved"] for v in verdicts] == [True] * 10
    assert two.placed() == []
