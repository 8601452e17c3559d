"""The paper matching engine speaks Binance Spot: fills, balances, errors and response shapes."""

from __future__ import annotations

import ccxt.async_support as ccxt
import pytest

from tests.paper.engine import BTCUSDT, ILLEGAL, LIMIT, MANDATORY, MARKET, T0, Paper, make_paper, refused


@pytest.fixture
def paper() -> Paper:
    return make_paper()


# -- market orders ----------------------------------------------------------------------------------


BTC_FEE = {"commissionAsset": "BTC"}


def test_market_buy_walks_levels_with_exact_balances_and_base_commission(paper: Paper) -> None:
    order = paper.place(side="BUY", type="MARKET", quantity="1.2")

    assert order["status"] == "FILLED"
    assert (order["origQty"], order["executedQty"]) == ("1.20000000", "1.20000000")
    assert order["cummulativeQuoteQty"] == "36007.00000000"  # 0.5 × 30000 + 0.7 × 30010
    assert order["fills"] == [
        {"price": "30000.00000000", "qty": "0.50000000", "commission": "0.00050000", **BTC_FEE, "tradeId": 1},
        {"price": "30010.00000000", "qty": "0.70000000", "commission": "0.00070000", **BTC_FEE, "tradeId": 2},
    ]
    assert paper.balance("USDT") == ("63993.00000000", "0.00000000")
    assert paper.balance("BTC") == ("3.19880000", "0.00000000")  # 2 + 1.2 - 0.0012
    trades = paper.engine.my_trades("alice", "BTCUSDT")
    assert [(t["id"], t["qty"], t["quoteQty"], t["isBuyer"], t["isMaker"]) for t in trades] == [
        (1, "0.50000000", "15000.00000000", True, False),
        (2, "0.70000000", "21007.00000000", True, False),
    ]


def test_quote_order_qty_buy_spends_at_most_the_quote_in_whole_steps(paper: Paper) -> None:
    order = paper.place(side="BUY", type="MARKET", quoteOrderQty="20000")

    # 15000 at 30000 buys 0.5; the other 5000 buys floor(5000 / 30010, 0.00001) = 0.16661 at 30010
    assert order["status"] == "FILLED"
    assert order["origQuoteOrderQty"] == "20000.00000000"
    assert order["origQty"] == order["executedQty"] == "0.66661000"
    assert order["cummulativeQuoteQty"] == "19999.96610000"
    assert paper.balance("USDT") == ("80000.03390000", "0.00000000")
    assert paper.balance("BTC") == ("2.66594339", "0.00000000")  # 2 + 0.66661 - 0.00066661


def test_market_sell_charges_commission_in_quote(paper: Paper) -> None:
    order = paper.place(side="SELL", type="MARKET", quantity="0.8")

    assert [(f["price"], f["qty"], f["commission"], f["commissionAsset"]) for f in order["fills"]] == [
        ("29990.00000000", "0.50000000", "14.99500000", "USDT"),
        ("29980.00000000", "0.30000000", "8.99400000", "USDT"),
    ]
    assert paper.balance("BTC") == ("1.20000000", "0.00000000")
    assert paper.balance("USDT") == ("123965.01100000", "0.00000000")  # + 23989 - 23.989


def test_market_order_expires_with_what_the_book_had(paper: Paper) -> None:
    order = paper.place("bob", side="SELL", type="MARKET", quantity="5")

    assert order["status"] == "EXPIRED"
    assert (order["origQty"], order["executedQty"]) == ("5.00000000", "3.50000000")
    assert paper.balance("BTC", "bob") == ("6.50000000", "0.00000000")  # the unsold 1.5 is unlocked


def test_market_order_on_an_empty_book_expires_untouched(paper: Paper) -> None:
    bids, _ = paper.market.books["BTCUSDT"]
    paper.market.books["BTCUSDT"] = (bids, [])

    order = paper.place(side="BUY", type="MARKET", quoteOrderQty="100")

    assert (order["status"], order["origQty"], order["executedQty"]) == ("EXPIRED", "0.00000000", "0.00000000")
    assert paper.balance("USDT") == ("100000.00000000", "0.00000000")


# -- limit orders -----------------------------------------------------------------------------------


