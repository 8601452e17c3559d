"""The client against the real app over real HTTP (uvicorn on loopback, ccxt, the paper exchange): the server's
models come back exact, an order is placed once even when its answer is lost, problems are typed exceptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from aiotrade.client import (
    AiotradeClient,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    RetryPolicy,
    RiskRejected,
    TransportFailed,
    Unauthorized,
    retrying,
)
from aiotrade.models.market import Ticker
from aiotrade.models.orders import CreateOcoRequest, CreateOrderRequest, HaltRequest, OrderSide, OrderStatus, OrderType
from aiotrade.models.risk import PortfolioRiskReport, PortfolioRiskRequest, RiskLimits, TradingState
from tests.client.conftest import Served
from tests.support.stack import TEST_API_KEY

MARKET_BUY = CreateOrderRequest(symbol="BTC/USDT", side=OrderSide.BUY, type=OrderType.MARKET, amount=Decimal("0.0005"))


def off(price: Decimal, factor: str) -> Decimal:
    """``price`` times ``factor``, on the tick."""
    return (price * Decimal(factor)).quantize(Decimal("0.01"))


def venue_orders(served: Served) -> list[dict]:
    return served.stack.paper.state.private.engine.ledger()


async def test_reads_come_back_as_the_servers_models_with_exact_decimals_and_aware_times(served: Served) -> None:
    async with AiotradeClient(served.url, api_key=TEST_API_KEY) as client:
        ticker = await client.get_ticker("paper", "BTC/USDT")
        markets = await client.list_markets("paper")
        since = datetime.now(UTC) - timedelta(hours=3)
        candles = await client.get_ohlcv("paper", "BTC/USDT", timeframe="1h", limit=2, since=since)
        weights = [Decimal("0.6"), Decimal("0.4")]
        risk = await client.assess_portfolio_risk(
            PortfolioRiskRequest(symbols=["BTC/USDT", "ETH/USDT"], weights=weights, lookback=60)
        )
    assert isinstance(ticker, Ticker) and ticker.symbol == "BTC/USDT"
    assert isinstance(ticker.last, Decimal) and ticker.last > 0
    assert ticker.timestamp is not None and ticker.timestamp.tzinfo is not None
    assert "BTC/USDT" in {m.symbol for m in markets}
    assert 1 <= len(candles.candles) <= 2 and all(c.timestamp >= since - timedelta(hours=1) for c in candles.candles)
    assert isinstance(risk, PortfolioRiskReport) and isinstance(risk.volatility, Decimal)
    assert [a.weight for a in risk.assets] == weights and risk.end.tzinfo is not None


async def test_an_order_is_created_fetched_listed_and_cancelled(served: Served) -> None:
    async with AiotradeClient(served.url, api_key=TEST_API_KEY) as client:
        last = (await client.get_ticker("paper", "BTC/USDT")).last
        assert last is not None
        price = off(last, "0.97")
        request = CreateOrderRequest(
            symbol="BTC/USDT", side=OrderSide.BUY, type=OrderType.LIMIT, amount=Decimal("0.001"), price=price
        )
        before = datetime.now(UTC) - timedelta(seconds=5)
        order = await client.create_order("paper", request)
        assert order.status is OrderStatus.OPEN and order.price == price and order.amount == Decimal("0.001")
        assert (await client.get_order("paper", order.id)).id == order.id
        page = await client.list_orders("paper", status=[OrderStatus.OPEN], from_=before, symbol="BTC/USDT")
        assert [o.id for o in page.orders] == [order.id]
        cancelled = await client.cancel_order("paper", order.id)
    assert cancelled.status is OrderStatus.CANCELED


class LoseAnswers(httpx.AsyncBaseTransport):
    """Real HTTP, but the answers to the first ``count`` creates (POSTs to ``.../<path_end>``) are dropped after
    the server sent them."""

    def __init__(self, count: int, path_end: str = "/orders") -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.count = count
        self.path_end = path_end
        self.keys: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith(self.path_end):
            self.keys.append(request.headers.get("idempotency-key"))
            if self.count > 0:
                self.count -= 1
                await response.aread()
                await response.aclose()
                raise httpx.ReadError("connection reset after the server answered", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_an_order_whose_answer_is_lost_is_replayed_on_retry_not_placed_twice(served: Served) -> None:
    lossy = LoseAnswers(count=2)
    async with AiotradeClient(served.url, api_key=TEST_API_KEY, transport=lossy) as client:
        order = await client.create_order("paper", MARKET_BUY)
    assert len(lossy.keys) == 3 and len(set(lossy.keys)) == 1 and lossy.keys[0]  # one key, made by the client
    assert order.status is OrderStatus.FILLED
    assert [o["clientOrderId"] for o in venue_orders(served)] == [order.id]


async def test_an_oco_whose_answer_is_lost_is_replayed_with_its_two_legs_placed_once(served: Served) -> None:
    lossy = LoseAnswers(count=1, path_end="/order-lists")
    async with AiotradeClient(served.url, api_key=TEST_API_KEY, transport=lossy) as client:
        last = (await client.get_ticker("paper", "BTC/USDT")).last
        assert last is not None
        request = CreateOcoRequest(
            symbol="BTC/USDT", side=OrderSide.SELL, amount=Decimal("0.001"), price=off(last, "1.03"),
            stop_price=off(last, "0.97"), stop_limit_price=off(last, "0.965"),
        )  # fmt: skip
        placed = await client.create_oco("paper", request)
    assert len(lossy.keys) == 2 and len(set(lossy.keys)) == 1
    assert [o.type for o in placed.orders] == [OrderType.LIMIT_MAKER, OrderType.STOP_LOSS_LIMIT]
    assert sorted(o["clientOrderId"] for o in venue_orders(served)) == sorted(o.id for o in placed.orders)


async def test_control_a_new_key_per_attempt_would_have_placed_the_order_twice(served: Served) -> None:
    # What the test above guards against: the same lost answer, but each attempt under a key of its own.
    lossy = LoseAnswers(count=1)
    async with AiotradeClient(served.url, api_key=TEST_API_KEY, transport=lossy, retries=RetryPolicy(0)) as client:
        with pytest.raises(TransportFailed) as lost:
            await client.create_order("paper", MARKET_BUY)
        assert lost.value.idempotency_key == lossy.keys[0]
        await client.create_order("paper", MARKET_BUY)  # a fresh key
    assert len(venue_orders(served)) == 2


async def test_problems_arrive_as_typed_exceptions(served: Served) -> None:
    stack = served.stack
    read_only = await stack.make_key("reader", scopes="read")
    throttled = await stack.make_key("throttled", rate_limit=1)
    async with AiotradeClient(served.url, api_key=TEST_API_KEY) as client:
        with pytest.raises(NotFound) as missing:
            await client.get_order("paper", "no-such-order")
        with pytest.raises(InvalidInput) as invalid:
            await client.get_ticker("paper", "not a symbol")
        await client.set_risk_limits("paper", RiskLimits(max_order_notional=Decimal("1")))
        with pytest.raises(RiskRejected) as refused:
            await client.create_order("paper", MARKET_BUY)
    async with AiotradeClient(served.url, api_key="at_" + "x" * 43) as stranger:
        with pytest.raises(Unauthorized):
            await stranger.list_exchanges()
    async with AiotradeClient(served.url, api_key=read_only.key) as reader:
        with pytest.raises(Forbidden):
            await reader.create_order("paper", MARKET_BUY)
    async with AiotradeClient(served.url, api_key=throttled.key, retries=RetryPolicy(0)) as hasty:
        with pytest.raises(RateLimited) as limited:
            for _ in range(20):
                await hasty.list_exchanges()

    assert missing.value.status == 404 and missing.value.request_id
    assert [(e.name, e.location) for e in invalid.value.errors] == [("symbol", "query")]
    assert "NOTIONAL" in " ".join(v.code for v in refused.value.violations)
    assert refused.value.idempotency_key and not venue_orders(served)
    assert limited.value.retry_after is not None and limited.value.retry_after > 0


async def test_an_accounts_desk_calls_balances_fills_halt_and_resume(served: Served) -> None:
    async with AiotradeClient(served.url, api_key=TEST_API_KEY) as client:
        bought = await client.create_order("paper", MARKET_BUY)
        balances = await client.get_balances("paper")
        fills = await client.list_fills("paper", symbol="BTC/USDT", from_=bought.created_at - timedelta(minutes=1))
        last = (await client.get_ticker("paper", "BTC/USDT")).last
        assert last is not None
        resting = await client.create_order(
            "paper",
            CreateOrderRequest(
                symbol="BTC/USDT", side=OrderSide.BUY, type=OrderType.LIMIT, amount=Decimal("0.001"),
                price=off(last, "0.97"),
            ),
        )  # fmt: skip
        halted = await client.halt_account("paper", HaltRequest(reason="client test"))
        with pytest.raises(RiskRejected) as refused:
            await client.create_order("paper", MARKET_BUY)
        resumed = await client.resume_account("paper")
    assert isinstance(balances.free("BTC"), Decimal) and balances.total("BTC") >= Decimal("0.0005")
    assert {f.order_id for f in fills.fills} == {bought.id} and all(isinstance(f.price, Decimal) for f in fills.fills)
    assert halted.state == "HALTED" and [(o.id, o.outcome) for o in halted.outcomes] == [(resting.id, "canceled")]
    assert "TRADING_HALTED" in [v.code for v in refused.value.violations]
    assert resumed.state == TradingState.ACTIVE


class Recording(httpx.AsyncBaseTransport):
    """Real HTTP; remembers each answer's status and Retry-After."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.answers: list[tuple[int, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.answers.append((response.status_code, response.headers.get("retry-after")))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_reads_past_the_keys_rate_limit_wait_out_the_servers_retry_after(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    throttled = await served.stack.make_key("throttled", rate_limit=1)
    waits: list[float] = []
    real_pause = retrying.pause

    async def pause(seconds: float) -> None:
        waits.append(seconds)
        await real_pause(seconds)

    monkeypatch.setattr(retrying, "pause", pause)
    recording = Recording()
    async with AiotradeClient(served.url, api_key=throttled.key, transport=recording) as client:
        answers = [await client.list_exchanges() for _ in range(4)]
    assert all(a and a[0].name == "paper" for a in answers)
    refused = [float(after) for status, after in recording.answers if status == 429 and after is not None]
    assert refused, "the key's limit was never reached: the test shows nothing"
    assert len(waits) == len(refused) and all(w >= r for w, r in zip(waits, refused, strict=True))
