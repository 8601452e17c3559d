"""Order parameters, read and checked as Binance does, before any book or balance is seen."""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from aiotrade.paper.errors import (
    BinanceError,
    either_param,
    filter_failure,
    illegal_chars,
    invalid_symbol,
    mandatory,
    not_required,
    order_rejected,
    too_much_precision,
)
from aiotrade.paper.matching_types import SymbolFilters, decimals

SYMBOL_RE = re.compile(r"^[A-Z0-9-_.]{1,20}$")
SYMBOL_LEGAL = "^[A-Z0-9-_.]{1,20}$"
CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
CLIENT_ID_LEGAL = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"
NUMBER_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
NUMBER_LEGAL = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
ID_RE = re.compile(r"^[0-9]{1,20}$")
DAY_MS = 86_400_000
MAX_LIMIT = 1000
_ALPHABET = string.digits + string.ascii_letters

SIDES = frozenset({"BUY", "SELL"})
STOP_MARKET_TYPES = frozenset({"STOP_LOSS", "TAKE_PROFIT"})
STOP_LIMIT_TYPES = frozenset({"STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"})
STOP_TYPES = STOP_MARKET_TYPES | STOP_LIMIT_TYPES  # Binance's "algo" orders
LIMIT_TYPES = frozenset({"LIMIT"}) | STOP_LIMIT_TYPES  # those that take timeInForce
TYPES = frozenset({"MARKET", "LIMIT", "LIMIT_MAKER"}) | STOP_TYPES
TIME_IN_FORCES = frozenset({"GTC", "IOC", "FOK"})
RESP_TYPES = ("ACK", "RESULT", "FULL")
STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")
# What the paper listing does not enable, refused with Binance's message for a symbol without it.
_UNSUPPORTED = {
    "trailingDelta": "Trailing stop orders are not supported for this symbol.",
    "icebergQty": "Iceberg orders are not supported for this symbol.",
    "pegPriceType": "Pegged orders are not supported for this symbol.",
}


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A well-formed order that passed every filter that needs no book."""

    rules: SymbolFilters
    side: str
    type: str
    time_in_force: str
    quantity: Decimal | None  # None: a MARKET order by quoteOrderQty
    quote_qty: Decimal | None
    price: Decimal | None  # None for MARKET, STOP_LOSS and TAKE_PROFIT
    stop_price: Decimal | None  # the trigger of the four stop types, None otherwise
    client_order_id: str | None
    resp_type: str
    stp_mode: str

    @property
    def is_stop(self) -> bool:
        return self.type in STOP_TYPES

    @property
    def executes_as_market(self) -> bool:
        """MARKET, and the stop types that send a MARKET order when triggered."""
        return self.type == "MARKET" or self.type in STOP_MARKET_TYPES


def parse_symbol(value: str | None, rules_for: Callable[[str], SymbolFilters | None]) -> SymbolFilters:
    if not value:
        raise mandatory("symbol")
    if not SYMBOL_RE.match(value):
        raise illegal_chars("symbol", SYMBOL_LEGAL)
    rules = rules_for(value)
    if rules is None:
        raise invalid_symbol()
    return rules


def parse_id(name: str, value: int | str | None) -> int | None:
    """An integer parameter (orderId, fromId, startTime, ...), None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    if not ID_RE.match(value):
        raise illegal_chars(name, "^[0-9]{1,20}$")
    return int(value)


def parse_client_id(name: str, value: str | None) -> str | None:
    """A client order id (newClientOrderId, listClientOrderId, ...): None when absent, else Binance's pattern."""
    if not value:
        return None
    if not CLIENT_ID_RE.match(value):
        raise illegal_chars(name, CLIENT_ID_LEGAL)
    return value


def generated_id(seed: str) -> str:
    """A client order id in Binance's style (22 alphanumerics), derived from `seed` so runs repeat."""
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:17], "big")
    chars = []
    for _ in range(22):
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return "".join(chars)


def time_window(start_time: int | str | None, end_time: int | str | None) -> tuple[int | None, int | None]:
    """startTime and endTime of a history query; Binance refuses a window longer than a day."""
    start, end = parse_id("startTime", start_time), parse_id("endTime", end_time)
    if start is not None and end is not None and end - start > DAY_MS:
        raise BinanceError(-1127, "More than 24 hours between startTime and endTime.")
    return start, end


def parse_limit(limit: int | str | None) -> int:
    """A history query's `limit`: 500 by default, at most 1000."""
    value = parse_id("limit", limit)
    return 500 if value is None else max(1, min(value, MAX_LIMIT))


def parse_resp_type(value: str | None, default: str) -> str:
    resp_type = value or default
    if resp_type not in RESP_TYPES:
        raise illegal_chars("newOrderRespType", ", ".join(RESP_TYPES))
    return resp_type


