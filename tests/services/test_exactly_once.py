"""Every fault between us and the exchange, one at a time: the order exists exactly once, and we know it.

Real stack: the order service -> pool -> real ccxt -> HTTP -> the paper exchange, which commits an order
and then drops, delays or garbles the answer, or fails before committing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from aiotrade import errors as domain
from aiotrade.config import OrdersConfig
from aiotrade.models.orders import CreateOrderRequest, OrderStatus
from aiotrade.paper.faults import Fault, FaultKind
from aiotrade.services import orders
from aiotrade.services.order_state import IllegalTransition
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
    return await orders.create_order(
        stack.pool, stack.app.state.store, "paper", request, idempotency_key=key, policy=stack.app.state.order_policy
    )


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
    client_order_id = orders.client_id_for_key("paper", "unreachable-1")
    row = await stack.app.state.store.get("paper", client_order_id)
    assert row is not None and row.status == OrderStatus.UNKNOWN
    assert len(placed(stack, client_order_id)) == 1

    stack.paper.set_faults()  # the exchange answers again
    policy = orders.OrderPolicy(landing_window_ms=0, clock_skew_ms=0, key_lease=timedelta(0))
    changed = await orders.reconcile(stack.pool, stack.app.state.store, policy)
    assert changed == 1
    row = await stack.app.state.store.get("paper", client_order_id)
    assert row is not None and row.status == OrderStatus.FILLED

    again = await create(stack, "unreachable-1")  # the client retries with the same key
    assert again.id == client_order_id and again.status is OrderStatus.FILLED
    assert len(placed(stack, client_order_id)) == 1


async def test_an_explicit_refusal_is_final_and_not_retried(stack: Stack) -> None:
    before = stack.paper_requests("/api/v3/order")
    too_big = CreateOrderRequest(symbol="BTC/USDT", side="buy", type="market", amount=Decimal("100"))
    with pytest.raises(domain.InsufficientFunds) as caught:
        await create(stack, "refused-1", too_big)
    assert caught.value.order_may_exist is False
    assert stack.paper_requests("/api/v3/order") == before + 1
    row = await stack.app.state.store.get("paper", orders.client_id_for_key("paper", "refused-1"))
    assert row is not None and row.status == OrderStatus.REJECTED
    with pytest.raises(orders.ReplayedError):  # the refusal is the stored answer for that key
        await create(stack, "refused-1", too_big)


async def test_illegal_transition_is_refused_loudly(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    order = await create(stack, "transition-1")
    with pytest.raises(IllegalTransition):
        await stack.app.state.store.apply("paper", order.id, OrderStatus.OPEN)
    assert "illegal order transition FILLED -> OPEN" in caplog.text
