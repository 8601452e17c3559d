"""JSON answers and Binance-style parameter reading, shared by the public, private and admin handlers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from aiotrade.paper.errors import BinanceError, illegal_chars, invalid_symbol, mandatory, not_valid, unread_parameters

SYMBOL_PATTERN = "^[A-Z0-9-_.]{1,20}$"
INTEGER_PATTERN = "^[0-9]{1,20}$"


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """Compact JSON, as Binance sends it."""
    return web.Response(
        status=status,
        body=json.dumps(data, separators=(",", ":")).encode(),
        content_type="application/json",
        headers=headers,
    )


def error_response(error: BinanceError) -> web.Response:
    """Binance's error answer: its status, `{"code", "msg"}`, and `Retry-After` when the error carries one."""
    headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s is not None else None
    return json_response(error.body(), status=error.status, headers=headers)


class Params:
    """Query parameters checked the way Binance checks them (unknown ones are an error, -1104)."""

    def __init__(self, request: web.Request, allowed: frozenset[str] = frozenset()) -> None:
        self.query: Mapping[str, str] = request.query
        if set(self.query) - allowed:
            raise unread_parameters(len(set(self.query) & allowed), len(self.query))

    def has(self, name: str) -> bool:
        return name in self.query

    def symbol(self, known: Mapping[str, object], name: str = "symbol") -> str:
        value = self.query.get(name, "")
        if not value:
            raise mandatory(name)
        return known_symbol(known, value, name)

    def symbols(self, known: Mapping[str, object]) -> list[str]:
        """`symbols=["BTCUSDT","ETHUSDT"]`: a JSON list, as Binance takes it."""
        legal = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'
        try:
            names = json.loads(self.query["symbols"])
        except ValueError:
            raise illegal_chars("symbols", legal) from None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise illegal_chars("symbols", legal)
        return [known_symbol(known, n, "symbols") for n in names]

    def integer(self, name: str) -> int | None:
        value = self.query.get(name)
        if value is None:
            return None
        if not value.isdigit() or len(value) > 20:
            raise illegal_chars(name, INTEGER_PATTERN)
        return int(value)

    def limit(self, default: int, maximum: int) -> int:
        value = self.integer("limit")
        if value is None:
            return default
        if value < 1:
            raise not_valid("limit")
        return min(value, maximum)


def known_symbol(known: Mapping[str, object], value: str, name: str) -> str:
    if not (1 <= len(value) <= 20) or not all(ch.isupper() or ch.isdigit() or ch in "-_." for ch in value):
        raise illegal_chars(name, SYMBOL_PATTERN)
    if value not in known:
        raise invalid_symbol()
    return value
