"""Exact values from what exchanges print: one place for the conversion rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

Number = str | int | float | Decimal


def to_decimal(value: Number | None) -> Decimal | None:
    """Exact Decimal from an exchange value: strings as written (ccxt with ``number = str``); the few
    floats ccxt still hands out (market metadata) through their shortest repr, never their binary
    expansion. None, "" and non-finite values are None: a missing number is never a zero."""
    if value is None or value == "":
        return None
    try:
        exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except InvalidOperation:
        return None
    return exact if exact.is_finite() else None


def ms_to_datetime(ms: int | float | str | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
