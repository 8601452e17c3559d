"""Orders through the whole stack: place, list, fetch, cancel; idempotency; bad input never leaves."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tests.api.test_problems import assert_problem
from tests.support.stack import Stack

ORDERS = "/api/v1/accounts/paper/orders"
EXCHANGE_ORDER = "/api/v3/order"


def ledger_for(stack: Stack, client_order_id: str) -> list[dict]:
    return [o for o in stack.paper.state.private.engine.ledger() if o["clientOrderId"] == client_order_id]


async def test_limit_order_is_placed_listed_fetched_and_cancelled(stack: Stack) -> None:
    ticker = (await stack.api.get("/api/v1/exchanges/paper/ticker", params={"symbol": "BTC/USDT"})).json()
    price = (Decimal(ticker["last"]) * Decimal("0.97")).quantize(Decimal("0.01"))
    body = {"symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": "0.001", "price": str(price)}
    created = await stack.api.post(ORDERS, json=body)
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "OPEN" and order["exchange_order_id"]
    assert Decimal(order["price"]) == price and Decimal(order["amount"]) == Decimal("0.001")
    assert len(ledger_for(stack, order["id"])) == 1

    listed = (await stack.api.get(ORDERS, params={"symbol": "BTC/USDT"})).json()
    assert [o["id"] for o in listed["orders"]] == [order["id"]]
    fetched = await stack.api.get(f"{ORDERS}/{order['id']}")
    assert fetched.status_code == 200 and fetched.json()["status"] == "OPEN"
    by_exchange_id = await stack.api.get(f"{ORDERS}/{order['exchange_order_id']}")
    assert by_exchange_id.json()["id"] == order["id"]

    cancelled = await stack.api.delete(f"{ORDERS}/{order['id']}")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CANCELED"
    assert ledger_for(stack, order["id"])[0]["status"] == "CANCELED"
    assert_problem(await stack.api.delete(f"{ORDERS}/{order['id']}"), 409)


async def test_market_buy_fills_and_records_its_fills(stack: Stack) -> None:
    created = await stack.api.post(
        ORDERS, json={"symbol": "ETH/USDT", "side": "buy", "type": "market", "amount": "0.05"}
    )
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "FILLED" and Decimal(order["filled"]) == Decimal("0.05")
    assert Decimal(order["cost"]) > 0 and order["fee"]["currency"] == "ETH"
    fills = await stack.app.state.store.fills("paper", symbol="ETH/USDT")
    assert sum(f.amount for f in fills) == Decimal("0.05")
    assert {f.side for f in fills} == {"buy"}


async def test_amount_is_truncated_to_the_lot_step(stack: Stack) -> None:
    created = await stack.api.post(
        ORDERS, json={"symbol": "ETH/USDT", "side": "buy", "type": "market", "amount": "0.0123456789"}
    )
    assert created.status_code == 201, created.text
    assert Decimal(created.json()["amount"]) == Decimal("0.0123")


async def test_same_key_and_body_replays_the_first_response_and_places_one_order(stack: Stack) -> None:
    body = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.0005"}
    first = await stack.api.post(ORDERS, json=body, headers={"Idempotency-Key": "replay-1"})
    second = await stack.api.post(ORDERS, json=body, headers={"Idempotency-Key": "replay-1"})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert len(ledger_for(stack, first.json()["id"])) == 1


async def test_same_key_with_a_different_body_is_422(stack: Stack) -> None:
    body = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.0005"}
    await stack.api.post(ORDERS, json=body, headers={"Idempotency-Key": "mismatch-1"})
    other = await stack.api.post(ORDERS, json={**body, "amount": "0.0006"}, headers={"Idempotency-Key": "mismatch-1"})
    assert_problem(other, 422, "Idempotency-Key")


async def test_concurrent_requests_with_one_key_place_one_order(stack: Stack) -> None:
    body = {"symbol": "SOL/USDT", "side": "buy", "type": "market", "amount": "0.1"}
    responses = await asyncio.gather(
        *(stack.api.post(ORDERS, json=body, headers={"Idempotency-Key": "concurrent-1"}) for _ in range(8))
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409} and 201 in statuses, statuses
    ids = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(ids) == 1
    assert len(ledger_for(stack, ids.pop())) == 1


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"amount": "0"}, "/amount"),
        ({"amount": "-1"}, "/amount"),
        ({"amount": "NaN"}, "/amount"),
        ({"amount": "Infinity"}, "/amount"),
        ({"amount": "1e400"}, "/amount"),
        ({"amount": "0.0000000000000000001"}, "/amount"),
        ({"type": "limit"}, "/"),
        ({"price": "50000"}, "/"),
        ({"side": "hold"}, "/side"),
        ({"type": "stop"}, "/type"),
        ({"symbol": "NOPE/USDT"}, "symbol"),
        ({"symbol": "BTCUSDT"}, "/symbol"),
        ({"amount": "0.000001"}, "amount"),  # below the lot step
        ({"amount": "0.00001"}, "amount"),  # below the minimum notional
        ({"type": "limit", "price": "50000.001"}, "price"),  # off the tick
        ({"quote_amount": "100", "side": "sell"}, "/"),
        ({"surprise": 1}, "/surprise"),
    ],
)
async def test_bad_orders_get_a_4xx_and_never_reach_the_exchange(stack: Stack, body: dict, name: str) -> None:
    before = stack.paper_requests(EXCHANGE_ORDER)
    request = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001", **body}
    response = await stack.api.post(ORDERS, json=request)
    problem = assert_problem(response, 422)
    # A field the schema refuses is named as a JSON pointer; the market's filters name it in the detail.
    assert any(name in e["name"] or e["detail"].startswith(f"{name}:") for e in problem["errors"]), problem
    assert stack.paper_requests(EXCHANGE_ORDER) == before
    assert (await stack.api.get(ORDERS)).json()["orders"] == []


async def test_unknown_account_is_404_and_sends_nothing(stack: Stack) -> None:
    before = stack.paper_requests(EXCHANGE_ORDER)
    response = await stack.api.post(
        "/api/v1/accounts/ghost/orders", json={"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}
    )
    assert_problem(response, 404)
    assert stack.paper_requests(EXCHANGE_ORDER) == before


async def test_malformed_json_and_bad_cursor_are_422(stack: Stack) -> None:
    response = await stack.api.post(ORDERS, content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(response, 422)
    assert_problem(await stack.api.get(ORDERS, params={"cursor": "garbage"}), 422, "cursor")


async def test_history_is_cursor_paginated_newest_first(stack: Stack) -> None:
    ids = []
    for _ in range(5):
        created = await stack.api.post(
            ORDERS, json={"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.0002"}
        )
        ids.append(created.json()["id"])
    page1 = (await stack.api.get(ORDERS, params={"limit": 2})).json()
    page2 = (await stack.api.get(ORDERS, params={"limit": 2, "cursor": page1["next_cursor"]})).json()
    page3 = (await stack.api.get(ORDERS, params={"limit": 2, "cursor": page2["next_cursor"]})).json()
    seen = [o["id"] for page in (page1, page2, page3) for o in page["orders"]]
    assert seen == list(reversed(ids))
    assert page3["next_cursor"] is None
    filled = (await stack.api.get(ORDERS, params={"status": "FILLED", "limit": 50})).json()
    assert len(filled["orders"]) == 5
