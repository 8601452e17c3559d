"""Idempotency-Keys scoped by caller (the IETF httpapi draft's semantics): two API keys sending the same key never
see each other's orders; keys stored before the scoping keep their client order ids; a replay says so
(``Idempotent-Replayed: true``); a key still in flight is a 409 with ``Retry-After``."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from aiotrade.models.orders import CreateOrderRequest
from aiotrade.paper.faults import Fault, FaultKind
from aiotrade.services.orders.keys import client_id_for_key
from aiotrade.services.orders.placement import place_order
from tests.api.test_orders import EXCHANGE_ORDER, ORDERS, ledger_for
from tests.api.test_problems import assert_problem
from tests.support.faults import Scripted
from tests.support.stack import Stack

BODY = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.0005"}


async def test_two_api_keys_sending_the_same_idempotency_key_never_see_each_others_orders(stack: Stack) -> None:
    alice = await stack.make_key("alice", "read,trade")
    bob = await stack.make_key("bob", "read,trade")
    async with stack.client(alice.key) as as_alice, stack.client(bob.key) as as_bob:
        key = {"Idempotency-Key": "order-1"}
        first_a = await as_alice.post(ORDERS, json=BODY, headers=key)
        # Another body under the same header: Bob's own request, not a reuse of Alice's key (no 422).
        first_b = await as_bob.post(ORDERS, json={**BODY, "amount": "0.0006"}, headers=key)
        again_a = await as_alice.post(ORDERS, json=BODY, headers=key)
        again_b = await as_bob.post(ORDERS, json={**BODY, "amount": "0.0006"}, headers=key)
        assert_problem(await as_bob.post(ORDERS, json=BODY, headers=key), 422, "Idempotency-Key")  # his own key
    assert first_a.status_code == first_b.status_code == 201, (first_a.text, first_b.text)
    assert "Idempotent-Replayed" not in first_a.headers and "Idempotent-Replayed" not in first_b.headers
    order_a, order_b = first_a.json(), first_b.json()
    assert order_a["id"] != order_b["id"] and Decimal(order_b["amount"]) == Decimal("0.0006")
    assert again_a.headers["Idempotent-Replayed"] == "true" and again_a.json() == order_a
    assert again_b.headers["Idempotent-Replayed"] == "true" and again_b.json() == order_b
    assert len(ledger_for(stack, order_a["id"])) == len(ledger_for(stack, order_b["id"])) == 1
    assert stack.paper_requests(EXCHANGE_ORDER) == 2


async def test_a_key_stored_before_the_scoping_keeps_its_client_order_id_and_replays(stack: Stack) -> None:
    # What a replica that predates the scoping stored: the header as given, its client id derived from it.
    request = CreateOrderRequest.model_validate(BODY)
    app = stack.app.state
    legacy = await place_order(
        app.gateway, app.store, app.gate, stack.settings.orders, "paper", request, idempotency_key="legacy-1"
    )
    assert legacy.order.id == client_id_for_key("paper", "legacy-1")
    replayed = await stack.api.post(ORDERS, json=BODY, headers={"Idempotency-Key": "legacy-1"})
    assert replayed.status_code == 201, replayed.text
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["id"] == legacy.order.id
    assert stack.paper_requests(EXCHANGE_ORDER) == 1  # the replay sent nothing
    # The control: a header never stored before is scoped, and so gets a client id of its own.
    fresh = await stack.api.post(ORDERS, json=BODY, headers={"Idempotency-Key": "fresh-1"})
    assert fresh.status_code == 201 and fresh.json()["id"] != client_id_for_key("paper", "fresh-1")


async def test_a_key_still_in_flight_is_a_409_with_retry_after(stack: Stack) -> None:
    stack.paper.set_fault_policy(Scripted("POST", EXCHANGE_ORDER, [Fault(FaultKind.SLOW, delay_ms=1_500)]))
    key = {"Idempotency-Key": "slow-1"}
    first = asyncio.create_task(stack.api.post(ORDERS, json=BODY, headers=key))
    async with asyncio.timeout(5):
        while stack.paper_requests(EXCHANGE_ORDER) == 0:  # noqa: ASYNC110 (the venue has the first one)
            await asyncio.sleep(0.01)
    busy = await stack.api.post(ORDERS, json=BODY, headers=key)
    body = assert_problem(busy, 409)
    assert "in flight" in body["detail"] and int(busy.headers["Retry-After"]) >= 1
    assert (await first).status_code == 201
    after = await stack.api.post(ORDERS, json=BODY, headers=key)
    assert after.headers["Idempotent-Replayed"] == "true" and after.json()["id"] == (await first).json()["id"]
    assert stack.paper_requests(EXCHANGE_ORDER) == 1


async def test_a_replayed_refusal_says_it_is_a_replay(stack: Stack) -> None:
    """The venue's refusal is stored as the key's answer: sent again, the same problem, marked as a replay,
    and nothing sent twice. (A refusal by our own gate sends nothing and keeps no answer: a resend is judged
    again.)"""
    ticker = (await stack.api.get("/api/v1/exchanges/paper/ticker", params={"symbol": "BTC/USDT"})).json()
    taking = str((Decimal(ticker["last"]) * Decimal("1.01")).quantize(Decimal("0.01")))
    body = {"symbol": "BTC/USDT", "side": "buy", "type": "limit_maker", "amount": "0.001", "price": taking}
    key = {"Idempotency-Key": "refused-1"}
    first = await stack.api.post(ORDERS, json=body, headers=key)
    again = await stack.api.post(ORDERS, json=body, headers=key)
    assert first.status_code == again.status_code, (first.text, again.text)
    assert 400 <= first.status_code < 500, first.text
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["type"] == first.json()["type"]
    assert stack.paper_requests(EXCHANGE_ORDER) == 1
