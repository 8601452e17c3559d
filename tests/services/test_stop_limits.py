"""A protective order counts against the notional limits at the price it executes at once triggered.

A buy stop-loss-limit rests above the market and, once the last price reaches its trigger, buys at up to its
limit price: its notional and the position it opens are valued there, not at the (lower) last price.
Real stack: httpx -> the app -> the gate -> real ccxt -> the paper exchange; "nothing sent" is checked against
the venue's own ledger.
"""

from __future__ import annotations

from decimal import Decimal

from tests.api.test_problems import assert_problem
from tests.services.test_oco import LISTS, at, last
from tests.support.stack import Stack

ACCOUNT = "/api/v1/accounts/paper"
ORDERS = f"{ACCOUNT}/orders"
AMOUNT = Decimal("0.01")


def buy_stop(price: Decimal) -> dict[str, str]:
    """Triggers 3 % above the last price and then buys at up to 3.5 % above it."""
    return {
        "symbol": "BTC/USDT", "side": "buy", "type": "stop_loss_limit", "amount": str(AMOUNT),
        "stop_price": str(at(price, "1.03")), "price": str(at(price, "1.035")),
    }  # fmt: skip


def buy_oco(price: Decimal) -> dict[str, str]:
    """Its limit leg rests 3 % below the last price, its stop leg buys at up to 3.5 % above it."""
    return {
        "symbol": "BTC/USDT", "side": "buy", "amount": str(AMOUNT), "price": str(at(price, "0.97")),
        "stop_price": str(at(price, "1.03")), "stop_limit_price": str(at(price, "1.035")),
    }  # fmt: skip


async def set_limits(stack: Stack, **changes: object) -> None:
    limits = (await stack.api.get(f"{ACCOUNT}/risk-limits")).json()
    response = await stack.api.put(f"{ACCOUNT}/risk-limits", json={**limits, **changes})
    assert response.status_code == 200, response.text


def venue_orders(stack: Stack) -> list[dict]:
    return stack.paper.state.private.engine.ledger()


def refused_codes(body: dict) -> set[str]:
    return {error["name"] for error in body.get("errors", [])}


async def test_a_buy_stop_over_the_order_limit_at_its_limit_price_is_refused_though_at_last_it_would_pass(
    stack: Stack,
) -> None:
    price = await last(stack)
    # Between the order valued at the last price (0.01 x last) and at its limit price (0.01 x 1.035 last).
    await set_limits(stack, max_order_notional=str(at(AMOUNT * price, "1.02")))

    refused = assert_problem(await stack.api.post(ORDERS, json=buy_stop(price)), 422)

    assert refused["type"].endswith("risk-rejected")
    assert "NOTIONAL_EXCEEDS_MAX_PER_ORDER" in refused["detail"]
    assert "NOTIONAL_EXCEEDS_MAX_PER_ORDER" in refused_codes(refused)
    assert venue_orders(stack) == []
    # The control: the same amount as a limit order at the last price is within the limit and is placed.
    at_last = {**buy_stop(price), "type": "limit", "price": str(price)}
    del at_last["stop_price"]
    placed = await stack.api.post(ORDERS, json=at_last)
    assert placed.status_code == 201, placed.text
    assert [o["clientOrderId"] for o in venue_orders(stack)] == [placed.json()["id"]]


async def test_a_buy_stop_that_would_take_the_position_over_its_limit_at_its_limit_price_is_refused(
    stack: Stack,
) -> None:
    price = await last(stack)
    held = (await stack.gateway.balances("paper")).free("BTC")
    assert held > 0
    # Between the position valued at the last price and at the stop's limit price, both after the buy.
    await set_limits(stack, max_position_notional=str(at((held + AMOUNT) * price, "1.02")))

    refused = assert_problem(await stack.api.post(ORDERS, json=buy_stop(price)), 422)

    assert refused_codes(refused) == {"POSITION_EXCEEDS_MAX"}, refused
    assert venue_orders(stack) == []
    # A take-profit buy triggers below the market and buys at up to its limit there: the last price bounds it.
    take_profit = {**buy_stop(price), "type": "take_profit_limit"}
    take_profit |= {"stop_price": str(at(price, "0.97")), "price": str(at(price, "0.975"))}
    placed = await stack.api.post(ORDERS, json=take_profit)
    assert placed.status_code == 201, placed.text
    assert [o["type"] for o in venue_orders(stack)] == ["TAKE_PROFIT_LIMIT"]


