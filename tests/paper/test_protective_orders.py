"""Stop-loss, take-profit and post-only orders in the matching engine, with Binance's semantics.

Book of the fake market: bids 29990 (0.5), 29980 (1), 29970 (2); asks 30000 (0.5), 30010 (1), 30020 (2);
last trade 29995. Alice holds 100000 USDT and 2 BTC.
"""

from __future__ import annotations

import pytest

from tests.paper.engine import T0, Paper, make_paper, refused

SELL_STOP = {"side": "SELL", "type": "STOP_LOSS_LIMIT", "timeInForce": "GTC", "quantity": "0.5"}
ACK_KEYS = {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}


@pytest.fixture
def paper() -> Paper:
    return make_paper()


def test_a_stop_loss_limit_sell_rests_untriggered_with_its_quantity_locked(paper: Paper) -> None:
    placed = paper.place(**SELL_STOP, stopPrice="29000", price="28900")
    assert set(placed) == ACK_KEYS  # Binance answers ACK by default for every type but MARKET and LIMIT
    paper.cross("29500", "30500")  # nowhere near the stop

    order = paper.order(placed["orderId"])
    assert (order["status"], order["type"], order["isWorking"], order["workingTime"]) == (
        "NEW",
        "STOP_LOSS_LIMIT",
        False,
        -1,
    )
    assert (order["stopPrice"], order["price"]) == ("29000.00000000", "28900.00000000")
    assert paper.balance("BTC") == ("1.50000000", "0.50000000")
    assert [o["orderId"] for o in paper.engine.open_orders("alice", "BTCUSDT")] == [placed["orderId"]]
    assert paper.engine.my_trades("alice", "BTCUSDT") == []


def test_a_stop_loss_limit_sell_triggers_when_the_price_falls_to_its_stop_and_takes_the_book(paper: Paper) -> None:
    placed = paper.place(**SELL_STOP, stopPrice="29000", price="28900")
    paper.cross("29000", "29600")  # the low reaches the stop: it triggers

    order = paper.order(placed["orderId"])
    # once triggered it is a limit sell at 28900: the bids of that instant (29990) are better, it takes them
    assert (order["status"], order["isWorking"], order["workingTime"]) == ("FILLED", True, paper.clock.now)
    assert order["cummulativeQuoteQty"] == "14995.00000000"
    [trade] = paper.engine.my_trades("alice", "BTCUSDT")
    assert (trade["price"], trade["isMaker"]) == ("29990.00000000", False)
    assert paper.balance("BTC") == ("1.50000000", "0.00000000")
    assert paper.balance("USDT") == ("114980.00500000", "0.00000000")  # + 14995 - 14.995


def test_a_triggered_stop_limit_that_cannot_take_rests_as_a_limit_and_fills_as_maker(paper: Paper) -> None:
    placed = paper.place(**SELL_STOP, stopPrice="29000", price="30500")
    paper.cross("28990", "29500")
    order = paper.order(placed["orderId"])
    assert (order["status"], order["isWorking"]) == ("NEW", True)  # working now, on the book at 30500
    assert paper.balance("BTC") == ("1.50000000", "0.50000000")

    paper.cross("30000", "30600")
    assert paper.order(placed["orderId"])["status"] == "FILLED"
    [trade] = paper.engine.my_trades("alice", "BTCUSDT")
    assert (trade["price"], trade["isMaker"]) == ("30500.00000000", True)


def test_a_stop_loss_limit_buy_triggers_only_when_the_price_rises_to_its_stop(paper: Paper) -> None:
    placed = paper.place(
        side="BUY", type="STOP_LOSS_LIMIT", timeInForce="GTC", quantity="0.1", stopPrice="31000", price="31100"
    )
    assert paper.balance("USDT") == ("96890.00000000", "3110.00000000")  # its size at its limit price
    paper.cross("28000", "30900")  # a fall, however deep, does not fire a buy stop
    assert paper.order(placed["orderId"])["isWorking"] is False

    paper.cross("30000", "31000")  # touching the stop fires it
    order = paper.order(placed["orderId"])
    assert (order["status"], order["executedQty"], order["cummulativeQuoteQty"]) == (
        "FILLED",
        "0.10000000",
        "3000.00000000",
    )
    assert paper.balance("USDT") == ("97000.00000000", "0.00000000")  # what the better price saved is free
    assert paper.balance("BTC") == ("2.09990000", "0.00000000")


def test_a_take_profit_limit_sell_triggers_when_the_price_rises_to_its_stop(paper: Paper) -> None:
    placed = paper.place(
        side="SELL", type="TAKE_PROFIT_LIMIT", timeInForce="GTC", quantity="0.2", stopPrice="31000", price="31000"
    )
    paper.cross("28000", "30999.99")
    assert paper.order(placed["orderId"])["isWorking"] is False
    paper.cross("30000", "31000")
    assert paper.order(placed["orderId"])["isWorking"] is True  # triggered; 31000 is above the bids: it rests

    paper.cross("30500", "31000.01")
    assert paper.order(placed["orderId"])["status"] == "FILLED"
    assert paper.balance("USDT") == ("106193.80000000", "0.00000000")  # + 6200 - 6.2