def test_resting_limit_buy_locks_funds_and_fills_as_maker_when_price_crosses(paper: Paper) -> None:
    placed = paper.place(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price="29000")
    assert (placed["status"], placed["fills"]) == ("NEW", [])
    assert paper.balance("USDT") == ("97100.00000000", "2900.00000000")

    paper.cross("29500", "30500")
    assert paper.engine.get("alice", "BTCUSDT", order_id=placed["orderId"])["status"] == "NEW"
    paper.cross("28900", "29600")
    filled = paper.engine.get("alice", "BTCUSDT", order_id=placed["orderId"])

    assert filled["status"] == "FILLED"
    assert (filled["executedQty"], filled["cummulativeQuoteQty"]) == ("0.10000000", "2900.00000000")
    assert filled["updateTime"] == paper.clock.now
    assert paper.balance("USDT") == ("97100.00000000", "0.00000000")
    assert paper.balance("BTC") == ("2.09990000", "0.00000000")
    [trade] = paper.engine.my_trades("alice", "BTCUSDT")
    assert (trade["price"], trade["isMaker"], trade["time"]) == ("29000.00000000", True, paper.clock.now)
    # each range asked for starts where the previous one ended
    assert paper.market.range_calls == [("BTCUSDT", T0, T0 + 1_000), ("BTCUSDT", T0 + 1_000, T0 + 2_000)]


