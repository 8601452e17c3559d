"""Markets are loaded again now and then: a venue that changes a filter (or lists a symbol) is followed
without a restart, and a reload the venue cannot answer keeps the markets loaded before.

Real stack: the app's background job -> the pool -> real ccxt `load_markets(reload=True)` -> the paper
exchange, whose exchangeInfo is changed under it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal
from pathlib import Path

from aiotrade.paper.faults import Fault, FaultKind
from aiotrade.paper.wire import Wire
from tests.support.faults import Scripted
from tests.support.stack import Stack, running_stack

MARKETS = "/api/v1/exchanges/paper/markets"
EXCHANGE_INFO = "/api/v3/exchangeInfo"


async def btc_min_notional(stack: Stack) -> Decimal:
    listed = {m["symbol"]: m for m in (await stack.api.get(MARKETS)).json()}
    return Decimal(listed["BTC/USDT"]["limits"]["cost_min"])


async def test_a_changed_filter_is_followed_without_a_restart_and_a_failed_reload_keeps_the_old(
    tmp_path: Path,
) -> None:
    async with running_stack(tmp_path, venue_overrides={"markets_refresh_s": 0.3}) as stack:
        before = await btc_min_notional(stack)
        wires = stack.paper.state.wires
        spec = wires["BTCUSDT"].spec
        wires["BTCUSDT"] = Wire(dataclasses.replace(spec, min_notional_e8=spec.min_notional_e8 * 2))

        for _ in range(100):  # a few reload intervals at most
            if (now := await btc_min_notional(stack)) != before:
                break
            await asyncio.sleep(0.1)
        assert now == before * 2
        # The gate judges by the reloaded filter: an order between the old and the new minimum is refused.
        last = (await stack.gateway.ticker("paper", "BTC/USDT")).last
        assert last is not None
        amount = (before * Decimal("1.5") / last).quantize(Decimal("0.00001"))
        refused = await stack.api.post(
            "/api/v1/accounts/paper/orders",
            json={"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": str(amount)},
        )
        assert refused.status_code == 422 and "NOTIONAL_BELOW_MIN" in refused.text, refused.text

        # The venue fails the next reloads: the markets stay as they were, and the API keeps answering.
        failing = Scripted("GET", EXCHANGE_INFO, [Fault(FaultKind.SERVER_ERROR, status=503)] * 1000)
        stack.paper.set_fault_policy(failing)
        asked = stack.paper_requests(EXCHANGE_INFO)
        for _ in range(100):
            if stack.paper_requests(EXCHANGE_INFO) >= asked + 2:
                break
            await asyncio.sleep(0.1)
        assert stack.paper_requests(EXCHANGE_INFO) >= asked + 2 and failing.applied  # reloads were tried
        assert await btc_min_notional(stack) == now
