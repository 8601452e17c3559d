"""OCOs under concurrency: two replicas on one database (SQLite and PostgreSQL), six lists at once, one account.
Each list's two legs are admitted together in the gate's critical section and both count as open orders, so
a limit of five open orders admits exactly two lists — never a lone leg, never a third list. The venue's
ledger is the truth; the gate's own concurrency control is in `test_gate_concurrency.py`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

from tests.services.test_gate_concurrency import Replicas, last_price, set_limits, two  # noqa: F401 - fixture

LISTS = "/api/v1/accounts/paper/order-lists"


async def test_six_ocos_under_max_open_orders_5_place_exactly_two_lists_of_two_legs(two: Replicas) -> None:  # noqa: F811
    await set_limits(two, max_open_orders=5, max_orders_per_minute=None)
    price = await last_price(two)
    tick = Decimal("0.01")
    body = {
        "symbol": "BTC/USDT", "side": "sell", "amount": "0.01", "price": str((price * Decimal("1.03")).quantize(tick)),
        "stop_price": str((price * Decimal("0.97")).quantize(tick)),
        "stop_limit_price": str((price * Decimal("0.965")).quantize(tick)),
    }  # fmt: skip

    responses = await asyncio.gather(*(two.apis[i % 2].post(LISTS, json=body) for i in range(6)))

    assert sorted(r.status_code for r in responses) == [201] * 2 + [422] * 4, [r.text for r in responses]
    assert all("OPEN_ORDERS_EXCEED_MAX" in r.text for r in responses if r.status_code == 422)
    legs = Counter(str(o["orderListId"]) for o in two.placed())
    assert sorted(legs.values()) == [2, 2]  # two whole lists on the venue, no lone leg
