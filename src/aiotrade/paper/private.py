"""The paper exchange's private (signed) REST endpoints, over the matching engine (signing: `paper.auth`).

Every answer of an order-placing endpoint (new order, both OCO endpoints) carries Binance's
`X-MBX-ORDER-COUNT-10S` and `-1D` headers once the key is known, refusals included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from aiotrade.paper.auth import PrivateApi
from aiotrade.paper.errors import BinanceError
from aiotrade.paper.responses import error_response, json_response
from aiotrade.paper.state import PAPER_STATE

Handler = Callable[[web.Request], Any]


def add_private_routes(app: web.Application) -> None:
    app.router.add_post("/api/v3/order", _new_order)
    app.router.add_post("/api/v3/order/test", _test_order)
    app.router.add_get("/api/v3/order", _get_order)
    app.router.add_delete("/api/v3/order", _cancel_order)
    app.router.add_get("/api/v3/openOrders", _open_orders)
    app.router.add_delete("/api/v3/openOrders", _cancel_open_orders)
    app.router.add_get("/api/v3/allOrders", _all_orders)
    app.router.add_get("/api/v3/myTrades", _my_trades)
    app.router.add_get("/api/v3/account", _account)
    app.router.add_get("/api/v3/rateLimit/order", _order_rate_limits)
    app.router.add_post("/api/v3/orderList/oco", _new_order_list_oco)
    app.router.add_post("/api/v3/order/oco", _new_order_oco)
    app.router.add_get("/api/v3/orderList", _get_order_list)
    app.router.add_delete("/api/v3/orderList", _cancel_order_list)
    app.router.add_get("/api/v3/openOrderList", _open_order_lists)
    app.router.add_get("/api/v3/allOrderList", _all_order_lists)
    app.router.add_get("/sapi/v1/account/apiRestrictions", _api_restrictions)


async def _signed(request: web.Request) -> tuple[PrivateApi, str, dict[str, str]]:
    state = request.app[PAPER_STATE]
    raw_body = (await request.text()) if request.can_read_body else ""
    api_key, params = state.private.authenticate(
        request.headers.get("X-MBX-APIKEY"), request.query_string, raw_body, state.clock()
    )
    return state.private, api_key, params


def _answer(call: Callable[[], object], headers: Callable[[], dict[str, str]] | None = None) -> web.Response:
    try:
        response = json_response(call())
    except BinanceError as error:
        response = error_response(error)
    if headers is not None:
        response.headers.update(headers())
    return response


# ----- orders --------------------------------------------------------------------------------------------------


async def _new_order(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _answer(lambda: api.engine.place(key, params), lambda: api.engine.order_count_headers(key))


async def _test_order(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _answer(lambda: api.engine.test_order(key, params))


async def _get_order(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _answer(
        lambda: api.engine.get(key, params.get("symbol", ""), params.get("orderId"), params.get("origClientOrderId"))
    )


async def _cancel_order(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _answer(
        lambda: api.engine.cancel(
            key,
            params.get("symbol", ""),
            params.get("orderId"),
            params.get("origClientOrderId"),
            params.get("newClientOrderId"),
        )
    )


async def _open_orders(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _answer(lambda: api.engine.open_orders(key, params.get("symbol")))


async def _cancel_open_orders(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _answer(lambda: api.engine.cancel_all(key, params.get("symbol", "")))


async def _all_orders(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _answer(
        lambda: api.engine.all_orders(
            key,
            params.get("symbol", ""),
            params.get("orderId"),
            params.get("startTime"),
            params.get("endTime"),
            params.get("limit") or 500,
        )
    )


async def _my_trades(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _answer(
        lambda: api.engine.my_trades(
            key,
            params.get("symbol", ""),
            params.get("orderId"),
            params.get("startTime"),
            params.get("endTime"),
            params.get("fromId"),
            params.get("limit") or 500,
        )
    )


# ----- order lists ---------------------------------------------------------------------------------------------


async def _new_order_list_oco(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _answer(lambda: api.engine.place_oco(key, params), lambda: api.engine.order_count_headers(key))


async def _new_order_oco(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _answer(lambda: api.engine.place_oco(key, params, legacy=True), lambda: api.engine.order_count_headers(key))


async def _get_order_list(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _answer(lambda: api.engine.get_order_list(key, params.get("orderListId"), params.get("origClientOrderId")))


async def _cancel_order_list(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _answer(
        lambda: api.engine.cancel_order_list(
            key,
            params.get("symbol", ""),
            params.get("orderListId"),
            params.get("listClientOrderId"),
            params.get("newClientOrderId"),
        )
    )


async def _open_order_lists(request: web.Request) -> web.Response:
    api, key, _ = await _signed(request)
    return _answer(lambda: api.engine.open_order_lists(key))


async def _all_order_lists(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    return _answer(
        lambda: api.engine.all_order_lists(
            key, params.get("fromId"), params.get("startTime"), params.get("endTime"), params.get("limit") or 500
        )
    )


# ----- account -------------------------------------------------------------------------------------------------


async def _account(request: web.Request) -> web.Response:
    api, key, params = await _signed(request)
    omit = params.get("omitZeroBalances", "false").lower() == "true"
    return _answer(lambda: api.engine.account(key, omit_zero_balances=omit))


async def _order_rate_limits(request: web.Request) -> web.Response:
    api, key, _ = await _signed(request)
    return _answer(lambda: api.engine.order_rate_limits(key))


async def _api_restrictions(request: web.Request) -> web.Response:
    api, key, _ = await _signed(request)
    return _answer(lambda: api.restrictions(key))
