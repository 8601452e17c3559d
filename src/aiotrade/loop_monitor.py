"""How long the event loop was blocked: a ticker that notices when it wakes up late.

Every sample is also observed in ``aiotrade_event_loop_lag_seconds`` (a histogram: one observation costs
about a microsecond, a hundred a second at the default interval)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiotrade.observability.metrics import EVENT_LOOP_LAG


@dataclass(frozen=True, slots=True)
class LoopLag:
    max_lag_ms: float
    samples: int
    interval_ms: float


class LoopMonitor:
    """Sleeps ``interval_s`` over and over; any extra time before it wakes is time the loop was busy."""

    def __init__(self, interval_s: float = 0.01) -> None:
        self.interval_s = interval_s
        self._max_lag_s = 0.0
        self._samples = 0

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.interval_s)
            lag = max(0.0, time.perf_counter() - started - self.interval_s)
            EVENT_LOOP_LAG.observe(lag)
            self._samples += 1
            self._max_lag_s = max(self._max_lag_s, lag)

    def read(self, *, reset: bool = False) -> LoopLag:
        lag = LoopLag(self._max_lag_s * 1000, self._samples, self.interval_s * 1000)
        if reset:
            self._max_lag_s, self._samples = 0.0, 0
        return lag
