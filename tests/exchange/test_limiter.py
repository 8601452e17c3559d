"""The in-process venue limiter: never more than the budget in any window, orders ahead of reads, linked
order limits, shares, re-sync from the venue's count, and Retry-After holds everyone."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from aiotrade.exchange.limiter import LocalBuckets, VenueLimiter, order_limits, parse_retry_after


@pytest.mark.parametrize("window_s", [1.0, 10.0, 60.0])
def test_bucket_bound_never_exceeds_headroom_of_budget(window_s: float) -> None:
    limiter = VenueLimiter(1200, window_s=window_s, headroom=0.99, burst=0.01, latency_allowance_s=0.5)
    # Worst case in an exchange window: a full bucket plus the window and the latency spread of draining.
    assert limiter.capacity + (window_s + 0.5) * limiter.rate_per_second == pytest.approx(1200 * 0.99)
    assert limiter.rate_per_second * window_s / 1200 == pytest.approx(0.98 * window_s / (window_s + 0.5))


async def test_acquisitions_are_spaced_at_the_configured_rate() -> None:
    limiter = VenueLimiter(600, window_s=60, headroom=1.0, burst=0.1, latency_allowance_s=0, order_reserve=0)  # 60, 9/s
    started = time.monotonic()
    for _ in range(60):
        await limiter.acquire(1)  # the burst passes at once
    assert time.monotonic() - started < 0.2
    started = time.monotonic()
    for _ in range(9):
        await limiter.acquire(1)
    elapsed = time.monotonic() - started
    assert 0.8 < elapsed < 1.6, elapsed


async def test_a_cost_above_capacity_waits_for_an_empty_bucket_and_is_not_refused() -> None:
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


class FakeClock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_window_of_w_plus_s_ever_sees_more_than_headroom_of_the_budget(seed: int) -> None:
    # A greedy client with random costs on an injected clock: every interval of W + s seconds (what one venue
    # window can see, given the latency spread) holds at most headroom x budget, plus one cost above capacity.
    budget, window_s, allowance, headroom = 100.0, 10.0, 0.5, 0.99
    clock = FakeClock()
    buckets = LocalBuckets(
        VenueLimiter(budget, window_s=window_s, latency_allowance_s=allowance).limits,
        headroom=headroom,
        latency_allowance_s=allowance,
        order_reserve=0.1,
        share=1,
        clock=clock,
        wall_clock=clock,
    )
    rng = random.Random(seed)
    admitted: list[tuple[float, float]] = []
    while clock.now < 1_000 + 6 * window_s:
        cost = rng.choice([0.2, 0.4, 0.4, 0.8, 4.0])
        priority = rng.choice(["read", "read", "order"])
        wait = buckets.try_take(cost, 0, None, priority)
        if wait == 0:
            admitted.append((clock.now, cost))
        clock.now += wait + rng.choice([0.0, 0.0, 0.001, 0.05])
    span = window_s + allowance
    worst = max(sum(c for t, c in admitted if start <= t < start + span) for start, _ in admitted)
    assert worst <= headroom * budget + 4.0 + 1e-6, worst
    # ...and a greedy client does use it: the steady rate is (headroom - burst) x budget per W + s.
    total = sum(c for t, c in admitted if t >= 1_000 + window_s)
    assert total / (5 * window_s) >= 0.9 * (headroom - 0.01) * budget / span


def test_a_share_divides_rate_and_capacity() -> None:
    whole = VenueLimiter(1200, window_s=60)
    third = VenueLimiter(1200, window_s=60, share=3)
    assert third.capacity == pytest.approx(whole.capacity / 3)
    assert third.rate_per_second == pytest.approx(whole.rate_per_second / 3)
    assert third.stats().share == 3 and third.mode == "local"


async def test_saturating_reads_leave_room_for_an_order_at_once() -> None:
    limiter = VenueLimiter(100, window_s=1, burst=0.05, latency_allowance_s=0.1)  # capacity 5, ~85 units/s
    readers = [asyncio.create_task(limiter.acquire(0.4)) for _ in range(400)]  # ~2 s of reads queued
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await limiter.acquire(0.2, priority="order")
    order_wait = time.monotonic() - started
    started = time.monotonic()
    await limiter.acquire(0.4)  # a read now queues behind the others
    read_wait = time.monotonic() - started
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    assert order_wait < 0.02, order_wait
    assert read_wait > 0.5, read_wait


@pytest.mark.parametrize(("reserve", "order_fits"), [(0.1, True), (0.0, False)])
def test_reads_refilling_the_bucket_the_moment_it_allows_leave_an_order_room_only_with_a_reserve(
    reserve: float, order_fits: bool
) -> None:
    # Reads that take whatever drains, exactly when it drains (injected clock): with the reserve an order always
    # fits at once; without it (the control) it never does while the reads keep coming.
    clock = FakeClock()
    limiter = VenueLimiter(100, window_s=1, burst=0.05, order_reserve=reserve, clock=clock, wall_clock=clock)
    buckets = limiter._local
    rng = random.Random(5)
    fits = []
    for step in range(2_000):
        clock.now += buckets.try_take(0.1, 0, None, "read")
        buckets.try_take(0.1, 0, None, "read")
        if step > 100 and rng.random() < 0.05:  # once the reads have filled the bucket
            fits.append(buckets.bucket(limiter.limits[0], None, clock.now).wait(0.2, 1.0, clock.now) == 0)
    assert fits and all(f == order_fits for f in fits), fits.count(True)


async def test_an_order_also_counts_against_its_accounts_order_limit() -> None:
    # 5 orders per second per account (burst 0.1 x 5 = 0.5 -> room for one order at a time), weight plentiful.
    limits = order_limits([("orders_1s", 5, 1.0, None, 0.1)])
    limiter = VenueLimiter(100_000, window_s=1, latency_allowance_s=0, order_limits=limits)
    started = time.monotonic()
    for _ in range(4):
        await limiter.acquire(0.2, orders=1, account="a", priority="order")
    one_account = time.monotonic() - started
    started = time.monotonic()
    for account in "bcde":  # other accounts have their own count
        await limiter.acquire(0.2, orders=1, account=account, priority="order")
    other_accounts = time.monotonic() - started
    started = time.monotonic()
    for _ in range(20):  # cancels and reads place no orders
        await limiter.acquire(0.2, account="a", priority="order")
    assert time.monotonic() - started < 0.05
    assert one_account > 0.5, one_account
    assert other_accounts < 0.05, other_accounts


async def test_the_venue_counting_more_than_we_did_slows_us_down() -> None:
    clock = FakeClock(10_000.0)  # wall and monotonic alike; 10_000 s is the start of a 10 s window
    limiter = VenueLimiter(
        100, window_s=10, latency_allowance_s=0.5, usage_header="X-Used", clock=clock, wall_clock=clock
    )
    clock.now += 2
    await limiter.acquire(1)
    limiter.observe_usage({"x-used": "1"})  # what we sent: nothing to re-sync
    assert limiter.stats().resynced_units == 0
    limiter.observe_usage({"X-USED": "61"})  # someone else spent 60 units of this window
    tolerance = limiter.capacity + 0.5 * limiter.rate_per_second
    assert limiter.stats().resynced_units == pytest.approx(60 - tolerance)
    assert limiter._local.try_take(1, 0, None, "read") > 3  # ~45 units to drain at ~9.4/s
    limiter.observe_usage({"X-Used": "61"})  # the same count again is not debited twice
    assert limiter.stats().resynced_units == pytest.approx(60 - tolerance)


async def test_a_count_reported_just_after_a_window_starts_is_not_trusted() -> None:
    # It may still be the last window's count: debiting it would stall us for nothing.
    clock = FakeClock(10_000.2)
    limiter = VenueLimiter(
        100, window_s=10, latency_allowance_s=0.5, usage_header="X-Used", clock=clock, wall_clock=clock
    )
    limiter.observe_usage({"X-Used": "90"})
    assert limiter.stats().resynced_units == 0


async def test_with_a_share_of_n_our_part_of_the_venues_count_is_one_nth() -> None:
    # Three workers on one IP without Redis: the venue counts all three; each compares a third with its own.
    clock = FakeClock(10_002.0)
    limiter = VenueLimiter(
        3000, window_s=10, latency_allowance_s=0.5, share=3, usage_header="X-Used", clock=clock, wall_clock=clock
    )
    for _ in range(3):
        await limiter.acquire(1)
    limiter.observe_usage({"X-Used": "9"})  # three workers' worth of what we did: nothing foreign
    assert limiter.stats().resynced_units == 0
