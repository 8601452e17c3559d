"""Weight-aware rate limiting in ccxt's cost units, before a request leaves.

Exchanges such as Binance count request weight in a *fixed* window (one minute for Binance's
request weight). A leaky bucket of capacity ``b`` draining ``r`` units per second lets at most
``b + W·r`` units through in any interval of ``W`` seconds. Requests do not reach the exchange the
instant they leave the bucket, though: their delays differ by up to ``s`` seconds (the latency
allowance), so a window of the exchange sees what left us in ``W + s`` seconds. Choosing
``b + (W + s)·r = headroom × budget`` can never overrun the exchange's window, whatever its alignment,
while a steady load still uses ``(headroom − burst) · W / (W + s)`` of the budget.

A request costlier than the bucket's capacity is taken in parts and reaches the exchange when its
last part is taken, so one window can see up to one such cost above the bound: the largest single
cost must stay small against the budget (Binance: exchangeInfo 4 and an account-wide open-orders list
16 of 1,200 units a minute, well inside the 1% burst and the headroom).

A ``Retry-After`` from the exchange pauses every request of the venue until it has passed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiolimiter import AsyncLimiter


@dataclass(frozen=True, slots=True)
class LimiterStats:
    budget: float
    window_s: float
    capacity: float
    rate_per_second: float
    acquired_units: float
    requests: int
    paused_until_monotonic: float
    retry_after_events: int


class VenueLimiter:
    """One limiter per venue, shared by all of its clients (exchanges count weight per IP)."""

    def __init__(
        self,
        budget: float,
        *,
        window_s: float = 60.0,
        headroom: float = 0.99,
        burst: float = 0.01,
        latency_allowance_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if budget <= 0 or window_s <= 0:
            raise ValueError("budget and window_s must be positive")
        if not 0 < burst < headroom <= 1:
            raise ValueError("need 0 < burst < headroom <= 1")
        self.budget = budget
        self.window_s = window_s
        self.capacity = budget * burst
        if latency_allowance_s < 0:
            raise ValueError("latency_allowance_s must not be negative")
        self.rate_per_second = budget * (headroom - burst) / (window_s + latency_allowance_s)
        self._bucket = AsyncLimiter(self.capacity, self.capacity / self.rate_per_second)
        self._queue = asyncio.Lock()
        self._clock = clock
        self._paused_until = 0.0
        self._acquired_units = 0.0
        self._requests = 0
        self._retry_after_events = 0

    async def acquire(self, weight: float | None = None) -> None:
        """Wait until ``weight`` (in ccxt cost units) may leave; honours any pause set by ``pause_for``."""
        units = 1.0 if weight is None else float(weight)
        await self._wait_out_pause()
        # aiolimiter refuses a single acquisition above its capacity: take a heavy call in parts —
        # one request at a time, or the parts of many requests interleave and they all leave together.
        async with self._queue:
            remaining = units
            while remaining > 1e-12:
                part = min(remaining, self.capacity)
                await self._bucket.acquire(part)
                remaining -= part
        # A Retry-After may have arrived while we queued in the bucket.
        await self._wait_out_pause()
        self._acquired_units += units
        self._requests += 1

    def pause_for(self, seconds: float) -> None:
        """Hold every request of this venue for ``seconds`` (from a Retry-After header)."""
        if seconds <= 0:
            return
        self._retry_after_events += 1
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def pause_remaining(self) -> float:
        """Seconds until requests may leave again (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock())

    def stats(self) -> LimiterStats:
        return LimiterStats(
            budget=self.budget,
            window_s=self.window_s,
            capacity=self.capacity,
            rate_per_second=self.rate_per_second,
            acquired_units=self._acquired_units,
            requests=self._requests,
            paused_until_monotonic=self._paused_until,
            retry_after_events=self._retry_after_events,
        )

    async def _wait_out_pause(self) -> None:
        # A loop, not an Event: a later Retry-After can extend the pause while we sleep.
        while (delay := self.pause_remaining()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form); None when absent or malformed.

    The HTTP-date form is not used by crypto exchanges and is ignored rather than guessed at.
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return None
    # A hostile or broken header must not freeze the venue for hours.
    return min(seconds, 300.0)
