"""OCO order lists in the matching engine: both Binance endpoints, one lock, the first leg to act expires the other.

Book of the fake market: bids 29990 (0.5), 29980 (1), 29970 (2); asks 30000 (0.5), 30010 (1), 30020 (2);
last trade 29995. Alice holds 100000 USDT and 2 BTC.
"""

from __future__ import annotations

import pytest

from tests.paper.engine import Paper, make_paper, refused

SELL_OCO = {
    "side": "SELL",
    "quantity": "0.5",
    "aboveType": "LIMIT_MAKER",
    "abovePrice": "31000",
    "belowType": "STOP_LOSS_LIMIT",
    "belowStopPrice": "29000",
    "belowPrice": "28900",
    "belowTimeInForce": "GTC",
}
BUY_OCO = {
    "side": "BUY",
    "quantity": "0.1",
    "aboveType": "STOP_LOSS_LIMIT",
    "aboveStopPrice": "31000",
    "abovePrice": "31100",
    "aboveTimeInForce": "GTC",
    "belowType": "LIMIT_MAKER",
    "belowPrice": "29000",
}
WRONG_PRICES = "The relationship of the prices for the orders is not correct."


@pytest.fixture
def paper() -> Paper:
    return make_paper()


def legs(paper: Paper, answer: dict) -> tuple[dict, dict]:
    """The (stop, limit) legs of a placed list as GET /api/v3/order shows them now."""
    first, second = (paper.order(o["orderId"]) for o in answer["orders"])
    return (first, second) if first["type"] != "LIMIT_MAKER" else (second, first)


def test_a_sell_oco_rests_both_legs_and_locks_its_quantity_once(paper: Paper) -> None:
    placed = paper.oco(**SELL_OCO, listClientOrderId="my-list")

    assert (placed["orderListId"], placed["contingencyType"], placed["listClientOrderId"]) == (0, "OCO", "my-list")
    assert (placed["listStatusType"], placed["listOrderStatus"]) == ("EXEC_STARTED", "EXECUTING")
    below, above = placed["orderReports"]  # Binance numbers the below leg first
    assert (below["type"], below["status"], below["stopPrice"], below["workingTime"]) == (
        "STOP_LOSS_LIMIT",
        "NEW",
        "29000.00000000",
        -1,
    )
    assert (above["type"], above["price"], above["workingTime"]) == ("LIMIT_MAKER", "31000.00000000", paper.clock.now)
    assert below["fills"] == above["fills"] == []  # FULL answers by default
    assert [o["orderId"] for o in placed["orders"]] == [below["orderId"], above["orderId"]]
    assert paper.balance("BTC") == ("1.50000000", "0.50000000")  # one lock for both legs
    assert [o["orderListId"] for o in paper.engine.open_orders("alice", "BTCUSDT")] == [0, 0]
    assert [found["orderListId"] for found in paper.engine.open_order_lists("alice")] == [0]
    assert paper.engine.order_count_headers("alice") == {"X-MBX-ORDER-COUNT-10S": "2", "X-MBX-ORDER-COUNT-1D": "2"}