def test_touching_the_limit_price_fills_half_and_leaves_the_order_partially_filled(paper: Paper) -> None:
    placed = paper.place(side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.3", price="31000")
    assert paper.balance("BTC") == ("1.70000000", "0.30000000")

    paper.cross("30000", "31000")
    [resting] = paper.engine.open_orders("alice", "BTCUSDT")
    assert (resting["status"], resting["executedQty"]) == ("PARTIALLY_FILLED", "0.15000000")
    assert paper.balance("BTC") == ("1.70000000", "0.15000000")
    assert paper.balance("USDT") == ("104645.35000000", "0.00000000")  # + 4650 - 4.65

    paper.cross("30000", "31000.01")
    order = paper.engine.get("alice", "BTCUSDT", order_id=placed["orderId"])
    assert (order["status"], order["executedQty"]) == ("FILLED", "0.30000000")
    assert paper.engine.open_orders("alice") == []
    assert paper.balance("BTC") == ("1.70000000", "0.00000000")


def test_marketable_gtc_limit_takes_the_book_then_rests_its_remainder(paper: Paper) -> None:
    order = paper.place(side="BUY", type="LIMIT", timeInForce="GTC", quantity="2", price="30010")

    assert order["status"] == "PARTIALLY_FILLED"
    assert [(f["price"], f["qty"]) for f in order["fills"]] == [
        ("30000.00000000", "0.50000000"),
        ("30010.00000000", "1.00000000"),
    ]
    # locked 60020, spent 45010, keeps 0.5 × 30010: the 5 saved at the better level is free again
    assert paper.balance("USDT") == ("39985.00000000", "15005.00000000")
    assert paper.balance("BTC") == ("3.49850000", "0.00000000")


def test_ioc_fills_what_it_can_and_expires_the_rest(paper: Paper) -> None:
    order = paper.place(side="BUY", type="LIMIT", timeInForce="IOC", quantity="1", price="30000")

    assert (order["status"], order["executedQty"]) == ("EXPIRED", "0.50000000")
    assert paper.balance("USDT") == ("85000.00000000", "0.00000000")
    assert paper.engine.open_orders("alice") == []


def test_fok_fills_entirely_or_expires_with_nothing(paper: Paper) -> None:
    order = paper.place(side="BUY", type="LIMIT", timeInForce="FOK", quantity="1", price="30000")
    assert (order["status"], order["executedQty"], order["fills"]) == ("EXPIRED", "0.00000000", [])
    assert paper.balance("USDT") == ("100000.00000000", "0.00000000")
    assert paper.engine.my_trades("alice", "BTCUSDT") == []

    order = paper.place(side="BUY", type="LIMIT", timeInForce="FOK", quantity="0.4", price="30000")
    assert (order["status"], order["executedQty"]) == ("FILLED", "0.40000000")


def test_limit_maker_that_would_take_is_refused_with_2010(paper: Paper) -> None:
    error = refused(paper.place, side="BUY", type="LIMIT_MAKER", quantity="0.1", price="30000")
    assert (error.status, error.code, error.msg) == (400, -2010, "Order would immediately match and take.")
    assert paper.engine.ledger() == []


def test_cancel_unlocks_the_unfilled_part(paper: Paper) -> None:
    placed = paper.place(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.2", price="29000")
    paper.cross("29000", "29500")  # a touch: half fills
    cancelled = paper.engine.cancel("alice", "BTCUSDT", order_id=str(placed["orderId"]))

    assert cancelled["status"] == "CANCELED"
    assert cancelled["executedQty"] == "0.10000000"
    assert cancelled["origClientOrderId"] == placed["clientOrderId"]
    assert cancelled["clientOrderId"] != placed["clientOrderId"]  # the cancel's own id, as on Binance
    assert paper.balance("USDT") == ("97100.00000000", "0.00000000")  # only the filled 0.1 was spent
    assert paper.engine.get("alice", "BTCUSDT", order_id=placed["orderId"])["status"] == "CANCELED"
    assert refused(paper.engine.cancel, "alice", "BTCUSDT", order_id=placed["orderId"]).code == -2011


def test_cancel_all_cancels_only_the_accounts_open_orders_of_the_symbol(paper: Paper) -> None:
    for price in ("28000", "28500"):
        paper.place(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price=price)
    paper.place("bob", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price="28000")

    cancelled = paper.engine.cancel_all("alice", "BTCUSDT")

    assert [row["status"] for row in cancelled] == ["CANCELED", "CANCELED"]
    assert paper.balance("USDT") == ("100000.00000000", "0.00000000")
    assert len(paper.engine.open_orders("bob", "BTCUSDT")) == 1
    error = refused(paper.engine.cancel_all, "alice", "BTCUSDT")
    assert (error.code, error.msg) == (-2011, "Unknown order sent.")


def test_quote_amounts_round_down_and_buy_locks_round_up_on_fine_grained_symbols(paper: Paper) -> None:
    # 0.0021 × 0.05123 = 0.000107583: lock 0.00010759 BTC, pay 0.00010758 when filled
    placed = paper.engine.place(
        "bob",
        {"symbol": "ETHBTC", **LIMIT, "quantity": "0.0021", "price": "0.05123"},
    )
    assert paper.balance("BTC", "bob") == ("9.99989241", "0.00010759")
    paper.cross("0.05000", "0.05100")
    order = paper.engine.get("bob", "ETHBTC", order_id=placed["orderId"])

    assert (order["status"], order["cummulativeQuoteQty"]) == ("FILLED", "0.00010758")
    assert paper.balance("BTC", "bob") == ("9.99989242", "0.00000000")
    assert paper.balance("ETH", "bob") == ("5.00209790", "0.00000000")  # 0.0021 less 0.0000021


# -- client order ids, ledger -----------------------------------------------------------------------


def test_client_order_id_is_unique_only_among_open_orders(paper: Paper) -> None:
    resting = dict(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price="29000")
    first = paper.place(newClientOrderId="abc", **resting)
    error = refused(paper.place, newClientOrderId="abc", side="BUY", type="MARKET", quantity="0.1")
    assert (error.status, error.code, error.msg) == (400, -2010, "Duplicate order sent.")

    paper.engine.cancel("alice", "BTCUSDT", orig_client_order_id="abc")
    second = paper.place(newClientOrderId="abc", side="BUY", type="MARKET", quantity="0.1")
    third = paper.place(newClientOrderId="abc", side="BUY", type="MARKET", quantity="0.1")  # filled: reusable

    assert second["status"] == third["status"] == "FILLED"
    ledger = paper.engine.ledger()
    assert [row["clientOrderId"] for row in ledger].count("abc") == 3
    assert [row["orderId"] for row in ledger] == [first["orderId"], second["orderId"], third["orderId"]]
    assert all(row["apiKey"] == "alice" for row in ledger)
    latest = paper.engine.get("alice", "BTCUSDT", orig_client_order_id="abc")
    assert latest["orderId"] == third["orderId"]


def test_generated_client_ids_and_everything_else_repeat_run_to_run() -> None:
    def run() -> list[object]:
        paper = make_paper()
        out: list[object] = [paper.place(side="BUY", type="MARKET", quantity="0.7")]
        out.append(paper.place(side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.4", price="31000"))
        paper.cross("30000", "31000")
        out += [paper.engine.account("alice"), paper.engine.my_trades("alice", "BTCUSDT"), paper.engine.ledger()]
        return out

    assert run() == run()


# -- refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({**LIMIT, "price": "29000.005"}, "Filter failure: PRICE_FILTER"),
        ({**LIMIT, "price": "1000000.01"}, "Filter failure: PRICE_FILTER"),
        ({**LIMIT, "quantity": "0.000015"}, "Filter failure: LOT_SIZE"),
        ({**LIMIT, "quantity": "9000.1", "price": "1"}, "Filter failure: LOT_SIZE"),
        ({**MARKET, "quantity": "0.000001"}, "Filter failure: LOT_SIZE"),
        ({**MARKET, "quantity": "100.1"}, "Filter failure: MARKET_LOT_SIZE"),
        ({**LIMIT, "quantity": "0.0001"}, "Filter failure: NOTIONAL"),  # 2.9 < 5
        ({**MARKET, "quantity": "0.0001"}, "Filter failure: NOTIONAL"),  # 3.0 < 5
        ({"side": "BUY", "type": "MARKET", "quoteOrderQty": "4"}, "Filter failure: NOTIONAL"),
        ({"side": "BUY", "type": "MARKET", "quoteOrderQty": "0.1"}, "Filter failure: LOT_SIZE"),  # < 1 step
    ],
)
def test_filter_failures_answer_binance_code_1013(paper: Paper, params: dict[str, str], message: str) -> None:
    error = refused(paper.place, **params)

    assert (error.status, error.code, error.msg) == (400, -1013, message)
    assert paper.engine.ledger() == []
    assert paper.balance("USDT") == ("100000.00000000", "0.00000000")


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({**MARKET, "symbol": ""}, -1102, MANDATORY.format("symbol")),
        ({**MARKET, "symbol": "btc/usdt"}, -1100, ILLEGAL.format("symbol", "^[A-Z0-9-_.]{1,20}$")),
        ({**MARKET, "symbol": "DOGEEUR"}, -1121, "Invalid symbol."),
        ({**MARKET, "side": "HOLD"}, -1117, "Invalid side."),
        ({**MARKET, "type": "STOP"}, -1116, "Invalid orderType."),
        ({**LIMIT, "timeInForce": ""}, -1102, MANDATORY.format("timeInForce")),
        ({**LIMIT, "timeInForce": "GTD"}, -1115, "Invalid timeInForce."),
        ({**LIMIT, "price": ""}, -1102, MANDATORY.format("price")),
        ({**MARKET, "price": "30000"}, -1106, "Parameter 'price' sent when not required."),
        ({**MARKET, "timeInForce": "GTC"}, -1106, "Parameter 'timeInForce' sent when not required."),
        ({**MARKET, "quoteOrderQty": "100"}, -1106, "Parameter 'quoteOrderQty' sent when not required."),
        (
            {"side": "BUY", "type": "MARKET"},
            -1102,
            "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
        ),
        ({**MARKET, "quantity": "1e-3"}, -1100, ILLEGAL.format("quantity", r"^([0-9]{1,20})(\.[0-9]{1,20})?$")),
        ({**MARKET, "quantity": "0.000000001"}, -1111, "Parameter 'quantity' has too much precision."),
        (
            {**MARKET, "newClientOrderId": "not ok!"},
            -1100,
            ILLEGAL.format("newClientOrderId", r"^[\.A-Z\:/a-z0-9_-]{1,36}$"),
        ),
    ],
)
def test_malformed_orders_answer_binance_parameter_errors(
    paper: Paper, params: dict[str, str], code: int, message: str
) -> None:
    error = refused(paper.engine.place, "alice", {"symbol": "BTCUSDT", **params})

    assert (error.status, error.code, error.msg) == (400, code, message)
    assert error.body() == {"code": code, "msg": message}