def test_a_take_profit_limit_buy_triggers_when_the_price_falls_to_its_stop(paper: Paper) -> None:
    placed = paper.place(
        side="BUY", type="TAKE_PROFIT_LIMIT", timeInForce="GTC", quantity="0.1", stopPrice="29000", price="29000"
    )
    paper.cross("29000.01", "32000")
    assert paper.order(placed["orderId"])["isWorking"] is False
    paper.cross("29000", "29500")
    assert paper.order(placed["orderId"])["isWorking"] is True
    paper.cross("28500", "29500")
    assert paper.order(placed["orderId"])["status"] == "FILLED"


@pytest.mark.parametrize(
    ("side", "order_type", "stop"),
    [
        ("SELL", "STOP_LOSS_LIMIT", "29995"),  # a sell stop at (or above) the last price
        ("SELL", "STOP_LOSS_LIMIT", "30100"),
        ("BUY", "STOP_LOSS_LIMIT", "29995"),  # a buy stop at (or below) it
        ("BUY", "STOP_LOSS_LIMIT", "29000"),
        ("SELL", "TAKE_PROFIT_LIMIT", "29000"),  # a take-profit sell below it
        ("BUY", "TAKE_PROFIT_LIMIT", "31000"),  # a take-profit buy above it
        ("SELL", "STOP_LOSS", "30000"),
    ],
)
def test_a_stop_that_would_trigger_immediately_is_refused_with_2010(
    paper: Paper, side: str, order_type: str, stop: str
) -> None:
    limit = {"timeInForce": "GTC", "price": stop} if order_type.endswith("_LIMIT") else {}
    error = refused(paper.place, side=side, type=order_type, quantity="0.1", stopPrice=stop, **limit)

    assert (error.status, error.code, error.msg) == (400, -2010, "Order would trigger immediately.")
    assert paper.engine.ledger() == []
    assert paper.balance("BTC") == ("2.00000000", "0.00000000")


def test_a_stop_market_sell_triggers_a_market_sell_that_walks_the_book(paper: Paper) -> None:
    placed = paper.place(side="SELL", type="STOP_LOSS", quantity="0.8", stopPrice="29500")
    assert paper.balance("BTC") == ("1.20000000", "0.80000000")
    paper.cross("29400", "29990")

    order = paper.order(placed["orderId"])
    assert (order["status"], order["price"], order["cummulativeQuoteQty"]) == (
        "FILLED",
        "0.00000000",
        "23989.00000000",  # 0.5 x 29990 + 0.3 x 29980
    )
    assert paper.balance("BTC") == ("1.20000000", "0.00000000")
    assert paper.balance("USDT") == ("123965.01100000", "0.00000000")


def test_a_stop_market_buy_locks_its_size_at_the_last_price_and_covers_the_rest_when_it_fires(paper: Paper) -> None:
    placed = paper.place(side="BUY", type="STOP_LOSS", quantity="1", stopPrice="30500")
    assert paper.balance("USDT") == ("70005.00000000", "29995.00000000")  # 1 x the last price, 29995
    paper.cross("30000", "30500")

    order = paper.order(placed["orderId"])
    assert (order["status"], order["cummulativeQuoteQty"]) == ("FILLED", "30005.00000000")  # 10 more than locked
    assert paper.balance("USDT") == ("69995.00000000", "0.00000000")
    assert paper.balance("BTC") == ("2.99900000", "0.00000000")


