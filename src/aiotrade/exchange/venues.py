"""What the pool knows about each ccxt class, without I/O: its budget, what it charges, the headers in which the
venue reports its own count, its per-account order limits, which endpoints place or cancel orders, how HTTP
statuses are refusals, and how its URLs are pointed at another host."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import ccxt.async_support as ccxt

from aiotrade.exchange.limiter import Priority


def ccxt_budget(exchange_class: str, window_s: float) -> float:
    """What ccxt's own throttle allows per window in cost units (binance: 1200 per minute)."""
    probe = getattr(ccxt, exchange_class)()  # opens no session: nothing to close
    return window_s * 1000 / float(probe.rateLimit)


def rewrite_api_urls(api: Any, base_url: str) -> tuple[Any, tuple[tuple[str, str], ...]]:
    """ccxt's ``urls['api']`` with scheme and host of every URL replaced by ``base_url``'s.

    Returns the rewritten structure and the (new prefix, original prefix) pairs, so that error
    mapping that depends on the real host (binance's spot error table) keeps working.
    """
    base = urlsplit(base_url.rstrip("/"))
    mapping: list[tuple[str, str]] = []

    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            parts = urlsplit(value)
            original_root = f"{parts.scheme}://{parts.netloc}"
            new_root = f"{base.scheme}://{base.netloc}{base.path}"
            new = new_root + value[len(original_root) :]
            mapping.append((new, value))
            return new
        return value

    # Longest prefix first so /sapi/v1 is not mistaken for /sapi.
    rewritten = swap(api)
    mapping.sort(key=lambda pair: len(pair[0]), reverse=True)
    return rewritten, tuple(mapping)


REFUSALS_BY_STATUS: dict[str, type[ccxt.BaseError]] = {
    "400": ccxt.BadRequest,
    "403": ccxt.PermissionDenied,
    "404": ccxt.BadRequest,
    "405": ccxt.BadRequest,
    "409": ccxt.BadRequest,
    "410": ccxt.BadRequest,
    "451": ccxt.PermissionDenied,
}


def _binance_ticker_batch_cost(api: Any, path: Any, params: Any, cost: Any) -> Any:
    """ccxt charges `ticker/24hr?symbols=[…]` as "no symbol" (16 units = 80 weight); Binance charges
    2 weight for up to 20 symbols and 40 up to 100. Counting what Binance counts keeps the budget for
    requests instead of reserving it for nothing (never more than ccxt's own figure)."""
    section = api[0] if isinstance(api, list) and api else api
    if section != "public" or path != "ticker/24hr" or "symbol" in params:
        return cost
    symbols = params.get("symbols")
    if not isinstance(symbols, str):
        return cost
    count = symbols.count(",") + 1
    weight = 2 if count <= 20 else 40 if count <= 100 else 80
    return min(cost, weight / 5)


COST_CORRECTIONS: dict[str, Callable[[Any, Any, Any, Any], Any]] = {"binance": _binance_ticker_batch_cost}


def _binance_weight_header(window_s: float) -> tuple[str | None, float]:
    """Binance reports the weight of each interval it limits as X-MBX-USED-WEIGHT-<intervalNum><letter>
    (`-1M` for its one-minute limit; a venue with a shorter window, such as a test's paper exchange, `-10S`);
    one ccxt cost unit is 5 weight."""
    seconds = round(window_s)
    if seconds != window_s or seconds <= 0:
        return None, 1.0
    for unit_s, letter in ((86_400, "D"), (3_600, "H"), (60, "M"), (1, "S")):
        if seconds % unit_s == 0:
            return f"X-MBX-USED-WEIGHT-{seconds // unit_s}{letter}", 0.2
    return None, 1.0  # pragma: no cover - every whole number of seconds matches "S"


# The venue's own count of our weight in the window we limit (header, ccxt units per header unit).
USAGE_HEADERS: dict[str, Callable[[float], tuple[str | None, float]]] = {"binance": _binance_weight_header}

# Binance's ORDERS limits per account: (limit name, orders, window s, the header that reports the count, burst).
# The 10 s limit lets half its window leave at once (25 orders: a desk's burst goes together, not at the drain
# rate); the bound b + (W + s)·r = headroom × budget still keeps every 10 s window under 50. The daily limit's
# 10% (16,000 orders) is room enough.
ORDER_LIMITS: dict[str, tuple[tuple[str, float, float, str | None, float], ...]] = {
    "binance": (
        ("orders_10s", 50, 10.0, "X-MBX-ORDER-COUNT-10S", 0.5),
        ("orders_1d", 160_000, 86_400.0, "X-MBX-ORDER-COUNT-1D", 0.1),
    ),
}

# (api section, method, path) of the endpoints that place or cancel orders -> orders placed (what the
# ORDERS limit counts: an OCO is two). Anything else is a read.
ORDER_ENDPOINTS: dict[str, dict[tuple[str, str, str], int]] = {
    "binance": {
        ("private", "POST", "order"): 1,
        ("private", "POST", "order/test"): 0,
        ("private", "POST", "order/cancelReplace"): 1,
        ("private", "POST", "order/oco"): 2,
        ("private", "POST", "orderList/oco"): 2,
        ("private", "POST", "orderList/oto"): 2,
        ("private", "POST", "orderList/otoco"): 3,
        ("private", "POST", "orderList/opo"): 2,
        ("private", "POST", "orderList/opoco"): 3,
        ("private", "POST", "sor/order"): 1,
        ("private", "POST", "sor/order/test"): 0,
        ("private", "DELETE", "order"): 0,
        ("private", "DELETE", "openOrders"): 0,
        ("private", "DELETE", "orderList"): 0,
    },
}


def request_kind(exchange_id: str, api: Any, method: str, path: str) -> tuple[Priority, int]:
    """("order", orders placed) for an endpoint that places or cancels orders, else ("read", 0)."""
    section = api[0] if isinstance(api, list | tuple) and api else api
    orders = ORDER_ENDPOINTS.get(exchange_id, {}).get((str(section), str(method).upper(), str(path)))
    return ("read", 0) if orders is None else ("order", orders)