def test_insufficient_balance_refuses_and_changes_nothing(paper: Paper) -> None:
    for params in (
        {**LIMIT, "quantity": "3.5"},  # 101500 USDT at 29000
        {"side": "SELL", "type": "MARKET", "quantity": "2.00001"},
        {"side": "BUY", "type": "MARKET", "quoteOrderQty": "100000.01"},
    ):
        error = refused(paper.place, **params)
        assert (error.code, error.msg) == (-2010, "Account has insufficient balance for requested action.")
    assert paper.engine.ledger() == []
    assert paper.balance("USDT") == ("100000.00000000", "0.00000000")
    assert paper.balance("BTC") == ("2.00000000", "0.00000000")


def test_unknown_orders_answer_2013_on_query_and_2011_on_cancel(paper: Paper) -> None:
    filled = paper.place(**MARKET)
    bobs = paper.place("bob", **LIMIT)

    for lookup in ({"order_id": 999}, {"orig_client_order_id": "nope"}, {"order_id": bobs["orderId"]}):
        error = refused(paper.engine.get, "alice", "BTCUSDT", **lookup)
        assert (error.status, error.code, error.msg) == (400, -2013, "Order does not exist.")
    # both ids sent: they must name the same order
    mismatch = {"order_id": filled["orderId"], "orig_client_order_id": "other"}
    assert refused(paper.engine.get, "alice", "BTCUSDT", **mismatch).code == -2013
    for lookup in ({"order_id": 999}, {"order_id": filled["orderId"]}):
        error = refused(paper.engine.cancel, "alice", "BTCUSDT", **lookup)
        assert (error.code, error.msg) == (-2011, "Unknown order sent.")
    assert refused(paper.engine.get, "alice", "BTCUSDT").code == -1102
    error = refused(paper.engine.get, "mallory", "BTCUSDT", order_id=1)
    assert (error.status, error.code) == (401, -2015)


