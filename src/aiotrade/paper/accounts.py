"""Paper accounts: balances that move exactly, and Binance's unfilled-order count per account."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

from aiotrade.paper.errors import insufficient_balance, too_many_orders
from aiotrade.paper.matching_types import BALANCE_PRECISION, ZERO, fmt


@dataclass(slots=True)
class Balance:
    free: Decimal = ZERO
    locked: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class OrderWindow:
    """One fixed window of Binance's ORDERS rate limit."""

    interval: str  # Binance's name: SECOND, DAY
    interval_num: int
    limit: int

    @property
    def length_ms(self) -> int:
        return self.interval_num * {"SECOND": 1_000, "MINUTE": 60_000, "DAY": 86_400_000}[self.interval]

    @property
    def label(self) -> str:
        """Binance's wording in the -1015 message (TEN_SECONDS, DAY, ...)."""
        if self.interval == "SECOND" and self.interval_num == 10:
            return "TEN_SECONDS"
        return self.interval if self.interval_num == 1 else f"{self.interval_num} {self.interval}"

    @property
    def header(self) -> str:
        """Suffix of the X-MBX-ORDER-COUNT-* response header (10S, 1D)."""
        return f"{self.interval_num}{self.interval[0]}"


class OrderCounter:
    """Binance's unfilled order count: every accepted order counts in each fixed window; an order's first
    fill takes one back (so orders that trade never exhaust the limit)."""

    def __init__(self, windows: tuple[OrderWindow, ...]) -> None:
        self._windows = windows
        self._slots = [(-1, 0)] * len(windows)  # (window index, count) per window

    def check(self, now_ms: int, orders: int = 1) -> None:
        """Raise Binance's -1015 (HTTP 429, Retry-After until that window resets) if `orders` more orders
        would exceed a window (an OCO places two)."""
        for window, count in zip(self._windows, self._counts(now_ms), strict=True):
            if count + orders > window.limit:
                reset = (now_ms // window.length_ms + 1) * window.length_ms
                raise too_many_orders(window.limit, window.label, max(1, math.ceil((reset - now_ms) / 1000)))

    def add(self, now_ms: int, delta: int) -> None:
        self._slots = [
            (now_ms // window.length_ms, max(0, count + delta))
            for window, count in zip(self._windows, self._counts(now_ms), strict=True)
        ]

    def rate_limits(self, now_ms: int) -> list[dict[str, object]]:
        """GET /api/v3/rateLimit/order body; also the values of the X-MBX-ORDER-COUNT-* headers."""
        return [
            {
                "rateLimitType": "ORDERS",
                "interval": window.interval,
                "intervalNum": window.interval_num,
                "limit": window.limit,
                "count": count,
            }
            for window, count in zip(self._windows, self._counts(now_ms), strict=True)
        ]

    def headers(self, now_ms: int) -> dict[str, str]:
        return {
            f"X-MBX-ORDER-COUNT-{window.header}": str(count)
            for window, count in zip(self._windows, self._counts(now_ms), strict=True)
        }

    def _counts(self, now_ms: int) -> list[int]:
        return [
            count if index == now_ms // window.length_ms else 0
            for window, (index, count) in zip(self._windows, self._slots, strict=True)
        ]


@dataclass(slots=True)
class Account:
    """One API key's spot wallet. Every movement keeps free and locked non-negative."""

    api_key: str
    uid: int
    orders: OrderCounter
    balances: dict[str, Balance] = field(default_factory=dict)
    update_time: int = 0

    def balance(self, asset: str) -> Balance:
        return self.balances.setdefault(asset, Balance())

    def lock(self, asset: str, amount: Decimal) -> None:
        """Move `amount` from free to locked, or refuse with Binance's insufficient-balance error."""
        balance = self.balance(asset)
        if amount > balance.free:
            raise insufficient_balance()
        balance.free -= amount
        balance.locked += amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        balance = self.balance(asset)
        assert ZERO <= amount <= balance.locked, f"unlocking {amount} {asset} of {balance.locked}"
        balance.locked -= amount
        balance.free += amount

    def spend_locked(self, asset: str, amount: Decimal) -> None:
        balance = self.balance(asset)
        assert ZERO <= amount <= balance.locked, f"spending {amount} {asset} of {balance.locked} locked"
        balance.locked -= amount

    def credit(self, asset: str, amount: Decimal) -> None:
        assert amount >= ZERO, f"crediting {amount} {asset}"
        self.balance(asset).free += amount

    def render(self, commission_rate: Decimal, omit_zero_balances: bool) -> dict[str, object]:
        """GET /api/v3/account body (Binance's legacy integer commissions are in basis points)."""
        rate = fmt(commission_rate, BALANCE_PRECISION)
        bps = int(commission_rate * 10_000)
        return {
            "makerCommission": bps,
            "takerCommission": bps,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": rate,
                "taker": rate,
                "buyer": fmt(ZERO, BALANCE_PRECISION),
                "seller": fmt(ZERO, BALANCE_PRECISION),
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.update_time,
            "accountType": "SPOT",
            "balances": self._render_balances(omit_zero_balances),
            "permissions": ["SPOT"],
            "uid": self.uid,
        }

    def _render_balances(self, omit_zero: bool) -> list[dict[str, str]]:
        return [
            {
                "asset": asset,
                "free": fmt(balance.free, BALANCE_PRECISION),
                "locked": fmt(balance.locked, BALANCE_PRECISION),
            }
            for asset, balance in sorted(self.balances.items())
            if not (omit_zero and balance.free.is_zero() and balance.locked.is_zero())
        ]
