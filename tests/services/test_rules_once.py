"""Each rule is written once: every caller fed the same case gives the same answer.

Through the real stack, on a paper exchange whose clock stands still, so that every path sees the same
prices: valuation (gate, equity recorder, live snapshot, portfolio status), market rules (order
preparation, sizing, rebalance planning) and funding (both validate-trade endpoints).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import httpx
import pytest

from aiotrade.config import PAPER_API_KEY, PAPER_SECRET
from aiotrade.domain.money import money
from aiotrade.jobs.equity import record_and_monitor
from aiotrade.paper.config import PaperAccountConfig, PaperConfig
from tests.support.stack import Stack, running_stack

BALANCES = {
    "USDT": Decimal(100_000),  # valued in BTC through the inverse pair BTC/USDT
    "BTC": Decimal(1),
    "ETH": Decimal(10),  # ETH/BTC: a direct pair
    "SOL": Decimal(100),
    "BNB": Decimal(20),  # no BNB/BTC pair: BNB/USDT ÷ BTC/USDT
    "DOGE": Decimal("0.3"),  # dust, below DOGE's lot step of 1
}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    account = PaperAccountConfig(api_key=PAPER_API_KEY, secret=PAPER_SECRET, balances=BALANCES)
    config = PaperConfig(port=0, seed=7, weight_limit=500_000, accounts=(account,))
    # The exchange's clock stands still, 9 s ahead: signed requests stay inside its 10 s recvWindow (and
    # not more than 1 s ahead of it) for the next ~10 s of the test, and prices do not move meanwhile.
    frozen_ms = int(time.time() * 1000) + 9_000
    async with running_stack(tmp_path, paper_config=config, paper_clock=lambda: frozen_ms) as running:
        response = await running.api.put(
            "/api/v1/accounts/paper/risk-limits", json={"quote_currency": "BTC", "max_orders_per_minute": None}
        )
        assert response.status_code == 200, response.text
        yield running


async def price(stack: Stack, symbol: str) -> Decimal:
    return (await stack.gateway.ticker("paper", symbol)).last  # type: ignore[return-value]


async def test_one_valuation_behind_gate_recorder_snapshot_and_status(stack: Stack) -> None:
    # Funds locked in an open order: a resting ETH/BTC sell holds 2 ETH.
    ask = (await price(stack, "ETH/BTC") * Decimal("1.02")).quantize(Decimal("0.00001"))
    order = {"symbol": "ETH/BTC", "side": "sell", "type": "limit", "amount": "2", "price": str(ask)}
    assert (await stack.api.post("/api/v1/accounts/paper/orders", json=order)).status_code == 201

    snapshot = (await stack.api.get("/api/v1/portfolio/live/snapshot", params={"quote": "BTC"})).json()["snapshot"]
    status = (await stack.api.get("/api/v1/portfolio/status", params={"quote": "BTC"})).json()
    # (The app recorded a USDT figure at start-up; interval -1 puts this record in a bucket of its own.)
    await record_and_monitor(stack.gateway, stack.app.state.risk_store, ["paper"], interval=-1)
    *_, (_, recorded) = await stack.app.state.risk_store.equity_history("paper")

    assert snapshot["market_data_quality"]["missing"] == [] and status["priced_completely"]
    assert Decimal(snapshot["total_value"]) == Decimal(status["total_value"]) == money(recorded)

    # The gate values the account for its loss limits: with the day's first record exactly 1 BTC above
    # the recorder's figure, a 1 BTC daily-loss limit is reached and one a hair above it is not — so
    # the gate's equity equals the recorder's to the last digit.
    day_start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    await stack.app.state.risk_store.record_equity("paper", "BTC", recorded + 1, at=day_start + timedelta(seconds=1))
    buy = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}

    async def loss_limit_reached(limit: str) -> bool:
        await stack.api.put(
            "/api/v1/accounts/paper/risk-limits",
            json={"quote_currency": "BTC", "max_orders_per_minute": None, "daily_loss_limit": limit},
        )
        verdict = (await stack.api.post("/api/v1/risk/validate-trade", json={"orders": [buy]})).json()
        return "DAILY_LOSS_LIMIT_REACHED" in [v["code"] for v in verdict["violations"]]

    assert await loss_limit_reached("1")
    assert not await loss_limit_reached("1.000000000000001")


async def test_one_set_of_market_rules_behind_placement_sizing_and_rebalance(stack: Stack) -> None:
    # 0.00008 BTC is on the lot step and above the minimum amount, but its notional is under BTC/USDT's
    # 5 USDT minimum: every caller calls it untradable, with the same code.
    last = await price(stack, "BTC/USDT")
    tiny = Decimal("0.00008")
    assert tiny * last < 5

    placed, sized, dropped = await every_callers_answer(stack, tiny, buy_value=Decimal(3))  # a ~3 USDT buy

    assert placed.status_code == 422
    assert any("NOTIONAL_BELOW_MIN" in e["detail"] for e in placed.json()["errors"]), placed.text
    assert Decimal(sized["amount"]) * last < 5
    assert any("NOTIONAL_BELOW_MIN" in cap for cap in sized["caps_applied"]), sized
    assert "NOTIONAL_BELOW_MIN" in dropped.get("BTC/USDT", ""), dropped


async def every_callers_answer(
    stack: Stack, amount: Decimal, *, buy_value: Decimal
) -> tuple[httpx.Response, dict, dict[str, str]]:
    """The same small BTC/USDT buy put to placement (`amount`), to sizing (an equity that risks 1% on about
    `amount`) and to rebalance planning (a target `buy_value` USDT above the holding): the placement's
    answer, the sizing and the plan's dropped symbols with their reasons."""
    last = await price(stack, "BTC/USDT")
    placed = await stack.api.post(
        "/api/v1/accounts/paper/orders",
        json={"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": str(amount)},
    )
    stop = (last * Decimal("0.95")).quantize(Decimal("0.01"))
    equity = (amount * (last - stop) / Decimal("0.01")).quantize(Decimal("0.01"))  # risking 1% → about `amount`
    sized = (
        await stack.api.post(
            "/api/v1/risk/position-size",
            json={"symbol": "BTC/USDT", "equity": str(equity), "risk_fraction": "0.01", "stop_price": str(stop)},
        )
    ).json()
    status = (await stack.api.get("/api/v1/portfolio/status")).json()
    btc = next(a for a in status["assets"] if a["asset"] == "BTC")
    total = Decimal(status["total_value"])
    target = Decimal(btc["weight"]) + (buy_value / total).quantize(Decimal("0.00000001"))
    assert await stack.app.state.portfolio_store.set_targets("paper", {"BTC/USDT": target}, source="test")
    plan = (await stack.api.post("/api/v1/portfolio/rebalance", json={"band": "0"})).json()
    return placed, sized, {d["symbol"]: d["reason"] for d in plan["dropped"]}


