"""Every bad input is a 4xx that names the field (the hand-made cases that once passed or gave a 500)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.api.test_problems import assert_problem
from tests.support.stack import Stack

LIMITS = "/api/v1/accounts/paper/risk-limits"
ORDERS = "/api/v1/accounts/paper/orders"


def signal(timestamp: str) -> dict:
    return {"signals": [{"strategy_id": "s", "symbol": "BTC/USDT", "direction": "long", "timestamp": timestamp}]}


@pytest.mark.parametrize(
    ("timestamp", "why"),
    [("9999-12-31T23:59:59Z", "year 10000 once overflowed into a 500"), ("2026-01-01T00:00:00", "no zone")],
)
async def test_a_signal_timestamp_out_of_range_or_without_a_zone_is_422(stack: Stack, timestamp: str, why: str) -> None:
    response = await stack.api.post("/api/v1/portfolio/signals", json=signal(timestamp))
    assert_problem(response, 422, "/signals/0/timestamp")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_ticker_age_s": "Infinity"}, "/max_ticker_age_s"),
        ({"max_ticker_age_s": 1e308}, "/max_ticker_age_s"),
        ({"quote_currency": "ÜSDT"}, "/quote_currency"),
        ({"quote_currency": "usdt"}, "/quote_currency"),
    ],
)
async def test_risk_limits_take_finite_bounded_numbers_and_real_currency_codes(
    stack: Stack, body: dict, field: str
) -> None:
    assert_problem(await stack.api.put(LIMITS, json=body), 422, field)
    assert (await stack.api.get(LIMITS)).json()["max_ticker_age_s"] == 30.0  # nothing was stored


async def test_the_documented_maximum_lookback_is_not_refused_in_the_name_of_a_parameter_never_sent(
    stack: Stack,
) -> None:
    # Hourly candles: the paper market's history (from 2024-01-01) holds 5000 of them, but not 5000 days.
    body = {"symbols": ["BTC/USDT", "ETH/USDT"], "timeframe": "1h", "lookback": 5000, "benchmark": None}
    response = await stack.api.post("/api/v1/risk/portfolio", json=body)
    assert response.status_code == 200, response.text
    assert_problem(await stack.api.post("/api/v1/risk/portfolio", json={**body, "lookback": 5001}), 422, "/lookback")


@pytest.mark.parametrize("amount", ["1_0", " 0.001 ", "0.001 ", "1e-3", "+0.001", "0x10", ".5", "5."])
async def test_only_plain_decimal_strings_are_numbers(stack: Stack, amount: str) -> None:
    before = stack.paper_requests("/api/v3/order")
    response = await stack.api.post(
        ORDERS, json={"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": amount}
    )
    assert_problem(response, 422, "/amount")
    assert stack.paper_requests("/api/v3/order") == before


async def test_a_key_given_twice_is_400_and_nothing_is_sent(stack: Stack) -> None:
    before = stack.paper_requests("/api/v3/order")
    body = b'{"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001", "amount": "5000"}'
    response = await stack.api.post(ORDERS, content=body, headers={"content-type": "application/json"})
    problem = assert_problem(response, 400, "amount")
    assert "more than once" in problem["detail"]
    nested = b'{"orders": [{"symbol": "BTC/USDT", "side": "buy", "side": "sell", "type": "market", "amount": "1"}]}'
    response = await stack.api.post(
        "/api/v1/risk/validate-trade", content=nested, headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "side")
    assert stack.paper_requests("/api/v3/order") == before


@pytest.mark.parametrize(("side", "factor"), [("buy", "1.05"), ("sell", "0.95")])
async def test_a_stop_on_the_winning_side_of_the_entry_gets_no_position_size(
    stack: Stack, side: str, factor: str
) -> None:
    body = {"symbol": "BTC/USDT", "side": side, "equity": "100000", "entry_price": "50000.00"}
    stop = str((Decimal("50000") * Decimal(factor)).quantize(Decimal("0.01")))
    response = await stack.api.post("/api/v1/risk/position-size", json={**body, "stop_price": stop})
    assert_problem(response, 422, "stop_price")


async def test_a_405_lists_every_method_the_path_allows(stack: Stack) -> None:
    response = await stack.api.put(f"{ORDERS}/some-id", json={})
    assert_problem(response, 405)
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "DELETE"}


async def test_the_openapi_documents_body_problems_and_rate_limits(stack: Stack) -> None:
    schema = (await stack.api.get("/openapi.json")).json()
    create = schema["paths"]["/api/v1/accounts/{account}/orders"]["post"]["responses"]
    assert {"400", "413", "422", "429"} <= set(create)
    ticker = schema["paths"]["/api/v1/exchanges/{exchange}/ticker"]["get"]["responses"]
    assert "429" in ticker and "413" not in ticker
