"""Inbound rate limits per API key: GCRA, a bucket of one second's worth of requests refilled continuously.

A key limited to R requests per second may send B = max(1, round(R)) at once after an idle second, then one
every 1/R s. The answer carries the IETF ratelimit-headers draft fields: ``RateLimit-Limit`` (B),
``RateLimit-Remaining``, ``RateLimit-Reset`` (seconds until the bucket is full) and ``RateLimit-Policy``
(``B;w=<window s>``); a refusal adds ``Retry-After``.

`InboundLimiter` is the seam: `LocalInboundLimiter` counts in this process (each replica lets a key send its
full rate); a Redis implementation with the same GCRA in a Lua script, keyed ``aiotrade:inbound:<key id>``
on Redis time, makes the limit one across replicas.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

_EPSILON = 1e-9
_MAX_TRACKED = 10_000  # idle entries are swept past this many keys


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    limit: int  # requests the bucket holds
    remaining: int
    reset_s: float  # until the bucket is full again
    retry_after_s: float  # until one more request is let through (0 when allowed)
    window_s: float

    def headers(self) -> dict[str, str]:
        fields = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset_s - _EPSILON)),
            "RateLimit-Policy": f"{self.limit};w={math.ceil(self.window_s - _EPSILON)}",
        }
        if not self.allowed:
            fields["Retry-After"] = str(max(1, math.ceil(self.retry_after_s - _EPSILON)))
        return fields


class InboundLimiter(Protocol):
    async def take(self, key_id: str, per_second: float) -> RateDecision:
        """Count one request of ``key_id`` against ``per_second`` (> 0) and say whether it may go."""
        ...


class LocalInboundLimiter:
    """GCRA in this process: one theoretical arrival time per key; no task, no lock (one event loop)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}

    async def take(self, key_id: str, per_second: float) -> RateDecision:
        return self.take_now(key_id, per_second)

    def take_now(self, key_id: str, per_second: float) -> RateDecision:
        now = self._clock()
        burst = max(1, round(per_second))
        interval = 1.0 / per_second
        window = burst * interval
        tat = max(self._tat.get(key_id, now), now)
        new_tat = tat + interval
        if new_tat - now > window + _EPSILON:
            return RateDecision(False, burst, 0, tat - now, new_tat - window - now, window)
        if len(self._tat) >= _MAX_TRACKED and key_id not in self._tat:
            self._sweep(now)
        self._tat[key_id] = new_tat
        remaining = math.floor((window - (new_tat - now)) / interval + _EPSILON)
        return RateDecision(True, burst, max(0, remaining), new_tat - now, 0.0, window)

    def _sweep(self, now: float) -> None:
        for key_id in [k for k, tat in self._tat.items() if tat <= now]:
            del self._tat[key_id]


def make_inbound_limiter() -> InboundLimiter:
    """The limiter for this app. With Redis configured, return the shared implementation here instead."""
    return LocalInboundLimiter()