def test_when_the_limit_leg_fills_the_stop_leg_expires(paper: Paper) -> None:
    placed = paper.oco(**SELL_OCO)
    paper.cross("30000", "31500")

    stop, limit = legs(paper, placed)
    assert (limit["status"], stop["status"]) == ("FILLED", "EXPIRED")
    found = paper.engine.get_order_list("alice", order_list_id=placed["orderListId"])
    assert (found["listStatusType"], found["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert paper.engine.open_order_lists("alice") == []
    assert paper.balance("BTC") == ("1.50000000", "0.00000000")
    assert paper.balance("USDT") == ("115484.50000000", "0.00000000")  # 0.5 x 31000 less 0.1 %
    [trade] = paper.engine.my_trades("alice", "BTCUSDT")
    assert (trade["orderListId"], trade["isMaker"]) == (0, True)


def test_when_the_stop_leg_triggers_the_limit_leg_expires(paper: Paper) -> None:
    placed = paper.oco(**SELL_OCO)
    paper.cross("28950", "29500")

    stop, limit = legs(paper, placed)
    assert (stop["status"], stop["isWorking"], limit["status"]) == ("FILLED", True, "EXPIRED")
    assert paper.balance("BTC") == ("1.50000000", "0.00000000")
    assert paper.balance("USDT") == ("114980.00500000", "0.00000000")  # the stop sold at the 29990 bid


@pytest.mark.parametrize(
    ("tape", "winner"),
    [
        (((200, "28950"), (700, "31500")), "STOP_LOSS_LIMIT"),  # the fall came first
        (((200, "31500"), (700, "28950")), "LIMIT_MAKER"),  # the rise came first
    ],
)
def test_when_both_legs_are_reached_in_one_range_the_first_on_the_tape_wins(
    paper: Paper, tape: tuple[tuple[int, str], ...], winner: str
) -> None:
    placed = paper.oco(**SELL_OCO)
    paper.trade(*tape)

    stop, limit = legs(paper, placed)
    statuses = {stop["type"]: stop["status"], limit["type"]: limit["status"]}
    assert statuses[winner] == "FILLED"
    assert sorted(statuses.values()) == ["EXPIRED", "FILLED"]
    assert len(paper.engine.my_trades("alice", "BTCUSDT")) == 1


def test_a_buy_oco_locks_its_larger_leg_and_frees_the_rest_when_one_leg_acts(paper: Paper) -> None:
    placed = paper.oco(**BUY_OCO)
    assert paper.balance("USDT") == ("96890.00000000", "3110.00000000")  # the stop-limit's 0.1 x 31100

    paper.cross("28900", "29500")
    stop, limit = legs(paper, placed)
    assert (limit["status"], stop["status"]) == ("FILLED", "EXPIRED")
    assert paper.balance("USDT") == ("97100.00000000", "0.00000000")  # paid 2900, the other 210 back
    assert paper.balance("BTC") == ("2.09990000", "0.00000000")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"aboveType": "STOP_LOSS_LIMIT"}, -1197),  # a sell stop-loss must be below
        ({"aboveType": "TAKE_PROFIT_LIMIT", "belowType": "LIMIT_MAKER"}, -1166),  # a sell limit must be above
        ({"belowType": "TAKE_PROFIT_LIMIT"}, -1199),  # a sell take-profit must be above
        ({"aboveType": "LIMIT"}, -1158),  # not an OCO order type
        ({"belowType": "LIMIT_MAKER"}, -1168),  # two limits: nothing contingent
        ({"side": "BUY", "aboveType": "LIMIT_MAKER"}, -1165),
        ({"side": "BUY", "aboveType": "TAKE_PROFIT_LIMIT"}, -1198),
        ({"side": "BUY", "aboveType": "STOP_LOSS_LIMIT", "belowType": "STOP_LOSS"}, -1196),
    ],
)
def test_oco_legs_in_the_wrong_place_are_refused_with_binances_codes(
    paper: Paper, changes: dict[str, str], code: int
) -> None:
    error = refused(paper.oco, **{**SELL_OCO, **changes})
    assert error.code == code
    assert paper.engine.ledger() == []


@pytest.mark.parametrize(
    "changes",
    [
        {"abovePrice": "29900"},  # the limit sits below the last price (29995)
        {"belowStopPrice": "30000", "belowPrice": "30000"},  # the stop sits above it
    ],
)
def test_oco_prices_on_the_wrong_side_of_the_last_price_are_refused(paper: Paper, changes: dict[str, str]) -> None:
    error = refused(paper.oco, **{**SELL_OCO, **changes})
    assert (error.code, error.msg) == (-2010, WRONG_PRICES)
    assert paper.balance("BTC") == ("2.00000000", "0.00000000")


@pytest.mark.parametrize(
    ("missing", "name"),
    [("aboveType", "aboveType"), ("belowTimeInForce", "belowTimeInForce"), ("belowPrice", "belowPrice")],
)
def test_oco_parameters_are_named_as_the_endpoint_names_them(paper: Paper, missing: str, name: str) -> None:
    params = {k: v for k, v in SELL_OCO.items() if k != missing}
    error = refused(paper.oco, **params)
    assert (error.code, error.msg) == (
        -1102,
        f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
    )


