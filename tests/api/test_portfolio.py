"""Portfolio and live portfolio through the whole stack: allocate, signal, plan, execute, watch."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import uvicorn
import websockets
from sqlalchemy import insert

from aiotrade.store.risk import EQUITY_PAGE
from aiotrade.store.tables import EquityRow
from tests.api.test_problems import assert_problem
from tests.services.test_order_path import background_settled
from tests.support.stack import Stack, auth_headers

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT"]


@pytest.mark.parametrize(
    "method", ["equal_weight", "inverse_volatility", "min_variance", "max_sharpe", "risk_parity", "hrp"]
)
async def test_allocations_sum_to_the_budget(stack: Stack, method: str) -> None:
    body = {
        "symbols": SYMBOLS,
        "method": method,
        "lookback": 120,
        "constraints": {"max_weight": "0.6", "cash_buffer": "0.1"},
    }
    response = await stack.api.post("/api/v1/portfolio/allocations", json=body)
    if method == "max_sharpe" and response.status_code == 422:  # no asset with a positive excess return
        return
    assert response.status_code == 200, response.text
    weights = {s: Decimal(w) for s, w in response.json()["weights"].items()}
    assert set(weights) == set(SYMBOLS)
    assert abs(sum(weights.values()) - Decimal("0.9")) < Decimal("0.000001")
    assert all(Decimal(0) <= w <= Decimal("0.6") + Decimal("1e-8") for w in weights.values())


async def test_signals_become_targets_expired_dropped_duplicates_collapsed(stack: Stack) -> None:
    now = datetime.now(UTC)

    def signal(strategy: str, symbol: str, direction: str, strength: str = "1", age_s: float = 0, **extra: object):
        stamp = (now - timedelta(seconds=age_s)).isoformat()
        return {"strategy_id": strategy, "symbol": symbol, "direction": direction, "strength": strength,
                "timestamp": stamp, **extra}  # fmt: skip

    signals = [
        signal("trend", "BTC/USDT", "long"),
        signal("trend", "BTC/USDT", "long", "0.5", age_s=5),  # an older duplicate
        signal("trend", "ETH/USDT", "long"),
        signal("meanrev", "ETH/USDT", "short"),
        signal("old", "SOL/USDT", "long", age_s=7200, ttl_s=60),  # expired
    ]
    response = await stack.api.post(
        "/api/v1/portfolio/signals",
        json={
            "signals": signals,
            "strategy_weights": {"trend": "3", "meanrev": "1"},
            "constraints": {"cash_buffer": "0.2"},
        },
    )
    assert response.status_code == 200, response.text
    outcome = response.json()
    assert outcome["expired_dropped"] == 1 and outcome["duplicates_collapsed"] == 1
    weights = {s: Decimal(w) for s, w in outcome["targets"]["weights"].items()}
    # BTC score 1, ETH score (3·1 + 1·(−1)) / 4 = 0.5: weights 2:1 of the invested 0.8.
    assert set(weights) == {"BTC/USDT", "ETH/USDT"}
    assert abs(weights["BTC/USDT"] - Decimal("0.8") * 2 / 3) < Decimal("0.0000001")
    assert abs(weights["ETH/USDT"] - Decimal("0.8") / 3) < Decimal("0.0000001")
    targets = (await stack.api.get("/api/v1/portfolio/targets")).json()
    assert targets["weights"] == outcome["targets"]["weights"]


async def test_rebalance_plans_then_executes_once(stack: Stack) -> None:
    await stack.api.put("/api/v1/accounts/paper/risk-limits", json={"max_orders_per_minute": None})
    now = datetime.now(UTC).isoformat()
    signals = [
        {"strategy_id": "s", "symbol": "BTC/USDT", "direction": "long", "timestamp": now},
        {"strategy_id": "s", "symbol": "LINK/USDT", "direction": "long", "timestamp": now},
    ]
    await stack.api.post("/api/v1/portfolio/signals", json={"signals": signals, "constraints": {"max_weight": "0.3"}})

    status = (await stack.api.get("/api/v1/portfolio/status")).json()
    assert status["priced_completely"] and Decimal(status["total_value"]) > 0
    drift = {a["asset"]: Decimal(a["drift"]) for a in status["assets"]}
    assert drift["ETH"] > 0 and drift["LINK"] < 0  # ETH held without a target, LINK targeted but not held

    plan = (await stack.api.post("/api/v1/portfolio/rebalance", json={"band": "0.01"})).json()
    assert plan["executed"] is False and plan["trades"]
    sides = [t["side"] for t in plan["trades"]]
    assert sides == sorted(sides, key=lambda side: side == "buy")  # sells first
    before = stack.paper_requests("/api/v3/order")
    assert before == 0  # a plan sends nothing

    executed = await stack.api.post("/api/v1/portfolio/rebalance", json={"band": "0.01", "execute": True})
    assert executed.status_code == 200, executed.text
    outcomes = executed.json()["outcomes"]
    assert outcomes and all(o["status"] == "placed" for o in outcomes), outcomes
    placed = len(stack.paper.state.private.engine.ledger())
    assert placed == len(outcomes)

    again = await stack.api.post(
        "/api/v1/portfolio/rebalance",
        json={"band": "0.01", "execute": True},
        headers={"Idempotency-Key": executed.json()["plan_id"]},
    )
    assert again.status_code == 200
    assert len(stack.paper.state.private.engine.ledger()) == placed  # the same plan never doubles its orders
    after = (await stack.api.get("/api/v1/portfolio/status")).json()
    weights = {a["asset"]: Decimal(a["weight"] or 0) for a in after["assets"]}
    assert abs(weights["LINK"] - Decimal("0.3")) < Decimal("0.02")
    assert after["last_rebalance_at"] is not None


async def test_rebalance_without_targets_is_a_clear_422(stack: Stack) -> None:
    assert_problem(await stack.api.post("/api/v1/portfolio/rebalance", json={}), 422)


async def test_live_snapshot_values_every_holding_with_pnl_from_fills(stack: Stack) -> None:
    await stack.api.post(
        "/api/v1/accounts/paper/orders", json={"symbol": "ETH/USDT", "side": "buy", "type": "market", "amount": "1"}
    )
    response = await stack.api.get("/api/v1/portfolio/live/snapshot")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    snapshot = body["snapshot"]
    assert snapshot["market_data_quality"]["status"] == "fresh"
    positions = {p["asset"]: p for p in snapshot["positions"]}
    values = sum(Decimal(p["market_value"]) for p in positions.values())
    assert abs(values - Decimal(snapshot["total_value"])) < Decimal("0.0001")
    eth = positions["ETH"]
    assert eth["average_cost"] is not None and eth["unrealized_pnl"] is not None
    expected = (
        (Decimal(eth["price"]) - Decimal(eth["average_cost"]))
        * Decimal(eth["cost_basis"])
        / Decimal(eth["average_cost"])
    )
    assert abs(Decimal(eth["unrealized_pnl"]) - expected) < Decimal("0.001")


async def test_snapshot_in_btc_converts_through_intermediate_pairs(stack: Stack) -> None:
    snapshot = (await stack.api.get("/api/v1/portfolio/live/snapshot", params={"quote": "BTC"})).json()["snapshot"]
    positions = {p["asset"]: p for p in snapshot["positions"]}
    assert snapshot["market_data_quality"]["status"] == "fresh"
    btc_usdt = Decimal(
        (await stack.api.get("/api/v1/exchanges/paper/ticker", params={"symbol": "BTC/USDT"})).json()["last"]
    )
    bnb_usdt = Decimal(
        (await stack.api.get("/api/v1/exchanges/paper/ticker", params={"symbol": "BNB/USDT"})).json()["last"]
    )
    assert abs(Decimal(positions["BNB"]["price"]) - bnb_usdt / btc_usdt) / (bnb_usdt / btc_usdt) < Decimal("0.01")
    assert positions["ETH"]["symbol"] == "ETH/BTC"


async def test_a_missing_price_never_values_a_position_at_zero(stack: Stack) -> None:
    stack.paper.set_faults(error_rate=1.0, paths=frozenset({"/api/v3/ticker/24hr"}))
    snapshot = (await stack.api.get("/api/v1/portfolio/live/snapshot")).json()["snapshot"]
    assert snapshot["market_data_quality"]["status"] == "unavailable"
    assert snapshot["total_value"] is None
    assert all(p["market_value"] is None for p in snapshot["positions"] if p["asset"] != "USDT")


async def test_performance_from_equity_history_and_closed_trades(stack: Stack) -> None:
    risk_store = stack.app.state.risk_store
    start = datetime.now(UTC) - timedelta(days=40)
    for day in range(41):
        equity = Decimal(100_000) * (Decimal("1.001") ** day) * (Decimal("0.99") if day % 7 == 3 else 1)
        await risk_store.record_equity(
            "paper", "USDT", equity.quantize(Decimal("0.01")), at=start + timedelta(days=day)
        )
    for side in ("buy", "sell"):
        await stack.api.post(
            "/api/v1/accounts/paper/orders", json={"symbol": "SOL/USDT", "side": side, "type": "market", "amount": "2"}
        )
    perf = (await stack.api.get("/api/v1/portfolio/live/performance")).json()
    assert perf["observations"] >= 41  # ours, plus the recorder's first look at start-up
    assert Decimal(perf["returns"]["30d"]) > 0 and perf["sharpe"] is not None
    assert Decimal(perf["max_drawdown"]) > 0
    assert perf["closed_trades"] == 1 and perf["win_rate"] is not None


async def test_live_validate_trade_counts_fees_and_locked_funds(stack: Stack) -> None:
    ok = await stack.api.post(
        "/api/v1/portfolio/live/validate-trade",
        json={"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.01"},
    )
    assert ok.status_code == 200 and ok.json()["valid"] is True and Decimal(ok.json()["fee"]) > 0
    too_much = await stack.api.post(
        "/api/v1/portfolio/live/validate-trade",
        json={"symbol": "BTC/USDT", "side": "sell", "type": "market", "amount": "2"},
    )
    assert too_much.json()["valid"] is False


async def test_the_live_stream_pushes_snapshots_from_the_served_app(stack: Stack) -> None:
    config = uvicorn.Config(
        stack.app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", ws_per_message_deflate=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/api/v1/portfolio/live/stream?account=paper", additional_headers=auth_headers()
        ) as ws:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert frame["type"] == "snapshot" and frame["account"] == "paper"
        assert Decimal(frame["data"]["total_value"]) > 0
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/api/v1/portfolio/live/stream?account=nobody", additional_headers=auth_headers()
        ) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd.code == 1008
    finally:
        server.should_exit = True
        await task


async def test_performance_streams_a_long_history_and_holds_a_compute_place(stack: Stack) -> None:
    # More records than two pages (EQUITY_PAGE), one a minute, the last a minute from now (after the
    # recorder's own record at start-up): every one counts, and the day's return is exact.
    await background_settled(stack)  # the recorder's start-up record is in before we count
    count = EQUITY_PAGE * 2 + 17
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=count - 2)
    rows = [
        {
            "account": "paper",
            "quote": "USDT",
            "equity": Decimal(100_000 + i - 50 * (i % 7 == 3)),
            "at": start + timedelta(minutes=i),
        }
        for i in range(count)  # rising, with a dip every seventh minute: every ratio is defined
    ]
    async with stack.app.state.engine.begin() as connection:
        await connection.execute(insert(EquityRow), rows)
    await stack.app.state.risk_store.record_equity("paper", "BTC", Decimal(3))  # another quote: not counted

    answer = (await stack.api.get("/api/v1/portfolio/live/performance")).json()

    recorded = len(await stack.app.state.risk_store.equity_history("paper")) - 1  # all of ours, less the BTC one
    assert answer["observations"] == recorded >= count
    assert datetime.fromisoformat(answer["end"]) == rows[-1]["at"]
    day_before = rows[-1 - 24 * 60]["equity"]
    assert Decimal(answer["returns"]["1d"]) == (rows[-1]["equity"] / day_before - 1).quantize(Decimal("1e-8"))
    assert answer["sharpe"] is not None

    compute = stack.app.state.compute
    places = compute.max_jobs + compute.settings.queue_size
    async with contextlib.AsyncExitStack() as held:
        for _ in range(places):
            await held.enter_async_context(compute.reserve())
        busy = await stack.api.get("/api/v1/portfolio/live/performance")
    assert busy.status_code == 503 and busy.json()["type"].endswith(":compute-busy"), busy.text
    assert int(busy.headers["Retry-After"]) >= 1
