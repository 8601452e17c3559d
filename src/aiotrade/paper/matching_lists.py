"""OCO parameters of both Binance endpoints, read into two leg orders and checked as Binance checks them.

`POST /api/v3/orderList/oco` names its legs by position (above and below the market); the deprecated
`POST /api/v3/order/oco` by role (a LIMIT_MAKER and a STOP_LOSS, or STOP_LOSS_LIMIT when `stopLimitPrice` is
sent). Both become an `OcoRequest`: the legs in the order Binance numbers them, checked against the last
traded price when the engine places them (`check_prices`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from aiotrade.paper.errors import mandatory, not_required, oco_error, order_rejected
from aiotrade.paper.matching_params import (
    OrderRequest,
    parse_client_id,
    parse_order_request,
    parse_resp_type,
    parse_symbol,
)
from aiotrade.paper.matching_types import SymbolFilters

_LEG_TYPES = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER"})
_STOP_LOSS = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT"})
_TAKE_PROFIT = frozenset({"TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
_WRONG_PRICES = "The relationship of the prices for the orders is not correct."
# The leg fields shared by both legs, and how each endpoint spells a leg's own fields.
_SHARED = ("symbol", "side", "quantity", "selfTradePreventionMode")
_LEG_FIELDS = ("type", "price", "stopPrice", "timeInForce", "newClientOrderId", "trailingDelta", "icebergQty")


@dataclass(frozen=True, slots=True)
class OcoRequest:
    """A well-formed OCO: `legs` in Binance's numbering order, `above` and `below` as they sit on the market."""

    rules: SymbolFilters
    side: str
    legs: tuple[OrderRequest, OrderRequest]
    above: OrderRequest
    below: OrderRequest
    list_client_order_id: str | None
    resp_type: str

    def check_prices(self, last: Decimal | None) -> None:
        """Binance's price rule: the above leg's price above the last trade, the below leg's beneath it.

        A LIMIT_MAKER leg is placed by its price, a stop leg by its stopPrice. No trade yet: nothing to check.
        """
        if last is not None and not _reference(self.below) < last < _reference(self.above):
            raise order_rejected(_WRONG_PRICES)


def parse_order_list_oco(params: Mapping[str, str], rules_for: Callable[[str], SymbolFilters | None]) -> OcoRequest:
    """POST /api/v3/orderList/oco: `above*` and `below*` legs, either of any OCO type Binance allows there."""
    rules, side = _common(params, rules_for)
    for position in ("above", "below"):
        if not params.get(f"{position}Type"):
            raise mandatory(f"{position}Type")
        if params[f"{position}Type"] not in _LEG_TYPES:
            raise oco_error(-1158)
    above_type, below_type = params["aboveType"], params["belowType"]
    _check_positions(side, above_type, below_type)
    above, below = _leg(params, rules_for, "above"), _leg(params, rules_for, "below")
    return OcoRequest(
        rules=rules,
        side=side,
        legs=(below, above),
        above=above,
        below=below,
        list_client_order_id=parse_client_id("listClientOrderId", params.get("listClientOrderId")),
        resp_type=parse_resp_type(params.get("newOrderRespType"), "FULL"),
    )


def parse_order_oco(params: Mapping[str, str], rules_for: Callable[[str], SymbolFilters | None]) -> OcoRequest:
    """POST /api/v3/order/oco (deprecated): a LIMIT_MAKER at `price` and a stop at `stopPrice`."""
    rules, side = _common(params, rules_for)
    if not params.get("price"):
        raise mandatory("price")
    if not params.get("stopPrice"):
        raise mandatory("stopPrice")
    limit_price, time_in_force = params.get("stopLimitPrice"), params.get("stopLimitTimeInForce")
    if limit_price and not time_in_force:
        raise mandatory("stopLimitTimeInForce")
    if time_in_force and not limit_price:
        raise not_required("stopLimitTimeInForce")
    limit = parse_order_request(
        {
            **_shared(params),
            "type": "LIMIT_MAKER",
            "price": params["price"],
            "newClientOrderId": params.get("limitClientOrderId", ""),
            "icebergQty": params.get("limitIcebergQty", ""),
        },
        rules_for,
        {"newClientOrderId": "limitClientOrderId", "icebergQty": "limitIcebergQty"},
    )
    stop = parse_order_request(
        {
            **_shared(params),
            "type": "STOP_LOSS_LIMIT" if limit_price else "STOP_LOSS",
            "stopPrice": params["stopPrice"],
            "price": limit_price or "",
            "timeInForce": time_in_force or "",
            "newClientOrderId": params.get("stopClientOrderId", ""),
            "trailingDelta": params.get("trailingDelta", ""),
            "icebergQty": params.get("stopIcebergQty", ""),
        },
        rules_for,
        {
            "price": "stopLimitPrice",
            "timeInForce": "stopLimitTimeInForce",
            "newClientOrderId": "stopClientOrderId",
            "icebergQty": "stopIcebergQty",
        },
    )
    above, below = (limit, stop) if side == "SELL" else (stop, limit)
    return OcoRequest(
        rules=rules,
        side=side,
        legs=(stop, limit),
        above=above,
        below=below,
        list_client_order_id=parse_client_id("listClientOrderId", params.get("listClientOrderId")),
        resp_type=parse_resp_type(params.get("newOrderRespType"), "RESULT"),
    )


def _common(params: Mapping[str, str], rules_for: Callable[[str], SymbolFilters | None]) -> tuple[SymbolFilters, str]:
    rules = parse_symbol(params.get("symbol"), rules_for)
    for name in ("side", "quantity"):
        if not params.get(name):
            raise mandatory(name)
    return rules, params["side"]


def _check_positions(side: str, above: str, below: str) -> None:
    """Which order types may sit above and below the market, per side, with Binance's codes."""
    if above == below == "LIMIT_MAKER":
        raise oco_error(-1168)
    if side == "SELL":
        if above in _STOP_LOSS:
            raise oco_error(-1197)
        if below == "LIMIT_MAKER":
            raise oco_error(-1166)
        if below in _TAKE_PROFIT:
            raise oco_error(-1199)
    elif side == "BUY":
        if above == "LIMIT_MAKER":
            raise oco_error(-1165)
        if above in _TAKE_PROFIT:
            raise oco_error(-1198)
        if below in _STOP_LOSS:
            raise oco_error(-1196)


def _leg(params: Mapping[str, str], rules_for: Callable[[str], SymbolFilters | None], position: str) -> OrderRequest:
    """One leg of orderList/oco: `abovePrice` is its `price`, `aboveClientOrderId` its `newClientOrderId`..."""
    names = {field: position + field[0].upper() + field[1:] for field in _LEG_FIELDS}
    names["newClientOrderId"] = f"{position}ClientOrderId"
    leg = {**_shared(params), **{field: params.get(names[field], "") for field in _LEG_FIELDS}}
    return parse_order_request(leg, rules_for, names)


def _shared(params: Mapping[str, str]) -> dict[str, str]:
    return {name: params.get(name, "") for name in _SHARED}


def _reference(leg: OrderRequest) -> Decimal:
    price = leg.price if leg.type == "LIMIT_MAKER" else leg.stop_price
    assert price is not None
    return price
