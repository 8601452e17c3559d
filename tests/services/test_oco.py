"""OCO through the same gate and exactly-once path: one order list on the venue, two legs of ours.

Real stack: httpx -> the app -> services -> real ccxt (privatePostOrderListOco) -> the paper exchange, whose
matching engine expires one leg when the other fills or triggers. Checked against the venue's own ledger.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aiotrade.models.orders import leg_ids
from aiotrade.paper.faults import Fault, FaultKind
from aiotrade.paper.prices import MarketPrices
from aiotrade.services.orders.halt import halt_account
from aiotrade.services.orders.reconciliation import reconcile
from tests.api.test_problems import assert_problem
from tests.support.faults import Scripted
from tests.support.stack import Stack

ACCOUNT = "/api/v1/accounts/paper"
LISTS = f"{ACCOUNT}/order-lists"
TICK = Decimal("0.01")


async def last(stack: Stack) -> Decimal:
    price = (await stack.gateway.ticker("paper", "BTC/USDT")).last
    assert price is not None
    return price


def at(price: Decimal, factor: str) -> Decimal:
    return (price * Decimal(factor)).quantize(TICK)


def sell_oco(price: Decimal, amount: str = "0.01") -> dict[str, str]:
    """Take profit 3 % above, stop 3 % below (its limit a little lower): neither is near the market."""
    return {
        "symbol": "BTC/USDT", "side": "sell", "amount": amount, "price": str(at(price, "1.03")),
        "stop_price": str(at(price, "0.97")), "stop_limit_price": str(at(price, "0.965")),
    }  # fmt: skip


def on_venue(stack: Stack) -> list[dict]:
    return stack.paper.state.private.engine.ledger()


async def test_an_oco_is_one_order_list_on_the_venue_with_two_legs_of_ours_placed_once(stack: Stack) -> None:
    body = sell_oco(await last(stack))
    created = await stack.api.post(LISTS, json=body, headers={"Idempotency-Key": "protect-1"})
    assert created.status_code == 201, created.text
    placed = created.json()
    limit, stop = placed["orders"]
    assert (placed["contingency_type"], [limit["id"], stop["id"]]) == ("OCO", list(leg_ids(placed["id"])))
    assert (limit["type"], limit["status"], limit["price"]) == ("limit_maker", "OPEN", body["price"])
    assert (stop["type"], stop["stop_price"], stop["price"]) == (
        "stop_loss_limit",
        body["stop_price"],
        body["stop_limit_price"],
    )
    assert limit["order_list_id"] == stop["order_list_id"] == placed["id"]
    venue = {o["clientOrderId"]: o for o in on_venue(stack)}
    assert (venue[limit["id"]]["type"], venue[stop["id"]]["type"]) == ("LIMIT_MAKER", "STOP_LOSS_LIMIT")
    assert venue[limit["id"]]["orderListId"] == venue[stop["id"]]["orderListId"] != -1

    again = await stack.api.post(LISTS, json=body, headers={"Idempotency-Key": "protect-1"})
    assert (again.status_code, again.headers.get("Idempotent-Replayed"), again.json()) == (201, "true", placed)
    assert len(on_venue(stack)) == 2
    assert (await stack.api.get(f"{ACCOUNT}/orders/{stop['id']}")).json()["status"] == "OPEN"

    # The kill switch cancels both legs (cancelling one cancels the list on the venue).
    report = await halt_account(stack.gateway, stack.app.state.store, stack.app.state.gate_store, "paper", reason="t")
    assert sorted((o.id, o.outcome) for o in report.outcomes) == sorted(
        [(limit["id"], "canceled"), (stop["id"], "canceled")]
    )
    assert {o["status"] for o in on_venue(stack)} == {"CANCELED"}


async def test_cancelling_one_leg_records_the_other_as_cancelled_at_once(stack: Stack) -> None:
    created = await stack.api.post(LISTS, json=sell_oco(await last(stack)), headers={"Idempotency-Key": "one-leg"})
    assert created.status_code == 201, created.text
    limit, stop = created.json()["orders"]

    cancelled = await stack.api.delete(f"{ACCOUNT}/orders/{limit['id']}")

    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "CANCELED"), cancelled.text
    # The store, not a refresh on read: the history (and so the stream) has the other leg's end already.
    history = await stack.api.get(f"{ACCOUNT}/orders", params={"symbol": "BTC/USDT"})
    statuses = {o["id"]: o["status"] for o in history.json()["orders"]}
    assert (statuses[limit["id"]], statuses[stop["id"]]) == ("CANCELED", "CANCELED")


async def test_the_gate_judges_every_leg_funds_them_once_and_counts_both_as_open(stack: Stack) -> None:
    price = await last(stack)
    held = (await stack.gateway.balances("paper")).free("BTC")
    assert held == 1
    crossed = {**sell_oco(price), "stop_price": str(at(price, "1.01")), "stop_limit_price": str(at(price, "1.005"))}
    crossed["price"] = str(at(price, "1.02"))
    refusals = [
        (crossed, "STOP_WOULD_TRIGGER_IMMEDIATELY"),
        (sell_oco(price, amount="1.2"), "INSUFFICIENT_BALANCE"),  # funding is judged, for every leg
    ]
    for body, code in refusals:
        assert code in assert_problem(await stack.api.post(LISTS, json=body), 422)["detail"]
    limits = (await stack.api.get(f"{ACCOUNT}/risk-limits")).json()
    assert (await stack.api.put(f"{ACCOUNT}/risk-limits", json={**limits, "max_open_orders": 1})).status_code == 200
    refused = assert_problem(await stack.api.post(LISTS, json=sell_oco(price)), 422)
    assert "OPEN_ORDERS_EXCEED_MAX" in refused["detail"]  # two legs, two open orders
    assert (await stack.api.put(f"{ACCOUNT}/risk-limits", json={**limits, "max_open_orders": 2})).status_code == 200
    off_tick = {**sell_oco(price), "stop_limit_price": str(at(price, "0.965")) + "1"}
    assert_problem(await stack.api.post(LISTS, json=off_tick), 422, "stop_limit_price")
    assert on_venue(stack) == []  # nothing refused reached the venue

    # 0.8 BTC on both legs with 1 BTC held: only one leg can execute, so it is funded once.
    whole = await stack.api.post(LISTS, json=sell_oco(price, amount="0.8"))
    assert whole.status_code == 201, whole.text
    assert Counter(o["status"] for o in on_venue(stack)) == Counter({"NEW": 2})


async def test_an_oco_whose_answer_is_lost_is_found_by_its_leg_ids_and_never_sent_twice(stack: Stack) -> None:
    drop = Scripted("POST", "/api/v3/orderList/oco", [Fault(FaultKind.COMMIT_THEN_DROP)])
    stack.paper.set_fault_policy(drop)
    created = await stack.api.post(LISTS, json=sell_oco(await last(stack)), headers={"Idempotency-Key": "lost"})
    assert created.status_code == 201, created.text
    assert drop.applied == [FaultKind.COMMIT_THEN_DROP]  # it executed and its answer never came
    assert [o["status"] for o in created.json()["orders"]] == ["OPEN", "OPEN"]
    assert sorted(o["clientOrderId"] for o in on_venue(stack)) == sorted(o["id"] for o in created.json()["orders"])
    trail = [e.event for e in await stack.app.state.store.audit_trail("paper", created.json()["orders"][1]["id"])]
    assert "send_outcome_unknown" in trail and "found_by_lookup" in trail


async def test_when_the_stop_triggers_and_fills_the_other_leg_expires_and_reconciliation_records_both(
    stack: Stack,
) -> None:
    # The paper market is seeded: put the stop a little under the last price where the next seconds trade
    # below it. The price may pass the stop before the gate reads it (a refusal, nothing placed): try again.
    prices, store = MarketPrices(stack.paper.market), stack.app.state.store
    for _ in range(30):
        now = stack.paper.state.clock()
        current, span = prices.last_price("BTCUSDT", now), prices.price_range("BTCUSDT", now + 1_000, now + 20_000)
        assert current is not None
        stop = current - Decimal(1)
        if span is None or span[0] >= stop - Decimal(5):
            await asyncio.sleep(1)
            continue
        body = {
            "symbol": "BTC/USDT", "side": "sell", "amount": "0.01", "price": str(at(current, "1.02")),
            "stop_price": str(stop), "stop_limit_price": str(at(stop, "0.99")),
        }  # fmt: skip
        created = await stack.api.post(LISTS, json=body)
        if created.status_code == 201:
            break
        assert "STOP_WOULD_TRIGGER_IMMEDIATELY" in created.text, created.text
    else:
        raise AssertionError("no window in which the market fell through a stop")
    limit_id, stop_id = (o["id"] for o in created.json()["orders"])

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the reconciler's passes, as they come in production
        await reconcile(stack.gateway, store, stack.settings.orders, stack.app.state.risk_store)
        # Both legs ended: a pass may look at the limit leg just before the stop triggers and fills.
        legs = [await store.get("paper", leg) for leg in (stop_id, limit_id)]
        if all(leg.status.is_terminal for leg in legs):
            break
        await asyncio.sleep(0.5)
    stopped, expired = await store.get("paper", stop_id), await store.get("paper", limit_id)
    assert (stopped.status.value, stopped.filled) == ("FILLED", Decimal("0.01"))
    assert expired.status.value == "EXPIRED"
    fills = await store.fills("paper", symbol="BTC/USDT")
    assert {f.client_order_id for f in fills} == {stop_id}


async def test_a_buy_oco_rests_its_limit_below_the_market_and_its_stop_above(stack: Stack) -> None:
    price = await last(stack)
    body = {
        "symbol": "BTC/USDT", "side": "buy", "amount": "0.01", "price": str(at(price, "0.97")),
        "stop_price": str(at(price, "1.03")), "stop_limit_price": str(at(price, "1.035")),
    }  # fmt: skip
    created = await stack.api.post(LISTS, json=body)
    assert created.status_code == 201, created.text
    venue = {o["type"]: o for o in on_venue(stack)}
    assert (venue["LIMIT_MAKER"]["price"], venue["STOP_LOSS_LIMIT"]["stopPrice"]) == (
        f"{at(price, '0.97'):.8f}",
        f"{at(price, '1.03'):.8f}",
    )
    wrong_way = {**body, "price": body["stop_price"], "stop_price": body["price"]}
    assert_problem(await stack.api.post(LISTS, json=wrong_way), 422)


async def test_the_reconciler_leaves_the_legs_alone_while_their_key_is_held(stack: Stack) -> None:
    slow = Scripted("POST", "/api/v3/orderList/oco", [Fault(FaultKind.SLOW, delay_ms=800)])
    stack.paper.set_fault_policy(slow)
    body = sell_oco(await last(stack))
    placing = asyncio.create_task(stack.api.post(LISTS, json=body, headers={"Idempotency-Key": "held"}))
    store = stack.app.state.store
    while len(await store.in_flight("paper")) < 2:  # noqa: ASYNC110 - both legs admitted: PENDING
        await asyncio.sleep(0.01)
    later = datetime.now(UTC) + timedelta(hours=1)  # as if the legs were old enough to settle
    assert await store.unsettled(older_than=later) == []
    created = await placing
    assert created.status_code == 201, created.text
    assert {o.client_order_id for o in await store.unsettled(older_than=later)} == {
        o["id"] for o in created.json()["orders"]
    }  # live legs are looked at once the request is done
