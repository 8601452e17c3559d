"""Faults the app cannot be made to produce on demand, scripted with respx: a 503 with Retry-After, resets
after the request left, a refused connection. What is resent, with which key, after how long."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
import respx

from aiotrade.client import AiotradeClient, BadAnswer, Conflict, RetryPolicy, TransportFailed, Unavailable, retrying
from aiotrade.client.errors import retry_after_s
from aiotrade.models.orders import CreateOrderRequest, Order, OrderSide, OrderStatus, OrderType
from aiotrade.models.portfolio import Direction, Signal, SignalsRequest

BASE = "http://api.test"
ORDERS = f"{BASE}/api/v1/accounts/paper/orders"
MARKET_BUY = CreateOrderRequest(symbol="BTC/USDT", side=OrderSide.BUY, type=OrderType.MARKET, amount=Decimal("0.001"))
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
FILLED = Order(
    id="cid-1", exchange_order_id="17", account="paper", venue="paper", symbol="BTC/USDT", side=OrderSide.BUY,
    type=OrderType.MARKET, time_in_force=None, amount=Decimal("0.001"), quote_amount=None, price=None,
    status=OrderStatus.FILLED, filled=Decimal("0.001"), remaining=Decimal(0), average_price=Decimal("50000.10"),
    cost=Decimal("50.00010"), fee=None, created_at=NOW, updated_at=NOW,
)  # fmt: skip


def problem(status: int, slug: str, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = {"type": f"urn:aiotrade:problem:{slug}", "title": slug, "status": status, "detail": slug}
    return httpx.Response(status, json=body, headers=headers)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every wait the client chose, instead of waiting."""
    chosen: list[float] = []

    async def record(seconds: float) -> None:
        chosen.append(seconds)

    monkeypatch.setattr(retrying, "pause", record)
    return chosen


@respx.mock(base_url=BASE, assert_all_called=True)
async def test_a_503_with_retry_after_is_waited_out_then_the_answer_returned(
    respx_mock: respx.MockRouter, pauses: list[float]
) -> None:
    route = respx_mock.get("/healthz").mock(
        side_effect=[problem(503, "exchange-circuit-open", "2"), httpx.Response(200, json={"status": "ok"})]
    )
    async with AiotradeClient(BASE) as client:
        assert await client.healthz() == {"status": "ok"}
    assert route.call_count == 2 and len(pauses) == 1 and pauses[0] >= 2


@respx.mock(base_url=BASE)
async def test_a_retry_after_longer_than_the_policy_waits_is_raised_at_once(
    respx_mock: respx.MockRouter, pauses: list[float]
) -> None:
    route = respx_mock.get("/healthz").mock(return_value=problem(503, "compute-busy", "120"))
    async with AiotradeClient(BASE, retries=RetryPolicy(max_wait_s=30)) as client:
        with pytest.raises(Unavailable) as busy:
            await client.healthz()
    assert route.call_count == 1 and not pauses
    assert busy.value.retry_after == 120 and busy.value.type == "compute-busy"


@respx.mock(base_url=BASE)
async def test_create_order_resends_one_key_after_resets_and_an_in_flight_409(
    respx_mock: respx.MockRouter, pauses: list[float]
) -> None:
    route = respx_mock.post("/api/v1/accounts/paper/orders").mock(
        side_effect=[
            httpx.ReadError("reset"),
            httpx.RemoteProtocolError("server disconnected"),
            problem(409, "conflict", "1"),  # the first attempt is still running on the server
            httpx.Response(201, json=FILLED.model_dump(mode="json")),
        ]
    )
    async with AiotradeClient(BASE, retries=RetryPolicy(retries=3)) as client:
        order = await client.create_order("paper", MARKET_BUY)
    keys = {call.request.headers["idempotency-key"] for call in route.calls}
    assert order == FILLED and route.call_count == 4 and len(keys) == 1
    assert pauses[2] >= 1  # the 409's Retry-After


@respx.mock(base_url=BASE)
async def test_a_given_key_is_sent_and_carried_by_the_error_when_retries_run_out(
    respx_mock: respx.MockRouter, pauses: list[float]
) -> None:
    route = respx_mock.post("/api/v1/accounts/paper/orders").mock(side_effect=httpx.ReadTimeout("slow"))
    async with AiotradeClient(BASE, retries=RetryPolicy(retries=2)) as client:
        with pytest.raises(TransportFailed) as failed:
            await client.create_order("paper", MARKET_BUY, idempotency_key="desk-42")
    assert route.call_count == 3 and failed.value.idempotency_key == "desk-42"
    assert {call.request.headers["idempotency-key"] for call in route.calls} == {"desk-42"}


@respx.mock(base_url=BASE)
async def test_an_unkeyed_write_is_resent_only_when_it_surely_never_arrived(
    respx_mock: respx.MockRouter, pauses: list[float]
) -> None:
    signal = Signal(strategy_id="trend", symbol="BTC/USDT", direction=Direction.LONG, timestamp=NOW)
    signals = SignalsRequest(signals=[signal])
    route = respx_mock.post("/api/v1/portfolio/signals")
    async with AiotradeClient(BASE) as client:
        route.mock(side_effect=[httpx.ReadError("reset after sending")])
        with pytest.raises(TransportFailed):
            await client.process_signals(signals)
        assert route.call_count == 1  # it may have been applied: not resent
        route.mock(side_effect=[problem(503, "exchange-unavailable", "1")])
        with pytest.raises(Unavailable):
            await client.process_signals(signals)
        assert route.call_count == 2
        route.mock(side_effect=[httpx.ConnectError("refused"), problem(409, "conflict")])
        with pytest.raises(Conflict):  # the connection was never made: resent once, then answered
            await client.process_signals(signals)
        assert route.call_count == 4
        route.mock(side_effect=[problem(503, "exchange-circuit-open", "1"), problem(409, "conflict")])
        with pytest.raises(Conflict):  # nothing was sent past the open circuit: resent once
            await client.process_signals(signals)
    assert route.call_count == 6


@respx.mock(base_url=BASE)
async def test_a_safe_read_gives_up_after_its_retries(respx_mock: respx.MockRouter, pauses: list[float]) -> None:
    route = respx_mock.get("/api/v1/exchanges").mock(side_effect=httpx.ConnectError("refused"))
    async with AiotradeClient(BASE, retries=3) as client:
        with pytest.raises(TransportFailed):
            await client.list_exchanges()
    assert route.call_count == 4 and len(pauses) == 3


def test_retry_after_reads_seconds_and_http_dates() -> None:
    later = httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    assert retry_after_s(httpx.Response(503, headers={"Retry-After": "3"})) == 3
    assert (retry_after_s(later) or 0) > 10**8
    assert retry_after_s(httpx.Response(503, headers={"Retry-After": "soon"})) is None


@respx.mock(base_url=BASE)
async def test_a_success_whose_body_is_not_the_model_is_a_bad_answer(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("/api/v1/exchanges/paper/ticker").mock(return_value=httpx.Response(200, text="<html>proxy</html>"))
    async with AiotradeClient(BASE) as client:
        with pytest.raises(BadAnswer):
            await client.get_ticker("paper", "BTC/USDT")
