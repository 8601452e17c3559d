"""The desk's account routes through the whole stack: kill switch and resume, cancel-all, balances, fills.

httpx -> the app -> services -> real ccxt -> the paper exchange; who may call each route is checked with
keys made in the stack's own store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from aiotrade.config import PAPER_API_KEY, PAPER_SECRET, AccountConfig
from tests.api.test_problems import assert_problem
from tests.support.stack import Stack, running_stack

ACCOUNT = "/api/v1/accounts/paper"
ORDERS = f"{ACCOUNT}/orders"
TWO_ACCOUNTS = {
    "paper": AccountConfig(venue="paper", api_key=PAPER_API_KEY, secret=PAPER_SECRET),
    "spare": AccountConfig(venue="paper", api_key=PAPER_API_KEY, secret=PAPER_SECRET),
}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, accounts=TWO_ACCOUNTS) as running:
        yield running


async def limit_buy(stack: Stack, symbol: str = "BTC/USDT", amount: str = "0.001") -> dict:
    ticker = (await stack.api.get("/api/v1/exchanges/paper/ticker", params={"symbol": symbol})).json()
    price = (Decimal(ticker["last"]) * Decimal("0.97")).quantize(Decimal("0.01"))
    body = {"symbol": symbol, "side": "buy", "type": "limit", "amount": amount, "price": str(price)}
    created = await stack.api.post(ORDERS, json=body)
    assert created.status_code == 201, created.text
    return created.json()


def open_on_exchange(stack: Stack) -> list[dict]:
    return [o for o in stack.paper.state.private.engine.ledger() if o["status"] in ("NEW", "PARTIALLY_FILLED")]


async def test_halt_cancels_everything_refuses_orders_and_only_an_admin_resumes(stack: Stack) -> None:
    placed = [await limit_buy(stack), await limit_buy(stack, "ETH/USDT", "0.01")]
    trader = (await stack.make_key("trader", "read,trade")).key
    async with stack.client(trader) as client:
        halted = await client.post(f"{ACCOUNT}/halt", json={"reason": "fat finger"})
        assert halted.status_code == 200, halted.text
        report = halted.json()
        assert (report["state"], report["reason"]) == ("HALTED", "fat finger")
        assert sorted((o["id"], o["outcome"]) for o in report["outcomes"]) == sorted(
            (o["id"], "canceled") for o in placed
        )
        assert open_on_exchange(stack) == []
        refused = await client.post(
            ORDERS, json={"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}
        )
        assert "TRADING_HALTED" in assert_problem(refused, 422)["detail"]
        again = await client.post(f"{ACCOUNT}/halt")  # idempotent, and the body is optional
        assert again.status_code == 200 and again.json()["outcomes"] == []
        assert_problem(await client.post(f"{ACCOUNT}/resume"), 403)
    state = (await stack.api.get(f"{ACCOUNT}/trading-state")).json()
    assert state["state"] == "HALTED"

    resumed = await stack.api.post(f"{ACCOUNT}/resume", json={"reason": "checked"})
    assert resumed.status_code == 200, resumed.text
    assert (resumed.json()["state"], resumed.json()["reason"]) == ("ACTIVE", "checked")
    await limit_buy(stack)


async def test_halt_needs_the_trade_scope_and_the_account_on_the_key(stack: Stack) -> None:
    await limit_buy(stack)
    reader = (await stack.make_key("reader", "read")).key
    elsewhere = (await stack.make_key("elsewhere", "read,trade,admin", accounts="spare")).key
    for key in (reader, elsewhere):
        async with stack.client(key) as client:
            assert_problem(await client.post(f"{ACCOUNT}/halt"), 403)
            assert_problem(await client.delete(ORDERS), 403)
    async with stack.client(elsewhere) as client:
        assert_problem(await client.get(f"{ACCOUNT}/balances"), 403)
        assert_problem(await client.get(f"{ACCOUNT}/fills"), 403)
    assert len(open_on_exchange(stack)) == 1  # nothing was cancelled
    assert (await stack.api.get(f"{ACCOUNT}/trading-state")).json()["state"] == "ACTIVE"


async def test_cancel_all_of_a_symbol_leaves_the_others_and_an_unknown_symbol_is_a_4xx(stack: Stack) -> None:
    await limit_buy(stack)
    kept = await limit_buy(stack, "ETH/USDT", "0.01")
    answer = await stack.api.delete(ORDERS, params={"symbol": "BTC/USDT"})
    assert answer.status_code == 200, answer.text
    assert [(o["symbol"], o["outcome"]) for o in answer.json()["outcomes"]] == [("BTC/USDT", "canceled")]
    assert [o["clientOrderId"] for o in open_on_exchange(stack)] == [kept["id"]]
    assert_problem(await stack.api.delete(ORDERS, params={"symbol": "NOPE/USDT"}), 422, "symbol")
    everything = await stack.api.delete(ORDERS)
    assert [o["id"] for o in everything.json()["outcomes"]] == [kept["id"]]
    assert open_on_exchange(stack) == []


async def test_balances_and_fills_are_decimal_strings_paged_and_filtered(stack: Stack) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    for _ in range(3):
        buy = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}
        assert (await stack.api.post(ORDERS, json=buy)).status_code == 201
    balances = (await stack.api.get(f"{ACCOUNT}/balances")).json()
    usdt = balances["assets"]["USDT"]
    assert all(isinstance(usdt[k], str) for k in ("free", "used", "total"))
    assert Decimal(usdt["free"]) + Decimal(usdt["used"]) == Decimal(usdt["total"])

    first = (await stack.api.get(f"{ACCOUNT}/fills", params={"symbol": "BTC/USDT", "limit": 2})).json()
    assert len(first["fills"]) == 2 and first["next_cursor"]
    rest = (await stack.api.get(f"{ACCOUNT}/fills", params={"cursor": first["next_cursor"]})).json()
    fills = first["fills"] + rest["fills"]
    assert len({f["trade_id"] for f in fills}) == len(fills) >= 3
    assert all(
        isinstance(f["price"], str) and f["fee"]["currency"] and isinstance(f["fee"]["cost"], str) for f in fills
    )
    window = {"from": before.isoformat(), "to": (datetime.now(UTC) + timedelta(seconds=1)).isoformat()}
    assert len((await stack.api.get(f"{ACCOUNT}/fills", params=window)).json()["fills"]) == len(fills)
    later = {"from": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    assert (await stack.api.get(f"{ACCOUNT}/fills", params=later)).json()["fills"] == []
    assert (await stack.api.get(f"{ACCOUNT}/fills", params={"symbol": "ETH/USDT"})).json()["fills"] == []

    assert_problem(await stack.api.get(f"{ACCOUNT}/fills", params={"cursor": "garbage!"}), 422, "cursor")
    assert_problem(await stack.api.get(f"{ACCOUNT}/fills", params={"from": "2026-01-01T00:00:00"}), 422, "from")
    assert_problem(await stack.api.get(f"{ACCOUNT}/fills", params={"limit": 0}), 422, "limit")
