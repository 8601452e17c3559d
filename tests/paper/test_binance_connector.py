"""Binance's own Python connector (`binance.spot.Spot`, synchronous, over `requests`) against the paper exchange.

The connector blocks, so the exchange runs on its own event loop in a background thread of this test module
(threads are for tests only; the exchange itself is pure asyncio). Each test pins the Binance shape of one
group of calls; the key sets are those of Binance's REST documentation.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from binance.error import ClientError
from binance.spot import Spot

from aiotrade.paper.config import PaperConfig
from aiotrade.paper.server import PaperExchange
from tests.paper.conftest import API_KEY, SECRET, SEED

TICKER_24HR = {
    "symbol", "priceChange", "priceChangePercent", "weightedAvgPrice", "prevClosePrice", "lastPrice", "lastQty",
    "bidPrice", "bidQty", "askPrice", "askQty", "openPrice", "highPrice", "lowPrice", "volume", "quoteVolume",
    "openTime", "closeTime", "firstId", "lastId", "count",
}  # fmt: skip
ACCOUNT = {
    "makerCommission", "takerCommission", "buyerCommission", "sellerCommission", "commissionRates", "canTrade",
    "canWithdraw", "canDeposit", "brokered", "requireSelfTradePrevention", "preventSor", "updateTime",
    "accountType", "balances", "permissions", "uid",
}  # fmt: skip
ORDER = {
    "symbol", "orderId", "orderListId", "clientOrderId", "price", "origQty", "executedQty", "cummulativeQuoteQty",
    "status", "timeInForce", "type", "side", "stopPrice", "icebergQty", "time", "updateTime", "isWorking",
    "workingTime", "origQuoteOrderQty", "selfTradePreventionMode",
}  # fmt: skip
NEW_ORDER_FULL = {
    "symbol", "orderId", "orderListId", "clientOrderId", "transactTime", "price", "origQty", "executedQty",
    "origQuoteOrderQty", "cummulativeQuoteQty", "status", "timeInForce", "type", "side", "workingTime",
    "selfTradePreventionMode", "fills",
}  # fmt: skip
CANCELED = {
    "symbol", "origClientOrderId", "orderId", "orderListId", "clientOrderId", "transactTime", "price", "origQty",
    "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty", "status", "timeInForce", "type", "side",
    "selfTradePreventionMode",
}  # fmt: skip
MY_TRADE = {
    "symbol", "id", "orderId", "orderListId", "price", "qty", "quoteQty", "commission", "commissionAsset", "time",
    "isBuyer", "isMaker", "isBestMatch",
}  # fmt: skip


@pytest.fixture(scope="module")
def paper_url() -> Iterator[str]:
    """A paper exchange (real clock, as the connector stamps requests with it) on a loop of its own thread."""
    started = threading.Event()
    box: dict[str, object] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        box["loop"], box["stop"] = asyncio.get_running_loop(), stop
        async with PaperExchange(PaperConfig(port=0, seed=SEED)) as paper:
            box["url"] = paper.url
            started.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="paper-exchange", daemon=True)
    thread.start()
    assert started.wait(30), "the paper exchange did not start"
    try:
        yield str(box["url"])
    finally:
        loop, stop = box["loop"], box["stop"]
        loop.call_soon_threadsafe(stop.set)  # type: ignore[attr-defined]
        thread.join(10)


@pytest.fixture(scope="module")
def spot(paper_url: str) -> Spot:
    return Spot(api_key=API_KEY, api_secret=SECRET, base_url=paper_url, timeout=10)


@pytest.fixture(scope="module")
def last_price(spot: Spot) -> Decimal:
    return Decimal(spot.ticker_price("BTCUSDT")["price"])


def test_ping_time_and_system_status_have_binances_shape(spot: Spot) -> None:
    assert spot.ping() == {}
    assert set(spot.time()) == {"serverTime"} and isinstance(spot.time()["serverTime"], int)
    assert spot.system_status() == {"status": 0, "msg": "normal"}


def test_exchange_info_lists_symbols_with_filters_order_types_and_rate_limits(spot: Spot) -> None:
    info = spot.exchange_info()
    assert {"timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols"} <= set(info)
    assert [limit["rateLimitType"] for limit in info["rateLimits"]] == [
        "REQUEST_WEIGHT",
        "ORDERS",
        "ORDERS",
        "RAW_REQUESTS",
    ]
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    assert {"STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER"} <= set(btc["orderTypes"]) and btc["ocoAllowed"]
    assert {f["filterType"] for f in btc["filters"]} >= {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL", "MAX_NUM_ALGO_ORDERS"}
    assert [s["symbol"] for s in spot.exchange_info(symbol="ETHBTC")["symbols"]] == ["ETHBTC"]


def test_tickers_have_binances_shape_for_one_symbol_and_for_all(spot: Spot) -> None:
    assert set(spot.ticker_24hr("BTCUSDT")) == TICKER_24HR
    every = spot.ticker_24hr()
    assert isinstance(every, list) and len(every) == 12 and set(every[0]) == TICKER_24HR
    price = spot.ticker_price("BTCUSDT")
    assert set(price) == {"symbol", "price"} and Decimal(price["price"]) > 0
    book = spot.book_ticker("BTCUSDT")
    assert set(book) == {"symbol", "bidPrice", "bidQty", "askPrice", "askQty"}
    assert Decimal(book["bidPrice"]) < Decimal(book["askPrice"])
    assert [t["symbol"] for t in spot.ticker_price(symbols=["BTCUSDT", "ETHUSDT"])] == ["BTCUSDT", "ETHUSDT"]


def test_depth_trades_agg_trades_klines_and_avg_price_have_binances_shape(spot: Spot) -> None:
    depth = spot.depth("BTCUSDT", limit=5)
    assert set(depth) == {"lastUpdateId", "bids", "asks"} and len(depth["bids"]) == len(depth["asks"]) == 5
    assert all(isinstance(p, str) and isinstance(q, str) for p, q in depth["bids"])
    [trade] = spot.trades("BTCUSDT", limit=1)
    assert set(trade) == {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"}
    aggregates = spot.agg_trades("BTCUSDT", limit=3)
    assert len(aggregates) == 3 and set(aggregates[0]) == {"a", "p", "q", "f", "l", "T", "m", "M"}
    candles = spot.klines("BTCUSDT", "1m", limit=3)
    assert len(candles) == 3 and all(len(candle) == 12 for candle in candles)
    average = spot.avg_price("BTCUSDT")
    assert set(average) == {"mins", "price", "closeTime"} and average["mins"] == 5
    assert Decimal(average["price"]) > 0 and len(average["price"].split(".")[1]) == 8


def test_account_and_api_key_permissions_have_binances_shape(spot: Spot) -> None:
    account = spot.account()
    assert set(account) == ACCOUNT
    assert {"asset": "BTC", "free": "1.00000000", "locked": "0.00000000"} in account["balances"]
    permissions = spot.api_key_permissions()
    assert permissions["enableReading"] is True and permissions["enableWithdrawals"] is False


def test_a_test_order_is_checked_and_answers_an_empty_object(spot: Spot, last_price: Decimal) -> None:
    assert spot.new_order_test("BTCUSDT", "BUY", "LIMIT", timeInForce="GTC", quantity="0.001", price="10000") == {}
    with pytest.raises(ClientError) as refused:
        spot.new_order_test("BTCUSDT", "BUY", "LIMIT", timeInForce="GTC", quantity="0.000001", price="10000")
    assert (refused.value.status_code, refused.value.error_code) == (400, -1013)
    assert spot.get_orders("ETHBTC") == []  # nothing was placed


def test_orders_from_placement_to_history_have_binances_shape(spot: Spot, last_price: Decimal) -> None:
    bought = spot.new_order("SOLUSDT", "BUY", "MARKET", quantity="1")
    assert set(bought) == NEW_ORDER_FULL and bought["status"] == "FILLED" and bought["fills"]
    price = f"{last_price / 2:.2f}"  # far below the market: it rests
    resting = spot.new_order("BTCUSDT", "BUY", "LIMIT", timeInForce="GTC", quantity="0.001", price=price)
    assert set(resting) == NEW_ORDER_FULL and resting["status"] == "NEW"

    queried = spot.get_order("BTCUSDT", orderId=resting["orderId"])
    assert set(queried) == ORDER and queried["price"] == f"{Decimal(price):.8f}"
    assert [o["orderId"] for o in spot.get_open_orders("BTCUSDT")] == [resting["orderId"]]
    cancelled = spot.cancel_order("BTCUSDT", orderId=resting["orderId"])
    assert set(cancelled) == CANCELED and cancelled["status"] == "CANCELED"
    assert [o["status"] for o in spot.get_orders("BTCUSDT")] == ["CANCELED"]
    [trade, *_] = spot.my_trades("SOLUSDT")
    assert set(trade) == MY_TRADE and trade["orderId"] == bought["orderId"]


def test_refusals_raise_the_connectors_client_error_with_binances_code(spot: Spot) -> None:
    with pytest.raises(ClientError) as unknown:
        spot.get_order("BTCUSDT", orderId=999_999)
    assert (unknown.value.status_code, unknown.value.error_code, unknown.value.error_message) == (
        400,
        -2013,
        "Order does not exist.",
    )
    with pytest.raises(ClientError) as bad_key:
        Spot(api_key="nobody", api_secret="x", base_url=spot.base_url).account()
    assert (bad_key.value.status_code, bad_key.value.error_code) == (401, -2015)


def test_the_connector_reads_the_usage_headers(paper_url: str) -> None:
    counting = Spot(api_key=API_KEY, api_secret=SECRET, base_url=paper_url, show_limit_usage=True)
    answer = counting.new_order("ETHUSDT", "BUY", "MARKET", quantity="0.01")
    usage = answer["limit_usage"]
    assert int(usage["x-mbx-used-weight-1m"]) >= 1
    assert set(usage) >= {"x-mbx-order-count-10s", "x-mbx-order-count-1d"}
