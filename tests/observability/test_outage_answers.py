"""An order the store holds is never a 404 because the venue stopped knowing it: after the paper exchange
restarts empty on its port (no restart of the API), GET answers the stored copy marked not confirmed by the
venue, the reconciler says so in the log, and the same holds while the venue is away."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest

from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange
from aiotrade.services.orders.reconciliation import reconcile
from tests.support.stack import running_stack

ORDERS = "/api/v1/accounts/paper/orders"
LOOKUP = "/api/v3/order"


async def test_a_stored_order_the_restarted_venue_forgot_is_answered_from_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_stack(tmp_path) as stack:
        ticker = (await stack.api.get("/api/v1/exchanges/paper/ticker", params={"symbol": "BTC/USDT"})).json()
        price = (Decimal(ticker["last"]) * Decimal("0.97")).quantize(Decimal("0.01"))
        body = {"symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": "0.001", "price": str(price)}
        placed = (await stack.api.post(ORDERS, json=body)).json()
        assert placed["status"] == "OPEN"
        known = await stack.api.get(f"{ORDERS}/{placed['id']}")
        assert known.status_code == 200 and known.json()["venue_confirmed"] is True  # the control

        port = stack.paper.port
        await stack.paper.stop()
        async with PaperExchange(PaperConfig(port=port, seed=7, weight_limit=500_000)) as restarted:
            forgotten = await stack.api.get(f"{ORDERS}/{placed['id']}")
            assert restarted.stats.requests.get(LOOKUP, 0) >= 1  # it asked the venue, which said "no such order"
            assert forgotten.status_code == 200, forgotten.text
            answer = forgotten.json()
            assert answer["venue_confirmed"] is False
            assert {k: v for k, v in answer.items() if k != "venue_confirmed"} == {
                k: v for k, v in known.json().items() if k != "venue_confirmed"
            }
            with caplog.at_level(logging.WARNING, logger="aiotrade.services.orders.reconciliation"):
                assert await reconcile(stack.gateway, stack.app.state.store, stack.settings.orders) == 0
            assert any(
                placed["id"] in r.getMessage() and "not confirmed by the venue" in r.getMessage()
                for r in caplog.records
            )
            assert (await stack.app.state.store.get("paper", placed["id"])).status == "OPEN"  # kept as stored

        away = await stack.api.get(f"{ORDERS}/{placed['id']}")  # nobody listens on the port now
        assert away.status_code == 200 and away.json()["venue_confirmed"] is False
        assert away.json()["status"] == "OPEN"
