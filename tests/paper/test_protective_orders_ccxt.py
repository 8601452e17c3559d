"""Protective orders and OCO end to end: an unmodified ccxt binance over HTTP against the paper exchange.

These pin the exact ccxt calls the order service uses:
- `create_order(symbol, "limit", side, amount, price, {"stopLossPrice": stop})` -> STOP_LOSS_LIMIT
- `... {"takeProfitPrice": stop}` -> TAKE_PROFIT_LIMIT, `... {"triggerPrice": stop}` -> STOP_LOSS_LIMIT
- `... {"postOnly": True}` -> LIMIT_MAKER
- `privatePostOrderListOco({...})` / `privatePostOrderOco({...})`, `privateGetOrderList`, `privateDeleteOrderList`,
  `privateGetOpenOrderList`, and `cancel_all_orders(symbol)`.
The market is the seeded synthetic one; `window` reads what it will trade, so each stop is placed where the
next hour's trades are known to reach (or not reach) it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import ROUND_DOWN, Decimal

import ccxt.async_support as ccxt
import pytest

from aiotrade.paper.config import PaperConfig
from aiotrade.paper.prices import MarketPrices
from aiotrade.paper.server import PaperExchange
from tests.paper.conftest import NOW, SEED, ManualClock, make_trader

HOUR = 3_600_000
TICK = Decimal("0.01")


@pytest.fixture
async def venue(clock: ManualClock) -> AsyncIterator[tuple[PaperExchange, ccxt.binance]]:
    async with PaperExchange(PaperConfig(port=0, seed=SEED), clock=clock) as paper:
        client = make_trader(paper.url, clock)
        try:
            await client.load_markets()
            yield paper, client
        finally:
            await client.close()


def window(paper: PaperExchange, hours: int = 1) -> tuple[Decimal, Decimal, Decimal]:
    """(last price now, low, high) of BTCUSDT over the next `hours`, from the market itself."""
    prices = MarketPrices(paper.market)
    last = prices.last_price("BTCUSDT", NOW)
    span = prices.price_range("BTCUSDT", NOW, NOW + hours * HOUR)
    assert last is not None and span is not None
    return last, *span


def between(a: Decimal, b: Decimal) -> float:
    return float(((a + b) / 2).quantize(TICK, rounding=ROUND_DOWN))


def on_venue(paper: PaperExchange, order_id: str) -> dict:
    [row] = [row for row in paper.engine.ledger() if str(row["orderId"]) == order_id]
    return row


async def test_stop_loss_price_on_a_limit_order_places_a_stop_loss_limit_that_triggers_and_fills(
    venue: tuple[PaperExchange, ccxt.binance], clock: ManualClock
) -> None:
    paper, binance = venue
    last, low, _ = window(paper)
    stop = between(last, low)  # the next hour falls through it
    order = await binance.create_order("BTC/USDT", "limit", "sell", 0.01, float(low) * 0.98, {"stopLossPrice": stop})

    assert (order["type"], order["status"], order["triggerPrice"]) == ("limit", "open", stop)
    assert on_venue(paper, order["id"])["type"] == "STOP_LOSS_LIMIT"
    assert binance.last_response_headers["X-MBX-ORDER-COUNT-10S"] == "1"
    assert (await binance.fetch_balance())["BTC"]["used"] == 0.01
    untriggered = await binance.fetch_order(order["id"], "BTC/USDT")
    assert (untriggered["status"], untriggered["info"]["isWorking"]) == ("open", False)

    clock.advance(HOUR)
    filled = await binance.fetch_order(order["id"], "BTC/USDT")
    assert (filled["status"], filled["filled"]) == ("closed", 0.01)
    [trade] = await binance.fetch_my_trades("BTC/USDT")
    assert trade["order"] == order["id"] and trade["takerOrMaker"] == "taker"
    assert [o["id"] for o in await binance.fetch_orders("BTC/USDT")] == [order["id"]]


async def test_take_profit_price_and_trigger_price_place_the_matching_stop_limits(
    venue: tuple[PaperExchange, ccxt.binance],
) -> None:
    paper, binance = venue
    last, _, high = window(paper)
    take_profit = await binance.create_order(
        "BTC/USDT", "limit", "sell", 0.01, float(high) * 1.01, {"takeProfitPrice": float(last) * 1.02}
    )
    trigger = await binance.create_order(
        "BTC/USDT", "limit", "buy", 0.01, float(last) * 1.03, {"triggerPrice": float(last) * 1.02}
    )

    assert (on_venue(paper, take_profit["id"])["type"], take_profit["takeProfitPrice"]) == (
        "TAKE_PROFIT_LIMIT",
        take_profit["triggerPrice"],
    )
    assert on_venue(paper, trigger["id"])["type"] == "STOP_LOSS_LIMIT"
    assert on_venue(paper, trigger["id"])["side"] == "BUY"
    open_ids = {o["id"] for o in await binance.fetch_open_orders("BTC/USDT")}
    assert open_ids == {take_profit["id"], trigger["id"]}
    cancelled = await binance.cancel_order(trigger["id"], "BTC/USDT")
    assert (cancelled["status"], cancelled["triggerPrice"]) == ("canceled", trigger["triggerPrice"])
    balance = await binance.fetch_balance()
    assert balance["USDT"]["used"] == 0 and balance["BTC"]["used"] == 0.01


async def test_post_only_places_a_limit_maker_and_one_that_would_take_is_refused_with_2010(
    venue: tuple[PaperExchange, ccxt.binance],
) -> None:
    paper, binance = venue
    last, _, _ = window(paper)
    resting = await binance.create_order("BTC/USDT", "limit", "buy", 0.01, float(last) * 0.9, {"postOnly": True})
    assert (resting["postOnly"], on_venue(paper, resting["id"])["type"]) == (True, "LIMIT_MAKER")

    with pytest.raises(ccxt.OrderImmediatelyFillable):  # ccxt's InvalidOrder for exactly this message
        await binance.create_order("BTC/USDT", "limit", "buy", 0.01, float(last) * 1.1, {"postOnly": True})
    assert binance.last_http_response == '{"code":-2010,"msg":"Order would immediately match and take."}'
    assert len(paper.engine.ledger()) == 1


async def test_a_stop_that_would_trigger_immediately_is_refused_through_ccxt(
    venue: tuple[PaperExchange, ccxt.binance],
) -> None:
    paper, binance = venue
    last, _, _ = window(paper)
    with pytest.raises(ccxt.InvalidOrder, match=r"Order would trigger immediately\."):
        await binance.create_order(
            "BTC/USDT", "limit", "sell", 0.01, float(last), {"stopLossPrice": float(last) * 1.01}
        )
    assert binance.last_http_response == '{"code":-2010,"msg":"Order would trigger immediately."}'
    assert paper.engine.ledger() == []


async def test_an_oco_through_order_list_oco_rests_is_queried_and_cancelled(
    venue: tuple[PaperExchange, ccxt.binance],
) -> None:
    paper, binance = venue
    last, _, _ = window(paper)
    placed = await binance.privatePostOrderListOco(
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "quantity": "0.01",
            "aboveType": "LIMIT_MAKER",
            "abovePrice": f"{last * Decimal('1.1'):.2f}",
            "belowType": "STOP_LOSS_LIMIT",
            "belowStopPrice": f"{last * Decimal('0.9'):.2f}",
            "belowPrice": f"{last * Decimal('0.89'):.2f}",
            "belowTimeInForce": "GTC",
        }
    )
    list_id = placed["orderListId"]
    assert (placed["listStatusType"], len(placed["orderReports"])) == ("EXEC_STARTED", 2)
    assert placed["listClientOrderId"].startswith("x-")  # ccxt names the list and both legs itself
    legs = await binance.fetch_open_orders("BTC/USDT")
    assert sorted(o["info"]["type"] for o in legs) == ["LIMIT_MAKER", "STOP_LOSS_LIMIT"]
    assert {o["info"]["orderListId"] for o in legs} == {list_id}
    assert (await binance.fetch_balance())["BTC"]["used"] == 0.01  # one lock for both legs
    assert (await binance.privateGetOrderList({"orderListId": list_id}))["listOrderStatus"] == "EXECUTING"
    assert [found["orderListId"] for found in await binance.privateGetOpenOrderList()] == [list_id]

    cancelled = await binance.privateDeleteOrderList({"symbol": "BTCUSDT", "orderListId": list_id})
    assert [r["status"] for r in cancelled["orderReports"]] == ["CANCELED", "CANCELED"]
    assert await binance.fetch_open_orders("BTC/USDT") == []
    assert (await binance.fetch_balance())["BTC"]["used"] == 0


async def test_an_oco_through_the_deprecated_endpoint_expires_its_other_leg_when_one_acts(
    venue: tuple[PaperExchange, ccxt.binance], clock: ManualClock
) -> None:
    paper, binance = venue
    last, low, high = window(paper)
    placed = await binance.privatePostOrderOco(
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "quantity": "0.01",
            "price": f"{high * 2:.2f}",  # never reached
            "stopPrice": f"{between(last, low):.2f}",  # reached within the hour
            "stopLimitPrice": f"{low * Decimal('0.98'):.2f}",
            "stopLimitTimeInForce": "GTC",
        }
    )
    assert [r["type"] for r in placed["orderReports"]] == ["STOP_LOSS_LIMIT", "LIMIT_MAKER"]

    clock.advance(HOUR)
    by_type = {o["info"]["type"]: o for o in await binance.fetch_orders("BTC/USDT")}
    assert (by_type["STOP_LOSS_LIMIT"]["status"], by_type["LIMIT_MAKER"]["status"]) == ("closed", "expired")
    assert (await binance.privateGetOrderList({"orderListId": placed["orderListId"]}))["listOrderStatus"] == "ALL_DONE"
    assert (await binance.fetch_balance())["BTC"] == {"free": 0.99, "used": 0.0, "total": 0.99}


async def test_cancel_all_orders_cancels_every_open_order_of_the_symbol_in_binances_shape(
    venue: tuple[PaperExchange, ccxt.binance],
) -> None:
    paper, binance = venue
    last, _, _ = window(paper)
    for factor in (0.9, 0.8):
        await binance.create_order("BTC/USDT", "limit", "buy", 0.01, float(last) * factor)
    await binance.create_order("ETH/USDT", "limit", "buy", 0.1, 100.0)
    await binance.create_order(
        "BTC/USDT", "limit", "sell", 0.01, float(last) * 0.9, {"stopLossPrice": float(last) * 0.95}
    )

    cancelled = await binance.cancel_all_orders("BTC/USDT")
    assert [o["status"] for o in cancelled] == ["canceled"] * 3
    assert [o["info"]["type"] for o in cancelled] == ["LIMIT", "LIMIT", "STOP_LOSS_LIMIT"]
    assert await binance.fetch_open_orders("BTC/USDT") == []
    assert len(await binance.fetch_open_orders("ETH/USDT")) == 1  # another symbol is left alone
    with pytest.raises(ccxt.OrderNotFound, match="-2011"):  # Binance: nothing to cancel is an error
        await binance.cancel_all_orders("BTC/USDT")
