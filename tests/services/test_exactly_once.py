"""Every fault between us and the exchange, one at a time: the order exists exactly once, and we know it.

Real stack: the order service -> pool -> real ccxt -> HTTP -> the paper exchange, which commits an order
and then drops, delays or garbles the answer, or fails before committing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from aiotrade import errors as domain
from aiotrade.config import OrdersConfig
from aiotrade.models.orders import CreateOrderRequest, IllegalTransition, OrderStatus
from aiotrade.paper.faults import Fault, FaultKind
from aiotrade.services.orders.keys import client_id_for_key
from aiotrade.services.orders.placement import ReplayedError, place_order
from aiotrade.services.orders.reconciliation import reconcile
from tests.support.faults import Scripted, Several
from tests.support.stack import Stack, running_stack

MARKET_BUY = CreateOrderRequest(symbol="BTC/USDT", side="buy", type="market", amount=Decimal("0.001"))
HELD = 2_500  # ms: longer than the client's 600 ms timeout


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with running_stack(
        tmp_path,
        venue_overrides={"timeout_ms": 600, "options": {"recvWindow": 1000}},
        orders=OrdersConfig(clock_skew_ms=200, reconcile_interval_s=3600),
    ) as running:
        yield running


def placed(stack: Stack, client_order_id: str) -> list[dict]:
    return [o for o in stack.paper.state.private.engine.ledger() if o["clientOrderId"] == client_order_id]


async def create(stack: Stack, key: str, request: CreateOrderRequest = MARKET_BUY):
    placed = await place_order(
        stack.gateway, stack.app.state.store, stack.app.state.gate, stack.settings.orders, "paper", request,
        idempotency_key=key,
    )  # fmt: skip
    return placed.order


async def events(stack: Stack, client_order_id: str) -> list[str]:
    return [row.event for row in await stack.app.state.store.audit_trail("paper", client_order_id)]


@pytest.mark.parametrize(
    "fault",
    [
        Fault(FaultKind.COMMIT_THEN_DROP),
        Fault(FaultKind.COMMIT_THEN_SLOW, delay_ms=HELD),
        Fault(FaultKind.MALFORMED),
    ],
    ids=lambda f: f.kind.value,
)
async def test_a_lost_answer_after_commit_places_exactly_one_order(stack: Stack, fault: Fault) -> None:
    script = Scripted("POST", "/api/v3/order", [fault])
    stack.paper.set_fault_policy(script)
    order = await create(stack, f"lost-{fault.kind.value}")
    assert script.applied == [fault.kind]
    assert order.status is OrderStatus.FILLED and order.exchange_order_id
    assert len(placed(stack, order.id)) == 1
    trail = await events(stack, order.id)
    assert "send_outcome_unknown" in trail and "found_by_lookup" in trail
    assert trail.count("send") == 1  # looked up, never resent


@pytest.mark.parametrize(
    "fault",
    [
        Fault(FaultKind.SLOW, delay_ms=HELD),
        Fault(FaultKind.DROP),
        Fault(FaultKind.SERVER_ERROR, status=502),
        Fault(FaultKind.SERVER_ERROR, status=500, json_body=True),
        Fault(FaultKind.RATE_LIMIT, retry_after_s=1),
    ],
    ids=lambda f: f"{f.kind.value}-{f.status}",
)
async def test_a_failure_before_commit_is_resent_once_the_first_send_cannot_land(stack: Stack, fault: Fault) -> None:
    script = Scripted("POST", "/api/v3/order", [fault])
    stack.paper.set_fault_policy(script)
    order = await create(stack, f"before-{fault.kind.value}-{fault.status}")
    assert order.status is OrderStatus.FILLED
    assert len(placed(stack, order.id)) == 1
    trail = await events(stack, order.id)
    assert trail.count("send") == 2 and "not_found_after_window" in trail


async def test_a_request_held_past_its_recv_window_is_refused_by_the_exchange(stack: Stack) -> None:
    # The paper exchange checks recvWindow when it executes: a request that sat in flight too long
    # cannot land later. This is what makes "not found after the window" final.
    script = Scripted("POST", "/api/v3/order", [Fault(FaultKind.SLOW, delay_ms=1_500)])
    stack.paper.set_fault_policy(script)
    client = stack.pool._venue("paper").accounts["paper"]
    client.timeout = 5_000  # wait for the held answer this time
    with pytest.raises(domain.DomainError, match="recvWindow") as caught:
        await stack.pool.send_once(
            "paper", lambda c: c.create_order("BTC/USDT", "market", "buy", "0.001", None, {"clientOrderId": "late"})
        )
    assert caught.value.order_may_exist is False  # a refusal, not an unknown outcome
    assert placed(stack, "late") == []


async def test_exchange_unreachable_leaves_unknown_then_reconciler_and_retry_settle_it(stack: Stack) -> None:
    lookups_fail = Scripted("GET", "/api/v3/order", [Fault(FaultKind.SERVER_ERROR, status=503)] * 40)
    stack.paper.set_fault_policy(
        Several(Scripted("POST", "/api/v3/order", [Fault(FaultKind.COMMIT_THEN_DROP)]), lookups_fail)
    )
    with pytest.raises(domain.UpstreamUnavailable) as caught:
        await create(stack, "unreachable-1")
    assert caught.value.order_may_exist is True
    client_order_id = client_id_for_key("paper", "unreachable-1")
    row = await stack.app.state.store.get("paper", client_order_id)
    assert row is not None and row.status == OrderStatus.UNKNOWN
    assert len(placed(stack, client_order_id)) == 1

    stack.paper.set_faults()  # the exchange answers again
    config = OrdersConfig(landing_window_ms=100, clock_skew_ms=0, idempotency_lease_s=0.001)
    await asyncio.sleep(0.2)  # past that landing window and lease
    changed = await reconcile(stack.gateway, stack.app.state.store, config)
    assert changed == 1
    row = await stack.app.state.store.get("paper", client_order_id)
    assert row is not None and row.status == OrderStatus.FILLED

    again = await create(stack, "unreachable-1")  # the client retries with the same key
    assert again.id == client_order_id and again.status is OrderStatus.FILLED
    assert len(placed(stack, client_order_id)) == 1


async def test_an_explicit_refusal_is_final_and_not_retried(stack: Stack) -> None:
    # The gate saw enough USDT; by the time our order executes, another client of the same account has
    # locked it in a resting order. The exchange refuses (-2010): final, stored as the key's answer.
    last = (await stack.gateway.ticker("paper", "BTC/USDT")).last
    assert last is not None
    ours = CreateOrderRequest(
        symbol="BTC/USDT", side="buy", type="market", amount=(Decimal(60_000) / last).quantize(Decimal("0.00001"))
    )
    stack.paper.set_fault_policy(Scripted("POST", "/api/v3/order", [Fault(FaultKind.SLOW, delay_ms=400)]))
    before = stack.paper_requests("/api/v3/order")
    placing = asyncio.create_task(create(stack, "refused-1", ours))
    while stack.paper_requests("/api/v3/order") == before:  # noqa: ASYNC110 - the paper exchange's counter
        await asyncio.sleep(0.01)
    bid = (last * Decimal("0.9")).quantize(Decimal("0.01"))
    locking = str((Decimal(90_000) / bid).quantize(Decimal("0.00001")))
    await stack.pool.send_once(
        "paper", lambda c: c.create_order("BTC/USDT", "limit", "buy", locking, str(bid), {"clientOrderId": "other"})
    )
    with pytest.raises(domain.InsufficientFunds) as caught:
        await placing
    assert caught.value.order_may_exist is False
    assert stack.paper_requests("/api/v3/order") == before + 2  # ours once, the other client's once
    row = await stack.app.state.store.get("paper", client_id_for_key("paper", "refused-1"))
    assert row is not None and row.status == OrderStatus.REJECTED
    with pytest.raises(ReplayedError):  # the refusal is the stored answer for that key
        await create(stack, "refused-1", ours)
    assert stack.paper_requests("/api/v3/order") == before + 2


async def test_illegal_transition_is_refused_loudly(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    order = await create(stack, "transition-1")
    with pytest.raises(IllegalTransition):
        await stack.app.state.store.transition("paper", order.id, OrderStatus.OPEN)
    assert "illegal order transition FILLED -> OPEN" in caplog.text