async def test_an_oco_whose_stop_leg_breaches_the_limits_is_refused_with_nothing_sent(stack: Stack) -> None:
    price = await last(stack)
    held = (await stack.gateway.balances("paper")).free("BTC")
    await set_limits(stack, max_position_notional=str(at((held + AMOUNT) * price, "1.02")))

    refused = assert_problem(await stack.api.post(LISTS, json=buy_oco(price)), 422)

    assert "POSITION_EXCEEDS_MAX" in refused["detail"], refused
    assert venue_orders(stack) == []  # neither leg reached the venue

    # The order limit too: the stop leg's notional is its amount at its limit price.
    await set_limits(stack, max_position_notional=None, max_order_notional=str(at(AMOUNT * price, "1.02")))
    refused = assert_problem(await stack.api.post(LISTS, json=buy_oco(price)), 422)
    assert "NOTIONAL_EXCEEDS_MAX_PER_ORDER" in refused["detail"], refused
    assert venue_orders(stack) == []

    # The control: with room for the stop leg at its limit price, the same OCO is placed, both legs.
    await set_limits(stack, max_order_notional=str(at(AMOUNT * price, "1.05")))
    placed = await stack.api.post(LISTS, json=buy_oco(price))
    assert placed.status_code == 201, placed.text
    assert sorted(o["type"] for o in venue_orders(stack)) == ["LIMIT_MAKER", "STOP_LOSS_LIMIT"]


async def test_a_buy_stop_counts_against_gross_exposure_at_its_limit_price(stack: Stack) -> None:
    price, amount = await last(stack), Decimal("0.5")
    at_last = {"symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": str(amount), "price": str(price)}
    stop = {**buy_stop(price), "amount": str(amount)}
    await set_limits(stack, max_gross_exposure="1")  # only to read what the gate makes of the holdings
    (reading,) = await violations(stack, at_last, "GROSS_EXPOSURE_EXCEEDS_MAX")
    with_buy_at_last = Decimal(reading["message"].split()[4].rstrip(";"))
    # Half way between the buy valued at the last price and at the stop's limit price (3.5 % above it).
    await set_limits(stack, max_gross_exposure=str(with_buy_at_last + at(amount * price, "0.0175")))

    assert await violations(stack, at_last, "GROSS_EXPOSURE_EXCEEDS_MAX") == []  # the control
    assert len(await violations(stack, stop, "GROSS_EXPOSURE_EXCEEDS_MAX")) == 1


async def violations(stack: Stack, order: dict[str, str], code: str) -> list[dict]:
    response = await stack.api.post("/api/v1/risk/validate-trade", json={"orders": [order]})
    assert response.status_code == 200, response.text
    return [v for v in response.json()["violations"] if v["code"] == code]


async def test_buys_resting_on_the_venue_count_in_the_position_for_what_they_may_still_buy(stack: Stack) -> None:
    price = await last(stack)
    held = (await stack.gateway.balances("paper")).free("BTC")
    # Room for the holdings and one more AMOUNT at the market, not for two.
    await set_limits(stack, max_position_notional=str(((held + AMOUNT * Decimal("1.5")) * price).quantize(Decimal(1))))
    resting = {
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "amount": str(AMOUNT),
        "price": str(at(price, "0.97")),
    }
    first = await stack.api.post(ORDERS, json=resting)
    assert (first.status_code, first.json()["status"]) == (201, "OPEN"), first.text

    second = assert_problem(await stack.api.post(ORDERS, json=resting), 422)

    assert "POSITION_EXCEEDS_MAX" in refused_codes(second), second
    assert [o["clientOrderId"] for o in venue_orders(stack)] == [first.json()["id"]]
    # Cancelled, it no longer counts: the same order fits again.
    assert (await stack.api.delete(f"{ORDERS}/{first.json()['id']}")).json()["status"] == "CANCELED"
    again = await stack.api.post(ORDERS, json=resting)
    assert again.status_code == 201, again.text


async def test_a_resting_buy_of_an_asset_not_held_counts_at_its_own_price_and_blocks_nothing_else(
    stack: Stack,
) -> None:
    # LINK is not held, so the valuation prices nothing of it: the resting buy is valued at its limit price.
    link = (await stack.gateway.ticker("paper", "LINK/USDT")).last
    assert link is not None
    resting = {"symbol": "LINK/USDT", "side": "buy", "type": "limit", "amount": "10", "price": str(at(link, "0.97"))}
    await set_limits(stack, max_gross_exposure="100000000")
    first = await stack.api.post(ORDERS, json=resting)
    assert (first.status_code, first.json()["status"]) == (201, "OPEN"), first.text

    # Every other buy is judged as before: not refused as "a holding cannot be priced".
    other = await stack.api.post(
        ORDERS, json={"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}
    )
    assert other.status_code == 201, other.text
    await set_limits(stack, max_gross_exposure=None, max_position_notional=str(at(link * 15, "1")))
    # Ten more LINK at the market: 10 x last plus the resting 10 x 0.97 last is over 15 x last.
    at_market = {"symbol": "LINK/USDT", "side": "buy", "type": "market", "amount": "10"}
    more = assert_problem(await stack.api.post(ORDERS, json=at_market), 422)
    assert "POSITION_EXCEEDS_MAX" in refused_codes(more), more
