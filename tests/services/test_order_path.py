"""The order path's shape: commits per order, state and audit in one transaction, validation that only reads."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from aiotrade.models.orders import OrderStatus
from aiotrade.store.orders import KeyCompletion, NewOrder
from aiotrade.store.tables import AuditRow, Base
from tests.support.stack import Stack

ORDERS = "/api/v1/accounts/paper/orders"
BUY = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}


async def background_settled(stack: Stack) -> None:
    """Wait until the app's start-up rounds of its background jobs are over (the recorder's is the last)."""
    for _ in range(200):
        if await stack.app.state.risk_store.equity_history("paper"):
            await asyncio.sleep(0.3)
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the equity recorder did not run at start-up")


@contextmanager
def counting(engine: AsyncEngine) -> Iterator[dict[str, int]]:
    """Commits and statements on ``engine`` while the block runs."""
    counts = {"commits": 0, "statements": 0}

    def on_commit(_connection: object) -> None:
        counts["commits"] += 1

    def on_statement(*_args: object) -> None:
        counts["statements"] += 1

    event.listen(engine.sync_engine, "commit", on_commit)
    event.listen(engine.sync_engine, "before_cursor_execute", on_statement)
    try:
        yield counts
    finally:
        event.remove(engine.sync_engine, "commit", on_commit)
        event.remove(engine.sync_engine, "before_cursor_execute", on_statement)


async def test_a_keyed_market_order_costs_three_commits(stack: Stack) -> None:
    await background_settled(stack)
    with counting(stack.app.state.engine) as counts:
        response = await stack.api.post(ORDERS, json=BUY, headers={"Idempotency-Key": "count-1"})
    assert response.status_code == 201, response.text
    # The key's claim; the gate's PENDING insert with its audit; the placed state with its audit, fills
    # and the key's stored answer. (Statements: the stream's order and fill events add their numbering.)
    assert counts["commits"] == 3, counts
    assert counts["statements"] <= 24, counts


async def test_a_status_change_and_its_audit_are_one_transaction(stack: Stack) -> None:
    store = stack.app.state.store
    order = NewOrder("paper", "paper", "atomic-1", "BTC/USDT", "buy", "market", None, Decimal("0.001"), None, None)
    await store.insert_pending(order)

    def broken_completion(_order: object) -> KeyCompletion:
        raise RuntimeError("crash between the status change and its audit")

    with pytest.raises(RuntimeError):
        await store.transition("paper", "atomic-1", OrderStatus.FILLED, event="placed", complete_key=broken_completion)
    stored = await store.get("paper", "atomic-1")
    assert stored is not None and stored.status is OrderStatus.PENDING  # nothing of it happened
    assert [e.event for e in await store.audit_trail("paper", "atomic-1")] == ["create_requested"]


async def test_validate_trade_writes_nothing_even_past_a_loss_limit(stack: Stack) -> None:
    # First the recorder's start-up round (and its loss-limit monitor), which would escalate the account
    # while we look if it ran after the baseline below; it does not run again within the test.
    await background_settled(stack)
    day_start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    await stack.app.state.risk_store.record_equity("paper", "USDT", Decimal(10**8), at=day_start + timedelta(seconds=1))
    response = await stack.api.put(
        "/api/v1/accounts/paper/risk-limits", json={"daily_loss_limit": "1000", "max_drawdown": "0.1"}
    )
    assert response.status_code == 200
    before = await row_counts(stack.app.state.engine)
    with counting(stack.app.state.engine) as counts:
        verdict = await stack.api.post("/api/v1/risk/validate-trade", json={"orders": [BUY, BUY]})
    assert verdict.status_code == 200 and not verdict.json()["approved"]
    assert {"DAILY_LOSS_LIMIT_REACHED", "DRAWDOWN_LIMIT_REACHED"} <= {v["code"] for v in verdict.json()["violations"]}
    assert counts["commits"] == 0
    assert await row_counts(stack.app.state.engine) == before
    state = (await stack.api.get("/api/v1/accounts/paper/trading-state")).json()
    assert state["state"] == "ACTIVE"


async def test_the_drawdown_peak_is_a_running_value(stack: Stack) -> None:
    risk = stack.app.state.risk_store
    for value in ("100", "250", "180"):
        await risk.record_equity("peaks", "USDT", Decimal(value))
    assert await risk.peak_equity("peaks", "USDT") == Decimal(250)
    assert await risk.record_equity("peaks", "USDT", Decimal(300), bucket=7)
    assert not await risk.record_equity("peaks", "USDT", Decimal(999), bucket=7)  # one record per interval
    assert await risk.peak_equity("peaks", "USDT") == Decimal(300)


async def row_counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        return {
            table.name: (await connection.execute(select(func.count()).select_from(table))).scalar_one()
            for table in Base.metadata.sorted_tables
        } | {"audit": (await connection.execute(select(func.count()).select_from(AuditRow))).scalar_one()}


async def test_the_request_id_is_echoed_in_problems_and_stored_with_the_orders_audit(stack: Stack) -> None:
    created = await stack.api.post(ORDERS, json=BUY, headers={"X-Request-ID": "desk-7f3a"})
    assert created.status_code == 201 and created.headers["x-request-id"] == "desk-7f3a"
    trail = await stack.app.state.store.audit_trail("paper", created.json()["id"])
    assert trail and {entry.request_id for entry in trail} == {"desk-7f3a"}
    missing = await stack.api.get(f"{ORDERS}/nope", headers={"X-Request-ID": "desk-404"})
    assert missing.status_code == 404 and missing.json()["request_id"] == "desk-404"
    made = await stack.api.get(f"{ORDERS}/nope")
    assert made.json()["request_id"] == made.headers["x-request-id"] != ""
