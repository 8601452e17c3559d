"""The venue limiter: never more than the budget in any minute, and Retry-After holds everyone."""

from __future__ import annotations

import asyncio
import time

import pytest

from aiotrade.exchange.limiter import VenueLimiter, parse_retry_after


@pytest.mark.parametrize("window_s", [1.0, 10.0, 60.0])
def test_bucket_bound_never_exceeds_headroom_of_budget(window_s: float) -> None:
    limiter = VenueLimiter(1200, window_s=window_s, headroom=0.99, burst=0.01, latency_allowance_s=0.5)
    # Worst case in an exchange window: a full bucket plus the window and the latency spread of draining.
    assert limiter.capacity + (window_s + 0.5) * limiter.rate_per_second == pytest.approx(1200 * 0.99)
    assert limiter.rate_per_second * window_s / 1200 == pytest.approx(0.98 * window_s / (window_s + 0.5))


async def test_acquisitions_are_spaced_at_the_configured_rate() -> None:
    limiter = VenueLimiter(600, window_s=60, headroom=1.0, burst=0.1, latency_allowance_s=0)  # 60 units, 9/s
    started = time.monotonic()
    for _ in range(60):
        await limiter.acquire(1)  # the burst passes at once
    assert time.monotonic() - started < 0.2
    started = time.monotonic()
    for _ in range(9):
        await limiter.acquire(1)
    elapsed = time.monotonic() - started
    assert 0.8 < elapsed < 1.6, elapsed


async def test_a_cost_above_capacity_is_taken_in_parts_not_refused() -> None:
    limiter = VenueLimiter(6000, headroom=1.0, burst=0.01)  # capacity 60
    await asyncio.wait_for(limiter.acquire(100), timeout=2)
    assert limiter.stats().acquired_units == 100


async def test_retry_after_pauses_every_caller_until_it_passes() -> None:
    limiter = VenueLimiter(60_000)
    limiter.pause_for(0.3)
    started = time.monotonic()
    await asyncio.gather(*(limiter.acquire(1) for _ in range(5)))
    assert time.monotonic() - started >= 0.28
    assert limiter.stats().retry_after_events == 1
    assert limiter.pause_remaining() == 0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        (" 0.5 ", 0.5),
        ("nan", None),
        ("-1", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        (None, None),
        ("99999", 300.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_rejects_nonsense_budgets() -> None:
    with pytest.raises(ValueError):
        VenueLimiter(0)
    with pytest.raises(ValueError):
        VenueLimiter(100, headroom=0.5, burst=0.6)


async def test_heavy_requests_leave_spread_out_not_in_a_clump() -> None:
    # Costs above the bucket's capacity are taken in parts; many of them at once must still leave
    # at the configured rate (interleaved parts would hold them all back, then release them together).
    limiter = VenueLimiter(8, window_s=2, latency_allowance_s=0.5)  # capacity 0.08, 3.136 units/s
    stamps: list[float] = []

    async def request() -> None:
        await limiter.acquire(0.4)
        stamps.append(time.monotonic())

    await asyncio.wait_for(asyncio.gather(*(request() for _ in range(20))), timeout=10)
    stamps.sort()
    bound = (limiter.capacity + 2 * limiter.rate_per_second) / 0.4
    busiest = max(sum(1 for t in stamps if start <= t < start + 2) for start in stamps)
    assert busiest <= bound + 1, (busiest, bound)