# -- orders rate limit ------------------------------------------------------------------------------


def test_unfilled_orders_beyond_the_10s_limit_answer_429_until_the_next_window() -> None:
    paper = make_paper(orders_per_10s=3)
    for _ in range(3):
        paper.place(**LIMIT)
    paper.clock.now += 9_999

    error = refused(paper.place, **LIMIT)
    assert (error.status, error.code) == (429, -1015)
    assert error.msg == "Too many new orders; current limit is 3 orders per TEN_SECONDS."
    assert paper.engine.order_count_headers("alice") == {"X-MBX-ORDER-COUNT-10S": "3", "X-MBX-ORDER-COUNT-1D": "3"}
    paper.clock.now += 1
    paper.place(**LIMIT)
    assert len(paper.engine.ledger()) == 4


def test_filled_orders_give_back_their_count_as_on_binance_unless_disabled() -> None:
    paper = make_paper(orders_per_10s=2)
    for _ in range(5):
        paper.place(**MARKET)
    assert paper.engine.order_rate_limits("alice")[0]["count"] == 0

    strict = make_paper(orders_per_10s=2, fills_refund_order_count=False)
    strict.place(**MARKET)
    strict.place(**MARKET)
    assert refused(strict.place, **MARKET).code == -1015


def test_daily_order_limit_spans_the_10s_windows() -> None:
    paper = make_paper(orders_per_day=3)
    for _ in range(3):
        paper.place(**LIMIT)
        paper.clock.now += 10_000
    error = refused(paper.place, **LIMIT)
    assert error.msg == "Too many new orders; current limit is 3 orders per DAY."


# -- response shapes and history --------------------------------------------------------------------