def parse_order_request(
    params: Mapping[str, str],
    rules_for: Callable[[str], SymbolFilters | None],
    names: Mapping[str, str] | None = None,
) -> OrderRequest:
    """Read an order's parameters; raise Binance's error for the first thing wrong.

    `names` renames parameters in error messages (an OCO leg's `price` is sent as `abovePrice`, ...).
    """
    name = (lambda key: names.get(key, key)) if names else (lambda key: key)
    rules = parse_symbol(params.get("symbol"), rules_for)
    side = _required(params, "side")
    if side not in SIDES:
        raise BinanceError(-1117, "Invalid side.")
    order_type = _required(params, "type", name("type"))
    if order_type not in TYPES:
        raise BinanceError(-1116, "Invalid orderType.")
    for key, refusal in _UNSUPPORTED.items():
        if params.get(key):
            raise order_rejected(refusal)

    time_in_force = params.get("timeInForce") or None
    if order_type in LIMIT_TYPES:
        if time_in_force is None:
            raise mandatory(name("timeInForce"))
        if time_in_force not in TIME_IN_FORCES:
            raise BinanceError(-1115, "Invalid timeInForce.")
    elif time_in_force is not None:
        raise not_required(name("timeInForce"))

    quantity = _number(params, "quantity", rules.base_asset_precision, name)
    quote_qty = _number(params, "quoteOrderQty", rules.quote_asset_precision, name)
    price = _number(params, "price", rules.quote_asset_precision, name)
    stop_price = _number(params, "stopPrice", rules.quote_asset_precision, name)
    if order_type == "MARKET":
        if price is not None:
            raise not_required(name("price"))
        if quantity is None and quote_qty is None:
            raise either_param("quantity", "quoteOrderQty")
        if quantity is not None and quote_qty is not None:
            raise not_required("quoteOrderQty")
    else:
        if quantity is None:
            raise mandatory(name("quantity"))
        if order_type in STOP_MARKET_TYPES:
            if price is not None:
                raise not_required(name("price"))
        elif price is None:
            raise mandatory(name("price"))
        if quote_qty is not None:
            raise not_required("quoteOrderQty")
    if order_type in STOP_TYPES:
        if stop_price is None:
            raise mandatory(name("stopPrice"))
    elif stop_price is not None:
        raise not_required(name("stopPrice"))

    client_order_id = parse_client_id(name("newClientOrderId"), params.get("newClientOrderId"))
    # Binance: MARKET and LIMIT answer FULL by default, every other type ACK
    resp_type = parse_resp_type(params.get("newOrderRespType"), "FULL" if order_type in ("MARKET", "LIMIT") else "ACK")
    stp_mode = params.get("selfTradePreventionMode") or "EXPIRE_MAKER"
    if stp_mode not in STP_MODES:
        raise illegal_chars("selfTradePreventionMode", ", ".join(STP_MODES))

    request = OrderRequest(
        rules=rules,
        side=side,
        type=order_type,
        time_in_force=time_in_force or "GTC",
        quantity=quantity,
        quote_qty=quote_qty,
        price=price,
        stop_price=stop_price,
        client_order_id=client_order_id,
        resp_type=resp_type,
        stp_mode=stp_mode,
    )
    _check_static_filters(request)
    return request


def check_market_filters(request: OrderRequest, quantity: Decimal, notional: Decimal) -> None:
    """The filters of a MARKET order that need the book: its quantity (computed from quoteOrderQty when
    sent that way) against LOT_SIZE and MARKET_LOT_SIZE, its notional against NOTIONAL."""
    rules = request.rules
    if request.quantity is None:
        _check_lot("LOT_SIZE", quantity, rules.min_qty, rules.max_qty, rules.step_size)
        _check_lot("MARKET_LOT_SIZE", quantity, rules.market_min_qty, rules.market_max_qty, rules.market_step_size)
    _check_market_notional(rules, notional)


def _check_static_filters(request: OrderRequest) -> None:
    rules = request.rules
    for price in (request.price, request.stop_price):  # PRICE_FILTER bounds stopPrice as it does price
        if price is not None and (
            (rules.min_price and price < rules.min_price)
            or (rules.max_price and price > rules.max_price)
            or price % rules.tick_size
        ):
            raise filter_failure("PRICE_FILTER")
    if request.quantity is not None:
        _check_lot("LOT_SIZE", request.quantity, rules.min_qty, rules.max_qty, rules.step_size)
        if request.executes_as_market:
            _check_lot(
                "MARKET_LOT_SIZE",
                request.quantity,
                rules.market_min_qty,
                rules.market_max_qty,
                rules.market_step_size,
            )
    if request.price is not None and request.quantity is not None:
        notional = request.price * request.quantity
        if notional < rules.min_notional or (rules.max_notional and notional > rules.max_notional):
            raise filter_failure("NOTIONAL")
    elif request.type in STOP_MARKET_TYPES:
        # a stop that sends a MARKET order is valued at its trigger, the price it will trade near
        assert request.stop_price is not None and request.quantity is not None
        _check_market_notional(rules, request.stop_price * request.quantity)


def _check_market_notional(rules: SymbolFilters, notional: Decimal) -> None:
    if rules.apply_min_to_market and notional < rules.min_notional:
        raise filter_failure("NOTIONAL")
    if rules.apply_max_to_market and rules.max_notional and notional > rules.max_notional:
        raise filter_failure("NOTIONAL")


def _check_lot(name: str, qty: Decimal, min_qty: Decimal, max_qty: Decimal, step: Decimal) -> None:
    if qty < min_qty or (max_qty and qty > max_qty) or (step and qty % step) or qty <= 0:
        raise filter_failure(name)


def _required(params: Mapping[str, str], key: str, shown: str | None = None) -> str:
    value = params.get(key)
    if not value:
        raise mandatory(shown or key)
    return value


def _number(params: Mapping[str, str], key: str, precision: int, name: Callable[[str], str]) -> Decimal | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return None
    if not NUMBER_RE.match(raw):
        raise illegal_chars(name(key), NUMBER_LEGAL)
    value = Decimal(raw)
    if decimals(value) > precision:
        raise too_much_precision(name(key))
    return value
