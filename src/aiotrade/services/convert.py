"""From ccxt's unified structures to exact values: one place for the rules."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any


def to_decimal(value: Any) -> Decimal | None:
    """Exact Decimal from a ccxt value: strings as written (``number = str``); the few floats ccxt
    still hands out (market metadata) through their shortest repr, never their binary expansion."""
    if value is None or value == "":
        return None
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def ms_to_datetime(ms: Any) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def truncate_to_lot(amount: Decimal, market: Mapping[str, Any]) -> Decimal:
    """``amount`` truncated toward zero to the market's lot step (never more than asked), never below 0."""
    step = to_decimal((market.get("precision") or {}).get("amount"))
    if not step or amount <= 0:
        return max(amount, Decimal(0))
    return (amount / step).to_integral_value(rounding=ROUND_DOWN) * step


def balance_section(balance: Mapping[str, Any], kind: str) -> dict[str, Decimal]:
    """One of ccxt's balance sections (``free``, ``used``, ``total``) as Decimals per asset."""
    return {asset: Decimal(str(v)) for asset, v in (balance.get(kind) or {}).items() if v is not None}
