"""The risk engine through the whole stack: the gate refuses before the exchange sees anything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from aiotrade.jobs.equity import record_and_monitor
from tests.api.test_problems import assert_problem
from tests.support.stack import Stack

ORDERS = "/api/v1/accounts/paper/orders"
LIMITS = "/api/v1/accounts/paper/risk-limits"


async def last_price(stack: Stack, symbol: str = "BTC/USDT") -> Decimal:
    ticker = (await stack.api.get("/api/v1/exchanges/paper/ticker", params={"symbol": symbol})).json()
    return Decimal(ticker["last"])


async def set_limits(stack: Stack, **limits: object) -> None:
    response = await stack.api.put(LIMITS, json=limits)
    assert response.status_code == 200, response.text


async def codes_for(stack: Stack, *orders: dict) -> list[str]:
    response = await stack.api.post("/api/v1/risk/validate-trade", json={"orders": list(orders)})
    assert response.status_code == 200, response.text
    return [v["code"] for v in response.json()["violations"]]


def buy(amount: str, symbol: str = "BTC/USDT", **extra: str) -> dict:
    return {"symbol": symbol, "side": "buy", "type": "market", "amount": amount, **extra}


async def test_limits_round_trip_and_reject_nonsense(stack: Stack) -> None:
    assert (await stack.api.get(LIMITS)).json()["max_orders_per_minute"] == 60
    await set_limits(stack, max_order_notional="1000", price_band="0.02")
    limits = (await stack.api.get(LIMITS)).json()
    assert limits["max_order_notional"] == "1000" and limits["price_band"] == "0.02"
    assert_problem(await stack.api.put(LIMITS, json={"max_order_notional": "-5"}), 422, "/max_order_notional")
    assert_problem(await stack.api.put(LIMITS, json={"price_band": "3"}), 422, "/price_band")


async def test_a_clean_trade_is_approved(stack: Stack) -> None:
    assert await codes_for(stack, buy("0.001")) == []


async def test_every_violated_rule_is_reported_not_just_the_first(stack: Stack) -> None:
    price = await last_price(stack)
    await set_limits(stack, max_order_notional="100", max_position_notional="50000", price_band="0.01")
    far = str((price * Decimal("0.5")).quantize(Decimal("0.01")))
    codes = await codes_for(stack, {"symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": "3", "price": far})
    assert {"NOTIONAL_EXCEEDS_MAX_PER_ORDER", "POSITION_EXCEEDS_MAX", "PRICE_BAND_EXCEEDED"} <= set(codes)


async def test_free_balance_is_consumed_across_a_batch(stack: Stack) -> None:
    # 100,000 USDT free: one 1 BTC buy fits, the second in the same batch does not.
    response = await stack.api.post("/api/v1/risk/validate-trade", json={"orders": [buy("1"), buy("1.5")]})
    violations = response.json()["violations"]
    assert [(v["code"], v["order_index"]) for v in violations] == [("INSUFFICIENT_BALANCE", 1)]


async def test_missing_prices_fail_closed(stack: Stack) -> None:
    stack.paper.set_faults(error_rate=1.0, paths=frozenset({"/api/v3/ticker/24hr"}))
    codes = await codes_for(stack, buy("0.001"))
    assert "PRICE_UNAVAILABLE" in codes


@pytest.mark.parametrize(
    ("limits", "order", "code"),
    [
        ({"max_order_notional": "10"}, buy("0.001"), "NOTIONAL_EXCEEDS_MAX_PER_ORDER"),
        ({"max_position_notional": "10"}, buy("0.001"), "POSITION_EXCEEDS_MAX"),
        ({"max_gross_exposure": "1000"}, buy("0.001"), "GROSS_EXPOSURE_EXCEEDS_MAX"),
        (
            {"max_open_orders": 0},
            {"symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": "0.001", "price": "PRICE"},
            "OPEN_ORDERS_EXCEED_MAX",
        ),
        ({"max_orders_per_minute": 0}, buy("0.001"), "SUBMIT_RATE_EXCEEDED"),
        (
            {"price_band": "0.0001"},
            {"symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": "0.001", "price": "PRICE"},
            "PRICE_BAND_EXCEEDED",
        ),
        ({}, buy("5"), "INSUFFICIENT_BALANCE"),
    ],
)
async def test_an_order_breaking_a_rule_is_refused_before_the_exchange_sees_it(
    stack: Stack, limits: dict, order: dict, code: str
) -> None:
    if order.get("price") == "PRICE":
        order = {**order, "price": str((await last_price(stack) * Decimal("0.99")).quantize(Decimal("0.01")))}
    if limits:
        await set_limits(stack, **limits)
    before = stack.paper_requests("/api/v3/order")
    problem = assert_problem(await stack.api.post(ORDERS, json=order), 422)
    assert problem["type"].endswith("risk-rejected")
    assert code in [e["name"] for e in problem["errors"]]
    assert stack.paper_requests("/api/v3/order") == before


async def test_halted_account_refuses_orders_and_resumes(stack: Stack) -> None:
    state = "/api/v1/accounts/paper/trading-state"
    assert (await stack.api.put(state, json={"state": "HALTED", "reason": "manual"})).json()["state"] == "HALTED"
    problem = assert_problem(await stack.api.post(ORDERS, json=buy("0.001")), 422)
    assert "TRADING_HALTED" in [e["name"] for e in problem["errors"]]
    await stack.api.put(state, json={"state": "ACTIVE"})
    assert (await stack.api.post(ORDERS, json=buy("0.001"))).status_code == 201


async def trading_state(stack: Stack) -> str:
    return (await stack.api.get("/api/v1/accounts/paper/trading-state")).json()["state"]


async def run_monitor(stack: Stack) -> None:
    """One round of the equity recorder and loss-limit monitor (a background job in the app)."""
    await record_and_monitor(stack.gateway, stack.app.state.risk_store, ["paper"], interval=0)


async def test_daily_loss_limit_moves_to_reducing_where_only_sells_pass(stack: Stack) -> None:
    risk_store = stack.app.state.risk_store
    day_start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    await risk_store.record_equity("paper", "USDT", Decimal("10000000"), at=day_start + timedelta(seconds=1))
    await set_limits(stack, daily_loss_limit="1000")
    codes = await codes_for(stack, buy("0.001"))
    assert "DAILY_LOSS_LIMIT_REACHED" in codes and "REDUCE_ONLY" in codes
    assert await trading_state(stack) == "ACTIVE"  # validation only reads; the monitor moves the state
    await run_monitor(stack)
    assert await trading_state(stack) == "REDUCING"
    sell = {"symbol": "BTC/USDT", "side": "sell", "type": "market", "amount": "0.001"}
    assert await codes_for(stack, sell) == []  # a sell that reduces exposure passes
    problem = assert_problem(await stack.api.post(ORDERS, json=buy("0.001")), 422)
    assert "REDUCE_ONLY" in [e["name"] for e in problem["errors"]]


async def test_drawdown_limit_halts(stack: Stack) -> None:
    await stack.app.state.risk_store.record_equity("paper", "USDT", Decimal("10000000"))
    await set_limits(stack, max_drawdown="0.5")
    assert "DRAWDOWN_LIMIT_REACHED" in await codes_for(stack, buy("0.001"))
    assert await trading_state(stack) == "ACTIVE"
    await run_monitor(stack)
    assert await trading_state(stack) == "HALTED"
    problem = assert_problem(await stack.api.post(ORDERS, json=buy("0.001")), 422)
    assert "TRADING_HALTED" in [e["name"] for e in problem["errors"]]


async def test_position_size_is_rounded_down_to_the_lot_and_capped(stack: Stack) -> None:
    price = await last_price(stack)
    stop = str((price * Decimal("0.95")).quantize(Decimal("0.01")))
    response = await stack.api.post(
        "/api/v1/risk/position-size",
        json={"symbol": "BTC/USDT", "equity": "100000", "risk_fraction": "0.01", "stop_price": stop},
    )
    assert response.status_code == 200, response.text
    size = response.json()
    amount, risk = Decimal(size["amount"]), Decimal(size["risk_amount"])
    assert risk == Decimal("1000.00")
    assert amount == amount.quantize(Decimal("0.00001"))  # BTC's lot step
    # Risking 1% with a 5% stop: about 0.2 of equity in notional, a little less for fees.
    assert Decimal("0.18") < amount * price / Decimal(100000) <= Decimal("0.2")

    capped = await stack.api.post(
        "/api/v1/risk/position-size",
        json={"symbol": "BTC/USDT", "equity": "100000000", "risk_fraction": "0.2", "stop_price": stop},
    )
    assert "free balance" in capped.json()["caps_applied"]


async def test_position_size_by_atr_and_kelly_from_real_candles(stack: Stack) -> None:
    for body in (
        {"symbol": "ETH/USDT", "method": "atr", "equity": "50000"},
        {"symbol": "ETH/USDT", "method": "kelly", "equity": "50000", "win_rate": "0.55", "payoff_ratio": "1.2"},
        {"symbol": "ETH/USDT", "method": "volatility", "equity": "50000", "target_volatility": "0.2"},
    ):
        response = await stack.api.post("/api/v1/risk/position-size", json=body)
        assert response.status_code == 200, response.text
        assert Decimal(response.json()["amount"]) > 0


async def test_probability_and_its_monte_carlo_agree(stack: Stack) -> None:
    price = await last_price(stack)
    body = {
        "symbol": "BTC/USDT",
        "take_profit": str((price * Decimal("1.1")).quantize(Decimal("0.01"))),
        "stop_loss": str((price * Decimal("0.9")).quantize(Decimal("0.01"))),
        "level": str(price),
        "horizon_bars": 200,
        "paths": 4000,
    }
    response = await stack.api.post("/api/v1/risk/probability", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    p = Decimal(result["probability_take_profit_first"])
    assert Decimal(0) < p < Decimal(1)
    assert p + Decimal(result["probability_stop_loss_first"]) == Decimal(1)
    mc = result["monte_carlo"]["take_profit_first"]
    assert Decimal(mc["low"]) <= Decimal(mc["estimate"]) <= Decimal(mc["high"])
    assert_problem(await stack.api.post("/api/v1/risk/probability", json={**body, "paths": 10}), 422, "/paths")


async def test_portfolio_risk_of_real_candles(stack: Stack) -> None:
    body = {"symbols": ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT"], "lookback": 200, "confidence": "0.99"}
    response = await stack.api.post("/api/v1/risk/portfolio", json=body)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["observations"] == 200
    vol = Decimal(report["volatility"])
    contributions = sum(Decimal(a["volatility_contribution"]) for a in report["assets"])
    assert abs(contributions - vol) < Decimal("0.0000001")
    assert Decimal(report["var_historical"]) > 0 and report["beta"] is not None
    assert len(report["correlation"]) == 4
    bad = await stack.api.post("/api/v1/risk/portfolio", json={**body, "weights": ["1", "1"]})
    assert_problem(bad, 422)
    assert_problem(await stack.api.post("/api/v1/risk/portfolio", json={**body, "symbols": ["NOPE/USDT"]}), 422)