def test_cancelling_the_list_cancels_both_legs_and_unlocks(paper: Paper) -> None:
    placed = paper.oco(**SELL_OCO)
    cancelled = paper.engine.cancel_order_list("alice", "BTCUSDT", order_list_id=placed["orderListId"])

    assert (cancelled["listStatusType"], cancelled["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert [r["status"] for r in cancelled["orderReports"]] == ["CANCELED", "CANCELED"]
    assert [r["origClientOrderId"] for r in cancelled["orderReports"]] == [o["clientOrderId"] for o in placed["orders"]]
    assert paper.balance("BTC") == ("2.00000000", "0.00000000")
    again = refused(paper.engine.cancel_order_list, "alice", "BTCUSDT", order_list_id=placed["orderListId"])
    assert (again.code, again.msg) == (-2011, "Unknown order list sent.")
    missing = refused(paper.engine.get_order_list, "alice", order_list_id=99)
    assert (missing.code, missing.msg) == (-2013, "Order list does not exist.")


def test_cancelling_one_leg_cancels_the_whole_list(paper: Paper) -> None:
    placed = paper.oco(**SELL_OCO)
    cancelled = paper.engine.cancel("alice", "BTCUSDT", order_id=placed["orders"][1]["orderId"])

    assert (cancelled["status"], cancelled["orderListId"]) == ("CANCELED", 0)
    assert [leg["status"] for leg in legs(paper, placed)] == ["CANCELED", "CANCELED"]
    assert paper.balance("BTC") == ("2.00000000", "0.00000000")


def test_cancel_all_answers_single_orders_then_each_list(paper: Paper) -> None:
    single = paper.place(side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price="29000")
    placed = paper.oco(**SELL_OCO)

    answer = paper.engine.cancel_all("alice", "BTCUSDT")
    assert [row.get("orderId") for row in answer] == [single["orderId"], None]
    assert answer[1]["orderListId"] == placed["orderListId"]
    assert [r["status"] for r in answer[1]["orderReports"]] == ["CANCELED", "CANCELED"]
    assert paper.balance("BTC") == ("2.00000000", "0.00000000")
    assert paper.balance("USDT") == ("100000.00000000", "0.00000000")


def test_the_deprecated_endpoint_places_a_stop_and_a_limit_maker(paper: Paper) -> None:
    legacy = {"side": "SELL", "quantity": "0.5", "price": "31000", "stopPrice": "29000"}
    with_limit = paper.oco(legacy=True, **legacy, stopLimitPrice="28900", stopLimitTimeInForce="GTC")
    assert [r["type"] for r in with_limit["orderReports"]] == ["STOP_LOSS_LIMIT", "LIMIT_MAKER"]
    assert "fills" not in with_limit["orderReports"][0]  # RESULT answers by default there
    plain = paper.oco(legacy=True, **legacy)
    assert [r["type"] for r in plain["orderReports"]] == ["STOP_LOSS", "LIMIT_MAKER"]
    assert paper.balance("BTC") == ("1.00000000", "1.00000000")

    error = refused(paper.oco, legacy=True, **legacy, stopLimitPrice="28900")
    assert error.msg == "Mandatory parameter 'stopLimitTimeInForce' was not sent, was empty/null, or malformed."
    error = refused(paper.oco, legacy=True, **{**legacy, "price": "29900"})
    assert (error.code, error.msg) == (-2010, WRONG_PRICES)


def test_a_list_client_order_id_is_unique_among_open_lists(paper: Paper) -> None:
    paper.oco(**SELL_OCO, listClientOrderId="twice")
    error = refused(paper.oco, **SELL_OCO, listClientOrderId="twice")
    assert (error.code, error.msg) == (-2010, "Duplicate order sent.")

    paper.engine.cancel_order_list("alice", "BTCUSDT", list_client_order_id="twice")
    again = paper.oco(**SELL_OCO, listClientOrderId="twice")
    assert paper.engine.get_order_list("alice", orig_client_order_id="twice")["orderListId"] == again["orderListId"]


def test_an_oco_counts_two_orders_against_the_rate_limit_and_the_algo_filter() -> None:
    paper = make_paper(orders_per_10s=3)
    paper.oco(**SELL_OCO)
    error = refused(paper.oco, **SELL_OCO)
    assert (error.status, error.code) == (429, -1015)

    roomy = make_paper()
    for _ in range(5):  # five stop legs: MAX_NUM_ALGO_ORDERS is full
        roomy.oco(**{**SELL_OCO, "quantity": "0.1"})
    error = refused(roomy.oco, **{**SELL_OCO, "quantity": "0.1"})
    assert (error.code, error.msg) == (-2010, "Filter failure: MAX_NUM_ALGO_ORDERS")


def test_all_order_lists_page_like_binance(paper: Paper) -> None:
    ids = [paper.oco(**{**SELL_OCO, "quantity": "0.1"})["orderListId"] for _ in range(3)]
    paper.engine.cancel_order_list("alice", "BTCUSDT", order_list_id=ids[0])

    assert [found["orderListId"] for found in paper.engine.all_order_lists("alice")] == ids
    assert [found["orderListId"] for found in paper.engine.all_order_lists("alice", from_id=ids[1])] == ids[1:]
    assert [found["orderListId"] for found in paper.engine.all_order_lists("alice", limit=1)] == ids[2:]
    assert [found["orderListId"] for found in paper.engine.open_order_lists("alice")] == ids[1:]
    assert paper.engine.all_order_lists("bob") == []
