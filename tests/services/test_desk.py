"""What a desk reaches for first: protective order types, the kill switch, cancel-all, balances and fills.

Real stack: services -> gateway -> pool -> real ccxt -> the paper exchange, whose matching engine
triggers stops and refuses post-only orders that would take.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from aiotrade import errors as domain
from aiotrade.models.orders import CreateOrderRequest, OrderStatus
from aiotrade.paper.faults import Fault, FaultKind
from aiotrade.services import accounts
from aiotrade.services.orders.halt import cancel_all_orders, halt_account
from aiotrade.services.orders.placement import place_order
from tests.support.faults import Scripted
from tests.support.stack import Stack

TICK = Decimal("0.01")


async def last(stack: Stack, symbol: str = "BTC/USDT") -> Decimal:
    price = (await stack.gateway.ticker("paper", symbol)).last
    assert price is not None
    return price


async def place(stack: Stack, **fields: object):  # type: ignore[no-untyped-def]
    request = CreateOrderRequest(symbol=fields.pop("symbol", "BTC/USDT"), **fields)  # type: ignore[arg-type]
    placed = await place_order(
        stack.gateway, stack.app.state.store, stack.app.state.gate, stack.settings.orders, "paper", request
    )
    return placed.order


def at(price: Decimal, factor: str) -> Decimal:
    return (price * Decimal(factor)).quantize(TICK)


def open_on_exchange(stack: Stack) -> list[dict]:
    return [o for o in stack.paper.state.private.engine.ledger() if o["status"] in ("NEW", "PARTIALLY_FILLED")]


async def test_protective_orders_rest_with_their_trigger_and_a_crossed_trigger_is_refused_by_the_gate(
    stack: Stack,
) -> None:
    price = await last(stack)
    stop = await place(
        stack, side="sell", type="stop_loss_limit", amount=Decimal("0.01"), stop_price=at(price, "0.97"),
        price=at(price, "0.965"),
    )  # fmt: skip
    take = await place(
        stack, side="sell", type="take_profit_limit", amount=Decimal("0.01"), stop_price=at(price, "1.03"),
        price=at(price, "1.025"),
    )  # fmt: skip
    assert stop.status is OrderStatus.OPEN and stop.stop_price == at(price, "0.97")
    assert take.status is OrderStatus.OPEN and take.type.value == "take_profit_limit"
    types = {o["clientOrderId"]: o["type"] for o in stack.paper.state.private.engine.ledger()}
    assert types[stop.id] == "STOP_LOSS_LIMIT" and types[take.id] == "TAKE_PROFIT_LIMIT"

    before = len(stack.paper.state.private.engine.ledger())
    with pytest.raises(domain.RiskRejected) as refused:
        await place(
            stack, side="sell", type="stop_loss_limit", amount=Decimal("0.01"), stop_price=at(price, "1.01"),
            price=at(price, "1.005"),
        )  # fmt: skip
    assert "STOP_WOULD_TRIGGER_IMMEDIATELY" in refused.value.detail
    assert len(stack.paper.state.private.engine.ledger()) == before


async def test_a_post_only_order_rests_or_is_refused_by_the_exchange_if_it_would_take(stack: Stack) -> None:
    price = await last(stack)
    maker = await place(stack, side="buy", type="limit_maker", amount=Decimal("0.001"), price=at(price, "0.99"))
    assert maker.status is OrderStatus.OPEN and maker.time_in_force is None
    with pytest.raises(domain.OrderRejected) as refused:
        await place(stack, side="buy", type="limit_maker", amount=Decimal("0.001"), price=at(price, "1.01"))
    assert refused.value.order_may_exist is False


async def test_the_kill_switch_halts_and_cancels_every_open_order_ours_and_others(stack: Stack) -> None:
    price = await last(stack)
    ours = [
        await place(stack, side="buy", type="limit", amount=Decimal("0.001"), price=at(price, f"0.9{i}"))
        for i in range(6, 9)
    ]
    await stack.pool.send_once(
        "paper",
        lambda c: c.create_order("ETH/USDT", "limit", "sell", "0.1", str(at(price, "0.2") * 100), {}),
    )  # placed elsewhere (another tool on the same account): the halt cancels it too
    assert len(open_on_exchange(stack)) == 4

    report = await halt_account(
        stack.gateway, stack.app.state.store, stack.app.state.gate_store, "paper", reason="desk", settle_timeout_s=2
    )
    assert report.state == "HALTED" and report.still_in_flight == []
    assert sorted(o.outcome for o in report.outcomes) == ["canceled"] * 4
    assert {o.id for o in report.outcomes} == {o.id for o in ours} | {None}
    assert open_on_exchange(stack) == []
    for order in ours:
        assert (await stack.app.state.store.get("paper", order.id)).status is OrderStatus.CANCELED
    with pytest.raises(domain.RiskRejected, match="TRADING_HALTED"):
        await place(stack, side="buy", type="market", amount=Decimal("0.001"))

    again = await halt_account(
        stack.gateway, stack.app.state.store, stack.app.state.gate_store, "paper", reason="desk", settle_timeout_s=2
    )
    assert again.state == "HALTED" and again.outcomes == []  # idempotent


async def test_an_order_racing_the_kill_switch_is_cancelled_never_left_open(stack: Stack) -> None:
    price = await last(stack)
    stack.paper.set_fault_policy(Scripted("POST", "/api/v3/order", [Fault(FaultKind.SLOW, delay_ms=700)]))
    placing = asyncio.create_task(
        place(stack, side="buy", type="limit", amount=Decimal("0.001"), price=at(price, "0.98"))
    )
    while not await stack.app.state.store.in_flight("paper"):  # noqa: ASYNC110 - admitted: PENDING, in flight
        await asyncio.sleep(0.01)
    # The halt gives up waiting before the order lands: the placement itself must cancel it on its ack.
    report = await halt_account(
        stack.gateway, stack.app.state.store, stack.app.state.gate_store, "paper", reason="race", settle_timeout_s=0.1
    )
    order = await placing
    assert report.still_in_flight == [order.id]
    assert order.status is OrderStatus.CANCELED
    assert open_on_exchange(stack) == []


async def test_cancel_all_of_one_symbol_leaves_the_others(stack: Stack) -> None:
    btc, eth = await last(stack), await last(stack, "ETH/USDT")
    await place(stack, side="buy", type="limit", amount=Decimal("0.001"), price=at(btc, "0.97"))
    kept = await place(
        stack, symbol="ETH/USDT", side="buy", type="limit", amount=Decimal("0.01"), price=at(eth, "0.97")
    )
    report = await cancel_all_orders(stack.gateway, stack.app.state.store, "paper", "BTC/USDT")
    assert [(o.symbol, o.outcome) for o in report.outcomes] == [("BTC/USDT", "canceled")]
    assert [o["clientOrderId"] for o in open_on_exchange(stack)] == [kept.id]


async def test_balances_and_fills_pages(stack: Stack) -> None:
    for _ in range(3):
        await place(stack, side="buy", type="market", amount=Decimal("0.001"))
    balances = await accounts.get_balances(stack.gateway, "paper")
    assert balances.free("BTC") > 1 and balances.total("USDT") < 100_000
    first = await accounts.get_fills(stack.app.state.store, "paper", symbol="BTC/USDT", limit=2)
    assert len(first.fills) == 2 and first.next_cursor
    rest = await accounts.get_fills(stack.app.state.store, "paper", symbol="BTC/USDT", cursor=first.next_cursor)
    fills = first.fills + rest.fills
    assert len({f.trade_id for f in fills}) == len(fills) >= 3
    assert all(f.fee is not None and f.fee.currency for f in fills)
    assert fills == sorted(fills, key=lambda f: f.executed_at, reverse=True)
    assert (await accounts.get_fills(stack.app.state.store, "paper", symbol="ETH/USDT")).fills == []