ACK_KEYS = {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
RESULT_KEYS = ACK_KEYS | {
    "price", "origQty", "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty", "status", "timeInForce",
    "type", "side", "workingTime", "selfTradePreventionMode",
}  # fmt: skip


def test_new_order_response_types_have_binance_shapes(paper: Paper) -> None:
    assert set(paper.place(newOrderRespType="ACK", **MARKET)) == ACK_KEYS
    assert set(paper.place(newOrderRespType="RESULT", **MARKET)) == RESULT_KEYS
    assert set(paper.place(**MARKET)) == RESULT_KEYS | {"fills"}  # MARKET and LIMIT default to FULL
    assert set(paper.place(**LIMIT)) == RESULT_KEYS | {"fills"}
    maker = paper.place(side="BUY", type="LIMIT_MAKER", quantity="0.1", price="29000")  # other types: ACK
    assert set(maker) == ACK_KEYS
    order = paper.engine.get("alice", "BTCUSDT", order_id=maker["orderId"])
    assert (order["orderListId"], order["isWorking"], order["selfTradePreventionMode"]) == (-1, True, "EXPIRE_MAKER")
    assert {"time", "updateTime", "workingTime", "stopPrice", "icebergQty"} <= set(order)


def test_account_has_binance_fields(paper: Paper) -> None:
    account = paper.engine.account("alice")

    assert account["commissionRates"] == {
        "maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000", "seller": "0.00000000"
    }  # fmt: skip
    assert (account["makerCommission"], account["canTrade"], account["accountType"]) == (10, True, "SPOT")
    assert account["balances"] == [
        {"asset": "BTC", "free": "2.00000000", "locked": "0.00000000"},
        {"asset": "USDT", "free": "100000.00000000", "locked": "0.00000000"},
    ]


def test_all_orders_and_my_trades_page_like_binance(paper: Paper) -> None:
    ids = []
    for _ in range(4):
        ids.append(paper.place(**MARKET)["orderId"])
        paper.clock.now += 1_000

    assert [o["orderId"] for o in paper.engine.all_orders("alice", "BTCUSDT", limit=2)] == ids[2:]
    assert [o["orderId"] for o in paper.engine.all_orders("alice", "BTCUSDT", order_id=ids[1], limit=2)] == ids[1:3]
    since = paper.engine.all_orders("alice", "BTCUSDT", start_time=T0 + 1_000, end_time=T0 + 2_000)
    assert [o["orderId"] for o in since] == ids[1:3]
    trades = paper.engine.my_trades("alice", "BTCUSDT")
    assert [t["orderId"] for t in trades] == ids
    assert [t["id"] for t in paper.engine.my_trades("alice", "BTCUSDT", from_id=trades[2]["id"])] == [
        trades[2]["id"],
        trades[3]["id"],
    ]
    assert [t["orderId"] for t in paper.engine.my_trades("alice", "BTCUSDT", order_id=ids[0])] == ids[:1]
    error = refused(paper.engine.all_orders, "alice", "BTCUSDT", start_time=T0, end_time=T0 + 86_400_001)
    assert error.code == -1127


# -- through ccxt's own parser ----------------------------------------------------------------------


async def test_ccxt_binance_parses_engine_responses_into_the_right_unified_structures(paper: Paper) -> None:
    exchange = ccxt.binance({"timeout_on_exit": 0})
    try:
        exchange.options["crossMarginPairsData"] = []
        exchange.options["isolatedMarginPairsData"] = []
        listing = {
            "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "baseAssetPrecision": 8,
            "quoteAsset": "USDT", "quotePrecision": 8, "quoteAssetPrecision": 8, "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False, "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "permissions": [], "permissionSets": [["SPOT"]], "filters": BTCUSDT.binance_filters(),
        }  # fmt: skip
        exchange.set_markets([exchange.parse_market(listing)])
        market = exchange.market("BTC/USDT")
        assert market["limits"]["amount"] == {"min": 0.00001, "max": 9000.0}
        assert market["limits"]["cost"]["min"] == 5.0

        bought = exchange.parse_order(paper.place(side="BUY", type="MARKET", quantity="1.2"), market)
        assert (bought["status"], bought["type"], bought["side"]) == ("closed", "market", "buy")
        assert (bought["amount"], bought["filled"], bought["remaining"]) == (1.2, 1.2, 0.0)
        assert bought["cost"] == 36007.0
        assert bought["average"] == pytest.approx(36007 / 1.2)
        assert bought["fee"] == {"currency": "BTC", "cost": pytest.approx(0.0012)}
        assert [(t["id"], t["price"], t["amount"]) for t in bought["trades"]] == [
            ("1", 30000.0, 0.5),
            ("2", 30010.0, 0.7),
        ]

        placed = paper.place(side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.3", price="31000")
        paper.cross("30000", "31000")  # half fills
        partial = exchange.parse_order(paper.engine.get("alice", "BTCUSDT", order_id=placed["orderId"]), market)
        assert (partial["status"], partial["filled"], partial["remaining"]) == ("open", 0.15, 0.15)
        assert (partial["price"], partial["clientOrderId"]) == (31000.0, placed["clientOrderId"])
        assert partial["lastTradeTimestamp"] == paper.clock.now

        cancelled = exchange.parse_order(paper.engine.cancel("alice", "BTCUSDT", order_id=placed["orderId"]), market)
        assert (cancelled["status"], cancelled["filled"]) == ("canceled", 0.15)

        maker = exchange.parse_trade(paper.engine.my_trades("alice", "BTCUSDT")[-1], market)
        assert (maker["side"], maker["takerOrMaker"], maker["order"]) == ("sell", "maker", str(placed["orderId"]))
        assert (maker["cost"], maker["fee"]) == (4650.0, {"cost": 4.65, "currency": "USDT"})

        balance = exchange.parse_balance_custom(paper.engine.account("alice"), "spot")
        assert balance["BTC"] == {"free": pytest.approx(3.0488), "used": 0.0, "total": pytest.approx(3.0488)}
    finally:
        await exchange.close()