def test_a_stop_market_buy_that_cannot_pay_when_it_fires_expires_untouched(paper: Paper) -> None:
    placed = paper.place(side="BUY", type="STOP_LOSS", quantity="3", stopPrice="30500")  # locks 89985
    paper.place(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.345", price="29000")  # leaves 10 free
    paper.cross("30000", "30500")  # the market buy would cost 90040: 55 more than locked, 10 free

    order = paper.order(placed["orderId"])
    assert (order["status"], order["executedQty"], order["isWorking"]) == ("EXPIRED", "0.00000000", True)
    assert paper.balance("USDT") == ("89995.00000000", "10005.00000000")  # only the limit buy holds funds
    assert paper.engine.my_trades("alice", "BTCUSDT") == []


def test_a_limit_maker_rests_and_fills_as_maker(paper: Paper) -> None:
    placed = paper.place(side="BUY", type="LIMIT_MAKER", quantity="0.1", price="29500")
    assert paper.order(placed["orderId"])["status"] == "NEW"
    paper.cross("29400", "29990")

    assert paper.order(placed["orderId"])["status"] == "FILLED"
    [trade] = paper.engine.my_trades("alice", "BTCUSDT")
    assert (trade["price"], trade["isMaker"]) == ("29500.00000000", True)


def test_resting_stops_count_against_max_num_algo_orders_but_plain_orders_do_not(paper: Paper) -> None:
    for _ in range(5):
        paper.place(**{**SELL_STOP, "quantity": "0.1"}, stopPrice="29000", price="28900")

    error = refused(paper.place, **{**SELL_STOP, "quantity": "0.1"}, stopPrice="29000", price="28900")
    assert (error.code, error.msg) == (-2010, "Filter failure: MAX_NUM_ALGO_ORDERS")
    paper.place(side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.1", price="31000")
    assert len(paper.engine.open_orders("alice", "BTCUSDT")) == 6


def test_stop_orders_count_against_the_order_rate_limit_with_retry_after() -> None:
    paper = make_paper(orders_per_10s=2)
    assert paper.clock.now == T0  # a window boundary: the next window is 10 s away
    for _ in range(2):
        paper.place(**{**SELL_STOP, "quantity": "0.1"}, stopPrice="29000", price="28900")

    error = refused(paper.place, **{**SELL_STOP, "quantity": "0.1"}, stopPrice="29000", price="28900")
    assert (error.status, error.code, error.retry_after_s) == (429, -1015, 10)


def test_cancelling_an_untriggered_stop_unlocks_it_and_history_keeps_it(paper: Paper) -> None:
    placed = paper.place(**SELL_STOP, stopPrice="29000", price="28900")
    cancelled = paper.engine.cancel("alice", "BTCUSDT", order_id=placed["orderId"])

    assert (cancelled["status"], cancelled["stopPrice"], cancelled["type"]) == (
        "CANCELED",
        "29000.00000000",
        "STOP_LOSS_LIMIT",
    )
    assert paper.balance("BTC") == ("2.00000000", "0.00000000")
    assert [o["status"] for o in paper.engine.all_orders("alice", "BTCUSDT")] == ["CANCELED"]
    paper.cross("28000", "29000")
    assert paper.engine.my_trades("alice", "BTCUSDT") == []


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"type": "STOP_LOSS_LIMIT", "timeInForce": "GTC", "price": "28900"}, -1102, "stopPrice"),
        ({"type": "STOP_LOSS_LIMIT", "stopPrice": "29000", "price": "28900"}, -1102, "timeInForce"),
        ({"type": "STOP_LOSS_LIMIT", "timeInForce": "GTC", "stopPrice": "29000"}, -1102, "price"),
        ({"type": "STOP_LOSS", "stopPrice": "29000", "price": "28900"}, -1106, "price"),
        ({"type": "LIMIT", "timeInForce": "GTC", "price": "28900", "stopPrice": "29000"}, -1106, "stopPrice"),
        ({"type": "LIMIT_MAKER", "price": "28900", "timeInForce": "GTC"}, -1106, "timeInForce"),
        (
            {"type": "STOP_LOSS_LIMIT", "timeInForce": "GTC", "price": "1", "stopPrice": "1.000000001"},
            -1111,
            "stopPrice",
        ),
        ({"type": "STOP_LOSS_LIMIT", "timeInForce": "GTC", "price": "28900", "trailingDelta": "100"}, -2010, ""),
    ],
)
def test_stop_parameters_are_checked_as_binance_checks_them(
    paper: Paper, params: dict[str, str], code: int, message: str
) -> None:
    error = refused(paper.place, side="SELL", quantity="0.1", **params)
    assert error.code == code
    assert (
        f"'{message}'" in error.msg
        if message
        else error.msg == "Trailing stop orders are not supported for this symbol."
    )


@pytest.mark.parametrize("stop", ["29000.005", "0.001", "1000000.01"])  # off the tick, below and above the bounds
def test_a_stop_price_outside_the_price_filter_is_refused_with_1013(paper: Paper, stop: str) -> None:
    error = refused(paper.place, **SELL_STOP, stopPrice=stop, price="28900")
    assert (error.code, error.msg) == (-1013, "Filter failure: PRICE_FILTER")


def test_test_orders_are_checked_but_never_placed(paper: Paper) -> None:
    params = {"symbol": "BTCUSDT", **SELL_STOP, "stopPrice": "29000", "price": "28900"}
    assert paper.engine.test_order("alice", params) == {}
    rates = paper.engine.test_order("alice", {**params, "computeCommissionRates": "true"})
    assert rates["standardCommissionForOrder"] == {"maker": "0.00100000", "taker": "0.00100000"}
    error = refused(paper.engine.test_order, "alice", {**params, "quantity": "0.000001"})
    assert (error.code, error.msg) == (-1013, "Filter failure: LOT_SIZE")

    assert paper.engine.ledger() == []
    assert paper.balance("BTC") == ("2.00000000", "0.00000000")