@pytest.mark.parametrize("fee_rate", ["0.001", "0.002"])
async def test_one_funding_rule_behind_both_validate_endpoints(stack: Stack, fee_rate: str) -> None:
    await stack.api.put(
        "/api/v1/accounts/paper/risk-limits",
        json={"quote_currency": "USDT", "max_orders_per_minute": None, "fee_rate": fee_rate},
    )
    bid = (await price(stack, "BTC/USDT") * Decimal("0.99")).quantize(Decimal("0.01"))
    # Exactly what 100,000 USDT funds at a 0.001 fee rate, and one lot more.
    fits = (Decimal(100_000) / (bid * Decimal("1.001"))).quantize(Decimal("0.00001"), rounding=ROUND_DOWN)
    for amount in (fits, fits + Decimal("0.00001")):
        order = {"symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": str(amount), "price": str(bid)}
        gate = (await stack.api.post("/api/v1/risk/validate-trade", json={"orders": [order]})).json()
        live = (await stack.api.post("/api/v1/portfolio/live/validate-trade", json=order)).json()
        gate_funds = "INSUFFICIENT_BALANCE" not in [v["code"] for v in gate["violations"]]
        assert gate_funds is live["valid"], (amount, gate, live)
        expected = amount == fits and fee_rate == "0.001"
        assert live["valid"] is expected


async def test_one_lot_rule_behind_placement_sizing_and_rebalance(stack: Stack) -> None:
    # 0.000004 BTC is under BTC/USDT's lot step of 0.00001: truncated to the step it is nothing, and every
    # caller says so with the same code.
    last = await price(stack, "BTC/USDT")
    dust = Decimal("0.000004")

    placed, sized, dropped = await every_callers_answer(stack, dust, buy_value=dust * last)

    assert placed.status_code == 422
    assert any("AMOUNT_BELOW_LOT_STEP" in e["detail"] for e in placed.json()["errors"]), placed.text
    assert Decimal(sized["amount"]) == 0
    assert any("AMOUNT_BELOW_LOT_STEP" in cap for cap in sized["caps_applied"]), sized
    assert "AMOUNT_BELOW_LOT_STEP" in dropped.get("BTC/USDT", ""), dropped
